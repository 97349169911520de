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

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
from scipy.spatial import cKDTree
from sqlalchemy import ARRAY, BigInteger, DateTime, Float, Integer, bindparam, func, literal, select, true, type_coerce
from sqlalchemy.types import NullType

from core.errors import DomainError, NotFound, UserErrorData
from core.i18n import _
from core.models import Assignment, HelpRequest, Volunteer
from core.services import access
from core.services.context import ServiceContext, Viewer
from core.services.matching_policy import (
    PHYSICAL,
    MatchingPolicy,
    RequestTerms,
    allowed_modes,
    in_pool,
    needed_at,
    proposable,
    terms_of_row,
    volunteer_conditions,
)
from core.vocab import RequestCategory, RequestStatus, label

MATCHABLE = frozenset({RequestStatus.VERIFIED, RequestStatus.MATCHED, RequestStatus.IN_PROGRESS})


class ScorePart(NamedTuple):
    # A tuple, not a dataclass: a plan of 1,000 requests builds 50,000 of them.
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


# The columns `facts_of` reads, for callers that load many requests without ORM objects.
FACT_COLUMNS = (
    HelpRequest.id,
    HelpRequest.organization_id,
    HelpRequest.category,
    HelpRequest.latitude,
    HelpRequest.longitude,
    HelpRequest.required_skills,
    HelpRequest.required_credentials,
    HelpRequest.needed_by,
)


def facts_of(request: Any, now: datetime) -> RequestFacts:
    """A request's facts from its row (an ORM object or a row of FACT_COLUMNS)."""
    return RequestFacts(
        id=request.id,
        organization_id=request.organization_id,
        category=request.category,
        latitude=request.latitude,
        longitude=request.longitude,
        required_skills=tuple(request.required_skills),
        required_credentials=tuple(request.required_credentials),
        at=needed_at(request.needed_by, now),
    )


async def request_facts(
    ctx: ServiceContext, request_id: int, field_path: Sequence[str] = ("requestId",)
) -> RequestFacts:
    # Plain columns through the connection: the facts are all a search reads of the request (no ORM object).
    conn = await ctx.session.connection()
    row = (await conn.execute(_facts_statement(ctx.viewer), {"request_id": request_id})).first()
    if row is None:
        raise NotFound(_("Help request"), field_path)
    if RequestStatus(row.status) not in MATCHABLE:
        raise DomainError(
            "NOT_MATCHABLE",
            "Only verified, matched or in-progress requests are matched; this one is {status}.",
            field_path,
            status=label(row.status),
        )
    return facts_of(row, ctx.now())


class Hit(NamedTuple):
    """A volunteer the hard filters let through for a request, with what scoring reads of them (selected with
    the search itself: the load is the current one, which a trigger keeps, not a copy loaded earlier)."""

    volunteer_id: int
    distance_km: float | None
    skills: tuple[str, ...]
    active: int
    maximum: int


HIT_COLUMNS = (
    Volunteer.id,
    Volunteer.skills,
    Volunteer.active_assignments,
    Volunteer.max_concurrent_assignments,
)


def _hit(row: Any, meters: float | None) -> Hit:
    return Hit(
        volunteer_id=row.id,
        distance_km=None if meters is None else float(meters) / 1000,
        skills=tuple(row.skills),
        active=row.active_assignments,
        maximum=row.max_concurrent_assignments,
    )


# One request's search runs a few times a second while plans run beside it: its statements are built once per
# shape (viewer, pool, located, physical, any skill or credential required) with the request's values as bound
# parameters, so a call neither rebuilds the hard filters nor re-renders SQL (SQLAlchemy's compiled cache then
# answers them). Bounded: a shape is per viewer.
_SHAPES = 256


@lru_cache(maxsize=_SHAPES)
def _facts_statement(viewer: Viewer) -> Any:
    return select(*FACT_COLUMNS, HelpRequest.status).where(
        HelpRequest.id == bindparam("request_id"), access.request_scope(viewer)
    )


