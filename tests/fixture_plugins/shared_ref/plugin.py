"""Test plugin `shared_ref`: reference data every organisation shares, declared so, with a reason."""

from __future__ import annotations

import core


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(name="shared_ref", version="0.1")
