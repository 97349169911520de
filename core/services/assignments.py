"""Assignments: a volunteer on a help request.

    offered → accepted → completed (with hours)
    offered → declined;  offered / accepted → withdrawn

An offer passes the hard filters of matching (`matching_policy.failed_filters`, the very conditions of the
candidate search) and finds an open slot on the request; a coordinator may waive the qualification filters
with an audited reason. A volunteer never holds more active (offered or accepted) assignments than their
maximum. The service checks under the volunteer's row lock for a clear error; the database holds the
invariant regardless (trigger-maintained counter + CHECK ck_volunteers_capacity), so no code path or race
can break it. A request never has more active assignments than volunteers needed: every offer counts them
under the request's row lock. Lock order everywhere: request row, then volunteer row, then assignment rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import Select, select

from core import events
from core.errors import DomainError, UserErrorData, Validator
from core.i18n import _
from core.models import Assignment, HelpRequest, Notification, Volunteer
from core.services import access, audit, help_requests
from core.services import matching_policy as policy
from core.services import validation as check
from core.services.common import flush, get
from core.services.context import ServiceContext
from core.services.pagination import Ordering, Page, paginate
from core.vocab import AssignmentStatus, RequestStatus, label

A = AssignmentStatus
MAX_HOURS = Decimal(200)

NEWEST_FIRST: Ordering[Assignment] = Ordering(
    name="assignment_newest", columns=(Assignment.id,), key=lambda a: (a.id,), descending=True
)


# Who may waive a qualification filter: the roles that coordinate requests (access.ROLE_PERMISSIONS), people
# answerable for the choice. Not scripts and jobs (`system`), which hold every permission but no judgement.
OVERRIDE_ROLES = frozenset(
    role for role, granted in access.ROLE_PERMISSIONS.items() if "requests.coordinate" in granted
)


async def offer(
    ctx: ServiceContext,
    request_id: int,
    volunteer_id: int,
    note: str = "",
    *,
    override_reason: str | None = None,
) -> Assignment:
    """Offer `volunteer_id` the request. The volunteer must pass every hard filter of matching (the same SQL
    conditions, checked here under the request's and the volunteer's row locks) and the request must have
    an open slot. With `override_reason`, a coordinator waives the qualification filters (mode, skills,
    credentials, trainings) the volunteer fails; the waiver is audited. Availability, capacity, staffing,
    organisation and duplicates are never waived."""
    access.require(ctx, "requests.coordinate")
    v = Validator()
    clean_note = check.text(v, ("input", "note"), note, max_length=1000, required=False)
    reason = None
    if override_reason is not None:
        if access.role_of(ctx.viewer) not in OVERRIDE_ROLES:
            raise DomainError("FORBIDDEN", "Only a coordinator may override matching's filters.", ("input", "override"))
        reason = check.text(v, ("input", "override", "reason"), override_reason, max_length=1000, label=_("A reason"))
    v.raise_if_any()
    # Lock order: request, then volunteer (every writer's). The request's lock also serialises its offers,
    # so the staffing count below cannot be raced.
    request = await get(
        ctx,
        HelpRequest,
        request_id,
        what=_("Help request"),
        field=("input", "requestId"),
        lock=True,
        scope=access.request_scope(ctx.viewer),
    )
    if RequestStatus(request.status) not in help_requests.ASSIGNABLE_STATUSES:
        raise DomainError(
            "INVALID_TRANSITION",
            "Volunteers can be offered to verified, matched or in-progress requests, not {status} ones.",
            ("input", "requestId"),
            status=label(request.status),
        )
    volunteer = await get(
        ctx,
        Volunteer,
        volunteer_id,
        what=_("Volunteer"),
        field=("input", "volunteerId"),
        lock=True,
        scope=access.volunteer_scope(ctx.viewer),
    )
    waived = await _check_fit(ctx, request, volunteer, overriding=reason is not None)
    now = ctx.now()
    assignment = Assignment(
        request_id=request_id,
        volunteer_id=volunteer_id,
        status=A.OFFERED.value,
        note=clean_note,
        decline_reason="",
        offered_at=now,
        expires_at=now + ctx.policy.offer_ttl,
    )
    ctx.session.add(assignment)
    await flush(ctx)
    if waived:
        _audit_override(ctx, request, assignment, waived, reason or "")
    notify(ctx, volunteer_id, "offer", assignment)
    # The trigger changed the counter in the database; refresh our copy for anyone reading it next.
    await ctx.session.refresh(volunteer, ["active_assignments"])
    await _announce(ctx, assignment)
    if request.status == RequestStatus.VERIFIED:
        await help_requests.transition(ctx, request_id, RequestStatus.MATCHED, "volunteer offered")
    return assignment


async def _check_fit(
    ctx: ServiceContext, request: HelpRequest, volunteer: Volunteer, *, overriding: bool
) -> list[policy.HardFilter]:
    """Refuse the pair unless the volunteer passes matching's hard filters and the request has an open slot
    (every problem at once); answer the filters an override waives."""
    failed = await policy.failed_filters(ctx.session, request.id, volunteer.id, ctx.now())
    waived = [f for f in failed if f.overridable] if overriding else []
    problems = [_problem(f, request, volunteer) for f in failed if f not in waived]
    held = await policy.staffed(ctx.session, request.id)
    if held >= request.volunteers_needed:
        problems.append(
            UserErrorData.of(
                policy.FULLY_STAFFED,
                "The request needs {needed} volunteers and {held} already hold it.",
                ("input", "requestId"),
                needed=request.volunteers_needed,
                held=held,
            )
        )
    if problems:
        raise DomainError.many(problems)
    return waived


def _problem(f: policy.HardFilter, request: HelpRequest, volunteer: Volunteer) -> UserErrorData:
    """Why the volunteer fails filter `f`, addressed to the volunteer's field."""
    field = ("input", "volunteerId")
    if f.name == "available":
        return UserErrorData.of(
            f.code, "The volunteer is {availability}.", field, availability=label(volunteer.availability)
        )
    if f.name == "capacity":
        return UserErrorData.of(
            f.code,
            "The volunteer already holds {active} of {maximum} active assignments.",
            field,
            active=volunteer.active_assignments,
            maximum=volunteer.max_concurrent_assignments,
        )
    if f.name == "organization":
        return UserErrorData.of(f.code, "The volunteer belongs to another organisation than the request.", field)
    if f.name == "not_on_request":
        return UserErrorData.of(f.code, "The volunteer already holds this request.", field)
    if f.name == "mode":
        return UserErrorData.of(
            f.code,
            "The request needs someone in person; the volunteer helps {mode}.",
            field,
            mode=label(volunteer.mode),
        )
    if f.name == "skills":
        missing = tuple(sorted(set(request.required_skills) - set(volunteer.skills)))
        return UserErrorData.of(f.code, "The volunteer lacks the required skills: {missing}.", field, missing=missing)
    if f.name == "credentials":
        return UserErrorData.of(
            f.code,
            "The volunteer holds no {kinds} valid when the request is needed.",
            field,
            kinds=tuple(label(kind) for kind in request.required_credentials),
        )
    return UserErrorData.of(f.code, "The volunteer lacks a training this kind of request requires.", field)


