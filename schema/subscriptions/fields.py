"""Core's subscription fields: help requests as they change, a volunteer's offers, the coordinators' queue.

Each event names a record; it is reloaded in a fresh session as the subscriber (core.live.visible: the
permissions and scopes the queries use, on top of row-level security) and delivered only if the subscriber
may see it. The routing keys of the announcement skip what cannot concern the subscriber without a query.
A request that was in the subscriber's view (its previous keys matched, core.live.visible.request_was_visible)
and no longer is -- its urgency left the filter, it moved to another community, it became invisible --
comes as REMOVED with its id only. Every subscription starts with RESYNC (schema.subscriptions.live).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from enum import Enum
from typing import Any

import strawberry
from strawberry import Info

from core import live
from core.errors import DomainError
from core.live import visible
from core.services import access, deadlines
from core.services.context import ServiceContext
from core.vocab import Role
from schema import ids
from schema.subscriptions.live import live_events
from schema.types import enums
from schema.types.assignment import Assignment
from schema.types.help_request import HelpRequest


@strawberry.enum(description="What a live update reports.")
class LiveChange(Enum):
    CREATED = "created"
    UPDATED = "updated"
    REMOVED = strawberry.enum_value(
        "removed",
        description="It left what you follow (no longer matches your filter, moved out of your scope, or may no "
        "longer be seen by you): only its id is given; drop it from what you show.",
    )
    RESYNC = strawberry.enum_value(
        "resync",
        description="The first message of every subscription (it is listening from then on: load what you show "
        "now), and later whenever updates may have been missed (a reconnect, or falling behind): reload it.",
    )


@strawberry.input(description="All given conditions must hold (empty: every request you may see).")
class HelpRequestLiveFilter:
    community_ids: list[strawberry.ID] | None = None
    district_ids: list[strawberry.ID] | None = None
    urgencies: list[enums.Urgency] | None = None  # type: ignore[valid-type]

    def to_service(self) -> visible.RequestFilter:
        return visible.RequestFilter(
            community_ids=frozenset(
                ids.decode(c, "Community", ("filter", "communityIds")) for c in self.community_ids or ()
            ),
            district_ids=frozenset(
                ids.decode(d, "District", ("filter", "districtIds")) for d in self.district_ids or ()
            ),
            urgencies=frozenset(u.value for u in self.urgencies or ()),
        )


@strawberry.type(description="A help request that is new, changed, or gone from your view, as you may see it now.")
class HelpRequestChange:
    change: LiveChange
    request_id: strawberry.ID | None = strawberry.field(description="The request's id (null for RESYNC).")
    request: HelpRequest | None = strawberry.field(description="Null for RESYNC and REMOVED.")
    previous_status: enums.RequestStatus | None = strawberry.field(  # type: ignore[valid-type]
        description="The status it left, when the change moved it."
    )


@strawberry.type(description="One of your offers (assignments) that is new or changed: offered, answered, expired.")
class OfferChange:
    change: LiveChange
    offer: Assignment | None = strawberry.field(description="Null for RESYNC.")
    previous_status: enums.AssignmentStatus | None = strawberry.field(  # type: ignore[valid-type]
        description="The status it left, when the change moved it."
    )


@strawberry.enum(description="The parts of the coordinators' queue (the `queue` query; core.services.deadlines).")
class CoordinatorQueueSection(Enum):
    UNVERIFIED = deadlines.QueueSection.UNVERIFIED.value
    UNMATCHED = deadlines.QueueSection.UNMATCHED.value
    PENDING_OFFERS = deadlines.QueueSection.PENDING_OFFERS.value


@strawberry.type(description="A change to the coordinators' queue: what entered or left which part of it.")
class CoordinatorQueueChange:
    change: LiveChange
    request_id: strawberry.ID | None = strawberry.field(description="The request concerned (null for RESYNC).")
    request: HelpRequest | None = strawberry.field(
        description="The request concerned (null for RESYNC and REMOVED: it left your view)."
    )
    offer: Assignment | None = strawberry.field(description="The offer concerned, for the pending offers.")
    entered: CoordinatorQueueSection | None
    left: CoordinatorQueueSection | None


def _kind(event: live.Event) -> LiveChange:
    return LiveChange.CREATED if event.op == "insert" else LiveChange.UPDATED


def _previous(event: live.Event, enum: Any) -> Any:
    was = event.was.get("status")
    return enum(was) if isinstance(was, str) else None


async def _require(ctx: ServiceContext, permission: str) -> None:
    access.require(ctx, permission)


def _before(event: live.Event, key: str) -> Any:
    """A routing key's value before the change (its current one when it did not change)."""
    return event.was[key] if key in event.was else event.get(key)


def _section(section: deadlines.QueueSection | None) -> CoordinatorQueueSection | None:
    return CoordinatorQueueSection(section.value) if section is not None else None


def _movement(event: live.Event) -> tuple[CoordinatorQueueSection | None, CoordinatorQueueSection | None]:
    """(entered, left): the queue's rule (deadlines.queue_movement) applied to an announcement's status keys."""
    kind = "request" if event.topic == live.HELP_REQUESTS else "offer"
    entered, left = deadlines.queue_movement(
        kind, event.get("status"), _before(event, "status"), created=event.op == "insert"
    )
    return _section(entered), _section(left)


