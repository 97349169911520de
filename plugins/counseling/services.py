"""Counseling rules: sessions on the shared calendar, notes for the counselor and supervisors only,
14-day journals with missed days and trends, risk flags raised once.

Every counseling row belongs to one organisation, and row-level security keeps each organisation's rows
from the others (core.tenancy). The services state the same scope in their own queries (`visible`), so
that another organisation's record answers exactly like a missing one (NOT_FOUND in payloads, null in
queries) whatever the database does, and so that a platform administrator, who sees every organisation's
rows, still cannot link records of two organisations (ORGANIZATION_MISMATCH).

Confidential notes are read by relation, not by rank (`can_read_notes`): the session's own counselor,
and supervisors -- holders of `counseling.read_notes` -- of the session's own organisation. Nobody reads
another organisation's notes, a platform administrator included; risk flags are followed up by the same
supervisors, each within their organisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, ClassVar, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import case, false, select, true
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ColumnElement

import core
from core.i18n import _
from core.models import Appointment
from core.services import scheduling, search, validation
from plugins.counseling.models import Client, Counselor, Enrolment, JournalEntry, Programme, RiskFlag, Session

KIND = "counseling.session"
SPECIALTIES = frozenset({"anxiety", "grief", "perinatal", "children", "depression", "trauma"})
MODES = frozenset({"online", "offline"})
LOCAL = ZoneInfo("Asia/Shanghai")
# A mood trend this low (mean of the latest entries, 0–10) raises a risk flag.
LOW_MOOD_MEAN = 3.0
TREND_WINDOW = 3
SEARCH_HORIZON = timedelta(days=14)
# The widest free-slot search: a month of calendar. Wider ranges are refused (RANGE_TOO_LARGE), so that one
# request cannot make the service walk years of availability windows.
MAX_SLOT_RANGE = timedelta(days=31)
MIN_MINUTES, MAX_MINUTES = 10, 180
SEVERITIES = ("high", "medium", "low")  # most severe first
SOURCES = frozenset({"mood_trend", "counselor"})
STATUSES = frozenset({"booked", "attended", "no_show", "cancelled"})
# How a session's status reads inside a message (translated with it: plugins/counseling/locale).
STATUS_LABELS = {
    "booked": _("booked"),
    "attended": _("attended"),
    "no_show": _("missed (no-show)"),
    "cancelled": _("cancelled"),
}
PLATFORM_ADMIN = "platform_admin"
# Roles that serve clients themselves and so see their phone numbers; administrators see them masked.
SERVING_ROLES = frozenset({"counselor", "social_worker"})
SUPERVISE = "counseling.read_notes"

M = TypeVar("M")

# Unique keys a race can still violate after the services' own checks, and the answer each stands for.
CONSTRAINT_ERRORS: dict[str, tuple[str, str, tuple[str, ...] | None]] = {
    "uq_counseling_counselors_volunteer_id": (
        "ALREADY_EXISTS",
        "This person is a counselor already.",
        ("input", "volunteerId"),
    ),
    "uq_counseling_programmes_organization_id_name": (
        "ALREADY_EXISTS",
        "Your organisation has a programme of that name already.",
        ("input", "name"),
    ),
    "uq_counseling_enrolments_client_id_programme_id_starts_on": (
        "ALREADY_EXISTS",
        "The client is enrolled in this programme from that day already.",
        ("input", "startsOn"),
    ),
    "uq_counseling_journal_entries_enrolment_id_day": (
        "ALREADY_EXISTS",
        "This day has an entry already.",
        ("input", "on"),
    ),
}


@dataclass(frozen=True)
class RiskRaised(core.DomainEvent):
    """A client's risk flag was raised (a low mood trend, or a counselor's concern). Casework reacts.
    `organization_id` (keyword) is the client's organisation."""

    name: ClassVar[str] = "counseling.risk_raised"
    flag_id: int
    client_id: int
    severity: str
    source: str
    resident_id: int | None = None  # the client's core resident (casework and others follow the person)


# -- list filters (what the GraphQL filter inputs become) -------------------------------------------------------


@dataclass(frozen=True)
class CounselorFilter:
    """Counselors offering all of the given (any of them unset: no condition)."""

    specialty: str | None = None
    language: str | None = None
    mode: str | None = None
    qualification: str | None = None


@dataclass(frozen=True)
class ClientFilter:
    search: str | None = None  # a substring of the name


