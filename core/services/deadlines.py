"""Targets, overdue requests, escalation, and the coordinator's queue.

Each open request has one target at a time, by status:
- submitted:            verified within targets.verify of submission;
- verified:             matched within targets.match of verification;
- matched, in progress: fulfilled by its needed-by time, or within targets.fulfil of submission.
Crossing a target raises HelpRequestEscalated once per request and stage (a unique row in escalations).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Select, and_, case, func, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.sql.elements import ColumnElement

from core import events
from core.models import Assignment, Escalation, HelpRequest
from core.services import access
from core.services.context import ServiceContext
from core.services.matching_policy import MatchingPolicy
from core.vocab import OPEN_REQUEST_STATUSES, AssignmentStatus, EscalationStage, RequestStatus, Urgency

S = RequestStatus


@dataclass(frozen=True)
class Overdue:
    request: HelpRequest
    stage: EscalationStage
    due_at: datetime


def _by_urgency(policy: MatchingPolicy, pick: str) -> object:
    return case(
        *[(HelpRequest.urgency == u.value, literal(getattr(policy.targets[u], pick))) for u in Urgency],
        else_=literal(getattr(policy.targets[Urgency.LOW], pick)),
    )


def due_columns(policy: MatchingPolicy) -> tuple[object, object]:
    """(stage, due time) of each open request, as SQL."""
    fulfil_by = func.least(
        func.coalesce(HelpRequest.needed_by, HelpRequest.created_at + _by_urgency(policy, "fulfil")),
        HelpRequest.created_at + _by_urgency(policy, "fulfil"),
    )
    stage = case(
        (HelpRequest.status == S.SUBMITTED.value, literal(EscalationStage.VERIFICATION.value)),
        (HelpRequest.status == S.VERIFIED.value, literal(EscalationStage.MATCHING.value)),
        else_=literal(EscalationStage.FULFILMENT.value),
    )
    due = case(
        (HelpRequest.status == S.SUBMITTED.value, HelpRequest.created_at + _by_urgency(policy, "verify")),
        (HelpRequest.status == S.VERIFIED.value, HelpRequest.status_changed_at + _by_urgency(policy, "match")),
        else_=fulfil_by,
    )
    return stage.label("stage"), due.label("due_at")


# The requests that have a target (one of them at a time): the open ones.
OPEN = sorted(s.value for s in OPEN_REQUEST_STATUSES)


def is_overdue(ctx: ServiceContext) -> ColumnElement[bool]:
    """Whether a request is open and past its current target now, as SQL: the rule `overdue` lists by, for
    whoever counts instead (the situation board)."""
    _, due = due_columns(ctx.policy)
    return and_(HelpRequest.status.in_(OPEN), due.element < ctx.now())  # type: ignore[attr-defined]


def _overdue_query(ctx: ServiceContext) -> Select[tuple[HelpRequest, str, datetime]]:
    stage, due = due_columns(ctx.policy)
    inner = (
        select(HelpRequest.id.label("id"), stage, due)
        .where(HelpRequest.status.in_(OPEN), access.request_scope(ctx.viewer))
        .subquery()
    )
    return (
        select(HelpRequest, inner.c.stage, inner.c.due_at)
        .join(inner, inner.c.id == HelpRequest.id)
        .where(inner.c.due_at < ctx.now())
        .order_by(HelpRequest.urgency_rank, inner.c.due_at, HelpRequest.id)
    )


async def overdue(ctx: ServiceContext, limit: int = 100) -> list[Overdue]:
    """Requests past their current target, most urgent first, then longest overdue."""
    access.require(ctx, "requests.read")
    rows = (await ctx.session.execute(_overdue_query(ctx).limit(limit))).all()
    return [Overdue(request=r, stage=EscalationStage(stage), due_at=due) for r, stage, due in rows]


async def escalate(ctx: ServiceContext, limit: int = 1000) -> int:
    """Record and announce every newly overdue (request, stage); each fires once. Returns how many."""
    rows = (await ctx.session.execute(_overdue_query(ctx).limit(limit))).all()
    raised = 0
    for request, stage, due in rows:
        inserted = await ctx.session.scalar(
            insert(Escalation)
            .values(request_id=request.id, stage=stage, due_at=due, raised_at=ctx.now())
            .on_conflict_do_nothing(index_elements=[Escalation.request_id, Escalation.stage])
            .returning(Escalation.id)
        )
        if inserted is not None:
            raised += 1
            await ctx.publish(
                events.HelpRequestEscalated(
                    organization_id=request.organization_id,
                    request_id=request.id,
                    stage=stage,
                    urgency=request.urgency,
                    due_at=due.isoformat(),
                )
            )
    return raised


class QueueSection(StrEnum):
    """The parts of the coordinator's work list (`queue`)."""

    UNVERIFIED = "unverified"
    UNMATCHED = "unmatched"
    PENDING_OFFERS = "pending_offers"


