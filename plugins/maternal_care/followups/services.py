"""Follow-ups from the national schedule (国家基本公共卫生服务规范, 孕产妇健康管理): generated from data, booked on
core's shared calendar, closed with an outcome; an abnormal finding is referred on and re-checked.

The schedule is data: `maternal_care_followup_rules()` (migration m003) gives each rule's code, label, anchor
(the LMP, the delivery, the discharge, or an abnormal finding) and window (inclusive day offsets from the
anchor). Nothing here restates it: generation is one INSERT ... SELECT from that function.

Anchors -- which date each window is counted from:
- The LMP (prenatal checks). A pregnancy registered: its prenatal items whose window has not fully passed
  (today, where the mother lives) are generated. Generation is idempotent: one item per pregnancy and rule (a
  unique index), so a second run (after a dating correction) only adds what is missing.
- The dating corrected: the open and booked prenatal items move with the LMP. A booked item keeps its
  appointment (the mother was told a date; moving it silently is worse than asking): it is flagged
  `rebook_needed` when the appointment's date now falls outside the new window, and booking it again
  (`book`) moves the appointment and clears the flag. Rules that come into reach (an earlier window no
  longer passed) are generated.
- The delivery (the day-42 check) and the discharge (the home visit within 7 days). A delivery recorded: its
  postpartum items are generated, all of them, passed windows included; the home visit from the discharge,
  or from the delivery when no discharge is known yet (the earlier date is the safer one). The pregnancy's
  open prenatal items are closed (missed when their window ended before the delivery, else not needed; a
  booked one's appointment is cancelled: the time is freed; one whose appointment has started stays). A
  loss closes them too and generates nothing.
- The discharge recorded later (`discharge_recorded`, from the registry's `record_discharge`): the open
  discharge-anchored items move to the discharge day's window, as a dating correction moves the LMP-anchored
  ones -- except that a booking outside the new window is not kept: the visit was booked against a window
  that was only a guess, so its appointment is cancelled (core's public cancel) and the item is open again
  to book. A booking still inside the new window stays; one whose appointment has started, and a closed
  item, stay as they are.
- An abnormal finding (its re-check): the day of the examination, not the day the result is entered. A
  result carries `examined_on` (default: the booked appointment's local date if booked, else today in the
  caller's zone), refused (OUT_OF_RANGE, nothing written) in the future, before the item's window opened, or
  before the booked appointment's date. The item is closed on that day and the re-check's window is that day
  plus the `recheck` rule's offsets (due within 14 days). A miss is dated the same way (`missed_on`).

An outcome: normal or abnormal, with a note. Abnormal needs a referral (core's public referral service) under
a consent of the mother that covers sharing a summary and health details with its recipient (the consent
named, or the newest covering one): none is CONSENT_REQUIRED and nothing is written. The database holds the
referral and the single re-check (ck_maternal_care_followups_abnormal_referred,
uq_maternal_care_followups_finding).

Who sees what: follow-ups are health details, read under the registry's scope for a pregnancy
(`registry.pregnancy_scope`): the mother's social worker, maternal-care staff and administrators of her
organisation, and the staff member named responsible for that pregnancy (any social worker or counselor: a
counselor named responsible reads its follow-ups without the manage permission, and nothing of the mother's
other pregnancies). Anyone else gets NOT_FOUND / null / nothing listed; a role that can hold no maternal-care
relation at all (volunteers, community heads, partners) is FORBIDDEN on the list. Reads are audited by the
resolvers (`MaternalCareFollowUp`, field by field). Writes (booking, outcomes, misses) and the
organisation-wide overdue list need `maternal_care.manage` as well.

Locks, in this order: the pregnancy, the item, the staff record (core's calendar), the appointment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.sql.elements import ColumnElement

import core
from core.i18n import _
from core.models import Account, AccountPluginRole, Appointment
from plugins.maternal_care import gestation
from plugins.maternal_care.followups.models import OUTCOMES, STATUSES, FollowUp
from plugins.maternal_care.models import Mother, Pregnancy
from plugins.maternal_care.registry import services as registry

KIND = "maternal_care.followup"
MIN_MINUTES, MAX_MINUTES = 10, 240
HORIZON_DAYS = 366  # a booking further ahead is a typo, not a plan (as casework's visits)
MAX_NOTE = 500
OPEN = ("open", "booked")
# What an abnormal finding's referral shares: the summary (core's minimum) and health details.
REFERRAL_SCOPES = ("summary", "health")
ERROR_CODES: dict[str, str] = {}

CONSTRAINT_ERRORS: dict[str, tuple[str, str, tuple[str, ...] | None]] = {
    **registry.CONSTRAINT_ERRORS,
    "maternal_care_followup_closed": (
        "INVALID_TRANSITION",
        "The follow-up is closed already.",
        ("input", "id"),
    ),
}


@dataclass(frozen=True)
class Rule:
    code: str
    label: str
    anchor: str
    start_day: int
    end_day: int
    order: int


@dataclass(frozen=True)
class ReferralRequest:
    """Where an abnormal finding is referred: a plugin's service of an organisation, or an outside body."""

    summary: str
    target_plugin: str | None = None
    target_organization_id: int | None = None
    target_outside: str | None = None
    consent_id: int | None = None


