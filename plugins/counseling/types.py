"""GraphQL of the counseling plugin. Every root field starts with `counseling`, every type with `Counseling`.

The API style is core's: every mutation takes one `input: Counseling<Verb>Input!` and answers a payload with
`errors: [UserError!]!` (through `gql.mutate`); every list that can grow is a cursor connection with
`filter`, `first` and `after`; statuses, modes, severities and sources are enums (UPPER_CASE in GraphQL,
the services' lower-case strings inside); references between records are object fields, loaded in batches.
The rules live in plugins/counseling/services.py: the resolvers below only translate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any

import strawberry
from strawberry import Info, relay

import core
from core.models import Appointment
from plugins.counseling import services
from plugins.counseling.models import Client, Counselor, Enrolment, Programme, RiskFlag, Session
from schema import api as gql

# -- enums -----------------------------------------------------------------------------------------------------------


@strawberry.enum(description="Where a counseling session is in its lifecycle.")
class CounselingSessionStatus(Enum):
    BOOKED = "booked"
    ATTENDED = "attended"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


@strawberry.enum(description="How a session is held (and which sessions a counselor offers).")
class CounselingMode(Enum):
    ONLINE = "online"
    OFFLINE = "offline"


@strawberry.enum(description="How serious a risk flag is; supervisors' lists sort HIGH first.")
class CounselingRiskSeverity(Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@strawberry.enum(description="What raised a risk flag: a low mood trend in the journal, or a counselor.")
class CounselingRiskSource(Enum):
    MOOD_TREND = "mood_trend"
    COUNSELOR = "counselor"


def _value(member: Enum | None) -> Any:
    return None if member is None else member.value


# -- node types ------------------------------------------------------------------------------------------------------


async def _resolve_nodes(
    info: Info, node_ids: Iterable[str], model: type, convert: Callable[[Any], Any], required: bool
) -> list[Any]:
    """node(id:) for a counseling type: the rows the caller may address (their organisation's; risk flags:
    their organisation's supervisors), None for the others -- exactly as for ids that do not exist."""
    return await gql.resolve_node_rows(
        info, node_ids, lambda ctx, pks: services.rows_by_id(ctx, model, pks), convert, required
    )


@strawberry.type(description="A staff member (their volunteer record) who gives counseling sessions.")
class CounselingCounselor(relay.Node):
    id: relay.NodeID[int]
    qualifications: list[str]
    specialties: list[str]
    languages: list[str]
    modes: list[CounselingMode]
    volunteer_pk: strawberry.Private[int]

    @classmethod
    def of(cls, c: Any) -> CounselingCounselor:
        return cls(
            id=c.id,
            qualifications=list(c.qualifications),
            specialties=list(c.specialties),
            languages=list(c.languages),
            modes=[CounselingMode(m) for m in c.modes],
            volunteer_pk=c.volunteer_id,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Counselor, cls.of, required)

    @strawberry.field(description="The counselor's name (their volunteer record's).")
    async def name(self, info: Info) -> str | None:
        person = await info.context.loaders.volunteer.load(self.volunteer_pk)
        return person.name if person else None

    @strawberry.field(description="The counselor's volunteer record (core's rules decide what it shows).")
    async def volunteer(self, info: Info) -> gql.Volunteer | None:
        person = await info.context.loaders.volunteer.load(self.volunteer_pk)
        return gql.Volunteer.from_model(person) if person else None


@strawberry.type(description="A resident receiving counseling; their consent was recorded first.")
class CounselingClient(relay.Node):
    id: relay.NodeID[int]
    name: str
    consent_at: datetime
    phone_value: strawberry.Private[str]
    organization_pk: strawberry.Private[int]

    @classmethod
    def of(cls, c: Any) -> CounselingClient:
        return cls(
            id=c.id, name=c.name, consent_at=c.consent_at, phone_value=c.phone, organization_pk=c.organization_id
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Client, cls.of, required)

    @strawberry.field(
        description="Sensitive: the client's organisation's counselors and social workers; masked for others."
    )
    def phone(self, info: Info) -> str:
        if services.sees_phone(info.context.viewer, self.organization_pk):
            info.context.note_sensitive_read("CounselingClient", self.id, "phone")
            return self.phone_value
        return core.mask_phone(self.phone_value) or ""


@strawberry.type(description="A counseling session: an appointment on the counselor's calendar.")
class CounselingSession(relay.Node):
    id: relay.NodeID[int]
    status: CounselingSessionStatus
    mode: CounselingMode
    meeting_link: str
    place: str
    cancel_reason: str
    row: strawberry.Private[Session]

    @classmethod
    def of(cls, s: Session) -> CounselingSession:
        return cls(
            id=s.id,
            status=CounselingSessionStatus(s.status),
            mode=CounselingMode(s.mode),
            meeting_link=s.meeting_link,
            place=s.place,
            cancel_reason=s.cancel_reason,
            row=s,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Session, cls.of, required)

    async def _slot(self, info: Info) -> Any:
        # One batched query for every session of the page (a DataLoader), not one per session.
        return await info.context.loaders.by_id(Appointment).load(self.row.appointment_id)

    @strawberry.field(description="When the session starts (in your zone).")
    async def start(self, info: Info) -> datetime:
        return (await self._slot(info)).during.lower

    @strawberry.field(description="When the session ends (in your zone).")
    async def end(self, info: Info) -> datetime:
        return (await self._slot(info)).during.upper

    @strawberry.field
    async def counselor(self, info: Info) -> CounselingCounselor:
        return await gql.load_required(info, Counselor, self.row.counselor_id, CounselingCounselor.of)  # type: ignore[no-any-return]

    @strawberry.field
    async def client(self, info: Info) -> CounselingClient:
        return await gql.load_required(info, Client, self.row.client_id, CounselingClient.of)  # type: ignore[no-any-return]

    @strawberry.field(
        description="Confidential: the session's counselor and its organisation's supervisors only; null for others."
    )
    async def notes(self, info: Info) -> str | None:
        if await info.context.read(services.can_read_notes, self.row):
            info.context.note_sensitive_read("CounselingSession", self.row.id, "notes")
            return self.row.notes
        return None


@strawberry.type(description="A free slot of a counselor who fits the search.")
class CounselingSlot:
    start: datetime
    end: datetime
    counselor: CounselingCounselor


@strawberry.type(description="A concern about a client, open until a supervisor resolves it.")
class CounselingRiskFlag(relay.Node):
    id: relay.NodeID[int]
    severity: CounselingRiskSeverity
    source: CounselingRiskSource
    note: str
    raised_at: datetime
    resolved_at: datetime | None
    client_pk: strawberry.Private[int]

    @classmethod
    def of(cls, f: Any) -> CounselingRiskFlag:
        return cls(
            id=f.id,
            severity=CounselingRiskSeverity(f.severity),
            source=CounselingRiskSource(f.source),
            note=f.note,
            raised_at=f.raised_at,
            resolved_at=f.resolved_at,
            client_pk=f.client_id,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, RiskFlag, cls.of, required)

    @strawberry.field(description="Minutes since the flag was raised.")
    def age_minutes(self, info: Info) -> int:
        return int((info.context.app.clock() - self.raised_at).total_seconds() // 60)

    @strawberry.field
    async def client(self, info: Info) -> CounselingClient:
        return await gql.load_required(info, Client, self.client_pk, CounselingClient.of)  # type: ignore[no-any-return]


@strawberry.type(description="One day's journal entry: the day of the programme (1 = its first) and the mood.")
class CounselingJournalDay:
    day: int
    mood: int


@strawberry.type(description="An enrolment's journal so far.")
class CounselingJournal:
    entries: list[CounselingJournalDay]
    missed_days: list[int]
    moving_average: list[float] = strawberry.field(description="Mean mood of each entry and the two before it.")


@strawberry.type(description="A journal programme: its days and daily prompts.")
class CounselingProgramme(relay.Node):
    id: relay.NodeID[int]
    name: str
    days: int
    prompts: list[str]

    @classmethod
    def of(cls, p: Any) -> CounselingProgramme:
        return cls(id=p.id, name=p.name, days=p.days, prompts=list(p.prompts))

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Programme, cls.of, required)


@strawberry.type(description="A client's enrolment in a journal programme, from a given day.")
class CounselingEnrolment(relay.Node):
    id: relay.NodeID[int]
    starts_on: date
    days: int
    client_pk: strawberry.Private[int]
    programme_pk: strawberry.Private[int]

    @classmethod
    def of(cls, e: Any) -> CounselingEnrolment:
        return cls(id=e.id, starts_on=e.starts_on, days=e.days, client_pk=e.client_id, programme_pk=e.programme_id)

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Enrolment, cls.of, required)

    @strawberry.field
    async def client(self, info: Info) -> CounselingClient:
        return await gql.load_required(info, Client, self.client_pk, CounselingClient.of)  # type: ignore[no-any-return]

    @strawberry.field
    async def programme(self, info: Info) -> CounselingProgramme:
        return await gql.load_required(info, Programme, self.programme_pk, CounselingProgramme.of)  # type: ignore[no-any-return]


