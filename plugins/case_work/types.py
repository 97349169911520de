"""GraphQL of the casework plugin. Every root field starts with `caseWork`, every type with `CaseWork`.

Core's API style: one `input: CaseWork<Verb>Input!` per mutation, payloads with `errors: [UserError!]!`
(through `gql.mutate`), cursor connections with `filter`, `first` and `after` for every list that can grow,
enums for stages, categories, risk levels and approval kinds. The rules live in services.py; the resolvers
below only translate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry import Info, relay
from strawberry.dataloader import DataLoader

import core
from core.models import Account, Resident
from plugins.case_work import services
from plugins.case_work.models import Approval, Case, Client, RiskChange, StageChange, Transfer
from plugins.case_work.notes import types as notes_types
from schema import api as gql

# -- enums -----------------------------------------------------------------------------------------------------


@strawberry.enum(description="The stages of a case (MZ/T 094-2017); NOT_OPENED ends an intake that led nowhere.")
class CaseWorkStage(Enum):
    INTAKE = "intake"
    ASSESSMENT = "assessment"
    PLANNING = "planning"
    INTERVENTION = "intervention"
    EVALUATION = "evaluation"
    CLOSURE = "closure"
    NOT_OPENED = "not_opened"


@strawberry.enum(description="What a case is about.")
class CaseWorkCategory(Enum):
    ELDERLY_CARE = "elderly_care"
    DISABILITY = "disability"
    MENTAL_HEALTH = "mental_health"
    MATERNAL = "maternal"
    POVERTY = "poverty"
    CHILD_PROTECTION = "child_protection"
    OTHER = "other"


@strawberry.enum(description="How much is at stake; a HIGH case needs an approved assessment before planning.")
class CaseWorkRiskLevel(Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@strawberry.enum(description="The kind of record a case came from.")
class CaseWorkSourceKind(Enum):
    HELP_REQUEST = "help_request"
    COUNSELING_RISK_FLAG = "counseling_risk_flag"
    REFERRAL = "referral"
    MATERNAL_RISK = "maternal_risk"


@strawberry.enum(description="What an approval request is for.")
class CaseWorkApprovalKind(Enum):
    ASSESSMENT = "assessment"
    CLOSURE = "closure"


@strawberry.enum(description="Where an approval request stands (WITHDRAWN: the case moved on before a decision).")
class CaseWorkApprovalStatus(Enum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"


@strawberry.enum(description="Where a transfer stands (WITHDRAWN: taken back before an answer, or the case closed).")
class CaseWorkTransferStatus(Enum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"


# The GraphQL type name of each kind of source, for its global ID.
SOURCE_TYPES = {
    "help_request": "HelpRequest",
    "counseling_risk_flag": "CounselingRiskFlag",
    "referral": "Referral",
    "maternal_risk": "MaternalCarePregnancy",  # a pregnancy graded high (maternal_care.risk_raised)
}


# -- types -----------------------------------------------------------------------------------------------------


async def _resolve_nodes(
    info: Info, node_ids: Iterable[str], model: type, convert: Callable[[Any], Any], required: bool
) -> list[Any]:
    """node(id:): the rows the caller sees (services.rows_by_id), None for the others -- as for missing ids."""
    return await gql.resolve_node_rows(
        info, node_ids, lambda ctx, pks: services.rows_by_id(ctx, model, pks), convert, required
    )


@strawberry.type(description="A staff member's account, as casework names them.")
class CaseWorkPerson:
    account_id: strawberry.ID
    name: str

    @classmethod
    def of(cls, a: Account) -> CaseWorkPerson:
        return cls(account_id=strawberry.ID(gql.encode_id("Account", a.id)), name=a.display_name)


async def _person(info: Info, pk: int | None) -> CaseWorkPerson | None:
    return await gql.load(info, Account, pk, CaseWorkPerson.of)


def _resident_loader(info: Info) -> DataLoader[int, Resident | None]:
    # One query for the residents behind a whole page of clients.
    async def load(client_ids: list[int]) -> list[Resident | None]:
        return await info.context.read(services.client_residents, client_ids)

    return info.context.loaders.get("case_work:resident", lambda _: DataLoader(load_fn=load))  # type: ignore[no-any-return]


@strawberry.type(
    description="A resident served by casework (casework's view of core's resident). Phone and address are for "
    "the people serving them."
)
class CaseWorkClient(relay.Node):
    id: relay.NodeID[int]
    row: strawberry.Private[Client]

    @classmethod
    def of(cls, c: Client) -> CaseWorkClient:
        return cls(id=c.id, row=c)

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Client, cls.of, required)

    async def _resident(self, info: Info) -> Resident | None:
        return await _resident_loader(info).load(self.row.id)

    @strawberry.field(description="The resident's global ID (core's record of the person).")
    def resident_id(self) -> strawberry.ID:
        return strawberry.ID(gql.encode_id("Resident", self.row.resident_id))

    @strawberry.field
    async def name(self, info: Info) -> str:
        resident = await self._resident(info)
        return "" if resident is None else resident.name

    @strawberry.field(description="Sensitive: raw for the social worker and supervisor of the client's cases.")
    async def phone(self, info: Info) -> str:
        resident = await self._resident(info)
        if resident is None:
            return ""
        if await info.context.read(services.sees_contact, self.row):
            info.context.note_sensitive_read("CaseWorkClient", self.row.id, "phone")
            return resident.phone
        return core.mask_phone(resident.phone) or ""

    @strawberry.field(description="Sensitive: raw for the social worker and supervisor of the client's cases.")
    async def address(self, info: Info) -> str:
        resident = await self._resident(info)
        if resident is None:
            return ""
        if await info.context.read(services.sees_contact, self.row):
            info.context.note_sensitive_read("CaseWorkClient", self.row.id, "address")
            return resident.address
        return services.mask_address(resident.address)

    @strawberry.field(description="The client's community (core's rules decide what it shows).")
    async def community(self, info: Info) -> gql.Community | None:
        resident = await self._resident(info)
        if resident is None:
            return None
        return await gql.load(info, core.Community, resident.community_id, gql.Community.from_model)


@strawberry.type(description="One step of a case: who took it, when, from which stage to which, and why.")
class CaseWorkStageChange:
    seq: int = strawberry.field(description="0 is the opening; each step adds one.")
    from_stage: CaseWorkStage | None
    to_stage: CaseWorkStage
    at: datetime
    reason: str
    actor_name: str = strawberry.field(description="Who took the step, as recorded then.")
    actor_pk: strawberry.Private[int | None]

    @classmethod
    def of(cls, h: StageChange) -> CaseWorkStageChange:
        return cls(
            seq=h.seq,
            from_stage=None if h.from_stage is None else CaseWorkStage(h.from_stage),
            to_stage=CaseWorkStage(h.to_stage),
            at=h.at,
            reason=h.reason,
            actor_name=h.actor,
            actor_pk=h.actor_account_id,
        )

    @strawberry.field(description="The account that took the step.")
    async def actor(self, info: Info) -> CaseWorkPerson | None:
        return await _person(info, self.actor_pk)


@strawberry.type(description="A request for approval (of a high-risk assessment, or of closure) and its decision.")
class CaseWorkApproval(relay.Node):
    id: relay.NodeID[int]
    kind: CaseWorkApprovalKind
    status: CaseWorkApprovalStatus
    summary: str
    outcomes: list[str] = strawberry.field(description="Closure: one outcome per goal.")
    requested_at: datetime
    decided_at: datetime | None
    decision_note: str
    row: strawberry.Private[Approval]

    @classmethod
    def of(cls, a: Approval) -> CaseWorkApproval:
        return cls(
            id=a.id,
            kind=CaseWorkApprovalKind(a.kind),
            status=CaseWorkApprovalStatus(a.status),
            summary=a.summary,
            outcomes=list(a.outcomes),
            requested_at=a.requested_at,
            decided_at=a.decided_at,
            decision_note=a.decision_note,
            row=a,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Approval, cls.of, required)

    @strawberry.field
    async def requested_by(self, info: Info) -> CaseWorkPerson | None:
        return await _person(info, self.row.requested_by_account_id)

    @strawberry.field
    async def decided_by(self, info: Info) -> CaseWorkPerson | None:
        return await _person(info, self.row.decided_by_account_id)

    @strawberry.field
    async def case(self, info: Info) -> CaseWorkCase:
        return await gql.load_required(info, Case, self.row.case_id, CaseWorkCase.of)  # type: ignore[no-any-return]


@strawberry.type(description="A change of a case's risk level: who, when, from, to and why.")
class CaseWorkRiskChange:
    from_level: CaseWorkRiskLevel
    to_level: CaseWorkRiskLevel
    at: datetime
    reason: str
    actor_name: str = strawberry.field(description="Who changed it, as recorded then.")
    actor_pk: strawberry.Private[int | None]

    @classmethod
    def of(cls, r: RiskChange) -> CaseWorkRiskChange:
        return cls(
            from_level=CaseWorkRiskLevel(r.from_level),
            to_level=CaseWorkRiskLevel(r.to_level),
            at=r.at,
            reason=r.reason,
            actor_name=r.actor,
            actor_pk=r.actor_account_id,
        )

    @strawberry.field(description="The account that changed it.")
    async def actor(self, info: Info) -> CaseWorkPerson | None:
        return await _person(info, self.actor_pk)


@strawberry.type(
    description="A case handed from one social worker to another: proposed with a reason, then accepted or "
    "declined by the receiver. The receiver sees the proposal, not the case, until they accept."
)
class CaseWorkTransfer(relay.Node):
    id: relay.NodeID[int]
    status: CaseWorkTransferStatus
    reason: str = strawberry.field(description="Why the transfer was proposed.")
    proposed_at: datetime
    decided_at: datetime | None
    decision_reason: str = strawberry.field(description="Why it was declined (or a note on accepting).")
    row: strawberry.Private[Transfer]

    @classmethod
    def of(cls, t: Transfer) -> CaseWorkTransfer:
        return cls(
            id=t.id,
            status=CaseWorkTransferStatus(t.status),
            reason=t.reason,
            proposed_at=t.proposed_at,
            decided_at=t.decided_at,
            decision_reason=t.decision_reason,
            row=t,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Transfer, cls.of, required)

    @strawberry.field(description="The social worker the case was with.")
    async def from_worker(self, info: Info) -> CaseWorkPerson | None:
        return await _person(info, self.row.from_account_id)

    @strawberry.field(description="The social worker it is offered to.")
    async def to_worker(self, info: Info) -> CaseWorkPerson | None:
        return await _person(info, self.row.to_account_id)

    @strawberry.field
    async def proposed_by(self, info: Info) -> CaseWorkPerson | None:
        return await _person(info, self.row.proposed_by_account_id)

    @strawberry.field
    async def decided_by(self, info: Info) -> CaseWorkPerson | None:
        return await _person(info, self.row.decided_by_account_id)

    @strawberry.field(description="The case, for those who see it (null for a receiver who has not accepted).")
    async def case(self, info: Info) -> CaseWorkCase | None:
        # By the case's own scope, not the transfer's: a receiver sees the offer, not the case, until accepting.
        found = await info.context.read(services.rows_by_id, Case, [self.row.case_id])
        case = found.get(self.row.case_id)
        return None if case is None else CaseWorkCase.of(case)


def _risk_history_loader(info: Info) -> DataLoader[int, list[RiskChange]]:
    async def load(case_ids: list[int]) -> list[list[RiskChange]]:
        return await info.context.read(services.risk_histories, case_ids)

    return info.context.loaders.get("case_work:risk_history", lambda _: DataLoader(load_fn=load))  # type: ignore[no-any-return]


def _transfers_loader(info: Info) -> DataLoader[int, list[Transfer]]:
    async def load(case_ids: list[int]) -> list[list[Transfer]]:
        return await info.context.read(services.case_transfers, case_ids)

    return info.context.loaders.get("case_work:transfers", lambda _: DataLoader(load_fn=load))  # type: ignore[no-any-return]


def _history_loader(info: Info) -> DataLoader[int, list[StageChange]]:
    # One query for the histories of a whole page of cases.
    async def load(case_ids: list[int]) -> list[list[StageChange]]:
        return await info.context.read(services.histories, case_ids)

    return info.context.loaders.get("case_work:history", lambda _: DataLoader(load_fn=load))  # type: ignore[no-any-return]


def _latest_approval_loader(info: Info) -> DataLoader[tuple[int, str], Approval | None]:
    async def load(keys: list[tuple[int, str]]) -> list[Approval | None]:
        return await info.context.read(services.latest_approvals, keys)

    return info.context.loaders.get("case_work:latest_approval", lambda _: DataLoader(load_fn=load))  # type: ignore[no-any-return]


@strawberry.type(description="A case: a client, their social worker and supervisor, its stage and its history.")
class CaseWorkCase(relay.Node):
    id: relay.NodeID[int]
    category: CaseWorkCategory
    risk_level: CaseWorkRiskLevel
    stage: CaseWorkStage
    opened_at: datetime
    closed_at: datetime | None
    source_kind: CaseWorkSourceKind | None
    row: strawberry.Private[Case]
    notes = notes_types.notes_field()

    @classmethod
    def of(cls, c: Case) -> CaseWorkCase:
        return cls(
            id=c.id,
            category=CaseWorkCategory(c.category),
            risk_level=CaseWorkRiskLevel(c.risk_level),
            stage=CaseWorkStage(c.stage),
            opened_at=c.opened_at,
            closed_at=c.closed_at,
            source_kind=None if c.source_kind is None else CaseWorkSourceKind(c.source_kind),
            row=c,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Case, cls.of, required)

    @strawberry.field(description="The global ID of the record the case came from (see sourceKind).")
    def source_id(self) -> strawberry.ID | None:
        if self.row.source_kind is None or self.row.source_id is None:
            return None
        return strawberry.ID(gql.encode_id(SOURCE_TYPES[self.row.source_kind], self.row.source_id))

    @strawberry.field
    async def client(self, info: Info) -> CaseWorkClient:
        return await gql.load_required(info, Client, self.row.client_id, CaseWorkClient.of)  # type: ignore[no-any-return]

    @strawberry.field
    async def social_worker(self, info: Info) -> CaseWorkPerson | None:
        return await _person(info, self.row.social_worker_account_id)

    @strawberry.field
    async def supervisor(self, info: Info) -> CaseWorkPerson | None:
        return await _person(info, self.row.supervisor_account_id)

    @strawberry.field(description="Every step of the case, the opening first (append-only).")
    async def history(self, info: Info) -> list[CaseWorkStageChange]:
        return [CaseWorkStageChange.of(h) for h in await _history_loader(info).load(self.row.id)]

    @strawberry.field(description="Every change of the case's risk level, oldest first (append-only).")
    async def risk_history(self, info: Info) -> list[CaseWorkRiskChange]:
        return [CaseWorkRiskChange.of(r) for r in await _risk_history_loader(info).load(self.row.id)]

    @strawberry.field(description="Every transfer of the case between social workers, oldest first.")
    async def transfers(self, info: Info) -> list[CaseWorkTransfer]:
        return [CaseWorkTransfer.of(t) for t in await _transfers_loader(info).load(self.row.id)]

    @strawberry.field(description="The latest assessment approval request, if any.")
    async def assessment_approval(self, info: Info) -> CaseWorkApproval | None:
        found = await _latest_approval_loader(info).load((self.row.id, "assessment"))
        return None if found is None else CaseWorkApproval.of(found)

    @strawberry.field(description="The latest closure approval request, if any.")
    async def closure_approval(self, info: Info) -> CaseWorkApproval | None:
        found = await _latest_approval_loader(info).load((self.row.id, "closure"))
        return None if found is None else CaseWorkApproval.of(found)


# -- payloads --------------------------------------------------------------------------------------------------

CaseWorkCasePayload = gql.payload("CaseWorkCasePayload", "case", CaseWorkCase)
CaseWorkApprovalPayload = gql.payload("CaseWorkApprovalPayload", "approval", CaseWorkApproval)
CaseWorkTransferPayload = gql.payload("CaseWorkTransferPayload", "transfer", CaseWorkTransfer)


def _id(raw: str, type_name: str, field: str, where: str = "input") -> int:
    return gql.decode_id(raw, type_name, (where, field))


def _optional_id(raw: str | None, type_name: str, field: str, where: str = "filter") -> int | None:
    return gql.decode_optional_id(raw, type_name, (where, field))


def _values(members: list[Any] | None) -> tuple[str, ...]:
    return tuple(m.value for m in members or ())


# -- filters ---------------------------------------------------------------------------------------------------


@strawberry.input(description="All given conditions must hold.")
class CaseWorkCaseFilter:
    stages: list[CaseWorkStage] | None = None
    categories: list[CaseWorkCategory] | None = None
    risk_levels: list[CaseWorkRiskLevel] | None = None
    social_worker_id: strawberry.ID | None = strawberry.field(default=None, description="An Account ID.")
    client_id: strawberry.ID | None = None

    def to_service(self) -> services.CaseFilter:
        return services.CaseFilter(
            stages=_values(self.stages),
            categories=_values(self.categories),
            risk_levels=_values(self.risk_levels),
            social_worker_account_id=_optional_id(self.social_worker_id, "Account", "socialWorkerId"),
            client_id=_optional_id(self.client_id, "CaseWorkClient", "clientId"),
        )


@strawberry.input(description="All given conditions must hold.")
class CaseWorkApprovalFilter:
    case_id: strawberry.ID | None = None
    kinds: list[CaseWorkApprovalKind] | None = None
    statuses: list[CaseWorkApprovalStatus] | None = None
    awaiting_my_decision: bool = strawberry.field(
        default=False, description="Pending requests you may decide (a supervisor's or administrator's queue)."
    )

    def to_service(self) -> services.ApprovalFilter:
        return services.ApprovalFilter(
            case_id=_optional_id(self.case_id, "CaseWorkCase", "caseId"),
            kinds=_values(self.kinds),
            statuses=_values(self.statuses),
            awaiting_my_decision=self.awaiting_my_decision,
        )


@strawberry.input(description="All given conditions must hold.")
class CaseWorkTransferFilter:
    case_id: strawberry.ID | None = None
    statuses: list[CaseWorkTransferStatus] | None = None
    awaiting_my_answer: bool = strawberry.field(default=False, description="Pending transfers offered to you.")

    def to_service(self) -> services.TransferFilter:
        return services.TransferFilter(
            case_id=_optional_id(self.case_id, "CaseWorkCase", "caseId"),
            statuses=_values(self.statuses),
            awaiting_my_answer=self.awaiting_my_answer,
        )


# -- inputs ----------------------------------------------------------------------------------------------------


@strawberry.input(description="A new client: a resident of one of your communities.")
class CaseWorkClientInput:
    name: str
    phone: str = ""
    address: str = ""
    community_id: strawberry.ID | None = None


@strawberry.input
class CaseWorkOpenCaseInput:
    category: CaseWorkCategory
    risk_level: CaseWorkRiskLevel
    supervisor_id: strawberry.ID = strawberry.field(description="An Account holding case_work.supervisor.")
    social_worker_id: strawberry.ID | None = strawberry.field(
        default=None, description="An Account (a social worker); default: you, if you are one."
    )
    client_id: strawberry.ID | None = strawberry.field(default=None, description="An existing client…")
    client: CaseWorkClientInput | None = strawberry.field(default=None, description="…or a new one…")
    resident_id: strawberry.ID | None = strawberry.field(
        default=None, description="…or a resident of your organisation (their casework client, made if needed)."
    )
    source_kind: CaseWorkSourceKind | None = None
    source_id: strawberry.ID | None = strawberry.field(default=None, description="The source's global ID.")
    reason: str = ""


@strawberry.input
class CaseWorkAdvanceCaseStageInput:
    id: strawberry.ID
    to: CaseWorkStage
    reason: str = strawberry.field(default="", description="Required to end as NOT_OPENED or to go back.")


@strawberry.input
class CaseWorkReopenCaseInput:
    id: strawberry.ID
    reason: str


@strawberry.input
class CaseWorkUpdateCaseInput:
    id: strawberry.ID
    category: CaseWorkCategory | None = None
    risk_level: CaseWorkRiskLevel | None = None
    reason: str = strawberry.field(default="", description="Why the risk changes (required to lower it).")


@strawberry.input
class CaseWorkProposeTransferInput:
    case_id: strawberry.ID
    to_id: strawberry.ID = strawberry.field(description="An Account: the social worker to take the case.")
    reason: str


@strawberry.input
class CaseWorkAnswerTransferInput:
    id: strawberry.ID
    accept: bool
    reason: str = strawberry.field(default="", description="Required to decline.")


@strawberry.input
class CaseWorkWithdrawTransferInput:
    id: strawberry.ID


@strawberry.input
class CaseWorkRequestApprovalInput:
    case_id: strawberry.ID
    kind: CaseWorkApprovalKind
    summary: str
    outcomes: list[str] = strawberry.field(default_factory=list, description="Closure: one outcome per goal.")


@strawberry.input
class CaseWorkDecideApprovalInput:
    id: strawberry.ID
    approve: bool
    note: str = strawberry.field(default="", description="Required for a refusal.")


def _source_id(input: CaseWorkOpenCaseInput) -> int | None:
    if input.source_id is None:
        return None
    type_name = SOURCE_TYPES[input.source_kind.value] if input.source_kind else "HelpRequest"
    return _id(input.source_id, type_name, "sourceId")


# -- root fields -----------------------------------------------------------------------------------------------


@strawberry.type
class CaseWorkQuery:
    @strawberry.field(description="The cases you see (yours; administrators: your organisation's), newest first.")
    async def case_work_cases(
        self,
        info: Info,
        filter: CaseWorkCaseFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> gql.Connection[CaseWorkCase]:
        f = (filter or CaseWorkCaseFilter()).to_service()
        page = await info.context.read(services.list_cases, f, first=gql.first_of(info, first), after=after)
        return gql.connection(info, page, CaseWorkCase.of)

    @strawberry.field(description="Approval requests of the cases you see, oldest first.")
    async def case_work_approvals(
        self,
        info: Info,
        filter: CaseWorkApprovalFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> gql.Connection[CaseWorkApproval]:
        f = (filter or CaseWorkApprovalFilter()).to_service()
        page = await info.context.read(services.list_approvals, f, first=gql.first_of(info, first), after=after)
        return gql.connection(info, page, CaseWorkApproval.of)

    @strawberry.field(description="Transfers of the cases you see and those offered to you, newest first.")
    async def case_work_transfers(
        self,
        info: Info,
        filter: CaseWorkTransferFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> gql.Connection[CaseWorkTransfer]:
        f = (filter or CaseWorkTransferFilter()).to_service()
        page = await info.context.read(services.list_transfers, f, first=gql.first_of(info, first), after=after)
        return gql.connection(info, page, CaseWorkTransfer.of)


@strawberry.type
class CaseWorkMutation:
    @strawberry.mutation(description="Open a case at intake, for an existing client or a new one.")
    async def case_work_open_case(self, info: Info, input: CaseWorkOpenCaseInput) -> CaseWorkCasePayload:
        async def work(ctx: core.ServiceContext) -> Case:
            c = input.client
            return await services.open_case(
                ctx,
                category=input.category.value,
                risk_level=input.risk_level.value,
                supervisor_account_id=_id(input.supervisor_id, "Account", "supervisorId"),
                social_worker_account_id=None
                if input.social_worker_id is None
                else _id(input.social_worker_id, "Account", "socialWorkerId"),
                client_id=_optional_id(input.client_id, "CaseWorkClient", "clientId", "input"),
                resident_id=_optional_id(input.resident_id, "Resident", "residentId", "input"),
                client=None
                if c is None
                else services.ClientInput(
                    name=c.name,
                    phone=c.phone,
                    address=c.address,
                    community_id=None
                    if c.community_id is None
                    else gql.decode_id(c.community_id, "Community", ("input", "client", "communityId")),
                ),
                source_kind=None if input.source_kind is None else input.source_kind.value,
                source_id=_source_id(input),
                reason=input.reason,
            )

        return await gql.mutate(info, CaseWorkCasePayload, "case", CaseWorkCase.of, work)

    @strawberry.mutation(description="Move a case one step along its stages (not reopening: caseWorkReopenCase).")
    async def case_work_advance_case_stage(
        self, info: Info, input: CaseWorkAdvanceCaseStageInput
    ) -> CaseWorkCasePayload:
        return await gql.mutate(
            info,
            CaseWorkCasePayload,
            "case",
            CaseWorkCase.of,
            lambda ctx: services.advance(ctx, _id(input.id, "CaseWorkCase", "id"), input.to.value, input.reason),
        )

    @strawberry.mutation(description="Reopen a closed case (to assessment): its supervisor or an administrator.")
    async def case_work_reopen_case(self, info: Info, input: CaseWorkReopenCaseInput) -> CaseWorkCasePayload:
        return await gql.mutate(
            info,
            CaseWorkCasePayload,
            "case",
            CaseWorkCase.of,
            lambda ctx: services.reopen(ctx, _id(input.id, "CaseWorkCase", "id"), input.reason),
        )

    @strawberry.mutation(description="Change a case's category or risk level (not once closed).")
    async def case_work_update_case(self, info: Info, input: CaseWorkUpdateCaseInput) -> CaseWorkCasePayload:
        return await gql.mutate(
            info,
            CaseWorkCasePayload,
            "case",
            CaseWorkCase.of,
            lambda ctx: services.update_case(
                ctx,
                _id(input.id, "CaseWorkCase", "id"),
                category=None if input.category is None else input.category.value,
                risk_level=None if input.risk_level is None else input.risk_level.value,
                reason=input.reason,
            ),
        )

    @strawberry.mutation(description="Ask for approval of a case's assessment or closure.")
    async def case_work_request_approval(
        self, info: Info, input: CaseWorkRequestApprovalInput
    ) -> CaseWorkApprovalPayload:
        return await gql.mutate(
            info,
            CaseWorkApprovalPayload,
            "approval",
            CaseWorkApproval.of,
            lambda ctx: services.request_approval(
                ctx, _id(input.case_id, "CaseWorkCase", "caseId"), input.kind.value, input.summary, input.outcomes
            ),
        )

    @strawberry.mutation(description="Approve or refuse a request (the case's supervisor or an administrator).")
    async def case_work_decide_approval(
        self, info: Info, input: CaseWorkDecideApprovalInput
    ) -> CaseWorkApprovalPayload:
        return await gql.mutate(
            info,
            CaseWorkApprovalPayload,
            "approval",
            CaseWorkApproval.of,
            lambda ctx: services.decide_approval(
                ctx, _id(input.id, "CaseWorkApproval", "id"), input.approve, input.note
            ),
        )

    @strawberry.mutation(description="Propose handing a case to another social worker (who accepts or declines).")
    async def case_work_propose_transfer(
        self, info: Info, input: CaseWorkProposeTransferInput
    ) -> CaseWorkTransferPayload:
        return await gql.mutate(
            info,
            CaseWorkTransferPayload,
            "transfer",
            CaseWorkTransfer.of,
            lambda ctx: services.propose_transfer(
                ctx,
                _id(input.case_id, "CaseWorkCase", "caseId"),
                _id(input.to_id, "Account", "toId"),
                input.reason,
            ),
        )

    @strawberry.mutation(description="Accept or decline a transfer offered to you (declining says why).")
    async def case_work_answer_transfer(
        self, info: Info, input: CaseWorkAnswerTransferInput
    ) -> CaseWorkTransferPayload:
        return await gql.mutate(
            info,
            CaseWorkTransferPayload,
            "transfer",
            CaseWorkTransfer.of,
            lambda ctx: services.answer_transfer(
                ctx, _id(input.id, "CaseWorkTransfer", "id"), input.accept, input.reason
            ),
        )

    @strawberry.mutation(description="Withdraw a pending transfer.")
    async def case_work_withdraw_transfer(
        self, info: Info, input: CaseWorkWithdrawTransferInput
    ) -> CaseWorkTransferPayload:
        return await gql.mutate(
            info,
            CaseWorkTransferPayload,
            "transfer",
            CaseWorkTransfer.of,
            lambda ctx: services.withdraw_transfer(ctx, _id(input.id, "CaseWorkTransfer", "id")),
        )
