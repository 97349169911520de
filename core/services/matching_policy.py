"""How candidates are ranked, who may be offered a request at all, and when requests are overdue.

The hard filters live here, once: matching's candidate search, batch planning and `offerAssignment` (and so
`commitPlan`) all evaluate the same SQL conditions, so "proposed by matching" and "accepted by an offer"
cannot drift apart. Everything else here is configuration.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, literal, not_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import Assignment, CategoryTraining, HelpRequest, Volunteer, VolunteerCredential, VolunteerTraining
from core.vocab import (
    ACTIVE_ASSIGNMENT_STATUSES,
    AssignmentStatus,
    Availability,
    RequestCategory,
    Urgency,
    VolunteerMode,
)

# Categories whose help is delivered in person: online volunteers cannot do them.
PHYSICAL = frozenset(
    {
        RequestCategory.MEDICINE,
        RequestCategory.FOOD,
        RequestCategory.DAILY_SUPPLIES,
        RequestCategory.MEDICAL_CARE,
        RequestCategory.EPIDEMIC_PREVENTION_SUPPLIES,
    }
)


@dataclass(frozen=True)
class Targets:
    """Time allowed per stage; fulfilment is also bounded by the request's own needed-by time."""

    verify: timedelta
    match: timedelta
    fulfil: timedelta


@dataclass(frozen=True)
class MatchingPolicy:
    # Soft-score weights; each component is in [0, 1] and the score is their weighted sum.
    weights: dict[str, float] = field(
        default_factory=lambda: {
            "distance": 0.40,
            "skills": 0.20,
            "load": 0.15,
            "reliability": 0.15,
            "recency": 0.10,
        }
    )
    # Beyond this the distance component is 0.
    max_distance_km: float = 30.0
    # Nearest qualified volunteers considered per request before scoring (the KNN prefilter).
    prefilter: int = 40
    # Per request in batch planning: fewer, since the solver sees every request's list at once.
    plan_prefilter: int = 10
    # Skills that make a volunteer better suited to a category (beyond the request's required skills).
    preferred_skills: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {
            RequestCategory.MEDICINE: ("driving", "pharmacy", "nursing"),
            RequestCategory.MEDICAL_CARE: ("driving", "nursing", "first_aid"),
            RequestCategory.FOOD: ("driving", "logistics"),
            RequestCategory.DAILY_SUPPLIES: ("driving", "logistics", "childcare"),
            RequestCategory.EPIDEMIC_PREVENTION_SUPPLIES: ("logistics", "warehouse", "driving"),
            RequestCategory.PSYCHOLOGICAL: ("psychological_counseling",),
        }
    )
    offer_ttl: timedelta = timedelta(minutes=30)
    targets: dict[str, Targets] = field(
        default_factory=lambda: {
            Urgency.CRITICAL: Targets(timedelta(minutes=30), timedelta(hours=1), timedelta(hours=6)),
            Urgency.HIGH: Targets(timedelta(hours=2), timedelta(hours=4), timedelta(hours=24)),
            Urgency.NORMAL: Targets(timedelta(hours=8), timedelta(hours=24), timedelta(hours=72)),
            Urgency.LOW: Targets(timedelta(hours=24), timedelta(hours=72), timedelta(days=7)),
        }
    )

    @classmethod
    def from_env(cls) -> MatchingPolicy:
        """YUNSHEGONG_MATCH_WEIGHTS="distance=0.5,skills=0.2,…", YUNSHEGONG_OFFER_TTL_MINUTES=30,
        YUNSHEGONG_TARGETS="critical=30/60/360,…". A value that cannot work raises core.settings.SettingsError
        (one line naming the variable), checked when a command starts."""
        from core.settings import SettingsError

        policy = cls()
        raw = os.environ.get("YUNSHEGONG_MATCH_WEIGHTS")
        if raw:
            weights = dict(policy.weights)
            for part in raw.split(","):
                key, _, value = part.partition("=")
                if key.strip() not in weights:
                    reason = f"unknown weight {key.strip()!r}; known: {', '.join(sorted(weights))}"
                    raise SettingsError("match_weights", reason, label="YUNSHEGONG_MATCH_WEIGHTS")
                weights[key.strip()] = _number(value, "YUNSHEGONG_MATCH_WEIGHTS", key.strip())
            policy = replace(policy, weights=weights)
        ttl = os.environ.get("YUNSHEGONG_OFFER_TTL_MINUTES")
        if ttl:
            minutes = _minutes(ttl, "YUNSHEGONG_OFFER_TTL_MINUTES")
            policy = replace(policy, offer_ttl=timedelta(minutes=minutes))
        raw_targets = os.environ.get("YUNSHEGONG_TARGETS")
        if raw_targets:
            policy = replace(policy, targets=parse_targets(raw_targets, policy.targets))
        return policy


