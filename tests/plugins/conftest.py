"""Fixtures shared by the built-in plugins' tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import create_sessionmaker
from core.plugins import build_plugin_host
from core.services import auth
from core.settings import Settings
from schema.context import AppState
from yunshegong.app import bearer_authenticator, create_app
from yunshegong.testing import Harness

# Tokens outlive any clock a test moves ahead (days, not years): expiry is not what these tests are about.
TOKEN_TTL_MINUTES = 10 * 365 * 24 * 60
# The caller's description (api(..., role=, org=, volunteer=, community=)) → the account's fields.
SCOPE = {"volunteer": "volunteer_id", "community": "community_id"}


@pytest.fixture
async def api(
    engine: AsyncEngine, clock: Any, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> AsyncIterator[Any]:
    """A GraphQL client with the built-in plugins: `await api(query, variables, role=, org=, volunteer=)`
    returns the response body. The caller is a real account of that role, organisation and scope, made
    once per test through the test kit and signed in through the `login` mutation; its bearer token is
    sent (no role: anonymous). A community head without `community=` gets a new community of `org`.
    Signing in is arrangement, not the request under test: its statements are left out of `statements`."""
    # Cheap argon2 parameters while tests sign in accounts (still real argon2id, same code), as the kit does.
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    host = build_plugin_host(entry_points=False)
    settings = Settings(token_ttl_minutes=TOKEN_TTL_MINUTES, login_max_failures=1000)
    state = AppState(settings=settings, sessionmaker=create_sessionmaker(engine), clock=clock, host=host)
    state.authenticate = bearer_authenticator(state)
    app = create_app(state.settings, engine=engine, state=state)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        kit = Harness(host, engine, http)
        tokens: dict[tuple[tuple[str, Any], ...], str] = {}
        # tests/conftest.py's statement counter, when the test counts statements
        counter = request.getfixturevalue("statements") if "statements" in request.fixturenames else None

        async def token_for(role: str, org: int | None = None, **who: Any) -> str:
            key = (("role", role), ("org", org), *sorted(who.items()))
            if key not in tokens:
                counted = counter.count if counter is not None else 0
                scope = {SCOPE[k]: int(v) for k, v in who.items() if v is not None}
                if role == "community_head" and "community_id" not in scope:
                    assert org is not None, "a community head belongs to an organisation's community"
                    scope["community_id"] = await kit.community(int(org))
                client = await kit.sign_in(role, None if org is None else int(org), own_record=False, **scope)
                assert client.token
                tokens[key] = client.token
                if counter is not None:
                    del counter.statements[counted:]
            return tokens[key]

        async def call(query: str, variables: dict[str, Any] | None = None, **who: Any) -> dict[str, Any]:
            headers = {}
            if who.get("role"):
                headers["Authorization"] = f"Bearer {await token_for(**who)}"
            return (
                await http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
            ).json()

        yield call
