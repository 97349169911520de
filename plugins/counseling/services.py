"""Counseling rules: sessions on the shared calendar, notes for the counselor and supervisors only,
14-day journals with missed days and trends, risk flags raised once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.dialects.postgresql import insert

import core
from core.services import scheduling, validation
from plugins.counseling.models import Client, Counselor, Enrolment, JournalEntry, Programme, RiskFlag, Session

KIND = "counseling.session"
SPECIALTIES = frozenset({"anxiety", "grief", "perinatal", "children", "depression", "trauma"})
MODES = frozenset({"online", "offline"})
LOCAL = ZoneInfo("Asia/Shanghai")
# A mood trend this low (mean of the latest entries, 0–10) raises a risk flag.
LOW_MOOD_MEAN = 3.0
TREND_WINDOW = 3
SEARCH_HORIZON = timedelta(days=14)


@dataclass(frozen=True)
class RiskRaised(core.DomainEvent):
    """A client's risk flag was raised (a low mood trend, or a counselor's concern). Casework reacts."""

    name: ClassVar[str] = "counseling.risk_raised"
    flag_id: int
    client_id: int
    severity: str
    source: str


async def _get(ctx: core.ServiceContext, model: type, pk: int, what: str, field: str = "id") -> Any:
    return await core.get_row(ctx, model, pk, what=what, field=("input", field))


# -- people ------------------------------------------------------------------------------------------------------


async def register_counselor(
    ctx: core.ServiceContext,
    volunteer_id: int,
    *,
    qualifications: Sequence[str] = (),
    specialties: Sequence[str] = (),
    languages: Sequence[str] = (),
    modes: Sequence[str] = ("online", "offline"),
) -> Counselor:
    core.require(ctx, "counseling.manage")
    v = core.Validator()
    unknown = set(specialties) - SPECIALTIES
    v.check(not unknown, ("input", "specialties"), "INVALID_INPUT", f"Unknown specialties: {sorted(unknown)}.")
    v.check(
        bool(modes) and set(modes) <= MODES, ("input", "modes"), "INVALID_INPUT", "Modes are online and/or offline."
    )
    v.raise_if_any()
    person = await _get(ctx, core.Volunteer, volunteer_id, "Volunteer", "volunteerId")
    counselor = Counselor(
        volunteer_id=volunteer_id,
        qualifications=list(qualifications),
        specialties=list(specialties),
        languages=[x.lower() for x in languages],
        modes=list(modes),
        organization_id=getattr(person, "organization_id", None),
    )
    ctx.session.add(counselor)
    await ctx.session.flush()
    return counselor


async def register_client(
    ctx: core.ServiceContext,
    *,
    name: str,
    phone: str,
    consent: bool,
    community_id: int | None = None,
    consent_note: str = "",
) -> Client:
    core.require(ctx, "counseling.manage")
    v = core.Validator()
    clean_name = validation.text(v, ("input", "name"), name, max_length=50, label="Name")
    clean_phone = validation.phone(v, ("input", "phone"), phone)
    v.check(consent, ("input", "consent"), "REQUIRED", "The client's consent must be recorded first.")
    v.raise_if_any()
    client = Client(
        name=clean_name,
        phone=clean_phone,
        community_id=community_id,
        consent_at=ctx.now(),
        consent_note=consent_note.strip(),
        organization_id=ctx.viewer.organization_id,
    )
    ctx.session.add(client)
    await ctx.session.flush()
    return client


# -- sessions ------------------------------------------------------------------------------------------------------


async def matching_counselors(
    ctx: core.ServiceContext, specialty: str | None, language: str | None, mode: str, qualification: str | None = None
) -> list[Counselor]:
    stmt = select(Counselor).where(Counselor.modes.contains([mode]))
    if qualification:
        stmt = stmt.where(Counselor.qualifications.contains([qualification]))
    if specialty:
        stmt = stmt.where(Counselor.specialties.contains([specialty]))
    if language:
        stmt = stmt.where(Counselor.languages.contains([language.lower()]))
    return list((await ctx.session.scalars(stmt.order_by(Counselor.id))).all())


async def book_session(
    ctx: core.ServiceContext,
    *,
    client_id: int,
    minutes: int,
    mode: str,
    counselor_id: int | None = None,
    start: datetime | None = None,
    specialty: str | None = None,
    language: str | None = None,
    meeting_link: str = "",
    place: str = "",
) -> Session:
    """Book a given slot with a given counselor, or the earliest slot of any counselor who fits."""
    core.require(ctx, "counseling.manage")
    v = core.Validator()
    v.check(mode in MODES, ("input", "mode"), "INVALID_INPUT", "Mode is online or offline.")
    v.check(10 <= minutes <= 180, ("input", "minutes"), "OUT_OF_RANGE", "A session lasts 10 to 180 minutes.")
    if mode == "online":
        v.check(
            meeting_link.startswith("https://"),
            ("input", "meetingLink"),
            "REQUIRED",
            "An online session needs an https meeting link.",
        )
    elif mode == "offline":
        v.check(bool(place.strip()), ("input", "place"), "REQUIRED", "An offline session needs a place.")
    if counselor_id is not None and start is None:
        v.add(("input", "start"), "REQUIRED", "Booking a given counselor needs a start time.")
    v.raise_if_any()
    await _get(ctx, Client, client_id, "Client", "clientId")
    duration = timedelta(minutes=minutes)
    if counselor_id is not None:
        counselor = await _get(ctx, Counselor, counselor_id, "Counselor", "counselorId")
        assert start is not None
        appointment = await scheduling.book(ctx, counselor.volunteer_id, KIND, start, start + duration)  # type: ignore[attr-defined]
    else:
        counselors = await matching_counselors(ctx, specialty, language, mode)
        if not counselors:
            raise core.DomainError(
                "NO_COUNSELOR", "No counselor offers this specialty, language and mode.", ("input", "specialty")
            )
        by_person = {c.volunteer_id: c for c in counselors}
        earliest = start or ctx.now()
        slots = await scheduling.free_slots(ctx, list(by_person), earliest, earliest + SEARCH_HORIZON, duration)
        appointment = None
        for slot in slots:
            try:
                appointment = await scheduling.book(ctx, slot.owner_id, KIND, slot.start, slot.end)
            except core.DomainError:
                continue  # taken since the search: try the next one
            counselor = by_person[slot.owner_id]
            break
        if appointment is None:
            raise core.DomainError(
                "SLOT_TAKEN", "No matching counselor is free in the next 14 days.", ("input", "start")
            )
    session = Session(
        counselor_id=counselor.id,
        client_id=client_id,
        appointment_id=appointment.id,
        mode=mode,  # type: ignore[attr-defined]
        meeting_link=meeting_link,
        place=place.strip(),
    )
    ctx.session.add(session)
    await ctx.session.flush()
    appointment.record_id = session.id
    await ctx.session.flush()
    return session


async def _session(ctx: core.ServiceContext, session_id: int) -> Session:
    row = await ctx.session.scalar(select(Session).where(Session.id == session_id).with_for_update())
    if row is None:
        raise core.NotFound("Session")
    return row


async def reschedule_session(ctx: core.ServiceContext, session_id: int, start: datetime, minutes: int) -> Session:
    core.require(ctx, "counseling.manage")
    session = await _session(ctx, session_id)
    if session.status != "booked":
        raise core.DomainError(
            "INVALID_TRANSITION", f"A {session.status} session cannot be rescheduled.", ("input", "id")
        )
    await scheduling.reschedule(ctx, session.appointment_id, start, start + timedelta(minutes=minutes))
    return session


async def cancel_session(ctx: core.ServiceContext, session_id: int, reason: str) -> Session:
    core.require(ctx, "counseling.manage")
    session = await _session(ctx, session_id)
    if session.status != "booked":
        raise core.DomainError(
            "INVALID_TRANSITION", f"A {session.status} session cannot be cancelled.", ("input", "id")
        )
    v = core.Validator()
    clean = validation.text(v, ("input", "reason"), reason, max_length=500, label="A reason")
    v.raise_if_any()
    session.status, session.cancel_reason = "cancelled", clean
    await scheduling.cancel(ctx, session.appointment_id, clean)
    return session


async def mark_session(ctx: core.ServiceContext, session_id: int, attended: bool) -> Session:
    core.require(ctx, "counseling.manage")
    session = await _session(ctx, session_id)
    if session.status != "booked":
        raise core.DomainError("INVALID_TRANSITION", f"A {session.status} session cannot be marked.", ("input", "id"))
    appointment = await ctx.session.get(core_appointment(), session.appointment_id)
    if appointment is not None and appointment.during.lower > ctx.now():
        raise core.DomainError("INVALID_TRANSITION", "A session is marked once it has started.", ("input", "id"))
    session.status = "attended" if attended else "no_show"
    await ctx.session.flush()
    return session


def core_appointment() -> type:
    from core.models import Appointment

    return Appointment


async def can_read_notes(ctx: core.ServiceContext, session: Session) -> bool:
    """The session's own counselor, and supervisors (counseling.read_notes)."""
    if core.can(ctx.viewer, "counseling.read_notes"):
        return True
    if ctx.viewer.volunteer_id is None:
        return False
    owner = await ctx.session.scalar(select(Counselor.volunteer_id).where(Counselor.id == session.counselor_id))
    return owner == ctx.viewer.volunteer_id


