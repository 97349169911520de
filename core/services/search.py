"""Substring search backed by pg_trgm GIN indexes (ILIKE '%term%' uses them for terms of 3+ chars)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.sql.elements import ColumnElement


def like_pattern(term: str) -> str:
    escaped = term.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def contains(expr: ColumnElement[Any], term: str) -> ColumnElement[bool]:
    return expr.ilike(like_pattern(term), escape="\\")
