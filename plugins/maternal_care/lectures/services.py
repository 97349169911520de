"""Lectures for expectant mothers: capacity, a FIFO waitlist, promotion, reminders, attendance, recommendations.

**Who.** Maternal-care staff (the plugin role, permission `LECTURES`) and administrators create, edit and
cancel lectures, register mothers, cancel registrations and record attendance. A mother has no account:
staff register her, and so may her assigned social worker (who serves her). Lectures themselves (title,
speaker, times, seats) are seen by staff, administrators and the organisation's social workers (who recommend
them). Who is registered for what is health-adjacent (a pregnancy lecture says she is pregnant): a mother's
registrations are seen by staff, administrators and her assigned social worker only -- another social worker
sees the seat counts, not the names; another organisation sees nothing (row-level security).

**Seats are the database's.** `registered_count` is kept by a trigger and held within `capacity` by the CHECK
ck_maternal_care_lectures_within_capacity. `register` never compares the count with the capacity itself: it
tries the seat inside a savepoint, and when that CHECK refuses it, the registration joins the waitlist. The
lecture's row is locked first (FOR NO KEY UPDATE) only to give the registrations one arrival order: the
identity `id` is taken under that lock, so the waitlist (ordered by `id`) is first in, first out, and nobody
arriving later gets a seat while an earlier arrival waits.

**Promotion.** Cancelling a seat (or raising the capacity) promotes the first waitlisted registrations, in the
same transaction, under the lecture's lock: concurrent cancellations queue on that lock and each promotes
the next in line; the CHECK refuses anything over capacity whatever happens. The promoted mother is told
through core's outbox (her phone; her social worker's account when no phone is recorded). Promotion judges
the audience again, on the lecture's date as it is now (its start or audience may have changed, her records
too): a waitlisted mother who no longer fits is not promoted -- her registration is cancelled with the reason
`OUTSIDE_AUDIENCE_REASON`, she is told, and the next in line has the seat.

**Her time zone.** A registration keeps the IANA zone it was made in (`timeZone` when registering, validated;
default the deployment's, settings.timezone). Everything that follows from her registration counts her
lecture's local date in that zone, whoever acts and wherever the deployment is: the audience judged again at
promotion, the local start and date in every message to her (reminder, promotion, change), `fitsAudience`,
and the zone her recommendations use when the caller names none. A lecture at 00:30 in Shanghai is the
evening before in Berlin: a day earlier in her pregnancy, maybe another trimester.

**An edit that leaves a seated mother outside the audience.** Moving a lecture or changing its audience may
leave a mother who holds a seat outside it (she would be refused if she registered now). She keeps her seat:
she was admitted, may have arranged her day around it, and whether a week either side of a trimester boundary
matters is for staff to judge with her, not for the system to undo silently. But it is never silent either:
her registration answers `fitsAudience: false` (on the lecture's current date and audience, in her zone), the
lecture counts such seats (`registrationsOutsideAudience`, of the mothers the caller serves), and the edit
tells her through the outbox (`maternal_care.lecture_changed`, `outside_audience: true`). Every seated mother
is told of a change of what she needs to attend (start, end, place, link); an audience change alone tells
only those it leaves outside. A waitlisted mother who no longer fits stays waitlisted (`fitsAudience` shows it)
until her turn: promotion cancels her then, as above. Cancelling her seat stays a decision of staff.

**Audience.** A mother fits a lecture if, on the lecture's local date (its start in her registration's time
zone, or the caller's when there is none yet), her ongoing pregnancy is in a trimester of the audience
(gestation.age_at), or she delivered within `POSTPARTUM_DAYS` = 42 days and the audience includes postpartum.
"Within 42 days of delivery" is the 42 calendar days that begin with the delivery day: day 0 (the delivery) to
day 41; day 42, the day of the 42-day postpartum check that closes 产褥期, is past it. An ongoing pregnancy at 44+0
or more on that date fits nothing (a record nobody updated; the registry refuses such dating too:
LONGEST_WEEKS). A registration waits only for what the records say on that date: a woman pregnant now is not
"postpartum" at a lecture after her due date until her delivery is recorded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, false, func, select, true
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

import core
from core.i18n import _
from core.models import Resident
from plugins.maternal_care import gestation
from plugins.maternal_care.lectures.models import (
    ATTENDANCE,
    AUDIENCES,
    DEFAULT_ZONE,
    MAX_CAPACITY,
    MIN_CAPACITY,
    ONE_LIVE,
    WITHIN_CAPACITY,
    Lecture,
    Registration,
)
from plugins.maternal_care.models import Mother, Pregnancy
from plugins.maternal_care.registry import services as registry

# The registry's permissions (registry/services.py declares them): LECTURES is carried by the plugin role
# maternal_care.staff and held by administrators; MANAGE by social workers (and administrators).
LECTURES, MANAGE, ADMINS = registry.LECTURES, registry.MANAGE, registry.ADMIN_ROLES
# DEFAULT_ZONE (models): settings.timezone's default; resolvers pass the deployment's setting
POSTPARTUM_DAYS = 42  # days 0..41 after the delivery (see the module doc)
# The cancel reason of a waitlisted registration that no longer fits the lecture when its turn comes.
OUTSIDE_AUDIENCE_REASON = "outside the lecture's audience on its date (cancelled at promotion)"
REMINDER_LEAD = timedelta(hours=24)
MAX_TITLE, MAX_SPEAKER, MAX_PLACE, MAX_URL, MAX_TEXT = 200, 100, 200, 500, 2000
# How far ahead recommendations look, and how many lectures they consider (a bound for the statement).
RECOMMENDATION_HORIZON = timedelta(days=180)
RECOMMENDATION_SCAN = 200

ERROR_CODES = {
    "MATERNAL_CARE_LECTURE_ENDS_BEFORE_START": "A lecture ends after it starts.",
    "MATERNAL_CARE_LECTURE_ALREADY_REGISTERED": "The mother is registered (or waitlisted) for the lecture already.",
    "MATERNAL_CARE_OUTSIDE_AUDIENCE": "On the lecture's date the mother is not in its target audience "
    "(trimester, or postpartum within 42 days of delivery).",
    "MATERNAL_CARE_CAPACITY_BELOW_REGISTERED": "A lecture's capacity is not set below the seats already taken.",
    "MATERNAL_CARE_LECTURE_CANCELLED": "The lecture is cancelled: nobody registers for it and it changes no more.",
    "MATERNAL_CARE_LECTURE_STARTED": "The lecture has started: registrations and its schedule no longer change.",
    "MATERNAL_CARE_LECTURE_NOT_STARTED": "Attendance is recorded once the lecture has started.",
}

CONSTRAINT_ERRORS: dict[str, tuple[str, str, tuple[str, ...] | None]] = {
    ONE_LIVE: (
        "MATERNAL_CARE_LECTURE_ALREADY_REGISTERED",
        "The mother is registered for this lecture already.",
        ("input", "motherId"),
    ),
    WITHIN_CAPACITY: (
        "MATERNAL_CARE_CAPACITY_BELOW_REGISTERED",
        "The capacity is below the seats already taken.",
        ("input", "capacity"),
    ),
    "ck_maternal_care_lectures_ends_after_start": (
        "MATERNAL_CARE_LECTURE_ENDS_BEFORE_START",
        "The lecture ends before it starts.",
        ("input", "endsAt"),
    ),
    "maternal_care_lecture_cancelled": ("MATERNAL_CARE_LECTURE_CANCELLED", "The lecture is cancelled.", None),
    "maternal_care_registration_transition": (
        "INVALID_TRANSITION",
        "The registration cannot change that way.",
        ("input", "id"),
    ),
}

NEWEST_FIRST: core.Ordering[Lecture] = core.Ordering(
    "maternal_care_lectures_by_start", (Lecture.starts_at, Lecture.id), lambda lec: (lec.starts_at, lec.id)
)
REGISTRATIONS_IN_ORDER: core.Ordering[Registration] = core.Ordering(
    "maternal_care_registrations", (Registration.id,), lambda r: (r.id,)
)
REGISTRATIONS_NEWEST: core.Ordering[Registration] = core.Ordering(
    "maternal_care_registrations_newest", (Registration.id,), lambda r: (r.id,), descending=True
)


# -- who -------------------------------------------------------------------------------------------------------


def runs_lectures(viewer: core.Viewer) -> bool:
    """Staff and administrators, of the caller's own organisation's lectures (`lecture_scope`)."""
    return viewer.role in ADMINS or core.can(viewer, LECTURES)


def lecture_scope(ctx: core.ServiceContext) -> ColumnElement[bool]:
    """The caller's organisation's lectures. Row-level security alone does not say it: a platform
    administrator's session sees every organisation's rows, and acts on lectures of its own organisation only
    (as the registry's `mother_scope`)."""
    if ctx.viewer.role == "system":
        return true()
    if ctx.viewer.organization_id is None:
        return false()
    return Lecture.organization_id == ctx.viewer.organization_id


def _sees_lectures(viewer: core.Viewer) -> bool:
    return runs_lectures(viewer) or core.can(viewer, MANAGE)


def mother_scope(ctx: core.ServiceContext) -> ColumnElement[bool]:
    """The mothers whose registrations the caller sees and registers: the registry's rule (all of the
    organisation for staff and administrators, her own mothers for an assigned social worker, none else)."""
    return registry.mother_scope(ctx)


def _actor(ctx: core.ServiceContext) -> int:
    if ctx.viewer.role is None:
        raise core.DomainError("UNAUTHENTICATED", "Sign in first.")
    if ctx.viewer.account_id is None or ctx.viewer.organization_id is None:
        raise core.DomainError("FORBIDDEN", "You may not do this.")
    return ctx.viewer.account_id


def _require_runs(ctx: core.ServiceContext) -> int:
    actor = _actor(ctx)
    if not runs_lectures(ctx.viewer):
        raise core.DomainError("FORBIDDEN", "Only maternal-care staff and administrators run lectures.")
    return actor


def _require_sees(ctx: core.ServiceContext) -> None:
    _actor(ctx)
    if not _sees_lectures(ctx.viewer):
        raise core.DomainError("FORBIDDEN", "You may not do this.")


# -- pure rules ------------------------------------------------------------------------------------------------


def zone_of(name: str | None, field: Sequence[str] = ("input", "timeZone")) -> ZoneInfo:
    """The IANA zone `name` (default Asia/Shanghai), or INVALID_INPUT (the registry's rule: an unknown name, or
    one of the wrong shape or length, which ZoneInfo would take to the file system)."""
    return registry.zone(name, field)


@dataclass(frozen=True)
class PregnancyDates:
    """What the audience rule reads of a pregnancy."""

    lmp: date
    status: str
    outcome_on: date | None

    @classmethod
    def of(cls, p: Pregnancy) -> PregnancyDates:
        return cls(p.lmp, p.status, p.outcome_on)


def stages_on(pregnancies: Iterable[PregnancyDates], on: date) -> set[str]:
    """The audiences a mother belongs to on the date `on`: `trimester_N` for an ongoing pregnancy (between its
    LMP and LONGEST_WEEKS), `postpartum` on days 0..41 after a delivery (POSTPARTUM_DAYS, the delivery day included)."""
    found: set[str] = set()
    for p in pregnancies:
        if p.status == "ongoing":
            age = gestation.age_on(p.lmp, on)
            if age is not None and age.weeks < gestation.LONGEST_WEEKS:
                found.add(f"trimester_{age.trimester}")
        elif p.status == "delivered" and p.outcome_on is not None and 0 <= (on - p.outcome_on).days < POSTPARTUM_DAYS:
            found.add("postpartum")
    return found


def fits(audience: Iterable[str], pregnancies: Iterable[PregnancyDates], starts_at: datetime, zone: ZoneInfo) -> bool:
    """Whether a mother with these pregnancies is in `audience` on the local date of `starts_at`."""
    return bool(set(audience) & stages_on(pregnancies, gestation.local_date(starts_at, zone)))


def zone_of_registration(registration: Registration) -> ZoneInfo:
    """The zone a registration was made in. It was validated then; a name the system no longer knows (a
    tzdata update, a row written by hand) falls back to the deployment's default rather than failing a job."""
    try:
        return ZoneInfo(registration.time_zone or DEFAULT_ZONE)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return ZoneInfo(DEFAULT_ZONE)


# -- lectures --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LectureInput:
    title: str
    speaker: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    audience: tuple[str, ...]
    online_url: str = ""
    place: str = ""
    description: str = ""


def _text(v: core.Validator, field: str, value: str, limit: int, *, required: bool = False) -> str:
    clean = value.strip()
    if required:
        v.check(bool(clean), ("input", field), "REQUIRED", "This is required.")
    v.check(len(clean) <= limit, ("input", field), "OUT_OF_RANGE", "At most {limit} characters.", limit=limit)
    return clean


def _validated(ctx: core.ServiceContext, data: LectureInput, *, registered: int = 0) -> LectureInput:
    v = core.Validator()
    title = _text(v, "title", data.title, MAX_TITLE, required=True)
    speaker = _text(v, "speaker", data.speaker, MAX_SPEAKER, required=True)
    url = _text(v, "onlineUrl", data.online_url, MAX_URL)
    place = _text(v, "place", data.place, MAX_PLACE)
    description = _text(v, "description", data.description, MAX_TEXT)
    if url and not url.startswith(("https://", "http://")):
        v.add(("input", "onlineUrl"), "INVALID_INPUT", "An online link starts with https:// or http://.")
    if not url and not place:
        v.add(("input", "place"), "REQUIRED", "A lecture has an online link or a place.")
    if data.starts_at.tzinfo is None or data.ends_at.tzinfo is None:
        v.add(("input", "startsAt"), "INVALID_INPUT", "Times carry their UTC offset.")
    elif data.ends_at <= data.starts_at:
        v.add(("input", "endsAt"), "MATERNAL_CARE_LECTURE_ENDS_BEFORE_START", "The lecture ends before it starts.")
    elif data.starts_at <= ctx.now():
        v.add(("input", "startsAt"), "OUT_OF_RANGE", "A lecture is scheduled ahead.")
    if not MIN_CAPACITY <= data.capacity <= MAX_CAPACITY:
        v.add(("input", "capacity"), "OUT_OF_RANGE", "Between {low} and {high}.", low=MIN_CAPACITY, high=MAX_CAPACITY)
    elif data.capacity < registered:
        v.add(
            ("input", "capacity"),
            "MATERNAL_CARE_CAPACITY_BELOW_REGISTERED",
            "{registered} seats are taken already.",
            registered=registered,
        )
    audience = tuple(dict.fromkeys(data.audience))
    unknown = [a for a in audience if a not in AUDIENCES]
    if not audience:
        v.add(("input", "audience"), "REQUIRED", "Name the audience (a trimester, postpartum).")
    elif unknown:
        v.add(("input", "audience"), "INVALID_INPUT", "Unknown audience {values}.", values=tuple(unknown))
    v.raise_if_any()
    return LectureInput(title, speaker, data.starts_at, data.ends_at, data.capacity, audience, url, place, description)


async def create_lecture(ctx: core.ServiceContext, data: LectureInput) -> Lecture:
    actor = _require_runs(ctx)
    clean = _validated(ctx, data)
    lecture = Lecture(
        title=clean.title,
        speaker=clean.speaker,
        description=clean.description,
        starts_at=clean.starts_at,
        ends_at=clean.ends_at,
        online_url=clean.online_url,
        place=clean.place,
        capacity=clean.capacity,
        audience=list(clean.audience),
        created_by_account_id=actor,
    )
    ctx.session.add(lecture)
    await _flush(ctx)
    return lecture


async def _lecture(ctx: core.ServiceContext, lecture_id: int, field: str = "lectureId", *, lock: bool) -> Lecture:
    stmt = select(Lecture).where(Lecture.id == lecture_id, lecture_scope(ctx))
    if lock:
        # NO KEY UPDATE: the same lock the seat counter's UPDATE takes; registrations' foreign keys (KEY SHARE)
        # are not blocked by it.
        stmt = stmt.with_for_update(key_share=True)  # FOR NO KEY UPDATE
        stmt = stmt.execution_options(populate_existing=True)
    lecture = (await ctx.session.execute(stmt)).scalar_one_or_none()
    if lecture is None:
        raise core.NotFound(_("Lecture"), ("input", field))
    return lecture


def _open(ctx: core.ServiceContext, lecture: Lecture, field: str = "lectureId") -> None:
    if lecture.status == "cancelled":
        raise core.DomainError("MATERNAL_CARE_LECTURE_CANCELLED", "The lecture is cancelled.", ("input", field))
    if lecture.starts_at <= ctx.now():
        raise core.DomainError("MATERNAL_CARE_LECTURE_STARTED", "The lecture has started.", ("input", field))


@dataclass(frozen=True)
class LectureChanges:
    """The fields to change (None: leave as it is)."""

    title: str | None = None
    speaker: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    capacity: int | None = None
    audience: tuple[str, ...] | None = None
    online_url: str | None = None
    place: str | None = None
    description: str | None = None

    def applied_to(self, lecture: Lecture) -> LectureInput:
        def given(value: object, current: object) -> object:
            return current if value is None else value

        return LectureInput(
            title=given(self.title, lecture.title),  # type: ignore[arg-type]
            speaker=given(self.speaker, lecture.speaker),  # type: ignore[arg-type]
            starts_at=given(self.starts_at, lecture.starts_at),  # type: ignore[arg-type]
            ends_at=given(self.ends_at, lecture.ends_at),  # type: ignore[arg-type]
            capacity=given(self.capacity, lecture.capacity),  # type: ignore[arg-type]
            audience=tuple(lecture.audience) if self.audience is None else self.audience,
            online_url=given(self.online_url, lecture.online_url),  # type: ignore[arg-type]
            place=given(self.place, lecture.place),  # type: ignore[arg-type]
            description=given(self.description, lecture.description),  # type: ignore[arg-type]
        )


async def update_lecture(ctx: core.ServiceContext, lecture_id: int, changes: LectureChanges) -> Lecture:
    """Change a lecture ahead: the fields given, merged into the lecture as it is under its lock (two edits of
    different fields never undo each other). Seated mothers are told of a new time or place, and of an edit
    that leaves them outside the audience (they keep the seat: see the module doc). A higher capacity promotes
    the waitlist's first into the new seats (each judged on the audience again, in her registration's zone); a
    capacity below the seats taken is refused."""
    _require_runs(ctx)
    lecture = await _lecture(ctx, lecture_id, "id", lock=True)
    _open(ctx, lecture, "id")
    clean = _validated(ctx, changes.applied_to(lecture), registered=lecture.registered_count)
    before = (lecture.starts_at, lecture.ends_at, lecture.online_url, lecture.place, tuple(lecture.audience))
    lecture.title, lecture.speaker, lecture.description = clean.title, clean.speaker, clean.description
    lecture.starts_at, lecture.ends_at = clean.starts_at, clean.ends_at
    lecture.online_url, lecture.place = clean.online_url, clean.place
    lecture.capacity, lecture.audience = clean.capacity, list(clean.audience)
    await _flush(ctx)
    await _tell_seated_of_change(ctx, lecture, before)
    await _promote(ctx, lecture.id)
    return await _lecture(ctx, lecture.id, "id", lock=True)


async def _tell_seated_of_change(
    ctx: core.ServiceContext, lecture: Lecture, before: tuple[datetime, datetime, str, str, tuple[str, ...]]
) -> None:
    """After an edit (the caller holds the lecture's lock): tell each seated mother of a new time or place, and
    any the edit leaves outside the audience (on the lecture's new date, in her zone). She keeps her seat."""
    starts_at, ends_at, online_url, place, audience = before
    moved = (starts_at, ends_at, online_url, place) != (
        lecture.starts_at,
        lecture.ends_at,
        lecture.online_url,
        lecture.place,
    )
    if not moved and set(audience) == set(lecture.audience):
        return
    seated = list(
        await ctx.session.scalars(
            select(Registration)
            .where(Registration.lecture_id == lecture.id, Registration.status == "registered")
            .order_by(Registration.id)
        )
    )
    pregnancies = await _pregnancies(ctx, sorted({r.mother_id for r in seated}))
    # One message per registration and edit: the key names the state she is told about, and when.
    state = "|".join(
        [
            lecture.starts_at.isoformat(),
            lecture.ends_at.isoformat(),
            lecture.online_url,
            lecture.place,
            *sorted(lecture.audience),
            ctx.now().isoformat(),
        ]
    )
    edit = hashlib.sha256(state.encode()).hexdigest()[:16]
    for registration in seated:
        zone = zone_of_registration(registration)
        mine = pregnancies[registration.mother_id]
        fits_now = fits(lecture.audience, mine, lecture.starts_at, zone)
        left_out = not fits_now and fits(audience, mine, starts_at, zone)
        if moved or left_out:
            await _tell(
                ctx,
                registration,
                lecture,
                "maternal_care.lecture_changed",
                f"changed:{edit}",
                outside_audience=not fits_now,
            )


async def cancel_lecture(ctx: core.ServiceContext, lecture_id: int, reason: str) -> Lecture:
    """Cancel a lecture ahead, with a reason; its registrations stay as they were (the record of who was
    coming), nobody registers any more."""
    _require_runs(ctx)
    v = core.Validator()
    clean = _text(v, "reason", reason, MAX_TEXT, required=True)
    v.raise_if_any()
    lecture = await _lecture(ctx, lecture_id, "id", lock=True)
    _open(ctx, lecture, "id")
    lecture.status, lecture.cancelled_at, lecture.cancel_reason = "cancelled", ctx.now(), clean
    await _flush(ctx)
    return lecture


# -- registrations ---------------------------------------------------------------------------------------------


async def _mother(ctx: core.ServiceContext, mother_id: int, field: str = "motherId") -> Mother:
    """A mother the caller registers (staff, administrators, her social worker); any other answers NOT_FOUND."""
    mother: Mother = await core.get_row(
        ctx, Mother, mother_id, what=_("Mother"), field=("input", field), scope=mother_scope(ctx)
    )
    return mother


async def _pregnancies(ctx: core.ServiceContext, mother_ids: Sequence[int]) -> dict[int, list[PregnancyDates]]:
    rows = await ctx.session.scalars(select(Pregnancy).where(Pregnancy.mother_id.in_(list(mother_ids))))
    found: dict[int, list[PregnancyDates]] = {pk: [] for pk in mother_ids}
    for p in rows:
        found[p.mother_id].append(PregnancyDates.of(p))
    return found


async def register(
    ctx: core.ServiceContext, lecture_id: int, mother_id: int, time_zone: str | None = None
) -> Registration:
    """Register a mother for a lecture: a seat while the database's CHECK allows one, else the waitlist (FIFO).
    `time_zone` is where she lives (default the deployment's): the registration keeps it (see the module doc)."""
    actor = _actor(ctx)
    zone = zone_of(time_zone)
    if not _sees_lectures(ctx.viewer):
        raise core.DomainError("FORBIDDEN", "You may not do this.")
    # The lecture's row lock orders arrivals (see the module doc); it is not what holds the capacity.
    lecture = await _lecture(ctx, lecture_id, lock=True)
    mother = await _mother(ctx, mother_id)
    _open(ctx, lecture)
    live = await ctx.session.scalar(
        select(Registration.id).where(
            Registration.lecture_id == lecture.id,
            Registration.mother_id == mother.id,
            Registration.status != "cancelled",
        )
    )
    if live is not None:
        raise core.DomainError(
            "MATERNAL_CARE_LECTURE_ALREADY_REGISTERED",
            "The mother is registered for this lecture already.",
            ("input", "motherId"),
        )
    pregnancies = (await _pregnancies(ctx, [mother.id]))[mother.id]
    if not fits(lecture.audience, pregnancies, lecture.starts_at, zone):
        raise core.DomainError(
            "MATERNAL_CARE_OUTSIDE_AUDIENCE",
            "On the lecture's date the mother is not in its audience.",
            ("input", "motherId"),
        )
    lecture_pk, mother_pk = lecture.id, mother.id
    where = zone.key  # her zone, kept: promotion, reminders and messages count her dates in it
    seat = Registration(
        lecture_id=lecture_pk,
        mother_id=mother_pk,
        status="registered",
        registered_by_account_id=actor,
        time_zone=where,
    )
    try:
        async with ctx.session.begin_nested():
            ctx.session.add(seat)
            await ctx.session.flush()
        return seat
    except DBAPIError as exc:
        if core.constraint_name(exc) != WITHIN_CAPACITY:
            error = core.domain_error_for(exc, CONSTRAINT_ERRORS)
            if error is None:
                raise
            raise error from exc
    # The CHECK refused the seat: the lecture is full. Join the waitlist (its place: this row's identity).
    waiting = Registration(
        lecture_id=lecture_pk, mother_id=mother_pk, status="waitlisted", registered_by_account_id=actor, time_zone=where
    )
    ctx.session.add(waiting)
    await _flush(ctx)
    return waiting


async def _registration(ctx: core.ServiceContext, registration_id: int) -> Registration:
    registration: Registration = await core.get_row(
        ctx,
        Registration,
        registration_id,
        what=_("Registration"),
        field=("input", "id"),
        scope=Registration.mother_id.in_(select(Mother.id).where(mother_scope(ctx))),
    )
    return registration


async def cancel_registration(ctx: core.ServiceContext, registration_id: int, reason: str = "") -> Registration:
    """Cancel a registration (a seat or a place on the waitlist) of a lecture ahead; a freed seat goes to the
    first waitlisted who still fits (the audience judged in her registration's zone) in the same transaction."""
    actor = _actor(ctx)
    if not _sees_lectures(ctx.viewer):  # as `register`: FORBIDDEN before any lookup, never NOT_FOUND
        raise core.DomainError("FORBIDDEN", "You may not do this.")
    v = core.Validator()
    clean = _text(v, "reason", reason, MAX_TEXT)
    v.raise_if_any()
    found = await _registration(ctx, registration_id)
    # Lock order: the lecture, then its registrations (as `register` and the promotion take them).
    lecture = await _lecture(ctx, found.lecture_id, "id", lock=True)
    registration = await core.get_row(ctx, Registration, found.id, what=_("Registration"), lock=True)
    if lecture.starts_at <= ctx.now():
        raise core.DomainError("MATERNAL_CARE_LECTURE_STARTED", "The lecture has started.", ("input", "id"))
    if registration.status == "cancelled":
        raise core.DomainError("INVALID_TRANSITION", "The registration is cancelled already.", ("input", "id"))
    registration.status, registration.cancelled_at = "cancelled", ctx.now()
    registration.cancelled_by_account_id, registration.cancel_reason = actor, clean
    await _flush(ctx)
    if lecture.status == "scheduled":
        await _promote(ctx, lecture.id)
    return registration


async def _promote(ctx: core.ServiceContext, lecture_id: int) -> list[Registration]:
    """Fill the lecture's free seats from the head of its waitlist (the caller holds the lecture's lock),
    judging each on the audience as the lecture and her records are now, on the lecture's date in her
    registration's zone (not the caller's): one who no longer fits is cancelled (OUTSIDE_AUDIENCE_REASON,
    told) and the next in line considered."""
    lecture = await _lecture(ctx, lecture_id, lock=True)
    free = lecture.capacity - lecture.registered_count
    promoted: list[Registration] = []
    while free > 0:
        # A batch of the head of the line (those passed over leave it, so the next batch starts after them).
        waiting = list(
            await ctx.session.scalars(
                select(Registration)
                .where(Registration.lecture_id == lecture_id, Registration.status == "waitlisted")
                .order_by(Registration.id)
                .limit(free)
                .with_for_update()
            )
        )
        if not waiting:
            break
        pregnancies = await _pregnancies(ctx, sorted({r.mother_id for r in waiting}))
        now = ctx.now()
        for registration in waiting:
            zone = zone_of_registration(registration)
            if not fits(lecture.audience, pregnancies[registration.mother_id], lecture.starts_at, zone):
                registration.status, registration.cancelled_at = "cancelled", now
                registration.cancelled_by_account_id = ctx.viewer.account_id
                registration.cancel_reason = OUTSIDE_AUDIENCE_REASON
                await _flush(ctx)
                kind = "maternal_care.lecture_waitlist_cancelled"
                await _tell(ctx, registration, lecture, kind, "waitlist_cancelled")
                continue
            registration.status, registration.promoted_at = "registered", now
            # One at a time: the counter's CHECK judges each seat (it would refuse one too many).
            await _flush(ctx)
            await _tell(ctx, registration, lecture, "maternal_care.lecture_promoted", "promoted")
            promoted.append(registration)
            free -= 1
    return promoted


async def _tell(
    ctx: core.ServiceContext,
    registration: Registration,
    lecture: Lecture,
    kind: str,
    what: str,
    **extra: object,
) -> bool:
    """Queue a message to the mother (her phone), or to her social worker when no phone is recorded; once per
    registration and `what` (`dedupe_key`). Times are hers: the start with her zone's offset and its local
    date (her registration's zone, not the deployment's)."""
    row = (
        await ctx.session.execute(
            select(Resident.name, Resident.phone, Mother.social_worker_account_id)
            .join(Mother, Mother.resident_id == Resident.id)
            .where(Mother.id == registration.mother_id)
        )
    ).one_or_none()
    if row is None:
        return False
    name, phone, social_worker = row
    if phone:
        recipient = core.Recipient.person(name, phone)
    elif social_worker is not None:
        recipient = core.Recipient.account(social_worker)
    else:
        return False
    return await core.notify(
        ctx,
        kind,
        recipient,
        # No health detail beyond what the lecture's own title says (and, for a change, whether it left her
        # outside its audience -- told to her or her social worker only): the outbox is stored in clear.
        {
            "lecture": lecture.id,
            "registration": registration.id,
            "title": lecture.title,
            **_local_times(lecture, zone_of_registration(registration)),
            **extra,
        },
        source="maternal_care",
        dedupe_key=f"maternal_care.lecture_{what}:{registration.id}",
    )


def _local_times(lecture: Lecture, zone: ZoneInfo) -> dict[str, str]:
    starts, ends = lecture.starts_at.astimezone(zone), lecture.ends_at.astimezone(zone)
    return {
        "starts_at": starts.isoformat(),
        "ends_at": ends.isoformat(),
        "local_date": starts.date().isoformat(),
        "time_zone": zone.key,
    }


async def record_attendance(ctx: core.ServiceContext, registration_id: int, attendance: str) -> Registration:
    """Whether a mother with a seat came, once the lecture has started (and may be corrected)."""
    actor = _require_runs(ctx)
    if attendance not in ATTENDANCE:
        raise core.DomainError("INVALID_INPUT", "Present or absent.", ("input", "attendance"))
    found = await _registration(ctx, registration_id)
    lecture = await _lecture(ctx, found.lecture_id, "id", lock=False)
    registration = await core.get_row(ctx, Registration, found.id, what=_("Registration"), lock=True)
    if lecture.status == "cancelled":
        raise core.DomainError("MATERNAL_CARE_LECTURE_CANCELLED", "The lecture is cancelled.", ("input", "id"))
    if lecture.starts_at > ctx.now():
        raise core.DomainError(
            "MATERNAL_CARE_LECTURE_NOT_STARTED", "Attendance is recorded once the lecture has started.", ("input", "id")
        )
    if registration.status != "registered":
        raise core.DomainError("INVALID_TRANSITION", "Only a mother with a seat attends.", ("input", "id"))
    registration.attendance = attendance
    registration.attendance_recorded_at, registration.attendance_recorded_by_account_id = ctx.now(), actor
    await _flush(ctx)
    return registration


# -- reminders (a scheduled job) -------------------------------------------------------------------------------


async def queue_reminders(ctx: core.ServiceContext, lead: timedelta = REMINDER_LEAD) -> int:
    """Queue a reminder for every seat of a lecture starting within `lead`; once per registration however
    often this runs (dedupe_key). The lead is an interval (24 hours before the instant it starts, wherever she
    is); what she is told -- the start, its date -- is in her registration's zone. Returns how many were
    queued now."""
    now = ctx.now()
    rows = await ctx.session.execute(
        select(Registration, Lecture)
        .join(Lecture, Lecture.id == Registration.lecture_id)
        .where(
            Registration.status == "registered",
            Lecture.status == "scheduled",
            Lecture.starts_at > now,
            Lecture.starts_at <= now + lead,
        )
        .order_by(Registration.id)
    )
    queued = 0
    for registration, lecture in rows.all():
        queued += await _tell(ctx, registration, lecture, "maternal_care.lecture_reminder", "reminder")
    return queued


async def reminders_job(ctx: core.ServiceContext) -> None:
    """`core.Job("maternal_care.lecture_reminders", …)`: per organisation that enabled the plugin, acting for it."""
    await queue_reminders(ctx)


REMINDERS_JOB = core.Job(
    "maternal_care.lecture_reminders",
    timedelta(minutes=15),
    reminders_job,
    "Queue reminders for the lectures starting within the next 24 hours (once per registration).",
)


# -- reading ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LectureFilter:
    upcoming_only: bool = False
    include_cancelled: bool = True


async def list_lectures(
    ctx: core.ServiceContext, f: LectureFilter = LectureFilter(), *, first: int = 50, after: str | None = None
) -> core.Page[Lecture]:
    """The organisation's lectures by start."""
    _require_sees(ctx)
    stmt = select(Lecture).where(lecture_scope(ctx))
    if f.upcoming_only:
        stmt = stmt.where(Lecture.starts_at > ctx.now())
    if not f.include_cancelled:
        stmt = stmt.where(Lecture.status == "scheduled")
    return await core.paginate(ctx, stmt, NEWEST_FIRST, first=first, after=after)


async def lectures_by_id(ctx: core.ServiceContext, pks: Sequence[int]) -> dict[int, Lecture]:
    """node(id:): the lectures the caller sees; others are absent."""
    if ctx.viewer.role is None or not _sees_lectures(ctx.viewer) or not pks:
        return {}
    rows = await ctx.session.scalars(select(Lecture).where(Lecture.id.in_(list(pks)), lecture_scope(ctx)))
    return {lec.id: lec for lec in rows}


async def registrations_by_id(ctx: core.ServiceContext, pks: Sequence[int]) -> dict[int, Registration]:
    """node(id:): registrations of the mothers the caller serves; others are absent."""
    if ctx.viewer.role is None or not pks:
        return {}
    rows = await ctx.session.scalars(
        select(Registration).where(
            Registration.id.in_(list(pks)),
            Registration.mother_id.in_(select(Mother.id).where(mother_scope(ctx))),
        )
    )
    return {r.id: r for r in rows}


async def lecture_registrations(
    ctx: core.ServiceContext,
    lecture_id: int,
    statuses: Sequence[str] = (),
    *,
    first: int = 50,
    after: str | None = None,
) -> core.Page[Registration]:
    """A lecture's registrations in arrival order (the waitlist's order): all for staff and administrators,
    her own mothers' for a social worker."""
    _require_sees(ctx)
    stmt = select(Registration).where(
        Registration.lecture_id == lecture_id,
        Registration.mother_id.in_(select(Mother.id).where(mother_scope(ctx))),
    )
    if statuses:
        stmt = stmt.where(Registration.status.in_(list(statuses)))
    return await core.paginate(ctx, stmt, REGISTRATIONS_IN_ORDER, first=first, after=after)


async def lectures_registrations(
    ctx: core.ServiceContext, keys: Sequence[tuple[int, tuple[str, ...], int]]
) -> list[core.Page[Registration]]:
    """`lecture_registrations` for many lectures at once -- a page of lectures each showing its first
    registrations costs one statement, not one per lecture: each key is (lecture, statuses, first), the first
    page (no cursor) of that lecture's registrations in arrival order, those of the mothers the caller serves."""
    _require_sees(ctx)
    pages: dict[tuple[int, tuple[str, ...], int], core.Page[Registration]] = {}
    groups: dict[tuple[tuple[str, ...], int], list[int]] = {}
    for lecture_id, statuses, first in keys:
        groups.setdefault((statuses, first), []).append(lecture_id)
    for (statuses, first), lecture_ids in groups.items():
        served = Registration.mother_id.in_(select(Mother.id).where(mother_scope(ctx)))
        chosen = [Registration.lecture_id.in_(lecture_ids), served]
        if statuses:
            chosen.append(Registration.status.in_(list(statuses)))
        ranked = (
            select(
                Registration,
                func.row_number().over(partition_by=Registration.lecture_id, order_by=Registration.id).label("n"),
            )
            .where(*chosen)
            .subquery()
        )
        row = aliased(Registration, ranked)
        found: dict[int, list[Registration]] = {pk: [] for pk in lecture_ids}
        for registration in await ctx.session.scalars(
            select(row).where(ranked.c.n <= first + 1).order_by(ranked.c.lecture_id, ranked.c.id)
        ):
            found[registration.lecture_id].append(registration)
        for lecture_id, rows in found.items():
            # The same page `lecture_registrations` answers (totalCount counts the one lecture, when asked).
            filtered = select(Registration).where(Registration.lecture_id == lecture_id, served)
            if statuses:
                filtered = filtered.where(Registration.status.in_(list(statuses)))
            pages[(lecture_id, statuses, first)] = core.Page(
                items=rows[:first],
                cursor=REGISTRATIONS_IN_ORDER.cursor,
                has_next_page=len(rows) > first,
                has_previous_page=False,
                filtered=filtered,
                ctx=ctx,
            )
    return [pages[key] for key in keys]


async def mother_registrations(
    ctx: core.ServiceContext, mother_id: int, *, first: int = 50, after: str | None = None
) -> core.Page[Registration]:
    """A mother's registrations, newest first (NOT_FOUND for a mother the caller does not serve)."""
    _actor(ctx)
    mother = await _mother(ctx, mother_id)
    stmt = select(Registration).where(Registration.mother_id == mother.id)
    return await core.paginate(ctx, stmt, REGISTRATIONS_NEWEST, first=first, after=after)


async def waitlist_positions(ctx: core.ServiceContext, pks: Sequence[int]) -> list[int | None]:
    """Each registration's place on its lecture's waitlist (1 = next), None when it is not waitlisted."""
    if not pks:
        return []
    mine = (
        select(Registration.id, Registration.lecture_id)
        .where(Registration.id.in_(list(pks)), Registration.status == "waitlisted")
        .subquery()
    )
    ahead = (
        select(mine.c.id, func.count(Registration.id))
        .join(
            Registration,
            and_(
                Registration.lecture_id == mine.c.lecture_id,
                Registration.status == "waitlisted",
                Registration.id <= mine.c.id,
            ),
        )
        .group_by(mine.c.id)
    )
    found = {pk: int(n) for pk, n in (await ctx.session.execute(ahead)).all()}
    return [found.get(pk) for pk in pks]


async def registrations_fit(ctx: core.ServiceContext, pks: Sequence[int]) -> list[bool]:
    """Whether each registration's mother fits its lecture's audience as the lecture is now (its current start
    and audience), on its date in her registration's zone: what promotion would judge, and what an edit may
    have changed under a seat (see the module doc). For registrations the caller was shown."""
    if not pks:
        return []
    rows = (
        await ctx.session.execute(
            select(Registration, Lecture.starts_at, Lecture.audience)
            .join(Lecture, Lecture.id == Registration.lecture_id)
            .where(Registration.id.in_(list(pks)))
        )
    ).all()
    pregnancies = await _pregnancies(ctx, sorted({r.mother_id for r, _, _ in rows}))
    found = {
        r.id: fits(audience, pregnancies[r.mother_id], starts_at, zone_of_registration(r))
        for r, starts_at, audience in rows
    }
    return [found.get(pk, True) for pk in pks]


async def lectures_outside_audience(ctx: core.ServiceContext, pks: Sequence[int]) -> list[list[int]]:
    """For each lecture, the mothers holding a seat who no longer fit its audience on its date (each in her
    registration's zone) -- of the mothers the caller serves only (who is on a lecture is hers to see)."""
    if not pks or ctx.viewer.role is None:
        return [[] for _ in pks]
    rows = (
        await ctx.session.execute(
            select(Registration, Lecture.starts_at, Lecture.audience)
            .join(Lecture, Lecture.id == Registration.lecture_id)
            .where(
                Registration.lecture_id.in_(list(pks)),
                Registration.status == "registered",
                Registration.mother_id.in_(select(Mother.id).where(mother_scope(ctx))),
            )
            .order_by(Registration.id)
        )
    ).all()
    pregnancies = await _pregnancies(ctx, sorted({r.mother_id for r, _, _ in rows}))
    found: dict[int, list[int]] = {pk: [] for pk in pks}
    for r, starts_at, audience in rows:
        if not fits(audience, pregnancies[r.mother_id], starts_at, zone_of_registration(r)):
            found[r.lecture_id].append(r.mother_id)
    return [found[pk] for pk in pks]


async def lecture_counts(ctx: core.ServiceContext, pks: Sequence[int]) -> list[int]:
    """Each lecture's waitlist length (seats taken: `registered_count`)."""
    rows = await ctx.session.execute(
        select(Registration.lecture_id, func.count())
        .where(Registration.lecture_id.in_(list(pks)), Registration.status == "waitlisted")
        .group_by(Registration.lecture_id)
    )
    found = {pk: int(n) for pk, n in rows.all()}
    return [found.get(pk, 0) for pk in pks]


async def recommendations(
    ctx: core.ServiceContext,
    mother_id: int,
    time_zone: str | None = None,
    *,
    first: int = 10,
    default_zone: str | None = None,
) -> list[Lecture]:
    """The upcoming lectures (scheduled, not started, within RECOMMENDATION_HORIZON) whose audience fits the
    mother on each lecture's own date, leaving out those she is registered or waitlisted for already. Full
    lectures stay in (she would join the waitlist; `seatsLeft` says so), soonest first. Dates are counted in
    `time_zone`; when none is named, in the zone of her latest registration (where she said she lives), else
    `default_zone` (the deployment's)."""
    _actor(ctx)
    zone_of(time_zone, ("timeZone",))  # an unknown name is refused before any lookup
    if not 1 <= first <= 50:
        raise core.DomainError("OUT_OF_RANGE", "Between {low} and {high}.", ("first",), low=1, high=50)
    mother = await core.get_row(ctx, Mother, mother_id, what=_("Mother"), field=("motherId",), scope=mother_scope(ctx))
    if time_zone:
        zone = zone_of(time_zone, ("timeZone",))
    else:
        latest = await ctx.session.scalar(
            select(Registration).where(Registration.mother_id == mother.id).order_by(Registration.id.desc()).limit(1)
        )
        zone = zone_of_registration(latest) if latest is not None else zone_of(default_zone, ("timeZone",))
    pregnancies = (await _pregnancies(ctx, [mother.id]))[mother.id]
    if not pregnancies:
        return []
    now = ctx.now()
    taken = select(Registration.lecture_id).where(
        Registration.mother_id == mother.id, Registration.status != "cancelled"
    )
    candidates = await ctx.session.scalars(
        select(Lecture)
        .where(
            Lecture.status == "scheduled",
            lecture_scope(ctx),
            Lecture.starts_at > now,
            Lecture.starts_at <= now + RECOMMENDATION_HORIZON,
            Lecture.id.not_in(taken),
        )
        .order_by(Lecture.starts_at, Lecture.id)
        .limit(RECOMMENDATION_SCAN)
    )
    return [lec for lec in candidates if fits(lec.audience, pregnancies, lec.starts_at, zone)][:first]


async def _flush(ctx: core.ServiceContext) -> None:
    await core.flush(ctx, CONSTRAINT_ERRORS)
