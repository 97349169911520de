"""Who may do and see what. Every service and every loader goes through here, so that lists, node(id:),
nested fields, connections and mutations obey one set of rules.

Two kinds of rule:
- permissions: what a role may do at all (ROLE_PERMISSIONS; plugins add theirs through a hook);
- scopes: which rows a viewer may see (SQL conditions added to every query of the resource).
Sensitive fields (phones, addresses, health details) are revealed or masked by `core.services.privacy`.
"""

from __future__ import annotations

from sqlalchemy import false, select, true
from sqlalchemy.sql.elements import ColumnElement

from core.errors import DomainError, NotFound
from core.i18n import Text, _
from core.models import Assignment, Community, CommunityLiaison, HelpRequest, Volunteer
from core.services.context import ServiceContext, Viewer
from core.vocab import Role

R = Role

# What each role may do. Scopes below limit where.
ROLE_PERMISSIONS: dict[Role, frozenset[str]] = {
    R.PLATFORM_ADMIN: frozenset(
        {
            "requests.read",
            "requests.create",
            "requests.coordinate",
            "requests.cancel",
            "assignments.respond",
            "communities.read",
            "communities.manage",
            "volunteers.read",
            "volunteers.manage",
            "reference.manage",
            "plugins.manage",
            "audit.read",
            "accounts.manage",
            "tokens.manage",
        }
    ),
    R.ORGANIZATION_ADMIN: frozenset(
        {
            "requests.read",
            "requests.create",
            "requests.coordinate",
            "requests.cancel",
            "assignments.respond",
            "communities.read",
            "communities.manage",
            "volunteers.read",
            "volunteers.manage",
            "plugins.manage",
            "audit.read",
            "accounts.manage",
            "tokens.manage",
        }
    ),
    R.SOCIAL_WORKER: frozenset(
        {
            "requests.read",
            "requests.create",
            "requests.coordinate",
            "requests.cancel",
            "assignments.respond",
            "communities.read",
            "volunteers.read",
        }
    ),
    R.COUNSELOR: frozenset({"requests.read", "communities.read", "volunteers.read"}),
    R.COMMUNITY_HEAD: frozenset(
        {"requests.read", "requests.create", "requests.cancel", "communities.read", "volunteers.read"}
    ),
    R.VOLUNTEER: frozenset({"requests.read", "assignments.respond", "communities.read", "volunteers.read"}),
    R.PARTNER: frozenset({"requests.read", "requests.create", "communities.read", "volunteers.read"}),
}

# Roles that see the requester's phone, address and health details of every request in their scope.
# A volunteer sees them only while holding an accepted assignment on that request.
SENSITIVE_REQUEST_ROLES = frozenset(
    {R.PLATFORM_ADMIN, R.ORGANIZATION_ADMIN, R.SOCIAL_WORKER, R.COUNSELOR, R.COMMUNITY_HEAD, R.PARTNER, R.SYSTEM}
)
# Roles that see volunteers' and community heads' phone numbers (a volunteer also sees their own).
CONTACT_ROLES = frozenset({R.PLATFORM_ADMIN, R.ORGANIZATION_ADMIN, R.SOCIAL_WORKER, R.COUNSELOR, R.SYSTEM})


def role_of(viewer: Viewer) -> Role | None:
    return Role(viewer.role) if viewer.role else None


def can(viewer: Viewer, permission: str) -> bool:
    role = role_of(viewer)
    if role is None:
        return False
    if role == R.SYSTEM:
        return True
    return permission in ROLE_PERMISSIONS.get(role, frozenset()) or permission in viewer.extra_permissions


def require_signed_in(ctx: ServiceContext) -> None:
    if ctx.viewer.role is None:
        raise DomainError("UNAUTHENTICATED", "Sign in first.")


def require(ctx: ServiceContext, permission: str) -> None:
    """UNAUTHENTICATED for anonymous callers, FORBIDDEN for signed-in ones lacking `permission`."""
    if ctx.viewer.role is None:
        raise DomainError("UNAUTHENTICATED", "Sign in first.")
    if not can(ctx.viewer, permission):
        raise DomainError("FORBIDDEN", "You may not do this.")


def require_manage(ctx: ServiceContext, permission: str, organization_id: int | None, what: Text) -> None:
    """`permission`, and for organisation administrators only within their own organisation (`what`: the
    records managed, a translatable word such as `_("volunteers")`)."""
    require(ctx, permission)
    if role_of(ctx.viewer) == R.ORGANIZATION_ADMIN and organization_id != ctx.viewer.organization_id:
        raise DomainError("FORBIDDEN", "Only {what} of your organisation.", ("input", "organizationId"), what=what)


