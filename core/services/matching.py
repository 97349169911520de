"""Candidates for a help request: hard filters in SQL, then an explained score.

Hard filters (PostgreSQL, `matching_policy.proposable`: the same conditions an offer checks): available;
below their maximum of active assignments; of the request's organisation; not already on this request; in
person (offline) for physical help; holding every required skill; holding every required credential valid
when needed; having completed the trainings the category requires. Matching also leaves out whoever declined
or completed this request, and volunteers the viewer may not see. The nearest such volunteers come from a
GiST nearest-neighbour scan (earthdistance), so the cost does not grow with the number of volunteers.

Soft score: the weighted sum of distance, skill overlap, current load (fairness), past reliability and
recency of their last assignment, each in [0, 1], with the breakdown returned. Reserve volunteers are
proposed only when active ones do not suffice, and flagged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, literal, select

from core.errors import DomainError
from core.i18n import _
from core.models import Assignment, HelpRequest, Volunteer
from core.services import access
from core.services.common import get
from core.services.context import ServiceContext
from core.services.matching_policy import (
    PHYSICAL,
    MatchingPolicy,
    RequestTerms,
    in_pool,
    needed_at,
    proposable,
)
from core.vocab import RequestCategory, RequestStatus, label

MATCHABLE = frozenset({RequestStatus.VERIFIED, RequestStatus.MATCHED, RequestStatus.IN_PROGRESS})


@dataclass(frozen=True)
class ScorePart:
    component: str
    value: float
    weight: float

    @property
    def contribution(self) -> float:
        return self.value * self.weight


@dataclass
class Candidate:
    volunteer_id: int
    distance_km: float | None
    is_reserve: bool
    parts: list[ScorePart] = field(default_factory=list)

    @property
    def score(self) -> float:
        return round(sum(p.contribution for p in self.parts), 6)


@dataclass(frozen=True)
class RequestFacts:
    id: int
    organization_id: int
    category: str
    latitude: float | None
    longitude: float | None
    required_skills: tuple[str, ...]
    required_credentials: tuple[str, ...]
    at: datetime

    @property
    def physical(self) -> bool:
        return RequestCategory(self.category) in PHYSICAL


def earth(lat: Any, lng: Any) -> Any:
    return func.ll_to_earth(lat, lng)


def terms_of(facts: RequestFacts) -> RequestTerms:
    """One request's terms as bound values."""
    return RequestTerms(
        id=literal(facts.id),
        organization_id=literal(facts.organization_id),
        category=literal(facts.category),
        required_skills=literal(list(facts.required_skills), type_=Volunteer.skills.type),
        required_credentials=literal(list(facts.required_credentials), type_=HelpRequest.required_credentials.type),
        at=facts.at,
        physical=facts.physical,
    )


async def request_facts(
    ctx: ServiceContext, request_id: int, field_path: Sequence[str] = ("requestId",)
) -> RequestFacts:
    request = await get(
        ctx, HelpRequest, request_id, what=_("Help request"), field=field_path, scope=access.request_scope(ctx.viewer)
    )
    if RequestStatus(request.status) not in MATCHABLE:
        raise DomainError(
            "NOT_MATCHABLE",
            "Only verified, matched or in-progress requests are matched; this one is {status}.",
            field_path,
            status=label(request.status),
        )
    return RequestFacts(
        id=request.id,
        organization_id=request.organization_id,
        category=request.category,
        latitude=request.latitude,
        longitude=request.longitude,
        required_skills=tuple(request.required_skills),
        required_credentials=tuple(request.required_credentials),
        at=needed_at(request.needed_by, ctx.now()),
    )


async def _nearest(
    ctx: ServiceContext, facts: RequestFacts, *, reserve: bool, limit: int
) -> list[tuple[int, float | None]]:
    located = facts.latitude is not None
    distance = (
        func.earth_distance(earth(Volunteer.latitude, Volunteer.longitude), earth(facts.latitude, facts.longitude))
        if facts.latitude is not None
        else literal(None)
    )
    request = terms_of(facts)
    stmt = (
        select(Volunteer.id, distance.label("meters"))
        .select_from(Volunteer)
        .where(
            proposable(request),
            in_pool(reserve),
            access.volunteer_scope(ctx.viewer),
        )
        .limit(limit)
    )
    by_load = (Volunteer.active_assignments, Volunteer.id)
    if not located:
        rows = (await ctx.session.execute(stmt.order_by(*by_load))).all()
        return [(r.id, None if r.meters is None else float(r.meters) / 1000) for r in rows]
    # KNN: the GiST index on ll_to_earth(latitude, longitude) yields the nearest first.
    nearest = stmt.where(Volunteer.latitude.is_not(None)).order_by(
        earth(Volunteer.latitude, Volunteer.longitude).op("<->")(earth(facts.latitude, facts.longitude))
    )
    found = [(r.id, float(r.meters) / 1000) for r in (await ctx.session.execute(nearest)).all()]
    if len(found) < limit:
        # Volunteers who gave no location can still help; they come after everyone at a known distance.
        unlocated = stmt.where(Volunteer.latitude.is_(None)).order_by(*by_load).limit(limit - len(found))
        found += [(r.id, None) for r in (await ctx.session.execute(unlocated)).all()]
    return found


