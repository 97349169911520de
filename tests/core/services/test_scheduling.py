"""The shared calendar: no double booking under concurrency or across kinds, buffers, availability,
exceptions, free-slot search across time zones, and bad input."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import URL

from core.errors import DomainError
from core.services import scheduling
from core.services.context import ServiceContext
from tests.concurrency import Racer, rounds
from tests.factories import Factory

SHANGHAI = ZoneInfo("Asia/Shanghai")


def next_monday(clock) -> datetime:  # type: ignore[no-untyped-def]
    today = clock.now.astimezone(SHANGHAI).date()
    monday = today + timedelta(days=(7 - today.weekday()) % 7 or 7)
    return datetime.combine(monday, time(0), SHANGHAI)


def at(day: datetime, hh: int, mm: int = 0) -> datetime:
    return day.replace(hour=hh, minute=mm)


@pytest.fixture
async def counselor(make: Factory) -> int:
    person = await make.volunteer()
    for weekday in range(7):
        await scheduling.add_window(make.ctx, person.id, weekday, time(9), time(12))
    await make.commit()
    return person.id


async def test_twenty_concurrent_bookings_of_one_slot_leave_exactly_one(
    make: Factory, db_url: URL, counselor: int, clock
) -> None:  # type: ignore[no-untyped-def]
    monday = next_monday(clock)

    async def round_(racer: Racer, day: datetime) -> None:
        async def book(ctx: ServiceContext, i: int) -> str:
            start = at(day, 10) + timedelta(minutes=i % 5)
            await scheduling.book(ctx, counselor, "counseling.session", start, start + timedelta(minutes=50))
            return "ok"

        # when twenty clients try overlapping slots at once
        outcomes = await racer.race(book, viewer=make.ctx.viewer)
        # then exactly one is booked and every other one was told the slot is taken
        assert sorted(outcomes) == ["SLOT_TAKEN"] * 19 + ["ok"]

    async with Racer.open(db_url, workers=20, clock=clock) as racer:
        # one round per day (the counselor is available every day)
        for n in range(rounds(4)):
            await round_(racer, monday + timedelta(days=n))


async def test_two_kinds_cannot_overlap_for_one_person(make: Factory, counselor: int, clock) -> None:  # type: ignore[no-untyped-def]
    monday = next_monday(clock)
    await scheduling.book(make.ctx, counselor, "case_work.visit", at(monday, 9), at(monday, 10))
    with pytest.raises(DomainError) as err:
        await scheduling.book(make.ctx, counselor, "counseling.session", at(monday, 9, 30), at(monday, 10, 30))
    assert err.value.code == "SLOT_TAKEN"


async def test_buffer_after_an_appointment_and_cancel_frees_it(make: Factory, counselor: int, clock) -> None:  # type: ignore[no-untyped-def]
    monday = next_monday(clock)
    first = await scheduling.book(make.ctx, counselor, "counseling.session", at(monday, 9), at(monday, 10))
    # the 10-minute buffer after it is taken, the time after it is free
    with pytest.raises(DomainError):
        await scheduling.book(make.ctx, counselor, "counseling.session", at(monday, 10, 5), at(monday, 11))
    await scheduling.book(make.ctx, counselor, "counseling.session", at(monday, 10, 10), at(monday, 11))
    # cancelling frees the slot for someone else
    await scheduling.cancel(make.ctx, first.id, "client ill")
    again = await scheduling.book(make.ctx, counselor, "case_work.visit", at(monday, 9), at(monday, 9, 50))
    assert again.status == "active"


async def test_availability_and_exceptions_are_honoured(make: Factory, counselor: int, clock) -> None:  # type: ignore[no-untyped-def]
    monday = next_monday(clock)
    with pytest.raises(DomainError) as err:
        await scheduling.book(make.ctx, counselor, "counseling.session", at(monday, 11, 30), at(monday, 12, 30))
    assert err.value.code == "OUTSIDE_AVAILABILITY"
    await scheduling.add_exception(make.ctx, counselor, at(monday, 10), at(monday, 11), "training day")
    with pytest.raises(DomainError) as err:
        await scheduling.book(make.ctx, counselor, "counseling.session", at(monday, 10, 30), at(monday, 10, 45))
    assert err.value.code == "OUTSIDE_AVAILABILITY"


async def test_free_slots_for_a_utc_caller(make: Factory, counselor: int, clock) -> None:  # type: ignore[no-untyped-def]
    # given Monday 09–12 Shanghai, a booking 09:00–09:50 (+10 buffer) and an absence 10:00–11:00
    monday = next_monday(clock)
    await scheduling.book(make.ctx, counselor, "counseling.session", at(monday, 9), at(monday, 9, 50))
    await scheduling.add_exception(make.ctx, counselor, at(monday, 10), at(monday, 11), "supervision")
    # when a caller working in UTC asks for 50-minute slots that Monday
    day_start_utc = at(monday, 0).astimezone(UTC)
    slots = await scheduling.free_slots(
        make.ctx, [counselor], day_start_utc, day_start_utc + timedelta(days=1), timedelta(minutes=50)
    )
    # then the only one is 11:00 Shanghai, i.e. 03:00 UTC
    assert [(s.start.astimezone(UTC).time(), s.end.astimezone(UTC).time()) for s in slots] == [(time(3), time(3, 50))]
    assert slots[0].start == at(monday, 11)


async def test_free_slots_for_any_of_several_people(make: Factory, counselor: int, clock) -> None:  # type: ignore[no-untyped-def]
    monday = next_monday(clock)
    other = await make.volunteer()
    await scheduling.add_window(make.ctx, other.id, monday.weekday(), time(8), time(9))
    slots = await scheduling.free_slots(
        make.ctx, [counselor, other.id], at(monday, 0), at(monday, 23), timedelta(minutes=60), step=timedelta(hours=1)
    )
    assert [(s.owner_id, s.start.hour) for s in slots] == [
        (other.id, 8),
        (counselor, 9),
        (counselor, 10),
        (counselor, 11),
    ]


@pytest.mark.parametrize(
    ("start_h", "end_h", "code"),
    [(10, 9, "OUT_OF_RANGE"), (10, 10, "OUT_OF_RANGE"), (0, 10, "OUT_OF_RANGE")],
    ids=["end before start", "zero length", "over long"],
)
async def test_bad_intervals(make: Factory, counselor: int, clock, start_h: int, end_h: int, code: str) -> None:  # type: ignore[no-untyped-def]
    monday = next_monday(clock)
    with pytest.raises(DomainError) as err:
        await scheduling.book(make.ctx, counselor, "counseling.session", at(monday, start_h), at(monday, end_h))
    assert err.value.code == code


async def test_booking_in_the_past_or_for_nobody(make: Factory, counselor: int, clock) -> None:  # type: ignore[no-untyped-def]
    past = clock.now - timedelta(days=1)
    with pytest.raises(DomainError) as err:
        await scheduling.book(make.ctx, counselor, "counseling.session", past, past + timedelta(hours=1))
    assert err.value.code == "IN_PAST"
    monday = next_monday(clock)
    with pytest.raises(DomainError) as err:
        await scheduling.book(make.ctx, 987654, "counseling.session", at(monday, 9), at(monday, 10))
    assert err.value.code == "NOT_FOUND"


async def test_a_refused_booking_leaves_the_transaction_usable(make: Factory, counselor: int, clock) -> None:  # type: ignore[no-untyped-def]
    # a plugin booking "the earliest free slot" tries, is refused, and tries the next one in one transaction
    monday = next_monday(clock)
    await scheduling.book(make.ctx, counselor, "case_work.visit", at(monday, 9), at(monday, 10))
    with pytest.raises(DomainError):
        await scheduling.book(make.ctx, counselor, "counseling.session", at(monday, 9), at(monday, 9, 30))
    later = await scheduling.book(make.ctx, counselor, "counseling.session", at(monday, 10, 10), at(monday, 11))
    await make.commit()
    moved = await scheduling.reschedule(make.ctx, later.id, at(monday, 11), at(monday, 11, 50))
    assert moved.during.lower == at(monday, 11)


async def test_twenty_earliest_slot_bookings_in_parallel_neither_deadlock_nor_double_book(
    make: Factory, db_url: URL, clock
) -> None:  # type: ignore[no-untyped-def]
    monday = next_monday(clock)

    async def round_(racer: Racer) -> None:
        # given two people with one 50-minute slot a day, on alternate days (A: Mon/Wed/Fri/Sun, B: Tue/Thu/Sat)
        people = []
        for first_day in (0, 1):
            person = await make.volunteer()
            for weekday in range(first_day, 7, 2):
                await scheduling.add_window(make.ctx, person.id, weekday, time(9), time(10))
            people.append(person.id)
        await make.commit()

        # when twenty bookers ask for the earliest slot with either, half searching from Monday and half from
        # Tuesday -- so that they try the two people in opposite orders
        async def earliest(ctx: ServiceContext, i: int) -> tuple[int, datetime]:
            start = monday + timedelta(days=i % 2)
            booked = await scheduling.book_earliest(
                ctx, people, "counseling.session", start, start + timedelta(days=14), timedelta(minutes=50)
            )
            return booked.owner_id, booked.during.lower

        outcomes = await racer.race(earliest, viewer=make.ctx.viewer)

        # then each got a distinct slot or SLOT_TAKEN (no deadlock: the racer fails on any other error) ...
        booked = [o for o in outcomes if o != "SLOT_TAKEN"]
        assert len(set(booked)) == len(booked) >= 10
        # ... and SLOT_TAKEN only once every slot of that booker's fortnight was booked
        for i, outcome in enumerate(outcomes):
            if outcome == "SLOT_TAKEN":
                start = monday + timedelta(days=i % 2)
                window = (start, start + timedelta(days=14), timedelta(minutes=50))
                assert await scheduling.free_slots(make.ctx, people, *window) == []

    async with Racer.open(db_url, workers=20, clock=clock) as racer:
        for _ in range(rounds(2)):
            await round_(racer)
