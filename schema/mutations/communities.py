"""Community mutations."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry import UNSET, Info

from core import vocab
from core.services import communities
from core.services.context import ServiceContext
from schema import ids
from schema.mutations.base import changes, mutate, payload
from schema.types import enums
from schema.types.community import Community

CommunityPayload = payload("CommunityPayload", "community", Community)


@strawberry.input
class CreateCommunityInput:
    name: str
    district_id: strawberry.ID
    street: str = ""
    organization_id: strawberry.ID | None = None
    latitude: float | None = None
    longitude: float | None = None
    head_name: str = ""
    head_phone: str | None = None


@strawberry.input(description="Only the fields given change; null clears a nullable field.")
class UpdateCommunityInput:
    id: strawberry.ID
    name: str | None = UNSET
    district_id: strawberry.ID | None = UNSET
    street: str | None = UNSET
    organization_id: strawberry.ID | None = UNSET
    latitude: float | None = UNSET
    longitude: float | None = UNSET
    head_name: str | None = UNSET
    head_phone: str | None = UNSET


@strawberry.input
class CommunityLiaisonInput:
    community_id: strawberry.ID
    volunteer_id: strawberry.ID
    role: enums.LiaisonRole = strawberry.field(default=enums.LiaisonRole.VOLUNTEER)  # type: ignore[valid-type]


@strawberry.type
class CommunityMutations:
    @strawberry.mutation
    async def create_community(self, info: Info, input: CreateCommunityInput) -> CommunityPayload:
        async def work(ctx: ServiceContext) -> Any:
            return await communities.create_community(ctx, communities.CommunityInput(**ids.decode_refs(vars(input))))

        return await mutate(info, CommunityPayload, "community", Community.from_model, work)

    @strawberry.mutation
    async def update_community(self, info: Info, input: UpdateCommunityInput) -> CommunityPayload:
        async def work(ctx: ServiceContext) -> Any:
            pk = ids.decode(input.id, "Community", ("input", "id"))
            nullable = ("organization_id", "latitude", "longitude", "head_phone")
            return await communities.update_community(ctx, pk, ids.decode_refs(changes(input, nullable=nullable)))

        return await mutate(info, CommunityPayload, "community", Community.from_model, work)

    @strawberry.mutation(description="Seat a volunteer on a community's work group (1 social worker, 2 volunteers).")
    async def add_community_liaison(self, info: Info, input: CommunityLiaisonInput) -> CommunityPayload:
        async def work(ctx: ServiceContext) -> Any:
            community_id = ids.decode(input.community_id, "Community", ("input", "communityId"))
            volunteer_id = ids.decode(input.volunteer_id, "Volunteer", ("input", "volunteerId"))
            return await communities.add_liaison(ctx, community_id, volunteer_id, vocab.LiaisonRole(input.role))

        return await mutate(info, CommunityPayload, "community", Community.from_model, work)

    @strawberry.mutation
    async def remove_community_liaison(self, info: Info, input: CommunityLiaisonInput) -> CommunityPayload:
        async def work(ctx: ServiceContext) -> Any:
            community_id = ids.decode(input.community_id, "Community", ("input", "communityId"))
            volunteer_id = ids.decode(input.volunteer_id, "Volunteer", ("input", "volunteerId"))
            return await communities.remove_liaison(ctx, community_id, volunteer_id)

        return await mutate(info, CommunityPayload, "community", Community.from_model, work)
