"""Importing volunteers: `run_import` of a generated 10,229-row CSV (the seed's count) against a raw COPY of the
same rows into the same table, in the same run (goal, issue 17: CSV import <= 5x the COPY). The XLSX of the
same rows is timed too and reported separately (decisions.md: parsing XLSX alone costs far more than COPY).

Every run writes into a fresh organisation (same table, same indexes, same triggers):
- COPY: asyncpg's binary COPY of rows already typed (district ids resolved, lists as arrays), in one
  transaction -- the floor: no reading, no validation, no events. As the owner: PostgreSQL refuses COPY FROM
  into a table with row-level security to a role it applies to ("use INSERT statements instead"), so the
  floor is also without row-level security (as the raw side of bench.supplies);
- CSV / XLSX: run_import from the file's bytes as an organisation administrator, commit included: reading,
  mapping, validating every row as registration does, resolving districts, the existing-phone query, the
  bulk insert, one VolunteerRegistered event per volunteer -- as the app role, row-level security applied.
Runs alternate (COPY, CSV, XLSX, COPY, ...) after a warm-up; medians are printed.

    .venv/bin/python -m bench.imports [--rows 10229] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from openpyxl import Workbook
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from bench.common import bench_database
from core.database import app_url, create_engine, create_sessionmaker
from core.imports import run_import
from core.models import Volunteer
from core.services import organizations
from core.services.context import ServiceContext, Viewer
from core.vocab import OrganizationKind

DISTRICTS = (
    "新城区", "碑林区", "莲湖区", "灞桥区", "未央区", "雁塔区", "阎良区", "临潼区", "长安区", "高陵区", "鄠邑区",
    "蓝田县", "周至县", "西咸新区", "高新区", "经开区",
)  # fmt: skip
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国文斌宇浩凯鹏辉林"
MODES = ("线上", "线下", "线下", "线下", "后备")
SKILLS = ("驾驶", "急救", "心理咨询", "护理", "外语", "搬运", "编程", "摄影", "烹饪", "手语", "法律", "会计")
TEAMS = ("配送组", "宣传", "社区联络", "物资管理", "心理支持", "招募", "培训")
HEADER = ["序号", "提交时间", "姓名", "手机号", "所在区县", "志愿类型", "技能", "团队", "最多同时任务", "经度", "纬度"]
COPY_COLUMNS = [
    "organization_id", "name", "phone", "mode", "district_id", "latitude", "longitude", "teams", "skills",
    "max_concurrent_assignments",
]  # fmt: skip
MODE_VALUES = {"线上": "online", "线下": "offline", "后备": "reserve"}
TEAM_VALUES = {
    "配送组": "delivery", "宣传": "publicity", "社区联络": "community_liaison", "物资管理": "supplies_management",
    "心理支持": "psychological_support", "招募": "recruitment", "培训": "training",
}  # fmt: skip


def generate(n: int, seed: int = 17) -> list[list[Any]]:
    """`n` form-service rows (as a form service exports them: a serial, a submission time, the answers)."""
    rng = random.Random(seed)
    phones = rng.sample(range(10**9), n)
    rows = []
    for i, suffix in enumerate(phones):
        located = rng.random() < 0.6
        rows.append(
            [
                i + 1,
                f"2022-01-{1 + i % 28:02d} {8 + i % 12:02d}:{i % 60:02d}:00",
                rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2))),
                f"1{rng.choice('3578')}{i % 10}{suffix:08d}"[:11],
                rng.choice(DISTRICTS),
                rng.choice(MODES),
                "、".join(rng.sample(SKILLS, rng.randint(0, 3))),
                rng.choice(TEAMS) if rng.random() < 0.5 else "",
                rng.choice(("", "", "2", "3", "5")),
                f"{108.7 + rng.random() * 0.5:.6f}" if located else "",
                f"{34.1 + rng.random() * 0.3:.6f}" if located else "",
            ]
        )
    return rows


def as_csv(rows: list[list[Any]]) -> bytes:
    import csv

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8-sig")


def as_xlsx(rows: list[list[Any]]) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(HEADER)
    for row in rows:
        # Phones as numbers, as Excel keeps them when typed in.
        sheet.append([*row[:3], int(row[3]), *row[4:]])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def typed(rows: list[list[Any]], districts: dict[str, int], org: int) -> list[tuple[Any, ...]]:
    """The same rows as the table stores them, for COPY."""
    return [
        (
            org,
            r[2],
            r[3],
            MODE_VALUES[r[5]],
            districts[r[4]],
            float(r[10]) if r[10] else None,
            float(r[9]) if r[9] else None,
            [TEAM_VALUES[r[7]]] if r[7] else [],
            r[6].split("、") if r[6] else [],
            int(r[8]) if r[8] else 3,
        )
        for r in rows
    ]


class Bench:
    def __init__(
        self, engine: AsyncEngine, owner: AsyncEngine, rows: list[list[Any]], districts: dict[str, int]
    ) -> None:
        self.engine = engine
        self.owner = owner
        self.sessions: async_sessionmaker[Any] = create_sessionmaker(engine)
        self.rows = rows
        self.districts = districts
        self.serial = 0

    async def organization(self) -> int:
        self.serial += 1
        async with self.sessions() as session, session.begin():
            ctx = ServiceContext(session=session, viewer=Viewer(label="bench setup", role="platform_admin"))
            org = await organizations.create_organization(
                ctx, name=f"导入测试机构 {self.serial}", kind=OrganizationKind.ASSOCIATION
            )
            return int(org.id)

    def admin(self, org: int) -> Viewer:
        return Viewer(label="bench admin", role="organization_admin", organization_id=org)

    async def count(self, org: int) -> int:
        async with self.sessions() as session, session.begin():
            ServiceContext(session=session, viewer=self.admin(org))
            stmt = select(func.count()).select_from(Volunteer).where(Volunteer.organization_id == org)
            return int(await session.scalar(stmt) or 0)

    async def copy(self) -> float:
        org = await self.organization()
        records = typed(self.rows, self.districts, org)
        start = time.perf_counter()
        async with self.owner.begin() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            await raw.copy_records_to_table("volunteers", records=records, columns=COPY_COLUMNS)
        elapsed = time.perf_counter() - start
        assert await self.count(org) == len(self.rows)
        return elapsed

    async def imported(self, data: bytes) -> float:
        org = await self.organization()
        start = time.perf_counter()
        async with self.sessions() as session, session.begin():
            ctx = ServiceContext(session=session, viewer=self.admin(org))
            report = await run_import(ctx, "volunteers", data, filename="volunteers")
        elapsed = time.perf_counter() - start
        assert (report.created, report.rejected) == (len(self.rows), []), (report.created, report.rejected[:3])
        assert await self.count(org) == len(self.rows)
        return elapsed


async def measure(rows_count: int, runs: int) -> None:
    rows = generate(rows_count)
    csv_data, xlsx_data = as_csv(rows), as_xlsx(rows)
    print(f"{rows_count} volunteers: CSV {len(csv_data) / 1e6:.2f} MB, XLSX {len(xlsx_data) / 1e6:.2f} MB")
    async with bench_database("ysg_bench_imports") as owner_url:
        owner = create_engine(owner_url, pool_size=1)
        async with owner.begin() as conn:
            for name in DISTRICTS:
                await conn.execute(text("INSERT INTO districts (name, kind) VALUES (:n, 'district')"), {"n": name})
            districts = dict((await conn.execute(text("SELECT name, id FROM districts"))).all())
        # The imports as the app role: row-level security applies to them.
        engine = create_engine(app_url(owner_url), pool_size=2)
        try:
            bench = Bench(engine, owner, rows, districts)
            cases: dict[str, Callable[[], Awaitable[float]]] = {
                "COPY": bench.copy,
                "CSV import": lambda: bench.imported(csv_data),
                "XLSX import": lambda: bench.imported(xlsx_data),
            }
            for run in cases.values():  # warm-up: caches, plans, imports of modules
                await run()
            times: dict[str, list[float]] = {name: [] for name in cases}
            for _ in range(runs):
                for name, run in cases.items():
                    times[name].append(await run())
        finally:
            await engine.dispose()
            await owner.dispose()
    copy = statistics.median(times["COPY"])
    for name, samples in times.items():
        median = statistics.median(samples)
        ratio = "" if name == "COPY" else f"  {median / copy:5.2f}x COPY"
        spread = f"(min {min(samples):.3f} s, max {max(samples):.3f} s)"
        print(f"{name:12s} median {median:7.3f} s  {rows_count / median:9.0f} rows/s  {spread}{ratio}")
    goal = statistics.median(times["CSV import"]) / copy
    print(f"CSV import / COPY = {goal:.2f}x (goal <= 5x: {'met' if goal <= 5 else 'NOT met'}); XLSX reported apart")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_229)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(measure(args.rows, args.runs))


if __name__ == "__main__":
    main()
