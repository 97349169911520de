"""Casework at the service layer: every stage transition (legal and illegal), the approval gates, closed cases,
reopening, and the database holding the same rules against raw SQL (run as the app role, under RLS)."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.errors import DomainError
from core.models import Appointment
from core.services.common import constraint_name
from core.services.context import ServiceContext
from plugins.case_work import services
from plugins.case_work.models import STAGES
from plugins.case_work.visits.models import Visit
from tests.concurrency import Racer, rounds
from tests.plugins.case_work.conftest import CaseWorld
from tests.plugins.case_work.test_visits import Calendar, at, cal  # noqa: F401 (`cal` is a fixture)

OPEN = [s for s in STAGES if s not in services.CLOSED]
PAIRS = [(a, b) for a in STAGES for b in STAGES if a != b]


async def test_the_stage_graph_in_the_database_is_the_services_graph(cw: CaseWorld) -> None:
    # given the graph the database checks; then it holds exactly the services' TRANSITIONS
    async with cw.as_("sw") as ctx:
        rows = (await ctx.session.execute(text("SELECT * FROM case_work_stage_graph()"))).all()
    table = {(r.from_stage, r.to_stage): services.Step(r.kind, r.approval, r.high_risk_only) for r in rows}
    assert len(rows) == len(table)
    assert table == services.TRANSITIONS


async def test_a_case_goes_from_intake_to_closure_and_every_step_is_recorded(cw: CaseWorld) -> None:
    # given a case opened by its social worker
    case_id = await cw.open(reason="社区转介")
    # when it goes through every stage, closure approved by its supervisor
    for to in ("assessment", "planning", "intervention", "evaluation"):
        await cw.call("sw", services.advance, case_id, to, f"进入{to}")
    await cw.approve(case_id, "closure")
    closed = await cw.call("sw", services.advance, case_id, "closure", "目标达成")
    # then it is closed, and its history has each step with who and why
    assert (closed.stage, closed.closed_at is not None, closed.stage_seq) == ("closure", True, 5)
    assert await cw.history(case_id) == [
        (0, None, "intake", "sw", "社区转介"),
        (1, "intake", "assessment", "sw", "进入assessment"),
        (2, "assessment", "planning", "sw", "进入planning"),
        (3, "planning", "intervention", "sw", "进入intervention"),
        (4, "intervention", "evaluation", "sw", "进入evaluation"),
        (5, "evaluation", "closure", "sw", "目标达成"),
    ]


@pytest.mark.parametrize(("start", "to"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
async def test_every_transition_is_allowed_exactly_when_the_graph_has_it(cw: CaseWorld, start: str, to: str) -> None:
    # given a case in `start` (approvals of the step in place, so that only the graph decides)
    case_id = await cw.open()
    await cw.bring_to(case_id, start)
    step = services.TRANSITIONS.get((start, to))
    if step is not None and step.approval == "closure":
        await cw.approve(case_id, "closure")
    before = await cw.counts()
    if start in services.CLOSED:
        # then a closed case refuses every step (reopening is its own, checked below)
        assert await cw.refused("sw", services.advance, case_id, to, "理由") == "CASE_CLOSED"
    elif step is None or step.kind == "reopen":
        # then a step the graph lacks is refused, and nothing is written
        assert await cw.refused("sw", services.advance, case_id, to, "理由") == "ILLEGAL_TRANSITION"
        assert await cw.counts() == before
        assert (await cw.case(case_id)).stage == start
    else:
        # then a step of the graph is taken and recorded
        moved = await cw.call("sw", services.advance, case_id, to, "理由")
        assert moved.stage == to
        assert (await cw.history(case_id))[-1][1:3] == (start, to)


async def test_an_intake_ends_not_opened_only_with_a_reason_and_then_is_closed(cw: CaseWorld) -> None:
    case_id = await cw.open()
    before = await cw.counts()
    assert await cw.refused("sw", services.advance, case_id, "not_opened", "  ") == "REQUIRED"
    assert await cw.counts() == before
    await cw.call("sw", services.advance, case_id, "not_opened", "居民拒绝服务")
    assert await cw.refused("sw", services.update_case, case_id, risk_level="high") == "CASE_CLOSED"
    # not opened is final: it is not reopened (a new case is opened instead)
    assert await cw.refused("sup", services.reopen, case_id, "再次求助") == "ILLEGAL_TRANSITION"


async def test_evaluation_goes_back_to_intervention_with_a_reason_and_the_old_approval_lapses(cw: CaseWorld) -> None:
    # given a case in evaluation whose closure was approved
    case_id = await cw.open()
    await cw.bring_to(case_id, "evaluation")
    await cw.approve(case_id, "closure")
    # when it goes back to intervention (a reason is required) and returns to evaluation
    assert await cw.refused("sw", services.advance, case_id, "intervention") == "REQUIRED"
    await cw.call("sw", services.advance, case_id, "intervention", "目标未达成")
    await cw.call("sw", services.advance, case_id, "evaluation")
    # then the earlier approval no longer counts: closure needs a fresh one
    assert await cw.refused("sw", services.advance, case_id, "closure") == "APPROVAL_REQUIRED"
    await cw.approve(case_id, "closure")
    assert (await cw.call("sw", services.advance, case_id, "closure")).stage == "closure"


async def test_moving_on_withdraws_a_pending_request(cw: CaseWorld) -> None:
    case_id = await cw.open()
    await cw.bring_to(case_id, "evaluation")
    pending = await cw.call("sw", services.request_approval, case_id, "closure", "总结", ["结果"])
    await cw.call("sw", services.advance, case_id, "intervention", "需要继续介入")
    assert await cw.refused("sup", services.decide_approval, pending.id, True) == "INVALID_TRANSITION"


# -- approvals ----------------------------------------------------------------------------------------------------


async def test_a_high_risk_case_needs_an_approved_assessment_before_planning(cw: CaseWorld) -> None:
    # given a high-risk case in assessment
    case_id = await cw.open(risk="high", category="child_protection")
    assert await cw.refused("sw", services.request_approval, case_id, "assessment", "预估") == "ILLEGAL_TRANSITION"
    await cw.call("sw", services.advance, case_id, "assessment")
    # when planning is asked without approval, with a pending request, after a refusal: refused each time
    before = await cw.counts()
    assert await cw.refused("sw", services.advance, case_id, "planning") == "APPROVAL_REQUIRED"
    assert await cw.counts() == before
    await cw.assess(case_id)
    request = await cw.call("sw", services.request_approval, case_id, "assessment", "高风险预估")
    assert await cw.refused("sw", services.advance, case_id, "planning") == "APPROVAL_REQUIRED"
    assert await cw.refused("sup", services.decide_approval, request.id, False) == "REQUIRED"  # a refusal says why
    await cw.call("sup", services.decide_approval, request.id, False, "风险评估不完整")
    assert await cw.refused("sw", services.advance, case_id, "planning") == "APPROVAL_REQUIRED"
    # then an approved assessment opens the way
    await cw.approve(case_id, "assessment")
    assert (await cw.call("sw", services.advance, case_id, "planning")).stage == "planning"


async def test_the_social_worker_cannot_lower_a_risk_to_step_past_the_approval(cw: CaseWorld) -> None:
    # given a high-risk case in assessment, without an approved assessment
    case_id = await cw.open(risk="high")
    await cw.call("sw", services.advance, case_id, "assessment")
    before = await cw.counts()
    # when its social worker lowers the risk (to plan without the approval, then raise it again)
    # then it is refused and nothing changed: the risk stays high, planning still needs the approval
    assert await cw.refused("sw", services.update_case, case_id, risk_level="low") == "FORBIDDEN"
    assert await cw.counts() == before
    assert await cw.refused("sw", services.advance, case_id, "planning") == "APPROVAL_REQUIRED"
    # and raising a risk stays the social worker's own call, lowering it the supervisor's (saying why)
    assert await cw.refused("sup", services.update_case, case_id, risk_level="medium") == "REQUIRED"
    assert await cw.counts() == before
    lowered = await cw.call("sup", services.update_case, case_id, risk_level="medium", reason="督导复核")
    assert lowered.risk_level == "medium"
    assert (await cw.call("sw", services.update_case, case_id, risk_level="high")).risk_level == "high"


async def test_every_risk_change_is_recorded_with_who_when_from_to_and_why(cw: CaseWorld) -> None:
    # given a medium-risk case
    case_id = await cw.open(risk="medium")
    # when its social worker raises it, the supervisor lowers it with a reason, and a no-op change is made
    await cw.call("sw", services.update_case, case_id, risk_level="high", reason="再次跌倒")
    await cw.call("sup", services.update_case, case_id, risk_level="low", reason="家属已接回同住")
    await cw.call("sw", services.update_case, case_id, risk_level="low", category="other")
    # then the risk history holds exactly the two changes, in order, with who and why, read with the case
    async with cw.as_("sw") as ctx:
        [history] = await services.risk_histories(ctx, [case_id])
    assert [(r.from_level, r.to_level, r.actor, r.reason) for r in history] == [
        ("medium", "high", "sw", "再次跌倒"),
        ("high", "low", "sup", "家属已接回同住"),
    ]
    assert all(r.at is not None and r.actor_account_id is not None for r in history)
    # and nobody without the case reads it (another social worker, another organisation's administrator)
    for who in ("sw2", "admin_b"):
        async with cw.as_(who) as ctx:
            assert await services.risk_histories(ctx, [case_id]) == [[]]
    # and the database keeps it as written
    async with cw.as_("sw") as ctx:
        with pytest.raises(DBAPIError):
            await ctx.session.execute(
                text("UPDATE case_work_risk_changes SET reason = 'x' WHERE case_id = :c"), {"c": case_id}
            )


async def test_a_low_risk_case_plans_without_approval(cw: CaseWorld) -> None:
    case_id = await cw.open(risk="medium")
    await cw.call("sw", services.advance, case_id, "assessment")
    assert (await cw.call("sw", services.advance, case_id, "planning")).stage == "planning"


async def test_closure_needs_an_approved_closure_request_with_a_summary_and_outcomes(cw: CaseWorld) -> None:
    case_id = await cw.open()
    await cw.bring_to(case_id, "evaluation")
    assert await cw.refused("sw", services.advance, case_id, "closure") == "APPROVAL_REQUIRED"
    before = await cw.counts()
    assert await cw.refused("sw", services.request_approval, case_id, "closure", "总结", []) == "REQUIRED"
    assert await cw.refused("sw", services.request_approval, case_id, "closure", "", ["结果"]) == "REQUIRED"
    assert await cw.refused("sw", services.request_approval, case_id, "closure", "总结", ["结果", " "]) == "REQUIRED"
    assert await cw.counts() == before
    request = await cw.call(
        "sw", services.request_approval, case_id, "closure", "总结", ["独居问题缓解", "建立邻里支持"]
    )
    assert await cw.refused("sw", services.request_approval, case_id, "closure", "再来", ["x"]) == "ALREADY_EXISTS"
    assert (request.status, request.outcomes) == ("pending", ["独居问题缓解", "建立邻里支持"])
    await cw.call("admin", services.decide_approval, request.id, True)
    assert (await cw.call("sw", services.advance, case_id, "closure")).stage == "closure"


@pytest.mark.parametrize("approver", ["sup", "admin", "padmin"])
async def test_the_supervisor_and_the_organisations_administrators_approve(cw: CaseWorld, approver: str) -> None:
    case_id = await cw.open()
    await cw.bring_to(case_id, "evaluation")
    request = await cw.call("sw", services.request_approval, case_id, "closure", "总结", ["结果"])
    decided = await cw.call(approver, services.decide_approval, request.id, True)
    assert (decided.status, decided.decided_by_account_id) == ("approved", cw.ids[approver])


@pytest.mark.parametrize(("requester", "decider"), [("sup", "sup"), ("admin", "admin"), ("sw", "sw")])
async def test_nobody_approves_their_own_request(cw: CaseWorld, requester: str, decider: str) -> None:
    case_id = await cw.open()
    await cw.bring_to(case_id, "evaluation")
    request = await cw.call(requester, services.request_approval, case_id, "closure", "总结", ["结果"])
    before = await cw.counts()
    assert await cw.refused(decider, services.decide_approval, request.id, True) == "SELF_APPROVAL"
    assert await cw.counts() == before
    assert await cw.refused("sw", services.advance, case_id, "closure") == "APPROVAL_REQUIRED"


@pytest.mark.parametrize(("decider", "code"), [("sw", "FORBIDDEN"), ("sw2", "NOT_FOUND"), ("admin_b", "NOT_FOUND")])
async def test_others_do_not_decide(cw: CaseWorld, decider: str, code: str) -> None:
    case_id = await cw.open()
    await cw.bring_to(case_id, "evaluation")
    request = await cw.call("admin", services.request_approval, case_id, "closure", "总结", ["结果"])
    assert await cw.refused(decider, services.decide_approval, request.id, True) == code


async def test_a_revoked_supervisor_role_stops_approving_at_once(cw: CaseWorld) -> None:
    # given the supervisor without the role (as the next request after a revocation sees them)
    case_id = await cw.open()
    await cw.bring_to(case_id, "evaluation")
    request = await cw.call("sw", services.request_approval, case_id, "closure", "总结", ["结果"])
    from dataclasses import replace

    async with cw.as_("sup") as ctx:
        ctx.viewer = replace(ctx.viewer, extra_permissions=frozenset({"case_work.manage"}))
        from core import tenancy

        tenancy.bind(ctx.session, ctx.viewer)
        with pytest.raises(DomainError) as err:
            await services.decide_approval(ctx, request.id, True)
    assert err.value.code == "NOT_FOUND"  # they no longer see the case at all


# -- closed cases and reopening -------------------------------------------------------------------------------------


async def test_a_closed_case_refuses_edits(cw: CaseWorld) -> None:
    case_id = await cw.open()
    await cw.bring_to(case_id, "closure")
    before = await cw.counts()
    assert await cw.refused("sw", services.update_case, case_id, risk_level="high") == "CASE_CLOSED"
    assert await cw.refused("admin", services.update_case, case_id, category="other") == "CASE_CLOSED"
    assert await cw.refused("sw", services.request_approval, case_id, "closure", "总结", ["x"]) == "CASE_CLOSED"
    assert await cw.refused("sw", services.advance, case_id, "assessment", "再来") == "CASE_CLOSED"
    assert await cw.counts() == before


@pytest.mark.parametrize("who", ["sup", "admin", "padmin"])
async def test_the_supervisor_and_administrators_reopen_a_closed_case_with_a_reason(cw: CaseWorld, who: str) -> None:
    case_id = await cw.open()
    await cw.bring_to(case_id, "closure")
    assert await cw.refused(who, services.reopen, case_id, " ") == "REQUIRED"
    reopened = await cw.call(who, services.reopen, case_id, "老人再次摔倒")
    assert (reopened.stage, reopened.closed_at) == ("assessment", None)
    assert (await cw.history(case_id))[-1] == (6, "closure", "assessment", who, "老人再次摔倒")
    # and the case can be worked again
    assert (await cw.call("sw", services.update_case, case_id, risk_level="high")).risk_level == "high"


@pytest.mark.parametrize(("who", "code"), [("sw", "FORBIDDEN"), ("sw2", "NOT_FOUND"), ("admin_b", "NOT_FOUND")])
async def test_others_do_not_reopen(cw: CaseWorld, who: str, code: str) -> None:
    case_id = await cw.open()
    await cw.bring_to(case_id, "closure")
    before = await cw.counts()
    assert await cw.refused(who, services.reopen, case_id, "理由") == code
    assert await cw.counts() == before


async def test_only_a_closed_case_is_reopened(cw: CaseWorld) -> None:
    case_id = await cw.open()
    await cw.bring_to(case_id, "evaluation")
    assert await cw.refused("sup", services.reopen, case_id, "理由") == "ILLEGAL_TRANSITION"


# -- the database holds the same rules ------------------------------------------------------------------------------


async def _raw(cw: CaseWorld, who: str, sql: str, **params: object) -> str | None:
    """Run `sql` as `who` through the app role; the violated constraint's name, or None if it went through."""
    try:
        async with cw.as_(who) as ctx:
            await ctx.session.execute(text(sql), params)
    except DBAPIError as exc:
        return constraint_name(exc) or str(getattr(exc.orig, "sqlstate", "") or exc.orig)
    return None


