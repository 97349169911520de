"""Progress notes for the casework demo (after plugins.case_work.demo made its cases): the social worker's
notes on the elderly resident living alone -- a home visit, a call corrected once (a revision), a note voided
for being about another case -- and the supervisor opening them for a review, with a purpose."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from sqlalchemy import select

import core
from core.models import Account, Resident
from plugins.case_work import services as cases
from plugins.case_work.demo_support import acting
from plugins.case_work.models import Case, Client
from plugins.case_work.notes import services


async def load(ctx: core.ServiceContext) -> None:
    case = await ctx.session.scalar(
        select(Case)
        .join(Client, Client.id == Case.client_id)
        .join(Resident, Resident.id == Client.resident_id)
        .where(Resident.name == "独居老人张奶奶")
        .limit(1)
    )
    if case is None or case.stage in cases.CLOSED:
        return
    worker = await ctx.session.get(Account, case.social_worker_account_id)
    supervisor = await ctx.session.get(Account, case.supervisor_account_id)
    if worker is None or supervisor is None:
        return

    sw = acting(ctx, worker, "social_worker", frozenset({cases.MANAGE}))
    sup = acting(ctx, supervisor, supervisor.role, frozenset({cases.MANAGE, cases.SUPERVISE}))
    try:
        now = ctx.now()
        await services.add_note(
            sw,
            case.id,
            note_type="home_visit",
            occurred_at=now - timedelta(days=6),
            text="入户：老人独居，高血压药已断三天，行动不便，冰箱里只剩挂面。已联系社区医生上门，邻居刘阿姨愿每日探望。",
        )
        call = await services.add_note(
            sw,
            case.id,
            note_type="call",
            occurred_at=now - timedelta(days=3),
            text="电话回访：药已送到，血压平稳。",
        )
        await services.edit_note(sw, call.id, text="电话回访：药已送到，血压150/95，仍偏高，约社区医生周五复测。")
        wrong = await services.add_note(
            sw, case.id, note_type="meeting", occurred_at=now - timedelta(days=2), text="与李家父亲面谈就业意向。"
        )
        await services.void_note(sw, wrong.id, "记到了张奶奶的个案里，应属李家个案")
        await services.open_notes(sup, case.id, "每周督导：高风险个案服务进展复核")
    finally:
        # The demo goes on as its own caller (see plugins.case_work.demo).
        dataclasses.replace(ctx)