async def write_notes(ctx: core.ServiceContext, session_id: int, notes: str) -> Session:
    session = await _session(ctx, session_id)
    if not await can_read_notes(ctx, session):
        raise core.DomainError("FORBIDDEN", "Only the session's counselor and supervisors write its notes.")
    session.notes = notes.strip()[:20000]
    await ctx.session.flush()
    return session


# -- journals and risk ----------------------------------------------------------------------------------------------


async def create_programme(ctx: core.ServiceContext, name: str, prompts: Sequence[str]) -> Programme:
    core.require(ctx, "counseling.manage")
    v = core.Validator()
    clean = validation.text(v, ("input", "name"), name, max_length=100, label="Name")
    v.check(1 <= len(prompts) <= 90, ("input", "prompts"), "OUT_OF_RANGE", "A programme has 1 to 90 daily prompts.")
    v.raise_if_any()
    programme = Programme(name=clean, days=len(prompts), prompts=[p.strip() for p in prompts])
    ctx.session.add(programme)
    await ctx.session.flush()
    return programme


async def enrol(ctx: core.ServiceContext, client_id: int, programme_id: int, starts_on: date) -> Enrolment:
    core.require(ctx, "counseling.manage")
    await _get(ctx, Client, client_id, "Client", "clientId")
    programme = await _get(ctx, Programme, programme_id, "Programme", "programmeId")
    enrolment = Enrolment(client_id=client_id, programme_id=programme_id, starts_on=starts_on, days=programme.days)  # type: ignore[attr-defined]
    ctx.session.add(enrolment)
    await ctx.session.flush()
    return enrolment


