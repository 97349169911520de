"""Test plugin `offprefix`: its model's table does not start with its name (the host refuses it)."""

from __future__ import annotations

import core


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(name="offprefix", version="0.1")
