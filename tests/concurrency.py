"""Race tests that race: every worker's connection is taken and warmed first, then all start together.

A concurrency test proves something only if its transactions really overlap at the critical check. Two
things defeat that silently: a pool smaller than the number of workers (workers queue for a connection
and run one after another), and cold connections (a fresh asyncpg connection's first statement costs
~40 ms against ~1 ms warm, so whoever got a warm one commits before the others reach the check). A
`Racer` removes both:

- it owns an engine whose pool holds every worker's connection (`pool_size >= workers`), opened and
  warmed once when the racer opens;
- each round, every worker opens its session, begins its transaction and runs a real statement in it
  (`SELECT 1`: the connection is checked out, the transaction begun, the viewer's organisation applied),
  then waits at an `asyncio.Barrier`; only when all are there does any of them run its work;
- each worker runs `work(ctx, i)` in its own transaction (committed if the work returns, rolled back if
  it raises) and the round answers the outcomes in worker order: the work's return value, or the code of
  the `DomainError` it raised. Any other exception fails the round (and cancels the other workers).

A round is one chance to lose the race; a planted race is caught with high but not certain probability
per round, so a test runs several rounds on fresh data (see `tests/planted_races.py`, which plants each
race the suite guards and measures how often each test catches it: `make races`). To choose the number
of rounds for a new test, add its plant there and measure one round's odds p with
`python -m tests.planted_races --rounds 1 --only NAME`; n rounds then miss with probability (1 - p)^n.

Writing a race test (one function per round keeps each round's data out of the loop's closures)::

    from tests.concurrency import Racer, rounds

    async def test_capacity_holds(make: Factory, db_url: URL, clock: Clock) -> None:
        async def round_(racer: Racer) -> None:
            volunteer = await make.volunteer(max_concurrent_assignments=2)  # factories commit: workers
            requests = [await make.request(status=VERIFIED) for _ in range(12)]  # see committed data only

            async def offer(ctx: ServiceContext, i: int) -> str:
                await assignments.offer(ctx, requests[i].id, volunteer.id)
                return "ok"

            outcomes = await racer.race(offer, viewer=make.ctx.viewer)
            assert sorted(outcomes) == ["VOLUNTEER_AT_CAPACITY"] * 10 + ["ok"] * 2

        async with Racer.open(db_url, workers=12, clock=clock) as racer:
            for _ in range(rounds(3)):
                await round_(racer)

The viewer must belong to an organisation (the `make` fixture's viewer is a platform administrator of
the test's home organisation): under row-level security the default SYSTEM viewer sees nothing.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.database import create_engine, create_sessionmaker
from core.errors import DomainError
from core.services.context import ServiceContext, Viewer

Work = Callable[[ServiceContext, int], Awaitable[Any]]
# A round that does not finish in this time is stuck (a deadlock the database did not break, a worker
# that never reached the barrier): fail it rather than hang the suite.
ROUND_TIMEOUT = 60.0
# Overrides every race test's number of rounds (tests/planted_races.py --rounds measures one round's odds).
ROUNDS_ENV = "YSG_RACE_ROUNDS"


def rounds(default: int) -> int:
    """The number of rounds a race test runs: `default`, unless YSG_RACE_ROUNDS says otherwise."""
    return int(os.environ.get(ROUNDS_ENV) or default)


@dataclass
class Racer:
    """Races rounds of `workers` concurrent transactions on an engine of its own (see the module doc)."""

    engine: AsyncEngine
    workers: int
    clock: Callable[[], datetime] | None = None
    sessionmaker: async_sessionmaker[AsyncSession] = field(init=False)
    # Seconds between the first and the last worker leaving the barrier, per round (a diagnostic: it
    # should be a few milliseconds at most).
    spreads: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sessionmaker = create_sessionmaker(self.engine)

    @classmethod
    @asynccontextmanager
    async def open(
        cls, url: str | URL, *, workers: int, clock: Callable[[], datetime] | None = None
    ) -> AsyncIterator[Racer]:
        """A racer for up to `workers` workers per round, on an app-role engine to `url` (the `db_url`
        fixture) whose pool holds all of them; the engine is disposed on exit."""
        engine = create_engine(url, pool_size=workers)
        try:
            racer = cls(engine, workers, clock)
            await racer._open_connections()
            yield racer
        finally:
            await engine.dispose()

    async def _open_connections(self) -> None:
        """Open every worker's connection up front and run a statement on each: the pool then holds
        `workers` warm connections, and no round pays for a connection's setup."""
        held: list[Any] = []

        async def take() -> None:
            conn = await self.engine.connect()
            held.append(conn)
            await conn.execute(text("SELECT 1"))

        try:
            await asyncio.gather(*(take() for _ in range(self.workers)))
        finally:
            for conn in held:
                await conn.close()

    async def race(self, work: Work, *, viewer: Viewer, workers: int | None = None) -> list[Any]:
        """One round: `workers` (default: all) transactions, each acting for `viewer`, started together
        and each running `work(ctx, i)` for its index i. Answers the outcomes in worker order: the return
        value, or the `DomainError` code."""
        n = self.workers if workers is None else workers
        if not 1 <= n <= self.workers:
            raise ValueError(f"a racer opened for {self.workers} workers cannot race {n}")
        barrier = asyncio.Barrier(n)
        started: list[float] = []

        async def worker(i: int) -> Any:
            async with self.sessionmaker() as session:
                ctx = (
                    ServiceContext(session, viewer)
                    if self.clock is None
                    else ServiceContext(session, viewer, clock=self.clock)
                )
                try:
                    async with session.begin():
                        # Warm-up inside the transaction the work will use: checked out, begun, viewer bound.
                        await session.execute(text("SELECT 1"))
                        await barrier.wait()
                        started.append(time.perf_counter())
                        return await work(ctx, i)
                except DomainError as exc:
                    return exc.code

        async with asyncio.timeout(ROUND_TIMEOUT):
            try:
                async with asyncio.TaskGroup() as group:
                    tasks = [group.create_task(worker(i)) for i in range(n)]
            except BaseExceptionGroup as group_error:
                # One failing worker cancels the rest; report the failure, not the cancellations.
                first = next(
                    (e for e in group_error.exceptions if not isinstance(e, asyncio.CancelledError)),
                    group_error.exceptions[0],
                )
                raise first from group_error
        self.spreads.append(max(started) - min(started))
        return [task.result() for task in tasks]
