"""Assignments: the lifecycle as README.md states it (offered → accepted / declined → completed / withdrawn),
written out here as data, every (status, action) pair checked, and the values each step records. Written
for what mutation testing (`make mutation`) found unguarded."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core import tenancy
from core.database import create_sessionmaker
from core.errors import DomainError
from core.models import Assignment
from core.services import assignments
from core.services.context import ServiceContext, Viewer
from core.vocab import RequestStatus
from tests.factories import Factory

# README "Assignments": offered → accepted / declined → completed (with hours) / withdrawn
LEGAL = {
    "offered": {"accept", "decline", "withdraw"},
    "accepted": {"complete", "withdraw"},
    "declined": set(),
    "completed": set(),
    "withdrawn": set(),
}
RESULT = {"accept": "accepted", "decline": "declined", "withdraw": "withdrawn", "complete": "completed"}
ACT = {
    "accept": lambda ctx, aid: assignments.accept(ctx, aid),
    "decline": lambda ctx, aid: assignments.decline(ctx, aid, "away that day"),
    "withdraw": lambda ctx, aid: assignments.withdraw(ctx, aid, "plans changed"),
    "complete": lambda ctx, aid: assignments.complete(ctx, aid, Decimal("2.5"), "done"),
}


async def _assignment_in(make: Factory, status: str) -> int:
    """An assignment in `status` on a request for two in progress (so that completing is possible when legal)."""
    request = await make.request(status=RequestStatus.IN_PROGRESS, volunteers_needed=2)
    (accepted,) = await assignments.list_for_request(make.ctx, request.id)
    if status == "accepted":
        return accepted.id
    if status == "completed":
        await assignments.complete(make.ctx, accepted.id, Decimal(1))
        await make.commit()
        return accepted.id
    offer = await assignments.offer(make.ctx, request.id, (await make.volunteer()).id)
    if status == "declined":
        await assignments.decline(make.ctx, offer.id, "no")
    if status == "withdrawn":
        await assignments.withdraw(make.ctx, offer.id, "not needed")
    await make.commit()
    return offer.id


async def _status(make: Factory, assignment_id: int) -> str:
    return await make.ctx.session.scalar(text("SELECT status FROM assignments WHERE id = :id"), {"id": assignment_id})


@pytest.mark.parametrize("status", list(LEGAL))
@pytest.mark.parametrize("action", list(ACT))
async def test_every_status_and_action(make: Factory, status: str, action: str) -> None:
    # given an assignment in `status`
    aid = await _assignment_in(make, status)
    if action in LEGAL[status]:
        # when a legal action is taken, then the assignment moves
        await ACT[action](make.ctx, aid)
        await make.commit()
        assert await _status(make, aid) == RESULT[action]
    else:
        # when any other is tried, then it is INVALID_TRANSITION on the assignment's id, and nothing moves
        with pytest.raises(DomainError) as err:
            await ACT[action](make.ctx, aid)
        await make.ctx.session.rollback()
        assert (err.value.code, err.value.errors[0].field) == ("INVALID_TRANSITION", ("input", "id"))
        assert await _status(make, aid) == status


async def test_an_offer_records_who_when_and_until_when(make: Factory) -> None:
    # given a verified request and a volunteer
    rid = (await make.request(status=RequestStatus.VERIFIED)).id
    vid = (await make.volunteer()).id
    # when the volunteer is offered with a note
    offer = await assignments.offer(make.ctx, rid, vid, "  bring the wheelchair  ")
    await make.commit()
    # then the offer holds the pair, the trimmed note, now, and the policy's expiry
    now = make.ctx.now()
    got = (offer.request_id, offer.volunteer_id, offer.status, offer.note, offer.decline_reason)
    assert got == (rid, vid, "offered", "bring the wheelchair", "")
    assert (offer.offered_at, offer.expires_at) == (now, now + make.ctx.policy.offer_ttl)
    assert await make.ctx.session.scalar(text("SELECT status FROM help_requests WHERE id = :id"), {"id": rid}) == (
        "matched"
    )


@pytest.mark.parametrize("status", [RequestStatus.SUBMITTED, RequestStatus.FULFILLED, RequestStatus.CANCELLED])
async def test_volunteers_are_offered_only_to_verified_matched_or_in_progress_requests(
    make: Factory, status: RequestStatus
) -> None:
    rid = (await make.request(status=status)).id
    vid = (await make.volunteer()).id
    with pytest.raises(DomainError) as err:
        await assignments.offer(make.ctx, rid, vid)
    assert (err.value.code, err.value.errors[0].field) == ("INVALID_TRANSITION", ("input", "requestId"))


async def test_an_offer_is_refused_for_an_unavailable_a_full_or_an_already_holding_volunteer(make: Factory) -> None:
    rid = (await make.request(status=RequestStatus.VERIFIED)).id
    busy = (await make.volunteer(availability="busy")).id
    full = (await make.volunteer(max_concurrent_assignments=1)).id
    await assignments.offer(make.ctx, (await make.request(status=RequestStatus.VERIFIED)).id, full)
    holding = (await make.volunteer(max_concurrent_assignments=3)).id
    await assignments.offer(make.ctx, rid, holding)
    await make.commit()
    codes = []
    for vid in (busy, full, holding):
        with pytest.raises(DomainError) as err:
            await assignments.offer(make.ctx, rid, vid)
        await make.ctx.session.rollback()
        codes.append((err.value.code, err.value.errors[0].field))
    assert codes == [
        ("VOLUNTEER_UNAVAILABLE", ("input", "volunteerId")),
        ("VOLUNTEER_AT_CAPACITY", ("input", "volunteerId")),
        ("ALREADY_ASSIGNED", ("input", "volunteerId")),
    ]


async def test_responses_record_when_and_why(make: Factory, clock) -> None:  # type: ignore[no-untyped-def]
    # given two pending offers
    a = await _assignment_in(make, "offered")
    b = await _assignment_in(make, "offered")
    clock.now += timedelta(minutes=5)
    # when one is accepted and the other declined with a reason
    await assignments.accept(make.ctx, a)
    await assignments.decline(make.ctx, b, "  away that day ")
    await make.commit()
    # then each records the response time, and the decline its trimmed reason
    got = {
        x.id: (x.status, x.responded_at, x.decline_reason)
        for x in [await make.ctx.session.get(Assignment, i) for i in (a, b)]
    }  # type: ignore[union-attr]
    assert got == {a: ("accepted", clock.now, ""), b: ("declined", clock.now, "away that day")}


async def test_an_offer_expires_at_its_deadline(make: Factory, clock) -> None:  # type: ignore[no-untyped-def]
    aid = await _assignment_in(make, "offered")
    clock.now += make.ctx.policy.offer_ttl
    with pytest.raises(DomainError) as err:
        await assignments.accept(make.ctx, aid)
    assert (err.value.code, err.value.errors[0].field) == ("OFFER_EXPIRED", ("input", "id"))


async def test_an_offer_can_be_accepted_just_before_its_deadline(make: Factory, clock) -> None:  # type: ignore[no-untyped-def]
    aid = await _assignment_in(make, "offered")
    clock.now += make.ctx.policy.offer_ttl - timedelta(seconds=1)
    accepted = await assignments.accept(make.ctx, aid)
    assert accepted.status == "accepted"


async def test_withdrawing_records_the_reason_and_the_time(make: Factory, clock) -> None:  # type: ignore[no-untyped-def]
    aid = await _assignment_in(make, "accepted")
    clock.now += timedelta(minutes=7)
    withdrawn = await assignments.withdraw(make.ctx, aid, "  fell ill ")
    assert (withdrawn.status, withdrawn.note, withdrawn.finished_at) == ("withdrawn", "fell ill", clock.now)
    with pytest.raises(DomainError) as err:
        await assignments.withdraw(make.ctx, await _assignment_in(make, "accepted"), "   ")
    assert (err.value.code, err.value.errors[0].field) == ("REQUIRED", ("input", "reason"))


@pytest.mark.parametrize(
    ("hours", "recorded"),
    [(Decimal("0.01"), Decimal("0.01")), (Decimal("1.5"), Decimal("1.50")), (Decimal(200), Decimal("200.00"))],
)
async def test_completing_records_hours_to_two_decimals_and_the_time(
    make: Factory,
    clock,
    hours: Decimal,
    recorded: Decimal,  # type: ignore[no-untyped-def]
) -> None:
    aid = await _assignment_in(make, "accepted")
    before = (await make.ctx.session.get(Assignment, aid)).note  # type: ignore[union-attr]
    clock.now += timedelta(hours=3)
    done = await assignments.complete(make.ctx, aid, hours)
    assert (done.status, done.hours, done.finished_at, done.note) == ("completed", recorded, clock.now, before)


async def test_completing_with_a_note_records_it(make: Factory) -> None:
    aid = await _assignment_in(make, "accepted")
    done = await assignments.complete(make.ctx, aid, Decimal(2), "  delivered  ")
    assert done.note == "delivered"


@pytest.mark.parametrize("hours", [Decimal(0), Decimal("-1"), Decimal("200.01"), Decimal("1.005")])
async def test_completing_refuses_hours_out_of_range(make: Factory, hours: Decimal) -> None:
    aid = await _assignment_in(make, "accepted")
    with pytest.raises(DomainError) as err:
        await assignments.complete(make.ctx, aid, hours)
    assert (err.value.code, err.value.errors[0].field) == ("OUT_OF_RANGE", ("input", "hours"))


async def test_work_is_completed_only_on_a_request_in_progress_or_fulfilled(make: Factory) -> None:
    # given an accepted assignment on a request that is still matched
    request = await make.request(status=RequestStatus.MATCHED)
    (offer,) = await assignments.list_for_request(make.ctx, request.id)
    await assignments.accept(make.ctx, offer.id)
    await make.commit()
    with pytest.raises(DomainError) as err:
        await assignments.complete(make.ctx, offer.id, Decimal(1))
    assert (err.value.code, err.value.errors[0].field) == ("INVALID_TRANSITION", ("input", "id"))


async def test_a_volunteer_with_room_is_offered_to_several_requests_and_again_after_declining(make: Factory) -> None:
    # given a volunteer with room for three, and two verified requests
    vid = (await make.volunteer(max_concurrent_assignments=3)).id
    first = (await make.request(status=RequestStatus.VERIFIED)).id
    second = (await make.request(status=RequestStatus.VERIFIED)).id
    # when the volunteer is offered to both, declines the first and is offered to it again
    declined = await assignments.offer(make.ctx, first, vid)
    await assignments.offer(make.ctx, second, vid)
    await assignments.decline(make.ctx, declined.id, "not today")
    again = await assignments.offer(make.ctx, first, vid)
    await make.commit()
    # then every offer went through: only an active assignment of the same pair blocks one
    rows = await make.ctx.session.execute(
        text("SELECT request_id, status FROM assignments WHERE volunteer_id = :v ORDER BY id"), {"v": vid}
    )
    assert [tuple(r) for r in rows] == [(first, "declined"), (second, "offered"), (first, "offered")]
    assert again.status == "offered"


async def test_withdrawing_the_last_offer_returns_a_matched_request_to_the_queue(make: Factory) -> None:
    request = await make.request(status=RequestStatus.MATCHED)
    rid = request.id
    (offer,) = await assignments.list_for_request(make.ctx, rid)
    await assignments.withdraw(make.ctx, offer.id, "found someone closer")
    await make.commit()
    assert await make.ctx.session.scalar(text("SELECT status FROM help_requests WHERE id = :id"), {"id": rid}) == (
        "verified"
    )


async def test_offering_an_unknown_request_or_volunteer_is_not_found_on_that_field(make: Factory) -> None:
    rid = (await make.request(status=RequestStatus.VERIFIED)).id
    vid = (await make.volunteer()).id
    found = []
    for request_id, volunteer_id in ((999_999, vid), (rid, 999_999)):
        with pytest.raises(DomainError) as err:
            await assignments.offer(make.ctx, request_id, volunteer_id)
        await make.ctx.session.rollback()
        found.append((err.value.code, err.value.errors[0].field))
    assert found == [("NOT_FOUND", ("input", "requestId")), ("NOT_FOUND", ("input", "volunteerId"))]


async def test_without_a_note_or_reason_nothing_is_recorded(make: Factory) -> None:
    rid = (await make.request(status=RequestStatus.VERIFIED)).id
    offer = await assignments.offer(make.ctx, rid, (await make.volunteer()).id)
    declined = await assignments.decline(make.ctx, offer.id)
    assert (offer.note, declined.decline_reason) == ("", "")


@pytest.fixture
async def as_viewer(engine: AsyncEngine, make: Factory) -> AsyncIterator[Callable[[Viewer], ServiceContext]]:
    """A service context for another viewer, on a session of its own (row-level security bound to it)."""
    sessions = []

    def open_(viewer: Viewer) -> ServiceContext:
        session = create_sessionmaker(engine)()
        sessions.append(session)
        tenancy.bind(session, viewer)
        return ServiceContext(session=session, viewer=viewer, clock=make.ctx.clock)

    yield open_
    for session in sessions:
        await session.close()


def _volunteer(make: Factory, volunteer_id: int) -> Viewer:
    return Viewer(
        label="volunteer", role="volunteer", volunteer_id=volunteer_id, organization_id=make.ctx.viewer.organization_id
    )


@pytest.mark.parametrize("action", ["accept", "decline", "complete"])
async def test_a_volunteer_answers_their_own_assignment_without_coordinating_rights(
    make: Factory, as_viewer: Callable[[Viewer], ServiceContext], action: str
) -> None:
    # given an offer (or, to complete, accepted work on a request in progress) held by a volunteer
    aid = await _assignment_in(make, "accepted" if action == "complete" else "offered")
    vid = await make.ctx.session.scalar(text("SELECT volunteer_id FROM assignments WHERE id = :id"), {"id": aid})
    # when the volunteer answers it themselves (a volunteer may not coordinate requests)
    own = as_viewer(_volunteer(make, vid))
    await ACT[action](own, aid)
    await own.session.commit()
    # then it moves
    assert await _status(make, aid) == RESULT[action]


async def test_a_volunteer_cannot_answer_someone_elses_offer(
    make: Factory, as_viewer: Callable[[Viewer], ServiceContext]
) -> None:
    aid = await _assignment_in(make, "offered")
    other = as_viewer(_volunteer(make, (await make.volunteer()).id))
    with pytest.raises(DomainError) as err:
        await assignments.accept(other, aid)
    assert (err.value.code, err.value.errors[0].field) == ("NOT_FOUND", ("input", "id"))
    assert await _status(make, aid) == "offered"


async def test_a_coordinator_offers_only_on_requests_in_their_scope(
    make: Factory, as_viewer: Callable[[Viewer], ServiceContext]
) -> None:
    # given a verified request and a social worker (who may coordinate) serving no community yet
    rid = (await make.request(status=RequestStatus.VERIFIED)).id
    vid = (await make.volunteer()).id
    worker = (await make.volunteer()).id
    social_worker = as_viewer(
        Viewer(label="sw", role="social_worker", volunteer_id=worker, organization_id=make.ctx.viewer.organization_id)
    )
    # when they offer the volunteer, then the request is NOT_FOUND to them and no offer exists
    with pytest.raises(DomainError) as err:
        await assignments.offer(social_worker, rid, vid)
    assert (err.value.code, err.value.errors[0].field) == ("NOT_FOUND", ("input", "requestId"))
    assert (
        await make.ctx.session.scalar(text("SELECT count(*) FROM assignments WHERE request_id = :r"), {"r": rid}) == 0
    )


async def test_an_offer_notifies_the_volunteer(make: Factory) -> None:
    rid = (await make.request(status=RequestStatus.VERIFIED)).id
    vid = (await make.volunteer()).id
    offer = await assignments.offer(make.ctx, rid, vid)
    await make.commit()
    rows = await make.ctx.session.execute(
        text("SELECT kind, payload FROM notifications WHERE volunteer_id = :v ORDER BY id"), {"v": vid}
    )
    assert [(kind, payload["assignment_id"], payload["request_id"]) for kind, payload in rows] == [
        ("offer", offer.id, rid)
    ]


NOTE = {
    "offer": lambda ctx, aid, rid, vid, text_: assignments.offer(ctx, rid, vid, text_),
    "decline": lambda ctx, aid, rid, vid, text_: assignments.decline(ctx, aid, text_),
    "complete": lambda ctx, aid, rid, vid, text_: assignments.complete(ctx, aid, Decimal(1), text_),
    "withdraw": lambda ctx, aid, rid, vid, text_: assignments.withdraw(ctx, aid, text_),
}
NOTE_FIELD = {
    "offer": ("input", "note"),
    "decline": ("input", "reason"),
    "complete": ("input", "note"),
    "withdraw": ("input", "reason"),
}


@pytest.mark.parametrize("action", list(NOTE))
async def test_a_note_or_reason_is_at_most_a_thousand_characters(make: Factory, action: str) -> None:
    # given what the action needs: a verified request and a volunteer, an offer, or accepted work
    rid = (await make.request(status=RequestStatus.VERIFIED)).id
    vid = (await make.volunteer()).id
    aid = 0 if action == "offer" else await _assignment_in(make, "accepted" if action == "complete" else "offered")
    # when the note is 1001 characters, then it is OUT_OF_RANGE on its field and nothing moves
    with pytest.raises(DomainError) as err:
        await NOTE[action](make.ctx, aid, rid, vid, "x" * 1001)
    await make.ctx.session.rollback()
    assert [(e.code, e.field) for e in err.value.errors] == [("OUT_OF_RANGE", NOTE_FIELD[action])]
    # and 1000 characters are recorded
    done = await NOTE[action](make.ctx, aid, rid, vid, "y" * 1000)
    await make.commit()
    assert (done.decline_reason if action == "decline" else done.note) == "y" * 1000
