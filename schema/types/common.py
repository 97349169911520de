"""Relay connections, page info and small shared types."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import strawberry
from strawberry import Info

from core.services.pagination import Page
from schema.execution.compiler import DIRECT_RESOLVER
from schema.loaders import WindowPage
from schema.prefetch import prefetch

T = TypeVar("T")


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


def _edge_cursor(root: Any) -> str:
    return root._cursor_of(root._item)  # type: ignore[no-any-return]


def _edge_cursor_direct(source: Any, _context: Any) -> str:
    return source._cursor_of(source._item)  # type: ignore[no-any-return]


@strawberry.type
class Edge(Generic[T]):
    # The cursor is made only when asked for (encoding one per row was a tenth of a plain page): read
    # directly by the compiled executor, through the resolver otherwise.
    cursor: str = strawberry.field(resolver=_edge_cursor, metadata={DIRECT_RESOLVER: _edge_cursor_direct})
    node: T
    _item: strawberry.Private[Any]
    _cursor_of: strawberry.Private[Callable[[Any], str]]


@strawberry.type(description="A page of a list; `totalCount` counts the whole filtered list.")
class Connection(Generic[T]):
    page_info: PageInfo
    _edges: strawberry.Private[list[Edge[T]]]
    _count: strawberry.Private[Callable[[], Awaitable[int]]]

    # Both load what the query asks for below the nodes for the whole page first (schema.prefetch): one
    # awaited call per page, after which the nodes' nested fields answer without waiting.
    @strawberry.field
    async def edges(self, info: Info) -> list[Edge[T]]:
        await prefetch(info, [edge.node for edge in self._edges], ("node",))
        return self._edges

    @strawberry.field(description="The nodes of this page, without cursors.")
    async def nodes(self, info: Info) -> list[T]:
        nodes = [edge.node for edge in self._edges]
        await prefetch(info, nodes)
        return nodes

    @strawberry.field(description="How many items the whole filtered list holds (counted on demand).")
    async def total_count(self) -> int:
        return await self._count()

    @classmethod
    def build(
        cls, page: Page[Any] | WindowPage, convert: Callable[[Any], T], count: Callable[[], Awaitable[int]]
    ) -> Connection[T]:
        items, cursor = page.items, page.cursor
        edges = [Edge(node=convert(item), _item=item, _cursor_of=cursor) for item in items]
        return cls(
            _edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=page.has_previous_page,
                start_cursor=cursor(items[0]) if items else None,
                end_cursor=cursor(items[-1]) if items else None,
            ),
            _count=count,
        )


@strawberry.type(description="A count under a key, e.g. volunteers in one district.")
class Bucket:
    key: str
    count: int
