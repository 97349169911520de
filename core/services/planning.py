"""Batch assignment: a global plan for many requests at once, solved as a minimum-cost bipartite matching.

Rows are the open slots of the requests (volunteers needed minus those already on them); columns are the
volunteers' free capacity (one column per free slot) plus one "uncovered" column per row, so a full
matching always exists. Edge costs are 1 − score over each request's nearest qualified volunteers
(`MatchingPolicy.plan_prefilter` per request: what `matching` proposes, found for the whole batch in one
search, `matching.nearest_many`); reserve volunteers cost one more, so
they are used only where active ones cannot be; an uncovered slot costs more than any assignment.
scipy's LAPJVsp (`min_weight_full_bipartite_matching`) finds the optimum.

`commit_plan` applies a plan in one transaction, locking requests then volunteers in id order (the
order every writer uses); if anything changed meanwhile it fails with STALE_PLAN and writes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching
from sqlalchemy import func, select

from core.errors import DomainError, UserErrorData
from core.models import Assignment, HelpRequest, Volunteer
from core.services import access, assignments
from core.services.context import ServiceContext
from core.services.matching import (
    FACT_COLUMNS,
    MATCHABLE,
    RequestFacts,
    ScorePart,
    Scorer,
    facts_of,
    history_features,
    load_pool,
    nearest_many,
)
from core.services.matching_policy import MatchingPolicy
from core.vocab import ACTIVE_ASSIGNMENT_STATUSES, RequestStatus, label

UNCOVERED_COST = 10.0
RESERVE_PENALTY = 1.0


@dataclass
class PlanItem:
    request_id: int
    volunteer_id: int
    distance_km: float | None
    is_reserve: bool
    parts: list[ScorePart]

    @property
    def score(self) -> float:
        return round(sum(p.contribution for p in self.parts), 6)


@dataclass
class Uncovered:
    request_id: int
    slots: int
    reason: str


@dataclass
class Plan:
    items: list[PlanItem] = field(default_factory=list)
    uncovered: list[Uncovered] = field(default_factory=list)

    @property
    def total_cost(self) -> float:
        return round(
            sum(1 - i.score + (RESERVE_PENALTY if i.is_reserve else 0) for i in self.items)
            + UNCOVERED_COST * sum(u.slots for u in self.uncovered),
            6,
        )


class _Pair(NamedTuple):
    request_id: int
    volunteer_id: int
    distance_km: float | None
    is_reserve: bool


@dataclass(frozen=True)
class _Request:
    facts: RequestFacts
    volunteers_needed: int


async def _load_requests(ctx: ServiceContext, request_ids: Sequence[int]) -> dict[int, _Request]:
    rows = (
        await ctx.session.execute(
            select(*FACT_COLUMNS, HelpRequest.status, HelpRequest.volunteers_needed).where(
                HelpRequest.id.in_(list(request_ids)), access.request_scope(ctx.viewer)
            )
        )
    ).all()
    found = {r.id: r for r in rows}
    problems = []
    for index, rid in enumerate(request_ids):
        request = found.get(rid)
        if request is None:
            problems.append(UserErrorData("Help request not found.", "NOT_FOUND", ("requestIds", str(index))))
        elif RequestStatus(request.status) not in MATCHABLE:
            problems.append(
                UserErrorData.of(
                    "NOT_MATCHABLE",
                    "A {status} request cannot be planned.",
                    ("requestIds", str(index)),
                    status=label(request.status),
                )
            )
    if problems:
        raise DomainError.many(problems)
    now = ctx.now()
    return {rid: _Request(facts_of(r, now), r.volunteers_needed) for rid, r in found.items()}


async def _open_slots(ctx: ServiceContext, requests: dict[int, _Request]) -> dict[int, int]:
    held = dict(
        (
            await ctx.session.execute(
                select(Assignment.request_id, func.count())
                .where(
                    Assignment.request_id.in_(list(requests)),
                    Assignment.status.in_(sorted(s.value for s in ACTIVE_ASSIGNMENT_STATUSES)),
                )
                .group_by(Assignment.request_id)
            )
        ).all()
    )
    return {rid: max(0, r.volunteers_needed - int(held.get(rid, 0))) for rid, r in requests.items()}


@dataclass
class Problem:
    """What a plan is solved from: open slots per request and scored candidate pairs."""

    wanted: list[int]
    slots: dict[int, int]
    pairs: list[_Pair]
    parts: dict[tuple[int, int], list[ScorePart]]
    free: dict[int, int]  # volunteer id → free capacity

    def cost(self, request_id: int, volunteer_id: int, is_reserve: bool) -> float:
        score = sum(x.contribution for x in self.parts[(request_id, volunteer_id)])
        return 1.0 - score + (RESERVE_PENALTY if is_reserve else 0.0)


async def gather(ctx: ServiceContext, request_ids: Sequence[int], policy: MatchingPolicy) -> Problem:
    """Load the requests, their open slots and scored candidates: one candidate search for the whole batch
    (`matching.nearest_many`), so the statements do not grow with the number of requests (the reserve is
    searched, the same way, only for requests their active volunteers cannot fill)."""
    access.require(ctx, "requests.coordinate")
    ids = list(dict.fromkeys(request_ids))
    requests = await _load_requests(ctx, ids)
    slots = await _open_slots(ctx, requests)
    wanted = [rid for rid in ids if slots[rid] > 0]
    now = ctx.now()
    facts = [requests[rid].facts for rid in wanted]
    organizations = {f.organization_id for f in facts}
    limits = dict.fromkeys(wanted, policy.plan_prefilter)
    active = await nearest_many(
        ctx, facts, limits=limits, pool=await load_pool(ctx, organizations, reserve=False), now=now
    )
    found = {rid: [(hit, False) for hit in hits] for rid, hits in active.items()}
    # The reserve only for requests their active volunteers cannot fill.
    if short := [f for f in facts if len(found[f.id]) < slots[f.id]]:
        reserve = await load_pool(ctx, organizations, reserve=True)
        for rid, hits in (await nearest_many(ctx, short, limits=limits, pool=reserve, now=now)).items():
            found[rid] += [(hit, True) for hit in hits]
    history = await history_features(ctx, sorted({hit.volunteer_id for hits in found.values() for hit, _ in hits}))
    pairs: list[_Pair] = []
    parts: dict[tuple[int, int], list[ScorePart]] = {}
    free: dict[int, int] = {}
    for rid in wanted:
        r = requests[rid].facts
        score = Scorer(policy, r.category, r.required_skills, now)
        for hit, is_reserve in found[rid]:
            pairs.append(_Pair(rid, hit.volunteer_id, hit.distance_km, is_reserve))
            parts[(rid, hit.volunteer_id)] = score(
                hit.distance_km, hit.skills, hit.active, hit.maximum, history.get(hit.volunteer_id)
            )
            free[hit.volunteer_id] = max(0, hit.maximum - hit.active)
    return Problem(wanted=wanted, slots=slots, pairs=pairs, parts=parts, free=free)


async def plan(ctx: ServiceContext, request_ids: Sequence[int], policy: MatchingPolicy) -> Plan:
    return solve(await gather(ctx, request_ids, policy))


def solve(problem: Problem) -> Plan:
    """The minimum-cost assignment of the problem's slots (see the module docstring)."""
    wanted, slots, pairs, parts = problem.wanted, problem.slots, problem.pairs, problem.parts
    volunteer_ids = sorted({p.volunteer_id for p in pairs})
    # Rows: request slots. Columns: volunteer capacity slots, then one "uncovered" column per row.
    rows = [(rid, j) for rid in wanted for j in range(slots[rid])]
    listed: dict[int, int] = defaultdict(int)
    row_has_candidates: dict[int, bool] = defaultdict(bool)
    for p in pairs:
        listed[p.volunteer_id] += 1
        row_has_candidates[p.request_id] = True
    columns: dict[int, list[int]] = {}
    next_col = 0
    for vid in volunteer_ids:
        copies = max(0, min(problem.free[vid], listed[vid]))
        columns[vid] = list(range(next_col, next_col + copies))
        next_col += copies
    row_of: dict[int, list[int]] = defaultdict(list)
    for index, (rid, _) in enumerate(rows):
        row_of[rid].append(index)
    r_idx, c_idx, cost = [], [], []
    for p in pairs:
        edge = problem.cost(p.request_id, p.volunteer_id, p.is_reserve)
        for row in row_of[p.request_id]:
            for col in columns[p.volunteer_id]:
                r_idx.append(row)
                c_idx.append(col)
                cost.append(edge + 1e-6)  # strictly positive: zero entries would read as "no edge"
    for row in range(len(rows)):
        r_idx.append(row)
        c_idx.append(next_col + row)
        cost.append(UNCOVERED_COST)
    result = Plan()
    if rows:
        graph = csr_matrix(
            (np.array(cost), (np.array(r_idx), np.array(c_idx))), shape=(len(rows), next_col + len(rows))
        )
        matched_rows, matched_cols = min_weight_full_bipartite_matching(graph)
        owner = {col: vid for vid, cols in columns.items() for col in cols}
        reserve = {(p.request_id, p.volunteer_id) for p in pairs if p.is_reserve}
        distance = {(p.request_id, p.volunteer_id): p.distance_km for p in pairs}
        taken: set[tuple[int, int]] = set()
        uncovered: dict[int, int] = defaultdict(int)
        for row, col in zip(matched_rows, matched_cols, strict=True):
            rid = rows[row][0]
            vid = owner.get(int(col))
            # A volunteer fills at most one slot of a request; a second copy picked for the same request
            # (possible only when a request needs several volunteers) leaves that slot uncovered.
            if vid is None or (rid, vid) in taken:
                uncovered[rid] += 1
                continue
            taken.add((rid, vid))
            result.items.append(PlanItem(rid, vid, distance[(rid, vid)], (rid, vid) in reserve, parts[(rid, vid)]))
        for rid, count in uncovered.items():
            reason = (
                "no qualified volunteer is free"
                if not row_has_candidates[rid]
                else ("its qualified volunteers are needed more elsewhere in this plan")
            )
            result.uncovered.append(Uncovered(rid, count, reason))
    result.items.sort(key=lambda i: (i.request_id, -i.score))
    result.uncovered.sort(key=lambda u: u.request_id)
    return result


