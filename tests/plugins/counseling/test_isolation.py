"""Organisation isolation of the counseling plugin, through /graphql against real PostgreSQL (the app role,
so row-level security applies).

Given organisation A (counseling enabled) with counselors, clients with phones, sessions with notes, a
programme, an enrolment with journal entries and an open risk flag, and organisation B (counseling enabled
too, with data of its own), a member of B gets nothing of A's through every root query field of the plugin
(null for the journal), through node(id:), and NOT_FOUND from every mutation given A's ids -- exactly what a
missing id answers -- with A's data unchanged afterwards. Positive control in every case: A's own
administrator or counselor sees or does the same thing. A platform administrator sees both organisations'
clients and sessions, but reads no notes (notes are read by relation, not by rank).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.relay import GlobalID

from core.database import create_sessionmaker
from core.errors import DomainError
from core.services import scheduling
from core.services.context import ServiceContext, Viewer
from plugins.counseling import services
from plugins.counseling.models import Client, Counselor, Enrolment, Programme, RiskFlag, Session
from plugins.counseling.types import CounselingMutation, CounselingQuery
from tests.core.services.test_scheduling import at, next_monday
from tests.factories import Factory
from tests.schema.helpers import gid

SHANGHAI = ZoneInfo("Asia/Shanghai")
STAFF = frozenset({"counseling.manage", "counseling.read_notes"})
PROGRAMME = "14天心理健康日志"
MISSING_PK = 10**12
PHONES = {"甲": ("13700001111", "13700002222"), "乙": ("13700003333", "13700004444")}
NOTES = {"s1": "的机密笔记：来访者提到失眠", "s2": "的第二份机密笔记"}
TABLES = (
    "counseling_counselors",
    "counseling_clients",
    "counseling_sessions",
    "counseling_programmes",
    "counseling_enrolments",
    "counseling_journal_entries",
    "counseling_risk_flags",
)


def masked(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}"


def root_fields(cls: type) -> set[str]:
    from strawberry.utils.str_converters import to_camel_case

    return {f.graphql_name or to_camel_case(f.python_name) for f in cls.__strawberry_definition__.fields}  # type: ignore[attr-defined]


@dataclass
class Org:
    """One organisation's counseling data: primary keys and global IDs by key, and what must not leak."""

    id: int
    pk: dict[str, int] = field(default_factory=dict)
    gid: dict[str, str] = field(default_factory=dict)
    secrets: set[str] = field(default_factory=set)

    def keep(self, key: str, type_name: str, pk: int) -> None:
        self.pk[key], self.gid[key] = pk, gid(type_name, pk)

    def who(self, role: str) -> dict[str, Any]:
        """Headers of a caller of this organisation (the counselor is counselor k1's person)."""
        headers: dict[str, Any] = {"role": role, "org": self.id}
        if role == "counselor":
            headers["volunteer"] = self.pk["v1"]
        return headers


@dataclass
class World:
    a: Org
    b: Org
    platform: dict[str, Any]
    monday: datetime
    clock: Any


async def acting(engine: AsyncEngine, clock: Any, viewer: Viewer, work: Callable[[ServiceContext], Any]) -> Any:
    """Run `work` as `viewer` in a transaction of its own (committed)."""
    async with create_sessionmaker(engine)() as session, session.begin():
        return await work(ServiceContext(session, viewer, clock))


