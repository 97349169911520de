"""Enabling and disabling plugins per organisation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import strawberry
from strawberry import Info

from core.services import plugins as plugin_service
from core.services.context import ServiceContext
from schema import ids
from schema.errors import UserError
from schema.mutations.base import mutate
from schema.types.plugins import InstalledPlugin, installed


@strawberry.type(description="Result of setPluginEnabled: the plugin and its state for the organisation acted on.")
class PluginPayload:
    plugin: InstalledPlugin | None = None
    enabled: bool | None = strawberry.field(
        default=None, description="Whether the plugin is now enabled for the target organisation."
    )
    organization_id: strawberry.ID | None = strawberry.field(
        default=None, description="The organisation whose state `enabled` is (the input's organizationId)."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@dataclass(frozen=True)
class PluginState:
    plugin: str
    organization_id: int
    enabled: bool

    def __str__(self) -> str:  # the audit entry's detail
        state = "enabled" if self.enabled else "disabled"
        return f"plugin {self.plugin} {state} for organisation {self.organization_id}"


@strawberry.input
class SetPluginEnabledInput:
    organization_id: strawberry.ID
    plugin: str
    enabled: bool


@strawberry.type
class PluginMutations:
    @strawberry.mutation(description="Switch a plugin on or off for an organisation; takes effect at once, keeps data.")
    async def set_plugin_enabled(self, info: Info, input: SetPluginEnabledInput) -> PluginPayload:
        host = info.context.app.host
        loaded = frozenset(host.plugins) if host else frozenset()
        known = loaded | (host.skipped if host else frozenset())

        async def work(ctx: ServiceContext) -> Any:
            org = ids.decode(input.organization_id, "Organization", ("input", "organizationId"))
            enabled = await plugin_service.set_enabled(
                ctx, organization_id=org, plugin=input.plugin, enabled=input.enabled, installed=loaded, known=known
            )
            return PluginState(input.plugin, org, enabled)

        state: list[PluginState] = []

        def convert(result: PluginState) -> InstalledPlugin:
            state.append(result)
            return next(p for p in installed(info) if p.name == result.plugin)

        result = await mutate(info, PluginPayload, "plugin", convert, work)
        if state:
            result.enabled = state[0].enabled
            result.organization_id = input.organization_id
        return result
