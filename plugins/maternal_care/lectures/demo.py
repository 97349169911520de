"""The lectures' part of the demo, in the spirit of the seed: the platform invited an obstetrician to give an
online lecture, "self-care for pregnant women at home during the epidemic", to the expectant mothers of the
communities it served. Runs after the registry's demo (its mothers register); a small capacity shows a waitlist.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from sqlalchemy import select

import core
from core.models import Account
from plugins.maternal_care.lectures import services
from plugins.maternal_care.lectures.models import Lecture
from plugins.maternal_care.models import Mother


async def load(ctx: core.ServiceContext) -> None:
    admin = await ctx.session.scalar(select(Account).where(Account.username == "orgadmin"))
    worker = await ctx.session.scalar(select(Account).where(Account.username == "socialworker"))
    if admin is None or worker is None or admin.organization_id != worker.organization_id:
        return
    if await ctx.session.scalar(select(Lecture.id).where(Lecture.organization_id == admin.organization_id).limit(1)):
        return  # loaded already
    viewer = core.Viewer(
        label=admin.display_name,
        account_id=admin.id,
        organization_id=admin.organization_id,
        role="organization_admin",
        extra_permissions=frozenset({services.LECTURES, services.MANAGE}),
    )
    try:
        await _load(dataclasses.replace(ctx, viewer=viewer, memo={}))
    finally:
        dataclasses.replace(ctx)  # the demo goes on as its own caller


async def _load(ctx: core.ServiceContext) -> None:
    start = (ctx.now() + timedelta(days=3)).replace(hour=11, minute=0, second=0, microsecond=0)  # 19:00 Shanghai
    pregnant = await services.create_lecture(
        ctx,
        services.LectureInput(
            title="疫情期间孕妇居家自我保健",
            speaker="市妇幼保健院 产科 王主任医师",
            starts_at=start,
            ends_at=start + timedelta(minutes=90),
            capacity=2,
            audience=("trimester_2", "trimester_3"),
            online_url="https://meeting.example.cn/maternal-care-001",
            description="居家监测胎动、饮食与运动、何时必须就医；线上答疑。",
        ),
    )
    await services.create_lecture(
        ctx,
        services.LectureInput(
            title="产后康复与新生儿喂养",
            speaker="社区卫生服务中心 李护士长",
            starts_at=start + timedelta(days=7),
            ends_at=start + timedelta(days=7, minutes=60),
            capacity=20,
            audience=("trimester_3", "postpartum"),
            place="社区卫生服务中心三楼会议室",
            online_url="https://meeting.example.cn/maternal-care-002",
        ),
    )
    # The mothers who fit the first lecture register (its two seats fill; a third would wait).
    mothers = (await ctx.session.scalars(select(Mother.id).order_by(Mother.id))).all()
    for mother_id in mothers:
        try:
            async with ctx.session.begin_nested():
                await services.register(ctx, pregnant.id, mother_id)
        except core.DomainError:
            continue  # outside the audience (delivered, first trimester): not for this lecture
