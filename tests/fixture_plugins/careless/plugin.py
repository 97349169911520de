"""Test plugin `careless`: a table that does not say whom its rows belong to (the host refuses it)."""

from __future__ import annotations

import core


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(name="careless", version="0.1")