async def history_features(
    ctx: ServiceContext, volunteer_ids: Sequence[int]
) -> dict[int, tuple[int, int, datetime | None]]:
    """(completed, accepted or completed, last offer) per volunteer."""
    if not volunteer_ids:
        return {}
    stmt = (
        select(
            Assignment.volunteer_id,
            func.count().filter(Assignment.status == "completed"),
            func.count().filter(Assignment.status.in_(["accepted", "completed"])),
            func.max(Assignment.offered_at),
        )
        .where(Assignment.volunteer_id.in_(list(volunteer_ids)))
        .group_by(Assignment.volunteer_id)
    )
    return {r[0]: (int(r[1]), int(r[2]), r[3]) for r in (await ctx.session.execute(stmt)).all()}


async def volunteer_features(ctx: ServiceContext, volunteer_ids: Sequence[int]) -> dict[int, Volunteer]:
    if not volunteer_ids:
        return {}
    # populate_existing: a trigger keeps volunteers.active_assignments; copies this session loaded before a
    # decline or completion in the same transaction would rank on the old load.
    stmt = select(Volunteer).where(Volunteer.id.in_(list(volunteer_ids))).execution_options(populate_existing=True)
    rows = await ctx.session.scalars(stmt)
    return {v.id: v for v in rows}


def score_parts(
    policy: MatchingPolicy,
    *,
    category: str,
    required_skills: Sequence[str],
    distance_km: float | None,
    skills: Sequence[str],
    active: int,
    maximum: int,
    history: tuple[int, int, datetime | None] | None,
    now: datetime,
) -> list[ScorePart]:
    w = policy.weights
    distance = 0.5 if distance_km is None else max(0.0, 1.0 - distance_km / policy.max_distance_km)
    wanted = set(policy.preferred_skills.get(category, ())) | set(required_skills)
    skill = len(wanted & set(skills)) / len(wanted) if wanted else 1.0
    load = 1.0 - active / maximum if maximum else 0.0
    completed, accepted, last = history or (0, 0, None)
    reliability = (completed + 1) / (accepted + 2)  # Laplace: a newcomer starts at 0.5
    recency = 1.0 if last is None else min(1.0, (now - last).total_seconds() / (7 * 24 * 3600))
    return [
        ScorePart("distance", round(distance, 4), w.get("distance", 0.0)),
        ScorePart("skills", round(skill, 4), w.get("skills", 0.0)),
        ScorePart("load", round(load, 4), w.get("load", 0.0)),
        ScorePart("reliability", round(reliability, 4), w.get("reliability", 0.0)),
        ScorePart("recency", round(recency, 4), w.get("recency", 0.0)),
    ]


async def candidates(
    ctx: ServiceContext, request_id: int, first: int, policy: MatchingPolicy, criteria: Sequence[Any] = ()
) -> list[Candidate]:
    """The best `first` volunteers for a request, ranked, each with why."""
    access.require(ctx, "requests.coordinate")
    facts = await request_facts(ctx, request_id)
    found = [(vid, km, False) for vid, km in await _nearest(ctx, facts, reserve=False, limit=policy.prefilter)]
    if len(found) < first:
        reserve = await _nearest(ctx, facts, reserve=True, limit=first - len(found))
        found += [(vid, km, True) for vid, km in reserve]
    ids = [vid for vid, _, _ in found]
    people = await volunteer_features(ctx, ids)
    history = await history_features(ctx, ids)
    now = ctx.now()
    ranked = []
    for vid, km, is_reserve in found:
        v = people[vid]
        parts = score_parts(
            policy,
            category=facts.category,
            required_skills=facts.required_skills,
            distance_km=km,
            skills=v.skills,
            active=v.active_assignments,
            maximum=v.max_concurrent_assignments,
            history=history.get(vid),
            now=now,
        )
        ranked.append(
            Candidate(
                volunteer_id=vid, distance_km=None if km is None else round(km, 3), is_reserve=is_reserve, parts=parts
            )
        )
    for criterion in criteria:
        values = await criterion.score(ctx, facts, [c.volunteer_id for c in ranked])
        kept = []
        for candidate in ranked:
            value = values.get(candidate.volunteer_id, 0.0)
            if value is None:
                continue  # the plugin rules this volunteer out
            candidate.parts.append(ScorePart(criterion.name, round(min(1.0, max(0.0, value)), 4), criterion.weight))
            kept.append(candidate)
        ranked = kept
    # Reserve volunteers only after every active one, whatever their score.
    ranked.sort(
        key=lambda c: (c.is_reserve, -c.score, c.distance_km if c.distance_km is not None else 1e9, c.volunteer_id)
    )
    return ranked[:first]
