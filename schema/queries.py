"""Root query fields."""

from __future__ import annotations

import inspect
from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry
from strawberry import Info, relay

from core import vocab
from core.errors import DomainError
from core.services import (
    access,
    assignments,
    audit,
    auth,
    communities,
    deadlines,
    help_requests,
    matching,
    organizations,
    planning,
    plugin_roles,
    stats,
    volunteers,
)
from core.services.pagination import page_size
from schema import ids
from schema.exports import ExportsQuery  # the `exports` query (downloads: yunshegong/exports.py)
from schema.mutations.imports import ImportQuery  # importColumns (the import's mapping screen)
from schema.mutations.plugin_roles import PluginRoleInfo, role_infos
from schema.types import enums
from schema.types.account import Account, ApiToken, AuditEntry, Me
from schema.types.account import Role as AccountRole
from schema.types.assignment import Assignment
from schema.types.common import Bucket, Connection
from schema.types.community import Community
from schema.types.deliveries import DeliveriesQuery
from schema.types.enums import to_vocab
from schema.types.help_request import HelpRequest
from schema.types.matching import AssignmentPlan, CoordinatorQueue, MatchCandidate, OverdueRequest
from schema.types.people import PeopleQuery
from schema.types.plugins import InstalledPlugin, installed
from schema.types.reference import District, Organization, Training
from schema.types.situation import SituationQuery
from schema.types.volunteer import Volunteer

MAX_PLAN = 2000


@strawberry.input(description="All given conditions must hold.")
class HelpRequestFilter:
    statuses: list[enums.RequestStatus] | None = None  # type: ignore[valid-type]
    urgencies: list[enums.Urgency] | None = None  # type: ignore[valid-type]
    categories: list[enums.RequestCategory] | None = None  # type: ignore[valid-type]
    community_ids: list[strawberry.ID] | None = None
    district_id: strawberry.ID | None = None
    population_tag: enums.PopulationTag | None = None  # type: ignore[valid-type]
    needed_before: datetime | None = strawberry.field(default=None, description="Deadline earlier than this.")
    search: str | None = strawberry.field(default=None, description="Substring of title or description.")
    overdue: bool | None = strawberry.field(
        default=None,
        description="true: only open requests past the target time of their stage (as `overdue`, but paged); "
        "false: only the others.",
    )

    def to_service(self) -> help_requests.HelpRequestFilter:
        return help_requests.HelpRequestFilter(
            statuses=[vocab.RequestStatus(s.value) for s in self.statuses or ()],
            urgencies=[vocab.Urgency(u.value) for u in self.urgencies or ()],
            categories=[vocab.RequestCategory(c.value) for c in self.categories or ()],
            community_ids=[ids.decode(c, "Community", ("filter", "communityIds")) for c in self.community_ids or ()],
            district_id=ids.decode_optional(self.district_id, "District", ("filter", "districtId")),
            population_tag=to_vocab(vocab.PopulationTag, self.population_tag),
            needed_before=self.needed_before,
            search=self.search,
            overdue=self.overdue,
        )


@strawberry.input
class VolunteerFilter:
    mode: enums.VolunteerMode | None = None  # type: ignore[valid-type]
    availability: enums.Availability | None = None  # type: ignore[valid-type]
    district_id: strawberry.ID | None = None
    team: enums.Team | None = None  # type: ignore[valid-type]
    skills: list[str] | None = strawberry.field(default=None, description="Volunteers holding all of these.")
    search: str | None = strawberry.field(default=None, description="Substring of the name.")

    def to_service(self) -> volunteers.VolunteerFilter:
        return volunteers.VolunteerFilter(
            mode=to_vocab(vocab.VolunteerMode, self.mode),
            availability=to_vocab(vocab.Availability, self.availability),
            district_id=ids.decode_optional(self.district_id, "District", ("filter", "districtId")),
            team=to_vocab(vocab.Team, self.team),
            skills=tuple(self.skills or ()),
            search=self.search,
        )


@strawberry.input
class CommunityFilter:
    district_id: strawberry.ID | None = None
    organization_id: strawberry.ID | None = None
    search: str | None = strawberry.field(default=None, description="Substring of the name.")

    def to_service(self) -> communities.CommunityFilter:
        return communities.CommunityFilter(
            district_id=ids.decode_optional(self.district_id, "District", ("filter", "districtId")),
            organization_id=ids.decode_optional(self.organization_id, "Organization", ("filter", "organizationId")),
            search=self.search,
        )


