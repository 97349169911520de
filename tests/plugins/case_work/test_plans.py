"""Assessments and service plans at the service layer: scores and their risk consequence, the goal / action /
progress lifecycle, edits refused by stage and after closure (service and raw SQL), dates beyond the planned
end, the review job (intervals on a moved clock, once per due date, also under real concurrency), overdue
reviews, and who sees a plan."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from core import jobs
from core.database import create_sessionmaker
from core.errors import DomainError
from core.services.common import constraint_name
from core.services.context import SYSTEM, ServiceContext, Viewer
from core.settings import Settings
from plugins.case_work import services as cases
from plugins.case_work.plans import services
from plugins.case_work.plans.models import (
    DOMAINS,
    Action,
    Assessment,
    AssessmentNeed,
    Goal,
    GoalProgress,
    Plan,
    Review,
)
from schema.context import AppState
from tests.plugins.case_work.conftest import CaseWorld

PLAN_MODELS = (Assessment, AssessmentNeed, Plan, Goal, Action, GoalProgress, Review)


def needs(**scores: int) -> list[services.NeedInput]:
    """Every domain, 0 unless given."""
    return [services.NeedInput(d, scores.get(d, 0), f"{d}说明") for d in DOMAINS]


async def plan_counts(cw: CaseWorld) -> tuple[int, ...]:
    """Rows of every plan table, of every organisation (for "nothing written")."""
    everyone = Viewer(label="count", role="platform_admin")
    async with create_sessionmaker(cw.engine)() as session, session.begin():
        ServiceContext(session=session, viewer=everyone)
        return tuple([await session.scalar(select(func.count()).select_from(m)) or 0 for m in PLAN_MODELS])


def today(cw: CaseWorld) -> date:
    return services.local_date(cw.clock())


async def planned_case(cw: CaseWorld, *, risk: str = "low", end_in: int | None = 120) -> tuple[int, int]:
    """A case in planning with a plan (planned end `end_in` days ahead): (case id, plan id)."""
    case_id = await cw.open(risk=risk)
    await cw.bring_to(case_id, "planning")
    end = None if end_in is None else today(cw) + timedelta(days=end_in)
    plan = await cw.call("sw", services.create_plan, case_id, end)
    return case_id, plan.id


async def _raw(cw: CaseWorld, who: str, sql: str, **params: object) -> str | None:
    """`sql` as `who` through the app role (row-level security on); the refusing constraint, or None."""
    try:
        async with cw.as_(who) as ctx:
            await ctx.session.execute(text(sql), params)
    except DBAPIError as exc:
        return constraint_name(exc) or str(getattr(exc.orig, "sqlstate", "") or exc.orig)
    return None


# -- assessment ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scores", "implied"),
    [
        ({}, "low"),
        ({"health": 2, "housing": 2, "finances": 2, "safety": 2}, "low"),  # total 8
        ({"health": 2, "housing": 2, "finances": 2, "safety": 2, "daily_living": 1}, "medium"),  # total 9
        ({"health": 3}, "medium"),  # one serious need
        ({"safety": 4}, "high"),  # one critical need
        (dict.fromkeys(DOMAINS[:6], 2) | {"mental_wellbeing": 3}, "medium"),  # total 15, a serious need
        (dict.fromkeys(DOMAINS[:5], 3) | {"safety": 1}, "high"),  # total 16
    ],
)
async def test_assessment_scores_imply_a_risk_level(cw: CaseWorld, scores: dict[str, int], implied: str) -> None:
    # given a low-risk case in assessment
    case_id = await cw.open(risk="low")
    await cw.bring_to(case_id, "assessment")
    # when its social worker records the scores
    a = await cw.call(
        "sw", services.record_assessment, case_id, needs(**scores), strengths=["子女关心"], risks=["独居"]
    )
    # then the total, highest and implied risk follow the rule, and the case's risk is raised to it
    total, highest = sum(scores.values()), max(scores.values(), default=0)
    assert (a.total_score, a.highest_score, a.implied_risk) == (total, highest, implied)
    assert (a.risk_before, a.risk_after, (await cw.case(case_id)).risk_level) == ("low", implied, implied)


async def test_an_assessment_that_implies_high_risk_puts_the_case_behind_the_approval_gate(cw: CaseWorld) -> None:
    # given a medium-risk case in assessment
    case_id = await cw.open(risk="medium")
    await cw.bring_to(case_id, "assessment")
    # when an assessment finds a critical safety need
    await cw.call("sw", services.record_assessment, case_id, needs(safety=4, health=2))
    # then the case is high risk, and planning needs an approved assessment (service and database agree)
    assert (await cw.case(case_id)).risk_level == "high"
    assert await cw.refused("sw", cases.advance, case_id, "planning") == "APPROVAL_REQUIRED"
    # and once approved, no assessment is recorded over the approved one
    await cw.approve(case_id, "assessment")
    assert await cw.refused("sw", services.record_assessment, case_id, needs()) == "INVALID_TRANSITION"
    assert (await cw.call("sw", cases.advance, case_id, "planning")).stage == "planning"


async def test_a_milder_assessment_only_suggests_a_lower_risk(cw: CaseWorld) -> None:
    # given a high-risk case in assessment
    case_id = await cw.open(risk="high")
    await cw.bring_to(case_id, "assessment")
    # when the scores imply low risk
    a = await cw.call("sw", services.record_assessment, case_id, needs(health=1))
    # then the assessment says so, but the case stays high (and behind the approval gate)
    assert (a.implied_risk, a.risk_after, (await cw.case(case_id)).risk_level) == ("low", "high", "high")
    assert await cw.refused("sw", cases.advance, case_id, "planning") == "APPROVAL_REQUIRED"


async def test_an_assessment_is_refused_with_codes_and_nothing_written(cw: CaseWorld) -> None:
    case_id = await cw.open(risk="low")
    before = await plan_counts(cw)
    # at intake: not the assessment stage
    assert await cw.refused("sw", services.record_assessment, case_id, needs()) == "WRONG_STAGE"
    await cw.bring_to(case_id, "assessment")
    # a domain missing, a score out of range
    assert await cw.refused("sw", services.record_assessment, case_id, needs()[:-1]) == "REQUIRED"
    assert await cw.refused("sw", services.record_assessment, case_id, needs(health=5)) == "OUT_OF_RANGE"
    # the supervisor and an administrator see the case but do not record its assessment; another worker
    # and another organisation do not even see it
    assert await cw.refused("sup", services.record_assessment, case_id, needs(safety=4)) == "FORBIDDEN"
    assert await cw.refused("admin", services.record_assessment, case_id, needs(safety=4)) == "FORBIDDEN"
    assert await cw.refused("sw2", services.record_assessment, case_id, needs(safety=4)) == "NOT_FOUND"
    assert await cw.refused("admin_b", services.record_assessment, case_id, needs(safety=4)) == "NOT_FOUND"
    assert await cw.refused("volunteer", services.record_assessment, case_id, needs()) == "FORBIDDEN"
    # then nothing was written, and the risk level did not move
    assert await plan_counts(cw) == before
    assert (await cw.case(case_id)).risk_level == "low"


async def test_assessments_are_kept_as_written(cw: CaseWorld) -> None:
    case_id = await cw.open(risk="low")
    await cw.bring_to(case_id, "assessment")
    a = await cw.call("sw", services.record_assessment, case_id, needs(health=2))
    assert await _raw(cw, "sw", "UPDATE case_work_assessments SET total_score = 0") == "case_work_append_only"
    assert await _raw(cw, "sw", "UPDATE case_work_assessment_needs SET score = 0") == "case_work_append_only"
    assert await _raw(cw, "sw", "DELETE FROM case_work_assessment_needs") == "case_work_append_only"
    # and after the case moved on, no assessment is slipped in by raw SQL either
    await cw.call("sw", cases.advance, case_id, "planning")
    sql = (
        "INSERT INTO case_work_assessments (case_id, stage_seq, total_score, highest_score, implied_risk, "
        "risk_before, risk_after, recorded_by_account_id) VALUES (:c, 2, 0, 0, 'low', 'low', 'low', :sw)"
    )
    assert await _raw(cw, "sw", sql, c=case_id, sw=cw.ids["sw"]) == "case_work_assessment_stage"
    assert a.id is not None


# -- goals, actions, progress -------------------------------------------------------------------------------------


async def test_goals_actions_and_progress_from_planning_to_evaluation(cw: CaseWorld) -> None:
    # given a case in planning with a plan ending in 120 days
    case_id, plan_id = await planned_case(cw)
    day = today(cw)
    # when the worker adds a goal with two actions (one for a colleague, one for an outside party)
    goal = await cw.call("sw", services.add_goal, plan_id, "每周两次送餐", "daily_living", day + timedelta(days=60))
    mine = await cw.call(
        "sw", services.add_action, goal.id, "联系助餐点", responsible_account_id=cw.ids["sw2"], due_on=day
    )
    theirs = await cw.call(
        "sw", services.add_action, goal.id, "社区食堂配送", responsible_name="碑林区助餐中心", due_on=day + timedelta(7)
    )
    await cw.call("sw", cases.advance, case_id, "intervention")
    # and records progress, marks an action done, changes the goal
    await cw.call("sw", services.record_progress, goal.id, percent=40, note="已送餐三周")
    done = await cw.call("sw", services.update_action, mine.id, done=True)
    cw.clock.now += timedelta(days=3)
    await cw.call("sw", services.record_progress, goal.id, status="in_progress", percent=70)
    # an entry for an earlier day does not overwrite the latest
    await cw.call("sw", services.record_progress, goal.id, on=day + timedelta(days=1), percent=50)
    changed = await cw.call("sw", services.update_goal, goal.id, text="每周三次送餐", target_date=None)
    await cw.call("sw", cases.advance, case_id, "evaluation")
    achieved = await cw.call("sw", services.record_progress, goal.id, percent=100)
    # then the goal shows its latest entry, the actions their state, and everything is read back by the team
    assert (achieved.status, done.done_at is not None, done.done_by_account_id) == ("achieved", True, cw.ids["sw"])
    assert (changed.text, changed.target_date) == ("每周三次送餐", None)
    async with cw.as_("sup") as ctx:
        [goals] = await services.goals_of_plans(ctx, [plan_id])
        [actions] = await services.actions_of_goals(ctx, [goal.id])
        page = await services.list_progress(ctx, goal.id)
    assert [(g.text, g.status, g.percent) for g in goals] == [("每周三次送餐", "achieved", 100)]
    assert [(a.responsible_account_id, a.responsible_name, a.done_at is not None) for a in actions] == [
        (cw.ids["sw2"], "", True),
        (None, "碑林区助餐中心", False),
    ]
    assert [(p.status, p.percent) for p in page.items] == [
        ("achieved", 100),
        ("in_progress", 70),
        ("in_progress", 50),
        ("in_progress", 40),
    ]
    assert theirs.responsible_name == "碑林区助餐中心"


async def test_goal_action_and_progress_input_refused_with_codes(cw: CaseWorld) -> None:
    _case_id, plan_id = await planned_case(cw)
    goal = await cw.call("sw", services.add_goal, plan_id, "就医陪同", "health")
    before = await plan_counts(cw)
    day = today(cw)
    assert await cw.refused("sw", services.add_goal, plan_id, " ", "health") == "REQUIRED"
    assert await cw.refused("sw", services.add_goal, plan_id, "x", "astrology") == "INVALID_INPUT"
    assert await cw.refused("sw", services.add_goal, plan_id, "x", "health", day - timedelta(days=1)) == "IN_PAST"
    # an action names one responsible: an account of the organisation or an outside party
    assert await cw.refused("sw", services.add_action, goal.id, "x") == "INVALID_INPUT"
    both = {"responsible_account_id": cw.ids["sw2"], "responsible_name": "外单位"}
    assert await cw.refused("sw", services.add_action, goal.id, "x", **both) == "INVALID_INPUT"
    other_org = {"responsible_account_id": cw.ids["sw_b"]}
    assert await cw.refused("sw", services.add_action, goal.id, "x", **other_org) == "NOT_FOUND"
    # progress needs a status or a percentage, not in the future
    assert await cw.refused("sw", services.record_progress, goal.id) == "REQUIRED"
    assert await cw.refused("sw", services.record_progress, goal.id, percent=101) == "OUT_OF_RANGE"
    future = day + timedelta(days=1)
    assert await cw.refused("sw", services.record_progress, goal.id, on=future, percent=5) == "OUT_OF_RANGE"
    # the supervisor reads the plan but does not edit it; another worker does not see it
    assert await cw.refused("sup", services.add_goal, plan_id, "x", "health") == "FORBIDDEN"
    assert await cw.refused("sw2", services.add_goal, plan_id, "x", "health") == "NOT_FOUND"
    assert await plan_counts(cw) == before


# -- stages and closure -------------------------------------------------------------------------------------------


async def _try_every_edit(cw: CaseWorld, case_id: int, plan_id: int, goal_id: int, action_id: int) -> set[str]:
    """The codes every plan edit answers (the arguments would be valid in planning)."""
    codes = set()
    codes.add(await cw.refused("sw", services.create_plan, case_id))
    codes.add(await cw.refused("sw", services.update_plan, plan_id, today(cw) + timedelta(days=100)))
    codes.add(await cw.refused("sw", services.add_goal, plan_id, "新目标", "housing"))
    codes.add(await cw.refused("sw", services.update_goal, goal_id, text="改"))
    codes.add(await cw.refused("sw", services.add_action, goal_id, "新行动", responsible_name="街道"))
    codes.add(await cw.refused("sw", services.update_action, action_id, done=True))
    codes.add(await cw.refused("sw", services.record_progress, goal_id, percent=10))
    return codes


async def test_plan_edits_are_refused_after_closure_and_outside_the_plan_stages(cw: CaseWorld) -> None:
    # given a plan with a goal and an action, and the case back in assessment after a closure and reopening
    case_id, plan_id = await planned_case(cw)
    goal = await cw.call("sw", services.add_goal, plan_id, "居家安全改造", "housing")
    action = await cw.call("sw", services.add_action, goal.id, "申请扶手安装", responsible_name="街道办")
    for to in ("intervention", "evaluation"):
        await cw.call("sw", cases.advance, case_id, to)
    await cw.approve(case_id, "closure")
    await cw.call("sw", cases.advance, case_id, "closure", "目标达成")
    before = await plan_counts(cw)
    # when the worker tries every edit on the closed case
    closed = await _try_every_edit(cw, case_id, plan_id, goal.id, action.id)
    # then each is CASE_CLOSED (create_plan: the plan exists, but the closure is said first)
    assert closed == {"CASE_CLOSED"}
    assert await plan_counts(cw) == before
    # and once reopened (back in assessment), edits wait for planning
    await cw.call("sup", cases.reopen, case_id, "再次求助")
    assert await _try_every_edit(cw, case_id, plan_id, goal.id, action.id) == {"WRONG_STAGE"}
    assert await plan_counts(cw) == before


async def test_a_plan_is_not_started_before_planning(cw: CaseWorld) -> None:
    case_id = await cw.open()
    assert await cw.refused("sw", services.create_plan, case_id) == "WRONG_STAGE"
    await cw.bring_to(case_id, "assessment")
    assert await cw.refused("sw", services.create_plan, case_id) == "WRONG_STAGE"
    assert await plan_counts(cw) == (0,) * len(PLAN_MODELS)


async def test_raw_sql_cannot_change_a_closed_cases_plan(cw: CaseWorld) -> None:
    # given a closed case with a plan, a goal, an action, progress and a review
    case_id, plan_id = await planned_case(cw)
    goal = await cw.call("sw", services.add_goal, plan_id, "情绪支持", "mental_wellbeing")
    await cw.call("sw", services.add_action, goal.id, "每周电话", responsible_name="心理热线")
    await cw.call("sw", services.record_progress, goal.id, percent=10)
    for to in ("intervention", "evaluation"):
        await cw.call("sw", cases.advance, case_id, to)
    await cw.approve(case_id, "closure")
    await cw.call("sw", cases.advance, case_id, "closure", "结案")
    # when an administrator of the organisation writes to it directly (as the app role, under RLS)
    sw = cw.ids["sw"]
    attempts = {
        "plan": ("UPDATE case_work_plans SET planned_end = NULL", {}),
        "goal": ("UPDATE case_work_goals SET text = '改'", {}),
        "new goal": (
            "INSERT INTO case_work_goals (plan_id, case_id, text, domain) VALUES (:p, :c, '新', 'other')",
            {"p": plan_id, "c": case_id},
        ),
        "action": ("UPDATE case_work_actions SET done_at = now(), done_by_account_id = :sw", {"sw": sw}),
        "review": (
            "INSERT INTO case_work_reviews (plan_id, case_id, due_on, risk_level) VALUES (:p, :c, '2030-01-01', 'low')",
            {"p": plan_id, "c": case_id},
        ),
        "delete": ("DELETE FROM case_work_actions", {}),
    }
    got = {name: await _raw(cw, "admin", sql, **params) for name, (sql, params) in attempts.items()}
    # then the database refuses each (a delete is refused whatever the stage: nothing of a plan is deleted)
    assert got == {
        "plan": "case_work_case_closed",
        "goal": "case_work_case_closed",
        "new goal": "case_work_case_closed",
        "action": "case_work_case_closed",
        "review": "case_work_case_closed",
        "delete": "case_work_append_only",
    }


async def test_raw_sql_cannot_write_a_plan_outside_the_plan_stages(cw: CaseWorld) -> None:
    case_id = await cw.open()
    await cw.bring_to(case_id, "assessment")
    sql = "INSERT INTO case_work_plans (case_id, started_on, created_by_account_id) VALUES (:c, CURRENT_DATE, :sw)"
    assert await _raw(cw, "sw", sql, c=case_id, sw=cw.ids["sw"]) == "case_work_plan_stage"


# -- planned end --------------------------------------------------------------------------------------------------


async def test_nothing_is_due_after_the_planned_end(cw: CaseWorld) -> None:
    # given a plan ending in 30 days, with a goal due in 20
    _case_id, plan_id = await planned_case(cw, end_in=30)
    day = today(cw)
    end = day + timedelta(days=30)
    goal = await cw.call("sw", services.add_goal, plan_id, "办理低保", "finances", day + timedelta(days=20))
    action = await cw.call("sw", services.add_action, goal.id, "准备材料", responsible_name="社区", due_on=end)
    before = await plan_counts(cw)
    late = end + timedelta(days=1)
    # when goals and actions are dated after it, or the end is moved before them
    codes = [
        await cw.refused("sw", services.add_goal, plan_id, "x", "finances", late),
        await cw.refused("sw", services.update_goal, goal.id, target_date=late),
        await cw.refused("sw", services.add_action, goal.id, "x", responsible_name="社区", due_on=late),
        await cw.refused("sw", services.update_action, action.id, due_on=late),
        await cw.refused("sw", services.update_plan, plan_id, day + timedelta(days=25)),
    ]
    # then each is BEYOND_PLANNED_END and nothing changed
    assert codes == ["BEYOND_PLANNED_END"] * 5
    assert await plan_counts(cw) == before
    async with cw.as_("sw") as ctx:
        assert (await ctx.session.get(Plan, plan_id)).planned_end == end  # type: ignore[union-attr]
        assert (await ctx.session.get(Goal, goal.id)).target_date == day + timedelta(days=20)  # type: ignore[union-attr]
    # and the database refuses the same written directly
    assert await _raw(cw, "sw", "UPDATE case_work_goals SET target_date = :d", d=late) == "case_work_beyond_planned_end"
    assert await _raw(cw, "sw", "UPDATE case_work_actions SET due_on = :d", d=late) == "case_work_beyond_planned_end"
    early = day + timedelta(days=10)
    assert (
        await _raw(cw, "sw", "UPDATE case_work_plans SET planned_end = :d", d=early) == "case_work_beyond_planned_end"
    )
    # while a later end, or none, frees them
    await cw.call("sw", services.update_plan, plan_id, None)
    assert (await cw.call("sw", services.update_goal, goal.id, target_date=late)).target_date == late


# -- reviews ------------------------------------------------------------------------------------------------------


def _job_state(cw: CaseWorld) -> AppState:
    return AppState(settings=Settings(), sessionmaker=create_sessionmaker(cw.engine), clock=cw.clock)


async def _run_job(cw: CaseWorld) -> None:
    """One run of the registered job for organisation A, through the job runner (its lock, its due check,
    its system caller acting for A)."""
    await jobs.run_job(_job_state(cw), cw.ids["org_a"], services.PLAN_REVIEWS_JOB)


async def _reviews(cw: CaseWorld, plan_id: int) -> list[tuple[date, str, bool]]:
    async with cw.as_("admin") as ctx:
        rows = await ctx.session.scalars(select(Review).where(Review.plan_id == plan_id).order_by(Review.due_on))
        return [(r.due_on, r.risk_level, r.done_at is not None) for r in rows]


@pytest.mark.parametrize(("risk", "days"), [("high", 30), ("medium", 60), ("low", 90)])
async def test_the_job_raises_reviews_at_the_interval_of_the_risk(cw: CaseWorld, risk: str, days: int) -> None:
    # given a plan started today on a case of that risk (high: approved through the gate)
    case_id, plan_id = await planned_case(cw, risk=risk, end_in=None)
    start = today(cw)
    notice = timedelta(days=services.REVIEW_NOTICE_DAYS)
    # when the job runs a day before the review's notice period, then on its first day
    cw.clock.now += timedelta(days=days) - notice - timedelta(days=1)
    await _run_job(cw)
    assert await _reviews(cw, plan_id) == []
    cw.clock.now += timedelta(days=1)
    await _run_job(cw)
    # then one review is raised, due `days` after the start
    first_due = start + timedelta(days=days)
    assert await _reviews(cw, plan_id) == [(first_due, risk, False)]
    # when the job runs again a week later, nothing more is raised (one open review, now overdue)
    cw.clock.now += timedelta(days=7)
    await _run_job(cw)
    assert len(await _reviews(cw, plan_id)) == 1
    # when the review is done (three days late), the next falls due `days` after that
    cw.clock.now += timedelta(days=3)
    [review_id] = [
        r.id for r in (await cw.call("sw", services.list_reviews, services.ReviewFilter(case_id=case_id))).items
    ]
    await cw.call("sup", services.complete_review, review_id, "评估目标进展")
    cw.clock.now += timedelta(days=days) - notice
    await _run_job(cw)
    done_day = first_due + timedelta(days=3)
    assert await _reviews(cw, plan_id) == [(first_due, risk, True), (done_day + timedelta(days=days), risk, False)]


async def test_the_job_raises_a_review_once_when_run_twice(cw: CaseWorld) -> None:
    # given a high-risk plan whose review is in its notice period
    _case_id, plan_id = await planned_case(cw, risk="high", end_in=None)
    cw.clock.now += timedelta(days=25)
    # when the job's work runs twice in a row (bypassing the runner's once-per-hour lock)
    system = replace(SYSTEM, organization_id=cw.ids["org_a"])
    counts = []
    for _ in range(2):
        async with create_sessionmaker(cw.engine)() as session, session.begin():
            counts.append(
                await services.raise_due_reviews(ServiceContext(session=session, viewer=system, clock=cw.clock))
            )
    # then it raised the review once
    assert counts == [1, 0]
    assert len(await _reviews(cw, plan_id)) == 1


async def test_the_job_raises_a_review_once_when_two_runs_overlap(cw: CaseWorld) -> None:
    # given a high-risk plan whose review is in its notice period, and two connections already open
    _case_id, plan_id = await planned_case(cw, risk="high", end_in=None)
    cw.clock.now += timedelta(days=25)
    system = replace(SYSTEM, organization_id=cw.ids["org_a"])
    maker = create_sessionmaker(cw.engine)
    first, second, watcher = maker(), maker(), maker()
    try:
        contexts = []
        for session in (first, second, watcher):
            contexts.append(ServiceContext(session=session, viewer=system, clock=cw.clock))
            await session.begin()
            await session.execute(text("SELECT 1"))  # connections taken and warm before the race
        # when the first run inserts its review and holds its transaction open
        assert await services.raise_due_reviews(contexts[0]) == 1
        # and the second run starts: it does not see the uncommitted review, so it tries to insert the same
        second_run = asyncio.ensure_future(services.raise_due_reviews(contexts[1]))
        waited = False
        for _ in range(500):  # until the second is seen waiting on the first's key (a poll, not a clock)
            await asyncio.sleep(0.01)
            # pg_stat_activity is read once per transaction unless its snapshot is cleared
            await watcher.execute(text("SELECT pg_stat_clear_snapshot()"))
            waiting = await watcher.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO case_work_reviews%'"
                )
            )
            if waiting:
                waited = True
                break
        # then the first commits, and the second run, released, inserts nothing
        await first.commit()
        assert await second_run == 0
        await second.commit()
        assert waited, "the second run never waited on the first's key: the runs did not overlap"
    finally:
        for session in (first, second, watcher):
            await session.close()
    assert len(await _reviews(cw, plan_id)) == 1


async def test_overdue_reviews_are_listed_for_the_cases_still_worked(cw: CaseWorld) -> None:
    # given two high-risk plans whose reviews were raised, one of them done
    case_a, _plan_a = await planned_case(cw, risk="high", end_in=None)
    case_b, _plan_b = await planned_case(cw, risk="high", end_in=None)
    cw.clock.now += timedelta(days=25)
    await _run_job(cw)
    reviews = (await cw.call("sw", services.list_reviews, services.ReviewFilter(open_only=True))).items
    assert sorted(r.case_id for r in reviews) == sorted([case_a, case_b])
    # when the due date passes with one review done
    review_b = next(r.id for r in reviews if r.case_id == case_b)
    await cw.call("sw", services.complete_review, review_b, "已复核")
    cw.clock.now += timedelta(days=5)  # the due date itself: not overdue yet
    not_yet = await cw.call("sw", services.list_reviews, services.ReviewFilter(overdue_only=True))
    cw.clock.now += timedelta(days=1)
    overdue = await cw.call("sw", services.list_reviews, services.ReviewFilter(overdue_only=True, mine=True))
    # then only the open one past its due date is overdue; for its worker and the supervisor, not for others
    assert not_yet.items == []
    assert [r.case_id for r in overdue.items] == [case_a]
    assert services.is_overdue(overdue.items[0], today(cw))
    sup = await cw.call("sup", services.list_reviews, services.ReviewFilter(overdue_only=True))
    assert [r.case_id for r in sup.items] == [case_a]
    for who in ("sw2", "admin_b"):
        assert (await cw.call(who, services.list_reviews, services.ReviewFilter(overdue_only=True))).items == []
    # and a closed case's open review is nobody's overdue work (it cannot be done any more)
    for to in ("intervention", "evaluation"):
        await cw.call("sw", cases.advance, case_a, to)
    await cw.approve(case_a, "closure")
    await cw.call("sw", cases.advance, case_a, "closure", "结案")
    assert (await cw.call("sw", services.list_reviews, services.ReviewFilter(overdue_only=True))).items == []


# -- closure outcomes ---------------------------------------------------------------------------------------------


async def test_a_closure_states_one_outcome_per_goal(cw: CaseWorld) -> None:
    case_id, plan_id = await planned_case(cw)
    await cw.call("sw", services.add_goal, plan_id, "目标一", "health")
    await cw.call("sw", services.add_goal, plan_id, "目标二", "housing")
    assert await cw.refused("sw", services.check_closure_outcomes, case_id, ["只写了一个"]) == "OUTCOME_PER_GOAL"
    await cw.call("sw", services.check_closure_outcomes, case_id, ["达成", "部分达成"])
    # a case without goals: any outcome the closure request states
    other = await cw.open()
    await cw.call("sw", services.check_closure_outcomes, other, ["未开展服务"])


# -- visibility ---------------------------------------------------------------------------------------------------

SEES = {"sw": True, "sup": True, "admin": True, "padmin": True, "sw2": False, "admin_b": False, "sup_b": False}
FORBIDDEN = ("volunteer", "head", "counselor")


async def test_who_sees_a_plan(cw: CaseWorld) -> None:
    # given a plan with a goal, an action, progress, an assessment and a review
    case_id = await cw.open(risk="high")
    await cw.bring_to(case_id, "assessment")
    assessment = await cw.call("sw", services.record_assessment, case_id, needs(health=2))
    await cw.approve(case_id, "assessment")
    await cw.call("sw", cases.advance, case_id, "planning")
    plan = await cw.call("sw", services.create_plan, case_id, None)
    goal = await cw.call("sw", services.add_goal, plan.id, "按时服药", "health")
    action = await cw.call("sw", services.add_action, goal.id, "药盒提醒", responsible_name="家属")
    progress = await cw.call("sw", services.record_progress, goal.id, percent=20)
    cw.clock.now += timedelta(days=25)
    await _run_job(cw)
    # when each caller reads them by every route
    got: dict[str, Any] = {}
    for who in [*SEES, *FORBIDDEN]:
        async with cw.as_(who) as ctx:
            try:
                found = (
                    await services.plan_of_case(ctx, case_id) is not None,
                    [len(x) for x in await services.goals_of_plans(ctx, [plan.id])],
                    [len(x) for x in await services.actions_of_goals(ctx, [goal.id])],
                    len((await services.list_progress(ctx, goal.id)).items),
                    len((await services.list_assessments(ctx, case_id)).items),
                    len((await services.list_reviews(ctx)).items),
                    [
                        len(await services.rows_by_id(ctx, model, [pk]))
                        for model, pk in (
                            (Plan, plan.id),
                            (Goal, goal.id),
                            (Action, action.id),
                            (GoalProgress, progress.id),
                            (Assessment, assessment.id),
                        )
                    ],
                )
            except DomainError as exc:
                found = exc.code
        got[who] = found
    # then the case team and the organisation's administrators see everything; another worker and another
    # organisation see nothing (as if it did not exist); roles without casework are FORBIDDEN
    everything = (True, [1], [1], 1, 1, 1, [1, 1, 1, 1, 1])
    nothing = (False, [0], [0], 0, 0, 0, [0, 0, 0, 0, 0])
    assert got == {
        **{who: everything if sees else nothing for who, sees in SEES.items()},
        **dict.fromkeys(FORBIDDEN, "FORBIDDEN"),
    }