def today(ctx: core.ServiceContext) -> date:
    return ctx.now().astimezone(LOCAL).date()


async def add_entry(
    ctx: core.ServiceContext, enrolment_id: int, mood: int, text: str = "", on: date | None = None
) -> JournalEntry:
    """Today's entry (or `on`'s), within the enrolment period; may raise a risk flag."""
    core.require(ctx, "counseling.manage")
    enrolment = await _get(ctx, Enrolment, enrolment_id, "Enrolment", "enrolmentId")
    entry_date = on or today(ctx)
    day = (entry_date - enrolment.starts_on).days + 1  # type: ignore[attr-defined]
    v = core.Validator()
    v.check(0 <= mood <= 10, ("input", "mood"), "OUT_OF_RANGE", "Mood is scored 0 to 10.")
    v.check(
        1 <= day <= enrolment.days,
        ("input", "on"),
        "OUT_OF_RANGE",  # type: ignore[attr-defined]
        "This day is outside the enrolment period.",
    )
    v.check(entry_date <= today(ctx), ("input", "on"), "OUT_OF_RANGE", "Entries cannot be made for future days.")
    v.raise_if_any()
    if (
        await ctx.session.scalar(
            select(JournalEntry.id).where(JournalEntry.enrolment_id == enrolment_id, JournalEntry.day == day)
        )
        is not None
    ):
        raise core.DomainError("ALREADY_EXISTS", "This day has an entry already.", ("input", "on"))
    entry = JournalEntry(enrolment_id=enrolment_id, day=day, mood=mood, text=text.strip()[:4000])
    ctx.session.add(entry)
    await ctx.session.flush()
    await _check_trend(ctx, enrolment)  # type: ignore[arg-type]
    return entry