# -- rules -------------------------------------------------------------------------------------------------------


async def rules(ctx: core.ServiceContext) -> dict[str, Rule]:
    """The schedule, read from the database (remembered for the request)."""
    key = ("maternal_care.followup_rules",)
    cached = ctx.memo.get(key)  # type: ignore[call-overload]
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    rows = await ctx.session.execute(
        text("SELECT code, label, anchor, start_day, end_day, ord FROM maternal_care_followup_rules() ORDER BY ord")
    )
    found = {r.code: Rule(r.code, r.label, r.anchor, r.start_day, r.end_day, r.ord) for r in rows}
    ctx.memo[key] = found  # type: ignore[index]
    return found


# One INSERT ... SELECT from the schedule: the rules of `anchors` (from the anchor date) whose window has not
# fully passed on `today` (None: every one); existing items stay (idempotent).
_GENERATE = text(
    """
    INSERT INTO maternal_care_followups (pregnancy_id, rule_code, window_start, window_end, organization_id)
    SELECT CAST(:pregnancy_id AS bigint), r.code, CAST(:anchor_on AS date) + r.start_day,
        CAST(:anchor_on AS date) + r.end_day, CAST(:organization_id AS bigint)
    FROM maternal_care_followup_rules() r
    WHERE r.anchor = ANY(CAST(:anchors AS text[]))
        AND (CAST(:today AS date) IS NULL OR CAST(:anchor_on AS date) + r.end_day >= CAST(:today AS date))
    ON CONFLICT (pregnancy_id, rule_code) WHERE finding_id IS NULL DO NOTHING
    """
)


async def _generate(
    ctx: core.ServiceContext, pregnancy: Pregnancy, anchors: Sequence[str], anchor_on: date, today: date | None
) -> None:
    await ctx.session.execute(
        _GENERATE,
        {
            "pregnancy_id": pregnancy.id,
            "anchor_on": anchor_on,
            "anchors": list(anchors),
            "today": today,
            "organization_id": pregnancy.organization_id,
        },
    )


# -- called by the registry (in its transaction, the pregnancy locked) --------------------------------------------


async def pregnancy_registered(ctx: core.ServiceContext, pregnancy: Pregnancy, today: date) -> None:
    """The prenatal items of a new pregnancy whose window has not fully passed on `today`."""
    await _generate(ctx, pregnancy, ["lmp"], pregnancy.lmp, today)


async def dating_corrected(ctx: core.ServiceContext, pregnancy: Pregnancy, today: date, time_zone: str | None) -> None:
    """Move the open and booked prenatal items with the new LMP; flag a booking now outside its window; add
    the prenatal items that came into reach."""
    schedule = await rules(ctx)
    zone = registry.zone(time_zone)
    items = (
        await ctx.session.scalars(
            select(FollowUp)
            .where(FollowUp.pregnancy_id == pregnancy.id, FollowUp.status.in_(OPEN), FollowUp.finding_id.is_(None))
            .order_by(FollowUp.id)
            .with_for_update()
        )
    ).all()
    for item in items:
        rule = schedule[item.rule_code]
        if rule.anchor != "lmp":
            continue
        item.window_start = pregnancy.lmp + timedelta(days=rule.start_day)
        item.window_end = pregnancy.lmp + timedelta(days=rule.end_day)
        if item.appointment_id is not None:
            day = gestation.local_date((await _appointment(ctx, item.appointment_id)).during.lower, zone)
            item.rebook_needed = not item.window_start <= day <= item.window_end
        item.updated_at = ctx.now()
    await _flush(ctx)
    await _generate(ctx, pregnancy, ["lmp"], pregnancy.lmp, today)


