"""Assessment and service plan of a case (issue 14, item 2): the rules. Resolvers (types.py) only translate.

Assessment (预估): the case's social worker scores every need domain 0 (no need) to 4 (critical), with a
note, and lists strengths and risks, while the case is in assessment. The scores imply a risk level
(`implied_risk`): high when any domain is critical (4) or the total reaches 16 of 28; medium when any is
serious (3) or the total reaches 9; low otherwise. A higher implied risk *raises* the case's risk level at
once (through the case service, so it is the same change as caseWorkUpdateCase), and a case raised to high
then needs an approved assessment before planning -- the gate of w001, enforced by service and database.
A lower implied risk only suggests (`implied_risk` on the assessment): lowering risk is a person's decision,
and never a side effect that would slip a case past the high-risk approval. An assessment is kept as
written (a correction is a new one), and none is recorded while an assessment approval of the stage visit is
pending or approved: the approver approved what they read.

An assessment approval is asked only once an assessment of the stage visit is recorded
(ASSESSMENT_REQUIRED; the database refuses the request row too, w011): otherwise a pending request would
block recording one and a high-risk case would reach planning unassessed.

Service plan: one per case, with an optional planned end (the case's, held here), goals (text, domain,
target date), actions under goals (text, a responsible person -- an active staff member of the
organisation, or a named outside party -- due date, done) and dated progress per goal (status and/or
percentage, note). Plan rows change only while the case is in planning, intervention or evaluation
(WRONG_STAGE otherwise), never once it is closed (CASE_CLOSED), by the case's social worker; no goal or
action is due after the planned end (BEYOND_PLANNED_END). The database refuses the same (migration w003), so
a raw UPDATE cannot either.

While a closure request of the stage visit is pending or approved, the plan's content -- its planned end,
goals, actions' text, responsible and due date -- is not changed (INVALID_TRANSITION, as for an assessment
under approval; the database refuses it too, w011): the supervisor approved the closure of *this* plan,
with an outcome for each of its goals. What records the work done goes on: marking an action done, goal
progress, reviews. The step to closure checks the outcomes against the goals once more (OUTCOME_PER_GOAL),
in the service and in the database.

Reviews: the job `case_work.plan_reviews` raises a plan's next review `REVIEW_NOTICE_DAYS` before it is due:
every 30 days for a high-risk case, 60 medium, 90 low, counted from the last completed review (or from the
plan's start). One open review per plan, one per plan and due date: keys in the database, so two runs at
once raise it once. A review past its due date and not done is overdue.

Who sees all this: whoever sees the case (case_work.services.case_scope: its social worker, its supervisor,
the administrators of its organisation); everyone else as for a missing record. Plans are not sealed or
read-audited like notes: they are working documents of the case team.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.sql.elements import ColumnElement

import core
from core.i18n import _
from core.models import Account
from plugins.case_work import services as cases
from plugins.case_work.models import Approval, Case
from plugins.case_work.plans.models import (
    DOMAINS,
    GOAL_DOMAINS,
    GOAL_STATUSES,
    Action,
    Assessment,
    AssessmentNeed,
    Goal,
    GoalProgress,
    Plan,
    Review,
)

LOCAL = ZoneInfo("Asia/Shanghai")
PLAN_STAGES = frozenset({"planning", "intervention", "evaluation"})
RISK_RANK = {"low": 0, "medium": 1, "high": 2}
REVIEW_EVERY = {"high": timedelta(days=30), "medium": timedelta(days=60), "low": timedelta(days=90)}
REVIEW_NOTICE_DAYS = 7
# Scores that imply a risk level (see the module's docstring).
HIGH_TOTAL, MEDIUM_TOTAL = 16, 9
MAX_GOALS, MAX_ACTIONS, MAX_ITEMS = 20, 20, 20
ERROR_CODES = {
    "ASSESSMENT_REQUIRED": "An assessment approval is asked for once an assessment is recorded in the stage.",
}

# Refusals the database makes (migration w003), as the answers the services' own checks give.
CONSTRAINT_ERRORS: dict[str, tuple[str, str, tuple[str, ...] | None]] = {
    **cases.CONSTRAINT_ERRORS,
    "case_work_plan_stage": (
        "WRONG_STAGE",
        "Plans change while the case is in planning, intervention or evaluation.",
        None,
    ),
    "case_work_assessment_stage": ("WRONG_STAGE", "Assessments are recorded in the assessment stage.", None),
    "case_work_beyond_planned_end": ("BEYOND_PLANNED_END", "Nothing is due after the plan's planned end.", None),
    "case_work_append_only": ("INVALID_TRANSITION", "These records are kept as written.", None),
    "uq_case_work_plans_organization_id_case_id": ("ALREADY_EXISTS", "The case has a plan already.", None),
}
# The closure request's refusal of a plan edit (here and in the database, w011).
UNDER_CLOSURE = "A closure request of this plan is pending or approved: the plan is not changed now."

M = TypeVar("M")


class _Keep:
    """An update argument left out: the value stays."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()