async def test_a_raw_update_cannot_skip_a_stage_or_the_history_or_an_approval(cw: CaseWorld) -> None:
    case_id = await cw.open()
    # a stage skipped
    skip = "UPDATE case_work_cases SET stage = 'planning', stage_seq = stage_seq + 1 WHERE id = :id"
    assert await _raw(cw, "admin", skip, id=case_id) == "case_work_stage_transition"
    # a legal step with no history row
    step = "UPDATE case_work_cases SET stage = 'assessment', stage_seq = stage_seq + 1 WHERE id = :id"
    assert await _raw(cw, "admin", step, id=case_id) == "case_work_stage_recorded"
    # a history row the graph lacks
    forged = (
        "INSERT INTO case_work_stage_changes (case_id, seq, from_stage, to_stage, actor) "
        "VALUES (:id, 1, 'intake', 'closure', 'x')"
    )
    assert await _raw(cw, "admin", forged, id=case_id) == "ck_case_work_stage_changes_step_of_the_graph"
    # closure with a forged history row but no approval
    await cw.bring_to(case_id, "evaluation")
    close = (
        "INSERT INTO case_work_stage_changes (case_id, seq, from_stage, to_stage, actor) "
        "VALUES (:id, 5, 'evaluation', 'closure', 'x'); "
        "UPDATE case_work_cases SET stage = 'closure', stage_seq = 5 WHERE id = :id"
    )
    try:
        async with cw.as_("admin") as ctx:
            for statement in close.split("; "):
                await ctx.session.execute(text(statement), {"id": case_id})
        outcome = None
    except DBAPIError as exc:
        outcome = constraint_name(exc)
    assert outcome == "case_work_approval_required"
    assert (await cw.case(case_id)).stage == "evaluation"


