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
from typing import Any

from sqlalchemy import Result


@functools.cache
def record_class(name: str, fields: tuple[str, ...]) -> type | None:
    """The record type for rows with these column names; None when a name cannot be an attribute of one
    (such rows stay SQLAlchemy rows)."""
    if len(set(fields)) != len(fields) or not all(
        field.isidentifier() and not keyword.iskeyword(field) and not field.startswith("_") for field in fields
    ):
        return None
    return namedtuple(f"{name}_record", fields)  # type: ignore[misc]


def as_records(name: str, result: Result[Any]) -> list[Any]:
    """The rows of `result` as records of one type (named `name`, e.g. the table's)."""
    cls = record_class(name, tuple(result.keys()))
    if cls is None:
        return list(result)
    make = cls._make  # type: ignore[attr-defined]
    return [make(row) for row in result]
