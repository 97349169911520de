"""GraphQL of casework's group work (root fields `caseWork…Group…`, types `CaseWorkGroup…`).

The rules live in services.py; the resolvers below only translate. Nested lists (history, participants,
sessions, attendance, notes) are batched per request: a page of groups costs a fixed number of statements.
Confidential text (outcome notes, the closing summary) is null for those who do not read it, and every
read of it is noted for the audit trail. `graphql_parts()` is what plugins/case_work/plugin.py merges into
the plugin's query and mutation types.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry import Info, relay
from strawberry.dataloader import DataLoader

import core
from core.models import Account, Appointment
from plugins.case_work.groups import services
from plugins.case_work.groups.models import (
    Attendance,
    Group,
    GroupFacilitatorChange,
    GroupNote,
    GroupSession,
    GroupStageChange,
    Participant,
)
from plugins.case_work.models import Client
from plugins.case_work.types import CaseWorkCategory, CaseWorkClient, CaseWorkPerson
from schema import api as gql

# -- enums -----------------------------------------------------------------------------------------------------


@strawberry.enum(description="The stages of a group (MZ/T 095-2017): 筹备, 形成, 转折, 成熟, 结束.")
class CaseWorkGroupStage(Enum):
    PREPARATION = "preparation"
    FORMATION = "formation"
    TRANSITION = "transition"
    MATURITY = "maturity"
    ENDING = "ending"


@strawberry.enum(description="A session is SCHEDULED (it took or will take place) or CANCELLED.")
class CaseWorkGroupSessionStatus(Enum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


@strawberry.enum(description="Whether a participant came to a session.")
class CaseWorkAttendanceStatus(Enum):
    PRESENT = "present"
    ABSENT = "absent"
    EXCUSED = "excused"


# -- batching --------------------------------------------------------------------------------------------------


def _loader(info: Info, key: str, fn: Callable[[core.ServiceContext, Sequence[int]], Awaitable[list[Any]]]) -> Any:
    """A per-request DataLoader over a service that answers one list per key, in key order."""

    async def load(keys: list[int]) -> list[Any]:
        return await info.context.read(fn, keys)

    return info.context.loaders.get(f"case_work:groups:{key}", lambda _: DataLoader(load_fn=load))


async def _person(info: Info, pk: int | None) -> CaseWorkPerson | None:
    return await gql.load(info, Account, pk, CaseWorkPerson.of)


# -- types -----------------------------------------------------------------------------------------------------


@strawberry.type(description="One step of a group: who took it, when, from which stage to which, and why.")
class CaseWorkGroupStageChange:
    seq: int = strawberry.field(description="0 is the creation; each step adds one.")
    from_stage: CaseWorkGroupStage | None
    to_stage: CaseWorkGroupStage
    at: datetime
    reason: str
    actor_name: str = strawberry.field(description="Who took the step, as recorded then.")

    @classmethod
    def of(cls, h: GroupStageChange) -> CaseWorkGroupStageChange:
        return cls(
            seq=h.seq,
            from_stage=None if h.from_stage is None else CaseWorkGroupStage(h.from_stage),
            to_stage=CaseWorkGroupStage(h.to_stage),
            at=h.at,
            reason=h.reason,
            actor_name=h.actor,
        )


@strawberry.type(
    description="A change of a group's facilitator and/or co-facilitator: from whom, to whom, who changed it, when, "
    "why. For the people who run the group."
)
class CaseWorkGroupFacilitatorChange:
    seq: int = strawberry.field(description="1 is the first change; each adds one.")
    at: datetime
    reason: str
    actor_name: str = strawberry.field(description="Who changed it, as recorded then.")
    row: strawberry.Private[GroupFacilitatorChange]

    @strawberry.field
    async def from_facilitator(self, info: Info) -> CaseWorkPerson | None:
        return await _person(info, self.row.from_facilitator_account_id)

    @strawberry.field
    async def to_facilitator(self, info: Info) -> CaseWorkPerson | None:
        return await _person(info, self.row.to_facilitator_account_id)

    @strawberry.field
    async def from_co_facilitator(self, info: Info) -> CaseWorkPerson | None:
        return await _person(info, self.row.from_co_facilitator_account_id)

    @strawberry.field
    async def to_co_facilitator(self, info: Info) -> CaseWorkPerson | None:
        return await _person(info, self.row.to_co_facilitator_account_id)

    @classmethod
    def of(cls, c: GroupFacilitatorChange) -> CaseWorkGroupFacilitatorChange:
        return cls(seq=c.seq, at=c.at, reason=c.reason, actor_name=c.actor, row=c)


@strawberry.type(description="A client taking part in a group (for the people who run it); who left, and why.")
class CaseWorkGroupParticipant(relay.Node):
    id: relay.NodeID[int]
    joined_at: datetime
    left_at: datetime | None
    leave_reason: str | None
    row: strawberry.Private[Participant]

    @classmethod
    def of(cls, p: Participant) -> CaseWorkGroupParticipant:
        return cls(id=p.id, joined_at=p.joined_at, left_at=p.left_at, leave_reason=p.leave_reason, row=p)

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await gql.resolve_node_rows(info, node_ids, services.participants_by_id, cls.of, required)

    @strawberry.field(
        description="The participant's name, for those who run the group (contact and case: see `client`)."
    )
    async def name(self, info: Info) -> str:
        found: str | None = await _loader(info, "participant_names", services.participant_names).load(self.row.id)
        return found or ""

    @strawberry.field(description="The client (casework's rules decide what it shows).")
    async def client(self, info: Info) -> CaseWorkClient | None:
        return await gql.load(info, Client, self.row.client_id, CaseWorkClient.of)


@strawberry.type(description="Whether a participant came to a session.")
class CaseWorkGroupAttendance:
    status: CaseWorkAttendanceStatus
    recorded_at: datetime
    participant_pk: strawberry.Private[int]

    @strawberry.field
    async def participant(self, info: Info) -> CaseWorkGroupParticipant:
        return await gql.load_required(info, Participant, self.participant_pk, CaseWorkGroupParticipant.of)  # type: ignore[no-any-return]


@strawberry.type(
    description="An outcome note of a session. Confidential: its text is for the facilitators and the "
    "supervisor (every read audited)."
)
class CaseWorkGroupNote:
    text: str | None = strawberry.field(description="Null if it does not open (kept, logged).")
    author_name: str
    created_at: datetime


@strawberry.type(description="A meeting of a group: an appointment of its facilitator on the shared calendar.")
class CaseWorkGroupSession(relay.Node):
    id: relay.NodeID[int]
    topic: str
    status: CaseWorkGroupSessionStatus
    cancel_reason: str
    row: strawberry.Private[GroupSession]

    @classmethod
    def of(cls, s: GroupSession) -> CaseWorkGroupSession:
        return cls(
            id=s.id, topic=s.topic, status=CaseWorkGroupSessionStatus(s.status), cancel_reason=s.cancel_reason, row=s
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await gql.resolve_node_rows(info, node_ids, services.sessions_by_id, cls.of, required)

    async def _slot(self, info: Info) -> Any:
        return await info.context.loaders.by_id(Appointment).load(self.row.appointment_id)

    @strawberry.field(description="When the session starts (in your zone).")
    async def start(self, info: Info) -> datetime:
        return (await self._slot(info)).during.lower  # type: ignore[no-any-return]

    @strawberry.field(description="When the session ends (in your zone).")
    async def end(self, info: Info) -> datetime:
        return (await self._slot(info)).during.upper  # type: ignore[no-any-return]

    @strawberry.field(
        description="Per participant; null unless you run the group.",
        metadata={"cost_list_size": services.MAX_PARTICIPANT_ROWS + services.MAX_CAPACITY},
    )
    async def attendance(self, info: Info) -> list[CaseWorkGroupAttendance] | None:
        rows: list[Attendance] | None = await _loader(info, "attendance", services.attendance).load(self.row.id)
        if rows is None:
            return None
        return [
            CaseWorkGroupAttendance(
                status=CaseWorkAttendanceStatus(a.status), recorded_at=a.recorded_at, participant_pk=a.participant_id
            )
            for a in rows
        ]

    @strawberry.field(
        description="Outcome notes, oldest first. Confidential: null unless you read them (audited).",
        metadata={"cost_list_size": services.MAX_NOTES},
    )
    async def notes(self, info: Info) -> list[CaseWorkGroupNote] | None:
        found: list[tuple[GroupNote, str | None]] | None = await _loader(info, "notes", services.notes).load(
            self.row.id
        )
        if found is None:
            return None
        for note, _ in found:
            info.context.note_sensitive_read("CaseWorkGroupNote", note.id, "text")
        return [CaseWorkGroupNote(text=t, author_name=n.author, created_at=n.created_at) for n, t in found]


@strawberry.type(description="A group (小组): purpose, facilitators, stage, capacity, participants, sessions.")
class CaseWorkGroup(relay.Node):
    id: relay.NodeID[int]
    name: str
    purpose: str
    goals: str
    category: CaseWorkCategory
    capacity: int
    participant_count: int = strawberry.field(description="Participants now (those who left not counted).")
    stage: CaseWorkGroupStage
    created_at: datetime
    ended_at: datetime | None
    row: strawberry.Private[Group]

    @classmethod
    def of(cls, g: Group) -> CaseWorkGroup:
        return cls(
            id=g.id,
            name=g.name,
            purpose=g.purpose,
            goals=g.goals,
            category=CaseWorkCategory(g.category),
            capacity=g.capacity,
            participant_count=g.participant_count,
            stage=CaseWorkGroupStage(g.stage),
            created_at=g.created_at,
            ended_at=g.ended_at,
            row=g,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await gql.resolve_node_rows(info, node_ids, services.groups_by_id, cls.of, required)

    @strawberry.field
    async def facilitator(self, info: Info) -> CaseWorkPerson | None:
        return await _person(info, self.row.facilitator_account_id)

    @strawberry.field
    async def co_facilitator(self, info: Info) -> CaseWorkPerson | None:
        return await _person(info, self.row.co_facilitator_account_id)

    @strawberry.field
    async def supervisor(self, info: Info) -> CaseWorkPerson | None:
        return await _person(info, self.row.supervisor_account_id)

    @strawberry.field(description="Every step, in order.", metadata={"cost_list_size": len(services.STAGES)})
    async def history(self, info: Info) -> list[CaseWorkGroupStageChange]:
        rows = await _loader(info, "history", services.histories).load(self.row.id)
        return [CaseWorkGroupStageChange.of(h) for h in rows]

    @strawberry.field(
        description="Changes of its facilitators, in order; null unless you run the group.",
        metadata={"cost_list_size": services.MAX_FACILITATOR_CHANGES},
    )
    async def facilitator_changes(self, info: Info) -> list[CaseWorkGroupFacilitatorChange] | None:
        rows = await _loader(info, "facilitator_changes", services.facilitator_changes).load(self.row.id)
        return None if rows is None else [CaseWorkGroupFacilitatorChange.of(c) for c in rows]

    @strawberry.field(
        description="Who takes (or took) part, in joining order; null unless you run the group.",
        metadata={"cost_list_size": services.MAX_PARTICIPANT_ROWS + services.MAX_CAPACITY},
    )
    async def participants(self, info: Info) -> list[CaseWorkGroupParticipant] | None:
        rows = await _loader(info, "participants", services.participants).load(self.row.id)
        return None if rows is None else [CaseWorkGroupParticipant.of(p) for p in rows]

    @strawberry.field(description="Its sessions, earliest first.", metadata={"cost_list_size": services.MAX_SESSIONS})
    async def sessions(self, info: Info) -> list[CaseWorkGroupSession]:
        rows = await _loader(info, "sessions", services.sessions).load(self.row.id)
        return [CaseWorkGroupSession.of(s) for s in rows]

    @strawberry.field(description="Written at 结束. Confidential: null unless you read it (audited).")
    async def closing_summary(self, info: Info) -> str | None:
        found = await info.context.read(services.closing_summary, self.row)
        if found is not None:
            info.context.note_sensitive_read("CaseWorkGroup", self.row.id, "closingSummary")
        return found  # type: ignore[no-any-return]


# -- payloads, filters, inputs -------------------------------------------------------------------------------

CaseWorkGroupPayload = gql.payload("CaseWorkGroupPayload", "group", CaseWorkGroup)
CaseWorkGroupSessionPayload = gql.payload("CaseWorkGroupSessionPayload", "session", CaseWorkGroupSession)
CaseWorkGroupParticipantPayload = gql.payload(
    "CaseWorkGroupParticipantPayload", "participant", CaseWorkGroupParticipant
)


def _id(raw: str, type_name: str, field: str) -> int:
    return gql.decode_id(raw, type_name, ("input", field))


@strawberry.input(description="All given conditions must hold.")
class CaseWorkGroupFilter:
    stages: list[CaseWorkGroupStage] | None = None
    categories: list[CaseWorkCategory] | None = None
    facilitator_id: strawberry.ID | None = strawberry.field(default=None, description="An Account ID.")

    def to_service(self) -> services.GroupFilter:
        return services.GroupFilter(
            stages=tuple(s.value for s in self.stages or ()),
            categories=tuple(c.value for c in self.categories or ()),
            facilitator_account_id=gql.decode_optional_id(self.facilitator_id, "Account", ("filter", "facilitatorId")),
        )


@strawberry.input
class CaseWorkCreateGroupInput:
    name: str
    purpose: str
    category: CaseWorkCategory
    capacity: int
    supervisor_id: strawberry.ID = strawberry.field(description="An Account holding the casework supervisor role.")
    goals: str = ""
    facilitator_id: strawberry.ID | None = strawberry.field(
        default=None, description="An Account (default: you; administrators name others)."
    )
    co_facilitator_id: strawberry.ID | None = None


@strawberry.input
class CaseWorkAdvanceGroupStageInput:
    group_id: strawberry.ID
    to: CaseWorkGroupStage
    reason: str = strawberry.field(default="", description="Required to end a group early.")
    summary: str | None = strawberry.field(default=None, description="The closing summary: required to end.")


@strawberry.input(
    description="Fields left out stay as they are; a null co-facilitator leaves the group without one. By the "
    "group's supervisor or an administrator; the sessions still ahead move to the new facilitator's calendar."
)
class CaseWorkChangeGroupFacilitatorsInput:
    group_id: strawberry.ID
    reason: str
    facilitator_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="An Account: a social worker or a casework supervisor."
    )
    co_facilitator_id: strawberry.ID | None = strawberry.field(default=strawberry.UNSET, description="An Account.")


@strawberry.input(description="Fields left out stay as they are.")
class CaseWorkUpdateGroupInput:
    group_id: strawberry.ID
    capacity: int | None = strawberry.field(
        default=strawberry.UNSET, description="2 to 100, not below the participants it has."
    )
    purpose: str | None = strawberry.UNSET
    goals: str | None = strawberry.UNSET


@strawberry.input
class CaseWorkRescheduleGroupSessionInput:
    id: strawberry.ID
    start: datetime = strawberry.field(description="With its offset.")
    minutes: int = 90


@strawberry.input
class CaseWorkScheduleGroupSessionInput:
    group_id: strawberry.ID
    start: datetime = strawberry.field(description="With its offset.")
    minutes: int = 90
    topic: str = ""


@strawberry.input
class CaseWorkCancelGroupSessionInput:
    id: strawberry.ID
    reason: str


@strawberry.input
class CaseWorkAddGroupParticipantInput:
    group_id: strawberry.ID
    client_id: strawberry.ID


@strawberry.input
class CaseWorkRemoveGroupParticipantInput:
    id: strawberry.ID
    reason: str


@strawberry.input
class CaseWorkRecordGroupAttendanceInput:
    session_id: strawberry.ID
    participant_id: strawberry.ID
    status: CaseWorkAttendanceStatus


@strawberry.input
class CaseWorkAddGroupNoteInput:
    session_id: strawberry.ID
    text: str


# -- root fields -----------------------------------------------------------------------------------------------


@strawberry.type
class CaseWorkGroupsQuery:
    @strawberry.field(description="The groups of your organisation, newest first.")
    async def case_work_groups(
        self,
        info: Info,
        filter: CaseWorkGroupFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> gql.Connection[CaseWorkGroup]:
        f = (filter or CaseWorkGroupFilter()).to_service()
        page = await info.context.read(services.list_groups, f, first=gql.first_of(info, first), after=after)
        return gql.connection(info, page, CaseWorkGroup.of)


@strawberry.type
class CaseWorkGroupsMutation:
    @strawberry.mutation(description="Create a group in preparation (筹备).")
    async def case_work_create_group(self, info: Info, input: CaseWorkCreateGroupInput) -> CaseWorkGroupPayload:
        async def work(ctx: core.ServiceContext) -> Group:
            return await services.create_group(
                ctx,
                name=input.name,
                purpose=input.purpose,
                goals=input.goals,
                category=input.category.value,
                capacity=input.capacity,
                supervisor_account_id=_id(input.supervisor_id, "Account", "supervisorId"),
                facilitator_account_id=gql.decode_optional_id(
                    input.facilitator_id, "Account", ("input", "facilitatorId")
                ),
                co_facilitator_account_id=gql.decode_optional_id(
                    input.co_facilitator_id, "Account", ("input", "coFacilitatorId")
                ),
            )

        return await gql.mutate(info, CaseWorkGroupPayload, "group", CaseWorkGroup.of, work)

    @strawberry.mutation(description="Move a group to its next stage (ending: with a closing summary).")
    async def case_work_advance_group_stage(
        self, info: Info, input: CaseWorkAdvanceGroupStageInput
    ) -> CaseWorkGroupPayload:
        return await gql.mutate(
            info,
            CaseWorkGroupPayload,
            "group",
            CaseWorkGroup.of,
            lambda ctx: services.advance(
                ctx, _id(input.group_id, "CaseWorkGroup", "groupId"), input.to.value, input.reason, input.summary
            ),
        )

    @strawberry.mutation(
        description="Hand a group to another facilitator and/or co-facilitator, with a reason (recorded); its "
        "sessions still ahead move to the new facilitator's calendar, or nothing changes."
    )
    async def case_work_change_group_facilitators(
        self, info: Info, input: CaseWorkChangeGroupFacilitatorsInput
    ) -> CaseWorkGroupPayload:
        async def work(ctx: core.ServiceContext) -> Group:
            facilitator: Any = input.facilitator_id
            co: Any = input.co_facilitator_id
            return await services.change_facilitators(
                ctx,
                _id(input.group_id, "CaseWorkGroup", "groupId"),
                input.reason,
                # Left out or null: the same facilitator (a group always has one).
                facilitator_account_id=None
                if facilitator is strawberry.UNSET or facilitator is None
                else _id(facilitator, "Account", "facilitatorId"),
                co_facilitator_account_id=services.KEEP
                if co is strawberry.UNSET
                else gql.decode_optional_id(co, "Account", ("input", "coFacilitatorId")),
            )

        return await gql.mutate(info, CaseWorkGroupPayload, "group", CaseWorkGroup.of, work)

    @strawberry.mutation(description="Change a running group's capacity, purpose or goals.")
    async def case_work_update_group(self, info: Info, input: CaseWorkUpdateGroupInput) -> CaseWorkGroupPayload:
        def given(value: Any) -> Any:
            # Left out and null alike keep the value: none of these is ever empty.
            return None if value is strawberry.UNSET else value

        return await gql.mutate(
            info,
            CaseWorkGroupPayload,
            "group",
            CaseWorkGroup.of,
            lambda ctx: services.update_group(
                ctx,
                _id(input.group_id, "CaseWorkGroup", "groupId"),
                capacity=given(input.capacity),
                purpose=given(input.purpose),
                goals=given(input.goals),
            ),
        )

    @strawberry.mutation(description="Move a session still ahead on the facilitator's calendar.")
    async def case_work_reschedule_group_session(
        self, info: Info, input: CaseWorkRescheduleGroupSessionInput
    ) -> CaseWorkGroupSessionPayload:
        return await gql.mutate(
            info,
            CaseWorkGroupSessionPayload,
            "session",
            CaseWorkGroupSession.of,
            lambda ctx: services.reschedule_session(
                ctx,
                _id(input.id, "CaseWorkGroupSession", "id"),
                start=input.start,
                minutes=input.minutes,
                horizon_days=info.context.settings.max_range_days,
            ),
        )

    @strawberry.mutation(description="Schedule a session on the facilitator's calendar.")
    async def case_work_schedule_group_session(
        self, info: Info, input: CaseWorkScheduleGroupSessionInput
    ) -> CaseWorkGroupSessionPayload:
        return await gql.mutate(
            info,
            CaseWorkGroupSessionPayload,
            "session",
            CaseWorkGroupSession.of,
            lambda ctx: services.schedule_session(
                ctx,
                _id(input.group_id, "CaseWorkGroup", "groupId"),
                start=input.start,
                minutes=input.minutes,
                topic=input.topic,
                horizon_days=info.context.settings.max_range_days,
            ),
        )

    @strawberry.mutation(description="Cancel a scheduled session, with a reason; the time is free again.")
    async def case_work_cancel_group_session(
        self, info: Info, input: CaseWorkCancelGroupSessionInput
    ) -> CaseWorkGroupSessionPayload:
        return await gql.mutate(
            info,
            CaseWorkGroupSessionPayload,
            "session",
            CaseWorkGroupSession.of,
            lambda ctx: services.cancel_session(ctx, _id(input.id, "CaseWorkGroupSession", "id"), input.reason),
        )

    @strawberry.mutation(description="A client of your organisation joins a group (within its capacity).")
    async def case_work_add_group_participant(
        self, info: Info, input: CaseWorkAddGroupParticipantInput
    ) -> CaseWorkGroupParticipantPayload:
        return await gql.mutate(
            info,
            CaseWorkGroupParticipantPayload,
            "participant",
            CaseWorkGroupParticipant.of,
            lambda ctx: services.add_participant(
                ctx, _id(input.group_id, "CaseWorkGroup", "groupId"), _id(input.client_id, "CaseWorkClient", "clientId")
            ),
        )

    @strawberry.mutation(description="A participant leaves the group, with a reason (kept).")
    async def case_work_remove_group_participant(
        self, info: Info, input: CaseWorkRemoveGroupParticipantInput
    ) -> CaseWorkGroupParticipantPayload:
        return await gql.mutate(
            info,
            CaseWorkGroupParticipantPayload,
            "participant",
            CaseWorkGroupParticipant.of,
            lambda ctx: services.remove_participant(ctx, _id(input.id, "CaseWorkGroupParticipant", "id"), input.reason),
        )

    @strawberry.mutation(description="Record whether a participant came to a session that took place.")
    async def case_work_record_group_attendance(
        self, info: Info, input: CaseWorkRecordGroupAttendanceInput
    ) -> CaseWorkGroupSessionPayload:
        async def work(ctx: core.ServiceContext) -> GroupSession:
            session_id = _id(input.session_id, "CaseWorkGroupSession", "sessionId")
            await services.record_attendance(
                ctx,
                session_id,
                _id(input.participant_id, "CaseWorkGroupParticipant", "participantId"),
                input.status.value,
            )
            return (await services.sessions_by_id(ctx, [session_id]))[session_id]

        return await gql.mutate(info, CaseWorkGroupSessionPayload, "session", CaseWorkGroupSession.of, work)

    @strawberry.mutation(description="Add an outcome note to a session (confidential: facilitators, supervisor).")
    async def case_work_add_group_note(
        self, info: Info, input: CaseWorkAddGroupNoteInput
    ) -> CaseWorkGroupSessionPayload:
        async def work(ctx: core.ServiceContext) -> GroupSession:
            session_id = _id(input.session_id, "CaseWorkGroupSession", "sessionId")
            await services.add_note(ctx, session_id, input.text)
            return (await services.sessions_by_id(ctx, [session_id]))[session_id]

        return await gql.mutate(info, CaseWorkGroupSessionPayload, "session", CaseWorkGroupSession.of, work)


def graphql_parts() -> tuple[type, type, tuple[type, ...]]:
    """(query fields, mutation fields, extra types) for plugins/case_work/plugin.py to merge into the plugin's
    GraphQL contribution."""
    return CaseWorkGroupsQuery, CaseWorkGroupsMutation, (CaseWorkGroup, CaseWorkGroupSession, CaseWorkGroupParticipant)
