"""The casework database guards no service test reaches, each proven by the SQL it refuses.

The services refuse these cases before the database is asked (a supervisor who is the worker, a second pending
transfer, ...), so their tests pass with the guard gone: tests/schema_mutations.py drops each guard in turn
and runs the suite against it. Here each guard meets the statement it exists for, written as the app role
acting for one organisation (row-level security and the tenancy triggers in force), and the test asserts the
name of the constraint that refused it and that nothing was written.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from core.services import help_requests, sealing
from core.services.common import constraint_name
from core.vocab import RequestCategory, Urgency
from plugins.case_work import services
from plugins.case_work.groups import services as groups
from plugins.case_work.notes import services as notes
from plugins.case_work.plans import services as plans
from tests.core.services.test_scheduling import at
from tests.plugins.case_work.conftest import CaseWorld
from tests.plugins.case_work.test_groups import bring_to as group_bring_to
from tests.plugins.case_work.test_groups import counts as group_counts
from tests.plugins.case_work.test_groups import make_clients, make_group
from tests.plugins.case_work.test_plans import needs as plan_needs
from tests.plugins.case_work.test_plans import plan_counts
from tests.plugins.case_work.test_visits import Calendar, cal  # noqa: F401  (the staff calendars fixture)

# Organisation-owned casework tables, each with a row of A's in `_world_of_a`.
TENANT_TABLES = (
    "case_work_cases",
    "case_work_clients",
    "case_work_notes",
    "case_work_groups",
    "case_work_transfers",
    "case_work_intakes",
    "consents",  # core's, for the case's resident: named by the consent as its recipient, B still sees none of it
)


async def _raw(cw: CaseWorld, who: str, sql: str, **params: object) -> str | None:
    """Run `sql` as `who` through the app role; the violated constraint's name, or None if it went through."""
    try:
        async with cw.as_(who) as ctx:
            await ctx.session.execute(text(sql), params)
    except DBAPIError as exc:
        return constraint_name(exc) or str(getattr(exc.orig, "sqlstate", "") or exc.orig)
    return None


async def _scalar(cw: CaseWorld, who: str, sql: str, **params: object) -> object:
    async with cw.as_(who) as ctx:
        return (await ctx.session.execute(text(sql), params)).scalar()


async def _count(cw: CaseWorld, who: str, table: str) -> int:
    return int(await _scalar(cw, who, f"SELECT count(*) FROM {table}") or 0)  # type: ignore[call-overload]


async def _world_of_a(cw: CaseWorld) -> int:
    """A case of A with a note, a pending transfer, a group, a queued intake and a consent of its resident to be
    referred to B; the case's id."""
    case_id = await cw.open()
    await cw.call(
        "sw", notes.add_note, case_id, note_type="call", occurred_at=cw.clock() - timedelta(hours=1), text="家访记录"
    )
    await cw.call("sw", services.propose_transfer, case_id, cw.ids["sw2"], "工作调整")
    await make_group(cw)
    intake = (
        "INSERT INTO case_work_intakes (source_kind, source_id, risk_level, status, queue_reason) "
        "VALUES ('help_request', 1, 'low', 'queued', 'no_resident')"
    )
    assert await _raw(cw, "admin", intake) is None
    consent = (
        "INSERT INTO consents (resident_id, scopes, target_kind, target, target_organization_id, purpose, "
        "valid_from, recorded_by) SELECT resident_id, ARRAY['summary'], 'plugin', '心理咨询', :b, '转介', now(), "
        "'sw' FROM case_work_clients"
    )
    assert await _raw(cw, "admin", consent, b=cw.ids["org_b"]) is None
    return case_id


# -- organisation isolation ------------------------------------------------------------------------------------------


async def test_another_organisation_reads_changes_and_deletes_none_of_the_casework_rows_by_sql(cw: CaseWorld) -> None:
    # given A's case, client, note, transfer, group, intake and consent
    await _world_of_a(cw)
    for table in TENANT_TABLES:
        # then A's administrator sees A's row (the control)
        assert await _count(cw, "admin", table) == 1, table
        # and B's administrator, reading the table by SQL, sees none of it
        assert await _count(cw, "admin_b", table) == 0, table
    # and B's UPDATE and DELETE touch nothing of A's
    async with cw.as_("admin_b") as ctx:
        touched = (await ctx.session.execute(text("UPDATE case_work_cases SET risk_level = 'high'"))).rowcount
    assert touched == 0
    assert await _scalar(cw, "admin", "SELECT risk_level FROM case_work_cases") == "low"