@dataclass(frozen=True)
class SessionFilter:
    """Sessions of a counselor and/or client, in some statuses, starting in [start_from, start_to): a
    counselor's calendar for a week is `counselor_id` with that week's bounds."""

    counselor_id: int | None = None
    client_id: int | None = None
    statuses: tuple[str, ...] = ()
    start_from: datetime | None = None
    start_to: datetime | None = None


@dataclass(frozen=True)
class ProgrammeFilter:
    search: str | None = None  # a substring of the name


@dataclass(frozen=True)
class EnrolmentFilter:
    client_id: int | None = None
    programme_id: int | None = None


@dataclass(frozen=True)
class RiskFlagFilter:
    client_id: int | None = None
    severities: tuple[str, ...] = ()


def _like(text_: str) -> str:
    """A LIKE pattern matching `text_` anywhere, its wildcards taken literally."""
    escaped = text_.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# Orderings of the lists (keyset pagination: the last column is unique).
CLIENTS_NEWEST: core.Ordering[Client] = core.Ordering(
    "counseling_clients_newest", (Client.id,), lambda c: (c.id,), descending=True
)
COUNSELORS_BY_ID: core.Ordering[Counselor] = core.Ordering("counseling_counselors", (Counselor.id,), lambda c: (c.id,))
SESSIONS_BY_START: core.Ordering[Session] = core.Ordering(
    "counseling_sessions_by_start",
    (Session.starts_at.expression, Session.id),  # type: ignore[attr-defined]
    lambda s: (s.starts_at, s.id),
)
PROGRAMMES_BY_NAME: core.Ordering[Programme] = core.Ordering(
    "counseling_programmes_by_name", (Programme.name, Programme.id), lambda p: (p.name, p.id)
)
ENROLMENTS_NEWEST: core.Ordering[Enrolment] = core.Ordering(
    "counseling_enrolments_newest",
    (Enrolment.starts_on, Enrolment.id),
    lambda e: (e.starts_on.isoformat(), e.id),
    descending=True,
)
_RANK = {s: n for n, s in enumerate(SEVERITIES, start=1)}
SEVERITY_RANK = case(_RANK, value=RiskFlag.severity, else_=len(SEVERITIES) + 1)
FLAGS_MOST_SEVERE: core.Ordering[RiskFlag] = core.Ordering(
    "counseling_flags_most_severe",
    (SEVERITY_RANK, RiskFlag.raised_at, RiskFlag.id),
    lambda f: (_RANK.get(f.severity, len(SEVERITIES) + 1), f.raised_at, f.id),
)


# -- organisation scope ----------------------------------------------------------------------------------------


def visible(ctx: core.ServiceContext, model: Any) -> ColumnElement[bool]:
    """The rows of `model` the viewer may address: their own organisation's (platform administrators:
    every organisation's). The same rule as the row-level security policy, stated in the service."""
    if ctx.viewer.role == PLATFORM_ADMIN:
        return true()
    if ctx.viewer.organization_id is None:
        return false()
    column: ColumnElement[bool] = model.organization_id == ctx.viewer.organization_id
    return column


def own_organisation(ctx: core.ServiceContext) -> int:
    """The organisation a new root record (client, programme) belongs to: the caller's own."""
    if ctx.viewer.organization_id is None:
        raise core.DomainError("REQUIRED", "Act as a member of an organisation to keep counseling records.")
    return ctx.viewer.organization_id


def same_organisation(first: Any, second: Any, field: str) -> None:
    """Records of two organisations are never linked (only a platform administrator can name both)."""
    if first.organization_id != second.organization_id:
        raise core.DomainError(
            "ORGANIZATION_MISMATCH", "These records belong to different organisations.", ("input", field)
        )


async def _get(
    ctx: core.ServiceContext, model: type[M], pk: int, what: str, field: str = "id", *, lock: bool = False
) -> M:
    """The row, or NOT_FOUND -- for another organisation's row exactly as for a missing one."""
    row: M = await core.get_row(ctx, model, pk, what=what, field=("input", field), lock=lock, scope=visible(ctx, model))
    return row


