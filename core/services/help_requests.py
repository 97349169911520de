"""Help requests: intake, verification, urgency and the lifecycle

    submitted → verified → matched → in_progress → fulfilled   (and rejected / cancelled)

Every transition takes the request's row lock, checks the move is legal from the state it finds, and
appends a history row (who, when, from, to, reason) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, not_, select

from core import events
from core.errors import DomainError, Validator
from core.i18n import _
from core.models import Assignment, Community, HelpRequest, HelpRequestStatusChange
from core.services import access
from core.services import validation as check
from core.services.common import flush, get
from core.services.context import ServiceContext
from core.services.deadlines import is_overdue
from core.services.pagination import Ordering, Page, paginate
from core.services.search import contains
from core.vocab import (
    ACTIVE_ASSIGNMENT_STATUSES,
    OPEN_REQUEST_STATUSES,
    AssignmentStatus,
    CredentialKind,
    PopulationTag,
    RequestCategory,
    RequestStatus,
    Urgency,
    label,
)

S = RequestStatus

# The legal moves. Coordinators drive verify / reject / start / fulfil / cancel; offering an assignment
# moves verified → matched, and losing the last active assignment moves matched → verified (back to queue).
TRANSITIONS: dict[RequestStatus, frozenset[RequestStatus]] = {
    S.SUBMITTED: frozenset({S.VERIFIED, S.REJECTED, S.CANCELLED}),
    S.VERIFIED: frozenset({S.MATCHED, S.REJECTED, S.CANCELLED}),
    S.MATCHED: frozenset({S.IN_PROGRESS, S.VERIFIED, S.CANCELLED}),
    S.IN_PROGRESS: frozenset({S.FULFILLED, S.CANCELLED}),
    S.FULFILLED: frozenset(),
    S.REJECTED: frozenset(),
    S.CANCELLED: frozenset(),
}

# Statuses in which volunteers may be offered to the request.
ASSIGNABLE_STATUSES = frozenset({S.VERIFIED, S.MATCHED, S.IN_PROGRESS})


@dataclass
class HelpRequestInput:
    community_id: int
    title: str
    category: RequestCategory
    urgency: Urgency
    requester_name: str
    requester_phone: str
    description: str = ""
    population_tags: Sequence[PopulationTag] = ()
    beneficiaries: int = 1
    volunteers_needed: int = 1
    needed_by: datetime | None = None
    required_skills: Sequence[str] = ()
    required_credentials: Sequence[CredentialKind] = ()
    requester_address: str = ""
    health_details: str = ""
    latitude: float | None = None
    longitude: float | None = None


@dataclass
class HelpRequestFilter:
    statuses: Sequence[RequestStatus] = field(default_factory=tuple)
    urgencies: Sequence[Urgency] = field(default_factory=tuple)
    categories: Sequence[RequestCategory] = field(default_factory=tuple)
    community_ids: Sequence[int] = field(default_factory=tuple)
    district_id: int | None = None
    population_tag: PopulationTag | None = None
    needed_before: datetime | None = None
    search: str | None = None
    # True: only requests open and past their current target now (deadlines.is_overdue, the rule `overdue` and
    # the situation board count by); False: only the others. Applied by list_requests (it needs the policy and
    # the clock): the paged form of `overdue`, which an export reads to its end.
    overdue: bool | None = None


BY_URGENCY: Ordering[HelpRequest] = Ordering(
    name="urgency",
    columns=(HelpRequest.urgency_rank, HelpRequest.needed_by_sort, HelpRequest.id),
    key=lambda r: (r.urgency_rank, r.needed_by.isoformat() if r.needed_by else "infinity", r.id),
)
NEWEST: Ordering[HelpRequest] = Ordering(
    name="newest",
    columns=(HelpRequest.created_at, HelpRequest.id),
    key=lambda r: (r.created_at, r.id),
    descending=True,
)
ORDERINGS = {o.name: o for o in (BY_URGENCY, NEWEST)}


def checked_fields(
    v: Validator, data: HelpRequestInput, now: datetime, current: HelpRequest | None = None
) -> dict[str, Any]:
    """The rules of one request's own fields, without the database: problems go to `v` (field paths as in the
    mutations' input). Used by `_validated` and, row by row, by the spreadsheet import."""
    values: dict[str, Any] = {
        "community_id": data.community_id,
        "title": check.text(v, ("input", "title"), data.title, max_length=200, label=_("Title")),
        "description": check.text(v, ("input", "description"), data.description, max_length=4000, required=False),
        "category": RequestCategory(data.category).value,
        "urgency": Urgency(data.urgency).value,
        "population_tags": check.enum_values(data.population_tags),
        "beneficiaries": check.int_range(
            v, ("input", "beneficiaries"), data.beneficiaries, 1, 1_000_000, _("The number of beneficiaries")
        ),
        "volunteers_needed": check.int_range(
            v, ("input", "volunteersNeeded"), data.volunteers_needed, 1, 100, _("The number of volunteers needed")
        ),
        "required_skills": check.tags(v, ("input", "requiredSkills"), data.required_skills),
        "required_credentials": check.enum_values(data.required_credentials),
        "requester_name": check.text(
            v, ("input", "requesterName"), data.requester_name, max_length=50, label=_("The requester's name")
        ),
        "requester_phone": check.phone(v, ("input", "requesterPhone"), data.requester_phone),
        "requester_address": check.text(
            v, ("input", "requesterAddress"), data.requester_address, max_length=300, required=False
        ),
        "health_details": check.text(
            v, ("input", "healthDetails"), data.health_details, max_length=4000, required=False
        ),
    }
    # An unchanged deadline may have passed since it was set; only a new one must lie ahead.
    if current is None or data.needed_by != current.needed_by:
        values["needed_by"] = check.future_time(v, ("input", "neededBy"), data.needed_by, now)
    values["latitude"], values["longitude"] = check.location(v, data.latitude, data.longitude, ("input",))
    return values