# -- the stage history and approvals (w001) ----------------------------------------------------------------------


async def test_a_case_opens_once_and_is_never_supervised_by_its_own_worker(cw: CaseWorld) -> None:
    # given an open case
    case_id = await cw.open()
    before = await cw.counts()
    # when SQL writes a second opening row (seq 0: no "next step" to check, only the uniqueness of the step)
    second_opening = (
        "INSERT INTO case_work_stage_changes (case_id, seq, from_stage, to_stage, actor) "
        "VALUES (:id, 0, NULL, 'intake', 'x')"
    )
    assert await _raw(cw, "admin", second_opening, id=case_id) == "uq_case_work_stage_changes_case_id_seq"
    # when SQL makes the case's social worker its supervisor (the service never names them: a raw write)
    own = "UPDATE case_work_cases SET supervisor_account_id = social_worker_account_id WHERE id = :id"
    assert await _raw(cw, "admin", own, id=case_id) == "ck_case_work_cases_supervisor_not_worker"
    # then nothing was written
    assert await cw.counts() == before
    assert (await cw.case(case_id)).supervisor_account_id == cw.ids["sup"]


async def test_one_pending_request_of_a_kind_per_case(cw: CaseWorld) -> None:
    # given a case in evaluation with a pending closure request
    case_id = await cw.open()
    await cw.bring_to(case_id, "evaluation")
    request = await cw.call("sw", services.request_approval, case_id, "closure", "总结", ["结果"])
    before = await cw.counts()
    # when SQL files a second pending closure request for the case, then it is refused
    second = (
        "INSERT INTO case_work_approvals (case_id, kind, stage_seq, requested_by_account_id, summary, outcomes) "
        "SELECT case_id, kind, stage_seq, requested_by_account_id, summary, outcomes FROM case_work_approvals "
        "WHERE id = :id"
    )
    assert await _raw(cw, "sw", second, id=request.id) == "uq_case_work_approvals_pending"
    assert await cw.counts() == before


# -- notes (w002) ------------------------------------------------------------------------------------------------


async def test_a_notes_kept_versions_are_sealed_and_one_per_revision(cw: CaseWorld) -> None:
    # given a note edited once (its first version kept as revision 0)
    case_id = await cw.open()
    note = await cw.call(
        "sw", notes.add_note, case_id, note_type="call", occurred_at=cw.clock() - timedelta(hours=1), text="初稿"
    )
    await cw.call("sw", notes.edit_note, note.id, text="改稿")
    async with cw.as_("sw") as ctx:
        ring = await sealing.keyring(ctx)
    sealed = ring.seal("x", table="case_work_note_revisions", column="text_sealed", row_id=10**9)
    insert = (
        "INSERT INTO case_work_note_revisions (note_id, revision, note_type, occurred_at, text_sealed, "
        "written_by_account_id, written_at, replaced_by_account_id) "
        "VALUES (:id, :revision, 'call', now(), :text, :sw, now(), :sw)"
    )
    # when SQL keeps a version in clear, then it is refused
    clear = "王奶奶说的话".encode()
    got = await _raw(cw, "sw", insert, id=note.id, revision=1, text=clear, sw=cw.ids["sw"])
    assert got == "ck_case_work_note_revisions_text_sealed_sealed"
    # when SQL keeps a second version 0, then it is refused
    got = await _raw(cw, "sw", insert, id=note.id, revision=0, text=sealed, sw=cw.ids["sw"])
    assert got == "uq_case_work_note_revisions_note_id_revision"
    # then the note still has its one kept version
    assert await _count(cw, "sw", "case_work_note_revisions") == 1


# -- plans (w003) ------------------------------------------------------------------------------------------------


