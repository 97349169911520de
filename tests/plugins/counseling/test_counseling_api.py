"""The counseling plugin through /graphql: enablement, booking, notes visible to their readers only, the
connections (filters, the calendar range, pagination, totalCount), object fields, and statement counts."""

from __future__ import annotations

import dataclasses
from datetime import datetime, time, timedelta
from typing import Any

import pytest

from core.services import organizations, scheduling
from core.services.context import SYSTEM, ServiceContext
from core.vocab import OrganizationKind
from plugins.counseling import services
from tests.core.services.test_scheduling import at, next_monday
from tests.factories import Factory
from tests.schema.helpers import gid


def system_of(make: Factory, organization_id: int) -> ServiceContext:
    """The organisation's own script (a system caller acts within one organisation)."""
    return ServiceContext(
        make.ctx.session, dataclasses.replace(SYSTEM, organization_id=organization_id), make.ctx.clock
    )


def nodes(body: dict[str, Any], field: str) -> list[dict[str, Any]]:
    assert not body.get("errors"), body
    return [edge["node"] for edge in body["data"][field]["edges"]]


async def test_counseling_over_graphql(api, make: Factory, clock) -> None:  # type: ignore[no-untyped-def]
    # given an organisation that enabled counseling, its counselor with Monday hours, and another organisation
    org = await make.organization_using("counseling", "心理援助中心")
    other = await organizations.create_organization(make.ctx, name="别的机构", kind=OrganizationKind.AGENCY)
    person = await make.volunteer(organization_id=org.id, name="王咨询师")
    monday = next_monday(clock)
    await scheduling.add_window(make.ctx, person.id, monday.weekday(), time(9), time(12))
    await make.commit()
    admin = {"role": "organization_admin", "org": org.id}
    counselor = {"role": "counselor", "org": org.id, "volunteer": person.id}
    registered = await api(
        'mutation($v: ID!) { counselingRegisterCounselor(input: {volunteerId: $v, specialties: ["grief"], '
        'languages: ["zh"], modes: [ONLINE]}) { counselor { id name modes volunteer { id name } } errors { code } } }',
        {"v": gid("Volunteer", person.id)},
        **admin,
    )
    registered_counselor = registered["data"]["counselingRegisterCounselor"]["counselor"]
    assert registered_counselor["modes"] == ["ONLINE"]
    assert registered_counselor["volunteer"] == {"id": gid("Volunteer", person.id), "name": "王咨询师"}
    counselor_id = registered_counselor["id"]
    client = await api(
        'mutation { counselingRegisterClient(input: {name: "居民", phone: "13700001111", consent: true}) '
        "{ client { id phone } errors { code } } }",
        **admin,
    )
    client_id = client["data"]["counselingRegisterClient"]["client"]["id"]
    # when the counselor books a session and writes notes
    booked = await api(
        "mutation($c: ID!, $k: ID!, $s: DateTime!) { counselingBookSession(input: {clientId: $c, counselorId: $k, "
        'start: $s, meetingLink: "https://meet.example/1"}) { session { id start status mode '
        "counselor { id name } client { id name } } errors { code } } }",
        {"c": client_id, "k": counselor_id, "s": at(monday, 9).isoformat()},
        **counselor,
    )
    session = booked["data"]["counselingBookSession"]["session"]
    assert (session["status"], session["mode"]) == ("BOOKED", "ONLINE")
    assert session["counselor"] == {"id": counselor_id, "name": "王咨询师"}
    assert session["client"] == {"id": client_id, "name": "居民"}
    wrote = await api(
        'mutation($id: ID!) { counselingWriteNotes(input: {id: $id, notes: "失眠"}) { session { notes } '
        "errors { code } } }",
        {"id": session["id"]},
        **counselor,
    )
    assert wrote["data"]["counselingWriteNotes"] == {"session": {"notes": "失眠"}, "errors": []}
    # then the counselor and the supervisor read the notes, a social worker of the same organisation does not,
    # and the other organisation's members are refused by the plugin gate
    query = "{ counselingSessions { totalCount edges { node { status start notes } } } }"
    seen = {
        name: await api(query, **who)
        for name, who in {
            "counselor": counselor,
            "supervisor": admin,
            "social worker": {"role": "social_worker", "org": org.id},
            "other org": {"role": "organization_admin", "org": other.id},
        }.items()
    }
    assert nodes(seen["counselor"], "counselingSessions")[0]["notes"] == "失眠"
    assert nodes(seen["supervisor"], "counselingSessions")[0]["notes"] == "失眠"
    assert nodes(seen["social worker"], "counselingSessions")[0]["notes"] is None
    assert seen["supervisor"]["data"]["counselingSessions"]["totalCount"] == 1
    assert seen["other org"]["errors"][0]["extensions"]["code"] == "PLUGIN_DISABLED"
    assert session["start"] == at(monday, 9).isoformat(timespec="milliseconds")
    # and a second booking of the same slot is refused with SLOT_TAKEN, writing nothing
    again = await api(
        "mutation($c: ID!, $k: ID!, $s: DateTime!) { counselingBookSession(input: {clientId: $c, counselorId: $k, "
        'start: $s, meetingLink: "https://meet.example/2"}) { session { id } errors { code } } }',
        {"c": client_id, "k": counselor_id, "s": at(monday, 9, 30).isoformat()},
        **counselor,
    )
    assert again["data"]["counselingBookSession"] == {"session": None, "errors": [{"code": "SLOT_TAKEN"}]}
    # the lifecycle speaks enums: cancelled with a reason
    cancelled = await api(
        'mutation($id: ID!) { counselingCancelSession(input: {id: $id, reason: "来访者改期"}) '
        "{ session { status cancelReason } errors { code } } }",
        {"id": session["id"]},
        **counselor,
    )
    assert cancelled["data"]["counselingCancelSession"] == {
        "session": {"status": "CANCELLED", "cancelReason": "来访者改期"},
        "errors": [],
    }


