"""run_import's file-level refusals: each raises its code and writes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.errors import DomainError
from core.imports import run_import
from core.models import Volunteer
from core.services.context import ServiceContext
from core.settings import Settings

GOOD = "姓名,手机号,志愿类型\n甲,13800000001,线下\n乙,13800000002,线下\n丙,13800000003,线下\n".encode()


@pytest.mark.parametrize(
    ("data", "options", "code"),
    [
        (b"%PDF-1.4 not a table", {}, "UNSUPPORTED_FILE"),
        (b"", {}, "EMPTY_FILE"),
        ("姓名,手机号,志愿类型\n".encode(), {}, "EMPTY_FILE"),  # a header and no data rows
        (GOOD, {"settings": Settings(import_max_bytes=50)}, "TOO_LARGE"),
        (GOOD, {"settings": Settings(import_max_rows=2)}, "TOO_LARGE"),
        (GOOD, {"mapping": {"志愿类型": "blood_type"}}, "INVALID_MAPPING"),
        ("姓名,电话号\n甲,13800000001\n".encode(), {}, "INVALID_MAPPING"),  # phone and mode unmapped
    ],
    ids=["not-a-table", "empty", "header-only", "bytes", "rows", "unknown-field", "unmapped-required"],
)
async def test_file_level_problems_write_nothing(
    ctx: ServiceContext, data: bytes, options: dict[str, object], code: str
) -> None:
    with pytest.raises(DomainError) as error:
        await run_import(ctx, "volunteers", data, filename="f", **options)  # type: ignore[arg-type]
    assert error.value.code == code
    await ctx.session.commit()
    assert await ctx.session.scalar(select(func.count()).select_from(Volunteer)) == 0


async def test_within_the_limits_the_same_file_imports(ctx: ServiceContext) -> None:
    report = await run_import(ctx, "volunteers", GOOD, filename="f", settings=Settings(import_max_rows=3))
    assert report.created == 3


async def test_progress_is_reported(ctx: ServiceContext) -> None:
    seen: list[tuple[int, int | None]] = []
    await run_import(ctx, "volunteers", GOOD, filename="f", progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (3, 3)