async def populate(engine: AsyncEngine, make: Factory, clock: Any, org: Org, tag: str, monday: datetime) -> None:
    """Two counselors with hours every day, two clients, sessions with notes, a programme, an enrolment
    with three low-mood journal days (which raise a risk flag), and a volunteer who is not a counselor yet."""
    admin = Viewer(label=f"{tag} admin", role="organization_admin", organization_id=org.id, extra_permissions=STAFF)
    for n in (1, 2, 3):
        person = await make.volunteer(name=f"{tag}咨询师{n}", organization_id=org.id)
        org.keep(f"v{n}", "Volunteer", person.id)
        org.secrets.add(f"{tag}咨询师{n}")
    start = clock.now.astimezone(SHANGHAI).date() - timedelta(days=3)

    async def build(ctx: ServiceContext) -> None:
        for n in (1, 2):
            counselor = await services.register_counselor(ctx, org.pk[f"v{n}"], specialties=["grief"], languages=["zh"])
            org.keep(f"k{n}", "CounselingCounselor", counselor.id)
            for weekday in range(7):
                await scheduling.add_window(ctx, org.pk[f"v{n}"], weekday, time(9), time(12))
        for n, phone in enumerate(PHONES[tag], start=1):
            client = await services.register_client(ctx, name=f"{tag}来访者{n}", phone=phone, consent=True)
            org.keep(f"c{n}", "CounselingClient", client.id)
            org.secrets |= {f"{tag}来访者{n}", phone, masked(phone)}
        for key, counselor, client, hour in (("s1", "k1", "c1", 9), ("s2", "k2", "c2", 9), ("s3", "k1", "c2", 10)):
            session = await services.book_session(
                ctx,
                client_id=org.pk[client],
                counselor_id=org.pk[counselor],
                start=at(monday, hour),
                minutes=50,
                mode="online",
                meeting_link=f"https://meet.example/{tag}{key}",
            )
            org.keep(key, "CounselingSession", session.id)
            org.secrets.add(f"https://meet.example/{tag}{key}")
        programme = await services.create_programme(ctx, PROGRAMME, [f"第{i}天" for i in range(1, 15)])
        org.keep("programme", "CounselingProgramme", programme.id)
        own = await services.create_programme(ctx, f"{tag}机构专用日志", ["今天好吗？"])
        org.keep("own_programme", "CounselingProgramme", own.id)
        enrolment = await services.enrol(ctx, org.pk["c1"], programme.id, start)
        org.keep("enrolment", "CounselingEnrolment", enrolment.id)
        for day, mood in ((1, 2), (2, 2), (3, 1)):
            await services.add_entry(
                ctx, enrolment.id, mood, text=f"{tag}日记{day}", on=start + timedelta(days=day - 1)
            )
        (flag,) = (await services.open_flags(ctx)).items
        org.keep("flag", "CounselingRiskFlag", flag.id)

    await acting(engine, clock, admin, build)
    counselor = dataclasses.replace(
        admin,
        label=f"{tag} counselor",
        role="counselor",
        volunteer_id=org.pk["v1"],
        extra_permissions=frozenset({"counseling.manage"}),
    )
    # the session's own counselor writes one, the organisation's supervisor the other
    await acting(engine, clock, counselor, lambda ctx: services.write_notes(ctx, org.pk["s1"], tag + NOTES["s1"]))
    await acting(engine, clock, admin, lambda ctx: services.write_notes(ctx, org.pk["s2"], tag + NOTES["s2"]))
    org.secrets |= {tag + note for note in NOTES.values()}
    org.secrets |= set(org.gid.values()) - {org.gid[f"v{n}"] for n in (1, 2, 3)}


@pytest.fixture
async def world(make: Factory, engine: AsyncEngine, clock: Any) -> World:
    monday = next_monday(clock)
    a = Org((await make.organization_using("counseling", "甲心理援助中心")).id)
    b = Org((await make.organization_using("counseling", "乙社工机构")).id)
    platform_org = await make.organization_using("counseling", "平台运营方")
    await populate(engine, make, clock, a, "甲", monday)
    await populate(engine, make, clock, b, "乙", monday)
    return World(a=a, b=b, platform={"role": "platform_admin", "org": platform_org.id}, monday=monday, clock=clock)


def leaks(body: Any, org: Org) -> set[str]:
    """Which of `org`'s secrets (IDs, names, phones, notes, links) appear anywhere in an answer."""
    dumped = json.dumps(body, ensure_ascii=False)
    return {s for s in org.secrets if s in dumped}


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors") or []]


def payload_codes(body: dict[str, Any], field_name: str) -> list[str]:
    assert not body.get("errors"), body
    return [e["code"] for e in body["data"][field_name]["errors"]]


# -- queries ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Read:
    field: str
    document: str
    variables: Callable[[World], dict[str, Any]]


READS = (
    Read(
        "counselingSessions",
        "{ counselingSessions { totalCount edges { node { id status start meetingLink notes "
        "counselor { id name } client { id name } } } } }",
        lambda w: {},
    ),
    Read("counselingClients", "{ counselingClients { totalCount edges { node { id name phone } } } }", lambda w: {}),
    Read(
        "counselingCounselors",
        "{ counselingCounselors { totalCount edges { node { id name volunteer { id name } } } } }",
        lambda w: {},
    ),
    Read("counselingProgrammes", "{ counselingProgrammes { totalCount edges { node { id name } } } }", lambda w: {}),
    Read(
        "counselingEnrolments",
        "{ counselingEnrolments { totalCount edges { node { id client { id name } programme { id name } } } } }",
        lambda w: {},
    ),
    Read(
        "counselingFreeSlots",
        "query($s: DateTime!, $e: DateTime!) "
        "{ counselingFreeSlots(start: $s, end: $e) { start counselor { id name } } }",
        lambda w: {"s": w.monday.isoformat(), "e": (w.monday + timedelta(days=1)).isoformat()},
    ),
    Read(
        "counselingOpenRiskFlags",
        "{ counselingOpenRiskFlags { totalCount edges { node { id client { id name } note severity } } } }",
        lambda w: {},
    ),
    Read(
        "counselingJournal",
        "query($id: ID!) { counselingJournal(enrolmentId: $id) { entries { day mood } missedDays } }",
        lambda w: {"id": w.a.gid["enrolment"]},
    ),
)


def test_every_root_query_field_of_the_plugin_is_in_the_matrix() -> None:
    assert {r.field for r in READS} == root_fields(CounselingQuery)


