"""The websocket path holds what the HTTP path holds: the credential is checked for every operation (and the
connection ends when a sign-in token expires), the per-account connection limit holds under concurrent
connection_inits, a result goes out only once its audit is written and its database connection is back in
the pool, messages are bounded like request bodies, operations count in the metrics, the caller's zone
applies, and plugins' per-request state is made per operation for the signed-in viewer."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
import strawberry
import websockets
from argon2 import PasswordHasher
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry import Info

import core
from core import live
from core.database import create_sessionmaker
from core.errors import DomainError
from core.models import ApiToken, AuditEntry
from core.plugins import build_plugin_host
from core.services import auth, plugin_roles
from core.services.context import Viewer
from core.settings import Settings
from schema import api as gql
from schema import ids
from schema.context import AppState
from schema.subscriptions.context import LiveConnection
from tests.live_support import PROTOCOL, Closed, WsClient, serve
from yunshegong.app import TextFrameWebSocketAdapter, bearer_authenticator, create_app
from yunshegong.testing import Harness

ROLE = "wsprobe.approver"
APPROVE = "wsprobe.approve"
CAN = "query { wsprobeCanApprove }"
DO_APPROVE = "mutation { wsprobeApprove(input: {}) { approved errors { code } } }"
STATE = "query { wsprobeState }"
CREATE_TOKEN = """mutation($o: ID!) { createApiToken(input: {organizationId: $o, name: "late"}) {
  token errors { code } } }"""
REQUESTS = "query { helpRequests(first: 5) { nodes { id requesterPhone createdAt } } }"
CHANGED = "subscription { helpRequestChanged { change request { id requesterPhone } } }"

_serial = itertools.count(1)
approvals: list[int | None] = []


# -- this module is also the plugin (build_plugin_host(extra=[<this module>])): a role, a query and a mutation that
# need its permission, and per-request state.


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(name="wsprobe", version="1.0")


@core.hookimpl
def register_permissions() -> list[core.Permission]:
    return [core.Permission(APPROVE, "Approve.", ())]


@core.hookimpl
def register_roles() -> list[core.PluginRole]:
    return [core.PluginRole(ROLE, "Approves.", (APPROVE,))]


@core.hookimpl
def extend_context(context: Any) -> dict[str, Any]:
    return {"account": context.viewer.account_id, "serial": next(_serial)}


@core.hookimpl
def register_graphql() -> core.GraphQLContribution:
    return core.GraphQLContribution(query=WsProbeQuery, mutation=WsProbeMutation)


@strawberry.type
class WsProbeQuery:
    @strawberry.field
    async def wsprobe_can_approve(self, info: Info) -> bool:
        return core.can(info.context.viewer, APPROVE)

    @strawberry.field
    async def wsprobe_state(self, info: Info) -> str:
        state = info.context.plugin_state.get("wsprobe") or {}
        return f"{state.get('account')}:{state.get('serial')}"


@strawberry.input
class WsprobeApproveInput:
    note: str = ""


WsprobeApprovePayload = gql.payload("WsprobeApprovePayload", "approved", bool)


@strawberry.type
class WsProbeMutation:
    @strawberry.mutation
    async def wsprobe_approve(self, info: Info, input: WsprobeApproveInput) -> WsprobeApprovePayload:  # type: ignore[valid-type]
        async def work(ctx: Any) -> bool:
            if not core.can(ctx.viewer, APPROVE):
                raise DomainError("FORBIDDEN", "Not allowed.")
            approvals.append(ctx.viewer.account_id)
            return True

        return await gql.mutate(info, WsprobeApprovePayload, "approved", bool, work)


class Kit(Harness):
    url: str
    clock: Any


@pytest.fixture
async def kit(engine: AsyncEngine, clock: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Kit]:
    """The service in process (built-in plugins and WsProbe, real sign-in), websockets on a local port."""
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    host = build_plugin_host(entry_points=False, extra=[sys.modules[__name__]])
    settings = Settings(login_max_failures=1000, jobs_interval=0, gc_tuning=False, live_keepalive_seconds=0)
    state = AppState(settings=settings, sessionmaker=create_sessionmaker(engine), clock=clock, host=host)
    state.authenticate = bearer_authenticator(state)
    app = create_app(settings, engine=engine, state=state)
    approvals.clear()
    async with (
        serve(app) as url,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http,
    ):
        made = Kit(host, engine, http)
        made.url, made.clock = url, clock
        try:
            yield made
        finally:
            await live.shutdown()


async def _answer(client: WsClient, op: str) -> dict[str, Any]:
    """The payload of operation `op`'s single result (then its `complete`)."""
    payload = await client.next(op)
    done = await client.receive()
    assert (done.get("id"), done["type"]) == (op, "complete"), done
    return payload


