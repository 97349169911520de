"""The counseling plugin's rows of the permission matrix (tests/schema/test_plugin_access.py), and its
records in the matrix's world."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import text

from core.services import scheduling
from plugins.counseling import services as counseling
from schema import ids
from tests.plugin_access import (
    MASKED_A,
    MASKED_B,
    NOTES_A,
    NOTES_B,
    NULL,
    OK,
    PHONE_A,
    PHONE_B,
    SHANGHAI,
    UNIQUE,
    F,
    N,
    PluginWorld,
    Read,
    Write,
    counseling_staff,
    fixed,
    fresh_name,
    no_vars,
    node,
    per_role,
)


async def build(p: PluginWorld) -> None:
    """Each organisation: a counselor (A's is the world's counselor account) with hours every day, a client
    with a phone, a programme with an enrolment and a journal entry, a high risk flag, and a booked session
    with notes."""
    w = p.w
    today = datetime.now(SHANGHAI).date()
    for org, tag, person, phone in (("a", "甲", "v_counselor", PHONE_A), ("b", "乙", "v_b_vol", PHONE_B)):
        async with p.staff(org) as ctx:
            counselor = await counseling.register_counselor(ctx, w.ids[person], specialties=["grief"], languages=["zh"])
            for weekday in range(7):
                await scheduling.add_window(ctx, w.ids[person], weekday, time(8), time(20))
            client = await counseling.register_client(ctx, name=f"{tag}来访者", phone=phone, consent=True)
            programme = await counseling.create_programme(ctx, f"{tag}日志", ["今天好吗？"] * 14)
            enrolment = await counseling.enrol(ctx, client.id, programme.id, today - timedelta(days=2))
            await counseling.add_entry(ctx, enrolment.id, 4, on=today - timedelta(days=2))
            flag = await counseling.flag_risk(ctx, client.id, "high", f"{tag}风险")
            assert flag is not None
            p.pk |= {
                f"counselor_{org}": counselor.id,
                f"client_{org}": client.id,
                f"programme_{org}": programme.id,
                f"enrolment_{org}": enrolment.id,
                f"flag_{org}": flag.id,
            }
        async with p.staff(org) as ctx:
            session = await counseling.book_session(
                ctx,
                client_id=client.id,
                counselor_id=counselor.id,
                start=p.slot(),
                minutes=50,
                mode="online",
                meeting_link=f"https://meet.example/{tag}",
            )
            await counseling.write_notes(ctx, session.id, NOTES_A if org == "a" else NOTES_B)
            p.pk[f"session_{org}"] = session.id


async def session_in_a(p: PluginWorld, *, past: bool = False) -> int:
    """A booked session of A's counselor (the world's counselor account) with A's client; `past` moves
    it into the past, so that it can be marked."""
    async with p.staff() as ctx:
        booked = await counseling.book_session(
            ctx,
            client_id=p.pk["client_a"],
            counselor_id=p.pk["counselor_a"],
            start=p.slot(),
            minutes=50,
            mode="online",
            meeting_link="https://meet.example/甲",
        )
        if past:
            n = next(UNIQUE)
            await ctx.session.execute(
                text(
                    "UPDATE appointments SET during = tstzrange(now() - make_interval(days => :n, hours => 2),"
                    " now() - make_interval(days => :n, hours => 1)),"
                    " blocked = tstzrange(now() - make_interval(days => :n, hours => 2),"
                    " now() - make_interval(days => :n, hours => 1) + interval '10 minutes') WHERE id = :id"
                ),
                {"n": n, "id": booked.appointment_id},
            )
        return booked.id


async def _session(p: PluginWorld) -> dict[str, Any]:
    return {
        "id": ids.encode(
            "CounselingSession",
            await session_in_a(
                p,
            ),
        )
    }


async def _past_session(p: PluginWorld) -> dict[str, Any]:
    return {"id": ids.encode("CounselingSession", await session_in_a(p, past=True))}


async def _reschedule(p: PluginWorld) -> dict[str, Any]:
    return await _session(p) | {"s": p.slot().isoformat()}


async def _booking(p: PluginWorld) -> dict[str, Any]:
    return {
        "input": {
            "clientId": p.gid("CounselingClient", "client_a"),
            "counselorId": p.gid("CounselingCounselor", "counselor_a"),
            "start": p.slot().isoformat(),
            "meetingLink": "https://meet.example/w",
        }
    }


async def _volunteer_of_a(p: PluginWorld) -> dict[str, Any]:
    from core.services import volunteers
    from core.vocab import VolunteerMode

    n = next(UNIQUE)
    async with p.w.service() as ctx:
        v = await volunteers.register_volunteer(
            ctx,
            volunteers.VolunteerInput(
                name=fresh_name("咨询师"),
                phone=f"1360000{n:04d}",
                mode=VolunteerMode.OFFLINE,
                organization_id=p.pk["org_a"],
            ),
        )
    return {"v": ids.encode("Volunteer", v.id)}


async def _client_of_a(p: PluginWorld) -> str:
    async with p.staff() as ctx:
        client = await counseling.register_client(ctx, name=fresh_name("来访者"), phone="13700005555", consent=True)
    return ids.encode("CounselingClient", client.id)


async def _enrolment_input(p: PluginWorld) -> dict[str, Any]:
    return {
        "c": await _client_of_a(p),
        "p": p.gid("CounselingProgramme", "programme_a"),
        "d": datetime.now(SHANGHAI).date().isoformat(),
    }


async def _enrolment(p: PluginWorld) -> dict[str, Any]:
    async with p.staff() as ctx:
        client = await counseling.register_client(ctx, name=fresh_name("来访者"), phone="13700005555", consent=True)
        e = await counseling.enrol(ctx, client.id, p.pk["programme_a"], datetime.now(SHANGHAI).date())
    return {"e": ids.encode("CounselingEnrolment", e.id)}


async def _flag(p: PluginWorld) -> dict[str, Any]:
    async with p.staff() as ctx:
        client = await counseling.register_client(ctx, name=fresh_name("来访者"), phone="13700005555", consent=True)
        flag = await counseling.flag_risk(ctx, client.id, "low", "w-")
    assert flag is not None
    return {"id": ids.encode("CounselingRiskFlag", flag.id)}


CREATE_COUNSELING = counseling_staff(OK, OK, OK)
ON_A_COUNSELING = counseling_staff(OK, N, OK)

READS = [
    # -- counseling
    Read(
        "counselingClients: names and phones (raw for those who serve, masked for administrators)",
        "{ r: counselingClients(first: 100) { nodes { name phone } } }",
        no_vars,
        lambda d: sorted((x["name"], x["phone"]) for x in d["nodes"] if not x["name"].startswith("w-")),
        counseling_staff(
            [("甲来访者", PHONE_A)],
            [("乙来访者", MASKED_B)],
            [("乙来访者", MASKED_B), ("甲来访者", MASKED_A)],
            org_admin_a=[("甲来访者", MASKED_A)],
        ),
    ),
    Read(
        "counselingSessions: notes by relation (own counselor, own organisation's supervisor)",
        "{ r: counselingSessions(first: 100) { nodes { meetingLink notes } } }",
        no_vars,
        lambda d: sorted(
            {(x["meetingLink"], x["notes"]) for x in d["nodes"] if x["notes"] or x["meetingLink"].endswith("乙")}
        ),
        counseling_staff(
            [("https://meet.example/甲", NOTES_A)],
            [("https://meet.example/乙", NOTES_B)],
            [("https://meet.example/乙", None)],
            social_worker=[],
        ),
    ),
    Read(
        "counselingFreeSlots: counselors of the caller's organisation",
        "query($s: DateTime!, $e: DateTime!) { r: counselingFreeSlots(start: $s, end: $e) { counselor { name } } }",
        lambda p: {
            "s": (p.monday + timedelta(days=30, hours=8)).isoformat(),
            "e": (p.monday + timedelta(days=30, hours=10)).isoformat(),
        },
        lambda d: sorted({x["counselor"]["name"] for x in d}),
        counseling_staff(["志愿者counselor"], ["志愿者b_vol"], ["志愿者b_vol", "志愿者counselor"]),
    ),
    Read(
        "counselingOpenRiskFlags: the organisation's supervisors",
        "{ r: counselingOpenRiskFlags(first: 100) { nodes { note client { name } } } }",
        no_vars,
        lambda d: sorted((x["note"], x["client"]["name"]) for x in d["nodes"] if x["note"] in ("甲风险", "乙风险")),
        counseling_staff(F, [("乙风险", "乙来访者")], F, org_admin_a=[("甲风险", "甲来访者")]),
    ),
    Read(
        "counselingCounselors: the organisation's, with their volunteer record",
        "{ r: counselingCounselors(first: 100) { nodes { name volunteer { name } } } }",
        no_vars,
        lambda d: sorted(
            (x["name"], x["volunteer"]["name"] if x["volunteer"] else None)
            for x in d["nodes"]
            if not x["name"].startswith("w-")
        ),
        counseling_staff(
            [("志愿者counselor", "志愿者counselor")],
            [("志愿者b_vol", "志愿者b_vol")],
            [("志愿者b_vol", "志愿者b_vol"), ("志愿者counselor", "志愿者counselor")],
        ),
    ),
    Read(
        "counselingProgrammes: the organisation's",
        "{ r: counselingProgrammes(first: 100) { nodes { name days } } }",
        no_vars,
        lambda d: sorted((x["name"], x["days"]) for x in d["nodes"] if not x["name"].startswith("w-")),
        counseling_staff([("甲日志", 14)], [("乙日志", 14)], [("乙日志", 14), ("甲日志", 14)]),
    ),
    Read(
        "counselingEnrolments: the organisation's, with client (phone masked as on the client) and programme",
        "{ r: counselingEnrolments(first: 100) { nodes { client { name phone } programme { name } } } }",
        no_vars,
        lambda d: sorted(
            (x["client"]["name"], x["client"]["phone"], x["programme"]["name"])
            for x in d["nodes"]
            if not x["client"]["name"].startswith("w-")
        ),
        counseling_staff(
            [("甲来访者", PHONE_A, "甲日志")],
            [("乙来访者", MASKED_B, "乙日志")],
            [("乙来访者", MASKED_B, "乙日志"), ("甲来访者", MASKED_A, "甲日志")],
            org_admin_a=[("甲来访者", MASKED_A, "甲日志")],
        ),
    ),
    Read(
        "counselingJournal of A's enrolment",
        "query($e: ID!) { r: counselingJournal(enrolmentId: $e) { entries { day mood } } }",
        lambda p: {"e": p.gid("CounselingEnrolment", "enrolment_a")},
        lambda d: [(x["day"], x["mood"]) for x in d["entries"]] if d else NULL,
        counseling_staff([(1, 4)], NULL, [(1, 4)]),
    ),
    Read(
        "node: A's counselor",
        *node(
            "CounselingCounselor",
            "counselor_a",
            "name volunteer { name }",
            lambda d: (d["name"], d["volunteer"]["name"] if d["volunteer"] else None),
        ),
        counseling_staff(
            ("志愿者counselor", "志愿者counselor"),
            NULL,
            ("志愿者counselor", "志愿者counselor"),
            community_head=NULL,
            volunteer=NULL,
            partner_a=NULL,
            anonymous=NULL,
        ),
    ),
    Read(
        "node: A's client phone",
        *node("CounselingClient", "client_a", "phone", lambda d: d["phone"]),
        counseling_staff(
            PHONE_A,
            NULL,
            MASKED_A,
            org_admin_a=MASKED_A,
            community_head=NULL,
            volunteer=NULL,
            partner_a=NULL,
            anonymous=NULL,
        ),
    ),
    Read(
        "node: A's session notes",
        *node("CounselingSession", "session_a", "notes", lambda d: ("session", d["notes"])),
        counseling_staff(
            ("session", NOTES_A),
            NULL,
            ("session", None),
            social_worker=("session", None),
            community_head=NULL,
            volunteer=NULL,
            partner_a=NULL,
            anonymous=NULL,
        ),
    ),
    Read(
        "node: A's session's counselor and client (the phone masked as on the client)",
        *node(
            "CounselingSession",
            "session_a",
            "status counselor { name } client { name phone }",
            lambda d: (d["status"], d["counselor"]["name"], d["client"]["name"], d["client"]["phone"]),
        ),
        counseling_staff(
            ("BOOKED", "志愿者counselor", "甲来访者", PHONE_A),
            NULL,
            ("BOOKED", "志愿者counselor", "甲来访者", MASKED_A),
            org_admin_a=("BOOKED", "志愿者counselor", "甲来访者", MASKED_A),
            community_head=NULL,
            volunteer=NULL,
            partner_a=NULL,
            anonymous=NULL,
        ),
    ),
    Read(
        "node: A's risk flag (supervisors)",
        *node(
            "CounselingRiskFlag",
            "flag_a",
            "note severity source client { name }",
            lambda d: (d["note"], d["severity"], d["source"], d["client"]["name"]),
        ),
        per_role(
            anonymous=NULL,
            platform_admin=NULL,
            org_admin_a=("甲风险", "HIGH", "COUNSELOR", "甲来访者"),
            org_admin_b=NULL,
            social_worker=NULL,
            counselor=NULL,
            community_head=NULL,
            volunteer=NULL,
            partner_a=NULL,
        ),
    ),
    Read(
        "node: A's programme",
        *node("CounselingProgramme", "programme_a", "name", lambda d: d["name"]),
        counseling_staff("甲日志", NULL, "甲日志", community_head=NULL, volunteer=NULL, partner_a=NULL, anonymous=NULL),
    ),
    Read(
        "node: A's enrolment",
        *node(
            "CounselingEnrolment",
            "enrolment_a",
            "days client { name } programme { name }",
            lambda d: (d["days"], d["client"]["name"], d["programme"]["name"]),
        ),
        counseling_staff(
            (14, "甲来访者", "甲日志"),
            NULL,
            (14, "甲来访者", "甲日志"),
            community_head=NULL,
            volunteer=NULL,
            partner_a=NULL,
            anonymous=NULL,
        ),
    ),
]

WRITES = [
    # -- counseling
    Write(
        "counselingRegisterCounselor for a volunteer of A",
        "mutation($v: ID!) { r: counselingRegisterCounselor(input: {volunteerId: $v, specialties: [], "
        'languages: ["zh"], modes: [OFFLINE]}) { errors { code } } }',
        _volunteer_of_a,
        ON_A_COUNSELING,
    ),
    Write(
        "counselingRegisterClient",
        "mutation($n: String!) {"
        ' r: counselingRegisterClient(input: {name: $n, phone: "13700006666", consent: true}) { errors { code } } }',
        fixed(lambda p: {"n": fresh_name("来访者")}),
        CREATE_COUNSELING,
    ),
    Write(
        "counselingBookSession with A's counselor for A's client",
        "mutation($input: CounselingBookSessionInput!) { r: counselingBookSession(input: $input) { errors { code } } }",
        _booking,
        ON_A_COUNSELING,
    ),
    Write(
        "counselingRescheduleSession of A",
        "mutation($id: ID!, $s: DateTime!) {"
        " r: counselingRescheduleSession(input: {id: $id, start: $s}) { errors { code } } }",
        _reschedule,
        ON_A_COUNSELING,
    ),
    Write(
        "counselingCancelSession of A",
        'mutation($id: ID!) { r: counselingCancelSession(input: {id: $id, reason: "生病"}) { errors { code } } }',
        _session,
        ON_A_COUNSELING,
    ),
    Write(
        "counselingMarkSession of A (past)",
        "mutation($id: ID!) { r: counselingMarkSession(input: {id: $id, attended: true}) { errors { code } } }",
        _past_session,
        ON_A_COUNSELING,
    ),
    Write(
        "counselingWriteNotes on a session of A's counselor (relation, not rank)",
        'mutation($id: ID!) { r: counselingWriteNotes(input: {id: $id, notes: "记录"}) { errors { code } } }',
        _session,
        counseling_staff(OK, N, F, social_worker=F),
    ),
    Write(
        "counselingCreateProgramme",
        "mutation($n: String!) {"
        ' r: counselingCreateProgramme(input: {name: $n, prompts: ["好吗？"]}) { errors { code } } }',
        fixed(lambda p: {"n": fresh_name("日志")}),
        CREATE_COUNSELING,
    ),
    Write(
        "counselingEnrol A's client in A's programme",
        "mutation($c: ID!, $p: ID!, $d: Date!) {"
        " r: counselingEnrol(input: {clientId: $c, programmeId: $p, startsOn: $d}) { errors { code } } }",
        _enrolment_input,
        ON_A_COUNSELING,
    ),
    Write(
        "counselingAddJournalEntry to A's enrolment",
        "mutation($e: ID!) { r: counselingAddJournalEntry(input: {enrolmentId: $e, mood: 4}) { errors { code } } }",
        _enrolment,
        ON_A_COUNSELING,
    ),
    Write(
        "counselingFlagRisk on A's client",
        "mutation($c: ID!) {"
        ' r: counselingFlagRisk(input: {clientId: $c, severity: LOW, note: "w-"}) { errors { code } } }',
        fixed(lambda p: {"c": p.gid("CounselingClient", "client_a")}),
        ON_A_COUNSELING,
    ),
    Write(
        "counselingResolveRiskFlag of A (supervisors)",
        "mutation($id: ID!) { r: counselingResolveRiskFlag(input: {id: $id}) { errors { code } } }",
        _flag,
        counseling_staff(F, N, F, org_admin_a=OK),
    ),
]
