"""Lectures through the real GraphQL endpoint, callers signed in for real: create, register (seats, then the
waitlist), cancel and promote, attendance, recommendations; typed errors with nothing written; who sees whom."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.models import Resident
from core.services.context import Viewer
from plugins.maternal_care import gestation
from plugins.maternal_care.lectures.models import Lecture, Registration
from plugins.maternal_care.models import Mother, Pregnancy
from schema import api as gql
from yunshegong.testing import Client, Harness

_serial = itertools.count(1)
GRANT = """mutation($a: ID!) { r: grantPluginRole(input: {accountId: $a, role: "maternal_care.staff"}) {
  errors { code } } }"""
CREATE = """mutation($input: MaternalCareCreateLectureInput!) { r: maternalCareCreateLecture(input: $input) {
  lecture { id title capacity registeredCount seatsLeft audience status } errors { code field } } }"""
UPDATE = """mutation($input: MaternalCareUpdateLectureInput!) { r: maternalCareUpdateLecture(input: $input) {
  lecture { capacity registeredCount waitlistedCount } errors { code field } } }"""
REGISTER = """mutation($l: ID!, $m: ID!, $tz: String) {
  r: maternalCareRegisterForLecture(input: {lectureId: $l, motherId: $m, timeZone: $tz}) {
  registration { id status waitlistPosition motherId motherName lecture { registeredCount waitlistedCount } }
  errors { code field } } }"""
CANCEL = """mutation($id: ID!) { r: maternalCareCancelLectureRegistration(input: {id: $id, reason: "孩子发烧"}) {
  registration { status } errors { code field } } }"""
ATTEND = """mutation($id: ID!) { r: maternalCareRecordLectureAttendance(input: {id: $id, attendance: PRESENT}) {
  registration { attendance } errors { code field } } }"""
LECTURE = """query($id: ID!) { r: node(id: $id) { ... on MaternalCareLecture { title registeredCount waitlistedCount
  registrations { nodes { status motherName waitlistPosition } } } } }"""
LIST = """{ r: maternalCareLectures(filter: {upcomingOnly: true}) { nodes { id } } }"""
RECOMMEND = """query($m: ID!, $tz: String) { r: maternalCareLectureRecommendations(motherId: $m, timeZone: $tz) {
  id title } }"""
MINE = """query($m: ID!) { r: maternalCareMotherLectureRegistrations(motherId: $m) { nodes { status
  lecture { title } } } }"""


class World:
    def __init__(self, kit: Harness, clock: Any) -> None:
        self.kit, self.clock = kit, clock
        self.p: dict[str, Client] = {}
        self.org: dict[str, int] = {}
        self.community: dict[str, int] = {}

    def pk(self, who: str) -> int:
        return gql.decode_id(self.p[who].account_id or "", "Account", ("id",))

    async def mother(self, weeks: int = 20, org: str = "a") -> str:
        """A mother assigned to sw (sw_b in B), `weeks` along today, as a MaternalCareMother ID."""
        today = self.clock.now.astimezone(ZoneInfo("Asia/Shanghai")).date()
        async with self.kit.service(Viewer(label="t", role="platform_admin", organization_id=self.org[org])) as ctx:
            resident = Resident(
                name=f"孕妇{next(_serial)}",
                phone="13800000000",
                community_id=self.community[org],
                organization_id=self.org[org],
            )
            ctx.session.add(resident)
            await ctx.session.flush()
            mother = Mother(
                resident_id=resident.id,
                social_worker_account_id=self.pk("sw" if org == "a" else "sw_b"),
                consent_at=self.clock.now,
                organization_id=self.org[org],
            )
            ctx.session.add(mother)
            await ctx.session.flush()
            lmp = today - timedelta(weeks=weeks)
            ctx.session.add(
                Pregnancy(mother_id=mother.id, lmp=lmp, edd=gestation.edd_from_lmp(lmp), dating_basis="lmp")
            )
            await ctx.session.flush()
            return gql.encode_id("MaternalCareMother", mother.id)

    def lecture_input(self, **kw: Any) -> dict[str, Any]:
        start = self.clock.now + timedelta(days=kw.pop("days", 7))
        values = {
            "title": "疫情期间孕妇居家自我保健",
            "speaker": "产科 王医生",
            "startsAt": start.isoformat(),
            "endsAt": (start + timedelta(hours=1)).isoformat(),
            "capacity": 2,
            "audience": ["TRIMESTER_2", "TRIMESTER_3"],
            "onlineUrl": "https://meeting.example.cn/123",
        }
        values.update(kw)
        return values

    async def lecture(self, **kw: Any) -> str:
        body = await self.p["staff"](CREATE, {"input": self.lecture_input(**kw)})
        assert body["r"]["errors"] == [], body
        return str(body["r"]["lecture"]["id"])

    async def counts(self) -> tuple[int, int]:
        async with self.kit.service(Viewer(label="count", role="platform_admin")) as ctx:
            return (
                await ctx.session.scalar(select(func.count()).select_from(Lecture)) or 0,
                await ctx.session.scalar(select(func.count()).select_from(Registration)) or 0,
            )


@pytest.fixture
async def world(kit: Harness, clock: Any) -> World:
    w = World(kit, clock)
    for key in ("a", "b"):
        w.org[key] = await kit.organization(plugins=["maternal_care"])
        w.community[key] = await kit.community(w.org[key])
    for key, role, org in (
        ("staff", "social_worker", "a"),
        ("sw", "social_worker", "a"),
        ("sw2", "social_worker", "a"),
        ("admin", "organization_admin", "a"),
        ("counselor", "counselor", "a"),
        ("sw_b", "social_worker", "b"),
        ("admin_b", "organization_admin", "b"),
    ):
        w.p[key] = await kit.sign_in(role, w.org[org])
    granted = await w.p["admin"](GRANT, {"a": w.p["staff"].account_id})
    assert granted["r"]["errors"] == []
    return w


async def test_a_lecture_fills_then_waits_and_a_cancellation_promotes_through_the_api(world: World) -> None:
    w = world
    # given a lecture of 2 seats for the second and third trimesters in 2 hours, and three mothers at 20 weeks
    lecture = await w.lecture(days=1 / 12)
    mothers = [await w.mother() for _ in range(3)]
    # when staff register all three
    answers = [(await w.p["staff"](REGISTER, {"l": lecture, "m": m}))["r"] for m in mothers]
    # then two have seats and the third waits first in line
    assert [a["errors"] for a in answers] == [[], [], []]
    assert [(a["registration"]["status"], a["registration"]["waitlistPosition"]) for a in answers] == [
        ("REGISTERED", None),
        ("REGISTERED", None),
        ("WAITLISTED", 1),
    ]
    assert answers[2]["registration"]["lecture"] == {"registeredCount": 2, "waitlistedCount": 1}
    assert answers[0]["registration"]["motherId"] == mothers[0]
    # when her social worker cancels the second seat, the waiting mother has it
    cancelled = await w.p["sw"](CANCEL, {"id": answers[1]["registration"]["id"]})
    assert cancelled["r"] == {"registration": {"status": "CANCELLED"}, "errors": []}
    seen = (await w.p["staff"](LECTURE, {"id": lecture}))["r"]
    assert (seen["registeredCount"], seen["waitlistedCount"]) == (2, 0)
    assert [r["status"] for r in seen["registrations"]["nodes"]] == ["REGISTERED", "CANCELLED", "REGISTERED"]
    outbox = await w.kit.outbox(w.org["a"])
    assert [n.kind for n in outbox].count("maternal_care.lecture_promoted") == 1
    # attendance waits for the start
    seat = answers[0]["registration"]["id"]
    early = await w.p["staff"](ATTEND, {"id": seat})
    assert early["r"]["errors"] == [{"code": "MATERNAL_CARE_LECTURE_NOT_STARTED", "field": ["input", "id"]}]
    w.clock.now += timedelta(hours=2, minutes=5)  # (sign-in tokens outlive this, not days)
    assert (await w.p["staff"](ATTEND, {"id": seat}))["r"] == {"registration": {"attendance": "PRESENT"}, "errors": []}


async def test_bad_input_answers_stable_codes_and_writes_nothing(world: World) -> None:
    w = world
    lecture = await w.lecture(capacity=1)
    mother = await w.mother()
    await w.p["staff"](REGISTER, {"l": lecture, "m": mother})
    waiting = await w.mother()
    await w.p["staff"](REGISTER, {"l": lecture, "m": waiting})
    before = await w.counts()
    start = w.clock.now + timedelta(days=3)
    bad_lectures = [
        (
            {"startsAt": start.isoformat(), "endsAt": (start - timedelta(hours=1)).isoformat()},
            ("MATERNAL_CARE_LECTURE_ENDS_BEFORE_START", ["input", "endsAt"]),
        ),
        ({"onlineUrl": "", "place": ""}, ("REQUIRED", ["input", "place"])),
        ({"capacity": 0}, ("OUT_OF_RANGE", ["input", "capacity"])),
        ({"audience": []}, ("REQUIRED", ["input", "audience"])),
    ]
    for override, (code, field) in bad_lectures:
        body = await w.p["staff"](CREATE, {"input": w.lecture_input(**override)})
        assert body["r"]["lecture"] is None
        assert [(e["code"], e["field"]) for e in body["r"]["errors"]] == [(code, field)], override
    assert (await w.p["sw"](CREATE, {"input": w.lecture_input()}))["r"]["errors"][0]["code"] == "FORBIDDEN"
    # registering twice, outside the audience, in an unknown zone
    twice = await w.p["staff"](REGISTER, {"l": lecture, "m": mother})
    assert twice["r"]["errors"] == [
        {"code": "MATERNAL_CARE_LECTURE_ALREADY_REGISTERED", "field": ["input", "motherId"]}
    ]
    early = await w.mother(weeks=6)
    outside = await w.p["staff"](REGISTER, {"l": lecture, "m": early})
    assert outside["r"]["errors"] == [{"code": "MATERNAL_CARE_OUTSIDE_AUDIENCE", "field": ["input", "motherId"]}]
    zone = await w.p["staff"](REGISTER, {"l": lecture, "m": early, "tz": "Nowhere/Town"})
    assert zone["r"]["errors"][0]["code"] == "INVALID_INPUT"
    # capacity below the seats taken
    below = await w.p["staff"](UPDATE, {"input": {"id": lecture, "capacity": 0}})
    assert below["r"]["errors"][0]["code"] == "OUT_OF_RANGE"
    assert await w.counts() == before
    # a higher capacity promotes the one waiting
    raised = await w.p["admin"](UPDATE, {"input": {"id": lecture, "capacity": 2}})
    assert raised["r"] == {"lecture": {"capacity": 2, "registeredCount": 2, "waitlistedCount": 0}, "errors": []}
    below = await w.p["staff"](UPDATE, {"input": {"id": lecture, "capacity": 1}})
    assert below["r"]["errors"] == [{"code": "MATERNAL_CARE_CAPACITY_BELOW_REGISTERED", "field": ["input", "capacity"]}]


async def test_recommendations_and_who_sees_registrations_through_the_api(world: World) -> None:
    w = world
    # given a mother at 12+0, a first-trimester lecture in 3 days, a second-trimester one in 20 (she is 14+6)
    mother = await w.mother(weeks=12)
    t1 = await w.lecture(audience=["TRIMESTER_1"], days=3, title="早孕期保健")
    t2 = await w.lecture(audience=["TRIMESTER_2"], days=20, title="中孕期营养")
    await w.lecture(audience=["TRIMESTER_1"], days=20, title="太晚")
    await w.lecture(audience=["POSTPARTUM"], days=5, title="产后康复")
    found = (await w.p["sw"](RECOMMEND, {"m": mother}))["r"]
    assert [r["id"] for r in found] == [t1, t2]
    # once she is registered for the first, it is no longer recommended
    await w.p["sw"](REGISTER, {"l": t1, "m": mother})
    assert [r["id"] for r in (await w.p["staff"](RECOMMEND, {"m": mother}))["r"]] == [t2]
    # her registrations: her social worker, staff, the administrator
    for who in ("sw", "staff", "admin"):
        mine = await w.p[who](MINE, {"m": mother})
        assert [n["lecture"]["title"] for n in mine["r"]["nodes"]] == ["早孕期保健"], who
        seen = (await w.p[who](LECTURE, {"id": t1}))["r"]
        assert [n["motherName"] for n in seen["registrations"]["nodes"]] != [], who
    # another social worker: the lecture and its seats, not who took them; not her registrations
    other = (await w.p["sw2"](LECTURE, {"id": t1}))["r"]
    assert (other["registeredCount"], other["registrations"]["nodes"]) == (1, [])
    for who in ("sw2", "admin_b", "sw_b"):
        for query in (MINE, RECOMMEND):
            body = await w.p[who].raw(query, {"m": mother})
            assert body["data"] is None or body["data"]["r"] is None, (who, body)
            assert body["errors"][0]["extensions"]["code"] in ("NOT_FOUND", "FORBIDDEN"), (who, body)
        # registering her is NOT_FOUND (another organisation's lecture as well)
        answer = await w.p[who](REGISTER, {"l": t1, "m": mother})
        assert answer["r"]["errors"][0]["code"] == "NOT_FOUND", who
    # another organisation sees no lecture at all; a counselor is refused the list
    for who in ("admin_b", "sw_b"):
        assert (await w.p[who](LECTURE, {"id": t1}))["r"] is None, who
        assert (await w.p[who](LIST))["r"]["nodes"] == [], who
    assert (await w.p["counselor"].raw(LIST))["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert len((await w.p["admin"](LIST))["r"]["nodes"]) == 4


async def _audited(owner_engine: AsyncEngine, account_id: str) -> dict[int, set[str]]:
    """The fields noted as read of each mother by `account_id` (record type MaternalCareMother)."""
    async with owner_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT record_id, fields FROM audit_log WHERE action = 'read' "
                    "AND record_type = 'MaternalCareMother' AND account_id = :a"
                ),
                {"a": gql.decode_id(account_id, "Account", ("id",))},
            )
        ).all()
    noted: dict[int, set[str]] = {}
    for r in rows:
        noted.setdefault(r.record_id, set()).update(r.fields)
    return noted


async def test_registrations_and_recommendations_read_are_audited(world: World, owner_engine: AsyncEngine) -> None:
    # given a mother registered for a lecture
    w = world
    mother = await w.mother()
    lecture = await w.lecture()
    reg = (await w.p["sw"](REGISTER, {"l": lecture, "m": mother}))["r"]["registration"]["id"]
    pk = gql.decode_id(mother, "MaternalCareMother", ("id",))
    # when staff read the lecture's registrations, the administrator the registration by node, and her social
    # worker her recommendations
    ids_only = "query($id: ID!) { r: node(id: $id) { ... on MaternalCareLecture { registrations { nodes { id } } } } }"
    await w.p["staff"](ids_only, {"id": lecture})
    await w.p["admin"]("query($id: ID!) { r: node(id: $id) { id } }", {"id": reg})
    await w.p["sw"](RECOMMEND, {"m": mother})
    # then each read is in the audit trail against her
    assert "lectureRegistrations" in (await _audited(owner_engine, w.p["staff"].account_id)).get(pk, set())
    assert "lectureRegistrations" in (await _audited(owner_engine, w.p["admin"].account_id)).get(pk, set())
    assert "lectureRecommendations" in (await _audited(owner_engine, w.p["sw"].account_id)).get(pk, set())
    # another social worker, who sees the lecture but not who is on it, leaves no read of her
    await w.p["sw2"](LECTURE, {"id": lecture})
    assert pk not in await _audited(owner_engine, w.p["sw2"].account_id)


PAGE = """{ r: maternalCareLectures(first: 50) { nodes { id registrations(first: 10) { nodes { status motherName } }
  } } }"""


async def test_a_page_of_lectures_costs_the_same_statements_with_more_lectures(world: World, statements: Any) -> None:
    w = world
    counts: dict[int, int] = {}
    for target in (2, 6):
        while len((await w.p["staff"](PAGE))["r"]["nodes"]) < target:
            lecture = await w.lecture(capacity=1)
            for _ in range(2):  # a seat and a place on the waitlist
                assert (await w.p["staff"](REGISTER, {"l": lecture, "m": await w.mother()}))["r"]["errors"] == []
        await w.p["staff"](PAGE)  # warm: sign-in and first-use lookups are not what is counted
        statements.statements.clear()
        body = await w.p["staff"](PAGE)
        counts[target] = statements.count
        nodes = body["r"]["nodes"]
        assert [[r["status"] for r in n["registrations"]["nodes"]] for n in nodes] == [
            ["REGISTERED", "WAITLISTED"]
        ] * target
        assert all(r["motherName"].startswith("孕妇") for n in nodes for r in n["registrations"]["nodes"])
    # then three times the lectures cost no more statements
    assert counts[6] == counts[2], counts


async def test_a_long_time_zone_name_is_invalid_input(world: World) -> None:
    w = world
    lecture = await w.lecture()
    mother = await w.mother()
    before = await w.counts()
    for bad in ("Asia/" + "x" * 300, "y" * 5000):
        answer = await w.p["staff"](REGISTER, {"l": lecture, "m": mother, "tz": bad})
        assert answer["r"]["errors"] == [{"code": "INVALID_INPUT", "field": ["input", "timeZone"]}], bad
        body = await w.p["sw"].raw(RECOMMEND, {"m": mother, "tz": bad})
        assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT", bad
    assert await w.counts() == before


MOVE = """mutation($input: MaternalCareUpdateLectureInput!) { r: maternalCareUpdateLecture(input: $input) {
  lecture { registrationsOutsideAudience registrations { nodes { status fitsAudience timeZone } } }
  errors { code } } }"""


async def test_an_edit_leaving_a_seated_mother_outside_is_shown_and_told_through_the_api(world: World) -> None:
    w = world
    # given a second-trimester lecture in 7 days, its two seats taken by a mother 21+0 then (registered from
    # Berlin) and one 27+0 then
    lecture = await w.lecture(audience=["TRIMESTER_2"], capacity=2)
    first = await w.p["staff"](REGISTER, {"l": lecture, "m": await w.mother(weeks=20), "tz": "Europe/Berlin"})
    near = await w.mother(weeks=26)
    second = await w.p["sw"](REGISTER, {"l": lecture, "m": near})
    assert [first["r"]["errors"], second["r"]["errors"]] == [[], []]
    # when staff move it a week later (she is 28+0 then: third trimester)
    start = w.clock.now + timedelta(days=14)
    moved = await w.p["staff"](
        MOVE,
        {"input": {"id": lecture, "startsAt": start.isoformat(), "endsAt": (start + timedelta(hours=1)).isoformat()}},
    )
    # then both keep their seats; the edit's answer shows who no longer fits
    assert moved["r"] == {
        "lecture": {
            "registrationsOutsideAudience": 1,
            "registrations": {
                "nodes": [
                    {"status": "REGISTERED", "fitsAudience": True, "timeZone": "Europe/Berlin"},
                    {"status": "REGISTERED", "fitsAudience": False, "timeZone": "Asia/Shanghai"},
                ]
            },
        },
        "errors": [],
    }
    # her social worker sees it too; another social worker sees the lecture, not her (nor the count of her)
    seen = "query($id: ID!) { r: node(id: $id) { ... on MaternalCareLecture { registrationsOutsideAudience } } }"
    assert (await w.p["sw"](seen, {"id": lecture}))["r"] == {"registrationsOutsideAudience": 1}
    assert (await w.p["sw2"](seen, {"id": lecture}))["r"] == {"registrationsOutsideAudience": 0}
    assert (await w.p["admin_b"](seen, {"id": lecture}))["r"] is None
    # and both seated mothers were told of the move, she that it leaves her outside the audience
    outbox = [n for n in await w.kit.outbox(w.org["a"]) if n.kind == "maternal_care.lecture_changed"]
    assert sorted(n.payload["outside_audience"] for n in outbox) == [False, True]
