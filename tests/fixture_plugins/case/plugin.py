"""Test plugin `case`: its root field `caseWorkItems` collides with plugin `case_work`'s."""

from __future__ import annotations

import strawberry

import core


@strawberry.type
class CaseQuery:
    @strawberry.field
    async def case_work_items(self) -> list[str]:
        return ["from case"]


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(name="case", version="0.1")


@core.hookimpl
def register_graphql() -> core.GraphQLContribution:
    return core.GraphQLContribution(query=CaseQuery)
