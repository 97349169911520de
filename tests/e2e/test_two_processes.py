"""Two service processes on one database (`yunshegong serve` twice, as a load balancer would run them): a
subscriber on process A receives what is done through process B, as PostgreSQL announces it (LISTEN/NOTIFY)
-- and only what it may see: another organisation's (dropped by routing), and another community's for a
social worker who serves only one (no routing key says whom a social worker serves: only the reload, as the
subscriber, can keep it out); revoking its credential on B ends its connection on A."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import create_sessionmaker
from core.services import communities, organizations, volunteers
from core.services.context import ServiceContext, Viewer
from core.vocab import DistrictKind, LiaisonRole, OrganizationKind, Role, VolunteerMode
from schema import ids
from tests.live_support import WsClient
from tests.serve_process import CHECKOUT, free_port, start, stop, wait_healthy

PASSWORD = "two processes 2026"
SUBMIT = """mutation($c: ID!, $t: String!) { submitHelpRequest(input: {communityId: $c, title: $t, category: OTHER,
  urgency: HIGH, requesterName: "测试", requesterPhone: "13900000000"}) { helpRequest { id } errors { code } } }"""
LOGIN = "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { token errors { code } } }"
CHANGE_PASSWORD = """mutation($c: String!, $n: String!) {
  changePassword(input: {currentPassword: $c, newPassword: $n}) { errors { code } } }"""
CHANGED = "subscription { helpRequestChanged { change request { id title } } }"


@pytest.fixture
def processes(test_db: Any, db_url: Any) -> Iterator[tuple[int, int]]:
    """Processes A and B: the test's database, no jobs, one secret key, their own ports. B starts once A is
    up (each migrates at startup; the second finds nothing to do)."""
    env = {
        **os.environ,
        "DATABASE_URL": test_db.render_as_string(hide_password=False),
        "YUNSHEGONG_JOBS_INTERVAL": "0",
        "YUNSHEGONG_SECRET_KEY": "two-processes-one-database-secret-key",
        "YUNSHEGONG_LOG_LEVEL": "warning",
    }
    ports = (free_port(), free_port())
    started: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            started.append(start([*CHECKOUT, "serve", "--port", str(port)], env))
            wait_healthy(started[-1], port)
        yield ports
    finally:
        for proc in started:
            stop(proc)


async def _world(engine: AsyncEngine) -> dict[str, int]:
    """Organisations A and B; A with two communities, B with one; an account for each caller."""
    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    made: dict[str, int] = {}
    async with create_sessionmaker(engine)() as session, session.begin():
        ctx = ServiceContext(session=session, viewer=Viewer(label="setup", role="platform_admin"))
        district = await organizations.create_district(ctx, name="双进程区", kind=DistrictKind.DISTRICT)
        for key in ("a", "b"):
            org = await organizations.create_organization(ctx, name=f"双进程{key}", kind=OrganizationKind.AGENCY)
            made[f"org_{key}"] = org.id
        for key, org in (("a1", "org_a"), ("a2", "org_a"), ("b1", "org_b")):
            community = await communities.create_community(
                ctx,
                communities.CommunityInput(
                    name=f"社区{key}", district_id=district.id, organization_id=made[org], head_name="主任"
                ),
            )
            made[key] = community.id
        # A social worker of A who serves A's second community only (a liaison seat there)
        worker = await volunteers.register_volunteer(
            ctx,
            volunteers.VolunteerInput(
                name="社工", phone="13900000001", mode=VolunteerMode.OFFLINE, organization_id=made["org_a"]
            ),
        )
        await communities.add_liaison(ctx, made["a2"], worker.id, LiaisonRole.SOCIAL_WORKER)
        callers = {
            "admin_a": (Role.ORGANIZATION_ADMIN, "org_a", None, None),
            "worker_a2": (Role.SOCIAL_WORKER, "org_a", None, worker.id),
            "admin_b": (Role.ORGANIZATION_ADMIN, "org_b", None, None),
        }
        from core.models import Account

        for name, (role, org, community_key, volunteer_id) in callers.items():
            session.add(
                Account(
                    username=f"{name}-{os.getpid()}",
                    display_name=name,
                    password_hash=hasher.hash(PASSWORD),
                    role=role.value,
                    organization_id=made[org],
                    community_id=made[community_key] if community_key else None,
                    volunteer_id=volunteer_id,
                )
            )
    return made


async def _login(http: httpx.AsyncClient, name: str) -> str:
    body = (
        await http.post("/graphql", json={"query": LOGIN, "variables": {"u": f"{name}-{os.getpid()}", "p": PASSWORD}})
    ).json()
    assert body["data"]["login"]["errors"] == [], body
    return str(body["data"]["login"]["token"])


async def _submit(http: httpx.AsyncClient, token: str, community: int, title: str) -> str:
    body = (
        await http.post(
            "/graphql",
            json={"query": SUBMIT, "variables": {"c": ids.encode("Community", community), "t": title}},
            headers={"Authorization": f"Bearer {token}"},
        )
    ).json()
    assert body["data"]["submitHelpRequest"]["errors"] == [], body
    return str(body["data"]["submitHelpRequest"]["helpRequest"]["id"])


async def _title(client: WsClient, op: str) -> str:
    return str((await client.next(op))["data"]["helpRequestChanged"]["request"]["title"])


async def _subscribed(client: WsClient) -> str:
    """Subscribe; the first message, RESYNC, says process A listens from then on."""
    op = await client.subscribe(CHANGED)
    assert (await client.next(op))["data"]["helpRequestChanged"]["change"] == "RESYNC"
    return op


async def test_a_subscriber_on_one_process_sees_a_change_made_through_the_other(
    processes: tuple[int, int], engine: AsyncEngine
) -> None:
    port_a, port_b = processes
    world = await _world(engine)
    url_a = f"ws://127.0.0.1:{port_a}/graphql"
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_b}", timeout=30) as via_b:
        admin_a, worker_a2, admin_b = [await _login(via_b, n) for n in ("admin_a", "worker_a2", "admin_b")]
        # given three subscribers on process A: A's administrator, a social worker serving only A's second
        # community, and B's administrator -- each listening (its first message, RESYNC, arrived)
        async with (
            WsClient.connect(url_a, admin_a) as sees,
            WsClient.connect(url_a, worker_a2) as other_community,
            WsClient.connect(url_a, admin_b) as other_org,
        ):
            ops = [await _subscribed(c) for c in (sees, other_community, other_org)]
            # when A's administrator submits a request in A's first community through process B
            await _submit(via_b, admin_a, world["a1"], "跨进程")
            # then the subscriber on process A receives it (the positive control)
            assert await _title(sees, ops[0]) == "跨进程"
            # and neither B's administrator nor the social worker of A's other community did (the worker's
            # routing lets every A request through: the reload, as the worker, kept it out): their next
            # message is the next change they may see, made after it
            await _submit(via_b, admin_b, world["b1"], "B 之后")
            await _submit(via_b, admin_a, world["a2"], "A2 之后")
            assert await _title(other_org, ops[2]) == "B 之后"
            assert await _title(other_community, ops[1]) == "A2 之后"
            assert await _title(sees, ops[0]) == "A2 之后"
            # when A's administrator changes their password through process B (older tokens are revoked)
            body = (
                await via_b.post(
                    "/graphql",
                    json={"query": CHANGE_PASSWORD, "variables": {"c": PASSWORD, "n": "a brand new password 2026"}},
                    headers={"Authorization": f"Bearer {admin_a}"},
                )
            ).json()
            assert body["data"]["changePassword"]["errors"] == []
            # then process A closes that subscriber's connection (4403), and only that one
            assert await sees.closed() == 4403
            await _submit(via_b, admin_b, world["b1"], "B 仍在")
            assert await _title(other_org, ops[2]) == "B 仍在"
