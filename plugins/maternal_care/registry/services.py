"""The registry's rules: mothers (a core resident each, consent first, an assigned social worker), their
pregnancies (dated by LMP or EDD, one ongoing at a time), the five-colour risk grade (五色管理) with its
append-only history, dating corrections and outcomes.

Who sees what. A mother's record and every health detail (pregnancies, dating, risk, outcome, history) are
for the people who serve her, within her organisation (`mother_scope`): her assigned social worker, the
organisation's maternal-care staff (plugin role `maternal_care.staff`, permission `maternal_care.health`)
and the organisation's administrators. The staff member named responsible for a pregnancy (orange, red,
purple: any social worker or counselor may be named) sees that pregnancy, its history and the mother's
record and contact (`pregnancy_scope`, `mother_read_scope`), not her other pregnancies. Everyone else --
another social worker, a counselor, a volunteer, a member of another organisation, a platform
administrator of another organisation -- finds nothing: null in
queries, NOT_FOUND in payloads, FORBIDDEN on lists they hold no permission for. Row-level security keeps
other organisations out whatever the services do. Reads of health details are audited by the resolvers.

Dates. A date is the calendar date where the mother lives: "today" and an instant become dates in an IANA
zone (the caller's `timeZone`, else the deployment's), see plugins.maternal_care.gestation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import case, false, func, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

import core
from core.i18n import _
from core.models import Account, AccountPluginRole
from plugins.maternal_care import gestation
from plugins.maternal_care.models import RISK_COLOURS, DatingCorrection, Mother, Pregnancy, RiskChange

MANAGE = "maternal_care.manage"
HEALTH = "maternal_care.health"
LECTURES = "maternal_care.lectures"
STAFF_ROLE = "maternal_care.staff"
DEFAULT_ZONE = "Asia/Shanghai"  # the deployment's default (settings.timezone); resolvers pass the setting
HIGH_COLOURS = frozenset({"orange", "red"})
OUTCOMES = frozenset({"delivered", "loss"})
ADMIN_ROLES = frozenset({"organization_admin", "platform_admin"})
# Staff who may be named responsible for a high-risk pregnancy (or hold the plugin role).
RESPONSIBLE_ROLES = frozenset({"social_worker", "organization_admin", "counselor"})

PERMISSIONS = [
    core.Permission(
        MANAGE,
        "Register expectant mothers and their pregnancies; keep dating, risk and outcomes of the mothers you serve.",
        ("social_worker", "organization_admin", "platform_admin"),
    ),
    # Relation-free reading of every mother's health details in the organisation: held through the staff role
    # only, never by rank (administrators read them by the registry's own rule, within their organisation).
    core.Permission(
        HEALTH,
        "Read and keep the health details of every mother of your organisation (maternal-care staff).",
        (),
        by_rank=False,
    ),
    core.Permission(
        LECTURES,
        "Create, edit and cancel lectures for expectant mothers; register mothers for them.",
        ("organization_admin", "platform_admin"),
    ),
]

ERROR_CODES = {
    "MATERNAL_CARE_ALREADY_REGISTERED": "The resident is registered with maternal care already.",
    "MATERNAL_CARE_PREGNANCY_ONGOING": "The mother has an ongoing pregnancy already: record its outcome first.",
}

# Unique keys and checks a race (or a path around the services' checks) can still hit, and their answers.
CONSTRAINT_ERRORS: dict[str, tuple[str, str, tuple[str, ...] | None]] = {
    "uq_maternal_care_mothers_resident_id": (
        "MATERNAL_CARE_ALREADY_REGISTERED",
        "The resident is registered with maternal care already.",
        ("input", "residentId"),
    ),
    "ex_maternal_care_pregnancies_no_overlap": (
        "OUT_OF_RANGE",
        "A pregnancy begins after the previous one ended.",
        ("input", "lmp"),
    ),
    "uq_maternal_care_pregnancies_one_ongoing": (
        "MATERNAL_CARE_PREGNANCY_ONGOING",
        "The mother has an ongoing pregnancy already: record its outcome first.",
        ("input", "motherId"),
    ),
    "ck_maternal_care_pregnancies_high_risk_has_responsible": (
        "REQUIRED",
        "Orange, red and purple need a named responsible staff member.",
        ("input", "responsibleId"),
    ),
}

M = TypeVar("M")


@dataclass(frozen=True)
class MaternalRiskRaised(core.DomainEvent):
    """A pregnancy was graded orange or red, or flagged purple (infectious), from a lower grade. Other plugins
    (casework, counseling) react by name; `organization_id` (keyword) is the mother's organisation."""

    name: ClassVar[str] = "maternal_care.risk_raised"
    mother_id: int
    pregnancy_id: int
    resident_id: int
    colour: str
    infectious: bool
    # Who serves her (casework refers her to them) and where she lives: read by name, no import needed.
    social_worker_account_id: int | None = None
    community_id: int | None = None
    # The services the grading staff member refers her to (plugin names, REFERRAL_TARGETS): each reacts only
    # when named here (and enabled for the organisation; a named one switched off is simply not told).
    refer_to: tuple[str, ...] = ("case_work",)


