"""Rows as light records (core.services.records): same names and values, any column list."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.services.records import as_records, record_class


def test_column_names_that_cannot_be_attributes_have_no_record_type() -> None:
    # given column lists a named tuple cannot hold (a leading underscore, a keyword, a repeat), then none
    for fields in (("id", "_private"), ("id", "class"), ("id", "id"), ("id", "two words")):
        assert record_class("t", fields) is None


async def test_a_result_whose_columns_cannot_be_attributes_keeps_its_rows(engine: AsyncEngine) -> None:
    # given a result with a column named like a keyword
    async with engine.connect() as conn:
        result = await conn.execute(select(text("1 AS id"), text("2 AS class")))
        # when it is turned into records, then its rows pass through as they are
        rows = as_records("t", result)
    assert [(r.id, r[1]) for r in rows] == [(1, 2)]
    assert type(rows[0]).__name__ == "Row"


async def test_records_read_like_the_rows_they_came_from(engine: AsyncEngine) -> None:
    # given a result with several columns
    stmt = select(
        text("1 AS id"), text("'题' AS title"), text("ARRAY['a','b'] AS tags"), text("NULL::timestamptz AS due")
    )
    async with engine.connect() as conn:
        rows = list(await conn.execute(stmt))
        # when the same result becomes records
        records = as_records("example", await conn.execute(stmt))
    # then every column reads the same by name and by position
    assert [(r.id, r.title, r.tags, r.due) for r in records] == [(1, "题", ["a", "b"], None)]
    assert [tuple(r) for r in records] == [tuple(r) for r in rows]
