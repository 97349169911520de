"""A small world with one account per role, for the permission matrix and the audit tests.

Built once per module in a database of its own; tests must leave it as they found it (mutation rows
act on targets created for them)."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx

from core.database import app_url, create_engine, create_sessionmaker, database_url_for, drop_database, ensure_database
from core.migrate import upgrade
from core.plugins import PluginHost, build_plugin_host
from core.services import (
    assignments,
    auth,
    communities,
    consent,
    help_requests,
    organizations,
    referrals,
    residents,
    volunteers,
)
from core.services import plugins as plugin_service
from core.services.context import ServiceContext, Viewer
from core.settings import Settings
from core.vocab import (
    Availability,
    DistrictKind,
    LiaisonRole,
    OrganizationKind,
    RequestCategory,
    Role,
    Urgency,
    VolunteerMode,
)
from yunshegong.app import create_app

PASSWORD = "correct horse battery"
# The residents of the world (one per organisation), and what the referral of each says (`send_referrals`).
RESIDENT_PHONE = {"a": "13700002222", "b": "13700004444"}
RESIDENT_ADDRESS = {"a": "碑林区粉巷1号", "b": "雁塔区小寨2号"}
REFERRAL_SUMMARY = {"a": "甲：转介乙的心理咨询", "b": "乙：转介甲的心理咨询"}
# Names of records made after the world was built (by test rows, twins): list checks may leave them out.
MARK = "w-"
_twins = itertools.count(1)
ROLES = [
    "anonymous",
    "platform_admin",
    "org_admin_a",
    "org_admin_b",
    "social_worker",
    "counselor",
    "community_head",
    "volunteer",
    "partner_a",
]


@dataclass
class World:
    http: httpx.AsyncClient
    engine: Any
    tokens: dict[str, str | None] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)
    # role name → (account role, scope) of the world's accounts, to sign in a twin of one (see `twin`).
    accounts: dict[str, tuple[Role, dict[str, int]]] = field(default_factory=dict)
    # The app's plugin host: services that consult plugins (referral targets) run with it.
    host: PluginHost | None = None

    async def gql(self, role: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.gql_as(self.tokens.get(role), query, variables)

    async def gql_as(self, token: str | None, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code in (200, 400, 401), response.text
        return response.json()

    def ctx(self, session: Any) -> ServiceContext:
        return ServiceContext(session=session, viewer=BUILDER)

    @contextlib.asynccontextmanager
    async def service(self) -> AsyncIterator[ServiceContext]:
        """A transaction acting as the world builder (a platform administrator), to prepare records."""
        async with create_sessionmaker(self.engine)() as session, session.begin():
            yield self.ctx(session)

    @contextlib.asynccontextmanager
    async def acting_for(self, org: str) -> AsyncIterator[ServiceContext]:
        """A transaction acting as a script of organisation `org` ("a" or "b"), with the app's plugins: for
        records kept per organisation (residents, consents, referrals), which the platform-wide builder
        cannot make."""
        viewer = Viewer(label="world builder", role="system", organization_id=self.ids[f"org_{org}"])
        async with create_sessionmaker(self.engine)() as session, session.begin():
            ctx = ServiceContext(session=session, viewer=viewer)
            if self.host is not None:
                ctx.events = self.host
            yield ctx

    async def twin(self, role: str) -> str | None:
        """A fresh account with the same role and scope as the world's `role` account, signed in for real:
        for rows that would spoil the world's own account (changing its password revokes its tokens)."""
        if role not in self.accounts:
            return self.tokens.get(role)
        account_role, scope = self.accounts[role]
        n = next(_twins)
        username = f"{role}-twin-{n}"
        async with self.service() as ctx:
            if "volunteer_id" in scope:  # one account per volunteer record: the twin gets a record of its own
                twin = await volunteers.register_volunteer(
                    ctx,
                    volunteers.VolunteerInput(
                        name=f"{MARK}{username}",
                        phone=f"1350000{n:04d}",
                        mode=VolunteerMode.OFFLINE,
                        organization_id=scope["organization_id"],
                        availability=Availability.OFF,
                    ),
                )
                scope = scope | {"volunteer_id": twin.id}
            account = await auth.create_account(
                ctx,
                auth.AccountInput(
                    username=username, display_name=username, password=PASSWORD, role=account_role, **scope
                ),
            )
            self.ids[f"account_{username}"] = account.id
        body = await self.gql("anonymous", LOGIN, {"u": username, "p": PASSWORD})
        return body["data"]["login"]["token"]

    async def make_request(self, community: str, **kw: Any) -> int:
        async with create_sessionmaker(self.engine)() as session, session.begin():
            request = await help_requests.submit(self.ctx(session), _request_input(self.ids[community], **kw))
            return request.id


