"""The group-work part of the casework demo: after the lockdown, the demo social worker runs a mutual-aid group
for older residents living alone (the elderly resident of the casework demo and a neighbour), supervised by the
association's administrator. The first meeting took place last week (attendance and an outcome note kept,
sealed); the next is booked on the social worker's calendar; a colleague has joined as co-facilitator.
Called by plugins/case_work/demo.py after the cases exist; a second run finds the group and stops."""

from __future__ import annotations

import dataclasses
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

import core
from core.models import Account
from plugins.case_work.demo_support import acting
from plugins.case_work.groups import services
from plugins.case_work.groups.models import Group
from plugins.case_work.models import Case
from plugins.case_work.services import MANAGE

LOCAL = ZoneInfo("Asia/Shanghai")
NAME = "独居老人互助小组"


async def load(ctx: core.ServiceContext) -> None:
    worker = await ctx.session.scalar(select(Account).where(Account.username == "socialworker"))
    supervisor = await ctx.session.scalar(select(Account).where(Account.username == "orgadmin"))
    if worker is None or supervisor is None or worker.organization_id is None:
        return
    if await ctx.session.scalar(select(Group.id).where(Group.name == NAME).limit(1)) is not None:
        return
    clients = list(
        await ctx.session.scalars(
            select(Case.client_id).where(Case.social_worker_account_id == worker.id).order_by(Case.id).limit(2)
        )
    )
    if not clients:
        return
    sw = acting(ctx, worker, "social_worker", frozenset({MANAGE}))
    try:
        group = await services.create_group(
            sw,
            name=NAME,
            purpose="封控结束后，帮助独居老人重建邻里联系，互相照应用药和就医。",
            goals="每位组员结识至少两位可求助的邻居；每周一次电话互访。",
            category="elderly_care",
            capacity=8,
            supervisor_account_id=supervisor.id,
        )
        group = await services.advance(sw, group.id, "formation", reason="组员已招募，首次聚会已安排")
        today = ctx.now().astimezone(LOCAL).date()
        # Booked a week before it took place (the calendar takes no booking in the past), by when the members
        # had joined (attendance is kept only for sessions after a member joined).
        week_before = dataclasses.replace(sw, clock=lambda: ctx.clock() - timedelta(days=14))
        members = [await services.add_participant(week_before, group.id, client_id) for client_id in clients]
        first = await services.schedule_session(
            week_before,
            group.id,
            start=datetime.combine(today - timedelta(days=7), time(14), LOCAL),
            minutes=90,
            topic="相互认识：封控期间谁帮过我",
        )
        for member in members:
            await services.record_attendance(sw, first.id, member.id, "present")
        await services.add_note(sw, first.id, "组员分享了封控期间取药的困难，约定互留电话，下次带上常用药清单。")
        await services.schedule_session(
            sw,
            group.id,
            start=datetime.combine(today + timedelta(days=7), time(14), LOCAL),
            minutes=90,
            topic="常用药清单与就医互助",
        )
        # The supervisor brings in a second social worker as co-facilitator (recorded, with why).
        colleague = await ctx.session.scalar(select(Account).where(Account.username == "socialworker2"))
        if colleague is not None:
            sup = acting(ctx, supervisor, "organization_admin", frozenset({MANAGE, "case_work.supervise"}))
            await services.change_facilitators(
                sup, group.id, "组员增多，请同事协助带领", co_facilitator_account_id=colleague.id
            )
    finally:
        # The demo goes on as its own caller (a session acts for the latest context made on it).
        dataclasses.replace(ctx)