async def test_history_and_decisions_are_append_only_and_the_graph_cannot_be_replaced(cw: CaseWorld) -> None:
    case_id = await cw.open()
    await cw.bring_to(case_id, "closure")
    assert await _raw(cw, "admin", "UPDATE case_work_stage_changes SET reason = 'x'") == "case_work_append_only"
    assert await _raw(cw, "admin", "DELETE FROM case_work_stage_changes") == "case_work_append_only"
    assert await _raw(cw, "admin", "UPDATE case_work_approvals SET status = 'refused'") == "case_work_append_only"
    # a closed case does not change by SQL either
    assert await _raw(cw, "admin", "UPDATE case_work_cases SET risk_level = 'high'") == "case_work_case_closed"
    # the graph is a function the app role does not own: it cannot replace it
    replace = (
        "CREATE OR REPLACE FUNCTION case_work_is_step(a text, b text) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$"
    )
    assert await _raw(cw, "admin", replace) == "42501"


async def test_the_database_refuses_a_self_decided_request(cw: CaseWorld) -> None:
    case_id = await cw.open()
    await cw.bring_to(case_id, "evaluation")
    request = await cw.call("sup", services.request_approval, case_id, "closure", "总结", ["结果"])
    sql = (
        "UPDATE case_work_approvals SET status = 'approved', decided_at = now(), "
        "decided_by_account_id = requested_by_account_id WHERE id = :id"
    )
    assert await _raw(cw, "sup", sql, id=request.id) == "ck_case_work_approvals_not_self_decided"


