"""Communities (社区) and their liaison teams."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from sqlalchemy import Select, func, select

from core.errors import DomainError, Validator
from core.i18n import _
from core.models import Community, CommunityLiaison, District, Organization, Volunteer
from core.services import access
from core.services import validation as check
from core.services.common import flush, get
from core.services.context import ServiceContext
from core.services.pagination import Ordering, Page, paginate
from core.services.search import contains
from core.vocab import LIAISON_TEAM_LIMITS, LiaisonRole, label


@dataclass
class CommunityInput:
    name: str
    district_id: int
    street: str = ""
    organization_id: int | None = None
    latitude: float | None = None
    longitude: float | None = None
    head_name: str = ""
    head_phone: str | None = None


@dataclass
class CommunityFilter:
    district_id: int | None = None
    organization_id: int | None = None
    search: str | None = None


BY_NAME: Ordering[Community] = Ordering(
    name="community_name", columns=(Community.name, Community.id), key=lambda c: (c.name, c.id)
)


def _require_manage(ctx: ServiceContext, organization_id: int | None) -> None:
    access.require_manage(ctx, "communities.manage", organization_id, _("communities"))


def checked_fields(v: Validator, data: CommunityInput) -> dict[str, object]:
    """The rules of one community's own fields, without the database: problems go to `v` (field paths as in
    the mutations' input). Used by `_validated` and, row by row, by the spreadsheet import."""
    values: dict[str, object] = {
        "name": check.text(v, ("input", "name"), data.name, max_length=100, label=_("Name")),
        "street": check.text(v, ("input", "street"), data.street, max_length=100, required=False),
        "head_name": check.text(v, ("input", "headName"), data.head_name, max_length=50, required=False),
        "head_phone": check.phone(v, ("input", "headPhone"), data.head_phone, required=False),
        "district_id": data.district_id,
        "organization_id": data.organization_id,
    }
    values["latitude"], values["longitude"] = check.location(v, data.latitude, data.longitude, ("input",))
    return values


async def _validated(ctx: ServiceContext, data: CommunityInput) -> dict[str, object]:
    data = replace(data, organization_id=access.owning_organization(ctx, data.organization_id, ORG_FIELD))
    _require_manage(ctx, data.organization_id)
    v = Validator()
    values = checked_fields(v, data)
    v.raise_if_any()
    await get(ctx, District, data.district_id, what=_("District"), field=("input", "districtId"))
    await get(ctx, Organization, data.organization_id, what=_("Organisation"), field=ORG_FIELD)
    return values


ORG_FIELD = ("input", "organizationId")


async def create_community(ctx: ServiceContext, data: CommunityInput) -> Community:
    community = Community(**await _validated(ctx, data))
    ctx.session.add(community)
    await flush(ctx)
    return community


async def update_community(ctx: ServiceContext, community_id: int, changes: Mapping[str, Any]) -> Community:
    """Apply the given fields (absent ones keep their value) after validating the result as a whole."""
    access.require(ctx, "communities.manage")
    community = await get(
        ctx,
        Community,
        community_id,
        what=_("Community"),
        field=("input", "id"),
        lock=True,
        scope=access.community_scope(ctx.viewer),
    )
    access.refuse_move(community.organization_id, dict(changes), ORG_FIELD)
    current = CommunityInput(**{f.name: getattr(community, f.name) for f in fields(CommunityInput)})
    for key, value in (await _validated(ctx, replace(current, **changes))).items():
        setattr(community, key, value)
    await flush(ctx)
    return community


async def add_liaison(ctx: ServiceContext, community_id: int, volunteer_id: int, role: LiaisonRole) -> Community:
    """Seat a volunteer on the community's work group; returns the community."""
    # The community's row lock serialises concurrent additions, so the team limit holds under races.
    community = await get(ctx, Community, community_id, what=_("Community"), field=("input", "communityId"), lock=True)
    _require_manage(ctx, community.organization_id)
    await get(ctx, Volunteer, volunteer_id, what=_("Volunteer"), field=("input", "volunteerId"))
    held = await ctx.session.scalar(
        select(func.count()).where(CommunityLiaison.community_id == community_id, CommunityLiaison.role == role.value)
    )
    limit = LIAISON_TEAM_LIMITS[role]
    if (held or 0) >= limit:
        raise DomainError(
            "LIAISON_TEAM_FULL",
            "This community's team already has as many {role}s as it may ({limit}).",
            ("input", "role"),
            role=label(role),
            limit=limit,
        )
    ctx.session.add(CommunityLiaison(community_id=community_id, volunteer_id=volunteer_id, role=role.value))
    await flush(ctx)
    return community


async def remove_liaison(ctx: ServiceContext, community_id: int, volunteer_id: int) -> Community:
    community = await get(ctx, Community, community_id, what=_("Community"), field=("input", "communityId"), lock=True)
    _require_manage(ctx, community.organization_id)
    liaison = await ctx.session.scalar(
        select(CommunityLiaison).where(
            CommunityLiaison.community_id == community_id, CommunityLiaison.volunteer_id == volunteer_id
        )
    )
    if liaison is None:
        raise DomainError("NOT_FOUND", "The volunteer is not on this community's team.", ("input", "volunteerId"))
    await ctx.session.delete(liaison)
    await flush(ctx)
    return community


def filtered(f: CommunityFilter) -> Select[tuple[Community]]:
    stmt = select(Community)
    if f.district_id is not None:
        stmt = stmt.where(Community.district_id == f.district_id)
    if f.organization_id is not None:
        stmt = stmt.where(Community.organization_id == f.organization_id)
    if f.search:
        stmt = stmt.where(contains(Community.name, f.search))
    return stmt


async def list_communities(
    ctx: ServiceContext, f: CommunityFilter, *, first: int, after: str | None
) -> Page[Community]:
    access.require(ctx, "communities.read")
    return await paginate(ctx, filtered(f).where(access.community_scope(ctx.viewer)), BY_NAME, first=first, after=after)


async def liaisons_of(ctx: ServiceContext, community_id: int) -> list[CommunityLiaison]:
    stmt = select(CommunityLiaison).where(CommunityLiaison.community_id == community_id).order_by(CommunityLiaison.id)
    return list((await ctx.session.scalars(stmt)).all())
