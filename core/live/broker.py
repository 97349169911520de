"""One LISTEN connection per process, fanned out to in-process subscribers by topic.

Why a dedicated asyncpg connection and not one from the pool: LISTEN belongs to a session and lasts as long
as it does. A pooled connection goes back to the pool (and, behind PgBouncer in transaction mode, to
whichever client comes next), so its LISTEN would be lost or leak to others. This connection is opened
lazily by the first subscriber, may go to another URL than the pool (YUNSHEGONG_LISTEN_DATABASE_URL: the
server itself when the pool goes through PgBouncer) and is reopened with backoff when it is lost; every
subscriber is then told to resync, since announcements made meanwhile were not received.

Fan-out never blocks the connection's reader: each subscriber has a bounded queue, and one that falls behind
loses its backlog for a single "resync" event (it reloads what it shows), so a slow subscriber neither
delays the others nor grows memory without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from sqlalchemy.engine import URL

from core.live.events import CHANNEL, RESYNC_EVENT, Event, decode

log = logging.getLogger("yunshegong.live")

Accept = Callable[[Event], bool]
Connect = Callable[[], Awaitable[Any]]

_CLOSED = Event(topic="\x00closed")


class LiveUnavailable(Exception):
    """The LISTEN connection could not be opened in time: live updates are not available for now."""


class Subscription:
    """Events of some topics, in the order PostgreSQL delivered them, as an async iterator. Use it with
    `async with` (or call `close()`): an open subscription counts towards the process's subscribers.

    `accept` runs in the broker's reader for each event of the topics (cheap checks on the routing keys
    only, no I/O): events it refuses are never queued. A subscriber that lets `queue_size` events pile up
    gets one RESYNC event in place of them."""

    def __init__(self, broker: Broker, topics: frozenset[str], accept: Accept | None, queue_size: int) -> None:
        self.broker = broker
        self.topics = topics
        self.accept = accept
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=queue_size)
        self.dropped = 0
        self.closed = False

    def offer(self, event: Event) -> None:
        """Called by the broker (on its loop, never awaiting)."""
        if self.closed:
            return
        if self.accept is not None and not event.resync:
            try:
                if not self.accept(event):
                    return
            except Exception:  # a faulty filter must not cost the subscriber its events
                log.exception("live subscriber filter failed on %s: delivering the event", event.topic)
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            # Behind by a whole queue: what it holds is dropped for one RESYNC (the reader never waits).
            self.dropped += self._queue.qsize()
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(RESYNC_EVENT)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        if self.closed and self._queue.empty():
            raise StopAsyncIteration
        event = await self._queue.get()
        if event is _CLOSED:
            raise StopAsyncIteration
        return event

    async def next(self, seconds: float | None = None) -> Event | None:
        """The next event, or None after `seconds` (or once closed)."""
        try:
            return await asyncio.wait_for(self.__anext__(), seconds)
        except (TimeoutError, StopAsyncIteration):
            return None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.broker._remove(self)
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(_CLOSED)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class Broker:
    """The process's listener. `subscribe()` starts it (once) and waits until LISTEN is in place, so an
    announcement committed after `subscribe()` returned is delivered."""

    def __init__(
        self,
        url: str | URL | None = None,
        *,
        connect: Connect | None = None,
        queue_size: int = 100,
        ready_timeout: float = 10.0,
        probe_interval: float = 15.0,
        retry_initial: float = 0.1,
        retry_max: float = 5.0,
    ) -> None:
        if connect is None:
            if url is None:
                raise ValueError("Broker needs a database URL or a connect function")
            connect = _asyncpg_connect(url)
        self.url = url
        self._connect = connect
        self.queue_size = queue_size
        self.ready_timeout = ready_timeout
        self.probe_interval = probe_interval
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self._subscribers: dict[str, set[Subscription]] = {}
        self._counted = 0
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._connection: Any = None
        self._lost: asyncio.Event | None = None
        self.loop = asyncio.get_running_loop()
        # How often the connection was (re)opened: 1 after the first, more after losses (tests, metrics).
        self.connects = 0
        self.received = 0

    # -- subscribers ----------------------------------------------------------------------------------------------

    async def subscribe(
        self, topics: Iterable[str], *, accept: Accept | None = None, counted: bool = True
    ) -> Subscription:
        """A subscription to `topics`, once the LISTEN connection is up (LiveUnavailable after ready_timeout).
        `counted=False`: bookkeeping of the transport (it does not count as a subscriber)."""
        wanted = frozenset(topics)
        if not wanted:
            raise ValueError("subscribe to at least one topic")
        self._start()
        try:
            await asyncio.wait_for(self._ready.wait(), self.ready_timeout)
        except TimeoutError:
            raise LiveUnavailable("the live-update connection to the database is not available") from None
        subscription = Subscription(self, wanted, accept, self.queue_size)
        subscription.counted = counted  # type: ignore[attr-defined]
        for topic in wanted:
            self._subscribers.setdefault(topic, set()).add(subscription)
        self._counted += counted
        return subscription

    def _remove(self, subscription: Subscription) -> None:
        for topic in subscription.topics:
            held = self._subscribers.get(topic)
            if held is not None:
                held.discard(subscription)
                if not held:
                    del self._subscribers[topic]
        self._counted -= getattr(subscription, "counted", True)

    def subscriber_count(self) -> int:
        return self._counted

    def dispatch(self, event: Event) -> None:
        """Hand `event` to the subscribers of its topic (RESYNC: to every subscriber)."""
        if event.resync:
            targets = {s for held in self._subscribers.values() for s in held}
        else:
            targets = set(self._subscribers.get(event.topic, ()))
        for subscription in targets:
            subscription.offer(event)

    # -- the connection --------------------------------------------------------------------------------------------

    @property
    def listening(self) -> bool:
        return self._ready.is_set()

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="yunshegong-live-listener")

    async def _run(self) -> None:
        delay = self.retry_initial
        while True:
            try:
                await self._listen_once()
                delay = self.retry_initial  # it was up: the next loss starts the backoff afresh
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("live updates: cannot listen (%s: %s); retrying in %.1fs", type(exc).__name__, exc, delay)
            self._ready.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max)

    async def _listen_once(self) -> None:
        connection = await self._connect()
        self._connection = connection
        lost = self._lost = asyncio.Event()
        try:
            connection.add_termination_listener(lambda _conn: lost.set())
            await connection.add_listener(CHANNEL, self._on_notification)
            self.connects += 1
            if self.connects > 1:
                log.info("live updates: listening again; subscribers resync")
                # Announcements committed while nobody listened were not received.
                self.dispatch(RESYNC_EVENT)
            self._ready.set()
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self.probe_interval)
                if lost.is_set():
                    break
                # A connection cut without a FIN (a failover, a dropped NAT entry) shows only when used.
                await asyncio.wait_for(connection.fetchval("SELECT 1"), timeout=max(self.probe_interval, 1.0))
            log.warning("live updates: the LISTEN connection was lost; reconnecting")
        finally:
            self._ready.clear()
            self._connection = None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 2)
            if not connection.is_closed():
                connection.terminate()

    def _on_notification(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        self.received += 1
        event = decode(payload)
        if event is None:
            log.warning("live updates: ignoring a payload that is not ours on %s", CHANNEL)
            return
        self.dispatch(event)

    async def drop_connection(self) -> None:
        """Close the LISTEN connection as if it had been lost (tests, and failover drills)."""
        if self._connection is not None:
            self._connection.terminate()
            if self._lost is not None:
                self._lost.set()

    async def close(self) -> None:
        for held in list(self._subscribers.values()):
            for subscription in list(held):
                subscription.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None


def _asyncpg_connect(url: str | URL) -> Connect:
    import asyncpg

    from core.database import asyncpg_dsn

    dsn = asyncpg_dsn(url)

    async def connect() -> Any:
        return await asyncpg.connect(
            **dsn,
            timeout=10,
            # Marked, so operators can tell this session from the pool's in pg_stat_activity.
            server_settings={"application_name": "yunshegong-live"},
        )

    return connect
