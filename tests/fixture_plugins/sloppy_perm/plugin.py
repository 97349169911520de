"""Test plugin `sloppy_perm`: declares a permission outside its namespace."""

from __future__ import annotations

import core


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(name="sloppy_perm", version="0.1")


@core.hookimpl
def register_permissions() -> list[core.Permission]:
    return [core.Permission("supplies.distribute", "not mine to declare")]