async def test_the_database_refuses_forged_starting_points_and_undecided_decisions(cw: CaseWorld) -> None:
    # given a case in evaluation with a pending closure request
    case_id = await cw.open()
    await cw.bring_to(case_id, "evaluation")
    request = await cw.call("sw", services.request_approval, case_id, "closure", "总结", ["结果"])
    before = await cw.counts()
    # when SQL inserts a case already closed, then it is refused: a case opens at intake
    closed = (
        "INSERT INTO case_work_cases (client_id, social_worker_account_id, supervisor_account_id, category, "
        "risk_level, stage, stage_seq) SELECT client_id, social_worker_account_id, supervisor_account_id, "
        "category, risk_level, 'closure', 9 FROM case_work_cases WHERE id = :id"
    )
    assert await _raw(cw, "admin", closed, id=case_id) == "case_work_opens_at_intake"
    # when SQL inserts an approval already approved, then it is refused: a request starts pending
    approved = (
        "INSERT INTO case_work_approvals (case_id, kind, status, stage_seq, requested_by_account_id, summary, "
        "outcomes, decided_at) SELECT case_id, kind, 'approved', stage_seq, requested_by_account_id, "
        "summary, outcomes, now() FROM case_work_approvals WHERE id = :id"
    )
    assert await _raw(cw, "admin", approved, id=request.id) == "case_work_approval_starts_pending"
    # when SQL approves the pending request without naming who decided, then it is refused
    undecided = "UPDATE case_work_approvals SET status = 'approved', decided_at = now() WHERE id = :id"
    assert await _raw(cw, "sw", undecided, id=request.id) == "ck_case_work_approvals_decided_by_someone"
    # when SQL writes a history row that is not the case's next step (it would wedge the case), refused
    ahead = (
        "INSERT INTO case_work_stage_changes (case_id, seq, from_stage, to_stage, actor) "
        "SELECT id, stage_seq + 2, 'evaluation', 'intervention', 'x' FROM case_work_cases WHERE id = :id"
    )
    assert await _raw(cw, "admin", ahead, id=case_id) == "case_work_stage_recorded"
    elsewhere = (
        "INSERT INTO case_work_stage_changes (case_id, seq, from_stage, to_stage, actor) "
        "SELECT id, stage_seq + 1, 'intake', 'assessment', 'x' FROM case_work_cases WHERE id = :id"
    )
    assert await _raw(cw, "admin", elsewhere, id=case_id) == "case_work_stage_recorded"
    # and nothing changed
    assert await cw.counts() == before