async def _flush(ctx: core.ServiceContext) -> None:
    """Flush, turning refusals the database makes (unique keys under a race, row-level security, rows of
    two organisations) into the answers the services' own checks give."""
    await core.flush(ctx, CONSTRAINT_ERRORS)


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
    """A counselor belongs to the organisation of their volunteer record."""
    core.require(ctx, "counseling.manage")
    v = core.Validator()
    unknown = set(specialties) - SPECIALTIES
    v.check(
        not unknown,
        ("input", "specialties"),
        "INVALID_INPUT",
        "Unknown specialties: {values}.",
        values=tuple(sorted(unknown)),
    )
    v.check(
        bool(modes) and set(modes) <= MODES, ("input", "modes"), "INVALID_INPUT", "Modes are online and/or offline."
    )
    v.raise_if_any()
    person = await _get(ctx, core.Volunteer, volunteer_id, _("Volunteer"), "volunteerId")
    if await ctx.session.scalar(select(Counselor.id).where(Counselor.volunteer_id == volunteer_id)) is not None:
        raise core.DomainError("ALREADY_EXISTS", "This person is a counselor already.", ("input", "volunteerId"))
    counselor = Counselor(
        volunteer_id=volunteer_id,
        qualifications=list(qualifications),
        specialties=list(specialties),
        languages=[x.lower() for x in languages],
        modes=list(modes),
        organization_id=person.organization_id,
    )
    ctx.session.add(counselor)
    await _flush(ctx)
    return counselor


async def register_client(
    ctx: core.ServiceContext,
    *,
    name: str,
    phone: str,
    consent: bool,
    community_id: int | None = None,
    consent_note: str = "",
    resident_id: int | None = None,
) -> Client:
    """A client of the caller's organisation (in one of its communities, if one is named). The person is a
    core resident: the one named by `resident_id` (of the caller's organisation), else a new one."""
    core.require(ctx, "counseling.manage")
    v = core.Validator()
    clean_name = validation.text(v, ("input", "name"), name, max_length=50, label=_("Name"))
    clean_phone = validation.phone(v, ("input", "phone"), phone)
    v.check(consent, ("input", "consent"), "REQUIRED", "The client's consent must be recorded first.")
    v.raise_if_any()
    organization_id = own_organisation(ctx)
    if community_id is not None:
        community = await _get(ctx, core.Community, community_id, _("Community"), "communityId")
        if community.organization_id != organization_id:  # only a platform administrator sees it at all
            raise core.DomainError(
                "ORGANIZATION_MISMATCH", "The community belongs to another organisation.", ("input", "communityId")
            )
    if resident_id is not None:
        resident = await core.residents.get_resident(ctx, resident_id)
        if resident.organization_id != organization_id:
            raise core.DomainError(
                "ORGANIZATION_MISMATCH", "The resident belongs to another organisation.", ("input", "residentId")
            )
    else:
        resident = await core.residents.create_resident(
            ctx, name=clean_name, community_id=community_id, phone=clean_phone or ""
        )
    client = Client(
        resident_id=resident.id,
        name=clean_name,
        phone=clean_phone,
        community_id=community_id,
        consent_at=ctx.now(),
        consent_note=consent_note.strip(),
        organization_id=organization_id,
    )
    ctx.session.add(client)
    await _flush(ctx)
    return client


async def client_for_referral(ctx: core.ServiceContext, referral: Any, shared: Any) -> Client:
    """An accepted referral to counseling (ReferralTarget.on_accepted): the receiving organisation's client
    for the referred person, made from what the consent lets it copy (`shared`: core.SharedResident). An
    existing client of the same name and phone is attached to instead of duplicated."""
    organization_id = own_organisation(ctx)
    phone = shared.phone or ""
    if phone:
        existing = await ctx.session.scalar(
            select(Client)
            .where(Client.organization_id == organization_id, Client.name == shared.name, Client.phone == phone)
            .order_by(Client.id)
            .limit(1)
        )
        if existing is not None:
            return existing
    resident = await core.residents.create_resident(
        ctx, name=shared.name, community_id=None, phone=phone, address=shared.address or ""
    )
    client = Client(
        resident_id=resident.id,
        name=resident.name,
        phone=resident.phone,
        community_id=None,
        consent_at=ctx.now(),
        consent_note=f"referral {referral.id}",
        organization_id=organization_id,
    )
    ctx.session.add(client)
    await _flush(ctx)
    return client


async def list_clients(
    ctx: core.ServiceContext, f: ClientFilter = ClientFilter(), *, first: int = 50, after: str | None = None
) -> core.Page[Client]:
    """Clients, newest first: the caller's organisation's (platform administrators: every organisation's)."""
    core.require(ctx, "counseling.manage")
    stmt = select(Client).where(visible(ctx, Client))
    if f.search and f.search.strip():
        stmt = stmt.where(Client.name.ilike(_like(f.search), escape="\\"))
    return await core.paginate(ctx, stmt, CLIENTS_NEWEST, first=first, after=after)


