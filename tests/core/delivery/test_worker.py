"""The delivery worker: routing, claiming, retries with backoff, parking, and several workers at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import create_engine, create_sessionmaker
from core.delivery import DeliveryConfig, Message, Worker, backoff, build_worker, depth
from core.delivery.channels import LogChannel
from core.settings import Settings
from tests.concurrency import rounds
from tests.core.delivery.support import Recording, queue, rows
from tests.factories import Factory

# Bounds a failure only (a loaded 2-core machine): a pass never waits for it.
WAIT = 30.0


def _worker(engine: AsyncEngine, channels: list, clock, **config) -> Worker:  # type: ignore[no-untyped-def]
    return Worker(create_sessionmaker(engine), channels, config=DeliveryConfig(**config), clock=clock)


async def test_every_message_goes_to_every_channel_that_takes_it_once(
    make: Factory, engine: AsyncEngine, owner_engine: AsyncEngine, clock
) -> None:  # type: ignore[no-untyped-def]
    # given three queued messages and two channels that take everything
    ids = await queue(make.ctx, 3)
    rec = Recording()
    worker = _worker(engine, [LogChannel(), rec], clock)
    # when the worker runs a round, and another
    first = await worker.run_once()
    again = await worker.run_once()
    # then each message went to the recording channel once, with its recipient and payload
    assert (first.routed, first.sent, again.routed, again.sent) == (3, 6, 0, 0)
    assert rec.counts() == dict.fromkeys(ids, 1)
    assert {m.recipient.phone for m in rec.sent} == {"13700000000", "13700000001", "13700000002"}
    assert all(m.delivery_id and m.attempt == 1 for m in rec.sent)
    # and every delivery is sent, every message delivered
    assert await rows(owner_engine, "SELECT channel, status, attempts FROM deliveries ORDER BY id") == [
        (c, "sent", 1) for _ in ids for c in ("log", "rec")
    ]
    assert await rows(owner_engine, "SELECT count(*) FROM notifications WHERE delivered_at IS NULL") == [(0,)]


async def test_a_failing_channel_is_retried_with_backoff_then_parked_with_the_reason(
    make: Factory, engine: AsyncEngine, owner_engine: AsyncEngine, clock
) -> None:  # type: ignore[no-untyped-def]
    # given a message and a channel that times out every time, three attempts allowed, 10 s base delay
    await queue(make.ctx, 1)
    rec = Recording(fail=["temporary"] * 10)
    worker = _worker(engine, [rec], clock, max_attempts=3, base_delay=10.0)
    start = clock.now
    # when the worker runs: the first attempt fails
    assert (await worker.run_once()).retried == 1
    (due, attempts, status, error) = (
        await rows(owner_engine, "SELECT next_attempt_at, attempts, status, last_error FROM deliveries")
    )[0]
    # then it is queued again 5-10 s later (half the step plus jitter), with the reason
    assert (attempts, status, error) == (1, "queued", "gateway timed out")
    assert start + timedelta(seconds=5) <= due <= start + timedelta(seconds=10)  # type: ignore[operator]
    # and nothing is tried before it is due
    assert (await worker.run_once()).retried == 0
    assert rec.tried == 1
    # when the clock passes the delay: the second attempt fails, the wait doubles (10-20 s)
    clock.now = due  # type: ignore[assignment]
    assert (await worker.run_once()).retried == 1
    (due2,) = (await rows(owner_engine, "SELECT next_attempt_at FROM deliveries"))[0]
    assert due + timedelta(seconds=10) <= due2 <= due + timedelta(seconds=20)  # type: ignore[operator]
    # and the third (last) attempt parks it with the reason; the message counts as delivered (given up)
    clock.now = due2  # type: ignore[assignment]
    assert (await worker.run_once()).parked == 1
    assert await rows(owner_engine, "SELECT status, attempts, last_error FROM deliveries") == [
        ("parked", 3, "gateway timed out")
    ]
    assert await rows(owner_engine, "SELECT count(*) FROM notifications WHERE delivered_at IS NULL") == [(0,)]
    clock.now = due2 + timedelta(days=1)  # type: ignore[operator]
    assert (await worker.run_once()).retried == 0
    assert (rec.tried, rec.sent) == (3, [])


async def test_a_permanent_failure_parks_at_once(make: Factory, engine: AsyncEngine, owner_engine, clock) -> None:  # type: ignore[no-untyped-def]
    await queue(make.ctx, 1)
    rec = Recording(fail=["permanent"])
    done = await _worker(engine, [rec], clock, max_attempts=5).run_once()
    assert (done.parked, done.retried) == (1, 0)
    assert await rows(owner_engine, "SELECT status, attempts, last_error FROM deliveries") == [
        ("parked", 1, "gateway refused the number")
    ]


async def test_a_message_stays_undelivered_until_its_last_channel_is_done(
    make: Factory, engine: AsyncEngine, owner_engine: AsyncEngine, clock
) -> None:  # type: ignore[no-untyped-def]
    # given a message on two channels, one of which fails once
    await queue(make.ctx, 1)
    flaky = Recording(name="flaky", fail=["temporary"])
    worker = _worker(engine, [Recording(), flaky], clock, base_delay=1.0)
    await worker.run_once()
    # then it is not delivered while one delivery is still queued
    assert await rows(owner_engine, "SELECT count(*) FROM notifications WHERE delivered_at IS NULL") == [(1,)]
    clock.now += timedelta(seconds=2)
    await worker.run_once()
    assert await rows(owner_engine, "SELECT count(*) FROM notifications WHERE delivered_at IS NULL") == [(0,)]
    assert len(flaky.sent) == 1


async def test_a_worker_that_died_mid_send_leaves_the_delivery_to_be_retried_after_its_lease(
    make: Factory, engine: AsyncEngine, owner_engine: AsyncEngine, clock
) -> None:  # type: ignore[no-untyped-def]
    # given a claimed delivery whose worker never recorded an outcome (claim, then nothing)
    await queue(make.ctx, 1)
    rec = Recording()
    worker = _worker(engine, [rec], clock, send_timeout=10.0)
    await worker._route(make.ctx.viewer.organization_id)  # type: ignore[arg-type]
    assert await worker._claim(make.ctx.viewer.organization_id) is not None  # type: ignore[arg-type]
    # then no other worker takes it during the lease
    assert (await worker.run_once()).sent == 0
    # and one does once the lease (2 × send timeout + 30 s) is over: attempt 2
    clock.now += timedelta(seconds=51)
    assert (await worker.run_once()).sent == 1
    assert [m.attempt for m in rec.sent] == [2]


def test_backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() -> None:
    config = DeliveryConfig(base_delay=5.0, max_delay=60.0)
    rng = random.Random(7)
    for attempt, step in ((1, 5), (2, 10), (3, 20), (4, 40), (5, 60), (12, 60)):
        waits = [backoff(attempt, config, rng).total_seconds() for _ in range(200)]
        assert step / 2 <= min(waits)
        assert max(waits) <= step
        assert max(waits) - min(waits) > step / 4  # jittered, not constant


async def _drain(worker: Worker) -> None:
    idle = 0
    while idle < 2:
        done = await worker.run_once()
        idle = idle + 1 if not (done.routed or done.sent or done.retried) else 0


async def test_two_concurrent_workers_send_every_message_exactly_once(
    make: Factory, db_url: URL, owner_engine: AsyncEngine, clock
) -> None:  # type: ignore[no-untyped-def]
    async def round_() -> None:
        # given N messages, and two workers on engines of their own (two processes' pools), warmed
        ids = await queue(make.ctx, 60)
        rec = Recording(pause=0.002)  # one channel object: it sees both workers' sends
        engines = [create_engine(db_url, pool_size=12) for _ in range(2)]
        try:
            for e in engines:
                async with e.connect() as conn:
                    await conn.exec_driver_sql("SELECT 1")
            workers = [_worker(e, [rec], clock, batch_size=5, concurrency=4) for e in engines]
            # when both drain the outbox at the same time
            await asyncio.wait_for(asyncio.gather(*(_drain(w) for w in workers)), 120)
        finally:
            for e in engines:
                await e.dispose()
        # then every message was sent exactly once, and none is left
        counts = rec.counts()
        assert [i for i, n in counts.items() if n > 1] == []
        assert sorted(counts) == ids
        assert await rows(owner_engine, "SELECT status, count(*) FROM deliveries GROUP BY 1") == [("sent", 60)]
        assert await rows(owner_engine, "SELECT count(*) FROM notifications WHERE delivered_at IS NULL") == [(0,)]
        async with owner_engine.begin() as conn:
            await conn.exec_driver_sql("DELETE FROM deliveries")
            await conn.exec_driver_sql("DELETE FROM notifications")

    for _ in range(rounds(2)):
        await round_()


async def test_depth_counts_every_organisation_without_showing_rows(make: Factory, engine: AsyncEngine, clock) -> None:  # type: ignore[no-untyped-def]
    # given messages in two organisations, one parked delivery and two not routed yet
    other = await make.organization_using("supplies")
    await queue(make.ctx, 1)
    await _worker(engine, [Recording(fail=["permanent"])], clock).run_once()
    await queue(make.in_org(other.id).ctx, 2, phone_prefix="1380000")
    # when a session that acts for nobody asks
    async with create_sessionmaker(engine)() as session:
        found = await depth(session)
    # then it gets the counts across organisations
    assert (found.unrouted, found.queued, found.parked) == (2, 0, 1)


class _Slow:
    """Each send takes 25 s of the test's clock (under the 30 s send timeout). The fourth send has worker
    `other` (another process, whose own sends are quick) run a round 100 s in."""

    name = "slow"

    def __init__(self, clock) -> None:  # type: ignore[no-untyped-def]
        self.clock = clock
        self.sent: list[int] = []
        self.other: Worker | None = None

    def accepts(self, message: Message) -> bool:
        return True

    async def send(self, message: Message) -> None:
        self.clock.now += timedelta(seconds=25)
        self.sent.append(message.notification_id)
        if len(self.sent) == 4 and self.other is not None:
            other, self.other = self.other, None
            await other.run_once()


async def test_sends_waiting_for_a_free_slot_are_not_sent_again_by_another_worker(
    make: Factory, engine: AsyncEngine, owner_engine: AsyncEngine, clock
) -> None:  # type: ignore[no-untyped-def]
    # given 20 messages, worker A whose sends take 25 s each, one at a time, with a 30 s send timeout (so a
    # 90 s lease), and worker B on the same channel whose sends are quick
    ids = await queue(make.ctx, 20)
    slow, quick = _Slow(clock), Recording(name="slow")
    config = {"batch_size": 20, "concurrency": 1, "send_timeout": 30.0}
    a, b = _worker(engine, [slow], clock, **config), _worker(engine, [quick], clock, **config)
    slow.other = b
    # when A works through them and B runs a round 100 s in (during A's fourth send)
    await _drain(a)
    # then every message was sent once: none that A had not reached yet was sent by both
    assert sorted(slow.sent + [m.notification_id for m in quick.sent]) == ids
    assert quick.sent  # B did take the ones A had not claimed
    assert await rows(owner_engine, "SELECT status, count(*) FROM deliveries GROUP BY 1") == [("sent", 20)]


@dataclass
class _Gated(Recording):
    """Sends of organisation `slow` wait until the test opens the gate (an endpoint that hangs); every send
    that starts is reported, the others' arrive on `arrived`."""

    slow: int = 0
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Queue[int] = field(default_factory=asyncio.Queue)
    arrived: asyncio.Queue[int] = field(default_factory=asyncio.Queue)
    waiting: int = 0

    async def send(self, message: Message) -> None:
        self.started.put_nowait(message.organization_id)
        if message.organization_id == self.slow:
            self.waiting += 1
            await self.gate.wait()
        await super().send(message)
        self.arrived.put_nowait(message.notification_id)