async def test_every_casework_function_reads_tables_through_a_pinned_search_path(owner_engine: AsyncEngine) -> None:
    # given the migrated database; then every casework function names its search path, temporary schema last
    # (a restore runs with an empty search path; a temporary table must not stand in for a real one)
    async with owner_engine.connect() as conn:
        configs = dict(
            (
                await conn.execute(
                    text("SELECT proname, proconfig FROM pg_proc WHERE proname LIKE 'case\\_work\\_%' ORDER BY 1")
                )
            ).all()
        )
    assert len(configs) >= 8, configs
    unpinned = [
        name for name, config in configs.items() if "search_path=pg_catalog, public, pg_temp" not in (config or [])
    ]
    assert unpinned == []


async def test_deciding_a_request_beside_a_step_of_its_case_never_deadlocks(cw: CaseWorld, db_url: URL) -> None:
    # A step withdraws the case's pending requests (case, then request); a decision locks them in the same
    # order, so the two wait for each other instead of deadlocking (40P01 would fail the round).
    async def round_(racer: Racer) -> None:
        # given a low-risk case in assessment with a pending assessment request
        case_id = await cw.open(risk="low")
        await cw.call("sw", services.advance, case_id, "assessment")
        await cw.assess(case_id)
        request = await cw.call("sw", services.request_approval, case_id, "assessment", "预估")

        async def work(ctx: ServiceContext, i: int) -> str:
            if i == 0:
                supervisor = dataclasses.replace(ctx, viewer=cw.viewer("sup"))
                return (await services.decide_approval(supervisor, request.id, True)).status
            worker = dataclasses.replace(ctx, viewer=cw.viewer("sw"))
            return (await services.advance(worker, case_id, "planning")).stage

        # when the supervisor decides while the social worker moves the case on
        outcomes = await racer.race(work, viewer=cw.viewer("sw"))
        # then one of the two orders happened, whole
        assert outcomes in (["approved", "planning"], ["INVALID_TRANSITION", "planning"]), outcomes

    async with Racer.open(db_url, workers=2, clock=cw.clock) as racer:
        for _ in range(rounds(5)):
            await round_(racer)


