"""One request, one pooled connection, one transaction: the bearer token is checked on the request's own
session (issue 13: each signed-in request used to open two sessions, two BEGIN/ROLLBACK pairs)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import create_sessionmaker
from core.plugins import build_plugin_host
from core.services import auth
from core.settings import Settings
from schema.context import AppState
from yunshegong.app import bearer_authenticator, create_app
from yunshegong.testing import Harness

PAGE = """{ helpRequests(first: 10) { edges { node {
  title community { name } assignments { status volunteer { name } }
} } } }"""


@dataclass
class Traffic:
    """What a request did to the pool and the server: connections checked out, transactions begun, and
    the statements sent."""

    checkouts: int = 0
    begins: int = 0
    statements: list[str] = field(default_factory=list)

    def clear(self) -> None:
        self.checkouts, self.begins, self.statements = 0, 0, []


@pytest.fixture
async def ysg(engine: AsyncEngine, clock: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Harness]:
    """The service with real bearer-token sign-in, over the test database."""
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    host = build_plugin_host(entry_points=False)
    settings = Settings(login_max_failures=1000)
    state = AppState(settings=settings, sessionmaker=create_sessionmaker(engine), clock=clock, host=host)
    state.authenticate = bearer_authenticator(state)
    app = create_app(settings, engine=engine, state=state)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        yield Harness(host, engine, http)


@pytest.fixture
def traffic(ysg: Harness) -> Iterator[Traffic]:
    seen = Traffic()
    sync = ysg.engine.sync_engine

    def on_checkout(*_: Any) -> None:
        seen.checkouts += 1

    def on_begin(*_: Any) -> None:
        seen.begins += 1

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.statements.append(statement)

    event.listen(sync.pool, "checkout", on_checkout)
    event.listen(sync, "begin", on_begin)
    event.listen(sync, "before_cursor_execute", on_statement)
    yield seen
    event.remove(sync.pool, "checkout", on_checkout)
    event.remove(sync, "begin", on_begin)
    event.remove(sync, "before_cursor_execute", on_statement)


async def test_a_signed_in_page_is_one_connection_and_one_transaction(ysg: Harness, traffic: Traffic) -> None:
    # given an organisation member with a request and an offer to read
    org = await ysg.organization()
    community = await ysg.community(org)
    await ysg.help_request(community)
    member = await ysg.sign_in("organization_admin", org)
    await member(PAGE)  # warm: the token secret is read once per process
    traffic.clear()
    # when the member reads a nested page
    data = await member(PAGE)
    # then the token check and the page shared one connection and one transaction
    assert len(data["helpRequests"]["edges"]) == 1
    assert (traffic.checkouts, traffic.begins) == (1, 1), traffic
    # and the token was checked before anything was read for the member
    account_read = next(i for i, s in enumerate(traffic.statements) if "FROM accounts" in s)
    page_read = next(i for i, s in enumerate(traffic.statements) if "FROM help_requests" in s)
    assert account_read < page_read


async def test_a_refused_token_returns_its_connection(ysg: Harness, traffic: Traffic) -> None:
    # given a signed-in member whose account is then deactivated by signing out everywhere
    org = await ysg.organization()
    member = await ysg.sign_in("organization_admin", org)
    await member(PAGE)
    pool = ysg.engine.sync_engine.pool
    # when a request comes with a forged token and with the member's token
    forged = await ysg.http.post("/graphql", json={"query": PAGE}, headers={"Authorization": f"Bearer {member.token}x"})
    fine = await ysg.http.post("/graphql", json={"query": PAGE}, headers={"Authorization": f"Bearer {member.token}"})
    # then the forged one is refused, the other answered, and no connection is left checked out
    assert forged.status_code == 401
    assert fine.status_code == 200
    assert pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_the_token_check_does_not_leak_its_privileges_into_the_request(ysg: Harness) -> None:
    # given two organisations, each with a request, and a member of the first
    first, second = await ysg.organization(), await ysg.organization()
    await ysg.help_request(await ysg.community(first), title="ours")
    await ysg.help_request(await ysg.community(second), title="theirs")
    member = await ysg.sign_in("organization_admin", first)
    # when the member reads every request in the same transaction the token was checked in
    data = await member("{ helpRequests(first: 50) { edges { node { title } } } }")
    # then row-level security acts for the member, not for the token check before it
    assert [e["node"]["title"] for e in data["helpRequests"]["edges"]] == ["ours"]
