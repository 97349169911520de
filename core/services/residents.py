"""Residents: the one core record of a person an organisation serves (decisions.md, "One identity").

Plugins reach this module as `core.residents` and call it with their own context: counseling's client,
casework's client and maternal care's mother each point at a resident. Who may create and read residents:
the staff who serve (social workers, counselors), organisation and platform administrators, scripts, and
holders of `residents.manage` (a plugin role may grant it). Everyone else -- volunteers, community heads,
partners, members of another organisation -- gets NOT_FOUND, exactly as for a missing resident.

Phone and address are sensitive: `sees_contact` says who reads them in full (the serving staff of the
resident's own organisation); the GraphQL layer masks them for everyone else, administrators included.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import false, select, true
from sqlalchemy.sql.elements import ColumnElement

from core.errors import DomainError, Validator
from core.i18n import _
from core.models import Community, Resident
from core.services import access
from core.services import validation as check
from core.services.common import flush, get
from core.services.context import ServiceContext, Viewer
from core.vocab import Role

R = Role
MANAGE = "residents.manage"
# Roles that keep records of residents (read and write them) within their organisation.
STAFF_ROLES = frozenset({R.PLATFORM_ADMIN, R.ORGANIZATION_ADMIN, R.SOCIAL_WORKER, R.COUNSELOR, R.SYSTEM})
# Roles that serve residents themselves, and so read their phone and address in full.
SERVING_ROLES = frozenset({R.SOCIAL_WORKER, R.COUNSELOR, R.SYSTEM})
UPDATABLE = frozenset({"name", "community_id", "phone", "address"})
MAX_ADDRESS = 200


def is_staff(viewer: Viewer) -> bool:
    return access.role_of(viewer) in STAFF_ROLES or MANAGE in viewer.extra_permissions


def scope(viewer: Viewer) -> ColumnElement[bool]:
    """The residents `viewer` may address: their own organisation's, if they keep residents' records
    (platform administrators and scripts: every organisation's, as row-level security allows)."""
    role = access.role_of(viewer)
    if role == R.PLATFORM_ADMIN or (role == R.SYSTEM and viewer.organization_id is None):
        return true()
    if not is_staff(viewer) or viewer.organization_id is None:
        return false()
    return Resident.organization_id == viewer.organization_id


def sees_contact(viewer: Viewer, resident: Resident) -> bool:
    """A resident's phone and address: for the serving staff of the resident's organisation only."""
    role = access.role_of(viewer)
    if role == R.SYSTEM:
        return True
    serving = role in SERVING_ROLES or MANAGE in viewer.extra_permissions
    return serving and viewer.organization_id == resident.organization_id


def _require_staff(ctx: ServiceContext) -> None:
    access.require_signed_in(ctx)
    if not is_staff(ctx.viewer):
        raise DomainError("FORBIDDEN", "You may not do this.")


def _validated(fields: dict[str, Any]) -> dict[str, Any]:
    v = Validator()
    values: dict[str, Any] = {}
    if "name" in fields:
        values["name"] = check.text(v, ("input", "name"), fields["name"], max_length=50, label=_("Name"))
    if "phone" in fields:
        values["phone"] = check.phone(v, ("input", "phone"), fields["phone"], required=False) or ""
    if "address" in fields:
        values["address"] = (
            check.text(v, ("input", "address"), fields["address"] or "", max_length=MAX_ADDRESS, required=False) or ""
        )
    if "community_id" in fields:
        values["community_id"] = fields["community_id"]
    v.raise_if_any()
    return values


async def _check_community(ctx: ServiceContext, community_id: int | None, organization_id: int) -> None:
    """The community is one the caller sees, of the resident's organisation (the database checks the same)."""
    if community_id is None:
        return
    community = await get(ctx, Community, community_id, what=_("Community"), field=("input", "communityId"))
    if community.organization_id != organization_id:  # only a platform administrator sees it at all
        raise DomainError(
            "ORGANIZATION_MISMATCH", "The community belongs to another organisation.", ("input", "communityId")
        )


async def create_resident(
    ctx: ServiceContext, *, name: str, community_id: int | None, phone: str = "", address: str = ""
) -> Resident:
    """A resident of the caller's organisation (in one of its communities, if one is named)."""
    _require_staff(ctx)
    values = _validated({"name": name, "phone": phone, "address": address, "community_id": community_id})
    organization_id = ctx.viewer.organization_id
    if organization_id is None:
        raise DomainError("REQUIRED", "Act as a member of an organisation to keep records of residents.")
    await _check_community(ctx, community_id, organization_id)
    resident = Resident(organization_id=organization_id, **values)
    ctx.session.add(resident)
    await flush(ctx)
    return resident


async def get_resident(ctx: ServiceContext, resident_id: int, *, lock: bool = False) -> Resident:
    """The resident, or NOT_FOUND -- for one the caller may not address exactly as for a missing one."""
    access.require_signed_in(ctx)
    return await get(
        ctx,
        Resident,
        resident_id,
        what=_("Resident"),
        field=("input", "residentId"),
        lock=lock,
        scope=scope(ctx.viewer),
    )


async def update_resident(ctx: ServiceContext, resident_id: int, **fields: Any) -> Resident:
    """Change the given fields (name, community_id, phone, address); absent ones keep their value."""
    unknown = set(fields) - UPDATABLE
    if unknown:
        raise DomainError("INVALID_INPUT", "Unknown fields: {values}.", ("input",), values=tuple(sorted(unknown)))
    _require_staff(ctx)
    resident = await get_resident(ctx, resident_id, lock=True)
    values = _validated(fields)
    if "community_id" in values and values["community_id"] != resident.community_id:
        await _check_community(ctx, values["community_id"], resident.organization_id)
    for key, value in values.items():
        setattr(resident, key, value)
    await flush(ctx)
    return resident


async def residents_by_id(ctx: ServiceContext, ids: list[int]) -> dict[int, Resident]:
    """The residents among `ids` the caller may address (for loaders: one query for a whole page)."""
    if not ids or not is_staff(ctx.viewer):
        return {}
    rows = await ctx.session.scalars(select(Resident).where(Resident.id.in_(ids), scope(ctx.viewer)))
    return {r.id: r for r in rows}
