"""Importing volunteers (core.imports.volunteers through run_import): every kind of bad row reported by row,
column and code; good rows land; re-import is a no-op; dry run writes nothing; permissions and isolation."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import func, select

from core.errors import DomainError
from core.imports import run_import
from core.models import Volunteer
from core.services.context import ServiceContext, Viewer
from tests.factories import Factory

HEADER = "姓名,手机号,所在区县,志愿类型,技能,团队,最多同时任务,备注\n"


def csv(*lines: str, header: str = HEADER) -> bytes:
    return (header + "\n".join(lines) + "\n").encode()


async def count(ctx: ServiceContext, org: int) -> int:
    return int(
        await ctx.session.scalar(select(func.count()).select_from(Volunteer).where(Volunteer.organization_id == org))
    )


@pytest.fixture
async def district(make: Factory) -> int:
    return (await make.district("雁塔区")).id


async def test_good_rows_land_with_every_field(ctx: ServiceContext, district: int, home_org: int) -> None:
    # given a form-service export with Chinese headers and values
    data = csv(
        "张三,138 1234 5678,雁塔区,线下,驾驶、急救,配送组,5,老志愿者", "Li Si,+86 13912345678,雁塔,online,,宣传,,"
    )
    # when it is imported
    report = await run_import(ctx, "volunteers", data, filename="v.csv")
    await ctx.session.commit()
    # then both rows are created with the values registration would store
    assert (report.rows_read, report.created, report.updated, report.rejected, report.duplicates) == (2, 2, 0, [], [])
    assert report.ignored_columns == ["备注"]
    rows = {v.phone: v for v in (await ctx.session.scalars(select(Volunteer))).all()}
    zhang = rows["13812345678"]
    assert (zhang.name, zhang.mode, zhang.district_id, zhang.skills, zhang.teams, zhang.max_concurrent_assignments) == (
        "张三",
        "offline",
        district,
        ["驾驶", "急救"],
        ["delivery"],
        5,
    )
    li = rows["13912345678"]
    assert (li.mode, li.district_id, li.teams, li.max_concurrent_assignments, li.organization_id) == (
        "online",
        district,
        ["publicity"],
        3,
        home_org,
    )


async def test_every_bad_row_is_named_and_nothing_of_it_is_written(
    ctx: ServiceContext, district: int, home_org: int
) -> None:
    # given a file with one good row and one of each kind of bad row
    data = csv(
        "好人,13800000001,雁塔区,线下,,,,",
        "坏电话,12345,雁塔区,线下,,,,",  # row 3: bad phone
        "无此区,13800000003,火星区,线下,,,,",  # row 4: unknown district
        "重复,13800000001,雁塔区,线上,,,,",  # row 5: duplicate phone inside the file
        ",13800000005,雁塔区,线下,,,,",  # row 6: empty required cell
        "飞行员,13800000006,雁塔区,飞行员,,,,",  # row 7: wrong value of a choice
        "数字,13800000007,雁塔区,线下,,,abc,",  # row 8: wrong type
        "多错,1,火星区,,,,,",  # row 9: several problems at once
    )
    # when it is imported
    report = await run_import(ctx, "volunteers", data, filename="bad.csv")
    await ctx.session.commit()
    # then the good row lands and each problem is named by row, column and code
    assert report.created == 1
    got = {(i.row, i.column, i.code) for i in report.rejected}
    assert got == {
        (3, "手机号", "INVALID_PHONE"),
        (4, "所在区县", "NOT_FOUND"),
        (6, "姓名", "REQUIRED"),
        (7, "志愿类型", "INVALID_INPUT"),
        (8, "最多同时任务", "INVALID_INPUT"),
        (9, "手机号", "INVALID_PHONE"),
        (9, "所在区县", "NOT_FOUND"),
        (9, "志愿类型", "REQUIRED"),
    }
    assert {(i.row, i.column, i.code) for i in report.duplicates} == {(5, "手机号", "DUPLICATE_ROW")}
    assert all(i.message for i in report.rejected)
    # and nothing of a rejected row is in the database
    phones = set((await ctx.session.scalars(select(Volunteer.phone))).all())
    assert phones == {"13800000001"}


async def test_reimport_changes_nothing_and_a_changed_row_updates(ctx: ServiceContext, district: int) -> None:
    # given a file imported once
    data = csv("张三,13812345678,雁塔区,线下,驾驶,配送,5,", "李四,13912345678,,线上,,,,")
    await run_import(ctx, "volunteers", data, filename="v.csv")
    await ctx.session.commit()
    before = dict((await ctx.session.execute(select(Volunteer.phone, Volunteer.updated_at))).all())
    # when the same file is imported again
    again = await run_import(ctx, "volunteers", data, filename="v.csv")
    await ctx.session.commit()
    # then nothing is created or updated, and no record's updated_at moved
    assert (again.created, again.updated, again.unchanged, again.rejected) == (0, 0, 2, [])
    ctx.session.expire_all()
    assert dict((await ctx.session.execute(select(Volunteer.phone, Volunteer.updated_at))).all()) == before
    # when a file changes one field of one volunteer (an empty optional cell keeps the stored value)
    changed = csv("张三,13812345678,雁塔区,线上,,,5,", "李四,13912345678,,线上,,,,")
    report = await run_import(ctx, "volunteers", changed, filename="v.csv")
    await ctx.session.commit()
    # then exactly that volunteer is updated
    assert (report.created, report.updated, report.unchanged) == (0, 1, 1)
    ctx.session.expire_all()
    zhang = await ctx.session.scalar(select(Volunteer).where(Volunteer.phone == "13812345678"))
    assert zhang is not None
    assert (zhang.mode, zhang.skills, zhang.teams) == ("online", ["驾驶"], ["delivery"])
    assert zhang.updated_at != before["13812345678"]
    li_after = await ctx.session.scalar(select(Volunteer.updated_at).where(Volunteer.phone == "13912345678"))
    assert li_after == before["13912345678"]


async def test_dry_run_reports_and_writes_nothing(
    ctx: ServiceContext, make: Factory, district: int, home_org: int
) -> None:
    # given one volunteer registered already
    await make.volunteer(phone="13812345678", name="张三")
    data = csv("张三改,13812345678,雁塔区,线下,,,,", "新人,13912345678,雁塔区,线下,,,,", "坏,1,雁塔区,线下,,,,")
    # when the file is imported as a dry run
    report = await run_import(ctx, "volunteers", data, filename="v.csv", dry_run=True)
    await ctx.session.commit()
    # then the report says what would happen, and nothing happened
    assert (report.dry_run, report.created, report.updated, len(report.rejected)) == (True, 1, 1, 1)
    ctx.session.expire_all()
    assert await count(ctx, home_org) == 1
    assert await ctx.session.scalar(select(Volunteer.name)) == "张三"


async def test_created_volunteers_publish_registration_events(ctx: ServiceContext, district: int) -> None:
    # given a context whose events are recorded
    heard: list[object] = []

    class Recorder:
        async def publish(self, event: object, ctx: ServiceContext) -> None:
            heard.append(event)

    recording = dataclasses.replace(ctx, events=Recorder())
    # when two volunteers are imported
    await run_import(recording, "volunteers", csv("甲,13800000001,,线下,,,,", "乙,13800000002,,线上,,,,"), filename="v")
    # then each is announced as registration announces it
    assert sorted((e.name, e.mode) for e in heard) == [  # type: ignore[attr-defined]
        ("volunteer.registered", "offline"),
        ("volunteer.registered", "online"),
    ]
    # and a dry run announces nothing
    heard.clear()
    await run_import(recording, "volunteers", csv("丙,13800000003,,线下,,,,"), filename="v", dry_run=True)
    assert heard == []


async def test_another_organisations_admin_cannot_import_into_yours(
    ctx: ServiceContext, make: Factory, home_org: int
) -> None:
    # given an administrator of another organisation
    other = await make.organization_using("supplies", name="别的机构")
    outsider = ServiceContext(
        session=ctx.session, viewer=Viewer(label="outsider", role="organization_admin", organization_id=other.id)
    )
    # when they import into this organisation
    with pytest.raises(DomainError) as refused:
        await run_import(
            outsider, "volunteers", csv("甲,13800000001,,线下,,,,"), filename="v", organization_id=home_org
        )
    # then they are refused and nothing is written
    assert refused.value.code == "FORBIDDEN"
    await ctx.session.rollback()
    assert await count(ctx, home_org) == 0
    # and into their own organisation the rows land there, not in yours
    mine = await run_import(outsider, "volunteers", csv("乙,13800000002,,线下,,,,"), filename="v")
    await ctx.session.commit()
    assert mine.created == 1
    assert await count(ctx, home_org) == 0


async def test_a_volunteer_account_is_forbidden(ctx: ServiceContext, home_org: int) -> None:
    volunteer = ServiceContext(
        session=ctx.session, viewer=Viewer(label="v", role="volunteer", organization_id=home_org, volunteer_id=1)
    )
    with pytest.raises(DomainError) as refused:
        await run_import(volunteer, "volunteers", csv("甲,13800000001,,线下,,,,"), filename="v")
    assert refused.value.code == "FORBIDDEN"


async def test_the_same_import_as_xlsx_keeps_numeric_phones(ctx: ServiceContext, district: int, tmp_path) -> None:
    from openpyxl import Workbook

    # given an Excel sheet where the phone was typed as a number
    book = Workbook()
    sheet = book.active
    sheet.append(["姓名", "手机号码*", "所在区县", "志愿者类型", "最多同时任务"])
    sheet.append(["张三", 13812345678, "雁塔区", "线下", 4])
    sheet.append(["李四", 13912345678.0, None, "online", None])
    path = tmp_path / "v.xlsx"
    book.save(path)
    # when it is imported from the path
    report = await run_import(ctx, "volunteers", path, filename="v.xlsx")
    await ctx.session.commit()
    # then the phones are the numbers as typed
    assert (report.created, report.rejected) == (2, [])
    assert set((await ctx.session.scalars(select(Volunteer.phone))).all()) == {"13812345678", "13912345678"}
    assert report.mapping["手机号码*"] == "phone"


async def test_concurrent_imports_of_one_phone_create_it_once(
    make: Factory, ctx: ServiceContext, db_url: object, clock: object, home_org: int
) -> None:
    from tests.concurrency import Racer, rounds

    # given two coordinators importing, at the same moment, files of 200 numbers each that share one number
    async def round_(racer: Racer, n: int) -> None:
        shared = f"1590000{n:04d}"

        async def work(worker: ServiceContext, i: int) -> tuple[int, int, list[str]]:
            own = [f"乙{i}-{k},13{6 + i}{n:04d}{k:04d},,线下,,,," for k in range(200)]
            data = csv(f"甲{i},{shared},,线下,,,,", *own)
            report = await run_import(worker, "volunteers", data, filename="v")
            return report.created, report.updated + report.unchanged, [d.code for d in report.duplicates]

        outcomes = await racer.race(work, viewer=make.ctx.viewer)
        # then neither import fails on the unique key: the shared number is created once, and the other
        # import skips it as existing (its transactions overlapped) or finds it and updates it (they did not)
        assert sum(created for created, _, _ in outcomes) == 2 * 200 + 1
        assert sorted((found, codes) for _, found, codes in outcomes) in (
            [(0, []), (0, ["ALREADY_EXISTS"])],
            [(0, []), (1, [])],
        )

    async with Racer.open(db_url, workers=2, clock=clock) as racer:  # type: ignore[arg-type]
        for n in range(rounds(3)):
            await round_(racer, n)
    assert await count(ctx, home_org) == rounds(3) * 401


async def test_rows_are_checked_off_the_event_loop(
    ctx: ServiceContext, district: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a record of which thread checks the rows
    import threading

    from core.imports import volunteers

    threads: list[threading.Thread] = []
    real = volunteers.clean_volunteer

    def recording(*args: object, **kwargs: object) -> object:
        threads.append(threading.current_thread())
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(volunteers, "clean_volunteer", recording)
    # when two rows are imported, one of them bad
    report = await run_import(ctx, "volunteers", csv("甲,13800000001,雁塔区,线下,,,,", "乙,12,,线下,,,,"), filename="v")
    # then the rows were checked, in a worker thread, not on the loop's; messages still in the caller's terms
    assert report.created == 1
    assert {issue.row for issue in report.rejected} == {3}
    assert len(threads) == 2
    assert threading.main_thread() not in threads
