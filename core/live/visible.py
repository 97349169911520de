"""Reloading what an event names, as the subscriber sees it: the service's own visibility rules (permissions
and scopes, `core.services.access`) on top of row-level security. Each returns None for a record the
subscriber may not see -- exactly as for one that does not exist."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from core.models import Assignment, Community, HelpRequest
from core.services import access
from core.services.context import ServiceContext
from core.vocab import Role


@dataclass(frozen=True)
class RequestFilter:
    """What a helpRequestChanged subscriber asked for (empty: everything it may see)."""

    community_ids: frozenset[int] = field(default_factory=frozenset)
    district_ids: frozenset[int] = field(default_factory=frozenset)
    urgencies: frozenset[str] = field(default_factory=frozenset)

    def may_match(self, community_id: object, urgency: object) -> bool:
        """Whether an event with these routing keys can concern the subscriber (False: skip it, no query).
        Districts are not among the keys: they are checked by the reload."""
        if self.community_ids and community_id not in self.community_ids:
            return False
        return not (self.urgencies and urgency not in self.urgencies)


async def visible_request(ctx: ServiceContext, request_id: int, f: RequestFilter | None = None) -> HelpRequest | None:
    if not access.can(ctx.viewer, "requests.read"):
        return None
    stmt = select(HelpRequest).where(HelpRequest.id == request_id, access.request_scope(ctx.viewer))
    if f is not None:
        if f.community_ids:
            stmt = stmt.where(HelpRequest.community_id.in_(f.community_ids))
        if f.urgencies:
            stmt = stmt.where(HelpRequest.urgency.in_(f.urgencies))
        if f.district_ids:
            in_districts = select(Community.id).where(Community.district_id.in_(f.district_ids))
            stmt = stmt.where(HelpRequest.community_id.in_(in_districts))
    return (await ctx.session.scalars(stmt)).one_or_none()


async def request_was_visible(
    ctx: ServiceContext, request_id: int, community_id: object, urgency: object, f: RequestFilter | None = None
) -> bool:
    """Whether request `request_id`, with its previous community and urgency (an update's "was" keys, or the
    current ones where they did not change), was something the subscriber saw under filter `f`: then a
    reload that no longer finds it means it left their view (REMOVED), and its id tells them nothing new.

    Request visibility depends on the row only through its community for every role but volunteers
    (access.request_scope: the organisation's, the served or the headed community -- which is what
    access.community_scope states for communities), and for volunteers on their assignments, which an
    update of the request does not change."""
    if not isinstance(community_id, int) or not access.can(ctx.viewer, "requests.read"):
        return False
    if f is not None and not f.may_match(community_id, urgency):
        return False
    if access.role_of(ctx.viewer) == Role.VOLUNTEER:
        stmt = select(HelpRequest.id).where(HelpRequest.id == request_id, access.request_scope(ctx.viewer))
        return (await ctx.session.scalar(stmt)) is not None
    stmt = select(Community.id).where(Community.id == community_id, access.community_scope(ctx.viewer))
    if f is not None and f.district_ids:
        stmt = stmt.where(Community.district_id.in_(f.district_ids))
    return (await ctx.session.scalar(stmt)) is not None


async def own_offer(ctx: ServiceContext, assignment_id: int) -> Assignment | None:
    """An assignment of the signed-in volunteer (myOffers)."""
    if ctx.viewer.volunteer_id is None or not access.can(ctx.viewer, "assignments.respond"):
        return None
    stmt = select(Assignment).where(Assignment.id == assignment_id, Assignment.volunteer_id == ctx.viewer.volunteer_id)
    return (await ctx.session.scalars(stmt)).one_or_none()


async def visible_assignment(ctx: ServiceContext, assignment_id: int) -> Assignment | None:
    if not access.can(ctx.viewer, "requests.read"):
        return None
    stmt = select(Assignment).where(Assignment.id == assignment_id, access.assignment_scope(ctx.viewer))
    return (await ctx.session.scalars(stmt)).one_or_none()
