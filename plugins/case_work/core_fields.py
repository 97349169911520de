"""GraphQL of casework's reactions (plugins/case_work/reactions.py): the field casework adds to core's
`HelpRequest` (`caseWorkCaseFile`), tagging a help request for casework, and the intake queue.

`HelpRequest.caseWorkCaseFile` is the case the request became, for those who see that case by casework's own
scope (its social worker, its supervisor, administrators of its organisation); null for everyone else --
volunteers, community heads, another social worker, another organisation -- and null where the organisation has
not enabled casework (core's gate). One query for a whole page of requests (a DataLoader per request).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry import Info, relay
from strawberry.dataloader import DataLoader

import core
from core.models import Account, Resident
from plugins.case_work import reactions
from plugins.case_work.models import Case
from plugins.case_work.reaction_models import Intake, RequestTag
from plugins.case_work.types import (
    SOURCE_TYPES,
    CaseWorkCase,
    CaseWorkCategory,
    CaseWorkPerson,
    CaseWorkRiskLevel,
    CaseWorkSourceKind,
)
from schema import api as gql


@strawberry.enum(description="What became of an intake: waiting in the queue, a case opened, attached to an open one.")
class CaseWorkIntakeStatus(Enum):
    QUEUED = "queued"
    OPENED = "opened"
    ATTACHED = "attached"


@strawberry.enum(description="Why an intake waits for a supervisor.")
class CaseWorkQueueReason(Enum):
    NO_SOCIAL_WORKER = "no_social_worker"
    NO_SUPERVISOR = "no_supervisor"
    NO_RESIDENT = "no_resident"
    # Casework refused to open or join the case (the refusal is logged): a supervisor opens it by hand.
    REFUSED = "refused"
    # Her consent to casework is needed before anyone but her own worker learns of it (reactions.py).
    CONSENT_REQUIRED = "consent_required"


def _case_files(info: Info) -> DataLoader[int, Case | None]:
    async def load(request_ids: list[int]) -> list[Case | None]:
        return await info.context.read(reactions.case_files, request_ids)

    return info.context.loaders.get("case_work:case_file", lambda _: DataLoader(load_fn=load))  # type: ignore[no-any-return]


def _intake_residents(info: Info) -> DataLoader[int, Resident | None]:
    async def load(intake_ids: list[int]) -> list[Resident | None]:
        return await info.context.read(reactions.intake_residents, intake_ids)

    return info.context.loaders.get("case_work:intake_resident", lambda _: DataLoader(load_fn=load))  # type: ignore[no-any-return]


async def _visible_case(info: Info, case_id: int | None) -> CaseWorkCase | None:
    """The case by casework's own scope (not the intake's or the tag's): null for those who do not see it."""
    if case_id is None:
        return None
    found = await info.context.read(reactions.services.rows_by_id, Case, [case_id])
    case = found.get(case_id)
    return None if case is None else CaseWorkCase.of(case)


