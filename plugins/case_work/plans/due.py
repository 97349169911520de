"""The plans' due items on a social worker's caseload (visits/caseload.py's registry): plan reviews and actions.

Registered when the plans slice loads (plans/__init__.py), so the caseload lists them beside the visits without
importing this slice. Each provider answers with ONE query for the whole caseload (the caseload's case ids
arrive as a subquery), so a caseload costs the same number of statements whatever it holds.

- review: an open review (raised by the job `case_work.plan_reviews`) due before the caseload's horizon --
  overdue once its day has passed, of a case still being worked (planning, intervention, evaluation).
- action: an open action with a due date before the horizon, of a case still being worked.

A date is due at the start of its day in the service's zone (plans.services.LOCAL), so an item due today sorts
before a visit later today, and one due yesterday is overdue.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from sqlalchemy import Select, select

import core
from plugins.case_work.models import Case
from plugins.case_work.plans.models import Action, Review
from plugins.case_work.plans.services import LOCAL, PLAN_STAGES, local_date
from plugins.case_work.visits.caseload import DueItem, DueWindow, due_item_providers, register_due_items


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=LOCAL)


def _worked(case_ids: Select[Any]) -> Select[Any]:
    # Only cases whose plan is being worked: a case back in assessment has no live plan items.
    return select(Case.id).where(Case.id.in_(case_ids), Case.stage.in_(sorted(PLAN_STAGES)))


async def due_reviews(ctx: core.ServiceContext, case_ids: Select[Any], window: DueWindow) -> list[DueItem]:
    """Open plan reviews due before the window's end (overdue ones included), earliest first."""
    until = local_date(window.until)
    rows = await ctx.session.execute(
        select(Review.id, Review.case_id, Review.due_on, Review.risk_level)
        .where(Review.case_id.in_(_worked(case_ids)), Review.done_at.is_(None), Review.due_on <= until)
        .order_by(Review.due_on, Review.id)
        .limit(window.limit)
    )
    return [
        DueItem("review", case_id, _start_of(due_on), f"plan review ({risk} risk)", "CaseWorkReview", pk)
        for pk, case_id, due_on, risk in rows
    ]


async def due_actions(ctx: core.ServiceContext, case_ids: Select[Any], window: DueWindow) -> list[DueItem]:
    """Open actions with a due date before the window's end (overdue ones included), earliest first."""
    until = local_date(window.until)
    rows = await ctx.session.execute(
        select(Action.id, Action.case_id, Action.due_on, Action.text)
        .where(
            Action.case_id.in_(_worked(case_ids)),
            Action.done_at.is_(None),
            Action.due_on.is_not(None),
            Action.due_on <= until,
        )
        .order_by(Action.due_on, Action.id)
        .limit(window.limit)
    )
    return [
        DueItem("action", case_id, _start_of(due_on), text[:200], "CaseWorkAction", pk)
        for pk, case_id, due_on, text in rows
    ]


def register() -> None:
    """Add the plans' providers to the caseload's registry (once: plans/__init__.py calls it on import)."""
    if "review" not in due_item_providers():
        register_due_items("review", due_reviews)
        register_due_items("action", due_actions)
