"""A plugin's subscription (supplies: distributions), through the plugin API for live updates: announced by
its own row trigger, reloaded as the subscriber, gated by the plugin being enabled -- and ended when it is
switched off."""

from __future__ import annotations

import dataclasses
import itertools

from core.services.context import SYSTEM
from plugins.supplies import services
from schema import ids
from tests.live_support import WsClient
from tests.schema.subscriptions.conftest import LiveKit
from tests.schema.subscriptions.test_fields import subscribed

_serial = itertools.count(1)
DISTRIBUTIONS = "subscription { suppliesDistributionChanged { change distribution { id status } } }"


async def _distribute(kit: LiveKit, organization: int, community: int) -> int:
    async with kit.service(dataclasses.replace(SYSTEM, organization_id=organization)) as ctx:
        n = next(_serial)
        item = await services.create_item(ctx, f"口罩{n}", "medical_protection", "box")
        warehouse = await services.create_warehouse(ctx, f"仓库{n}")
        await services.receive(ctx, warehouse_id=warehouse.id, item_id=item.id, quantity=10)
        made = await services.distribute(
            ctx, warehouse_id=warehouse.id, item_id=item.id, quantity=2, community_id=community
        )
        return made.id


async def test_distributions_reach_their_organisations_staff_until_the_plugin_is_switched_off(
    live_kit: LiveKit,
) -> None:
    # given supplies staff of organisations A and B subscribed, and a counselor of A (no supplies permission)
    org_a = await live_kit.organization(plugins=["supplies"])
    org_b = await live_kit.organization(plugins=["supplies"])
    community_a, community_b = await live_kit.community(org_a), await live_kit.community(org_b)
    staff_a = await live_kit.sign_in("organization_admin", org_a)
    staff_b = await live_kit.sign_in("organization_admin", org_b)
    counselor = await live_kit.sign_in("counselor", org_a)
    async with (
        WsClient.connect(live_kit.url, staff_a.token) as a,
        WsClient.connect(live_kit.url, staff_b.token) as b,
        WsClient.connect(live_kit.url, counselor.token) as refused,
    ):
        a_op, b_op = await subscribed(a, DISTRIBUTIONS), await subscribed(b, DISTRIBUTIONS)
        refused_op = await refused.subscribe(DISTRIBUTIONS)
        # then the counselor's subscription is refused outright (no RESYNC: it never listens)
        message = await refused.receive()
        assert (message["id"], message["type"]) == (refused_op, "next")
        assert [e["extensions"]["code"] for e in message["payload"]["errors"]] == ["FORBIDDEN"]
        # when A distributes goods, then B does
        in_a = await _distribute(live_kit, org_a, community_a)
        in_b = await _distribute(live_kit, org_b, community_b)
        # then each organisation's staff receive their own (B's first message is B's)
        got_a = (await a.next(a_op))["data"]["suppliesDistributionChanged"]
        assert (got_a["change"], got_a["distribution"]["id"]) == ("CREATED", ids.encode("SuppliesDistribution", in_a))
        got_b = (await b.next(b_op))["data"]["suppliesDistributionChanged"]
        assert got_b["distribution"]["id"] == ids.encode("SuppliesDistribution", in_b)
        # when A switches the plugin off
        await live_kit.enable("supplies", org_a, enabled=False)
        # then A's subscription ends with PLUGIN_DISABLED, and B's goes on
        ended = await a.receive()
        assert [e["extensions"]["code"] for e in ended["payload"]["errors"]] == ["PLUGIN_DISABLED"]
        assert (await a.receive())["type"] == "complete"
        await _distribute(live_kit, org_b, community_b)
        assert (await b.next(b_op))["data"]["suppliesDistributionChanged"]["change"] == "CREATED"
