"""Keyset (cursor) pagination over any SELECT, with the total counted only when asked for.

Keyset rather than OFFSET: a page deep in a long list costs the same as the first, and rows inserted
while a coordinator pages do not shift what they see next.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
from sqlalchemy import Select, cast, func, literal, select, tuple_
from sqlalchemy.sql.elements import ColumnElement

from core.errors import DomainError
from core.services.context import ServiceContext

M = TypeVar("M")

DEFAULT_PAGE_SIZE = 50


@dataclass(frozen=True)
class Ordering(Generic[M]):
    """A total order: columns (all ascending or all descending, the last one unique) and how to read the
    same values off a loaded row for its cursor."""

    name: str
    columns: tuple[ColumnElement[Any], ...]
    key: Callable[[M], tuple[Any, ...]]
    descending: bool = False

    def order_by(self) -> list[ColumnElement[Any]]:
        return [c.desc() if self.descending else c.asc() for c in self.columns]

    def after(self, values: Sequence[Any]) -> ColumnElement[bool]:
        bound = tuple_(*(cast(literal(v), c.type) for v, c in zip(values, self.columns, strict=True)))
        row = tuple_(*self.columns)
        return row < bound if self.descending else row > bound


def encode_cursor(ordering: str, values: Sequence[Any]) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(orjson.dumps([ordering, plain])).decode()


def decode_cursor(cursor: str, ordering: Ordering[Any], field: str = "after") -> list[Any]:
    try:
        name, values = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error, TypeError):
        raise DomainError("INVALID_CURSOR", "This cursor is malformed.", (field,)) from None
    if name != ordering.name or not isinstance(values, list) or len(values) != len(ordering.columns):
        raise DomainError("INVALID_CURSOR", "This cursor belongs to another ordering.", (field,))
    return values


@dataclass
class Page(Generic[M]):
    items: list[M]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool
    # The filtered query without ordering or limit; counted only if the client asks for totalCount.
    filtered: Select[Any]
    ctx: ServiceContext

    async def total_count(self) -> int:
        stmt = select(func.count()).select_from(self.filtered.order_by(None).subquery())
        return int(await self.ctx.session.scalar(stmt) or 0)


def page_size(first: int | None, max_page_size: int) -> int:
    size = DEFAULT_PAGE_SIZE if first is None else first
    if size < 0 or size > max_page_size:
        raise DomainError("PAGE_SIZE_EXCEEDED", f"`first` must be between 0 and {max_page_size}.", ("first",))
    return size


async def paginate(
    ctx: ServiceContext,
    stmt: Select[Any],
    ordering: Ordering[M],
    *,
    first: int,
    after: str | None,
) -> Page[M]:
    filtered = stmt
    if after is not None:
        stmt = stmt.where(ordering.after(decode_cursor(after, ordering)))
    rows = list((await ctx.session.scalars(stmt.order_by(*ordering.order_by()).limit(first + 1))).all())
    has_next = len(rows) > first
    items = rows[:first]
    return Page(
        items=items,
        cursors=[encode_cursor(ordering.name, ordering.key(item)) for item in items],
        has_next_page=has_next,
        has_previous_page=after is not None,
        filtered=filtered,
        ctx=ctx,
    )
