"""Test plugin `help`: its namespace (`help_…`) holds core's `help_requests` (the host refuses it)."""

from __future__ import annotations

import core


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(name="help", version="0.1")
