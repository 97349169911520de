"""A document the service has seen is not validated again (schema.build.hardening): the limits' rules are
made once per schema, so strawberry's validation cache, keyed by the rules, can hit."""

from __future__ import annotations

from typing import Any

from strawberry.extensions import validation_cache

from core.settings import Settings
from schema.build import build_schema

QUERY = "{ __typename }"


def _cache() -> Any:
    return validation_cache._get_validate_cache(validation_cache.DEFAULT_MAXSIZE)


async def test_the_same_document_is_validated_once() -> None:
    # given the service's schema, and a document it has answered once
    schema = build_schema(Settings(database_url=None))
    assert (await schema.execute(QUERY)).errors is None
    before = _cache().cache_info()
    # when the same document comes again
    assert (await schema.execute(QUERY)).errors is None
    # then validation came from the cache, and nothing new was stored in it
    after = _cache().cache_info()
    assert (after.hits - before.hits, after.currsize - before.currsize) == (1, 0)


async def test_the_limits_still_apply_to_cached_documents() -> None:
    # given a schema with a small depth limit, and a document too deep for it
    schema = build_schema(Settings(database_url=None, max_query_depth=2))
    deep = "{ helpRequests { edges { node { community { name } } } } }"
    # when it is sent twice, then it is refused both times
    for _ in range(2):
        result = await schema.execute(deep)
        assert result.data is None
        assert [e.extensions for e in result.errors or []] == [{"code": "QUERY_TOO_DEEP"}]
