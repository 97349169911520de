"""Fixtures for plugin tests: the third-party `yunshegong-hello` package really installed (into a
throwaway target directory put on sys.path), its own database migrated with core + hello branches, and
GraphQL clients whose caller belongs to a chosen organisation."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core import migrate
from core.database import app_url, create_engine, create_sessionmaker, database_url_for, drop_database, ensure_database
from core.plugins import PluginHost, build_plugin_host
from core.services.context import Viewer
from core.settings import Settings
from schema.context import AppState
from yunshegong.app import create_app

HELLO_SOURCE = Path(__file__).parent / "fixtures" / "yunshegong-hello"
TEST_ORG_HEADER = "x-test-organization"


@pytest.fixture(scope="session")
def hello_installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """pip-install the hello package (with its entry point) into a target dir on sys.path."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(HELLO_SOURCE),
        ],
        check=True,
    )
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    yield target
    sys.path.remove(str(target))
    for name in [m for m in sys.modules if m.startswith("yunshegong_hello")]:
        del sys.modules[name]


@pytest.fixture(scope="session")
def hello_plugin(hello_installed: Path) -> Any:
    return importlib.import_module("yunshegong_hello.plugin")


@pytest.fixture(scope="session")
def hello_host(hello_plugin: Any) -> PluginHost:
    return build_plugin_host(entry_points=False, builtins=(), extra=[hello_plugin])


@pytest.fixture(scope="session")
async def hello_db(server_url: str, hello_host: PluginHost) -> AsyncIterator[Any]:
    name = "ysg_test_hello"
    await drop_database(server_url, name)
    await ensure_database(server_url, name)
    url = database_url_for(server_url, name)
    engine = create_engine(url, pool_size=1)
    await migrate.upgrade(engine, hello_host.migration_dirs())
    await engine.dispose()
    yield url
    await drop_database(server_url, name)


@pytest.fixture
async def hello_engine(hello_db: Any) -> AsyncIterator[AsyncEngine]:
    """The app role's engine to the hello database (emptied afterwards through the owner's)."""
    from tests.conftest import empty_all_tables

    engine = create_engine(app_url(hello_db), pool_size=5)
    yield engine
    await engine.dispose()
    owner = create_engine(hello_db, pool_size=1)
    await empty_all_tables(owner)
    await owner.dispose()


async def viewer_from_test_header(request: Any, session: Any) -> Viewer:
    """Test-only: the caller is an administrator of the organisation named in a header (or a platform
    administrator of no organisation without it), so plugin tests can switch organisations cheaply.
    Real sign-in is covered by tests/schema/test_access.py."""
    org = request.headers.get(TEST_ORG_HEADER)
    if org:
        return Viewer(label="plugin tester", organization_id=int(org), role="organization_admin")
    return Viewer(label="plugin tester", role="platform_admin")


class Client:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def raw(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        org: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        headers = {**(headers or {}), **({TEST_ORG_HEADER: str(org)} if org is not None else {})}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def __call__(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        org: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        body = await self.raw(query, variables, org, headers)
        assert not body.get("errors"), body
        return body["data"]


@pytest.fixture
async def hello_client(hello_engine: AsyncEngine, hello_host: PluginHost, clock: Any) -> AsyncIterator[Client]:
    settings = Settings()
    state = AppState(
        settings=settings,
        sessionmaker=create_sessionmaker(hello_engine),
        clock=clock,
        host=hello_host,
        authenticate=viewer_from_test_header,
    )
    app = create_app(settings, engine=hello_engine, state=state)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        yield Client(http)