async def list_counselors(
    ctx: core.ServiceContext, f: CounselorFilter = CounselorFilter(), *, first: int = 50, after: str | None = None
) -> core.Page[Counselor]:
    """Counselors, in the order they were registered: the caller's organisation's (platform administrators:
    every organisation's)."""
    core.require(ctx, "counseling.manage")
    stmt = _counselors_fitting(
        select(Counselor).where(visible(ctx, Counselor)), f.specialty, f.language, f.mode, f.qualification
    )
    return await core.paginate(ctx, stmt, COUNSELORS_BY_ID, first=first, after=after)


def sees_phone(viewer: core.Viewer, client_organization_id: int) -> bool:
    """A client's phone number: for the people who serve clients (counselors, social workers) of the
    client's organisation; masked for administrators, platform administrators included."""
    return (
        viewer.role in SERVING_ROLES
        and core.can(viewer, "counseling.manage")
        and viewer.organization_id == client_organization_id
    )


# -- sessions ------------------------------------------------------------------------------------------------------


async def matching_counselors(
    ctx: core.ServiceContext,
    specialty: str | None,
    language: str | None,
    mode: str,
    qualification: str | None = None,
    *,
    organization_id: int | None = None,
) -> list[Counselor]:
    """Counselors who fit, among those the caller may address (and of `organization_id`, if given)."""
    stmt = _counselors_fitting(
        select(Counselor).where(visible(ctx, Counselor)), specialty, language, mode, qualification
    )
    if organization_id is not None:
        stmt = stmt.where(Counselor.organization_id == organization_id)
    return list((await ctx.session.scalars(stmt.order_by(Counselor.id))).all())


def _counselors_fitting(
    stmt: Any, specialty: str | None, language: str | None, mode: str | None, qualification: str | None
) -> Any:
    """`stmt` narrowed to counselors offering each of the given (unset: no condition)."""
    if mode:
        stmt = stmt.where(Counselor.modes.contains([mode]))
    if qualification:
        stmt = stmt.where(Counselor.qualifications.contains([qualification]))
    if specialty:
        stmt = stmt.where(Counselor.specialties.contains([specialty]))
    if language:
        stmt = stmt.where(Counselor.languages.contains([language.lower()]))
    return stmt


async def free_slots(
    ctx: core.ServiceContext,
    start: datetime,
    end: datetime,
    duration: timedelta,
    *,
    specialty: str | None = None,
    language: str | None = None,
    mode: str = "online",
    qualification: str | None = None,
    max_days: int | None = None,
) -> list[tuple[Any, Counselor]]:
    """Free slots of the counselors who fit (among those the caller may address), earliest first. The range
    ends after it starts (OUT_OF_RANGE) and spans at most MAX_SLOT_RANGE (a month), or the deployment's
    max_range_days if tighter (RANGE_TOO_LARGE); the duration is 10 to 180 minutes (OUT_OF_RANGE)."""
    core.require(ctx, "counseling.manage")
    v = core.Validator()
    cap = MAX_SLOT_RANGE.days if max_days is None else min(MAX_SLOT_RANGE.days, max_days)
    search.check_range(v, start, end, max_days=cap, end_field=("end",))
    v.check(
        timedelta(minutes=MIN_MINUTES) <= duration <= timedelta(minutes=MAX_MINUTES),
        ("minutes",),
        "OUT_OF_RANGE",
        "A session lasts {low} to {high} minutes.",
        low=MIN_MINUTES,
        high=MAX_MINUTES,
    )
    v.check(mode in MODES, ("mode",), "INVALID_INPUT", "Mode is online or offline.")
    v.raise_if_any()
    found = await matching_counselors(ctx, specialty, language, mode, qualification)
    counselors = {c.volunteer_id: c for c in found}
    slots = await scheduling.free_slots(ctx, list(counselors), start, end, duration, max_days=cap)
    return [(s, counselors[s.owner_id]) for s in slots]


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
    """Book a given slot with a given counselor, or the earliest slot of any counselor who fits -- always
    a counselor of the client's organisation."""
    core.require(ctx, "counseling.manage")
    v = core.Validator()
    v.check(mode in MODES, ("input", "mode"), "INVALID_INPUT", "Mode is online or offline.")
    v.check(
        MIN_MINUTES <= minutes <= MAX_MINUTES,
        ("input", "minutes"),
        "OUT_OF_RANGE",
        "A session lasts {low} to {high} minutes.",
        low=MIN_MINUTES,
        high=MAX_MINUTES,
    )
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
    client = await _get(ctx, Client, client_id, _("Client"), "clientId")
    duration = timedelta(minutes=minutes)
    appointment: Appointment | None = None
    if counselor_id is not None:
        counselor = await _get(ctx, Counselor, counselor_id, _("Counselor"), "counselorId")
        same_organisation(client, counselor, "counselorId")
        assert start is not None
        appointment = await scheduling.book(ctx, counselor.volunteer_id, KIND, start, start + duration)
    else:
        counselors = await matching_counselors(ctx, specialty, language, mode, organization_id=client.organization_id)
        if not counselors:
            raise core.DomainError(
                "NO_COUNSELOR", "No counselor offers this specialty, language and mode.", ("input", "specialty")
            )
        by_person = {c.volunteer_id: c for c in counselors}
        earliest = start or ctx.now()
        # Every candidate is locked in id order before the search: bookers cannot wait on each other in a cycle.
        try:
            appointment = await core.book_earliest_appointment(
                ctx, list(by_person), KIND, earliest, earliest + SEARCH_HORIZON, duration
            )
        except core.DomainError as refused:
            if refused.code != "SLOT_TAKEN":
                raise
            raise core.DomainError(
                "SLOT_TAKEN", "No matching counselor is free in the next 14 days.", ("input", "start")
            ) from refused
        counselor = by_person[appointment.owner_id]
    session = Session(
        counselor_id=counselor.id,
        client_id=client_id,
        appointment_id=appointment.id,
        mode=mode,
        meeting_link=meeting_link,
        place=place.strip(),
    )
    ctx.session.add(session)
    await _flush(ctx)
    appointment.record_id = session.id
    await _flush(ctx)
    return session