def owning_organization(ctx: ServiceContext, organization_id: int | None, field: tuple[str, ...]) -> int:
    """The organisation a new record belongs to: the one named, else the caller's own."""
    chosen = organization_id if organization_id is not None else ctx.viewer.organization_id
    if chosen is None:
        raise DomainError("REQUIRED", "Say which organisation this belongs to.", field)
    return chosen


def refuse_move(current: int, changes: dict[str, object] | object, field: tuple[str, ...]) -> None:
    """A record never moves to another organisation: what hangs off it (requests, history, plugin rows)
    belongs to the organisation it was created in."""
    wanted = changes.get("organization_id", current) if isinstance(changes, dict) else current
    if wanted != current:
        raise DomainError("INVALID_INPUT", "A record cannot move to another organisation.", field)


def _served_communities(viewer: Viewer) -> ColumnElement[bool] | object:
    return select(CommunityLiaison.community_id).where(CommunityLiaison.volunteer_id == viewer.volunteer_id)


def _org_communities(viewer: Viewer) -> object:
    return select(Community.id).where(Community.organization_id == viewer.organization_id)


def request_scope(viewer: Viewer) -> ColumnElement[bool]:
    """The help requests `viewer` may see, as a condition on HelpRequest."""
    role = role_of(viewer)
    if role in (R.SYSTEM, R.PLATFORM_ADMIN):
        return true()
    if role in (R.ORGANIZATION_ADMIN, R.PARTNER):
        return HelpRequest.community_id.in_(_org_communities(viewer))
    if role in (R.SOCIAL_WORKER, R.COUNSELOR):
        return HelpRequest.community_id.in_(_served_communities(viewer))
    if role == R.COMMUNITY_HEAD:
        return HelpRequest.community_id == viewer.community_id
    if role == R.VOLUNTEER:
        return HelpRequest.id.in_(select(Assignment.request_id).where(Assignment.volunteer_id == viewer.volunteer_id))
    return false()


def community_scope(viewer: Viewer) -> ColumnElement[bool]:
    role = role_of(viewer)
    if role in (R.SYSTEM, R.PLATFORM_ADMIN):
        return true()
    if role in (R.ORGANIZATION_ADMIN, R.PARTNER):
        return Community.organization_id == viewer.organization_id
    if role in (R.SOCIAL_WORKER, R.COUNSELOR):
        return Community.id.in_(_served_communities(viewer))
    if role == R.COMMUNITY_HEAD:
        return Community.id == viewer.community_id
    if role == R.VOLUNTEER:
        assigned = select(HelpRequest.community_id).join(Assignment, Assignment.request_id == HelpRequest.id)
        return Community.id.in_(assigned.where(Assignment.volunteer_id == viewer.volunteer_id))
    return false()


def volunteer_scope(viewer: Viewer) -> ColumnElement[bool]:
    role = role_of(viewer)
    if role in (R.SYSTEM, R.PLATFORM_ADMIN):
        return true()
    if role in (R.ORGANIZATION_ADMIN, R.SOCIAL_WORKER, R.COUNSELOR):
        return Volunteer.organization_id == viewer.organization_id
    if role == R.VOLUNTEER:
        return Volunteer.id == viewer.volunteer_id
    if role in (R.COMMUNITY_HEAD, R.PARTNER):
        # The people working on their requests.
        working = select(Assignment.volunteer_id).join(HelpRequest, HelpRequest.id == Assignment.request_id)
        return Volunteer.id.in_(working.where(request_scope(viewer)))
    return false()


def assignment_scope(viewer: Viewer) -> ColumnElement[bool]:
    if role_of(viewer) == R.VOLUNTEER:
        return Assignment.volunteer_id == viewer.volunteer_id
    return Assignment.request_id.in_(select(HelpRequest.id).where(request_scope(viewer)))


async def require_in_scope(
    ctx: ServiceContext, model: type, row_id: int, scope: ColumnElement[bool], what: Text = _("Record")
) -> None:
    """NOT_FOUND for rows outside the viewer's scope: whether they exist is not the viewer's business."""
    found = await ctx.session.scalar(select(model.id).where(model.id == row_id, scope))  # type: ignore[attr-defined]
    if found is None:
        raise NotFound(what, ("input", "id"))
