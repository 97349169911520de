"""The headline figures of the seed report: volunteers by mode and district, requests by status,
category and urgency, communities served, beneficiaries reached and hours served."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select

from core.plugin_api import StatFigure
from core.plugins import PluginHost
from core.services.context import ServiceContext
from core.services.plugins import enabled_plugins

log = logging.getLogger(__name__)


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
    """Figures contributed through `register_stats` by the plugins enabled for the viewer's organisation.
    A plugin whose hook fails (or returns something else than a list of StatFigure) loses its figures, not
    everyone's: the failure is logged with its name and its queries are rolled back to a savepoint."""
    out = []
    enabled = await enabled_plugins(ctx)
    for name in [n for n in host.plugins if n in enabled]:
        try:
            async with ctx.session.begin_nested():
                results = await host.call_each_async("register_stats", only=[name], ctx=ctx)
            for plugin, figures in results:
                if not isinstance(figures, list) or not all(isinstance(f, StatFigure) for f in figures):
                    raise TypeError(f"register_stats must return a list of StatFigure, got {figures!r}")
                out.extend((plugin.name, f) for f in figures)
        except Exception:
            log.exception("plugin %s: register_stats failed; its figures are left out of stats", name)
    return out
