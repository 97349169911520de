from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncEngine

from core import live
from core.database import create_sessionmaker
from core.plugins import build_plugin_host
from core.services import auth
from core.settings import Settings
from schema.context import AppState
from tests.live_support import serve
from yunshegong.app import bearer_authenticator, create_app
from yunshegong.testing import Harness


class LiveKit(Harness):
    url: str


@pytest.fixture
async def live_kit(engine: AsyncEngine, clock: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LiveKit]:
    """The service (built-in plugins, real sign-in) in process: HTTP through the test kit, websockets on a
    local port (`live_kit.url`)."""
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    host = build_plugin_host(entry_points=False)
    settings = Settings(login_max_failures=1000, jobs_interval=0, gc_tuning=False, live_keepalive_seconds=0)
    state = AppState(settings=settings, sessionmaker=create_sessionmaker(engine), clock=clock, host=host)
    state.authenticate = bearer_authenticator(state)
    app = create_app(settings, engine=engine, state=state)
    async with (
        serve(app) as url,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http,
    ):
        kit = LiveKit(host, engine, http)
        kit.url = url
        try:
            yield kit
        finally:
            await live.shutdown()
