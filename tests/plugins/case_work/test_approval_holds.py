"""What an approval approved stays approved, and refusals say where and what (a hostile walkthrough's findings):

- an assessment approval needs a recorded assessment (ASSESSMENT_REQUIRED), by the service and the database;
- while a closure request is pending or approved the plan's content is frozen (INVALID_TRANSITION), and the
  step to closure re-checks one outcome per goal (OUTCOME_PER_GOAL), by the service and the database;
- an action's responsible account is active staff of the organisation;
- visits: a search spans at most max_range_days, and a visit is booked at most that far ahead;
- refusals name the input field that named the record; messages name stages by their standard names.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.errors import DomainError
from core.i18n import translate
from core.services.common import constraint_name
from plugins.case_work import services as cases
from plugins.case_work.notes import services as notes
from plugins.case_work.plans import services as plans
from plugins.case_work.plans.models import DOMAINS
from plugins.case_work.visits import services as visits
from tests.core.services.test_scheduling import at
from tests.plugins.case_work.conftest import CaseWorld
from tests.plugins.case_work.test_plans import plan_counts, planned_case, today
from tests.plugins.case_work.test_visits import Calendar, cal  # noqa: F401


async def _raw(cw: CaseWorld, who: str, sql: str, **params: object) -> str | None:
    """`sql` (statements separated by "; ") as `who` through the app role (row-level security on), in one
    transaction; the refusing constraint, or None."""
    try:
        async with cw.as_(who) as ctx:
            for statement in sql.split("; "):
                await ctx.session.execute(text(statement), params)
    except DBAPIError as exc:
        return constraint_name(exc) or str(exc.orig)
    return None


async def _refusal(cw: CaseWorld, who: str, fn: object, *args: object, **kwargs: object) -> tuple[str, tuple | None]:
    """(code, field) of the refusal."""
    with pytest.raises(DomainError) as err:
        await cw.call(who, fn, *args, **kwargs)  # type: ignore[arg-type]
    [error] = err.value.errors
    return error.code, error.field


# -- 1. an assessment approval approves a recorded assessment --------------------------------------------------


async def test_an_assessment_approval_is_not_requested_before_an_assessment(cw: CaseWorld) -> None:
    # given a high-risk case in assessment, nothing assessed yet
    case_id = await cw.open(risk="high")
    await cw.call("sw", cases.advance, case_id, "assessment")
    before = await cw.counts()
    # when its worker asks for the assessment's approval, then it is refused on `kind`, nothing written
    assert await _refusal(cw, "sw", cases.request_approval, case_id, "assessment", "高风险") == (
        "ASSESSMENT_REQUIRED",
        ("input", "kind"),
    )
    assert await cw.counts() == before
    # and the case can still be assessed, asked for and approved into planning
    await cw.call("sw", plans.record_assessment, case_id, [plans.NeedInput(d, 1) for d in DOMAINS])
    request = await cw.call("sw", cases.request_approval, case_id, "assessment", "高风险")
    await cw.call("sup", cases.decide_approval, request.id, True)
    assert (await cw.call("sw", cases.advance, case_id, "planning")).stage == "planning"


async def test_an_assessment_of_an_earlier_stage_visit_does_not_count(cw: CaseWorld) -> None:
    # given a case assessed, closed and reopened (back in assessment: a new stage visit)
    case_id = await cw.open()
    await cw.bring_to(case_id, "assessment")
    await cw.assess(case_id)
    for to in ("planning", "intervention", "evaluation"):
        await cw.call("sw", cases.advance, case_id, to)
    await cw.approve(case_id, "closure")
    await cw.call("sw", cases.advance, case_id, "closure", "结案")
    await cw.call("sup", cases.reopen, case_id, "再次求助")
    # then the old assessment does not stand for the new visit
    assert (await _refusal(cw, "sw", cases.request_approval, case_id, "assessment", "复评"))[0] == "ASSESSMENT_REQUIRED"


async def test_the_database_refuses_an_assessment_approval_without_an_assessment(cw: CaseWorld) -> None:
    case_id = await cw.open(risk="high")
    await cw.call("sw", cases.advance, case_id, "assessment")
    sql = (
        "INSERT INTO case_work_approvals (case_id, kind, status, stage_seq, requested_by_account_id) "
        "SELECT id, 'assessment', 'pending', stage_seq, social_worker_account_id FROM case_work_cases WHERE id = :c"
    )
    assert await _raw(cw, "sw", sql, c=case_id) == "case_work_assessment_required"
    await cw.assess(case_id)
    assert await _raw(cw, "sw", sql, c=case_id) is None


# -- 2. the plan a closure approves --------------------------------------------------------------------------


async def _in_evaluation_with_goals(cw: CaseWorld, n: int = 3) -> tuple[int, int, list[int], int]:
    """A case in evaluation with a plan of `n` goals, one action: (case, plan, goals, action)."""
    case_id, plan_id = await planned_case(cw)
    goals = [(await cw.call("sw", plans.add_goal, plan_id, f"目标{i}", "health")).id for i in range(n)]
    action = await cw.call("sw", plans.add_action, goals[0], "送药", responsible_name="邻居")
    for to in ("intervention", "evaluation"):
        await cw.call("sw", cases.advance, case_id, to)
    return case_id, plan_id, goals, action.id


@pytest.mark.parametrize("decided", [False, True], ids=["pending", "approved"])
async def test_the_plan_is_frozen_while_its_closure_is_asked_for(cw: CaseWorld, decided: bool) -> None:
    # given a case in evaluation with three goals and a closure request stating three outcomes
    case_id, plan_id, goals, action_id = await _in_evaluation_with_goals(cw)
    request = await cw.call("sw", cases.request_approval, case_id, "closure", "总结", ["一", "二", "三"])
    if decided:
        await cw.call("sup", cases.decide_approval, request.id, True)
    before = await plan_counts(cw)
    # when the worker edits the plan's content, then each edit is refused on the field that named the row
    later = today(cw) + timedelta(days=10)
    refused = {
        "add goal": await _refusal(cw, "sw", plans.add_goal, plan_id, "第四个目标", "health"),
        "update goal": await _refusal(cw, "sw", plans.update_goal, goals[1], text="改写"),
        "add action": await _refusal(cw, "sw", plans.add_action, goals[0], "新行动", responsible_name="街道"),
        "update action": await _refusal(cw, "sw", plans.update_action, action_id, due_on=later),
        "update plan": await _refusal(cw, "sw", plans.update_plan, plan_id, later + timedelta(days=30)),
    }
    assert refused == {
        "add goal": ("INVALID_TRANSITION", ("input", "planId")),
        "update goal": ("INVALID_TRANSITION", ("input", "id")),
        "add action": ("INVALID_TRANSITION", ("input", "goalId")),
        "update action": ("INVALID_TRANSITION", ("input", "id")),
        "update plan": ("INVALID_TRANSITION", ("input", "id")),
    }
    assert await plan_counts(cw) == before
    # and recording the work done goes on: an action done, a goal's progress
    assert (await cw.call("sw", plans.update_action, action_id, done=True)).done_at is not None
    await cw.call("sw", plans.record_progress, goals[0], percent=100)
    # and once approved, the case closes
    if decided:
        assert (await cw.call("sw", cases.advance, case_id, "closure")).stage == "closure"


async def test_after_going_back_to_intervention_the_plan_changes_again(cw: CaseWorld) -> None:
    # given an approved closure, then the case back in intervention (the approval no longer counts)
    case_id, plan_id, _goals, _action = await _in_evaluation_with_goals(cw, 1)
    await cw.approve(case_id, "closure")
    await cw.call("sw", cases.advance, case_id, "intervention", "还需介入")
    # then the plan is the worker's to change again
    assert (await cw.call("sw", plans.add_goal, plan_id, "新目标", "housing")).id


async def test_closure_re_checks_an_outcome_per_goal_in_the_service_and_the_database(
    cw: CaseWorld, owner_engine: AsyncEngine
) -> None:
    # given an approved closure request stating three outcomes for three goals, and a fourth goal written
    # around the services (as the walkthrough's bug allowed)
    case_id, plan_id, _goals, _action = await _in_evaluation_with_goals(cw)
    request = await cw.call("sw", cases.request_approval, case_id, "closure", "总结", ["一", "二", "三"])
    await cw.call("sup", cases.decide_approval, request.id, True)
    async with owner_engine.begin() as conn:  # the owner, every trigger off: a row from before the rule
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(
            text(
                "INSERT INTO case_work_goals (plan_id, case_id, text, domain, organization_id) "
                "SELECT id, case_id, '第四', 'other', organization_id FROM case_work_plans WHERE id = :p"
            ),
            {"p": plan_id},
        )
    before = await cw.counts()
    # when the worker closes the case, then the service refuses it on `to`, nothing written
    assert await _refusal(cw, "sw", cases.advance, case_id, "closure") == ("OUTCOME_PER_GOAL", ("input", "to"))
    assert await cw.counts() == before
    # and the database refuses the same step written directly (its history row first, then the case)
    step = (
        "INSERT INTO case_work_stage_changes (case_id, seq, from_stage, to_stage, actor) "
        "SELECT id, stage_seq + 1, 'evaluation', 'closure', 'x' FROM case_work_cases WHERE id = :c; "
        "UPDATE case_work_cases SET stage = 'closure', stage_seq = stage_seq + 1, closed_at = now() WHERE id = :c"
    )
    assert await _raw(cw, "sw", step, c=case_id) == "case_work_outcome_per_goal"
    assert (await cw.case(case_id)).stage == "evaluation"


async def test_the_database_freezes_the_plan_under_a_closure_request(cw: CaseWorld) -> None:
    case_id, plan_id, goals, action_id = await _in_evaluation_with_goals(cw)
    await cw.call("sw", cases.request_approval, case_id, "closure", "总结", ["一", "二", "三"])
    sw = cw.ids["sw"]
    attempts = {
        "plan": ("UPDATE case_work_plans SET planned_end = planned_end + 1 WHERE id = :p", {"p": plan_id}),
        "goal": ("UPDATE case_work_goals SET text = '改' WHERE id = :g", {"g": goals[0]}),
        "new goal": (
            "INSERT INTO case_work_goals (plan_id, case_id, text, domain) VALUES (:p, :c, '新', 'other')",
            {"p": plan_id, "c": case_id},
        ),
        "action": ("UPDATE case_work_actions SET responsible_name = '别人' WHERE id = :a", {"a": action_id}),
        "new action": (
            "INSERT INTO case_work_actions (goal_id, case_id, text, responsible_name) VALUES (:g, :c, '新', '街道')",
            {"g": goals[0], "c": case_id},
        ),
        "done": (
            "UPDATE case_work_actions SET done_at = now(), done_by_account_id = :sw WHERE id = :a",
            {"a": action_id, "sw": sw},
        ),
        "progress": ("UPDATE case_work_goals SET status = 'achieved', percent = 100 WHERE id = :g", {"g": goals[0]}),
    }
    got = {name: await _raw(cw, "sw", sql, **params) for name, (sql, params) in attempts.items()}
    frozen = "case_work_plan_under_closure"
    assert got == {
        "plan": frozen,
        "goal": frozen,
        "new goal": frozen,
        "action": frozen,
        "new action": frozen,
        "done": None,
        "progress": None,
    }


# -- 3. update_plan: left out keeps, null clears ------------------------------------------------------------------


async def test_updating_a_plan_without_a_planned_end_keeps_it(cw: CaseWorld) -> None:
    _case_id, plan_id = await planned_case(cw, end_in=90)
    end = today(cw) + timedelta(days=90)
    assert (await cw.call("sw", plans.update_plan, plan_id)).planned_end == end
    assert (await cw.call("sw", plans.update_plan, plan_id, plans.KEEP)).planned_end == end
    assert (await cw.call("sw", plans.update_plan, plan_id, None)).planned_end is None


# -- 4. an action's responsible person ----------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["volunteer", "head"])
async def test_an_action_is_not_given_to_someone_outside_the_staff(cw: CaseWorld, who: str) -> None:
    # given a goal of a confidential case's plan
    _case_id, plan_id = await planned_case(cw)
    goal = await cw.call("sw", plans.add_goal, plan_id, "按时服药", "health")
    action = await cw.call("sw", plans.add_action, goal.id, "送药", responsible_name="邻居")
    before = await plan_counts(cw)
    # when the worker names a volunteer's (or community head's) account responsible, then it is refused
    refused = await _refusal(cw, "sw", plans.add_action, goal.id, "送药", responsible_account_id=cw.ids[who])
    assert refused == ("INVALID_INPUT", ("input", "responsibleAccountId"))
    changed = await _refusal(cw, "sw", plans.update_action, action.id, responsible_account_id=cw.ids[who])
    assert changed == ("INVALID_INPUT", ("input", "responsibleAccountId"))
    assert await plan_counts(cw) == before
    # while staff of the organisation may be named
    for staff in ("sw2", "counselor", "admin"):
        named = await cw.call("sw", plans.add_action, goal.id, "跟进", responsible_account_id=cw.ids[staff])
        assert named.responsible_account_id == cw.ids[staff]


# -- 5. visits: bounded searches, a booking horizon ---------------------------------------------------------------


async def test_a_visits_search_spans_at_most_max_range_days(cw: CaseWorld) -> None:
    start = cw.clock.now
    wide = visits.VisitFilter(start_from=start, start_to=start + timedelta(days=367))
    assert await _refusal(cw, "sw", visits.list_visits, wide) == ("RANGE_TOO_LARGE", ("filter", "to"))
    tighter = visits.VisitFilter(start_from=start, start_to=start + timedelta(days=8))
    assert (await _refusal(cw, "sw", visits.list_visits, tighter, max_days=7))[0] == "RANGE_TOO_LARGE"
    # the widest allowed span, and one bound alone, are searched
    year = visits.VisitFilter(start_from=start, start_to=start + timedelta(days=366))
    assert (await cw.call("sw", visits.list_visits, year)).items == []
    assert (await cw.call("sw", visits.list_visits, visits.VisitFilter(start_from=start))).items == []


async def test_a_visit_is_booked_at_most_max_range_days_ahead(cal: Calendar) -> None:  # noqa: F811
    cw = cal.cw
    case_id = await cw.open()
    far = at(cal.monday + timedelta(days=7 * 60), 10)  # over a year ahead
    before = await cal.counts()
    with pytest.raises(DomainError) as err:
        await cal.book(case_id, far)
    assert [(e.code, e.field) for e in err.value.errors] == [("OUT_OF_RANGE", ("input", "start"))]
    assert await cal.counts() == before
    # and a visit is not moved there either
    visit = await cal.book(case_id, at(cal.monday, 10))
    with pytest.raises(DomainError) as err:
        await cw.call("sw", visits.reschedule_visit, visit.id, far, 60)
    assert [(e.code, e.field) for e in err.value.errors] == [("OUT_OF_RANGE", ("input", "start"))]


# -- 6. where refusals point, what messages say -------------------------------------------------------------------


async def test_refusals_on_a_closed_case_name_the_inputs_field(cw: CaseWorld) -> None:
    # given a closed case with a plan, a goal, an action and a note
    case_id, plan_id, goals, action_id = await _in_evaluation_with_goals(cw, 1)
    note = await cw.call("sw", notes.add_note, case_id, note_type="call", occurred_at=cw.clock.now, text="电话随访")
    await cw.approve(case_id, "closure")
    await cw.call("sw", cases.advance, case_id, "closure", "目标达成")
    closed = ("CASE_CLOSED",)
    assert await _refusal(cw, "sw", notes.edit_note, note.id, text="改") == (*closed, ("input", "id"))
    assert await _refusal(cw, "sw", notes.void_note, note.id, "误记") == (*closed, ("input", "id"))
    assert await _refusal(cw, "sw", cases.request_approval, case_id, "closure", "总结", ["一"]) == (
        *closed,
        ("input", "caseId"),
    )
    assert await _refusal(cw, "sw", plans.update_plan, plan_id, None) == (*closed, ("input", "id"))
    assert await _refusal(cw, "sw", plans.add_goal, plan_id, "新", "health") == (*closed, ("input", "planId"))
    assert await _refusal(cw, "sw", plans.update_goal, goals[0], text="改") == (*closed, ("input", "id"))
    assert await _refusal(cw, "sw", plans.add_action, goals[0], "新", responsible_name="街道") == (
        *closed,
        ("input", "goalId"),
    )
    assert await _refusal(cw, "sw", plans.update_action, action_id, done=True) == (*closed, ("input", "id"))


async def test_reading_notes_without_a_purpose_names_the_querys_argument(cw: CaseWorld) -> None:
    case_id = await cw.open()
    assert await _refusal(cw, "sup", notes.list_notes, case_id) == ("PURPOSE_REQUIRED", ("caseId",))


async def test_messages_name_stages_by_their_standard_names(cw: CaseWorld) -> None:
    # given a case in assessment; when it is sent where it cannot go, and a closure is asked for too early
    case_id = await cw.open()
    await cw.bring_to(case_id, "assessment")
    with pytest.raises(DomainError) as err:
        await cw.call("sw", cases.advance, case_id, "closure")
    with pytest.raises(DomainError) as early:
        await cw.call("sw", cases.request_approval, case_id, "closure", "总结", ["一"])
    # then the stages in the messages are the standard's names, translated with the message (not stored values)
    params = dict(err.value.errors[0].params) | {f"request_{k}": v for k, v in early.value.errors[0].params}
    assert {k: translate(v, locale="zh_CN") for k, v in params.items()} == {
        "stage": "预估",
        "to": "结案",
        "request_kind": "结案",
        "request_stage": "评估",
    }
    # and every stage has its name in both languages (MZ/T 094-2017's 接案 … 结案)
    zh = {stage: translate(label, locale="zh_CN") for stage, label in cases.STAGE_LABELS.items()}
    assert zh == {
        "intake": "接案",
        "assessment": "预估",
        "planning": "计划",
        "intervention": "介入",
        "evaluation": "评估",
        "closure": "结案",
        "not_opened": "未开案",
    }
    assert set(cases.STAGE_LABELS) == set(cases.STAGES)
