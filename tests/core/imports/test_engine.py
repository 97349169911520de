"""run_import's file-level refusals: each raises its code and writes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.errors import DomainError
from core.imports import check_import_permission, parse_import, run_import
from core.imports.engine import MAX_IGNORED_REPORTED
from core.models import Volunteer
from core.services.context import ServiceContext, Viewer
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


async def test_progress_covers_reading_checking_and_writing(ctx: ServiceContext) -> None:
    # given an import whose progress is recorded
    seen: list[tuple[str, int, int | None]] = []

    def progress(stage: str, done: int, total: int | None) -> None:
        seen.append((stage, done, total))

    report = await run_import(ctx, "volunteers", GOOD, filename="f", progress=progress)
    written = [int(await ctx.session.scalar(select(func.count()).select_from(Volunteer)))]
    # then it hears of each stage in order: reading done is not the end, writing starts at 0 and ends at all
    stages = [stage for stage, _, _ in seen]
    assert stages.index("read") < stages.index("check") < stages.index("write")
    assert ("read", 3, 3) in seen
    assert ("check", 3, 3) in seen
    assert seen[-1] == ("write", 3, 3)
    assert next(entry for entry in seen if entry[0] == "write") == ("write", 0, 3)
    assert report.created == written[0] == 3


async def test_a_parsed_file_is_written_without_reading_it_again(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a file parsed before any transaction (no caller, no database)
    parsed = await parse_import("volunteers", GOOD)
    assert (parsed.kind, parsed.header, len(parsed.rows)) == ("volunteers", ["姓名", "手机号", "志愿类型"], 3)
    # when it is imported, with the reader out of order
    from core.imports import engine

    def broken(*args: object, **kwargs: object) -> None:
        raise AssertionError("read again")

    monkeypatch.setattr(engine, "open_table", broken)
    report = await run_import(ctx, "volunteers", parsed, filename="f")
    # then its rows land
    assert report.created == 3
    # and a file parsed for another kind is refused
    with pytest.raises(DomainError) as error:
        await run_import(ctx, "communities", parsed, filename="f")
    assert error.value.code == "INVALID_INPUT"


async def test_parse_import_refuses_file_level_problems_without_a_caller() -> None:
    with pytest.raises(DomainError) as error:
        await parse_import("volunteers", GOOD, settings=Settings(import_max_rows=2))
    assert error.value.code == "TOO_LARGE"
    with pytest.raises(DomainError) as error:
        await parse_import("volunteers", GOOD, mapping={"志愿类型": "blood_type"})
    assert error.value.code == "INVALID_MAPPING"


async def test_permission_is_checked_without_the_file(ctx: ServiceContext, home_org: int) -> None:
    assert check_import_permission(ctx, "volunteers", None) == ctx.viewer.organization_id
    volunteer = ServiceContext(
        session=ctx.session, viewer=Viewer(label="v", role="volunteer", organization_id=home_org, volunteer_id=1)
    )
    with pytest.raises(DomainError) as error:
        check_import_permission(volunteer, "volunteers", None)
    assert error.value.code == "FORBIDDEN"
    with pytest.raises(DomainError) as error:
        check_import_permission(ctx, "blood_donors", None)
    assert error.value.code == "INVALID_INPUT"


async def test_ignored_columns_are_listed_up_to_a_cap_and_counted(ctx: ServiceContext) -> None:
    # given a form export with 150 columns nobody maps
    extra = [f"问题{i}" for i in range(150)]
    header = ",".join(["姓名", "手机号", "志愿类型", *extra])
    data = (header + "\n甲,13800000001,线下" + "," * 150 + "\n").encode()
    report = await run_import(ctx, "volunteers", data, filename="f", dry_run=True)
    # then the report lists the first MAX_IGNORED_REPORTED of them and counts them all
    assert report.ignored_columns == extra[:MAX_IGNORED_REPORTED]
    assert report.ignored_total == 150
