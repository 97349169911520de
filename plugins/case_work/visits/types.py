"""GraphQL of casework visits and caseloads (root fields `caseWork…`, types `CaseWork…`).

The rules live in services.py and caseload.py; the resolvers below only translate. Times are presented in the
caller's zone (the DateTime scalar, X-Timezone) and taken with their offset. `graphql_parts()` is what
plugins/case_work/plugin.py merges into the plugin's query and mutation types.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry import Info, relay

import core
from core.models import Account, Appointment
from plugins.case_work.models import Case
from plugins.case_work.types import CaseWorkCase, CaseWorkPerson, CaseWorkRiskLevel, CaseWorkStage
from plugins.case_work.visits import caseload as caseloads
from plugins.case_work.visits import services
from plugins.case_work.visits.models import Visit
from schema import api as gql

# -- enums -----------------------------------------------------------------------------------------------------


@strawberry.enum(description="A visit to the client's home, or a call.")
class CaseWorkVisitMode(Enum):
    HOME_VISIT = "home_visit"
    CALL = "call"


@strawberry.enum(description="Where a visit stands: BOOKED, then an outcome, or CANCELLED.")
class CaseWorkVisitStatus(Enum):
    BOOKED = "booked"
    DONE = "done"
    NO_ANSWER = "no_answer"
    CLIENT_NOT_HOME = "client_not_home"
    CANCELLED = "cancelled"


@strawberry.enum(description="How a visit went: NO_ANSWER fits a call, CLIENT_NOT_HOME a home visit.")
class CaseWorkVisitOutcome(Enum):
    DONE = "done"
    NO_ANSWER = "no_answer"
    CLIENT_NOT_HOME = "client_not_home"


@strawberry.enum(description="What is due on a case.")
class CaseWorkDueKind(Enum):
    VISIT = "visit"
    REVIEW = "review"
    ACTION = "action"


# -- types -----------------------------------------------------------------------------------------------------


async def _person(info: Info, pk: int | None) -> CaseWorkPerson | None:
    return await gql.load(info, Account, pk, CaseWorkPerson.of)


@strawberry.type(description="A home visit or call of a case: appointments on the staff's shared calendar.")
class CaseWorkVisit(relay.Node):
    id: relay.NodeID[int]
    mode: CaseWorkVisitMode
    status: CaseWorkVisitStatus
    purpose: str
    outcome_note: str = strawberry.field(description="A short note on how it went (not a progress note).")
    outcome_at: datetime | None
    cancel_reason: str
    row: strawberry.Private[Visit]

    @classmethod
    def of(cls, v: Visit) -> CaseWorkVisit:
        return cls(
            id=v.id,
            mode=CaseWorkVisitMode(v.mode),
            status=CaseWorkVisitStatus(v.status),
            purpose=v.purpose,
            outcome_note=v.outcome_note,
            outcome_at=v.outcome_at,
            cancel_reason=v.cancel_reason,
            row=v,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await gql.resolve_node_rows(info, node_ids, services.visits_by_id, cls.of, required)

    async def _slot(self, info: Info) -> Any:
        # One batched query for every visit of the answer, not one per visit.
        return await info.context.loaders.by_id(Appointment).load(self.row.appointment_id)

    @strawberry.field(description="When the visit starts (in your zone).")
    async def start(self, info: Info) -> datetime:
        return (await self._slot(info)).during.lower  # type: ignore[no-any-return]

    @strawberry.field(description="When the visit ends (in your zone).")
    async def end(self, info: Info) -> datetime:
        return (await self._slot(info)).during.upper  # type: ignore[no-any-return]

    @strawberry.field
    async def case(self, info: Info) -> CaseWorkCase:
        return await gql.load_required(info, Case, self.row.case_id, CaseWorkCase.of)  # type: ignore[no-any-return]

    @strawberry.field(description="The social worker whose calendar holds the visit.")
    async def social_worker(self, info: Info) -> CaseWorkPerson | None:
        return await _person(info, self.row.worker_account_id)

    @strawberry.field(description="The second staff member, if one comes along.")
    async def second_staff(self, info: Info) -> CaseWorkPerson | None:
        return await _person(info, self.row.second_account_id)


@strawberry.type(description="How many open cases are in one stage.")
class CaseWorkStageCount:
    stage: CaseWorkStage
    count: int


@strawberry.type(description="How many open cases are at one risk level.")
class CaseWorkRiskCount:
    risk_level: CaseWorkRiskLevel
    count: int


@strawberry.type(description="Something due on a case of the caseload: a visit, a review, an action.")
class CaseWorkDueItem:
    kind: CaseWorkDueKind
    due_at: datetime = strawberry.field(description="When it is due (a visit: when it starts), in your zone.")
    overdue: bool = strawberry.field(description="Due before now (a visit: started, its outcome not recorded).")
    summary: str
    record_id: strawberry.ID = strawberry.field(description="The global ID of the visit, review or action.")
    case_pk: strawberry.Private[int]

    @strawberry.field
    async def case(self, info: Info) -> CaseWorkCase:
        return await gql.load_required(info, Case, self.case_pk, CaseWorkCase.of)  # type: ignore[no-any-return]


@strawberry.type(description="A social worker's open cases, their counts, and what is due next.")
class CaseWorkCaseload:
    worker: CaseWorkPerson
    open_cases: int = strawberry.field(description="Open cases (not closed, not ended at intake).")
    by_stage: list[CaseWorkStageCount] = strawberry.field(description="Open cases per open stage, in stage order.")
    by_risk: list[CaseWorkRiskCount] = strawberry.field(description="Open cases per risk level, highest first.")
    load: strawberry.Private[caseloads.Caseload]

    @classmethod
    def of(cls, c: caseloads.Caseload) -> CaseWorkCaseload:
        return cls(
            worker=CaseWorkPerson.of(c.worker),
            open_cases=c.open_cases,
            by_stage=[CaseWorkStageCount(stage=CaseWorkStage(s), count=n) for s, n in c.by_stage()],
            by_risk=[CaseWorkRiskCount(risk_level=CaseWorkRiskLevel(r), count=n) for r, n in c.by_risk()],
            load=c,
        )

    @strawberry.field(description="The open cases, highest risk first, then oldest first.")
    async def cases(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> gql.Connection[CaseWorkCase]:
        page = await info.context.read(
            caseloads.caseload_cases, self.load, first=gql.first_of(info, first), after=after
        )
        return gql.connection(info, page, CaseWorkCase.of)

    @strawberry.field(
        description="What is due, overdue first, then soonest: booked visits of the next 14 days (and past ones "
        "without an outcome), reviews and actions. At most `first` (200)."
    )
    async def due_items(
        self, info: Info, kinds: list[CaseWorkDueKind] | None = None, first: int = 50
    ) -> list[CaseWorkDueItem]:
        items = await info.context.read(
            caseloads.due_items, self.load, tuple(k.value for k in kinds or ()), first=first
        )
        now = self.load.now
        return [
            CaseWorkDueItem(
                kind=CaseWorkDueKind(i.kind),
                due_at=i.due_at,
                overdue=i.due_at < now,
                summary=i.summary,
                record_id=strawberry.ID(gql.encode_id(i.record_type, i.record_id)),
                case_pk=i.case_id,
            )
            for i in items
        ]


# -- payloads, filters, inputs -------------------------------------------------------------------------------

CaseWorkVisitPayload = gql.payload("CaseWorkVisitPayload", "visit", CaseWorkVisit)


def _id(raw: str, type_name: str, field: str, where: str = "input") -> int:
    return gql.decode_id(raw, type_name, (where, field))


@strawberry.input(description="All given conditions must hold.")
class CaseWorkVisitFilter:
    case_id: strawberry.ID | None = None
    social_worker_id: strawberry.ID | None = strawberry.field(default=None, description="An Account ID.")
    statuses: list[CaseWorkVisitStatus] | None = None
    modes: list[CaseWorkVisitMode] | None = None
    start_from: datetime | None = strawberry.field(default=None, name="from", description="Starting at or after.")
    start_to: datetime | None = strawberry.field(default=None, name="to", description="Starting before.")

    def to_service(self) -> services.VisitFilter:
        return services.VisitFilter(
            case_id=gql.decode_optional_id(self.case_id, "CaseWorkCase", ("filter", "caseId")),
            worker_account_id=gql.decode_optional_id(self.social_worker_id, "Account", ("filter", "socialWorkerId")),
            statuses=tuple(s.value for s in self.statuses or ()),
            modes=tuple(m.value for m in self.modes or ()),
            start_from=self.start_from,
            start_to=self.start_to,
        )


@strawberry.input
class CaseWorkBookVisitInput:
    case_id: strawberry.ID
    mode: CaseWorkVisitMode
    start: datetime = strawberry.field(description="With its offset (your zone or any other).")
    minutes: int = 60
    purpose: str = ""
    second_staff_id: strawberry.ID | None = strawberry.field(
        default=None, description="An Account of a second staff member who comes along (booked too)."
    )


@strawberry.input
class CaseWorkRescheduleVisitInput:
    id: strawberry.ID
    start: datetime
    minutes: int = 60


@strawberry.input
class CaseWorkCancelVisitInput:
    id: strawberry.ID
    reason: str


@strawberry.input
class CaseWorkRecordVisitOutcomeInput:
    id: strawberry.ID
    outcome: CaseWorkVisitOutcome
    note: str = strawberry.field(default="", description="A short note (at most 500 characters).")


# -- root fields -----------------------------------------------------------------------------------------------


@strawberry.type
class CaseWorkVisitsQuery:
    @strawberry.field(description="Visits of the cases you see, earliest first.")
    async def case_work_visits(
        self,
        info: Info,
        filter: CaseWorkVisitFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> gql.Connection[CaseWorkVisit]:
        f = (filter or CaseWorkVisitFilter()).to_service()
        page = await info.context.read(
            services.list_visits,
            f,
            first=gql.first_of(info, first),
            after=after,
            max_days=info.context.settings.max_range_days,
        )
        return gql.connection(info, page, CaseWorkVisit.of)

    @strawberry.field(
        description="A social worker's caseload (default: yours): their open cases you may see, counts and what is "
        "due. Null for an account that does not exist (or is not of your organisation)."
    )
    async def case_work_caseload(self, info: Info, worker_id: strawberry.ID | None = None) -> CaseWorkCaseload | None:
        pk = gql.decode_optional_id(worker_id, "Account", ("workerId",))
        found = await info.context.read(caseloads.caseload, pk)
        return None if found is None else CaseWorkCaseload.of(found)


@strawberry.type
class CaseWorkVisitsMutation:
    @strawberry.mutation(description="Book a home visit or call of an open case on its social worker's calendar.")
    async def case_work_book_visit(self, info: Info, input: CaseWorkBookVisitInput) -> CaseWorkVisitPayload:
        async def work(ctx: core.ServiceContext) -> Visit:
            return await services.book_visit(
                ctx,
                _id(input.case_id, "CaseWorkCase", "caseId"),
                mode=input.mode.value,
                start=input.start,
                minutes=input.minutes,
                purpose=input.purpose,
                second_account_id=gql.decode_optional_id(input.second_staff_id, "Account", ("input", "secondStaffId")),
                horizon_days=info.context.settings.max_range_days,
            )

        return await gql.mutate(info, CaseWorkVisitPayload, "visit", CaseWorkVisit.of, work)

    @strawberry.mutation(description="Move a booked visit (the same people).")
    async def case_work_reschedule_visit(self, info: Info, input: CaseWorkRescheduleVisitInput) -> CaseWorkVisitPayload:
        return await gql.mutate(
            info,
            CaseWorkVisitPayload,
            "visit",
            CaseWorkVisit.of,
            lambda ctx: services.reschedule_visit(
                ctx,
                _id(input.id, "CaseWorkVisit", "id"),
                input.start,
                input.minutes,
                horizon_days=info.context.settings.max_range_days,
            ),
        )

    @strawberry.mutation(description="Cancel a booked visit, with a reason; the time is free again.")
    async def case_work_cancel_visit(self, info: Info, input: CaseWorkCancelVisitInput) -> CaseWorkVisitPayload:
        return await gql.mutate(
            info,
            CaseWorkVisitPayload,
            "visit",
            CaseWorkVisit.of,
            lambda ctx: services.cancel_visit(ctx, _id(input.id, "CaseWorkVisit", "id"), input.reason),
        )

    @strawberry.mutation(description="Record how a started visit went, with a short note.")
    async def case_work_record_visit_outcome(
        self, info: Info, input: CaseWorkRecordVisitOutcomeInput
    ) -> CaseWorkVisitPayload:
        return await gql.mutate(
            info,
            CaseWorkVisitPayload,
            "visit",
            CaseWorkVisit.of,
            lambda ctx: services.record_outcome(
                ctx, _id(input.id, "CaseWorkVisit", "id"), input.outcome.value, input.note
            ),
        )


def graphql_parts() -> tuple[type, type, tuple[type, ...]]:
    """(query fields, mutation fields, extra types) for plugins/case_work/plugin.py to merge into the plugin's
    GraphQL contribution."""
    return CaseWorkVisitsQuery, CaseWorkVisitsMutation, (CaseWorkVisit,)
