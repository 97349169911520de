"""Assessments and service plans through the real GraphQL endpoint, callers signed in for real: assessment →
plan → goals → actions → progress, a goal due after the plan's planned end refused with its code and nothing
written, and who can NOT see a plan (another social worker, a volunteer, a community head, another
organisation)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.plugins.case_work.test_reactions import World, build_world, wired  # noqa: F401
from yunshegong.testing import Harness

DOMAINS = ("HEALTH", "DAILY_LIVING", "FINANCES", "HOUSING", "FAMILY_SOCIAL", "SAFETY", "MENTAL_WELLBEING")
OPEN = """mutation($input: CaseWorkOpenCaseInput!) { r: caseWorkOpenCase(input: $input) { case { id }
  errors { code field } } }"""
ADVANCE = """mutation($id: ID!, $to: CaseWorkStage!) { r: caseWorkAdvanceCaseStage(input: {id: $id, to: $to}) {
  case { stage } errors { code field } } }"""
ASSESS = """mutation($input: CaseWorkRecordAssessmentInput!) { r: caseWorkRecordAssessment(input: $input) {
  assessment { id totalScore highestScore impliedRiskLevel riskLevelAfter needs { domain score } }
  errors { code field } } }"""
CREATE_PLAN = """mutation($input: CaseWorkCreatePlanInput!) { r: caseWorkCreatePlan(input: $input) {
  plan { id plannedEnd } errors { code field } } }"""
ADD_GOAL = """mutation($input: CaseWorkAddGoalInput!) { r: caseWorkAddGoal(input: $input) {
  goal { id text targetDate status } errors { code field } } }"""
ADD_ACTION = """mutation($input: CaseWorkAddActionInput!) { r: caseWorkAddAction(input: $input) {
  action { id text dueOn done responsible { name } } errors { code field } } }"""
PROGRESS = """mutation($input: CaseWorkRecordGoalProgressInput!) { r: caseWorkRecordGoalProgress(input: $input) {
  progress { status percent note } errors { code field } } }"""
PLAN = """query($case: ID!) { r: caseWorkPlan(caseId: $case) { id plannedEnd goals { text status percent targetDate
  actions { text dueOn done } progress(first: 5) { nodes { status percent note } } } } }"""
GOAL = "query($id: ID!) { r: node(id: $id) { ... on CaseWorkGoal { text } } }"


def today() -> date:
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


@pytest.fixture
async def world(kit: Harness) -> World:
    return await build_world(kit)


async def case_in_planning(w: World) -> tuple[str, dict[str, Any]]:
    """sw's low-risk case, assessed and in planning: (case ID, the assessment as answered)."""
    opened = await w.p["sw"](
        OPEN,
        {
            "input": {
                "category": "ELDERLY_CARE",
                "riskLevel": "LOW",
                "supervisorId": w.p["sup"].account_id,
                "client": {"name": "独居老人", "phone": "13700001111"},
            }
        },
    )
    assert opened["r"]["errors"] == []
    case_id = opened["r"]["case"]["id"]
    assert (await w.p["sw"](ADVANCE, {"id": case_id, "to": "ASSESSMENT"}))["r"]["errors"] == []
    scores = dict.fromkeys(DOMAINS, 1) | {"DAILY_LIVING": 2}
    assessed = await w.p["sw"](
        ASSESS,
        {
            "input": {
                "caseId": case_id,
                "needs": [{"domain": d, "score": s, "note": "说明"} for d, s in scores.items()],
                "strengths": ["邻里互助"],
                "summary": "独居，需要日常照料",
            }
        },
    )
    assert assessed["r"]["errors"] == []
    assert (await w.p["sw"](ADVANCE, {"id": case_id, "to": "PLANNING"}))["r"]["errors"] == []
    return case_id, assessed["r"]["assessment"]