@strawberry.type(description="A figure a plugin adds to the stats.")
class PluginFigure:
    plugin: str
    key: str
    label: str
    value: Decimal


@strawberry.type
class TeamHours:
    team: str
    hours: Decimal


@strawberry.type(description="Volunteers of one mode.")
class VolunteerModeCount:
    mode: enums.VolunteerMode  # type: ignore[valid-type]
    count: int


@strawberry.type(description="Requests in one status.")
class RequestStatusCount:
    status: enums.RequestStatus  # type: ignore[valid-type]
    count: int


@strawberry.type(description="Requests of one category.")
class RequestCategoryCount:
    category: enums.RequestCategory  # type: ignore[valid-type]
    count: int


@strawberry.type(description="Requests of one urgency.")
class UrgencyCount:
    urgency: enums.Urgency  # type: ignore[valid-type]
    count: int


@strawberry.type(description="The platform's headline figures.")
class Stats:
    volunteers_total: int
    volunteers_by_mode: list[VolunteerModeCount]
    volunteers_by_district: list[Bucket] = strawberry.field(description="Keyed by the district's name.")
    requests_total: int
    requests_by_status: list[RequestStatusCount]
    requests_by_category: list[RequestCategoryCount]
    requests_by_urgency: list[UrgencyCount]
    communities_total: int
    communities_served: int = strawberry.field(description="Communities with at least one fulfilled request.")
    beneficiaries_served: int = strawberry.field(description="People covered by fulfilled requests.")
    hours_served: Decimal
    hours_by_team: list[TeamHours] = strawberry.field(description="Completed hours per volunteer team.")

    @strawberry.field(description="Figures from the plugins your organisation has enabled.")
    async def plugin_figures(self, info: Info) -> list[PluginFigure]:
        host = info.context.app.host
        if host is None:
            return []
        figures = await info.context.read(stats.plugin_figures, host)
        return [PluginFigure(plugin=p, key=f.key, label=f.label, value=Decimal(f.value)) for p, f in figures]


async def _signed_in(ctx: object) -> None:
    access.require_signed_in(ctx)  # type: ignore[arg-type]


def _buckets(items: list[stats.Bucket]) -> list[Bucket]:
    return [Bucket(key=b.key, count=b.count) for b in items]


def _counts(items: list[stats.Bucket], cls: type, enum: Any, field: str) -> list[Any]:
    """Counts keyed by a vocabulary: the key as the same enum the rest of the API uses, not a string."""
    return [cls(**{field: enum(b.key), "count": b.count}) for b in items]


async def _resolve_global_ids(info: Info, raw_ids: list[str]) -> list[Any]:
    """Each ID on its own: the object, None where it is unknown or outside the caller's scope, or an
    INVALID_ID error (returned, so that graphql-core reports it at that index and leaves the rest whole)
    where it is malformed or names no kind of object. One batched `resolve_nodes` call per type."""
    out: list[Any] = [None] * len(raw_ids)
    by_type: dict[type, list[tuple[int, str]]] = {}
    for index, raw in enumerate(raw_ids):
        field = ("ids", str(index)) if len(raw_ids) > 1 or info.field_name == "nodes" else ("id",)
        try:
            type_name, pk = ids.decode_any(raw, field)
            definition = info.schema.get_type_by_name(type_name)
            cls = getattr(definition, "origin", None)
            if pk <= 0 or not (isinstance(cls, type) and issubclass(cls, relay.Node)):
                raise DomainError("INVALID_ID", "“{value}” names no kind of object.", field, value=raw[:40])
        except DomainError as invalid:
            out[index] = invalid
            continue
        by_type.setdefault(cls, []).append((index, str(pk)))
    for cls, wanted in by_type.items():
        found = cls.resolve_nodes(info=info, node_ids=[pk for _, pk in wanted], required=False)
        found = await found if inspect.isawaitable(found) else found
        for (index, _), node in zip(wanted, list(found), strict=True):
            out[index] = node
    return out