def expected_for_a(w: World, role: str, field_name: str) -> Any:
    """What A's own caller of `role` gets (the positive control), in the shape `seen` extracts."""
    a = w.a
    notes = {"s1": "甲" + NOTES["s1"], "s2": "甲" + NOTES["s2"], "s3": ""}
    readers = {
        "organization_admin": {"s1", "s2", "s3"},  # the organisation's supervisor
        "counselor": {"s1", "s3"},  # counselor k1's own sessions
        "social_worker": set(),
    }[role]
    if field_name == "counselingSessions":
        return {a.gid[s]: (notes[s] if s in readers else None) for s in ("s1", "s2", "s3")}
    if field_name == "counselingClients":
        serving = role in ("counselor", "social_worker")
        return {a.gid[f"c{n}"]: (p if serving else masked(p)) for n, p in enumerate(PHONES["甲"], start=1)}
    if field_name == "counselingFreeSlots":
        return {a.gid["k1"], a.gid["k2"]}
    if field_name == "counselingCounselors":
        return {a.gid["k1"]: "甲咨询师1", a.gid["k2"]: "甲咨询师2"}
    if field_name == "counselingProgrammes":
        return {a.gid["programme"], a.gid["own_programme"]}
    if field_name == "counselingEnrolments":
        return {a.gid["enrolment"]: (a.gid["c1"], a.gid["programme"])}
    if field_name == "counselingOpenRiskFlags":
        return [a.gid["flag"]] if role == "organization_admin" else "FORBIDDEN"
    if field_name == "counselingJournal":
        return {"entries": [{"day": 1, "mood": 2}, {"day": 2, "mood": 2}, {"day": 3, "mood": 1}], "missedDays": []}
    raise AssertionError(field_name)


def seen(body: dict[str, Any], field_name: str) -> Any:
    if body.get("errors"):
        return codes(body)[0]
    data = body["data"][field_name]
    if isinstance(data, dict) and "edges" in data:  # a connection: its nodes, and a total that agrees
        assert data["totalCount"] == len(data["edges"]), field_name
        data = [edge["node"] for edge in data["edges"]]
    if field_name == "counselingSessions":
        return {s["id"]: s["notes"] for s in data}
    if field_name == "counselingClients":
        return {c["id"]: c["phone"] for c in data}
    if field_name == "counselingCounselors":
        # the counselor's volunteer record (core's type) is the same person, with the same name
        assert all(c["volunteer"]["name"] == c["name"] for c in data), data
        return {c["id"]: c["name"] for c in data}
    if field_name == "counselingProgrammes":
        return {p["id"] for p in data}
    if field_name == "counselingEnrolments":
        return {e["id"]: (e["client"]["id"], e["programme"]["id"]) for e in data}
    if field_name == "counselingFreeSlots":
        return {s["counselor"]["id"] for s in data}
    if field_name == "counselingOpenRiskFlags":
        return [f["id"] for f in data]
    return data


@pytest.mark.parametrize("role", ["organization_admin", "counselor", "social_worker"])
async def test_b_sees_nothing_of_a_through_any_root_query_field(api, world: World, role: str) -> None:  # type: ignore[no-untyped-def]
    w = world
    for read in READS:
        variables = read.variables(w)
        # given A's own caller of this role sees A's data through the field (positive control)
        mine = await api(read.document, variables, **w.a.who(role))
        assert seen(mine, read.field) == expected_for_a(w, role, read.field), read.field
        # when B's caller of the same role asks the same thing
        theirs = await api(read.document, variables, **w.b.who(role))
        # then nothing of A's is in the answer: no ID, name, phone, note or link
        assert leaks(theirs, w.a) == set(), read.field
        answer = seen(theirs, read.field)
        if read.field == "counselingJournal":
            assert answer is None  # A's enrolment answers like a missing one
            missing = await api(read.document, {"id": gid("CounselingEnrolment", MISSING_PK)}, **w.b.who(role))
            assert seen(missing, read.field) is None
            own = await api(read.document, {"id": w.b.gid["enrolment"]}, **w.b.who(role))
            assert len(seen(own, read.field)["entries"]) == 3  # the field works for B's own enrolment
        elif read.field == "counselingOpenRiskFlags" and role != "organization_admin":
            assert answer == "FORBIDDEN"  # only supervisors follow flags up, in B as in A
        else:
            # B's own records are there (the field works for B), and only B's
            assert answer, read.field
            assert set(answer) <= set(w.b.gid.values()), read.field


# Each counseling Node type and the record of each organisation that stands for it.
NODE_TYPES = {
    "CounselingCounselor": "k1",
    "CounselingClient": "c1",
    "CounselingSession": "s1",
    "CounselingProgramme": "programme",
    "CounselingEnrolment": "enrolment",
    "CounselingRiskFlag": "flag",
}


