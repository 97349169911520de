"""Importing communities (core.imports.communities through run_import): every kind of bad row reported by row,
column and code; good rows land; a known community is updated or unchanged; re-import is a no-op; dry run
writes nothing; permission and isolation."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.errors import DomainError
from core.imports import run_import
from core.models import Community
from core.services.context import ServiceContext, Viewer
from tests.factories import Factory

HEADER = "社区名称,所在区县,地址,负责人,负责人电话,纬度,经度,户数\n"


def csv(*lines: str, header: str = HEADER) -> bytes:
    return (header + "\n".join(lines) + "\n").encode()


async def count(ctx: ServiceContext) -> int:
    return int(await ctx.session.scalar(select(func.count()).select_from(Community)) or 0)


@pytest.fixture
async def districts(make: Factory) -> dict[str, int]:
    return {name: (await make.district(name)).id for name in ("碑林区", "雁塔区")}


def issues(items: list) -> list[tuple[int, str | None, str | None, str]]:
    return sorted((i.row, i.column, i.field, i.code) for i in items)


async def test_good_rows_land_and_each_bad_row_is_named(ctx: ServiceContext, districts: dict[str, int]) -> None:
    # given a sheet with good rows and one of every kind of bad row
    data = csv(
        "粉巷社区,碑林区,粉巷5号,王主任,029-88881234,34.25,108.94,1200",
        "大雁塔社区,雁塔,雁塔路1号,,,,,",  # the district without its suffix
        "火星社区,火星区,,,,,,",  # unknown district
        ",碑林区,,,,,,",  # empty required cell
        "坏电话社区,碑林区,,张三,12345,,,",  # bad phone
        "坏坐标社区,碑林区,,,,北纬34度,108.9,",  # wrong type
        "半坐标社区,碑林区,,,,34.2,,",  # latitude without longitude
        "粉巷社区,碑林区,又一行,,,,,",  # the same (district, name) as row 2
    )
    # when it is imported
    report = await run_import(ctx, "communities", data, filename="c.csv")
    await ctx.session.commit()
    # then the good rows land, and the report names each bad one by row, column and code
    assert (report.rows_read, report.created, report.updated, report.unchanged) == (8, 2, 0, 0)
    assert issues(report.rejected) == [
        (4, "所在区县", "district", "NOT_FOUND"),
        (5, "社区名称", "name", "REQUIRED"),
        (6, "负责人电话", "head_phone", "INVALID_PHONE"),
        (7, "纬度", "latitude", "INVALID_INPUT"),
        (8, "经度", "longitude", "REQUIRED"),
    ]
    assert issues(report.duplicates) == [(9, "社区名称", "name", "DUPLICATE_ROW")]
    assert report.ignored_columns == ["户数"]  # an extra column: reported, not an error
    rows = {c.name: c for c in (await ctx.session.scalars(select(Community))).all()}
    assert set(rows) == {"粉巷社区", "大雁塔社区"}
    fenxiang = rows["粉巷社区"]
    assert (fenxiang.district_id, fenxiang.street, fenxiang.head_phone, fenxiang.latitude) == (
        districts["碑林区"],
        "粉巷5号",
        "029-88881234",
        34.25,
    )
    assert rows["大雁塔社区"].district_id == districts["雁塔区"]


async def test_reimport_is_a_no_op_and_a_changed_cell_updates(ctx: ServiceContext, districts: dict[str, int]) -> None:
    data = csv("粉巷社区,碑林区,粉巷5号,王主任,029-88881234,,,")
    await run_import(ctx, "communities", data, filename="c.csv")
    await ctx.session.commit()
    before = (await ctx.session.scalars(select(Community))).one()
    stamp = before.updated_at
    # when the same file is imported again
    again = await run_import(ctx, "communities", data, filename="c.csv")
    await ctx.session.commit()
    # then nothing changes
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
    ctx.session.expire_all()
    assert (await ctx.session.scalars(select(Community))).one().updated_at == stamp
    # when a cell changes (and another is left empty)
    changed = await run_import(ctx, "communities", csv("粉巷社区,碑林区,粉巷7号,,,,,"), filename="c.csv")
    await ctx.session.commit()
    # then that field is updated and the empty one keeps its value
    assert (changed.created, changed.updated) == (0, 1)
    ctx.session.expire_all()
    row = (await ctx.session.scalars(select(Community))).one()
    assert (row.street, row.head_name) == ("粉巷7号", "王主任")


async def test_dry_run_writes_nothing(ctx: ServiceContext, districts: dict[str, int]) -> None:
    report = await run_import(ctx, "communities", csv("粉巷社区,碑林区,,,,,,"), filename="c.csv", dry_run=True)
    await ctx.session.commit()
    assert (report.dry_run, report.created) == (True, 1)
    assert await count(ctx) == 0


async def test_an_english_header_is_recognised(ctx: ServiceContext, districts: dict[str, int]) -> None:
    data = csv("Fenxiang,碑林区,Lane 5", header="Community Name,District,Address\n")
    report = await run_import(ctx, "communities", data, filename="c.csv")
    assert (report.created, report.mapping) == (
        1,
        {"Community Name": "name", "District": "district", "Address": "street"},
    )


@pytest.mark.parametrize("role", ["volunteer", "social_worker", "community_head", "counselor"])
async def test_roles_without_communities_manage_are_forbidden(
    ctx: ServiceContext, districts: dict[str, int], home_org: int, role: str
) -> None:
    caller = ServiceContext(session=ctx.session, viewer=Viewer(label="x", role=role, organization_id=home_org))
    with pytest.raises(DomainError) as refused:
        await run_import(caller, "communities", csv("粉巷社区,碑林区,,,,,,"), filename="c.csv")
    assert refused.value.code == "FORBIDDEN"


async def test_another_organisations_administrator_cannot_import_into_ours(
    ctx: ServiceContext, make: Factory, districts: dict[str, int], home_org: int
) -> None:
    other = await make.organization_using("counseling", "别的机构")
    caller = ServiceContext(
        session=ctx.session, viewer=Viewer(label="b", role="organization_admin", organization_id=other.id)
    )
    with pytest.raises(DomainError) as refused:
        await run_import(
            caller, "communities", csv("粉巷社区,碑林区,,,,,,"), filename="c.csv", organization_id=home_org
        )
    assert refused.value.code == "FORBIDDEN"
    await ctx.session.rollback()
    ServiceContext(session=ctx.session, viewer=ctx.viewer)  # the session acts for the platform admin again
    assert await count(ctx) == 0


async def test_an_administrator_imports_into_their_own_organisation_only(
    ctx: ServiceContext, make: Factory, districts: dict[str, int], home_org: int
) -> None:
    # given a community of ours with the same name as the one another organisation imports
    await make.community(name="粉巷社区", district=await _district(ctx, districts["碑林区"]))
    other = await make.organization_using("counseling", "别的机构")
    caller = ServiceContext(
        session=ctx.session, viewer=Viewer(label="b", role="organization_admin", organization_id=other.id)
    )
    # when their administrator imports it
    report = await run_import(caller, "communities", csv("粉巷社区,碑林区,别处,,,,,"), filename="c.csv")
    await ctx.session.commit()
    # then it is a new community of theirs; ours is untouched
    ServiceContext(session=ctx.session, viewer=ctx.viewer)  # the session acts for the platform admin again
    assert (report.created, report.updated) == (1, 0)
    rows = (await ctx.session.scalars(select(Community).order_by(Community.id))).all()
    assert [(r.organization_id, r.street) for r in rows] == [(home_org, ""), (other.id, "别处")]


async def _district(ctx: ServiceContext, district_id: int) -> object:
    from core.models import District

    return await ctx.session.get(District, district_id)


async def test_concurrent_imports_of_one_community_create_it_once(
    make: Factory, ctx: ServiceContext, districts: dict[str, int], db_url: object, clock: object
) -> None:
    from tests.concurrency import Racer, rounds

    # given two coordinators importing, at the same moment, files of 100 communities each that share one
    async def round_(racer: Racer, n: int) -> None:
        async def work(worker: ServiceContext, i: int) -> tuple[int, int, list[str]]:
            own = [f"社区{n}-{i}-{k},碑林区,,,,,," for k in range(100)]
            report = await run_import(worker, "communities", csv(f"共同社区{n},碑林区,,,,,,", *own), filename="c")
            return report.created, report.unchanged, [d.code for d in report.duplicates]

        outcomes = await racer.race(work, viewer=make.ctx.viewer)
        # then neither import fails on the unique key: the shared community is created once, and the other
        # import reports it as created meanwhile (their transactions overlapped) or finds it (they did not)
        assert sum(created for created, _, _ in outcomes) == 2 * 100 + 1
        assert sorted((found, codes) for _, found, codes in outcomes) in (
            [(0, []), (0, ["ALREADY_EXISTS"])],
            [(0, []), (1, [])],
        )

    async with Racer.open(db_url, workers=2, clock=clock) as racer:  # type: ignore[arg-type]
        for n in range(rounds(3)):
            await round_(racer, n)
    assert await count(ctx) == rounds(3) * 201