# Where a high-risk grade may refer the mother, by plugin name; casework by default (the behaviour before the
# choice existed).
REFERRAL_TARGETS = ("case_work", "counseling")
DEFAULT_REFER_TO = ("case_work",)


@dataclass(frozen=True)
class Grade:
    """A risk grade: one colour of green..red, and the purple (infectious) flag alongside it."""

    colour: str = "green"
    infectious: bool = False
    responsible_account_id: int | None = None

    @property
    def high(self) -> bool:
        return self.colour in HIGH_COLOURS or self.infectious


@dataclass(frozen=True)
class MotherFilter:
    social_worker_account_id: int | None = None


# -- scope -------------------------------------------------------------------------------------------------------


def is_staff(viewer: core.Viewer) -> bool:
    """Holds the maternal-care staff role (its relation-only permission), whatever the core role."""
    return viewer.role is not None and viewer.role != "system" and core.can(viewer, HEALTH)


def sees_every_mother(viewer: core.Viewer, organization_id: int) -> bool:
    """Maternal-care staff and administrators of `organization_id` itself (not of another organisation)."""
    if viewer.organization_id is None or viewer.organization_id != organization_id:
        return False
    return viewer.role in ADMIN_ROLES or is_staff(viewer)


def mother_scope(ctx: core.ServiceContext) -> ColumnElement[bool]:
    """The mothers the caller serves -- may address, list, register, and whose health details they read: their
    organisation's for staff and administrators, those assigned to them for a social worker, none for anyone
    else. (Being named responsible for one pregnancy adds that pregnancy only: `pregnancy_scope`.)"""
    viewer = ctx.viewer
    if viewer.role == "system":
        return true()
    if viewer.organization_id is None or viewer.role is None:
        return false()
    in_organisation: ColumnElement[bool] = Mother.organization_id == viewer.organization_id
    if viewer.role in ADMIN_ROLES or is_staff(viewer):
        return in_organisation
    if viewer.account_id is not None and core.can(viewer, MANAGE):
        return in_organisation & (Mother.social_worker_account_id == viewer.account_id)
    return false()


def _responsible_for(ctx: core.ServiceContext) -> ColumnElement[bool]:
    """The pregnancies the caller is named responsible for, in their own organisation."""
    viewer = ctx.viewer
    if viewer.account_id is None or viewer.organization_id is None or viewer.role in (None, "system"):
        return false()
    return (Pregnancy.responsible_account_id == viewer.account_id) & (
        Pregnancy.organization_id == viewer.organization_id
    )


def pregnancy_scope(ctx: core.ServiceContext) -> ColumnElement[bool]:
    """The pregnancies of the mothers the caller serves, and those the caller is named responsible for (the
    responsible person of an orange, red or purple pregnancy follows it, whatever their role)."""
    return Pregnancy.mother_id.in_(select(Mother.id).where(mother_scope(ctx))) | _responsible_for(ctx)


def mother_read_scope(ctx: core.ServiceContext) -> ColumnElement[bool]:
    """The mothers whose record the caller reads: those they serve, and the mother of a pregnancy they are
    named responsible for (her record, to reach her: not her other pregnancies, nor any list of mothers)."""
    return mother_scope(ctx) | Mother.id.in_(select(Pregnancy.mother_id).where(_responsible_for(ctx)))


def can_read_health(viewer: core.Viewer, mother: Mother) -> bool:
    """The same rule as `mother_scope`, for one row already loaded."""
    if viewer.role == "system":
        return True
    if sees_every_mother(viewer, mother.organization_id):
        return True
    return (
        viewer.organization_id == mother.organization_id
        and viewer.account_id is not None
        and core.can(viewer, MANAGE)
        and mother.social_worker_account_id == viewer.account_id
    )


def residents_served(viewer: core.Viewer, resident_id: ColumnElement[int]) -> ColumnElement[bool] | None:
    """core.ResidentRelation: a mother's assigned social worker, and the maternal-care staff of her
    organisation, serve her resident record (see her phone and address). Administrators are not served by
    rank: core shows them the record with the contact masked."""
    if viewer.account_id is None or viewer.organization_id is None:
        return None
    mothers = select(Mother.resident_id).where(Mother.organization_id == viewer.organization_id)
    if is_staff(viewer):
        return resident_id.in_(mothers)
    # The responsible person of a pregnancy reaches its mother (whatever their role).
    responsible = resident_id.in_(
        mothers.where(
            Mother.id.in_(
                select(Pregnancy.mother_id).where(
                    Pregnancy.responsible_account_id == viewer.account_id,
                    Pregnancy.organization_id == viewer.organization_id,
                )
            )
        )
    )
    if core.can(viewer, MANAGE):
        return resident_id.in_(mothers.where(Mother.social_worker_account_id == viewer.account_id)) | responsible
    return responsible