@lru_cache(maxsize=_SHAPES)
def _search_statement(
    viewer: Viewer, *, reserve: bool, physical: bool, nearest: bool, located: bool, skills: bool, credentials: bool
) -> Any:
    """The first `:limit` proposable volunteers of one pool for one request, each with their history (so
    scoring needs no statement of its own). `nearest`: those with a location, nearest first (ties by id);
    otherwise those without one (`located` False: everyone, the request having no location), by load."""
    request = RequestTerms(
        id=bindparam("request_id", type_=HelpRequest.id.type),
        organization_id=bindparam("organization_id", type_=HelpRequest.organization_id.type),
        category=bindparam("category", type_=HelpRequest.category.type),
        required_skills=bindparam("required_skills", type_=Volunteer.skills.type) if skills else None,
        required_credentials=(
            bindparam("required_credentials", type_=HelpRequest.required_credentials.type) if credentials else None
        ),
        at=bindparam("at", type_=DateTime(timezone=True)),
        physical=physical,
    )
    here = earth(bindparam("latitude", type_=Float()), bindparam("longitude", type_=Float()))
    there = earth(Volunteer.latitude, Volunteer.longitude)
    stmt = select(*HIT_COLUMNS).where(proposable(request), in_pool(reserve), access.volunteer_scope(viewer))
    if nearest:
        # KNN: the GiST index on ll_to_earth(latitude, longitude) yields the nearest first; the id makes the
        # order of equally distant volunteers (and so who makes the cut) deterministic, by an incremental sort.
        knn = there.op("<->")(here)
        stmt = stmt.add_columns(knn.label("knn")).where(Volunteer.latitude.is_not(None)).order_by(knn, Volunteer.id)
    else:
        if located:
            stmt = stmt.where(Volunteer.latitude.is_(None))
        stmt = stmt.order_by(Volunteer.active_assignments, Volunteer.id)
    # PostgreSQL plans this afresh per call (a custom plan: a generic one measured ~30x slower), so what is left
    # out of the statement when known to be true (skills, credentials) is planning time saved as well.
    hits = stmt.limit(bindparam("limit", type_=Integer())).subquery("hit")
    # The history of just those found (one index probe each, after the LIMIT): what `history_features` answers.
    history = (
        select(
            func.count().filter(Assignment.status == "completed").label("completed"),
            func.count().filter(Assignment.status.in_(["accepted", "completed"])).label("accepted"),
            func.max(Assignment.offered_at).label("last_offered"),
        )
        .where(Assignment.volunteer_id == hits.c.id)
        .lateral("history")
    )
    # earth_distance(a, b) is earthdistance's `sec_to_gc(cube_distance(a, b))` and `<->` is cube_distance: the
    # same metres from the distance the scan has already computed, rather than two more ll_to_earth a row.
    meters = func.sec_to_gc(hits.c.knn) if nearest else literal(None)
    order = (hits.c.knn, hits.c.id) if nearest else (hits.c.active_assignments, hits.c.id)
    return select(hits, meters.label("meters"), history).select_from(hits.join(history, true())).order_by(*order)


def _params(facts: RequestFacts, limit: int) -> dict[str, Any]:
    return {
        "request_id": facts.id,
        "organization_id": facts.organization_id,
        "category": facts.category,
        "required_skills": list(facts.required_skills),
        "required_credentials": list(facts.required_credentials),
        "at": facts.at,
        "latitude": facts.latitude,
        "longitude": facts.longitude,
        "limit": limit,
    }


History = tuple[int, int, datetime | None]


async def _search(ctx: ServiceContext, facts: RequestFacts, *, reserve: bool, limit: int) -> list[tuple[Hit, History]]:
    """One request's first `limit` proposable volunteers, each with their history: nearest first (ties by id),
    then those without a location by load; for a request without a location, by load. `nearest_many` answers
    the same hits for a batch."""
    conn = await ctx.session.connection()
    located = facts.latitude is not None
    shape = {
        "reserve": reserve,
        "physical": facts.physical,
        "located": located,
        # Most requests need no skill or credential: their statement leaves those filters out.
        "skills": bool(facts.required_skills),
        "credentials": bool(facts.required_credentials),
    }
    found: list[tuple[Hit, History]] = []
    if located:
        stmt = _search_statement(ctx.viewer, nearest=True, **shape)
        for r in await conn.execute(stmt, _params(facts, limit)):
            found.append((_hit(r, r.meters), (r.completed, r.accepted, r.last_offered)))
        if len(found) >= limit:
            return found
    # Volunteers who gave no location can still help; they come after everyone at a known distance.
    stmt = _search_statement(ctx.viewer, nearest=False, **shape)
    for r in await conn.execute(stmt, _params(facts, limit - len(found))):
        found.append((_hit(r, None), (r.completed, r.accepted, r.last_offered)))
    return found


