"""Assignment mutations: offer, accept, decline, withdraw, complete."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import strawberry
from strawberry import Info

from core.services import assignments, planning
from core.services.context import ServiceContext
from schema import ids
from schema.errors import UserError
from schema.mutations.base import mutate, payload
from schema.types.assignment import Assignment

AssignmentPayload = payload("AssignmentPayload", "assignment", Assignment)


class _Offers:
    """Internal carrier for commitPlan's result (not part of the schema)."""

    def __init__(self, offers: list[Any] | None = None, errors: list[Any] | None = None) -> None:
        self.offers = offers
        self.errors = errors or []


@strawberry.input(
    description="Offer a volunteer who fails matching's qualification filters (mode, skills, credentials, "
    "trainings) anyway. Coordinators only; recorded in the audit trail with who, why and what was waived. "
    "Availability, capacity and the number of volunteers needed still hold."
)
class OverrideInput:
    reason: str = strawberry.field(description="Why this volunteer is right despite the filters (1-1000 characters).")


@strawberry.input
class OfferAssignmentInput:
    request_id: strawberry.ID
    volunteer_id: strawberry.ID
    note: str = ""
    override: OverrideInput | None = None


@strawberry.input
class AssignmentStepInput:
    id: strawberry.ID
    reason: str = strawberry.field(default="", description="Why (required to withdraw, optional to decline).")


@strawberry.input
class CompleteAssignmentInput:
    id: strawberry.ID
    hours: Decimal = strawberry.field(description="Hours served, more than 0, at most 200, two decimals.")
    note: str = ""


def _id(raw: str) -> int:
    return ids.decode(raw, "Assignment", ("input", "id"))


@strawberry.input
class PlanItemInput:
    request_id: strawberry.ID
    volunteer_id: strawberry.ID


@strawberry.input(description="The items of a plan from planAssignments (all of them, or the ones you keep).")
class CommitPlanInput:
    items: list[PlanItemInput]


@strawberry.type(description="The offers made, or why the plan no longer fits (nothing was written then).")
class CommitPlanPayload:
    assignments: list[Assignment] = strawberry.field(default_factory=list)
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class AssignmentMutations:
    @strawberry.mutation(
        description="Offer every pair of a plan at once, all or nothing: each pair is checked again like "
        "offerAssignment, under locks; if any no longer fits, STALE_PLAN and nothing is written."
    )
    async def commit_plan(self, info: Info, input: CommitPlanInput) -> CommitPlanPayload:
        async def work(ctx: ServiceContext) -> Any:
            pairs = [
                (
                    ids.decode(i.request_id, "HelpRequest", ("input", "items", str(n), "requestId")),
                    ids.decode(i.volunteer_id, "Volunteer", ("input", "items", str(n), "volunteerId")),
                )
                for n, i in enumerate(input.items)
            ]
            return await planning.commit_plan(ctx, pairs)

        result = await mutate(info, _Offers, "offers", lambda rows: [Assignment.from_model(r) for r in rows], work)
        return CommitPlanPayload(assignments=result.offers or [], errors=result.errors)

    @strawberry.mutation(
        description="Offer a volunteer to a verified, matched or in-progress request (a verified one becomes "
        "MATCHED). The volunteer must pass the same hard filters as matchCandidates, and the request must have "
        "fewer offered or accepted volunteers than it needs; `override` waives the qualification filters."
    )
    async def offer_assignment(self, info: Info, input: OfferAssignmentInput) -> AssignmentPayload:
        async def work(ctx: ServiceContext) -> Any:
            request_id = ids.decode(input.request_id, "HelpRequest", ("input", "requestId"))
            volunteer_id = ids.decode(input.volunteer_id, "Volunteer", ("input", "volunteerId"))
            reason = input.override.reason if input.override is not None else None
            return await assignments.offer(ctx, request_id, volunteer_id, input.note, override_reason=reason)

        return await mutate(info, AssignmentPayload, "assignment", Assignment.from_model, work)

    @strawberry.mutation
    async def accept_assignment(self, info: Info, input: AssignmentStepInput) -> AssignmentPayload:
        return await mutate(
            info,
            AssignmentPayload,
            "assignment",
            Assignment.from_model,
            lambda ctx: assignments.accept(ctx, _id(input.id)),
        )

    @strawberry.mutation
    async def decline_assignment(self, info: Info, input: AssignmentStepInput) -> AssignmentPayload:
        return await mutate(
            info,
            AssignmentPayload,
            "assignment",
            Assignment.from_model,
            lambda ctx: assignments.decline(ctx, _id(input.id), input.reason),
        )

    @strawberry.mutation
    async def withdraw_assignment(self, info: Info, input: AssignmentStepInput) -> AssignmentPayload:
        return await mutate(
            info,
            AssignmentPayload,
            "assignment",
            Assignment.from_model,
            lambda ctx: assignments.withdraw(ctx, _id(input.id), input.reason),
        )

    @strawberry.mutation(description="Record the work as done with the hours served.")
    async def complete_assignment(self, info: Info, input: CompleteAssignmentInput) -> AssignmentPayload:
        return await mutate(
            info,
            AssignmentPayload,
            "assignment",
            Assignment.from_model,
            lambda ctx: assignments.complete(ctx, _id(input.id), input.hours, input.note),
        )