# -- payloads --------------------------------------------------------------------------------------------------------

CounselingCounselorPayload = gql.payload("CounselingCounselorPayload", "counselor", CounselingCounselor)
CounselingClientPayload = gql.payload("CounselingClientPayload", "client", CounselingClient)
CounselingSessionPayload = gql.payload("CounselingSessionPayload", "session", CounselingSession)
CounselingProgrammePayload = gql.payload("CounselingProgrammePayload", "programme", CounselingProgramme)
CounselingEnrolmentPayload = gql.payload("CounselingEnrolmentPayload", "enrolment", CounselingEnrolment)
CounselingEntryPayload = gql.payload("CounselingEntryPayload", "entry", CounselingJournalDay)
CounselingRiskFlagPayload = gql.payload(
    "CounselingRiskFlagPayload",
    "flag",
    CounselingRiskFlag,
    "Result of a mutation on a risk flag (`flag` is null, without errors, when one is open already).",
)


def _id(raw: str, type_name: str, field: str, where: str = "input") -> int:
    return gql.decode_id(raw, type_name, (where, field))


def _optional_id(raw: str | None, type_name: str, field: str, where: str = "filter") -> int | None:
    return gql.decode_optional_id(raw, type_name, (where, field))


# -- filters ---------------------------------------------------------------------------------------------------------