@pytest.mark.parametrize("role", ["organization_admin", "counselor"])
async def test_node_answers_an_id_of_a_to_b_like_a_missing_one(api, world: World, role: str) -> None:  # type: ignore[no-untyped-def]
    w = world
    types = await api('{ __type(name: "Node") { possibleTypes { name } } }', **w.a.who("organization_admin"))
    node_types = {t["name"] for t in types["data"]["__type"]["possibleTypes"]}
    assert {t for t in node_types if t.startswith("Counseling")} == set(NODE_TYPES)
    document = "query($id: ID!) { node(id: $id) { id ... on CounselingSession { notes } } }"
    for type_name, key in NODE_TYPES.items():
        raw = w.a.gid[key]
        mine = await api(document, {"id": raw}, **w.a.who(role))
        theirs = await api(document, {"id": raw}, **w.b.who(role))
        missing = await api(document, {"id": gid(type_name, MISSING_PK)}, **w.b.who(role))
        if type_name == "CounselingRiskFlag" and role != "organization_admin":
            # flags are for supervisors: null whatever the id, in A as in B (as core's types outside a scope)
            assert [b["data"]["node"] for b in (mine, theirs, missing)] == [None, None, None]
            assert [b.get("errors") for b in (mine, theirs, missing)] == [None, None, None]
            continue
        # positive control: A's caller gets A's record (the session's counselor and supervisor its notes)
        assert not mine.get("errors"), mine
        assert mine["data"]["node"]["id"] == raw, type_name
        if type_name == "CounselingSession":
            assert mine["data"]["node"]["notes"] == "甲" + NOTES["s1"]
        # B's caller gets null, exactly as for an id that never existed
        assert theirs == missing == {"data": {"node": None}}, type_name
        assert leaks(theirs, w.a) == set(), type_name
    # and in a batch, A's record is a hole next to B's own
    batch = await api(
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": [w.a.gid["s1"], w.b.gid["s1"]]}, **w.b.who(role)
    )
    assert batch == {"data": {"nodes": [None, {"id": w.b.gid["s1"]}]}}


# -- mutations ---------------------------------------------------------------------------------------------------

SESSION = "session { id status notes } errors { code }"
REGISTER_COUNSELOR = (
    'mutation($v: ID!) { counselingRegisterCounselor(input: {volunteerId: $v, specialties: ["grief"], '
    'languages: ["zh"]}) { counselor { id } errors { code } } }'
)
BOOK = (
    "mutation($c: ID!, $k: ID, $s: DateTime) { counselingBookSession(input: {clientId: $c, counselorId: $k, "
    'start: $s, meetingLink: "https://meet.example/x"}) { session { id } errors { code } } }'
)
BOOK_EARLIEST = (
    'mutation($c: ID!) { counselingBookSession(input: {clientId: $c, specialty: "grief", '
    'meetingLink: "https://meet.example/x"}) { session { id } errors { code } } }'
)
RESCHEDULE = (
    "mutation($id: ID!, $s: DateTime!) { counselingRescheduleSession(input: {id: $id, start: $s}) "
    f"{{ {SESSION} }} }}"
)
CANCEL = f'mutation($id: ID!) {{ counselingCancelSession(input: {{id: $id, reason: "moved"}}) {{ {SESSION} }} }}'
MARK = f"mutation($id: ID!) {{ counselingMarkSession(input: {{id: $id, attended: true}}) {{ {SESSION} }} }}"
WRITE_NOTES = f'mutation($id: ID!) {{ counselingWriteNotes(input: {{id: $id, notes: "覆盖"}}) {{ {SESSION} }} }}'
ENROL = (
    "mutation($c: ID!, $p: ID!, $d: Date!) { counselingEnrol(input: {clientId: $c, programmeId: $p, startsOn: $d}) "
    "{ enrolment { id client { id } programme { id } } errors { code } } }"
)
ADD_ENTRY = (
    "mutation($id: ID!) { counselingAddJournalEntry(input: {enrolmentId: $id, mood: 9}) "
    "{ entry { day } errors { code } } }"
)
FLAG = (
    'mutation($id: ID!) { counselingFlagRisk(input: {clientId: $id, severity: HIGH, note: "担心"}) '
    "{ flag { id severity source } errors { code } } }"
)
RESOLVE = (
    "mutation($id: ID!) { counselingResolveRiskFlag(input: {id: $id}) { flag { id resolvedAt } errors { code } } }"
)


@dataclass(frozen=True)
class Attempt:
    """A mutation given A's ids (mixed with B's own where it takes two) by a caller of B; and its positive
    control: the same mutation with A's ids only, by A's own caller (`by`), which succeeds (`done`)."""

    name: str
    field: str
    document: str
    theirs: Callable[[World], dict[str, Any]]
    mine: Callable[[World], dict[str, Any]]
    by: str
    done: Callable[[dict[str, Any]], bool]


def _monday(w: World, hour: int) -> str:
    return at(w.monday, hour).isoformat()