async def outcome_recorded(ctx: core.ServiceContext, pregnancy: Pregnancy) -> None:
    """A delivery: its postpartum items, the open prenatal ones closed. A loss: those closed. A prenatal item
    whose window ended before the outcome was missed (closed on its window's end: an outcome recorded late does
    not make a visit nobody made "not needed"); a later one is not needed. A booked one whose appointment has
    started stays booked: it took place (or she did not come), and its result is still recorded.
    Every postpartum item is generated, even one whose window has passed (a delivery recorded late): a home
    visit nobody made is what the overdue list is for."""
    schedule = await rules(ctx)
    items = (
        await ctx.session.scalars(
            select(FollowUp)
            .where(FollowUp.pregnancy_id == pregnancy.id, FollowUp.status.in_(OPEN))
            .order_by(FollowUp.id)
            .with_for_update()
        )
    ).all()
    for item in items:
        if schedule[item.rule_code].anchor != "lmp":
            continue
        if item.appointment_id is not None:
            if (await _appointment(ctx, item.appointment_id)).during.lower <= ctx.now():
                continue
            await core.cancel_appointment(ctx, item.appointment_id, "pregnancy ended")
        if pregnancy.outcome_on is not None and item.window_end < pregnancy.outcome_on:
            item.status, item.closed_on = "missed", item.window_end
        else:
            item.status = "not_needed"
        item.updated_at = ctx.now()
    await _flush(ctx)
    if pregnancy.status == "delivered" and pregnancy.outcome_on is not None:
        await _generate(ctx, pregnancy, ["delivery"], pregnancy.outcome_on, None)
        await _generate(ctx, pregnancy, ["discharge"], pregnancy.discharged_on or pregnancy.outcome_on, None)


async def discharge_recorded(ctx: core.ServiceContext, pregnancy: Pregnancy, time_zone: str | None) -> None:
    """The discharge became known after the delivery: the open discharge-anchored items (the home visit, dated
    from the delivery until now) move to the discharge day's window. A booking whose appointment has started
    stays as it is (the visit took place, or she was not in); one not yet started keeps its booking while its
    date (in `time_zone`) is inside the new window, otherwise its appointment is cancelled and the item is
    open again (booked against a guessed window: rebooking is the staff's call, not a silent move)."""
    assert pregnancy.discharged_on is not None
    schedule = await rules(ctx)
    zone = registry.zone(time_zone)
    items = (
        await ctx.session.scalars(
            select(FollowUp)
            .where(FollowUp.pregnancy_id == pregnancy.id, FollowUp.status.in_(OPEN), FollowUp.finding_id.is_(None))
            .order_by(FollowUp.id)
            .with_for_update()
        )
    ).all()
    for item in items:
        rule = schedule[item.rule_code]
        if rule.anchor != "discharge":
            continue
        start = pregnancy.discharged_on + timedelta(days=rule.start_day)
        end = pregnancy.discharged_on + timedelta(days=rule.end_day)
        if item.appointment_id is not None:
            appointment = await _appointment(ctx, item.appointment_id)
            if appointment.during.lower <= ctx.now():
                continue
            if not start <= gestation.local_date(appointment.during.lower, zone) <= end:
                if appointment.status == "active":
                    await core.cancel_appointment(ctx, item.appointment_id, "discharge recorded: outside the window")
                item.status, item.appointment_id, item.staff_account_id = "open", None, None
            item.rebook_needed = False
        item.window_start, item.window_end, item.updated_at = start, end, ctx.now()
    await _flush(ctx)
    # (Idempotent: only a missing item is added, e.g. none was generated.)
    await _generate(ctx, pregnancy, ["discharge"], pregnancy.discharged_on, None)