# -- helpers -----------------------------------------------------------------------------------------------------


async def _flush(ctx: core.ServiceContext) -> None:
    await core.flush(ctx, CONSTRAINT_ERRORS)


def _own_organisation(ctx: core.ServiceContext) -> int:
    if ctx.viewer.organization_id is None:
        raise core.DomainError("REQUIRED", "Act as a member of an organisation to keep maternal-care records.")
    return ctx.viewer.organization_id


# An IANA name: a few path components of letters, digits, "_", "+", "-" (the longest real one is ~32 chars).
# Checked before ZoneInfo sees it: a long or odd name reaches the file system there (OSError: name too long).
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}")
MAX_ZONE_NAME = 64


def zone(name: str | None, field: Sequence[str] = ("timeZone",)) -> ZoneInfo:
    """An IANA zone by name (None or empty: the deployment's default); INVALID_INPUT for an unknown one, a name
    of the wrong shape or length included."""
    candidate = name or DEFAULT_ZONE
    unknown = core.DomainError("INVALID_INPUT", "Unknown time zone {zone}.", tuple(field), zone=repr(candidate[:80]))
    if len(candidate) > MAX_ZONE_NAME or not _ZONE_NAME.fullmatch(candidate):
        raise unknown
    try:
        return ZoneInfo(candidate)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise unknown from None


def today(ctx: core.ServiceContext, time_zone: str | None = None) -> date:
    return gestation.local_date(ctx.now(), zone(time_zone))


def _actor(ctx: core.ServiceContext) -> tuple[int | None, str]:
    return ctx.viewer.account_id, ctx.viewer.label[:100]


MAX_TEXT = 2000


def _text(value: str | None, field: str) -> str:
    """Free text as given (trimmed): longer than MAX_TEXT is refused (OUT_OF_RANGE), never silently cut."""
    clean = (value or "").strip()
    if len(clean) > MAX_TEXT:
        raise core.DomainError("OUT_OF_RANGE", "At most {n} characters.", ("input", field), n=MAX_TEXT)
    return clean


def _reason(reason: str, field: str = "reason") -> str:
    clean = _text(reason, field)
    if not clean:
        raise core.DomainError("REQUIRED", "Say why.", ("input", field))
    return clean


async def _mother(ctx: core.ServiceContext, mother_id: int, *, lock: bool = False) -> Mother:
    return await core.get_row(
        ctx, Mother, mother_id, what=_("Mother"), field=("input", "motherId"), lock=lock, scope=mother_scope(ctx)
    )


async def _pregnancy(ctx: core.ServiceContext, pregnancy_id: int, *, lock: bool = True) -> Pregnancy:
    return await core.get_row(
        ctx, Pregnancy, pregnancy_id, what=_("Pregnancy"), field=("input", "id"), lock=lock, scope=pregnancy_scope(ctx)
    )


async def _active_account(ctx: core.ServiceContext, account_id: int, organization_id: int, field: str) -> Account:
    """An active account of the organisation (NOT_FOUND for another organisation's: it answers like a missing
    one)."""
    account = await ctx.session.scalar(select(Account).where(Account.id == account_id))
    if account is None or account.organization_id != organization_id:
        raise core.NotFound(_("Account"), ("input", field))
    if not account.is_active:
        raise core.DomainError("INVALID_INPUT", "This account is not active.", ("input", field))
    return account


async def _check_social_worker(ctx: core.ServiceContext, account_id: int, organization_id: int) -> None:
    account = await _active_account(ctx, account_id, organization_id, "socialWorkerId")
    if account.role != "social_worker":
        raise core.DomainError(
            "INVALID_INPUT", "The assigned social worker is a social worker.", ("input", "socialWorkerId")
        )


async def _check_responsible(ctx: core.ServiceContext, account_id: int, organization_id: int) -> None:
    account = await _active_account(ctx, account_id, organization_id, "responsibleId")
    if account.role in RESPONSIBLE_ROLES:
        return
    holds_role = await ctx.session.scalar(
        select(AccountPluginRole.account_id).where(
            AccountPluginRole.account_id == account_id, AccountPluginRole.role == STAFF_ROLE
        )
    )
    if holds_role is None:
        raise core.DomainError(
            "INVALID_INPUT", "The responsible person is a staff member of the organisation.", ("input", "responsibleId")
        )