# -- connections ------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Calendar:
    org: int
    admin: dict[str, Any]
    counselors: list[str]
    clients: list[str]
    sessions: dict[str, str]
    monday: datetime


@pytest.fixture
async def calendar(make: Factory, clock) -> Calendar:  # type: ignore[no-untyped-def]
    """Two counselors with hours every day (k0 online and offline, k1 offline) and two clients; sessions
    over two weeks, booked out of order:
    k0/c0 Monday 9:00 and next Monday 9:00, k1/c1 Monday 10:00 (cancelled), k0/c1 Tuesday 11:00."""
    org = await make.organization_using("counseling")
    system = system_of(make, org.id)
    people = [await make.volunteer(organization_id=org.id, name=f"咨询师{n}") for n in range(2)]
    counselors = []
    for n, person in enumerate(people):
        modes = ["online", "offline"] if n == 0 else ["offline"]
        counselors.append(await services.register_counselor(system, person.id, specialties=["grief"], modes=modes))
        for weekday in range(7):
            await scheduling.add_window(system, person.id, weekday, time(8), time(20))
    clients = [
        await services.register_client(system, name=f"来访者{n}", phone=f"1370000111{n}", consent=True)
        for n in range(2)
    ]
    monday = next_monday(clock)
    sessions = {}
    for key, k, c, start in (
        ("next_mon", 0, 0, at(monday + timedelta(days=7), 9)),
        ("tue", 0, 1, at(monday + timedelta(days=1), 11)),
        ("mon10", 1, 1, at(monday, 10)),
        ("mon9", 0, 0, at(monday, 9)),
    ):
        booked = await services.book_session(
            system,
            client_id=clients[c].id,
            counselor_id=counselors[k].id,
            start=start,
            minutes=50,
            mode="offline",
            place="社区活动室",
        )
        sessions[key] = gid("CounselingSession", booked.id)
    await services.cancel_session(system, booked_id(sessions["mon10"]), "改期")
    await make.commit()
    return Calendar(
        org=org.id,
        admin={"role": "organization_admin", "org": org.id},
        counselors=[gid("CounselingCounselor", c.id) for c in counselors],
        clients=[gid("CounselingClient", c.id) for c in clients],
        sessions=sessions,
        monday=monday,
    )


def booked_id(raw: str) -> int:
    from strawberry.relay import GlobalID

    return int(GlobalID.from_id(raw).node_id)


SESSIONS = """
query($f: CounselingSessionFilter, $first: Int, $after: String) {
  counselingSessions(filter: $f, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id start status } }
  }
}"""