async def commit_plan(ctx: ServiceContext, items: Sequence[tuple[int, int]]) -> list[Assignment]:
    """Offer every (request, volunteer) pair of a plan, all or nothing: each through `assignments.offer`, so
    under the same locks and hard filters as a single offer (no override); the first pair that no longer
    fits makes the whole plan STALE_PLAN."""
    access.require(ctx, "requests.coordinate")
    # Each distinct pair once, in lock order, remembering where the caller listed it (errors point there).
    position: dict[tuple[int, int], int] = {}
    for index, pair in enumerate(items):
        position.setdefault(pair, index)
    pairs = sorted(position)
    if not pairs:
        raise DomainError("REQUIRED", "A plan needs at least one item.", ("input", "items"))
    # Lock order: requests, then volunteers, each by id: the order single offers use too.
    await ctx.session.execute(
        select(HelpRequest.id)
        .where(HelpRequest.id.in_({r for r, _ in pairs}))
        .order_by(HelpRequest.id)
        .with_for_update()
    )
    await ctx.session.execute(
        select(Volunteer.id).where(Volunteer.id.in_({v for _, v in pairs})).order_by(Volunteer.id).with_for_update()
    )
    offers = []
    for request_id, volunteer_id in pairs:
        index = position[(request_id, volunteer_id)]
        try:
            offers.append(await assignments.offer(ctx, request_id, volunteer_id, "batch plan"))
        except DomainError as exc:
            # The first reason, by its code (its wording is the offer's); the whole plan is refused.
            raise DomainError(
                "STALE_PLAN",
                "Item {index} (request {request_id}, volunteer {volunteer_id}) no longer fits ({reason}); plan again.",
                ("input", "items", str(index)),
                index=index,
                request_id=request_id,
                volunteer_id=volunteer_id,
                reason=exc.code,
            ) from exc
    return offers