@strawberry.type(
    description="A source casework heard about (a counseling risk flag, a help request tagged for casework) and what "
    "became of it. Supervisors and administrators see them; QUEUED ones wait to be turned into cases."
)
class CaseWorkIntake(relay.Node):
    id: relay.NodeID[int]
    source_kind: CaseWorkSourceKind
    status: CaseWorkIntakeStatus
    queue_reason: CaseWorkQueueReason | None
    risk_level: CaseWorkRiskLevel
    received_at: datetime
    handled_at: datetime | None
    row: strawberry.Private[Intake]

    @classmethod
    def of(cls, i: Intake) -> CaseWorkIntake:
        return cls(
            id=i.id,
            source_kind=CaseWorkSourceKind(i.source_kind),
            status=CaseWorkIntakeStatus(i.status),
            queue_reason=None if i.queue_reason is None else CaseWorkQueueReason(i.queue_reason),
            risk_level=CaseWorkRiskLevel(i.risk_level),
            received_at=i.received_at,
            handled_at=i.handled_at,
            row=i,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await gql.resolve_node_rows(info, node_ids, reactions.intakes_by_id, cls.of, required)

    @strawberry.field(description="The global ID of the source (see sourceKind).")
    def source_id(self) -> strawberry.ID:
        return strawberry.ID(gql.encode_id(SOURCE_TYPES[self.row.source_kind], self.row.source_id))

    @strawberry.field(description="The resident's name (null: the source named nobody casework knows).")
    async def resident_name(self, info: Info) -> str | None:
        resident = await _intake_residents(info).load(self.row.id)
        return None if resident is None else resident.name

    @strawberry.field(description="The resident's global ID (core's record of the person).")
    def resident_id(self) -> strawberry.ID | None:
        if self.row.resident_id is None:
            return None
        return strawberry.ID(gql.encode_id("Resident", self.row.resident_id))

    @strawberry.field(description="The community whose social worker would take it.")
    async def community(self, info: Info) -> gql.Community | None:
        return await gql.load(info, core.Community, self.row.community_id, gql.Community.from_model)

    @strawberry.field(description="The case it opened or joined, for those who see that case.")
    async def case(self, info: Info) -> CaseWorkCase | None:
        return await _visible_case(info, self.row.case_id)

    @strawberry.field(description="Who turned it into a case (null: the system did, or nobody yet).")
    async def handled_by(self, info: Info) -> CaseWorkPerson | None:
        return await gql.load(info, Account, self.row.handled_by_account_id, CaseWorkPerson.of)


@strawberry.type(description="A help request tagged for casework: its verification opens a case.")
class CaseWorkHelpRequestTag:
    category: CaseWorkCategory
    risk_level: CaseWorkRiskLevel
    reason: str
    tagged_at: datetime
    row: strawberry.Private[RequestTag]

    @classmethod
    def of(cls, t: RequestTag) -> CaseWorkHelpRequestTag:
        return cls(
            category=CaseWorkCategory(t.category),
            risk_level=CaseWorkRiskLevel(t.risk_level),
            reason=t.reason,
            tagged_at=t.tagged_at,
            row=t,
        )

    @strawberry.field(description="The help request's global ID.")
    def help_request_id(self) -> strawberry.ID:
        return strawberry.ID(gql.encode_id("HelpRequest", self.row.help_request_id))

    @strawberry.field
    async def tagged_by(self, info: Info) -> CaseWorkPerson | None:
        return await gql.load(info, Account, self.row.tagged_by_account_id, CaseWorkPerson.of)

    @strawberry.field(description="The case the request opened (once verified), for those who see it.")
    async def case(self, info: Info) -> CaseWorkCase | None:
        case = await _case_files(info).load(self.row.help_request_id)
        return None if case is None else CaseWorkCase.of(case)


CaseWorkIntakePayload = gql.payload("CaseWorkIntakePayload", "intake", CaseWorkIntake)
CaseWorkHelpRequestTagPayload = gql.payload("CaseWorkHelpRequestTagPayload", "tag", CaseWorkHelpRequestTag)


@strawberry.input(description="All given conditions must hold.")
class CaseWorkIntakeFilter:
    statuses: list[CaseWorkIntakeStatus] | None = None


@strawberry.input
class CaseWorkTagHelpRequestInput:
    help_request_id: strawberry.ID
    category: CaseWorkCategory
    risk_level: CaseWorkRiskLevel
    reason: str = ""


@strawberry.input
class CaseWorkOpenCaseFromIntakeInput:
    id: strawberry.ID = strawberry.field(description="A CaseWorkIntake (QUEUED).")
    social_worker_id: strawberry.ID = strawberry.field(description="An Account: an active social worker.")
    category: CaseWorkCategory
    supervisor_id: strawberry.ID | None = strawberry.field(
        default=None, description="An Account holding case_work.supervisor; default: you, if you hold it."
    )
    risk_level: CaseWorkRiskLevel | None = strawberry.field(default=None, description="Default: the intake's.")
    reason: str = ""


@strawberry.type
class CaseWorkReactionsQuery:
    @strawberry.field(description="Intakes of your organisation, newest first (supervisors and administrators).")
    async def case_work_intakes(
        self,
        info: Info,
        filter: CaseWorkIntakeFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> gql.Connection[CaseWorkIntake]:
        statuses = tuple(s.value for s in (filter.statuses if filter and filter.statuses else ()))
        page = await info.context.read(
            reactions.list_intakes, reactions.IntakeFilter(statuses), first=gql.first_of(info, first), after=after
        )
        return gql.connection(info, page, CaseWorkIntake.of)


@strawberry.type
class CaseWorkReactionsMutation:
    @strawberry.mutation(description="Tag a help request for casework: its verification opens a case.")
    async def case_work_tag_help_request(
        self, info: Info, input: CaseWorkTagHelpRequestInput
    ) -> CaseWorkHelpRequestTagPayload:
        async def work(ctx: core.ServiceContext) -> RequestTag:
            return await reactions.tag_help_request(
                ctx,
                gql.decode_id(input.help_request_id, "HelpRequest", ("input", "helpRequestId")),
                category=input.category.value,
                risk_level=input.risk_level.value,
                reason=input.reason,
            )

        return await gql.mutate(info, CaseWorkHelpRequestTagPayload, "tag", CaseWorkHelpRequestTag.of, work)

    @strawberry.mutation(description="Turn a queued intake into a case (a supervisor or an administrator).")
    async def case_work_open_case_from_intake(
        self, info: Info, input: CaseWorkOpenCaseFromIntakeInput
    ) -> CaseWorkIntakePayload:
        async def work(ctx: core.ServiceContext) -> Intake:
            return await reactions.open_from_intake(
                ctx,
                gql.decode_id(input.id, "CaseWorkIntake", ("input", "id")),
                social_worker_account_id=gql.decode_id(input.social_worker_id, "Account", ("input", "socialWorkerId")),
                supervisor_account_id=gql.decode_optional_id(input.supervisor_id, "Account", ("input", "supervisorId")),
                category=input.category.value,
                risk_level=None if input.risk_level is None else input.risk_level.value,
                reason=input.reason,
            )

        return await gql.mutate(info, CaseWorkIntakePayload, "intake", CaseWorkIntake.of, work)


@strawberry.type
class CaseWorkHelpRequestFields:
    @strawberry.field(
        description="The case this request became, for those who see it by casework's rules (its social worker, "
        "supervisor, administrators of its organisation); null for everyone else."
    )
    async def case_work_case_file(self, info: Info) -> CaseWorkCase | None:
        # `self` is core's HelpRequest.
        case = await _case_files(info).load(int(self.id))  # type: ignore[attr-defined]
        return None if case is None else CaseWorkCase.of(case)


def graphql_parts() -> tuple[type, type, tuple[type, ...], dict[str, type]]:
    """(query, mutation, extra types, core type fields) for plugin.py's register_graphql."""
    return (
        CaseWorkReactionsQuery,
        CaseWorkReactionsMutation,
        (CaseWorkIntake,),
        {"HelpRequest": CaseWorkHelpRequestFields},
    )
