"""The shared calendar: the bounds and the values that mutation testing (`make mutation`) found unguarded:
interval limits, availability edges, who keeps a calendar, what a booking, a move and a cancellation
record, and the free-slot search's clipping, alignment, buffers and order."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from core import tenancy
from core.database import create_sessionmaker
from core.errors import DomainError
from core.models import Appointment, AvailabilityException, AvailabilityWindow
from core.services import scheduling
from core.services.context import ServiceContext, Viewer
from tests.factories import Factory

SHANGHAI = ZoneInfo("Asia/Shanghai")
LONDON = ZoneInfo("Europe/London")
MIN = timedelta(minutes=1)


def next_monday(clock) -> datetime:  # type: ignore[no-untyped-def]
    today = clock.now.astimezone(SHANGHAI).date()
    return datetime.combine(today + timedelta(days=(7 - today.weekday()) % 7 or 7), time(0), SHANGHAI)


def at(day: datetime, hh: int, mm: int = 0) -> datetime:
    return day.replace(hour=hh, minute=mm)


def errors(err: pytest.ExceptionInfo[DomainError]) -> list[tuple[str, tuple[str, ...] | None]]:
    return sorted((e.code, e.field) for e in err.value.errors)


@pytest.fixture
async def staff(make: Factory) -> int:
    """A staff member available 09:00–12:00 Shanghai every day."""
    person = await make.volunteer()
    for weekday in range(7):
        await scheduling.add_window(make.ctx, person.id, weekday, time(9), time(12))
    await make.commit()
    return person.id


@pytest.fixture
async def monday(clock) -> datetime:  # type: ignore[no-untyped-def]
    return next_monday(clock)


@pytest.fixture
async def as_viewer(engine: AsyncEngine, make: Factory) -> AsyncIterator[Callable[[Viewer], ServiceContext]]:
    """A service context for another viewer, on a session of its own (row-level security bound to it)."""
    sessions = []

    def open_(viewer: Viewer) -> ServiceContext:
        session = create_sessionmaker(engine)()
        sessions.append(session)
        tenancy.bind(session, viewer)
        return ServiceContext(session=session, viewer=viewer, clock=make.ctx.clock)

    yield open_
    for session in sessions:
        await session.close()


async def _appointment(make: Factory, appointment_id: int) -> Appointment:
    stmt = select(Appointment).where(Appointment.id == appointment_id).execution_options(populate_existing=True)
    return (await make.ctx.session.execute(stmt)).scalar_one()


async def _book(make: Factory, owner: int, start: datetime, end: datetime, **kw) -> Appointment:  # type: ignore[no-untyped-def]
    return await scheduling.book(make.ctx, owner, "counseling.session", start, end, **kw)


async def _refused(make: Factory, call) -> pytest.ExceptionInfo[DomainError]:  # type: ignore[no-untyped-def]
    with pytest.raises(DomainError) as err:
        await call
    await make.ctx.session.rollback()
    return err


# --- the interval ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("naive", ["start", "end", "both"])
async def test_times_without_an_offset_are_invalid_input_on_start_and_nothing_else(
    make: Factory, staff: int, monday: datetime, naive: str
) -> None:
    # given a start or an end without a UTC offset
    start, end = at(monday, 9), at(monday, 10)
    if naive in ("start", "both"):
        start = start.replace(tzinfo=None)
    if naive in ("end", "both"):
        end = end.replace(tzinfo=None)
    # when booked, then it is one INVALID_INPUT on start (no comparison with the clock is attempted)
    err = await _refused(make, _book(make, staff, start, end))
    assert errors(err) == [("INVALID_INPUT", ("input", "start"))]


@pytest.mark.parametrize(
    ("minutes", "ok"),
    [(4, False), (5, True), (8 * 60, True), (8 * 60 + 1, False)],
    ids=["4 min", "5 min", "8 h", "8 h 1 min"],
)
async def test_an_appointment_lasts_five_minutes_to_eight_hours(
    make: Factory, monday: datetime, minutes: int, ok: bool
) -> None:
    # given someone available 08:00–18:00
    person = (await make.volunteer()).id
    await scheduling.add_window(make.ctx, person, monday.weekday(), time(8), time(18))
    start = at(monday, 9)
    # when booking `minutes` from 09:00
    if ok:
        booked = await _book(make, person, start, start + timedelta(minutes=minutes))
        assert (booked.during.lower, booked.during.upper) == (start, start + timedelta(minutes=minutes))
    else:
        err = await _refused(make, _book(make, person, start, start + timedelta(minutes=minutes)))
        assert errors(err) == [("OUT_OF_RANGE", ("input", "end"))]


async def test_a_backwards_interval_in_the_past_reports_both_problems(make: Factory, staff: int, clock) -> None:  # type: ignore[no-untyped-def]
    past = clock.now - timedelta(days=1)
    err = await _refused(make, _book(make, staff, past, past - timedelta(hours=1)))
    assert errors(err) == [("IN_PAST", ("input", "start")), ("OUT_OF_RANGE", ("input", "end"))]


async def test_a_booking_may_start_exactly_now_but_not_a_second_earlier(
    make: Factory, staff: int, monday: datetime, clock
) -> None:  # type: ignore[no-untyped-def]
    clock.now = at(monday, 9)
    booked = await _book(make, staff, at(monday, 9), at(monday, 10))
    assert booked.during.lower == at(monday, 9)
    clock.now = at(monday, 10, 30) + timedelta(seconds=1)
    err = await _refused(make, _book(make, staff, at(monday, 10, 30), at(monday, 11)))
    assert errors(err) == [("IN_PAST", ("input", "start"))]


# --- availability ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "ok"),
    [((9, 0), (12, 0), True), ((8, 59), (9, 30), False), ((11, 30), (12, 1), False)],
    ids=["the whole window", "a minute early", "a minute late"],
)
async def test_a_booking_must_lie_within_a_window_edges_included(
    make: Factory, staff: int, monday: datetime, start: tuple[int, int], end: tuple[int, int], ok: bool
) -> None:
    s, e = at(monday, *start), at(monday, *end)
    if ok:
        assert (await _book(make, staff, s, e)).status == "active"
    else:
        err = await _refused(make, _book(make, staff, s, e))
        assert errors(err) == [("OUTSIDE_AVAILABILITY", ("input", "start"))]


async def test_only_the_windows_weekday_and_only_the_persons_own_windows_count(make: Factory, monday: datetime) -> None:
    # given someone available on Mondays only, and someone else available every day
    person = (await make.volunteer()).id
    other = (await make.volunteer()).id
    await scheduling.add_window(make.ctx, person, 0, time(9), time(12))
    for weekday in range(7):
        await scheduling.add_window(make.ctx, other, weekday, time(9), time(12))
    await make.commit()
    tuesday = monday + timedelta(days=1)
    # then Monday is bookable, Tuesday is not (the other person's windows do not count)
    assert (await _book(make, person, at(monday, 9), at(monday, 10))).owner_id == person
    err = await _refused(make, _book(make, person, at(tuesday, 9), at(tuesday, 10)))
    assert errors(err) == [("OUTSIDE_AVAILABILITY", ("input", "start"))]


async def test_a_window_is_read_in_its_own_time_zone(make: Factory, monday: datetime) -> None:
    # given someone available Mondays 09:00–12:00 London time
    person = (await make.volunteer()).id
    await scheduling.add_window(make.ctx, person, 0, time(9), time(12), "Europe/London")
    await make.commit()
    london_nine = datetime.combine(monday.date(), time(9), LONDON)
    # then 09:00 London is bookable and 09:00 Shanghai (01:00 or 02:00 London) is not
    assert (await _book(make, person, london_nine, london_nine + timedelta(hours=1))).owner_id == person
    err = await _refused(make, _book(make, person, at(monday, 9), at(monday, 10)))
    assert errors(err) == [("OUTSIDE_AVAILABILITY", ("input", "start"))]


async def test_an_absence_blocks_only_what_it_overlaps_and_only_its_person(
    make: Factory, staff: int, monday: datetime
) -> None:
    # given absences 09:00–09:30 and 10:30–11:00, and another person away all morning
    await scheduling.add_exception(make.ctx, staff, at(monday, 9), at(monday, 9, 30))
    await scheduling.add_exception(make.ctx, staff, at(monday, 10, 30), at(monday, 11))
    other = (await make.volunteer()).id
    await scheduling.add_exception(make.ctx, other, at(monday, 0), at(monday, 23))
    await make.commit()
    # then 09:30–10:30 (touching both absences) is bookable
    booked = await _book(make, staff, at(monday, 9, 30), at(monday, 10, 30), buffer=timedelta(0))
    assert booked.during.lower == at(monday, 9, 30)
    # and 09:29–… or …–10:31 are not
    for s, e in [(at(monday, 9, 29), at(monday, 9, 45)), (at(monday, 10, 15), at(monday, 10, 31))]:
        err = await _refused(make, _book(make, staff, s, e))
        assert errors(err) == [("OUTSIDE_AVAILABILITY", ("input", "start"))]


# --- booking --------------------------------------------------------------------------------------------


async def test_a_booking_records_owner_kind_record_time_and_buffer(make: Factory, staff: int, monday: datetime) -> None:
    # when booked with the default buffer and with a buffer of 30 minutes
    first = await scheduling.book(make.ctx, staff, "case_work.visit", at(monday, 9), at(monday, 9, 50), record_id=42)
    second = await scheduling.book(
        make.ctx, staff, "counseling.session", at(monday, 10), at(monday, 10, 30), buffer=timedelta(minutes=30)
    )
    await make.commit()
    # then each row holds what was asked, blocking its buffer after it
    a, b = await _appointment(make, first.id), await _appointment(make, second.id)
    assert (a.owner_id, a.kind, a.record_id, a.status) == (staff, "case_work.visit", 42, "active")
    assert (a.during.lower, a.during.upper) == (at(monday, 9), at(monday, 9, 50))
    assert (a.blocked.lower, a.blocked.upper) == (at(monday, 9), at(monday, 10))
    assert (b.kind, b.record_id) == ("counseling.session", None)
    assert (b.blocked.lower, b.blocked.upper) == (at(monday, 10), at(monday, 11))


async def test_booking_for_an_unknown_person_is_not_found_on_owner_id(make: Factory, monday: datetime) -> None:
    err = await _refused(make, _book(make, 987654, at(monday, 9), at(monday, 10)))
    assert errors(err) == [("NOT_FOUND", ("input", "ownerId"))]


async def test_an_overlap_is_slot_taken_on_start_only_for_the_same_person(
    make: Factory, staff: int, monday: datetime
) -> None:
    other = (await make.volunteer()).id
    for weekday in range(7):
        await scheduling.add_window(make.ctx, other, weekday, time(9), time(12))
    await _book(make, staff, at(monday, 9), at(monday, 10))
    await make.commit()
    err = await _refused(make, _book(make, staff, at(monday, 9, 30), at(monday, 10, 30)))
    assert errors(err) == [("SLOT_TAKEN", ("input", "start"))]
    assert (await _book(make, other, at(monday, 9, 30), at(monday, 10, 30))).owner_id == other


# --- rescheduling ---------------------------------------------------------------------------------------


async def test_rescheduling_moves_the_time_and_the_buffer(make: Factory, staff: int, monday: datetime) -> None:
    # given a booking 09:00–09:30
    booked = await _book(make, staff, at(monday, 9), at(monday, 9, 30))
    await make.commit()
    # when moved to overlap its own old time (09:15–10:00), then to 10:30–11:00 with a 45-minute buffer
    await scheduling.reschedule(make.ctx, booked.id, at(monday, 9, 15), at(monday, 10))
    await make.commit()
    moved = await _appointment(make, booked.id)
    assert (moved.during.lower, moved.during.upper) == (at(monday, 9, 15), at(monday, 10))
    assert (moved.blocked.lower, moved.blocked.upper) == (at(monday, 9, 15), at(monday, 10, 10))
    await scheduling.reschedule(make.ctx, booked.id, at(monday, 10, 30), at(monday, 11), timedelta(minutes=45))
    await make.commit()
    moved = await _appointment(make, booked.id)
    assert (moved.during.lower, moved.during.upper) == (at(monday, 10, 30), at(monday, 11))
    assert (moved.blocked.lower, moved.blocked.upper) == (at(monday, 10, 30), at(monday, 11, 45))
    # then the old time is free again
    assert (await _book(make, staff, at(monday, 9), at(monday, 10))).status == "active"


async def test_rescheduling_checks_what_booking_checks(make: Factory, staff: int, monday: datetime, clock) -> None:  # type: ignore[no-untyped-def]
    # given two bookings of one person
    bid = (await _book(make, staff, at(monday, 9), at(monday, 9, 30))).id
    await _book(make, staff, at(monday, 11), at(monday, 11, 30))
    await make.commit()
    cases = [
        ((at(monday, 10), at(monday, 10)), [("OUT_OF_RANGE", ("input", "end"))]),
        ((clock.now - timedelta(hours=1), clock.now), [("IN_PAST", ("input", "start"))]),
        ((at(monday, 11, 45), at(monday, 12, 15)), [("OUTSIDE_AVAILABILITY", ("input", "start"))]),
        ((at(monday, 10, 45), at(monday, 11, 15)), [("SLOT_TAKEN", ("input", "start"))]),
        ((at(monday, 10, 30), at(monday, 10, 55)), [("SLOT_TAKEN", ("input", "start"))]),  # its buffer
    ]
    for (s, e), expected in cases:
        err = await _refused(make, scheduling.reschedule(make.ctx, bid, s, e))
        assert errors(err) == expected
    # and nothing moved
    kept = await _appointment(make, bid)
    assert (kept.during.lower, kept.during.upper) == (at(monday, 9), at(monday, 9, 30))


async def test_a_cancelled_or_unknown_appointment_cannot_be_rescheduled(
    make: Factory, staff: int, monday: datetime
) -> None:
    bid = (await _book(make, staff, at(monday, 9), at(monday, 9, 30))).id
    await scheduling.cancel(make.ctx, bid, "ill")
    await make.commit()
    err = await _refused(make, scheduling.reschedule(make.ctx, bid, at(monday, 10), at(monday, 10, 30)))
    assert errors(err) == [("INVALID_TRANSITION", ("input", "id"))]
    err = await _refused(make, scheduling.reschedule(make.ctx, 987654, at(monday, 10), at(monday, 10, 30)))
    assert [e.code for e in err.value.errors] == ["NOT_FOUND"]


# --- cancelling -----------------------------------------------------------------------------------------


async def test_cancelling_records_the_trimmed_reason_once(make: Factory, staff: int, monday: datetime) -> None:
    bid = (await _book(make, staff, at(monday, 9), at(monday, 9, 30))).id
    await make.commit()
    await scheduling.cancel(make.ctx, bid, "  client ill \n")
    await make.commit()
    row = await _appointment(make, bid)
    assert (row.status, row.cancel_reason) == ("cancelled", "client ill")
    err = await _refused(make, scheduling.cancel(make.ctx, bid, "again"))
    assert errors(err) == [("INVALID_TRANSITION", ("input", "id"))]
    assert (await _appointment(make, bid)).cancel_reason == "client ill"
    err = await _refused(make, scheduling.cancel(make.ctx, 987654, "x"))
    assert [e.code for e in err.value.errors] == ["NOT_FOUND"]


# --- who keeps a calendar -------------------------------------------------------------------------------


async def test_people_keep_their_own_hours_and_administrators_everyones(
    make: Factory, home_org: int, monday: datetime, as_viewer
) -> None:  # type: ignore[no-untyped-def]
    me, colleague = (await make.volunteer()).id, (await make.volunteer()).id
    await make.commit()
    volunteer = as_viewer(Viewer(label="me", role="volunteer", volunteer_id=me, organization_id=home_org))
    admin = as_viewer(Viewer(label="org admin", role="organization_admin", organization_id=home_org))
    # a volunteer keeps their own hours
    window = await scheduling.add_window(volunteer, me, 0, time(9), time(12))
    away = await scheduling.add_exception(volunteer, me, at(monday, 9), at(monday, 10))
    await volunteer.session.commit()
    assert (window.owner_id, away.owner_id) == (me, me)
    # an organisation administrator keeps everyone's in the organisation
    assert (await scheduling.add_window(admin, colleague, 1, time(9), time(12))).owner_id == colleague
    assert (await scheduling.add_exception(admin, colleague, at(monday, 9), at(monday, 10))).owner_id == colleague
    await admin.session.commit()


@pytest.mark.parametrize("role", ["volunteer", "social_worker", None])
async def test_nobody_else_keeps_someone_elses_hours(
    make: Factory, home_org: int, monday: datetime, as_viewer, role: str | None
) -> None:  # type: ignore[no-untyped-def]
    me, colleague = (await make.volunteer()).id, (await make.volunteer()).id
    await make.commit()
    viewer = Viewer(label="someone", role=role, volunteer_id=me if role else None, organization_id=home_org)
    expected = "UNAUTHENTICATED" if role is None else "FORBIDDEN"
    for call in (
        lambda ctx: scheduling.add_window(ctx, colleague, 0, time(9), time(12)),
        lambda ctx: scheduling.add_exception(ctx, colleague, at(monday, 9), at(monday, 10)),
    ):
        ctx = as_viewer(viewer)
        with pytest.raises(DomainError) as err:
            await call(ctx)
        assert err.value.code == expected
    windows = (await make.ctx.session.scalars(select(AvailabilityWindow.id))).all()
    assert windows == []


async def test_an_unknown_person_has_no_calendar(make: Factory, monday: datetime) -> None:
    err = await _refused(make, scheduling.add_window(make.ctx, 987654, 0, time(9), time(12)))
    assert errors(err) == [("NOT_FOUND", ("input", "volunteerId"))]


# --- windows and absences -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weekday", "start", "end", "timezone", "expected"),
    [
        (0, time(9), time(12), "Asia/Shanghai", []),
        (6, time(9), time(9, 1), "Europe/London", []),
        (-1, time(9), time(12), "Asia/Shanghai", [("OUT_OF_RANGE", ("input", "weekday"))]),
        (7, time(9), time(12), "Asia/Shanghai", [("OUT_OF_RANGE", ("input", "weekday"))]),
        (0, time(9), time(9), "Asia/Shanghai", [("OUT_OF_RANGE", ("input", "end"))]),
        (0, time(9), time(12), "Mars/Olympus", [("INVALID_INPUT", ("input", "timezone"))]),
        (
            9,
            time(12),
            time(9),
            "Nowhere",
            [
                ("INVALID_INPUT", ("input", "timezone")),
                ("OUT_OF_RANGE", ("input", "end")),
                ("OUT_OF_RANGE", ("input", "weekday")),
            ],
        ),
    ],
    ids=["monday", "sunday one minute", "weekday -1", "weekday 7", "empty", "unknown zone", "all at once"],
)
async def test_a_window_is_a_weekday_a_forward_time_range_and_a_known_zone(
    make: Factory,
    staff: int,
    weekday: int,
    start: time,
    end: time,
    timezone: str,
    expected: list[tuple[str, tuple[str, ...]]],
) -> None:
    if not expected:
        window = await scheduling.add_window(make.ctx, staff, weekday, start, end, timezone)
        await make.commit()
        row = await make.ctx.session.get(AvailabilityWindow, window.id, populate_existing=True)
        assert row is not None
        assert (row.owner_id, row.weekday, row.start_time, row.end_time, row.timezone) == (
            staff,
            weekday,
            start,
            end,
            timezone,
        )
    else:
        err = await _refused(make, scheduling.add_window(make.ctx, staff, weekday, start, end, timezone))
        assert errors(err) == expected


async def test_a_window_defaults_to_shanghai_time(make: Factory) -> None:
    person = (await make.volunteer()).id
    window = await scheduling.add_window(make.ctx, person, 2, time(8), time(9))
    await make.commit()
    assert (await make.ctx.session.get(AvailabilityWindow, window.id, populate_existing=True)).timezone == (  # type: ignore[union-attr]
        "Asia/Shanghai"
    )


async def test_an_absence_records_its_time_and_trimmed_reason(make: Factory, staff: int, monday: datetime) -> None:
    first = await scheduling.add_exception(make.ctx, staff, at(monday, 9), at(monday, 9, 1), "  leave ")
    second = await scheduling.add_exception(make.ctx, staff, at(monday, 10), at(monday, 11))
    await make.commit()
    a = await make.ctx.session.get(AvailabilityException, first.id, populate_existing=True)
    b = await make.ctx.session.get(AvailabilityException, second.id, populate_existing=True)
    assert a is not None
    assert b is not None
    assert (a.owner_id, a.during.lower, a.during.upper, a.reason) == (staff, at(monday, 9), at(monday, 9, 1), "leave")
    assert b.reason == ""
    err = await _refused(make, scheduling.add_exception(make.ctx, staff, at(monday, 9), at(monday, 9)))
    assert errors(err) == [("OUT_OF_RANGE", ("input", "end"))]


# --- free slots -----------------------------------------------------------------------------------------


async def _hours(make: Factory, owners: list[int], start: datetime, end: datetime, duration: timedelta, **kw):  # type: ignore[no-untyped-def]
    slots = await scheduling.free_slots(make.ctx, owners, start, end, duration, **kw)
    return [(s.owner_id, s.start.astimezone(SHANGHAI).strftime("%H:%M"), s.end - s.start) for s in slots]


async def test_no_people_no_slots(make: Factory, monday: datetime) -> None:
    assert await scheduling.free_slots(make.ctx, [], at(monday, 0), at(monday, 23), timedelta(hours=1)) == []


async def test_slots_start_no_earlier_than_now_aligned_to_the_step_from_the_window_opening(
    make: Factory, staff: int, monday: datetime, clock
) -> None:  # type: ignore[no-untyped-def]
    hour = timedelta(hours=1)
    # asked from midnight at 10:07: the first slot is 10:15 (the next quarter from 09:00), not 10:00
    clock.now = at(monday, 10, 7)
    slots = await _hours(make, [staff], at(monday, 0), at(monday, 23), hour)
    assert [s[1] for s in slots] == ["10:15", "10:30", "10:45", "11:00"]
    # at 10:15 exactly, 10:15 is still offered
    clock.now = at(monday, 10, 15)
    assert (await _hours(make, [staff], at(monday, 0), at(monday, 23), hour))[0][1] == "10:15"
    # asked from 10:20 (later than now): 10:30 first; up to 11:30: the last one ends exactly then
    clock.now = at(monday, 0)
    slots = await _hours(make, [staff], at(monday, 10, 20), at(monday, 11, 30), timedelta(minutes=30))
    half = timedelta(minutes=30)
    assert slots == [(staff, "10:30", half), (staff, "10:45", half), (staff, "11:00", half)]
    # every slot is a Slot of the asked length
    (first, *_) = await scheduling.free_slots(make.ctx, [staff], at(monday, 9), at(monday, 10), hour)
    assert (first.owner_id, first.start, first.end) == (staff, at(monday, 9), at(monday, 10))


async def test_only_active_appointments_block_and_only_their_own_person(
    make: Factory, staff: int, monday: datetime
) -> None:
    other = (await make.volunteer()).id
    await scheduling.add_window(make.ctx, other, monday.weekday(), time(13), time(14))
    cancelled = await _book(make, staff, at(monday, 9), at(monday, 10))
    await scheduling.cancel(make.ctx, cancelled.id, "")
    await _book(make, other, at(monday, 13), at(monday, 13, 30))
    await make.commit()
    slots = await _hours(make, [staff], at(monday, 0), at(monday, 23), timedelta(hours=1), step=timedelta(hours=1))
    assert [s[1] for s in slots] == ["09:00", "10:00", "11:00"]


async def test_a_slot_needs_its_buffer_free_before_the_next_booking(
    make: Factory, staff: int, monday: datetime
) -> None:
    # given a booking at 10:05 (its own buffer 10:35–10:45)
    await _book(make, staff, at(monday, 10, 5), at(monday, 10, 35))
    await make.commit()
    # when 50-minute slots are asked for up to 10:00 only
    slots = await _hours(make, [staff], at(monday, 9), at(monday, 10), timedelta(minutes=50), step=timedelta(minutes=5))
    # then 09:10–10:00 is not offered: its buffer would run into the booking after the range asked
    assert [s[1] for s in slots] == ["09:00", "09:05"]
    # with a zero buffer, 09:10 fits (ends at 10:00, the booking starts at 10:05)
    slots = await _hours(
        make,
        [staff],
        at(monday, 9),
        at(monday, 10),
        timedelta(minutes=50),
        step=timedelta(minutes=5),
        buffer=timedelta(0),
    )
    assert [s[1] for s in slots] == ["09:00", "09:05", "09:10"]


async def test_slots_touching_a_booking_or_an_absence_are_offered(make: Factory, staff: int, monday: datetime) -> None:
    # given 09:00–09:50 booked (blocked to 10:00), away 11:00–11:30
    await _book(make, staff, at(monday, 9), at(monday, 9, 50))
    await scheduling.add_exception(make.ctx, staff, at(monday, 11), at(monday, 11, 30))
    await make.commit()
    slots = await _hours(
        make, [staff], at(monday, 0), at(monday, 23), timedelta(minutes=50), step=timedelta(minutes=10)
    )
    # then 10:00 is offered (its start touches the end of the booking's buffer, its own buffer ends when the
    # absence begins), and nothing else fits before noon
    assert [s[1] for s in slots] == ["10:00"]
    # another person's absence and booking do not matter
    other = (await make.volunteer()).id
    await scheduling.add_exception(make.ctx, other, at(monday, 0), at(monday, 23))
    await make.commit()
    assert (
        await _hours(make, [staff], at(monday, 0), at(monday, 23), timedelta(minutes=50), step=timedelta(minutes=10))
        == slots
    )


async def test_absences_and_bookings_outside_the_range_asked_do_not_block(
    make: Factory, staff: int, monday: datetime
) -> None:
    # given away 09:00–10:00 and booked 11:10–11:40 (blocked to 11:50)
    await scheduling.add_exception(make.ctx, staff, at(monday, 9), at(monday, 10))
    await _book(make, staff, at(monday, 11, 10), at(monday, 11, 40))
    await make.commit()
    # when asked for 10:00–11:00 in half hours, buffer 10: 10:00 and 10:30 (10:30+30+10 = 11:10) fit
    slots = await _hours(
        make, [staff], at(monday, 10), at(monday, 11), timedelta(minutes=30), step=timedelta(minutes=30)
    )
    assert [s[1] for s in slots] == ["10:00", "10:30"]


async def test_slots_are_ordered_by_time_then_person_and_capped(make: Factory, monday: datetime) -> None:
    # given two people with the same hours, the higher id's window written first
    low, high = (await make.volunteer()).id, (await make.volunteer()).id
    await scheduling.add_window(make.ctx, high, monday.weekday(), time(9), time(11))
    await scheduling.add_window(make.ctx, low, monday.weekday(), time(9), time(11))
    await make.commit()
    hour = timedelta(hours=1)
    slots = await _hours(make, [high, low], at(monday, 0), at(monday, 23), hour, step=hour)
    assert [(s[0], s[1]) for s in slots] == [(low, "09:00"), (high, "09:00"), (low, "10:00"), (high, "10:00")]
    capped = await _hours(make, [high, low], at(monday, 0), at(monday, 23), hour, step=hour, limit=3)
    assert [(s[0], s[1]) for s in capped] == [(low, "09:00"), (high, "09:00"), (low, "10:00")]


async def test_at_most_two_hundred_slots_by_default(make: Factory, staff: int, monday: datetime) -> None:
    # 09:00–12:00 in 5-minute slots is 36 a day: a week holds 252
    five = timedelta(minutes=5)
    slots = await scheduling.free_slots(
        make.ctx, [staff], at(monday, 0), at(monday, 0) + timedelta(days=7), five, step=five, buffer=timedelta(0)
    )
    assert len(slots) == 200
    assert slots[0].start == at(monday, 9)
    assert slots[36].start == at(monday, 9) + timedelta(days=1)


async def test_free_slots_read_each_window_in_its_own_zone(make: Factory, monday: datetime) -> None:
    person = (await make.volunteer()).id
    await scheduling.add_window(make.ctx, person, 0, time(9), time(10), "Europe/London")
    await make.commit()
    hour = timedelta(hours=1)
    slots = await scheduling.free_slots(
        make.ctx, [person], at(monday, 0), at(monday, 0) + timedelta(days=1), hour, step=hour
    )
    london_nine = datetime.combine(monday.date(), time(9), LONDON)
    assert [(s.start, s.end) for s in slots] == [(london_nine, london_nine + hour)]
    assert slots[0].start.astimezone(UTC) == london_nine.astimezone(UTC)


async def test_a_window_west_of_utc_keeps_its_own_weekday(make: Factory, monday: datetime) -> None:
    # given someone available Mondays 20:00–22:00 New York time (Tuesday 00:00–03:00 in UTC)
    new_york = ZoneInfo("America/New_York")
    person = (await make.volunteer()).id
    await scheduling.add_window(make.ctx, person, 0, time(20), time(22), "America/New_York")
    await make.commit()
    evening = datetime.combine(monday.date(), time(20), new_york)
    hour = timedelta(hours=1)
    # then the free-slot search finds Monday 20:00 and 21:00 New York time, asked from 20:00 there
    slots = await scheduling.free_slots(make.ctx, [person], evening, evening + timedelta(hours=5), hour, step=hour)
    assert [s.start for s in slots] == [evening, evening + hour]
    # and 20:00 New York time is bookable
    assert (await _book(make, person, evening, evening + hour)).owner_id == person


async def test_a_window_opening_at_midnight_is_searched(make: Factory, monday: datetime, clock) -> None:  # type: ignore[no-untyped-def]
    person = (await make.volunteer()).id
    await scheduling.add_window(make.ctx, person, 0, time(0), time(0, 30))
    await make.commit()
    half = timedelta(minutes=30)
    slots = await scheduling.free_slots(make.ctx, [person], at(monday, 0), at(monday, 0, 30), half)
    assert [(s.start, s.end) for s in slots] == [(at(monday, 0), at(monday, 0, 30))]
