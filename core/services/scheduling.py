"""The shared calendar of staff members (counselors, social workers), used by every plugin that books time.

- An appointment occupies [start, end) plus the buffer after it; PostgreSQL's exclusion constraint
  (btree_gist, tstzrange) refuses an overlapping active appointment of the same person, so two plugins, or
  twenty concurrent bookings, can never double-book anyone. A violation is SLOT_TAKEN.
- Availability: weekly windows in the person's local time zone, minus exceptions (leave, holidays).
- Free-slot search for one or several people honours windows, exceptions, buffers and appointments.
Times are UTC in the database; the API presents them in the caller's zone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.exc import IntegrityError

from core.errors import DomainError, Validator
from core.i18n import _
from core.models import Appointment, AvailabilityException, AvailabilityWindow, Volunteer
from core.services import access
from core.services.common import constraint_name, get
from core.services.context import ServiceContext
from core.services.search import DEFAULT_MAX_RANGE_DAYS, check_range

MAX_APPOINTMENT = timedelta(hours=8)
MIN_APPOINTMENT = timedelta(minutes=5)
DEFAULT_BUFFER = timedelta(minutes=10)


@dataclass(frozen=True)
class Slot:
    owner_id: int
    start: datetime
    end: datetime


def _check_interval(v: Validator, start: datetime, end: datetime, now: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        v.add(("input", "start"), "INVALID_INPUT", "Times must carry a UTC offset.")
        return
    if end <= start:
        v.add(("input", "end"), "OUT_OF_RANGE", "An appointment ends after it starts.")
    elif end - start < MIN_APPOINTMENT:
        v.add(
            ("input", "end"),
            "OUT_OF_RANGE",
            "An appointment lasts at least {minutes} minutes.",
            minutes=MIN_APPOINTMENT // timedelta(minutes=1),
        )
    elif end - start > MAX_APPOINTMENT:
        v.add(
            ("input", "end"),
            "OUT_OF_RANGE",
            "An appointment lasts at most {minutes} minutes.",
            minutes=MAX_APPOINTMENT // timedelta(minutes=1),
        )
    if start < now:
        v.add(("input", "start"), "IN_PAST", "This time lies in the past.")


async def _within_availability(ctx: ServiceContext, owner_id: int, start: datetime, end: datetime) -> bool:
    windows = (
        await ctx.session.scalars(select(AvailabilityWindow).where(AvailabilityWindow.owner_id == owner_id))
    ).all()
    covered = False
    for w in windows:
        zone = ZoneInfo(w.timezone)
        local_start = start.astimezone(zone)
        if local_start.weekday() != w.weekday:
            continue
        day = local_start.date()
        if datetime.combine(day, w.start_time, zone) <= start and end <= datetime.combine(day, w.end_time, zone):
            covered = True
            break
    if not covered:
        return False
    clash = await ctx.session.scalar(
        select(AvailabilityException.id).where(
            AvailabilityException.owner_id == owner_id,
            AvailabilityException.during.overlaps(Range(start, end)),
        )
    )
    return clash is None


async def book(
    ctx: ServiceContext,
    owner_id: int,
    kind: str,
    start: datetime,
    end: datetime,
    *,
    record_id: int | None = None,
    buffer: timedelta = DEFAULT_BUFFER,
) -> Appointment:
    """Book [start, end) for `owner_id`, or SLOT_TAKEN / OUTSIDE_AVAILABILITY / a validation error."""
    v = Validator()
    _check_interval(v, start, end, ctx.now())
    v.raise_if_any()
    # The person's row lock serialises bookings of one person: without it, concurrent bookers that
    # overlap wait on each other's exclusion-constraint checks and can deadlock instead of SLOT_TAKEN.
    await get(ctx, Volunteer, owner_id, what=_("Staff member"), field=("input", "ownerId"), lock=True)
    if not await _within_availability(ctx, owner_id, start, end):
        raise DomainError("OUTSIDE_AVAILABILITY", "This person is not available then.", ("input", "start"))
    appointment = Appointment(
        owner_id=owner_id, kind=kind, record_id=record_id, during=Range(start, end), blocked=Range(start, end + buffer)
    )
    await _write_or_taken(ctx, lambda: ctx.session.add(appointment))
    return appointment


async def _write_or_taken(ctx: ServiceContext, change: Callable[[], None]) -> None:
    """Apply `change` in a savepoint, so that a refused booking leaves the caller's transaction usable
    (a plugin may try the next slot); the exclusion constraint's refusal becomes SLOT_TAKEN."""
    try:
        async with ctx.session.begin_nested():
            change()
            await ctx.session.flush()
    except IntegrityError as exc:
        if constraint_name(exc) == "ex_appointments_no_overlap":
            raise DomainError("SLOT_TAKEN", "This person is already booked then.", ("input", "start")) from exc
        raise


