"""Casework visits at the service layer: booked on core's shared calendar (never over a counseling session of the
same person, whoever books first, however many at once), moved, cancelled, given an outcome, and refused on a
closed case -- by the services and by the database."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from core.errors import DomainError
from core.models import Account, Appointment, AvailabilityWindow
from core.services import volunteers
from core.services.common import constraint_name
from core.services.context import ServiceContext, Viewer
from core.vocab import VolunteerMode
from plugins.case_work import services as case_services
from plugins.case_work.visits import services as visits
from plugins.case_work.visits.models import Visit
from plugins.counseling import services as counseling
from tests.concurrency import Racer, rounds
from tests.core.services.test_scheduling import at, next_monday
from tests.plugins.case_work.conftest import CaseWorld

# Staff with a calendar (a staff record and weekly hours, 08:00-20:00 every day).
STAFF = ("sw", "sw2", "sup", "admin")
COUNSELING = frozenset({"counseling.manage", "counseling.read_notes"})


@dataclass
class Calendar:
    cw: CaseWorld
    records: dict[str, int]  # caller -> their staff record (the calendar's owner id)
    counselor: int  # the counseling record of sw's staff record: sw also gives counseling sessions
    counselor_sup: int  # and sup's
    client: int  # a counseling client
    monday: datetime

    def counseling_staff(self) -> Viewer:
        """An administrator of A who books counseling sessions."""
        return Viewer(
            label="counseling admin",
            account_id=self.cw.ids["admin"],
            organization_id=self.cw.ids["org_a"],
            role="organization_admin",
            extra_permissions=COUNSELING,
        )

    async def session(self, counselor: int, start: datetime) -> Any:
        """A real counseling session (50 minutes, 10 minutes' buffer after), booked through counseling's service."""
        async with self.cw.as_("admin") as ctx:
            ctx = ServiceContext(ctx.session, self.counseling_staff(), clock=self.cw.clock)
            return await counseling.book_session(
                ctx,
                client_id=self.client,
                counselor_id=counselor,
                start=start,
                minutes=50,
                mode="online",
                meeting_link="https://meet.example/room",
            )

    async def book(self, case_id: int, start: datetime, who: str = "sw", **kw: Any) -> Visit:
        kw.setdefault("mode", "home_visit")
        kw.setdefault("minutes", 60)
        visit: Visit = await self.cw.call(who, visits.book_visit, case_id, start=start, **kw)
        return visit

    async def counts(self) -> tuple[int, int]:
        """(visits, active appointments) of every organisation: for "nothing written"."""
        async with self.cw.as_("padmin") as ctx:  # a platform administrator: every organisation's rows
            n_visits = await ctx.session.scalar(select(func.count()).select_from(Visit))
            n_active = await ctx.session.scalar(
                select(func.count()).select_from(Appointment).where(Appointment.status == "active")
            )
            return int(n_visits or 0), int(n_active or 0)

    async def slot(self, visit_id: int) -> tuple[datetime, datetime, str]:
        async with self.cw.as_("admin") as ctx:
            visit = await ctx.session.get(Visit, visit_id)
            assert visit is not None
            a = await ctx.session.get(Appointment, visit.appointment_id)
            assert a is not None
            return a.during.lower, a.during.upper, a.status


@pytest.fixture
async def cal(cw: CaseWorld) -> Calendar:
    builder = Viewer(label="builder", role="platform_admin")
    records: dict[str, int] = {}
    async with cw.as_("admin") as ctx:
        ctx = ServiceContext(ctx.session, builder, clock=cw.clock)
        for who in STAFF:
            person = await volunteers.register_volunteer(
                ctx,
                volunteers.VolunteerInput(
                    name=f"{who}的日程",
                    phone=f"1380000{cw.ids[who] % 10000:04d}",
                    mode=VolunteerMode.OFFLINE,
                    organization_id=cw.ids["org_a"],
                ),
            )
            account = await ctx.session.get(Account, cw.ids[who])
            assert account is not None
            account.volunteer_id = person.id
            for weekday in range(7):
                ctx.session.add(
                    AvailabilityWindow(
                        owner_id=person.id,
                        weekday=weekday,
                        start_time=time(8),
                        end_time=time(20),
                        organization_id=cw.ids["org_a"],
                    )
                )
            records[who] = person.id
        await ctx.session.flush()
    staff = Viewer(
        label="counseling admin",
        account_id=cw.ids["admin"],
        organization_id=cw.ids["org_a"],
        role="organization_admin",
        extra_permissions=COUNSELING,
    )
    async with cw.as_("admin") as ctx:
        ctx = ServiceContext(ctx.session, staff, clock=cw.clock)
        counselor = await counseling.register_counselor(ctx, records["sw"])
        counselor_sup = await counseling.register_counselor(ctx, records["sup"])
        client = await counseling.register_client(ctx, name="来访者", phone="13700002222", consent=True)
    return Calendar(cw, records, counselor.id, counselor_sup.id, client.id, next_monday(cw.clock))


async def test_a_visit_over_a_counseling_session_of_the_same_person_is_refused_and_nothing_is_written(
    cal: Calendar,
) -> None:
    # given a case of sw, and a counseling session sw gives on Monday 10:00-10:50 (booked through counseling)
    case_id = await cal.cw.open()
    await cal.session(cal.counselor, at(cal.monday, 10))
    before = await cal.counts()
    # when a visit of the case is booked at 10:30
    code = await cal.cw.refused(
        "sw", visits.book_visit, case_id, mode="home_visit", start=at(cal.monday, 10, 30), minutes=60
    )
    # then the calendar refuses it, and nothing is written
    assert code == "SLOT_TAKEN"
    assert await cal.counts() == before
    # and a visit that starts as the session's buffer ends is booked
    visit = await cal.book(case_id, at(cal.monday, 11))
    assert (await cal.slot(visit.id))[:2] == (at(cal.monday, 11), at(cal.monday, 12))
    assert await cal.counts() == (before[0] + 1, before[1] + 1)


async def test_a_second_staff_member_who_is_busy_refuses_the_whole_visit(cal: Calendar) -> None:
    # given a case of sw, and a counseling session of sup on Monday 15:00
    case_id = await cal.cw.open()
    await cal.session(cal.counselor_sup, at(cal.monday, 15))
    before = await cal.counts()
    # when a visit of sw with sup along is booked over it
    code = await cal.cw.refused(
        "sw",
        visits.book_visit,
        case_id,
        mode="home_visit",
        start=at(cal.monday, 14, 30),
        minutes=60,
        second_account_id=cal.cw.ids["sup"],
    )
    # then it is refused, sw's own appointment included
    assert code == "SLOT_TAKEN"
    assert await cal.counts() == before
    # and with sup free it books both calendars
    visit = await cal.book(case_id, at(cal.monday, 16), second_account_id=cal.cw.ids["sup"])
    assert visit.second_appointment_id is not None
    assert await cal.counts() == (before[0] + 1, before[1] + 2)
    # and sup's calendar now refuses a counseling session at that time
    with pytest.raises(DomainError) as err:
        await cal.session(cal.counselor_sup, at(cal.monday, 16, 15))
    assert err.value.code == "SLOT_TAKEN"


async def test_bad_input_is_refused_with_codes(cal: Calendar) -> None:
    case_id = await cal.cw.open()
    start = at(cal.monday, 9)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"mode": "letter"}, "INVALID_INPUT"),
        ({"minutes": 5}, "OUT_OF_RANGE"),
        ({"purpose": "长" * 501}, "OUT_OF_RANGE"),
        ({"start": cal.cw.clock.now - timedelta(hours=1)}, "IN_PAST"),
        ({"start": at(cal.monday, 21)}, "OUTSIDE_AVAILABILITY"),
        ({"second_account_id": cal.cw.ids["sw"]}, "INVALID_INPUT"),  # the worker themselves
        ({"second_account_id": cal.cw.ids["volunteer"]}, "INVALID_INPUT"),  # not staff
        ({"second_account_id": cal.cw.ids["counselor"]}, "OUTSIDE_AVAILABILITY"),  # staff without a calendar
        ({"second_account_id": cal.cw.ids["sw_b"]}, "NOT_FOUND"),  # of another organisation
    ]
    before = await cal.counts()
    for given, expected in cases:
        kw: dict[str, Any] = {"mode": "call", "start": start, "minutes": 30} | given
        assert await cal.cw.refused("sw", visits.book_visit, case_id, **kw) == expected, given
    assert await cal.counts() == before


async def test_who_may_book_a_visit_of_a_case(cal: Calendar) -> None:
    # given a case of sw supervised by sup
    case_id = await cal.cw.open()
    start = at(cal.monday, 9)
    # then callers who do not see the case get NOT_FOUND; callers without casework FORBIDDEN
    for who, expected in (
        ("sw2", "NOT_FOUND"),
        ("admin_b", "NOT_FOUND"),
        ("sw_b", "NOT_FOUND"),
        ("volunteer", "FORBIDDEN"),
        ("head", "FORBIDDEN"),
        ("counselor", "FORBIDDEN"),
    ):
        code = await cal.cw.refused(who, visits.book_visit, case_id, mode="call", start=start, minutes=30)
        assert code == expected, who
    # and the worker, the supervisor and the organisation's administrator book it (on the worker's calendar)
    for n, who in enumerate(("sw", "sup", "admin")):
        visit = await cal.book(case_id, start + timedelta(hours=2 * n), who=who)
        async with cal.cw.as_("admin") as ctx:
            appointment = await ctx.session.get(Appointment, visit.appointment_id)
            assert appointment is not None
            assert appointment.owner_id == cal.records["sw"], who


async def test_reschedule_cancel_and_outcome(cal: Calendar) -> None:
    cw = cal.cw
    case_id = await cw.open()
    visit = await cal.book(case_id, at(cal.monday, 9), mode="call", minutes=30)
    other = await cal.book(case_id, at(cal.monday, 15))
    # a move onto another booking is refused and changes nothing
    code = await cw.refused("sw", visits.reschedule_visit, visit.id, at(cal.monday, 15, 30), 30)
    assert code == "SLOT_TAKEN"
    assert await cal.slot(visit.id) == (at(cal.monday, 9), at(cal.monday, 9, 30), "active")
    # a move to a free time moves the appointment and frees the old time
    await cw.call("sw", visits.reschedule_visit, visit.id, at(cal.monday, 13), 45)
    assert await cal.slot(visit.id) == (at(cal.monday, 13), at(cal.monday, 13, 45), "active")
    await cal.session(cal.counselor, at(cal.monday, 9))
    # an outcome before the visit starts is refused
    assert await cw.refused("sw", visits.record_outcome, visit.id, "no_answer") == "INVALID_TRANSITION"
    # a cancellation needs a reason
    assert await cw.refused("sw", visits.cancel_visit, other.id, " ") == "REQUIRED"
    cancelled = await cw.call("sw", visits.cancel_visit, other.id, "案主住院")
    assert (cancelled.status, cancelled.cancel_reason) == ("cancelled", "案主住院")
    assert (await cal.slot(other.id))[2] == "cancelled"
    # and its time is free again: a counseling session takes it
    await cal.session(cal.counselor, at(cal.monday, 15))
    # a cancelled visit is not cancelled, moved or given an outcome again
    assert await cw.refused("sw", visits.cancel_visit, other.id, "再取消") == "INVALID_TRANSITION"
    assert await cw.refused("sw", visits.reschedule_visit, other.id, at(cal.monday, 17), 30) == "INVALID_TRANSITION"
    # once the call has started: an outcome that does not fit a call is refused, one that does is kept
    cw.clock.now = at(cal.monday, 13, 10)
    assert await cw.refused("sw", visits.record_outcome, visit.id, "client_not_home") == "INVALID_INPUT"
    assert await cw.refused("sw", visits.record_outcome, visit.id, "done", "长" * 501) == "OUT_OF_RANGE"
    done = await cw.call("sw", visits.record_outcome, visit.id, "no_answer", "电话无人接听，明天再打")
    assert (done.status, done.outcome_note, done.outcome_at) == ("no_answer", "电话无人接听，明天再打", cw.clock.now)
    assert await cw.refused("sw", visits.record_outcome, visit.id, "done") == "INVALID_TRANSITION"
    assert await cw.refused("sw", visits.cancel_visit, visit.id, "取消") == "INVALID_TRANSITION"


@pytest.mark.parametrize("ending", ["closure", "not_opened"])
async def test_a_closed_case_takes_no_visit_move_or_outcome(cal: Calendar, ending: str) -> None:
    # given a case with two booked visits, then closed (or ended at intake) once they are past (closing cancels
    # the visits still to come: case_work.services._on_close)
    cw = cal.cw
    case_id = await cw.open()
    first = await cal.book(case_id, at(cal.monday, 9))
    second = await cal.book(case_id, at(cal.monday, 11))
    cw.clock.now = at(cal.monday, 12, 30)
    if ending == "closure":
        await cw.bring_to(case_id, "closure")
    else:
        await cw.call("sw", case_services.advance, case_id, "not_opened", "不符合开案条件")
    before = await cal.counts()
    # when a visit is booked, moved or given an outcome
    refusals = [
        await cw.refused("sw", visits.book_visit, case_id, mode="call", start=at(cal.monday, 14), minutes=30),
        await cw.refused("sw", visits.reschedule_visit, second.id, at(cal.monday, 16), 60),
        await cw.refused("sw", visits.record_outcome, first.id, "done"),
        await cw.refused("admin", visits.record_outcome, first.id, "done"),
    ]
    # then each is CASE_CLOSED and nothing is written
    assert refusals == ["CASE_CLOSED"] * 4
    assert await cal.counts() == before
    assert await cal.slot(second.id) == (at(cal.monday, 11), at(cal.monday, 12), "active")
    # but a visit left booked can still be cancelled: it frees the worker's time
    await cw.call("sw", visits.cancel_visit, second.id, "个案已结案")
    assert (await cal.slot(second.id))[2] == "cancelled"


async def test_the_database_refuses_a_visit_on_a_closed_case_on_its_own(cal: Calendar) -> None:
    # given a closed case and a visit of it written before closure (past when it closed: left booked)
    cw = cal.cw
    case_id = await cw.open()
    visit = await cal.book(case_id, at(cal.monday, 9))
    cw.clock.now = at(cal.monday, 10, 30)
    await cw.bring_to(case_id, "closure")
    # when raw SQL (the app role, under RLS) writes a new visit or an outcome past the services
    statements: list[Callable[[], str]] = [
        lambda: (
            "INSERT INTO case_work_visits (case_id, mode, appointment_id, worker_account_id) "
            f"SELECT {case_id}, 'call', appointment_id, worker_account_id FROM case_work_visits WHERE id = {visit.id}"
        ),
        lambda: f"UPDATE case_work_visits SET status = 'done', outcome_at = now() WHERE id = {visit.id}",
        lambda: f"UPDATE case_work_visits SET updated_at = now() WHERE id = {visit.id}",
    ]
    for sql in statements:
        with pytest.raises(DBAPIError) as err:
            async with cw.as_("sw") as ctx:
                await ctx.session.execute(text(sql()))
        # then the trigger refuses it, with the name the services answer as CASE_CLOSED
        assert constraint_name(err.value) == "case_work_case_closed", sql()
    # and cancelling passes
    async with cw.as_("sw") as ctx:
        await ctx.session.execute(
            text(f"UPDATE case_work_visits SET status = 'cancelled', cancel_reason = '结案' WHERE id = {visit.id}")
        )


async def test_visits_are_listed_for_those_who_see_the_case(cal: Calendar) -> None:
    cw = cal.cw
    mine = await cw.open()
    theirs = await cw.open("sw2", supervisor=cw.ids["sup"])
    await cal.book(mine, at(cal.monday, 9))
    await cal.book(mine, at(cal.monday, 11), mode="call")
    await cal.book(theirs, at(cal.monday, 9), who="sw2")
    listed: dict[str, list[int]] = {}
    for who in ("sw", "sw2", "sup", "admin", "admin_b"):
        page = await cw.call(who, visits.list_visits, visits.VisitFilter())
        listed[who] = sorted(v.case_id for v in page.items)
    assert listed == {
        "sw": [mine, mine],
        "sw2": [theirs],
        "sup": sorted([mine, mine, theirs]),
        "admin": sorted([mine, mine, theirs]),
        "admin_b": [],
    }
    calls = await cw.call("admin", visits.list_visits, visits.VisitFilter(modes=("call",)))
    assert [v.case_id for v in calls.items] == [mine]
    assert await cw.refused("volunteer", visits.list_visits, visits.VisitFilter()) == "FORBIDDEN"


async def test_concurrent_bookings_of_one_persons_time_exactly_one_wins(cal: Calendar, db_url: URL) -> None:
    # Visits of four different cases of sw (so that no case lock serialises them: the calendar decides) and
    # counseling sessions of sw, all at overlapping times of the same morning.
    cw = cal.cw
    cases = [await cw.open() for _ in range(4)]
    racer_viewer = Viewer(
        label="admin",
        account_id=cw.ids["admin"],
        organization_id=cw.ids["org_a"],
        role="organization_admin",
        extra_permissions=frozenset({"case_work.manage"}) | COUNSELING,
    )

    async def round_(racer: Racer, day: datetime) -> None:
        async def book(ctx: ServiceContext, i: int) -> str:
            start = at(day, 10) + timedelta(minutes=i % 3 * 10)
            if i % 4 == 3:
                await counseling.book_session(
                    ctx,
                    client_id=cal.client,
                    counselor_id=cal.counselor,
                    start=start,
                    minutes=50,
                    mode="online",
                    meeting_link="https://meet.example/room",
                )
                return "session"
            await visits.book_visit(ctx, cases[i % 4], mode="home_visit", start=start, minutes=60)
            return "visit"

        outcomes = await racer.race(book, viewer=racer_viewer)
        assert sorted(o for o in outcomes if o in ("visit", "session")) in (["visit"], ["session"]), outcomes
        assert outcomes.count("SLOT_TAKEN") == len(outcomes) - 1, outcomes

    async with Racer.open(db_url, workers=8, clock=cw.clock) as racer:
        for n in range(rounds(3)):
            await round_(racer, cal.monday + timedelta(days=n))
    # and the calendar holds exactly one active appointment of sw per morning
    async with cw.as_("admin") as ctx:
        per_day = (
            await ctx.session.execute(
                select(func.count())
                .select_from(Appointment)
                .where(Appointment.owner_id == cal.records["sw"], Appointment.status == "active")
            )
        ).scalar_one()
    assert per_day == rounds(3)
