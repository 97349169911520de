"""Assignments: a volunteer on a help request.

    offered → accepted → completed (with hours)
    offered → declined;  offered / accepted → withdrawn

A volunteer never holds more active (offered or accepted) assignments than their maximum. The service
checks under the volunteer's row lock for a clear error; the database holds the invariant regardless
(trigger-maintained counter + CHECK ck_volunteers_capacity), so no code path or race can break it.
Lock order everywhere: request row, then volunteer row, then assignment rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import Select, select

from core import events
from core.errors import DomainError, Validator
from core.models import Assignment, HelpRequest, Notification, Volunteer
from core.services import access, help_requests
from core.services import validation as check
from core.services.common import flush, get
from core.services.context import ServiceContext
from core.services.pagination import Ordering, Page, paginate
from core.vocab import AssignmentStatus, Availability, RequestStatus

A = AssignmentStatus
MAX_HOURS = Decimal(200)

NEWEST_FIRST: Ordering[Assignment] = Ordering(
    name="assignment_newest", columns=(Assignment.id,), key=lambda a: (a.id,), descending=True
)


async def offer(ctx: ServiceContext, request_id: int, volunteer_id: int, note: str = "") -> Assignment:
    access.require(ctx, "requests.coordinate")
    request = await get(
        ctx,
        HelpRequest,
        request_id,
        what="Help request",
        field=("input", "requestId"),
        lock=True,
        scope=access.request_scope(ctx.viewer),
    )
    if RequestStatus(request.status) not in help_requests.ASSIGNABLE_STATUSES:
        raise DomainError(
            "INVALID_TRANSITION",
            f"Volunteers can be offered to verified, matched or in-progress requests, not {request.status} ones.",
            ("input", "requestId"),
        )
    volunteer = await get(
        ctx,
        Volunteer,
        volunteer_id,
        what="Volunteer",
        field=("input", "volunteerId"),
        lock=True,
        scope=access.volunteer_scope(ctx.viewer),
    )
    if volunteer.availability != Availability.AVAILABLE:
        raise DomainError(
            "VOLUNTEER_UNAVAILABLE", f"The volunteer is {volunteer.availability}.", ("input", "volunteerId")
        )
    if volunteer.active_assignments >= volunteer.max_concurrent_assignments:
        raise DomainError(
            "VOLUNTEER_AT_CAPACITY",
            f"The volunteer already holds {volunteer.active_assignments} of "
            f"{volunteer.max_concurrent_assignments} active assignments.",
            ("input", "volunteerId"),
        )
    duplicate = await ctx.session.scalar(
        select(Assignment.id).where(
            Assignment.request_id == request_id,
            Assignment.volunteer_id == volunteer_id,
            Assignment.status.in_([A.OFFERED.value, A.ACCEPTED.value]),
        )
    )
    if duplicate is not None:
        raise DomainError("ALREADY_ASSIGNED", "The volunteer already holds this request.", ("input", "volunteerId"))
    v = Validator()
    clean_note = check.text(v, ("input", "note"), note, max_length=1000, required=False)
    v.raise_if_any()
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
    notify(ctx, volunteer_id, "offer", assignment)
    # The trigger changed the counter in the database; refresh our copy for anyone reading it next.
    await ctx.session.refresh(volunteer, ["active_assignments"])
    await _announce(ctx, assignment)
    if request.status == RequestStatus.VERIFIED:
        await help_requests.transition(ctx, request_id, RequestStatus.MATCHED, "volunteer offered")
    return assignment


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
    assignment.note = check.text(v, ("input", "reason"), reason, max_length=1000, label="A reason")
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
        v.add(("input", "hours"), "OUT_OF_RANGE", f"Hours must be more than 0 and at most {MAX_HOURS}.")
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
        request = await get(ctx, HelpRequest, request_id, what="Help request", field=("input", "id"), lock=True)
    else:
        request = await help_requests.lock(ctx, request_id)
    assignment = await get(ctx, Assignment, assignment_id, what="Assignment", field=("input", "id"), lock=True)
    return request, assignment


def _require(assignment: Assignment, allowed: set[AssignmentStatus], to: str) -> None:
    if AssignmentStatus(assignment.status) not in allowed:
        raise DomainError("INVALID_TRANSITION", f"An {assignment.status} assignment cannot be {to}.", ("input", "id"))


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
