"""The urgent needs' part of the demo: during the lockdown, the mother at home with a small child runs out of
infant formula; her social worker posts the need as a help request for her community (core's request, with
its history and events), linked to her record. Loaded once."""

from __future__ import annotations

import dataclasses

from sqlalchemy import select

import core
from core.models import Account
from plugins.maternal_care.models import Mother
from plugins.maternal_care.needs import services
from plugins.maternal_care.needs.models import UrgentNeed
from plugins.maternal_care.registry import services as registry


async def load(ctx: core.ServiceContext) -> None:
    worker = await ctx.session.scalar(select(Account).where(Account.username == "socialworker"))
    if worker is None or worker.organization_id is None:
        return
    if await ctx.session.scalar(select(UrgentNeed.id).limit(1)) is not None:
        return  # loaded already
    viewer = core.Viewer(
        label=worker.display_name,
        account_id=worker.id,
        organization_id=worker.organization_id,
        role="social_worker",
        volunteer_id=worker.volunteer_id,  # her staff record: the communities she is liaison of
        extra_permissions=frozenset({registry.MANAGE}),
    )
    demo = dataclasses.replace(ctx, viewer=viewer, memo={})
    try:
        # Her first mother with a community: the registry's demo registers the lockdown mother first.
        mother_id = await demo.session.scalar(
            select(Mother.id)
            .where(Mother.social_worker_account_id == worker.id, Mother.community_id.is_not(None))
            .order_by(Mother.id)
            .limit(1)
        )
        if mother_id is None:
            return
        await services.raise_need(
            demo,
            services.NeedInput(
                mother_id=mother_id,
                category="food",
                urgency="high",
                what="婴儿配方奶粉（1段）",
                quantity=2,
                beneficiary="infant",
                note="封控在家，孩子的奶粉只够两天。",
            ),
        )
    finally:
        # The demo goes on as its own caller: a session acts for the latest context made on it.
        dataclasses.replace(ctx)
