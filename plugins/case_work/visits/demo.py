"""The visits part of the casework demo: the demo social worker keeps weekday hours, and the elderly resident
living alone (the open, high-risk case) has a home visit and a follow-up call booked for the coming days.
Called by plugins/case_work/demo.py after the cases exist."""

from __future__ import annotations

import dataclasses
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

import core
from core.models import Account, AvailabilityWindow
from core.services import scheduling
from plugins.case_work.demo_support import acting
from plugins.case_work.models import Case
from plugins.case_work.services import CLOSED, MANAGE
from plugins.case_work.visits import services

LOCAL = ZoneInfo("Asia/Shanghai")


async def load(ctx: core.ServiceContext) -> None:
    worker = await ctx.session.scalar(select(Account).where(Account.username == "socialworker"))
    if worker is None or worker.volunteer_id is None or worker.organization_id is None:
        return
    case = await ctx.session.scalar(
        select(Case)
        .where(Case.social_worker_account_id == worker.id, Case.stage.not_in(CLOSED))
        .order_by(Case.id)
        .limit(1)
    )
    if case is None:
        return
    has_hours = await ctx.session.scalar(
        select(AvailabilityWindow.id).where(AvailabilityWindow.owner_id == worker.volunteer_id).limit(1)
    )
    if has_hours is None:
        for weekday in range(5):
            await scheduling.add_window(ctx, worker.volunteer_id, weekday, time(9), time(17))
    sw = acting(ctx, worker, "social_worker", frozenset({MANAGE}))
    try:
        day = ctx.now().astimezone(LOCAL).date() + timedelta(days=1)
        while day.weekday() >= 5:
            day += timedelta(days=1)
        visit_at = datetime.combine(day, time(10), LOCAL)
        await services.book_visit(
            sw, case.id, mode="home_visit", start=visit_at, minutes=60, purpose="送药后回访，查看血压记录和居家安全"
        )
        call_day = day + timedelta(days=1)
        while call_day.weekday() >= 5:
            call_day += timedelta(days=1)
        await services.book_visit(
            sw,
            case.id,
            mode="call",
            start=datetime.combine(call_day, time(15), LOCAL),
            minutes=15,
            purpose="电话确认邻里守望是否到位",
        )
    finally:
        # The demo goes on as its own caller (a session acts for the latest context made on it).
        dataclasses.replace(ctx)