async def test_plan_rows_follow_their_cases_stage_and_are_kept(cw: CaseWorld) -> None:
    # given a case assessed, then planned, with one plan, a goal and its progress
    case_id = await cw.open()
    await cw.bring_to(case_id, "assessment")
    assessment = await cw.call("sw", plans.record_assessment, case_id, plan_needs(health=2))
    await cw.call("sw", services.advance, case_id, "planning")
    plan = await cw.call("sw", plans.create_plan, case_id, None)
    goal = await cw.call("sw", plans.add_goal, plan.id, "情绪支持", "mental_wellbeing")
    await cw.call("sw", plans.record_progress, goal.id, percent=10)
    sw = cw.ids["sw"]
    # and a review of the plan open (raised as the job raises one)
    review = "INSERT INTO case_work_reviews (plan_id, case_id, due_on, risk_level) VALUES (:p, :c, :due, 'low')"
    assert await _raw(cw, "admin", review, p=plan.id, c=case_id, due=date(2030, 1, 1)) is None
    before = await plan_counts(cw)
    attempts = {
        # a second open review of the plan, due another day
        "second open review": (review, {"p": plan.id, "c": case_id, "due": date(2030, 2, 1)}),
        # a second plan for the case
        "second plan": (
            "INSERT INTO case_work_plans (case_id, started_on, created_by_account_id) VALUES (:c, CURRENT_DATE, :sw)",
            {"c": case_id, "sw": sw},
        ),
        # a need added to the assessment once the case left the assessment stage
        "late need": (
            "INSERT INTO case_work_assessment_needs (assessment_id, case_id, domain, score) "
            "VALUES (:a, :c, 'health', 4)",
            {"a": assessment.id, "c": case_id},
        ),
        # progress rewritten, a plan or a goal deleted
        "progress rewritten": ("UPDATE case_work_goal_progress SET note = '改写'", {}),
        "plan deleted": ("DELETE FROM case_work_plans", {}),
        "goal deleted": ("DELETE FROM case_work_goals", {}),
    }
    got = {name: await _raw(cw, "admin", sql, **params) for name, (sql, params) in attempts.items()}
    assert got == {
        "second open review": "uq_case_work_reviews_open",
        "second plan": "uq_case_work_plans_organization_id_case_id",
        "late need": "case_work_assessment_stage",
        "progress rewritten": "case_work_append_only",
        "plan deleted": "case_work_append_only",
        "goal deleted": "case_work_append_only",
    }
    assert await plan_counts(cw) == before
    # and once the case is closed, no progress is slipped in
    for to in ("intervention", "evaluation"):
        await cw.call("sw", services.advance, case_id, to)
    await cw.approve(case_id, "closure")
    await cw.call("sw", services.advance, case_id, "closure", "结案")
    progress = (
        "INSERT INTO case_work_goal_progress (goal_id, case_id, on_date, status, recorded_by_account_id) "
        "VALUES (:g, :c, CURRENT_DATE, 'achieved', :sw)"
    )
    assert await _raw(cw, "admin", progress, g=goal.id, c=case_id, sw=sw) == "case_work_case_closed"
    assert await plan_counts(cw) == before


# -- transfers and clients (w006) --------------------------------------------------------------------------------


async def test_one_pending_transfer_per_case_answered_by_its_receiver(cw: CaseWorld) -> None:
    # given a pending transfer of a case from its worker to another
    case_id = await cw.open()
    transfer = await cw.call("sw", services.propose_transfer, case_id, cw.ids["sw2"], "工作调整")
    before = await cw.counts()
    # when SQL proposes a second transfer of the case while the first is pending, then it is refused
    second = (
        "INSERT INTO case_work_transfers (case_id, from_account_id, to_account_id, reason, proposed_by_account_id, "
        "proposed_by) SELECT case_id, from_account_id, to_account_id, '再转', proposed_by_account_id, proposed_by "
        "FROM case_work_transfers WHERE id = :id"
    )
    assert await _raw(cw, "sw", second, id=transfer.id) == "uq_case_work_transfers_pending"
    # when SQL accepts it in the name of the worker who handed it over, then it is refused: the answer is the receiver's
    by_sender = (
        "UPDATE case_work_transfers SET status = 'accepted', decided_at = now(), "
        "decided_by_account_id = from_account_id WHERE id = :id"
    )
    assert await _raw(cw, "sw", by_sender, id=transfer.id) == "ck_case_work_transfers_decided_by_receiver"
    # then nothing changed
    assert await cw.counts() == before
    assert await _scalar(cw, "sw", "SELECT status FROM case_work_transfers WHERE id = :id", id=transfer.id) == "pending"