async def _validated(ctx: ServiceContext, data: HelpRequestInput, current: HelpRequest | None) -> dict[str, Any]:
    v = Validator()
    values = checked_fields(v, data, ctx.now(), current)
    v.raise_if_any()
    community = await get(ctx, Community, data.community_id, what=_("Community"), field=("input", "communityId"))
    if (
        await ctx.session.scalar(
            select(Community.id).where(Community.id == community.id, access.community_scope(ctx.viewer))
        )
        is None
    ):
        raise DomainError("FORBIDDEN", "You may not post requests for this community.", ("input", "communityId"))
    if values["latitude"] is None:
        # Without a location of its own, a request is where its community is (for distance matching).
        values["latitude"], values["longitude"] = community.latitude, community.longitude
    return values


async def submit(ctx: ServiceContext, data: HelpRequestInput) -> HelpRequest:
    access.require(ctx, "requests.create")
    values = await _validated(ctx, data, None)
    now = ctx.now()
    duplicate_of = await probable_duplicate(ctx, values)
    request = HelpRequest(**values, status=S.SUBMITTED.value, status_changed_at=now, duplicate_of_id=duplicate_of)
    ctx.session.add(request)
    await flush(ctx)
    _record(ctx, request, None, S.SUBMITTED, "", now)
    await flush(ctx)
    await ctx.publish(
        events.HelpRequestSubmitted(
            organization_id=request.organization_id,
            request_id=request.id,
            community_id=request.community_id,
            category=request.category,
            urgency=request.urgency,
        )
    )
    return request


async def update(ctx: ServiceContext, request_id: int, changes: Mapping[str, Any]) -> HelpRequest:
    """Apply the given fields to an open request (absent ones keep their value)."""
    request = await lock(ctx, request_id, "requests.create")
    if RequestStatus(request.status) not in OPEN_REQUEST_STATUSES:
        raise DomainError(
            "INVALID_TRANSITION",
            "The request is {status} and can no longer be edited.",
            ("input", "id"),
            status=label(request.status),
        )
    if "community_id" in changes and changes["community_id"] != request.community_id and request.status != S.SUBMITTED:
        raise DomainError(
            "INVALID_TRANSITION", "Only a submitted request can move to another community.", ("input", "communityId")
        )
    current = HelpRequestInput(**{f.name: getattr(request, f.name) for f in fields(HelpRequestInput)})
    for key, value in (await _validated(ctx, replace(current, **changes), request)).items():
        setattr(request, key, value)
    await flush(ctx)
    return request


