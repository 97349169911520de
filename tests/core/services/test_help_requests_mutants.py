"""Help requests: behaviour that mutation testing (`make mutation`) found unguarded: editing rules, who may
edit, and when a matched request goes back to the queue."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from core import tenancy
from core.database import create_sessionmaker
from core.errors import DomainError
from core.models import HelpRequest
from core.services import assignments, help_requests
from core.services.context import ServiceContext, Viewer
from core.vocab import RequestStatus, Role
from tests.factories import Factory

S = RequestStatus


async def _status(make: Factory, request_id: int) -> str:
    return (await make.ctx.session.execute(select(HelpRequest.status).where(HelpRequest.id == request_id))).scalar_one()


@pytest.fixture
async def as_viewer(engine: AsyncEngine, make: Factory) -> AsyncIterator[object]:
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


@pytest.mark.parametrize("closed", [S.FULFILLED, S.REJECTED, S.CANCELLED])
async def test_a_closed_request_can_no_longer_be_edited(make: Factory, closed: S) -> None:
    # given a closed request
    rid = (await make.request(status=closed)).id
    # when a field is edited
    with pytest.raises(DomainError) as err:
        await help_requests.update(make.ctx, rid, {"beneficiaries": 5})
    await make.ctx.session.rollback()
    # then it is INVALID_TRANSITION on the request's id, and nothing changed
    assert (err.value.code, err.value.errors[0].field) == ("INVALID_TRANSITION", ("input", "id"))
    assert (await make.ctx.session.get(HelpRequest, rid)).beneficiaries == 1  # type: ignore[union-attr]


async def test_only_a_submitted_request_moves_to_another_community(make: Factory) -> None:
    # given a verified request and another community
    request = await make.request(status=S.VERIFIED)
    rid, home = request.id, request.community_id
    elsewhere = (await make.community()).id
    # when it is moved there
    with pytest.raises(DomainError) as err:
        await help_requests.update(make.ctx, rid, {"community_id": elsewhere})
    await make.ctx.session.rollback()
    # then it is refused on the community field and the request stays where it was
    assert (err.value.code, err.value.errors[0].field) == ("INVALID_TRANSITION", ("input", "communityId"))
    assert (await make.ctx.session.get(HelpRequest, rid)).community_id == home  # type: ignore[union-attr]


async def test_a_submitted_request_moves_to_another_community(make: Factory) -> None:
    # given a submitted request and another community
    rid = (await make.request()).id
    elsewhere = (await make.community()).id
    # when it is moved there
    updated = await help_requests.update(make.ctx, rid, {"community_id": elsewhere})
    await make.commit()
    # then it belongs to the new community
    assert updated.community_id == elsewhere


@pytest.mark.parametrize("status", [S.VERIFIED, S.MATCHED, S.IN_PROGRESS])
async def test_an_open_request_past_submission_keeps_its_community_and_takes_other_edits(
    make: Factory, status: S
) -> None:
    # given an open request past submission
    request = await make.request(status=status)
    rid, home = request.id, request.community_id
    # when other fields are edited, naming its own community again
    updated = await help_requests.update(make.ctx, rid, {"community_id": home, "beneficiaries": 4})
    await make.commit()
    # then the edit goes through
    assert (updated.beneficiaries, updated.community_id, updated.status) == (4, home, status.value)


async def test_a_community_head_edits_requests_of_their_community(make: Factory, as_viewer) -> None:  # type: ignore[no-untyped-def]
    # given a submitted request and the head of its community (who may post requests, not coordinate them)
    request = await make.request()
    rid, community_id = request.id, request.community_id
    head = as_viewer(
        Viewer(
            label="社区主任",
            role=Role.COMMUNITY_HEAD.value,
            organization_id=make.ctx.viewer.organization_id,
            community_id=community_id,
        )
    )
    # when the head edits it
    updated = await help_requests.update(head, rid, {"beneficiaries": 3})
    await head.session.commit()
    # then the edit is saved
    assert updated.beneficiaries == 3
    # and coordinating it stays beyond them
    with pytest.raises(DomainError) as err:
        await help_requests.verify(head, rid)
    assert err.value.code == "FORBIDDEN"


async def test_a_matched_request_stays_matched_while_another_offer_is_active(make: Factory) -> None:
    # given a matched request for two with two offers
    request = await make.request(status=S.MATCHED, volunteers_needed=2)
    rid = request.id
    second = (await make.volunteer()).id
    await assignments.offer(make.ctx, rid, second)
    await make.commit()
    first, _ = await assignments.list_for_request(make.ctx, rid)
    history_before = len(await help_requests.history(make.ctx, rid))
    # when one volunteer declines
    await assignments.decline(make.ctx, first.id, "no car today")
    await make.commit()
    # then the request is still matched and its history did not move
    assert await _status(make, rid) == S.MATCHED.value
    assert len(await help_requests.history(make.ctx, rid)) == history_before


@pytest.mark.parametrize("status", [S.VERIFIED, S.IN_PROGRESS])
async def test_only_a_matched_request_returns_to_the_queue(make: Factory, status: S) -> None:
    # given an open request that is not matched, with no active assignment
    request = await make.request(status=status)
    rid = request.id
    for a in await assignments.list_for_request(make.ctx, rid):
        if a.status == "accepted":
            await assignments.withdraw(make.ctx, a.id, "stepped back")
    await make.commit()
    history_before = len(await help_requests.history(make.ctx, rid))
    # when the return-to-queue check runs
    await help_requests.return_to_queue_if_unstaffed(make.ctx, await help_requests.lock(make.ctx, rid))
    await make.commit()
    # then nothing moves
    assert await _status(make, rid) == status.value
    assert len(await help_requests.history(make.ctx, rid)) == history_before


async def test_a_community_head_cancels_requests_of_their_community(make: Factory, as_viewer) -> None:  # type: ignore[no-untyped-def]
    # given a verified request and the head of its community (who may cancel, not coordinate)
    request = await make.request(status=S.VERIFIED)
    rid, community_id = request.id, request.community_id
    head = as_viewer(
        Viewer(
            label="社区主任",
            role=Role.COMMUNITY_HEAD.value,
            organization_id=make.ctx.viewer.organization_id,
            community_id=community_id,
        )
    )
    # when the head cancels it
    cancelled = await help_requests.cancel(head, rid, "the family took care of it")
    await head.session.commit()
    # then it is cancelled, and the history names the head
    assert cancelled.status == S.CANCELLED.value
    last = (await help_requests.history(make.ctx, rid))[-1]
    assert (last.from_status, last.to_status, last.actor) == ("verified", "cancelled", "社区主任")


async def test_a_request_returns_to_the_queue_whatever_other_requests_hold(make: Factory) -> None:
    # given two matched requests, each with one offer
    rid = (await make.request(status=S.MATCHED)).id
    other = (await make.request(status=S.MATCHED)).id
    (offer,) = await assignments.list_for_request(make.ctx, rid)
    # when this request's only volunteer declines (the other request's offer stays active)
    await assignments.decline(make.ctx, offer.id, "no car today")
    await make.commit()
    # then this request is back in the queue and the other is still matched
    assert (await _status(make, rid), await _status(make, other)) == (S.VERIFIED.value, S.MATCHED.value)


async def test_start_and_fulfil_record_the_coordinators_note_or_none(make: Factory) -> None:
    # given two requests whose volunteers accepted
    noted, plain = (await make.request(status=S.MATCHED)).id, (await make.request(status=S.MATCHED)).id
    for rid in (noted, plain):
        (offer,) = await assignments.list_for_request(make.ctx, rid)
        await assignments.accept(make.ctx, offer.id)
    # when one is started and fulfilled with notes and the other without
    await help_requests.start(make.ctx, noted, "on the way")
    await help_requests.fulfil(make.ctx, noted, "delivered to the door")
    await help_requests.start(make.ctx, plain)
    await help_requests.fulfil(make.ctx, plain)
    await make.commit()
    # then the history holds the notes as given, and empty reasons where none was given
    reasons = {
        rid: [(h.to_status, h.reason) for h in (await help_requests.history(make.ctx, rid))[-2:]]
        for rid in (noted, plain)
    }
    assert reasons[noted] == [("in_progress", "on the way"), ("fulfilled", "delivered to the door")]
    assert reasons[plain] == [("in_progress", ""), ("fulfilled", "")]


async def test_a_reason_may_be_up_to_1000_characters(make: Factory) -> None:
    # given two requests
    ok, too_long = (await make.request()).id, (await make.request()).id
    # when one is rejected with a 1000-character reason and the other with 1001 characters
    await help_requests.reject(make.ctx, ok, "理" * 1000)
    with pytest.raises(DomainError) as err:
        await help_requests.reject(make.ctx, too_long, "理" * 1001)
    await make.commit()
    # then the first is rejected with its reason whole, the second refused on the reason field
    assert (await help_requests.history(make.ctx, ok))[-1].reason == "理" * 1000
    assert (err.value.code, err.value.errors[0].field) == ("OUT_OF_RANGE", ("input", "reason"))
    assert await _status(make, too_long) == S.SUBMITTED.value


async def test_start_needs_an_accepted_assignment_on_this_very_request(make: Factory) -> None:
    # given a matched request whose only offer is pending, while another request's volunteer has accepted
    rid = (await make.request(status=S.MATCHED)).id
    other = (await make.request(status=S.MATCHED)).id
    (elsewhere,) = await assignments.list_for_request(make.ctx, other)
    await assignments.accept(make.ctx, elsewhere.id)
    await make.commit()
    # when work on the first is started
    with pytest.raises(DomainError) as err:
        await help_requests.start(make.ctx, rid)
    await make.ctx.session.rollback()
    # then it is refused on the request's id, and the request stays matched
    assert (err.value.code, err.value.errors[0].field) == ("NO_ACCEPTED_ASSIGNMENT", ("input", "id"))
    assert await _status(make, rid) == S.MATCHED.value


class Recorder:
    def __init__(self) -> None:
        self.events: list[object] = []

    async def publish(self, event: object, ctx: ServiceContext) -> None:
        self.events.append(event)


async def test_closing_a_request_releases_only_its_own_active_assignments_and_says_so(make: Factory) -> None:
    # given a request in progress (one accepted volunteer), a second pending offer on it, and another request
    request = await make.request(status=S.IN_PROGRESS, volunteers_needed=2)
    rid, org = request.id, request.organization_id
    (accepted,) = await assignments.list_for_request(make.ctx, rid)
    pending = await assignments.offer(make.ctx, rid, (await make.volunteer()).id)
    other = (await make.request(status=S.MATCHED)).id
    await make.commit()
    accepted_id, pending_id, volunteers = accepted.id, pending.id, {accepted.id: accepted.volunteer_id}
    volunteers[pending_id] = pending.volunteer_id
    recorder = Recorder()
    make.ctx.events = recorder
    # when it is cancelled
    await help_requests.cancel(make.ctx, rid, "the family took care of it")
    await make.commit()
    # then both of its assignments are withdrawn now, the other request's offer is untouched
    after = {a.id: (a.status, a.finished_at) for a in await assignments.list_for_request(make.ctx, rid)}
    now = make.ctx.now()
    assert after == {accepted_id: ("withdrawn", now), pending_id: ("withdrawn", now)}
    assert [a.status for a in await assignments.list_for_request(make.ctx, other)] == ["offered"]
    # and an AssignmentChanged event says so for each
    changed = sorted(
        (e.assignment_id, e.organization_id, e.request_id, e.volunteer_id, e.status)  # type: ignore[attr-defined]
        for e in recorder.events
        if type(e).__name__ == "AssignmentChanged"
    )
    assert changed == sorted((a, org, rid, volunteers[a], "withdrawn") for a in (accepted_id, pending_id))
    moves = [
        (e.request_id, e.from_status, e.to_status, e.reason)  # type: ignore[attr-defined]
        for e in recorder.events
        if type(e).__name__ == "HelpRequestStatusChanged"
    ]
    assert moves == [(rid, "in_progress", "cancelled", "the family took care of it")]


async def test_fulfilling_keeps_accepted_volunteers_and_withdraws_pending_offers(make: Factory) -> None:
    # given a request in progress with its accepted volunteer and a pending offer, and a declined one
    rid = (await make.request(status=S.IN_PROGRESS, volunteers_needed=3)).id
    (accepted,) = await assignments.list_for_request(make.ctx, rid)
    pending = await assignments.offer(make.ctx, rid, (await make.volunteer()).id)
    declined = await assignments.offer(make.ctx, rid, (await make.volunteer()).id)
    await assignments.decline(make.ctx, declined.id, "away")
    await make.commit()
    ids = {"accepted": accepted.id, "pending": pending.id, "declined": declined.id}
    # when it is fulfilled
    await help_requests.fulfil(make.ctx, rid)
    await make.commit()
    # then the accepted volunteer stays on it (to report hours), the pending offer is withdrawn, the declined
    # one is left as it was
    after = {a.id: a.status for a in await assignments.list_for_request(make.ctx, rid)}
    assert {k: after[v] for k, v in ids.items()} == {
        "accepted": "accepted",
        "pending": "withdrawn",
        "declined": "declined",
    }


async def test_verify_and_transition_record_the_note_or_none(make: Factory) -> None:
    # given three submitted requests
    noted, plain, moved = (await make.request()).id, (await make.request()).id, (await make.request()).id
    # when one is verified with a note, one without, and one moved by `transition` without a reason
    await help_requests.verify(make.ctx, noted, "checked by phone")
    await help_requests.verify(make.ctx, plain)
    await help_requests.transition(make.ctx, moved, S.VERIFIED)
    await make.commit()
    # then the history holds the note as given and empty reasons where none was given
    last = {rid: (await help_requests.history(make.ctx, rid))[-1] for rid in (noted, plain, moved)}
    assert {rid: (h.to_status, h.reason) for rid, h in last.items()} == {
        noted: ("verified", "checked by phone"),
        plain: ("verified", ""),
        moved: ("verified", ""),
    }


async def test_a_community_head_cannot_touch_requests_of_another_community(make: Factory, as_viewer) -> None:  # type: ignore[no-untyped-def]
    # given a request and the head of another community of the same organisation
    rid = (await make.request(status=S.VERIFIED)).id
    other_community = (await make.community()).id
    head = as_viewer(
        Viewer(
            label="社区主任",
            role=Role.COMMUNITY_HEAD.value,
            organization_id=make.ctx.viewer.organization_id,
            community_id=other_community,
        )
    )
    # when the head cancels or edits it
    with pytest.raises(DomainError) as cancelling:
        await help_requests.cancel(head, rid, "not ours")
    await head.session.rollback()
    with pytest.raises(DomainError) as editing:
        await help_requests.update(head, rid, {"beneficiaries": 9})
    await head.session.rollback()
    # then for them the request does not exist, and it is unchanged
    assert cancelling.value.code == editing.value.code == "NOT_FOUND"
    assert await _status(make, rid) == S.VERIFIED.value
