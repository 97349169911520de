"""Hook implementations of the supplies plugin."""

from __future__ import annotations

from pathlib import Path

import core


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(
        name="supplies",
        version="0.1.0",
        description="Donated goods into warehouses, an append-only stock ledger, distributions out.",
    )


@core.hookimpl
def register_graphql() -> core.GraphQLContribution:
    from plugins.supplies.live import SuppliesSubscription
    from plugins.supplies.types import SuppliesMutation, SuppliesQuery

    return core.GraphQLContribution(query=SuppliesQuery, mutation=SuppliesMutation, subscription=SuppliesSubscription)


@core.hookimpl
def register_migrations() -> Path:
    return Path(__file__).parent / "migrations"


@core.hookimpl
def register_permissions() -> list[core.Permission]:
    return [
        core.Permission(
            "supplies.manage",
            "Receive, move, adjust and distribute stock; read reports.",
            ("organization_admin", "platform_admin", "social_worker"),
        ),
    ]


@core.hookimpl
def register_referral_targets() -> list[core.ReferralTarget]:
    # Residents referred for goods: answered by supplies staff; nothing is recorded on acceptance
    # (plugins.supplies.referrals says why).
    from plugins.supplies.referrals import referral_targets

    return referral_targets()


@core.hookimpl
async def register_stats(ctx: core.ServiceContext) -> list[core.StatFigure]:
    from plugins.supplies.services import distributed_since, report

    # Supplies figures are for those who keep the stock: others (a community head on the situation board)
    # simply get none, rather than a refusal logged on every refresh.
    if not core.can(ctx.viewer, "supplies.manage"):
        return []
    rows = await report(ctx)
    figures = [
        core.StatFigure(key="items_received", label="Items received", value=sum(r.received for r in rows)),
        core.StatFigure(key="items_distributed", label="Items distributed", value=sum(r.distributed for r in rows)),
    ]
    if ctx.viewer.organization_id is not None:  # stock is kept per organisation; "today" is the caller's
        today = await distributed_since(ctx, ctx.start_of_today())
        figures.append(core.StatFigure(key="items_distributed_today", label="Items distributed today", value=today))
    return figures


@core.hookimpl
async def register_demo_data(ctx: core.ServiceContext) -> None:
    from plugins.supplies.demo import load

    await load(ctx)


@core.hookimpl
def register_error_codes() -> dict[str, str]:
    return {
        "INSUFFICIENT_STOCK": "Not enough on hand.",
        "INSUFFICIENT_FUNDS": "More than is left of the donation.",
        "SAME_WAREHOUSE": "A transfer goes to another warehouse.",
        "IDEMPOTENCY_MISMATCH": "The idempotency key was used with other arguments.",
    }


@core.hookimpl
def register_translations() -> dict[str, Path]:
    # The plugin's own messages in Chinese (core's are in core/locale): `yunshegong messages plugins/supplies
    # --po plugins/supplies/locale/zh_CN.po` adds new ones for the translator.
    return {"zh_CN": Path(__file__).parent / "locale" / "zh_CN.po"}


@core.hookimpl
def register_exports() -> list[core.ExportDefinition]:
    from plugins.supplies.exports import EXPORTS

    return EXPORTS
