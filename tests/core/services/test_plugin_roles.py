"""Plugin roles granted to accounts (register_roles, grantPluginRole), through real sign-in."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncEngine

import core
from core.database import create_sessionmaker
from core.plugins import build_plugin_host
from core.services import auth, organizations, volunteers
from core.services import plugins as plugin_service
from core.services.context import ServiceContext, Viewer
from core.services.plugin_roles import PluginRoleError, plugin_roles
from core.settings import Settings
from core.vocab import OrganizationKind, Role, VolunteerMode
from schema import ids
from yunshegong.app import create_app

SUPERVISION = "tests.fixture_plugins.supervision.plugin"
LOGIN = "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { token } }"
CAN = "{ supervisionCanApprove }"
GRANT = """mutation($a: ID!, $r: String!) { grantPluginRole(input: {accountId: $a, role: $r}) {
  account { username } errors { code field } } }"""
REVOKE = """mutation($a: ID!, $r: String!) { revokePluginRole(input: {accountId: $a, role: $r}) {
  errors { code } } }"""
ROLES = "query($a: ID!) { accountPluginRoles(accountId: $a) }"
ROLE = "supervision.supervisor"


class World:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.tokens: dict[str, str] = {}
        self.accounts: dict[str, str] = {}

    async def gql(self, who: str, query: str, variables: dict[str, Any] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        body = (
            await self.http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
        ).json()
        assert not body.get("errors"), body
        return body["data"]

    async def grant(self, who: str, account: str, role: str = ROLE, document: str = GRANT) -> list[Any]:
        data = await self.gql(who, document, {"a": self.accounts[account], "r": role})
        return next(iter(data.values()))["errors"]


@pytest.fixture
async def world(engine: AsyncEngine) -> AsyncIterator[World]:
    """A (supervision enabled): an administrator and a social worker; B (not enabled): an administrator
    and a social worker."""
    host = build_plugin_host(entry_points=False, extra=[importlib.import_module(SUPERVISION)])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        async with create_sessionmaker(engine)() as session, session.begin():
            ctx = ServiceContext(session=session, viewer=Viewer(label="setup", role="platform_admin"))
            people: dict[str, tuple[Role, int, int | None]] = {}
            for tag in ("a", "b"):
                org = await organizations.create_organization(ctx, name=f"{tag}机构", kind=OrganizationKind.AGENCY)
                if tag == "a":
                    await plugin_service.set_enabled(
                        ctx,
                        organization_id=org.id,
                        plugin="supervision",
                        enabled=True,
                        installed=frozenset(host.plugins),
                        known=frozenset(host.plugins),
                    )
                person = await volunteers.register_volunteer(
                    ctx,
                    volunteers.VolunteerInput(
                        name=f"{tag}社工",
                        phone=f"1390000000{len(people)}",
                        mode=VolunteerMode.OFFLINE,
                        organization_id=org.id,
                    ),
                )
                people[f"admin_{tag}"] = (Role.ORGANIZATION_ADMIN, org.id, None)
                people[f"worker_{tag}"] = (Role.SOCIAL_WORKER, org.id, person.id)
            made = {}
            for name, (role, org_id, volunteer_id) in people.items():
                account = await auth.create_account(
                    ctx,
                    auth.AccountInput(
                        username=name,
                        display_name=name,
                        password="pw-1234567890",
                        role=role,
                        organization_id=org_id,
                        volunteer_id=volunteer_id,
                    ),
                )
                made[name] = ids.encode("Account", account.id)
        app = create_app(Settings(login_max_failures=1000), engine=engine, host=host)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
            w = World(http)
            w.accounts = made
            for name in made:
                body = (
                    await http.post("/graphql", json={"query": LOGIN, "variables": {"u": name, "p": "pw-1234567890"}})
                ).json()
                w.tokens[name] = body["data"]["login"]["token"]
            yield w


async def test_a_granted_role_gives_its_permissions_from_the_next_request_until_revoked(world: World) -> None:
    # given a social worker without the role
    assert await world.gql("worker_a", CAN) == {"supervisionCanApprove": False}
    # when the organisation's administrator grants it (twice: the second changes nothing)
    assert await world.grant("admin_a", "worker_a") == []
    assert await world.grant("admin_a", "worker_a") == []
    # then the same token now holds the permission, and the grant is listed
    assert await world.gql("worker_a", CAN) == {"supervisionCanApprove": True}
    assert await world.gql("admin_a", ROLES, {"a": world.accounts["worker_a"]}) == {"accountPluginRoles": [ROLE]}
    # when it is revoked, then the next request no longer holds it
    assert await world.grant("admin_a", "worker_a", document=REVOKE) == []
    assert await world.gql("worker_a", CAN) == {"supervisionCanApprove": False}


async def test_who_may_grant_what_to_whom(world: World) -> None:
    # another organisation's administrator: A's account is not there at all
    assert await world.grant("admin_b", "worker_a") == [{"code": "NOT_FOUND", "field": ["input", "accountId"]}]
    # a social worker may not grant roles, not even to themselves
    assert await world.grant("worker_a", "worker_a") == [{"code": "FORBIDDEN", "field": None}]
    # a role nobody declares
    assert await world.grant("admin_a", "worker_a", "supervision.boss") == [
        {"code": "INVALID_INPUT", "field": ["input", "role"]}
    ]
    # an organisation that has not enabled the plugin
    assert await world.grant("admin_b", "worker_b") == [{"code": "PLUGIN_DISABLED", "field": ["input", "role"]}]
    # and nothing was granted by any of these
    assert await world.gql("worker_a", CAN) == {"supervisionCanApprove": False}
    assert await world.gql("admin_b", ROLES, {"a": world.accounts["worker_b"]}) == {"accountPluginRoles": []}


def test_a_role_naming_permissions_its_plugin_does_not_declare_stops_startup() -> None:
    class Greedy:
        @core.hookimpl
        def register_plugin(self) -> core.PluginInfo:
            return core.PluginInfo(name="greedy", version="1")

        @core.hookimpl
        def register_roles(self) -> list[core.PluginRole]:
            return [core.PluginRole("greedy.boss", "Everything.", ("accounts.manage",))]

    host = build_plugin_host(entry_points=False, builtins=(), extra=[Greedy()])
    with pytest.raises(PluginRoleError, match=r"'greedy'.*'greedy.boss' names permissions it does not declare"):
        plugin_roles(host)
