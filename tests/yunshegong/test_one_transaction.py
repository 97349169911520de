"""One request, one pooled connection, one transaction: the bearer token is checked on the request's own
session (issue 13: each signed-in request used to open two sessions, two BEGIN/ROLLBACK pairs)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import event

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
    account_read = next(i for i, s in enumerate(traffic.statements) if "FROM accounts" in s)
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