async def _nearest(ctx: ServiceContext, facts: RequestFacts, *, reserve: bool, limit: int) -> list[Hit]:
    """`_search` without the history."""
    return [hit for hit, _ in await _search(ctx, facts, reserve=reserve, limit=limit)]


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
    return Scorer(policy, category, required_skills, now)(distance_km, skills, active, maximum, history)


class Scorer:
    """The score parts of one request's candidates (what does not depend on the volunteer, worked out once:
    a plan scores ten thousand pairs)."""

    def __init__(self, policy: MatchingPolicy, category: str, required_skills: Sequence[str], now: datetime) -> None:
        w = policy.weights
        self.weights = tuple(w.get(c, 0.0) for c in ("distance", "skills", "load", "reliability", "recency"))
        self.max_distance_km = policy.max_distance_km
        self.wanted = set(policy.preferred_skills.get(category, ())) | set(required_skills)
        self.now = now

    def __call__(
        self,
        distance_km: float | None,
        skills: Sequence[str],
        active: int,
        maximum: int,
        history: tuple[int, int, datetime | None] | None,
    ) -> list[ScorePart]:
        wanted = self.wanted
        distance = 0.5 if distance_km is None else max(0.0, 1.0 - distance_km / self.max_distance_km)
        skill = len(wanted & set(skills)) / len(wanted) if wanted else 1.0
        load = 1.0 - active / maximum if maximum else 0.0
        completed, accepted, last = history or (0, 0, None)
        reliability = (completed + 1) / (accepted + 2)  # Laplace: a newcomer starts at 0.5
        recency = 1.0 if last is None else min(1.0, (self.now - last).total_seconds() / (7 * 24 * 3600))
        w_distance, w_skills, w_load, w_reliability, w_recency = self.weights
        return [
            ScorePart("distance", round(distance, 4), w_distance),
            ScorePart("skills", round(skill, 4), w_skills),
            ScorePart("load", round(load, 4), w_load),
            ScorePart("reliability", round(reliability, 4), w_reliability),
            ScorePart("recency", round(recency, 4), w_recency),
        ]


def _scored(
    policy: MatchingPolicy,
    facts: RequestFacts,
    found: Sequence[tuple[Hit, bool]],
    history: dict[int, tuple[int, int, datetime | None]],
    now: datetime,
) -> list[Candidate]:
    score = Scorer(policy, facts.category, facts.required_skills, now)
    return [
        Candidate(
            volunteer_id=hit.volunteer_id,
            distance_km=None if hit.distance_km is None else round(hit.distance_km, 3),
            is_reserve=is_reserve,
            parts=score(hit.distance_km, hit.skills, hit.active, hit.maximum, history.get(hit.volunteer_id)),
        )
        for hit, is_reserve in found
    ]


async def _ranked(
    ctx: ServiceContext, facts: RequestFacts, ranked: list[Candidate], first: int, criteria: Sequence[Any]
) -> list[Candidate]:
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


async def candidates(
    ctx: ServiceContext, request_id: int, first: int, policy: MatchingPolicy, criteria: Sequence[Any] = ()
) -> list[Candidate]:
    """The best `first` volunteers for a request, ranked, each with why."""
    access.require(ctx, "requests.coordinate")
    facts = await request_facts(ctx, request_id)
    found = [(hit, False, h) for hit, h in await _search(ctx, facts, reserve=False, limit=policy.prefilter)]
    if len(found) < first:
        found += [(hit, True, h) for hit, h in await _search(ctx, facts, reserve=True, limit=first - len(found))]
    history = {hit.volunteer_id: h for hit, _, h in found}
    hits = [(hit, is_reserve) for hit, is_reserve, _ in found]
    return await _ranked(ctx, facts, _scored(policy, facts, hits, history, ctx.now()), first, criteria)


