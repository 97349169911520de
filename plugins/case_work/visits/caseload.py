"""A social worker's caseload: their open cases with stage and risk, counts, and the next due items of every kind.

Who sees whose caseload -- the same rule as every case (`case_scope`), narrowed to the worker's open cases:
- the worker themselves: all their open cases;
- a supervisor (holding `case_work.supervise`): the worker's cases that name them as supervisor;
- the organisation's administrators: all the worker's open cases;
- another social worker of the organisation asking about someone else: FORBIDDEN (their role supervises
  nobody; their own caseload is theirs to see);
- volunteers, community heads, counselors: FORBIDDEN (no casework at all);
- a worker of another organisation (or no such account): null, exactly like a missing one.

Due items come from providers, one per kind, registered in a small registry (`register_due_items`): this
slice registers the visits (booked visits up to 14 days ahead, and past ones still without an outcome); the
plans slice registers reviews and actions without this module importing it. A provider answers with one
query for the whole caseload (it gets the caseload's case ids as a subquery), so the caseload costs the same
number of statements however many cases and items it holds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, case, func, select
from sqlalchemy.sql.elements import ColumnElement

import core
from core.models import Account
from plugins.case_work.models import RISK_LEVELS, STAGES, Case
from plugins.case_work.services import ADMIN_ROLES, CLOSED, MANAGE, SUPERVISE, case_scope
from plugins.case_work.visits.models import Visit

# The kinds of due items the caseload shows (an enum in the API). A provider registers one of them.
DUE_KINDS = ("visit", "review", "action")
# How far ahead the caseload looks for upcoming items.
HORIZON = timedelta(days=14)
MAX_DUE_ITEMS = 200


@dataclass(frozen=True)
class DueItem:
    """Something due on a case: a visit to make, a review or an action overdue or coming up.
    `record_type` is the GraphQL type of the record (for its global ID), `record_id` its primary key."""

    kind: str
    case_id: int
    due_at: datetime
    summary: str
    record_type: str
    record_id: int


@dataclass(frozen=True)
class DueWindow:
    """Items due before `until` (upcoming ones after `now`, overdue ones before it), at most `limit`."""

    now: datetime
    until: datetime
    limit: int


# provider(ctx, the caseload's case ids as a subquery, window) -> items, ONE query whatever the caseload's size.
DueProvider = Callable[[core.ServiceContext, Select[Any], DueWindow], Awaitable[list[DueItem]]]
_PROVIDERS: dict[str, DueProvider] = {}


def register_due_items(kind: str, provider: DueProvider) -> Callable[[], None]:
    """Add the provider of one kind of due item; answers a function that removes it again (tests). A kind
    outside DUE_KINDS, or one registered twice, is a programming error and fails at once."""
    if kind not in DUE_KINDS:
        raise ValueError(f"due item kind {kind!r} is not one of {DUE_KINDS} (add it to DUE_KINDS and the API enum)")
    if kind in _PROVIDERS:
        raise ValueError(f"due items of kind {kind!r} have a provider already: {_PROVIDERS[kind]!r}")
    _PROVIDERS[kind] = provider

    def unregister() -> None:
        if _PROVIDERS.get(kind) is provider:
            del _PROVIDERS[kind]

    return unregister


def due_item_providers() -> dict[str, DueProvider]:
    return dict(_PROVIDERS)


async def upcoming_visits(ctx: core.ServiceContext, case_ids: Select[Any], window: DueWindow) -> list[DueItem]:
    """Booked visits starting before the window's end: upcoming ones, and past ones whose outcome is still
    to be recorded (overdue)."""
    rows = await ctx.session.execute(
        select(Visit.id, Visit.case_id, Visit.starts_at, Visit.mode, Visit.purpose)
        .where(Visit.case_id.in_(case_ids), Visit.status == "booked", Visit.starts_at < window.until)
        .order_by(Visit.starts_at, Visit.id)
        .limit(window.limit)
    )
    return [
        DueItem("visit", case_id, starts_at, purpose, "CaseWorkVisit", pk)
        for pk, case_id, starts_at, _mode, purpose in rows
    ]


register_due_items("visit", upcoming_visits)


@dataclass(frozen=True)
class Caseload:
    worker: Account
    # (stage, risk level, number of open cases), for the counts.
    counts: tuple[tuple[str, str, int], ...]
    condition: ColumnElement[bool]
    now: datetime

    @property
    def open_cases(self) -> int:
        return sum(n for _, _, n in self.counts)

    def by_stage(self) -> list[tuple[str, int]]:
        totals = {s: 0 for s in STAGES if s not in CLOSED}  # every open stage in order, zeros included
        for stage, _, n in self.counts:
            totals[stage] += n
        return list(totals.items())

    def by_risk(self) -> list[tuple[str, int]]:
        totals = dict.fromkeys(reversed(RISK_LEVELS), 0)  # high, medium, low: all three, zeros included
        for _, risk, n in self.counts:
            totals[risk] += n
        return list(totals.items())

    def case_ids(self) -> Select[Any]:
        return select(Case.id).where(self.condition)


_RISK_RANK = {r: n for n, r in enumerate(reversed(RISK_LEVELS))}  # high first
RISK_RANK = case(_RISK_RANK, value=Case.risk_level, else_=len(RISK_LEVELS))
CASELOAD_ORDER: core.Ordering[Case] = core.Ordering(
    "case_work_caseload", (RISK_RANK, Case.id), lambda c: (_RISK_RANK.get(c.risk_level, len(RISK_LEVELS)), c.id)
)


async def caseload(ctx: core.ServiceContext, worker_account_id: int | None = None) -> Caseload | None:
    """The caseload of `worker_account_id` (default: the caller's own), as far as the caller may see it (see
    the module's docstring); None for an account that is missing or of another organisation."""
    core.require(ctx, MANAGE)
    viewer = ctx.viewer
    if viewer.account_id is None or viewer.organization_id is None:
        raise core.DomainError("FORBIDDEN", "You may not do this.")
    worker_id = viewer.account_id if worker_account_id is None else worker_account_id
    if worker_id != viewer.account_id and viewer.role not in ADMIN_ROLES and not core.can(viewer, SUPERVISE):
        raise core.DomainError("FORBIDDEN", "Only supervisors and administrators see another worker's caseload.")
    worker = await ctx.session.scalar(
        select(Account).where(Account.id == worker_id, Account.organization_id == viewer.organization_id)
    )
    if worker is None:
        return None
    condition = and_(case_scope(ctx), Case.social_worker_account_id == worker.id, Case.stage.not_in(CLOSED))
    rows = await ctx.session.execute(
        select(Case.stage, Case.risk_level, func.count()).where(condition).group_by(Case.stage, Case.risk_level)
    )
    return Caseload(worker, tuple((s, r, int(n)) for s, r, n in rows), condition, ctx.now())


async def caseload_cases(
    ctx: core.ServiceContext, load: Caseload, *, first: int = 50, after: str | None = None
) -> core.Page[Case]:
    """The caseload's open cases, highest risk first, then oldest first."""
    return await core.paginate(ctx, select(Case).where(load.condition), CASELOAD_ORDER, first=first, after=after)


async def due_items(
    ctx: core.ServiceContext, load: Caseload, kinds: tuple[str, ...] = (), *, first: int = 50
) -> list[DueItem]:
    """The caseload's due items of the given kinds (default: all), overdue first, then soonest due: one
    query per kind."""
    wrong = set(kinds) - set(DUE_KINDS)
    if wrong:
        raise core.DomainError("INVALID_INPUT", "Unknown values: {values}.", ("kinds",), values=tuple(sorted(wrong)))
    if not 0 <= first <= MAX_DUE_ITEMS:
        raise core.DomainError("PAGE_SIZE_EXCEEDED", "At most {n} due items at a time.", ("first",), n=MAX_DUE_ITEMS)
    window = DueWindow(now=load.now, until=load.now + HORIZON, limit=first)
    items: list[DueItem] = []
    for kind, provider in sorted(_PROVIDERS.items()):
        if not kinds or kind in kinds:
            items.extend(await provider(ctx, load.case_ids(), window))
    items.sort(key=lambda i: (i.due_at, DUE_KINDS.index(i.kind), i.record_id))
    return items[:first]