@dataclass(frozen=True)
class NeedInput:
    domain: str
    score: int
    note: str = ""


@dataclass(frozen=True)
class ReviewFilter:
    case_id: int | None = None
    open_only: bool = False
    overdue_only: bool = False
    # The caller's own cases (as social worker or supervisor): a caseload's reviews.
    mine: bool = False


ASSESSMENTS_NEWEST: core.Ordering[Assessment] = core.Ordering(
    "case_work_assessments_newest", (Assessment.id,), lambda a: (a.id,), descending=True
)
PROGRESS_NEWEST: core.Ordering[GoalProgress] = core.Ordering(
    "case_work_goal_progress_newest",
    (GoalProgress.on_date, GoalProgress.id),
    lambda p: (p.on_date, p.id),
    descending=True,
)
REVIEWS_BY_DUE: core.Ordering[Review] = core.Ordering(
    "case_work_reviews_by_due", (Review.due_on, Review.id), lambda r: (r.due_on, r.id)
)


def today(ctx: core.ServiceContext) -> date:
    return local_date(ctx.now())


def local_date(moment: datetime) -> date:
    return moment.astimezone(LOCAL).date()


def implied_risk(scores: Sequence[int]) -> str:
    total, highest = sum(scores), max(scores, default=0)
    if highest >= 4 or total >= HIGH_TOTAL:
        return "high"
    if highest >= 3 or total >= MEDIUM_TOTAL:
        return "medium"
    return "low"


def is_overdue(review: Any, on: date) -> bool:
    return review.done_at is None and review.due_on < on


# -- who sees, who edits --------------------------------------------------------------------------------------


def _visible(ctx: core.ServiceContext, case_id_column: Any) -> ColumnElement[bool]:
    """Rows of the cases the caller sees (the same scope as cases: lists, node(id:), nested fields)."""
    result: ColumnElement[bool] = case_id_column.in_(select(Case.id).where(cases.case_scope(ctx)))
    return result


async def _case(ctx: core.ServiceContext, case_id: int, field: tuple[str, ...], *, lock: bool = True) -> Case:
    """A case the caller sees, locked (one plan change of a case at a time, none during a stage change)."""
    core.require(ctx, cases.MANAGE)
    case: Case = await core.get_row(
        ctx, Case, case_id, what=_("Case"), field=field, lock=lock, scope=cases.case_scope(ctx)
    )
    return case


def _is_worker(ctx: core.ServiceContext, case: Case) -> bool:
    return ctx.viewer.account_id is not None and ctx.viewer.account_id == case.social_worker_account_id


def _not_closed(case: Case, field: tuple[str, ...]) -> None:
    """CASE_CLOSED on `field`: the input's field that named the row (its id, or the parent's)."""
    if case.stage in cases.CLOSED:
        raise core.DomainError("CASE_CLOSED", "The case is closed: it cannot be changed.", field)


def _plan_editor(ctx: core.ServiceContext, case: Case, field: tuple[str, ...]) -> int:
    """The case's social worker, while the case is being planned or worked; their account."""
    _not_closed(case, field)
    if not _is_worker(ctx, case):
        raise core.DomainError("FORBIDDEN", "Only the case's social worker changes its plan.")
    if case.stage not in PLAN_STAGES:
        raise core.DomainError(
            "WRONG_STAGE", "Plans change while the case is in planning, intervention or evaluation.", field
        )
    assert ctx.viewer.account_id is not None
    return ctx.viewer.account_id


async def _not_under_closure(ctx: core.ServiceContext, case: Case, field: tuple[str, ...]) -> None:
    """INVALID_TRANSITION while a closure request of the case's stage visit is pending or approved (see the
    module's docstring). The case is locked by the caller, as `request_approval` locks it: neither passes the
    other."""
    found = await ctx.session.scalar(
        select(Approval.id).where(
            Approval.case_id == case.id,
            Approval.kind == "closure",
            Approval.stage_seq == case.stage_seq,
            Approval.status.in_(("pending", "approved")),
        )
    )
    if found is not None:
        raise core.DomainError("INVALID_TRANSITION", UNDER_CLOSURE, field)


async def _flush(ctx: core.ServiceContext) -> None:
    await core.flush(ctx, CONSTRAINT_ERRORS)


