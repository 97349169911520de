"""Importing help requests (core.imports.requests through run_import): each row submitted as `submit` does
(history, events, the probable-duplicate flag), every kind of bad row reported by row, column and code; a row
is a duplicate only when it is the same row (twice in the file, or imported before: re-import creates nothing,
even after the requests closed); dry run writes nothing; permission and isolation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from core import events
from core.errors import DomainError
from core.imports import run_import
from core.models import HelpRequest, HelpRequestStatusChange
from core.services.context import ServiceContext, Viewer
from tests.factories import Factory

HEADER = "社区,所在区县,需求标题,需求类别,紧急程度,求助人,联系电话,人数,截止时间,人群,健康状况,问卷编号\n"


def csv(*lines: str, header: str = HEADER) -> bytes:
    return (header + "\n".join(lines) + "\n").encode()


@dataclass
class Recorder:
    seen: list[Any] = field(default_factory=list)

    async def publish(self, event: Any, ctx: ServiceContext) -> None:
        self.seen.append(event)


async def count(ctx: ServiceContext, model: Any = HelpRequest) -> int:
    return int(await ctx.session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
async def places(make: Factory) -> dict[str, int]:
    beilin, yanta = await make.district("碑林区"), await make.district("雁塔区")
    return {
        "粉巷": (await make.community(district=beilin, name="粉巷社区")).id,
        "新村碑林": (await make.community(district=beilin, name="新村社区")).id,
        "新村雁塔": (await make.community(district=yanta, name="新村社区")).id,
    }


def issues(items: list) -> list[tuple[int, str | None, str | None, str]]:
    return sorted((i.row, i.column, i.field, i.code) for i in items)


async def test_good_rows_are_submitted_and_each_bad_row_is_named(
    ctx: ServiceContext, places: dict[str, int], clock: Any
) -> None:
    # given a request form's export with good rows and one of every kind of bad row
    tomorrow = (clock.now + timedelta(days=1)).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    past = (clock.now - timedelta(days=1)).strftime("%Y-%m-%d")
    data = csv(
        f"粉巷社区,,30名结核病患者断药,药品,特急,王主任,029-88881234,30,{tomorrow},慢性病患者、老人,肺结核,Q1",
        "新村社区,雁塔区,独居老人买菜,food,normal,李奶奶,13912345678,,,老人,,Q2",
        "火星社区,,买药,药品,紧急,张三,13700000001,,,,,Q3",  # unknown community
        "新村社区,,买药,药品,紧急,张三,13700000002,,,,,Q4",  # two communities of that name, no district
        "粉巷社区,火星区,买药,药品,紧急,张三,13700000003,,,,,Q5",  # unknown district
        "粉巷社区,,,药品,紧急,张三,13700000004,,,,,Q6",  # empty required cell
        "粉巷社区,,买药,药品,紧急,张三,12345,,,,,Q7",  # bad phone
        "粉巷社区,,买药,飞行,紧急,张三,13700000005,,,,,Q8",  # not a category
        "粉巷社区,,买药,药品,紧急,张三,13700000006,三十,,,,Q9",  # not a number
        f"粉巷社区,,买药,药品,紧急,张三,13700000007,,{past},,,Q10",  # in the past
        "粉巷社区,,买菜,食品,一般,王二,029-88881234,,,,,Q11",  # the same requester as row 2, another need
    )
    recorder = Recorder()
    ctx.events = recorder
    ctx.zone = ZoneInfo("Asia/Shanghai")  # the caller's zone: times without an offset are read in it
    # when it is imported
    report = await run_import(ctx, "requests", data, filename="r.csv")
    await ctx.session.commit()
    # then the good rows are submitted, and the report names each bad one by row, column and code
    assert (report.rows_read, report.created, report.updated) == (11, 3, 0)
    assert issues(report.rejected) == [
        (4, "社区", "community", "NOT_FOUND"),
        (5, "社区", "community", "INVALID_INPUT"),
        (6, "所在区县", "district", "NOT_FOUND"),
        (7, "需求标题", "title", "REQUIRED"),
        (8, "联系电话", "requester_phone", "INVALID_PHONE"),
        (9, "需求类别", "category", "INVALID_INPUT"),
        (10, "人数", "beneficiaries", "INVALID_INPUT"),
        (11, "截止时间", "needed_by", "IN_PAST"),
    ]
    assert issues(report.duplicates) == []
    assert report.ignored_columns == []  # 问卷编号: the form's submission number
    # as submit would have stored them, with their history and events
    rows = {r.title: r for r in (await ctx.session.scalars(select(HelpRequest))).all()}
    tb = rows["30名结核病患者断药"]
    assert (tb.community_id, tb.category, tb.urgency, tb.beneficiaries, tb.status) == (
        places["粉巷"],
        "medicine",
        "critical",
        30,
        "submitted",
    )
    assert sorted(tb.population_tags) == ["chronic_patient", "elderly"]
    assert tb.needed_by is not None
    assert tb.needed_by.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M") == tomorrow
    assert tb.latitude is not None  # the community's location, as submit does
    assert rows["独居老人买菜"].community_id == places["新村雁塔"]
    # the same requester's other need is a request of its own, flagged as submit flags it
    assert rows["买菜"].duplicate_of_id == tb.id
    assert tb.duplicate_of_id is None
    assert await count(ctx, HelpRequestStatusChange) == 3
    assert sorted(type(e).__name__ for e in recorder.seen) == ["HelpRequestSubmitted"] * 3
    assert all(isinstance(e, events.HelpRequestSubmitted) for e in recorder.seen)


async def test_reimport_creates_nothing(ctx: ServiceContext, places: dict[str, int]) -> None:
    data = csv("粉巷社区,,买药,药品,紧急,张三,13700000001,,,,,", "粉巷社区,,买菜,食品,一般,李四,13700000002,,,,,")
    first = await run_import(ctx, "requests", data, filename="r.csv")
    await ctx.session.commit()
    again = await run_import(ctx, "requests", data, filename="r.csv")
    await ctx.session.commit()
    assert (first.created, again.created) == (2, 0)
    assert [(d.row, d.code) for d in again.duplicates] == [(2, "ALREADY_EXISTS"), (3, "ALREADY_EXISTS")]
    assert await count(ctx) == 2


async def test_reimport_after_the_requests_closed_creates_nothing(
    ctx: ServiceContext, places: dict[str, int], clock: Any
) -> None:
    # given a file imported, its requests since fulfilled, and time gone by (its deadline passed)
    tomorrow = (clock.now + timedelta(days=1)).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    data = csv(
        f"粉巷社区,,买药,药品,紧急,张三,13700000001,,{tomorrow},,,", "粉巷社区,,买菜,食品,一般,李四,13700000002,,,,,"
    )
    first = await run_import(ctx, "requests", data, filename="r.csv")
    await ctx.session.commit()
    await ctx.session.execute(update(HelpRequest).values(status="fulfilled"))
    await ctx.session.commit()
    clock.now += timedelta(days=3)
    # when the same file is imported again
    again = await run_import(ctx, "requests", data, filename="r.csv")
    await ctx.session.commit()
    # then nothing is created, and each row is reported as imported before (not as a bad deadline)
    assert (first.created, again.created, again.rejected) == (2, 0, [])
    assert [(d.row, d.code) for d in again.duplicates] == [(2, "ALREADY_EXISTS"), (3, "ALREADY_EXISTS")]
    assert await count(ctx) == 2


async def test_another_need_of_the_same_requester_is_created_and_flagged(
    ctx: ServiceContext, places: dict[str, int]
) -> None:
    # given two needs of one requester, one of them already an open request
    await run_import(ctx, "requests", csv("粉巷社区,,买药,药品,紧急,张三,13700000001,,,,,"), filename="a.csv")
    await ctx.session.commit()
    data = csv(
        "粉巷社区,,换煤气罐,生活用品,一般,张三,13700000001,,,,,", "粉巷社区,,买菜,食品,一般,张三,13700000001,,,,,"
    )
    # when the other needs are imported
    report = await run_import(ctx, "requests", data, filename="b.csv")
    await ctx.session.commit()
    # then both are created, flagged as probable duplicates of the open request, not skipped
    assert (report.created, report.duplicates) == (2, [])
    rows = {r.title: r for r in (await ctx.session.scalars(select(HelpRequest))).all()}
    assert rows["换煤气罐"].duplicate_of_id == rows["买药"].id
    assert rows["买菜"].duplicate_of_id == rows["买药"].id


async def test_a_row_is_a_duplicate_only_when_it_is_the_same_submission(
    ctx: ServiceContext, places: dict[str, int]
) -> None:
    # given a form's export where one submission appears twice (an export merged twice) and one requester
    # submitted the same words twice (two submissions: two numbers)
    data = csv(
        "粉巷社区,,买药,药品,紧急,张三,13700000001,,,,,Q1",
        "粉巷社区,,买药,药品,紧急,张三,13700000001,,,,,Q1",
        "粉巷社区,,买药,药品,紧急,张三,13700000001,,,,,Q2",
        "粉巷社区,, 买药 ,药品,紧急,张三,137 0000 0001,,,,,Q1",  # the same cells, spaced differently
    )
    # when it is imported
    report = await run_import(ctx, "requests", data, filename="r.csv")
    await ctx.session.commit()
    # then the repeated submission is a duplicate of the first; the other submission is a request of its own
    assert report.created == 2
    assert [(d.row, d.code) for d in report.duplicates] == [(3, "DUPLICATE_ROW"), (5, "DUPLICATE_ROW")]
    assert await count(ctx) == 2


async def test_a_platform_administrator_imports_into_one_organisation_unaffected_by_another(
    ctx: ServiceContext, make: Factory, places: dict[str, int], home_org: int
) -> None:
    # given an open request of our organisation for 张三, and another organisation with a community
    await run_import(ctx, "requests", csv("粉巷社区,,买药,药品,紧急,张三,13700000001,,,,,"), filename="a.csv")
    await ctx.session.commit()
    other = await make.organization_using("counseling", "别的机构")
    district = await make.district("莲湖区")
    await make.community(name="北院门社区", district=district, organization_id=other.id)
    # when a platform administrator imports 张三's request into the other organisation
    data = csv("北院门社区,,买药,药品,紧急,张三,13700000001,,,,,")
    report = await run_import(ctx, "requests", data, filename="b.csv", organization_id=other.id)
    await ctx.session.commit()
    # then it is created there, not skipped nor flagged because of our organisation's request
    assert (report.created, report.duplicates, report.rejected) == (1, [], [])
    theirs = (await ctx.session.scalars(select(HelpRequest).where(HelpRequest.organization_id == other.id))).one()
    assert theirs.duplicate_of_id is None
    # and the same row imported into our organisation is not "imported before" (the key is per organisation)
    ours = await run_import(ctx, "requests", csv("粉巷社区,,买药,药品,紧急,张三,13700000001,,,,,"), filename="c")
    assert (ours.created, [d.code for d in ours.duplicates]) == (0, ["ALREADY_EXISTS"])


async def test_concurrent_imports_of_one_file_create_each_request_once(
    make: Factory, ctx: ServiceContext, places: dict[str, int], db_url: object, clock: object
) -> None:
    from tests.concurrency import Racer, rounds

    # given two coordinators importing the same file at the same moment
    async def round_(racer: Racer, n: int) -> None:
        data = csv(*(f"粉巷社区,,买药{n}-{k},药品,紧急,张{k},1370000{n:02d}{k:02d},,,,," for k in range(20)))

        async def work(worker: ServiceContext, i: int) -> tuple[int, list[str]]:
            report = await run_import(worker, "requests", data, filename="r.csv")
            return report.created, sorted({d.code for d in report.duplicates})

        outcomes = await racer.race(work, viewer=make.ctx.viewer)
        # then neither fails on the key: each request is created once, the other import reports its rows as
        # imported before (whether it saw them at the start or met them while writing)
        assert sorted(outcomes) == [(0, ["ALREADY_EXISTS"]), (20, [])]

    async with Racer.open(db_url, workers=2, clock=clock) as racer:  # type: ignore[arg-type]
        for n in range(rounds(3)):
            await round_(racer, n)
    assert await count(ctx) == rounds(3) * 20


async def test_dry_run_writes_nothing(ctx: ServiceContext, places: dict[str, int]) -> None:
    recorder = Recorder()
    ctx.events = recorder
    data = csv("粉巷社区,,买药,药品,紧急,张三,13700000001,,,,,", "粉巷社区,,买药,药品,紧急,张三,13700000001,,,,,")
    report = await run_import(ctx, "requests", data, filename="r.csv", dry_run=True)
    await ctx.session.commit()
    assert (report.dry_run, report.created, len(report.duplicates)) == (True, 1, 1)
    assert await count(ctx) == 0
    assert recorder.seen == []


async def test_a_row_the_service_refuses_leaves_nothing(
    ctx: ServiceContext, places: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a service that refuses the second row only after writing part of it
    from core.services import help_requests

    submit = help_requests.submit

    async def refusing(c: ServiceContext, data: Any) -> Any:
        request = await submit(c, data)
        if data.title == "第二条":
            raise DomainError("INVALID_INPUT", "refused after the write", ("input", "title"))
        return request

    monkeypatch.setattr(help_requests, "submit", refusing)
    data = csv("粉巷社区,,第一条,药品,紧急,张三,13700000001,,,,,", "粉巷社区,,第二条,食品,一般,李四,13700000002,,,,,")
    # when it is imported
    report = await run_import(ctx, "requests", data, filename="r.csv")
    await ctx.session.commit()
    # then the refused row is rejected and nothing of it (request, history) stays
    assert (report.created, issues(report.rejected)) == (1, [(3, "需求标题", "title", "INVALID_INPUT")])
    assert [r.title for r in (await ctx.session.scalars(select(HelpRequest))).all()] == ["第一条"]
    assert await count(ctx, HelpRequestStatusChange) == 1


@pytest.mark.parametrize("role", ["volunteer", "counselor"])
async def test_roles_that_cannot_submit_are_forbidden(
    ctx: ServiceContext, places: dict[str, int], home_org: int, role: str
) -> None:
    caller = ServiceContext(session=ctx.session, viewer=Viewer(label="x", role=role, organization_id=home_org))
    with pytest.raises(DomainError) as refused:
        await run_import(caller, "requests", csv("粉巷社区,,买药,药品,紧急,张三,13700000001,,,,,"), filename="r.csv")
    assert refused.value.code == "FORBIDDEN"


async def test_another_organisation_cannot_import_into_ours(
    ctx: ServiceContext, make: Factory, places: dict[str, int], home_org: int
) -> None:
    other = await make.organization_using("counseling", "别的机构")
    data = csv("粉巷社区,,买药,药品,紧急,张三,13700000001,,,,,")
    for role in ("organization_admin", "social_worker"):
        caller = ServiceContext(session=ctx.session, viewer=Viewer(label="b", role=role, organization_id=other.id))
        with pytest.raises(DomainError) as refused:
            await run_import(caller, "requests", data, filename="r.csv", organization_id=home_org)
        assert refused.value.code == "FORBIDDEN", role
        await ctx.session.rollback()
    # and importing into their own organisation finds none of our communities
    caller = ServiceContext(
        session=ctx.session, viewer=Viewer(label="b", role="organization_admin", organization_id=other.id)
    )
    report = await run_import(caller, "requests", data, filename="r.csv")
    assert (report.created, issues(report.rejected)) == (0, [(2, "社区", "community", "NOT_FOUND")])
    await ctx.session.rollback()
    ServiceContext(session=ctx.session, viewer=ctx.viewer)  # the session acts for the platform admin again
    assert await count(ctx) == 0


async def test_a_community_head_imports_for_their_own_community_only(
    ctx: ServiceContext, places: dict[str, int], home_org: int
) -> None:
    head = Viewer(label="head", role="community_head", organization_id=home_org, community_id=places["粉巷"])
    caller = ServiceContext(session=ctx.session, viewer=head)
    data = csv("粉巷社区,,买药,药品,紧急,张三,13700000001,,,,,", "新村社区,碑林区,买菜,食品,一般,李四,13700000002,,,,,")
    report = await run_import(caller, "requests", data, filename="r.csv")
    assert (report.created, issues(report.rejected)) == (1, [(3, "社区", "community", "NOT_FOUND")])


async def test_a_form_without_a_title_column_takes_the_description_s_first_words(
    ctx: ServiceContext, places: dict[str, int]
) -> None:
    # given a request form that asks only for a description (no title column), one row without either
    header = "社区,所在区县,求助内容,需求类别,紧急程度,求助人,联系电话\n"
    long = "家中老人需要降压药硝苯地平缓释片，每天两次，已经断药两天，请尽快送到小区门口，联系电话同上"
    data = csv(
        f"粉巷社区,碑林区,{long},药品,特急,张三,13800001111",
        "粉巷社区,碑林区,,药品,特急,李四,13800002222",
        header=header,
    )
    # when it is imported
    report = await run_import(ctx, "requests", data, filename="form.csv")
    # then the request is titled by its description's first words, and the row with neither is refused on the title
    assert (report.created, issues(report.rejected)) == (1, [(3, None, "title", "REQUIRED")])
    request = await ctx.session.scalar(select(HelpRequest).where(HelpRequest.requester_name == "张三"))
    assert request is not None
    assert request.description == long
    assert request.title == long[:29] + "…"


def xlsx(header: str, *rows: list[object]) -> bytes:
    import io

    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(header.strip().split(","))
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def test_the_same_rows_as_xlsx_in_other_words_are_imported_before(
    ctx: ServiceContext, places: dict[str, int], clock: Any
) -> None:
    from datetime import datetime

    # given a form's rows (no submission number) imported from CSV, a deadline written as a sheet's text
    ctx.zone = ZoneInfo("Asia/Shanghai")
    due = (clock.now + timedelta(days=2)).astimezone(ctx.zone).replace(minute=0, second=0, tzinfo=None)
    header = "社区,所在区县,需求标题,需求类别,紧急程度,求助人,联系电话,截止时间,详情\n"
    first = await run_import(
        ctx,
        "requests",
        csv(
            f"粉巷社区,,买降压药,药品,紧急,张三,13812345678,{due.year}/{due.month}/{due.day} {due:%H:%M},降压药 两盒",
            "粉巷社区,,买菜,食品,一般,李四,029-88881234,,",
            header=header,
        ),
        filename="form.csv",
    )
    await ctx.session.commit()
    # when the same rows come again as XLSX: a date cell, other words for the category and urgency, the phone
    # spaced, the description without its space
    again = await run_import(
        ctx,
        "requests",
        xlsx(
            header,
            ["粉巷社区", "碑林区", "买降压药", "买药", "急", "张三", "138 1234 5678", due, "降压药两盒"],
            ["粉巷社区", None, "买菜", "food", "普通", "李四", "(029)88881234", None, None],
        ),
        filename="form.xlsx",
    )
    await ctx.session.commit()
    # then nothing is created: each row was imported before
    assert isinstance(due, datetime)
    assert (first.created, first.rejected, again.created, again.rejected) == (2, [], 0, [])
    assert [(d.row, d.code) for d in again.duplicates] == [(2, "ALREADY_EXISTS"), (3, "ALREADY_EXISTS")]
    assert await count(ctx) == 2


async def test_a_submission_corrected_since_is_the_row_imported_before(
    ctx: ServiceContext, places: dict[str, int]
) -> None:
    # given a form's export with submission numbers, imported
    data = csv("粉巷社区,,买药,药品,紧急,张三,13700000001,,,,,Q1", "粉巷社区,,买菜,食品,一般,李四,13700000002,,,,,Q2")
    first = await run_import(ctx, "requests", data, filename="a.csv")
    await ctx.session.commit()
    # when the export is downloaded again after submissions were corrected (a word, the urgency, a count) and
    # one added, and row 1 of another form (its numbers restart) is another requester's
    data = csv(
        "粉巷社区,,买降压药,药品,特急,张三,13700000001,2,,,,Q1",
        "粉巷社区,,买菜,食品,一般,李四,13700000002,,,,,Q2",
        "粉巷社区,,买米,食品,一般,王五,13700000003,,,,,Q3",
    )
    again = await run_import(ctx, "requests", data, filename="b.csv")
    other_form = await run_import(
        ctx, "requests", csv("粉巷社区,,买药,药品,紧急,赵六,13700000004,,,,,Q1"), filename="c.csv"
    )
    await ctx.session.commit()
    # then only the new submission and the other form's row are created
    assert (first.created, again.created, other_form.created) == (2, 1, 1)
    assert [(d.row, d.code) for d in again.duplicates] == [(2, "ALREADY_EXISTS"), (3, "ALREADY_EXISTS")]
    assert await count(ctx) == 4
