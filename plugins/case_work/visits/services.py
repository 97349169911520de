"""Visits of a case: home visits and calls on core's shared calendar.

A visit is an appointment (kind `case_work.visit`) of the case's social worker -- their staff record is the
calendar's owner -- and, optionally, one of a second staff member of the organisation at the same time. Core's
calendar decides whether the time is free: its exclusion constraint refuses an overlap with anything else on
that person's calendar (a counseling session, another visit, whoever booked it) and core answers SLOT_TAKEN;
times outside the person's weekly availability, or a person without a calendar, are OUTSIDE_AVAILABILITY.
Nothing is written when either booking is refused (the caller's transaction rolls back).

Who may book, move, cancel and record a visit: whoever sees its case (`case_scope`: the social worker, the
supervisor, the administrators of the case's organisation); a visit of a case the caller does not see answers
like a missing one (NOT_FOUND, null). A closed case (closure, not opened) takes no new visit, no move and no
outcome (CASE_CLOSED, and the database's trigger says the same); cancelling a visit left on a closed case is
allowed, because it only gives someone's time back.

Locks, always in this order: the case (steps and visits of one case are serialised, so a visit cannot slip in
while the case closes), then the staff records of everyone booked (in id order: two bookings naming the same
two people cannot wait on each other in a cycle), then the appointments (core's calendar).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.sql.elements import ColumnElement

import core
from core.i18n import _
from core.models import Account, Appointment
from plugins.case_work.models import Case
from plugins.case_work.services import CLOSED, CONSTRAINT_ERRORS, MANAGE, STAFF_ROLES, case_scope
from plugins.case_work.visits.models import MODES, OUTCOMES, STATUSES, Visit

KIND = "case_work.visit"
MIN_MINUTES, MAX_MINUTES = 10, 240
MAX_TEXT = 500
# The deployment's max_range_days when the caller passes none (Settings' default; the resolvers pass the
# setting). It bounds both a visits search's span and how far ahead a visit is booked: a visit beyond it
# would lie past any search that starts today -- a typo (2199 for 2019), not a plan.
MAX_RANGE_DAYS = 366
# The outcome that fits each kind of visit: nobody answers a call; nobody opens the door at a home visit.
OUTCOME_MODES = {
    "done": frozenset(MODES),
    "no_answer": frozenset({"call"}),
    "client_not_home": frozenset({"home_visit"}),
}
# How a visit's status reads inside a message (translated with it: plugins/case_work/locale).
STATUS_LABELS = {
    "booked": _("booked"),
    "done": _("done"),
    "no_answer": _("not answered"),
    "client_not_home": _("missed (client not home)"),
    "cancelled": _("cancelled"),
}


@dataclass(frozen=True)
class VisitFilter:
    """Visits of a case and/or a social worker, in some statuses and modes, starting in [start_from, start_to)."""

    case_id: int | None = None
    worker_account_id: int | None = None
    statuses: tuple[str, ...] = ()
    modes: tuple[str, ...] = ()
    start_from: datetime | None = None
    start_to: datetime | None = None


VISITS_BY_START: core.Ordering[Visit] = core.Ordering(
    "case_work_visits_by_start",
    (Visit.starts_at.expression, Visit.id),  # type: ignore[attr-defined]
    lambda v: (v.starts_at, v.id),
)


def visit_scope(ctx: core.ServiceContext) -> ColumnElement[bool]:
    """The visits the caller sees: those of the cases they see (the same rule everywhere)."""
    return Visit.case_id.in_(select(Case.id).where(case_scope(ctx)))


async def _flush(ctx: core.ServiceContext) -> None:
    await core.flush(ctx, CONSTRAINT_ERRORS)


def _acting_account(ctx: core.ServiceContext) -> int:
    """Casework acts by account: callers without one (API tokens) do not book visits."""
    core.require(ctx, MANAGE)
    if ctx.viewer.account_id is None:
        raise core.DomainError("FORBIDDEN", "You may not do this.")
    return ctx.viewer.account_id


async def _case(ctx: core.ServiceContext, case_id: int, field: tuple[str, ...]) -> Case:
    """A case the caller sees, locked (see the module's lock order), or NOT_FOUND."""
    case: Case = await core.get_row(ctx, Case, case_id, what=_("Case"), field=field, lock=True, scope=case_scope(ctx))
    return case


def _open(case: Case, field: tuple[str, ...]) -> None:
    if case.stage in CLOSED:
        raise core.DomainError("CASE_CLOSED", "The case is closed: its visits are not booked or changed.", field)


async def _staff_record(ctx: core.ServiceContext, account_id: int, case: Case, field: tuple[str, ...]) -> int:
    """The staff record (calendar owner) of an account of the case's organisation; an account of another
    organisation answers like a missing one. An account without a record has no calendar to book."""
    account: Account = await core.get_row(
        ctx,
        Account,
        account_id,
        what=_("Account"),
        field=field,
        scope=Account.organization_id == case.organization_id,
    )
    if not account.is_active or account.role not in STAFF_ROLES:
        raise core.DomainError("INVALID_INPUT", "Name an active staff member of the organisation.", field)
    if account.volunteer_id is None:
        raise core.DomainError("OUTSIDE_AVAILABILITY", "This person has no calendar to book.", field)
    return account.volunteer_id


async def _lock_people(ctx: core.ServiceContext, staff_ids: Sequence[int]) -> None:
    """Lock every staff record a change books, in id order, before core's calendar locks them one at a time."""
    await ctx.session.scalars(
        select(core.Volunteer.id)
        .where(core.Volunteer.id.in_(sorted(set(staff_ids))))
        .order_by(core.Volunteer.id)
        .with_for_update()
    )


def _check_times(
    ctx: core.ServiceContext, v: core.Validator, start: datetime, minutes: int, horizon_days: int
) -> timedelta:
    v.check(
        MIN_MINUTES <= minutes <= MAX_MINUTES,
        ("input", "minutes"),
        "OUT_OF_RANGE",
        "A visit lasts {low} to {high} minutes.",
        low=MIN_MINUTES,
        high=MAX_MINUTES,
    )
    # Core's calendar checks the offset and the past; the horizon is casework's (see MAX_RANGE_DAYS).
    if start.tzinfo is not None:
        v.check(
            start - ctx.now() <= timedelta(days=horizon_days),
            ("input", "start"),
            "OUT_OF_RANGE",
            "A visit is booked at most {days} days ahead.",
            days=horizon_days,
        )
    return timedelta(minutes=minutes)


def _short_text(v: core.Validator, field: tuple[str, ...], text: str, *, required: bool = False) -> str:
    clean = text.strip()
    if required:
        v.check(bool(clean), field, "REQUIRED", "Say why.")
    v.check(len(clean) <= MAX_TEXT, field, "OUT_OF_RANGE", "At most {n} characters.", n=MAX_TEXT)
    return clean


def _for_second(refused: core.DomainError) -> core.DomainError:
    """The second staff member's refusal, naming the field that chose them (the worker's names `start`)."""
    if refused.code == "SLOT_TAKEN":
        return core.DomainError(
            "SLOT_TAKEN", "The second staff member is already booked then.", ("input", "secondStaffId")
        )
    if refused.code == "OUTSIDE_AVAILABILITY":
        return core.DomainError(
            "OUTSIDE_AVAILABILITY", "The second staff member is not available then.", ("input", "secondStaffId")
        )
    return refused


async def book_visit(
    ctx: core.ServiceContext,
    case_id: int,
    *,
    mode: str,
    start: datetime,
    minutes: int,
    purpose: str = "",
    second_account_id: int | None = None,
    horizon_days: int = MAX_RANGE_DAYS,
) -> Visit:
    """Book a visit of an open case on its social worker's calendar (and the second staff member's), at most
    `horizon_days` (the deployment's max_range_days) ahead."""
    _acting_account(ctx)
    v = core.Validator()
    v.check(mode in MODES, ("input", "mode"), "INVALID_INPUT", "A visit is a home visit or a call.")
    duration = _check_times(ctx, v, start, minutes, horizon_days)
    clean_purpose = _short_text(v, ("input", "purpose"), purpose)
    v.raise_if_any()
    case = await _case(ctx, case_id, ("input", "caseId"))
    _open(case, ("input", "caseId"))
    worker_record = await _staff_record(ctx, case.social_worker_account_id, case, ("input", "caseId"))
    second_record: int | None = None
    if second_account_id is not None:
        if second_account_id == case.social_worker_account_id:
            raise core.DomainError(
                "INVALID_INPUT",
                "The second staff member is someone other than the social worker.",
                ("input", "secondStaffId"),
            )
        second_record = await _staff_record(ctx, second_account_id, case, ("input", "secondStaffId"))
    await _lock_people(ctx, [worker_record] if second_record is None else [worker_record, second_record])
    end = start + duration
    appointment = await core.book_appointment(ctx, worker_record, KIND, start, end)
    second: Appointment | None = None
    if second_record is not None:
        try:
            second = await core.book_appointment(ctx, second_record, KIND, start, end)
        except core.DomainError as refused:
            raise _for_second(refused) from refused
    visit = Visit(
        case_id=case.id,
        mode=mode,
        purpose=clean_purpose,
        appointment_id=appointment.id,
        worker_account_id=case.social_worker_account_id,
        second_appointment_id=None if second is None else second.id,
        second_account_id=second_account_id,
        updated_at=ctx.now(),
    )
    ctx.session.add(visit)
    await _flush(ctx)
    for booked in (appointment, second):
        if booked is not None:
            booked.record_id = visit.id
    await _flush(ctx)
    return visit


async def _visit(ctx: core.ServiceContext, visit_id: int) -> tuple[Visit, Case]:
    """A visit the caller sees and its case, both locked (case first), or NOT_FOUND."""
    _acting_account(ctx)
    found: Visit = await core.get_row(
        ctx, Visit, visit_id, what=_("Visit"), field=("input", "id"), scope=visit_scope(ctx)
    )
    case = await _case(ctx, found.case_id, ("input", "id"))
    visit: Visit = await core.get_row(ctx, Visit, visit_id, what=_("Visit"), field=("input", "id"), lock=True)
    return visit, case


def _booked(visit: Visit, message: str) -> None:
    """Only a booked visit is moved, cancelled or given an outcome; `message` says which, with {status}."""
    if visit.status != "booked":
        raise core.DomainError(
            "INVALID_TRANSITION", message, ("input", "id"), status=STATUS_LABELS.get(visit.status, visit.status)
        )


async def _appointments(ctx: core.ServiceContext, visit: Visit) -> list[Appointment]:
    ids = [visit.appointment_id] + ([] if visit.second_appointment_id is None else [visit.second_appointment_id])
    rows = (await ctx.session.scalars(select(Appointment).where(Appointment.id.in_(ids)))).all()
    return sorted(rows, key=lambda a: ids.index(a.id))


async def reschedule_visit(
    ctx: core.ServiceContext, visit_id: int, start: datetime, minutes: int, *, horizon_days: int = MAX_RANGE_DAYS
) -> Visit:
    """Move a booked visit of an open case (the same people, the same length or a new one), at most
    `horizon_days` ahead."""
    v = core.Validator()
    duration = _check_times(ctx, v, start, minutes, horizon_days)
    v.raise_if_any()
    visit, case = await _visit(ctx, visit_id)
    _open(case, ("input", "id"))
    _booked(visit, _("The visit is {status} and cannot be rescheduled."))
    appointments = await _appointments(ctx, visit)
    await _lock_people(ctx, [a.owner_id for a in appointments])
    end = start + duration
    await core.reschedule_appointment(ctx, visit.appointment_id, start, end)
    if visit.second_appointment_id is not None:
        try:
            await core.reschedule_appointment(ctx, visit.second_appointment_id, start, end)
        except core.DomainError as refused:
            raise _for_second(refused) from refused
    visit.updated_at = ctx.now()
    await _flush(ctx)
    return visit


async def cancel_visit(ctx: core.ServiceContext, visit_id: int, reason: str) -> Visit:
    """Cancel a booked visit, with a reason; its time is free again (on a closed case too)."""
    v = core.Validator()
    clean = _short_text(v, ("input", "reason"), reason, required=True)
    v.raise_if_any()
    visit = (await _visit(ctx, visit_id))[0]
    _booked(visit, _("The visit is {status} and cannot be cancelled."))
    for appointment_id in (visit.appointment_id, visit.second_appointment_id):
        if appointment_id is not None:
            await core.cancel_appointment(ctx, appointment_id, clean)
    visit.status, visit.cancel_reason, visit.updated_at = "cancelled", clean, ctx.now()
    await _flush(ctx)
    return visit


async def record_outcome(ctx: core.ServiceContext, visit_id: int, outcome: str, note: str = "") -> Visit:
    """How a visit went (done, no answer, client not home) and a short note, once it has started."""
    v = core.Validator()
    v.check(outcome in OUTCOMES, ("input", "outcome"), "INVALID_INPUT", "Unknown outcome.")
    clean = _short_text(v, ("input", "note"), note)
    v.raise_if_any()
    visit, case = await _visit(ctx, visit_id)
    _open(case, ("input", "id"))
    _booked(visit, _("The visit is {status}: its outcome is recorded once."))
    if visit.mode not in OUTCOME_MODES[outcome]:
        raise core.DomainError("INVALID_INPUT", "This outcome does not fit this kind of visit.", ("input", "outcome"))
    if visit.starts_at > ctx.now():
        raise core.DomainError(
            "INVALID_TRANSITION", "An outcome is recorded once the visit has started.", ("input", "id")
        )
    now = ctx.now()
    visit.status, visit.outcome_note, visit.outcome_at, visit.updated_at = outcome, clean, now, now
    await _flush(ctx)
    return visit


# The reason written on a handed-over visit's appointment left on the previous worker's calendar.
TRANSFERRED_REASON = _("The case was transferred to another social worker.")
# A visit still to come that does not fit the new worker's calendar refuses the acceptance (the calendar's code).
MOVE_REFUSED = {
    "SLOT_TAKEN": _("A visit of this case still to come clashes with your calendar: move or cancel it first."),
    "OUTSIDE_AVAILABILITY": _("A visit of this case still to come falls outside your hours: move or cancel it first."),
}


async def hand_over(ctx: core.ServiceContext, case: Case, account_id: int) -> None:
    """A case changing hands (an accepted transfer), in its transaction, the case locked by the caller: its booked
    visits still to come move to the new social worker -- booked on their calendar at the same time, cancelled on
    the previous worker's (their time is free again), the visit naming its new worker -- so that a later move or
    cancellation is the new owner's. A visit the new worker was coming along to as second staff member becomes
    theirs with that appointment. Visits already started stay as they are: they say who went.

    Core's calendar decides whether the new worker is free: if a visit clashes with their calendar (SLOT_TAKEN)
    or falls outside their hours (OUTSIDE_AVAILABILITY), the acceptance is refused with that code and nothing
    changes -- the transfer stays pending until the visit is moved or cancelled. Refusing beats cancelling
    silently: a home visit the client expects is not dropped by a change of worker."""
    now = ctx.now()
    moving = list(
        (
            await ctx.session.scalars(
                select(Visit)
                .where(Visit.case_id == case.id, Visit.status == "booked", Visit.starts_at > now)
                .order_by(Visit.id)
                .with_for_update(of=Visit)
            )
        ).all()
    )
    if not moving:
        return
    field = ("input", "id")
    record = await _staff_record(ctx, account_id, case, field)
    previous = [a.owner_id for visit in moving for a in await _appointments(ctx, visit)]
    await _lock_people(ctx, [record, *previous])
    reason = str(TRANSFERRED_REASON)
    for visit in moving:
        if visit.second_account_id == account_id and visit.second_appointment_id is not None:
            # The new worker is booked for it already, as the second staff member.
            await core.cancel_appointment(ctx, visit.appointment_id, reason)
            visit.appointment_id, visit.second_appointment_id, visit.second_account_id = (
                visit.second_appointment_id,
                None,
                None,
            )
        else:
            old = await ctx.session.get_one(Appointment, visit.appointment_id)
            try:
                booked = await core.book_appointment(
                    ctx, record, KIND, old.during.lower, old.during.upper, record_id=visit.id
                )
            except core.DomainError as refused:
                message = MOVE_REFUSED.get(refused.code)
                if message is None:
                    raise
                raise core.DomainError(refused.code, message, field) from refused
            await core.cancel_appointment(ctx, visit.appointment_id, reason)
            visit.appointment_id = booked.id
        visit.worker_account_id, visit.updated_at = account_id, now
    await _flush(ctx)


# -- reading ----------------------------------------------------------------------------------------------------


async def list_visits(
    ctx: core.ServiceContext,
    f: VisitFilter = VisitFilter(),
    *,
    first: int = 50,
    after: str | None = None,
    max_days: int = MAX_RANGE_DAYS,
) -> core.Page[Visit]:
    """Visits of the cases the caller sees, earliest first (a worker's week: `worker_account_id` and its bounds).
    Bounds as every search over time (core.check_range): the end after the start (OUT_OF_RANGE), the span at
    most `max_days`, the deployment's max_range_days (RANGE_TOO_LARGE); one bound alone is a filter."""
    core.require(ctx, MANAGE)
    v = core.Validator()
    for values, allowed, field in ((f.statuses, STATUSES, "statuses"), (f.modes, MODES, "modes")):
        wrong = set(values) - set(allowed)
        v.check(not wrong, ("filter", field), "INVALID_INPUT", "Unknown values: {values}.", values=tuple(sorted(wrong)))
    core.check_range(v, f.start_from, f.start_to, max_days=max_days, end_field=("filter", "to"))
    v.raise_if_any()
    stmt = select(Visit).where(visit_scope(ctx))
    if f.case_id is not None:
        stmt = stmt.where(Visit.case_id == f.case_id)
    if f.worker_account_id is not None:
        stmt = stmt.where(Visit.worker_account_id == f.worker_account_id)
    if f.statuses:
        stmt = stmt.where(Visit.status.in_(list(f.statuses)))
    if f.modes:
        stmt = stmt.where(Visit.mode.in_(list(f.modes)))
    if f.start_from is not None:
        stmt = stmt.where(Visit.starts_at >= f.start_from)
    if f.start_to is not None:
        stmt = stmt.where(Visit.starts_at < f.start_to)
    return await core.paginate(ctx, stmt, VISITS_BY_START, first=first, after=after)


async def visits_by_id(ctx: core.ServiceContext, pks: Sequence[int]) -> dict[int, Visit]:
    """node(id:): those of `pks` the caller sees; others are simply absent (like missing ones)."""
    core.require(ctx, MANAGE)
    if not pks:
        return {}
    rows = await ctx.session.scalars(select(Visit).where(Visit.id.in_(list(pks)), visit_scope(ctx)))
    return {row.id: row for row in rows}
