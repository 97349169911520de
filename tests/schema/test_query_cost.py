"""Query cost: `first:` multiplied through nested connections and lists, with the variables' values, refused
before any resolver runs (QUERY_TOO_COSTLY, with the cost and the budget)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from graphql import parse
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import create_sessionmaker
from core.plugins import build_plugin_host
from core.services.context import Viewer
from core.settings import Settings
from core.vocab import RequestStatus
from schema.build import build_schema
from schema.context import AppState
from schema.cost import CostModel, operation_cost
from tests.factories import Factory
from yunshegong.app import create_app

# The query: three connections of 200, nested through an assignment's request and its community.
THREE_LEVELS = """{ volunteers(first: 200) { nodes { assignments(first: 200) { nodes {
  request { community { helpRequests(first: 200) { nodes { id } } } } } } } } }"""
# The connection + 200 volunteers x (itself + its connection + 200 assignments x (itself, request, community,
# connection, 200 requests)).
THREE_LEVELS_COST = 1 + 200 * (1 + 1 + 200 * (1 + 1 + 1 + 1 + 200))

# The README's work list, with a full page of 200.
WORK_LIST = """query WorkList($after: String) {
  helpRequests(filter: {statuses: [SUBMITTED, VERIFIED, MATCHED]}, first: 200, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node {
      id title urgency neededBy status beneficiaries populationTags
      community { name district { name } }
      assignments { status volunteer { name phone } }
    } }
  }
}"""

NESTED = """query($n: Int) { communities(first: $n) { nodes { helpRequests(first: $n) { nodes {
  community { helpRequests(first: $n) { nodes { title } } } } } } } }"""
NESTED_200 = 1 + 200 * (1 + 1 + 200 * (1 + 1 + 1 + 200))


def _refusal(body: dict[str, Any]) -> dict[str, Any]:
    assert body.get("data") is None, body
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COSTLY", body
    return error["extensions"]


async def test_three_nested_connections_are_refused_before_any_sql(gql, statements) -> None:  # type: ignore[no-untyped-def]
    # given the 40-token query, within every depth, alias and token limit
    statements.statements.clear()
    # when it is sent
    body = await gql.raw(THREE_LEVELS)
    # then it is refused with its cost and the budget, and nothing ran
    assert _refusal(body) == {"code": "QUERY_TOO_COSTLY", "cost": THREE_LEVELS_COST, "budget": 50_000}
    assert statements.count == 0


async def test_a_full_page_of_the_readme_work_list_passes(gql, make: Factory) -> None:  # type: ignore[no-untyped-def]
    # given a matched request: a community and an offered volunteer
    await make.request(status=RequestStatus.MATCHED)
    # when the front end asks for a full page of 200
    data = await gql(WORK_LIST)
    # then it is answered
    assert data["helpRequests"]["totalCount"] == 1
    (edge,) = data["helpRequests"]["edges"]
    assert edge["node"]["assignments"][0]["volunteer"]["name"] == "司机"


async def test_variables_count_with_their_values(gql) -> None:  # type: ignore[no-untyped-def]
    # given one document, nesting three connections of `first: $n`
    # when n is small it runs; when n is 200 the same (cached) document is refused with the cost of n = 200
    assert (await gql(NESTED, {"n": 10}))["communities"]["nodes"] == []
    refused = _refusal(await gql.raw(NESTED, {"n": 200}))
    assert refused["cost"] == NESTED_200
    # a variable's default counts too
    with_default = NESTED.replace("$n: Int", "$n: Int = 200")
    assert _refusal(await gql.raw(with_default))["cost"] == NESTED_200


@pytest.fixture
async def budget_of_100(engine: AsyncEngine, admin: Viewer) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(max_query_cost=100, max_page_size=200)

    async def as_admin(request: object, session: object) -> Viewer:
        return admin

    state = AppState(settings=settings, sessionmaker=create_sessionmaker(engine), authenticate=as_admin)
    app = create_app(settings, engine=engine, state=state)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        yield http


async def _post(http: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    return (await http.post("/graphql", json={"query": query, "variables": variables or {}})).json()


async def test_the_budget_is_a_setting(budget_of_100: httpx.AsyncClient) -> None:
    # given a deployment whose budget is 100
    # when a page of 99 communities is asked for, then one of 100
    fits = await _post(budget_of_100, "{ communities(first: 99) { nodes { name } } }")
    over = await _post(budget_of_100, "{ communities(first: 100) { nodes { name } } }")
    # then the first runs (99 + the connection) and the second is refused with that budget
    assert fits["data"]["communities"]["nodes"] == []
    assert _refusal(over) == {"code": "QUERY_TOO_COSTLY", "cost": 101, "budget": 100}


async def test_fragments_inline_fragments_and_aliases_each_count(budget_of_100: httpx.AsyncClient) -> None:
    fragment = "fragment Names on CommunityConnection { nodes { name } }"
    # given a page of 60 through a fragment (61): fits
    one = await _post(budget_of_100, "{ communities(first: 60) { ...Names } } " + fragment)
    assert one["data"]["communities"]["nodes"] == []
    # when the fragment is spread under two aliases, or an inline fragment repeats the selection
    aliased = await _post(
        budget_of_100, "{ a: communities(first: 60) { ...Names } b: communities(first: 60) { ...Names } } " + fragment
    )
    inline = await _post(
        budget_of_100,
        "{ communities(first: 60) { ...Names ... on CommunityConnection { edges { node { name } } } } } " + fragment,
    )
    # then each counts
    assert _refusal(aliased)["cost"] == 2 * 61
    assert _refusal(inline)["cost"] == 1 + 60 + 60 * 2


async def test_each_operation_of_a_batch_is_costed_alone(budget_of_100: httpx.AsyncClient) -> None:
    # given a batch of a cheap and a costly operation
    cheap = {"query": "{ communities(first: 10) { nodes { name } } }"}
    costly = {"query": "{ communities(first: 150) { nodes { name } } }"}
    # when it is sent
    cheap_result, costly_result = (await budget_of_100.post("/graphql", json=[cheap, costly, cheap])).json()[:2]
    # then only the costly one is refused
    assert cheap_result["data"]["communities"]["nodes"] == []
    assert _refusal(costly_result)["cost"] == 151


def test_plugin_connections_are_costed_structurally() -> None:
    # given the schema with the built-in plugins (their connections were never registered with the cost)
    schema = build_schema(Settings(), build_plugin_host(entry_points=False))._schema
    document = parse(
        "{ suppliesDonations(first: 100) { nodes { allocations(first: 100) { edges { node { id } } } } } }"
    )
    # when costed, then `first:` multiplies through the plugin's nested connection (an edge and its node: 2)
    assert operation_cost(schema, document, None, {}) == 1 + 100 * (1 + 1 + 100 * 2)


def test_plain_lists_count_with_their_declared_or_assumed_size() -> None:
    schema = build_schema(Settings())._schema
    model = CostModel(plain_list=200)
    # a declared list (a request's assignments: 20), an undeclared one (districts: a full page), ids named
    requests = parse("{ helpRequests(first: 10) { nodes { assignments { volunteer { name } } } } }")
    assert operation_cost(schema, requests, None, {}, model) == 1 + 10 * (1 + 20 * 2)
    # back-references between plain lists multiply like connections: two round trips are refused
    cycle = parse(
        "{ helpRequests(first: 5) { nodes { assignments { request { assignments { request {"
        " assignments { volunteer { name } } } } } } } } }"
    )
    assert operation_cost(schema, cycle, None, {}, model) > Settings().max_query_cost
    assert operation_cost(schema, parse("{ districts { name } }"), None, {}, model) == 200
    assert operation_cost(schema, parse('{ nodes(ids: ["a", "b"]) { id } }'), None, {}, model) == 2
    # introspection is bounded by the schema; skipped selections are not fetched
    assert operation_cost(schema, parse("{ __schema { types { fields { args { name } } } } }"), None, {}, model) == 0
    skipped = parse("query($no: Boolean!) { districts @include(if: $no) { name } }")
    assert operation_cost(schema, skipped, None, {"no": False}, model) == 0


def test_fragments_spreading_each_other_are_counted_without_blowing_up() -> None:
    # given 30 fragments each spreading the next twice (2^30 spreads if expanded naively)
    schema = build_schema(Settings())._schema
    chain = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(30)]
    chain.append("fragment F30 on Query { districts { name } }")
    document = parse("{ ...F0 } " + " ".join(chain))
    # when costed, then the count is exact (every spread counts) and instant
    assert operation_cost(schema, document, None, {}, CostModel(plain_list=200)) == 2**30 * 200