# In the order the positive control runs them (it books, moves and finally marks sessions of A's calendar).
ATTEMPTS = (
    Attempt(
        "register A's volunteer as a counselor",
        "counselingRegisterCounselor",
        REGISTER_COUNSELOR,
        lambda w: {"v": w.a.gid["v3"]},
        lambda w: {"v": w.a.gid["v3"]},
        "organization_admin",
        lambda p: bool(p["counselor"]["id"]),
    ),
    Attempt(
        "reschedule A's session",
        "counselingRescheduleSession",
        RESCHEDULE,
        lambda w: {"id": w.a.gid["s2"], "s": _monday(w, 10)},
        lambda w: {"id": w.a.gid["s2"], "s": _monday(w, 10)},
        "organization_admin",
        lambda p: p["session"]["status"] == "BOOKED",
    ),
    Attempt(
        "book A's client with B's counselor",
        "counselingBookSession",
        BOOK,
        lambda w: {"c": w.a.gid["c1"], "k": w.b.gid["k1"], "s": _monday(w, 11)},
        lambda w: {"c": w.a.gid["c1"], "k": w.a.gid["k2"], "s": _monday(w, 11)},
        "counselor",
        lambda p: bool(p["session"]["id"]),
    ),
    Attempt(
        "book B's client with A's counselor",
        "counselingBookSession",
        BOOK,
        lambda w: {"c": w.b.gid["c1"], "k": w.a.gid["k1"], "s": _monday(w, 11)},
        lambda w: {"c": w.a.gid["c2"], "k": w.a.gid["k1"], "s": _monday(w, 11)},
        "counselor",
        lambda p: bool(p["session"]["id"]),
    ),
    Attempt(
        "book A's client with the earliest counselor who fits",
        "counselingBookSession",
        BOOK_EARLIEST,
        lambda w: {"c": w.a.gid["c1"]},
        lambda w: {"c": w.a.gid["c1"]},
        "counselor",
        lambda p: bool(p["session"]["id"]),
    ),
    Attempt(
        "cancel A's session",
        "counselingCancelSession",
        CANCEL,
        lambda w: {"id": w.a.gid["s3"]},
        lambda w: {"id": w.a.gid["s3"]},
        "organization_admin",
        lambda p: p["session"]["status"] == "CANCELLED",
    ),
    Attempt(
        "write A's session's notes",
        "counselingWriteNotes",
        WRITE_NOTES,
        lambda w: {"id": w.a.gid["s1"]},
        lambda w: {"id": w.a.gid["s1"]},
        "counselor",
        lambda p: p["session"]["notes"] == "覆盖",
    ),
    Attempt(
        "enrol A's client in B's programme",
        "counselingEnrol",
        ENROL,
        lambda w: {"c": w.a.gid["c2"], "p": w.b.gid["programme"], "d": w.monday.date().isoformat()},
        lambda w: {"c": w.a.gid["c2"], "p": w.a.gid["programme"], "d": w.monday.date().isoformat()},
        "organization_admin",
        lambda p: bool(p["enrolment"]["id"]),
    ),
    Attempt(
        "enrol B's client in A's programme",
        "counselingEnrol",
        ENROL,
        lambda w: {"c": w.b.gid["c2"], "p": w.a.gid["programme"], "d": w.monday.date().isoformat()},
        lambda w: {"c": w.a.gid["c1"], "p": w.a.gid["own_programme"], "d": w.monday.date().isoformat()},
        "organization_admin",
        lambda p: bool(p["enrolment"]["id"]),
    ),
    Attempt(
        "write in A's client's journal",
        "counselingAddJournalEntry",
        ADD_ENTRY,
        lambda w: {"id": w.a.gid["enrolment"]},
        lambda w: {"id": w.a.gid["enrolment"]},
        "counselor",
        lambda p: p["entry"]["day"] == 4,
    ),
    Attempt(
        "flag a risk for A's client",
        "counselingFlagRisk",
        FLAG,
        lambda w: {"id": w.a.gid["c2"]},
        lambda w: {"id": w.a.gid["c2"]},
        "counselor",
        lambda p: (p["flag"]["severity"], p["flag"]["source"]) == ("HIGH", "COUNSELOR"),
    ),
    Attempt(
        "resolve A's risk flag",
        "counselingResolveRiskFlag",
        RESOLVE,
        lambda w: {"id": w.a.gid["flag"]},
        lambda w: {"id": w.a.gid["flag"]},
        "organization_admin",
        lambda p: p["flag"]["resolvedAt"] is not None,
    ),
    Attempt(
        "mark A's session attended",
        "counselingMarkSession",
        MARK,
        lambda w: {"id": w.a.gid["s1"]},
        lambda w: {"id": w.a.gid["s1"]},
        "counselor",
        lambda p: p["session"]["status"] == "ATTENDED",
    ),
)
ATTEMPT = {a.name: a for a in ATTEMPTS}
# Mutations that take no id of an existing record: B's caller creates B's own (checked below).
CREATES = {"counselingRegisterClient", "counselingCreateProgramme"}


def test_every_mutation_of_the_plugin_is_in_the_matrix() -> None:
    assert {a.field for a in ATTEMPTS} | CREATES == root_fields(CounselingMutation)
    assert len(ATTEMPT) == len(ATTEMPTS)