async def reschedule(
    ctx: ServiceContext, appointment_id: int, start: datetime, end: datetime, buffer: timedelta = DEFAULT_BUFFER
) -> Appointment:
    # Person first, then appointment: the lock order of every booking (see `book`).
    owner_id = (await get(ctx, Appointment, appointment_id, what=_("Appointment"))).owner_id
    await get(ctx, Volunteer, owner_id, what=_("Staff member"), lock=True)
    appointment = await get(ctx, Appointment, appointment_id, what=_("Appointment"), lock=True)
    if appointment.status != "active":
        raise DomainError("INVALID_TRANSITION", "A cancelled appointment cannot be rescheduled.", ("input", "id"))
    v = Validator()
    _check_interval(v, start, end, ctx.now())
    v.raise_if_any()
    if not await _within_availability(ctx, appointment.owner_id, start, end):
        raise DomainError("OUTSIDE_AVAILABILITY", "This person is not available then.", ("input", "start"))

    def move() -> None:
        appointment.during = Range(start, end)
        appointment.blocked = Range(start, end + buffer)

    await _write_or_taken(ctx, move)
    return appointment


async def cancel(ctx: ServiceContext, appointment_id: int, reason: str) -> Appointment:
    """Frees the slot at once (the constraint only counts active appointments)."""
    appointment = await get(ctx, Appointment, appointment_id, what=_("Appointment"), lock=True)
    if appointment.status != "active":
        raise DomainError("INVALID_TRANSITION", "This appointment is cancelled already.", ("input", "id"))
    appointment.status = "cancelled"
    appointment.cancel_reason = reason.strip()
    await ctx.session.flush()
    return appointment


async def _require_calendar_keeper(ctx: ServiceContext, owner_id: int) -> None:
    """People keep their own hours; administrators keep everyone's (in their organisation)."""
    access.require_signed_in(ctx)
    if ctx.viewer.volunteer_id is not None and ctx.viewer.volunteer_id == owner_id:
        return
    owner = await get(ctx, Volunteer, owner_id, what=_("Staff member"), field=("input", "volunteerId"))
    access.require_manage(ctx, "volunteers.manage", owner.organization_id, _("calendars"))


async def add_window(
    ctx: ServiceContext, owner_id: int, weekday: int, start: time, end: time, timezone: str = "Asia/Shanghai"
) -> AvailabilityWindow:
    await _require_calendar_keeper(ctx, owner_id)
    v = Validator()
    v.check(0 <= weekday <= 6, ("input", "weekday"), "OUT_OF_RANGE", "Weekday is 0 (Monday) to 6 (Sunday).")
    v.check(end > start, ("input", "end"), "OUT_OF_RANGE", "A window ends after it starts.")
    try:
        ZoneInfo(timezone)
    except (KeyError, ValueError):
        v.add(("input", "timezone"), "INVALID_INPUT", "Unknown time zone {zone}.", zone=repr(timezone))
    v.raise_if_any()
    window = AvailabilityWindow(owner_id=owner_id, weekday=weekday, start_time=start, end_time=end, timezone=timezone)
    ctx.session.add(window)
    await ctx.session.flush()
    return window


async def add_exception(
    ctx: ServiceContext,
    owner_id: int,
    start: datetime,
    end: datetime,
    reason: str = "",
    *,
    max_days: int = DEFAULT_MAX_RANGE_DAYS,
) -> AvailabilityException:
    await _require_calendar_keeper(ctx, owner_id)
    # An absence longer than any search spans is a missing end date, not a plan.
    v = Validator()
    check_range(v, start, end, max_days=max_days, end_field=("input", "end"))
    v.raise_if_any()
    exception = AvailabilityException(owner_id=owner_id, during=Range(start, end), reason=reason.strip())
    ctx.session.add(exception)
    await ctx.session.flush()
    return exception


