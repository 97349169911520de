"""Test plugin `badfield`: a root field outside its namespace (`stats`, which core owns)."""

from __future__ import annotations

import strawberry

import core


@strawberry.type
class BadfieldQuery:
    @strawberry.field
    async def stats(self) -> int:
        return 0


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(name="badfield", version="0.1")


@core.hookimpl
def register_graphql() -> core.GraphQLContribution:
    return core.GraphQLContribution(query=BadfieldQuery)