async def test_an_organisation_whose_sends_hang_does_not_hold_up_another(
    make: Factory, engine: AsyncEngine, owner_engine: AsyncEngine
) -> None:
    # given organisation S whose six messages hang at its endpoint, and a worker with four sends in flight
    slow = make.ctx.viewer.organization_id
    await queue(make.ctx, 6)
    channel = _Gated(slow=slow)  # type: ignore[arg-type]
    worker = Worker(
        create_sessionmaker(engine),
        [channel],
        config=DeliveryConfig(concurrency=4, send_timeout=600, poll_interval=0.05),
    )
    running = asyncio.create_task(worker.run_forever())
    try:
        assert await asyncio.wait_for(channel.started.get(), WAIT) == slow
        # when organisation F queues a message while S's sends hang
        other = await make.organization_using("supplies")
        fast = max(await queue(make.in_org(other.id).ctx, 1, phone_prefix="1380000"))
        # then F's message is delivered meanwhile, and S holds at most half of the slots
        assert await asyncio.wait_for(channel.arrived.get(), WAIT) == fast
        assert channel.waiting <= 2
        # and S's messages go once the endpoint answers
        channel.gate.set()
        for _ in range(6):
            await asyncio.wait_for(channel.arrived.get(), WAIT)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    assert len(channel.sent) == 7


