"""Delivery of the outbox (core.services.outbox) to channels: core's `log` and `webhook`, and the channels
plugins register (hook `register_channels`). See core.delivery.worker for how a round works, and
docs/notifications.md for operators, administrators and channel authors.

Runs as `yunshegong worker` and, unless YUNSHEGONG_DELIVERY_IN_SERVE=false, inside `yunshegong serve`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.delivery.channel import (
    CHANNEL_NAME,
    Channel,
    Contact,
    DeliveryFailure,
    Message,
    PermanentFailure,
    TemporaryFailure,
)

if TYPE_CHECKING:
    from core.delivery.worker import DeliveryConfig, Round, Worker, backoff

# Loaded when first used: `core.delivery.channel` (the plugin API's part) must import without the models.
_LAZY = {"DeliveryConfig", "Round", "Worker", "backoff"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from core.delivery import worker

        return getattr(worker, name)
    raise AttributeError(f"module 'core.delivery' has no attribute {name!r}")


CORE_CHANNELS = ("log", "webhook")

__all__ = [
    "CORE_CHANNELS",
    "Channel",
    "Contact",
    "DeliveryConfig",
    "DeliveryFailure",
    "Depth",
    "Message",
    "PermanentFailure",
    "Round",
    "TemporaryFailure",
    "Worker",
    "backoff",
    "build_worker",
    "depth",
    "plugin_channels",
]


def plugin_channels(host: Any) -> list[tuple[str, Channel]]:
    """(plugin name, channel) for every channel the loaded plugins register, validated. Raises
    PluginLoadError naming the plugin (startup stops)."""
    from core.plugins import PluginLoadError

    if host is None:
        return []
    out: list[tuple[str, Channel]] = []
    seen = set(CORE_CHANNELS)
    for plugin, value in host.call_each("register_channels"):
        if not isinstance(value, (list, tuple)):
            raise PluginLoadError(f"plugin {plugin.name!r}: register_channels must return a list of channels")
        for channel in value:
            name = getattr(channel, "name", None)
            if not isinstance(channel, Channel) or not isinstance(name, str):
                raise PluginLoadError(
                    f"plugin {plugin.name!r}: {channel!r} is not a channel "
                    "(name, accepts(message), async send(message))"
                )
            if not CHANNEL_NAME.match(name) or name.split(".")[0] != plugin.name:
                raise PluginLoadError(
                    f"plugin {plugin.name!r}: channel name {name!r} must be '{plugin.name}' or '{plugin.name}.<what>'"
                )
            if name in seen:
                raise PluginLoadError(f"plugin {plugin.name!r}: channel {name!r} is registered twice")
            seen.add(name)
            out.append((plugin.name, channel))
    return out


def build_worker(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Any,
    host: Any = None,
    *,
    clock: Callable[[], datetime] | None = None,
) -> Worker:
    """The worker of a running service: core's channels and the loaded plugins' (only for organisations
    that enabled the plugin), tuned by `settings`. It keeps time by the database's clock unless `clock` is a
    test's: the machine's clock (`utc_now`, what the app passes by default) counts as none, since machines'
    clocks disagree and leases must not."""
    from core.delivery.channels import LogChannel, WebhookChannel
    from core.delivery.worker import DeliveryConfig, Worker
    from core.services.context import utc_now

    config = DeliveryConfig.from_settings(settings)
    webhook = WebhookChannel(
        sessionmaker,
        timeout=min(settings.delivery_webhook_timeout, config.send_timeout),
        allow_private=settings.delivery_webhook_allow_private,
        ports=settings.delivery_webhook_ports,
    )
    contributed = plugin_channels(host)
    return Worker(
        sessionmaker,
        [LogChannel(), webhook, *(channel for _, channel in contributed)],
        config=config,
        clock=None if clock is utc_now else clock,
        plugin_of={channel.name: plugin for plugin, channel in contributed},
    )


@dataclass(frozen=True)
class Depth:
    """The outbox across every organisation: messages not routed yet, deliveries queued and parked, and the
    age of the oldest queued delivery (seconds). Counts only (for /metrics)."""

    unrouted: int
    queued: int
    parked: int
    oldest_queued_seconds: float


async def depth(session: AsyncSession) -> Depth:
    """Outbox depth, read through `delivery_depth()` (migration 0014): a SECURITY DEFINER function returning
    counts only, so the caller needs no view of any organisation's rows (row-level security stays whole)."""
    row = (await session.execute(text("SELECT delivery_depth()"))).scalar_one()
    return Depth(
        unrouted=int(row["unrouted"]),
        queued=int(row["queued"]),
        parked=int(row["parked"]),
        oldest_queued_seconds=float(row["oldest_queued_seconds"]),
    )
