"""Test fixtures: one PostgreSQL per run (embedded unless DATABASE_URL), one database per run.

The schema is migrated once; after each test every table is truncated, so tests are isolated even when
they commit from many connections. (A fresh CREATE DATABASE … TEMPLATE per test costs ~0.35 s here;
the truncation costs a few milliseconds.)
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core import migrate, tenancy
from core.database import (
    EmbeddedPostgres,
    app_url,
    create_engine,
    create_sessionmaker,
    database_url_for,
    drop_database,
    ensure_database,
)
from core.plugins import build_plugin_host
from core.services import auth, organizations
from core.services.context import ServiceContext, Viewer
from core.settings import Settings
from core.vocab import OrganizationKind
from schema.context import AppState
from tests.factories import Factory
from yunshegong.app import bearer_authenticator, create_app
from yunshegong.testing import Harness

RUN_TAG = f"{os.getpid()}"

pytest_plugins = ["tests.plugin_support"]


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external
        return
    with tempfile.TemporaryDirectory(prefix="ysg-test-") as tmp:
        server = EmbeddedPostgres.start(Path(tmp) / "pgdata", delete_on_stop=True)
        # A throwaway server: durability buys nothing and costs every commit a disk flush.
        server.server.psql(
            "ALTER SYSTEM SET fsync = off; ALTER SYSTEM SET synchronous_commit = off;"
            "ALTER SYSTEM SET full_page_writes = off; SELECT pg_reload_conf();"
        )
        try:
            yield server.url()
        finally:
            server.stop()


@pytest.fixture(scope="session")
async def test_db(server_url: str) -> AsyncIterator[Any]:
    name = f"ysg_test_{RUN_TAG}"
    await drop_database(server_url, name)
    await ensure_database(server_url, name)
    url = database_url_for(server_url, name)
    engine = create_engine(url, pool_size=1)
    # Core and the built-in plugins' branches (installed third-party packages are not the suite's business).
    await migrate.upgrade(engine, build_plugin_host(entry_points=False).migration_dirs())
    await engine.dispose()
    yield url
    await drop_database(server_url, name)


async def empty_all_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("SET LOCAL lock_timeout = '10s'"))
        # Replica mode skips the append-only triggers (which rightly refuse deletes) and foreign-key
        # checks, so tables empty in any order. DELETE beats TRUNCATE on tables this small.
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        tables = (
            (
                await conn.execute(
                    text(
                        "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' "
                        "AND tablename <> 'alembic_version'"
                    )
                )
            )
            .scalars()
            .all()
        )
        for table in tables:
            await conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture(scope="session")
async def owner_engine(test_db: Any) -> AsyncIterator[AsyncEngine]:
    """The migrating owner (a superuser on the embedded server): only for emptying tables between tests
    and for inspecting the catalog. Everything a test exercises runs as the app role."""
    engine = create_engine(test_db, pool_size=1)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def shared_engine(test_db: Any) -> AsyncIterator[AsyncEngine]:
    """The app role's engine: row-level security applies to everything the tests do through it."""
    engine = create_engine(app_url(test_db), pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture
async def db_url(test_db: Any, shared_engine: AsyncEngine, owner_engine: AsyncEngine) -> AsyncIterator[Any]:
    """The app role's URL to the test database (for tests that open engines of their own), emptied after."""
    yield app_url(test_db)
    await empty_all_tables(owner_engine)


@pytest.fixture
def engine(shared_engine: AsyncEngine, db_url: Any) -> AsyncEngine:
    return shared_engine


class Clock:
    """An injectable clock that tests move by hand instead of sleeping."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
async def session(engine: AsyncEngine, admin: Viewer) -> AsyncIterator[AsyncSession]:
    """A session acting for the tests' platform administrator (row-level security applies)."""
    async with create_sessionmaker(engine)() as session:
        tenancy.bind(session, admin)
        yield session


@pytest.fixture
async def home_org(engine: AsyncEngine) -> int:
    """The organisation the tests' platform administrator belongs to: records created without naming an
    organisation belong to it (as they would to a real administrator's)."""
    async with create_sessionmaker(engine)() as session, session.begin():
        ctx = ServiceContext(session=session, viewer=Viewer(label="setup", role="platform_admin"))
        org = await organizations.create_organization(ctx, name="测试协会", kind=OrganizationKind.ASSOCIATION)
        return org.id


@pytest.fixture
def admin(home_org: int) -> Viewer:
    return Viewer(label="test coordinator", role="platform_admin", organization_id=home_org)


@pytest.fixture
def ctx(session: AsyncSession, clock: Clock, admin: Viewer) -> ServiceContext:
    """A service context on its own session; tests commit with `await ctx.session.commit()`."""
    return ServiceContext(session=session, viewer=admin, clock=clock)


@pytest.fixture
def make(ctx: ServiceContext) -> Factory:
    return Factory(ctx)


@pytest.fixture
def settings() -> Settings:
    return Settings(database_url=None, max_page_size=200)


@pytest.fixture
def app_state(engine: AsyncEngine, settings: Settings, clock: Clock, admin: Viewer) -> AppState:
    """GraphQL tests of core behaviour act as a platform administrator; tests/schema/test_access.py
    covers every other role through real sign-in."""

    over_http = dataclasses.replace(admin, label="test admin")

    async def as_admin(request: Any, session: Any) -> Viewer:
        return over_http

    return AppState(settings=settings, sessionmaker=create_sessionmaker(engine), clock=clock, authenticate=as_admin)


class GraphQLClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def raw(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.post("/graphql", json={"query": query, "variables": variables or {}})
        assert response.status_code in (200, 400), response.text
        return response.json()

    async def __call__(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of a query that must not produce top-level errors."""
        body = await self.raw(query, variables)
        assert "errors" not in body or not body["errors"], body
        return body["data"]


@pytest.fixture
async def gql(engine: AsyncEngine, app_state: AppState, settings: Settings) -> AsyncIterator[GraphQLClient]:
    app = create_app(settings, engine=engine, state=app_state)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield GraphQLClient(http)


class StatementCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)

    @property
    def count(self) -> int:
        return len(self.statements)


@pytest.fixture
def statements(engine: AsyncEngine) -> Iterator[StatementCounter]:
    counter = StatementCounter()
    event.listen(engine.sync_engine, "before_cursor_execute", counter)
    yield counter
    event.remove(engine.sync_engine, "before_cursor_execute", counter)


@pytest.fixture
async def kit(engine: AsyncEngine, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Harness]:
    """The service with the built-in plugins and real bearer-token sign-in, over the test database, through
    the test kit (yunshegong.testing.Harness). Cheap argon2 parameters: still real argon2id, same code."""
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    host = build_plugin_host(entry_points=False)
    settings = Settings(login_max_failures=1000)
    state = AppState(settings=settings, sessionmaker=create_sessionmaker(engine), clock=clock, host=host)
    state.authenticate = bearer_authenticator(state)
    app = create_app(settings, engine=engine, state=state)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        yield Harness(host, engine, http)