async def verify(ctx: ServiceContext, request_id: int, note: str = "") -> HelpRequest:
    return await transition(ctx, request_id, S.VERIFIED, note)


async def reject(ctx: ServiceContext, request_id: int, reason: str) -> HelpRequest:
    return await transition(ctx, request_id, S.REJECTED, _reason(reason))


async def cancel(ctx: ServiceContext, request_id: int, reason: str) -> HelpRequest:
    return await _move(ctx, await lock(ctx, request_id, "requests.cancel"), S.CANCELLED, _reason(reason))


async def start(ctx: ServiceContext, request_id: int, note: str = "") -> HelpRequest:
    request = await lock(ctx, request_id)
    accepted = await ctx.session.scalar(
        select(Assignment.id)
        .where(Assignment.request_id == request_id, Assignment.status == AssignmentStatus.ACCEPTED.value)
        .limit(1)
    )
    if accepted is None and request.status == S.MATCHED:
        raise DomainError("NO_ACCEPTED_ASSIGNMENT", "No volunteer has accepted this request yet.", ("input", "id"))
    return await _move(ctx, request, S.IN_PROGRESS, note)


async def fulfil(ctx: ServiceContext, request_id: int, note: str = "") -> HelpRequest:
    return await transition(ctx, request_id, S.FULFILLED, note)


async def transition(ctx: ServiceContext, request_id: int, to: RequestStatus, reason: str = "") -> HelpRequest:
    return await _move(ctx, await lock(ctx, request_id), to, reason)


async def lock(ctx: ServiceContext, request_id: int, permission: str = "requests.coordinate") -> HelpRequest:
    """The request, row-locked, if the viewer holds `permission` and the request is in their scope."""
    access.require(ctx, permission)
    return await get(
        ctx,
        HelpRequest,
        request_id,
        what=_("Help request"),
        field=("input", "id"),
        lock=True,
        scope=access.request_scope(ctx.viewer),
    )


async def _move(ctx: ServiceContext, request: HelpRequest, to: RequestStatus, reason: str) -> HelpRequest:
    """Move a locked request to `to`, or raise INVALID_TRANSITION naming the legal moves."""
    current = RequestStatus(request.status)
    if to not in TRANSITIONS[current]:
        legal = tuple(label(s) for s in sorted(TRANSITIONS[current]))
        if not legal:
            raise DomainError(
                "INVALID_TRANSITION",
                "The request is {status}, which is final; it cannot become {to}.",
                ("input", "id"),
                status=label(current),
                to=label(to),
            )
        raise DomainError(
            "INVALID_TRANSITION",
            "The request is {status} and cannot become {to} (it can become: {legal}).",
            ("input", "id"),
            status=label(current),
            to=label(to),
            legal=legal,
        )
    now = ctx.now()
    request.status = to.value
    request.status_changed_at = now
    _record(ctx, request, current, to, reason.strip(), now)
    if to not in OPEN_REQUEST_STATUSES:
        await _release_assignments(ctx, request, to, now)
    await flush(ctx)
    await _announce(ctx, request, current, to, reason.strip())
    return request


async def _announce(
    ctx: ServiceContext, request: HelpRequest, from_: RequestStatus, to: RequestStatus, reason: str
) -> None:
    await ctx.publish(
        events.HelpRequestStatusChanged(
            organization_id=request.organization_id,
            request_id=request.id,
            from_status=from_.value,
            to_status=to.value,
            reason=reason,
        )
    )
    if to == S.VERIFIED and from_ == S.SUBMITTED:
        await ctx.publish(
            events.HelpRequestVerified(
                organization_id=request.organization_id,
                request_id=request.id,
                community_id=request.community_id,
                category=request.category,
            )
        )
    elif to == S.FULFILLED:
        await ctx.publish(
            events.HelpRequestFulfilled(
                organization_id=request.organization_id,
                request_id=request.id,
                community_id=request.community_id,
                category=request.category,
                beneficiaries=request.beneficiaries,
            )
        )
    elif to in (S.REJECTED, S.CANCELLED):
        await ctx.publish(
            events.HelpRequestClosed(
                organization_id=request.organization_id, request_id=request.id, status=to.value, reason=reason
            )
        )