# -- scope and loading -------------------------------------------------------------------------------------------


def _may_read(ctx: core.ServiceContext) -> None:
    """Reads follow the pregnancy, not the manage permission: whoever can be named responsible for one (or
    serves mothers) asks, and finds what `pregnancy_scope` gives them; a role that never can (a volunteer, a
    community head, a partner) is FORBIDDEN, as on the high-risk list."""
    viewer = ctx.viewer
    if not (
        core.can(viewer, registry.MANAGE) or viewer.role in registry.RESPONSIBLE_ROLES or registry.is_staff(viewer)
    ):
        core.require(ctx, registry.MANAGE)


def followup_scope(ctx: core.ServiceContext) -> ColumnElement[bool]:
    """The registry's rule for health details: the items of the pregnancies the caller may address."""
    return FollowUp.pregnancy_id.in_(select(Pregnancy.id).where(registry.pregnancy_scope(ctx)))


async def _flush(ctx: core.ServiceContext) -> None:
    await core.flush(ctx, CONSTRAINT_ERRORS)


async def _appointment(ctx: core.ServiceContext, appointment_id: int) -> Appointment:
    found: Appointment = await core.get_row(ctx, Appointment, appointment_id, what=_("Appointment"))
    return found


async def _item(ctx: core.ServiceContext, followup_id: int) -> tuple[FollowUp, Pregnancy]:
    """An item the caller may address and its pregnancy, both locked (pregnancy first), or NOT_FOUND."""
    core.require(ctx, registry.MANAGE)
    found: FollowUp = await core.get_row(
        ctx, FollowUp, followup_id, what=_("Follow-up"), field=("input", "id"), scope=followup_scope(ctx)
    )
    pregnancy: Pregnancy = await core.get_row(ctx, Pregnancy, found.pregnancy_id, what=_("Pregnancy"), lock=True)
    item: FollowUp = await core.get_row(ctx, FollowUp, followup_id, what=_("Follow-up"), lock=True)
    return item, pregnancy


def _still_open(item: FollowUp) -> None:
    if item.status not in OPEN:
        raise core.DomainError("INVALID_TRANSITION", "The follow-up is closed already.", ("input", "id"))


def _window_opened(item: FollowUp, today: date) -> None:
    """Nothing is recorded (done or missed) for an item whose window has not opened (in the caller's zone)."""
    if today < item.window_start:
        raise core.DomainError("OUT_OF_RANGE", "The follow-up's window has not opened yet.", ("input", "id"))


async def _closing_day(
    ctx: core.ServiceContext, item: FollowUp, given: date | None, today: date, time_zone: str | None, field: str
) -> date:
    """The day an item was examined (or missed): `given`, else the booked appointment's date (where the caller
    says), else today. Not in the future, not before the window opened, not before the booked appointment's
    date (OUT_OF_RANGE): the re-check is counted from it, so the day the result is typed in must not stand
    in for it."""
    booked_on = None
    if item.status == "booked" and item.appointment_id is not None:
        booked_on = gestation.local_date(
            (await _appointment(ctx, item.appointment_id)).during.lower, registry.zone(time_zone)
        )
    day = given if given is not None else (booked_on or today)
    where = ("input", field)
    if day > today:
        raise core.DomainError("OUT_OF_RANGE", "The day cannot be in the future.", where)
    if day < item.window_start:
        raise core.DomainError("OUT_OF_RANGE", "The follow-up's window has not opened then.", where)
    if booked_on is not None and day < booked_on:
        raise core.DomainError("OUT_OF_RANGE", "The day is before the booked appointment.", where)
    return day


def _note(v: core.Validator, note: str, field: str = "note") -> str:
    clean = (note or "").strip()
    v.check(len(clean) <= MAX_NOTE, ("input", field), "OUT_OF_RANGE", "At most {n} characters.", n=MAX_NOTE)
    return clean