@strawberry.input(description="All given conditions must hold.")
class CounselingSessionFilter:
    counselor_id: strawberry.ID | None = None
    client_id: strawberry.ID | None = None
    statuses: list[CounselingSessionStatus] | None = None
    from_: datetime | None = strawberry.field(
        default=None, name="from", description="Sessions starting at or after this time."
    )
    to: datetime | None = strawberry.field(default=None, description="Sessions starting before this time.")

    def to_service(self) -> services.SessionFilter:
        return services.SessionFilter(
            counselor_id=_optional_id(self.counselor_id, "CounselingCounselor", "counselorId"),
            client_id=_optional_id(self.client_id, "CounselingClient", "clientId"),
            statuses=tuple(s.value for s in self.statuses or ()),
            start_from=self.from_,
            start_to=self.to,
        )


@strawberry.input(description="All given conditions must hold.")
class CounselingCounselorFilter:
    specialty: str | None = None
    language: str | None = None
    mode: CounselingMode | None = None
    qualification: str | None = None

    def to_service(self) -> services.CounselorFilter:
        return services.CounselorFilter(
            specialty=self.specialty, language=self.language, mode=_value(self.mode), qualification=self.qualification
        )


@strawberry.input
class CounselingClientFilter:
    search: str | None = strawberry.field(default=None, description="Substring of the name.")

    def to_service(self) -> services.ClientFilter:
        return services.ClientFilter(search=self.search)


@strawberry.input
class CounselingProgrammeFilter:
    search: str | None = strawberry.field(default=None, description="Substring of the name.")

    def to_service(self) -> services.ProgrammeFilter:
        return services.ProgrammeFilter(search=self.search)


@strawberry.input(description="All given conditions must hold.")
class CounselingEnrolmentFilter:
    client_id: strawberry.ID | None = None
    programme_id: strawberry.ID | None = None

    def to_service(self) -> services.EnrolmentFilter:
        return services.EnrolmentFilter(
            client_id=_optional_id(self.client_id, "CounselingClient", "clientId"),
            programme_id=_optional_id(self.programme_id, "CounselingProgramme", "programmeId"),
        )


@strawberry.input(description="All given conditions must hold.")
class CounselingRiskFlagFilter:
    client_id: strawberry.ID | None = None
    severities: list[CounselingRiskSeverity] | None = None

    def to_service(self) -> services.RiskFlagFilter:
        return services.RiskFlagFilter(
            client_id=_optional_id(self.client_id, "CounselingClient", "clientId"),
            severities=tuple(s.value for s in self.severities or ()),
        )


# -- mutation inputs -------------------------------------------------------------------------------------------------