@pytest.mark.parametrize("ending", ["closure", "not_opened"])
async def test_closing_a_case_cancels_its_visits_to_come_in_the_same_transaction(
    cal: Calendar,  # noqa: F811
    ending: str,
) -> None:
    # given a case with a visit this morning (past by now, its outcome not recorded) and two to come, one with
    # a second staff member
    cw = cal.cw
    case_id = await cw.open()
    past = await cal.book(case_id, at(cal.monday, 9))
    soon = await cal.book(case_id, at(cal.monday, 11))
    later = await cal.book(case_id, at(cal.monday, 14), second_account_id=cw.ids["sw2"])
    if ending == "closure":
        await cw.bring_to(case_id, "evaluation")
        await cw.approve(case_id, "closure")
    cw.clock.now = at(cal.monday, 10)
    # when a closing is refused first (no reason to end at intake / a withdrawn approval): nothing is cancelled
    if ending == "not_opened":
        assert await cw.refused("sw", services.advance, case_id, "not_opened", " ") == "REQUIRED"
    else:
        assert await cw.refused("sw", services.advance, case_id, "intervention", " ") == "REQUIRED"
    assert [(await cal.slot(v.id))[2] for v in (past, soon, later)] == ["active"] * 3
    # when the case closes
    await cw.call("sw", services.advance, case_id, ending, "结束服务")
    # then the visits to come are cancelled, with their appointments (the second person's too), and the past
    # one is left as it was
    async with cw.as_("admin") as ctx:
        rows = {v.id: v for v in await ctx.session.scalars(select(Visit).where(Visit.case_id == case_id))}
        second = await ctx.session.get(Appointment, rows[later.id].second_appointment_id)
        assert second is not None
        assert second.status == "cancelled"
    assert [(rows[v.id].status, (await cal.slot(v.id))[2]) for v in (past, soon, later)] == [
        ("booked", "active"),
        ("cancelled", "cancelled"),
        ("cancelled", "cancelled"),
    ]
    assert rows[soon.id].cancel_reason != ""
    # and the worker's time is free again: another case books the same hour
    other = await cw.open()
    assert (await cal.book(other, at(cal.monday, 11))).status == "booked"
