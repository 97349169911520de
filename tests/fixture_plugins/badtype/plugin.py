"""Test plugin `badtype`: a type outside its namespace (`Widget`, not `Badtype…`)."""

from __future__ import annotations

import strawberry

import core


@strawberry.type
class Widget:
    name: str


@strawberry.type
class BadtypeQuery:
    @strawberry.field
    async def badtype_widgets(self) -> list[Widget]:
        return []


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(name="badtype", version="0.1")


@core.hookimpl
def register_graphql() -> core.GraphQLContribution:
    return core.GraphQLContribution(query=BadtypeQuery)
