"""graphql-transport-ws: authentication in connection_init, a context per operation, what ends a connection."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from core.services import auth
from core.services.context import Viewer
from tests.live_support import Closed, WsClient
from tests.schema.subscriptions.conftest import LiveKit
from yunshegong.testing import PASSWORD

CHANGED = "subscription { helpRequestChanged { change request { id title } } }"
CHANGE_PASSWORD = """mutation($c: String!, $n: String!) {
  changePassword(input: {currentPassword: $c, newPassword: $n}) { errors { code } } }"""


async def subscribed(client: WsClient, query: str, variables: dict[str, Any] | None = None) -> str:
    """Subscribe and wait for the first message, RESYNC: the subscription listens from then on."""
    op = await client.subscribe(query, variables)
    first = (await client.next(op))["data"]
    assert [change["change"] for change in first.values()] == ["RESYNC"], first
    return op


async def test_connection_init_without_a_valid_token_is_refused(live_kit: LiveKit) -> None:
    # given no credential, and a forged one
    for token in (None, "not-a-token"):
        # when connecting
        async with WsClient.connect(live_kit.url, token, ack=False) as client:
            # then the server closes with 4403 (no connection_ack)
            with pytest.raises(Closed) as closed:
                await client.receive()
            assert closed.value.code == 4403


async def test_the_upgrade_requests_authorization_header_is_accepted(live_kit: LiveKit) -> None:
    # given an organisation administrator
    org = await live_kit.organization()
    community = await live_kit.community(org)
    admin = await live_kit.sign_in("organization_admin", org)
    # when connecting with the header only, and subscribing
    async with WsClient.connect(live_kit.url, admin.token, header=True) as client:
        op = await subscribed(client, CHANGED)
        await live_kit.help_request(community, title="头部认证")
        # then the subscription works
        payload = await client.next(op)
    assert payload["data"]["helpRequestChanged"]["request"]["title"] == "头部认证"


async def test_a_password_change_ends_the_connection(live_kit: LiveKit) -> None:
    # given a subscriber
    org = await live_kit.organization()
    admin = await live_kit.sign_in("organization_admin", org)
    async with WsClient.connect(live_kit.url, admin.token) as client:
        await subscribed(client, CHANGED)
        # when the account's password changes (every older token stops working)
        body = await admin(CHANGE_PASSWORD, {"c": PASSWORD, "n": "another horse battery 42"})
        assert body["changePassword"]["errors"] == []
        # then the connection is closed with 4403, without any event
        assert await client.closed() == 4403


async def test_revoking_an_api_token_ends_its_connection_and_only_that_one(live_kit: LiveKit) -> None:
    # given a partner system connected with an API token, and an administrator connected beside it
    org = await live_kit.organization()
    community = await live_kit.community(org)
    admin = await live_kit.sign_in("organization_admin", org)
    manager = Viewer(label="t", role="organization_admin", organization_id=org)
    async with live_kit.service(manager) as ctx:
        plain, token = await auth.create_api_token(ctx, org, "合作方")
    async with WsClient.connect(live_kit.url, plain) as partner, WsClient.connect(live_kit.url, admin.token) as other:
        await subscribed(partner, CHANGED)
        op = await subscribed(other, CHANGED)
        # when the token is revoked
        async with live_kit.service(manager) as ctx:
            await auth.revoke_api_token(ctx, token.id)
        # then its connection closes with 4403, and the administrator's goes on
        assert await partner.closed() == 4403
        await live_kit.help_request(community, title="仍然送达")
        assert (await other.next(op))["data"]["helpRequestChanged"]["request"]["title"] == "仍然送达"


async def test_connections_per_account_are_bounded(live_kit: LiveKit) -> None:
    # given an account holding as many connections as allowed (10 by default)
    org = await live_kit.organization()
    admin = await live_kit.sign_in("organization_admin", org)
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(10):
            await stack.enter_async_context(WsClient.connect(live_kit.url, admin.token))
        # when it opens one more, then that one is refused with 4429
        async with WsClient.connect(live_kit.url, admin.token, ack=False) as extra:
            with pytest.raises(Closed) as closed:
                await extra.receive()
            assert closed.value.code == 4429
    # and once they are closed, it may connect again
    async with WsClient.connect(live_kit.url, admin.token):
        pass
