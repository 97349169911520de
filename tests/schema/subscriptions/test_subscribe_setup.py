"""A subscription lets go of the database before it waits for the process's listener (which may take seconds
while the LISTEN connection is re-established): no pooled connection, no open transaction, while it waits."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from core.live.broker import Broker
from tests.live_support import WsClient
from tests.schema.subscriptions.conftest import LiveKit

CHANGED = "subscription { helpRequestChanged { change } }"


async def test_no_connection_is_held_while_a_subscription_waits_for_the_listener(
    live_kit: LiveKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a signed-in administrator on a websocket, and a listener that is slow to be ready
    org = await live_kit.organization()
    admin = await live_kit.sign_in("organization_admin", org)
    pool = live_kit.engine.sync_engine.pool
    gate, entered = asyncio.Event(), asyncio.Event()
    real = Broker.subscribe

    async def slow(self: Broker, topics: Any, *, accept: Any = None, counted: bool = True) -> Any:
        if counted:  # a client's subscription (not the connection's credential watcher)
            entered.set()
            await gate.wait()
        return await real(self, topics, accept=accept, counted=counted)

    async with WsClient.connect(live_kit.url, admin.token) as client:
        monkeypatch.setattr(Broker, "subscribe", slow)
        base = pool.checkedout()
        # when it subscribes and the subscription waits for the listener
        op = await client.subscribe(CHANGED)
        await asyncio.wait_for(entered.wait(), 15)
        held = pool.checkedout()
        async with live_kit.engine.connect() as conn:
            open_transactions = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
                    )
                )
            ).scalar_one()
        gate.set()
        first = (await client.next(op))["data"]
    # then nothing was held meanwhile, and the subscription began as usual
    assert (held, open_transactions) == (base, 0)
    assert first == {"helpRequestChanged": {"change": "RESYNC"}}


async def test_a_listener_reconnect_does_not_make_every_connection_check_its_credential(
    live_kit: LiveKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core import live
    from schema.subscriptions.context import LiveConnection

    # given a subscribed administrator, counting the connection's own credential checks
    org = await live_kit.organization()
    admin = await live_kit.sign_in("organization_admin", org)
    checks = 0
    real = LiveConnection.check

    async def counted(self: LiveConnection) -> Any:
        nonlocal checks
        checks += 1
        return await real(self)

    async with WsClient.connect(live_kit.url, admin.token) as client:
        op = await client.subscribe(CHANGED)
        assert (await client.next(op))["data"] == {"helpRequestChanged": {"change": "RESYNC"}}
        monkeypatch.setattr(LiveConnection, "check", counted)
        # when the process's LISTEN session is lost and comes back (every subscription is told to resync)
        pid = live.broker()._connection.get_server_pid()
        async with live_kit.engine.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        # (the subscription's own RESYNC: the reconnect reached this process's listeners)
        assert (await client.next(op))["data"] == {"helpRequestChanged": {"change": "RESYNC"}}
    # then the connection's watcher did not re-check (each operation and event checks for itself)
    assert checks == 0
