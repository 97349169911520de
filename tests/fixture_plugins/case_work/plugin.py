"""Test plugin `case_work`: defines `caseWorkItems` too (see plugin `case`)."""

from __future__ import annotations

import strawberry

import core


@strawberry.type
class CaseWorkQuery:
    @strawberry.field
    async def case_work_items(self) -> list[str]:
        return ["from case_work"]


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(name="case_work", version="0.1")


@core.hookimpl
def register_graphql() -> core.GraphQLContribution:
    return core.GraphQLContribution(query=CaseWorkQuery)