def _check_lmp(lmp: date, on: date, field: str) -> None:
    """An LMP in the future, or 44+0 or more ago, is not a pregnancy being followed: refused (the same bound as
    the lectures' audience rule: from 44+0 an ongoing record fits nothing, gestation.LONGEST_WEEKS)."""
    if lmp > on:
        raise core.DomainError("OUT_OF_RANGE", "The pregnancy cannot begin in the future.", ("input", field))
    if (on - lmp).days >= gestation.LONGEST_WEEKS * 7:
        raise core.DomainError(
            "OUT_OF_RANGE",
            "The pregnancy would be {weeks} weeks along or more.",
            ("input", field),
            weeks=gestation.LONGEST_WEEKS,
        )


async def _check_after_previous(
    ctx: core.ServiceContext, mother_id: int, lmp: date, field: str, *, besides: int | None = None
) -> None:
    """A pregnancy begins after the mother's previous one ended (OUT_OF_RANGE): the exclusion constraint
    ex_maternal_care_pregnancies_no_overlap holds it; this names the date in the refusal."""
    query = select(func.max(Pregnancy.outcome_on)).where(Pregnancy.mother_id == mother_id)
    if besides is not None:
        query = query.where(Pregnancy.id != besides)
    ended = await ctx.session.scalar(query)
    if ended is not None and lmp <= ended:
        raise core.DomainError(
            "OUT_OF_RANGE",
            "A pregnancy begins after the previous one ended ({ended}).",
            ("input", field),
            ended=ended.isoformat(),
        )


def _dating(lmp: date | None, edd: date | None) -> tuple[date, str, str]:
    """(lmp, basis, the input field) from exactly one of LMP and EDD."""
    if (lmp is None) == (edd is None):
        raise core.DomainError(
            "INVALID_INPUT", "Give the last menstrual period or the due date (one of them).", ("input", "lmp")
        )
    if lmp is not None:
        return lmp, "lmp", "lmp"
    assert edd is not None
    return gestation.lmp_from_edd(edd), "edd", "edd"


# -- mothers -----------------------------------------------------------------------------------------------------


async def register_mother(
    ctx: core.ServiceContext,
    *,
    consent: bool,
    social_worker_account_id: int | None,
    resident_id: int | None = None,
    name: str | None = None,
    phone: str = "",
    address: str = "",
    community_id: int | None = None,
    consent_note: str = "",
) -> Mother:
    """Register a woman with the caller's organisation's maternal care: an existing resident (`resident_id`) or
    a new one made through core's residents service (`name`, `phone`, `address`). Her consent is recorded
    first; a resident registered already is MATERNAL_CARE_ALREADY_REGISTERED (nothing written)."""
    core.require(ctx, MANAGE)
    v = core.Validator()
    v.check(consent, ("input", "consent"), "REQUIRED", "The mother's consent must be recorded first.")
    v.check(
        (resident_id is None) != (not (name or "").strip()),
        ("input", "residentId"),
        "INVALID_INPUT",
        "Name an existing resident or give a new one's name (one of them).",
    )
    v.check(social_worker_account_id is not None, ("input", "socialWorkerId"), "REQUIRED", "Assign a social worker.")
    v.raise_if_any()
    consent_note = _text(consent_note, "consentNote")
    organization_id = _own_organisation(ctx)
    assert social_worker_account_id is not None
    await _check_social_worker(ctx, social_worker_account_id, organization_id)
    if resident_id is not None:
        resident = await core.residents.get_resident(ctx, resident_id)
        if resident.organization_id != organization_id:  # only a platform administrator sees it at all
            raise core.DomainError(
                "ORGANIZATION_MISMATCH", "The resident belongs to another organisation.", ("input", "residentId")
            )
        taken = await ctx.session.scalar(select(Mother.id).where(Mother.resident_id == resident_id))
        if taken is not None:
            raise core.DomainError(
                "MATERNAL_CARE_ALREADY_REGISTERED",
                "The resident is registered with maternal care already.",
                ("input", "residentId"),
            )
        if community_id is None:
            community_id = resident.community_id
        elif community_id != resident.community_id:
            await core.get_row(ctx, core.Community, community_id, what=_("Community"), field=("input", "communityId"))
    else:
        resident = await core.residents.create_resident(
            ctx, name=name or "", community_id=community_id, phone=phone, address=address
        )
    mother = Mother(
        resident_id=resident.id,
        community_id=community_id,
        social_worker_account_id=social_worker_account_id,
        registered_by_account_id=ctx.viewer.account_id,
        consent_at=ctx.now(),
        consent_note=consent_note,
        organization_id=organization_id,
    )
    ctx.session.add(mother)
    await _flush(ctx)
    return mother