async def test_sessions_connection_filters_the_calendar_range_and_pages_by_start(api, calendar: Calendar) -> None:  # type: ignore[no-untyped-def]
    c = calendar
    name = {v: k for k, v in c.sessions.items()}

    async def listed(f: dict[str, Any] | None = None, **kw: Any) -> tuple[list[str], int]:
        body = await api(SESSIONS, {"f": f, **kw}, **c.admin)
        return [name[n["id"]] for n in nodes(body, "counselingSessions")], body["data"]["counselingSessions"][
            "totalCount"
        ]

    # ordered by start, whatever the booking order
    assert await listed() == (["mon9", "mon10", "tue", "next_mon"], 4)
    # a counselor's calendar for the week: [from, to) on the start
    week = {"from": c.monday.isoformat(), "to": (c.monday + timedelta(days=7)).isoformat()}
    assert await listed({"counselorId": c.counselors[0], **week}) == (["mon9", "tue"], 2)
    assert await listed({"counselorId": c.counselors[1], **week}) == (["mon10"], 1)
    assert await listed(week) == (["mon9", "mon10", "tue"], 3)
    # the bounds: `from` inclusive, `to` exclusive
    monday_10_to_tuesday_11 = {
        "from": at(c.monday, 10).isoformat(),
        "to": at(c.monday + timedelta(days=1), 11).isoformat(),
    }
    assert await listed(monday_10_to_tuesday_11) == (["mon10"], 1)
    # by client and by status
    assert await listed({"clientId": c.clients[1]}) == (["mon10", "tue"], 2)
    assert await listed({"statuses": ["CANCELLED"]}) == (["mon10"], 1)
    assert await listed({"statuses": ["BOOKED", "ATTENDED"], "clientId": c.clients[0]}) == (["mon9", "next_mon"], 2)
    # pages of two, following cursors; totalCount counts the whole filtered list on every page
    first = await api(SESSIONS, {"first": 2}, **c.admin)
    page = first["data"]["counselingSessions"]
    assert [name[n["id"]] for n in nodes(first, "counselingSessions")] == ["mon9", "mon10"]
    assert (page["pageInfo"]["hasNextPage"], page["totalCount"]) == (True, 4)
    second = await api(SESSIONS, {"first": 2, "after": page["pageInfo"]["endCursor"]}, **c.admin)
    assert [name[n["id"]] for n in nodes(second, "counselingSessions")] == ["tue", "next_mon"]
    assert second["data"]["counselingSessions"]["pageInfo"]["hasNextPage"] is False
    # refusals: a range ending before it starts, an ID of another type, a page too large, a foreign cursor
    refusals = {
        "OUT_OF_RANGE": {"f": {"from": week["to"], "to": week["from"]}},
        "INVALID_ID": {"f": {"counselorId": c.clients[0]}},
        "PAGE_SIZE_EXCEEDED": {"first": 100000},
        "INVALID_CURSOR": {"after": "bm90IGEgY3Vyc29y"},
    }
    for code, variables in refusals.items():
        body = await api(SESSIONS, variables, **c.admin)
        assert [e["extensions"]["code"] for e in body["errors"]] == [code], body


