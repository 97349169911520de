"""The outbox wake-up: a committed message starts a delivery round at once (migration 0014's trigger announces
it on the live channel, the worker listens), not at the next poll; a rolled-back one announces nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core import live
from core.database import create_sessionmaker
from core.delivery import DeliveryConfig, Message, Worker
from core.delivery.worker import OUTBOX_TOPIC
from core.services import outbox
from tests.core.delivery.support import Recording, queue
from tests.factories import Factory

# Bounds a failure only (a loaded 2-core machine); far below the poll interval, so a pass proves the wake-up.
WAIT = 30.0
HOUR = 3600.0


@dataclass
class Arrivals(Recording):
    """A recording channel that also hands each sent message's id to the test as it arrives."""

    arrived: asyncio.Queue[int] = field(default_factory=asyncio.Queue)

    async def send(self, message: Message) -> None:
        await super().send(message)
        self.arrived.put_nowait(message.notification_id)


@pytest.fixture
async def listening(db_url: Any) -> AsyncIterator[None]:
    """core.live configured for the test database, as the app factory does; closed after."""
    live.configure(db_url)
    try:
        yield
    finally:
        await live.shutdown()


async def _newest(make: Factory) -> int:
    return int((await make.ctx.session.execute(text("SELECT max(id) FROM notifications"))).scalar_one())


async def test_a_committed_message_is_delivered_at_once_and_a_rolled_back_one_wakes_nobody(
    make: Factory, engine: AsyncEngine, listening: None
) -> None:
    # given a worker that polls once an hour, which has delivered what was queued before it started (so it
    # listens and waits for its next round)
    (first,) = await queue(make.ctx, 1)
    channel = Arrivals()
    worker = Worker(create_sessionmaker(engine), [channel], config=DeliveryConfig(poll_interval=HOUR))
    running = asyncio.create_task(worker.run_forever())
    try:
        assert await asyncio.wait_for(channel.arrived.get(), WAIT) == first
        async with await live.subscribe({OUTBOX_TOPIC}) as announced:
            # when a message is queued in a transaction that rolls back
            await outbox.notify(make.ctx, "test.ping", outbox.Recipient.person("撤回", "13700009998"))
            rolled_back = await _newest(make)
            await make.ctx.session.rollback()
            # and another is queued and committed
            await outbox.notify(make.ctx, "test.ping", outbox.Recipient.person("提交", "13700009999"))
            committed = await _newest(make)
            await make.ctx.session.commit()
            # then the committed one is delivered long before the next poll
            assert await asyncio.wait_for(channel.arrived.get(), WAIT) == committed
            # and the rolled-back one was never announced (the first announcement is the committed one's,
            # carrying its id and organisation only) nor sent
            event = await announced.next(WAIT)
            assert event is not None
            assert (event.id, event.organization_id, dict(event.keys)) == (
                committed,
                make.ctx.viewer.organization_id,
                {},
            )
            assert rolled_back not in channel.counts()
            assert channel.counts() == {first: 1, committed: 1}
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
