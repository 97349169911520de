"""Test plugin `listener`: reacts to another plugin's event by name, without importing it."""

from __future__ import annotations

import core

HEARD: list[tuple[str, dict[str, object]]] = []


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(name="listener", version="0.1")


@core.hookimpl
def on_event(event: core.DomainEvent) -> None:
    HEARD.append((event.name, event.data()))