def node_fields() -> dict[str, object]:
    """Fresh `node`/`nodes` root fields (every schema built gets its own resolvers)."""

    async def node(info: Info, id: strawberry.ID) -> relay.Node | None:
        (found,) = await _resolve_global_ids(info, [id])
        if isinstance(found, Exception):
            raise found
        return found  # type: ignore[no-any-return]

    async def nodes(info: Info, ids: list[strawberry.ID]) -> list[relay.Node | None]:
        # As many as a page holds: each ID is decoded and looked up on the event loop, and 40,000 of them
        # from an anonymous caller held the service for seconds.
        limit = info.context.settings.max_page_size
        if len(ids) > limit:
            raise DomainError("PAGE_SIZE_EXCEEDED", "At most {limit} IDs at once.", ("ids",), limit=limit)
        return await _resolve_global_ids(info, list(ids))

    return {
        "node": strawberry.field(resolver=node, description="Any object by its global ID; null if unknown."),
        "nodes": strawberry.field(
            resolver=nodes,
            description="Objects by global ID, in order: null where unknown; an INVALID_ID error at the index "
            "of a malformed ID, the others still answered. At most the largest page size of IDs at once.",
        ),
    }


@strawberry.type
class CoreQuery(PeopleQuery, DeliveriesQuery, SituationQuery, ExportsQuery, ImportQuery):
    @strawberry.field(description="Help requests, most urgent first by default.")
    async def help_requests(
        self,
        info: Info,
        filter: HelpRequestFilter | None = None,
        order_by: enums.HelpRequestOrder = enums.HelpRequestOrder.URGENCY,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[HelpRequest]:
        size = page_size(first, info.context.settings.max_page_size)
        f = (filter or HelpRequestFilter()).to_service()
        page = await info.context.read(help_requests.list_requests, f, order=order_by.value, first=size, after=after)
        return Connection.build(page, HelpRequest.from_model, lambda: info.context.read(lambda _: page.total_count()))

    @strawberry.field
    async def volunteers(
        self, info: Info, filter: VolunteerFilter | None = None, first: int | None = None, after: str | None = None
    ) -> Connection[Volunteer]:
        size = page_size(first, info.context.settings.max_page_size)
        f = (filter or VolunteerFilter()).to_service()
        page = await info.context.read(volunteers.list_volunteers, f, first=size, after=after)
        return Connection.build(page, Volunteer.from_model, lambda: info.context.read(lambda _: page.total_count()))

    @strawberry.field
    async def communities(
        self, info: Info, filter: CommunityFilter | None = None, first: int | None = None, after: str | None = None
    ) -> Connection[Community]:
        size = page_size(first, info.context.settings.max_page_size)
        f = (filter or CommunityFilter()).to_service()
        page = await info.context.read(communities.list_communities, f, first=size, after=after)
        return Connection.build(page, Community.from_model, lambda: info.context.read(lambda _: page.total_count()))

    @strawberry.field(description="The city's districts, counties and development zones (a short list).")
    async def districts(self, info: Info) -> list[District]:
        return [District.from_model(d) for d in await info.context.read(organizations.list_districts)]

    @strawberry.field
    async def organizations(self, info: Info) -> list[Organization]:
        return [Organization.from_model(o) for o in await info.context.read(organizations.list_organizations)]

    @strawberry.field
    async def trainings(self, info: Info) -> list[Training]:
        return [Training.from_model(t) for t in await info.context.read(volunteers.list_trainings)]

    @strawberry.field(description="Volunteers for a request, best first, each with the reasons for its rank.")
    async def match_candidates(self, info: Info, request_id: strawberry.ID, first: int = 10) -> list[MatchCandidate]:
        size = page_size(first, info.context.settings.max_page_size)
        pk = ids.decode(request_id, "HelpRequest", ("requestId",))
        host = info.context.app.host
        criteria = host.match_criteria if host else []
        found = await info.context.read(matching.candidates, pk, size, info.context.app.policy, criteria)
        return [MatchCandidate.from_candidate(c) for c in found]

    @strawberry.field(description="A global assignment proposal for many requests (writes nothing).")
    async def plan_assignments(self, info: Info, request_ids: list[strawberry.ID]) -> AssignmentPlan:
        if len(request_ids) > MAX_PLAN:
            raise DomainError("OUT_OF_RANGE", "At most {limit} requests per plan.", ("requestIds",), limit=MAX_PLAN)
        pks = [ids.decode(r, "HelpRequest", ("requestIds", str(i))) for i, r in enumerate(request_ids)]
        plan = await info.context.read(planning.plan, pks, info.context.app.policy)
        return AssignmentPlan.from_plan(plan)

    @strawberry.field(description="Requests past the target time of their stage, most urgent first.")
    async def overdue(self, info: Info, first: int = 50) -> list[OverdueRequest]:
        size = page_size(first, info.context.settings.max_page_size)
        return [OverdueRequest.from_overdue(o) for o in await info.context.read(deadlines.overdue, size)]

    @strawberry.field(
        description="The work list of social workers and administrators: to verify, to match, offers awaiting answers."
    )
    async def queue(self, info: Info, first: int = 50) -> CoordinatorQueue:
        size = page_size(first, info.context.settings.max_page_size)
        q = await info.context.read(deadlines.queue, size)
        return CoordinatorQueue(
            unverified=[HelpRequest.from_model(r) for r in q.unverified],
            unmatched=[HelpRequest.from_model(r) for r in q.unmatched],
            pending_offers=[Assignment.from_model(a) for a in q.pending_offers],
        )

    @strawberry.field(description="Your own assignments (volunteers), newest first.")
    async def my_assignments(
        self,
        info: Info,
        statuses: list[enums.AssignmentStatus] | None = None,  # type: ignore[valid-type]
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Assignment]:
        size = page_size(first, info.context.settings.max_page_size)
        wanted = [vocab.AssignmentStatus(s.value) for s in statuses or ()]
        page = await info.context.read(assignments.list_mine, wanted, first=size, after=after)
        return Connection.build(page, Assignment.from_model, lambda: info.context.read(lambda _: page.total_count()))

    @strawberry.field(description="Who you are signed in as (role null: anonymous).")
    async def me(self, info: Info) -> Me:
        viewer = info.context.viewer
        account = None
        if viewer.account_id is not None:
            account = Account.from_model(await info.context.read(auth.get_account, viewer.account_id))
        role = vocab.Role(viewer.role) if viewer.role else None
        permissions = sorted(access.ROLE_PERMISSIONS.get(role, frozenset()) | viewer.extra_permissions) if role else []
        return Me(
            label=viewer.label,
            role=AccountRole(role.value) if role else None,
            account=account,
            organization_id=viewer.organization_id,
            permissions=permissions,
        )

    @strawberry.field(description="API tokens of your organisation (all, for platform administrators).")
    async def api_tokens(self, info: Info) -> list[ApiToken]:
        return [ApiToken.from_model(t) for t in await info.context.read(auth.list_api_tokens)]

    @strawberry.field(description="The audit trail, newest first (administrators; read-only).")
    async def audit_log(
        self,
        info: Info,
        record_id: strawberry.ID | None = None,
        actions: list[str] | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[AuditEntry]:
        size = page_size(first, info.context.settings.max_page_size)
        f = audit.AuditFilter(actions=tuple(actions or ()))
        if record_id is not None:
            f.record_type, f.record_id = ids.decode_any(record_id, ("recordId",))
        page = await info.context.read(audit.list_entries, f, first=size, after=after)
        return Connection.build(page, AuditEntry.from_model, lambda: info.context.read(lambda _: page.total_count()))

    @strawberry.field(description="Plugins installed in this deployment (enable them per organisation).")
    async def plugins(self, info: Info) -> list[InstalledPlugin]:
        await info.context.read(_signed_in)
        return installed(info)

    @strawberry.field(description="Roles the installed plugins declare, to grant to accounts (grantPluginRole).")
    async def plugin_roles(self, info: Info) -> list[PluginRoleInfo]:
        await info.context.read(_signed_in)
        return role_infos(info.context.app.host)

    @strawberry.field(description="The plugin roles granted to an account (administrators of its organisation).")
    async def account_plugin_roles(self, info: Info, account_id: strawberry.ID) -> list[str]:
        pk = ids.decode(account_id, "Account", ("accountId",))
        return (await info.context.read(plugin_roles.roles_of, [pk]))[pk]

    @strawberry.field(description="Volunteers by mode and district, requests by status, category and urgency …")
    async def stats(self, info: Info) -> Stats:
        s = await info.context.read(stats.compute)
        return Stats(
            volunteers_total=s.volunteers_total,
            volunteers_by_mode=_counts(s.volunteers_by_mode, VolunteerModeCount, enums.VolunteerMode, "mode"),
            volunteers_by_district=_buckets(s.volunteers_by_district),
            requests_total=s.requests_total,
            requests_by_status=_counts(s.requests_by_status, RequestStatusCount, enums.RequestStatus, "status"),
            requests_by_category=_counts(
                s.requests_by_category, RequestCategoryCount, enums.RequestCategory, "category"
            ),
            requests_by_urgency=_counts(s.requests_by_urgency, UrgencyCount, enums.Urgency, "urgency"),
            communities_total=s.communities_total,
            communities_served=s.communities_served,
            beneficiaries_served=s.beneficiaries_served,
            hours_served=s.hours_served,
            hours_by_team=[TeamHours(team=t, hours=h) for t, h in s.hours_by_team],
        )