def _audit_override(
    ctx: ServiceContext, request: HelpRequest, assignment: Assignment, waived: list[policy.HardFilter], reason: str
) -> None:
    """Who waived which filters and why, in the request's organisation's trail, in the offer's transaction
    (a rolled-back offer leaves no entry claiming it happened)."""
    # Built directly: a ServiceContext for that organisation would rebind the session's tenancy settings for
    # the rest of this transaction.
    in_org = dataclasses.replace(ctx.viewer, organization_id=request.organization_id)
    record = audit.AuditRecord(
        action="override",
        operation="offerAssignment",
        record_type="Assignment",
        record_id=assignment.id,
        fields=tuple(f.name for f in waived),
        detail=f"request {request.id}, volunteer {assignment.volunteer_id}: {reason}",
    )
    ctx.session.add(audit.entry(in_org, record, ctx.now()))


async def accept(ctx: ServiceContext, assignment_id: int) -> Assignment:
    _, assignment = await _lock(ctx, assignment_id, own_allowed=True)
    _require(assignment, {A.OFFERED}, "accepted")
    if assignment.expires_at is not None and assignment.expires_at <= ctx.now():
        raise DomainError("OFFER_EXPIRED", "This offer has expired.", ("input", "id"))
    assignment.status = A.ACCEPTED.value
    assignment.responded_at = ctx.now()
    await flush(ctx)
    await _announce(ctx, assignment)
    return assignment