async def test_assessment_plan_goals_actions_and_progress(world: World) -> None:
    # given sw's case, assessed (scores 1, daily living 2) and in planning
    w = world
    case_id, assessment = await case_in_planning(w)
    # then the assessment is scored and keeps the case's low risk
    assert (assessment["totalScore"], assessment["highestScore"], assessment["riskLevelAfter"]) == (8, 2, "LOW")
    assert {n["domain"]: n["score"] for n in assessment["needs"]}["DAILY_LIVING"] == 2
    # when sw starts a plan ending in 60 days, adds a goal for day 30, an action for day 20 (sw responsible),
    # and records progress on the goal
    end = today() + timedelta(days=60)
    plan = await w.p["sw"](CREATE_PLAN, {"input": {"caseId": case_id, "plannedEnd": end.isoformat()}})
    assert plan["r"]["errors"] == []
    assert plan["r"]["plan"]["plannedEnd"] == end.isoformat()
    goal = await w.p["sw"](
        ADD_GOAL,
        {
            "input": {
                "planId": plan["r"]["plan"]["id"],
                "text": "每日送餐",
                "domain": "DAILY_LIVING",
                "targetDate": (today() + timedelta(days=30)).isoformat(),
            }
        },
    )
    assert goal["r"]["errors"] == []
    assert goal["r"]["goal"]["status"] == "NOT_STARTED"
    goal_id = goal["r"]["goal"]["id"]
    action = await w.p["sw"](
        ADD_ACTION,
        {
            "input": {
                "goalId": goal_id,
                "text": "联系社区食堂",
                "responsibleAccountId": w.p["sw"].account_id,
                "dueOn": (today() + timedelta(days=20)).isoformat(),
            }
        },
    )
    assert action["r"]["errors"] == []
    assert action["r"]["action"]["done"] is False
    assert action["r"]["action"]["responsible"] is not None
    progress = await w.p["sw"](
        PROGRESS, {"input": {"goalId": goal_id, "status": "IN_PROGRESS", "percent": 40, "note": "已联系"}}
    )
    assert progress["r"]["errors"] == []
    # then the plan reads back whole, for sw, the supervisor and the administrator alike
    expected = {
        "id": plan["r"]["plan"]["id"],
        "plannedEnd": end.isoformat(),
        "goals": [
            {
                "text": "每日送餐",
                "status": "IN_PROGRESS",
                "percent": 40,
                "targetDate": (today() + timedelta(days=30)).isoformat(),
                "actions": [
                    {"text": "联系社区食堂", "dueOn": (today() + timedelta(days=20)).isoformat(), "done": False}
                ],
                "progress": {"nodes": [{"status": "IN_PROGRESS", "percent": 40, "note": "已联系"}]},
            }
        ],
    }
    for who in ("sw", "sup", "admin"):
        assert (await w.p[who](PLAN, {"case": case_id}))["r"] == expected, who


async def test_a_goal_due_after_the_planned_end_is_refused_and_nothing_is_written(world: World) -> None:
    # given sw's plan ending in 30 days, with one goal
    w = world
    case_id, _ = await case_in_planning(w)
    end = today() + timedelta(days=30)
    plan = await w.p["sw"](CREATE_PLAN, {"input": {"caseId": case_id, "plannedEnd": end.isoformat()}})
    plan_id = plan["r"]["plan"]["id"]
    first = {"planId": plan_id, "text": "按时服药", "domain": "HEALTH", "targetDate": end.isoformat()}
    added = await w.p["sw"](ADD_GOAL, {"input": first})
    assert added["r"]["errors"] == []
    before = await w.p["sw"](PLAN, {"case": case_id})
    # when sw adds a goal due the day after the planned end
    late = first | {"text": "迟到的目标", "targetDate": (end + timedelta(days=1)).isoformat()}
    body = await w.p["sw"](ADD_GOAL, {"input": late})
    # then it is refused on its target date, with casework's code, and the plan is as it was
    assert body["r"] == {"goal": None, "errors": [{"code": "BEYOND_PLANNED_END", "field": ["input", "targetDate"]}]}
    assert await w.p["sw"](PLAN, {"case": case_id}) == before
    # and an action due after the planned end is refused likewise
    goal_id = added["r"]["goal"]["id"]
    action = await w.p["sw"](
        ADD_ACTION,
        {
            "input": {
                "goalId": goal_id,
                "text": "太晚",
                "responsibleName": "社区食堂",
                "dueOn": (end + timedelta(days=5)).isoformat(),
            }
        },
    )
    assert action["r"]["errors"] == [{"code": "BEYOND_PLANNED_END", "field": ["input", "dueOn"]}]
    assert await w.p["sw"](PLAN, {"case": case_id}) == before


