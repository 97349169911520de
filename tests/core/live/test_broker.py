"""The live broker against the real database: PostgreSQL announces on commit only, the one LISTEN connection
comes back after a loss (subscribers resync), and a slow subscriber neither blocks others nor grows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core import live
from core.database import create_sessionmaker
from core.live.broker import Broker
from core.live.events import RESYNC, decode, encode
from core.services import auth, help_requests, plugins
from core.services.context import ServiceContext, Viewer
from core.vocab import RequestCategory, Role, Urgency
from tests.factories import Factory

WAIT = 15.0
OLD_PASSWORD = "broker watcher 2026"


@pytest.fixture
async def broker(db_url: Any) -> AsyncIterator[Broker]:
    made = Broker(db_url, queue_size=5, retry_initial=0.05, probe_interval=1.0)
    yield made
    await made.close()


async def _submit(engine: AsyncEngine, admin: Viewer, community: int, title: str, *, commit: bool = True) -> int:
    async with create_sessionmaker(engine)() as session:
        ctx = ServiceContext(session=session, viewer=admin)
        async with session.begin() as tx:
            made = await help_requests.submit(
                ctx,
                help_requests.HelpRequestInput(
                    community_id=community,
                    title=title,
                    category=RequestCategory.MEDICINE,
                    urgency=Urgency.HIGH,
                    requester_name="王阿姨",
                    requester_phone="13812345678",
                ),
            )
            if not commit:
                await tx.rollback()
        return made.id


async def test_a_committed_change_is_announced_and_a_rolled_back_one_is_not(
    broker: Broker, engine: AsyncEngine, admin: Viewer, make: Factory, ctx: ServiceContext
) -> None:
    # given a community and a subscriber to help requests
    community = await make.community()
    await ctx.session.commit()
    async with await broker.subscribe({live.HELP_REQUESTS}) as events:
        # when one request is submitted and rolled back, then another committed
        await _submit(engine, admin, community.id, "撤销", commit=False)
        kept = await _submit(engine, admin, community.id, "保留")
        # then the first event is the committed one: IDs and routing keys, no personal data
        event = await events.next(WAIT)
    assert event is not None
    assert (event.topic, event.id, event.op) == (live.HELP_REQUESTS, kept, "insert")
    assert event.organization_id == community.organization_id
    assert dict(event.keys) == {"community_id": community.id, "urgency": "high", "status": "submitted"}


async def test_losing_the_listen_connection_resyncs_and_listens_again(
    broker: Broker, engine: AsyncEngine, owner_engine: AsyncEngine, admin: Viewer, make: Factory, ctx: ServiceContext
) -> None:
    # given a subscriber
    community = await make.community()
    await ctx.session.commit()
    async with await broker.subscribe({live.HELP_REQUESTS}) as events:
        # when the server ends the LISTEN session (a restart, a failover, an administrator)
        # (this broker's own session: another test's broker may listen on the same database)
        pid = broker._connection.get_server_pid()
        async with owner_engine.connect() as conn:
            ended = await conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        assert ended is True
        # then the subscriber is told to resync once the broker listens again
        event = await events.next(WAIT)
        assert event is not None
        assert event.topic == RESYNC
        assert broker.connects == 2
        # and a change committed after that arrives
        made = await _submit(engine, admin, community.id, "重连之后")
        after = await events.next(WAIT)
    assert after is not None
    assert after.id == made


async def test_a_slow_subscriber_drops_to_resync_without_holding_up_the_others(
    broker: Broker, engine: AsyncEngine, admin: Viewer, make: Factory, ctx: ServiceContext
) -> None:
    # given a subscriber that reads and one that does not (queues of 5)
    await make.community()
    await ctx.session.commit()
    async with (
        await broker.subscribe({"testing.thing"}) as fast,
        await broker.subscribe({"testing.thing"}) as slow,
    ):
        # when 12 announcements are committed one after another, the reader reading each
        got = []
        for n in range(12):
            async with create_sessionmaker(engine)() as session, session.begin():
                await live.publish(ServiceContext(session=session, viewer=admin), "testing.thing", n, kind="x")
            got.append(await fast.next(WAIT))
        # then the reader got all 12, in order
        assert [e.id if e is not None else None for e in got] == list(range(12))
        # and the slow one holds at most a queue's worth: its backlog became one RESYNC
        assert slow._queue.qsize() <= 5
        first = await slow.next(WAIT)
        assert first is not None
        assert first.topic == RESYNC
        assert slow.dropped > 0


async def test_switching_a_plugin_on_and_off_and_a_password_change_are_announced(
    broker: Broker, engine: AsyncEngine, admin: Viewer, home_org: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    # given an account of the organisation
    async with create_sessionmaker(engine)() as session, session.begin():
        account = await auth.create_account(
            ServiceContext(session=session, viewer=admin),
            auth.AccountInput(
                username="broker-watcher", display_name="x", password=OLD_PASSWORD, role=Role.ORGANIZATION_ADMIN,
                organization_id=home_org,
            ),
        )  # fmt: skip
    async with await broker.subscribe({live.PLUGINS, live.AUTH}) as events:
        # when a plugin is switched on for the organisation, then off
        for enabled in (True, False):
            async with create_sessionmaker(engine)() as session, session.begin():
                await plugins.set_enabled(
                    ServiceContext(session=session, viewer=admin),
                    organization_id=home_org,
                    plugin="supplies",
                    enabled=enabled,
                    installed=frozenset({"supplies"}),
                    known=frozenset({"supplies"}),
                )
        # and the account changes its password
        async with create_sessionmaker(engine)() as session, session.begin():
            own = Viewer(label="own", role="organization_admin", organization_id=home_org, account_id=account.id)
            await auth.change_password(ServiceContext(session=session, viewer=own), OLD_PASSWORD, "another one 2026")
        # then "plugins" says which organisation and plugin, each time, and "auth" which account
        got = [await events.next(WAIT) for _ in range(3)]
    assert [(e.topic, e.id, e.get("plugin_name"), e.get("enabled")) for e in got[:2] if e is not None] == [
        (live.PLUGINS, home_org, "supplies", True),
        (live.PLUGINS, home_org, "supplies", False),
    ]
    assert got[2] is not None
    assert (got[2].topic, got[2].id, got[2].get("kind")) == (live.AUTH, account.id, "account")


async def test_a_help_request_is_announced_only_when_a_column_subscribers_see_changes(
    broker: Broker, engine: AsyncEngine, admin: Viewer, make: Factory, ctx: ServiceContext
) -> None:
    # given a request and a subscriber
    community = await make.community()
    await ctx.session.commit()
    made = await _submit(engine, admin, community.id, "只看标题")
    async with await broker.subscribe({live.HELP_REQUESTS}) as events:
        # when only its bookkeeping changes (updated_at), then its urgency, each in a transaction of its own
        touch = "UPDATE help_requests SET updated_at = updated_at + interval '1 second' WHERE id = :i"
        for statement in (touch, "UPDATE help_requests SET urgency = 'critical' WHERE id = :i"):
            async with create_sessionmaker(engine)() as session, session.begin():
                await ServiceContext(session=session, viewer=admin).session.execute(text(statement), {"i": made})
        # then the first event is the urgency's (a column subscribers see): the touch announced nothing
        event = await events.next(WAIT)
    assert event is not None
    assert (event.id, event.op, dict(event.was)) == (made, "update", {"urgency": "high"})


def test_publish_refuses_core_topics_rows_and_oversized_payloads() -> None:
    for topic in ("help_requests", "Supplies.stock", "supplies"):
        with pytest.raises(ValueError, match="live topic"):
            live.events.plugin_topic(topic)
    with pytest.raises(ValueError, match="IDs and short codes"):
        encode("supplies.stock", 1, 2, {"row": {"name": "x"}})
    with pytest.raises(ValueError, match="send IDs"):
        encode("supplies.stock", 1, 2, {"note": "x" * 2000})
    assert decode(encode("supplies.stock", 1, 2, {"warehouse_id": 3})) == live.Event(
        topic="supplies.stock", id=1, organization_id=2, op="publish", keys={"warehouse_id": 3}
    )


async def test_subscribe_answers_unavailable_when_nothing_can_be_listened_to() -> None:
    async def refuse() -> Any:
        raise OSError("connection refused")

    broker = Broker(connect=refuse, ready_timeout=0.3, retry_initial=0.05)
    try:
        with pytest.raises(live.LiveUnavailable):
            await broker.subscribe({live.HELP_REQUESTS})
    finally:
        await broker.close()
