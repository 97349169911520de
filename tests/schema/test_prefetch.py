"""A connection loads what its query selects below the nodes up front (schema.prefetch): the nested
references then answer from loaded data, without one awaitable per object."""

from __future__ import annotations

import asyncio
import gc
import inspect
import weakref
from typing import Any

import pytest

from core.services import assignments
from core.vocab import RequestStatus
from schema import prefetch
from schema.loaders import Loader
from schema.types.community import Community
from tests.factories import Factory

PAGE = """{ helpRequests(first: 20) { edges { node {
  title community { name district { name } }
  assignments { status volunteer { name district { name } } }
} } } }"""

FRAGMENTS = """
query { helpRequests(first: 20) { nodes { ...Request } } }
fragment Request on HelpRequest { title community { name } assignments { ... on Assignment { volunteer { name } } } }
"""


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For every reference resolved other than from a prefetched value (those answer without asking the
    loader): whether its value was already loaded (True) or had to be awaited."""
    seen: list[bool] = []
    original = prefetch.now_or_later

    def watched(loader: Any, key: Any) -> Any:
        value = original(loader, key)
        seen.append(not inspect.isawaitable(value))
        return value

    monkeypatch.setattr(prefetch, "now_or_later", watched)
    return seen


async def _seed(make: Factory, requests: int) -> None:
    places = [await make.community() for _ in range(3)]
    pool = [await make.volunteer(max_concurrent_assignments=50) for _ in range(4)]
    for i in range(requests):
        request = await make.request(places[i % 3], status=RequestStatus.VERIFIED, volunteers_needed=2)
        for volunteer in (pool[i % 4], pool[(i + 1) % 4]):
            await assignments.offer(make.ctx, request.id, volunteer.id)
    await make.commit()


@pytest.mark.parametrize("query", [PAGE, FRAGMENTS], ids=["edges", "nodes-with-fragments"])
async def test_nested_references_answer_from_prefetched_rows(
    gql, make: Factory, lookups: list[bool], query: str
) -> None:  # type: ignore[no-untyped-def]
    # given 12 requests, each with a community and two offers
    await _seed(make, 12)
    lookups.clear()
    # when the page with its nested references is read
    data = await gql(query)
    # then every reference found its row already loaded: nothing waited for a loader
    nodes = [e["node"] for e in data["helpRequests"]["edges"]] if "edges" in data["helpRequests"] else None
    nodes = nodes or data["helpRequests"]["nodes"]
    assert len(nodes) == 12
    assert all(len(n["assignments"]) == 2 and n["community"]["name"] for n in nodes)
    assert all(lookups), f"{lookups.count(False)} of {len(lookups)} references were awaited"


async def test_a_reference_without_a_connection_above_still_loads(gql, make: Factory, lookups: list[bool]) -> None:  # type: ignore[no-untyped-def]
    # given a request reached through `node` (no connection to prefetch for it)
    await _seed(make, 1)
    rid = (await gql("{ helpRequests(first: 1) { edges { node { id } } } }"))["helpRequests"]["edges"][0]["node"]["id"]
    lookups.clear()
    # when its community is asked for
    data = await gql("query($id: ID!) { node(id: $id) { ... on HelpRequest { community { name } } } }", {"id": rid})
    # then it is loaded on demand (awaited) and answered the same way
    assert data["node"]["community"]["name"]
    assert lookups == [False]


async def test_what_a_page_loaded_is_freed_when_the_request_ends(  # type: ignore[no-untyped-def]
    gql, make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given 12 requests with communities and offers, and every community object a page makes watched
    await _seed(make, 12)
    made: list[weakref.ref[Any]] = []
    original = Community.__init__

    def watched(self: Community, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        made.append(weakref.ref(self))

    monkeypatch.setattr(Community, "__init__", watched)
    gc.collect()
    gc.disable()
    try:
        # when the page is read with the garbage collector off
        data = await gql(PAGE)
        assert len(data["helpRequests"]["edges"]) == 12
        # then nothing the request loaded is still alive: reference counting freed it, no cycle holds it
        assert made
        assert [ref for ref in made if ref() is not None] == []
    finally:
        gc.enable()


async def test_a_batch_that_answers_wrongly_fails_its_callers_instead_of_leaving_them_waiting() -> None:
    # given a batch function that answers fewer values than it was given keys
    async def load(keys: list[int]) -> list[str]:
        return ["one"]

    loader = Loader(load)
    # when two keys are filled, then the caller gets the error (a hang would end in the timeout instead)
    with pytest.raises(ValueError, match="zip"):
        await asyncio.wait_for(loader.fill([1, 2]), timeout=30)
    # and nothing was kept: a later load asks the batch function again
    assert loader.values == {}
