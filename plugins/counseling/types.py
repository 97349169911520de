"""GraphQL of the counseling plugin. Every root field starts with `counseling`, every type with `Counseling`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any

import strawberry
from strawberry import Info, relay

import core
from core.models import Appointment
from plugins.counseling import services
from plugins.counseling.models import Client, Counselor, Enrolment, Programme, RiskFlag, Session
from schema import api as gql


async def _resolve_nodes(
    info: Info, node_ids: Iterable[str], model: type, convert: Callable[[Any], Any], required: bool
) -> list[Any]:
    """node(id:) for a counseling type: the rows the caller may address (their organisation's; risk flags:
    their organisation's supervisors), None for the others -- exactly as for ids that do not exist."""
    return await gql.resolve_node_rows(
        info, node_ids, lambda ctx, pks: services.rows_by_id(ctx, model, pks), convert, required
    )


@strawberry.type
class CounselingCounselor(relay.Node):
    id: relay.NodeID[int]
    specialties: list[str]
    languages: list[str]
    modes: list[str]
    volunteer_pk: strawberry.Private[int]

    @classmethod
    def of(cls, c: Counselor) -> CounselingCounselor:
        return cls(
            id=c.id,
            specialties=list(c.specialties),
            languages=list(c.languages),
            modes=list(c.modes),
            volunteer_pk=c.volunteer_id,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Counselor, cls.of, required)

    @strawberry.field
    async def name(self, info: Info) -> str | None:
        person = await info.context.loaders.volunteer.load(self.volunteer_pk)
        return person.name if person else None


@strawberry.type
class CounselingClient(relay.Node):
    id: relay.NodeID[int]
    name: str
    consent_at: datetime
    phone_value: strawberry.Private[str]
    organization_pk: strawberry.Private[int]

    @classmethod
    def of(cls, c: Client) -> CounselingClient:
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


@strawberry.type
class CounselingSession(relay.Node):
    id: relay.NodeID[int]
    status: str
    mode: str
    meeting_link: str
    place: str
    cancel_reason: str
    row: strawberry.Private[Session]

    @classmethod
    def of(cls, s: Session) -> CounselingSession:
        return cls(
            id=s.id,
            status=s.status,
            mode=s.mode,
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

    @strawberry.field
    async def start(self, info: Info) -> datetime:
        return (await self._slot(info)).during.lower

    @strawberry.field
    async def end(self, info: Info) -> datetime:
        return (await self._slot(info)).during.upper

    @strawberry.field(
        description="Confidential: the session's counselor and its organisation's supervisors only; null for others."
    )
    async def notes(self, info: Info) -> str | None:
        if await info.context.read(services.can_read_notes, self.row):
            info.context.note_sensitive_read("CounselingSession", self.row.id, "notes")
            return self.row.notes
        return None


@strawberry.type
class CounselingSlot:
    start: datetime
    end: datetime
    counselor: CounselingCounselor


@strawberry.type
class CounselingRiskFlag(relay.Node):
    id: relay.NodeID[int]
    severity: str
    source: str
    note: str
    raised_at: datetime
    resolved_at: datetime | None
    client_id: strawberry.ID

    @classmethod
    def of(cls, f: RiskFlag) -> CounselingRiskFlag:
        return cls(
            id=f.id,
            severity=f.severity,
            source=f.source,
            note=f.note,
            raised_at=f.raised_at,
            resolved_at=f.resolved_at,
            client_id=strawberry.ID(gql.encode_id("CounselingClient", f.client_id)),
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, RiskFlag, cls.of, required)

    @strawberry.field(description="Minutes since the flag was raised.")
    def age_minutes(self, info: Info) -> int:
        return int((info.context.app.clock() - self.raised_at).total_seconds() // 60)


@strawberry.type
class CounselingJournalDay:
    day: int
    mood: int


@strawberry.type
class CounselingJournal:
    entries: list[CounselingJournalDay]
    missed_days: list[int]
    moving_average: list[float] = strawberry.field(description="Mean mood of each entry and the two before it.")


@strawberry.type
class CounselingProgramme(relay.Node):
    id: relay.NodeID[int]
    name: str
    days: int
    prompts: list[str]

    @classmethod
    def of(cls, p: Programme) -> CounselingProgramme:
        return cls(id=p.id, name=p.name, days=p.days, prompts=list(p.prompts))

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Programme, cls.of, required)


@strawberry.type
class CounselingEnrolment(relay.Node):
    id: relay.NodeID[int]
    starts_on: date
    days: int

    @classmethod
    def of(cls, e: Enrolment) -> CounselingEnrolment:
        return cls(id=e.id, starts_on=e.starts_on, days=e.days)

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Enrolment, cls.of, required)


CounselingCounselorPayload = gql.payload("CounselingCounselorPayload", "counselor", CounselingCounselor)
CounselingClientPayload = gql.payload("CounselingClientPayload", "client", CounselingClient)
CounselingSessionPayload = gql.payload("CounselingSessionPayload", "session", CounselingSession)
CounselingProgrammePayload = gql.payload("CounselingProgrammePayload", "programme", CounselingProgramme)
CounselingEnrolmentPayload = gql.payload("CounselingEnrolmentPayload", "enrolment", CounselingEnrolment)
CounselingEntryPayload = gql.payload("CounselingEntryPayload", "entry", CounselingJournalDay)
CounselingRiskPayload = gql.payload("CounselingRiskPayload", "flag", CounselingRiskFlag)


def _id(raw: str, type_name: str, field: str) -> int:
    return gql.decode_id(raw, type_name, ("input", field))


@strawberry.input
class CounselingBookSessionInput:
    client_id: strawberry.ID
    minutes: int = 50
    mode: str = "online"
    counselor_id: strawberry.ID | None = None
    start: datetime | None = strawberry.field(
        default=None, description="With a counselor: the slot. Without: the earliest time."
    )
    specialty: str | None = None
    language: str | None = None
    meeting_link: str = ""
    place: str = ""


@strawberry.type
class CounselingQuery:
    @strawberry.field(description="Sessions of your organisation, newest first.")
    async def counseling_sessions(self, info: Info, first: int = 50) -> list[CounselingSession]:
        rows = await info.context.read(services.list_sessions, min(first, info.context.settings.max_page_size))
        return [CounselingSession.of(s) for s in rows]

    @strawberry.field(description="Clients of your organisation, newest first.")
    async def counseling_clients(self, info: Info, first: int = 50) -> list[CounselingClient]:
        rows = await info.context.read(services.list_clients, min(first, info.context.settings.max_page_size))
        return [CounselingClient.of(c) for c in rows]

    @strawberry.field(description="Free slots of counselors who fit, earliest first (times in your zone).")
    async def counseling_free_slots(
        self,
        info: Info,
        start: datetime,
        end: datetime,
        minutes: int = 50,
        specialty: str | None = None,
        language: str | None = None,
        mode: str = "online",
        qualification: str | None = None,
    ) -> list[CounselingSlot]:
        found = await info.context.read(
            services.free_slots,
            start,
            end,
            timedelta(minutes=minutes),
            specialty=specialty,
            language=language,
            mode=mode,
            qualification=qualification,
        )
        return [CounselingSlot(start=s.start, end=s.end, counselor=CounselingCounselor.of(c)) for s, c in found]

    @strawberry.field(description="Open risk flags, most severe and oldest first (supervisors).")
    async def counseling_open_risk_flags(self, info: Info) -> list[CounselingRiskFlag]:
        return [CounselingRiskFlag.of(f) for f, _ in await info.context.read(services.open_flags)]

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
    @strawberry.mutation
    async def counseling_register_counselor(
        self,
        info: Info,
        volunteer_id: strawberry.ID,
        specialties: list[str],
        languages: list[str],
        modes: list[str] | None = None,
    ) -> CounselingCounselorPayload:
        return await gql.mutate(
            info,
            CounselingCounselorPayload,
            "counselor",
            CounselingCounselor.of,
            lambda ctx: services.register_counselor(
                ctx,
                _id(volunteer_id, "Volunteer", "volunteerId"),
                specialties=specialties,
                languages=languages,
                modes=modes or ["online", "offline"],
            ),
        )

    @strawberry.mutation
    async def counseling_register_client(
        self, info: Info, name: str, phone: str, consent: bool, consent_note: str = ""
    ) -> CounselingClientPayload:
        return await gql.mutate(
            info,
            CounselingClientPayload,
            "client",
            CounselingClient.of,
            lambda ctx: services.register_client(
                ctx, name=name, phone=phone, consent=consent, consent_note=consent_note
            ),
        )

    @strawberry.mutation(description="Book a given slot, or the earliest slot of a counselor who fits.")
    async def counseling_book_session(self, info: Info, input: CounselingBookSessionInput) -> CounselingSessionPayload:
        async def work(ctx: core.ServiceContext) -> Any:
            counselor = (
                None if input.counselor_id is None else _id(input.counselor_id, "CounselingCounselor", "counselorId")
            )
            return await services.book_session(
                ctx,
                client_id=_id(input.client_id, "CounselingClient", "clientId"),
                minutes=input.minutes,
                mode=input.mode,
                counselor_id=counselor,
                start=input.start,
                specialty=input.specialty,
                language=input.language,
                meeting_link=input.meeting_link,
                place=input.place,
            )

        return await gql.mutate(info, CounselingSessionPayload, "session", CounselingSession.of, work)

    @strawberry.mutation
    async def counseling_reschedule_session(
        self, info: Info, id: strawberry.ID, start: datetime, minutes: int = 50
    ) -> CounselingSessionPayload:
        return await gql.mutate(
            info,
            CounselingSessionPayload,
            "session",
            CounselingSession.of,
            lambda ctx: services.reschedule_session(ctx, _id(id, "CounselingSession", "id"), start, minutes),
        )

    @strawberry.mutation
    async def counseling_cancel_session(self, info: Info, id: strawberry.ID, reason: str) -> CounselingSessionPayload:
        return await gql.mutate(
            info,
            CounselingSessionPayload,
            "session",
            CounselingSession.of,
            lambda ctx: services.cancel_session(ctx, _id(id, "CounselingSession", "id"), reason),
        )

    @strawberry.mutation
    async def counseling_mark_session(self, info: Info, id: strawberry.ID, attended: bool) -> CounselingSessionPayload:
        return await gql.mutate(
            info,
            CounselingSessionPayload,
            "session",
            CounselingSession.of,
            lambda ctx: services.mark_session(ctx, _id(id, "CounselingSession", "id"), attended),
        )

    @strawberry.mutation
    async def counseling_write_notes(self, info: Info, id: strawberry.ID, notes: str) -> CounselingSessionPayload:
        return await gql.mutate(
            info,
            CounselingSessionPayload,
            "session",
            CounselingSession.of,
            lambda ctx: services.write_notes(ctx, _id(id, "CounselingSession", "id"), notes),
        )

    @strawberry.mutation
    async def counseling_create_programme(
        self, info: Info, name: str, prompts: list[str]
    ) -> CounselingProgrammePayload:
        return await gql.mutate(
            info,
            CounselingProgrammePayload,
            "programme",
            CounselingProgramme.of,
            lambda ctx: services.create_programme(ctx, name, prompts),
        )

    @strawberry.mutation
    async def counseling_enrol(
        self, info: Info, client_id: strawberry.ID, programme_id: strawberry.ID, starts_on: date
    ) -> CounselingEnrolmentPayload:
        return await gql.mutate(
            info,
            CounselingEnrolmentPayload,
            "enrolment",
            CounselingEnrolment.of,
            lambda ctx: services.enrol(
                ctx,
                _id(client_id, "CounselingClient", "clientId"),
                _id(programme_id, "CounselingProgramme", "programmeId"),
                starts_on,
            ),
        )

    @strawberry.mutation
    async def counseling_add_journal_entry(
        self, info: Info, enrolment_id: strawberry.ID, mood: int, text: str = "", on: date | None = None
    ) -> CounselingEntryPayload:
        return await gql.mutate(
            info,
            CounselingEntryPayload,
            "entry",
            lambda e: CounselingJournalDay(day=e.day, mood=e.mood),
            lambda ctx: services.add_entry(
                ctx, _id(enrolment_id, "CounselingEnrolment", "enrolmentId"), mood, text, on
            ),
        )

    @strawberry.mutation(description="A counselor's concern: opens a risk flag (once) for follow-up.")
    async def counseling_flag_risk(
        self, info: Info, client_id: strawberry.ID, severity: str, note: str
    ) -> CounselingRiskPayload:
        return await gql.mutate(
            info,
            CounselingRiskPayload,
            "flag",
            lambda f: CounselingRiskFlag.of(f) if f else None,
            lambda ctx: services.flag_risk(ctx, _id(client_id, "CounselingClient", "clientId"), severity, note),
        )

    @strawberry.mutation(description="Close a risk flag after follow-up (supervisors of its organisation).")
    async def counseling_resolve_risk_flag(self, info: Info, id: strawberry.ID) -> CounselingRiskPayload:
        return await gql.mutate(
            info,
            CounselingRiskPayload,
            "flag",
            CounselingRiskFlag.of,
            lambda ctx: services.resolve_flag(ctx, _id(id, "CounselingRiskFlag", "id")),
        )
