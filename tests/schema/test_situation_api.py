"""The `situation` query over the real endpoint, with real sign-in and the built-in plugins (the `kit`
fixture): what the board reads, who may read it, and supplies' items distributed "today" in the caller's
zone."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from core.services.context import SYSTEM, ServiceContext
from core.vocab import Availability, RequestStatus, Urgency, VolunteerMode
from plugins.supplies import services as supplies
from schema import ids
from yunshegong.testing import Client, Harness

SITUATION = """
query($org: ID) {
  situation(organizationId: $org) {
    asOf openRequests overdueRequests
    openRequestsByUrgency { urgency count }
    openRequestsByDistrict { district { name } count critical }
    openRequestsByCommunity { community { name } count critical latitude longitude }
    volunteersAvailableByMode { mode count }
    figures { plugin key value }
  }
}"""


def _code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors") or []
    return errors[0]["extensions"]["code"] if errors else None


async def _world(kit: Harness) -> dict[str, int]:
    """Org A: 甲 (with a location) two open requests, one critical, and a fulfilled one; 乙 (none) one open;
    volunteers available online and offline, one busy. Org B: an open request and an available volunteer."""
    a, b = await kit.organization("甲机构"), await kit.organization("乙机构")
    jia = await kit.community(a, "甲", latitude=34.26, longitude=108.95)
    yi = await kit.community(a, "乙")
    theirs = await kit.community(b, "丙")
    await kit.help_request(jia, urgency=Urgency.CRITICAL)
    await kit.help_request(jia, urgency=Urgency.LOW)
    done = await kit.help_request(jia, urgency=Urgency.CRITICAL)
    async with kit.service() as ctx:
        from core.services import help_requests

        await help_requests.reject(ctx, done, "duplicate")
        assert (await ctx.session.get(help_requests.HelpRequest, done)).status == RequestStatus.REJECTED.value
    await kit.help_request(yi, urgency=Urgency.NORMAL)
    await kit.help_request(theirs, urgency=Urgency.CRITICAL)
    await kit.volunteer(a, mode=VolunteerMode.ONLINE)
    await kit.volunteer(a, mode=VolunteerMode.OFFLINE, availability=Availability.BUSY)
    await kit.volunteer(b, mode=VolunteerMode.RESERVE)
    return {"a": a, "b": b, "jia": jia, "yi": yi}


async def test_an_administrator_reads_their_organisations_situation(kit: Harness) -> None:
    w = await _world(kit)
    # given A's administrator (signed in for real)
    admin = await kit.sign_in("organization_admin", w["a"])
    # when they read the situation
    s = (await admin(SITUATION))["situation"]
    # then A's open requests only: by urgency, district, community (with the map's coordinates)
    assert (s["openRequests"], s["overdueRequests"]) == (3, 0)
    assert s["openRequestsByUrgency"] == [
        {"urgency": "CRITICAL", "count": 1},
        {"urgency": "HIGH", "count": 0},
        {"urgency": "NORMAL", "count": 1},
        {"urgency": "LOW", "count": 1},
    ]
    assert s["openRequestsByDistrict"] == [{"district": {"name": "测试区"}, "count": 3, "critical": 1}]
    assert s["openRequestsByCommunity"] == [
        {"community": {"name": "甲"}, "count": 2, "critical": 1, "latitude": 34.26, "longitude": 108.95},
        {"community": {"name": "乙"}, "count": 1, "critical": 0, "latitude": None, "longitude": None},
    ]
    # available volunteers of A (not B's reserve one, not the busy one)
    assert s["volunteersAvailableByMode"] == [
        {"mode": "ONLINE", "count": 1},
        {"mode": "OFFLINE", "count": 0},
        {"mode": "RESERVE", "count": 0},
    ]
    assert s["figures"] == []  # A enabled no plugin
    # and B's administrator reads B's (the control)
    theirs = (await (await kit.sign_in("organization_admin", w["b"]))(SITUATION))["situation"]
    assert (theirs["openRequests"], [c["community"]["name"] for c in theirs["openRequestsByCommunity"]]) == (
        1,
        ["丙"],
    )


async def test_who_may_read_it(kit: Harness) -> None:
    w = await _world(kit)
    other = {"org": ids.encode("Organization", w["b"])}
    # a volunteer and a counselor do not coordinate; anonymous callers sign in first
    assert _code(await (await kit.sign_in("volunteer", w["a"])).raw(SITUATION)) == "FORBIDDEN"
    assert _code(await (await kit.sign_in("counselor", w["a"])).raw(SITUATION)) == "FORBIDDEN"
    assert _code(await kit.anonymous.raw(SITUATION)) == "UNAUTHENTICATED"
    # an administrator naming another organisation is refused; naming their own is fine
    admin = await kit.sign_in("organization_admin", w["a"])
    assert _code(await admin.raw(SITUATION, other)) == "FORBIDDEN"
    own = await admin(SITUATION, {"org": ids.encode("Organization", w["a"])})
    assert own["situation"]["openRequests"] == 3
    # a community head reads their community's
    head = await kit.sign_in("community_head", w["a"], community_id=w["yi"])
    mine = (await head(SITUATION))["situation"]
    assert [c["community"]["name"] for c in mine["openRequestsByCommunity"]] == ["乙"]
    # a platform administrator names any organisation
    platform = await kit.sign_in("platform_admin", w["a"])
    assert (await platform(SITUATION, other))["situation"]["openRequests"] == 1


# 09:00 on 10 March in Shanghai is 01:00 UTC: 20:00 UTC on the 9th is already "today" there, not in UTC.
NOW = datetime(2024, 3, 10, 1, 0, tzinfo=UTC)


async def _distribute_at(kit: Harness, org: int, community: int, moments: list[tuple[datetime, int]]) -> None:
    staff = replace(SYSTEM, label="supplies staff", organization_id=org)
    async with kit.service(staff) as ctx:
        item = await supplies.create_item(ctx, "口罩", "medical_protection", "盒")
        warehouse = await supplies.create_warehouse(ctx, "一号仓")
        await supplies.receive(ctx, warehouse_id=warehouse.id, item_id=item.id, quantity=1000)
        for at, quantity in moments:
            timed = ServiceContext(ctx.session, staff, clock=lambda at=at: at)
            await supplies.distribute(
                timed, warehouse_id=warehouse.id, item_id=item.id, quantity=quantity, community_id=community
            )


def _figure(s: dict[str, Any], key: str) -> str | None:
    return next((f["value"] for f in s["situation"]["figures"] if f["key"] == key), None)


async def test_items_distributed_today_are_counted_in_the_callers_zone(kit: Harness, clock: Any) -> None:
    clock.now = NOW
    # given an organisation keeping supplies, which distributed 7 boxes at 20:00 UTC yesterday (04:00 today in
    # Shanghai), 5 at 15:00 UTC the day before that evening (23:00 yesterday in Shanghai), 3 an hour ago; and
    # another organisation that distributed 100 today
    org, other = await kit.organization(plugins=["supplies"]), await kit.organization(plugins=["supplies"])
    community = await kit.community(org)
    await _distribute_at(
        kit,
        org,
        community,
        [(NOW - timedelta(hours=5), 7), (NOW - timedelta(hours=10), 5), (NOW - timedelta(hours=1), 3)],
    )
    await _distribute_at(kit, other, await kit.community(other), [(NOW - timedelta(hours=1), 100)])
    admin = await kit.sign_in("organization_admin", org)
    # when its administrator reads the board in Shanghai, then in UTC
    shanghai = Client(admin.http, admin.token, headers={"X-Timezone": "Asia/Shanghai"})
    utc = Client(admin.http, admin.token, headers={"X-Timezone": "UTC"})
    # then "today" is the caller's: 7 + 3 in Shanghai, 3 in UTC; never the other organisation's
    assert _figure(await shanghai(SITUATION), "items_distributed_today") == "10"
    assert _figure(await utc(SITUATION), "items_distributed_today") == "3"
    # and the plugin's other figures are still there (all time)
    assert _figure(await shanghai(SITUATION), "items_distributed") == "15"
    # a community head (who does not keep stock) gets the board without supplies' figures
    head = await kit.sign_in("community_head", org, community_id=community)
    assert (await head(SITUATION))["situation"]["figures"] == []
