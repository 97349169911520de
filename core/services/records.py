"""Rows read to be shown, as light records: a named tuple per column list.

SQLAlchemy's `Row` resolves each attribute by name at ~0.5 µs an access. A page touches every column of
every row while converting it (~5,500 accesses for 100 requests with their communities, offers and
volunteers), which made attribute access alone a third of a plain page's time. A named tuple reads a field
at tuple speed and offers the same attribute names and positions.
"""

from __future__ import annotations

import functools
import keyword
from collections import namedtuple
from collections.abc import Iterable
from typing import Any


@functools.cache
def record_class(name: str, fields: tuple[str, ...]) -> type | None:
    """The record type for rows with these column names; None when a name cannot be an attribute of one
    (such rows stay SQLAlchemy rows)."""
    if len(set(fields)) != len(fields) or not all(
        field.isidentifier() and not keyword.iskeyword(field) and not field.startswith("_") for field in fields
    ):
        return None
    return namedtuple(f"{name}_record", fields)  # type: ignore[misc]


def as_records(name: str, fields: Iterable[str], rows: Iterable[Any]) -> list[Any]:
    """`rows` (a result's rows with these column names) as records of one type."""
    cls = record_class(name, tuple(fields))
    if cls is None:
        return list(rows)
    make = cls._make  # type: ignore[attr-defined]
    return [make(row) for row in rows]
