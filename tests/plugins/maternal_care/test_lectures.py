"""Lectures at the service layer: bad input refused with nothing written, seats then a FIFO waitlist, promotion on
cancellation (notified), capacity changes, attendance, reminders, the audience rule on the lecture's date,
recommendations, who sees registrations -- and capacity held by the database under concurrent registrations
and cancellations (tests.concurrency.Racer)."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import create_sessionmaker
from core.errors import DomainError
from core.models import Notification, Resident
from core.services.common import constraint_name
from core.services.context import ServiceContext, Viewer
from plugins.maternal_care import gestation
from plugins.maternal_care.lectures import services as lectures
from plugins.maternal_care.lectures.models import Lecture, Registration
from plugins.maternal_care.lectures.services import PregnancyDates, stages_on
from plugins.maternal_care.models import Mother, Pregnancy
from plugins.maternal_care.registry import services as registry
from tests import two_organisations
from tests.concurrency import Racer, rounds

STAFF = frozenset({registry.MANAGE, registry.HEALTH, registry.LECTURES})
MANAGE = frozenset({registry.MANAGE})
ADMIN = frozenset({registry.MANAGE, registry.LECTURES})
_serial = itertools.count(1)
# (core role, organisation, plugin permissions as sign-in would give them)
CALLERS: dict[str, tuple[str, str, frozenset[str]]] = {
    "staff": ("social_worker", "a", STAFF),  # holds maternal_care.staff
    "sw": ("social_worker", "a", MANAGE),  # the mothers' assigned social worker
    "sw2": ("social_worker", "a", MANAGE),  # another social worker of A
    "admin": ("organization_admin", "a", ADMIN),
    "padmin": ("platform_admin", "a", ADMIN),  # a platform administrator whose account is of A
    "counselor": ("counselor", "a", frozenset()),
    "volunteer_head": ("community_head", "a", frozenset()),
    "staff_b": ("social_worker", "b", STAFF),
    "admin_b": ("organization_admin", "b", ADMIN),
}
TABLES = (Lecture, Registration, Notification)


@dataclass
class World:
    engine: AsyncEngine
    clock: Any
    ids: dict[str, int] = field(default_factory=dict)

    def viewer(self, who: str) -> Viewer:
        role, org, permissions = CALLERS[who]
        return Viewer(
            label=who,
            account_id=self.ids[who],
            organization_id=self.ids[f"org_{org}"],
            role=role,
            community_id=self.ids.get(f"community_{org}") if role == "community_head" else None,
            extra_permissions=permissions,
        )

    @contextlib.asynccontextmanager
    async def as_(self, who: str) -> AsyncIterator[ServiceContext]:
        async with create_sessionmaker(self.engine)() as session, session.begin():
            yield ServiceContext(session=session, viewer=self.viewer(who), clock=self.clock)

    async def call(self, who: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        async with self.as_(who) as ctx:
            return await fn(ctx, *args, **kwargs)

    async def refused(self, who: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
        with pytest.raises(DomainError) as err:
            await self.call(who, fn, *args, **kwargs)
        return err.value.code

    async def counts(self) -> tuple[int, ...]:
        """Rows of the lecture tables and the outbox, of every organisation: for "nothing written"."""
        everyone = Viewer(label="count", role="platform_admin")
        async with create_sessionmaker(self.engine)() as session, session.begin():
            ServiceContext(session=session, viewer=everyone)
            return tuple([await session.scalar(select(func.count()).select_from(m)) or 0 for m in TABLES])

    def at(self, days: float = 7, hour: int | None = None) -> datetime:
        moment = self.clock.now + timedelta(days=days)
        return moment if hour is None else moment.replace(hour=hour, minute=0, second=0)

    def local_at(self, days: int, hour: int = 14) -> datetime:
        """`hour` o'clock in Shanghai, `days` after today there (the date the audience rule and `mother`'s
        weeks count from, whatever the time of day in UTC)."""
        shanghai = ZoneInfo("Asia/Shanghai")
        day = self.clock.now.astimezone(shanghai).date() + timedelta(days=days)
        return datetime(day.year, day.month, day.day, hour, tzinfo=shanghai)

    async def lecture(
        self,
        capacity: int = 3,
        audience: tuple[str, ...] = ("trimester_1", "trimester_2", "trimester_3", "postpartum"),
        starts_at: datetime | None = None,
        who: str = "staff",
    ) -> int:
        start = starts_at or self.at(7)
        lecture = await self.call(
            who,
            lectures.create_lecture,
            lectures.LectureInput(
                title="疫情期间孕妇居家自我保健",
                speaker="产科 王医生",
                starts_at=start,
                ends_at=start + timedelta(hours=1),
                capacity=capacity,
                audience=audience,
                online_url="https://meeting.example.cn/123",
            ),
        )
        return int(lecture.id)

    async def mother(
        self,
        org: str = "a",
        weeks: int | None = 20,
        delivered_days_ago: int | None = None,
        phone: str = "13800000000",
        social_worker: str = "sw",
        lmp: date | None = None,
    ) -> int:
        """A mother of `org` with an ongoing pregnancy of `weeks` weeks today (or from `lmp`), or delivered some
        days ago."""
        today = self.clock.now.astimezone(ZoneInfo("Asia/Shanghai")).date()
        async with self.as_("admin" if org == "a" else "admin_b") as ctx:
            resident = Resident(
                name=f"孕妇{next(_serial)}",
                phone=phone,
                community_id=self.ids[f"community_{org}"],
                organization_id=self.ids[f"org_{org}"],
            )
            ctx.session.add(resident)
            await ctx.session.flush()
            mother = Mother(
                resident_id=resident.id,
                community_id=self.ids[f"community_{org}"],
                social_worker_account_id=self.ids[social_worker if org == "a" else "staff_b"],
                consent_at=self.clock.now,
                organization_id=self.ids[f"org_{org}"],
            )
            ctx.session.add(mother)
            await ctx.session.flush()
            if delivered_days_ago is not None:
                lmp = today - timedelta(days=delivered_days_ago + 275)
                ctx.session.add(
                    Pregnancy(
                        mother_id=mother.id,
                        lmp=lmp,
                        edd=gestation.edd_from_lmp(lmp),
                        dating_basis="lmp",
                        status="delivered",
                        outcome_on=today - timedelta(days=delivered_days_ago),
                    )
                )
            elif lmp is not None or weeks is not None:
                lmp = lmp or today - timedelta(weeks=weeks or 0)
                ctx.session.add(
                    Pregnancy(mother_id=mother.id, lmp=lmp, edd=gestation.edd_from_lmp(lmp), dating_basis="lmp")
                )
            await ctx.session.flush()
            return int(mother.id)

    async def registrations(self, lecture_id: int) -> list[tuple[int, str]]:
        async with self.as_("admin") as ctx:
            rows = await ctx.session.execute(
                select(Registration.mother_id, Registration.status)
                .where(Registration.lecture_id == lecture_id)
                .order_by(Registration.id)
            )
            return [(m, s) for m, s in rows.all()]

    async def seats(self, lecture_id: int) -> tuple[int, int]:
        """(registered_count as the database keeps it, registered rows counted)."""
        async with self.as_("admin") as ctx:
            lecture = await ctx.session.get_one(Lecture, lecture_id)
            rows = await ctx.session.scalar(
                select(func.count())
                .select_from(Registration)
                .where(Registration.lecture_id == lecture_id, Registration.status == "registered")
            )
            return lecture.registered_count, rows or 0


@pytest.fixture
async def w(engine: AsyncEngine, clock: Any) -> World:
    world = World(engine, clock)
    await two_organisations.build(
        engine, clock, CALLERS, world.ids, plugin_roles={registry.HEALTH: registry.STAFF_ROLE}
    )
    return world


# -- the audience rule (pure) ----------------------------------------------------------------------------------

LMP = date(2026, 1, 1)


@pytest.mark.parametrize(
    ("on", "expected"),
    [
        (LMP - timedelta(days=1), set()),  # before the LMP
        (gestation.date_at(LMP, 13, 6), {"trimester_1"}),
        (gestation.date_at(LMP, 14, 0), {"trimester_2"}),
        (gestation.date_at(LMP, 27, 6), {"trimester_2"}),
        (gestation.date_at(LMP, 28, 0), {"trimester_3"}),
        (gestation.date_at(LMP, 43, 6), {"trimester_3"}),
        (gestation.date_at(LMP, 44, 0), set()),  # an ongoing record nobody updated fits nothing
    ],
)
def test_an_ongoing_pregnancy_is_in_the_trimester_of_the_date(on: date, expected: set[str]) -> None:
    assert stages_on([PregnancyDates(LMP, "ongoing", None)], on) == expected


@pytest.mark.parametrize(
    ("days", "expected"), [(-1, set()), (0, {"postpartum"}), (41, {"postpartum"}), (42, set()), (43, set())]
)
def test_postpartum_is_the_42_days_from_the_delivery(days: int, expected: set[str]) -> None:
    # within 42 days of delivery: day 0 (the delivery day) to day 41, 42 days; day 42 (the check) is past it
    delivered = date(2026, 10, 1)
    assert stages_on([PregnancyDates(LMP, "delivered", delivered)], delivered + timedelta(days=days)) == expected
    # a loss is no postpartum audience
    assert stages_on([PregnancyDates(LMP, "loss", delivered)], delivered + timedelta(days=max(days, 0))) == set()


def test_the_lectures_date_is_local_to_the_time_zone() -> None:
    # 13+6 ends on this Shanghai date: 16:30 UTC is already 14+0 in Shanghai, still 13+6 in Honolulu
    boundary = gestation.date_at(LMP, 14, 0)
    start = datetime(boundary.year, boundary.month, boundary.day, 0, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    p = [PregnancyDates(LMP, "ongoing", None)]
    assert lectures.fits(["trimester_2"], p, start, ZoneInfo("Asia/Shanghai"))
    assert not lectures.fits(["trimester_2"], p, start, ZoneInfo("Pacific/Honolulu"))
    assert lectures.fits(["trimester_1"], p, start, ZoneInfo("Pacific/Honolulu"))


# -- lectures: bad input ---------------------------------------------------------------------------------------


def _input(w: World, **kw: Any) -> lectures.LectureInput:
    start = kw.pop("starts_at", w.at(3))
    values: dict[str, Any] = {
        "title": "产后康复",
        "speaker": "王医生",
        "starts_at": start,
        "ends_at": start + timedelta(hours=1),
        "capacity": 10,
        "audience": ("postpartum",),
        "place": "社区卫生服务中心三楼",
    }
    values.update(kw)
    return lectures.LectureInput(**values)


async def test_bad_lectures_are_refused_with_stable_codes_and_nothing_written(w: World) -> None:
    before = await w.counts()
    start = w.at(3)
    cases = [
        (_input(w, ends_at=start - timedelta(minutes=1)), "MATERNAL_CARE_LECTURE_ENDS_BEFORE_START"),
        (_input(w, ends_at=start), "MATERNAL_CARE_LECTURE_ENDS_BEFORE_START"),
        (_input(w, place=""), "REQUIRED"),  # neither a link nor a place
        (_input(w, capacity=0), "OUT_OF_RANGE"),
        (_input(w, capacity=501), "OUT_OF_RANGE"),
        (_input(w, audience=()), "REQUIRED"),
        (_input(w, audience=("trimester_4",)), "INVALID_INPUT"),
        (_input(w, title="  "), "REQUIRED"),
        (_input(w, online_url="javascript:alert(1)"), "INVALID_INPUT"),
        (_input(w, starts_at=w.at(-1)), "OUT_OF_RANGE"),
    ]
    for data, code in cases:
        assert await w.refused("staff", lectures.create_lecture, data) == code, data
    # only staff and administrators create lectures
    for who in ("sw", "counselor", "volunteer_head"):
        assert await w.refused(who, lectures.create_lecture, _input(w)) == "FORBIDDEN", who
    assert await w.counts() == before
    # the database refuses an end before the start on its own too
    lecture_id = await w.lecture()
    with pytest.raises(DBAPIError) as err:
        async with w.as_("staff") as ctx:
            await ctx.session.execute(
                text(
                    f"UPDATE maternal_care_lectures SET ends_at = starts_at - interval '1 hour' WHERE id = {lecture_id}"
                )
            )
    assert constraint_name(err.value) == "ck_maternal_care_lectures_ends_after_start"


# -- registrations ---------------------------------------------------------------------------------------------


async def test_seats_then_a_fifo_waitlist_and_a_cancellation_promotes_the_first_in_line(w: World) -> None:
    # given a lecture of 2 seats and 4 mothers registered one after the other
    lecture_id = await w.lecture(capacity=2)
    mothers = [await w.mother(weeks=10 + i) for i in range(4)]
    regs = [await w.call("staff", lectures.register, lecture_id, m) for m in mothers]
    # then the first two have seats, the others wait in arrival order
    assert [r.status for r in regs] == ["registered", "registered", "waitlisted", "waitlisted"]
    async with w.as_("staff") as ctx:
        assert await lectures.waitlist_positions(ctx, [r.id for r in regs]) == [None, None, 1, 2]
    # when the second seat is cancelled, the first waitlisted gets it in the same transaction, and is told
    await w.call("sw", lectures.cancel_registration, regs[1].id, "孩子发烧")
    assert await w.registrations(lecture_id) == [
        (mothers[0], "registered"),
        (mothers[1], "cancelled"),
        (mothers[2], "registered"),
        (mothers[3], "waitlisted"),
    ]
    assert await w.seats(lecture_id) == (2, 2)
    async with w.as_("admin") as ctx:
        told = (
            await ctx.session.scalars(select(Notification).where(Notification.kind == "maternal_care.lecture_promoted"))
        ).all()
        assert [(n.payload["registration"], n.recipient_phone) for n in told] == [(regs[2].id, "13800000000")]
        assert await lectures.waitlist_positions(ctx, [regs[3].id]) == [1]
    # a cancelled place on the waitlist frees no seat: nobody is promoted
    await w.call("staff", lectures.cancel_registration, regs[3].id)
    assert await w.seats(lecture_id) == (2, 2)
    assert await w.refused("staff", lectures.cancel_registration, regs[3].id) == "INVALID_TRANSITION"
    # and she may register again (her live registration was cancelled): the lecture is full, she waits
    again = await w.call("staff", lectures.register, lecture_id, mothers[3])
    assert again.status == "waitlisted"


async def test_registering_twice_outside_the_audience_or_too_late_is_refused_nothing_written(w: World) -> None:
    lecture_id = await w.lecture(capacity=5, audience=("trimester_3",))
    third = await w.mother(weeks=30)
    first_trimester = await w.mother(weeks=8)
    not_pregnant = await w.mother(weeks=None)
    await w.call("staff", lectures.register, lecture_id, third)
    before = await w.counts()
    assert await w.refused("staff", lectures.register, lecture_id, third) == "MATERNAL_CARE_LECTURE_ALREADY_REGISTERED"
    for mother in (first_trimester, not_pregnant):
        assert await w.refused("staff", lectures.register, lecture_id, mother) == "MATERNAL_CARE_OUTSIDE_AUDIENCE"
    assert await w.refused("staff", lectures.register, lecture_id, third, "Mars/Olympus") == "INVALID_INPUT"
    assert await w.refused("staff", lectures.register, lecture_id, third, "Asia/" + "x" * 300) == "INVALID_INPUT"
    assert await w.counts() == before
    # the database holds one live registration per mother and lecture whatever the services do
    with pytest.raises(DBAPIError) as err:
        async with w.as_("staff") as ctx:
            await ctx.session.execute(
                text(
                    "INSERT INTO maternal_care_lecture_registrations (lecture_id, mother_id, status, "
                    f"registered_by_account_id) VALUES ({lecture_id}, {third}, 'waitlisted', {w.ids['staff']})"
                )
            )
    assert constraint_name(err.value) == "uq_maternal_care_lecture_registrations_live"
    # a cancelled lecture, or one that has started, takes no registrations
    late = await w.lecture(starts_at=w.at(1))
    cancelled = await w.lecture()
    await w.call("staff", lectures.cancel_lecture, cancelled, "讲师临时有事")
    before = await w.counts()
    w.clock.now += timedelta(days=1, minutes=5)
    assert await w.refused("staff", lectures.register, late, third) == "MATERNAL_CARE_LECTURE_STARTED"
    assert await w.refused("staff", lectures.register, cancelled, third) == "MATERNAL_CARE_LECTURE_CANCELLED"
    assert await w.counts() == before


async def test_a_mother_is_judged_on_the_lectures_date_not_today(w: World) -> None:
    # given a mother at 13+0 today and a second-trimester lecture in 7 days (she is 14+0 then)
    mother = await w.mother(weeks=13)
    second = await w.lecture(audience=("trimester_2",), starts_at=w.local_at(7))
    first = await w.lecture(audience=("trimester_1",), starts_at=w.local_at(7))
    # then she fits the second-trimester lecture, not the first-trimester one
    assert (await w.call("staff", lectures.register, second, mother)).status == "registered"
    assert await w.refused("staff", lectures.register, first, mother) == "MATERNAL_CARE_OUTSIDE_AUDIENCE"


async def test_capacity_changes_never_below_the_seats_taken_and_a_raise_promotes(w: World) -> None:
    lecture_id = await w.lecture(capacity=2)
    mothers = [await w.mother() for _ in range(4)]
    for m in mothers:
        await w.call("staff", lectures.register, lecture_id, m)
    data = lectures.LectureChanges(capacity=1)
    before = await w.counts()
    assert await w.refused("staff", lectures.update_lecture, lecture_id, data) == (
        "MATERNAL_CARE_CAPACITY_BELOW_REGISTERED"
    )
    assert await w.refused("sw", lectures.update_lecture, lecture_id, data) == "FORBIDDEN"
    assert await w.counts() == before
    # the database refuses it on its own as well
    with pytest.raises(DBAPIError) as err:
        async with w.as_("staff") as ctx:
            await ctx.session.execute(text(f"UPDATE maternal_care_lectures SET capacity = 1 WHERE id = {lecture_id}"))
    assert constraint_name(err.value) == "ck_maternal_care_lectures_within_capacity"
    # raising it to 3 gives the first waitlisted the new seat
    raised = await w.call("admin", lectures.update_lecture, lecture_id, lectures.LectureChanges(capacity=3))
    assert (raised.capacity, raised.registered_count) == (3, 3)
    assert [s for _, s in await w.registrations(lecture_id)] == ["registered"] * 3 + ["waitlisted"]


async def test_attendance_only_for_a_seat_once_the_lecture_has_started(w: World) -> None:
    lecture_id = await w.lecture(capacity=1, starts_at=w.at(1))
    seat = await w.call("staff", lectures.register, lecture_id, await w.mother())
    waiting = await w.call("staff", lectures.register, lecture_id, await w.mother())
    assert await w.refused("staff", lectures.record_attendance, seat.id, "present") == (
        "MATERNAL_CARE_LECTURE_NOT_STARTED"
    )
    w.clock.now += timedelta(days=1, minutes=10)
    assert await w.refused("staff", lectures.record_attendance, waiting.id, "present") == "INVALID_TRANSITION"
    assert await w.refused("staff", lectures.record_attendance, seat.id, "maybe") == "INVALID_INPUT"
    assert await w.refused("sw", lectures.record_attendance, seat.id, "present") == "FORBIDDEN"
    # after the start nobody cancels any more (the record of who came stays)
    assert await w.refused("staff", lectures.cancel_registration, seat.id) == "MATERNAL_CARE_LECTURE_STARTED"
    recorded = await w.call("staff", lectures.record_attendance, seat.id, "present")
    assert (recorded.attendance, recorded.attendance_recorded_by_account_id) == ("present", w.ids["staff"])


async def test_reminders_are_queued_once_per_seat_before_the_start(w: World) -> None:
    soon = await w.lecture(capacity=1, starts_at=w.at(0.5))
    later = await w.lecture(capacity=5, starts_at=w.at(3))
    seat = await w.call("staff", lectures.register, soon, await w.mother())
    await w.call("staff", lectures.register, soon, await w.mother())  # waitlisted: no reminder
    no_phone = await w.mother(phone="")
    await w.call("staff", lectures.register, later, no_phone)
    system = Viewer(label="job", role="system", organization_id=w.ids["org_a"])
    async with create_sessionmaker(w.engine)() as session, session.begin():
        ctx = ServiceContext(session=session, viewer=system, clock=w.clock)
        assert await lectures.queue_reminders(ctx) == 1
        assert await lectures.queue_reminders(ctx) == 0  # a repeated run queues nothing twice
    # two days later the other lecture is within a day: its mother has no phone, her social worker is told
    w.clock.now += timedelta(days=2, hours=1)
    async with create_sessionmaker(w.engine)() as session, session.begin():
        ctx = ServiceContext(session=session, viewer=system, clock=w.clock)
        assert await lectures.queue_reminders(ctx) == 1
        rows = (
            await session.scalars(
                select(Notification)
                .where(Notification.kind == "maternal_care.lecture_reminder")
                .order_by(Notification.id)
            )
        ).all()
    assert (rows[0].payload["registration"], rows[0].account_id) == (seat.id, None)
    assert rows[1].account_id == w.ids["sw"]


# -- who sees registrations ------------------------------------------------------------------------------------


async def test_registrations_are_seen_by_staff_administrators_and_her_social_worker_only(w: World) -> None:
    lecture_id = await w.lecture(capacity=5)
    mother = await w.mother()
    reg = await w.call("sw", lectures.register, lecture_id, mother)  # her social worker registers her
    # positive controls
    for who in ("staff", "sw", "admin"):
        async with w.as_(who) as ctx:
            page = await lectures.mother_registrations(ctx, mother)
            assert [r.id for r in page.items] == [reg.id], who
            assert [r.id for r in (await lectures.lecture_registrations(ctx, lecture_id)).items] == [reg.id], who
            assert list(await lectures.registrations_by_id(ctx, [reg.id])) == [reg.id], who
    # another social worker sees the lecture and its seats, not who took them
    async with w.as_("sw2") as ctx:
        assert (await lectures.lectures_by_id(ctx, [lecture_id]))[lecture_id].registered_count == 1
        assert (await lectures.lecture_registrations(ctx, lecture_id)).items == []
        assert await lectures.registrations_by_id(ctx, [reg.id]) == {}
    for who in ("sw2", "staff_b", "admin_b"):
        assert await w.refused(who, lectures.mother_registrations, mother) == "NOT_FOUND", who
        assert await w.refused(who, lectures.recommendations, mother) == "NOT_FOUND", who
        assert await w.refused(who, lectures.register, lecture_id, mother) == "NOT_FOUND", who
        assert await w.refused(who, lectures.cancel_registration, reg.id) == "NOT_FOUND", who
    # callers outside maternal care see no lectures at all, and are refused before any lookup
    for who in ("counselor", "volunteer_head"):
        assert await w.refused(who, lectures.list_lectures) == "FORBIDDEN", who
        assert await w.refused(who, lectures.cancel_registration, reg.id) == "FORBIDDEN", who
        async with w.as_(who) as ctx:
            assert await lectures.lectures_by_id(ctx, [lecture_id]) == {}
    # another organisation: nothing (row-level security), even for its staff and administrator
    for who in ("staff_b", "admin_b"):
        async with w.as_(who) as ctx:
            assert (await lectures.list_lectures(ctx)).items == []
            assert await lectures.lectures_by_id(ctx, [lecture_id]) == {}
            assert (await lectures.lecture_registrations(ctx, lecture_id)).items == []
    b_mother = await w.mother(org="b")
    assert await w.refused("staff_b", lectures.register, lecture_id, b_mother) == "NOT_FOUND"


# -- recommendations -------------------------------------------------------------------------------------------


async def test_recommendations_fit_her_week_on_each_lectures_date(w: World) -> None:
    # given a mother at 12+0 today
    mother = await w.mother(weeks=12)
    t1_soon = await w.lecture(audience=("trimester_1",), starts_at=w.at(3))  # 12+3: fits
    t1_late = await w.lecture(audience=("trimester_1",), starts_at=w.at(20))  # 14+6 then: no longer
    t2_late = await w.lecture(audience=("trimester_2",), starts_at=w.at(20))  # fits then
    t2_soon = await w.lecture(audience=("trimester_2",), starts_at=w.at(3))  # not yet
    post = await w.lecture(audience=("postpartum",), starts_at=w.at(5))  # not delivered
    registered = await w.lecture(audience=("trimester_1", "trimester_2"), starts_at=w.at(4))
    waitlisted = await w.lecture(capacity=1, audience=("trimester_1",), starts_at=w.at(6))
    full = await w.lecture(capacity=1, audience=("trimester_1",), starts_at=w.at(8))
    cancelled = await w.lecture(audience=("trimester_1",), starts_at=w.at(9))
    past = await w.lecture(audience=("trimester_1",), starts_at=w.at(0.1))
    await w.call("staff", lectures.register, registered, mother)
    await w.call("staff", lectures.register, waitlisted, await w.mother(weeks=10))
    assert (await w.call("staff", lectures.register, waitlisted, mother)).status == "waitlisted"
    await w.call("staff", lectures.register, full, await w.mother(weeks=10))
    await w.call("staff", lectures.cancel_lecture, cancelled, "取消")
    w.clock.now += timedelta(hours=3)  # `past` has started
    async with w.as_("sw") as ctx:
        found = [lec.id for lec in await lectures.recommendations(ctx, mother)]
        # then: the fitting ones, soonest first; a full lecture stays in (she would wait), the rest not
        assert found == [t1_soon, full, t2_late]
        assert [lec.id for lec in await lectures.recommendations(ctx, mother, first=1)] == [t1_soon]
    assert {t1_late, t2_soon, post, registered, waitlisted, cancelled, past}.isdisjoint(found)
    # a mother delivered 10 days ago is recommended the postpartum lecture (day 15 then), and nothing else
    delivered = await w.mother(delivered_days_ago=10)
    async with w.as_("staff") as ctx:
        assert [lec.id for lec in await lectures.recommendations(ctx, delivered)] == [post]
        assert await lectures.recommendations(ctx, await w.mother(weeks=None)) == []
    assert await w.refused("staff", lectures.recommendations, mother, "Not/AZone") == "INVALID_INPUT"
    assert await w.refused("staff", lectures.recommendations, mother, None, first=0) == "OUT_OF_RANGE"


# -- capacity under concurrency: the database's --------------------------------------------------------------


async def test_thirty_concurrent_registrations_for_twenty_seats(w: World, db_url: URL) -> None:
    staff = w.viewer("staff")

    async def round_(racer: Racer) -> None:
        # given a lecture of 20 seats and 30 mothers registered at once
        lecture_id = await w.lecture(capacity=20)
        mothers = [await w.mother() for _ in range(30)]

        async def register(ctx: ServiceContext, i: int) -> tuple[int, str]:
            reg = await lectures.register(ctx, lecture_id, mothers[i])
            return reg.id, reg.status

        outcomes = await racer.race(register, viewer=staff)
        # then 20 have seats and 10 wait, and the database's counter is the truth
        assert sorted(s for _, s in outcomes) == ["registered"] * 20 + ["waitlisted"] * 10, outcomes
        assert await w.seats(lecture_id) == (20, 20)
        # in arrival order: every seat was taken before anyone was put on the waitlist, and the waitlist
        # positions follow the arrivals
        by_arrival = sorted(outcomes)
        assert [s for _, s in by_arrival] == ["registered"] * 20 + ["waitlisted"] * 10, by_arrival
        async with w.as_("staff") as ctx:
            waiting = [pk for pk, s in by_arrival if s == "waitlisted"]
            assert await lectures.waitlist_positions(ctx, waiting) == list(range(1, 11))

        # when 8 seats are cancelled at once, 8 waitlisted are promoted, first in first out, never over 20
        seated = [pk for pk, s in by_arrival if s == "registered"]

        async def cancel(ctx: ServiceContext, i: int) -> str:
            await lectures.cancel_registration(ctx, seated[i], "临时有事")
            return "cancelled"

        assert await racer.race(cancel, viewer=staff, workers=8) == ["cancelled"] * 8
        async with w.as_("staff") as ctx:
            statuses = dict(
                (
                    await ctx.session.execute(
                        select(Registration.id, Registration.status).where(Registration.id.in_(waiting))
                    )
                ).all()
            )
            told = (
                await ctx.session.scalars(
                    select(Notification).where(Notification.kind == "maternal_care.lecture_promoted")
                )
            ).all()
        assert [statuses[pk] for pk in waiting] == ["registered"] * 8 + ["waitlisted"] * 2
        assert await w.seats(lecture_id) == (20, 20)
        # each of the 8 promoted was told once, nobody else of this lecture
        this_lecture = sorted(n.payload["registration"] for n in told if n.payload["lecture"] == lecture_id)
        assert this_lecture == sorted(waiting[:8])

    async with Racer.open(db_url, workers=30, clock=w.clock) as racer:
        for _ in range(rounds(2)):
            await round_(racer)


async def test_the_database_refuses_a_seat_over_capacity_on_its_own(w: World) -> None:
    lecture_id = await w.lecture(capacity=1)
    await w.call("staff", lectures.register, lecture_id, await w.mother())
    other = await w.mother()
    with pytest.raises(DBAPIError) as err:
        async with w.as_("staff") as ctx:
            await ctx.session.execute(
                text(
                    "INSERT INTO maternal_care_lecture_registrations (lecture_id, mother_id, status, "
                    f"registered_by_account_id) VALUES ({lecture_id}, {other}, 'registered', {w.ids['staff']})"
                )
            )
    assert constraint_name(err.value) == "ck_maternal_care_lectures_within_capacity"
    # and registrations are kept, moving only forward
    with pytest.raises(DBAPIError) as err:
        async with w.as_("staff") as ctx:
            await ctx.session.execute(
                text(f"DELETE FROM maternal_care_lecture_registrations WHERE lecture_id = {lecture_id}")
            )
    assert constraint_name(err.value) == "maternal_care_registration_kept"
    with pytest.raises(DBAPIError) as err:
        async with w.as_("staff") as ctx:
            await ctx.session.execute(
                text(
                    "UPDATE maternal_care_lecture_registrations SET status = 'waitlisted' "
                    f"WHERE lecture_id = {lecture_id}"
                )
            )
    assert constraint_name(err.value) == "maternal_care_registration_transition"


# -- promotion judges the audience again -----------------------------------------------------------------------


async def test_promotion_passes_over_a_waitlisted_mother_who_no_longer_fits(w: World) -> None:
    # given a first-trimester lecture of 1 seat in 7 days: a seat (6 weeks today), then two waiting, in line:
    # one at 12 weeks today, one at 5
    lecture_id = await w.lecture(capacity=1, audience=("trimester_1",), starts_at=w.local_at(7))
    seated = await w.call("staff", lectures.register, lecture_id, await w.mother(weeks=6))
    first = await w.call("staff", lectures.register, lecture_id, await w.mother(weeks=12))
    second = await w.call("staff", lectures.register, lecture_id, await w.mother(weeks=5))
    assert [first.status, second.status] == ["waitlisted", "waitlisted"]
    # when the lecture moves a week later (the first waiting is 14+0 then: second trimester)
    moved = lectures.LectureChanges(starts_at=w.local_at(14), ends_at=w.local_at(14, 15))
    await w.call("staff", lectures.update_lecture, lecture_id, moved)
    # and the seat is cancelled
    await w.call("staff", lectures.cancel_registration, seated.id, "早产风险")
    # then the first in line is passed over (cancelled, with the reason, told) and the next has the seat
    async with w.as_("staff") as ctx:
        rows = {
            r.id: r
            for r in await ctx.session.scalars(select(Registration).where(Registration.lecture_id == lecture_id))
        }
        told = (await ctx.session.scalars(select(Notification).order_by(Notification.id))).all()
    assert (rows[first.id].status, rows[first.id].cancel_reason) == ("cancelled", lectures.OUTSIDE_AUDIENCE_REASON)
    assert rows[second.id].status == "registered"
    assert await w.seats(lecture_id) == (1, 1)
    # (the seated mother was told of the move when it was made)
    assert [(n.kind, n.payload["registration"]) for n in told if n.payload.get("lecture") == lecture_id] == [
        ("maternal_care.lecture_changed", seated.id),
        ("maternal_care.lecture_waitlist_cancelled", first.id),
        ("maternal_care.lecture_promoted", second.id),
    ]


async def test_a_raised_capacity_promotes_only_those_who_still_fit(w: World) -> None:
    # given a postpartum lecture in 7 days, full, and waiting: mothers delivered 30 and 32 days ago (days 37
    # and 39 then: both within the 42 days)
    lecture_id = await w.lecture(capacity=1, audience=("postpartum",), starts_at=w.local_at(7))
    await w.call("staff", lectures.register, lecture_id, await w.mother(delivered_days_ago=1))
    fits_then = await w.call("staff", lectures.register, lecture_id, await w.mother(delivered_days_ago=30))
    late = await w.call("staff", lectures.register, lecture_id, await w.mother(delivered_days_ago=32))
    # when the lecture is moved 4 days later (day 41 and day 43 then) and its capacity raised to 3
    changes = lectures.LectureChanges(capacity=3, starts_at=w.local_at(11), ends_at=w.local_at(11, 15))
    updated = await w.call("staff", lectures.update_lecture, lecture_id, changes)
    # then the one still within her 42 days has a seat, the other is cancelled; the third seat stays free
    assert (updated.capacity, updated.registered_count) == (3, 2)
    async with w.as_("staff") as ctx:
        found = await lectures.registrations_by_id(ctx, [fits_then.id, late.id])
    assert (found[fits_then.id].status, found[late.id].status) == ("registered", "cancelled")
    assert await w.seats(lecture_id) == (2, 2)


# -- a platform administrator acts on their own organisation's lectures -------------------------------------------


async def test_a_platform_administrator_of_a_does_not_reach_bs_lectures(w: World) -> None:
    b_lecture = await w.lecture(who="staff_b")
    a_lecture = await w.lecture(who="staff")
    async with w.as_("padmin") as ctx:
        assert [lec.id for lec in (await lectures.list_lectures(ctx)).items] == [a_lecture]
        assert list(await lectures.lectures_by_id(ctx, [a_lecture, b_lecture])) == [a_lecture]
    mother = await w.mother()
    before = await w.counts()
    change = lectures.LectureChanges(title="改")
    assert await w.refused("padmin", lectures.update_lecture, b_lecture, change) == "NOT_FOUND"
    assert await w.refused("padmin", lectures.cancel_lecture, b_lecture, "取消") == "NOT_FOUND"
    assert await w.refused("padmin", lectures.register, b_lecture, mother) == "NOT_FOUND"
    assert await w.counts() == before
    async with w.as_("staff_b") as ctx:
        lecture = (await lectures.lectures_by_id(ctx, [b_lecture]))[b_lecture]
    assert (lecture.title, lecture.status) == ("疫情期间孕妇居家自我保健", "scheduled")
    # a mother of A recommended only A's lectures
    async with w.as_("padmin") as ctx:
        assert [lec.id for lec in await lectures.recommendations(ctx, mother)] == [a_lecture]


# -- edits of different fields at once both land ----------------------------------------------------------------


async def test_concurrent_edits_of_different_fields_both_land(w: World, db_url: URL) -> None:
    staff = w.viewer("staff")

    async def round_(racer: Racer) -> None:
        lecture_id = await w.lecture(capacity=3)
        edits = [lectures.LectureChanges(title="孕期营养（更新）"), lectures.LectureChanges(capacity=9)]

        async def edit(ctx: ServiceContext, i: int) -> str:
            await lectures.update_lecture(ctx, lecture_id, edits[i])
            return "ok"

        assert await racer.race(edit, viewer=staff) == ["ok", "ok"]
        async with w.as_("staff") as ctx:
            lecture = (await lectures.lectures_by_id(ctx, [lecture_id]))[lecture_id]
        assert (lecture.title, lecture.capacity) == ("孕期营养（更新）", 9)

    async with Racer.open(db_url, workers=2, clock=w.clock) as racer:
        for _ in range(rounds(3)):
            await round_(racer)


# -- registrations and cancellations racing together ------------------------------------------------------------


async def test_registrations_and_cancellations_racing_together(w: World, db_url: URL) -> None:
    staff = w.viewer("staff")

    async def round_(racer: Racer) -> None:
        # given a lecture of 10 seats, full, with 4 waiting
        lecture_id = await w.lecture(capacity=10)
        regs = [await w.call("staff", lectures.register, lecture_id, await w.mother()) for _ in range(14)]
        seated = [r.id for r in regs if r.status == "registered"]
        waiting = [r.id for r in regs if r.status == "waitlisted"]
        assert (len(seated), len(waiting)) == (10, 4)
        newcomers = [await w.mother() for _ in range(10)]

        # when 6 seats are cancelled while 10 more mothers register, all at once
        async def work(ctx: ServiceContext, i: int) -> tuple[str, int, str]:
            if i < 6:
                cancelled = await lectures.cancel_registration(ctx, seated[i], "临时有事")
                return "cancel", cancelled.id, cancelled.status
            reg = await lectures.register(ctx, lecture_id, newcomers[i - 6])
            return "register", reg.id, reg.status

        outcomes = await racer.race(work, viewer=staff)
        assert all(isinstance(o, tuple) for o in outcomes), outcomes
        # then never over capacity: the counter is the rows, and the lecture full
        assert await w.seats(lecture_id) == (10, 10)
        async with w.as_("staff") as ctx:
            rows = dict(
                (
                    await ctx.session.execute(
                        select(Registration.id, Registration.status).where(Registration.lecture_id == lecture_id)
                    )
                ).all()
            )
        # promotions in order: the 4 waiting before got seats first, then the newcomers in arrival order; nobody
        # who arrived later holds a seat while an earlier arrival waits
        live = sorted((pk, s) for pk, s in rows.items() if s != "cancelled")
        statuses = [s for _, s in live]
        assert statuses == sorted(statuses, key=lambda s: s != "registered"), live
        assert all(rows[pk] == "registered" for pk in waiting)
        assert statuses.count("registered") == 10
        async with w.as_("staff") as ctx:
            still = [pk for pk, s in live if s == "waitlisted"]
            assert await lectures.waitlist_positions(ctx, still) == list(range(1, len(still) + 1))

    async with Racer.open(db_url, workers=16, clock=w.clock) as racer:
        for _ in range(rounds(2)):
            await round_(racer)


# -- her time zone: the registration keeps it ------------------------------------------------------------------

BERLIN, SHANGHAI = ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Shanghai")


def _boundary(w: World, days: int = 7) -> tuple[datetime, date]:
    """00:30 in Shanghai on the date D `days` from now there, and the LMP that makes D 14+0 (second trimester):
    the same instant is the evening before in Berlin, 13+6 (first trimester)."""
    start = w.local_at(days, hour=0).replace(minute=30)
    assert start.astimezone(BERLIN).date() == start.date() - timedelta(days=1)
    return start, start.date() - timedelta(weeks=14)


async def _outbox(w: World, kind: str) -> list[Notification]:
    async with w.as_("admin") as ctx:
        return list(
            await ctx.session.scalars(select(Notification).where(Notification.kind == kind).order_by(Notification.id))
        )


async def test_promotion_judges_her_on_the_lectures_date_in_the_zone_she_registered_in(w: World) -> None:
    # given a first-trimester lecture of one seat at 00:30 in Shanghai (the evening before in Berlin), taken,
    # and a mother living in Berlin who is 13+6 there then (14+0 by Shanghai's date)
    start, lmp = _boundary(w)
    lecture_id = await w.lecture(capacity=1, audience=("trimester_1",), starts_at=start)
    seated = await w.call("staff", lectures.register, lecture_id, await w.mother(weeks=6))
    berliner = await w.mother(lmp=lmp)
    assert await w.refused("staff", lectures.register, lecture_id, berliner) == "MATERNAL_CARE_OUTSIDE_AUDIENCE"
    # when she is registered in her zone, she waits for the seat; her registration keeps the zone
    waiting = await w.call("staff", lectures.register, lecture_id, berliner, "Europe/Berlin")
    assert (waiting.status, waiting.time_zone) == ("waitlisted", "Europe/Berlin")
    # and staff in Shanghai (the deployment's zone) cancel the seat
    await w.call("staff", lectures.cancel_registration, seated.id, "早产风险")
    # then she is promoted: judged on the lecture's date in Berlin, not in the canceller's zone
    assert (await w.registrations(lecture_id))[1] == (berliner, "registered")
    async with w.as_("staff") as ctx:
        assert await lectures.registrations_fit(ctx, [waiting.id]) == [True]
    # and told the start as she lives it
    (told,) = await _outbox(w, "maternal_care.lecture_promoted")
    assert (told.payload["registration"], told.payload["time_zone"]) == (waiting.id, "Europe/Berlin")
    assert told.payload["starts_at"] == start.astimezone(BERLIN).isoformat()
    assert told.payload["local_date"] == (start.date() - timedelta(days=1)).isoformat()


async def test_a_reminder_gives_the_start_and_its_date_in_her_zone(w: World) -> None:
    # given a lecture at the next 00:30 in Shanghai (within 24 hours), one seat registered in Berlin, one in
    # the deployment's zone
    shanghai_now = w.clock.now.astimezone(SHANGHAI)
    start = shanghai_now.replace(hour=0, minute=30, second=0, microsecond=0)
    if start <= shanghai_now:
        start += timedelta(days=1)
    lecture_id = await w.lecture(capacity=2, starts_at=start)
    berlin = await w.call("staff", lectures.register, lecture_id, await w.mother(), "Europe/Berlin")
    here = await w.call("staff", lectures.register, lecture_id, await w.mother())
    # when the reminders job runs
    async with create_sessionmaker(w.engine)() as session, session.begin():
        system = Viewer(label="job", role="system", organization_id=w.ids["org_a"])
        assert await lectures.queue_reminders(ServiceContext(session=session, viewer=system, clock=w.clock)) == 2
    # then each is told the start and its date in her own zone (a day apart here)
    told = {n.payload["registration"]: n.payload for n in await _outbox(w, "maternal_care.lecture_reminder")}
    assert [(told[r.id]["time_zone"], told[r.id]["local_date"], told[r.id]["starts_at"]) for r in (berlin, here)] == [
        ("Europe/Berlin", (start.date() - timedelta(days=1)).isoformat(), start.astimezone(BERLIN).isoformat()),
        ("Asia/Shanghai", start.date().isoformat(), start.isoformat()),
    ]


async def test_recommendations_count_her_dates_in_the_zone_she_registered_in(w: World) -> None:
    # given a mother 13+6 in Berlin / 14+0 in Shanghai at a first-trimester lecture's start, who registered for
    # another lecture from Berlin
    start, lmp = _boundary(w)
    boundary = await w.lecture(audience=("trimester_1",), starts_at=start)
    mother = await w.mother(lmp=lmp)
    async with w.as_("sw") as ctx:
        assert boundary not in [lec.id for lec in await lectures.recommendations(ctx, mother)]  # no zone known yet
    await w.call("sw", lectures.register, await w.lecture(starts_at=w.at(3)), mother, "Europe/Berlin")
    async with w.as_("sw") as ctx:
        # then with no zone named, her registration's is used; a zone named is the caller's choice
        assert boundary in [lec.id for lec in await lectures.recommendations(ctx, mother)]
        assert boundary not in [lec.id for lec in await lectures.recommendations(ctx, mother, "Asia/Shanghai")]
        assert boundary in [lec.id for lec in await lectures.recommendations(ctx, mother, "Europe/Berlin")]


async def test_a_zone_of_the_wrong_shape_is_refused_by_the_database(w: World) -> None:
    lecture_id = await w.lecture()
    reg = await w.call("staff", lectures.register, lecture_id, await w.mother())
    assert reg.time_zone == "Asia/Shanghai"  # none given: the deployment's
    with pytest.raises(DBAPIError) as err:
        async with w.as_("staff") as ctx:
            await ctx.session.execute(
                text(f"UPDATE maternal_care_lecture_registrations SET time_zone = '../etc' WHERE id = {reg.id}")
            )
    assert constraint_name(err.value) == "ck_maternal_care_lecture_registrations_time_zone_shape"


# -- an edit that leaves a seated mother outside the audience ---------------------------------------------------


async def test_an_edit_leaving_a_seated_mother_outside_keeps_her_seat_shows_it_and_tells_her(w: World) -> None:
    # given a second-trimester lecture in 7 days with two seats -- one mother 27+0 then (26 weeks today), one 21+0
    # -- and a third at 27+0 then, waiting
    lecture_id = await w.lecture(capacity=2, audience=("trimester_2",), starts_at=w.local_at(7))
    young = await w.call("staff", lectures.register, lecture_id, await w.mother(weeks=20))
    near = await w.call("staff", lectures.register, lecture_id, await w.mother(weeks=26))
    waiting = await w.call("staff", lectures.register, lecture_id, await w.mother(weeks=26))
    assert waiting.status == "waitlisted"
    regs = [young.id, near.id, waiting.id]
    # when the lecture moves a week later (28+0 then: third trimester)
    moved = lectures.LectureChanges(starts_at=w.local_at(14), ends_at=w.local_at(14, 15))
    await w.call("staff", lectures.update_lecture, lecture_id, moved)
    # then she keeps her seat (staff decide), but it shows: on her registration and counted on the lecture
    assert [s for _, s in await w.registrations(lecture_id)] == ["registered", "registered", "waitlisted"]
    async with w.as_("staff") as ctx:
        assert await lectures.registrations_fit(ctx, regs) == [True, False, False]
        assert await lectures.lectures_outside_audience(ctx, [lecture_id]) == [[near.mother_id]]
    # (among the mothers one serves: her social worker sees her, another social worker and B nobody)
    for who, expected in (("sw", [[near.mother_id]]), ("admin", [[near.mother_id]]), ("sw2", [[]]), ("staff_b", [[]])):
        async with w.as_(who) as ctx:
            assert await lectures.lectures_outside_audience(ctx, [lecture_id]) == expected, who
    # and every seated mother is told of the new time, she that it leaves her outside; the waiting one waits
    changed = await _outbox(w, "maternal_care.lecture_changed")
    assert [(n.payload["registration"], n.payload["outside_audience"]) for n in changed] == [
        (young.id, False),
        (near.id, True),
    ]
    assert changed[0].payload["starts_at"] == w.local_at(14).isoformat()
    # when the audience is widened to the third trimester, she fits again; nobody is told of that
    w.clock.now += timedelta(minutes=1)
    widened = lectures.LectureChanges(audience=("trimester_2", "trimester_3"))
    await w.call("staff", lectures.update_lecture, lecture_id, widened)
    async with w.as_("staff") as ctx:
        assert await lectures.registrations_fit(ctx, regs) == [True, True, True]
        assert await lectures.lectures_outside_audience(ctx, [lecture_id]) == [[]]
    assert len(await _outbox(w, "maternal_care.lecture_changed")) == 2
    # an audience change that leaves her out again tells her (only her), and a title change tells nobody
    w.clock.now += timedelta(minutes=1)
    await w.call("staff", lectures.update_lecture, lecture_id, lectures.LectureChanges(audience=("trimester_2",)))
    await w.call("staff", lectures.update_lecture, lecture_id, lectures.LectureChanges(title="孕中期营养"))
    changed = await _outbox(w, "maternal_care.lecture_changed")
    assert [(n.payload["registration"], n.payload["outside_audience"]) for n in changed[2:]] == [(near.id, True)]
    # when a seat frees, the waiting one who no longer fits is passed over at promotion (cancelled, told)
    await w.call("staff", lectures.cancel_registration, young.id, "改期")
    async with w.as_("staff") as ctx:
        found = await lectures.registrations_by_id(ctx, [waiting.id])
    assert (found[waiting.id].status, found[waiting.id].cancel_reason) == (
        "cancelled",
        lectures.OUTSIDE_AUDIENCE_REASON,
    )
    assert await w.seats(lecture_id) == (1, 1)