def as_missing(variables: dict[str, Any], org: Org) -> dict[str, Any]:
    """The same variables with each of `org`'s IDs replaced by a never-used ID of the same type."""
    owned = set(org.gid.values())
    return {
        k: gid(GlobalID.from_id(v).type_name, MISSING_PK) if isinstance(v, str) and v in owned else v
        for k, v in variables.items()
    }


async def snapshot(api: Any, w: World, owner_engine: AsyncEngine) -> dict[str, Any]:
    """A's data as A's supervisor reads it, and A's row count in every counseling table (read by the owner,
    below row-level security)."""
    body = await api(
        "query($e: ID!) { counselingSessions { nodes { id status start end notes cancelReason } } "
        "counselingClients { nodes { id name } } counselingOpenRiskFlags { nodes { id severity resolvedAt } } "
        "counselingCounselors { nodes { id specialties } } counselingProgrammes { nodes { id name } } "
        "counselingEnrolments { nodes { id days } } "
        "counselingJournal(enrolmentId: $e) { entries { day mood } missedDays } }",
        {"e": w.a.gid["enrolment"]},
        **w.a.who("organization_admin"),
    )
    assert not body.get("errors"), body
    async with owner_engine.connect() as conn:
        counts = {
            table: (
                await conn.execute(text(f"SELECT count(*) FROM {table} WHERE organization_id = :org"), {"org": w.a.id})
            ).scalar_one()
            for table in TABLES
        }
    return {"graphql": body["data"], "rows": counts}


@pytest.mark.parametrize("role", ["organization_admin", "counselor"])
async def test_every_mutation_given_a_ids_answers_not_found_to_b_and_changes_nothing(  # type: ignore[no-untyped-def]
    api, world: World, owner_engine: AsyncEngine, role: str
) -> None:
    w = world
    before = await snapshot(api, w, owner_engine)
    assert before["graphql"]["counselingSessions"]["nodes"]
    assert before["rows"]["counseling_journal_entries"] == 3
    for attempt in ATTEMPTS:
        variables = attempt.theirs(w)
        # when B's caller names A's records
        theirs = await api(attempt.document, variables, **w.b.who(role))
        # then the answer is the one a missing id gets, and nothing of A's is in it
        # (only supervisors resolve flags at all: B's counselor is refused before any lookup, as A's would be)
        supervisor_only = attempt.field == "counselingResolveRiskFlag" and role != "organization_admin"
        denied = "FORBIDDEN" if supervisor_only else "NOT_FOUND"
        assert payload_codes(theirs, attempt.field) == [denied], attempt.name
        assert leaks(theirs, w.a) == set(), attempt.name
        missing = await api(attempt.document, as_missing(variables, w.a), **w.b.who(role))
        assert payload_codes(missing, attempt.field) == [denied], attempt.name
    # and A's data is unchanged (notes, journal, flags, sessions re-read by A's supervisor; row counts)
    assert await snapshot(api, w, owner_engine) == before


async def test_a_does_what_b_was_refused(api, world: World) -> None:  # type: ignore[no-untyped-def]
    """The positive control of the mutation matrix: every attempt, with A's ids only, by A's own caller."""
    w = world
    for attempt in ATTEMPTS:
        if attempt.field == "counselingMarkSession":
            w.clock.now = at(w.monday, 9, 30)  # a session is marked once it has started
        body = await api(attempt.document, attempt.mine(w), **w.a.who(attempt.by))
        assert payload_codes(body, attempt.field) == [], (attempt.name, body)
        assert attempt.done(body["data"][attempt.field]), (attempt.name, body)


async def test_creating_in_b_leaves_a_alone_and_names_are_unique_per_organisation(api, world: World) -> None:  # type: ignore[no-untyped-def]
    w = world
    create = (
        'mutation($n: String!) { counselingCreateProgramme(input: {name: $n, prompts: ["今天好吗？"]}) '
        "{ programme { id name } errors { code } } }"
    )
    # the same programme name exists in A and in B (the fixture created it in both)
    assert w.a.pk["programme"] != w.b.pk["programme"]
    # a name only A uses is free for B (no existence oracle) ...
    theirs = await api(create, {"n": "甲机构专用日志"}, **w.b.who("organization_admin"))
    assert payload_codes(theirs, "counselingCreateProgramme") == []
    # ... while each organisation's own names stay unique within it (positive control of the key)
    for org in (w.a, w.b):
        again = await api(create, {"n": PROGRAMME}, **org.who("organization_admin"))
        assert payload_codes(again, "counselingCreateProgramme") == ["ALREADY_EXISTS"]
    # a client registered by B is B's: A's callers do not see it, B's do
    registered = await api(
        'mutation { counselingRegisterClient(input: {name: "乙新来访者", phone: "13700005555", consent: true}) '
        "{ client { id } errors { code } } }",
        **w.b.who("counselor"),
    )
    new_id = registered["data"]["counselingRegisterClient"]["client"]["id"]
    for role in ("organization_admin", "counselor", "social_worker"):
        a_clients = await api("{ counselingClients { nodes { id } } }", **w.a.who(role))
        assert {c["id"] for c in a_clients["data"]["counselingClients"]["nodes"]} == {w.a.gid["c1"], w.a.gid["c2"]}
    b_clients = await api("{ counselingClients { nodes { id } } }", **w.b.who("organization_admin"))
    assert new_id in {c["id"] for c in b_clients["data"]["counselingClients"]["nodes"]}