def _text(v: core.Validator, value: str | None, field: tuple[str, ...], *, required: bool, limit: int) -> str:
    clean = (value or "").strip()
    if required:
        v.check(bool(clean), field, "REQUIRED", "Write something.")
    v.check(len(clean) <= limit, field, "OUT_OF_RANGE", "At most {limit} characters.", limit=limit)
    return clean


def _items(v: core.Validator, values: Sequence[str], field: tuple[str, ...]) -> list[str]:
    clean = [s.strip() for s in values]
    v.check(len(clean) <= MAX_ITEMS, field, "OUT_OF_RANGE", "At most {limit} items.", limit=MAX_ITEMS)
    v.check(all(clean), field, "REQUIRED", "An item cannot be empty.")
    v.check(all(len(s) <= 500 for s in clean), field, "OUT_OF_RANGE", "At most {limit} characters.", limit=500)
    return clean


# -- assessment -----------------------------------------------------------------------------------------------


async def record_assessment(
    ctx: core.ServiceContext,
    case_id: int,
    needs: Sequence[NeedInput],
    *,
    strengths: Sequence[str] = (),
    risks: Sequence[str] = (),
    summary: str = "",
) -> Assessment:
    """Record a structured assessment of a case in assessment (its social worker): every domain scored
    once. Raises the case's risk level to the one the scores imply when that is higher."""
    case = await _case(ctx, case_id, ("input", "caseId"))
    _not_closed(case, ("input", "caseId"))
    if not _is_worker(ctx, case):
        raise core.DomainError("FORBIDDEN", "Only the case's social worker records its assessment.")
    if case.stage != "assessment":
        raise core.DomainError("WRONG_STAGE", "Assessments are recorded in the assessment stage.", ("input", "caseId"))
    v = core.Validator()
    domains = [n.domain for n in needs]
    unknown = sorted(set(domains) - set(DOMAINS))
    v.check(not unknown, ("input", "needs"), "INVALID_INPUT", "Unknown domains: {values}.", values=tuple(unknown))
    v.check(len(domains) == len(set(domains)), ("input", "needs"), "INVALID_INPUT", "Each domain is scored once.")
    missing = sorted(set(DOMAINS) - set(domains))
    v.check(not missing, ("input", "needs"), "REQUIRED", "Score every domain: {values}.", values=tuple(missing))
    for i, need in enumerate(needs):
        v.check(0 <= need.score <= 4, ("input", "needs", str(i), "score"), "OUT_OF_RANGE", "A score is 0 to 4.")
        _text(v, need.note, ("input", "needs", str(i), "note"), required=False, limit=1000)
    clean_strengths = _items(v, strengths, ("input", "strengths"))
    clean_risks = _items(v, risks, ("input", "risks"))
    clean_summary = _text(v, summary, ("input", "summary"), required=False, limit=5000)
    v.raise_if_any()
    under_approval = await ctx.session.scalar(
        select(Approval.id).where(
            Approval.case_id == case.id,
            Approval.kind == "assessment",
            Approval.stage_seq == case.stage_seq,
            Approval.status.in_(("pending", "approved")),
        )
    )
    if under_approval is not None:
        raise core.DomainError(
            "INVALID_TRANSITION",
            "The assessment is under approval or approved: it is not changed now.",
            ("input", "caseId"),
        )
    scores = [n.score for n in needs]
    implied = implied_risk(scores)
    before = case.risk_level
    if RISK_RANK[implied] > RISK_RANK[before]:
        # The case service's own change (same checks, same row), not a write around it.
        case = await cases.update_case(ctx, case.id, risk_level=implied)
    assert ctx.viewer.account_id is not None
    assessment = Assessment(
        case_id=case.id,
        stage_seq=case.stage_seq,
        total_score=sum(scores),
        highest_score=max(scores),
        implied_risk=implied,
        risk_before=before,
        risk_after=case.risk_level,
        strengths=clean_strengths,
        risks=clean_risks,
        summary=clean_summary,
        recorded_by_account_id=ctx.viewer.account_id,
        organization_id=case.organization_id,
    )
    ctx.session.add(assessment)
    await _flush(ctx)
    ctx.session.add_all(
        AssessmentNeed(
            assessment_id=assessment.id,
            case_id=case.id,
            domain=n.domain,
            score=n.score,
            note=n.note.strip(),
            organization_id=case.organization_id,
        )
        for n in needs
    )
    await _flush(ctx)
    return assessment


# -- plan -----------------------------------------------------------------------------------------------------


