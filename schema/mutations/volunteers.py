"""Volunteer mutations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry import UNSET, Info

from core import vocab
from core.services import volunteers
from core.services.context import ServiceContext
from schema import ids
from schema.mutations.base import changes, mutate, payload
from schema.types import enums
from schema.types.volunteer import Volunteer

VolunteerPayload = payload("VolunteerPayload", "volunteer", Volunteer)


@strawberry.input
class RegisterVolunteerInput:
    name: str
    phone: str
    mode: enums.VolunteerMode  # type: ignore[valid-type]
    district_id: strawberry.ID | None = None
    organization_id: strawberry.ID | None = None
    latitude: float | None = None
    longitude: float | None = None
    teams: list[enums.Team] = strawberry.field(default_factory=list)  # type: ignore[valid-type]
    skills: list[str] = strawberry.field(default_factory=list)
    availability: enums.Availability = enums.Availability.AVAILABLE  # type: ignore[valid-type]
    max_concurrent_assignments: int = 3


@strawberry.input(description="Only the fields given change; null clears a nullable field.")
class UpdateVolunteerInput:
    id: strawberry.ID
    name: str | None = UNSET
    phone: str | None = UNSET
    mode: enums.VolunteerMode | None = UNSET  # type: ignore[valid-type]
    district_id: strawberry.ID | None = UNSET
    organization_id: strawberry.ID | None = UNSET
    latitude: float | None = UNSET
    longitude: float | None = UNSET
    teams: list[enums.Team] | None = UNSET  # type: ignore[valid-type]
    skills: list[str] | None = UNSET
    availability: enums.Availability | None = UNSET  # type: ignore[valid-type]
    max_concurrent_assignments: int | None = UNSET


@strawberry.input
class AddCredentialInput:
    volunteer_id: strawberry.ID
    kind: enums.CredentialKind  # type: ignore[valid-type]
    number: str = ""
    issued_by: str = ""
    valid_from: datetime | None = None
    expires_at: datetime | None = None


@strawberry.input
class RecordTrainingInput:
    volunteer_id: strawberry.ID
    training_id: strawberry.ID
    completed_at: datetime


@strawberry.type
class VolunteerMutations:
    @strawberry.mutation
    async def register_volunteer(self, info: Info, input: RegisterVolunteerInput) -> VolunteerPayload:
        async def work(ctx: ServiceContext) -> Any:
            return await volunteers.register_volunteer(ctx, volunteers.VolunteerInput(**ids.decode_refs(vars(input))))

        return await mutate(info, VolunteerPayload, "volunteer", Volunteer.from_model, work)

    @strawberry.mutation(description="Change a volunteer's profile, availability or capacity.")
    async def update_volunteer(self, info: Info, input: UpdateVolunteerInput) -> VolunteerPayload:
        async def work(ctx: ServiceContext) -> Any:
            pk = ids.decode(input.id, "Volunteer", ("input", "id"))
            nullable = ("district_id", "organization_id", "latitude", "longitude")
            return await volunteers.update_volunteer(ctx, pk, ids.decode_refs(changes(input, nullable=nullable)))

        return await mutate(info, VolunteerPayload, "volunteer", Volunteer.from_model, work)

    @strawberry.mutation
    async def add_volunteer_credential(self, info: Info, input: AddCredentialInput) -> VolunteerPayload:
        async def work(ctx: ServiceContext) -> Any:
            pk = ids.decode(input.volunteer_id, "Volunteer", ("input", "volunteerId"))
            await volunteers.add_credential(
                ctx,
                pk,
                kind=vocab.CredentialKind(input.kind),
                number=input.number,
                issued_by=input.issued_by,
                valid_from=input.valid_from,
                expires_at=input.expires_at,
            )
            return await volunteers.get_volunteer(ctx, pk)

        return await mutate(info, VolunteerPayload, "volunteer", Volunteer.from_model, work)

    @strawberry.mutation
    async def record_volunteer_training(self, info: Info, input: RecordTrainingInput) -> VolunteerPayload:
        async def work(ctx: ServiceContext) -> Any:
            pk = ids.decode(input.volunteer_id, "Volunteer", ("input", "volunteerId"))
            training_id = ids.decode(input.training_id, "Training", ("input", "trainingId"))
            await volunteers.record_training(ctx, pk, training_id, input.completed_at)
            return await volunteers.get_volunteer(ctx, pk)

        return await mutate(info, VolunteerPayload, "volunteer", Volunteer.from_model, work)
