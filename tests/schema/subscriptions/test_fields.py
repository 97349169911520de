"""Core's subscription fields, each against the real endpoint: what a subscriber receives, and -- with a
positive control on the same connection or test -- what it does not. Every subscription's first message is
RESYNC, sent once it listens: the tests wait for it (`subscribed`) instead of polling the process."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from core import live
from core.live.events import encode
from core.services import assignments, help_requests
from core.services.context import Viewer
from core.settings import Settings
from schema import ids
from schema.subscriptions import live as live_fields
from schema.subscriptions.context import LiveContext
from tests.live_support import WsClient
from tests.schema.subscriptions.conftest import LiveKit

CHANGED = """subscription($f: HelpRequestLiveFilter) {
  helpRequestChanged(filter: $f) { change requestId previousStatus request { id title status } } }"""
OFFERS = "subscription { myOffers { change previousStatus offer { id status } } }"
QUEUE = "subscription { coordinatorQueue { change entered left request { id title } offer { id } } }"


def _gid(kind: str, pk: int) -> str:
    return ids.encode(kind, pk)


async def subscribed(client: WsClient, query: str, variables: dict[str, Any] | None = None) -> str:
    """Subscribe and wait for the first message, RESYNC: the subscription listens from then on."""
    op = await client.subscribe(query, variables)
    first = (await client.next(op))["data"]
    assert [change["change"] for change in first.values()] == ["RESYNC"], first
    return op


def _admin(org: int) -> Viewer:
    return Viewer(label="t", role="organization_admin", organization_id=org)


async def test_help_request_changed_follows_visibility_and_filters(live_kit: LiveKit) -> None:
    # given organisations A and B, A with two communities, and three subscribers: A's administrator, the head
    # of A's second community, and A's administrator again filtering on urgency `critical`
    org_a, org_b = await live_kit.organization(), await live_kit.organization()
    first, second, other = (
        await live_kit.community(org_a),
        await live_kit.community(org_a),
        await live_kit.community(org_b),
    )
    admin = await live_kit.sign_in("organization_admin", org_a)
    head = await live_kit.sign_in("community_head", org_a, community_id=second)
    async with (
        WsClient.connect(live_kit.url, admin.token) as by_admin,
        WsClient.connect(live_kit.url, head.token) as by_head,
        WsClient.connect(live_kit.url, admin.token) as by_filter,
    ):
        all_op = await subscribed(by_admin, CHANGED)
        head_op = await subscribed(by_head, CHANGED)
        critical_op = await subscribed(by_filter, CHANGED, {"f": {"urgencies": ["CRITICAL"]}})
        # when B posts a request, then A's first community, then A's second community a critical one
        await live_kit.help_request(other, title="乙机构")
        in_first = await live_kit.help_request(first, title="一社区")
        in_second = await live_kit.help_request(second, title="二社区", urgency="critical")
        # then A's administrator sees A's two, in order, and never B's
        seen = [(await by_admin.next(all_op))["data"]["helpRequestChanged"] for _ in range(2)]
        assert [s["request"]["id"] for s in seen] == [_gid("HelpRequest", in_first), _gid("HelpRequest", in_second)]
        assert {s["change"] for s in seen} == {"CREATED"}
        # the head sees only their community's, the filter only the critical one
        assert (await by_head.next(head_op))["data"]["helpRequestChanged"]["request"]["title"] == "二社区"
        assert (await by_filter.next(critical_op))["data"]["helpRequestChanged"]["request"]["title"] == "二社区"
        # when the first is verified, then the change says where it came from
        async with live_kit.service(Viewer(label="t", role="organization_admin", organization_id=org_a)) as ctx:
            await help_requests.verify(ctx, in_first)
        update = (await by_admin.next(all_op))["data"]["helpRequestChanged"]
        assert (update["change"], update["previousStatus"], update["request"]["status"]) == (
            "UPDATED",
            "SUBMITTED",
            "VERIFIED",
        )
        # and the head, who may not see the first community's request, got nothing in between
        await live_kit.help_request(second, title="二社区又一")
        assert (await by_head.next(head_op))["data"]["helpRequestChanged"]["request"]["title"] == "二社区又一"


async def test_my_offers_reach_only_the_volunteer_offered(live_kit: LiveKit) -> None:
    # given two volunteers of one organisation, signed in and subscribed to their offers
    org = await live_kit.organization()
    community = await live_kit.community(org)
    first_volunteer, second_volunteer = await live_kit.volunteer(org), await live_kit.volunteer(org)
    first = await live_kit.sign_in("volunteer", org, volunteer_id=first_volunteer)
    second = await live_kit.sign_in("volunteer", org, volunteer_id=second_volunteer)
    request = await live_kit.help_request(community, volunteers_needed=2)
    coordinator = Viewer(label="t", role="organization_admin", organization_id=org)
    async with live_kit.service(coordinator) as ctx:
        await help_requests.verify(ctx, request)
    async with WsClient.connect(live_kit.url, first.token) as one, WsClient.connect(live_kit.url, second.token) as two:
        one_op, two_op = await subscribed(one, OFFERS), await subscribed(two, OFFERS)
        # when the first volunteer is offered the request, then the second
        async with live_kit.service(coordinator) as ctx:
            offered = await assignments.offer(ctx, request, first_volunteer, override_reason="test")
        async with live_kit.service(coordinator) as ctx:
            other = await assignments.offer(ctx, request, second_volunteer, override_reason="test")
        # then each receives exactly their own offer (the second's first message is its own)
        mine = (await one.next(one_op))["data"]["myOffers"]
        assert (mine["change"], mine["offer"]["id"]) == ("CREATED", _gid("Assignment", offered.id))
        theirs = (await two.next(two_op))["data"]["myOffers"]
        assert theirs["offer"]["id"] == _gid("Assignment", other.id)
        # when the first answers, then it hears of its offer's new state
        async with live_kit.service(
            Viewer(label="v", role="volunteer", organization_id=org, volunteer_id=first_volunteer)
        ) as ctx:
            await assignments.accept(ctx, offered.id)
        answered = (await one.next(one_op))["data"]["myOffers"]
        assert (answered["change"], answered["previousStatus"], answered["offer"]["status"]) == (
            "UPDATED",
            "OFFERED",
            "ACCEPTED",
        )


async def test_coordinator_queue_says_what_entered_and_left(live_kit: LiveKit) -> None:
    # given a coordinator (organisation administrator) subscribed to the queue
    org = await live_kit.organization()
    community = await live_kit.community(org)
    admin = await live_kit.sign_in("organization_admin", org)
    async with WsClient.connect(live_kit.url, admin.token) as client:
        op = await subscribed(client, QUEUE)
        # when a request is posted, then verified
        request = await live_kit.help_request(community, title="排队")
        async with live_kit.service(Viewer(label="t", role="organization_admin", organization_id=org)) as ctx:
            await help_requests.verify(ctx, request)
        # then it entered the unverified part, then moved to the unmatched part
        posted = (await client.next(op))["data"]["coordinatorQueue"]
        assert (posted["change"], posted["entered"], posted["left"]) == ("CREATED", "UNVERIFIED", None)
        verified = (await client.next(op))["data"]["coordinatorQueue"]
        assert (verified["entered"], verified["left"], verified["request"]["title"]) == (
            "UNMATCHED",
            "UNVERIFIED",
            "排队",
        )


async def test_operations_on_one_connection_have_their_own_context(live_kit: LiveKit) -> None:
    # given one connection running two subscriptions with different filters
    org = await live_kit.organization()
    first, second = await live_kit.community(org), await live_kit.community(org)
    admin = await live_kit.sign_in("organization_admin", org)
    async with WsClient.connect(live_kit.url, admin.token) as client:
        one = await subscribed(client, CHANGED, {"f": {"communityIds": [_gid("Community", first)]}})
        two = await subscribed(client, CHANGED, {"f": {"communityIds": [_gid("Community", second)]}})
        # when each community posts one
        await live_kit.help_request(first, title="甲")
        await live_kit.help_request(second, title="乙")
        # then each operation receives its own, and both arrive
        got = {}
        for _ in range(2):
            message = await client.receive()
            got[message["id"]] = message["payload"]["data"]["helpRequestChanged"]["request"]["title"]
        assert got == {one: "甲", two: "乙"}


async def test_a_change_committed_right_after_the_first_resync_is_delivered(live_kit: LiveKit) -> None:
    # given an administrator whose subscription answered its first message (RESYNC)
    org = await live_kit.organization()
    community = await live_kit.community(org)
    admin = await live_kit.sign_in("organization_admin", org)
    async with WsClient.connect(live_kit.url, admin.token) as client:
        op = await client.subscribe(CHANGED)
        first = (await client.next(op))["data"]["helpRequestChanged"]
        assert (first["change"], first["request"]) == ("RESYNC", None)
        # when a request is posted at once (no waiting on anything but that message)
        made = await live_kit.help_request(community, title="紧接着")
        # then it arrives
        got = (await client.next(op))["data"]["helpRequestChanged"]
    assert (got["change"], got["request"]["id"]) == ("CREATED", _gid("HelpRequest", made))


async def test_another_organisations_burst_costs_a_subscriber_nothing(
    live_kit: LiveKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given A's administrator subscribed, and every event reload counted (each begins with the bearer check)
    org_a, org_b = await live_kit.organization(), await live_kit.organization()
    community_a, community_b = await live_kit.community(org_a), await live_kit.community(org_b)
    admin = await live_kit.sign_in("organization_admin", org_a)
    reloads: list[int | None] = []
    begin_event = LiveContext.begin_event

    async def counted(self: LiveContext) -> None:
        reloads.append(self.viewer.organization_id)
        await begin_event(self)

    monkeypatch.setattr(LiveContext, "begin_event", counted)
    queue_size = Settings().live_queue_size  # what the app configures the broker with
    async with WsClient.connect(live_kit.url, admin.token) as client:
        op = await subscribed(client, CHANGED)
        reloads.clear()  # (the operation's own start begins with the bearer check too)
        # when B's requests change, more at once than a subscriber's queue holds (announced in one commit)
        async with live_kit.service(_admin(org_b)) as ctx:
            for n in range(queue_size + 1):
                payload = encode(live.HELP_REQUESTS, 10_000_000 + n, org_b, {"community_id": community_b})
                await ctx.session.execute(text("SELECT pg_notify(:c, :p)"), {"c": live.CHANNEL, "p": payload})
        # and then A posts one
        mine = await live_kit.help_request(community_a, title="甲机构")
        # then A's next message is A's request (no RESYNC from B's burst, nothing of B's) ...
        got = (await client.next(op))["data"]["helpRequestChanged"]
        assert (got["change"], (got["request"] or {}).get("id")) == ("CREATED", _gid("HelpRequest", mine))
    # ... and B's events cost A no query: the one reload was A's own request
    assert reloads == [org_a]


async def test_a_request_leaving_what_a_subscriber_follows_comes_as_removed(live_kit: LiveKit) -> None:
    # given A's first and second communities, their heads subscribed, and the administrator subscribed to
    # critical requests only
    org = await live_kit.organization()
    first, second = await live_kit.community(org), await live_kit.community(org)
    admin = await live_kit.sign_in("organization_admin", org)
    head_first = await live_kit.sign_in("community_head", org, community_id=first)
    head_second = await live_kit.sign_in("community_head", org, community_id=second)
    request = await live_kit.help_request(first, title="会移走", urgency="critical")
    gid = _gid("HelpRequest", request)
    async with (
        WsClient.connect(live_kit.url, admin.token) as by_admin,
        WsClient.connect(live_kit.url, head_first.token) as by_first,
        WsClient.connect(live_kit.url, head_second.token) as by_second,
    ):
        critical = await subscribed(by_admin, CHANGED, {"f": {"urgencies": ["CRITICAL"]}})
        in_first = await subscribed(by_first, CHANGED)
        in_second = await subscribed(by_second, CHANGED)
        # when its urgency drops to high
        async with live_kit.service(_admin(org)) as ctx:
            await ctx.session.execute(text("UPDATE help_requests SET urgency = 'high' WHERE id = :i"), {"i": request})
        # then the critical-only subscriber is told it is gone (its id only), the head still sees it
        gone = (await by_admin.next(critical))["data"]["helpRequestChanged"]
        assert (gone["change"], gone["requestId"], gone["request"]) == ("REMOVED", gid, None)
        still = (await by_first.next(in_first))["data"]["helpRequestChanged"]
        assert (still["change"], still["requestId"], still["request"]["id"]) == ("UPDATED", gid, gid)
        # when it moves to the second community
        async with live_kit.service(_admin(org)) as ctx:
            await ctx.session.execute(
                text("UPDATE help_requests SET community_id = :c WHERE id = :i"), {"c": second, "i": request}
            )
        # then the first community's head is told it is gone, the second's sees it arrive
        gone = (await by_first.next(in_first))["data"]["helpRequestChanged"]
        assert (gone["change"], gone["requestId"]) == ("REMOVED", gid)
        arrived = (await by_second.next(in_second))["data"]["helpRequestChanged"]
        assert (arrived["change"], arrived["request"]["id"]) == ("UPDATED", gid)
        # and the critical-only subscriber, who no longer followed it, heard nothing of the move: its next
        # message is the next critical request
        later = await live_kit.help_request(second, title="又一紧急", urgency="critical")
        nxt = (await by_admin.next(critical))["data"]["helpRequestChanged"]
        assert (nxt["change"], nxt["requestId"]) == ("CREATED", _gid("HelpRequest", later))


async def test_event_reloads_wait_for_a_free_slot(live_kit: LiveKit, monkeypatch: pytest.MonkeyPatch) -> None:
    # given a process with one reload slot and two subscribers; each reload noted while its session is open
    org = await live_kit.organization()
    community = await live_kit.community(org)
    admin = await live_kit.sign_in("organization_admin", org)
    slots = asyncio.Semaphore(1)
    monkeypatch.setitem(live_fields._slots, asyncio.get_running_loop(), slots)
    open_reloads: set[int] = set()
    peak, held = 0, False
    begin_event, end_event = LiveContext.begin_event, LiveContext.end_event

    async def begin(self: LiveContext) -> None:
        nonlocal peak, held
        await begin_event(self)
        open_reloads.add(id(self))
        peak = max(peak, len(open_reloads))
        if not held:
            # The first reload holds on until the other subscriber's is queued behind it (or, were there no
            # slot, has begun beside it).
            held = True
            deadline = asyncio.get_running_loop().time() + 10
            while not getattr(slots, "_waiters", None) and peak == 1:
                assert asyncio.get_running_loop().time() < deadline, "the second reload never came"
                await asyncio.sleep(0.01)

    async def end(self: LiveContext) -> None:
        open_reloads.discard(id(self))
        await end_event(self)

    monkeypatch.setattr(LiveContext, "begin_event", begin)
    monkeypatch.setattr(LiveContext, "end_event", end)
    async with WsClient.connect(live_kit.url, admin.token) as one, WsClient.connect(live_kit.url, admin.token) as two:
        first, second = await subscribed(one, CHANGED), await subscribed(two, CHANGED)
        # when a request is posted (both subscribers reload it)
        made = await live_kit.help_request(community, title="排队重载")
        # then both receive it, and the two reloads never had a session open at once
        for client, op in ((one, first), (two, second)):
            got = (await client.next(op))["data"]["helpRequestChanged"]
            assert got["request"]["id"] == _gid("HelpRequest", made)
    assert peak == 1
