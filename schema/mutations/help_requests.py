"""Help request mutations: intake, edits and every lifecycle transition."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import strawberry
from strawberry import UNSET, Info

from core.services import help_requests
from core.services.context import ServiceContext
from schema import ids
from schema.mutations.base import changes, mutate, payload
from schema.types import enums
from schema.types.help_request import HelpRequest

HelpRequestPayload = payload("HelpRequestPayload", "help_request", HelpRequest)


@strawberry.input
class SubmitHelpRequestInput:
    community_id: strawberry.ID
    title: str = strawberry.field(description="One line, e.g. “30 TB patients out of medicine”.")
    category: enums.RequestCategory  # type: ignore[valid-type]
    urgency: enums.Urgency  # type: ignore[valid-type]
    requester_name: str
    requester_phone: str
    description: str = ""
    population_tags: list[enums.PopulationTag] = strawberry.field(default_factory=list)  # type: ignore[valid-type]
    beneficiaries: int = 1
    volunteers_needed: int = 1
    needed_by: datetime | None = None
    required_skills: list[str] = strawberry.field(default_factory=list)
    required_credentials: list[enums.CredentialKind] = strawberry.field(default_factory=list)  # type: ignore[valid-type]
    requester_address: str = ""
    health_details: str = ""
    latitude: float | None = None
    longitude: float | None = None


@strawberry.input(description="Only the fields given change; null clears a nullable field.")
class UpdateHelpRequestInput:
    id: strawberry.ID
    community_id: strawberry.ID | None = UNSET
    title: str | None = UNSET
    category: enums.RequestCategory | None = UNSET  # type: ignore[valid-type]
    urgency: enums.Urgency | None = UNSET  # type: ignore[valid-type]
    requester_name: str | None = UNSET
    requester_phone: str | None = UNSET
    description: str | None = UNSET
    population_tags: list[enums.PopulationTag] | None = UNSET  # type: ignore[valid-type]
    beneficiaries: int | None = UNSET
    volunteers_needed: int | None = UNSET
    needed_by: datetime | None = UNSET
    required_skills: list[str] | None = UNSET
    required_credentials: list[enums.CredentialKind] | None = UNSET  # type: ignore[valid-type]
    requester_address: str | None = UNSET
    health_details: str | None = UNSET
    latitude: float | None = UNSET
    longitude: float | None = UNSET


@strawberry.input(description="A lifecycle step; `reason` is required to reject or cancel.")
class HelpRequestTransitionInput:
    id: strawberry.ID
    reason: str = ""


@strawberry.input
class MergeHelpRequestsInput:
    keep_id: strawberry.ID
    duplicate_id: strawberry.ID
    reason: str = ""


def _transition(
    info: Info, input: HelpRequestTransitionInput, step: Callable[[ServiceContext, int, str], Awaitable[Any]]
) -> Awaitable[Any]:
    async def work(ctx: ServiceContext) -> Any:
        return await step(ctx, ids.decode(input.id, "HelpRequest", ("input", "id")), input.reason)

    return mutate(info, HelpRequestPayload, "help_request", HelpRequest.from_model, work)


@strawberry.type
class HelpRequestMutations:
    @strawberry.mutation(description="Record a new need; it starts as SUBMITTED, waiting for verification.")
    async def submit_help_request(self, info: Info, input: SubmitHelpRequestInput) -> HelpRequestPayload:
        async def work(ctx: ServiceContext) -> Any:
            values = vars(input) | {
                "community_id": ids.decode(input.community_id, "Community", ("input", "communityId"))
            }
            return await help_requests.submit(ctx, help_requests.HelpRequestInput(**values))

        return await mutate(info, HelpRequestPayload, "help_request", HelpRequest.from_model, work)

    @strawberry.mutation(description="Edit an open request.")
    async def update_help_request(self, info: Info, input: UpdateHelpRequestInput) -> HelpRequestPayload:
        async def work(ctx: ServiceContext) -> Any:
            pk = ids.decode(input.id, "HelpRequest", ("input", "id"))
            values = changes(input, nullable=("needed_by", "latitude", "longitude"))
            if "community_id" in values:
                values["community_id"] = ids.decode(values["community_id"], "Community", ("input", "communityId"))
            return await help_requests.update(ctx, pk, values)

        return await mutate(info, HelpRequestPayload, "help_request", HelpRequest.from_model, work)

    @strawberry.mutation(description="SUBMITTED → VERIFIED: the need was checked (核实) and is real.")
    async def verify_help_request(self, info: Info, input: HelpRequestTransitionInput) -> HelpRequestPayload:
        return await _transition(info, input, help_requests.verify)

    @strawberry.mutation(description="SUBMITTED or VERIFIED → REJECTED, with a reason.")
    async def reject_help_request(self, info: Info, input: HelpRequestTransitionInput) -> HelpRequestPayload:
        return await _transition(info, input, help_requests.reject)

    @strawberry.mutation(description="Any open status → CANCELLED, with a reason; active assignments are withdrawn.")
    async def cancel_help_request(self, info: Info, input: HelpRequestTransitionInput) -> HelpRequestPayload:
        return await _transition(info, input, help_requests.cancel)

    @strawberry.mutation(description="MATCHED → IN_PROGRESS; needs at least one accepted assignment.")
    async def start_help_request(self, info: Info, input: HelpRequestTransitionInput) -> HelpRequestPayload:
        return await _transition(info, input, help_requests.start)

    @strawberry.mutation(description="Close a duplicate as merged into the request kept (during verification).")
    async def merge_help_requests(self, info: Info, input: MergeHelpRequestsInput) -> HelpRequestPayload:
        async def work(ctx: ServiceContext) -> Any:
            keep = ids.decode(input.keep_id, "HelpRequest", ("input", "keepId"))
            duplicate = ids.decode(input.duplicate_id, "HelpRequest", ("input", "duplicateId"))
            return await help_requests.merge(ctx, keep, duplicate, input.reason)

        return await mutate(info, HelpRequestPayload, "help_request", HelpRequest.from_model, work)

    @strawberry.mutation(description="IN_PROGRESS → FULFILLED; pending offers are withdrawn.")
    async def fulfill_help_request(self, info: Info, input: HelpRequestTransitionInput) -> HelpRequestPayload:
        return await _transition(info, input, help_requests.fulfil)