async def _release_assignments(ctx: ServiceContext, request: HelpRequest, to: RequestStatus, now: datetime) -> None:
    """A closed request stops holding volunteers: pending offers are withdrawn; on rejection or cancellation
    accepted ones too. (After fulfilment accepted volunteers stay on it until they report their hours.)"""
    release = {AssignmentStatus.OFFERED.value}
    if to != S.FULFILLED:
        release.add(AssignmentStatus.ACCEPTED.value)
    # Volunteer order: the trigger locks volunteer rows, and a fixed order cannot deadlock.
    stmt = (
        select(Assignment)
        .where(Assignment.request_id == request.id, Assignment.status.in_(release))
        .order_by(Assignment.volunteer_id)
        .with_for_update()
    )
    for assignment in (await ctx.session.scalars(stmt)).all():
        assignment.status = AssignmentStatus.WITHDRAWN.value
        assignment.finished_at = now
        assignment.note = f"request {to.value}"
        await flush(ctx)
        await ctx.publish(
            events.AssignmentChanged(
                organization_id=assignment.organization_id,
                assignment_id=assignment.id,
                request_id=request.id,
                volunteer_id=assignment.volunteer_id,
                status=assignment.status,
            )
        )


def _record(
    ctx: ServiceContext,
    request: HelpRequest,
    from_: RequestStatus | None,
    to: RequestStatus,
    reason: str,
    at: datetime,
) -> None:
    ctx.session.add(
        HelpRequestStatusChange(
            request_id=request.id,
            from_status=from_.value if from_ else None,
            to_status=to.value,
            actor=ctx.viewer.label,
            reason=reason,
            created_at=at,
        )
    )


def _reason(reason: str) -> str:
    v = Validator()
    clean = check.text(v, ("input", "reason"), reason, max_length=1000, label=_("A reason"))
    v.raise_if_any()
    return clean


async def return_to_queue_if_unstaffed(ctx: ServiceContext, request: HelpRequest) -> None:
    """After an assignment ends: a matched request with no active assignment goes back to verified."""
    if request.status != S.MATCHED:
        return
    active = await ctx.session.scalar(
        select(Assignment.id)
        .where(
            Assignment.request_id == request.id,
            Assignment.status.in_([s.value for s in ACTIVE_ASSIGNMENT_STATUSES]),
        )
        .limit(1)
    )
    if active is None:
        await _move(ctx, request, S.VERIFIED, "no volunteer holds this request any more")


# A new request is probably the same as an open one when the requester's phone matches, or when its text
# is this similar (pg_trgm) and it comes from nearby (or the same community) within this window.
DUPLICATE_SIMILARITY = 0.4
DUPLICATE_DISTANCE_M = 1000
DUPLICATE_WINDOW = timedelta(hours=48)


async def probable_duplicate(ctx: ServiceContext, values: Mapping[str, Any]) -> int | None:
    open_ = [s.value for s in OPEN_REQUEST_STATUSES]
    # Only among the organisation's own requests: a platform administrator (who sees every organisation)
    # must not get one organisation's request flagged as a duplicate of another's.
    own = HelpRequest.organization_id == (
        select(Community.organization_id).where(Community.id == values["community_id"]).scalar_subquery()
    )
    same_phone = await ctx.session.scalar(
        select(HelpRequest.id)
        .where(own, HelpRequest.status.in_(open_), HelpRequest.requester_phone == values["requester_phone"])
        .order_by(HelpRequest.id)
        .limit(1)
    )
    if same_phone is not None:
        return int(same_phone)
    text = f"{values['title']} {values['description']}"
    similarity = func.similarity(HelpRequest.search_text, text)
    place = HelpRequest.community_id == values["community_id"]
    if values.get("latitude") is not None:
        distance = func.earth_distance(
            func.ll_to_earth(HelpRequest.latitude, HelpRequest.longitude),
            func.ll_to_earth(values["latitude"], values["longitude"]),
        )
        place = place | (distance < DUPLICATE_DISTANCE_M)
    similar = await ctx.session.scalar(
        select(HelpRequest.id)
        .where(
            own,
            HelpRequest.status.in_(open_),
            HelpRequest.created_at > ctx.now() - DUPLICATE_WINDOW,
            similarity >= DUPLICATE_SIMILARITY,
            place,
        )
        .order_by(similarity.desc(), HelpRequest.id)
        .limit(1)
    )
    return None if similar is None else int(similar)