async def _session(ctx: core.ServiceContext, session_id: int) -> Session:
    return await _get(ctx, Session, session_id, _("Session"), lock=True)


async def list_sessions(
    ctx: core.ServiceContext, f: SessionFilter = SessionFilter(), *, first: int = 50, after: str | None = None
) -> core.Page[Session]:
    """Sessions by start time, earliest first: the caller's organisation's (platform administrators: every
    organisation's), narrowed by `f` (a counselor's week: `counselor_id` and the week's bounds)."""
    core.require(ctx, "counseling.manage")
    v = core.Validator()
    unknown = set(f.statuses) - STATUSES
    v.check(
        not unknown,
        ("filter", "statuses"),
        "INVALID_INPUT",
        "Unknown statuses: {values}.",
        values=tuple(sorted(unknown)),
    )
    if f.start_from is not None and f.start_to is not None:
        v.check(f.start_to > f.start_from, ("filter", "to"), "OUT_OF_RANGE", "The range ends after it starts.")
    v.raise_if_any()
    stmt = select(Session).where(visible(ctx, Session))
    if f.counselor_id is not None:
        stmt = stmt.where(Session.counselor_id == f.counselor_id)
    if f.client_id is not None:
        stmt = stmt.where(Session.client_id == f.client_id)
    if f.statuses:
        stmt = stmt.where(Session.status.in_(list(f.statuses)))
    if f.start_from is not None:
        stmt = stmt.where(Session.starts_at >= f.start_from)
    if f.start_to is not None:
        stmt = stmt.where(Session.starts_at < f.start_to)
    return await core.paginate(ctx, stmt, SESSIONS_BY_START, first=first, after=after)


async def reschedule_session(ctx: core.ServiceContext, session_id: int, start: datetime, minutes: int) -> Session:
    core.require(ctx, "counseling.manage")
    session = await _session(ctx, session_id)
    if session.status != "booked":
        raise core.DomainError(
            "INVALID_TRANSITION",
            "The session is {status} and cannot be rescheduled.",
            ("input", "id"),
            status=STATUS_LABELS.get(session.status, session.status),
        )
    await scheduling.reschedule(ctx, session.appointment_id, start, start + timedelta(minutes=minutes))
    return session


async def cancel_session(ctx: core.ServiceContext, session_id: int, reason: str) -> Session:
    core.require(ctx, "counseling.manage")
    session = await _session(ctx, session_id)
    if session.status != "booked":
        raise core.DomainError(
            "INVALID_TRANSITION",
            "The session is {status} and cannot be cancelled.",
            ("input", "id"),
            status=STATUS_LABELS.get(session.status, session.status),
        )
    v = core.Validator()
    clean = validation.text(v, ("input", "reason"), reason, max_length=500, label=_("A reason"))
    v.raise_if_any()
    session.status, session.cancel_reason = "cancelled", clean
    await scheduling.cancel(ctx, session.appointment_id, clean)
    return session