def _within_end(v: core.Validator, value: date | None, planned_end: date | None, field: tuple[str, ...]) -> None:
    if value is not None and planned_end is not None:
        v.check(
            value <= planned_end,
            field,
            "BEYOND_PLANNED_END",
            "Not after the plan's planned end, {end}.",
            end=planned_end.isoformat(),
        )


async def create_plan(ctx: core.ServiceContext, case_id: int, planned_end: date | None = None) -> Plan:
    """Start a case's service plan (one per case), from today, with an optional planned end."""
    case = await _case(ctx, case_id, ("input", "caseId"))
    actor = _plan_editor(ctx, case, ("input", "caseId"))
    await _not_under_closure(ctx, case, ("input", "caseId"))
    start = today(ctx)
    if planned_end is not None and planned_end < start:
        raise core.DomainError("IN_PAST", "The planned end lies in the past.", ("input", "plannedEnd"))
    if await ctx.session.scalar(select(Plan.id).where(Plan.case_id == case.id)) is not None:
        raise core.DomainError("ALREADY_EXISTS", "The case has a plan already.", ("input", "caseId"))
    plan = Plan(
        case_id=case.id,
        started_on=start,
        planned_end=planned_end,
        created_by_account_id=actor,
        organization_id=case.organization_id,
    )
    ctx.session.add(plan)
    await _flush(ctx)
    return plan


async def _plan(ctx: core.ServiceContext, plan_id: int, field: tuple[str, ...]) -> tuple[Plan, Case]:
    core.require(ctx, cases.MANAGE)
    plan: Plan = await core.get_row(ctx, Plan, plan_id, what=_("Plan"), field=field, scope=_visible(ctx, Plan.case_id))
    return plan, await _case(ctx, plan.case_id, field)


async def _goal(ctx: core.ServiceContext, goal_id: int, field: tuple[str, ...]) -> tuple[Goal, Plan, Case]:
    core.require(ctx, cases.MANAGE)
    goal: Goal = await core.get_row(ctx, Goal, goal_id, what=_("Goal"), field=field, scope=_visible(ctx, Goal.case_id))
    plan, case = await _plan(ctx, goal.plan_id, field)
    return goal, plan, case


async def update_plan(ctx: core.ServiceContext, plan_id: int, planned_end: Any = KEEP) -> Plan:
    """Set (a date) or clear (None) the planned end -- not before today, nor before any goal's target or
    action's due date -- or leave it (KEEP: the input left it out)."""
    plan, case = await _plan(ctx, plan_id, ("input", "id"))
    _plan_editor(ctx, case, ("input", "id"))
    await _not_under_closure(ctx, case, ("input", "id"))
    if planned_end is KEEP:
        return plan
    if planned_end is not None:
        if planned_end < plan.started_on or (planned_end != plan.planned_end and planned_end < today(ctx)):
            raise core.DomainError("IN_PAST", "The planned end lies in the past.", ("input", "plannedEnd"))
        latest = await ctx.session.scalar(select(func.max(Goal.target_date)).where(Goal.plan_id == plan.id))
        latest_action = await ctx.session.scalar(
            select(func.max(Action.due_on)).join(Goal, Goal.id == Action.goal_id).where(Goal.plan_id == plan.id)
        )
        dates = [d for d in (latest, latest_action) if d is not None]
        if dates and max(dates) > planned_end:
            raise core.DomainError(
                "BEYOND_PLANNED_END",
                "A goal or action is due on {date}, after this planned end.",
                ("input", "plannedEnd"),
                date=max(dates).isoformat(),
            )
    plan.planned_end = planned_end
    await _flush(ctx)
    return plan


async def add_goal(
    ctx: core.ServiceContext, plan_id: int, text: str, domain: str, target_date: date | None = None
) -> Goal:
    plan, case = await _plan(ctx, plan_id, ("input", "planId"))
    _plan_editor(ctx, case, ("input", "planId"))
    await _not_under_closure(ctx, case, ("input", "planId"))
    v = core.Validator()
    clean = _text(v, text, ("input", "text"), required=True, limit=1000)
    v.check(domain in GOAL_DOMAINS, ("input", "domain"), "INVALID_INPUT", "Unknown domain.")
    if target_date is not None:
        v.check(target_date >= today(ctx), ("input", "targetDate"), "IN_PAST", "The target date lies in the past.")
    _within_end(v, target_date, plan.planned_end, ("input", "targetDate"))
    v.raise_if_any()
    count = await ctx.session.scalar(select(func.count()).select_from(Goal).where(Goal.plan_id == plan.id))
    if (count or 0) >= MAX_GOALS:
        raise core.DomainError(
            "OUT_OF_RANGE", "A plan has at most {limit} goals.", ("input", "planId"), limit=MAX_GOALS
        )
    goal = Goal(
        plan_id=plan.id,
        case_id=case.id,
        text=clean,
        domain=domain,
        target_date=target_date,
        status="not_started",
        organization_id=case.organization_id,
    )
    ctx.session.add(goal)
    await _flush(ctx)
    return goal