async def mother_for_referral(ctx: core.ServiceContext, referral: Any, shared: Any) -> Mother:
    """An accepted referral to maternal care (ReferralTarget.on_accepted): the receiving organisation's mother,
    on a resident made from what the consent lets it copy (`shared`: core.SharedResident); the consent is the
    referral's. The accepting social worker is assigned to her (another role leaves her unassigned, for
    the staff to assign)."""
    organization_id = _own_organisation(ctx)
    resident = await core.residents.create_resident(
        ctx, name=shared.name, community_id=None, phone=shared.phone or "", address=shared.address or ""
    )
    mother = Mother(
        resident_id=resident.id,
        social_worker_account_id=ctx.viewer.account_id if ctx.viewer.role == "social_worker" else None,
        registered_by_account_id=ctx.viewer.account_id,
        consent_at=ctx.now(),
        consent_note=f"referral {referral.id}",
        organization_id=organization_id,
    )
    ctx.session.add(mother)
    await _flush(ctx)
    return mother


async def assign_social_worker(ctx: core.ServiceContext, mother_id: int, social_worker_account_id: int) -> Mother:
    """Hand a mother to another social worker (staff and administrators; the previous one stops serving her)."""
    core.require(ctx, MANAGE)
    mother = await _mother(ctx, mother_id, lock=True)
    if not sees_every_mother(ctx.viewer, mother.organization_id):
        raise core.DomainError("FORBIDDEN", "Maternal-care staff and administrators assign social workers.")
    await _check_social_worker(ctx, social_worker_account_id, mother.organization_id)
    mother.social_worker_account_id = social_worker_account_id
    await _flush(ctx)
    return mother


MOTHERS_NEWEST: core.Ordering[Mother] = core.Ordering(
    "maternal_care_mothers_newest", (Mother.id,), lambda m: (m.id,), descending=True
)


async def list_mothers(
    ctx: core.ServiceContext, f: MotherFilter = MotherFilter(), *, first: int = 50, after: str | None = None
) -> core.Page[Mother]:
    """The mothers the caller serves (see `mother_scope`), newest first."""
    core.require(ctx, MANAGE)
    stmt = select(Mother).where(mother_scope(ctx))
    if f.social_worker_account_id is not None:
        stmt = stmt.where(Mother.social_worker_account_id == f.social_worker_account_id)
    return await core.paginate(ctx, stmt, MOTHERS_NEWEST, first=first, after=after)


# -- pregnancies -------------------------------------------------------------------------------------------------


def _check_grade(grade: Grade) -> None:
    v = core.Validator()
    v.check(grade.colour in RISK_COLOURS, ("input", "colour"), "INVALID_INPUT", "Unknown risk colour.")
    v.check(
        not grade.high or grade.responsible_account_id is not None,
        ("input", "responsibleId"),
        "REQUIRED",
        "Orange, red and purple need a named responsible staff member.",
    )
    v.raise_if_any()


async def register_pregnancy(
    ctx: core.ServiceContext,
    mother_id: int,
    *,
    lmp: date | None = None,
    edd: date | None = None,
    grade: Grade = Grade(),
    reason: str = "",
    time_zone: str | None = None,
) -> Pregnancy:
    """A new pregnancy of a mother, dated by LMP or by EDD (the other derived: EDD = LMP + 280 days), at most
    44 weeks along and not in the future (OUT_OF_RANGE); one ongoing at a time
    (MATERNAL_CARE_PREGNANCY_ONGOING). A grade other than green is recorded as its first risk change."""
    core.require(ctx, MANAGE)
    start, basis, field = _dating(lmp, edd)
    _check_lmp(start, today(ctx, time_zone), field)
    _check_grade(grade)
    reason = _text(reason, "reason")
    mother = await _mother(ctx, mother_id, lock=True)  # one registration at a time per mother
    if grade.responsible_account_id is not None:
        await _check_responsible(ctx, grade.responsible_account_id, mother.organization_id)
    ongoing = await ctx.session.scalar(
        select(Pregnancy.id).where(Pregnancy.mother_id == mother.id, Pregnancy.status == "ongoing")
    )
    if ongoing is not None:
        raise core.DomainError(
            "MATERNAL_CARE_PREGNANCY_ONGOING",
            "The mother has an ongoing pregnancy already: record its outcome first.",
            ("input", "motherId"),
        )
    await _check_after_previous(ctx, mother.id, start, field)
    pregnancy = Pregnancy(
        mother_id=mother.id,
        lmp=start,
        edd=gestation.edd_from_lmp(start),
        dating_basis=basis,
        created_by_account_id=ctx.viewer.account_id,
        organization_id=mother.organization_id,
    )
    ctx.session.add(pregnancy)
    await _flush(ctx)
    if grade != Grade():
        await _regrade(ctx, pregnancy, mother, grade, reason or "registration")
    from plugins.maternal_care.followups import services as followups  # (imports this module)

    await followups.pregnancy_registered(ctx, pregnancy, today(ctx, time_zone))
    return pregnancy


