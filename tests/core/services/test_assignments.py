"""Assignments: the lifecycle, and the capacity invariant under real concurrent transactions."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError

from core.errors import DomainError
from core.models import Assignment, Volunteer
from core.services import assignments, help_requests, volunteers
from core.services.context import ServiceContext
from core.vocab import AssignmentStatus, Availability, RequestStatus
from tests.concurrency import Racer, rounds
from tests.factories import Factory

A = AssignmentStatus


async def _active(make: Factory, volunteer_id: int) -> tuple[int, int]:
    """(trigger-maintained counter, actual count of offered/accepted rows) for a volunteer."""
    counter = await make.ctx.session.scalar(select(Volunteer.active_assignments).where(Volunteer.id == volunteer_id))
    actual = await make.ctx.session.scalar(
        select(text("count(*)"))
        .select_from(Assignment)
        .where(Assignment.volunteer_id == volunteer_id, Assignment.status.in_(["offered", "accepted"]))
    )
    return int(counter or 0), int(actual or 0)


async def test_offer_accept_complete_records_hours(make: Factory) -> None:
    # given a verified request and an available volunteer
    request = await make.request(status=RequestStatus.VERIFIED)
    volunteer = await make.volunteer()
    # when the volunteer is offered, accepts, work starts and is completed
    offer = await assignments.offer(make.ctx, request.id, volunteer.id, "closest driver")
    await assignments.accept(make.ctx, offer.id)
    await help_requests.start(make.ctx, request.id)
    done = await assignments.complete(make.ctx, offer.id, Decimal("2.50"))
    await make.commit()
    # then the assignment is completed with its hours and the slot is free again
    assert (done.status, done.hours) == (A.COMPLETED.value, Decimal("2.50"))
    assert await _active(make, volunteer.id) == (0, 0)


async def test_offering_moves_a_verified_request_to_matched(make: Factory) -> None:
    request = await make.request(status=RequestStatus.VERIFIED)
    volunteer = await make.volunteer()
    await assignments.offer(make.ctx, request.id, volunteer.id)
    await make.commit()
    await make.ctx.session.refresh(request)
    assert request.status == RequestStatus.MATCHED.value


@pytest.mark.parametrize(
    "status", [RequestStatus.SUBMITTED, RequestStatus.FULFILLED, RequestStatus.CANCELLED, RequestStatus.REJECTED]
)
async def test_cannot_offer_on_an_unverified_or_closed_request(make: Factory, status: RequestStatus) -> None:
    request = await make.request(status=status)
    volunteer = await make.volunteer()
    with pytest.raises(DomainError) as err:
        await assignments.offer(make.ctx, request.id, volunteer.id)
    assert err.value.code == "INVALID_TRANSITION"


@pytest.mark.parametrize("availability", [Availability.BUSY, Availability.OFF])
async def test_unavailable_volunteer_cannot_be_offered(make: Factory, availability: Availability) -> None:
    request = await make.request(status=RequestStatus.VERIFIED)
    volunteer = await make.volunteer(availability=availability)
    with pytest.raises(DomainError) as err:
        await assignments.offer(make.ctx, request.id, volunteer.id)
    assert err.value.code == "VOLUNTEER_UNAVAILABLE"


async def test_volunteer_at_capacity_cannot_be_offered(make: Factory) -> None:
    # given a volunteer with a maximum of one, holding one
    volunteer = await make.volunteer(max_concurrent_assignments=1)
    first = await make.request(status=RequestStatus.VERIFIED)
    second = await make.request(status=RequestStatus.VERIFIED)
    await assignments.offer(make.ctx, first.id, volunteer.id)
    await make.commit()
    # when offered a second request
    with pytest.raises(DomainError) as err:
        await assignments.offer(make.ctx, second.id, volunteer.id)
    # then VOLUNTEER_AT_CAPACITY
    assert err.value.code == "VOLUNTEER_AT_CAPACITY"


async def test_same_volunteer_twice_on_one_request_is_refused(make: Factory) -> None:
    request = await make.request(status=RequestStatus.VERIFIED)
    volunteer = await make.volunteer()
    await assignments.offer(make.ctx, request.id, volunteer.id)
    with pytest.raises(DomainError) as err:
        await assignments.offer(make.ctx, request.id, volunteer.id)
    assert err.value.code == "ALREADY_ASSIGNED"


async def test_declined_volunteer_can_be_offered_again(make: Factory) -> None:
    request = await make.request(status=RequestStatus.VERIFIED)
    volunteer = await make.volunteer()
    first = await assignments.offer(make.ctx, request.id, volunteer.id)
    await assignments.decline(make.ctx, first.id, "busy this morning")
    again = await assignments.offer(make.ctx, request.id, volunteer.id)
    assert again.status == A.OFFERED.value


@pytest.mark.parametrize(
    ("step", "from_status"),
    [("accept", A.ACCEPTED), ("decline", A.ACCEPTED), ("complete", A.OFFERED), ("withdraw", A.DECLINED)],
)
async def test_illegal_assignment_steps_are_refused(make: Factory, step: str, from_status: A) -> None:
    # given an assignment in `from_status`
    request = await make.request(status=RequestStatus.VERIFIED)
    volunteer = await make.volunteer()
    offer = await assignments.offer(make.ctx, request.id, volunteer.id)
    if from_status == A.ACCEPTED:
        await assignments.accept(make.ctx, offer.id)
    if from_status == A.DECLINED:
        await assignments.decline(make.ctx, offer.id)
    await make.commit()
    # when the illegal step is tried
    calls = {
        "accept": lambda: assignments.accept(make.ctx, offer.id),
        "decline": lambda: assignments.decline(make.ctx, offer.id),
        "complete": lambda: assignments.complete(make.ctx, offer.id, Decimal(1)),
        "withdraw": lambda: assignments.withdraw(make.ctx, offer.id, "changed plan"),
    }
    with pytest.raises(DomainError) as err:
        await calls[step]()
    # then it is refused
    assert err.value.code == "INVALID_TRANSITION"


@pytest.mark.parametrize("hours", [Decimal(0), Decimal(-1), Decimal("200.01"), Decimal("1.005")])
async def test_completion_hours_must_be_sensible(make: Factory, hours: Decimal) -> None:
    request = await make.request(status=RequestStatus.IN_PROGRESS)
    (held,) = await assignments.list_for_request(make.ctx, request.id)
    with pytest.raises(DomainError) as err:
        await assignments.complete(make.ctx, held.id, hours)
    assert (err.value.code, err.value.errors[0].field) == ("OUT_OF_RANGE", ("input", "hours"))


async def test_capacity_holds_under_concurrent_offers(make: Factory, db_url: URL, clock) -> None:  # type: ignore[no-untyped-def]
    async def round_(racer: Racer) -> None:
        # given a volunteer with room for 2 and 12 verified requests
        volunteer = await make.volunteer(max_concurrent_assignments=2)
        community = await make.community()
        requests = [await make.request(community, status=RequestStatus.VERIFIED) for _ in range(12)]

        async def offer(ctx: ServiceContext, i: int) -> str:
            await assignments.offer(ctx, requests[i].id, volunteer.id)
            return "ok"

        # when 12 coordinators offer the same volunteer at once, each in their own transaction
        outcomes = await racer.race(offer, viewer=make.ctx.viewer)
        # then exactly two offers stand and every other one was told why
        assert sorted(outcomes) == ["VOLUNTEER_AT_CAPACITY"] * 10 + ["ok"] * 2
        assert await _active(make, volunteer.id) == (2, 2)

    async with Racer.open(db_url, workers=12, clock=clock) as racer:
        for _ in range(rounds(2)):
            await round_(racer)


async def test_database_refuses_over_capacity_even_without_the_service(make: Factory) -> None:
    # given a volunteer with room for one, holding one
    volunteer_id = (await make.volunteer(max_concurrent_assignments=1)).id
    a = await make.request(status=RequestStatus.VERIFIED)
    b = await make.request(status=RequestStatus.VERIFIED)
    await assignments.offer(make.ctx, a.id, volunteer_id)
    await make.commit()
    # when a second active assignment is written straight into the table
    with pytest.raises(IntegrityError, match="ck_volunteers_capacity"):
        await make.ctx.session.execute(
            text(
                "INSERT INTO assignments (request_id, volunteer_id, status, note, decline_reason, offered_at) "
                "VALUES (:r, :v, 'offered', '', '', now())"
            ),
            {"r": b.id, "v": volunteer_id},
        )
    await make.ctx.session.rollback()
    # then the database kept the invariant
    assert await _active(make, volunteer_id) == (1, 1)


async def test_lowering_max_below_current_load_is_refused(make: Factory) -> None:
    volunteer = await make.volunteer(max_concurrent_assignments=3)
    for _ in range(2):
        await assignments.offer(make.ctx, (await make.request(status=RequestStatus.VERIFIED)).id, volunteer.id)
    await make.commit()
    with pytest.raises(DomainError) as err:
        await volunteers.update_volunteer(make.ctx, volunteer.id, {"max_concurrent_assignments": 1})
    assert (err.value.code, err.value.errors[0].field) == ("OUT_OF_RANGE", ("input", "maxConcurrentAssignments"))


async def test_fulfilment_withdraws_pending_offers_but_keeps_accepted_work(make: Factory) -> None:
    # given a request in progress with one accepted volunteer and one pending offer
    request = await make.request(status=RequestStatus.IN_PROGRESS)
    late = await make.volunteer()
    pending = await assignments.offer(make.ctx, request.id, late.id)
    # when the request is fulfilled
    await help_requests.fulfil(make.ctx, request.id)
    await make.commit()
    # then the pending offer is withdrawn; the accepted volunteer can still report hours
    statuses = {a.id: a.status for a in await assignments.list_for_request(make.ctx, request.id)}
    assert statuses[pending.id] == A.WITHDRAWN.value
    accepted = next(i for i, s in statuses.items() if s == A.ACCEPTED.value)
    done = await assignments.complete(make.ctx, accepted, Decimal(4))
    assert done.status == A.COMPLETED.value


async def test_a_volunteer_cannot_answer_someone_elses_offer(make: Factory) -> None:
    # given an offer to one volunteer
    request = await make.request(status=RequestStatus.VERIFIED)
    mine, theirs = await make.volunteer(), await make.volunteer()
    offer = await assignments.offer(make.ctx, request.id, theirs.id)
    await make.commit()
    # when another volunteer tries to accept it
    from core.services.context import ServiceContext, Viewer

    volunteer = Viewer(label="v", role="volunteer", volunteer_id=mine.id, organization_id=mine.organization_id)
    other = ServiceContext(make.ctx.session, volunteer, make.ctx.clock)
    with pytest.raises(DomainError) as err:
        await assignments.accept(other, offer.id)
    # then, as far as they can tell, there is no such offer
    assert err.value.code == "NOT_FOUND"
