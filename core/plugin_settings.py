"""Plugin settings from the environment (hook `register_settings`).

A plugin returns a dataclass whose fields have defaults; each field is read from
`YUNSHEGONG_<PLUGIN>_<FIELD>` (upper case), converted to the field's type (str, int, float, bool, or
timedelta given in seconds), and checked at startup: a bad value stops the service with one line naming
the plugin and the variable. Services read them with `core.plugin_settings(ctx, "<plugin>")`.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

TRUE, FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


class PluginSettingsError(ValueError):
    """A plugin's settings class or an environment value is malformed (startup stops)."""


def _convert(raw: str, kind: Any) -> Any:
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered not in TRUE | FALSE:
            raise ValueError("expected true or false")
        return lowered in TRUE
    if kind is timedelta:
        return timedelta(seconds=float(raw))
    if kind in (int, float, str):
        return kind(raw.strip() if kind is not str else raw)
    raise PluginSettingsError(f"unsupported setting type {kind!r}")


def load(host: Any, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """{plugin name: its settings instance} for every plugin implementing register_settings."""
    environ = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    for plugin, cls in host.call_each("register_settings"):
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise PluginSettingsError(f"plugin {plugin.name!r}: register_settings must return a dataclass type")
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise PluginSettingsError(f"plugin {plugin.name!r}: setting {f.name!r} needs a default")
            variable = f"YUNSHEGONG_{plugin.name.upper()}_{f.name.upper()}"
            if variable in environ:
                try:
                    values[f.name] = _convert(environ[variable], hints[f.name])
                except (ValueError, TypeError) as exc:
                    raise PluginSettingsError(
                        f"plugin {plugin.name!r}: {variable}={environ[variable]!r} "
                        f"is not a valid {hints[f.name].__name__} ({exc})"
                    ) from None
        out[plugin.name] = cls(**values)
    return out


def settings_of(ctx: Any, plugin: str) -> Any:
    """The settings of `plugin` (loaded once per plugin host from the environment)."""
    host = ctx.events
    cached = getattr(host, "_plugin_settings", None)
    if cached is None:
        cached = load(host)
        host._plugin_settings = cached
    if plugin not in cached:
        raise PluginSettingsError(f"plugin {plugin!r} registers no settings")
    return cached[plugin]