async def _regrade(
    ctx: core.ServiceContext,
    pregnancy: Pregnancy,
    mother: Mother,
    grade: Grade,
    reason: str,
    refer_to: tuple[str, ...] = DEFAULT_REFER_TO,
) -> None:
    """The history row first, then the pregnancy (the database checks the row when the grade changes); the
    pregnancy is locked, so the next number is ours. Announces a raise to orange/red/purple, naming the services
    it refers her to (`refer_to`)."""
    before = Grade(pregnancy.risk_colour, pregnancy.infectious, pregnancy.responsible_account_id)
    seq = pregnancy.risk_seq + 1
    account_id, label = _actor(ctx)
    ctx.session.add(
        RiskChange(
            pregnancy_id=pregnancy.id,
            seq=seq,
            from_colour=before.colour,
            from_infectious=before.infectious,
            to_colour=grade.colour,
            to_infectious=grade.infectious,
            responsible_account_id=grade.responsible_account_id,
            actor_account_id=account_id,
            actor=label,
            reason=reason,
            organization_id=pregnancy.organization_id,
        )
    )
    await _flush(ctx)
    pregnancy.risk_colour, pregnancy.infectious = grade.colour, grade.infectious
    pregnancy.responsible_account_id, pregnancy.risk_seq = grade.responsible_account_id, seq
    await _flush(ctx)
    raised_colour = grade.colour in HIGH_COLOURS and RISK_COLOURS.index(grade.colour) > RISK_COLOURS.index(
        before.colour
    )
    if raised_colour or (grade.infectious and not before.infectious):
        await ctx.publish(
            MaternalRiskRaised(
                organization_id=pregnancy.organization_id,
                mother_id=mother.id,
                pregnancy_id=pregnancy.id,
                resident_id=mother.resident_id,
                colour=grade.colour,
                infectious=grade.infectious,
                social_worker_account_id=mother.social_worker_account_id,
                community_id=mother.community_id,
                refer_to=refer_to,
            )
        )


def _refer_to(refer_to: Sequence[str] | None) -> tuple[str, ...]:
    """The services a raise refers her to: known ones (INVALID_INPUT), at least one (REQUIRED: a high-risk
    mother is referred somewhere), each once, in the order given; None is the default, casework."""
    if refer_to is None:
        return DEFAULT_REFER_TO
    wanted = tuple(dict.fromkeys(refer_to))
    v = core.Validator()
    v.check(bool(wanted), ("input", "referTo"), "REQUIRED", "Name at least one service to refer her to.")
    v.check(all(t in REFERRAL_TARGETS for t in wanted), ("input", "referTo"), "INVALID_INPUT", "Unknown service.")
    v.raise_if_any()
    return wanted


async def change_risk(
    ctx: core.ServiceContext,
    pregnancy_id: int,
    grade: Grade,
    reason: str,
    *,
    refer_to: Sequence[str] | None = None,
) -> Pregnancy:
    """Regrade an ongoing pregnancy, with why (REQUIRED); a delivered or lost one is INVALID_TRANSITION (its
    grade is history). Orange, red and purple need a named responsible staff member (REQUIRED); an unchanged
    grade is INVALID_INPUT (nothing to record). A raise refers her to the services in `refer_to` (default
    casework; see `_refer_to`), carried in the event: each service decides, by its own rules, what it does."""
    core.require(ctx, MANAGE)
    clean = _reason(reason)
    _check_grade(grade)
    targets = _refer_to(refer_to)
    pregnancy = await _pregnancy(ctx, pregnancy_id)
    if pregnancy.status != "ongoing":
        raise core.DomainError("INVALID_TRANSITION", "Only an ongoing pregnancy is regraded.", ("input", "id"))
    mother = await _mother(ctx, pregnancy.mother_id)
    if grade.responsible_account_id is not None:
        await _check_responsible(ctx, grade.responsible_account_id, pregnancy.organization_id)
    if grade == Grade(pregnancy.risk_colour, pregnancy.infectious, pregnancy.responsible_account_id):
        raise core.DomainError("INVALID_INPUT", "The pregnancy has this grade already.", ("input", "colour"))
    await _regrade(ctx, pregnancy, mother, grade, clean, targets)
    return pregnancy