# -- A batch in one pass -------------------------------------------------------------------------------------------
#
# `_nearest` is one nearest-neighbour scan per request; a plan of 1,000 requests made 1,000 of them (over a
# second of index work). A batch instead loads, in one statement, everyone who passes the hard filters that do
# not depend on the request (`load_pool`), orders each request's share of them by distance in memory (a k-d tree
# per group of requests with the same organisation, pool, modes and skills), and lets PostgreSQL check the
# per-pair filters -- the very `proposable` conditions of `_nearest` -- for the few nearest of every request at
# once, one statement per round, widening only where too many fail.
#
# Distances: the k-d tree's only choose whom to check, with a margin (`_Search.passed`). Who makes the cut, in
# what order, and the distance reported are decided on the distances earthdistance itself computes -- `ll_to_earth`,
# cube's `<->` and `earth_distance` -- evaluated here by the same operations in the same order with the C
# library's cos, sin and asin (`_earth`, `_chord`, `_great_circle`): bit for bit PostgreSQL's where the server
# uses the same C library (a test compares them on 40,000 points). Asking PostgreSQL instead costs ~35 us a pair
# (its SQL functions are not inlined): a third of a second for a plan of 1,000.

# Distances in the k-d tree may differ from `_chord`'s by rounding (around 1e-9 m): a volunteer this close to
# the cut is checked rather than judged from the tree.
MARGIN_M = 1e-3

Point = tuple[float, float, float]


def _earth(latitude: float, longitude: float, radius: float) -> Point:
    """earthdistance's ll_to_earth: cube(cube(cube(earth()*cos(radians(lat))*cos(radians(lng))),
    earth()*cos(radians(lat))*sin(radians(lng))), earth()*sin(radians(lat)))."""
    lat, lng = math.radians(latitude), math.radians(longitude)
    return (radius * math.cos(lat) * math.cos(lng), radius * math.cos(lat) * math.sin(lng), radius * math.sin(lat))


def _chord(a: Point, b: Point) -> float:
    """cube's `<->` (cube_distance) between two points: the sum of squares in dimension order, then sqrt."""
    total = 0.0
    for x, y in zip(a, b, strict=True):
        d = x - y
        total += d * d
    return math.sqrt(total)


def _great_circle(chord: float, radius: float) -> float:
    """earthdistance's earth_distance from the chord (sec_to_gc)."""
    if chord < 0:
        return 0.0
    if chord / (2 * radius) > 1:
        return math.pi * radius
    return 2 * radius * math.asin(chord / (2 * radius))


@dataclass(frozen=True)
class _Group:
    """The pool's volunteers a set of like requests may be offered, before the per-pair filters."""

    located: np.ndarray  # pool rows with a location, as indexed by `tree`
    tree: cKDTree | None
    unlocated_by_load: np.ndarray  # pool rows without a location, by (load, id)
    everyone_by_load: np.ndarray  # all of the group's pool rows, by (load, id)


