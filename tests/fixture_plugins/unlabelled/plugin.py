"""Test plugin `unlabelled`: its first migration opens no branch named after it (the host refuses it)."""

from __future__ import annotations

from pathlib import Path

import core


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(name="unlabelled", version="0.1")


@core.hookimpl
def register_migrations() -> Path:
    return Path(__file__).parent / "migrations"
