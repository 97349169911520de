"""The delivery worker: routes outbox messages to channels, claims due deliveries, sends, records.

The worker asks the database which organisations have work (`delivery_due_organizations`, numbers only) and
works for each at once, in transactions acting for that organisation (row-level security keeps each to its
own rows). For one organisation:

1. **route**: undelivered notifications without deliveries, locked `FOR NO KEY UPDATE SKIP LOCKED` in small
   batches, get one `deliveries` row per channel that `accepts` them (a plugin's channels only where the
   organisation enabled the plugin); a message no channel takes is marked delivered;
2. **claim, then send at once**: when a send slot is free, one due queued delivery is claimed
   (`FOR UPDATE SKIP LOCKED`, `attempts + 1`, a lease: `next_attempt_at` moved past the send timeout) in one
   short transaction, and sent right after, outside any transaction. The lease therefore starts when the send
   starts: nothing claimed waits behind the concurrency limit while its lease runs out;
3. **record** each outcome in its own transaction, guarded by the claim (`attempts` unchanged, still queued):
   sent; or retried after an exponential backoff with jitter; or parked with the reason (a permanent failure,
   or the last allowed attempt). The notification is locked first, so the last of its deliveries to finish
   sees the others' outcomes and sets `delivered_at`.

Sends share `concurrency` slots across organisations; one organisation holds at most half of them (at least
one), so an organisation whose endpoint hangs leaves the others slots to send with, and `run_forever` starts
an organisation's next batch while another's is still in flight.

Times (leases, due checks, backoff, sent_at) are the database's `now()`, one clock for every machine, unless a
test gives the worker a clock of its own.

Several workers (processes, machines) never send one delivery at once: a claimed row is locked while it is
claimed and leased after. Delivery stays at least once across a crash (exactly once is impossible with a
remote receiver): the delivery id is the idempotency key receivers deduplicate by.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import re
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, and_, exists, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.delivery import messages
from core.delivery.channel import Channel, Message, PermanentFailure, TemporaryFailure
from core.live import Subscription
from core.models import Delivery, Notification
from core.services.context import SYSTEM, ServiceContext, utc_now
from core.services.plugins import enabled_for

log = logging.getLogger("yunshegong.delivery")

# The live topic migration 0014's trigger announces each new `notifications` row on (its id and organisation
# only): every worker wakes at once instead of at its next poll.
OUTBOX_TOPIC = "outbox"

MAX_ERROR_LENGTH = 1000


@dataclass(frozen=True)
class DeliveryConfig:
    """The worker's tuning (settings YUNSHEGONG_DELIVERY_*; see core.settings)."""

    batch_size: int = 20
    max_attempts: int = 8
    base_delay: float = 5.0
    max_delay: float = 3600.0
    poll_interval: float = 2.0
    send_timeout: float = 30.0
    concurrency: int = 4

    @property
    def lease(self) -> timedelta:
        # Longer than any send may take (the worker abandons a send at send_timeout), with room to record it.
        return timedelta(seconds=self.send_timeout * 2 + 30)

    @classmethod
    def from_settings(cls, settings: Any) -> DeliveryConfig:
        return cls(
            batch_size=settings.delivery_batch_size,
            max_attempts=settings.delivery_max_attempts,
            base_delay=settings.delivery_base_delay,
            max_delay=settings.delivery_max_delay,
            poll_interval=settings.delivery_poll_interval,
            send_timeout=settings.delivery_send_timeout,
            concurrency=settings.delivery_concurrency,
        )


def backoff(attempt: int, config: DeliveryConfig, rng: random.Random) -> timedelta:
    """Wait before attempt `attempt + 1`: base * 2^(attempt-1), capped at max_delay, of which the upper half
    is random ("equal jitter": never sooner than half the step, and workers that failed together spread)."""
    step = min(config.max_delay, config.base_delay * 2 ** max(attempt - 1, 0))
    return timedelta(seconds=step / 2 + rng.uniform(0, step / 2))