# Which status puts a request or an offer in which part of the queue: the one rule `queue` lists by and the
# live coordinatorQueue reports movements by (schema.subscriptions.fields), so the two cannot disagree.
REQUEST_SECTIONS: dict[str, QueueSection] = {
    S.SUBMITTED.value: QueueSection.UNVERIFIED,
    S.VERIFIED.value: QueueSection.UNMATCHED,
}
OFFER_SECTIONS: dict[str, QueueSection] = {AssignmentStatus.OFFERED.value: QueueSection.PENDING_OFFERS}


def _status_of(table: dict[str, QueueSection], section: QueueSection) -> str:
    return next(status for status, held in table.items() if held == section)


def queue_section(kind: str, status: object) -> QueueSection | None:
    """The part of the queue a `kind` ("request" or "offer") with `status` is in (None: not in the queue)."""
    table = REQUEST_SECTIONS if kind == "request" else OFFER_SECTIONS
    return table.get(str(status)) if status is not None else None


def queue_movement(
    kind: str, status: object, previous: object, *, created: bool
) -> tuple[QueueSection | None, QueueSection | None]:
    """(entered, left) for a record of `kind` now at `status`, before at `previous` (the same when its status
    did not change; ignored when `created`). (None, None): the change does not touch the queue; (s, s): it
    changed in place within part s (e.g. its urgency), which a coordinator still wants to see."""
    now = queue_section(kind, status)
    if created:
        return now, None
    before = queue_section(kind, previous)
    if now == before:
        return (None, None) if now is None else (now, now)
    return now, before


@dataclass
class Queue:
    unverified: list[HelpRequest]
    unmatched: list[HelpRequest]
    pending_offers: list[Assignment]


async def queue(ctx: ServiceContext, limit: int = 50) -> Queue:
    """The coordinator's work list: to verify, to match, offers awaiting an answer (most urgent first)."""
    access.require(ctx, "requests.read")
    scope = access.request_scope(ctx.viewer)
    order = (HelpRequest.urgency_rank, HelpRequest.needed_by_sort, HelpRequest.id)
    to_verify = _status_of(REQUEST_SECTIONS, QueueSection.UNVERIFIED)
    to_match = _status_of(REQUEST_SECTIONS, QueueSection.UNMATCHED)
    unverified = await ctx.session.scalars(
        select(HelpRequest).where(HelpRequest.status == to_verify, scope).order_by(*order).limit(limit)
    )
    unmatched = await ctx.session.scalars(
        select(HelpRequest).where(HelpRequest.status == to_match, scope).order_by(*order).limit(limit)
    )
    pending = await ctx.session.scalars(
        select(Assignment)
        .join(HelpRequest, HelpRequest.id == Assignment.request_id)
        .where(Assignment.status == _status_of(OFFER_SECTIONS, QueueSection.PENDING_OFFERS), scope)
        .order_by(Assignment.expires_at, Assignment.id)
        .limit(limit)
    )
    return Queue(list(unverified), list(unmatched), list(pending))
