"""Test plugin `ephemeral`: a migrated plugin the tests install, uninstall and remove."""

from __future__ import annotations

from pathlib import Path

import core


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(name="ephemeral", version="0.1")


@core.hookimpl
def register_migrations() -> Path:
    return Path(__file__).parent / "migrations"