def _request_input(community_id: int, **kw: Any) -> help_requests.HelpRequestInput:
    return help_requests.HelpRequestInput(
        community_id=community_id,
        title=kw.pop("title", "送药"),
        category=RequestCategory.MEDICINE,
        urgency=Urgency.HIGH,
        requester_name="王阿姨",
        requester_phone=kw.pop("phone", "13812345678"),
        requester_address=kw.pop("address", "碑林区粉巷5号楼3单元"),
        health_details=kw.pop("health", "肺结核，服药中"),
        **kw,
    )


BUILDER = Viewer(label="world builder", role="platform_admin")


async def build_world(url: Any) -> World:
    # The app role, as every caller: row-level security applies to what the world's users do.
    engine = create_engine(app_url(url), pool_size=5)
    ids: dict[str, int] = {}
    async with create_sessionmaker(engine)() as session, session.begin():
        ctx = ServiceContext(session=session, viewer=BUILDER)
        org_a = await organizations.create_organization(ctx, name="协会", kind=OrganizationKind.ASSOCIATION)
        org_b = await organizations.create_organization(ctx, name="外区机构", kind=OrganizationKind.AGENCY)
        district = await organizations.create_district(ctx, name="碑林区", kind=DistrictKind.DISTRICT)
        ids |= {"org_a": org_a.id, "org_b": org_b.id, "district": district.id}
        for key, org in (("c1", org_a), ("c2", org_a), ("c3", org_b)):
            c = await communities.create_community(
                ctx,
                communities.CommunityInput(
                    name=f"社区{key}",
                    district_id=district.id,
                    organization_id=org.id,
                    head_name="主任",
                    head_phone="029-88881234",
                ),
            )
            ids[key] = c.id
        people = {}
        for key, org in (("sw", org_a), ("counselor", org_a), ("driver", org_a), ("other", org_a), ("b_vol", org_b)):
            v = await volunteers.register_volunteer(
                ctx,
                volunteers.VolunteerInput(
                    name=f"志愿者{key}",
                    phone=f"1390000{len(people):04d}",
                    mode=VolunteerMode.OFFLINE,
                    organization_id=org.id,
                    max_concurrent_assignments=50,
                ),
            )
            people[key] = v.id
        ids |= {f"v_{k}": v for k, v in people.items()}
        await communities.add_liaison(ctx, ids["c1"], people["sw"], LiaisonRole.SOCIAL_WORKER)
        await communities.add_liaison(ctx, ids["c1"], people["counselor"], LiaisonRole.VOLUNTEER)
        # r1: the driver holds an accepted assignment; r2: only an offer; r3 in c2; r4 in org B's c3.
        for key, community in (("r1", "c1"), ("r2", "c1"), ("r3", "c2"), ("r4", "c3")):
            r = await help_requests.submit(ctx, _request_input(ids[community], title=key))
            ids[key] = r.id
        for key in ("r1", "r2"):
            await help_requests.verify(ctx, ids[key])
            offer = await assignments.offer(ctx, ids[key], people["driver"])
            ids[f"a_{key}"] = offer.id
        await assignments.accept(ctx, ids["a_r1"])
        accounts = [
            ("platform_admin", Role.PLATFORM_ADMIN, {"organization_id": org_a.id}),
            ("org_admin_a", Role.ORGANIZATION_ADMIN, {"organization_id": org_a.id}),
            ("org_admin_b", Role.ORGANIZATION_ADMIN, {"organization_id": org_b.id}),
            ("social_worker", Role.SOCIAL_WORKER, {"organization_id": org_a.id, "volunteer_id": people["sw"]}),
            ("counselor", Role.COUNSELOR, {"organization_id": org_a.id, "volunteer_id": people["counselor"]}),
            ("community_head", Role.COMMUNITY_HEAD, {"organization_id": org_a.id, "community_id": ids["c1"]}),
            ("volunteer", Role.VOLUNTEER, {"organization_id": org_a.id, "volunteer_id": people["driver"]}),
        ]
        for username, role, scope in accounts:
            account = await auth.create_account(
                ctx, auth.AccountInput(username=username, display_name=username, password=PASSWORD, role=role, **scope)
            )
            ids[f"account_{username}"] = account.id
        partner_token, _ = await auth.create_api_token(ctx, org_a.id, "hospital system")
    settings = Settings(login_max_failures=1000)
    host = build_plugin_host(entry_points=False)
    app = create_app(settings, engine=engine, host=host)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    world = World(http=http, engine=engine, ids=ids, accounts={u: (r, s) for u, r, s in accounts}, host=host)
    await _people(world)
    world.tokens["anonymous"] = None
    world.tokens["partner_a"] = partner_token
    for username, _, _ in accounts:
        body = await world.gql("anonymous", LOGIN, {"u": username, "p": PASSWORD})
        world.tokens[username] = body["data"]["login"]["token"]
    return world