@dataclass
class Round:
    """What one round did (counts)."""

    routed: int = 0
    sent: int = 0
    retried: int = 0
    parked: int = 0
    # Outcomes not recorded because the claim was lost (the lease ended and another worker claimed the row).
    lost: int = 0
    # A batch came back full: there is probably more to do right away.
    busy: bool = False

    def add(self, other: Round) -> None:
        self.routed += other.routed
        self.sent += other.sent
        self.retried += other.retried
        self.parked += other.parked
        self.lost += other.lost
        self.busy = self.busy or other.busy


@dataclass(frozen=True)
class _Claim:
    delivery_id: int
    channel: str
    attempts: int
    message: Message


@dataclass
class Worker:
    """Delivers the outbox through `channels`. `plugin_of` names the plugin of each plugin channel (its
    channel is used only for organisations that enabled the plugin). `clock`: a test's clock; None (the
    default, and what `serve` and `worker` use) acts on the database's clock."""

    sessionmaker: async_sessionmaker[AsyncSession]
    channels: Sequence[Channel]
    config: DeliveryConfig = field(default_factory=DeliveryConfig)
    clock: Callable[[], datetime] | None = None
    plugin_of: dict[str, str] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)
    _wake: asyncio.Event | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name = {c.name: c for c in self.channels}

    # -- the loop ----------------------------------------------------------------------------------------------

    def wake(self) -> None:
        """Start the next round now instead of at the next poll: called for each announcement of a new outbox
        row (migration 0014's trigger on `notifications`, through core.live's LISTEN connection)."""
        if self._wake is not None:
            self._wake.set()

    async def run_forever(self) -> None:
        self._wake = asyncio.Event()
        slots = _Slots(self.config.concurrency)
        # Each organisation's batch runs as a task of its own: one whose sends hang does not keep the next
        # batch of another from starting (they share the slots, the hanging one at most half of them).
        active: dict[int, asyncio.Task[Round]] = {}
        wakeups: asyncio.Task[None] | None = None
        try:
            # Listening starts before the first round: a message committed after that round began is announced.
            wakeups = asyncio.create_task(self._relay_wakeups(await self._subscribe_outbox()), name="delivery-wake")
            # Organisations whose last batch left nothing to do now: started again at the next poll or wake-up
            # (not each time another's batch ends).
            resting: dict[int, float] = {}
            # Organisations whose batch was running when a wake-up came: that batch may have claimed before the
            # new message committed, so when it ends the organisation is looked at again, not put to rest (else
            # the message would wait for the next poll: seen under load, an hour in the test).
            woken_while_active: set[int] = set()
            loop = asyncio.get_running_loop()
            while True:
                # Cleared before looking, not after the wait: a wake-up while looking is never lost.
                if self._wake.is_set():
                    resting.clear()
                    woken_while_active.update(active)
                self._wake.clear()
                try:
                    for organization_id in await self._due_organizations():
                        if organization_id in active or resting.get(organization_id, 0.0) > loop.time():
                            continue
                        active[organization_id] = asyncio.create_task(
                            self._organization(organization_id, slots), name=f"delivery-{organization_id}"
                        )
                except asyncio.CancelledError:
                    raise
                except Exception:  # the database gone, a bug: the next look must still come
                    log.exception("delivery round failed")
                # Until a wake-up (a new message), a batch ends, or the poll (retries falling due).
                waking = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait(
                        [waking, *active.values()], timeout=self.config.poll_interval, return_when="FIRST_COMPLETED"
                    )
                finally:
                    waking.cancel()
                for organization_id, task in list(active.items()):
                    if task.done():
                        del active[organization_id]
                        if not self._report(organization_id, task) and organization_id not in woken_while_active:
                            resting[organization_id] = loop.time() + self.config.poll_interval
                        else:
                            resting.pop(organization_id, None)
                        woken_while_active.discard(organization_id)
        finally:
            for task in [*active.values(), *([wakeups] if wakeups is not None else [])]:
                task.cancel()
            for task in [*active.values(), *([wakeups] if wakeups is not None else [])]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.close()

    @staticmethod
    def _report(organization_id: int, task: asyncio.Task[Round]) -> bool:
        """Log a finished batch; whether it was busy (more to do right away)."""
        if task.cancelled():
            return False
        failed = task.exception()
        if failed is not None:
            log.error("delivery for organisation %s failed", organization_id, exc_info=failed)
            return False
        done = task.result()
        if done.sent or done.retried or done.parked:
            log.info(
                "delivery for organisation %s: %d sent, %d to retry, %d parked",
                organization_id,
                done.sent,
                done.retried,
                done.parked,
            )
        return done.busy

    async def _subscribe_outbox(self, *, quiet: bool = False) -> Subscription | None:
        """The announcements of new outbox rows; None when live updates are not configured or the database
        cannot be listened to now (the worker then polls)."""
        from core import live

        try:
            # Not counted: /metrics' subscription count is the clients'.
            return await live.broker().subscribe({OUTBOX_TOPIC}, counted=False)
        except live.LiveUnavailable as exc:
            log.log(logging.DEBUG if quiet else logging.INFO, "delivery: no wake-up on new messages (%s); polling", exc)
            return None

    async def _relay_wakeups(self, subscription: Subscription | None) -> None:
        """Wake the worker for each announcement (a RESYNC too: some may have been missed). Subscribes again
        when the subscription ends (the process's listener was replaced) or could not be made."""
        delay = 1.0
        while True:
            if subscription is None:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
                subscription = await self._subscribe_outbox(quiet=True)
                if subscription is None:
                    continue
                self.wake()  # messages committed while nobody listened were not announced
            delay = 1.0
            async with subscription:
                async for _event in subscription:
                    self.wake()
            subscription = None

    async def close(self) -> None:
        for channel in self.channels:
            closing = getattr(channel, "aclose", None)
            if closing is not None:
                try:
                    await closing()
                except Exception:
                    log.exception("closing channel %s failed", channel.name)

    async def run_once(self) -> Round:
        """One batch for every organisation with work, all at once (sharing the send slots); returns when
        every send has been recorded."""
        organizations = await self._due_organizations()
        slots = _Slots(self.config.concurrency)
        results = await asyncio.gather(*(self._organization(o, slots) for o in organizations), return_exceptions=True)
        done = Round()
        for result in results:
            if isinstance(result, BaseException):
                raise result
            done.add(result)
        return done

    async def run_organization(self, organization_id: int) -> Round:
        """One batch for one organisation (with the send slots to itself)."""
        return await self._organization(organization_id, _Slots(self.config.concurrency))

    async def _due_organizations(self) -> list[int]:
        async with self.sessionmaker() as session:
            found = (await session.execute(select(func.delivery_due_organizations(self._now())))).scalar_one()
        return [int(o) for o in found]

    async def _organization(self, organization_id: int, slots: _Slots) -> Round:
        """Route one batch, then claim and send one delivery per free slot until `batch_size` were claimed or
        none is due."""
        done = Round()
        async with slots.hold(organization_id):  # the routing transaction counts against the slots too
            done.routed, routed_full = await self._route(organization_id)
        drained = asyncio.Event()
        sends: list[asyncio.Task[str | None]] = []

        async def claim_and_send() -> str | None:
            try:
                claim = await self._claim(organization_id)
                if claim is None:
                    drained.set()
                    return None
                return await self._deliver(organization_id, claim)
            finally:
                slots.release(organization_id)

        try:
            while not drained.is_set() and len(sends) < self.config.batch_size:
                await slots.acquire(organization_id)
                if drained.is_set():
                    slots.release(organization_id)
                    break
                sends.append(asyncio.create_task(claim_and_send()))
            outcomes = await asyncio.gather(*sends, return_exceptions=True)
        except BaseException:
            for task in sends:
                task.cancel()
            raise
        claimed = 0
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
            if outcome is not None:
                claimed += 1
                setattr(done, outcome, getattr(done, outcome) + 1)
        done.busy = routed_full or claimed >= self.config.batch_size
        return done

    # -- steps ---------------------------------------------------------------------------------------------------

    def _context(self, session: AsyncSession, organization_id: int) -> ServiceContext:
        viewer = replace(SYSTEM, organization_id=organization_id)
        return ServiceContext(session=session, viewer=viewer, clock=self.clock or utc_now)

    def _now(self, later: timedelta | None = None) -> Any:
        """Now (plus `later`) as SQL: the database's clock, so workers on machines whose clocks disagree
        agree on leases and due times; a test's clock when one was given."""
        if self.clock is not None:
            return literal(self.clock() + (later or timedelta()), DateTime(timezone=True))
        return func.now() + later if later else func.now()

    async def _channels_for(self, ctx: ServiceContext, organization_id: int) -> list[Channel]:
        if not self.plugin_of:
            return list(self.channels)
        enabled = await enabled_for(ctx, organization_id)
        return [c for c in self.channels if c.name not in self.plugin_of or self.plugin_of[c.name] in enabled]

    async def _route(self, organization_id: int) -> tuple[int, bool]:
        async with self.sessionmaker() as session, session.begin():
            ctx = self._context(session, organization_id)
            routed = (
                select(Notification)
                .where(
                    Notification.delivered_at.is_(None),
                    ~exists().where(Delivery.notification_id == Notification.id),
                )
                .order_by(Notification.id)
                .limit(self.config.batch_size)
                .with_for_update(skip_locked=True, key_share=True, of=Notification)
            )
            rows = list((await session.scalars(routed)).all())
            if not rows:
                return 0, False
            channels = await self._channels_for(ctx, organization_id)
            loaded = await messages.load(session, rows)
            now = self._now()
            values: list[dict[str, Any]] = []
            unrouted: list[int] = []
            for row, message in zip(rows, loaded, strict=True):
                taken = [c.name for c in channels if await _accepts(c, message)]
                values.extend(
                    {"notification_id": row.id, "channel": name, "kind": row.kind, "next_attempt_at": now}
                    for name in taken
                )
                if not taken:
                    unrouted.append(row.id)
            if values:
                await session.execute(
                    insert(Delivery)
                    .values(values)
                    .on_conflict_do_nothing(constraint="uq_deliveries_notification_id_channel")
                )
            if unrouted:
                await session.execute(
                    update(Notification).where(Notification.id.in_(unrouted)).values(delivered_at=now)
                )
            return len(rows), len(rows) >= self.config.batch_size

    async def _claim(self, organization_id: int) -> _Claim | None:
        """Claim the organisation's next due delivery: `attempts + 1` and a lease from now, the database's
        now, in one short transaction. Called with a send slot held, right before the send."""
        names = list(self._by_name)
        async with self.sessionmaker() as session, session.begin():
            self._context(session, organization_id)  # acts for the organisation (row-level security)
            due = (
                select(Delivery.id)
                .where(
                    Delivery.status == "queued", Delivery.next_attempt_at <= self._now(), Delivery.channel.in_(names)
                )
                .order_by(Delivery.next_attempt_at, Delivery.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            claimed = (
                await session.execute(
                    update(Delivery)
                    .where(Delivery.id == due.scalar_subquery(), Delivery.status == "queued")
                    .values(
                        attempts=Delivery.attempts + 1,
                        next_attempt_at=self._now(self.config.lease),
                        updated_at=self._now(),
                    )
                    .returning(Delivery.id, Delivery.notification_id, Delivery.channel, Delivery.attempts)
                    .execution_options(synchronize_session=False)
                )
            ).one_or_none()
            if claimed is None:
                return None
            notification = await session.get_one(Notification, claimed.notification_id)
            (message,) = await messages.load(session, [notification])
        return _Claim(
            claimed.id,
            claimed.channel,
            claimed.attempts,
            replace(message, delivery_id=claimed.id, attempt=claimed.attempts),
        )

    async def _deliver(self, organization_id: int, claim: _Claim) -> str:
        channel = self._by_name[claim.channel]
        error: str | None = None
        permanent = False
        try:
            async with asyncio.timeout(self.config.send_timeout):
                await channel.send(claim.message)
        except asyncio.CancelledError:
            raise
        except PermanentFailure as exc:
            error, permanent = str(exc) or type(exc).__name__, True
        except TemporaryFailure as exc:
            error = str(exc) or type(exc).__name__
        except TimeoutError:
            error = f"no answer within {self.config.send_timeout:g} s"
        except Exception as exc:
            # A channel's bug counts as a temporary failure. Its text may carry a gateway URL with a phone
            # number or an API key: administrators (lastError) see the exception's type only, the server log
            # the traceback with numbers and credentials masked.
            log.error("channel %s failed on delivery %s:\n%s", claim.channel, claim.delivery_id, masked_traceback(exc))
            error = type(exc).__name__
        return await self._record(organization_id, claim, error, permanent)

    async def _record(self, organization_id: int, claim: _Claim, error: str | None, permanent: bool) -> str:
        async with self.sessionmaker() as session, session.begin():
            self._context(session, organization_id)  # acts for the organisation (row-level security)
            now = self._now()
            notification_id = claim.message.notification_id
            # The notification first: the last of its deliveries to finish then sees the others' outcomes.
            await session.execute(
                select(Notification.id).where(Notification.id == notification_id).with_for_update(key_share=True)
            )
            if error is None:
                outcome, values = "sent", {"status": "sent", "sent_at": now, "last_error": ""}
            elif permanent or claim.attempts >= self.config.max_attempts:
                outcome, values = "parked", {"status": "parked", "last_error": error[:MAX_ERROR_LENGTH]}
            else:
                outcome = "retried"
                values = {
                    "last_error": error[:MAX_ERROR_LENGTH],
                    "next_attempt_at": self._now(backoff(claim.attempts, self.config, self.rng)),
                }
            recorded = await session.scalar(
                update(Delivery)
                .where(
                    Delivery.id == claim.delivery_id,
                    Delivery.status == "queued",
                    Delivery.attempts == claim.attempts,
                )
                .values(**values, updated_at=now)
                .returning(Delivery.id)
                .execution_options(synchronize_session=False)
            )
            if recorded is None:
                log.warning("delivery %s: claim lost before its outcome was recorded", claim.delivery_id)
                return "lost"
            if outcome != "retried":
                await session.execute(
                    update(Notification)
                    .where(
                        Notification.id == notification_id,
                        Notification.delivered_at.is_(None),
                        ~exists().where(and_(Delivery.notification_id == notification_id, Delivery.status == "queued")),
                    )
                    .values(delivered_at=now)
                    .execution_options(synchronize_session=False)
                )
        return outcome


async def _accepts(channel: Channel, message: Message) -> bool:
    try:
        answer = channel.accepts(message)
        if inspect.isawaitable(answer):
            answer = await answer
        return bool(answer)
    except asyncio.CancelledError:
        raise
    except Exception:  # a channel that cannot decide does not take the message; the others still do
        log.exception("channel %s failed to decide on message %s", channel.name, message.notification_id)
        return False


# Masked in logged channel errors: digit runs long enough to be a phone or an account number, a URL's query
# and user information, and `key=value` pairs whose name says secret.
_SECRETS = (
    (re.compile(r"(?i)\b(\w*(?:key|token|secret|password|passwd|pwd|auth|sig\w*))=([^\s&'\"]+)"), r"\1=****"),
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/\s@]+@"), r"\1****@"),
    (re.compile(r"\?[^\s'\"]+"), "?****"),
    (re.compile(r"\d{6,}"), "****"),
)


def mask_detail(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def masked_traceback(exc: BaseException) -> str:
    """The traceback of `exc` for the server log, every message in it masked (the frames are code, kept)."""
    return mask_detail("".join(traceback.format_exception(exc)))


class _Slots:
    """Sends (and routing transactions) in flight at once: `total` across organisations, at most half of them
    (at least one) for any one organisation, so one whose endpoint hangs leaves the others room."""

    def __init__(self, total: int) -> None:
        self.per_organization = max(1, (total + 1) // 2)
        self._all = asyncio.Semaphore(total)
        self._own: dict[int, asyncio.Semaphore] = {}

    async def acquire(self, organization_id: int) -> None:
        own = self._own.setdefault(organization_id, asyncio.Semaphore(self.per_organization))
        await own.acquire()
        try:
            await self._all.acquire()
        except BaseException:
            own.release()
            raise

    def release(self, organization_id: int) -> None:
        self._all.release()
        self._own[organization_id].release()

    @contextlib.asynccontextmanager
    async def hold(self, organization_id: int) -> Any:
        await self.acquire(organization_id)
        try:
            yield
        finally:
            self.release(organization_id)
