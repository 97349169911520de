"""Test plugin `typo_role`: a permission granted to a role that does not exist (the host refuses it)."""

from __future__ import annotations

import core


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(name="typo_role", version="0.1")


@core.hookimpl
def register_permissions() -> list[core.Permission]:
    return [core.Permission("typo_role.read", "Read things.", ("social_worker", "social_wroker"))]