async def _people(w: World) -> None:
    """Per organisation: a resident (a, in c1; b, in c3) with phone and address, and the resident's consent
    to tell counseling the summary. No referral yet: sending one needs the receiving organisation to use
    counseling, which the shared world does not enable (`send_referrals` does, for modules that want it)."""
    for org, community in (("a", "c1"), ("b", "c3")):
        async with w.acting_for(org) as ctx:
            resident = await residents.create_resident(
                ctx,
                name=f"居民{org}",
                community_id=w.ids[community],
                phone=RESIDENT_PHONE[org],
                address=RESIDENT_ADDRESS[org],
            )
            # For the other organisation's counseling (send_referrals refers A's resident to B and B's to A).
            agreed = await consent.record_consent(
                ctx,
                resident_id=resident.id,
                scopes=["summary"],
                target="counseling",
                target_organization_id=w.ids["org_b" if org == "a" else "org_a"],
                purpose="心理支持",
            )
        w.ids |= {f"resident_{org}": resident.id, f"consent_{org}": agreed.id}


async def send_referrals(w: World) -> None:
    """Both organisations enable counseling, and each refers its resident to the other's counseling under
    the resident's consent: `referral_a` (A → B), `referral_b` (B → A), both sent, unanswered."""
    assert w.host is not None
    names = frozenset(w.host.plugins)
    async with w.service() as ctx:
        for org in ("org_a", "org_b"):
            await plugin_service.set_enabled(
                ctx, organization_id=w.ids[org], plugin="counseling", enabled=True, installed=names, known=names
            )
    for org, to in (("a", "org_b"), ("b", "org_a")):
        async with w.acting_for(org) as ctx:
            referral = await referrals.send_referral(
                ctx,
                resident_id=w.ids[f"resident_{org}"],
                consent_id=w.ids[f"consent_{org}"],
                summary=REFERRAL_SUMMARY[org],
                target_plugin="counseling",
                target_organization_id=w.ids[to],
            )
        w.ids[f"referral_{org}"] = referral.id


LOGIN = "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { token errors { code } } }"


def in_hours(clock_now: Any, hours: int) -> str:
    return (clock_now + timedelta(hours=hours)).isoformat()


@contextlib.asynccontextmanager
async def world_in_database(server_url: str, name: str) -> AsyncIterator[World]:
    """A freshly migrated database of its own holding the world (modules that read it share it)."""
    await drop_database(server_url, name)
    await ensure_database(server_url, name)
    url = database_url_for(server_url, name)
    engine = create_engine(url, pool_size=1)
    await upgrade(engine, build_plugin_host(entry_points=False).migration_dirs())
    await engine.dispose()
    w = await build_world(url)
    try:
        yield w
    finally:
        await w.http.aclose()
        await w.engine.dispose()
        await drop_database(server_url, name)
