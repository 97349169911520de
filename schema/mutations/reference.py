"""Organisations, districts and trainings."""

from __future__ import annotations

import strawberry
from strawberry import Info

from core import vocab
from core.services import organizations, volunteers
from schema.mutations.base import mutate, payload
from schema.types import enums
from schema.types.reference import District, Organization, Training

OrganizationPayload = payload("OrganizationPayload", "organization", Organization)
DistrictPayload = payload("DistrictPayload", "district", District)
TrainingPayload = payload("TrainingPayload", "training", Training)


@strawberry.input
class CreateOrganizationInput:
    name: str
    kind: enums.OrganizationKind  # type: ignore[valid-type]


@strawberry.input
class CreateDistrictInput:
    name: str
    kind: enums.DistrictKind  # type: ignore[valid-type]


@strawberry.input
class CreateTrainingInput:
    code: str = strawberry.field(description="Short stable key, e.g. `delivery-safety`.")
    name: str
    description: str = ""


@strawberry.type
class ReferenceMutations:
    @strawberry.mutation
    async def create_organization(self, info: Info, input: CreateOrganizationInput) -> OrganizationPayload:
        return await mutate(
            info,
            OrganizationPayload,
            "organization",
            Organization.from_model,
            lambda ctx: organizations.create_organization(
                ctx, name=input.name, kind=vocab.OrganizationKind(input.kind)
            ),
        )

    @strawberry.mutation
    async def create_district(self, info: Info, input: CreateDistrictInput) -> DistrictPayload:
        return await mutate(
            info,
            DistrictPayload,
            "district",
            District.from_model,
            lambda ctx: organizations.create_district(ctx, name=input.name, kind=vocab.DistrictKind(input.kind)),
        )

    @strawberry.mutation
    async def create_training(self, info: Info, input: CreateTrainingInput) -> TrainingPayload:
        return await mutate(
            info,
            TrainingPayload,
            "training",
            Training.from_model,
            lambda ctx: volunteers.create_training(
                ctx, code=input.code, name=input.name, description=input.description
            ),
        )