async def free_slots(
    ctx: ServiceContext,
    owner_ids: Sequence[int],
    start: datetime,
    end: datetime,
    duration: timedelta,
    *,
    step: timedelta = timedelta(minutes=15),
    buffer: timedelta = DEFAULT_BUFFER,
    limit: int = 200,
    max_days: int = DEFAULT_MAX_RANGE_DAYS,
) -> list[Slot]:
    """Bookable slots of `duration` between `start` and `end`, earliest first, for any of `owner_ids`.
    The search walks every day of the range: an end before the start is OUT_OF_RANGE, a range over
    `max_days` (the deployment's max_range_days, or a feature's tighter cap) RANGE_TOO_LARGE."""
    v = Validator()
    check_range(v, start, end, max_days=max_days, allow_empty=True)
    v.raise_if_any()
    if not owner_ids:
        return []
    start = max(start, ctx.now())
    windows = (
        await ctx.session.scalars(select(AvailabilityWindow).where(AvailabilityWindow.owner_id.in_(list(owner_ids))))
    ).all()
    busy_rows = (
        await ctx.session.execute(
            select(Appointment.owner_id, func.lower(Appointment.blocked), func.upper(Appointment.blocked)).where(
                Appointment.owner_id.in_(list(owner_ids)),
                Appointment.status == "active",
                Appointment.blocked.overlaps(Range(start, end + buffer)),
            )
        )
    ).all()
    away_rows = (
        await ctx.session.execute(
            select(
                AvailabilityException.owner_id,
                func.lower(AvailabilityException.during),
                func.upper(AvailabilityException.during),
            ).where(
                AvailabilityException.owner_id.in_(list(owner_ids)),
                AvailabilityException.during.overlaps(Range(start, end)),
            )
        )
    ).all()
    busy: dict[int, list[tuple[datetime, datetime]]] = {}
    for owner, lo, hi in [*busy_rows, *away_rows]:
        busy.setdefault(owner, []).append((lo, hi))
    slots: list[Slot] = []
    for w in windows:
        zone = ZoneInfo(w.timezone)
        day: date = start.astimezone(zone).date()
        while datetime.combine(day, time(0), zone) < end:
            if day.weekday() == w.weekday:
                open_, close = datetime.combine(day, w.start_time, zone), datetime.combine(day, w.end_time, zone)
                candidate = _align(max(open_, start), step, open_)
                while candidate + duration <= min(close, end):
                    # The new appointment blocks its buffer too; it must not run into a later booking.
                    blocked = (candidate, candidate + duration + buffer)
                    if not any(lo < blocked[1] and blocked[0] < hi for lo, hi in busy.get(w.owner_id, [])):
                        slots.append(Slot(w.owner_id, candidate, candidate + duration))
                    candidate += step
            day += timedelta(days=1)
    slots.sort(key=lambda s: (s.start, s.owner_id))
    return slots[:limit]


def _align(moment: datetime, step: timedelta, origin: datetime) -> datetime:
    """The first step boundary (counted from the window's opening) at or after `moment`."""
    steps = -(-(moment - origin) // step)
    return origin + steps * step


async def book_earliest(
    ctx: ServiceContext,
    owner_ids: Sequence[int],
    kind: str,
    earliest: datetime,
    latest: datetime,
    duration: timedelta,
    *,
    record_id: int | None = None,
    buffer: timedelta = DEFAULT_BUFFER,
    max_days: int = DEFAULT_MAX_RANGE_DAYS,
) -> Appointment:
    """Book the earliest free slot of `duration` between `earliest` and `latest` with any of `owner_ids`
    (earliest first, then the lowest id), or SLOT_TAKEN when nobody is free.

    Every candidate's row is locked first, all at once in id order, and only then is the calendar searched:
    searching first and locking each person as their slot is tried makes two bookers that walk the people
    in different orders (different start times or candidates) hold one person each and wait for the other's,
    a deadlock. Under the locks the search is current, so the first slot found is bookable."""
    v = Validator()
    check_range(v, earliest, latest, max_days=max_days, end_field=("input", "start"))
    v.raise_if_any()
    people = sorted(set(owner_ids))
    if not people:
        raise DomainError("SLOT_TAKEN", "Nobody is free then.", ("input", "start"))
    locked = (
        await ctx.session.scalars(
            select(Volunteer.id).where(Volunteer.id.in_(people)).order_by(Volunteer.id).with_for_update()
        )
    ).all()
    for slot in await free_slots(ctx, locked, earliest, latest, duration, buffer=buffer, max_days=max_days):
        try:
            return await book(ctx, slot.owner_id, kind, slot.start, slot.end, record_id=record_id, buffer=buffer)
        except DomainError as refused:
            # Only a slot lost since the search (an exception added meanwhile) moves on to the next one.
            if refused.code not in {"SLOT_TAKEN", "OUTSIDE_AVAILABILITY"}:
                raise
    raise DomainError("SLOT_TAKEN", "Nobody is free then.", ("input", "start"))