async def update_goal(
    ctx: core.ServiceContext, goal_id: int, *, text: Any = KEEP, domain: Any = KEEP, target_date: Any = KEEP
) -> Goal:
    """Change a goal's text, domain or target date (None clears it). Its status moves by progress entries."""
    goal, plan, case = await _goal(ctx, goal_id, ("input", "id"))
    _plan_editor(ctx, case, ("input", "id"))
    await _not_under_closure(ctx, case, ("input", "id"))
    v = core.Validator()
    if text is not KEEP:
        goal.text = _text(v, text, ("input", "text"), required=True, limit=1000)
    if domain is not KEEP:
        v.check(domain in GOAL_DOMAINS, ("input", "domain"), "INVALID_INPUT", "Unknown domain.")
    if target_date is not KEEP:
        if target_date is not None and target_date != goal.target_date:
            v.check(target_date >= today(ctx), ("input", "targetDate"), "IN_PAST", "The target date lies in the past.")
        _within_end(v, target_date, plan.planned_end, ("input", "targetDate"))
    v.raise_if_any()
    if domain is not KEEP:
        goal.domain = domain
    if target_date is not KEEP:
        goal.target_date = target_date
    await _flush(ctx)
    return goal


async def _responsible(
    ctx: core.ServiceContext, case: Case, account_id: int | None, name: str, v: core.Validator
) -> tuple[int | None, str]:
    clean = _text(v, name, ("input", "responsibleName"), required=False, limit=100)
    v.check(
        (account_id is None) != (clean == ""),
        ("input", "responsibleAccountId"),
        "INVALID_INPUT",
        "Name one responsible: an account of the organisation or an outside party.",
    )
    v.raise_if_any()
    if account_id is not None:
        account: Account = await core.get_row(
            ctx,
            Account,
            account_id,
            what=_("Account"),
            field=("input", "responsibleAccountId"),
            scope=Account.organization_id == case.organization_id,
        )
        if not account.is_active or account.role not in cases.STAFF_ROLES:
            # A volunteer or a community head is not told a confidential case's plan by naming them in it;
            # someone outside the staff is an outside party, by name.
            raise core.DomainError(
                "INVALID_INPUT",
                "The responsible account must be an active staff member of the organisation.",
                ("input", "responsibleAccountId"),
            )
    return account_id, clean


async def add_action(
    ctx: core.ServiceContext,
    goal_id: int,
    text: str,
    *,
    responsible_account_id: int | None = None,
    responsible_name: str = "",
    due_on: date | None = None,
) -> Action:
    goal, plan, case = await _goal(ctx, goal_id, ("input", "goalId"))
    _plan_editor(ctx, case, ("input", "goalId"))
    await _not_under_closure(ctx, case, ("input", "goalId"))
    v = core.Validator()
    clean = _text(v, text, ("input", "text"), required=True, limit=1000)
    if due_on is not None:
        v.check(due_on >= today(ctx), ("input", "dueOn"), "IN_PAST", "The due date lies in the past.")
    _within_end(v, due_on, plan.planned_end, ("input", "dueOn"))
    account_id, name = await _responsible(ctx, case, responsible_account_id, responsible_name, v)
    count = await ctx.session.scalar(select(func.count()).select_from(Action).where(Action.goal_id == goal.id))
    if (count or 0) >= MAX_ACTIONS:
        raise core.DomainError(
            "OUT_OF_RANGE", "A goal has at most {limit} actions.", ("input", "goalId"), limit=MAX_ACTIONS
        )
    action = Action(
        goal_id=goal.id,
        case_id=case.id,
        text=clean,
        responsible_account_id=account_id,
        responsible_name=name,
        due_on=due_on,
        organization_id=case.organization_id,
    )
    ctx.session.add(action)
    await _flush(ctx)
    return action


