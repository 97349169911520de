"""Help request lifecycle: every legal transition, every illegal one refused, history recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from core.errors import DomainError
from core.models import HelpRequest, HelpRequestStatusChange
from core.services import assignments, help_requests
from core.services.help_requests import TRANSITIONS
from core.vocab import AssignmentStatus, RequestStatus
from tests.factories import Factory

S = RequestStatus

# Which service call drives each coordinator-initiated step.
STEP = {
    S.VERIFIED: lambda ctx, rid: help_requests.verify(ctx, rid, "checked"),
    S.REJECTED: lambda ctx, rid: help_requests.reject(ctx, rid, "not genuine"),
    S.CANCELLED: lambda ctx, rid: help_requests.cancel(ctx, rid, "resolved elsewhere"),
    S.IN_PROGRESS: lambda ctx, rid: help_requests.start(ctx, rid),
    S.FULFILLED: lambda ctx, rid: help_requests.fulfil(ctx, rid),
    S.MATCHED: lambda ctx, rid: help_requests.transition(ctx, rid, S.MATCHED, "manual"),
}


async def _status(make: Factory, request_id: int) -> str:
    return (await make.ctx.session.execute(select(HelpRequest.status).where(HelpRequest.id == request_id))).scalar_one()


@pytest.mark.parametrize(
    ("start", "target"),
    [(a, b) for a in S for b in S if b in STEP and b not in TRANSITIONS[a] and a != b],
)
async def test_illegal_transition_is_refused_and_writes_nothing(make: Factory, start: S, target: S) -> None:
    # given a request in `start`
    rid = (await make.request(status=start)).id
    history_before = len(await help_requests.history(make.ctx, rid))
    # when a step to an unreachable `target` is tried
    with pytest.raises(DomainError) as err:
        await STEP[target](make.ctx, rid)
    await make.ctx.session.rollback()
    # then it is INVALID_TRANSITION and nothing changed
    assert err.value.code == "INVALID_TRANSITION"
    assert await _status(make, rid) == start.value
    assert len(await help_requests.history(make.ctx, rid)) == history_before


@pytest.mark.parametrize(
    ("start", "target"),
    [(a, b) for a in S for b in TRANSITIONS[a] if b in STEP and not (a == S.MATCHED and b == S.VERIFIED)],
)
async def test_every_legal_transition_moves_and_is_recorded(make: Factory, start: S, target: S) -> None:
    # given a request in `start`
    request = await make.request(status=start)
    if target == S.IN_PROGRESS:
        (offer,) = await assignments.list_for_request(make.ctx, request.id)
        await assignments.accept(make.ctx, offer.id)
    # when the coordinator takes the step
    await STEP[target](make.ctx, request.id)
    await make.commit()
    # then the status moved and the history's last row says who, from, to and when
    assert await _status(make, request.id) == target.value
    last = (await help_requests.history(make.ctx, request.id))[-1]
    assert (last.from_status, last.to_status, last.actor) == (start.value, target.value, "test coordinator")
    assert last.created_at == make.ctx.now()


async def test_matched_request_returns_to_verified_when_its_last_offer_is_declined(make: Factory) -> None:
    # given a matched request with one offer
    request = await make.request(status=S.MATCHED)
    offer = (await assignments.list_for_request(make.ctx, request.id))[0]
    # when the volunteer declines
    await assignments.decline(make.ctx, offer.id, "no car today")
    await make.commit()
    # then the request is back in the verification queue, and the history says why
    assert await _status(make, request.id) == S.VERIFIED.value
    last = (await help_requests.history(make.ctx, request.id))[-1]
    assert (last.from_status, last.to_status) == ("matched", "verified")


async def test_history_reads_as_the_whole_lifecycle(make: Factory) -> None:
    request = await make.request(status=S.FULFILLED)
    steps = [(h.from_status, h.to_status) for h in await help_requests.history(make.ctx, request.id)]
    assert steps == [
        (None, "submitted"),
        ("submitted", "verified"),
        ("verified", "matched"),
        ("matched", "in_progress"),
        ("in_progress", "fulfilled"),
    ]


async def test_start_needs_an_accepted_assignment(make: Factory) -> None:
    # given a matched request whose only offer is still pending
    request = await make.request(status=S.MATCHED)
    # when work is started
    with pytest.raises(DomainError) as err:
        await help_requests.start(make.ctx, request.id)
    # then it is refused with its own code
    assert err.value.code == "NO_ACCEPTED_ASSIGNMENT"


@pytest.mark.parametrize("step", [help_requests.reject, help_requests.cancel])
async def test_reject_and_cancel_need_a_reason(make: Factory, step) -> None:  # type: ignore[no-untyped-def]
    request = await make.request()
    with pytest.raises(DomainError) as err:
        await step(make.ctx, request.id, "   ")
    assert (err.value.code, err.value.errors[0].field) == ("REQUIRED", ("input", "reason"))


async def test_cancelling_releases_every_active_assignment(make: Factory) -> None:
    # given a request in progress with an accepted volunteer
    request = await make.request(status=S.IN_PROGRESS)
    (held,) = await assignments.list_for_request(make.ctx, request.id)
    # when it is cancelled
    await help_requests.cancel(make.ctx, request.id, "family delivered it")
    await make.commit()
    # then the assignment is withdrawn and the volunteer's slot is free again
    (after,) = await assignments.list_for_request(make.ctx, request.id)
    assert after.status == AssignmentStatus.WITHDRAWN.value
    count = await make.ctx.session.scalar(
        text("SELECT active_assignments FROM volunteers WHERE id = :id"), {"id": held.volunteer_id}
    )
    assert count == 0


async def test_unknown_request_is_not_found(make: Factory) -> None:
    with pytest.raises(DomainError) as err:
        await help_requests.verify(make.ctx, 999_999)
    assert err.value.code == "NOT_FOUND"


async def test_history_is_append_only_in_the_database(make: Factory) -> None:
    # given a recorded history row
    rid = (await make.request()).id
    # when anything tries to rewrite it, even bypassing the services
    with pytest.raises(DBAPIError, match="append-only"):
        await make.ctx.session.execute(
            text("UPDATE help_request_status_changes SET actor = 'someone else' WHERE request_id = :id"),
            {"id": rid},
        )
    await make.ctx.session.rollback()
    with pytest.raises(DBAPIError, match="append-only"):
        await make.ctx.session.execute(
            text("DELETE FROM help_request_status_changes WHERE request_id = :id"), {"id": rid}
        )
    await make.ctx.session.rollback()
    # then the row is unchanged
    rows = (
        await make.ctx.session.scalars(select(HelpRequestStatusChange).where(HelpRequestStatusChange.request_id == rid))
    ).all()
    assert [r.actor for r in rows] == ["test coordinator"]


async def test_an_unchanged_past_deadline_does_not_block_other_edits(make: Factory, clock) -> None:  # type: ignore[no-untyped-def]
    # given a request whose deadline has passed since it was set
    request = await make.request(needed_by=clock.now + timedelta(hours=1))
    clock.now += timedelta(hours=2)
    # when another field is edited
    updated = await help_requests.update(make.ctx, request.id, {"beneficiaries": 3})
    # then the edit goes through; a new deadline in the past would not
    assert updated.beneficiaries == 3
    with pytest.raises(DomainError) as err:
        await help_requests.update(make.ctx, request.id, {"needed_by": clock.now - timedelta(minutes=1)})
    assert err.value.code == "IN_PAST"