async def mark_session(ctx: core.ServiceContext, session_id: int, attended: bool) -> Session:
    core.require(ctx, "counseling.manage")
    session = await _session(ctx, session_id)
    if session.status != "booked":
        raise core.DomainError(
            "INVALID_TRANSITION",
            "The session is {status} and cannot be marked.",
            ("input", "id"),
            status=STATUS_LABELS.get(session.status, session.status),
        )
    appointment = await _get(ctx, Appointment, session.appointment_id, _("Appointment"))
    if appointment.during.lower > ctx.now():
        raise core.DomainError("INVALID_TRANSITION", "A session is marked once it has started.", ("input", "id"))
    session.status = "attended" if attended else "no_show"
    await _flush(ctx)
    return session


def _counselor_memo_key(volunteer_id: int) -> str:
    return f"counseling.counselor_of_volunteer:{volunteer_id}"


async def own_counselor_id(ctx: core.ServiceContext) -> int | None:
    """The caller's own counselor record, if they are a counselor (read once per request)."""
    volunteer_id = ctx.viewer.volunteer_id
    if volunteer_id is None:
        return None
    key = _counselor_memo_key(volunteer_id)
    if key not in ctx.memo:
        ctx.memo[key] = await ctx.session.scalar(
            select(Counselor.id).where(Counselor.volunteer_id == volunteer_id, visible(ctx, Counselor))
        )
    found: int | None = ctx.memo[key]
    return found


def residents_served(viewer: core.Viewer, resident_id: ColumnElement[int]) -> ColumnElement[bool] | None:
    """The residents a counselor serves (core.ResidentRelation): the clients they hold sessions with, in their
    own organisation. Rank is no relation: an administrator or supervisor serves nobody by this."""
    if viewer.volunteer_id is None or viewer.organization_id is None or not core.can(viewer, "counseling.manage"):
        return None
    return resident_id.in_(
        select(Client.resident_id)
        .join(Session, Session.client_id == Client.id)
        .join(Counselor, Counselor.id == Session.counselor_id)
        .where(Counselor.volunteer_id == viewer.volunteer_id, Client.organization_id == viewer.organization_id)
    )


def supervises(viewer: core.Viewer, organization_id: int) -> bool:
    """A supervisor of `organization_id`'s counseling: holds counseling.read_notes *and* belongs to that
    organisation. Rank alone (a platform administrator, another organisation's administrator) is not enough."""
    in_organisation = viewer.organization_id is not None and viewer.organization_id == organization_id
    return in_organisation and core.can(viewer, SUPERVISE)


async def can_read_notes(ctx: core.ServiceContext, session: Session) -> bool:
    """By relation: the session's own counselor, and supervisors of the session's organisation. At most one
    query per request (the caller's counselor record), however many sessions are asked about."""
    if supervises(ctx.viewer, session.organization_id):
        return True
    if ctx.viewer.organization_id != session.organization_id:
        return False
    mine = await own_counselor_id(ctx)
    return mine is not None and mine == session.counselor_id


async def write_notes(ctx: core.ServiceContext, session_id: int, notes: str) -> Session:
    session = await _session(ctx, session_id)
    if not await can_read_notes(ctx, session):
        raise core.DomainError("FORBIDDEN", "Only the session's counselor and supervisors write its notes.")
    session.notes = notes.strip()[:20000]
    await _flush(ctx)
    return session


# -- journals and risk ----------------------------------------------------------------------------------------------


async def list_programmes(
    ctx: core.ServiceContext, f: ProgrammeFilter = ProgrammeFilter(), *, first: int = 50, after: str | None = None
) -> core.Page[Programme]:
    """Journal programmes by name: the caller's organisation's (platform administrators: every organisation's)."""
    core.require(ctx, "counseling.manage")
    stmt = select(Programme).where(visible(ctx, Programme))
    if f.search and f.search.strip():
        stmt = stmt.where(Programme.name.ilike(_like(f.search), escape="\\"))
    return await core.paginate(ctx, stmt, PROGRAMMES_BY_NAME, first=first, after=after)


async def list_enrolments(
    ctx: core.ServiceContext, f: EnrolmentFilter = EnrolmentFilter(), *, first: int = 50, after: str | None = None
) -> core.Page[Enrolment]:
    """Enrolments, latest start first (of a client, of a programme): the caller's organisation's (platform
    administrators: every organisation's)."""
    core.require(ctx, "counseling.manage")
    stmt = select(Enrolment).where(visible(ctx, Enrolment))
    if f.client_id is not None:
        stmt = stmt.where(Enrolment.client_id == f.client_id)
    if f.programme_id is not None:
        stmt = stmt.where(Enrolment.programme_id == f.programme_id)
    return await core.paginate(ctx, stmt, ENROLMENTS_NEWEST, first=first, after=after)