async def decline(ctx: ServiceContext, assignment_id: int, reason: str = "") -> Assignment:
    request, assignment = await _lock(ctx, assignment_id, own_allowed=True)
    _require(assignment, {A.OFFERED}, "declined")
    v = Validator()
    assignment.decline_reason = check.text(v, ("input", "reason"), reason, max_length=1000, required=False)
    v.raise_if_any()
    assignment.status = A.DECLINED.value
    assignment.responded_at = ctx.now()
    await flush(ctx)
    await _announce(ctx, assignment)
    await help_requests.return_to_queue_if_unstaffed(ctx, request)
    return assignment


async def withdraw(ctx: ServiceContext, assignment_id: int, reason: str) -> Assignment:
    request, assignment = await _lock(ctx, assignment_id)
    _require(assignment, {A.OFFERED, A.ACCEPTED}, "withdrawn")
    v = Validator()
    assignment.note = check.text(v, ("input", "reason"), reason, max_length=1000, label=_("A reason"))
    v.raise_if_any()
    assignment.status = A.WITHDRAWN.value
    assignment.finished_at = ctx.now()
    await flush(ctx)
    await _announce(ctx, assignment)
    await help_requests.return_to_queue_if_unstaffed(ctx, request)
    return assignment


async def complete(ctx: ServiceContext, assignment_id: int, hours: Decimal, note: str = "") -> Assignment:
    request, assignment = await _lock(ctx, assignment_id, own_allowed=True)
    _require(assignment, {A.ACCEPTED}, "completed")
    if request.status not in (RequestStatus.IN_PROGRESS, RequestStatus.FULFILLED):
        raise DomainError(
            "INVALID_TRANSITION", "Work is completed on a request that is in progress or fulfilled.", ("input", "id")
        )
    v = Validator()
    if hours <= 0 or hours > MAX_HOURS:
        v.add(("input", "hours"), "OUT_OF_RANGE", "Hours must be more than 0 and at most {limit}.", limit=MAX_HOURS)
    elif hours != hours.quantize(Decimal("0.01")):
        v.add(("input", "hours"), "OUT_OF_RANGE", "Hours are recorded to two decimals at most.")
    clean_note = check.text(v, ("input", "note"), note, max_length=1000, required=False)
    v.raise_if_any()
    assignment.status = A.COMPLETED.value
    assignment.hours = hours.quantize(Decimal("0.01"))
    assignment.finished_at = ctx.now()
    if clean_note:
        assignment.note = clean_note
    await flush(ctx)
    await _announce(ctx, assignment)
    return assignment


async def _announce(ctx: ServiceContext, assignment: Assignment) -> None:
    await ctx.publish(
        events.AssignmentChanged(
            organization_id=assignment.organization_id,
            assignment_id=assignment.id,
            request_id=assignment.request_id,
            volunteer_id=assignment.volunteer_id,
            status=assignment.status,
        )
    )


async def _lock(ctx: ServiceContext, assignment_id: int, own_allowed: bool = False) -> tuple[HelpRequest, Assignment]:
    """Lock an assignment and its request, request first (the order every writer uses).

    Coordinators act on assignments of requests in their scope; with `own_allowed`, a volunteer also acts
    on their own assignments (accept, decline, report hours)."""
    row = (
        await ctx.session.execute(
            select(Assignment.request_id, Assignment.volunteer_id).where(
                Assignment.id == assignment_id, access.assignment_scope(ctx.viewer)
            )
        )
    ).one_or_none()
    if row is None:
        access.require(ctx, "assignments.respond")
        raise DomainError("NOT_FOUND", "Assignment not found.", ("input", "id"))
    request_id, volunteer_id = row
    own = own_allowed and ctx.viewer.volunteer_id is not None and ctx.viewer.volunteer_id == volunteer_id
    if own:
        access.require(ctx, "assignments.respond")
        request = await get(ctx, HelpRequest, request_id, what=_("Help request"), field=("input", "id"), lock=True)
    else:
        request = await help_requests.lock(ctx, request_id)
    assignment = await get(ctx, Assignment, assignment_id, what=_("Assignment"), field=("input", "id"), lock=True)
    return request, assignment


