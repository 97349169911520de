"""The counseling plugin through /graphql: enablement, booking, notes visible to their readers only."""

from __future__ import annotations

from datetime import time

from core.services import organizations, scheduling
from core.vocab import OrganizationKind
from tests.core.services.test_scheduling import at, next_monday
from tests.factories import Factory
from tests.schema.helpers import gid


async def test_counseling_over_graphql(api, make: Factory, clock) -> None:  # type: ignore[no-untyped-def]
    # given an organisation that enabled counseling, its counselor with Monday hours, and another organisation
    org = await make.organization_using("counseling", "心理援助中心")
    other = await organizations.create_organization(make.ctx, name="别的机构", kind=OrganizationKind.AGENCY)
    person = await make.volunteer()
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
    from plugins.counseling import services

    org = await make.organization_using("counseling", "心理援助中心")
    admin = {"role": "organization_admin", "org": org.id}
    from core.services.context import SYSTEM, ServiceContext

    system = ServiceContext(make.ctx.session, SYSTEM, make.ctx.clock)
    person = await make.volunteer()
    counselor = await services.register_counselor(system, person.id, specialties=["grief"])
    monday = next_monday(clock)
    await scheduling.add_window(system, person.id, monday.weekday(), time(8), time(20))
    client = await services.register_client(system, name="居民", phone="13700001111", consent=True)
    client.organization_id = org.id
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
