"""The caseload lists the plans' due items beside the visits (plans/due.py, registered in the caseload's
registry): open actions with a due date and open plan reviews, overdue ones flagged by date, only for cases
still worked, only for those who see the caseload; and the due items cost the same statements however many."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from plugins.case_work import services as cases
from plugins.case_work.plans import services as plans
from plugins.case_work.visits import caseload as caseloads
from tests.plugins.case_work.conftest import CaseWorld
from tests.plugins.case_work.test_plans import _run_job, planned_case, today


async def _due(cw: CaseWorld, who: str, worker: str = "sw") -> list[tuple[str, int, bool]]:
    async with cw.as_(who) as ctx:
        load = await caseloads.caseload(ctx, cw.ids[worker])
        assert load is not None
        items = await caseloads.due_items(ctx, load)
        return [(i.kind, i.case_id, i.due_at < load.now) for i in items if i.kind in ("action", "review")]


async def _goal_with_action(cw: CaseWorld, plan_id: int, due_in: int) -> int:
    goal = await cw.call("sw", plans.add_goal, plan_id, "按时服药", "health", None)
    action = await cw.call(
        "sw",
        plans.add_action,
        goal.id,
        "每周送药",
        responsible_name="社区药房",
        due_on=today(cw) + timedelta(days=due_in),
    )
    return int(action.id)


@pytest.fixture
def statements(cw: CaseWorld) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(cw.engine.sync_engine, "before_cursor_execute", count)
    yield seen
    event.remove(cw.engine.sync_engine, "before_cursor_execute", count)


async def test_due_actions_and_overdue_reviews_join_the_caseload(cw: CaseWorld) -> None:
    # given a high-risk plan with an action due in 3 days and one far beyond the horizon, and its review raised
    case_id, plan_id = await planned_case(cw, risk="high", end_in=None)
    await cw.call("sw", cases.advance, case_id, "intervention")
    soon = await _goal_with_action(cw, plan_id, 3)
    await _goal_with_action(cw, plan_id, 60)
    # when the caseload is read today
    before = await _due(cw, "sw")
    # then the action due soon is listed (not overdue), the far one is not, and no review is due yet
    assert before == [("action", case_id, False)]
    assert soon
    # when the review falls due and passes its day, and the action's day passes too
    cw.clock.now += timedelta(days=25)
    await _run_job(cw)
    cw.clock.now += timedelta(days=6)
    after = await _due(cw, "sw")
    # then both are listed as overdue, earliest first (the action was due first)
    assert after == [("action", case_id, True), ("review", case_id, True)]
    # and the supervisor sees them on the worker's caseload; another social worker is refused it
    assert await _due(cw, "sup") == after
    assert await cw.refused("sw2", caseloads.caseload, cw.ids["sw"]) == "FORBIDDEN"


async def test_a_done_action_and_a_closed_case_leave_the_caseload(cw: CaseWorld) -> None:
    # given a case with an action due tomorrow
    case_id, plan_id = await planned_case(cw, risk="low", end_in=None)
    action_id = await _goal_with_action(cw, plan_id, 1)
    assert await _due(cw, "sw") == [("action", case_id, False)]
    # when it is done
    await cw.call("sw", plans.update_action, action_id, done=True)
    # then it is no longer due
    assert await _due(cw, "sw") == []


async def test_the_plans_due_items_cost_the_same_statements_for_few_and_many(
    cw: CaseWorld, statements: list[str]
) -> None:
    counts: dict[int, int] = {}
    made = 0
    for target in (1, 4):
        # given `target` plans each with two actions due this week
        while made < target:
            _case_id, plan_id = await planned_case(cw, risk="medium", end_in=None)
            await _goal_with_action(cw, plan_id, 1)
            await _goal_with_action(cw, plan_id, 2)
            made += 1
        # when the caseload's due items are read
        async with cw.as_("sw") as ctx:
            load = await caseloads.caseload(ctx)
            assert load is not None
            statements.clear()
            items = await caseloads.due_items(ctx, load)
            counts[target] = len(statements)
        assert len([i for i in items if i.kind == "action"]) == 2 * target
    # then four times the plans cost no more statements (one per kind of item)
    assert counts[1] == counts[4] == len(caseloads.due_item_providers()), counts