def _require(assignment: Assignment, allowed: set[AssignmentStatus], to: str) -> None:
    if AssignmentStatus(assignment.status) not in allowed:
        raise DomainError(
            "INVALID_TRANSITION",
            "The assignment is {status} and cannot be {to}.",
            ("input", "id"),
            status=label(assignment.status),
            to=label(to),
        )


def filtered(statuses: Sequence[AssignmentStatus | str] = ()) -> Select[tuple[Assignment]]:
    """Assignments in the given statuses (all when empty); callers narrow to a volunteer or request."""
    stmt = select(Assignment)
    if statuses:
        stmt = stmt.where(Assignment.status.in_([str(s) for s in statuses]))
    return stmt


async def list_for_volunteer(
    ctx: ServiceContext, volunteer_id: int, statuses: Sequence[AssignmentStatus], *, first: int, after: str | None
) -> Page[Assignment]:
    access.require(ctx, "requests.read")
    stmt = filtered(statuses).where(Assignment.volunteer_id == volunteer_id, access.assignment_scope(ctx.viewer))
    return await paginate(ctx, stmt, NEWEST_FIRST, first=first, after=after)


async def list_for_request(
    ctx: ServiceContext, request_id: int, statuses: Sequence[AssignmentStatus] = ()
) -> list[Assignment]:
    stmt = (
        filtered(statuses)
        .where(Assignment.request_id == request_id, access.assignment_scope(ctx.viewer))
        .order_by(Assignment.id)
    )
    return list((await ctx.session.scalars(stmt)).all())


def notify(ctx: ServiceContext, volunteer_id: int, kind: str, assignment: Assignment) -> None:
    """Queue a message for the volunteer in the outbox; delivery channels pick it up later."""
    ctx.session.add(
        Notification(
            volunteer_id=volunteer_id,
            kind=kind,
            payload={
                "assignment_id": assignment.id,
                "request_id": assignment.request_id,
                "expires_at": assignment.expires_at.isoformat() if assignment.expires_at else None,
            },
        )
    )


async def expire_offers(ctx: ServiceContext, limit: int = 500) -> int:
    """Expire offers nobody answered in time; their requests go back to the queue. Safe to run in
    several processes at once (SKIP LOCKED). Returns how many expired."""
    due = (
        await ctx.session.execute(
            select(Assignment.id, Assignment.request_id)
            .where(Assignment.status == A.OFFERED.value, Assignment.expires_at <= ctx.now())
            .order_by(Assignment.expires_at)
            .limit(limit)
        )
    ).all()
    expired = 0
    for assignment_id, request_id in sorted(due, key=lambda row: (row[1], row[0])):
        # Request first, then assignment: the lock order of every writer.
        request = await ctx.session.scalar(
            select(HelpRequest)
            .where(HelpRequest.id == request_id)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        assignment = await ctx.session.scalar(
            select(Assignment)
            .where(Assignment.id == assignment_id, Assignment.status == A.OFFERED.value)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        if request is None or assignment is None:
            continue  # someone else is handling it right now
        assignment.status = A.EXPIRED.value
        assignment.finished_at = ctx.now()
        await flush(ctx)
        notify(ctx, assignment.volunteer_id, "offer_expired", assignment)
        await _announce(ctx, assignment)
        await help_requests.return_to_queue_if_unstaffed(ctx, request)
        expired += 1
    return expired


async def list_mine(
    ctx: ServiceContext, statuses: Sequence[AssignmentStatus], *, first: int, after: str | None
) -> Page[Assignment]:
    """The viewer's own assignments (volunteer self-service)."""
    access.require(ctx, "assignments.respond")
    if ctx.viewer.volunteer_id is None:
        raise DomainError("FORBIDDEN", "Your account has no volunteer record.")
    stmt = filtered(statuses).where(Assignment.volunteer_id == ctx.viewer.volunteer_id)
    return await paginate(ctx, stmt, NEWEST_FIRST, first=first, after=after)
