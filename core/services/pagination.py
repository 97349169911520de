"""Keyset (cursor) pagination over any SELECT, with the total counted only when asked for.

Keyset rather than OFFSET: a page deep in a long list costs the same as the first, and rows inserted
while a coordinator pages do not shift what they see next.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

import orjson
from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Float,
    Integer,
    Numeric,
    Select,
    SmallInteger,
    cast,
    func,
    inspect,
    literal,
    select,
    tuple_,
)
from sqlalchemy.sql.elements import ColumnElement

from core.errors import DomainError
from core.services.context import ServiceContext
from core.services.records import as_records

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

    def cursor(self, item: M) -> str:
        """`item`'s cursor in this ordering."""
        return encode_cursor(self.name, self.key(item))

    def after(self, values: Sequence[Any]) -> ColumnElement[bool]:
        bound = tuple_(*(cast(literal(v), c.type) for v, c in zip(values, self.columns, strict=True)))
        row = tuple_(*self.columns)
        return row < bound if self.descending else row > bound


def encode_cursor(ordering: str, values: Sequence[Any]) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(orjson.dumps([ordering, plain])).decode()


# Our cursors are a few dozen characters; a longer one was not made by us.
MAX_CURSOR_LENGTH = 1024
_INT_BITS = ((SmallInteger, 16), (BigInteger, 64), (Integer, 32))
_SURROGATE = re.compile("[\ud800-\udfff]")


def decode_cursor(cursor: str, ordering: Ordering[Any], field: str = "after") -> list[Any]:
    """The ordering values inside a cursor, each checked against its column's type: a hand-made cursor (a dict,
    a number past the column's range, a string where a time belongs) is INVALID_CURSOR here, never an error
    from the database later."""
    malformed = DomainError("INVALID_CURSOR", "This cursor is malformed.", (field,))
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise malformed
    try:
        name, values = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error, TypeError):
        raise malformed from None
    if name != ordering.name or not isinstance(values, list) or len(values) != len(ordering.columns):
        raise DomainError("INVALID_CURSOR", "This cursor belongs to another ordering.", (field,))
    try:
        return [_cursor_value(value, column) for value, column in zip(values, ordering.columns, strict=True)]
    except (ValueError, TypeError, OverflowError, ArithmeticError):
        raise malformed from None


def _cursor_value(value: Any, column: ColumnElement[Any]) -> Any:
    """`value` as the Python value of `column`'s type, or ValueError (TypeError, OverflowError)."""
    type_ = column.type
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        raise TypeError("not an ordering value")
    if isinstance(type_, Integer):
        bits = next(b for t, b in _INT_BITS if isinstance(type_, t))
        if not isinstance(value, int) or not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
            raise ValueError("not an integer of the column's range")
        return value
    if isinstance(type_, DateTime):
        if value in ("infinity", "-infinity"):  # PostgreSQL's, for a missing time sorted last (needed_by)
            return value
        moment = datetime.fromisoformat(value)  # TypeError for a non-string
        if moment.tzinfo is None:
            raise ValueError("a time without offset")
        return moment.astimezone(UTC)  # OverflowError near years 1 and 9999
    if isinstance(type_, Date):
        return date.fromisoformat(value)
    if isinstance(type_, Numeric) and not isinstance(type_, Float):
        number = Decimal(str(value)) if isinstance(value, (int, str)) else None
        if number is None or not number.is_finite():
            raise ValueError("not a finite decimal")
        return number
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return value
    if isinstance(value, str):
        if "\x00" in value or _SURROGATE.search(value):
            raise ValueError("text PostgreSQL cannot hold")
        return value
    if isinstance(value, int) and -(2**63) <= value < 2**63:
        return value
    raise ValueError("not an ordering value")


@dataclass
class Page(Generic[M]):
    items: list[M]
    # An item's cursor, made when asked for: most pages are read without their edges' cursors.
    cursor: Callable[[M], str]
    has_next_page: bool
    has_previous_page: bool
    # The filtered query without ordering or limit; counted only if the client asks for totalCount.
    filtered: Select[Any]
    ctx: ServiceContext

    @property
    def cursors(self) -> list[str]:
        return [self.cursor(item) for item in self.items]

    async def total_count(self) -> int:
        stmt = select(func.count()).select_from(self.filtered.order_by(None).subquery())
        return int(await self.ctx.session.scalar(stmt) or 0)


def page_size(first: int | None, max_page_size: int) -> int:
    size = DEFAULT_PAGE_SIZE if first is None else first
    if size < 0 or size > max_page_size:
        raise DomainError(
            "PAGE_SIZE_EXCEEDED", "`first` must be between 0 and {limit}.", ("first",), limit=max_page_size
        )
    return size


def _plain_columns(stmt: Select[Any]) -> Select[Any] | None:
    """`stmt` reading its entity's table columns as plain rows, when that gives the same attributes.

    A page is read to be shown: building ORM instances (identity map, instrumented attributes, every column
    of every row) was the largest single cost of a page after GraphQL itself. A row of the table's columns
    offers the same attribute names when every mapped attribute is one column of the same name; an entity
    with anything else (a column_property, a renamed column) stays an ORM instance.
    """
    described = stmt.column_descriptions
    if len(described) != 1 or described[0]["expr"] is not described[0]["entity"] or described[0]["entity"] is None:
        return None
    mapper = inspect(described[0]["entity"], raiseerr=False)
    if mapper is None or getattr(mapper, "with_polymorphic", None) or mapper.inherits is not None:
        return None
    table = mapper.local_table
    attrs = list(mapper.column_attrs)
    plain = len(attrs) == len(table.columns) and all(
        len(attr.columns) == 1 and attr.columns[0] is table.c.get(attr.key) for attr in attrs
    )
    return stmt.with_only_columns(*table.columns, maintain_column_froms=True) if plain else None


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
    stmt = stmt.order_by(*ordering.order_by()).limit(first + 1)
    plain = _plain_columns(stmt)
    if plain is None:
        rows = list((await ctx.session.scalars(stmt)).all())
    else:
        rows = as_records(plain.selected_columns[0].table.name, await ctx.session.execute(plain))
    has_next = len(rows) > first
    items = rows[:first]
    return Page(
        items=items,
        cursor=ordering.cursor,
        has_next_page=has_next,
        has_previous_page=after is not None,
        filtered=filtered,
        ctx=ctx,
    )
