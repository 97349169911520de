"""Live updates across processes: PostgreSQL announces changes (NOTIFY), each process listens once and fans
the announcements out to its subscribers (`core.live.broker`).

For plugins (and core's own subscriptions):

    await core.live.publish(ctx, "supplies.stock", batch_id, warehouse_id=warehouse_id)   # in a write
    async with await core.live.subscribe({"supplies.stock"}) as events:                    # in a subscription
        async for event in events:
            ...  # event.id, event.organization_id, event.keys; event.resync: reload everything shown

An event names a record; the subscriber reloads it in a fresh transaction with its own viewer (row-level
security and the service's visibility rules decide what it may see). `schema.subscriptions.live_field` does
that for GraphQL subscription fields. Row triggers announce a table's changes without any code in the
write path (`core.live.migrations.install_trigger`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL

from core.live.broker import Accept, Broker, LiveUnavailable, Subscription
from core.live.events import (
    ASSIGNMENTS,
    AUTH,
    CHANNEL,
    HELP_REQUESTS,
    PLUGINS,
    RESYNC,
    RESYNC_EVENT,
    Event,
    encode,
    plugin_topic,
)

__all__ = [
    "ASSIGNMENTS",
    "AUTH",
    "CHANNEL",
    "HELP_REQUESTS",
    "PLUGINS",
    "RESYNC",
    "RESYNC_EVENT",
    "Accept",
    "Broker",
    "Event",
    "LiveUnavailable",
    "Subscription",
    "broker",
    "configure",
    "publish",
    "shutdown",
    "subscribe",
    "subscriber_count",
]

_NOTIFY = text(f"SELECT pg_notify('{CHANNEL}', :payload)")

# The process's broker: made on first use from what `configure` (the app factory) gave, on the running loop.
_config: dict[str, Any] = {}
_broker: Broker | None = None
_closing: set[asyncio.Task[None]] = set()


def configure(url: str | URL, **options: Any) -> None:
    """Where the process listens (the app factory calls this; options: Broker's keyword arguments). A broker
    already running for another URL is replaced at the next subscription."""
    _config.clear()
    _config.update(options, url=url)


def broker() -> Broker:
    """The process's broker, made on first use (on the running event loop)."""
    global _broker
    loop = asyncio.get_running_loop()
    stale = _broker is not None and (
        _broker.loop is not loop or _broker.loop.is_closed() or _broker.url != _config.get("url")
    )
    if _broker is None or stale:
        if stale and _broker is not None and _broker.loop is loop:
            # Another URL on this loop: the old listener goes (its subscribers end).
            _closing.add(task := loop.create_task(_broker.close()))
            task.add_done_callback(_closing.discard)
        if "url" not in _config:
            raise LiveUnavailable("live updates are not configured (core.live.configure)")
        options = dict(_config)
        _broker = Broker(options.pop("url"), **options)
    return _broker


async def subscribe(topics: Iterable[str], *, accept: Accept | None = None) -> Subscription:
    """A subscription to `topics` (core topics or `<plugin>.<what>`), listening once it returns.
    LiveUnavailable when the database cannot be listened to. Close it (`async with`) when done."""
    return await broker().subscribe(topics, accept=accept)


async def publish(ctx: Any, topic: str, id: int | None, *, organization_id: int | None = None, **keys: Any) -> None:
    """Announce, in the caller's transaction, that record `id` of `topic` (`<plugin>.<what>`) changed: sent
    when the transaction commits, never if it rolls back. `keys`: routing keys subscribers filter on (IDs
    and short codes; never personal data). The organisation defaults to the caller's."""
    plugin_topic(topic)
    organization = organization_id if organization_id is not None else ctx.viewer.organization_id
    await ctx.session.execute(_NOTIFY, {"payload": encode(topic, id, organization, keys)})


def subscriber_count() -> int:
    """Open subscriptions in this process (0 before the first; for /metrics)."""
    return _broker.subscriber_count() if _broker is not None else 0


async def shutdown() -> None:
    """Close the process's listener and end its subscriptions (the app's shutdown; tests)."""
    global _broker
    held, _broker = _broker, None
    if held is not None and held.loop is asyncio.get_running_loop():
        await held.close()