def _number(raw: str, variable: str, key: str) -> float:
    from core.settings import SettingsError

    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise SettingsError(variable, f"{key} must be a number of 0 or more (got {raw.strip()!r})", label=variable)
    return value


def _minutes(raw: str, variable: str) -> int:
    from core.settings import SettingsError

    text = raw.strip()
    if not text.isascii() or not text.isdigit() or not 0 < int(text) <= 100_000:
        raise SettingsError(variable, f"whole minutes, more than 0 (got {text!r})", label=variable)
    return int(text)


def parse_targets(raw: str, defaults: dict[str, Targets]) -> dict[str, Targets]:
    """`critical=30/60/360,high=120/240/1440`: minutes to verify / match / fulfil, per urgency."""
    from core.settings import SettingsError

    variable = "YUNSHEGONG_TARGETS"
    targets = dict(defaults)
    for part in raw.split(","):
        urgency, _, minutes = part.partition("=")
        if urgency.strip() not in {u.value for u in Urgency}:
            known = ", ".join(u.value for u in Urgency)
            raise SettingsError("targets", f"unknown urgency {urgency.strip()!r}; known: {known}", label=variable)
        steps = minutes.split("/")
        if len(steps) != 3:
            reason = f"{urgency.strip()} needs verify/match/fulfil minutes, e.g. 30/60/360 (got {minutes!r})"
            raise SettingsError("targets", reason, label=variable)
        verify, match, fulfil = (timedelta(minutes=_minutes(m, variable)) for m in steps)
        targets[Urgency(urgency.strip())] = Targets(verify, match, fulfil)
    return targets


# -- The hard filters ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HardFilter:
    """One rule a volunteer must pass to be offered a request, with the code an offer answers when they fail it.

    `overridable`: a coordinator may waive it with a stated, audited reason (they can vouch for a skill or
    judge an expired pass acceptable). The others protect an invariant (capacity, one live assignment per
    pair, organisations) or the volunteer's own say (availability) and hold for everyone."""

    name: str
    code: str
    overridable: bool


NOT_QUALIFIED = "VOLUNTEER_NOT_QUALIFIED"
FULLY_STAFFED = "REQUEST_FULLY_STAFFED"

# In the order an offer reports them.
HARD_FILTERS: tuple[HardFilter, ...] = (
    HardFilter("available", "VOLUNTEER_UNAVAILABLE", overridable=False),
    HardFilter("capacity", "VOLUNTEER_AT_CAPACITY", overridable=False),
    HardFilter("organization", "ORGANIZATION_MISMATCH", overridable=False),
    HardFilter("not_on_request", "ALREADY_ASSIGNED", overridable=False),
    HardFilter("mode", NOT_QUALIFIED, overridable=True),
    HardFilter("skills", NOT_QUALIFIED, overridable=True),
    HardFilter("credentials", NOT_QUALIFIED, overridable=True),
    HardFilter("trainings", NOT_QUALIFIED, overridable=True),
)
FILTER_BY_NAME = {f.name: f for f in HARD_FILTERS}


