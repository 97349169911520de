"""An organisation's situation right now, for the coordinators' wall screen (the /board page).

Counts only, each by one rule the lists already use: "open" is `OPEN_REQUEST_STATUSES`, "overdue" is the
`overdue` query's rule (`deadlines.is_overdue`), "critical" the highest urgency; requests are counted within
the caller's scope (`access.request_scope`: a social worker's communities served, a community head's own),
volunteers within `access.volunteer_scope`. A fixed handful of statements whatever the number of districts
and communities: one GROUP BY over the open requests, one read of the communities (and their districts)
that have any, one GROUP BY over the available volunteers, and the plugins' figures.

Who: the roles that coordinate (administrators, social workers) and community heads (their community);
FORBIDDEN for the rest. One organisation at a time: the caller's own, or -- platform administrators only --
the one named.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import func, select

from core.errors import DomainError
from core.models import Community, District, HelpRequest, Volunteer
from core.plugin_api import StatFigure
from core.plugins import PluginHost
from core.services import access, deadlines, stats
from core.services.context import ServiceContext
from core.vocab import OPEN_REQUEST_STATUSES, URGENCY_RANK, Availability, Role, Urgency, VolunteerMode

R = Role
# Who looks at the board. Counselors, volunteers and partners read requests too, but do not coordinate.
BOARD_ROLES = frozenset({R.PLATFORM_ADMIN, R.ORGANIZATION_ADMIN, R.SOCIAL_WORKER, R.COMMUNITY_HEAD, R.SYSTEM})
# Roles that may name any organisation (the others: their own only).
ANY_ORGANIZATION = frozenset({R.PLATFORM_ADMIN, R.SYSTEM})
CRITICAL = min(Urgency, key=URGENCY_RANK.__getitem__)  # the highest urgency (the lowest rank)


@dataclass(frozen=True)
class PlaceCount:
    """Open requests of one place (a district or a community): how many, how many critical."""

    count: int
    critical: int


@dataclass(frozen=True)
class Situation:
    as_of: datetime
    organization_id: int
    open_requests: int
    overdue_requests: int
    # Every urgency, most urgent first (zeros included: a chart keeps its bars).
    by_urgency: list[tuple[Urgency, int]]
    # Places with open requests, most first (then by name).
    by_district: list[tuple[District, PlaceCount]]
    by_community: list[tuple[Community, PlaceCount]]
    # Every mode, in the vocabulary's order (zeros included).
    volunteers_available_by_mode: list[tuple[VolunteerMode, int]]
    # (plugin, figure) of the plugins the organisation enabled (`stats.plugin_figures`).
    figures: list[tuple[str, StatFigure]]


def organization_for(ctx: ServiceContext, organization_id: int | None) -> int:
    """The organisation whose board the caller reads: UNAUTHENTICATED, FORBIDDEN (a role that does not
    coordinate, or an organisation the caller does not administer), REQUIRED (none named, none of one's own)."""
    role = access.role_of(ctx.viewer)
    if role is None:
        raise DomainError("UNAUTHENTICATED", "Sign in first.")
    if role not in BOARD_ROLES:
        raise DomainError("FORBIDDEN", "You may not do this.")
    chosen = organization_id if organization_id is not None else ctx.viewer.organization_id
    if chosen is None:
        raise DomainError("REQUIRED", "Name the organisation.", ("organizationId",))
    if role not in ANY_ORGANIZATION and chosen != ctx.viewer.organization_id:
        raise DomainError("FORBIDDEN", "Only the situation of your organisation.", ("organizationId",))
    return chosen


Place = TypeVar("Place", Community, District)


def _ranked(counts: dict[int, PlaceCount], rows: dict[int, Place]) -> list[tuple[Place, PlaceCount]]:
    """Most open requests first, then most critical, then by name."""
    found = [(rows[k], c) for k, c in counts.items() if k in rows]
    return sorted(found, key=lambda pair: (-pair[1].count, -pair[1].critical, pair[0].name, pair[0].id))


async def situation(
    ctx: ServiceContext, organization_id: int | None = None, host: PluginHost | None = None
) -> Situation:
    org = organization_for(ctx, organization_id)
    now = ctx.now()
    # 1. The open requests in scope, per community and urgency, with how many of each are overdue.
    requests = (
        await ctx.session.execute(
            select(
                HelpRequest.community_id,
                HelpRequest.urgency,
                func.count(),
                func.count().filter(deadlines.is_overdue(ctx)),
            )
            .where(
                HelpRequest.organization_id == org,
                HelpRequest.status.in_(sorted(s.value for s in OPEN_REQUEST_STATUSES)),
                access.request_scope(ctx.viewer),
            )
            .group_by(HelpRequest.community_id, HelpRequest.urgency)
        )
    ).all()
    by_urgency = dict.fromkeys(sorted(Urgency, key=lambda u: URGENCY_RANK[u]), 0)
    per_community: dict[int, PlaceCount] = {}
    overdue = 0
    for community_id, urgency, count, late in requests:
        by_urgency[Urgency(urgency)] += count
        overdue += late
        before = per_community.get(community_id, PlaceCount(0, 0))
        critical = count if urgency == CRITICAL.value else 0
        per_community[community_id] = PlaceCount(before.count + count, before.critical + critical)
    # 2. Those communities and their districts (only what the counts name: none when nothing is open).
    communities: dict[int, Community] = {}
    districts: dict[int, District] = {}
    if per_community:
        rows = (
            await ctx.session.execute(
                select(Community, District)
                .join(District, District.id == Community.district_id)
                .where(Community.id.in_(sorted(per_community)))
            )
        ).all()
        for community, district in rows:
            communities[community.id] = community
            districts[district.id] = district
    per_district: dict[int, PlaceCount] = {}
    for community_id, c in per_community.items():
        if community_id in communities:
            key = communities[community_id].district_id
            before = per_district.get(key, PlaceCount(0, 0))
            per_district[key] = PlaceCount(before.count + c.count, before.critical + c.critical)
    # 3. Available volunteers per mode.
    modes = dict(
        (
            await ctx.session.execute(
                select(Volunteer.mode, func.count())
                .where(
                    Volunteer.organization_id == org,
                    Volunteer.availability == Availability.AVAILABLE.value,
                    access.volunteer_scope(ctx.viewer),
                )
                .group_by(Volunteer.mode)
            )
        ).all()
    )
    # 4. The plugins' figures: of the caller's own organisation (the plugins count for the organisation the
    # caller acts for); a platform administrator looking at another one gets none rather than their own.
    figures: list[tuple[str, StatFigure]] = []
    if host is not None and org == ctx.viewer.organization_id:
        figures = await stats.plugin_figures(ctx, host)
    return Situation(
        as_of=now,
        organization_id=org,
        open_requests=sum(by_urgency.values()),
        overdue_requests=int(overdue),
        by_urgency=list(by_urgency.items()),
        by_district=_ranked(per_district, districts),
        by_community=_ranked(per_community, communities),
        volunteers_available_by_mode=[(m, int(modes.get(m.value, 0))) for m in VolunteerMode],
        figures=figures,
    )
