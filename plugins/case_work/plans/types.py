"""GraphQL of assessments and service plans (root fields `caseWork…`, types `CaseWork…`).

The rules live in services.py; the resolvers below only translate. `graphql_parts()` is what
plugins/case_work/plugin.py merges into the plugin's query and mutation types. Goals of a plan and actions of
a goal are bounded lists (services.MAX_GOALS, MAX_ACTIONS) loaded in batches; lists that grow (assessments,
progress entries, reviews) are connections.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry import Info, relay
from strawberry.dataloader import DataLoader

from core.models import Account
from plugins.case_work.models import Case
from plugins.case_work.plans import services
from plugins.case_work.plans.models import Action, Assessment, AssessmentNeed, Goal, GoalProgress, Plan, Review
from plugins.case_work.types import CaseWorkCase, CaseWorkPerson, CaseWorkRiskLevel
from schema import api as gql

# -- enums -----------------------------------------------------------------------------------------------------


# Two enums, so that the schema offers only what the service takes: an assessment scores every need domain
# (there is no "other" need to score), a goal addresses one of them or something else.
@strawberry.enum(description="A domain of need an assessment scores (every one, once).")
class CaseWorkNeedDomain(Enum):
    HEALTH = "health"
    DAILY_LIVING = "daily_living"
    FINANCES = "finances"
    HOUSING = "housing"
    FAMILY_SOCIAL = "family_social"
    SAFETY = "safety"
    MENTAL_WELLBEING = "mental_wellbeing"


@strawberry.enum(description="What a goal addresses: a domain of need, or OTHER.")
class CaseWorkGoalDomain(Enum):
    HEALTH = "health"
    DAILY_LIVING = "daily_living"
    FINANCES = "finances"
    HOUSING = "housing"
    FAMILY_SOCIAL = "family_social"
    SAFETY = "safety"
    MENTAL_WELLBEING = "mental_wellbeing"
    OTHER = "other"


@strawberry.enum(description="Where a goal stands (its latest progress entry's).")
class CaseWorkGoalStatus(Enum):
    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    ACHIEVED = "achieved"
    DROPPED = "dropped"


# -- types -----------------------------------------------------------------------------------------------------


async def _resolve_nodes(
    info: Info, node_ids: Iterable[str], model: type, convert: Callable[[Any], Any], required: bool
) -> list[Any]:
    return await gql.resolve_node_rows(
        info, node_ids, lambda ctx, pks: services.rows_by_id(ctx, model, pks), convert, required
    )


def _children_loader(info: Info, key: str, fetch: Callable[..., Any]) -> DataLoader[int, list[Any]]:
    """One query for the children of every parent on the page (goals of plans, actions of goals …)."""

    async def load(parent_ids: list[int]) -> list[list[Any]]:
        return await info.context.read(fetch, parent_ids)  # type: ignore[no-any-return]

    return info.context.loaders.get(f"case_work:{key}", lambda _: DataLoader(load_fn=load))  # type: ignore[no-any-return]


async def _person(info: Info, pk: int | None) -> CaseWorkPerson | None:
    return await gql.load(info, Account, pk, CaseWorkPerson.of)


async def _case(info: Info, pk: int) -> CaseWorkCase:
    return await gql.load_required(info, Case, pk, CaseWorkCase.of)  # type: ignore[no-any-return]


def _today(info: Info) -> date:
    return services.local_date(info.context.app.clock())


@strawberry.type(description="One domain of an assessment: its score, 0 (no need) to 4 (critical), and a note.")
class CaseWorkAssessmentNeed:
    domain: CaseWorkNeedDomain
    score: int
    note: str

    @classmethod
    def of(cls, n: AssessmentNeed) -> CaseWorkAssessmentNeed:
        return cls(domain=CaseWorkNeedDomain(n.domain), score=n.score, note=n.note)


@strawberry.type(description="A structured assessment of a case: needs scored by domain, strengths, risks.")
class CaseWorkAssessment(relay.Node):
    id: relay.NodeID[int]
    total_score: int = strawberry.field(description="The sum of the domains' scores (0 to 28).")
    highest_score: int
    implied_risk_level: CaseWorkRiskLevel = strawberry.field(
        description="The risk the scores imply: HIGH (a domain at 4, or 16+), MEDIUM (a 3, or 9+), else LOW."
    )
    risk_level_before: CaseWorkRiskLevel
    risk_level_after: CaseWorkRiskLevel = strawberry.field(
        description="The case's risk level after recording: raised to the implied one when that was higher."
    )
    strengths: list[str]
    risks: list[str]
    summary: str
    recorded_at: datetime
    row: strawberry.Private[Any]

    @classmethod
    def of(cls, a: Assessment) -> CaseWorkAssessment:
        return cls(
            id=a.id,
            total_score=a.total_score,
            highest_score=a.highest_score,
            implied_risk_level=CaseWorkRiskLevel(a.implied_risk),
            risk_level_before=CaseWorkRiskLevel(a.risk_before),
            risk_level_after=CaseWorkRiskLevel(a.risk_after),
            strengths=list(a.strengths),
            risks=list(a.risks),
            summary=a.summary,
            recorded_at=a.recorded_at,
            row=a,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Assessment, cls.of, required)

    @strawberry.field(description="Every domain, in the order recorded.")
    async def needs(self, info: Info) -> list[CaseWorkAssessmentNeed]:
        rows = await _children_loader(info, "assessment_needs", services.needs_of_assessments).load(self.row.id)
        return [CaseWorkAssessmentNeed.of(n) for n in rows]

    @strawberry.field
    async def recorded_by(self, info: Info) -> CaseWorkPerson | None:
        return await _person(info, self.row.recorded_by_account_id)

    @strawberry.field
    async def case(self, info: Info) -> CaseWorkCase:
        return await _case(info, self.row.case_id)


@strawberry.type(description="A dated progress entry of a goal.")
class CaseWorkGoalProgress(relay.Node):
    id: relay.NodeID[int]
    on: date
    status: CaseWorkGoalStatus
    percent: int | None
    note: str
    recorded_at: datetime
    row: strawberry.Private[Any]

    @classmethod
    def of(cls, p: GoalProgress) -> CaseWorkGoalProgress:
        return cls(
            id=p.id,
            on=p.on_date,
            status=CaseWorkGoalStatus(p.status),
            percent=p.percent,
            note=p.note,
            recorded_at=p.recorded_at,
            row=p,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, GoalProgress, cls.of, required)

    @strawberry.field
    async def recorded_by(self, info: Info) -> CaseWorkPerson | None:
        return await _person(info, self.row.recorded_by_account_id)


@strawberry.type(description="A step toward a goal: who does it (a staff account or an outside party), by when.")
class CaseWorkAction(relay.Node):
    id: relay.NodeID[int]
    text: str
    responsible_name: str = strawberry.field(description="An outside party (empty when an account is responsible).")
    due_on: date | None
    done: bool
    done_at: datetime | None
    row: strawberry.Private[Any]

    @classmethod
    def of(cls, a: Action) -> CaseWorkAction:
        return cls(
            id=a.id,
            text=a.text,
            responsible_name=a.responsible_name,
            due_on=a.due_on,
            done=a.done_at is not None,
            done_at=a.done_at,
            row=a,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Action, cls.of, required)

    @strawberry.field(description="The responsible staff account (null for an outside party).")
    async def responsible(self, info: Info) -> CaseWorkPerson | None:
        return await _person(info, self.row.responsible_account_id)

    @strawberry.field(description="Not done and past its due date.")
    def overdue(self, info: Info) -> bool:
        return self.row.done_at is None and self.row.due_on is not None and self.row.due_on < _today(info)


@strawberry.type(description="A goal of a service plan; its status and percentage are its latest progress entry's.")
class CaseWorkGoal(relay.Node):
    id: relay.NodeID[int]
    text: str
    domain: CaseWorkGoalDomain
    target_date: date | None
    status: CaseWorkGoalStatus
    percent: int | None
    created_at: datetime
    row: strawberry.Private[Any]

    @classmethod
    def of(cls, g: Goal) -> CaseWorkGoal:
        return cls(
            id=g.id,
            text=g.text,
            domain=CaseWorkGoalDomain(g.domain),
            target_date=g.target_date,
            status=CaseWorkGoalStatus(g.status),
            percent=g.percent,
            created_at=g.created_at,
            row=g,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Goal, cls.of, required)

    @strawberry.field(description="The goal's actions, oldest first.")
    async def actions(self, info: Info) -> list[CaseWorkAction]:
        rows = await _children_loader(info, "goal_actions", services.actions_of_goals).load(self.row.id)
        return [CaseWorkAction.of(a) for a in rows]

    @strawberry.field(description="Progress entries, latest first.")
    async def progress(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> gql.Connection[CaseWorkGoalProgress]:
        page = await info.context.read(
            services.list_progress, self.row.id, first=gql.first_of(info, first), after=after
        )
        return gql.connection(info, page, CaseWorkGoalProgress.of)


@strawberry.type(description="A case's service plan: its planned end and its goals.")
class CaseWorkPlan(relay.Node):
    id: relay.NodeID[int]
    started_on: date
    planned_end: date | None = strawberry.field(description="No goal or action is due after it.")
    created_at: datetime
    row: strawberry.Private[Any]

    @classmethod
    def of(cls, p: Plan) -> CaseWorkPlan:
        return cls(id=p.id, started_on=p.started_on, planned_end=p.planned_end, created_at=p.created_at, row=p)

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Plan, cls.of, required)

    @strawberry.field(description="The goals, oldest first (the order a closure request states outcomes in).")
    async def goals(self, info: Info) -> list[CaseWorkGoal]:
        rows = await _children_loader(info, "plan_goals", services.goals_of_plans).load(self.row.id)
        return [CaseWorkGoal.of(g) for g in rows]

    @strawberry.field
    async def case(self, info: Info) -> CaseWorkCase:
        return await _case(info, self.row.case_id)


@strawberry.type(description="A plan review, due every 30/60/90 days by the case's risk; raised by a scheduled job.")
class CaseWorkReview(relay.Node):
    id: relay.NodeID[int]
    due_on: date
    risk_level: CaseWorkRiskLevel = strawberry.field(description="The case's risk when it was raised.")
    raised_at: datetime
    done_at: datetime | None
    note: str
    row: strawberry.Private[Any]

    @classmethod
    def of(cls, r: Review) -> CaseWorkReview:
        return cls(
            id=r.id,
            due_on=r.due_on,
            risk_level=CaseWorkRiskLevel(r.risk_level),
            raised_at=r.raised_at,
            done_at=r.done_at,
            note=r.note,
            row=r,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Review, cls.of, required)

    @strawberry.field(description="Not done and past its due date.")
    def overdue(self, info: Info) -> bool:
        return services.is_overdue(self.row, _today(info))

    @strawberry.field
    async def done_by(self, info: Info) -> CaseWorkPerson | None:
        return await _person(info, self.row.done_by_account_id)

    @strawberry.field
    async def case(self, info: Info) -> CaseWorkCase:
        return await _case(info, self.row.case_id)


# -- payloads, inputs ------------------------------------------------------------------------------------------

CaseWorkAssessmentPayload = gql.payload("CaseWorkAssessmentPayload", "assessment", CaseWorkAssessment)
CaseWorkPlanPayload = gql.payload("CaseWorkPlanPayload", "plan", CaseWorkPlan)
CaseWorkGoalPayload = gql.payload("CaseWorkGoalPayload", "goal", CaseWorkGoal)
CaseWorkActionPayload = gql.payload("CaseWorkActionPayload", "action", CaseWorkAction)
CaseWorkGoalProgressPayload = gql.payload("CaseWorkGoalProgressPayload", "progress", CaseWorkGoalProgress)
CaseWorkReviewPayload = gql.payload("CaseWorkReviewPayload", "review", CaseWorkReview)


def _id(raw: str, type_name: str, *field: str) -> int:
    return gql.decode_id(raw, type_name, ("input", *field))


def _given(value: Any, convert: Callable[[Any], Any] = lambda v: v) -> Any:
    """An optional input field: left out keeps the value (services.KEEP); null clears it where allowed."""
    if value is strawberry.UNSET:
        return services.KEEP
    return None if value is None else convert(value)


@strawberry.input(description="One domain's score: 0 no need, 1 low, 2 moderate, 3 serious, 4 critical.")
class CaseWorkNeedInput:
    domain: CaseWorkNeedDomain
    score: int
    note: str = ""


@strawberry.input
class CaseWorkRecordAssessmentInput:
    case_id: strawberry.ID
    needs: list[CaseWorkNeedInput] = strawberry.field(description="Every domain, once each.")
    strengths: list[str] = strawberry.field(default_factory=list)
    risks: list[str] = strawberry.field(default_factory=list)
    summary: str = ""


@strawberry.input
class CaseWorkCreatePlanInput:
    case_id: strawberry.ID
    planned_end: date | None = None


@strawberry.input(description="Fields left out stay as they are; a null planned end clears it.")
class CaseWorkUpdatePlanInput:
    id: strawberry.ID
    planned_end: date | None = strawberry.UNSET


@strawberry.input
class CaseWorkAddGoalInput:
    plan_id: strawberry.ID
    text: str
    domain: CaseWorkGoalDomain
    target_date: date | None = None


@strawberry.input(description="Fields left out stay as they are; a null target date clears it.")
class CaseWorkUpdateGoalInput:
    id: strawberry.ID
    text: str | None = strawberry.UNSET
    domain: CaseWorkGoalDomain | None = strawberry.UNSET
    target_date: date | None = strawberry.UNSET


@strawberry.input(description="Responsible: an account of the organisation, or an outside party by name.")
class CaseWorkAddActionInput:
    goal_id: strawberry.ID
    text: str
    responsible_account_id: strawberry.ID | None = None
    responsible_name: str = ""
    due_on: date | None = None


@strawberry.input(description="Fields left out stay as they are; a responsible given replaces the other kind.")
class CaseWorkUpdateActionInput:
    id: strawberry.ID
    text: str | None = strawberry.UNSET
    responsible_account_id: strawberry.ID | None = strawberry.UNSET
    responsible_name: str | None = strawberry.UNSET
    due_on: date | None = strawberry.UNSET
    done: bool | None = strawberry.UNSET


@strawberry.input(description="A status, a percentage, or both (a percentage alone implies the status).")
class CaseWorkRecordGoalProgressInput:
    goal_id: strawberry.ID
    on: date | None = strawberry.field(default=None, description="Default: today.")
    status: CaseWorkGoalStatus | None = None
    percent: int | None = None
    note: str = ""


@strawberry.input
class CaseWorkCompleteReviewInput:
    id: strawberry.ID
    note: str


@strawberry.input(description="All given conditions must hold.")
class CaseWorkReviewFilter:
    case_id: strawberry.ID | None = None
    open: bool = strawberry.field(default=False, description="Not done yet.")
    overdue: bool = strawberry.field(default=False, description="Not done, past due, of a case being worked.")
    mine: bool = strawberry.field(default=False, description="Of your own cases (as worker or supervisor).")

    def to_service(self) -> services.ReviewFilter:
        return services.ReviewFilter(
            case_id=gql.decode_optional_id(self.case_id, "CaseWorkCase", ("filter", "caseId")),
            open_only=self.open,
            overdue_only=self.overdue,
            mine=self.mine,
        )


# -- root fields -----------------------------------------------------------------------------------------------


@strawberry.type
class CaseWorkPlansQuery:
    @strawberry.field(description="A case's service plan (null: none yet, or a case you do not see).")
    async def case_work_plan(self, info: Info, case_id: strawberry.ID) -> CaseWorkPlan | None:
        pk = gql.decode_id(case_id, "CaseWorkCase", ("caseId",))
        found = await info.context.read(services.plan_of_case, pk)
        return None if found is None else CaseWorkPlan.of(found)

    @strawberry.field(description="A case's assessments, newest first (none for a case you do not see).")
    async def case_work_assessments(
        self, info: Info, case_id: strawberry.ID, first: int | None = None, after: str | None = None
    ) -> gql.Connection[CaseWorkAssessment]:
        pk = gql.decode_id(case_id, "CaseWorkCase", ("caseId",))
        page = await info.context.read(services.list_assessments, pk, first=gql.first_of(info, first), after=after)
        return gql.connection(info, page, CaseWorkAssessment.of)

    @strawberry.field(description="Plan reviews of the cases you see, earliest due first.")
    async def case_work_reviews(
        self,
        info: Info,
        filter: CaseWorkReviewFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> gql.Connection[CaseWorkReview]:
        f = (filter or CaseWorkReviewFilter()).to_service()
        page = await info.context.read(services.list_reviews, f, first=gql.first_of(info, first), after=after)
        return gql.connection(info, page, CaseWorkReview.of)


@strawberry.type
class CaseWorkPlansMutation:
    @strawberry.mutation(description="Record a structured assessment of a case in assessment (its social worker).")
    async def case_work_record_assessment(
        self, info: Info, input: CaseWorkRecordAssessmentInput
    ) -> CaseWorkAssessmentPayload:
        return await gql.mutate(
            info,
            CaseWorkAssessmentPayload,
            "assessment",
            CaseWorkAssessment.of,
            lambda ctx: services.record_assessment(
                ctx,
                _id(input.case_id, "CaseWorkCase", "caseId"),
                [services.NeedInput(n.domain.value, n.score, n.note) for n in input.needs],
                strengths=input.strengths,
                risks=input.risks,
                summary=input.summary,
            ),
        )

    @strawberry.mutation(description="Start a case's service plan (planning, intervention or evaluation).")
    async def case_work_create_plan(self, info: Info, input: CaseWorkCreatePlanInput) -> CaseWorkPlanPayload:
        return await gql.mutate(
            info,
            CaseWorkPlanPayload,
            "plan",
            CaseWorkPlan.of,
            lambda ctx: services.create_plan(ctx, _id(input.case_id, "CaseWorkCase", "caseId"), input.planned_end),
        )

    @strawberry.mutation(description="Set or clear a plan's planned end.")
    async def case_work_update_plan(self, info: Info, input: CaseWorkUpdatePlanInput) -> CaseWorkPlanPayload:
        return await gql.mutate(
            info,
            CaseWorkPlanPayload,
            "plan",
            CaseWorkPlan.of,
            lambda ctx: services.update_plan(ctx, _id(input.id, "CaseWorkPlan", "id"), _given(input.planned_end)),
        )

    @strawberry.mutation(description="Add a goal to a plan.")
    async def case_work_add_goal(self, info: Info, input: CaseWorkAddGoalInput) -> CaseWorkGoalPayload:
        return await gql.mutate(
            info,
            CaseWorkGoalPayload,
            "goal",
            CaseWorkGoal.of,
            lambda ctx: services.add_goal(
                ctx, _id(input.plan_id, "CaseWorkPlan", "planId"), input.text, input.domain.value, input.target_date
            ),
        )

    @strawberry.mutation(description="Change a goal's text, domain or target date.")
    async def case_work_update_goal(self, info: Info, input: CaseWorkUpdateGoalInput) -> CaseWorkGoalPayload:
        return await gql.mutate(
            info,
            CaseWorkGoalPayload,
            "goal",
            CaseWorkGoal.of,
            lambda ctx: services.update_goal(
                ctx,
                _id(input.id, "CaseWorkGoal", "id"),
                text=_given(input.text),
                domain=_given(input.domain, lambda d: d.value),
                target_date=_given(input.target_date),
            ),
        )

    @strawberry.mutation(description="Add an action under a goal.")
    async def case_work_add_action(self, info: Info, input: CaseWorkAddActionInput) -> CaseWorkActionPayload:
        return await gql.mutate(
            info,
            CaseWorkActionPayload,
            "action",
            CaseWorkAction.of,
            lambda ctx: services.add_action(
                ctx,
                _id(input.goal_id, "CaseWorkGoal", "goalId"),
                input.text,
                responsible_account_id=None
                if input.responsible_account_id is None
                else _id(input.responsible_account_id, "Account", "responsibleAccountId"),
                responsible_name=input.responsible_name,
                due_on=input.due_on,
            ),
        )

    @strawberry.mutation(description="Change an action, or mark it done.")
    async def case_work_update_action(self, info: Info, input: CaseWorkUpdateActionInput) -> CaseWorkActionPayload:
        return await gql.mutate(
            info,
            CaseWorkActionPayload,
            "action",
            CaseWorkAction.of,
            lambda ctx: services.update_action(
                ctx,
                _id(input.id, "CaseWorkAction", "id"),
                text=_given(input.text),
                responsible_account_id=_given(
                    input.responsible_account_id, lambda v: _id(v, "Account", "responsibleAccountId")
                ),
                responsible_name=_given(input.responsible_name),
                due_on=_given(input.due_on),
                done=_given(input.done),
            ),
        )

    @strawberry.mutation(description="Record a goal's progress.")
    async def case_work_record_goal_progress(
        self, info: Info, input: CaseWorkRecordGoalProgressInput
    ) -> CaseWorkGoalProgressPayload:
        return await gql.mutate(
            info,
            CaseWorkGoalProgressPayload,
            "progress",
            CaseWorkGoalProgress.of,
            lambda ctx: services.record_progress(
                ctx,
                _id(input.goal_id, "CaseWorkGoal", "goalId"),
                on=input.on,
                status=None if input.status is None else input.status.value,
                percent=input.percent,
                note=input.note,
            ),
        )

    @strawberry.mutation(description="Mark a plan review done, with a note.")
    async def case_work_complete_review(self, info: Info, input: CaseWorkCompleteReviewInput) -> CaseWorkReviewPayload:
        return await gql.mutate(
            info,
            CaseWorkReviewPayload,
            "review",
            CaseWorkReview.of,
            lambda ctx: services.complete_review(ctx, _id(input.id, "CaseWorkReview", "id"), input.note),
        )


def graphql_parts() -> tuple[type, type, tuple[type, ...]]:
    """(query fields, mutation fields, extra types) for plugins/case_work/plugin.py to merge into the plugin's
    GraphQL contribution."""
    return (
        CaseWorkPlansQuery,
        CaseWorkPlansMutation,
        (CaseWorkAssessment, CaseWorkPlan, CaseWorkGoal, CaseWorkAction, CaseWorkGoalProgress, CaseWorkReview),
    )