@dataclass(frozen=True)
class RequestTerms:
    """What the hard filters need of a request, as SQL: bound values (one request), or columns of a FROM
    element of the enclosing query (a batch, or the locked row an offer checks). `physical` is a Python
    bool when known, so the mode filter becomes a plain IN list the planner can use. `required_skills` or
    `required_credentials` None: known to be none, so their filter is left out (always true then), and a
    statement built for such requests is lighter to plan and to run."""

    id: Any
    organization_id: Any
    category: Any
    required_skills: Any
    required_credentials: Any
    at: Any
    physical: bool | ColumnElement[bool]


def needed_at(needed_by: datetime | None, now: datetime) -> datetime:
    """When a credential must be valid: the needed-by time, or now when that has passed or is not set
    (the work happens now; a pass valid only at a past deadline does not help)."""
    return now if needed_by is None or needed_by < now else needed_by


def needed_at_sql(needed_by: Any, now: datetime) -> Any:
    """`needed_at` in SQL (GREATEST ignores NULL)."""
    return func.greatest(needed_by, literal(now))


def physical_sql(category: Any) -> ColumnElement[bool]:
    return category.in_(sorted(c.value for c in PHYSICAL))


def terms_of_row(now: datetime) -> RequestTerms:
    """The terms of `help_requests` as columns (the request an offer locked, a batch's requests)."""
    return RequestTerms(
        id=HelpRequest.id,
        organization_id=HelpRequest.organization_id,
        category=HelpRequest.category,
        required_skills=HelpRequest.required_skills,
        required_credentials=HelpRequest.required_credentials,
        at=needed_at_sql(HelpRequest.needed_by, now),
        physical=physical_sql(HelpRequest.category),
    )


def allowed_modes(physical: bool) -> list[str]:
    """Who may serve: in-person help needs someone offline (or called up from the reserve)."""
    modes = [VolunteerMode.OFFLINE.value, VolunteerMode.RESERVE.value]
    return modes if physical else [*modes, VolunteerMode.ONLINE.value]


def filter_conditions(request: RequestTerms, outer: Sequence[Any] = ()) -> dict[str, ColumnElement[bool]]:
    """Each hard filter as a condition on `Volunteer` against `request`, by name (see HARD_FILTERS).
    `outer`: the FROM elements the request's columns come from, correlated explicitly (they may sit several
    levels up, as in a LATERAL)."""
    credentials_ok: ColumnElement[bool] = true()
    if request.required_credentials is not None:
        need = func.unnest(request.required_credentials).table_valued("kind").render_derived(name="need")
        credential_ok = exists(
            select(VolunteerCredential.id)
            .where(
                VolunteerCredential.volunteer_id == Volunteer.id,
                VolunteerCredential.kind == need.c.kind,
                (VolunteerCredential.valid_from.is_(None)) | (VolunteerCredential.valid_from <= request.at),
                (VolunteerCredential.expires_at.is_(None)) | (VolunteerCredential.expires_at > request.at),
            )
            .correlate(Volunteer, need, *outer)
        )
        credentials_ok = not_(
            exists(select(literal(1)).select_from(need).where(not_(credential_ok)).correlate(Volunteer, *outer))
        )
    skills_ok: ColumnElement[bool] = true()
    if request.required_skills is not None:
        # The OR keeps the planner on the nearest-neighbour index: `skills @> '{}'` alone invites the GIN
        # index on skills, which matches nearly everyone and then needs a full sort by distance.
        skills_ok = or_(
            func.cardinality(request.required_skills) == 0, Volunteer.skills.contains(request.required_skills)
        )
    # A training the category requires that this volunteer has not completed.
    missing_training = (
        select(CategoryTraining.id)
        .outerjoin(
            VolunteerTraining,
            and_(
                VolunteerTraining.training_id == CategoryTraining.training_id,
                VolunteerTraining.volunteer_id == Volunteer.id,
            ),
        )
        .where(CategoryTraining.category == request.category, VolunteerTraining.id.is_(None))
        .correlate(Volunteer, *outer)
    )
    if isinstance(request.physical, bool):
        mode = Volunteer.mode.in_(allowed_modes(request.physical))
    else:
        mode = or_(
            Volunteer.mode.in_([VolunteerMode.OFFLINE.value, VolunteerMode.RESERVE.value]),
            and_(Volunteer.mode == VolunteerMode.ONLINE.value, not_(request.physical)),
        )
    return {
        **volunteer_conditions(),
        # A volunteer serves the requests of their own organisation.
        "organization": Volunteer.organization_id == request.organization_id,
        "not_on_request": not_(_on_request(request, ACTIVE_ASSIGNMENT_STATUSES, outer)),
        "mode": mode,
        "skills": skills_ok,
        "credentials": credentials_ok,
        "trainings": not_(exists(missing_training)),
    }


