"""The GraphQL half of the plugin API: what a plugin's `types.py` uses to look and behave like core.

    from schema import api as gql

The domain half (models, services, access, errors, events) is `core` (see core/__init__.py). Every name
here is an explicit import, so editors and type checkers follow it; docs/plugins.md has the reference.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from strawberry import Info

from core.errors import DomainError
from core.services.pagination import Page, page_size
from schema.errors import Error, ErrorCode, UserError
from schema.ids import decode as decode_id
from schema.ids import decode_optional as decode_optional_id
from schema.ids import encode as encode_id
from schema.mutations.base import mutate, payload
from schema.scalars import Money
from schema.subscriptions import LiveChange, live_events
from schema.types.assignment import Assignment
from schema.types.common import Connection, Edge, PageInfo
from schema.types.community import Community
from schema.types.help_request import HelpRequest
from schema.types.nodes import resolve_node_rows
from schema.types.reference import District, Organization
from schema.types.volunteer import Volunteer

T = TypeVar("T")

__all__ = [
    "Assignment",
    "Community",
    "Connection",
    "District",
    "Edge",
    "Error",
    "ErrorCode",
    "HelpRequest",
    "LiveChange",
    "Money",
    "Organization",
    "PageInfo",
    "UserError",
    "Volunteer",
    "connection",
    "decode_id",
    "decode_optional_id",
    "encode_id",
    "first_of",
    "live_events",
    "load",
    "load_required",
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


async def load(info: Info, model: type, pk: int | None, convert: Callable[[Any], T]) -> T | None:
    """A referenced row (a plugin model or a core model) through the request's batched loader: one query
    per model and level of the answer, never one per parent. None for None or a row the caller cannot see
    (row-level security). E.g. `gql.load(info, core.Volunteer, row.volunteer_id, gql.Volunteer.from_model)`."""
    if pk is None:
        return None
    row = await info.context.loaders.by_id(model).load(pk)
    return None if row is None else convert(row)


async def load_required(info: Info, model: type, pk: int, convert: Callable[[Any], T]) -> T:
    """`load` for a reference that is always there (a record and its references share one organisation):
    NOT_FOUND if it is not, rather than a null where the schema promises a value."""
    found = await load(info, model, pk, convert)
    if found is None:
        raise DomainError("NOT_FOUND", "A record it refers to ({kind}) was not found.", kind=model.__name__)
    return found
