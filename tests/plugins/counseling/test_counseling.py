"""Counseling: sessions on the shared calendar, notes privacy, journals and risk follow-up.

The callers act for the fixtures' organisation (`home_org`): under row-level security a caller of no
organisation sees no counseling record at all."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from functools import partial
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import URL

from core import tenancy
from core.errors import DomainError
from core.models import Appointment
from core.services import scheduling
from core.services.context import ServiceContext, Viewer
from plugins.counseling import services
from tests.concurrency import Racer, rounds
from tests.core.services.test_scheduling import at, next_monday
from tests.factories import Factory

MANAGE = frozenset({"counseling.manage"})
SUPERVISE = frozenset({"counseling.manage", "counseling.read_notes"})
SHANGHAI = ZoneInfo("Asia/Shanghai")


class Recorder:
    def __init__(self) -> None:
        self.events: list[object] = []

    async def publish(self, event: object, ctx: ServiceContext) -> None:
        self.events.append(event)


def as_(make: Factory, role: str, permissions: frozenset[str], volunteer_id: int | None = None) -> ServiceContext:
    """A caller of the fixtures' organisation on the shared session. Creating it binds the session to this
    caller (the database acts for the latest one): create it right where it is used."""
    viewer = Viewer(
        label=role,
        role=role,
        organization_id=make.ctx.viewer.organization_id,
        volunteer_id=volunteer_id,
        extra_permissions=permissions,
    )
    return ServiceContext(make.ctx.session, viewer, make.ctx.clock, events=make.ctx.events)


def as_admin(make: Factory) -> ServiceContext:
    """The factory's own caller again (a platform administrator of the fixtures' organisation)."""
    tenancy.bind(make.ctx.session, make.ctx.viewer)
    return make.ctx


@pytest.fixture
async def setup(make: Factory) -> dict[str, int]:
    staff = partial(as_, make, "organization_admin", SUPERVISE)
    ids = {}
    for key, specialties in (("grief", ["grief"]), ("perinatal", ["perinatal", "anxiety"])):
        as_admin(make)
        person = await make.volunteer()
        counselor = await services.register_counselor(staff(), person.id, specialties=specialties, languages=["zh"])
        for weekday in range(7):
            await scheduling.add_window(staff(), person.id, weekday, time(9), time(12))
        ids[key], ids[f"{key}_person"] = counselor.id, person.id
    client = await services.register_client(staff(), name="居民", phone="13700001111", consent=True)
    ids["client"] = client.id
    await make.commit()
    as_admin(make)
    return ids


def online(**kw: object) -> dict[str, object]:
    return {"minutes": 50, "mode": "online", "meeting_link": "https://meet.example/room"} | kw


async def test_earliest_slot_goes_to_a_counselor_with_the_specialty(make: Factory, setup, clock) -> None:  # type: ignore[no-untyped-def]
    staff = as_(make, "counselor", MANAGE)
    session = await services.book_session(staff, client_id=setup["client"], specialty="perinatal", **online())
    assert session.counselor_id == setup["perinatal"]
    # the next one for the same counselor lands after the first plus its buffer
    second = await services.book_session(staff, client_id=setup["client"], specialty="perinatal", **online())
    first_slot = await make.ctx.session.get(Appointment, session.appointment_id)
    second_slot = await make.ctx.session.get(Appointment, second.appointment_id)
    assert second_slot.during.lower >= first_slot.during.upper + timedelta(minutes=10)


async def test_twenty_concurrent_bookings_of_one_counselor(make: Factory, setup, db_url: URL, clock) -> None:  # type: ignore[no-untyped-def]
    monday = next_monday(clock)
    viewer = Viewer(
        label="c", role="counselor", organization_id=make.ctx.viewer.organization_id, extra_permissions=MANAGE
    )

    async def round_(racer: Racer, day: datetime) -> None:
        async def book(ctx: ServiceContext, i: int) -> str:
            await services.book_session(
                ctx,
                client_id=setup["client"],
                counselor_id=setup["grief"],
                start=at(day, 10) + timedelta(minutes=i % 4 * 5),
                **online(),
            )
            return "ok"

        outcomes = await racer.race(book, viewer=viewer)
        assert sorted(outcomes) == ["SLOT_TAKEN"] * 19 + ["ok"]

    async with Racer.open(db_url, workers=20, clock=clock) as racer:
        # one round per day (the counselor is available every day)
        for n in range(rounds(3)):
            await round_(racer, monday + timedelta(days=n))


async def test_a_casework_visit_and_a_session_cannot_overlap(make: Factory, setup, clock) -> None:  # type: ignore[no-untyped-def]
    monday = next_monday(clock)
    await scheduling.book(make.ctx, setup["grief_person"], "case_work.visit", at(monday, 10), at(monday, 11))
    with pytest.raises(DomainError) as err:
        await services.book_session(
            as_(make, "counselor", MANAGE),
            client_id=setup["client"],
            counselor_id=setup["grief"],
            start=at(monday, 10, 30),
            **online(),
        )
    assert err.value.code == "SLOT_TAKEN"


async def test_notes_are_for_the_counselor_and_supervisors_only(make: Factory, setup, clock) -> None:  # type: ignore[no-untyped-def]
    own = partial(as_, make, "counselor", MANAGE, volunteer_id=setup["grief_person"])
    session = await services.book_session(
        own(), client_id=setup["client"], counselor_id=setup["grief"], start=at(next_monday(clock), 9), **online()
    )
    await services.write_notes(own(), session.id, "来访者提到失眠")
    callers = {
        "own": own,
        "other counselor": partial(as_, make, "counselor", MANAGE, volunteer_id=setup["perinatal_person"]),
        "social worker": partial(as_, make, "social_worker", MANAGE, volunteer_id=None),
        "supervisor": partial(as_, make, "organization_admin", SUPERVISE),
        # rank alone does not read notes: an administrator without counseling.read_notes
        "platform administrator": partial(as_, make, "platform_admin", MANAGE),
    }
    readers = {name: await services.can_read_notes(caller(), session) for name, caller in callers.items()}
    assert readers == {
        "own": True,
        "other counselor": False,
        "social worker": False,
        "supervisor": True,
        "platform administrator": False,
    }
    with pytest.raises(DomainError) as err:
        await services.write_notes(callers["other counselor"](), session.id, "overwrite")
    assert err.value.code == "FORBIDDEN"
    await make.ctx.session.refresh(session)
    assert session.notes == "来访者提到失眠"


async def test_session_lifecycle_and_bad_input(make: Factory, setup, clock) -> None:  # type: ignore[no-untyped-def]
    staff = as_(make, "counselor", MANAGE)
    monday = next_monday(clock)
    session = await services.book_session(
        staff, client_id=setup["client"], counselor_id=setup["grief"], start=at(monday, 9), **online()
    )
    await services.reschedule_session(staff, session.id, at(monday, 11), 50)
    await services.cancel_session(staff, session.id, "client moved")
    cases = [
        (lambda: services.reschedule_session(staff, session.id, at(monday, 9), 50), "INVALID_TRANSITION"),
        (
            lambda: services.book_session(
                staff, client_id=setup["client"], counselor_id=setup["grief"], start=at(monday, 9), **online(minutes=5)
            ),
            "OUT_OF_RANGE",
        ),
        (
            lambda: services.book_session(
                staff,
                client_id=setup["client"],
                counselor_id=setup["grief"],
                start=at(monday, 9),
                minutes=50,
                mode="online",
            ),
            "REQUIRED",
        ),
        (
            lambda: services.book_session(
                staff,
                client_id=setup["client"],
                counselor_id=setup["grief"],
                start=clock.now - timedelta(days=1),
                **online(),
            ),
            "IN_PAST",
        ),
        (
            lambda: services.book_session(
                staff, client_id=setup["client"], counselor_id=setup["grief"], start=at(monday, 13), **online()
            ),
            "OUTSIDE_AVAILABILITY",
        ),
        (
            lambda: services.book_session(
                staff, client_id=setup["client"], counselor_id=999999, start=at(monday, 9), **online()
            ),
            "NOT_FOUND",
        ),
        (lambda: services.register_client(staff, name="x", phone="13700002222", consent=False), "REQUIRED"),
    ]
    for call, code in cases:
        with pytest.raises(DomainError) as err:
            await call()
        assert err.value.code == code


async def test_journal_missed_days_trend_and_a_risk_event_fired_once(make: Factory, setup, clock) -> None:  # type: ignore[no-untyped-def]
    recorder = Recorder()
    make.ctx.events = recorder
    staff = partial(as_, make, "counselor", MANAGE)
    programme = await services.create_programme(staff(), "14天心理健康日志", [f"第{i}天" for i in range(1, 15)])
    start = clock.now.astimezone(SHANGHAI).date() - timedelta(days=5)
    enrolment = await services.enrol(staff(), setup["client"], programme.id, start)
    # entries on days 1, 2, 4, 5, 6 (today); day 3 missed
    for offset, mood in ((0, 6), (1, 3), (3, 2), (4, 2), (5, 1)):
        await services.add_entry(staff(), enrolment.id, mood, on=start + timedelta(days=offset))
    assert await services.missed_days(staff(), enrolment.id) == [3]
    assert await services.trend(staff(), enrolment.id) == [(1, 6), (2, 3), (4, 2), (5, 2), (6, 1)]
    raised = [e for e in recorder.events if getattr(e, "name", "") == "counseling.risk_raised"]
    assert len(raised) == 1  # the flag stayed open: later low entries did not raise it again
    # the event names the client's organisation (the host delivers it to the plugins that one enabled)
    assert raised[0].organization_id == make.ctx.viewer.organization_id
    assert (raised[0].client_id, raised[0].source) == (setup["client"], "mood_trend")
    flags = await services.open_flags(as_(make, "organization_admin", SUPERVISE))
    assert [(f.source, f.severity) for f in flags.items] == [("mood_trend", "medium")]
    for bad in (
        {"mood": 11},
        {"mood": 5, "on": start - timedelta(days=1)},
        {"mood": 5, "on": start + timedelta(days=20)},
    ):
        with pytest.raises(DomainError) as err:
            await services.add_entry(staff(), enrolment.id, **bad)  # type: ignore[arg-type]
        assert err.value.code == "OUT_OF_RANGE"


async def test_open_flags_are_for_supervisors(make: Factory, setup) -> None:  # type: ignore[no-untyped-def]
    await services.flag_risk(as_(make, "counselor", MANAGE), setup["client"], "high", "expressed hopelessness")
    with pytest.raises(DomainError) as err:
        await services.open_flags(as_(make, "counselor", MANAGE))
    assert err.value.code == "FORBIDDEN"
    supervisor = as_(make, "organization_admin", SUPERVISE)
    (flag,) = (await services.open_flags(supervisor)).items
    assert (flag.severity, services.flag_age(supervisor, flag)) == ("high", timedelta(0))
    # a supervisor resolves it after follow-up: it leaves the list, and a second resolve is refused
    with pytest.raises(DomainError) as err:
        await services.resolve_flag(as_(make, "counselor", MANAGE), flag.id)
    assert err.value.code == "FORBIDDEN"
    resolved = await services.resolve_flag(as_(make, "organization_admin", SUPERVISE), flag.id)
    assert resolved.resolved_at is not None
    assert (await services.open_flags(as_(make, "organization_admin", SUPERVISE))).items == []
    with pytest.raises(DomainError) as err:
        await services.resolve_flag(as_(make, "organization_admin", SUPERVISE), flag.id)
    assert err.value.code == "INVALID_TRANSITION"


async def test_free_slots_search_at_most_a_month(make: Factory, setup, clock) -> None:  # type: ignore[no-untyped-def]
    staff = as_(make, "counselor", MANAGE)
    monday = next_monday(clock)
    # a month of calendar is searched (both counselors have hours every morning) ...
    slots = await services.free_slots(staff, monday, monday + services.MAX_SLOT_RANGE, timedelta(minutes=50))
    assert slots
    assert {c.id for _, c in slots} == {setup["grief"], setup["perinatal"]}
    # ... a wider range, an empty one or an odd duration is refused before any calendar is walked
    for start, end, minutes, code, field in (
        (monday, monday + timedelta(days=3650), 50, "RANGE_TOO_LARGE", ("end",)),
        (monday, monday + services.MAX_SLOT_RANGE + timedelta(seconds=1), 50, "RANGE_TOO_LARGE", ("end",)),
        (monday, monday, 50, "OUT_OF_RANGE", ("end",)),
        (monday, monday + timedelta(days=1), 5, "OUT_OF_RANGE", ("minutes",)),
    ):
        with pytest.raises(DomainError) as err:
            await services.free_slots(staff, start, end, timedelta(minutes=minutes))
        assert (err.value.code, err.value.errors[0].field) == (code, field)


async def test_sessions_are_listed_by_start_and_filtered(make: Factory, setup, clock) -> None:  # type: ignore[no-untyped-def]
    staff = partial(as_, make, "counselor", MANAGE)
    monday = next_monday(clock)
    booked = {}
    # booked in another order than they start: Tuesday 9:00 (grief), Monday 11:00 (grief), Monday 9:00 (perinatal)
    for key, counselor, start in (
        ("tue", "grief", at(monday + timedelta(days=1), 9)),
        ("mon11", "grief", at(monday, 11)),
        ("mon9", "perinatal", at(monday, 9)),
    ):
        booked[key] = (
            await services.book_session(
                staff(), client_id=setup["client"], counselor_id=setup[counselor], start=start, **online()
            )
        ).id
    await services.cancel_session(staff(), booked["mon11"], "moved")

    async def listed(**kw: object) -> list[str]:
        page = await services.list_sessions(staff(), services.SessionFilter(**kw))  # type: ignore[arg-type]
        by_id = {v: k for k, v in booked.items()}
        return [by_id[s.id] for s in page.items]

    assert await listed() == ["mon9", "mon11", "tue"]
    assert await listed(counselor_id=setup["grief"]) == ["mon11", "tue"]
    assert await listed(statuses=("booked",)) == ["mon9", "tue"]
    # a counselor's calendar for Monday: [from, to) on the start
    assert await listed(counselor_id=setup["grief"], start_from=monday, start_to=monday + timedelta(days=1)) == [
        "mon11"
    ]
    assert await listed(start_from=at(monday, 11)) == ["mon11", "tue"]
    assert await listed(start_to=at(monday, 11)) == ["mon9"]
    # pages follow the start order with cursors
    first = await services.list_sessions(staff(), first=2)
    rest = await services.list_sessions(staff(), first=2, after=first.cursors[-1])
    assert [s.id for s in first.items + rest.items] == [booked[k] for k in ("mon9", "mon11", "tue")]
    assert (first.has_next_page, rest.has_next_page) == (True, False)
    assert await first.total_count() == 3
    for bad, code in (
        ({"start_from": at(monday, 11), "start_to": at(monday, 9)}, "OUT_OF_RANGE"),
        ({"statuses": ("lost",)}, "INVALID_INPUT"),
    ):
        with pytest.raises(DomainError) as err:
            await listed(**bad)
        assert err.value.code == code
