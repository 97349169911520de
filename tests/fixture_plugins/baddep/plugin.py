"""Test plugin `baddep`: its migration depends on a revision that does not exist (the host refuses it)."""

from __future__ import annotations

from pathlib import Path

import core


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(name="baddep", version="0.1")


@core.hookimpl
def register_migrations() -> Path:
    return Path(__file__).parent / "migrations"
