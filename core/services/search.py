"""Searches: substring matching backed by pg_trgm GIN indexes (ILIKE '%term%' uses them for terms of 3+
chars), and the bound every date or time range a search takes must respect."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.sql.elements import ColumnElement

from core.errors import Validator

# Settings.max_range_days's default: what a service assumes when its caller passes no deployment limit.
DEFAULT_MAX_RANGE_DAYS = 366


def like_pattern(term: str) -> str:
    escaped = term.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def contains(expr: ColumnElement[Any], term: str) -> ColumnElement[bool]:
    return expr.ilike(like_pattern(term), escape="\\")


def check_range(
    v: Validator,
    start: datetime | None,
    end: datetime | None,
    *,
    max_days: int,
    end_field: Sequence[str] = ("end",),
    allow_empty: bool = False,
) -> None:
    """Add to `v` what is wrong with the range [start, end): an end before its start (or at it, unless
    `allow_empty`) is OUT_OF_RANGE, a span over `max_days` days is RANGE_TOO_LARGE, both on `end_field`.
    An open end (None) is left to the caller: a filter with one bound is a filter, not a span to walk.

    Every search over time walks, reads or returns in proportion to its span (a free-slot search walks each
    day of it): one request must not make the service walk a decade."""
    if start is None or end is None:
        return
    if end < start or (end == start and not allow_empty):
        v.add(tuple(end_field), "OUT_OF_RANGE", "The range ends before it starts.")
    elif end - start > timedelta(days=max_days):
        v.add(tuple(end_field), "RANGE_TOO_LARGE", "A search spans at most {max_days} days.", max_days=max_days)