async def merge(ctx: ServiceContext, keep_id: int, duplicate_id: int, reason: str = "") -> HelpRequest:
    """Close `duplicate_id` as merged into `keep_id` (which stays as it is). Verification's job."""
    if keep_id == duplicate_id:
        raise DomainError("INVALID_INPUT", "A request cannot be merged into itself.", ("input", "duplicateId"))
    first, second = sorted((keep_id, duplicate_id))  # lock in id order
    locked = {first: await lock(ctx, first), second: await lock(ctx, second)}
    keep, duplicate = locked[keep_id], locked[duplicate_id]
    if RequestStatus(keep.status) not in OPEN_REQUEST_STATUSES:
        raise DomainError(
            "INVALID_TRANSITION",
            "The request to keep is {status}; nothing can be merged into it.",
            ("input", "keepId"),
            status=label(keep.status),
        )
    if duplicate.status not in (S.SUBMITTED, S.VERIFIED):
        raise DomainError(
            "INVALID_TRANSITION",
            "The duplicate is {status}; only a submitted or verified request can be merged away.",
            ("input", "duplicateId"),
            status=label(duplicate.status),
        )
    duplicate.duplicate_of_id = keep.id
    note = f"merged into request {keep.id}" + (f": {reason.strip()}" if reason.strip() else "")
    await _move(ctx, duplicate, S.CANCELLED, note)
    return keep


async def history(ctx: ServiceContext, request_id: int) -> list[HelpRequestStatusChange]:
    access.require(ctx, "requests.read")
    await access.require_in_scope(ctx, HelpRequest, request_id, access.request_scope(ctx.viewer), _("Help request"))
    stmt = (
        select(HelpRequestStatusChange)
        .where(HelpRequestStatusChange.request_id == request_id)
        .order_by(HelpRequestStatusChange.id)
    )
    return list((await ctx.session.scalars(stmt)).all())


def filtered(f: HelpRequestFilter) -> Select[tuple[HelpRequest]]:
    stmt = select(HelpRequest)
    if f.statuses:
        stmt = stmt.where(HelpRequest.status.in_([s.value for s in f.statuses]))
    if f.urgencies:
        stmt = stmt.where(HelpRequest.urgency.in_([u.value for u in f.urgencies]))
    if f.categories:
        stmt = stmt.where(HelpRequest.category.in_([c.value for c in f.categories]))
    if f.community_ids:
        stmt = stmt.where(HelpRequest.community_id.in_(list(f.community_ids)))
    if f.district_id is not None:
        stmt = stmt.where(
            HelpRequest.community_id.in_(select(Community.id).where(Community.district_id == f.district_id))
        )
    if f.population_tag is not None:
        stmt = stmt.where(HelpRequest.population_tags.contains([f.population_tag.value]))
    if f.needed_before is not None:
        stmt = stmt.where(HelpRequest.needed_by < f.needed_before)
    if f.search:
        stmt = stmt.where(contains(HelpRequest.search_text, f.search))
    return stmt


async def list_requests(
    ctx: ServiceContext, f: HelpRequestFilter, *, order: str = "urgency", first: int, after: str | None
) -> Page[HelpRequest]:
    access.require(ctx, "requests.read")
    stmt = filtered(f).where(access.request_scope(ctx.viewer))
    if f.overdue is not None:
        late = func.coalesce(is_overdue(ctx), False)
        stmt = stmt.where(late if f.overdue else not_(late))
    return await paginate(ctx, stmt, ORDERINGS[order], first=first, after=after)
