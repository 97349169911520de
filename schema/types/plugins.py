"""Installed plugins and their enablement, as GraphQL."""

from __future__ import annotations

import strawberry
from strawberry import Info

from core.plugins import LoadedPlugin
from core.services import plugins as plugin_service


@strawberry.type(description="A permission a plugin's services check.")
class PluginPermission:
    name: str
    description: str


@strawberry.type(description="A plugin installed in this deployment.")
class InstalledPlugin:
    name: str
    version: str
    description: str
    permissions: list[PluginPermission]

    @classmethod
    def from_loaded(cls, plugin: LoadedPlugin, permissions: list[PluginPermission]) -> InstalledPlugin:
        return cls(
            name=plugin.name,
            version=plugin.info.version,
            description=plugin.info.description,
            permissions=permissions,
        )

    @strawberry.field(description="Whether your organisation has enabled it.")
    async def enabled_for_me(self, info: Info) -> bool:
        return self.name in await info.context.read(plugin_service.enabled_plugins)


def installed(info: Info) -> list[InstalledPlugin]:
    host = info.context.app.host
    if host is None:
        return []
    out = []
    for plugin in host.plugins.values():
        permissions = [
            PluginPermission(name=p.name, description=p.description)
            for p in host.permissions
            if p.name.startswith(plugin.name + ".")
        ]
        out.append(InstalledPlugin.from_loaded(plugin, permissions))
    return out
