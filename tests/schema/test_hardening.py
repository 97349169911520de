"""Hostile documents are rejected during validation, before anything executes (no SQL runs)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core.services.context import Viewer
from core.settings import Settings
from schema.context import AppState
from tests.factories import Factory
from tests.schema.helpers import gid
from yunshegong.app import create_app


def _deep(depth: int) -> str:
    inner = "id"
    for _ in range(depth):
        inner = f"assignments {{ request {{ {inner} }} }}"
    return f"{{ helpRequests(first: 1) {{ nodes {{ {inner} }} }} }}"


def _aliases(count: int) -> str:
    return "{ " + " ".join(f"a{i}: stats {{ volunteersTotal }}" for i in range(count)) + " }"


# name -> (document, the code its refusal carries)
HOSTILE = {
    "depth 20": (_deep(20), "QUERY_TOO_DEEP"),
    "31 aliases": (_aliases(31), "TOO_MANY_ALIASES"),
    "1000 aliases": (_aliases(1000), "TOO_MANY_TOKENS"),
    "huge page": ("{ helpRequests(first: 100000) { totalCount } }", "PAGE_SIZE_EXCEEDED"),
    "token flood": ("{ stats { " + "volunteersTotal " * 5000 + "} }", "TOO_MANY_TOKENS"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
async def test_hostile_queries_are_rejected_before_execution(gql, statements, name: str) -> None:  # type: ignore[no-untyped-def]
    document, code = HOSTILE[name]
    statements.statements.clear()
    body = await gql.raw(document)
    assert body["errors"]
    assert {e["extensions"]["code"] for e in body["errors"]} == {code}
    assert body.get("data") is None
    assert statements.count == 0, "nothing may run for a rejected document"


async def test_reasonable_nesting_still_works(gql) -> None:  # type: ignore[no-untyped-def]
    assert await gql(_deep(3))


async def test_batches_are_limited(gql) -> None:  # type: ignore[no-untyped-def]
    one = {"query": "{ stats { volunteersTotal } }"}
    small = await gql.http.post("/graphql", json=[one] * 3)
    assert small.status_code == 200
    assert [r["data"]["stats"]["volunteersTotal"] for r in small.json()] == [0, 0, 0]
    flood = await gql.http.post("/graphql", json=[one] * 100)
    assert flood.status_code == 400
    assert flood.headers["content-type"].startswith("application/json")
    assert [e["extensions"]["code"] for e in flood.json()["errors"]] == ["BATCH_TOO_LARGE"]


@pytest.fixture
async def locked_down(engine: AsyncEngine, admin: Viewer) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(introspection=False, graphiql=False)
    from core.database import create_sessionmaker

    async def as_admin(request: object, session: object) -> Viewer:
        return admin

    state = AppState(settings=settings, sessionmaker=create_sessionmaker(engine), authenticate=as_admin)
    app = create_app(settings, engine=engine, state=state)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        yield http


# Misspelt input fields and enum values, in the document and in variables: graphql-core suggests the real
# names ("Did you mean 'statuses'?") even with field suggestions disabled.
_FILTERED = "query($f: HelpRequestFilter) { helpRequests(filter: $f) { totalCount } }"
SUGGESTED = [
    {"query": "{ helpRequests(filter: {statuse: [NEW]}) { totalCount } }"},
    {"query": "{ helpRequests(filter: {urgencies: [NORMA]}) { totalCount } }"},
    {"query": _FILTERED, "variables": {"f": {"statuse": ["NEW"]}}},
    {"query": _FILTERED, "variables": {"f": {"urgencies": ["NORMA"]}}},
]


async def test_suggestions_are_made_while_introspection_is_on(gql) -> None:  # type: ignore[no-untyped-def]
    # (so that the test below, with introspection off, can tell they were removed)
    for request in SUGGESTED:
        body = (await gql.http.post("/graphql", json=request)).json()
        assert "Did you mean" in body["errors"][0]["message"], request


async def test_introspection_and_suggestions_can_be_switched_off(locked_down: httpx.AsyncClient) -> None:
    introspection = (await locked_down.post("/graphql", json={"query": "{ __schema { types { name } } }"})).json()
    assert introspection["errors"]
    typo = (await locked_down.post("/graphql", json={"query": "{ stat { volunteersTotal } }"})).json()
    assert "Did you mean" not in typo["errors"][0]["message"]
    for request in SUGGESTED:
        body = (await locked_down.post("/graphql", json=request)).json()
        assert body["errors"][0]["extensions"]["code"] in ("GRAPHQL_VALIDATION_FAILED", "INVALID_INPUT")
        assert "Did you mean" not in body["errors"][0]["message"], request
    works = (await locked_down.post("/graphql", json={"query": "{ stats { volunteersTotal } }"})).json()
    assert works["data"]["stats"]["volunteersTotal"] == 0


async def test_cors_is_configurable(engine: AsyncEngine) -> None:
    settings = Settings(cors_origins=("https://app.example.org",))
    app = create_app(settings, engine=engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        allowed = await http.options(
            "/graphql", headers={"Origin": "https://app.example.org", "Access-Control-Request-Method": "POST"}
        )
        other = await http.options(
            "/graphql", headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"}
        )
    assert allowed.headers.get("access-control-allow-origin") == "https://app.example.org"
    assert "access-control-allow-origin" not in other.headers


async def test_a_refusal_in_one_batched_operation_leaves_the_others_answered(gql, make: Factory) -> None:  # type: ignore[no-untyped-def]
    # given requests that cannot be planned (submitted, not verified), asked for by two aliases in each of
    # several batched operations (found from outside: the first refusal left the shared session unusable and
    # every later operation of the batch answered INTERNAL_ERROR)
    ids = [gid("HelpRequest", (await make.request()).id) for _ in range(3)]
    await make.commit()
    document = """query($ids: [ID!]!) { a: planAssignments(requestIds: $ids) { __typename }
      b: planAssignments(requestIds: $ids) { __typename } }"""
    # when the batch is sent
    response = await gql.http.post("/graphql", json=[{"query": document, "variables": {"ids": ids}}] * 4)
    # then every operation answers the same typed refusal
    codes = [[e["extensions"]["code"] for e in result["errors"]] for result in response.json()]
    assert response.status_code == 200
    assert all(c and set(c) == {"NOT_MATCHABLE"} for c in codes), codes