async def _staff_record(ctx: core.ServiceContext, account_id: int, pregnancy: Pregnancy) -> int:
    """The calendar (staff record) of an active account of the mother's organisation who may see her follow-ups
    (the registry's rule for health details: her social worker, maternal-care staff, administrators, and the
    pregnancy's named responsible) -- booking someone who cannot open the item would hand them a visit they
    cannot see, or show them a mother they must not: INVALID_INPUT. NOT_FOUND for another organisation's
    account; OUTSIDE_AVAILABILITY for one without a calendar (as casework's visits)."""
    field = ("input", "staffId")
    organization_id = pregnancy.organization_id
    account: Account = await core.get_row(
        ctx, Account, account_id, what=_("Account"), field=field, scope=Account.organization_id == organization_id
    )
    mother: Mother = await core.get_row(ctx, Mother, pregnancy.mother_id, what=_("Mother"))
    sees_her = (
        account.role in registry.ADMIN_ROLES
        or mother.social_worker_account_id == account_id
        or pregnancy.responsible_account_id == account_id
        or (
            await ctx.session.scalar(
                select(AccountPluginRole.account_id).where(
                    AccountPluginRole.account_id == account_id, AccountPluginRole.role == registry.STAFF_ROLE
                )
            )
            is not None
        )
    )
    if not account.is_active or not sees_her:
        raise core.DomainError("INVALID_INPUT", "Name an active staff member who serves the mother.", field)
    if account.volunteer_id is None:
        raise core.DomainError("OUTSIDE_AVAILABILITY", "This person has no calendar to book.", field)
    return account.volunteer_id


# -- booking -----------------------------------------------------------------------------------------------------


async def book(
    ctx: core.ServiceContext,
    followup_id: int,
    *,
    start: datetime,
    minutes: int,
    staff_account_id: int | None = None,
    time_zone: str | None = None,
) -> FollowUp:
    """Book an open item on a staff member's calendar (default: the caller's), or move a booked one (which
    clears `rebook_needed`). Not before its window opens (OUT_OF_RANGE; after it closes is a late catch-up,
    allowed); at most HORIZON_DAYS ahead. Core's calendar refuses a double booking (SLOT_TAKEN) and a time
    outside the person's hours (OUTSIDE_AVAILABILITY); nothing is written then."""
    core.require(ctx, registry.MANAGE)
    zone = registry.zone(time_zone)
    v = core.Validator()
    v.check(
        MIN_MINUTES <= minutes <= MAX_MINUTES,
        ("input", "minutes"),
        "OUT_OF_RANGE",
        "A follow-up lasts {low} to {high} minutes.",
        low=MIN_MINUTES,
        high=MAX_MINUTES,
    )
    v.check(start.tzinfo is not None, ("input", "start"), "INVALID_INPUT", "Times must carry a UTC offset.")
    v.raise_if_any()
    if start - ctx.now() > timedelta(days=HORIZON_DAYS):
        raise core.DomainError(
            "OUT_OF_RANGE", "A follow-up is booked at most {days} days ahead.", ("input", "start"), days=HORIZON_DAYS
        )
    who = staff_account_id if staff_account_id is not None else ctx.viewer.account_id
    if who is None:
        raise core.DomainError("REQUIRED", "Name the staff member.", ("input", "staffId"))
    item, pregnancy = await _item(ctx, followup_id)
    _still_open(item)
    if item.appointment_id is not None and item.staff_account_id != who:
        # Another staff member's booking: taking it over would cancel their appointment behind their back.
        raise core.DomainError("ALREADY_EXISTS", "The follow-up is booked with another staff member.", ("input", "id"))
    if gestation.local_date(start, zone) < item.window_start:
        raise core.DomainError("OUT_OF_RANGE", "The follow-up's window has not opened then.", ("input", "start"))
    record = await _staff_record(ctx, who, pregnancy)
    end = start + timedelta(minutes=minutes)
    if item.appointment_id is not None and item.staff_account_id == who:
        await core.reschedule_appointment(ctx, item.appointment_id, start, end)
    else:
        item.appointment_id = (await core.book_appointment(ctx, record, KIND, start, end, record_id=item.id)).id
    item.status, item.staff_account_id, item.rebook_needed, item.updated_at = "booked", who, False, ctx.now()
    await _flush(ctx)
    return item


# -- closing -----------------------------------------------------------------------------------------------------


async def _started(ctx: core.ServiceContext, item: FollowUp) -> None:
    if item.appointment_id is not None and (await _appointment(ctx, item.appointment_id)).during.lower > ctx.now():
        raise core.DomainError("INVALID_TRANSITION", "The booked follow-up has not started yet.", ("input", "id"))