# -- platform administrators ---------------------------------------------------------------------------------


async def test_a_platform_administrator_sees_both_organisations_but_reads_no_notes(api, world: World) -> None:  # type: ignore[no-untyped-def]
    w = world
    body = await api(
        "{ counselingSessions(first: 100) { nodes { id notes } } counselingClients { nodes { id phone } } "
        "counselingCounselors { totalCount } counselingProgrammes { totalCount } counselingEnrolments { totalCount } }",
        **w.platform,
    )
    assert not body.get("errors"), body
    sessions = {s["id"]: s["notes"] for s in body["data"]["counselingSessions"]["nodes"]}
    expected_sessions = {org.gid[s] for org in (w.a, w.b) for s in ("s1", "s2", "s3")}
    assert set(sessions) == expected_sessions
    assert set(sessions.values()) == {None}  # notes by relation, not by rank
    clients = {c["id"]: c["phone"] for c in body["data"]["counselingClients"]["nodes"]}
    # every organisation's counselors (two each), programmes (two each) and enrolments (one each)
    assert [body["data"][f]["totalCount"] for f in ("counselingCounselors", "counselingProgrammes")] == [4, 4]
    assert body["data"]["counselingEnrolments"]["totalCount"] == 2
    assert set(clients) == {org.gid[c] for org in (w.a, w.b) for c in ("c1", "c2")}
    assert clients[w.a.gid["c1"]] == masked("13700001111")  # administrators do not serve clients
    # open risk flags are followed up by each organisation's supervisors, not by the platform
    flags = await api("{ counselingOpenRiskFlags { nodes { id } } }", **w.platform)
    assert codes(flags) == ["FORBIDDEN"]
    # writing another organisation's notes is refused, and linking two organisations' records is refused
    refused = await api(WRITE_NOTES, {"id": w.a.gid["s1"]}, **w.platform)
    assert payload_codes(refused, "counselingWriteNotes") == ["FORBIDDEN"]
    for name in ("book A's client with B's counselor", "enrol A's client in B's programme"):
        attempt = ATTEMPT[name]
        mixed = await api(attempt.document, attempt.theirs(w), **w.platform)
        assert payload_codes(mixed, attempt.field) == ["ORGANIZATION_MISMATCH"], name
    # node(id:) too: the platform administrator sees A's session, not its notes
    node = await api(
        "query($id: ID!) { node(id: $id) { ... on CounselingSession { id notes } } }",
        {"id": w.a.gid["s1"]},
        **w.platform,
    )
    assert node == {"data": {"node": {"id": w.a.gid["s1"], "notes": None}}}
    # positive control: A's supervisor still reads A's notes, unchanged
    mine = await api("{ counselingSessions { nodes { id notes } } }", **w.a.who("organization_admin"))
    notes = {s["id"]: s["notes"] for s in mine["data"]["counselingSessions"]["nodes"]}
    assert notes[w.a.gid["s1"]] == "甲的机密笔记：来访者提到失眠"


# -- below the services ------------------------------------------------------------------------------------------


async def test_the_database_itself_keeps_b_out_of_a_counseling_rows(engine: AsyncEngine, world: World) -> None:
    """Defence in depth: plain SQL through the app role under B's settings (no service check involved)
    sees and changes none of A's rows; under A's settings, the same statements see them."""
    w = world

    async def probe(org: int) -> tuple[dict[str, int], int]:
        viewer = Viewer(label="probe", role="organization_admin", organization_id=org)
        async with create_sessionmaker(engine)() as session, session.begin():
            ServiceContext(session, viewer)
            seen_rows = {
                table: (
                    await session.execute(
                        text(f"SELECT count(*) FROM {table} WHERE organization_id = :a"),
                        {"a": w.a.id},
                    )
                ).scalar_one()
                for table in TABLES
            }
            changed = (
                await session.execute(
                    text("UPDATE counseling_sessions SET notes = 'x' WHERE organization_id = :a"), {"a": w.a.id}
                )
            ).rowcount
            await session.rollback()
        return seen_rows, changed

    b_rows, b_changed = await probe(w.b.id)
    assert b_rows == dict.fromkeys(TABLES, 0)
    assert b_changed == 0
    a_rows, a_changed = await probe(w.a.id)
    assert all(a_rows.values())
    assert a_changed == 3