async def test_a_resident_is_one_casework_client(cw: CaseWorld) -> None:
    # given a case, whose client is a resident
    await cw.open()
    before = await cw.counts()
    # when SQL makes the same resident a second client, then it is refused
    twin = "INSERT INTO case_work_clients (resident_id) SELECT resident_id FROM case_work_clients"
    assert await _raw(cw, "admin", twin) == "uq_case_work_clients_resident_id"
    assert await cw.counts() == before


# -- groups (w005) -----------------------------------------------------------------------------------------------


async def test_group_rows_are_kept_and_sealed_and_an_ended_group_takes_no_attendance(cal: Calendar) -> None:  # noqa: F811
    # given a group with two participants, one of whom attended a session that took place
    cw = cal.cw
    group_id = await make_group(cw)
    client_id, other_client = await make_clients(cw, 2)
    member = await cw.call("sw", groups.add_participant, group_id, client_id)
    other = await cw.call("sw", groups.add_participant, group_id, other_client)
    held = await cw.call("sw", groups.schedule_session, group_id, start=at(cal.monday, 9), minutes=60)
    cw.clock.now = at(cal.monday, 10, 30)
    await cw.call("sw", groups.record_attendance, held.id, member.id, "present")
    before = await group_counts(cw)
    sw = cw.ids["sw"]
    attendance = (
        "INSERT INTO case_work_group_attendance (group_id, session_id, participant_id, status, recorded_by_account_id) "
        "VALUES (:g, :s, :p, 'absent', :sw)"
    )
    attempts = {
        # the client joins a second time while still in the group
        "joins twice": (
            "INSERT INTO case_work_group_participants (group_id, client_id, added_by_account_id) VALUES (:g, :c, :sw)",
            {"g": group_id, "c": client_id, "sw": sw},
        ),
        # a participant deleted, or their joining rewritten (a participant only leaves, once)
        "participant deleted": ("DELETE FROM case_work_group_participants WHERE id = :p", {"p": other.id}),
        "joining rewritten": (
            "UPDATE case_work_group_participants SET joined_at = joined_at - interval '1 day' WHERE id = :p",
            {"p": other.id},
        ),
        # a second attendance record of the same session and participant
        "attends twice": (attendance, {"g": group_id, "s": held.id, "p": member.id, "sw": sw}),
        # attendance deleted
        "attendance deleted": ("DELETE FROM case_work_group_attendance", {}),
        # an outcome note stored in clear
        "note in clear": (
            "INSERT INTO case_work_group_notes (group_id, session_id, text_sealed, author_account_id, author) "
            "VALUES (:g, :s, :t, :sw, 'sw')",
            {"g": group_id, "s": held.id, "t": "组员情绪好转".encode(), "sw": sw},
        ),
    }
    got = {name: await _raw(cw, "sw", sql, **params) for name, (sql, params) in attempts.items()}
    # then the database refuses each, and nothing changed
    assert got == {
        "joins twice": "uq_case_work_group_participants_active",
        "participant deleted": "case_work_group_kept",
        "joining rewritten": "case_work_group_kept",
        "attends twice": "uq_case_work_group_attendance_session_id_participant_id",
        "attendance deleted": "case_work_group_kept",
        "note in clear": "ck_case_work_group_notes_text_sealed_sealed",
    }
    assert await group_counts(cw) == before
    # and once the group ended, no attendance is recorded for it by SQL either
    await group_bring_to(cw, group_id, "ending")
    late = {"g": group_id, "s": held.id, "p": member.id, "sw": sw}
    assert await _raw(cw, "sw", attendance.replace("'absent'", "'excused'"), **late) == "case_work_group_ended"


# -- intakes (w007) ----------------------------------------------------------------------------------------------