async def _consent_for(ctx: core.ServiceContext, resident_id: int, r: ReferralRequest) -> int:
    """The consent the referral goes under: the one named (it must cover the referral) or the newest covering
    one; CONSENT_REQUIRED without one."""
    kind = "plugin" if r.target_plugin is not None else "outside"
    target = (r.target_plugin if kind == "plugin" else r.target_outside) or ""
    receiving = r.target_organization_id if kind == "plugin" else None
    refused = core.DomainError(
        "CONSENT_REQUIRED", "The mother's consent does not cover this referral.", ("input", "referral", "consentId")
    )
    if r.consent_id is not None:
        named = await core.consent.get_consent(ctx, r.consent_id)
        if named.resident_id != resident_id or not core.consent.allows(
            named, target.strip(), REFERRAL_SCOPES, ctx.now(), target_kind=kind, target_organization_id=receiving
        ):
            raise refused
        return r.consent_id
    found = await core.consent.covering(
        ctx, resident_id, target, REFERRAL_SCOPES, target_kind=kind, target_organization_id=receiving
    )
    if found is None:
        raise refused
    return int(found.id)


async def record_result(
    ctx: core.ServiceContext,
    followup_id: int,
    *,
    outcome: str,
    note: str = "",
    referral: ReferralRequest | None = None,
    examined_on: date | None = None,
    time_zone: str | None = None,
) -> FollowUp:
    """Close an item as done on the day of the examination (`examined_on`, see `_closing_day`): normal, or
    abnormal with a referral (see the module) and a re-check within 14 days of that day. A booked item is
    closed once its appointment has started."""
    core.require(ctx, registry.MANAGE)
    today = registry.today(ctx, time_zone)
    v = core.Validator()
    v.check(outcome in OUTCOMES, ("input", "outcome"), "INVALID_INPUT", "The outcome is normal or abnormal.")
    clean = _note(v, note)
    if outcome == "abnormal":
        v.check(referral is not None, ("input", "referral"), "REQUIRED", "An abnormal finding is referred on.")
        v.check(bool(clean), ("input", "note"), "REQUIRED", "Say what was found.")
    elif referral is not None:
        v.add(("input", "referral"), "INVALID_INPUT", "Only an abnormal finding is referred on.")
    v.raise_if_any()
    item, pregnancy = await _item(ctx, followup_id)
    _still_open(item)
    await _started(ctx, item)
    _window_opened(item, today)
    examined = await _closing_day(ctx, item, examined_on, today, time_zone, "examinedOn")
    if outcome == "abnormal":
        assert referral is not None
        mother: Mother = await core.get_row(ctx, Mother, pregnancy.mother_id, what=_("Mother"))
        consent_id = await _consent_for(ctx, mother.resident_id, referral)
        sent = await core.referrals.send_referral(
            ctx,
            resident_id=mother.resident_id,
            consent_id=consent_id,
            summary=referral.summary,
            target_plugin=referral.target_plugin,
            target_organization_id=referral.target_organization_id,
            target_outside=referral.target_outside,
            source_plugin="maternal_care",
            source_kind="followup",
            source_id=item.id,
        )
        item.referral_id = sent.id
    item.status, item.outcome, item.note, item.closed_on = "done", outcome, clean, examined
    item.closed_by_account_id, item.updated_at = ctx.viewer.account_id, ctx.now()
    await _flush(ctx)
    if outcome == "abnormal":
        recheck = (await rules(ctx))["recheck"]
        ctx.session.add(
            FollowUp(
                pregnancy_id=pregnancy.id,
                rule_code=recheck.code,
                window_start=examined + timedelta(days=recheck.start_day),
                window_end=examined + timedelta(days=recheck.end_day),
                finding_id=item.id,
                organization_id=pregnancy.organization_id,
                updated_at=ctx.now(),
            )
        )
        await _flush(ctx)
    return item


