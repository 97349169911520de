"""The GraphQL half of the plugin API: what a plugin's `types.py` uses to look and behave like core.

    from schema import api as gql

The domain half (models, services, access, errors, events) is `core` (see core/__init__.py). Every name
here is an explicit import, so editors and type checkers follow it; docs/plugins.md has the reference.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from strawberry import Info

from core.services.pagination import Page, page_size
from schema.errors import Error, ErrorCode, UserError
from schema.ids import decode as decode_id
from schema.ids import encode as encode_id
from schema.mutations.base import mutate, payload
from schema.scalars import Money
from schema.types.common import Connection, Edge, PageInfo
from schema.types.nodes import resolve_node_rows

T = TypeVar("T")

__all__ = [
    "Connection",
    "Edge",
    "Error",
    "ErrorCode",
    "Money",
    "PageInfo",
    "UserError",
    "connection",
    "decode_id",
    "encode_id",
    "first_of",
    "mutate",
    "payload",
    "resolve_node_rows",
]


def first_of(info: Info, first: int | None) -> int:
    """The page size a connection field was asked for (default 50), or PAGE_SIZE_EXCEEDED past the
    deployment's maximum -- the same rule as core's lists."""
    return page_size(first, info.context.settings.max_page_size)


def connection(info: Info, page: Page[Any], convert: Callable[[Any], T]) -> Connection[T]:
    """A cursor connection from a service's `core.paginate(...)` page: edges, pageInfo, and `totalCount`
    counted only if the client asks for it (in the request's session, with the caller's scope)."""

    def count() -> Awaitable[int]:
        return info.context.read(lambda _ctx: page.total_count())

    return Connection.build(page, convert, count)
