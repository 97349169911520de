"""Rows as light records (core.services.records): same names and values, any column list."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.services.records import as_records, record_class


def test_column_names_that_cannot_be_attributes_keep_the_rows() -> None:
    # given column lists a named tuple cannot hold (a leading underscore, a keyword, a repeat)
    for fields in (("id", "_private"), ("id", "class"), ("id", "id"), ("id", "two words")):
        # then there is no record type for them, and rows pass through as they are
        assert record_class("t", fields) is None
        assert as_records("t", fields, [("kept",)]) == [("kept",)]


async def test_records_read_like_the_rows_they_came_from(engine: AsyncEngine) -> None:
    # given a result with several columns
    stmt = select(
        text("1 AS id"), text("'题' AS title"), text("ARRAY['a','b'] AS tags"), text("NULL::timestamptz AS due")
    )
    async with engine.connect() as conn:
        result = await conn.execute(stmt)
        keys = list(result.keys())
        rows = list(result)
    # when they become records
    records = as_records("example", keys, rows)
    # then every column reads the same by name and by position
    assert [(r.id, r.title, r.tags, r.due) for r in records] == [(1, "题", ["a", "b"], None)]
    assert [tuple(r) for r in records] == [tuple(r) for r in rows]
