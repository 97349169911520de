"""A statement that runs too long is cancelled by PostgreSQL (YUNSHEGONG_DB_STATEMENT_TIMEOUT_MS), not waited for."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from core.database import create_engine
from core.settings import Settings
from yunshegong.app import create_app


def _render(url: Any) -> str:
    return url if isinstance(url, str) else url.render_as_string(hide_password=False)


LOGIN = 'mutation { login(input: {username: "nobody", password: "wrong-password-1"}) { __typename } }'


async def test_a_statement_past_the_timeout_is_cancelled_and_the_connection_serves_the_next(db_url: Any) -> None:
    # given an engine whose statements may run 100 ms
    engine = create_engine(db_url, pool_size=1, statement_timeout_ms=100)
    try:
        # when a statement runs longer
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError) as raised:
                await conn.execute(text("SELECT pg_sleep(5)"))
        # then PostgreSQL cancelled it (query_canceled), and the pooled connection answers the next one
        assert getattr(raised.value.orig, "sqlstate", None) == "57014"
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await engine.dispose()


async def test_an_engine_without_a_timeout_sets_none(db_url: Any) -> None:
    engine = create_engine(db_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SHOW statement_timeout"))).scalar() == "0"
    finally:
        await engine.dispose()


async def test_a_request_stuck_behind_a_lock_gets_the_masked_error_once_the_timeout_passes(
    test_db: Any, db_url: Any
) -> None:
    # given the service with a 300 ms statement timeout, and a maintenance transaction holding the accounts
    # table locked (nothing can read it)
    app = create_app(Settings(database_url=_render(test_db), db_statement_timeout_ms=300, jobs_interval=0))
    owner = create_engine(test_db, pool_size=1)
    try:
        async with owner.connect() as blocker:
            await blocker.execute(text("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE"))
            transport = httpx.ASGITransport(app=app)
            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(transport=transport, base_url="http://test") as http,
            ):
                # when a sign-in has to read the locked table (bounded here only so a regression fails
                # instead of hanging the suite)
                response = await asyncio.wait_for(http.post("/graphql", json={"query": LOGIN}), timeout=20)
            await blocker.rollback()
    finally:
        await owner.dispose()
    # then it is cancelled and answered with the masked error: no data, no database detail
    body = response.json()
    assert body.get("data") is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INTERNAL_ERROR"]
    assert "lock" not in response.text.lower()
    assert "57014" not in response.text