class Pool:
    """Everyone a batch may propose before the per-pair filters: available, with room, in the viewer's scope,
    of the batch's organisations, and of one pool (active, or the reserve: loaded only when needed)."""

    def __init__(self, rows: Sequence[Any], radius: float, *, reserve: bool) -> None:
        self.reserve = reserve
        self.radius = radius
        ids, organization, mode, latitude, longitude, skills, active, maximum = (
            tuple(zip(*rows, strict=True)) if rows else ((),) * 8
        )
        self.ids = np.array(ids, dtype=np.int64)
        self.organization = np.array(organization, dtype=np.int64)
        self.mode = np.array(mode, dtype=object)
        self.active = np.array(active, dtype=np.int64)
        self.maximum = maximum
        self.skills = [tuple(s) for s in skills]
        self.latitude, self.longitude = latitude, longitude
        self.is_located = np.array([lat is not None for lat in latitude], dtype=bool)
        # For the k-d tree only (numpy's cos and sin need not be the C library's); `point` is exact.
        lat = np.radians(np.array([0.0 if x is None else x for x in latitude], dtype=np.float64))
        lng = np.radians(np.array([0.0 if x is None else x for x in longitude], dtype=np.float64))
        self.array = np.column_stack(
            (radius * np.cos(lat) * np.cos(lng), radius * np.cos(lat) * np.sin(lng), radius * np.sin(lat))
        )
        self.row = {vid: i for i, vid in enumerate(ids)}
        self._points: dict[int, Point] = {}
        self._groups: dict[tuple[int, bool, frozenset[str]], _Group] = {}
        self._has_skill: dict[str, np.ndarray] = {}

    def point(self, row: int) -> Point:
        point = self._points.get(row)
        if point is None:
            point = self._points[row] = _earth(self.latitude[row], self.longitude[row], self.radius)
        return point

    def hit(self, row: int, meters: float | None) -> Hit:
        return Hit(
            volunteer_id=int(self.ids[row]),
            distance_km=None if meters is None else meters / 1000,
            skills=self.skills[row],
            active=int(self.active[row]),
            maximum=self.maximum[row],
        )

    def group(self, facts: RequestFacts) -> _Group:
        # Conditions `proposable` checks anyway, applied early so that PostgreSQL is rarely asked about
        # someone it will refuse: the organisation, the modes and the skills.
        key = (facts.organization_id, facts.physical, frozenset(facts.required_skills))
        group = self._groups.get(key)
        if group is None:
            mask = (self.organization == facts.organization_id) & np.isin(self.mode, allowed_modes(facts.physical))
            for skill in key[2]:
                mask &= self._skill(skill)
            members = np.flatnonzero(mask)
            located = members[self.is_located[members]]
            unlocated = members[~self.is_located[members]]
            group = _Group(
                located=located,
                tree=cKDTree(self.array[located]) if len(located) else None,
                unlocated_by_load=self._by_load(unlocated),
                everyone_by_load=self._by_load(members),
            )
            self._groups[key] = group
        return group

    def _skill(self, skill: str) -> np.ndarray:
        has = self._has_skill.get(skill)
        if has is None:
            has = np.array([skill in s for s in self.skills], dtype=bool)
            self._has_skill[skill] = has
        return has

    def _by_load(self, rows: np.ndarray) -> np.ndarray:
        return rows[np.lexsort((self.ids[rows], self.active[rows]))]


async def load_pool(ctx: ServiceContext, organization_ids: Iterable[int], *, reserve: bool) -> Pool:
    stmt = select(
        Volunteer.id,
        Volunteer.organization_id,
        Volunteer.mode,
        Volunteer.latitude,
        Volunteer.longitude,
        # asyncpg's lists as they come (the ARRAY type's per-row processing costs a tenth of the statement).
        type_coerce(Volunteer.skills, NullType()),
        Volunteer.active_assignments,
        Volunteer.max_concurrent_assignments,
    ).where(
        *volunteer_conditions().values(),
        Volunteer.organization_id.in_(sorted(set(organization_ids))),
        in_pool(reserve),
        access.volunteer_scope(ctx.viewer),
    )
    # earth() may be redefined (earthdistance allows it); the same statement reads it, folded to a constant.
    stmt = stmt.add_columns(func.earth().label("radius"))
    # Core, not the ORM's result machinery: ten thousand rows or more.
    rows = (await (await ctx.session.connection()).execute(stmt)).all()
    return Pool([r[:-1] for r in rows], float(rows[0][-1]) if rows else 0.0, reserve=reserve)


