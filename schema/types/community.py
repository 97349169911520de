"""Community and its liaison team."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import Info, relay

from core import models
from core.services import help_requests, privacy
from core.services.pagination import page_size
from core.vocab import RequestStatus
from schema.loaders import WindowKey
from schema.prefetch import reference
from schema.types import enums
from schema.types.common import Connection
from schema.types.nodes import resolve_nodes
from schema.types.reference import District, Organization

if TYPE_CHECKING:
    from schema.types.help_request import HelpRequest
    from schema.types.volunteer import Volunteer

HelpRequestRef = Annotated["HelpRequest", strawberry.lazy("schema.types.help_request")]
VolunteerRef = Annotated["Volunteer", strawberry.lazy("schema.types.volunteer")]


def _requests_of(statuses: Any) -> Any:
    # The loaders key on the statuses' plain values (hashable, sorted): back to the enum for the service.
    return help_requests.filtered(
        help_requests.HelpRequestFilter(statuses=tuple(RequestStatus(s) for s in statuses or ()))
    )


def _volunteer(row: Any) -> Any:
    from schema.types.volunteer import Volunteer

    return Volunteer.from_model(row)


@strawberry.type(description="A seat on a community's work group.")
class CommunityLiaison:
    role: enums.LiaisonRole  # type: ignore[valid-type]
    since: datetime
    volunteer_id: strawberry.Private[int]

    volunteer: VolunteerRef | None = reference(
        lambda ld: ld.volunteer,
        "volunteer_id",
        lambda row: _volunteer(row),
        description="Null when the volunteer is outside what you may see.",
    )


@strawberry.type(description="A residential community (社区) whose head posts needs.")
class Community(relay.Node):
    id: relay.NodeID[int]
    name: str
    street: str
    latitude: float | None
    longitude: float | None
    head_name: str
    created_at: datetime
    head_phone_value: strawberry.Private[str | None]
    district_id: strawberry.Private[int]
    organization_id: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, m: models.Community) -> Community:
        return cls(
            id=m.id,
            name=m.name,
            street=m.street,
            latitude=m.latitude,
            longitude=m.longitude,
            head_name=m.head_name,
            head_phone_value=m.head_phone,
            created_at=m.created_at,
            district_id=m.district_id,
            organization_id=m.organization_id,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await resolve_nodes(info, node_ids, lambda ld: ld.community, cls.from_model, required)

    @strawberry.field(description="Sensitive. Masked unless you coordinate this community or are its head.")
    def head_phone(self, info: Info) -> str | None:
        viewer = info.context.viewer
        if privacy.sees_contact(viewer) or (viewer.role == "community_head" and viewer.community_id == self.id):
            if self.head_phone_value:
                info.context.note_sensitive_read("Community", self.id, "headPhone")
            return self.head_phone_value
        return privacy.mask_phone(self.head_phone_value)

    district: District = reference(lambda ld: ld.district, "district_id", District.from_model)
    organization: Organization | None = reference(
        lambda ld: ld.organization, "organization_id", Organization.from_model
    )
    liaisons: list[CommunityLiaison] = reference(
        lambda ld: ld.liaisons_by_community,
        "id",
        lambda r: CommunityLiaison(role=enums.LiaisonRole(r.role), since=r.created_at, volunteer_id=r.volunteer_id),
        many=True,
        description="The work group: one professional social worker and two volunteers.",
    )

    @strawberry.field(description="This community's requests, most urgent first.")
    async def help_requests(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        statuses: list[enums.RequestStatus] | None = None,  # type: ignore[valid-type]
    ) -> Connection[HelpRequestRef]:
        from schema.types.help_request import HelpRequest

        size = page_size(first, info.context.settings.max_page_size)
        filt = tuple(sorted(s.value for s in statuses)) if statuses else None
        model = models.HelpRequest
        loaders = info.context.loaders
        page = await loaders.window(
            "community_requests", _requests_of, model.community_id, help_requests.BY_URGENCY
        ).load(WindowKey(self.id, size, after, filt))
        counter = loaders.count("community_requests", _requests_of, model.community_id)
        return Connection.build(page, HelpRequest.from_model, lambda: counter.load((self.id, filt)))