async def create_programme(ctx: core.ServiceContext, name: str, prompts: Sequence[str]) -> Programme:
    """A programme of the caller's organisation; names are unique within an organisation."""
    core.require(ctx, "counseling.manage")
    v = core.Validator()
    clean = validation.text(v, ("input", "name"), name, max_length=100, label=_("Name"))
    v.check(1 <= len(prompts) <= 90, ("input", "prompts"), "OUT_OF_RANGE", "A programme has 1 to 90 daily prompts.")
    v.raise_if_any()
    organization_id = own_organisation(ctx)
    taken = await ctx.session.scalar(
        select(Programme.id).where(Programme.organization_id == organization_id, Programme.name == clean)
    )
    if taken is not None:
        raise core.DomainError(
            "ALREADY_EXISTS", "Your organisation has a programme of that name already.", ("input", "name")
        )
    programme = Programme(
        name=clean, days=len(prompts), prompts=[p.strip() for p in prompts], organization_id=organization_id
    )
    ctx.session.add(programme)
    await _flush(ctx)
    return programme


async def enrol(ctx: core.ServiceContext, client_id: int, programme_id: int, starts_on: date) -> Enrolment:
    core.require(ctx, "counseling.manage")
    client = await _get(ctx, Client, client_id, _("Client"), "clientId")
    programme = await _get(ctx, Programme, programme_id, _("Programme"), "programmeId")
    same_organisation(client, programme, "programmeId")
    enrolment = Enrolment(client_id=client_id, programme_id=programme_id, starts_on=starts_on, days=programme.days)
    ctx.session.add(enrolment)
    await _flush(ctx)
    return enrolment


def today(ctx: core.ServiceContext) -> date:
    return ctx.now().astimezone(LOCAL).date()


async def add_entry(
    ctx: core.ServiceContext, enrolment_id: int, mood: int, text: str = "", on: date | None = None
) -> JournalEntry:
    """Today's entry (or `on`'s), within the enrolment period; may raise a risk flag."""
    core.require(ctx, "counseling.manage")
    enrolment = await _get(ctx, Enrolment, enrolment_id, _("Enrolment"), "enrolmentId")
    entry_date = on or today(ctx)
    day = (entry_date - enrolment.starts_on).days + 1
    v = core.Validator()
    v.check(0 <= mood <= 10, ("input", "mood"), "OUT_OF_RANGE", "Mood is scored 0 to 10.")
    v.check(1 <= day <= enrolment.days, ("input", "on"), "OUT_OF_RANGE", "This day is outside the enrolment period.")
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
    await _flush(ctx)
    await _check_trend(ctx, enrolment)
    return entry


async def trend(ctx: core.ServiceContext, enrolment_id: int) -> list[tuple[int, int]]:
    """(day, mood) of an enrolment's entries; none for an enrolment the caller may not address."""
    rows = await ctx.session.execute(
        select(JournalEntry.day, JournalEntry.mood)
        .where(JournalEntry.enrolment_id == enrolment_id, visible(ctx, JournalEntry))
        .order_by(JournalEntry.day)
    )
    return [(d, m) for d, m in rows]


async def missed_days(ctx: core.ServiceContext, enrolment_id: int) -> list[int]:
    enrolment = await _get(ctx, Enrolment, enrolment_id, _("Enrolment"), "enrolmentId")
    return _missed(ctx, enrolment, await trend(ctx, enrolment_id))


def _missed(ctx: core.ServiceContext, enrolment: Enrolment, entries: list[tuple[int, int]]) -> list[int]:
    elapsed = min(enrolment.days, (today(ctx) - enrolment.starts_on).days)  # today may still come
    written = {d for d, _ in entries}
    return [d for d in range(1, elapsed + 1) if d not in written]


async def journal(ctx: core.ServiceContext, enrolment_id: int) -> tuple[list[tuple[int, int]], list[int]] | None:
    """An enrolment's entries and missed days, or None for a missing enrolment -- and for another
    organisation's, which answers exactly like a missing one."""
    core.require(ctx, "counseling.manage")
    enrolment = await ctx.session.scalar(select(Enrolment).where(Enrolment.id == enrolment_id, visible(ctx, Enrolment)))
    if enrolment is None:
        return None
    entries = await trend(ctx, enrolment_id)
    return entries, _missed(ctx, enrolment, entries)


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
    """Open a flag unless one from this source is open already; announce it once, to the plugins the
    client's organisation has enabled. The caller has checked that the client is theirs to address."""
    try:
        raised = (
            await ctx.session.execute(
                insert(RiskFlag)
                .values(client_id=client_id, severity=severity, source=source, note=note, raised_at=ctx.now())
                .on_conflict_do_nothing(
                    index_elements=[RiskFlag.client_id, RiskFlag.source], index_where=RiskFlag.resolved_at.is_(None)
                )
                .returning(RiskFlag.id, RiskFlag.organization_id)
            )
        ).one_or_none()
    except DBAPIError as exc:
        error = core.domain_error_for(exc)  # a client of another organisation: NOT_FOUND, like a missing one
        if error is None:
            raise
        raise error from exc
    if raised is None:
        return None
    flag_id, organization_id = raised
    resident_id = await ctx.session.scalar(select(Client.resident_id).where(Client.id == client_id))
    await ctx.publish(
        RiskRaised(
            organization_id=organization_id,
            flag_id=flag_id,
            client_id=client_id,
            severity=severity,
            source=source,
            resident_id=resident_id,
        )
    )
    return await ctx.session.get(RiskFlag, flag_id)