@dataclass
class _Search:
    """One request's walk through its group: the nearest first, widening the window until the first `limit`
    that pass are known for sure; then, when too few pass, those without a location by load (a request
    without a location walks its whole group by load)."""

    facts: RequestFacts
    limit: int
    group: _Group
    point: Point | None
    window: int = 0  # how many of the nearest have been sent to be checked
    last_sent: float = 0.0  # the in-memory distance of the farthest of them
    approx: dict[int, float] = field(default_factory=dict)  # pool row -> distance in memory
    # (`<->` as PostgreSQL computes it, volunteer id, pool row, metres) of the nearest that passed
    near: list[tuple[float, int, int, float]] = field(default_factory=list)
    by_load: np.ndarray | None = None  # the order of the walk by load, once in it
    taken: int = 0  # how many of `by_load` have been sent
    load_hits: list[int] = field(default_factory=list)  # pool rows of the walk by load that passed, in order
    result: list[tuple[int, float | None]] | None = None  # (pool row, metres), once known

    def __post_init__(self) -> None:
        if self.limit <= 0:
            self.result = []
        elif self.point is None or self.group.tree is None:
            self._by_load()

    def widen(self) -> int:
        """How many of the nearest to look at now: two more than needed at first (to see past the cut), then
        twice as many where some failed the per-pair filters."""
        self.window = min(len(self.group.located), max(self.limit + 2, 2 * self.window))
        return self.window

    def nearest(self, distances: np.ndarray, indices: np.ndarray) -> list[int]:
        """Pool rows to check, from the k-d tree's answer for the current window."""
        self.last_sent = float(distances[-1])
        rows = self.group.located[indices].tolist()
        # Not `[previous window:]`: equally distant volunteers may come back in another order from a wider query.
        fresh = [r for r in rows if r not in self.approx]
        self.approx.update(zip(rows, distances.tolist(), strict=True))
        return fresh

    def by_load_chunk(self) -> list[int]:
        assert self.by_load is not None
        wanted = self.limit - len(self.near) - len(self.load_hits)
        chunk = self.by_load[self.taken : self.taken + max(2 * wanted, 8)].tolist()
        self.taken += len(chunk)
        return chunk

    def passed(self, pool: Pool, sent: list[int], failed: set[int]) -> None:
        """Take in which of `sent` failed (their volunteer ids); close the search once its answer is known."""
        if self.by_load is None:
            assert self.point is not None
            for row in sent:
                vid = int(pool.ids[row])
                if vid not in failed:
                    chord = _chord(pool.point(row), self.point)
                    self.near.append((chord, vid, row, _great_circle(chord, pool.radius)))
            exhausted = self.window == len(self.group.located)
            if len(self.near) >= self.limit:
                cut = sorted(self.approx[row] for _, _, row, _ in self.near)[self.limit - 1]
                # Everyone not sent yet is farther than the cut by more than rounding: none of them can make it.
                if exhausted or self.last_sent > cut + MARGIN_M:
                    self._finish()
            elif exhausted:
                self._by_load()
            return
        for row in sent:
            if int(pool.ids[row]) not in failed and len(self.near) + len(self.load_hits) < self.limit:
                self.load_hits.append(row)
        if len(self.near) + len(self.load_hits) >= self.limit or self.taken >= len(self.by_load):
            self._finish()

    def _by_load(self) -> None:
        self.by_load = self.group.everyone_by_load if self.point is None else self.group.unlocated_by_load
        if len(self.by_load) == 0:
            self._finish()

    def _finish(self) -> None:
        # The order `_nearest` gives: by `<->`, then id.
        self.result = [(row, meters) for _, _, row, meters in sorted(self.near)[: self.limit]]
        self.result += [(row, None) for row in self.load_hits]


async def _failing(
    ctx: ServiceContext, pairs: list[tuple[int, int]], *, reserve: bool, now: datetime
) -> set[tuple[int, int]]:
    """Which (request, volunteer) pairs fail `proposable` or the pool (the conditions `_nearest` applies): one
    statement for all, answering only the failures (few: the pool's conditions were applied before)."""
    if not pairs:
        return set()
    pair = (
        func.unnest(
            literal([r for r, _ in pairs], type_=ARRAY(BigInteger)),
            literal([v for _, v in pairs], type_=ARRAY(BigInteger)),
        )
        .table_valued("request_id", "volunteer_id")
        .render_derived(name="pair")
    )
    passing = (
        select(pair.c.request_id, pair.c.volunteer_id)
        .select_from(pair)
        .join(HelpRequest, HelpRequest.id == pair.c.request_id)
        .join(Volunteer, Volunteer.id == pair.c.volunteer_id)
        .where(
            proposable(terms_of_row(now), outer=(HelpRequest,)),
            in_pool(reserve),
            access.volunteer_scope(ctx.viewer),
        )
    )
    stmt = select(pair.c.request_id, pair.c.volunteer_id).except_(passing)
    return {(r[0], r[1]) for r in (await ctx.session.execute(stmt)).all()}


