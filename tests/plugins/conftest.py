"""Fixtures shared by the built-in plugins' tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import create_sessionmaker
from core.plugins import build_plugin_host
from core.services.context import Viewer
from core.settings import Settings
from schema.context import AppState
from yunshegong.app import create_app


@pytest.fixture
async def api(engine: AsyncEngine, clock: Any) -> AsyncIterator[Any]:
    """A GraphQL client with the built-in plugins; the caller is given by headers (role, org, volunteer)
    and holds the plugin permissions of that role."""
    host = build_plugin_host(entry_points=False)
    state = AppState(settings=Settings(), sessionmaker=create_sessionmaker(engine), clock=clock, host=host)

    async def authenticate(request: Any) -> Viewer:
        role = request.headers.get("x-role")
        if not role:
            return Viewer()
        return Viewer(
            label=role,
            role=role,
            organization_id=int(request.headers["x-org"]),
            volunteer_id=int(request.headers.get("x-volunteer", 0)) or None,
            extra_permissions=state.plugin_permissions.get(role, frozenset()),
        )

    state.authenticate = authenticate
    app = create_app(state.settings, engine=engine, state=state)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:

        async def call(query: str, variables: dict[str, Any] | None = None, **who: Any) -> dict[str, Any]:
            headers = {f"x-{k}": str(v) for k, v in who.items()}
            return (
                await http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
            ).json()

        yield call
