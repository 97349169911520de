"""The counseling plugin through /graphql: enablement, booking, notes visible to their readers only."""

from __future__ import annotations

import dataclasses
from datetime import time

from core.services import organizations, scheduling
from core.services.context import SYSTEM, ServiceContext
from core.vocab import OrganizationKind
from plugins.counseling import services
from tests.core.services.test_scheduling import at, next_monday
from tests.factories import Factory
from tests.schema.helpers import gid


async def test_counseling_over_graphql(api, make: Factory, clock) -> None:  # type: ignore[no-untyped-def]
    # given an organisation that enabled counseling, its counselor with Monday hours, and another organisation
    org = await make.organization_using("counseling", "心理援助中心")
    other = await organizations.create_organization(make.ctx, name="别的机构", kind=OrganizationKind.AGENCY)
    person = await make.volunteer(organization_id=org.id)
    monday = next_monday(clock)
    await scheduling.add_window(make.ctx, person.id, monday.weekday(), time(9), time(12))
    await make.commit()
    admin = {"role": "organization_admin", "org": org.id}
    counselor = {"role": "counselor", "org": org.id, "volunteer": person.id}
    registered = await api(
        'mutation($v: ID!) { counselingRegisterCounselor(volunteerId: $v, specialties: ["grief"], languages: ["zh"]) '
        "{ counselor { id name } errors { code } } }",
        {"v": gid("Volunteer", person.id)},
        **admin,
    )
    counselor_id = registered["data"]["counselingRegisterCounselor"]["counselor"]["id"]
    client = await api(
        'mutation { counselingRegisterClient(name: "居民", phone: "13700001111", consent: true) '
        "{ client { id phone } errors { code } } }",
        **admin,
    )
    client_id = client["data"]["counselingRegisterClient"]["client"]["id"]
    # when the counselor books a session and writes notes
    booked = await api(
        "mutation($c: ID!, $k: ID!, $s: DateTime!) { counselingBookSession(input: {clientId: $c, counselorId: $k, "
        'start: $s, meetingLink: "https://meet.example/1"}) { session { id start status } errors { code } } }',
        {"c": client_id, "k": counselor_id, "s": at(monday, 9).isoformat()},
        **counselor,
    )
    session = booked["data"]["counselingBookSession"]["session"]
    await api(
        'mutation($id: ID!) { counselingWriteNotes(id: $id, notes: "失眠") { errors { code } } }',
        {"id": session["id"]},
        **counselor,
    )
    # then the counselor and the supervisor read the notes, a social worker of the same organisation does not,
    # and the other organisation's members are refused by the plugin gate
    query = "{ counselingSessions { status start notes } }"
    seen = {
        name: await api(query, **who)
        for name, who in {
            "counselor": counselor,
            "supervisor": admin,
            "social worker": {"role": "social_worker", "org": org.id},
            "other org": {"role": "organization_admin", "org": other.id},
        }.items()
    }
    assert seen["counselor"]["data"]["counselingSessions"][0]["notes"] == "失眠"
    assert seen["supervisor"]["data"]["counselingSessions"][0]["notes"] == "失眠"
    assert seen["social worker"]["data"]["counselingSessions"][0]["notes"] is None
    assert seen["other org"]["errors"][0]["extensions"]["code"] == "PLUGIN_DISABLED"
    assert session["start"] == at(monday, 9).isoformat()
    # and a second booking of the same slot is refused with SLOT_TAKEN, writing nothing
    again = await api(
        "mutation($c: ID!, $k: ID!, $s: DateTime!) { counselingBookSession(input: {clientId: $c, counselorId: $k, "
        'start: $s, meetingLink: "https://meet.example/2"}) { session { id } errors { code } } }',
        {"c": client_id, "k": counselor_id, "s": at(monday, 9, 30).isoformat()},
        **counselor,
    )
    assert again["data"]["counselingBookSession"] == {"session": None, "errors": [{"code": "SLOT_TAKEN"}]}


async def test_listing_sessions_costs_the_same_for_2_and_8(api, make: Factory, clock, statements) -> None:  # type: ignore[no-untyped-def]

    org = await make.organization_using("counseling", "心理援助中心")
    admin = {"role": "organization_admin", "org": org.id}
    person = await make.volunteer(organization_id=org.id)
    # the organisation's own script (a system caller acts within one organisation)
    system = ServiceContext(make.ctx.session, dataclasses.replace(SYSTEM, organization_id=org.id), make.ctx.clock)
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
        body = await api("{ counselingSessions { start end status counselor: status } }", **admin)
        assert len(body["data"]["counselingSessions"]) == total
        counts[total] = statements.count
    assert counts[2] == counts[8]


async def test_a_counselor_reading_notes_costs_the_same_for_more_sessions_and_more_counselors(  # type: ignore[no-untyped-def]
    api, make: Factory, clock, statements
) -> None:
    # given an organisation's four counselors and one client; the first counselor is the caller
    org = await make.organization_using("counseling", "心理援助中心")
    people = [await make.volunteer(organization_id=org.id) for _ in range(4)]
    system = ServiceContext(make.ctx.session, dataclasses.replace(SYSTEM, organization_id=org.id), make.ctx.clock)
    monday = next_monday(clock)
    counselors = []
    for person in people:
        counselors.append(await services.register_counselor(system, person.id, specialties=["grief"]))
        await scheduling.add_window(system, person.id, monday.weekday(), time(8), time(20))
    client = await services.register_client(system, name="居民", phone="13700001111", consent=True)
    me = {"role": "counselor", "org": org.id, "volunteer": people[0].id}
    counts, booked = {}, []
    # when the page grows from 2 sessions of 1 counselor to 8 sessions of 4 counselors, each with notes
    for total, distinct in ((2, 1), (8, 4)):
        while len(booked) < total:
            n = len(booked)
            session = await services.book_session(
                system,
                client_id=client.id,
                counselor_id=counselors[n % distinct].id,
                start=at(monday, 8 + n),
                minutes=50,
                mode="offline",
                place="社区活动室",
            )
            await services.write_notes(system, session.id, f"笔记{n}")
            booked.append(session)
        await make.commit()
        statements.statements.clear()
        body = await api("{ counselingSessions { id notes status } }", **me)
        counts[total] = statements.count
        # then the counselor reads the notes of their own sessions only ...
        notes = sorted(s["notes"] for s in body["data"]["counselingSessions"] if s["notes"] is not None)
        own = sorted(f"笔记{n}" for n, s in enumerate(booked) if s.counselor_id == counselors[0].id)
        assert notes == own
        assert len(body["data"]["counselingSessions"]) == total
    # ... with the same number of statements (the caller's counselor record is read once per request)
    assert counts[2] == counts[8]
