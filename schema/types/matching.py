"""Matching, planning, deadlines and the coordinator's queue as GraphQL."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import Info

from core.services import matching, planning
from core.services.deadlines import Overdue
from schema.types import enums
from schema.types.assignment import Assignment
from schema.types.help_request import HelpRequest
from schema.types.reference import load_optional
from schema.types.volunteer import Volunteer


@strawberry.type(description="One part of a candidate's score: value in [0, 1] × weight.")
class ScoreComponent:
    component: str
    value: float
    weight: float
    contribution: float


def _components(parts: list[matching.ScorePart]) -> list[ScoreComponent]:
    return [
        ScoreComponent(component=p.component, value=p.value, weight=p.weight, contribution=round(p.contribution, 6))
        for p in parts
    ]


@strawberry.type(description="A volunteer who passes every hard filter, with their score and why.")
class MatchCandidate:
    score: float
    distance_km: float | None
    is_reserve: bool = strawberry.field(description="From the reserve: proposed only when active ones do not suffice.")
    breakdown: list[ScoreComponent]
    volunteer_id: strawberry.Private[int]

    @classmethod
    def from_candidate(cls, c: matching.Candidate) -> MatchCandidate:
        return cls(
            score=c.score,
            distance_km=c.distance_km,
            is_reserve=c.is_reserve,
            breakdown=_components(c.parts),
            volunteer_id=c.volunteer_id,
        )

    @strawberry.field
    async def volunteer(self, info: Info) -> Volunteer | None:
        return await load_optional(info, "volunteer", self.volunteer_id, Volunteer.from_model)


@strawberry.type
class PlanItem:
    score: float
    distance_km: float | None
    is_reserve: bool
    breakdown: list[ScoreComponent]
    request_id: strawberry.ID = strawberry.field(description="Pass back to commitPlan with volunteerId.")
    volunteer_id: strawberry.ID
    request_pk: strawberry.Private[int]
    volunteer_pk: strawberry.Private[int]

    @strawberry.field
    async def request(self, info: Info) -> HelpRequest | None:
        return await load_optional(info, "help_request", self.request_pk, HelpRequest.from_model)

    @strawberry.field
    async def volunteer(self, info: Info) -> Volunteer | None:
        return await load_optional(info, "volunteer", self.volunteer_pk, Volunteer.from_model)


@strawberry.type
class UncoveredRequest:
    slots: int = strawberry.field(description="How many of its volunteers the plan could not find.")
    reason: str
    request_pk: strawberry.Private[int]

    @strawberry.field
    async def request(self, info: Info) -> HelpRequest | None:
        return await load_optional(info, "help_request", self.request_pk, HelpRequest.from_model)


@strawberry.type(description="A proposed global assignment. Nothing is written until commitPlan.")
class AssignmentPlan:
    items: list[PlanItem]
    uncovered: list[UncoveredRequest]
    total_cost: float = strawberry.field(description="Σ(1 − score), reserves +1, uncovered slots +10 each.")

    @classmethod
    def from_plan(cls, plan: planning.Plan) -> AssignmentPlan:
        from schema import ids

        return cls(
            items=[
                PlanItem(
                    score=i.score,
                    distance_km=i.distance_km,
                    is_reserve=i.is_reserve,
                    breakdown=_components(i.parts),
                    request_id=strawberry.ID(ids.encode("HelpRequest", i.request_id)),
                    volunteer_id=strawberry.ID(ids.encode("Volunteer", i.volunteer_id)),
                    request_pk=i.request_id,
                    volunteer_pk=i.volunteer_id,
                )
                for i in plan.items
            ],
            uncovered=[
                UncoveredRequest(slots=u.slots, reason=u.reason, request_pk=u.request_id) for u in plan.uncovered
            ],
            total_cost=plan.total_cost,
        )


@strawberry.type(description="A request past the target time of its current stage.")
class OverdueRequest:
    stage: enums.EscalationStage  # type: ignore[valid-type]
    due_at: datetime
    request: HelpRequest

    @classmethod
    def from_overdue(cls, o: Overdue) -> OverdueRequest:
        return cls(
            stage=enums.EscalationStage(o.stage.value), due_at=o.due_at, request=HelpRequest.from_model(o.request)
        )


@strawberry.type(description="What needs a coordinator now, most urgent first.")
class CoordinatorQueue:
    unverified: list[HelpRequest]
    unmatched: list[HelpRequest]
    pending_offers: list[Assignment]
