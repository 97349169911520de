"""HelpRequest and its lifecycle history."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import Info, relay

from core import models
from core.services import privacy
from schema.loaders import Loaders
from schema.prefetch import flag, now_or_later, reference, then
from schema.types import enums
from schema.types.community import Community
from schema.types.nodes import resolve_nodes

if TYPE_CHECKING:
    from schema.types.assignment import Assignment

AssignmentRef = Annotated["Assignment", strawberry.lazy("schema.types.assignment")]


@strawberry.type(description="One step of a request's lifecycle.")
class StatusChange:
    from_status: enums.RequestStatus | None  # type: ignore[valid-type]
    to_status: enums.RequestStatus  # type: ignore[valid-type]
    actor: str
    reason: str
    at: datetime

    @classmethod
    def from_row(cls, r: Any) -> StatusChange:
        return cls(
            from_status=enums.RequestStatus(r.from_status) if r.from_status else None,
            to_status=enums.RequestStatus(r.to_status),
            actor=r.actor,
            reason=r.reason,
            at=r.created_at,
        )


@functools.cache
def _assignment_type() -> Any:
    # Imported on first use (the modules refer to each other), once: an import statement per row was a
    # measurable part of a page with offers.
    from schema.types.assignment import Assignment

    return Assignment


def _assignment(row: Any) -> Any:
    return _assignment_type().from_model(row)


# Whether a volunteer viewer holds an accepted offer on the request: what unmasks its sensitive fields.
def _holds_accepted(ld: Loaders) -> Any:
    return ld.holds_accepted


@strawberry.type(description="A need posted by a community or resident.")
class HelpRequest(relay.Node):
    id: relay.NodeID[int]
    title: str
    description: str
    category: enums.RequestCategory  # type: ignore[valid-type]
    population_tags: list[enums.PopulationTag]  # type: ignore[valid-type]
    beneficiaries: int
    volunteers_needed: int
    urgency: enums.Urgency  # type: ignore[valid-type]
    needed_by: datetime | None
    required_skills: list[str]
    required_credentials: list[enums.CredentialKind]  # type: ignore[valid-type]
    requester_name: str
    latitude: float | None
    longitude: float | None
    status: enums.RequestStatus  # type: ignore[valid-type]
    status_changed_at: datetime
    created_at: datetime
    updated_at: datetime
    community_id: strawberry.Private[int]
    duplicate_of_id: strawberry.Private[int | None]
    phone_value: strawberry.Private[str]
    address_value: strawberry.Private[str]
    health_value: strawberry.Private[str]

    @classmethod
    def from_model(cls, m: models.HelpRequest) -> HelpRequest:
        return cls(
            id=m.id,
            title=m.title,
            description=m.description,
            category=enums.RequestCategory(m.category),
            population_tags=[enums.PopulationTag(t) for t in m.population_tags],
            beneficiaries=m.beneficiaries,
            volunteers_needed=m.volunteers_needed,
            urgency=enums.Urgency(m.urgency),
            needed_by=m.needed_by,
            required_skills=list(m.required_skills),
            required_credentials=[enums.CredentialKind(c) for c in m.required_credentials],
            duplicate_of_id=m.duplicate_of_id,
            requester_name=m.requester_name,
            phone_value=m.requester_phone,
            address_value=m.requester_address,
            health_value=m.health_details,
            latitude=m.latitude,
            longitude=m.longitude,
            status=enums.RequestStatus(m.status),
            status_changed_at=m.status_changed_at,
            created_at=m.created_at,
            updated_at=m.updated_at,
            community_id=m.community_id,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await resolve_nodes(info, node_ids, lambda ld: ld.help_request, cls.from_model, required)

    def _reveals(self, info: Info, field: str) -> bool | Awaitable[bool]:
        def noted(holds: bool) -> bool:
            if privacy.sees_request_details(info.context.viewer, holds):
                info.context.note_sensitive_read("HelpRequest", self.id, field)
                return True
            return False

        return then(now_or_later(info.context.loaders.holds_accepted, self.id), noted)

    @strawberry.field(
        description="Whether you see the requester's phone, address and health details unmasked.",
        metadata=flag(_holds_accepted),
    )
    def sensitive_details_visible(self, info: Info) -> bool:
        viewer = info.context.viewer
        return then(  # type: ignore[return-value]
            now_or_later(info.context.loaders.holds_accepted, self.id),
            lambda holds: privacy.sees_request_details(viewer, holds),
        )

    @strawberry.field(
        description="Sensitive. Masked (138****5678) for volunteers without an accepted assignment.",
        metadata=flag(_holds_accepted),
    )
    def requester_phone(self, info: Info) -> str:
        phone = self.phone_value
        return then(self._reveals(info, "requesterPhone"), lambda shown: phone if shown else privacy.mask_phone(phone))  # type: ignore[return-value]

    @strawberry.field(
        description="Sensitive. Only the first characters unless you may see the details.",
        metadata=flag(_holds_accepted),
    )
    def requester_address(self, info: Info) -> str:
        address = self.address_value
        return then(  # type: ignore[return-value]
            self._reveals(info, "requesterAddress"), lambda shown: address if shown else privacy.mask_text(address)
        )

    @strawberry.field(
        description="Sensitive: diagnoses, medication, pregnancy. Empty unless you may see it.",
        metadata=flag(_holds_accepted),
    )
    def health_details(self, info: Info) -> str:
        health = self.health_value
        return then(self._reveals(info, "healthDetails"), lambda shown: health if shown else "")  # type: ignore[return-value]

    duplicate_of: HelpRequest | None = reference(
        lambda ld: ld.help_request,
        "duplicate_of_id",
        lambda row: HelpRequest.from_model(row),
        description="The open request this one probably repeats (flagged at intake).",
    )
    community: Community = reference(lambda ld: ld.community, "community_id", Community.from_model)
    assignments: list[AssignmentRef] = reference(
        lambda ld: ld.assignments_by_request,
        "id",
        _assignment,
        many=True,
        description="Every volunteer offered to this request, in offer order.",
    )
    history: list[StatusChange] = reference(
        lambda ld: ld.history_by_request,
        "id",
        StatusChange.from_row,
        many=True,
        description="Every status change, oldest first: who, when, from, to and why.",
    )