class _Leaky:
    """A plugin channel whose gateway library puts the request URL (a phone number, an API key) in its error."""

    name = "leaky"

    def accepts(self, message: Message) -> bool:
        return True

    async def send(self, message: Message) -> None:
        raise RuntimeError(f"GET https://gw.example/send?to={message.recipient.phone}&apikey=SECRETKEY123 failed")


async def test_an_unexpected_channel_error_shows_administrators_only_its_type_and_logs_it_masked(
    make: Factory, engine: AsyncEngine, owner_engine: AsyncEngine, clock, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    await queue(make.ctx, 1)
    with caplog.at_level(logging.INFO, logger="yunshegong.delivery"):
        assert (await _worker(engine, [_Leaky()], clock).run_once()).retried == 1
    assert await rows(owner_engine, "SELECT last_error FROM deliveries") == [("RuntimeError",)]
    logged = "\n".join(r.getMessage() + (caplog.text or "") for r in caplog.records)
    assert "RuntimeError" in logged
    assert "13700000000" not in logged
    assert "SECRETKEY123" not in logged


async def test_a_worker_on_a_machine_whose_clock_is_wrong_acts_on_the_database_clock(
    make: Factory, engine: AsyncEngine, owner_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a machine whose clock runs a day ahead of the database's, and a worker built as `serve` builds it
    from core.services import context

    ahead = context.utc_now() + timedelta(days=1)
    monkeypatch.setattr(context, "utc_now", lambda: ahead)
    await queue(make.ctx, 1)
    worker = build_worker(create_sessionmaker(engine), Settings())
    # when it sends a message
    assert (await worker.run_once()).sent == 1
    await worker.close()
    # then the times it recorded are the database's
    assert await rows(owner_engine, "SELECT abs(extract(epoch FROM now() - sent_at)) < 600 FROM deliveries") == [
        (True,)
    ]
