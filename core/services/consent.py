"""Consents: what a resident agreed may be shared, with whom, why and for how long (plugins: `core.consent`).

A consent names what may be shared (`scopes`, a fixed vocabulary: summary, contact, health, case_details),
with whom (`target`: a referral target's name such as "counseling" *and* the receiving organisation,
`target_organization_id`; or an outside organisation named in text), its purpose, and its validity. It is
revoked, never deleted or rewritten (the database refuses both), and a revocation takes effect at once: the
live referrals under it are revoked in the same transaction (ReferralRevoked is published for each), and
the recipient's view ends with the statement that revokes the consent (row-level security reads
`referral_consent_in_force`, migration 0012).

Recorded, revoked and listed by those who may see the resident (`core.residents.scope`: those serving them,
their recorder, administrators); anyone else gets NOT_FOUND, as for a missing resident.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from core.errors import DomainError, Validator
from core.i18n import _
from core.models import Consent
from core.models.people import ConsentScope
from core.plugin_api import PLUGIN_NAME
from core.services import residents
from core.services import validation as check
from core.services.common import flush, get
from core.services.context import ServiceContext

SCOPES = frozenset(s.value for s in ConsentScope)
TARGET_KINDS = frozenset({"plugin", "outside"})
MAX_PURPOSE = 500
MAX_REASON = 500


def in_force(consent: Consent, at: datetime) -> bool:
    """Whether `consent` allows sharing at `at`: not revoked, inside its validity."""
    return (
        consent.revoked_at is None
        and consent.valid_from <= at
        and (consent.valid_until is None or consent.valid_until > at)
    )


def _target_name(v: Validator, kind: str, target: str) -> str:
    clean = (target or "").strip()
    if kind == "plugin":
        # A referral target is a plugin's name or `<plugin>.<service>`.
        head, _dot, tail = clean.partition(".")
        v.check(
            bool(PLUGIN_NAME.match(head)) and (not tail or bool(PLUGIN_NAME.match(tail))),
            ("input", "target"),
            "INVALID_INPUT",
            "Name a service such as counseling.",
        )
        return clean
    return check.text(v, ("input", "target"), clean, max_length=100, label=_("Recipient")) or ""


async def record_consent(
    ctx: ServiceContext,
    *,
    resident_id: int,
    scopes: Sequence[str],
    target: str,
    purpose: str,
    target_kind: str = "plugin",
    target_organization_id: int | None = None,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
) -> Consent:
    """Record the resident's consent; `valid_from` defaults to now, `valid_until` None means until revoked. A
    plugin target names its organisation (`target_organization_id`, REQUIRED); an outside one does not."""
    resident = await residents.get_resident(ctx, resident_id)
    v = Validator()
    wanted = list(dict.fromkeys(scopes))
    unknown = sorted(set(wanted) - SCOPES)
    v.check(bool(wanted), ("input", "scopes"), "REQUIRED", "Say what may be shared.")
    v.check(not unknown, ("input", "scopes"), "INVALID_INPUT", "Unknown scopes: {values}.", values=tuple(unknown))
    v.check(target_kind in TARGET_KINDS, ("input", "targetKind"), "INVALID_INPUT", "A plugin or an outside body.")
    clean_target = _target_name(v, target_kind, target) if target_kind in TARGET_KINDS else ""
    if target_kind == "plugin" and clean_target and not any(e.field == ("input", "target") for e in v.errors):
        # A consent is never edited: one naming a service nothing here receives referrals for could never be
        # used, and the typo would stay on the resident's record for good. (Imported here: referrals uses this.)
        from core.services import referrals

        v.check(
            clean_target in referrals.registered_targets(ctx),
            ("input", "target"),
            "REFERRAL_TARGET_UNKNOWN",
            "No service of that name takes referrals here.",
        )
    if target_kind == "plugin":
        v.check(
            target_organization_id is not None,
            ("input", "targetOrganizationId"),
            "REQUIRED",
            "Name the organisation the consent is for.",
        )
    elif target_kind == "outside":
        v.check(
            target_organization_id is None,
            ("input", "targetOrganizationId"),
            "INVALID_INPUT",
            "An outside organisation is named in the target.",
        )
    clean_purpose = check.text(v, ("input", "purpose"), purpose, max_length=MAX_PURPOSE, label=_("Purpose"))
    start = valid_from or ctx.now()
    for name, value in (("validFrom", valid_from), ("validUntil", valid_until)):
        if value is not None and value.tzinfo is None:
            v.add(("input", name), "INVALID_INPUT", "Times must carry a UTC offset.")
    if valid_until is not None and valid_until.tzinfo is not None and start.tzinfo is not None:
        v.check(valid_until > start, ("input", "validUntil"), "OUT_OF_RANGE", "A consent must end after it starts.")
    v.raise_if_any()
    consent = Consent(
        organization_id=resident.organization_id,
        resident_id=resident.id,
        scopes=wanted,
        target_kind=target_kind,
        target=clean_target,
        target_organization_id=target_organization_id if target_kind == "plugin" else None,
        purpose=clean_purpose,
        valid_from=start,
        valid_until=valid_until,
        recorded_by=ctx.viewer.label,
    )
    ctx.session.add(consent)
    await flush(ctx)
    return consent


async def get_consent(ctx: ServiceContext, consent_id: int, *, lock: bool = False) -> Consent:
    """The consent, or NOT_FOUND unless the caller keeps its resident's records."""
    consent = await get(ctx, Consent, consent_id, what=_("Consent"), field=("input", "consentId"), lock=lock)
    await residents.get_resident(ctx, consent.resident_id)  # NOT_FOUND for those who may not see the resident
    return consent