async def mark_missed(
    ctx: core.ServiceContext,
    followup_id: int,
    *,
    note: str = "",
    missed_on: date | None = None,
    time_zone: str | None = None,
) -> FollowUp:
    """Close an item as missed (she did not come, could not be reached), with a note, on the day it was missed
    (`missed_on`, as `examined_on` in `_closing_day`); a booked one once its appointment has started (its time
    was spent waiting)."""
    core.require(ctx, registry.MANAGE)
    today = registry.today(ctx, time_zone)
    v = core.Validator()
    clean = _note(v, note)
    v.check(bool(clean), ("input", "note"), "REQUIRED", "Say why.")
    v.raise_if_any()
    item, _pregnancy = await _item(ctx, followup_id)
    _still_open(item)
    await _started(ctx, item)
    _window_opened(item, today)
    missed = await _closing_day(ctx, item, missed_on, today, time_zone, "missedOn")
    item.status, item.note, item.closed_on = "missed", clean, missed
    item.closed_by_account_id, item.updated_at = ctx.viewer.account_id, ctx.now()
    await _flush(ctx)
    return item


# -- reading -----------------------------------------------------------------------------------------------------

BY_WINDOW: core.Ordering[FollowUp] = core.Ordering(
    "maternal_care_followups_by_window", (FollowUp.window_end, FollowUp.id), lambda f: (f.window_end, f.id)
)
BY_START: core.Ordering[FollowUp] = core.Ordering(
    "maternal_care_followups_by_start", (FollowUp.window_start, FollowUp.id), lambda f: (f.window_start, f.id)
)


async def overdue(
    ctx: core.ServiceContext,
    *,
    as_of: date | None = None,
    time_zone: str | None = None,
    first: int = 50,
    after: str | None = None,
) -> core.Page[FollowUp]:
    """Items still open or booked whose window ended before `as_of` (default: today where the caller says),
    of the mothers the caller serves: the longest overdue first. One statement for the page."""
    core.require(ctx, registry.MANAGE)
    day = as_of if as_of is not None else registry.today(ctx, time_zone)
    stmt = select(FollowUp).where(FollowUp.status.in_(OPEN), FollowUp.window_end < day, followup_scope(ctx))
    return await core.paginate(ctx, stmt, BY_WINDOW, first=first, after=after)


async def of_pregnancy(
    ctx: core.ServiceContext,
    pregnancy_id: int,
    *,
    statuses: Sequence[str] = (),
    first: int = 50,
    after: str | None = None,
) -> core.Page[FollowUp]:
    """A pregnancy's items by window, for whoever reads that pregnancy's health details (`registry.pregnancy_scope`:
    those who serve the mother, and its named responsible, who may hold no manage permission); NOT_FOUND for a
    pregnancy the caller may not read."""
    _may_read(ctx)
    wrong = set(statuses) - set(STATUSES)
    if wrong:
        raise core.DomainError(
            "INVALID_INPUT", "Unknown values: {values}.", ("filter", "statuses"), values=tuple(sorted(wrong))
        )
    await core.get_row(
        ctx,
        Pregnancy,
        pregnancy_id,
        what=_("Pregnancy"),
        field=("filter", "pregnancyId"),
        scope=registry.pregnancy_scope(ctx),
    )
    stmt = select(FollowUp).where(FollowUp.pregnancy_id == pregnancy_id, followup_scope(ctx))
    if statuses:
        stmt = stmt.where(FollowUp.status.in_(list(statuses)))
    return await core.paginate(ctx, stmt, BY_START, first=first, after=after)


async def followups_by_id(ctx: core.ServiceContext, pks: Sequence[int]) -> dict[int, FollowUp]:
    """node(id:): those of `pks` the caller may address; others are absent, like missing ones."""
    if not pks or ctx.viewer.role is None:
        return {}
    rows = await ctx.session.scalars(select(FollowUp).where(FollowUp.id.in_(list(pks)), followup_scope(ctx)))
    return {row.id: row for row in rows}


async def appointments_of(ctx: core.ServiceContext, ids: Sequence[int]) -> list[tuple[datetime, datetime] | None]:
    """The booked times of appointments (batched for the resolvers)."""
    rows = await ctx.session.scalars(select(Appointment).where(Appointment.id.in_(list(ids))))
    found = {a.id: (a.during.lower, a.during.upper) for a in rows}
    return [found.get(pk) for pk in ids]
