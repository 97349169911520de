"""One request, one pooled connection, one transaction: the bearer token is checked on the request's own
session (issue 13: each signed-in request used to open two sessions, two BEGIN/ROLLBACK pairs), and the
fixed cost around a signed-in request's own statements is one BEGIN, one statement for the token check and
the caller's settings, and one ROLLBACK."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from asyncpg.protocol import Protocol
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

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
def traffic(kit: Harness) -> Iterator[Traffic]:
    seen = Traffic()
    sync = kit.engine.sync_engine

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


async def test_a_signed_in_page_is_one_connection_and_one_transaction(kit: Harness, traffic: Traffic) -> None:
    # given an organisation member with a request and an offer to read
    org = await kit.organization()
    community = await kit.community(org)
    await kit.help_request(community)
    member = await kit.sign_in("organization_admin", org)
    await member(PAGE)  # warm: the token secret is read once per process
    traffic.clear()
    # when the member reads a nested page
    data = await member(PAGE)
    # then the token check and the page shared one connection and one transaction
    assert len(data["helpRequests"]["edges"]) == 1
    assert (traffic.checkouts, traffic.begins) == (1, 1), traffic
    # and the token was checked before anything was read for the member
    account_read = next(i for i, s in enumerate(traffic.statements) if "app_bearer_account" in s)
    page_read = next(i for i, s in enumerate(traffic.statements) if "FROM help_requests" in s)
    assert account_read < page_read


async def test_a_refused_token_returns_its_connection(kit: Harness, traffic: Traffic) -> None:
    # given a signed-in member whose account is then deactivated by signing out everywhere
    org = await kit.organization()
    member = await kit.sign_in("organization_admin", org)
    await member(PAGE)
    pool = kit.engine.sync_engine.pool
    # when a request comes with a forged token and with the member's token
    forged = await kit.http.post("/graphql", json={"query": PAGE}, headers={"Authorization": f"Bearer {member.token}x"})
    fine = await kit.http.post("/graphql", json={"query": PAGE}, headers={"Authorization": f"Bearer {member.token}"})
    # then the forged one is refused, the other answered, and no connection is left checked out
    assert forged.status_code == 401
    assert fine.status_code == 200
    assert pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_the_token_check_does_not_leak_its_privileges_into_the_request(kit: Harness) -> None:
    # given two organisations, each with a request, and a member of the first
    first, second = await kit.organization(), await kit.organization()
    await kit.help_request(await kit.community(first), title="ours")
    await kit.help_request(await kit.community(second), title="theirs")
    member = await kit.sign_in("organization_admin", first)
    # when the member reads every request in the same transaction the token was checked in
    data = await member("{ helpRequests(first: 50) { edges { node { title } } } }")
    # then row-level security acts for the member, not for the token check before it
    assert [e["node"]["title"] for e in data["helpRequests"]["edges"]] == ["ours"]


async def test_an_error_that_nulls_the_whole_answer_returns_the_connection(kit: Harness) -> None:
    # given a member, requests to read, and a pool of five connections
    org = await kit.organization()
    community = await kit.community(org)
    for _ in range(5):
        await kit.help_request(community)
    member = await kit.sign_in("organization_admin", org)
    pool = kit.engine.sync_engine.pool
    # when, twenty times, one root field fails (a non-null field: the whole answer becomes null) while its
    # siblings are still reading
    doomed = """{ bad: helpRequests(first: -1) { edges { node { title } } }
      a: helpRequests(first: 50) { edges { node { title community { name } assignments { status } } } }
      b: volunteers(first: 50) { edges { node { name district { name } } } }
      c: communities(first: 50) { edges { node { name liaisons { role } } } }
      d: communities(first: 50) { edges { node {
        helpRequests(first: 5) { edges { node { title } } } bad: helpRequests(first: -1) { totalCount } } } } }"""
    for _ in range(20):
        body = await member.raw(doomed)
        assert body["data"] is None
        assert "PAGE_SIZE_EXCEEDED" in [e["extensions"]["code"] for e in body["errors"]]
    # then no connection is left checked out, and the next request is answered
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    data = await member("{ helpRequests(first: 10) { edges { node { title } } } }")
    assert len(data["helpRequests"]["edges"]) == 5


@dataclass
class Wire:
    """What went to PostgreSQL, one entry per message batch the driver wrote (a round trip: asyncpg writes a
    simple query, or a bind and execute, or a parse, as one batch and waits for the answer). Simple
    queries (BEGIN, ROLLBACK, the pool's ping) by their text; the rest by their message type."""

    sent: list[str] = field(default_factory=list)

    def clear(self) -> None:
        self.sent = []


def _label(data: Any) -> str:
    message = bytes(data)
    if message[:1] == b"Q":
        return message[5:].rstrip(b"\x00").decode()
    return f"extended:{message[:1].decode(errors='replace')}"


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Wire:
    """Every write of every asyncpg connection in this process, from the socket transport down (so the
    pool's pre-ping, BEGIN and ROLLBACK count too, which no SQLAlchemy statement event sees)."""
    from asyncio import selector_events

    seen = Wire()
    transport = selector_events._SelectorSocketTransport
    write = transport.write

    def counting_write(self: Any, data: Any) -> None:
        if isinstance(self.get_protocol(), Protocol):
            seen.sent.append(_label(data))
        write(self, data)

    monkeypatch.setattr(transport, "write", counting_write)
    return seen


SMALL_PAGE = "{ helpRequests(first: 1) { edges { node { id } } } }"


async def test_a_signed_in_request_costs_one_begin_one_check_and_one_rollback_around_its_own_statements(
    kit: Harness, traffic: Traffic, wire: Wire
) -> None:
    # given a member, and every pooled connection warm (the token secret read once per process, the
    # statements prepared on each connection the pool hands out in turn)
    org = await kit.organization()
    await kit.help_request(await kit.community(org))
    member = await kit.sign_in("organization_admin", org)
    for _ in range(12):
        await member(SMALL_PAGE)
    traffic.clear()
    wire.clear()
    # when the member reads a page
    data = await member(SMALL_PAGE)
    # then the server saw the request's statements (the token check, then the page's), one BEGIN before them
    # and one ROLLBACK after them, and nothing else: the pool's pre-ping is that BEGIN, and the token check
    # sets the caller's settings itself (no set_config of its own, for the check or for the caller)
    assert len(data["helpRequests"]["edges"]) == 1
    simple = [m for m in wire.sent if not m.startswith("extended:")]
    assert simple == ["BEGIN;", "ROLLBACK;"], wire.sent
    assert not [s for s in traffic.statements if s.lstrip().startswith("SELECT set_config")], traffic.statements
    assert len(wire.sent) == len(traffic.statements) + 2, (wire.sent, traffic.statements)
    assert "app_bearer_account" in traffic.statements[0]


async def test_a_pooled_connection_whose_server_process_ended_is_replaced_before_the_request_uses_it(
    kit: Harness, owner_engine: AsyncEngine
) -> None:
    # given a member whose requests have left connections in the pool
    org = await kit.organization()
    await kit.help_request(await kit.community(org))
    member = await kit.sign_in("organization_admin", org)
    await member(SMALL_PAGE)
    # when the server ends every one of the service's connections (as a restart or a failover does)
    async with owner_engine.connect() as conn:
        ended = await conn.scalar(
            text(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND usename = 'yunshegong_app' AND pid <> pg_backend_pid()"
            )
        )
    assert ended >= 1
    # then the next requests are answered: the pool's ping noticed the dead connections and replaced them
    for _ in range(3):
        data = await member(SMALL_PAGE)
        assert len(data["helpRequests"]["edges"]) == 1