async def flag_risk(ctx: core.ServiceContext, client_id: int, severity: str, note: str) -> RiskFlag | None:
    core.require(ctx, "counseling.manage")
    if severity not in SEVERITIES:
        raise core.DomainError("INVALID_INPUT", "Severity is low, medium or high.", ("input", "severity"))
    await _get(ctx, Client, client_id, _("Client"), "clientId")
    return await raise_flag(ctx, client_id, severity, source="counselor", note=note)


def supervised(ctx: core.ServiceContext) -> ColumnElement[bool]:
    """Risk flags are followed up by the supervisors of the client's organisation: the caller's own
    organisation's flags only (platform administrators included)."""
    if ctx.viewer.organization_id is None:
        return false()
    column: ColumnElement[bool] = RiskFlag.organization_id == ctx.viewer.organization_id
    return column


async def open_flags(
    ctx: core.ServiceContext, f: RiskFlagFilter = RiskFlagFilter(), *, first: int = 50, after: str | None = None
) -> core.Page[RiskFlag]:
    """Open flags of the caller's organisation, most severe and oldest first (supervisors)."""
    core.require(ctx, SUPERVISE)
    unknown = set(f.severities) - set(SEVERITIES)
    if unknown:
        raise core.DomainError(
            "INVALID_INPUT", "Unknown severities: {values}.", ("filter", "severities"), values=tuple(sorted(unknown))
        )
    stmt = select(RiskFlag).where(RiskFlag.resolved_at.is_(None), supervised(ctx))
    if f.client_id is not None:
        stmt = stmt.where(RiskFlag.client_id == f.client_id)
    if f.severities:
        stmt = stmt.where(RiskFlag.severity.in_(list(f.severities)))
    return await core.paginate(ctx, stmt, FLAGS_MOST_SEVERE, first=first, after=after)


def flag_age(ctx: core.ServiceContext, flag: RiskFlag) -> timedelta:
    return ctx.now() - flag.raised_at


async def resolve_flag(ctx: core.ServiceContext, flag_id: int) -> RiskFlag:
    """Close a flag after follow-up (supervisors of its organisation); another organisation's flag answers
    NOT_FOUND, like a missing one. A mood trend may raise a new flag for the client afterwards."""
    core.require(ctx, SUPERVISE)
    flag = await core.get_row(
        ctx, RiskFlag, flag_id, what=_("Risk flag"), field=("input", "id"), lock=True, scope=supervised(ctx)
    )
    if flag.resolved_at is not None:
        raise core.DomainError("INVALID_TRANSITION", "This flag is resolved already.", ("input", "id"))
    flag.resolved_at = ctx.now()
    await _flush(ctx)
    return flag


async def rows_by_id(ctx: core.ServiceContext, model: type[M], pks: Sequence[int]) -> dict[int, M]:
    """node(id:): those of `pks` the caller may address, by id (the same scope as the lists: risk flags for
    their organisation's supervisors, other records for their organisation). Another organisation's ids are
    simply absent, like missing ones."""
    core.require(ctx, "counseling.manage")
    if model is RiskFlag:
        core.require(ctx, SUPERVISE)
        scope = supervised(ctx)
    else:
        scope = visible(ctx, model)
    if not pks:
        return {}
    rows = await ctx.session.scalars(select(model).where(model.id.in_(list(pks)), scope))  # type: ignore[attr-defined]
    return {row.id: row for row in rows}  # type: ignore[attr-defined]


async def all_sessions(ctx: core.ServiceContext) -> list[Session]:
    """Every session the caller may address (tests and scripts)."""
    return list((await ctx.session.scalars(select(Session).where(visible(ctx, Session)).order_by(Session.id))).all())