def volunteer_conditions() -> dict[str, ColumnElement[bool]]:
    """The hard filters that read the volunteer alone, whatever the request: a batch's candidate search loads
    everyone passing these once (`matching.load_pool`) and checks the others per pair."""
    return {
        "available": Volunteer.availability == Availability.AVAILABLE.value,
        "capacity": Volunteer.active_assignments < Volunteer.max_concurrent_assignments,
    }


def proposable(request: RequestTerms, outer: Sequence[Any] = ()) -> ColumnElement[bool]:
    """Whom matching and planning propose: every hard filter, and not someone who declined or completed this
    request (not a hard filter: a coordinator may still offer them -- "busy this morning" may be free now).
    `not_on_request` and that exclusion are one NOT EXISTS over the four statuses (one index probe, not two);
    the other conditions are `qualified`'s own."""
    conditions = filter_conditions(request, outer)
    del conditions["not_on_request"]
    statuses = {*ACTIVE_ASSIGNMENT_STATUSES, AssignmentStatus.DECLINED, AssignmentStatus.COMPLETED}
    return and_(*conditions.values(), not_(_on_request(request, statuses, outer)))


def _on_request(request: RequestTerms, statuses: Iterable[AssignmentStatus], outer: Sequence[Any]) -> Any:
    """Whether the volunteer holds an assignment on the request in one of `statuses` (one index probe)."""
    return exists(
        select(Assignment.id)
        .where(
            Assignment.request_id == request.id,
            Assignment.volunteer_id == Volunteer.id,
            Assignment.status.in_(sorted(s.value for s in statuses)),
        )
        .correlate(Volunteer, *outer)
    )


def in_pool(reserve: bool) -> ColumnElement[bool]:
    """Matching looks at active volunteers first and calls up the reserve only when they do not suffice."""
    if reserve:
        return Volunteer.mode == VolunteerMode.RESERVE.value
    return Volunteer.mode != VolunteerMode.RESERVE.value


async def failed_filters(session: AsyncSession, request_id: int, volunteer_id: int, now: datetime) -> list[HardFilter]:
    """The hard filters `volunteer_id` fails for `request_id`, evaluated in one statement by the same
    conditions the candidate search uses (the caller holds both rows locked)."""
    conditions = filter_conditions(terms_of_row(now), outer=(HelpRequest,))
    row = (
        await session.execute(
            select(*(condition.label(name) for name, condition in conditions.items()))
            .select_from(Volunteer)
            .join(HelpRequest, true())
            .where(Volunteer.id == volunteer_id, HelpRequest.id == request_id)
        )
    ).one()
    return [f for f in HARD_FILTERS if not row._mapping[f.name]]


async def staffed(session: AsyncSession, request_id: int) -> int:
    """How many volunteers hold the request (offered or accepted): at most its volunteers needed."""
    count = await session.scalar(
        select(func.count()).where(
            Assignment.request_id == request_id,
            Assignment.status.in_(sorted(s.value for s in ACTIVE_ASSIGNMENT_STATUSES)),
        )
    )
    return int(count or 0)