@strawberry.input
class CounselingRegisterCounselorInput:
    volunteer_id: strawberry.ID = strawberry.field(description="The person's volunteer record (of your organisation).")
    qualifications: list[str] = strawberry.field(default_factory=list)
    specialties: list[str] = strawberry.field(
        default_factory=list, description="anxiety, grief, perinatal, children, depression, trauma."
    )
    languages: list[str] = strawberry.field(default_factory=list)
    modes: list[CounselingMode] = strawberry.field(
        default_factory=lambda: [CounselingMode.ONLINE, CounselingMode.OFFLINE]
    )


@strawberry.input
class CounselingRegisterClientInput:
    name: str
    phone: str
    consent: bool = strawberry.field(description="The client's consent: must be true (recorded first).")
    consent_note: str = ""
    community_id: strawberry.ID | None = strawberry.field(default=None, description="One of your communities.")


@strawberry.input
class CounselingBookSessionInput:
    client_id: strawberry.ID
    minutes: int = 50
    mode: CounselingMode = CounselingMode.ONLINE
    counselor_id: strawberry.ID | None = strawberry.field(
        default=None, description="A given counselor (with `start`); without: the earliest who fits."
    )
    start: datetime | None = strawberry.field(
        default=None, description="With a counselor: the slot. Without: the earliest time."
    )
    specialty: str | None = None
    language: str | None = None
    meeting_link: str = strawberry.field(default="", description="Online sessions: an https link.")
    place: str = strawberry.field(default="", description="Offline sessions: where.")


@strawberry.input
class CounselingRescheduleSessionInput:
    id: strawberry.ID
    start: datetime
    minutes: int = 50


@strawberry.input
class CounselingCancelSessionInput:
    id: strawberry.ID
    reason: str


@strawberry.input
class CounselingMarkSessionInput:
    id: strawberry.ID
    attended: bool = strawberry.field(description="true: ATTENDED; false: NO_SHOW.")


@strawberry.input
class CounselingWriteNotesInput:
    id: strawberry.ID
    notes: str


@strawberry.input
class CounselingCreateProgrammeInput:
    name: str
    prompts: list[str] = strawberry.field(description="One prompt per day (1 to 90 days).")


@strawberry.input
class CounselingEnrolInput:
    client_id: strawberry.ID
    programme_id: strawberry.ID
    starts_on: date


@strawberry.input
class CounselingAddJournalEntryInput:
    enrolment_id: strawberry.ID
    mood: int = strawberry.field(description="0 (worst) to 10.")
    text: str = ""
    on: date | None = strawberry.field(default=None, description="The day written about (default: today).")


@strawberry.input
class CounselingFlagRiskInput:
    client_id: strawberry.ID
    severity: CounselingRiskSeverity
    note: str = ""


@strawberry.input
class CounselingResolveRiskFlagInput:
    id: strawberry.ID


# -- root fields -----------------------------------------------------------------------------------------------------