async def update_action(
    ctx: core.ServiceContext,
    action_id: int,
    *,
    text: Any = KEEP,
    responsible_account_id: Any = KEEP,
    responsible_name: Any = KEEP,
    due_on: Any = KEEP,
    done: Any = KEEP,
) -> Action:
    """Change an action, or mark it done (or not done again). A responsible given replaces the other kind."""
    core.require(ctx, cases.MANAGE)
    action: Action = await core.get_row(
        ctx, Action, action_id, what=_("Action"), field=("input", "id"), scope=_visible(ctx, Action.case_id)
    )
    _goal_row, plan, case = await _goal(ctx, action.goal_id, ("input", "id"))
    actor = _plan_editor(ctx, case, ("input", "id"))
    if any(value is not KEEP for value in (text, responsible_account_id, responsible_name, due_on)):
        # The action's content is the plan's; marking it done records work, and goes on.
        await _not_under_closure(ctx, case, ("input", "id"))
    v = core.Validator()
    clean = action.text if text is KEEP else _text(v, text, ("input", "text"), required=True, limit=1000)
    if due_on is not KEEP:
        if due_on is not None and due_on != action.due_on:
            v.check(due_on >= today(ctx), ("input", "dueOn"), "IN_PAST", "The due date lies in the past.")
        _within_end(v, due_on, plan.planned_end, ("input", "dueOn"))
    if responsible_account_id is not KEEP or responsible_name is not KEEP:
        account_id, name = await _responsible(
            ctx,
            case,
            None if responsible_account_id is KEEP else responsible_account_id,
            "" if responsible_name in (KEEP, None) else responsible_name,
            v,
        )
        action.responsible_account_id, action.responsible_name = account_id, name
    v.raise_if_any()
    action.text = clean
    if due_on is not KEEP:
        action.due_on = due_on
    if done not in (KEEP, None) and bool(done) != (action.done_at is not None):
        action.done_at = ctx.now() if done else None
        action.done_by_account_id = actor if done else None
    await _flush(ctx)
    return action


async def record_progress(
    ctx: core.ServiceContext,
    goal_id: int,
    *,
    on: date | None = None,
    status: str | None = None,
    percent: int | None = None,
    note: str = "",
) -> GoalProgress:
    """A dated progress entry of a goal: a status, a percentage, or both (a percentage alone implies the
    status: 0 not started, 100 achieved, in progress between). The goal shows its latest entry's."""
    goal, _plan_row, case = await _goal(ctx, goal_id, ("input", "goalId"))
    actor = _plan_editor(ctx, case, ("input", "goalId"))
    v = core.Validator()
    day = on or today(ctx)
    v.check(day <= today(ctx), ("input", "on"), "OUT_OF_RANGE", "Progress is not recorded for future days.")
    v.check(
        status is not None or percent is not None, ("input", "status"), "REQUIRED", "Give a status or a percentage."
    )
    if status is not None:
        v.check(status in GOAL_STATUSES, ("input", "status"), "INVALID_INPUT", "Unknown status.")
    if percent is not None:
        v.check(0 <= percent <= 100, ("input", "percent"), "OUT_OF_RANGE", "A percentage is 0 to 100.")
    clean = _text(v, note, ("input", "note"), required=False, limit=2000)
    v.raise_if_any()
    if status is None:
        assert percent is not None
        status = "not_started" if percent == 0 else "achieved" if percent == 100 else "in_progress"
    entry = GoalProgress(
        goal_id=goal.id,
        case_id=case.id,
        on_date=day,
        status=status,
        percent=percent,
        note=clean,
        recorded_by_account_id=actor,
        organization_id=case.organization_id,
    )
    ctx.session.add(entry)
    await _flush(ctx)
    # The goal shows the latest entry by date (an entry for an earlier day does not overwrite a later one).
    latest = await ctx.session.scalar(
        select(GoalProgress)
        .where(GoalProgress.goal_id == goal.id)
        .order_by(GoalProgress.on_date.desc(), GoalProgress.id.desc())
        .limit(1)
    )
    assert latest is not None
    goal.status, goal.percent = latest.status, latest.percent
    await _flush(ctx)
    return entry


# -- reviews --------------------------------------------------------------------------------------------------