async def correct_dating(
    ctx: core.ServiceContext,
    pregnancy_id: int,
    *,
    lmp: date | None = None,
    edd: date | None = None,
    reason: str,
    time_zone: str | None = None,
) -> Pregnancy:
    """Correct an ongoing pregnancy's dating (an ultrasound, a mistyped date), with why; recorded."""
    core.require(ctx, MANAGE)
    clean = _reason(reason)
    start, basis, field = _dating(lmp, edd)
    _check_lmp(start, today(ctx, time_zone), field)
    pregnancy = await _pregnancy(ctx, pregnancy_id)
    if pregnancy.status != "ongoing":
        raise core.DomainError(
            "INVALID_TRANSITION", "Only an ongoing pregnancy's dating is corrected.", ("input", "id")
        )
    if start == pregnancy.lmp:
        raise core.DomainError("INVALID_INPUT", "The pregnancy is dated so already.", ("input", field))
    await _check_after_previous(ctx, pregnancy.mother_id, start, field, besides=pregnancy.id)
    account_id, label = _actor(ctx)
    ctx.session.add(
        DatingCorrection(
            pregnancy_id=pregnancy.id,
            from_lmp=pregnancy.lmp,
            to_lmp=start,
            basis=basis,
            actor_account_id=account_id,
            actor=label,
            reason=clean,
            organization_id=pregnancy.organization_id,
        )
    )
    pregnancy.lmp, pregnancy.edd, pregnancy.dating_basis = start, gestation.edd_from_lmp(start), basis
    await _flush(ctx)
    from plugins.maternal_care.followups import services as followups  # (imports this module)

    await followups.dating_corrected(ctx, pregnancy, today(ctx, time_zone), time_zone)
    return pregnancy


async def record_outcome(
    ctx: core.ServiceContext,
    pregnancy_id: int,
    *,
    outcome: str,
    on: date,
    discharged_on: date | None = None,
    note: str = "",
    time_zone: str | None = None,
) -> Pregnancy:
    """Close an ongoing pregnancy: delivered on a date (and discharged on one, not before it) or a loss. No date
    before the LMP or in the future (OUT_OF_RANGE)."""
    core.require(ctx, MANAGE)
    now = today(ctx, time_zone)
    note = _text(note, "note")
    v = core.Validator()
    v.check(outcome in OUTCOMES, ("input", "outcome"), "INVALID_INPUT", "The outcome is a delivery or a loss.")
    v.check(on <= now, ("input", "on"), "OUT_OF_RANGE", "The outcome cannot be in the future.")
    if discharged_on is not None:
        v.check(outcome == "delivered", ("input", "dischargedOn"), "INVALID_INPUT", "A discharge follows a delivery.")
        v.check(discharged_on >= on, ("input", "dischargedOn"), "OUT_OF_RANGE", "The discharge follows the delivery.")
        v.check(
            discharged_on <= now, ("input", "dischargedOn"), "OUT_OF_RANGE", "The discharge cannot be in the future."
        )
    v.raise_if_any()
    pregnancy = await _pregnancy(ctx, pregnancy_id)
    if pregnancy.status != "ongoing":
        raise core.DomainError("INVALID_TRANSITION", "The pregnancy's outcome is recorded already.", ("input", "id"))
    if on < pregnancy.lmp:
        raise core.DomainError("OUT_OF_RANGE", "The outcome cannot come before the pregnancy began.", ("input", "on"))
    pregnancy.status, pregnancy.outcome_on, pregnancy.discharged_on = outcome, on, discharged_on
    pregnancy.outcome_note = note
    await _flush(ctx)
    from plugins.maternal_care.followups import services as followups  # (imports this module)

    await followups.outcome_recorded(ctx, pregnancy)
    return pregnancy


async def record_discharge(
    ctx: core.ServiceContext, pregnancy_id: int, *, on: date, time_zone: str | None = None
) -> Pregnancy:
    """Record the discharge of a delivered pregnancy whose discharge was not known at the outcome (once:
    INVALID_TRANSITION for a pregnancy not delivered or discharged already); not before the delivery nor in the
    future (OUT_OF_RANGE). The open home visit moves to the discharge's window (followups.discharge_recorded)."""
    core.require(ctx, MANAGE)
    if on > today(ctx, time_zone):
        raise core.DomainError("OUT_OF_RANGE", "The discharge cannot be in the future.", ("input", "on"))
    pregnancy: Pregnancy = await core.get_row(
        ctx,
        Pregnancy,
        pregnancy_id,
        what=_("Pregnancy"),
        field=("input", "pregnancyId"),
        lock=True,
        scope=pregnancy_scope(ctx),
    )
    if pregnancy.status != "delivered" or pregnancy.discharged_on is not None:
        raise core.DomainError(
            "INVALID_TRANSITION", "Only a delivery not yet discharged takes a discharge.", ("input", "pregnancyId")
        )
    if pregnancy.outcome_on is not None and on < pregnancy.outcome_on:
        raise core.DomainError("OUT_OF_RANGE", "The discharge follows the delivery.", ("input", "on"))
    pregnancy.discharged_on = on
    await _flush(ctx)
    from plugins.maternal_care.followups import services as followups  # (imports this module)

    await followups.discharge_recorded(ctx, pregnancy, time_zone)
    return pregnancy