async def test_the_other_connections_filter_page_and_count(api, make: Factory, calendar: Calendar) -> None:  # type: ignore[no-untyped-def]
    c = calendar
    system = system_of(make, c.org)
    # given two programmes, two enrolments, and two open flags of different severities
    programmes = [
        await services.create_programme(system, title, ["今天好吗？"] * 7) for title in ("睡眠日志", "情绪日志")
    ]
    today = services.today(system)
    enrolments = [
        await services.enrol(system, booked_id(c.clients[0]), programmes[0].id, today),
        await services.enrol(system, booked_id(c.clients[1]), programmes[1].id, today - timedelta(days=1)),
    ]
    await services.flag_risk(system, booked_id(c.clients[0]), "low", "轻微")
    await services.flag_risk(system, booked_id(c.clients[1]), "high", "严重")
    await make.commit()
    cases = [
        # (document, variables, what each node reads as, expected nodes, expected totalCount)
        ("counselingClients", "name", {}, ["来访者1", "来访者0"], 2),
        ("counselingClients", "name", {"filter": {"search": "者0"}}, ["来访者0"], 1),
        ("counselingClients", "name", {"first": 1}, ["来访者1"], 2),
        ("counselingCounselors", "name", {}, ["咨询师0", "咨询师1"], 2),
        ("counselingCounselors", "name", {"filter": {"mode": "ONLINE"}}, ["咨询师0"], 1),
        (
            "counselingCounselors",
            "name",
            {"filter": {"specialty": "grief", "mode": "OFFLINE"}},
            ["咨询师0", "咨询师1"],
            2,
        ),
        ("counselingProgrammes", "name", {}, ["情绪日志", "睡眠日志"], 2),
        ("counselingProgrammes", "name", {"filter": {"search": "睡眠"}}, ["睡眠日志"], 1),
        ("counselingEnrolments", "programme { name }", {}, ["睡眠日志", "情绪日志"], 2),
        (
            "counselingEnrolments",
            "programme { name }",
            {"filter": {"clientId": c.clients[1]}},
            ["情绪日志"],
            1,
        ),
        ("counselingOpenRiskFlags", "note", {}, ["严重", "轻微"], 2),
        ("counselingOpenRiskFlags", "note", {"filter": {"severities": ["LOW"]}}, ["轻微"], 1),
        ("counselingOpenRiskFlags", "note", {"filter": {"clientId": c.clients[1]}}, ["严重"], 1),
    ]
    filter_types = {
        "counselingClients": "CounselingClientFilter",
        "counselingCounselors": "CounselingCounselorFilter",
        "counselingProgrammes": "CounselingProgrammeFilter",
        "counselingEnrolments": "CounselingEnrolmentFilter",
        "counselingOpenRiskFlags": "CounselingRiskFlagFilter",
    }
    for field, selection, variables, expected, total in cases:
        document = (
            f"query($filter: {filter_types[field]}, $first: Int) {{ {field}(filter: $filter, first: $first) "
            f"{{ totalCount edges {{ node {{ {selection} }} }} }} }}"
        )
        body = await api(document, variables, **c.admin)
        got = [n["programme"]["name"] if "programme" in n else n[selection] for n in nodes(body, field)]
        assert (got, body["data"][field]["totalCount"]) == (expected, total), (field, variables)
    # pages of one through the programmes, by name
    seen, after = [], None
    while True:
        body = await api(
            "query($a: String) { counselingProgrammes(first: 1, after: $a) "
            "{ pageInfo { hasNextPage endCursor } nodes { name } } }",
            {"a": after},
            **c.admin,
        )
        page = body["data"]["counselingProgrammes"]
        seen += [n["name"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ["情绪日志", "睡眠日志"]
    assert {e.id for e in enrolments}  # both enrolled


async def test_references_are_object_fields(api, make: Factory, calendar: Calendar) -> None:  # type: ignore[no-untyped-def]
    c = calendar
    system = system_of(make, c.org)
    programme = await services.create_programme(system, "睡眠日志", ["今天好吗？"] * 7)
    enrolment = await services.enrol(system, booked_id(c.clients[1]), programme.id, services.today(system))
    flag = await services.flag_risk(system, booked_id(c.clients[0]), "medium", "担心")
    assert flag is not None
    await make.commit()
    body = await api(
        "query($e: ID!, $f: ID!, $s: ID!) {"
        " e: node(id: $e) { ... on CounselingEnrolment { client { id name } programme { id name days } } }"
        " f: node(id: $f) { ... on CounselingRiskFlag { severity source client { id name } } }"
        " s: node(id: $s) { ... on CounselingSession { status mode counselor { id name volunteer { name } }"
        " client { id name } } } }",
        {
            "e": gid("CounselingEnrolment", enrolment.id),
            "f": gid("CounselingRiskFlag", flag.id),
            "s": c.sessions["mon10"],
        },
        **c.admin,
    )
    assert not body.get("errors"), body
    assert body["data"] == {
        "e": {
            "client": {"id": c.clients[1], "name": "来访者1"},
            "programme": {"id": gid("CounselingProgramme", programme.id), "name": "睡眠日志", "days": 7},
        },
        "f": {"severity": "MEDIUM", "source": "COUNSELOR", "client": {"id": c.clients[0], "name": "来访者0"}},
        "s": {
            "status": "CANCELLED",
            "mode": "OFFLINE",
            "counselor": {"id": c.counselors[1], "name": "咨询师1", "volunteer": {"name": "咨询师1"}},
            "client": {"id": c.clients[1], "name": "来访者1"},
        },
    }


async def test_free_slots_answer_range_too_large_past_a_month(api, calendar: Calendar) -> None:  # type: ignore[no-untyped-def]
    c = calendar
    document = (
        "query($s: DateTime!, $e: DateTime!) { counselingFreeSlots(start: $s, end: $e, mode: OFFLINE) "
        "{ start counselor { id } } }"
    )
    week = await api(document, {"s": c.monday.isoformat(), "e": (c.monday + timedelta(days=7)).isoformat()}, **c.admin)
    assert not week.get("errors"), week
    assert {s["counselor"]["id"] for s in week["data"]["counselingFreeSlots"]} == set(c.counselors)
    decade = await api(
        document, {"s": c.monday.isoformat(), "e": (c.monday + timedelta(days=3650)).isoformat()}, **c.admin
    )
    assert [e["extensions"]["code"] for e in decade["errors"]] == ["RANGE_TOO_LARGE"]


# -- statement counts -------------------------------------------------------------------------------------------


async def test_listing_sessions_costs_the_same_for_2_and_8(api, make: Factory, clock, statements) -> None:  # type: ignore[no-untyped-def]
    org = await make.organization_using("counseling", "心理援助中心")
    admin = {"role": "organization_admin", "org": org.id}
    person = await make.volunteer(organization_id=org.id)
    system = system_of(make, org.id)
    counselor = await services.register_counselor(system, person.id, specialties=["grief"])
    monday = next_monday(clock)
    await scheduling.add_window(system, person.id, monday.weekday(), time(8), time(20))
    client = await services.register_client(system, name="居民", phone="13700001111", consent=True)
    counts = {}
    for total in (2, 8):
        while len(await services.all_sessions(system)) < total:
            n = len(await services.all_sessions(system))
            await services.book_session(
                system,
                client_id=client.id,
                counselor_id=counselor.id,
                start=at(monday, 8 + n),
                minutes=50,
                mode="offline",
                place="社区活动室",
            )
        await make.commit()
        statements.statements.clear()
        body = await api("{ counselingSessions { nodes { start end status } } }", **admin)
        assert len(body["data"]["counselingSessions"]["nodes"]) == total
        counts[total] = statements.count
    assert counts[2] == counts[8]


PAGE = (
    "query($first: Int!) { counselingSessions(first: $first) "
    "{ nodes { counselor { name } client { name } notes start } } }"
)


async def test_sessions_with_counselor_client_and_notes_are_not_n_plus_one(  # type: ignore[no-untyped-def]
    api, make: Factory, clock, statements
) -> None:
    """`counselingSessions { counselor { name } client { name } notes start }` costs the same number of
    statements for a page of 2 sessions of 1 counselor and 1 client as for 12 sessions of 4 counselors and 6
    clients, and for a page of 6 as of 12: one query per level, one permission query per request."""
    org = await make.organization_using("counseling", "心理援助中心")
    system = system_of(make, org.id)
    people = [await make.volunteer(organization_id=org.id, name=f"咨询师{n}") for n in range(4)]
    monday = next_monday(clock)
    counselors = []
    for person in people:
        counselors.append(await services.register_counselor(system, person.id, specialties=["grief"]))
        await scheduling.add_window(system, person.id, monday.weekday(), time(8), time(20))
    clients = [
        await services.register_client(system, name=f"居民{n}", phone=f"1370000222{n}", consent=True) for n in range(6)
    ]
    for role, who in (
        ("supervisor", {"role": "organization_admin", "org": org.id}),
        ("counselor", {"role": "counselor", "org": org.id, "volunteer": people[0].id}),
    ):
        counts: dict[tuple[int, int, int], int] = {}
        booked: list[Any] = list(await services.all_sessions(system))
        for total, distinct_counselors, distinct_clients in ((2, 1, 1), (12, 4, 6)):
            while len(booked) < total:
                n = len(booked)
                session = await services.book_session(
                    system,
                    client_id=clients[n % distinct_clients].id,
                    counselor_id=counselors[n % distinct_counselors].id,
                    start=at(monday, 8 + n),
                    minutes=50,
                    mode="offline",
                    place="社区活动室",
                )
                await services.write_notes(system, session.id, f"笔记{n}")
                booked.append(session)
            await make.commit()
            for first in (total // 2, total):
                statements.statements.clear()
                body = await api(PAGE, {"first": first}, **who)
                counts[(total, distinct_counselors, first)] = statements.count
                page = body["data"]["counselingSessions"]["nodes"]
                assert len(page) == first, body
                assert all(s["counselor"]["name"].startswith("咨询师") and s["client"]["name"] for s in page)
                readable = [s["notes"] for s in page if s["notes"] is not None]
                if role == "supervisor":
                    assert len(readable) == first
                else:  # the counselor reads the notes of their own sessions only
                    own = {f"笔记{n}" for n, s in enumerate(booked) if s.counselor_id == counselors[0].id}
                    assert readable
                    assert set(readable) <= own
        # then more distinct counselors and clients, and a larger page, cost no more statements
        assert len(set(counts.values())) == 1, (role, counts)
