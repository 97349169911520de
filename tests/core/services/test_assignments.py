"""Assignments: the lifecycle, and the capacity invariant under real concurrent transactions."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError

from core.errors import DomainError
from core.models import Assignment, AuditEntry, CategoryTraining, HelpRequest, Volunteer
from core.services import assignments, communities, help_requests, volunteers
from core.services.context import ServiceContext, Viewer
from core.vocab import (
    AssignmentStatus,
    Availability,
    CredentialKind,
    LiaisonRole,
    RequestCategory,
    RequestStatus,
    VolunteerMode,
)
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
    # given a request for two in progress with one accepted volunteer and one pending offer
    request = await make.request(status=RequestStatus.IN_PROGRESS, volunteers_needed=2)
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


# -- offers obey matching's hard filters ---------------------------------------------------------------------------


async def _count_assignments(make: Factory, request_id: int) -> int:
    stmt = select(func.count()).select_from(Assignment).where(Assignment.request_id == request_id)
    return int(await make.ctx.session.scalar(stmt) or 0)


Setup = Callable[[Factory], Awaitable[tuple[HelpRequest, Volunteer]]]


async def _lacks_a_skill(make: Factory) -> tuple[HelpRequest, Volunteer]:
    request = await make.request(status=RequestStatus.VERIFIED, required_skills=["driving"])
    return request, await make.volunteer(skills=["cooking"])


async def _pass_expires_before_needed(make: Factory) -> tuple[HelpRequest, Volunteer]:
    now = make.ctx.now()
    request = await make.request(
        status=RequestStatus.VERIFIED, required_credentials=["vehicle_pass"], needed_by=now + timedelta(hours=6)
    )
    volunteer = await make.volunteer()
    await volunteers.add_credential(
        make.ctx, volunteer.id, kind=CredentialKind.VEHICLE_PASS, expires_at=now + timedelta(hours=2)
    )
    await make.commit()
    return request, volunteer


async def _no_pass_at_all(make: Factory) -> tuple[HelpRequest, Volunteer]:
    request = await make.request(status=RequestStatus.VERIFIED, required_credentials=["vehicle_pass"])
    return request, await make.volunteer()


async def _untrained(make: Factory) -> tuple[HelpRequest, Volunteer]:
    training = await volunteers.create_training(make.ctx, code="delivery-safety", name="配送安全")
    make.ctx.session.add(CategoryTraining(category=RequestCategory.MEDICINE.value, training_id=training.id))
    await make.commit()
    request = await make.request(status=RequestStatus.VERIFIED, category=RequestCategory.MEDICINE)
    return request, await make.volunteer()


async def _online_for_physical_help(make: Factory) -> tuple[HelpRequest, Volunteer]:
    request = await make.request(status=RequestStatus.VERIFIED, category=RequestCategory.FOOD)
    return request, await make.volunteer(mode=VolunteerMode.ONLINE)


QUALIFICATION_CASES: dict[str, Setup] = {
    "skill": _lacks_a_skill,
    "credential expired": _pass_expires_before_needed,
    "credential missing": _no_pass_at_all,
    "training": _untrained,
    "online for physical help": _online_for_physical_help,
}


@pytest.mark.parametrize("case", list(QUALIFICATION_CASES))
async def test_an_offer_is_refused_to_a_volunteer_matching_would_not_propose(make: Factory, case: str) -> None:
    # given a request and a volunteer who fails one of its requirements
    request, volunteer = await QUALIFICATION_CASES[case](make)
    request_id, volunteer_id = request.id, volunteer.id
    # when the volunteer is offered
    with pytest.raises(DomainError) as err:
        await assignments.offer(make.ctx, request_id, volunteer_id)
    await make.ctx.session.rollback()
    # then VOLUNTEER_NOT_QUALIFIED on the volunteer, and nothing was written
    assert [(e.code, e.field) for e in err.value.errors] == [("VOLUNTEER_NOT_QUALIFIED", ("input", "volunteerId"))]
    assert await _count_assignments(make, request_id) == 0


async def test_a_fifth_and_sixth_offer_on_a_request_needing_four_are_refused(make: Factory) -> None:
    # given a request needing four volunteers and six who qualify
    request = await make.request(status=RequestStatus.VERIFIED, volunteers_needed=4)
    people = [(await make.volunteer()).id for _ in range(6)]
    request_id = request.id
    # when all six are offered one after another
    outcomes = []
    for vid in people:
        try:
            await assignments.offer(make.ctx, request_id, vid)
            await make.commit()
            outcomes.append("ok")
        except DomainError as exc:
            await make.ctx.session.rollback()
            outcomes.append((exc.code, exc.errors[0].field))
    # then four hold it and the last two are told it is fully staffed
    assert outcomes == ["ok"] * 4 + [("REQUEST_FULLY_STAFFED", ("input", "requestId"))] * 2
    assert await _count_assignments(make, request_id) == 4
    # and when one of the four declines, a slot opens again
    first = (await assignments.list_for_request(make.ctx, request_id))[0]
    await assignments.decline(make.ctx, first.id, "ill")
    again = await assignments.offer(make.ctx, request_id, people[4])
    assert again.status == A.OFFERED.value


async def test_staffing_holds_under_concurrent_offers(make: Factory, db_url: URL, clock) -> None:  # type: ignore[no-untyped-def]
    async def round_(racer: Racer) -> None:
        # given a request needing four and ten qualified volunteers
        request = await make.request(status=RequestStatus.VERIFIED, volunteers_needed=4)
        people = [(await make.volunteer()).id for _ in range(10)]
        request_id = request.id

        async def offer(ctx: ServiceContext, i: int) -> str:
            await assignments.offer(ctx, request_id, people[i])
            return "ok"

        # when ten coordinators offer a different volunteer each at once, in their own transactions
        outcomes = await racer.race(offer, viewer=make.ctx.viewer)
        # then exactly four offers stand; the other six were told the request is fully staffed
        assert sorted(outcomes) == ["REQUEST_FULLY_STAFFED"] * 6 + ["ok"] * 4
        active = select(func.count()).where(
            Assignment.request_id == request_id, Assignment.status.in_(["offered", "accepted"])
        )
        assert await make.ctx.session.scalar(active) == 4

    async with Racer.open(db_url, workers=10, clock=clock) as racer:
        for _ in range(rounds(3)):
            await round_(racer)


# -- the coordinator's override ------------------------------------------------------------------------------------


async def _overrides(make: Factory) -> list[AuditEntry]:
    await make.ctx.session.rollback()  # a fresh snapshot
    rows = await make.ctx.session.scalars(select(AuditEntry).where(AuditEntry.action == "override"))
    return list(rows.all())


async def test_a_coordinator_overrides_qualification_filters_and_it_is_audited(make: Factory) -> None:
    # given a physical request needing a skill and a vehicle pass, and an online volunteer with neither
    request = await make.request(
        status=RequestStatus.VERIFIED,
        category=RequestCategory.FOOD,
        required_skills=["driving"],
        required_credentials=["vehicle_pass"],
    )
    volunteer = await make.volunteer(mode=VolunteerMode.ONLINE, skills=["cooking"])
    request_id, volunteer_id = request.id, volunteer.id
    # when a coordinator offers them with a reason
    offer = await assignments.offer(
        make.ctx, request_id, volunteer_id, override_reason="lives next door; pass renewed this morning"
    )
    await make.commit()
    # then the offer stands
    assert (offer.request_id, offer.volunteer_id, offer.status) == (request_id, volunteer_id, A.OFFERED.value)
    # and the audit trail says who waived which filters on which offer, and why
    (entry,) = await _overrides(make)
    assert (entry.actor, entry.operation, entry.record_type, entry.record_id) == (
        make.ctx.viewer.label,
        "offerAssignment",
        "Assignment",
        offer.id,
    )
    assert sorted(entry.fields) == ["credentials", "mode", "skills"]
    assert "lives next door; pass renewed this morning" in entry.detail
    assert entry.organization_id == request.organization_id


async def test_a_social_worker_may_override_in_their_community(make: Factory) -> None:
    # given a social worker seated in a community, and a request there needing a skill nobody has
    community = await make.community()
    seat = await make.volunteer(mode=VolunteerMode.ONLINE)
    await communities.add_liaison(make.ctx, community.id, seat.id, LiaisonRole.SOCIAL_WORKER)
    request = await make.request(community, status=RequestStatus.VERIFIED, required_skills=["sign_language"])
    volunteer = await make.volunteer()
    await make.commit()
    request_id, volunteer_id = request.id, volunteer.id
    worker = Viewer(
        label="worker", role="social_worker", organization_id=community.organization_id, volunteer_id=seat.id
    )
    ctx = ServiceContext(make.ctx.session, worker, make.ctx.clock)
    # when they offer the volunteer without, then with an override
    with pytest.raises(DomainError) as err:
        await assignments.offer(ctx, request_id, volunteer_id)
    await make.ctx.session.rollback()
    assert err.value.code == "VOLUNTEER_NOT_QUALIFIED"
    offer = await assignments.offer(ctx, request_id, volunteer_id, override_reason="signs well enough")
    await make.commit()
    # then the override works and is theirs in the trail
    (entry,) = await _overrides(make)
    assert (entry.actor, entry.record_id, entry.fields) == ("worker", offer.id, ["skills"])


@pytest.mark.parametrize("role", ["system", "volunteer", "community_head", "counselor", "partner"])
async def test_other_roles_cannot_override(make: Factory, role: str) -> None:
    # given a request needing a skill the volunteer lacks
    request = await make.request(status=RequestStatus.VERIFIED, required_skills=["driving"])
    volunteer = await make.volunteer()
    request_id, volunteer_id = request.id, volunteer.id
    other = dataclasses.replace(make.ctx.viewer, label=role, role=role, volunteer_id=volunteer_id)
    ctx = ServiceContext(make.ctx.session, other, make.ctx.clock)
    # when someone in another role tries the override
    with pytest.raises(DomainError) as err:
        await assignments.offer(ctx, request_id, volunteer_id, override_reason="trust me")
    await make.ctx.session.rollback()
    # then FORBIDDEN, and nothing is written or audited as an override
    assert err.value.code == "FORBIDDEN"
    assert await _count_assignments(make, request_id) == 0
    assert await _overrides(make) == []


async def test_system_may_offer_but_not_override(make: Factory) -> None:
    # given scripts acting as `system` in the organisation (every permission)
    request = await make.request(status=RequestStatus.VERIFIED, volunteers_needed=2)
    qualified = await make.volunteer()
    system = ServiceContext(make.ctx.session, dataclasses.replace(make.ctx.viewer, role="system"), make.ctx.clock)
    # then they may offer a qualified volunteer, but waiving a filter needs a person who answers for it
    await assignments.offer(system, request.id, qualified.id)
    with pytest.raises(DomainError) as err:
        await assignments.offer(system, request.id, (await make.volunteer()).id, override_reason="cron says so")
    assert (err.value.code, err.value.errors[0].field) == ("FORBIDDEN", ("input", "override"))


async def _busy(make: Factory) -> tuple[int, int]:
    request = await make.request(status=RequestStatus.VERIFIED, required_skills=["driving"])
    return request.id, (await make.volunteer(availability=Availability.BUSY)).id


async def _full(make: Factory) -> tuple[int, int]:
    volunteer = await make.volunteer(max_concurrent_assignments=1)
    await assignments.offer(make.ctx, (await make.request(status=RequestStatus.VERIFIED)).id, volunteer.id)
    request = await make.request(status=RequestStatus.VERIFIED, required_skills=["driving"])
    return request.id, volunteer.id


async def _staffed(make: Factory) -> tuple[int, int]:
    request = await make.request(status=RequestStatus.MATCHED, required_skills=[])
    return request.id, (await make.volunteer()).id


async def _already_on(make: Factory) -> tuple[int, int]:
    request = await make.request(status=RequestStatus.VERIFIED, volunteers_needed=2)
    volunteer = await make.volunteer()
    await assignments.offer(make.ctx, request.id, volunteer.id)
    return request.id, volunteer.id


NOT_OVERRIDABLE = {
    "VOLUNTEER_UNAVAILABLE": _busy,
    "VOLUNTEER_AT_CAPACITY": _full,
    "REQUEST_FULLY_STAFFED": _staffed,
    "ALREADY_ASSIGNED": _already_on,
}


@pytest.mark.parametrize("code", list(NOT_OVERRIDABLE))
async def test_an_override_does_not_waive_availability_capacity_or_staffing(make: Factory, code: str) -> None:
    # given a pair refused for something no override waives
    request_id, volunteer_id = await NOT_OVERRIDABLE[code](make)
    await make.commit()
    before = await _count_assignments(make, request_id)
    # when a coordinator tries it with an override
    with pytest.raises(DomainError) as err:
        await assignments.offer(make.ctx, request_id, volunteer_id, override_reason="urgent")
    await make.ctx.session.rollback()
    # then it is still refused with that code, and nothing is written or audited
    assert err.value.code == code
    assert [e.code for e in err.value.errors if e.code == "VOLUNTEER_NOT_QUALIFIED"] == []
    assert await _count_assignments(make, request_id) == before
    assert await _overrides(make) == []


@pytest.mark.parametrize("reason", ["", "   ", "x" * 1001])
async def test_an_override_needs_a_reason(make: Factory, reason: str) -> None:
    request = await make.request(status=RequestStatus.VERIFIED, required_skills=["driving"])
    volunteer = await make.volunteer()
    with pytest.raises(DomainError) as err:
        await assignments.offer(make.ctx, request.id, volunteer.id, override_reason=reason)
    assert err.value.errors[0].field == ("input", "override", "reason")
    assert err.value.code in {"REQUIRED", "OUT_OF_RANGE"}


async def test_an_override_nothing_needed_is_not_recorded_as_one(make: Factory) -> None:
    request = await make.request(status=RequestStatus.VERIFIED)
    volunteer = await make.volunteer()
    await assignments.offer(make.ctx, request.id, volunteer.id, override_reason="just in case")
    await make.commit()
    assert await _overrides(make) == []
