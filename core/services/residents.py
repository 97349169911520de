"""Residents: the one core record of a person an organisation serves (decisions.md, "One identity").

Plugins reach this module as `core.residents` and call it with their own context: counseling's client,
casework's client and maternal care's mother each point at a resident.

Confidential data by relation, not by rank (decisions.md). A resident is seen by:
- those who *serve* them, as a plugin says (hook `register_resident_relations`: casework, the social worker
  and supervisor of one of their cases; counseling, a counselor who holds sessions with them);
- the account that recorded them (`recorded_by_account_id`);
- administrators of the resident's organisation, and platform administrators;
- scripts and jobs (role `system`).
Everyone else -- another social worker or counselor of the same organisation, volunteers, community heads,
members of another organisation -- gets NOT_FOUND, exactly as for a missing resident.

Phone and address are sensitive: in full only for those who serve the resident (and scripts); masked for
everyone else who sees the record, its recorder and administrators included. Only those who serve the
resident change the record (`update_resident`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import false, or_, select, true
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
# Roles that keep records of residents (create them; read those they serve or recorded) in their organisation.
STAFF_ROLES = frozenset({R.PLATFORM_ADMIN, R.ORGANIZATION_ADMIN, R.SOCIAL_WORKER, R.COUNSELOR, R.SYSTEM})
# Roles that see every resident of their organisation (contact masked): they answer for the organisation.
ADMIN_ROLES = frozenset({R.PLATFORM_ADMIN, R.ORGANIZATION_ADMIN})
UPDATABLE = frozenset({"name", "community_id", "phone", "address"})
MAX_ADDRESS = 200
_SERVED_MEMO = "residents.served"

# `serves(viewer, resident_id)`: a condition on the given `residents.id` column, true for the residents the
# viewer serves by the plugin's relation, or None when the viewer serves nobody that way.
ServesPredicate = Callable[[Viewer, ColumnElement[int]], ColumnElement[bool] | None]


@dataclass(frozen=True)
class ResidentRelation:
    """How a plugin's staff serve residents (hook `register_resident_relations`): `name` is the plugin's
    name or `<plugin name>.<relation>`; `serves` builds the SQL condition (see `ServesPredicate`)."""

    name: str
    serves: ServesPredicate


def registered_relations(ctx: ServiceContext) -> list[ResidentRelation]:
    """The relations of the loaded plugins (without a plugin host: none). A plugin disabled for an organisation
    still names whom its staff served: the relation is in its rows, not in the switch."""
    call_each = getattr(ctx.events, "call_each", None)
    if call_each is None:
        return []
    found: list[ResidentRelation] = []
    for plugin, value in call_each("register_resident_relations"):
        for relation in value or ():
            if not isinstance(relation, ResidentRelation):
                raise TypeError(f"plugin {plugin.name!r}: register_resident_relations must return ResidentRelation")
            if relation.name != plugin.name and not relation.name.startswith(f"{plugin.name}."):
                raise ValueError(f"plugin {plugin.name!r}: resident relation {relation.name!r} outside its namespace")
            found.append(relation)
    return found


def is_staff(viewer: Viewer) -> bool:
    return access.role_of(viewer) in STAFF_ROLES or MANAGE in viewer.extra_permissions


def _everywhere(viewer: Viewer) -> bool:
    role = access.role_of(viewer)
    return role == R.PLATFORM_ADMIN or (role == R.SYSTEM and viewer.organization_id is None)


def serving(ctx: ServiceContext, resident_id: ColumnElement[int] | None = None) -> ColumnElement[bool]:
    """The residents the caller serves by some plugin's relation, in the caller's organisation (scripts: all)."""
    column = Resident.id if resident_id is None else resident_id
    viewer = ctx.viewer
    if access.role_of(viewer) == R.SYSTEM:
        return true()
    if viewer.organization_id is None:
        return false()
    conditions = [c for r in registered_relations(ctx) if (c := r.serves(viewer, column)) is not None]
    return or_(*conditions) if conditions else false()


def scope(ctx: ServiceContext) -> ColumnElement[bool]:
    """The residents the caller may address (see the module's docstring). The same condition for `resident`,
    node lookups, nested fields and every service that names a resident."""
    viewer = ctx.viewer
    if _everywhere(viewer):
        return true()
    role = access.role_of(viewer)
    if viewer.organization_id is None:
        return false()
    in_organisation: ColumnElement[bool] = Resident.organization_id == viewer.organization_id
    if role in ADMIN_ROLES or role == R.SYSTEM:
        return in_organisation
    mine: ColumnElement[bool] = (
        Resident.recorded_by_account_id == viewer.account_id if viewer.account_id is not None else false()
    )
    return in_organisation & or_(mine, serving(ctx))


async def served_among(ctx: ServiceContext, ids: list[int]) -> set[int]:
    """Which of `ids` the caller serves: one query for a page, remembered for the request."""
    memo: dict[int, bool] = ctx.memo.setdefault(_SERVED_MEMO, {})  # type: ignore[call-overload]
    missing = [i for i in ids if i not in memo]
    if missing:
        rows = set(await ctx.session.scalars(select(Resident.id).where(Resident.id.in_(missing), serving(ctx))))
        for i in missing:
            memo[i] = i in rows
    return {i for i in ids if memo[i]}


async def serves(ctx: ServiceContext, resident: Resident) -> bool:
    """Whether the caller serves `resident` (their organisation's, by a plugin's relation; scripts: always)."""
    if access.role_of(ctx.viewer) == R.SYSTEM:
        return True
    if ctx.viewer.organization_id != resident.organization_id:
        return False
    return bool(await served_among(ctx, [resident.id]))


async def sees_contact(ctx: ServiceContext, resident: Resident) -> bool:
    """A resident's phone and address: for those who serve them (and scripts) only; administrators and the
    recorder read them masked."""
    return await serves(ctx, resident)


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
    resident = Resident(organization_id=organization_id, recorded_by_account_id=ctx.viewer.account_id, **values)
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
        scope=scope(ctx),
    )


async def update_resident(ctx: ServiceContext, resident_id: int, **fields: Any) -> Resident:
    """Change the given fields (name, community_id, phone, address); absent ones keep their value. Those who
    serve the resident only (FORBIDDEN for others who see the record, NOT_FOUND for the rest)."""
    unknown = set(fields) - UPDATABLE
    if unknown:
        raise DomainError("INVALID_INPUT", "Unknown fields: {values}.", ("input",), values=tuple(sorted(unknown)))
    access.require_signed_in(ctx)
    resident = await get_resident(ctx, resident_id, lock=True)
    if not await serves(ctx, resident):
        # Seen (recorded it, or an administrator) but not served: the record is theirs who serve the person.
        raise DomainError("FORBIDDEN", "Only those who serve the resident change the record.", ("input", "id"))
    values = _validated(fields)
    if "community_id" in values and values["community_id"] != resident.community_id:
        await _check_community(ctx, values["community_id"], resident.organization_id)
    for key, value in values.items():
        setattr(resident, key, value)
    await flush(ctx)
    return resident


async def residents_by_id(ctx: ServiceContext, ids: list[int]) -> dict[int, Resident]:
    """The residents among `ids` the caller may address (for loaders: one query for a whole page)."""
    if not ids:
        return {}
    rows = list(await ctx.session.scalars(select(Resident).where(Resident.id.in_(ids), scope(ctx))))
    await served_among(ctx, [r.id for r in rows])  # the page's contact decision, in one query
    return {r.id: r for r in rows}