async def raise_due_reviews(ctx: core.ServiceContext) -> int:
    """The job: raise the next review of every plan of a case being worked that has no open review, once its
    due date is `REVIEW_NOTICE_DAYS` away. Returns how many it raised. Safe to run twice or at once: the keys
    (one open review per plan; one per plan and due date) make a second insert do nothing."""
    now_day = today(ctx)
    last_done = (
        select(func.max(Review.done_at))
        .where(Review.plan_id == Plan.id, Review.done_at.is_not(None))
        .correlate(Plan)
        .scalar_subquery()
    )
    open_review = select(Review.id).where(Review.plan_id == Plan.id, Review.done_at.is_(None)).correlate(Plan)
    rows = (
        await ctx.session.execute(
            select(Plan.id, Plan.case_id, Plan.started_on, Plan.organization_id, Case.risk_level, last_done)
            .join(Case, Case.id == Plan.case_id)
            .where(Case.stage.in_(sorted(PLAN_STAGES)), ~open_review.exists())
            .order_by(Plan.id)
        )
    ).all()
    values = []
    for plan_id, case_id, started_on, organization_id, risk, done_at in rows:
        anchor = started_on if done_at is None else local_date(done_at)
        due = anchor + REVIEW_EVERY[risk]
        if due - timedelta(days=REVIEW_NOTICE_DAYS) <= now_day:
            values.append(
                {
                    "plan_id": plan_id,
                    "case_id": case_id,
                    "due_on": due,
                    "risk_level": risk,
                    "organization_id": organization_id,
                    "raised_at": ctx.now(),
                }
            )
    if not values:
        return 0
    raised = await ctx.session.scalars(insert(Review).values(values).on_conflict_do_nothing().returning(Review.id))
    return len(raised.all())


async def complete_review(ctx: core.ServiceContext, review_id: int, note: str = "") -> Review:
    """Mark a review done (the case's social worker, its supervisor or an administrator), with a note. The
    next one falls due an interval after today."""
    core.require(ctx, cases.MANAGE)
    review: Review = await core.get_row(
        ctx, Review, review_id, what=_("Review"), field=("input", "id"), lock=True, scope=_visible(ctx, Review.case_id)
    )
    case = await _case(ctx, review.case_id, ("input", "id"))
    _not_closed(case, ("input", "id"))
    if ctx.viewer.account_id is None or not (_is_worker(ctx, case) or cases.may_approve(ctx.viewer, case)):
        raise core.DomainError("FORBIDDEN", "The case's social worker, supervisor or an administrator reviews it.")
    if case.stage not in PLAN_STAGES:
        raise core.DomainError(
            "WRONG_STAGE", "Plans change while the case is in planning, intervention or evaluation.", ("input", "id")
        )
    if review.done_at is not None:
        raise core.DomainError("INVALID_TRANSITION", "This review is done already.", ("input", "id"))
    v = core.Validator()
    clean = _text(v, note, ("input", "note"), required=True, limit=5000)
    v.raise_if_any()
    review.done_at = ctx.now()
    review.done_by_account_id = ctx.viewer.account_id
    review.note = clean
    await _flush(ctx)
    return review


async def list_reviews(
    ctx: core.ServiceContext, f: ReviewFilter = ReviewFilter(), *, first: int = 50, after: str | None = None
) -> core.Page[Review]:
    """Reviews of the cases the caller sees, earliest due first. `overdue_only`: open, past due, of a case
    still being worked (a closed case's open review is nobody's work any more)."""
    core.require(ctx, cases.MANAGE)
    stmt = select(Review).where(_visible(ctx, Review.case_id))
    if f.case_id is not None:
        stmt = stmt.where(Review.case_id == f.case_id)
    if f.open_only or f.overdue_only:
        stmt = stmt.where(Review.done_at.is_(None))
    if f.overdue_only:
        stmt = stmt.where(
            Review.due_on < today(ctx),
            Review.case_id.in_(select(Case.id).where(Case.stage.in_(sorted(PLAN_STAGES)))),
        )
    if f.mine:
        me = ctx.viewer.account_id
        stmt = stmt.where(
            Review.case_id.in_(
                select(Case.id).where(or_(Case.social_worker_account_id == me, Case.supervisor_account_id == me))
            )
        )
    return await core.paginate(ctx, stmt, REVIEWS_BY_DUE, first=first, after=after)


async def plan_reviews_job(ctx: core.ServiceContext) -> None:
    """`core.Job("case_work.plan_reviews", …)`: run by the job runner for each organisation that enabled the
    plugin, acting for it (row-level security shows it that organisation's plans only)."""
    await raise_due_reviews(ctx)


PLAN_REVIEWS_JOB = core.Job(
    "case_work.plan_reviews",
    timedelta(hours=1),
    plan_reviews_job,
    "Raise plan reviews as they come due (every 30/60/90 days by risk).",
)


# -- reading --------------------------------------------------------------------------------------------------


async def plans_of_cases(ctx: core.ServiceContext, case_ids: Sequence[int]) -> list[Plan | None]:
    """Each case's plan, if the caller sees the case (one query for a page of cases)."""
    core.require(ctx, cases.MANAGE)
    rows = await ctx.session.scalars(select(Plan).where(Plan.case_id.in_(list(case_ids)), _visible(ctx, Plan.case_id)))
    by_case = {p.case_id: p for p in rows}
    return [by_case.get(pk) for pk in case_ids]