async def test_who_can_not_see_or_change_a_plan(world: World) -> None:
    # given sw's plan with a goal
    w = world
    case_id, _ = await case_in_planning(w)
    plan = await w.p["sw"](CREATE_PLAN, {"input": {"caseId": case_id}})
    goal = await w.p["sw"](
        ADD_GOAL, {"input": {"planId": plan["r"]["plan"]["id"], "text": "每日送餐", "domain": "DAILY_LIVING"}}
    )
    goal_id = goal["r"]["goal"]["id"]
    # when others read it (by case, by node)
    seen: dict[str, Any] = {}
    for who in ("sw", "sw2", "volunteer", "head", "counselor_a", "admin_b", "sw_b"):
        by_case = await w.p[who].raw(PLAN, {"case": case_id})
        by_node = await w.p[who].raw(GOAL, {"id": goal_id})
        seen[who] = (_cell(by_case), _cell(by_node))
    # then only sw (positive control) sees it: another social worker and another organisation get null (as for
    # a missing case), callers without casework FORBIDDEN on the root field and null by node
    assert seen == {
        "sw": ("plan", {"text": "每日送餐"}),
        "sw2": (None, None),
        "volunteer": ("FORBIDDEN", None),
        "head": ("FORBIDDEN", None),
        "counselor_a": ("FORBIDDEN", None),
        "admin_b": (None, None),
        "sw_b": (None, None),
    }
    # and their writes are refused, nothing written
    before = await w.p["sw"](PLAN, {"case": case_id})
    codes = {}
    for who in ("sw2", "volunteer", "admin_b"):
        body = await w.p[who].raw(
            ADD_GOAL, {"input": {"planId": plan["r"]["plan"]["id"], "text": "x", "domain": "OTHER"}}
        )
        codes[who] = _code(body)
        body = await w.p[who].raw(PROGRESS, {"input": {"goalId": goal_id, "percent": 90}})
        codes[f"{who} progress"] = _code(body)
    assert codes == {
        "sw2": "NOT_FOUND",
        "sw2 progress": "NOT_FOUND",
        "volunteer": "FORBIDDEN",
        "volunteer progress": "FORBIDDEN",
        "admin_b": "NOT_FOUND",
        "admin_b progress": "NOT_FOUND",
    }
    assert await w.p["sw"](PLAN, {"case": case_id}) == before


def _cell(body: dict[str, Any]) -> Any:
    if body.get("errors"):
        return body["errors"][0]["extensions"]["code"]
    found = body["data"]["r"]
    if isinstance(found, dict) and "goals" in found:
        return "plan"
    return found


def _code(body: dict[str, Any]) -> str | None:
    if body.get("errors"):
        return str(body["errors"][0]["extensions"]["code"])
    errors = body["data"]["r"]["errors"]
    return errors[0]["code"] if errors else None


UPDATE_PLAN = """mutation($input: CaseWorkUpdatePlanInput!) { r: caseWorkUpdatePlan(input: $input) {
  plan { plannedEnd } errors { code field } } }"""


async def test_a_plan_update_without_a_planned_end_keeps_it_and_null_clears_it(world: World) -> None:
    # given a plan ending in 60 days
    w = world
    case_id, _assessment = await case_in_planning(w)
    end = (today() + timedelta(days=60)).isoformat()
    plan = await w.p["sw"](CREATE_PLAN, {"input": {"caseId": case_id, "plannedEnd": end}})
    plan_id = plan["r"]["plan"]["id"]
    # when it is updated with the planned end left out, then it stays; an explicit null clears it
    kept = await w.p["sw"](UPDATE_PLAN, {"input": {"id": plan_id}})
    assert (kept["r"]["errors"], kept["r"]["plan"]["plannedEnd"]) == ([], end)
    cleared = await w.p["sw"](UPDATE_PLAN, {"input": {"id": plan_id, "plannedEnd": None}})
    assert (cleared["r"]["errors"], cleared["r"]["plan"]["plannedEnd"]) == ([], None)


async def test_an_assessment_offers_only_the_domains_it_scores(world: World) -> None:
    # given a case in assessment
    w = world
    opened = await w.p["sw"](
        OPEN,
        {
            "input": {
                "category": "ELDERLY_CARE",
                "riskLevel": "LOW",
                "supervisorId": w.p["sup"].account_id,
                "client": {"name": "独居老人", "phone": "13700001111"},
            }
        },
    )
    case_id = opened["r"]["case"]["id"]
    assert (await w.p["sw"](ADVANCE, {"id": case_id, "to": "ASSESSMENT"}))["r"]["errors"] == []
    # when the worker scores OTHER too, then the schema refuses the value before any service runs (the enum
    # does not offer what the service would refuse as an unknown domain)
    needs = [{"domain": d, "score": 1} for d in (*DOMAINS, "OTHER")]
    body = await w.p["sw"].raw(ASSESS, {"input": {"caseId": case_id, "needs": needs}})
    assert body.get("data") is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_INPUT"]
    # while a goal may still address OTHER
    assert "OTHER" in [v["name"] for v in (await w.p["sw"].raw(ENUM, {}))["data"]["t"]["enumValues"]]


ENUM = """query { t: __type(name: "CaseWorkGoalDomain") { enumValues { name } } }"""
