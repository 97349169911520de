"""Test plugin `malformed`: its register_graphql returns something that is not a contribution."""

from __future__ import annotations

import core


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(name="malformed", version="0.1")


@core.hookimpl
def register_graphql() -> object:
    return "type Query { oops: Int }"
