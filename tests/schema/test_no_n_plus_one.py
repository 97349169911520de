"""Nested queries cost a fixed number of SQL statements, whatever the page size."""

from __future__ import annotations

import pytest

from core.services import assignments
from core.settings import Settings
from core.vocab import RequestStatus
from tests.factories import Factory

REQUESTS_PAGE = """
query($first: Int!) {
  helpRequests(first: $first) {
    totalCount
    edges { node {
      title status
      community { name district { name } liaisons { role volunteer { name } } }
      assignments { status volunteer { name hoursServed credentials { kind } district { name } } }
      history { toStatus }
    } }
  }
}"""

COMMUNITIES_PAGE = """
query($first: Int!) {
  communities(first: 50) {
    edges { node {
      name
      helpRequests(first: $first) {
        totalCount
        edges { node { title assignments { status volunteer { name assignments(first: 3) { totalCount } } } } }
      }
    } }
  }
}"""


async def _seed(make: Factory, requests: int, communities: int = 10, volunteers: int = 8) -> None:
    places = [await make.community() for _ in range(communities)]
    pool = [await make.volunteer(max_concurrent_assignments=50) for _ in range(volunteers)]
    for i in range(requests):
        request = await make.request(places[i % communities], status=RequestStatus.VERIFIED, volunteers_needed=2)
        for volunteer in (pool[i % volunteers], pool[(i + 3) % volunteers]):
            await assignments.offer(make.ctx, request.id, volunteer.id)
    await make.commit()


@pytest.fixture
def settings() -> Settings:
    # Statement counts are the subject here, not cost: the communities page nests four lists deep and
    # costs about 160,000 objects in the worst case, over the default budget (tests/schema/test_query_cost.py).
    return Settings(database_url=None, max_page_size=200, max_query_cost=1_000_000)


@pytest.mark.parametrize("query", [REQUESTS_PAGE, COMMUNITIES_PAGE], ids=["requests", "communities"])
async def test_statement_count_does_not_grow_with_the_number_of_distinct_parents(  # type: ignore[no-untyped-def]
    gql, make: Factory, statements, query: str
) -> None:
    # An N+1 on shared parents (one query per distinct community or volunteer) is invisible when only the
    # page size varies over a fixed set of parents: here the parents vary, the page does not.
    counts = {}
    for communities, volunteers in ((3, 4), (24, 30)):
        # given 48 requests spread over that many communities and volunteers (fresh each time)
        await _seed(make, 48, communities=communities, volunteers=volunteers)
        # when the nested page is fetched
        statements.statements.clear()
        data = await gql(query, {"first": 100})
        counts[communities] = statements.count
        assert data
    # then eight times the parents cost no more statements
    assert counts[3] == counts[24], counts


@pytest.mark.parametrize("query", [REQUESTS_PAGE, COMMUNITIES_PAGE], ids=["requests", "communities"])
async def test_statement_count_does_not_grow_with_the_page(gql, make: Factory, statements, query: str) -> None:  # type: ignore[no-untyped-def]
    # given 100 requests with two assignments each, over ten communities
    await _seed(make, 100)
    counts = {}
    for first in (50, 100):
        # when a nested page of `first` requests is fetched
        statements.statements.clear()
        data = await gql(query, {"first": first})
        counts[first] = statements.count
        assert data  # the query ran
    # then 50 and 100 cost the same small number of statements
    assert counts[50] == counts[100]
    assert counts[100] <= 14, counts


async def test_the_page_really_is_nested(gql, make: Factory) -> None:  # type: ignore[no-untyped-def]
    # guards the statement-count test against passing on empty pages
    await _seed(make, 20, communities=2)
    data = await gql(REQUESTS_PAGE, {"first": 100})
    edges = data["helpRequests"]["edges"]
    assert len(edges) == 20
    assert all(len(e["node"]["assignments"]) == 2 for e in edges)
    nested = await gql(COMMUNITIES_PAGE, {"first": 100})
    per_community = [c["node"]["helpRequests"]["totalCount"] for c in nested["communities"]["edges"]]
    assert per_community == [10, 10]


async def test_each_loader_runs_once_per_request(gql, make: Factory, statements) -> None:  # type: ignore[no-untyped-def]
    # given 30 requests whose nested fields reach six tables through loaders
    await _seed(make, 30)
    statements.statements.clear()
    # when the nested page is fetched
    await gql(REQUESTS_PAGE, {"first": 30})
    # then every table is read once (assignments twice: rows, and the hours sum), plus the count, plus
    # the one statement that tells the transaction who is asking (organisation isolation)
    heads = sorted(s.split()[1].split(".")[0] for s in statements.statements)
    assert heads == sorted(
        [
            "set_config('app",
            "help_requests",
            "count(*)",
            "communities",
            "districts",
            "community_liaisons",
            "volunteers",
            "assignments",
            "assignments",
            "help_request_status_changes",
            "volunteer_credentials",
        ]
    )
