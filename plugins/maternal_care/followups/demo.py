"""The follow-ups' part of the demo (after the registry's, whose pregnancies generated their items): the
pregnancy graded red for pre-eclampsia had its 28-36 week check find a high blood pressure -- referred to the
city's maternal and child hospital under her consent, a re-check due within 14 days -- and the delivered
mother's home visit, due within 7 days of her discharge, is overdue. Loaded once."""

from __future__ import annotations

import dataclasses

from sqlalchemy import select

import core
from core.models import Account
from plugins.maternal_care.followups import services
from plugins.maternal_care.followups.models import FollowUp
from plugins.maternal_care.models import Mother, Pregnancy
from plugins.maternal_care.registry import services as registry

HOSPITAL = "西安市妇幼保健院"


async def load(ctx: core.ServiceContext) -> None:
    worker = await ctx.session.scalar(select(Account).where(Account.username == "socialworker"))
    if worker is None or worker.organization_id is None:
        return
    viewer = core.Viewer(
        label=worker.display_name,
        account_id=worker.id,
        organization_id=worker.organization_id,
        role="social_worker",
        extra_permissions=frozenset({registry.MANAGE}),
    )
    try:
        await _load(dataclasses.replace(ctx, viewer=viewer, memo={}))
    finally:
        # The demo goes on as its own caller: a session acts for the latest context made on it.
        dataclasses.replace(ctx)


async def _load(demo: core.ServiceContext) -> None:
    if await demo.session.scalar(select(FollowUp.id).where(FollowUp.referral_id.is_not(None)).limit(1)):
        return  # loaded already
    # The red pregnancy (the registry's demo: pre-eclampsia, 34 weeks): her 28-36 week check.
    found = (
        await demo.session.execute(
            select(FollowUp.id, Mother.resident_id)
            .join(Pregnancy, Pregnancy.id == FollowUp.pregnancy_id)
            .join(Mother, Mother.id == Pregnancy.mother_id)
            .where(Pregnancy.risk_colour == "red", FollowUp.rule_code == "prenatal_4", FollowUp.status == "open")
            .limit(1)
        )
    ).first()
    if found is None:
        return
    item_id, resident_id = found
    await core.consent.record_consent(
        demo,
        resident_id=resident_id,
        scopes=["summary", "health"],
        target=HOSPITAL,
        target_kind="outside",
        purpose="产检异常时转诊上级医院",
    )
    await services.record_result(
        demo,
        item_id,
        outcome="abnormal",
        note="血压158/102，尿蛋白(++)",
        referral=services.ReferralRequest(
            summary="孕34周，子痫前期，血压控制不佳，请上级医院评估", target_outside=HOSPITAL
        ),
    )