async def _run(client: WsClient, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    return await _answer(client, await client.subscribe(query, variables))


def _expiry(token: str) -> datetime:
    return datetime.fromtimestamp(jwt.decode(token, options={"verify_signature": False})["exp"], UTC)


async def _api_tokens(kit: Kit, org: int) -> int:
    async with kit.service(Viewer(label="t", role="organization_admin", organization_id=org)) as ctx:
        return int((await ctx.session.execute(select(func.count()).select_from(ApiToken))).scalar_one())


# -- item 1: the credential is checked for every operation ------------------------------------------------------


async def test_an_expired_token_runs_no_query_and_no_mutation_over_its_websocket(kit: Kit) -> None:
    # given an administrator with two connections, and a query that works on them
    org = await kit.organization()
    await kit.help_request(await kit.community(org))
    admin = await kit.sign_in("organization_admin", org)
    async with WsClient.connect(kit.url, admin.token) as reader, WsClient.connect(kit.url, admin.token) as writer:
        assert len((await _run(reader, REQUESTS))["data"]["helpRequests"]["nodes"]) == 1
        tokens_before = await _api_tokens(kit, org)
        # when the token expires (HTTP refuses it from now on)
        kit.clock.now = _expiry(admin.token) + timedelta(seconds=1)
        refused = await kit.http.post(
            "/graphql", json={"query": REQUESTS}, headers={"Authorization": f"Bearer {admin.token}"}
        )
        assert refused.status_code == 401
        # then a query on one connection closes it with 4403, without data
        await reader.subscribe(REQUESTS)
        assert await reader.closed() == 4403
        # and a mutation on the other closes it as well, and makes nothing
        await writer.subscribe(CREATE_TOKEN, {"o": ids.encode("Organization", org)})
        assert await writer.closed() == 4403
    assert await _api_tokens(kit, org) == tokens_before


async def test_a_withdrawn_plugin_role_is_gone_for_the_next_query_and_mutation(kit: Kit) -> None:
    # given a social worker holding the plugin's role, connected
    org = await kit.organization(plugins=["wsprobe"])
    worker = await kit.sign_in("social_worker", org)
    manager = Viewer(label="t", role="organization_admin", organization_id=org)
    account_id = await _account_id(kit, worker.token)
    async with kit.service(manager) as ctx:
        await plugin_roles.grant(ctx, account_id, ROLE)
    async with WsClient.connect(kit.url, worker.token) as client:
        assert (await _run(client, CAN))["data"] == {"wsprobeCanApprove": True}
        approved = (await _run(client, DO_APPROVE))["data"]["wsprobeApprove"]
        assert (approved["approved"], approved["errors"]) == (True, [])
        # when the role is withdrawn (nothing announces it to the connection)
        async with kit.service(manager) as ctx:
            await plugin_roles.revoke(ctx, account_id, ROLE)
        # then the next query no longer holds the permission, and the mutation is refused
        assert (await _run(client, CAN))["data"] == {"wsprobeCanApprove": False}
        refused = (await _run(client, DO_APPROVE))["data"]["wsprobeApprove"]
    assert (refused["approved"], refused["errors"]) == (None, [{"code": "FORBIDDEN"}])
    assert approvals == [account_id]


async def _account_id(kit: Kit, token: str) -> int:
    connection = LiveConnection(app=_state(kit), authorization=f"Bearer {token}")
    return (await connection.check()).account_id  # type: ignore[return-value]


def _state(kit: Kit) -> AppState:
    state = AppState(settings=Settings(), sessionmaker=create_sessionmaker(kit.engine), clock=kit.clock, host=kit.host)
    state.authenticate = bearer_authenticator(state)
    return state


async def test_a_connection_closes_when_its_sign_in_token_expires(kit: Kit) -> None:
    # given a token a moment from expiry
    org = await kit.organization()
    admin = await kit.sign_in("organization_admin", org)
    kit.clock.now = _expiry(admin.token) - timedelta(milliseconds=200)
    async with WsClient.connect(kit.url, admin.token) as client:
        # when its expiry passes, with no operation running on the connection
        kit.clock.now = _expiry(admin.token) + timedelta(seconds=1)
        # then the server closes it with 4403
        assert await client.closed() == 4403


# -- item 11: the per-account limit under concurrent connection_inits --------------------------------------------


async def test_concurrent_connection_inits_never_exceed_the_per_account_limit(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an account, and its connections' bearer checks all finishing together (a barrier)
    org = await kit.organization()
    admin = await kit.sign_in("organization_admin", org)
    limit = Settings().live_max_connections_per_account
    count = limit + 3
    checked = 0
    together = asyncio.Event()
    check = LiveConnection.check

    async def barrier(self: LiveConnection) -> Viewer:
        nonlocal checked
        viewer = await check(self)
        checked += 1
        if checked == count:
            together.set()
        await asyncio.wait_for(together.wait(), 15)
        return viewer

    monkeypatch.setattr(LiveConnection, "check", barrier)
    outcomes: list[str | int | None] = []

    async def connect(stack: contextlib.AsyncExitStack) -> None:
        client = await stack.enter_async_context(WsClient.connect(kit.url, admin.token, ack=False))
        try:
            outcomes.append((await client.receive())["type"])
        except Closed as closed:
            outcomes.append(closed.code)

    # when more than the limit connect at once
    async with contextlib.AsyncExitStack() as stack:
        await asyncio.gather(*(connect(stack) for _ in range(count)))
        # then exactly the limit is acknowledged, the others closed with 4429
        assert sorted(outcomes, key=str) == sorted(["connection_ack"] * limit + [4429] * 3, key=str)


# -- item 4: nothing held while a result is sent ------------------------------------------------------------------


async def test_a_result_is_sent_once_its_audit_is_written_and_its_connection_is_back(
    kit: Kit, owner_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an administrator's request (its phone is a sensitive read), and what holds when each `next` is sent
    org = await kit.organization()
    community = await kit.community(org)
    first = await kit.help_request(community)
    admin = await kit.sign_in("organization_admin", org)
    pool = kit.engine.sync_engine.pool
    seen: list[tuple[int, list[int]]] = []
    send_json = TextFrameWebSocketAdapter.send_json

    async def observed(self: TextFrameWebSocketAdapter, message: Any) -> None:
        if message.get("type") == "next":
            held = pool.checkedout()  # type: ignore[attr-defined]
            async with owner_engine.connect() as conn:
                audited = await conn.execute(
                    select(AuditEntry.record_id).where(
                        AuditEntry.action == "read", AuditEntry.record_type == "HelpRequest"
                    )
                )
                seen.append((held, sorted(r for (r,) in audited)))
        await send_json(self, message)

    monkeypatch.setattr(TextFrameWebSocketAdapter, "send_json", observed)
    async with WsClient.connect(kit.url, admin.token) as client:
        # when a query reads it
        assert len((await _run(client, REQUESTS))["data"]["helpRequests"]["nodes"]) == 1
        # and a subscription delivers another request (after its first message, RESYNC)
        op = await client.subscribe(CHANGED)
        assert (await client.next(op))["data"]["helpRequestChanged"]["change"] == "RESYNC"
        second = await kit.help_request(community, title="第二")
        assert (await client.next(op))["data"]["helpRequestChanged"]["request"]["id"] == ids.encode(
            "HelpRequest", second
        )
    # then when each result went out, no pooled connection was held and what it revealed was in the audit trail
    assert seen == [(0, [first]), (0, [first]), (0, [first, second])]


# -- item 12: limits, metrics, zone and plugins' context as on HTTP -------------------------------------------------


async def test_a_message_longer_than_the_body_limit_closes_the_connection(kit: Kit) -> None:
    # given a connection
    org = await kit.organization()
    admin = await kit.sign_in("organization_admin", org)
    async with WsClient.connect(kit.url, admin.token) as client:
        # when a message longer than YUNSHEGONG_MAX_BODY_BYTES arrives
        padding = "#" * (Settings().max_body_bytes + 1)
        await client.ws.send(
            json.dumps({"id": "1", "type": "subscribe", "payload": {"query": "{ __typename }" + padding}})
        )
        # then the connection closes with 1009 (message too big)
        assert await client.closed() == 1009


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_queries_and_mutations_over_the_websocket_count_in_the_operation_metrics(kit: Kit) -> None:
    # given a connection, and the counts so far
    org = await kit.organization(plugins=["wsprobe"])
    worker = await kit.sign_in("social_worker", org)
    before = _sample("yunshegong_graphql_operations_total", {"operation": "wsprobeCanApprove"})
    errors_before = _sample("yunshegong_graphql_errors_total", {"operation": "wsprobeApprove", "code": "FORBIDDEN"})
    async with WsClient.connect(kit.url, worker.token) as client:
        # when it runs a query twice and a mutation that is refused
        await _run(client, CAN)
        await _run(client, CAN)
        await _run(client, DO_APPROVE)
    # then they are counted under their root fields, with the refusal's code
    assert _sample("yunshegong_graphql_operations_total", {"operation": "wsprobeCanApprove"}) == before + 2
    assert (
        _sample("yunshegong_graphql_errors_total", {"operation": "wsprobeApprove", "code": "FORBIDDEN"})
        == errors_before + 1
    )


async def test_the_callers_time_zone_applies_over_the_websocket(kit: Kit) -> None:
    # given a request, and the same query over HTTP with X-Timezone
    org = await kit.organization()
    await kit.help_request(await kit.community(org))
    admin = await kit.sign_in("organization_admin", org)
    zoned = httpx.Headers({"Authorization": f"Bearer {admin.token}", "X-Timezone": "America/New_York"})
    over_http = (await kit.http.post("/graphql", json={"query": REQUESTS}, headers=zoned)).json()["data"]
    # when it runs over a websocket whose connection_init names that zone
    async with websockets.connect(kit.url, subprotocols=[PROTOCOL]) as ws:  # type: ignore[list-item]
        client = WsClient(ws)
        init = {"authorization": f"Bearer {admin.token}", "timezone": "America/New_York"}
        await ws.send(json.dumps({"type": "connection_init", "payload": init}))
        assert (await client.receive())["type"] == "connection_ack"
        over_ws = (await _run(client, REQUESTS))["data"]
    # then the times read the same (in New York's offset, not the service's default zone)
    assert over_ws == over_http
    assert over_ws["helpRequests"]["nodes"][0]["createdAt"][-6:] in ("-05:00", "-04:00")


async def test_plugins_request_state_is_made_per_operation_for_the_signed_in_viewer(kit: Kit) -> None:
    # given a signed-in caller
    org = await kit.organization(plugins=["wsprobe"])
    worker = await kit.sign_in("social_worker", org)
    account_id = await _account_id(kit, worker.token)
    async with WsClient.connect(kit.url, worker.token) as client:
        # when two operations read the plugin's per-request state
        one = (await _run(client, STATE))["data"]["wsprobeState"]
        two = (await _run(client, STATE))["data"]["wsprobeState"]
    # then each got state made for it, for the signed-in account (not once per connection, for nobody)
    (who_one, serial_one), (who_two, serial_two) = one.split(":"), two.split(":")
    assert (who_one, who_two) == (str(account_id), str(account_id))
    assert serial_one != serial_two
