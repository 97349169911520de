"""Administrators see and act on delivery through GraphQL: their organisation's deliveries (parked first, with
the reason; phones masked), retryDelivery, the webhook endpoint -- and nobody else sees or does any of it.
Every caller signs in for real (the `login` mutation, a bearer token), as the service's users do."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import create_sessionmaker
from core.delivery import DeliveryConfig, Worker
from core.services import outbox
from core.services.context import Viewer
from schema import ids
from tests.conftest import StatementCounter
from tests.core.delivery.support import Recording
from yunshegong.testing import Client, Harness

LIST = """query($org: ID) { deliveries(organizationId: $org) { totalCount nodes {
  id status channel kind attempts lastError recipient } } }"""
RETRY = "mutation($id: ID!) { retryDelivery(input: {id: $id}) { delivery { status attempts } errors { code } } }"
CONFIGURE = """mutation($url: String!) { configureWebhook(input: {url: $url}) {
  webhookEndpoint { url enabled } generatedSecret errors { code field } } }"""


@pytest.fixture
async def world(kit: Harness, engine: AsyncEngine, clock) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    # given organisations A and B, each with a message to a volunteer, A's parked
    a, b = await kit.organization(), await kit.organization()
    for org, phone in ((a, "13912345678"), (b, "13987654321")):
        volunteer = await kit.volunteer(org, phone=phone)
        async with kit.service(Viewer(label="setup", role="organization_admin", organization_id=org)) as ctx:
            await outbox.notify(ctx, "offer", outbox.Recipient.volunteer(volunteer), {"x": 1})
    channel = Recording(fail=["permanent"])
    worker = Worker(create_sessionmaker(engine), [channel], config=DeliveryConfig(), clock=clock)
    await worker.run_organization(a)
    # and a caller of each kind, signed in through the login mutation
    clients: dict[str, Client] = {
        "admin_a": await kit.sign_in("organization_admin", a),
        "worker_a": await kit.sign_in("social_worker", a),
        "admin_b": await kit.sign_in("organization_admin", b),
        "platform": await kit.sign_in("platform_admin"),
        "anonymous": kit.anonymous,
    }

    async def gql(who: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return await clients[who].raw(query, variables)

    return {"gql": gql, "a": a, "b": b, "worker": worker, "channel": channel}


def _codes(body: dict[str, Any], field: str) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors") or []] or [
        e["code"] for e in (body["data"][field] or {}).get("errors", [])
    ]


async def test_an_organisation_administrator_sees_their_parked_delivery_with_the_reason_and_a_masked_phone(
    world: dict[str, Any],
) -> None:
    gql = world["gql"]
    # when A's administrator lists deliveries
    body = await gql("admin_a", LIST)
    # then they see A's one delivery, parked, with the reason and attempts, the phone masked
    (node,) = body["data"]["deliveries"]["nodes"]
    assert {k: node[k] for k in ("status", "channel", "kind", "attempts", "lastError")} == {
        "status": "PARKED",
        "channel": "rec",
        "kind": "offer",
        "attempts": 1,
        "lastError": "gateway refused the number",
    }
    assert "139****5678" in node["recipient"]
    assert "13912345678" not in json.dumps(body)
    # and B's administrator sees B's only (not routed yet: none), and may not name A
    assert (await gql("admin_b", LIST))["data"]["deliveries"]["totalCount"] == 0
    named = await gql("admin_b", LIST, {"org": ids.encode("Organization", world["a"])})
    assert [e["extensions"]["code"] for e in named["errors"]] == ["FORBIDDEN"]
    # and a platform administrator may name A; a social worker of A and an anonymous caller see nothing
    platform = await gql("platform", LIST, {"org": ids.encode("Organization", world["a"])})
    assert platform["data"]["deliveries"]["totalCount"] == 1
    for who, code in (("worker_a", "FORBIDDEN"), ("anonymous", "UNAUTHENTICATED")):
        refused = await gql(who, LIST)
        assert [e["extensions"]["code"] for e in refused["errors"]] == [code]


async def test_retry_delivery_sends_a_parked_delivery_again(world: dict[str, Any], clock) -> None:  # type: ignore[no-untyped-def]
    gql, channel = world["gql"], world["channel"]
    (node,) = (await gql("admin_a", LIST))["data"]["deliveries"]["nodes"]
    # when others try to retry it: B's administrator finds nothing, A's social worker may not
    assert _codes(await gql("admin_b", RETRY, {"id": node["id"]}), "retryDelivery") == ["NOT_FOUND"]
    assert _codes(await gql("worker_a", RETRY, {"id": node["id"]}), "retryDelivery") == ["FORBIDDEN"]
    # when A's administrator retries it
    body = await gql("admin_a", RETRY, {"id": node["id"]})
    # then it is queued with its attempts counted afresh, and the next round sends it, once
    assert body["data"]["retryDelivery"] == {"delivery": {"status": "QUEUED", "attempts": 0}, "errors": []}
    await world["worker"].run_organization(world["a"])
    assert [m.kind for m in channel.sent] == ["offer"]
    (after,) = (await gql("admin_a", LIST))["data"]["deliveries"]["nodes"]
    assert (after["status"], after["attempts"], after["lastError"]) == ("SENT", 1, "")
    # and a delivery that is not parked cannot be retried
    assert _codes(await gql("admin_a", RETRY, {"id": node["id"]}), "retryDelivery") == ["INVALID_TRANSITION"]


async def test_the_webhook_endpoint_is_configured_by_administrators_and_its_secret_shown_once(
    world: dict[str, Any],
) -> None:
    gql = world["gql"]
    # a URL with credentials in it is refused
    bad = await gql("admin_a", CONFIGURE, {"url": "https://user:pw@hooks.example.org/x"})
    assert bad["data"]["configureWebhook"]["errors"] == [{"code": "INVALID_INPUT", "field": ["input", "url"]}]
    # a social worker may not configure it
    assert _codes(await gql("worker_a", CONFIGURE, {"url": "https://hooks.example.org/x"}), "configureWebhook") == [
        "FORBIDDEN"
    ]
    # the administrator does, and reads the generated secret this once
    done = (await gql("admin_a", CONFIGURE, {"url": "https://hooks.example.org/x"}))["data"]["configureWebhook"]
    assert done["webhookEndpoint"] == {"url": "https://hooks.example.org/x", "enabled": True}
    assert done["generatedSecret"].startswith("whsec_")
    # afterwards the endpoint shows no secret anywhere; B's administrator sees no endpoint of theirs
    shown = await gql("admin_a", "{ webhookEndpoint { url enabled configuredBy } }")
    assert shown["data"]["webhookEndpoint"]["url"] == "https://hooks.example.org/x"
    assert done["generatedSecret"] not in json.dumps(shown)
    assert (await gql("admin_b", "{ webhookEndpoint { url } }"))["data"]["webhookEndpoint"] is None
    # a test message is queued for the webhook only
    tested = await gql(
        "admin_a", "mutation { sendTestWebhook(input: {}) { delivery { channel status kind } errors { code } } }"
    )
    assert tested["data"]["sendTestWebhook"] == {
        "delivery": {"channel": "webhook", "status": "QUEUED", "kind": "webhook_test"},
        "errors": [],
    }
    # and removing it
    removed = await gql("admin_a", "mutation { removeWebhook(input: {}) { removed errors { code } } }")
    assert removed["data"]["removeWebhook"] == {"removed": True, "errors": []}
    assert (await gql("admin_a", "{ webhookEndpoint { url } }"))["data"]["webhookEndpoint"] is None


async def test_retry_delivery_reads_the_delivery_once_before_locking_it(
    world: dict[str, Any], statements: StatementCounter
) -> None:
    gql = world["gql"]
    (node,) = (await gql("admin_a", LIST))["data"]["deliveries"]["nodes"]
    statements.statements.clear()
    body = await gql("admin_a", RETRY, {"id": node["id"]})
    assert body["data"]["retryDelivery"]["errors"] == []
    # one read to find it and whose it is, one to lock it
    reads = [s for s in statements.statements if "FROM deliveries" in s]
    assert len(reads) == 2, reads