async def plan_of_case(ctx: core.ServiceContext, case_id: int) -> Plan | None:
    return (await plans_of_cases(ctx, [case_id]))[0]


async def _children(ctx: core.ServiceContext, model: Any, parent: Any, parent_ids: Sequence[int]) -> list[list[Any]]:
    core.require(ctx, cases.MANAGE)
    rows = await ctx.session.scalars(
        select(model).where(parent.in_(list(parent_ids)), _visible(ctx, model.case_id)).order_by(parent, model.id)
    )
    grouped: dict[int, list[Any]] = {pk: [] for pk in parent_ids}
    for row in rows:
        grouped[getattr(row, parent.key)].append(row)
    return [grouped[pk] for pk in parent_ids]


async def goals_of_plans(ctx: core.ServiceContext, plan_ids: Sequence[int]) -> list[list[Goal]]:
    return await _children(ctx, Goal, Goal.plan_id, plan_ids)


async def actions_of_goals(ctx: core.ServiceContext, goal_ids: Sequence[int]) -> list[list[Action]]:
    return await _children(ctx, Action, Action.goal_id, goal_ids)


async def needs_of_assessments(ctx: core.ServiceContext, ids: Sequence[int]) -> list[list[AssessmentNeed]]:
    return await _children(ctx, AssessmentNeed, AssessmentNeed.assessment_id, ids)


async def list_assessments(
    ctx: core.ServiceContext, case_id: int, *, first: int = 50, after: str | None = None
) -> core.Page[Assessment]:
    """A case's assessments, newest first (none for a case the caller does not see)."""
    core.require(ctx, cases.MANAGE)
    stmt = select(Assessment).where(Assessment.case_id == case_id, _visible(ctx, Assessment.case_id))
    return await core.paginate(ctx, stmt, ASSESSMENTS_NEWEST, first=first, after=after)


async def list_progress(
    ctx: core.ServiceContext, goal_id: int, *, first: int = 50, after: str | None = None
) -> core.Page[GoalProgress]:
    """A goal's progress entries, latest first."""
    core.require(ctx, cases.MANAGE)
    stmt = select(GoalProgress).where(GoalProgress.goal_id == goal_id, _visible(ctx, GoalProgress.case_id))
    return await core.paginate(ctx, stmt, PROGRESS_NEWEST, first=first, after=after)


async def rows_by_id(ctx: core.ServiceContext, model: type[M], pks: Sequence[int]) -> dict[int, M]:
    """node(id:): those of `pks` the caller sees (the case's scope); others are simply absent."""
    core.require(ctx, cases.MANAGE)
    if not pks:
        return {}
    rows = await ctx.session.scalars(
        select(model).where(model.id.in_(list(pks)), _visible(ctx, model.case_id))  # type: ignore[attr-defined]
    )
    return {row.id: row for row in rows}  # type: ignore[attr-defined]


# -- for the closure request ----------------------------------------------------------------------------------


async def check_assessment_recorded(ctx: core.ServiceContext, case: Case) -> None:
    """For case_work.services.request_approval (kind assessment): an assessment of the case's current stage
    visit is recorded, else ASSESSMENT_REQUIRED."""
    found = await ctx.session.scalar(
        select(Assessment.id).where(Assessment.case_id == case.id, Assessment.stage_seq == case.stage_seq).limit(1)
    )
    if found is None:
        raise core.DomainError(
            "ASSESSMENT_REQUIRED", "Record the assessment before asking for its approval.", ("input", "kind")
        )


async def goal_count(ctx: core.ServiceContext, case_id: int) -> int:
    """How many goals the case's plan has (0 without a plan)."""
    core.require(ctx, cases.MANAGE)
    count = await ctx.session.scalar(
        select(func.count())
        .select_from(Goal)
        .join(Plan, and_(Plan.id == Goal.plan_id, Plan.case_id == case_id))
        .where(_visible(ctx, Goal.case_id))
    )
    return int(count or 0)


async def check_closure_outcomes(ctx: core.ServiceContext, case_id: int, outcomes: Sequence[str]) -> None:
    """For case_work.services.request_approval (kind closure): one outcome per goal of the case's plan, in
    the order of the goals (caseWorkPlan.goals). OUTCOME_PER_GOAL otherwise. A case without a plan or goals
    states at least one outcome (the case's own), as the closure request requires already."""
    goals = await goal_count(ctx, case_id)
    if goals and len(outcomes) != goals:
        raise core.DomainError(
            "OUTCOME_PER_GOAL",
            "State one outcome for each of the plan's {count} goals.",
            ("input", "outcomes"),
            count=goals,
        )
