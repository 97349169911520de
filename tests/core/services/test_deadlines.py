"""Offers expire, overdue requests escalate once, the coordinator's queue, duplicates are flagged.
Time moves by the injected clock, never by sleeping."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.errors import DomainError
from core.models import Notification
from core.services import assignments, deadlines, help_requests
from core.services.context import ServiceContext
from core.vocab import AssignmentStatus, EscalationStage, RequestStatus, Urgency
from tests.factories import Factory


class Recorder:
    def __init__(self) -> None:
        self.events: list[object] = []

    async def publish(self, event: object, ctx: ServiceContext) -> None:
        self.events.append(event)


async def test_an_unanswered_offer_expires_and_the_request_returns_to_the_queue(make: Factory, clock) -> None:  # type: ignore[no-untyped-def]
    # given an offer (the volunteer is notified through the outbox)
    request = await make.request(status=RequestStatus.VERIFIED)
    volunteer = await make.volunteer()
    offer = await assignments.offer(make.ctx, request.id, volunteer.id)
    await make.commit()
    # when its lifetime passes unanswered and the expiry job runs
    assert await assignments.expire_offers(make.ctx) == 0
    clock.now += make.ctx.policy.offer_ttl + timedelta(seconds=1)
    assert await assignments.expire_offers(make.ctx) == 1
    await make.commit()
    # then the offer is expired, the volunteer's slot free, the request back to VERIFIED, and both
    # messages are in the outbox
    await make.ctx.session.refresh(offer)
    await make.ctx.session.refresh(request)
    assert (offer.status, request.status) == (AssignmentStatus.EXPIRED.value, RequestStatus.VERIFIED.value)
    kinds = (
        await make.ctx.session.scalars(
            select(Notification.kind).where(Notification.volunteer_id == volunteer.id).order_by(Notification.id)
        )
    ).all()
    assert kinds == ["offer", "offer_expired"]


async def test_accepting_an_expired_offer_is_refused(make: Factory, clock) -> None:  # type: ignore[no-untyped-def]
    request = await make.request(status=RequestStatus.VERIFIED)
    offer = await assignments.offer(make.ctx, request.id, (await make.volunteer()).id)
    await make.commit()
    clock.now += make.ctx.policy.offer_ttl
    with pytest.raises(DomainError) as err:
        await assignments.accept(make.ctx, offer.id)
    assert err.value.code == "OFFER_EXPIRED"


async def test_overdue_lists_requests_past_their_target_most_urgent_first(make: Factory, clock) -> None:  # type: ignore[no-untyped-def]
    # given a critical request waiting for verification and a normal one waiting for a volunteer
    critical = await make.request(urgency=Urgency.CRITICAL, needed_by=None)
    normal = await make.request(urgency=Urgency.NORMAL, status=RequestStatus.VERIFIED, needed_by=None)
    # when 31 minutes pass, only the critical one is late (30 minutes to verify)
    clock.now += timedelta(minutes=31)
    assert [(o.request.id, o.stage) for o in await deadlines.overdue(make.ctx)] == [
        (critical.id, EscalationStage.VERIFICATION)
    ]
    # and after a day both are, critical first
    clock.now += timedelta(hours=24)
    assert [o.request.id for o in await deadlines.overdue(make.ctx)] == [critical.id, normal.id]


async def test_escalation_fires_once_per_stage_at_the_right_time(make: Factory, clock) -> None:  # type: ignore[no-untyped-def]
    recorder = Recorder()
    make.ctx.events = recorder
    request = await make.request(urgency=Urgency.HIGH, needed_by=clock.now + timedelta(hours=3))
    # before the target (2 hours to verify): nothing
    clock.now += timedelta(hours=1, minutes=59)
    assert await deadlines.escalate(make.ctx) == 0
    # after it: once, however often the job runs
    clock.now += timedelta(minutes=2)
    assert await deadlines.escalate(make.ctx) == 1
    assert await deadlines.escalate(make.ctx) == 0
    # verified late, then the needed-by time passes: the fulfilment stage escalates too
    await help_requests.verify(make.ctx, request.id)
    await assignments.offer(make.ctx, request.id, (await make.volunteer()).id)
    clock.now += timedelta(hours=1, minutes=1)
    assert await deadlines.escalate(make.ctx) == 1
    stages = [(e.request_id, e.stage) for e in recorder.events if e.name == "help_request.escalated"]
    assert stages == [(request.id, "verification"), (request.id, "fulfilment")]


async def test_the_queue_holds_what_needs_a_coordinator(make: Factory) -> None:
    submitted = await make.request(urgency=Urgency.LOW)
    critical = await make.request(urgency=Urgency.CRITICAL)
    verified = await make.request(status=RequestStatus.VERIFIED)
    matched = await make.request(status=RequestStatus.MATCHED)
    queue = await deadlines.queue(make.ctx)
    assert [r.id for r in queue.unverified] == [critical.id, submitted.id]
    assert [r.id for r in queue.unmatched] == [verified.id]
    assert [a.request_id for a in queue.pending_offers] == [matched.id]


async def test_same_phone_or_similar_text_nearby_is_flagged_as_a_duplicate(make: Factory) -> None:
    community = await make.community()
    first = await make.request(community, title="隔离病房婴儿奶粉即将用完", requester_phone="13912345678")
    by_phone = await make.request(title="奶粉", requester_phone="139 1234 5678")
    by_text = await make.request(community, title="隔离病房婴儿奶粉快用完了", requester_phone="13800000001")
    unrelated = await make.request(community, title="老人需要降压药", requester_phone="13800000002")
    assert (by_phone.duplicate_of_id, by_text.duplicate_of_id, unrelated.duplicate_of_id) == (first.id, first.id, None)


async def test_a_request_of_another_organisation_is_never_its_duplicate(make: Factory) -> None:
    # given an open request of one organisation
    first = await make.request(title="隔离病房婴儿奶粉即将用完", requester_phone="13912345678")
    other = await make.organization_using("supplies")
    # when the same requester's same need is submitted for a community of another organisation (a platform
    # administrator or the system sees both)
    there = make.in_org(other.id)
    community = await there.community()
    second = await there.request(community, title="隔离病房婴儿奶粉即将用完", requester_phone="13912345678")
    # then it is not flagged as a duplicate of the first organisation's request, which its verifiers cannot see
    assert (second.organization_id, second.duplicate_of_id) == (other.id, None)
    assert first.organization_id != other.id


async def test_verification_can_merge_a_duplicate(make: Factory) -> None:
    keep = await make.request(requester_phone="13912345678")
    duplicate = await make.request(requester_phone="13912345678")
    await help_requests.merge(make.ctx, keep.id, duplicate.id, "same family")
    await make.commit()
    await make.ctx.session.refresh(duplicate)
    assert (duplicate.status, duplicate.duplicate_of_id) == ("cancelled", keep.id)
    last = (await help_requests.history(make.ctx, duplicate.id))[-1]
    assert last.reason == f"merged into request {keep.id}: same family"
    with pytest.raises(DomainError) as err:
        await help_requests.merge(make.ctx, keep.id, keep.id)
    assert err.value.code == "INVALID_INPUT"


def test_targets_are_configurable() -> None:
    from core.services.matching_policy import MatchingPolicy, parse_targets

    targets = parse_targets("critical=10/20/60", MatchingPolicy().targets)
    assert targets[Urgency.CRITICAL].verify == timedelta(minutes=10)
    assert targets[Urgency.CRITICAL].fulfil == timedelta(hours=1)
    assert targets[Urgency.HIGH] == MatchingPolicy().targets[Urgency.HIGH]
    with pytest.raises(ValueError, match="unknown urgency"):
        parse_targets("urgent=1/2/3", MatchingPolicy().targets)
