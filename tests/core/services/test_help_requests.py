"""Help request lifecycle: every legal transition, every illegal one refused, history recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from core.errors import DomainError
from core.models import HelpRequest, HelpRequestStatusChange
from core.services import assignments, help_requests
from core.vocab import AssignmentStatus, RequestStatus
from tests.factories import Factory

S = RequestStatus

# The lifecycle as README.md ("Lifecycle") draws it, written out here rather than imported, so that a change
# to the production table has to be a change to this one too:
#
#   submitted ──verify──▶ verified ──offer──▶ matched ──start──▶ in_progress ──fulfill──▶ fulfilled
#       │                   │   ▲                │                    │
#       └──reject / cancel──┘   └─last offer ends┘        cancel (any open status) ──▶ cancelled
README_LIFECYCLE: dict[str, frozenset[str]] = {
    "submitted": frozenset({"verified", "rejected", "cancelled"}),
    "verified": frozenset({"matched", "rejected", "cancelled"}),
    "matched": frozenset({"in_progress", "verified", "cancelled"}),
    "in_progress": frozenset({"fulfilled", "cancelled"}),
    "fulfilled": frozenset(),
    "rejected": frozenset(),
    "cancelled": frozenset(),
}
ALL_PAIRS = [(a, b) for a in README_LIFECYCLE for b in README_LIFECYCLE]
LEGAL = [(a, b) for a, b in ALL_PAIRS if b in README_LIFECYCLE[a]]
ILLEGAL = [(a, b) for a, b in ALL_PAIRS if b not in README_LIFECYCLE[a]]

# Which service call drives a step to each status (the verbs a coordinator uses; `transition` where there is
# no verb: offering moves verified → matched, losing the last offer moves matched → verified).
STEP = {
    "submitted": lambda ctx, rid: help_requests.transition(ctx, rid, S.SUBMITTED, "reopen"),
    "verified": lambda ctx, rid: help_requests.verify(ctx, rid, "checked"),
    "rejected": lambda ctx, rid: help_requests.reject(ctx, rid, "not genuine"),
    "cancelled": lambda ctx, rid: help_requests.cancel(ctx, rid, "resolved elsewhere"),
    "in_progress": lambda ctx, rid: help_requests.start(ctx, rid),
    "fulfilled": lambda ctx, rid: help_requests.fulfil(ctx, rid),
    "matched": lambda ctx, rid: help_requests.transition(ctx, rid, S.MATCHED, "manual"),
}


async def _status(make: Factory, request_id: int) -> str:
    return (await make.ctx.session.execute(select(HelpRequest.status).where(HelpRequest.id == request_id))).scalar_one()


def test_the_readme_table_names_every_status_and_every_pair_is_checked() -> None:
    assert set(README_LIFECYCLE) == {s.value for s in RequestStatus}
    assert len(LEGAL) + len(ILLEGAL) == len(RequestStatus) ** 2 == 49
    assert len(LEGAL) == 11


@pytest.mark.parametrize(("start", "target"), ILLEGAL)
async def test_illegal_transition_is_refused_and_writes_nothing(make: Factory, start: str, target: str) -> None:
    # given a request in `start` (with an accepted volunteer where `start` is matched)
    rid = (await make.request(status=S(start))).id
    if start == "matched":
        (offer,) = await assignments.list_for_request(make.ctx, rid)
        await assignments.accept(make.ctx, offer.id)
        await make.commit()
    history_before = len(await help_requests.history(make.ctx, rid))
    # when a step to `target`, which the README does not allow from `start`, is tried
    with pytest.raises(DomainError) as err:
        await STEP[target](make.ctx, rid)
    await make.ctx.session.rollback()
    # then it is INVALID_TRANSITION on the request's id, and nothing changed
    assert (err.value.code, err.value.errors[0].field) == ("INVALID_TRANSITION", ("input", "id"))
    assert await _status(make, rid) == start
    assert len(await help_requests.history(make.ctx, rid)) == history_before


@pytest.mark.parametrize(("start", "target"), LEGAL)
async def test_every_legal_transition_moves_and_is_recorded(make: Factory, start: str, target: str) -> None:
    # given a request in `start`
    request = await make.request(status=S(start))
    if target == "in_progress":
        (offer,) = await assignments.list_for_request(make.ctx, request.id)
        await assignments.accept(make.ctx, offer.id)
    # when the coordinator takes the step
    await STEP[target](make.ctx, request.id)
    await make.commit()
    # then the status moved and the history's last row says who, from, to and when
    assert await _status(make, request.id) == target
    last = (await help_requests.history(make.ctx, request.id))[-1]
    assert (last.from_status, last.to_status, last.actor) == (start, target, "test coordinator")
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
    assert (err.value.code, err.value.errors[0].field) == ("NOT_FOUND", ("input", "id"))


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