async def test_an_intake_waits_in_the_queue_exactly_when_it_has_no_case(cw: CaseWorld) -> None:
    # given a case
    case_id = await cw.open()
    insert = (
        "INSERT INTO case_work_intakes (source_kind, source_id, risk_level, status, queue_reason, case_id) "
        "VALUES ('counseling_risk_flag', :source, 'high', :status, :reason, :case)"
    )
    # when SQL records an intake as opened with no case, or as queued with one, then each is refused
    opened = {"source": 1, "status": "opened", "reason": None, "case": None}
    queued = {"source": 2, "status": "queued", "reason": "no_social_worker", "case": case_id}
    for params in (opened, queued):
        assert await _raw(cw, "admin", insert, **params) == "ck_case_work_intakes_case_unless_queued", params
    # and nothing was written
    assert await _count(cw, "admin", "case_work_intakes") == 0


async def test_a_help_request_is_tagged_for_casework_once(cw: CaseWorld) -> None:
    # given a help request of A, tagged for casework
    request = await cw.call(
        "admin",
        help_requests.submit,
        help_requests.HelpRequestInput(
            community_id=cw.ids["community_a"],
            title="独居老人需要探访",
            category=RequestCategory.MEDICINE,
            urgency=Urgency.HIGH,
            requester_name="李奶奶",
            requester_phone="13800002222",
        ),
    )
    tag = (
        "INSERT INTO case_work_request_tags (help_request_id, category, risk_level, tagged_by_account_id, tagged_by) "
        "VALUES (:r, 'elderly_care', :risk, :sw, 'sw')"
    )
    assert await _raw(cw, "sw", tag, r=request.id, risk="medium", sw=cw.ids["sw"]) is None
    # when SQL tags it a second time (its verification would open two cases), then it is refused
    assert await _raw(cw, "sw", tag, r=request.id, risk="high", sw=cw.ids["sw"]) == (
        "uq_case_work_request_tags_organization_id_help_request_id"
    )
    assert await _count(cw, "sw", "case_work_request_tags") == 1


# -- the people the cases are about (core 0012) --------------------------------------------------------------------


async def test_a_consent_to_a_service_names_the_organisation_that_receives_and_only_then(cw: CaseWorld) -> None:
    # given a case, whose client is a resident of A
    await cw.open()
    insert = (
        "INSERT INTO consents (resident_id, scopes, target_kind, target, target_organization_id, purpose, "
        "valid_from, recorded_by) SELECT resident_id, ARRAY['summary'], :kind, '心理咨询', :org, '转介', now(), 'sw' "
        "FROM case_work_clients"
    )
    # when SQL records a consent to a service that names no organisation, or one to an outside body naming one
    to_nobody = await _raw(cw, "admin", insert, kind="plugin", org=None)
    outside_named = await _raw(cw, "admin", insert, kind="outside", org=cw.ids["org_b"])
    # then each is refused: a referral under it would have no recipient (or a recipient it did not name)
    assert (to_nobody, outside_named) == ("ck_consents_target_organization", "ck_consents_target_organization")
    assert await _count(cw, "admin", "consents") == 0


async def test_a_referral_goes_to_one_place(cw: CaseWorld) -> None:
    # given a case's resident who consented to be referred to B's counseling
    await cw.open()
    consent = (
        "INSERT INTO consents (resident_id, scopes, target_kind, target, target_organization_id, purpose, "
        "valid_from, recorded_by) SELECT resident_id, ARRAY['summary'], 'plugin', '心理咨询', :org, '转介', now(), "
        "'sw' FROM case_work_clients"
    )
    assert await _raw(cw, "admin", consent, org=cw.ids["org_b"]) is None
    insert = (
        "INSERT INTO referrals (resident_id, consent_id, source_plugin, target_plugin, target_organization_id, "
        "target_outside, summary, sent_by, sent_at) SELECT resident_id, id, 'case_work', :plugin, :org, :outside, "
        "'转介', 'sw', now() FROM consents"
    )
    # when SQL sends a referral to no one, or both to B's counseling and to an outside body
    nowhere = await _raw(cw, "admin", insert, plugin=None, org=None, outside=None)
    both = await _raw(cw, "admin", insert, plugin="counseling", org=cw.ids["org_b"], outside="街道办")
    # then each is refused, and no referral was written
    assert (nowhere, both) == ("ck_referrals_one_target", "ck_referrals_one_target")
    assert await _count(cw, "admin", "referrals") == 0