async def nearest_many(
    ctx: ServiceContext, requests: Sequence[RequestFacts], *, limits: dict[int, int], pool: Pool, now: datetime
) -> dict[int, list[Hit]]:
    """For every request, what `_nearest(ctx, facts, reserve=pool.reserve, limit=limits[facts.id])` answers,
    for the whole batch in one statement per round of checks (usually one)."""
    searches = []
    for facts in requests:
        point = None
        if facts.latitude is not None and facts.longitude is not None:
            point = _earth(facts.latitude, facts.longitude, pool.radius)
        searches.append(_Search(facts, limits[facts.id], pool.group(facts), point))
    while open_ := [s for s in searches if s.result is None]:
        sent = [(s, s.by_load_chunk()) for s in open_ if s.by_load is not None]
        # The nearest: one k-d tree query for all the open searches of a group that look as far.
        asks: dict[tuple[int, int], list[_Search]] = defaultdict(list)
        for s in open_:
            if s.by_load is None:
                asks[(id(s.group), s.widen())].append(s)
        for (_group, window), alike in asks.items():
            tree = alike[0].group.tree
            assert tree is not None
            distances, indices = tree.query(np.array([s.point for s in alike]), k=window)
            distances, indices = distances.reshape(len(alike), window), indices.reshape(len(alike), window)
            sent += [(s, s.nearest(d, i)) for s, d, i in zip(alike, distances, indices, strict=True)]
        failed = await _failing(
            ctx, [(s.facts.id, int(pool.ids[row])) for s, rows in sent for row in rows], reserve=pool.reserve, now=now
        )
        by_request: dict[int, set[int]] = defaultdict(set)
        for rid, vid in failed:
            by_request[rid].add(vid)
        for s, rows in sent:
            s.passed(pool, rows, by_request[s.facts.id])
    return {s.facts.id: [pool.hit(row, meters) for row, meters in s.result or []] for s in searches}


async def facts_many(
    ctx: ServiceContext, request_ids: Sequence[int], field_name: str = "requestIds"
) -> list[RequestFacts]:
    """`request_facts` of many requests in one statement (a problem with any of them is reported at its index)."""
    rows = (
        await ctx.session.execute(
            select(*FACT_COLUMNS, HelpRequest.status).where(
                HelpRequest.id.in_(list(request_ids)), access.request_scope(ctx.viewer)
            )
        )
    ).all()
    found = {r.id: r for r in rows}
    now = ctx.now()
    problems, facts = [], []
    for index, rid in enumerate(request_ids):
        row = found.get(rid)
        where = (field_name, str(index))
        if row is None:
            problems.append(UserErrorData("Help request not found.", "NOT_FOUND", where))
        elif RequestStatus(row.status) not in MATCHABLE:
            problems.append(
                UserErrorData.of(
                    "NOT_MATCHABLE",
                    "Only verified, matched or in-progress requests are matched; this one is {status}.",
                    where,
                    status=label(row.status),
                )
            )
        else:
            facts.append(facts_of(row, now))
    if problems:
        raise DomainError.many(problems)
    return facts


async def candidates_many(
    ctx: ServiceContext, request_ids: Sequence[int], first: int, policy: MatchingPolicy, criteria: Sequence[Any] = ()
) -> dict[int, list[Candidate]]:
    """`candidates` of many requests at once, by one candidate search for the batch: the same lists."""
    access.require(ctx, "requests.coordinate")
    requests = list({f.id: f for f in await facts_many(ctx, request_ids)}.values())
    now = ctx.now()
    organizations = {f.organization_id for f in requests}
    pool = await load_pool(ctx, organizations, reserve=False)
    active = await nearest_many(ctx, requests, limits={f.id: policy.prefilter for f in requests}, pool=pool, now=now)
    reserve: dict[int, list[Hit]] = {}
    if short := [f for f in requests if len(active[f.id]) < first]:
        reserve = await nearest_many(
            ctx,
            short,
            limits={f.id: first - len(active[f.id]) for f in short},
            pool=await load_pool(ctx, organizations, reserve=True),
            now=now,
        )
    found = {f.id: [(h, False) for h in active[f.id]] + [(h, True) for h in reserve.get(f.id, [])] for f in requests}
    history = await history_features(ctx, sorted({h.volunteer_id for hits in found.values() for h, _ in hits}))
    return {
        f.id: await _ranked(ctx, f, _scored(policy, f, found[f.id], history, now), first, criteria) for f in requests
    }
