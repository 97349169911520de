"""The casework part of the demo, in the spirit of the seed: an elderly resident living alone (high risk, in
intervention after an approved assessment, a plan, notes and a visit: notes/demo.py, visits/demo.py) and a
family after the lockdown (closed with an approved closure). Both are residents of 粉巷社区 (core's records,
made through the case service). The demo social worker works the cases; the association's administrator
supervises them (granted the role). Loaded once: a second run finds the elderly resident's case and stops."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from sqlalchemy import select

import core
from core.models import Account, AccountPluginRole, Resident
from plugins.case_work import reactions, services
from plugins.case_work.demo_support import acting
from plugins.case_work.models import Case, Client
from plugins.case_work.plans import models as plan_models
from plugins.case_work.plans import services as plans


async def load(ctx: core.ServiceContext) -> None:
    worker = await ctx.session.scalar(select(Account).where(Account.username == "socialworker"))
    supervisor = await ctx.session.scalar(select(Account).where(Account.username == "orgadmin"))
    if worker is None or supervisor is None or worker.organization_id is None:
        return
    loaded = await ctx.session.scalar(
        select(Case.id)
        .join(Client, Client.id == Case.client_id)
        .join(Resident, Resident.id == Client.resident_id)
        .where(Resident.name == "独居老人张奶奶")
        .limit(1)
    )
    if loaded is not None:
        return
    community_id = await ctx.session.scalar(
        select(core.Community.id).where(
            core.Community.name == "粉巷社区", core.Community.organization_id == worker.organization_id
        )
    )
    ctx.session.add(
        AccountPluginRole(
            account_id=supervisor.id,
            role=services.SUPERVISOR_ROLE,
            granted_by="demo",
            organization_id=supervisor.organization_id,
        )
    )
    await ctx.session.flush()

    sw = acting(ctx, worker, "social_worker", frozenset({services.MANAGE}))
    sup = acting(ctx, supervisor, "organization_admin", frozenset({services.MANAGE, services.SUPERVISE}))
    try:
        elderly = await services.open_case(
            sw,
            category="elderly_care",
            risk_level="high",
            supervisor_account_id=supervisor.id,
            client=services.ClientInput(
                name="独居老人张奶奶", phone="13700002222", address="碑林区粉巷3号楼2单元", community_id=community_id
            ),
            reason="封控期间独居，社区排查发现行动不便、断药",
        )
        await services.advance(sw, elderly.id, "assessment", "入户预估")
        scores = {"health": 4, "daily_living": 3, "finances": 1, "housing": 1, "family_social": 3, "safety": 3}
        needs = [plans.NeedInput(domain, scores.get(domain, 2)) for domain in plan_models.DOMAINS]
        await plans.record_assessment(
            sw, elderly.id, needs, strengths=["邻居热心，愿意每日探望"], risks=["断药", "独居跌倒"]
        )
        request = await services.request_approval(
            sw, elderly.id, "assessment", "高血压断药，独居无照料人，跌倒风险高；邻居愿意每日探望。"
        )
        await services.decide_approval(sup, request.id, True, "同意，按高风险每周回访")
        await services.advance(sw, elderly.id, "planning")
        plan = await plans.create_plan(sw, elderly.id)
        medicine = await plans.add_goal(sw, plan.id, "按时服用降压药，不再断药", "health")
        await plans.add_action(sw, medicine.id, "链接送药志愿者每月送药", responsible_account_id=worker.id)
        await plans.add_action(sw, medicine.id, "邻居每日探望并提醒服药", responsible_name="邻居王阿姨")
        await plans.record_progress(sw, medicine.id, percent=40, note="本月药已送到")
        await services.advance(sw, elderly.id, "intervention", "链接送药志愿者和邻里守望")
        # The supervisor proposed handing the case to a colleague nearer by; she declined (her caseload is full),
        # so it stays with its worker -- the transfer is kept with the case's history.
        colleague = await ctx.session.scalar(select(Account).where(Account.username == "socialworker2"))
        if colleague is not None:  # core's demo makes them
            offer = await services.propose_transfer(
                sup, elderly.id, colleague.id, "张奶奶家离二号社工站更近，便于每周上门"
            )
            await services.answer_transfer(
                acting(ctx, colleague, "social_worker", frozenset({services.MANAGE})),
                offer.id,
                False,
                "本月个案量已满，且老人已与原社工建立信任关系",
            )
        # A month on (high risk: a review every 30 days), the review job has raised the first review.
        later = dataclasses.replace(sw, clock=lambda: ctx.clock() + timedelta(days=25))
        await plans.raise_due_reviews(later)

        family = await services.open_case(
            sw,
            category="poverty",
            risk_level="medium",
            supervisor_account_id=supervisor.id,
            client=services.ClientInput(
                name="解封后的李家", phone="13700003333", address="碑林区粉巷7号楼1单元", community_id=community_id
            ),
            reason="解封后父亲失业，家庭收入中断",
        )
        await services.advance(sw, family.id, "assessment", "入户预估")
        # The father found work within weeks: the supervisor lowers the risk, saying why (risk history).
        await services.update_case(sup, family.id, risk_level="low", reason="父亲已找到临时工作，收入部分恢复")
        for stage in ("planning", "intervention", "evaluation"):
            await services.advance(sw, family.id, stage)
        closure = await services.request_approval(
            sw, family.id, "closure", "申请到临时救助，父亲重新就业。", ["收入恢复", "孩子复学"]
        )
        await services.decide_approval(sup, closure.id, True)
        await services.advance(sw, family.id, "closure", "目标达成")

        # A verified request for help the administrator tags for casework: its case opens at once, for the social
        # worker serving the request's community, or waits in the intake queue (reactions.py).
        verified = await ctx.session.scalar(
            select(core.HelpRequest.id)
            .where(core.HelpRequest.organization_id == worker.organization_id, core.HelpRequest.status == "verified")
            .order_by(core.HelpRequest.id)
            .limit(1)
        )
        if verified is not None:
            await reactions.tag_help_request(
                sup, verified, category="elderly_care", risk_level="medium", reason="反复求助送药，需个案跟进"
            )
    finally:
        # The demo goes on as its own caller: a session acts for the latest context made on it (same
        # organisation here, so row-level security saw the same rows throughout).
        dataclasses.replace(ctx)