async def gestational_age(
    ctx: core.ServiceContext,
    pregnancy: Pregnancy,
    *,
    on: date | None = None,
    at: datetime | None = None,
    time_zone: str | None = None,
) -> tuple[date, gestation.GestationalAge | None]:
    """The date asked about (`on`; the date of the instant `at` as lived in `time_zone`; else today there) and
    the pregnancy's age on it: None before the LMP and after the outcome."""
    if on is not None and at is not None:
        raise core.DomainError("INVALID_INPUT", "Ask for a date or an instant, not both.", ("at",))
    if at is not None:
        day = gestation.local_date(at, zone(time_zone))
    else:
        day = on if on is not None else today(ctx, time_zone)
    if pregnancy.outcome_on is not None and day > pregnancy.outcome_on:
        return day, None
    return day, gestation.age_on(pregnancy.lmp, day)


# -- lists and batches -------------------------------------------------------------------------------------------

# Most severe first: red, orange, then purple alone (an infectious green or yellow).
_SEVERITY = case((Pregnancy.risk_colour == "red", 1), (Pregnancy.risk_colour == "orange", 2), else_=3)


def _severity(p: Pregnancy) -> int:
    return {"red": 1, "orange": 2}.get(p.risk_colour, 3)


HIGH_RISK_FIRST: core.Ordering[Pregnancy] = core.Ordering(
    "maternal_care_high_risk", (_SEVERITY, Pregnancy.id), lambda p: (_severity(p), p.id)
)


async def high_risk(ctx: core.ServiceContext, *, first: int = 50, after: str | None = None) -> core.Page[Pregnancy]:
    """Ongoing pregnancies graded orange or red, or purple, of the mothers the caller serves and those the caller
    is named responsible for: most severe first. Whoever may be named responsible asks (a counselor finds
    only the pregnancies naming them); the rest are FORBIDDEN."""
    if not (core.can(ctx.viewer, MANAGE) or ctx.viewer.role in RESPONSIBLE_ROLES or is_staff(ctx.viewer)):
        core.require(ctx, MANAGE)
    stmt = select(Pregnancy).where(
        Pregnancy.status == "ongoing",
        or_(Pregnancy.risk_colour.in_(sorted(HIGH_COLOURS)), Pregnancy.infectious),
        pregnancy_scope(ctx),
    )
    return await core.paginate(ctx, stmt, HIGH_RISK_FIRST, first=first, after=after)


async def pregnancies_of(ctx: core.ServiceContext, mother_ids: Sequence[int]) -> list[list[Pregnancy]]:
    """Each mother's pregnancies, latest first (none for a mother the caller may not address)."""
    rows = await ctx.session.scalars(
        select(Pregnancy)
        .where(Pregnancy.mother_id.in_(list(mother_ids)), pregnancy_scope(ctx))
        .order_by(Pregnancy.lmp.desc(), Pregnancy.id.desc())
    )
    found: dict[int, list[Pregnancy]] = {pk: [] for pk in mother_ids}
    for p in rows:
        found[p.mother_id].append(p)
    return [found[pk] for pk in mother_ids]


async def _children(ctx: core.ServiceContext, model: Any, order: Any, pregnancy_ids: Sequence[int]) -> list[list[Any]]:
    rows = await ctx.session.scalars(
        select(model)
        .where(
            model.pregnancy_id.in_(list(pregnancy_ids)),
            model.pregnancy_id.in_(select(Pregnancy.id).where(pregnancy_scope(ctx))),
        )
        .order_by(model.pregnancy_id, order)
    )
    found: dict[int, list[Any]] = {pk: [] for pk in pregnancy_ids}
    for row in rows:
        found[row.pregnancy_id].append(row)
    return [found[pk] for pk in pregnancy_ids]


async def risk_histories(ctx: core.ServiceContext, pregnancy_ids: Sequence[int]) -> list[list[RiskChange]]:
    return await _children(ctx, RiskChange, RiskChange.seq, pregnancy_ids)


async def dating_corrections(ctx: core.ServiceContext, pregnancy_ids: Sequence[int]) -> list[list[DatingCorrection]]:
    return await _children(ctx, DatingCorrection, DatingCorrection.id, pregnancy_ids)


async def rows_by_id(ctx: core.ServiceContext, model: type[M], pks: Sequence[int]) -> dict[int, M]:
    """node(id:) and references: those of `pks` the caller may address (another organisation's ids are
    absent, like missing ones)."""
    if not pks or ctx.viewer.role is None:
        return {}
    scope = mother_read_scope(ctx) if model is Mother else pregnancy_scope(ctx)
    rows = await ctx.session.scalars(select(model).where(model.id.in_(list(pks)), scope))  # type: ignore[attr-defined]
    return {row.id: row for row in rows}  # type: ignore[attr-defined]


async def mother_names(ctx: core.ServiceContext, resident_ids: Sequence[int]) -> list[str | None]:
    """The mothers' names, from core's residents (core's rules: null where the caller may not see the record)."""
    found = await core.residents.residents_by_id(ctx, list(resident_ids))
    return [found[pk].name if pk in found else None for pk in resident_ids]
