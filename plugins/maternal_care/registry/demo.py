"""The registry's part of the demo, in the spirit of the seed: a pregnant woman in lockdown with a small child
(yellow, her dating corrected by a scan), one graded red with a responsible staff member, one delivered and
discharged. Loaded once: a second run finds the organisation's mothers and stops."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from sqlalchemy import select

import core
from core.models import Account, CommunityLiaison
from plugins.maternal_care.models import Mother
from plugins.maternal_care.registry import services


async def load(ctx: core.ServiceContext) -> None:
    worker = await ctx.session.scalar(select(Account).where(Account.username == "socialworker"))
    if worker is None or worker.organization_id is None:
        return
    if await ctx.session.scalar(select(Mother.id).where(Mother.organization_id == worker.organization_id).limit(1)):
        return  # loaded already
    viewer = core.Viewer(
        label=worker.display_name,
        account_id=worker.id,
        organization_id=worker.organization_id,
        role="social_worker",
        extra_permissions=frozenset({services.MANAGE}),
    )
    try:
        await _load(dataclasses.replace(ctx, viewer=viewer, memo={}), worker)
    finally:
        # The demo goes on as its own caller: a session acts for the latest context made on it.
        dataclasses.replace(ctx)


async def _load(demo: core.ServiceContext, worker: Account) -> None:
    ctx = demo
    today = services.today(demo)
    # A community the social worker is liaison of (so she may post its help requests), else the organisation's first.
    community = await ctx.session.scalar(
        select(CommunityLiaison.community_id)
        .where(CommunityLiaison.volunteer_id == worker.volunteer_id)
        .order_by(CommunityLiaison.community_id)
        .limit(1)
    ) or await ctx.session.scalar(
        select(core.Community.id)
        .where(core.Community.organization_id == worker.organization_id)
        .order_by(core.Community.id)
        .limit(1)
    )

    async def mother(name: str, phone: str, address: str, note: str) -> int:
        made = await services.register_mother(
            demo,
            consent=True,
            social_worker_account_id=worker.id,
            name=name,
            phone=phone,
            address=address,
            community_id=community,
            consent_note=note,
        )
        return made.id

    # 28 weeks along, at home under lockdown with a two-year-old: short of supplies, a yellow grade.
    first = await mother("孕妇刘女士", "13700002001", "雁塔区小寨东路12号3单元", "电话同意，家中有两岁幼儿")
    lockdown = await services.register_pregnancy(
        demo,
        first,
        lmp=today - timedelta(weeks=28, days=4),
        grade=services.Grade("yellow"),
        reason="封控在家，独自照顾两岁幼儿，物资紧张",
    )
    # Her dating was taken from memory; the 12-week scan moved it by four days.
    await services.correct_dating(demo, lockdown.id, lmp=today - timedelta(weeks=28), reason="孕12周B超校正孕周")
    # 34 weeks with pre-eclampsia: red, a responsible staff member following her.
    second = await mother("孕妇张女士", "13700002002", "碑林区东关正街8号", "本人签字同意")
    await services.register_pregnancy(
        demo,
        second,
        edd=today + timedelta(weeks=6),
        grade=services.Grade("red", responsible_account_id=worker.id),
        reason="子痫前期，血压控制不佳，需转诊",
    )
    # Delivered two weeks ago, discharged five days later: the postpartum visits are ahead.
    third = await mother("产妇王女士", "13700002003", "莲湖区西大街20号", "微信语音同意")
    pregnancy = await services.register_pregnancy(demo, third, lmp=today - timedelta(weeks=41))
    await services.record_outcome(
        demo,
        pregnancy.id,
        outcome="delivered",
        on=today - timedelta(days=14),
        discharged_on=today - timedelta(days=9),
        note="顺产，母婴平安",
    )
