"""The headline figures of the seed report: volunteers by mode and district, requests by status,
category and urgency, communities served, beneficiaries reached and hours served."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select

from core.plugin_api import StatFigure
from core.plugins import PluginHost, PluginLoadError
from core.services.context import ServiceContext
from core.services.plugins import enabled_plugins


@dataclass(frozen=True)
class Bucket:
    key: str
    count: int


@dataclass(frozen=True)
class Stats:
    volunteers_total: int
    volunteers_by_mode: list[Bucket]
    volunteers_by_district: list[Bucket]
    requests_total: int
    requests_by_status: list[Bucket]
    requests_by_category: list[Bucket]
    requests_by_urgency: list[Bucket]
    communities_total: int
    communities_served: int
    beneficiaries_served: int
    hours_served: Decimal
    hours_by_team: list[tuple[str, Decimal]]


def _buckets(pairs: list[list[object]]) -> list[Bucket]:
    return [Bucket(key=str(k), count=int(n)) for k, n in pairs]  # type: ignore[call-overload]


def _hours(value: object) -> Decimal:
    # JSON numbers arrive as floats; hours are kept to two decimals.
    return Decimal(str(value)).quantize(Decimal("0.01"))


async def compute(ctx: ServiceContext) -> Stats:
    """The platform's public totals over every organisation. Counts only: they come from the database
    function `platform_figures()` (core.tenancy), the one reader across organisations for any caller."""
    figures = (await ctx.session.execute(select(func.platform_figures()))).scalar_one()
    return Stats(
        volunteers_total=int(figures["volunteers_total"]),
        volunteers_by_mode=_buckets(figures["volunteers_by_mode"]),
        volunteers_by_district=_buckets(figures["volunteers_by_district"]),
        requests_total=int(figures["requests_total"]),
        requests_by_status=_buckets(figures["requests_by_status"]),
        requests_by_category=_buckets(figures["requests_by_category"]),
        requests_by_urgency=_buckets(figures["requests_by_urgency"]),
        communities_total=int(figures["communities_total"]),
        communities_served=int(figures["communities_served"]),
        beneficiaries_served=int(figures["beneficiaries_served"]),
        hours_served=_hours(figures["hours_served"]),
        hours_by_team=[(str(t), _hours(h)) for t, h in figures["hours_by_team"]],
    )


async def plugin_figures(ctx: ServiceContext, host: PluginHost) -> list[tuple[str, StatFigure]]:
    """Figures contributed through `register_stats` by the plugins enabled for the viewer's organisation."""
    out = []
    enabled = await enabled_plugins(ctx)
    for plugin, figures in await host.call_each_async("register_stats", only=enabled, ctx=ctx):
        if not isinstance(figures, list) or not all(isinstance(f, StatFigure) for f in figures):
            raise PluginLoadError(f"plugin {plugin.name!r}: register_stats must return a list of StatFigure")
        out.extend((plugin.name, f) for f in figures)
    return out
