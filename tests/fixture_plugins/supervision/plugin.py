"""A plugin with a role (`supervision.supervisor`) that administrators grant to accounts."""

from __future__ import annotations

import strawberry
from strawberry import Info

import core


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(name="supervision", version="1.0")


@core.hookimpl
def register_permissions() -> list[core.Permission]:
    # Held through the role only: no core role has it by default (platform administrators by rank).
    return [core.Permission("supervision.approve", "Approve case closures.", ())]


@core.hookimpl
def register_roles() -> list[core.PluginRole]:
    return [core.PluginRole("supervision.supervisor", "Supervises a team's casework.", ("supervision.approve",))]


@strawberry.type
class SupervisionQuery:
    @strawberry.field(description="Whether the caller may approve closures.")
    async def supervision_can_approve(self, info: Info) -> bool:
        return core.can(info.context.viewer, "supervision.approve")


@core.hookimpl
def register_graphql() -> core.GraphQLContribution:
    return core.GraphQLContribution(query=SupervisionQuery)