async def test_the_services_keep_b_out_of_a_counseling_rows_on_their_own(
    owner_engine: AsyncEngine, world: World, clock: Any
) -> None:
    """The other half of defence in depth: the services' own scope, through a connection that row-level
    security does not restrict (the owner), still answers B's caller as if A's records did not exist."""
    w, a, b = world, world.a, world.b
    caller = Viewer(label="B admin", role="organization_admin", organization_id=b.id, extra_permissions=STAFF)
    monday = w.monday
    async with create_sessionmaker(owner_engine)() as session:
        ctx = ServiceContext(session, caller, clock)
        # reads: B's own records only, and nothing for A's enrolment
        own_sessions = {b.pk[k] for k in ("s1", "s2", "s3")}
        assert {s.id for s in (await services.list_sessions(ctx)).items} == own_sessions
        assert {s.id for s in await services.all_sessions(ctx)} == own_sessions
        assert {c.id for c in (await services.list_clients(ctx)).items} == {b.pk["c1"], b.pk["c2"]}
        assert {c.id for c in (await services.list_counselors(ctx)).items} == {b.pk["k1"], b.pk["k2"]}
        assert {p.id for p in (await services.list_programmes(ctx)).items} == {
            b.pk["programme"],
            b.pk["own_programme"],
        }
        assert {e.id for e in (await services.list_enrolments(ctx)).items} == {b.pk["enrolment"]}
        # filters naming A's records find nothing (like missing ones)
        assert (await services.list_sessions(ctx, services.SessionFilter(counselor_id=a.pk["k1"]))).items == []
        assert (await services.list_enrolments(ctx, services.EnrolmentFilter(client_id=a.pk["c1"]))).items == []
        assert {c.id for c in await services.matching_counselors(ctx, None, None, "online")} == {
            b.pk["k1"],
            b.pk["k2"],
        }
        assert [f.id for f in (await services.open_flags(ctx)).items] == [b.pk["flag"]]
        assert await services.journal(ctx, a.pk["enrolment"]) is None
        assert await services.trend(ctx, a.pk["enrolment"]) == []
        for model, key in (
            (Counselor, "k1"),
            (Client, "c1"),
            (Session, "s1"),
            (Programme, "programme"),
            (Enrolment, "enrolment"),
            (RiskFlag, "flag"),
        ):
            found = await services.rows_by_id(ctx, model, [a.pk[key], b.pk[key]])
            assert list(found) == [b.pk[key]], model.__name__  # node(id:): A's record is absent
        # writes given A's ids: NOT_FOUND, before anything is written
        online = {"minutes": 50, "mode": "online", "meeting_link": "https://meet.example/x"}
        attempts: dict[str, Callable[[], Any]] = {
            "register counselor": lambda: services.register_counselor(ctx, a.pk["v3"]),
            "book A client": lambda: services.book_session(
                ctx, client_id=a.pk["c1"], counselor_id=b.pk["k1"], start=at(monday, 11), **online
            ),
            "book A counselor": lambda: services.book_session(
                ctx, client_id=b.pk["c1"], counselor_id=a.pk["k1"], start=at(monday, 11), **online
            ),
            "book earliest for A client": lambda: services.book_session(ctx, client_id=a.pk["c1"], **online),
            "reschedule": lambda: services.reschedule_session(ctx, a.pk["s2"], at(monday, 10), 50),
            "cancel": lambda: services.cancel_session(ctx, a.pk["s3"], "moved"),
            "mark": lambda: services.mark_session(ctx, a.pk["s1"], True),
            "write notes": lambda: services.write_notes(ctx, a.pk["s1"], "覆盖"),
            "enrol A client": lambda: services.enrol(ctx, a.pk["c2"], b.pk["programme"], monday.date()),
            "enrol in A programme": lambda: services.enrol(ctx, b.pk["c2"], a.pk["programme"], monday.date()),
            "journal entry": lambda: services.add_entry(ctx, a.pk["enrolment"], 9),
            "missed days": lambda: services.missed_days(ctx, a.pk["enrolment"]),
            "flag risk": lambda: services.flag_risk(ctx, a.pk["c2"], "high", "担心"),
            "resolve flag": lambda: services.resolve_flag(ctx, a.pk["flag"]),
        }
        for name, call in attempts.items():
            with pytest.raises(DomainError) as err:
                await call()
            assert err.value.code == "NOT_FOUND", name
        # notes by relation: A's session is readable by A's supervisor only, not by B's nor the platform's
        a_session = await session.get(Session, a.pk["s1"])
        assert a_session is not None
        assert not await services.can_read_notes(ctx, a_session)
        platform = dataclasses.replace(caller, role="platform_admin", organization_id=None)
        platform_elsewhere = dataclasses.replace(platform, organization_id=b.id)
        a_supervisor = dataclasses.replace(caller, organization_id=a.id)
        readers = {
            name: await services.can_read_notes(ServiceContext(session, viewer, clock), a_session)
            for name, viewer in {
                "platform administrator": platform,
                "platform administrator of B, with counseling.read_notes": platform_elsewhere,
                "A's supervisor": a_supervisor,
            }.items()
        }
        assert readers == {
            "platform administrator": False,
            "platform administrator of B, with counseling.read_notes": False,
            "A's supervisor": True,
        }
        await session.rollback()