@strawberry.type
class CounselingQuery:
    @strawberry.field(description="Sessions of your organisation by start time, earliest first.")
    async def counseling_sessions(
        self,
        info: Info,
        filter: CounselingSessionFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> gql.Connection[CounselingSession]:
        f = (filter or CounselingSessionFilter()).to_service()
        page = await info.context.read(services.list_sessions, f, first=gql.first_of(info, first), after=after)
        return gql.connection(info, page, CounselingSession.of)

    @strawberry.field(description="Clients of your organisation, newest first.")
    async def counseling_clients(
        self,
        info: Info,
        filter: CounselingClientFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> gql.Connection[CounselingClient]:
        f = (filter or CounselingClientFilter()).to_service()
        page = await info.context.read(services.list_clients, f, first=gql.first_of(info, first), after=after)
        return gql.connection(info, page, CounselingClient.of)

    @strawberry.field(description="Counselors of your organisation, in the order they were registered.")
    async def counseling_counselors(
        self,
        info: Info,
        filter: CounselingCounselorFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> gql.Connection[CounselingCounselor]:
        f = (filter or CounselingCounselorFilter()).to_service()
        page = await info.context.read(services.list_counselors, f, first=gql.first_of(info, first), after=after)
        return gql.connection(info, page, CounselingCounselor.of)

    @strawberry.field(description="Journal programmes of your organisation, by name.")
    async def counseling_programmes(
        self,
        info: Info,
        filter: CounselingProgrammeFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> gql.Connection[CounselingProgramme]:
        f = (filter or CounselingProgrammeFilter()).to_service()
        page = await info.context.read(services.list_programmes, f, first=gql.first_of(info, first), after=after)
        return gql.connection(info, page, CounselingProgramme.of)

    @strawberry.field(description="Journal enrolments of your organisation, latest start first.")
    async def counseling_enrolments(
        self,
        info: Info,
        filter: CounselingEnrolmentFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> gql.Connection[CounselingEnrolment]:
        f = (filter or CounselingEnrolmentFilter()).to_service()
        page = await info.context.read(services.list_enrolments, f, first=gql.first_of(info, first), after=after)
        return gql.connection(info, page, CounselingEnrolment.of)

    @strawberry.field(
        description="Free slots of counselors who fit, earliest first (times in your zone); at most 31 days "
        "from `start` to `end`."
    )
    async def counseling_free_slots(
        self,
        info: Info,
        start: datetime,
        end: datetime,
        minutes: int = 50,
        specialty: str | None = None,
        language: str | None = None,
        mode: CounselingMode = CounselingMode.ONLINE,
        qualification: str | None = None,
    ) -> list[CounselingSlot]:
        found = await info.context.read(
            services.free_slots,
            start,
            end,
            timedelta(minutes=minutes),
            specialty=specialty,
            language=language,
            mode=mode.value,
            max_days=info.context.settings.max_range_days,
            qualification=qualification,
        )
        return [CounselingSlot(start=s.start, end=s.end, counselor=CounselingCounselor.of(c)) for s, c in found]

    @strawberry.field(description="Open risk flags of your organisation, most severe and oldest first (supervisors).")
    async def counseling_open_risk_flags(
        self,
        info: Info,
        filter: CounselingRiskFlagFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> gql.Connection[CounselingRiskFlag]:
        f = (filter or CounselingRiskFlagFilter()).to_service()
        page = await info.context.read(services.open_flags, f, first=gql.first_of(info, first), after=after)
        return gql.connection(info, page, CounselingRiskFlag.of)

    @strawberry.field(description="An enrolment's journal; null for an enrolment that does not exist (or not for you).")
    async def counseling_journal(self, info: Info, enrolment_id: strawberry.ID) -> CounselingJournal | None:
        pk = gql.decode_id(enrolment_id, "CounselingEnrolment", ("enrolmentId",))
        found = await info.context.read(services.journal, pk)
        if found is None:
            return None
        entries, missed = found
        moods = [m for _, m in entries]
        averages = [
            round(sum(moods[max(0, i - 2) : i + 1]) / len(moods[max(0, i - 2) : i + 1]), 2) for i in range(len(moods))
        ]
        return CounselingJournal(
            entries=[CounselingJournalDay(day=d, mood=m) for d, m in entries],
            missed_days=missed,
            moving_average=averages,
        )


@strawberry.type
class CounselingMutation:
    @strawberry.mutation(description="Make a volunteer of your organisation a counselor.")
    async def counseling_register_counselor(
        self, info: Info, input: CounselingRegisterCounselorInput
    ) -> CounselingCounselorPayload:
        return await gql.mutate(
            info,
            CounselingCounselorPayload,
            "counselor",
            CounselingCounselor.of,
            lambda ctx: services.register_counselor(
                ctx,
                _id(input.volunteer_id, "Volunteer", "volunteerId"),
                qualifications=input.qualifications,
                specialties=input.specialties,
                languages=input.languages,
                modes=[m.value for m in input.modes],
            ),
        )

    @strawberry.mutation(description="Register a client of your organisation, with their consent.")
    async def counseling_register_client(
        self, info: Info, input: CounselingRegisterClientInput
    ) -> CounselingClientPayload:
        return await gql.mutate(
            info,
            CounselingClientPayload,
            "client",
            CounselingClient.of,
            lambda ctx: services.register_client(
                ctx,
                name=input.name,
                phone=input.phone,
                consent=input.consent,
                consent_note=input.consent_note,
                community_id=None
                if input.community_id is None
                else _id(input.community_id, "Community", "communityId"),
            ),
        )

    @strawberry.mutation(description="Book a given slot, or the earliest slot of a counselor who fits.")
    async def counseling_book_session(self, info: Info, input: CounselingBookSessionInput) -> CounselingSessionPayload:
        async def work(ctx: core.ServiceContext) -> Any:
            return await services.book_session(
                ctx,
                client_id=_id(input.client_id, "CounselingClient", "clientId"),
                minutes=input.minutes,
                mode=input.mode.value,
                counselor_id=_optional_id(input.counselor_id, "CounselingCounselor", "counselorId", "input"),
                start=input.start,
                specialty=input.specialty,
                language=input.language,
                meeting_link=input.meeting_link,
                place=input.place,
            )

        return await gql.mutate(info, CounselingSessionPayload, "session", CounselingSession.of, work)

    @strawberry.mutation(description="Move a booked session (the same counselor).")
    async def counseling_reschedule_session(
        self, info: Info, input: CounselingRescheduleSessionInput
    ) -> CounselingSessionPayload:
        return await gql.mutate(
            info,
            CounselingSessionPayload,
            "session",
            CounselingSession.of,
            lambda ctx: services.reschedule_session(
                ctx, _id(input.id, "CounselingSession", "id"), input.start, input.minutes
            ),
        )

    @strawberry.mutation(description="Cancel a booked session, with a reason; its time is free again.")
    async def counseling_cancel_session(
        self, info: Info, input: CounselingCancelSessionInput
    ) -> CounselingSessionPayload:
        return await gql.mutate(
            info,
            CounselingSessionPayload,
            "session",
            CounselingSession.of,
            lambda ctx: services.cancel_session(ctx, _id(input.id, "CounselingSession", "id"), input.reason),
        )

    @strawberry.mutation(description="Mark a started session ATTENDED or NO_SHOW.")
    async def counseling_mark_session(self, info: Info, input: CounselingMarkSessionInput) -> CounselingSessionPayload:
        return await gql.mutate(
            info,
            CounselingSessionPayload,
            "session",
            CounselingSession.of,
            lambda ctx: services.mark_session(ctx, _id(input.id, "CounselingSession", "id"), input.attended),
        )

    @strawberry.mutation(description="Write a session's notes (its counselor and its organisation's supervisors).")
    async def counseling_write_notes(self, info: Info, input: CounselingWriteNotesInput) -> CounselingSessionPayload:
        return await gql.mutate(
            info,
            CounselingSessionPayload,
            "session",
            CounselingSession.of,
            lambda ctx: services.write_notes(ctx, _id(input.id, "CounselingSession", "id"), input.notes),
        )

    @strawberry.mutation(description="A journal programme of your organisation: one prompt per day.")
    async def counseling_create_programme(
        self, info: Info, input: CounselingCreateProgrammeInput
    ) -> CounselingProgrammePayload:
        return await gql.mutate(
            info,
            CounselingProgrammePayload,
            "programme",
            CounselingProgramme.of,
            lambda ctx: services.create_programme(ctx, input.name, input.prompts),
        )

    @strawberry.mutation(description="Enrol a client in a programme from a given day.")
    async def counseling_enrol(self, info: Info, input: CounselingEnrolInput) -> CounselingEnrolmentPayload:
        return await gql.mutate(
            info,
            CounselingEnrolmentPayload,
            "enrolment",
            CounselingEnrolment.of,
            lambda ctx: services.enrol(
                ctx,
                _id(input.client_id, "CounselingClient", "clientId"),
                _id(input.programme_id, "CounselingProgramme", "programmeId"),
                input.starts_on,
            ),
        )

    @strawberry.mutation(description="A day's journal entry; a low mood trend opens a risk flag.")
    async def counseling_add_journal_entry(
        self, info: Info, input: CounselingAddJournalEntryInput
    ) -> CounselingEntryPayload:
        return await gql.mutate(
            info,
            CounselingEntryPayload,
            "entry",
            lambda e: CounselingJournalDay(day=e.day, mood=e.mood),
            lambda ctx: services.add_entry(
                ctx, _id(input.enrolment_id, "CounselingEnrolment", "enrolmentId"), input.mood, input.text, input.on
            ),
        )

    @strawberry.mutation(description="A counselor's concern: opens a risk flag (once) for follow-up.")
    async def counseling_flag_risk(self, info: Info, input: CounselingFlagRiskInput) -> CounselingRiskFlagPayload:
        return await gql.mutate(
            info,
            CounselingRiskFlagPayload,
            "flag",
            lambda f: CounselingRiskFlag.of(f) if f else None,
            lambda ctx: services.flag_risk(
                ctx, _id(input.client_id, "CounselingClient", "clientId"), input.severity.value, input.note
            ),
        )

    @strawberry.mutation(description="Close a risk flag after follow-up (supervisors of its organisation).")
    async def counseling_resolve_risk_flag(
        self, info: Info, input: CounselingResolveRiskFlagInput
    ) -> CounselingRiskFlagPayload:
        return await gql.mutate(
            info,
            CounselingRiskFlagPayload,
            "flag",
            CounselingRiskFlag.of,
            lambda ctx: services.resolve_flag(ctx, _id(input.id, "CounselingRiskFlag", "id")),
        )
