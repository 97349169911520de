"""Enabling and disabling plugins per organisation."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry import Info

from core.services import plugins as plugin_service
from core.services.context import ServiceContext
from schema import ids
from schema.mutations.base import mutate, payload
from schema.types.plugins import InstalledPlugin, installed

PluginPayload = payload("PluginPayload", "plugin", InstalledPlugin)


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
            await plugin_service.set_enabled(
                ctx, organization_id=org, plugin=input.plugin, enabled=input.enabled, installed=loaded, known=known
            )
            return input.plugin

        return await mutate(
            info,
            PluginPayload,
            "plugin",
            lambda name: next(p for p in installed(info) if p.name == name),
            work,
        )