async def trend(ctx: core.ServiceContext, enrolment_id: int) -> list[tuple[int, int]]:
    rows = await ctx.session.execute(
        select(JournalEntry.day, JournalEntry.mood)
        .where(JournalEntry.enrolment_id == enrolment_id)
        .order_by(JournalEntry.day)
    )
    return [(d, m) for d, m in rows]


async def missed_days(ctx: core.ServiceContext, enrolment_id: int) -> list[int]:
    enrolment = await _get(ctx, Enrolment, enrolment_id, "Enrolment", "enrolmentId")
    elapsed = min(enrolment.days, (today(ctx) - enrolment.starts_on).days)  # type: ignore[attr-defined]  # today may still come
    written = {d for d, _ in await trend(ctx, enrolment_id)}
    return [d for d in range(1, elapsed + 1) if d not in written]


async def _check_trend(ctx: core.ServiceContext, enrolment: Enrolment) -> None:
    moods = [m for _, m in await trend(ctx, enrolment.id)][-TREND_WINDOW:]
    if len(moods) == TREND_WINDOW and sum(moods) / TREND_WINDOW <= LOW_MOOD_MEAN:
        await raise_flag(
            ctx,
            enrolment.client_id,
            "high" if max(moods) <= 1 else "medium",
            "mood_trend",
            f"mean mood {sum(moods) / TREND_WINDOW:.1f} over the last {TREND_WINDOW} entries",
        )


async def raise_flag(
    ctx: core.ServiceContext, client_id: int, severity: str, source: str, note: str = ""
) -> RiskFlag | None:
    """Open a flag unless one from this source is open already; announce it once."""
    flag_id = await ctx.session.scalar(
        insert(RiskFlag)
        .values(client_id=client_id, severity=severity, source=source, note=note, raised_at=ctx.now())
        .on_conflict_do_nothing(
            index_elements=[RiskFlag.client_id, RiskFlag.source], index_where=RiskFlag.resolved_at.is_(None)
        )
        .returning(RiskFlag.id)
    )
    if flag_id is None:
        return None
    await ctx.publish(RiskRaised(flag_id=flag_id, client_id=client_id, severity=severity, source=source))
    return await ctx.session.get(RiskFlag, flag_id)


async def flag_risk(ctx: core.ServiceContext, client_id: int, severity: str, note: str) -> RiskFlag | None:
    core.require(ctx, "counseling.manage")
    if severity not in ("low", "medium", "high"):
        raise core.DomainError("INVALID_INPUT", "Severity is low, medium or high.", ("input", "severity"))
    await _get(ctx, Client, client_id, "Client", "clientId")
    return await raise_flag(ctx, client_id, severity, "counselor", note)


def in_my_organisation(ctx: core.ServiceContext, stmt: Select[Any]) -> Select[Any]:
    """Sessions and flags of the viewer's organisation's clients (platform administrators: all)."""
    if ctx.viewer.role in ("platform_admin", "system"):
        return stmt
    mine = select(Client.id).where(Client.organization_id == ctx.viewer.organization_id)
    entity = stmt.column_descriptions[0]["entity"]
    return stmt.where(entity.client_id.in_(mine))


async def open_flags(ctx: core.ServiceContext) -> list[tuple[RiskFlag, timedelta]]:
    """Open flags, most severe and oldest first, with their age."""
    core.require(ctx, "counseling.read_notes")
    severity = func.array_position(["high", "medium", "low"], RiskFlag.severity)
    rows = await ctx.session.scalars(
        in_my_organisation(
            ctx, select(RiskFlag).where(RiskFlag.resolved_at.is_(None)).order_by(severity, RiskFlag.raised_at)
        )
    )
    now = ctx.now()
    return [(f, now - f.raised_at) for f in rows]


async def all_sessions(ctx: core.ServiceContext) -> list[Session]:
    """Every session (tests and scripts)."""
    return list((await ctx.session.scalars(select(Session).order_by(Session.id))).all())
