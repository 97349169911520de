"""Volunteer, credentials and completed trainings."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import Info, relay

from core import models
from core.services import assignments, privacy
from core.services.pagination import page_size
from schema.loaders import WindowKey
from schema.prefetch import flag, now_or_later, reference
from schema.types import enums
from schema.types.common import Connection
from schema.types.nodes import resolve_nodes
from schema.types.reference import District, Organization, Training

if TYPE_CHECKING:
    from schema.types.assignment import Assignment

AssignmentRef = Annotated["Assignment", strawberry.lazy("schema.types.assignment")]


def _assignments_of(statuses: Any) -> Any:
    return assignments.filtered(statuses or ())


@strawberry.type(description="A pass, permit or licence, valid between two times.")
class VolunteerCredential:
    kind: enums.CredentialKind  # type: ignore[valid-type]
    number: str
    issued_by: str
    valid_from: datetime | None
    expires_at: datetime | None

    @classmethod
    def from_row(cls, r: Any) -> VolunteerCredential:
        return cls(
            kind=enums.CredentialKind(r.kind),
            number=r.number,
            issued_by=r.issued_by,
            valid_from=r.valid_from,
            expires_at=r.expires_at,
        )

    @strawberry.field(description="Whether the credential is valid at `at` (default: now).")
    def is_valid(self, info: Info, at: datetime | None = None) -> bool:
        moment = at or info.context.app.clock()
        return (self.valid_from is None or self.valid_from <= moment) and (
            self.expires_at is None or moment < self.expires_at
        )


@strawberry.type
class CompletedTraining:
    completed_at: datetime
    training_id: strawberry.Private[int]

    training: Training = reference(lambda ld: ld.training, "training_id", Training.from_model)


@strawberry.type(description="A social worker or volunteer.")
class Volunteer(relay.Node):
    id: relay.NodeID[int]
    name: str
    mode: enums.VolunteerMode  # type: ignore[valid-type]
    teams: list[enums.Team]  # type: ignore[valid-type]
    skills: list[str]
    availability: enums.Availability  # type: ignore[valid-type]
    max_concurrent_assignments: int
    active_assignment_count: int = strawberry.field(description="Offered or accepted assignments held now.")
    latitude: float | None
    longitude: float | None
    created_at: datetime
    district_id: strawberry.Private[int | None]
    organization_id: strawberry.Private[int | None]
    phone_value: strawberry.Private[str]

    @classmethod
    def from_model(cls, m: models.Volunteer) -> Volunteer:
        return cls(
            id=m.id,
            name=m.name,
            phone_value=m.phone,
            mode=enums.VolunteerMode(m.mode),
            teams=[enums.Team(t) for t in m.teams],
            skills=list(m.skills),
            availability=enums.Availability(m.availability),
            max_concurrent_assignments=m.max_concurrent_assignments,
            active_assignment_count=m.active_assignments,
            latitude=m.latitude,
            longitude=m.longitude,
            created_at=m.created_at,
            district_id=m.district_id,
            organization_id=m.organization_id,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await resolve_nodes(info, node_ids, lambda ld: ld.volunteer, cls.from_model, required)

    @strawberry.field(description="Sensitive. Coordinators and the volunteer see it; others a masked number.")
    def phone(self, info: Info) -> str:
        if privacy.sees_contact(info.context.viewer, self.id):
            info.context.note_sensitive_read("Volunteer", self.id, "phone")
            return self.phone_value
        return privacy.mask_phone(self.phone_value) or ""

    district: District | None = reference(lambda ld: ld.district, "district_id", District.from_model)
    organization: Organization | None = reference(
        lambda ld: ld.organization, "organization_id", Organization.from_model
    )
    credentials: list[VolunteerCredential] = reference(
        lambda ld: ld.credentials_by_volunteer, "id", VolunteerCredential.from_row, many=True
    )
    trainings: list[CompletedTraining] = reference(
        lambda ld: ld.trainings_by_volunteer,
        "id",
        lambda r: CompletedTraining(completed_at=r.completed_at, training_id=r.training_id),
        many=True,
    )

    @strawberry.field(description="Hours of completed assignments.", metadata=flag(lambda ld: ld.hours_by_volunteer))
    def hours_served(self, info: Info) -> Decimal:
        return now_or_later(info.context.loaders.hours_by_volunteer, self.id)  # type: ignore[return-value]

    @strawberry.field(description="This volunteer's assignments, newest first.")
    async def assignments(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        statuses: list[enums.AssignmentStatus] | None = None,  # type: ignore[valid-type]
    ) -> Connection[AssignmentRef]:
        from schema.types.assignment import Assignment

        size = page_size(first, info.context.settings.max_page_size)
        filt = tuple(sorted(s.value for s in statuses)) if statuses else None
        loaders = info.context.loaders
        fk = models.Assignment.volunteer_id
        page = await loaders.window("volunteer_assignments", _assignments_of, fk, assignments.NEWEST_FIRST).load(
            WindowKey(self.id, size, after, filt)
        )
        counter = loaders.count("volunteer_assignments", _assignments_of, fk)
        return Connection.build(page, Assignment.from_model, lambda: counter.load((self.id, filt)))
