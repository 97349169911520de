"""The headline figures of the seed report: volunteers by mode and district, requests by status,
category and urgency, communities served, beneficiaries reached and hours served."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select

from core.models import Assignment, Community, District, HelpRequest, Volunteer
from core.plugin_api import StatFigure
from core.plugins import PluginHost, PluginLoadError
from core.services.context import ServiceContext
from core.services.plugins import enabled_plugins
from core.vocab import AssignmentStatus, RequestStatus


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


async def _buckets(ctx: ServiceContext, column: object, model: type) -> list[Bucket]:
    stmt = select(column, func.count()).select_from(model).group_by(column).order_by(func.count().desc(), column)
    return [Bucket(key=str(k), count=int(n)) for k, n in (await ctx.session.execute(stmt)).all()]


async def compute(ctx: ServiceContext) -> Stats:
    s = ctx.session
    by_district_stmt = (
        select(func.coalesce(District.name, "—"), func.count(Volunteer.id))
        .select_from(Volunteer)
        .outerjoin(District, District.id == Volunteer.district_id)
        .group_by(District.name)
        .order_by(func.count(Volunteer.id).desc(), District.name)
    )
    totals = (
        await s.execute(
            select(
                select(func.count()).select_from(Volunteer).scalar_subquery(),
                select(func.count()).select_from(HelpRequest).scalar_subquery(),
                select(func.count()).select_from(Community).scalar_subquery(),
                # A community is served once one of its requests has been fulfilled.
                select(func.count(func.distinct(HelpRequest.community_id)))
                .where(HelpRequest.status == RequestStatus.FULFILLED.value)
                .scalar_subquery(),
                select(func.coalesce(func.sum(HelpRequest.beneficiaries), 0))
                .where(HelpRequest.status == RequestStatus.FULFILLED.value)
                .scalar_subquery(),
                select(func.coalesce(func.sum(Assignment.hours), 0))
                .where(Assignment.status == AssignmentStatus.COMPLETED.value)
                .scalar_subquery(),
            )
        )
    ).one()
    return Stats(
        volunteers_total=int(totals[0]),
        volunteers_by_mode=await _buckets(ctx, Volunteer.mode, Volunteer),
        volunteers_by_district=[Bucket(key=k, count=int(n)) for k, n in (await s.execute(by_district_stmt)).all()],
        requests_total=int(totals[1]),
        requests_by_status=await _buckets(ctx, HelpRequest.status, HelpRequest),
        requests_by_category=await _buckets(ctx, HelpRequest.category, HelpRequest),
        requests_by_urgency=await _buckets(ctx, HelpRequest.urgency, HelpRequest),
        communities_total=int(totals[2]),
        communities_served=int(totals[3]),
        beneficiaries_served=int(totals[4]),
        hours_served=Decimal(totals[5]),
        hours_by_team=await _hours_by_team(ctx),
    )


async def _hours_by_team(ctx: ServiceContext) -> list[tuple[str, Decimal]]:
    """Hours of completed assignments per team (a volunteer in two teams counts for both)."""
    team = func.unnest(Volunteer.teams).label("team")
    per_volunteer = select(Volunteer.id, team).select_from(Volunteer).subquery()
    stmt = (
        select(per_volunteer.c.team, func.sum(Assignment.hours))
        .join(Assignment, Assignment.volunteer_id == per_volunteer.c.id)
        .where(Assignment.status == AssignmentStatus.COMPLETED.value)
        .group_by(per_volunteer.c.team)
        .order_by(func.sum(Assignment.hours).desc(), per_volunteer.c.team)
    )
    return [(str(t), Decimal(h)) for t, h in (await ctx.session.execute(stmt)).all()]


async def plugin_figures(ctx: ServiceContext, host: PluginHost) -> list[tuple[str, StatFigure]]:
    """Figures contributed through `register_stats` by the plugins enabled for the viewer's organisation."""
    out = []
    enabled = await enabled_plugins(ctx)
    for plugin, figures in await host.call_each_async("register_stats", only=enabled, ctx=ctx):
        if not isinstance(figures, list) or not all(isinstance(f, StatFigure) for f in figures):
            raise PluginLoadError(f"plugin {plugin.name!r}: register_stats must return a list of StatFigure")
        out.extend((plugin.name, f) for f in figures)
    return out
