"""Bounded ranges: a search over time refuses a range wider than the deployment's max_range_days (or a
feature's tighter cap) with RANGE_TOO_LARGE, and an end before its start with OUT_OF_RANGE -- before any
calendar is walked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.errors import DomainError, Validator
from core.services import scheduling
from core.services.search import DEFAULT_MAX_RANGE_DAYS, check_range
from tests.core.services.test_scheduling import next_monday
from tests.factories import Factory

HOUR = timedelta(hours=1)


def _codes(error: pytest.ExceptionInfo[DomainError]) -> list[tuple[str, tuple[str, ...] | None]]:
    return [(e.code, e.field) for e in error.value.errors]


@pytest.mark.parametrize(
    ("days", "expected"),
    [(-1, "OUT_OF_RANGE"), (DEFAULT_MAX_RANGE_DAYS + 1, "RANGE_TOO_LARGE"), (3650, "RANGE_TOO_LARGE")],
    ids=["end before start", "a day too wide", "a decade"],
)
async def test_free_slot_search_refuses_bad_ranges(make: Factory, clock, days: int, expected: str) -> None:  # type: ignore[no-untyped-def]
    # given a person with a calendar
    person = await make.volunteer()
    monday = next_monday(clock)
    # when free slots are searched over a bad range, then it is refused on `end`
    with pytest.raises(DomainError) as err:
        await scheduling.free_slots(make.ctx, [person.id], monday, monday + timedelta(days=days), HOUR)
    assert _codes(err) == [(expected, ("end",))]


async def test_free_slot_search_takes_up_to_the_limit_and_a_tighter_cap(make: Factory, clock) -> None:  # type: ignore[no-untyped-def]
    person = await make.volunteer()
    monday = next_monday(clock)
    year = monday + timedelta(days=DEFAULT_MAX_RANGE_DAYS)
    # the widest range allowed is searched (an empty one too) ...
    assert await scheduling.free_slots(make.ctx, [person.id], monday, year, HOUR) == []
    assert await scheduling.free_slots(make.ctx, [person.id], monday, monday, HOUR) == []
    # ... and a deployment's (or feature's) tighter cap is honoured
    with pytest.raises(DomainError) as err:
        await scheduling.free_slots(make.ctx, [person.id], monday, monday + timedelta(days=8), HOUR, max_days=7)
    assert _codes(err) == [("RANGE_TOO_LARGE", ("end",))]


async def test_earliest_slot_booking_refuses_bad_ranges(make: Factory, clock) -> None:  # type: ignore[no-untyped-def]
    person = await make.volunteer()
    monday = next_monday(clock)
    for latest, code in ((monday - HOUR, "OUT_OF_RANGE"), (monday + timedelta(days=400), "RANGE_TOO_LARGE")):
        with pytest.raises(DomainError) as err:
            await scheduling.book_earliest(make.ctx, [person.id], "counseling.session", monday, latest, HOUR)
        assert _codes(err) == [(code, ("input", "start"))]


async def test_an_absence_is_bounded_too(make: Factory, clock) -> None:  # type: ignore[no-untyped-def]
    person = await make.volunteer()
    monday = next_monday(clock)
    for end, code in ((monday - HOUR, "OUT_OF_RANGE"), (monday + timedelta(days=3650), "RANGE_TOO_LARGE")):
        with pytest.raises(DomainError) as err:
            await scheduling.add_exception(make.ctx, person.id, monday, end, "leave")
        assert _codes(err) == [(code, ("input", "end"))]
    absence = await scheduling.add_exception(make.ctx, person.id, monday, monday + timedelta(days=30), "leave")
    assert absence.id


def test_an_open_ended_range_is_a_filter_not_a_span() -> None:
    v = Validator()
    moment = datetime(2030, 1, 7, tzinfo=UTC)
    check_range(v, None, moment, max_days=1)
    check_range(v, moment, None, max_days=1)
    assert v.errors == []
