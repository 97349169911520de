"""The supplies part of the demo: the seed's donors and money, a warehouse with protective gear and formula,
a distribution to the community with the TB request."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

import core
from plugins.supplies import services
from plugins.supplies.models import Distribution


async def load(ctx: core.ServiceContext) -> None:
    foundation = await services.create_donor(ctx, "某慈善基金会", "organization", contact="029-88886666")
    other = await services.create_donor(ctx, "另一基金会", "organization", contact="029-88887777")
    company = await services.create_donor(ctx, "爱心企业", "organization", contact="13800009999")
    grant = await services.receive_money(ctx, foundation.id, "5000000", "XASW-2021-0001", "抗疫专项")
    await services.receive_money(ctx, other.id, "30000", "XASW-2021-0002", "困难群众生活物资")
    await services.allocate(ctx, grant.id, "1200000", "采购防护服与口罩")
    store = await services.create_warehouse(ctx, "碑林物资仓库", "碑林区南院门")
    suits = await services.create_item(ctx, "医用防护服", "medical_protection", "套")
    masks = await services.create_item(ctx, "N95口罩", "medical_protection", "只")
    formula = await services.create_item(ctx, "婴儿配方奶粉（深度水解）", "infant_supplies", "罐", batched=True)
    await services.receive(ctx, warehouse_id=store.id, item_id=suits.id, quantity=2000, donor_id=company.id)
    await services.receive(ctx, warehouse_id=store.id, item_id=masks.id, quantity=20000, donor_id=company.id)
    today = ctx.now().date()
    await services.receive(
        ctx,
        warehouse_id=store.id,
        item_id=formula.id,
        quantity=24,
        donor_id=company.id,
        batch_code="F-2112",
        expires_on=today + timedelta(days=45),
    )
    community = await ctx.session.scalar(select(core.Community).where(core.Community.name == "粉巷社区"))
    if community is not None:
        arguments = {"warehouse_id": store.id, "item_id": masks.id, "quantity": 500, "community_id": community.id}
        # Sent with an idempotency key, as a front end retrying over a bad connection would.
        sent = await services.idempotent(
            ctx,
            "demo-粉巷社区-口罩",
            "distribute",
            arguments,
            lambda: services.distribute(ctx, **arguments, note="核酸检测点"),
            lambda pk: core.get_row(ctx, Distribution, pk, what="Distribution"),
        )
        await services.dispatch(ctx, sent.id)