def _request_gid(pk: int | None) -> strawberry.ID | None:
    return strawberry.ID(ids.encode("HelpRequest", pk)) if pk is not None else None


@strawberry.type
class CoreSubscription:
    @strawberry.subscription(
        description="New and changed help requests you may see (as the `helpRequests` query would show them)."
    )
    async def help_request_changed(
        self, info: Info, filter: HelpRequestLiveFilter | None = None
    ) -> AsyncGenerator[HelpRequestChange, None]:
        wanted = (filter or HelpRequestLiveFilter()).to_service()
        await info.context.read(_require, "requests.read")
        viewer = info.context.viewer
        # A community head sees exactly their community's requests (access.request_scope): others cannot
        # concern them, whatever the reload would say.
        head_of = viewer.community_id if viewer.role == Role.COMMUNITY_HEAD.value else None

        def may_match(community_id: object, urgency: object) -> bool:
            if head_of is not None and community_id != head_of:
                return False
            return wanted.may_match(community_id, urgency)

        def concerns(event: live.Event) -> bool:
            # Now, or before the change (then it may have left the subscriber's view: REMOVED).
            return may_match(event.get("community_id"), event.get("urgency")) or (
                event.op == "update" and may_match(_before(event, "community_id"), _before(event, "urgency"))
            )

        async for event in live_events(info, {live.HELP_REQUESTS}, accept=concerns):
            if event.resync:
                yield HelpRequestChange(change=LiveChange.RESYNC, request_id=None, request=None, previous_status=None)
                continue
            found = await info.context.read(visible.visible_request, event.id, wanted)
            if found is not None:
                yield HelpRequestChange(
                    change=_kind(event),
                    request_id=_request_gid(found.id),
                    request=HelpRequest.from_model(found),
                    previous_status=_previous(event, enums.RequestStatus),
                )
            elif event.op == "update" and await _was_visible(info, event, wanted, may_match):
                yield HelpRequestChange(
                    change=LiveChange.REMOVED,
                    request_id=_request_gid(event.id),
                    request=None,
                    previous_status=_previous(event, enums.RequestStatus),
                )

    @strawberry.subscription(description="Your offers as they are made, answered and expire (volunteers).")
    async def my_offers(self, info: Info) -> AsyncGenerator[OfferChange, None]:
        await info.context.read(_require, "assignments.respond")
        volunteer = info.context.viewer.volunteer_id
        if volunteer is None:
            raise DomainError("FORBIDDEN", "Your account has no volunteer record.")
        concerns = lambda event: event.get("volunteer_id") == volunteer  # noqa: E731
        async for event in live_events(info, {live.ASSIGNMENTS}, accept=concerns):
            if event.resync:
                yield OfferChange(change=LiveChange.RESYNC, offer=None, previous_status=None)
                continue
            found = await info.context.read(visible.own_offer, event.id)
            if found is not None:
                yield OfferChange(
                    change=_kind(event),
                    offer=Assignment.from_model(found),
                    previous_status=_previous(event, enums.AssignmentStatus),
                )

    @strawberry.subscription(
        description="Changes to your work list (the `queue` query): requests to verify or to match, offers awaiting "
        "an answer -- what entered or left which part."
    )
    async def coordinator_queue(self, info: Info) -> AsyncGenerator[CoordinatorQueueChange, None]:
        await info.context.read(_require, "requests.read")

        def concerns(event: live.Event) -> bool:
            return _movement(event) != (None, None)

        async for event in live_events(info, {live.HELP_REQUESTS, live.ASSIGNMENTS}, accept=concerns):
            if event.resync:
                yield CoordinatorQueueChange(
                    change=LiveChange.RESYNC, request_id=None, request=None, offer=None, entered=None, left=None
                )
                continue
            entered, left = _movement(event)
            if event.topic == live.HELP_REQUESTS:
                request = await info.context.read(visible.visible_request, event.id)
                if request is None and left is not None and event.op == "update":
                    # It was in a part of the queue the coordinator saw and is gone from their view.
                    if await _was_visible(info, event, None, lambda _c, _u: True):
                        yield CoordinatorQueueChange(
                            change=LiveChange.REMOVED,
                            request_id=_request_gid(event.id),
                            request=None,
                            offer=None,
                            entered=None,
                            left=left,
                        )
                    continue
                offer = None
            else:
                found = await info.context.read(visible.visible_assignment, event.id)
                offer = Assignment.from_model(found) if found is not None else None
                request_id = found.request_id if found is not None else None
                request = await info.context.read(visible.visible_request, request_id) if request_id else None
            if request is not None:
                yield CoordinatorQueueChange(
                    change=_kind(event),
                    request_id=_request_gid(request.id),
                    request=HelpRequest.from_model(request),
                    offer=offer,
                    entered=entered,
                    left=left,
                )


async def _was_visible(info: Info, event: live.Event, wanted: visible.RequestFilter | None, may_match: Any) -> bool:
    """Whether the request an update names was in the subscriber's view before it (see the module's
    docstring): only then is a REMOVED sent, so its id tells them nothing they did not know."""
    community, urgency = _before(event, "community_id"), _before(event, "urgency")
    if event.id is None or not may_match(community, urgency):
        return False
    return await info.context.read(visible.request_was_visible, event.id, community, urgency, wanted)