async def revoke_consent(ctx: ServiceContext, consent_id: int, *, reason: str = "") -> Consent:
    """End the consent now, and with it the live referrals under it (status revoked, reason "consent
    revoked", ReferralRevoked published), in one transaction. What was shared under it stays shared."""
    from core.services import referrals  # referrals uses this module: imported when first needed

    v = Validator()
    clean_reason = check.text(v, ("input", "reason"), reason, max_length=MAX_REASON, required=False) or ""
    v.raise_if_any()
    consent = await get_consent(ctx, consent_id)
    # The referrals first, then the consent: the order an answering recipient takes them in (its referral,
    # then the consent FOR SHARE), so a revocation racing an answer waits rather than deadlocks.
    await referrals.lock_live_under(ctx, consent.id)
    consent = await get_consent(ctx, consent_id, lock=True)
    if consent.revoked_at is not None:
        raise DomainError("INVALID_TRANSITION", "The consent was revoked already.", ("input", "consentId"))
    consent.revoked_at = ctx.now()
    consent.revoked_by = ctx.viewer.label
    consent.revoke_reason = clean_reason
    await flush(ctx)
    await referrals.revoke_under_consent(ctx, consent.id)
    return consent


async def list_consents(ctx: ServiceContext, resident_id: int) -> list[Consent]:
    """The resident's consents, newest first, revoked ones included (the record of what was allowed when)."""
    await residents.get_resident(ctx, resident_id)
    rows = await ctx.session.scalars(
        select(Consent).where(Consent.resident_id == resident_id).order_by(Consent.id.desc())
    )
    return list(rows)


async def covering(
    ctx: ServiceContext,
    resident_id: int,
    target: str,
    purpose_scope: str | Sequence[str],
    at: datetime | None = None,
    *,
    target_kind: str = "plugin",
    target_organization_id: int | None = None,
) -> Consent | None:
    """A consent of the resident in force at `at` (default: now) that lets `purpose_scope` (one scope or
    several, all needed) be shared with `target` (at `target_organization_id`, for a plugin target); the
    newest such, or None. NOT_FOUND if the caller may not see the resident."""
    await residents.get_resident(ctx, resident_id)
    needed = [purpose_scope] if isinstance(purpose_scope, str) else list(purpose_scope)
    moment = at or ctx.now()
    stmt = (
        select(Consent)
        .where(
            Consent.resident_id == resident_id,
            Consent.target_kind == target_kind,
            Consent.target == target.strip(),
            Consent.target_organization_id.is_(None)
            if target_organization_id is None
            else Consent.target_organization_id == target_organization_id,
            Consent.revoked_at.is_(None),
            Consent.valid_from <= moment,
            (Consent.valid_until.is_(None)) | (Consent.valid_until > moment),
            Consent.scopes.contains(needed),
        )
        .order_by(Consent.id.desc())
        .limit(1)
    )
    found: Consent | None = await ctx.session.scalar(stmt)
    return found


def allows(
    consent: Consent,
    target: str,
    scopes: Sequence[str],
    at: datetime,
    *,
    target_kind: str = "plugin",
    target_organization_id: int | None = None,
) -> bool:
    """Whether `consent` in itself covers sharing `scopes` with `target` (at `target_organization_id`) at `at`."""
    return (
        consent.target_kind == target_kind
        and consent.target == target
        and consent.target_organization_id == target_organization_id
        and set(scopes) <= set(consent.scopes)
        and in_force(consent, at)
    )
