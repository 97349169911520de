"""Referrals: handing a resident over to another service, under a consent (plugins: `core.referrals`).

A referral belongs to the sending organisation. The receiving organisation (a plugin's service there, a
registered `ReferralTarget`) sees it through its own row-level security policy only while it is not
revoked and its consent is in force, and reads only the `summary` the referrer chose -- never the
resident's row. When it accepts, the target plugin's `on_accepted` receives what the consent lets it copy
(`SharedResident`: the name; phone and address only under the `contact` scope) and keeps its own record.

    sent → accepted | declined;  accepted → completed;  sent | accepted → revoked (by the sender)

A referral to an outside organisation (named in text) stays `sent` until the sender revokes it: nobody
in the service answers for an outside body. Every refusal happens before anything is written. Revoking the
consent revokes the live referrals under it (`revoke_under_consent`, called by `core.consent`).

Who sees a sent referral (`sent_scope`): the account that sent it, those who serve its resident
(`core.residents.serving`), administrators of the sending organisation (the summary is what the organisation
let leave it, and its administrator answers for that), platform administrators. Not every staff member.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import false, func, or_, select, true, update
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql.elements import ColumnElement

from core import events
from core.errors import DomainError, NotFound, Validator
from core.i18n import _
from core.models import Referral, Resident
from core.models.people import ConsentScope, ReferralStatus
from core.plugin_api import PLUGIN_NAME
from core.services import access, consent, residents
from core.services import validation as check
from core.services.common import flush, get
from core.services.context import ServiceContext
from core.services.pagination import Ordering, Page, paginate
from core.vocab import Role

S = ReferralStatus
# (status, action) -> the status it leads to. Anything else is INVALID_TRANSITION.
TRANSITIONS: dict[tuple[str, str], str] = {
    (S.SENT, "accept"): S.ACCEPTED,
    (S.SENT, "decline"): S.DECLINED,
    (S.ACCEPTED, "complete"): S.COMPLETED,
    (S.SENT, "revoke"): S.REVOKED,
    (S.ACCEPTED, "revoke"): S.REVOKED,
}
# What the referrer shares by sending: the summary. The consent must allow at least that.
SENDING_SCOPE = ConsentScope.SUMMARY.value
MAX_SUMMARY = 2000
MAX_REASON = 500
CORE_SOURCE = "core"
CONSENT_REVOKED = "consent revoked"  # the reason written on referrals ended by their consent's revocation
LIVE = (S.SENT.value, S.ACCEPTED.value)
_ENABLED_MEMO = "plugins.enabled"  # core.services.plugins' memo key, filled for the other party


@dataclass(frozen=True)
class SharedResident:
    """What the recipient of an accepted referral may copy about the resident (the consent's scopes)."""

    name: str
    phone: str
    address: str
    scopes: tuple[str, ...]


OnAccepted = Callable[[ServiceContext, Referral, SharedResident], Awaitable[None] | None]


@dataclass(frozen=True)
class ReferralTarget:
    """A plugin's service that receives referrals (hook `register_referral_targets`)."""

    name: str
    description: str
    receiving_permission: str
    on_accepted: OnAccepted | None = None


@dataclass(frozen=True)
class ReferralFilter:
    statuses: tuple[str, ...] = ()
    resident_id: int | None = None


NEWEST: Ordering[Referral] = Ordering("referrals_newest", (Referral.id,), lambda r: (r.id,), descending=True)


# -- the registry ------------------------------------------------------------------------------------------------


def registered_targets(ctx: ServiceContext) -> dict[str, tuple[str, ReferralTarget]]:
    """Referral targets of the loaded plugins: name -> (plugin, target). Without a plugin host: none."""
    call_each = getattr(ctx.events, "call_each", None)
    if call_each is None:
        return {}
    found: dict[str, tuple[str, ReferralTarget]] = {}
    for plugin, value in call_each("register_referral_targets"):
        for target in value or ():
            if not isinstance(target, ReferralTarget):
                raise TypeError(f"plugin {plugin.name!r}: register_referral_targets must return ReferralTarget")
            if target.name != plugin.name and not target.name.startswith(f"{plugin.name}."):
                raise ValueError(f"plugin {plugin.name!r}: referral target {target.name!r} outside its namespace")
            found.setdefault(target.name, (plugin.name, target))
    return found


def _target(ctx: ServiceContext, name: str, field: tuple[str, ...]) -> tuple[str, ReferralTarget]:
    found = registered_targets(ctx).get(name)
    if found is None:
        raise DomainError("REFERRAL_TARGET_UNKNOWN", "No service of that name takes referrals here.", field)
    return found


async def enabled_plugins_of(ctx: ServiceContext, organization_id: int) -> frozenset[str]:
    """The plugins `organization_id` enabled (a yes/no the caller may know about any organisation: the
    enablements themselves are the organisation's rows). Remembered for the request, so that events about
    a referral reach the plugins of the organisation they are delivered to."""
    key = (_ENABLED_MEMO, organization_id)
    cached = ctx.memo.get(key)  # type: ignore[call-overload]
    if cached is not None:
        return frozenset(cached)
    names = frozenset(await ctx.session.scalar(select(func.organization_enabled_plugins(organization_id))) or ())
    ctx.memo[key] = names  # type: ignore[index]
    return names


# -- scopes ------------------------------------------------------------------------------------------------------


def sent_scope(ctx: ServiceContext) -> ColumnElement[bool]:
    """Referrals of the caller's organisation the caller may see: see the module's docstring."""
    viewer = ctx.viewer
    role = access.role_of(viewer)
    if role == Role.PLATFORM_ADMIN and viewer.organization_id is None:
        return true()
    if viewer.organization_id is None:
        return false()
    in_organisation: ColumnElement[bool] = Referral.organization_id == viewer.organization_id
    if role in residents.ADMIN_ROLES or role == Role.SYSTEM:
        return in_organisation
    mine: ColumnElement[bool] = (
        Referral.sent_by_account_id == viewer.account_id if viewer.account_id is not None else false()
    )
    serving = Referral.resident_id.in_(select(Resident.id).where(residents.serving(ctx)))
    return in_organisation & or_(mine, serving)


def receivable_targets(ctx: ServiceContext) -> list[str]:
    """The targets whose referrals the viewer may answer (holding the target's receiving permission)."""
    return [name for name, (_p, t) in registered_targets(ctx).items() if access.can(ctx.viewer, t.receiving_permission)]


def received_scope(ctx: ServiceContext) -> ColumnElement[bool]:
    """Referrals to the viewer's organisation, for targets whose receiving permission the viewer holds, while
    not revoked and under a consent in force. Row-level security says the same (policy referral_received),
    but it cannot hide a referral between two services of ONE organisation: the sender's own tenant policy
    shows every row of the organisation. So the scope says it again, with the database's own function."""
    names = receivable_targets(ctx)
    if ctx.viewer.organization_id is None or not names:
        return Referral.id.is_(None)
    return (
        (Referral.target_organization_id == ctx.viewer.organization_id)
        & Referral.target_plugin.in_(names)
        & (Referral.status != ReferralStatus.REVOKED.value)
        & func.referral_consent_in_force(Referral.consent_id)
    )


# -- sending -------------------------------------------------------------------------------------------------------


async def send_referral(
    ctx: ServiceContext,
    *,
    resident_id: int,
    consent_id: int,
    summary: str,
    target_plugin: str | None = None,
    target_organization_id: int | None = None,
    target_outside: str | None = None,
    source_plugin: str = CORE_SOURCE,
    source_kind: str = "",
    source_id: int | None = None,
) -> Referral:
    """Refer the resident to a plugin's service of an organisation (`target_plugin`, `target_organization_id`)
    or to an outside organisation (`target_outside`), under `consent_id`, which must be the resident's, in
    force, and cover sharing the summary with that target (CONSENT_REQUIRED)."""
    v = Validator()
    clean_summary = check.text(v, ("input", "summary"), summary, max_length=MAX_SUMMARY, label=_("Summary"))
    outside = (target_outside or "").strip() or None
    to_plugin = target_plugin is not None or target_organization_id is not None
    v.check(
        to_plugin != (outside is not None),
        ("input", "targetPlugin"),
        "INVALID_INPUT",
        "Name either a service and its organisation, or an outside organisation.",
    )
    if to_plugin:
        v.check(target_plugin is not None, ("input", "targetPlugin"), "REQUIRED", "Name the service.")
        v.check(
            target_organization_id is not None, ("input", "targetOrganizationId"), "REQUIRED", "Name the organisation."
        )
    if outside is not None:
        check.text(v, ("input", "targetOutside"), outside, max_length=100)
    v.check(
        source_plugin == CORE_SOURCE or bool(PLUGIN_NAME.match(source_plugin or "")),
        ("input", "sourcePlugin"),
        "INVALID_INPUT",
        "Name the plugin the referral comes from.",
    )
    clean_kind = check.text(v, ("input", "sourceKind"), source_kind, max_length=40, required=False) or ""
    v.raise_if_any()
    resident = await residents.get_resident(ctx, resident_id)  # NOT_FOUND unless the caller sees them
    if not residents.is_staff(ctx.viewer) or resident.organization_id != ctx.viewer.organization_id:
        # Only the resident's own organisation refers its residents (a platform administrator included).
        raise DomainError("FORBIDDEN", "Only your organisation's residents.", ("input", "residentId"))
    if target_plugin is not None and target_organization_id is not None:
        _target(ctx, target_plugin, ("input", "targetPlugin"))
        plugin = target_plugin.partition(".")[0]
        if plugin not in await enabled_plugins_of(ctx, target_organization_id):
            # Also for an organisation that does not exist: the same answer, no oracle.
            raise DomainError(
                "REFERRAL_TARGET_DISABLED",
                "The receiving organisation does not use the {plugin} plugin.",
                ("input", "targetOrganizationId"),
                plugin=plugin,
            )
        target_kind, target_name = "plugin", target_plugin
    else:
        target_kind, target_name = "outside", outside or ""
    # Locked: a revocation racing this referral waits for it (and then ends the recipient's view of it).
    the_consent = await consent.get_consent(ctx, consent_id, lock=True)
    receiving = target_organization_id if target_kind == "plugin" else None
    if the_consent.resident_id != resident.id or not consent.allows(
        the_consent,
        target_name,
        [SENDING_SCOPE],
        ctx.now(),
        target_kind=target_kind,
        target_organization_id=receiving,
    ):
        raise DomainError(
            "CONSENT_REQUIRED", "The resident's consent does not cover this referral.", ("input", "consentId")
        )
    referral = Referral(
        organization_id=resident.organization_id,
        resident_id=resident.id,
        consent_id=the_consent.id,
        source_plugin=source_plugin,
        source_kind=clean_kind,
        source_id=source_id,
        target_plugin=target_plugin if target_kind == "plugin" else None,
        target_organization_id=target_organization_id if target_kind == "plugin" else None,
        target_outside=outside if target_kind == "outside" else None,
        summary=clean_summary,
        status=S.SENT.value,
        sent_by=ctx.viewer.label,
        sent_by_account_id=ctx.viewer.account_id,
        sent_at=ctx.now(),
    )
    ctx.session.add(referral)
    await flush(ctx)
    if referral.target_organization_id is not None and referral.target_plugin is not None:
        await ctx.publish(
            events.ReferralSent(
                organization_id=referral.target_organization_id,
                referral_id=referral.id,
                target_plugin=referral.target_plugin,
                sending_organization_id=referral.organization_id,
            )
        )
    return referral


def _step(referral: Referral, action: str) -> str:
    to = TRANSITIONS.get((referral.status, action))
    if to is None:
        raise DomainError(
            "INVALID_TRANSITION", "A {status} referral cannot be changed so.", ("input", "id"), status=referral.status
        )
    return to


async def get_sent(ctx: ServiceContext, referral_id: int, *, lock: bool = False) -> Referral:
    """A referral the caller's organisation sent, or NOT_FOUND."""
    access.require_signed_in(ctx)
    return await get(
        ctx, Referral, referral_id, what=_("Referral"), field=("input", "id"), lock=lock, scope=sent_scope(ctx)
    )


async def get_received(ctx: ServiceContext, referral_id: int, *, lock: bool = False) -> Referral:
    """A referral to the caller's organisation that the caller may answer, or NOT_FOUND (also once revoked,
    or once its consent ended: the database no longer shows it)."""
    access.require_signed_in(ctx)
    return await get(
        ctx, Referral, referral_id, what=_("Referral"), field=("input", "id"), lock=lock, scope=received_scope(ctx)
    )


async def revoke_referral(ctx: ServiceContext, referral_id: int, *, reason: str = "") -> Referral:
    """The sender withdraws a sent or accepted referral; the recipient stops seeing it at once."""
    v = Validator()
    clean_reason = check.text(v, ("input", "reason"), reason, max_length=MAX_REASON, required=False) or ""
    v.raise_if_any()
    referral = await get_sent(ctx, referral_id, lock=True)
    referral.status = _step(referral, "revoke")
    referral.revoked_by = ctx.viewer.label
    referral.revoked_at = ctx.now()
    referral.revoke_reason = clean_reason
    await flush(ctx)
    await _tell_recipient_revoked(ctx, referral)
    return referral


async def _tell_recipient_revoked(ctx: ServiceContext, referral: Referral) -> None:
    if referral.target_organization_id is not None and referral.target_plugin is not None:
        await enabled_plugins_of(ctx, referral.target_organization_id)
        await ctx.publish(
            events.ReferralRevoked(
                organization_id=referral.target_organization_id,
                referral_id=referral.id,
                target_plugin=referral.target_plugin,
                sending_organization_id=referral.organization_id,
            )
        )


async def lock_live_under(ctx: ServiceContext, consent_id: int) -> None:
    """Lock the live referrals under a consent (in id order), before the consent itself is locked to be
    revoked: the order an answering recipient takes the two in."""
    await ctx.session.execute(
        select(Referral.id)
        .where(Referral.consent_id == consent_id, Referral.status.in_(LIVE))
        .order_by(Referral.id)
        .with_for_update()
    )


async def revoke_under_consent(ctx: ServiceContext, consent_id: int) -> list[Referral]:
    """The consent was revoked (by `core.consent.revoke_consent`, in this transaction): revoke every live
    referral under it, reason "consent revoked", and tell each recipient (ReferralRevoked). One statement;
    a referral sent meanwhile under the consent is seen by it (READ COMMITTED, after the consent's lock)."""
    now = ctx.now()
    ended = list(
        await ctx.session.scalars(
            update(Referral)
            .where(Referral.consent_id == consent_id, Referral.status.in_(LIVE))
            .values(status=S.REVOKED.value, revoked_by=ctx.viewer.label, revoked_at=now, revoke_reason=CONSENT_REVOKED)
            .returning(Referral)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
    )
    for referral in sorted(ended, key=lambda r: r.id):
        await _tell_recipient_revoked(ctx, referral)
    return ended


async def _answering(ctx: ServiceContext, referral_id: int, action: str) -> tuple[Referral, ReferralTarget, str]:
    referral = await get_received(ctx, referral_id, lock=True)
    plugin, target = _target(ctx, referral.target_plugin or "", ("input", "id"))
    if plugin not in await enabled_plugins_of(ctx, referral.target_organization_id or 0):
        raise DomainError(
            "REFERRAL_TARGET_DISABLED",
            "Your organisation does not use the {plugin} plugin.",
            ("input", "id"),
            plugin=plugin,
        )
    to = _step(referral, action)
    # The consent FOR SHARE (after the referral, as a revocation takes them): a revocation committed since the
    # referral was read is seen here, and one under way waits for this answer. Not in force: gone, as RLS says.
    if not await ctx.session.scalar(select(func.referral_hold_consent(referral.id))):
        raise NotFound(_("Referral"), ("input", "id"))
    return referral, target, to


async def _answered(ctx: ServiceContext) -> None:
    """Write the answer. Zero rows updated means the row left the caller's view under it (the consent ended
    between the lock and the write, by a path that did not wait): NOT_FOUND, as a fresh read would say."""
    try:
        await flush(ctx)
    except StaleDataError as gone:
        raise NotFound(_("Referral"), ("input", "id")) from gone


async def _tell_sender(ctx: ServiceContext, referral: Referral, event: type[events.DomainEvent]) -> None:
    await enabled_plugins_of(ctx, referral.organization_id)
    await ctx.publish(
        event(  # type: ignore[call-arg]
            organization_id=referral.organization_id,
            referral_id=referral.id,
            target_plugin=referral.target_plugin or "",
            receiving_organization_id=referral.target_organization_id or 0,
        )
    )


async def shared_resident(ctx: ServiceContext, referral_id: int) -> SharedResident | None:
    """What the recipient of an accepted referral may copy about its resident, or None (not the recipient,
    not accepted, consent no longer in force)."""
    data: dict[str, Any] | None = await ctx.session.scalar(select(func.referral_shared_resident(referral_id)))
    if data is None:
        return None
    return SharedResident(name=data["name"], phone=data["phone"], address=data["address"], scopes=tuple(data["scopes"]))


async def accept_referral(ctx: ServiceContext, referral_id: int) -> Referral:
    """The recipient takes the referral on; the target plugin keeps its own record of the resident."""
    referral, target, to = await _answering(ctx, referral_id, "accept")
    referral.status = to
    referral.answered_by = ctx.viewer.label
    referral.answered_at = ctx.now()
    await _answered(ctx)
    if target.on_accepted is not None:
        shared = await shared_resident(ctx, referral.id)
        if shared is None:  # the row is visible and accepted in this transaction: the consent is in force
            raise DomainError("CONSENT_REQUIRED", "The resident's consent no longer covers this referral.")
        result = target.on_accepted(ctx, referral, shared)
        if inspect.isawaitable(result):
            await result
    await _tell_sender(ctx, referral, events.ReferralAccepted)
    return referral


async def decline_referral(ctx: ServiceContext, referral_id: int, *, reason: str) -> Referral:
    """The recipient declines, saying why (REQUIRED)."""
    v = Validator()
    clean_reason = check.text(v, ("input", "reason"), reason, max_length=MAX_REASON, label=_("Reason"))
    v.raise_if_any()
    referral, _target, to = await _answering(ctx, referral_id, "decline")
    referral.status = to
    referral.answered_by = ctx.viewer.label
    referral.answered_at = ctx.now()
    referral.decline_reason = clean_reason
    await _answered(ctx)
    await _tell_sender(ctx, referral, events.ReferralDeclined)
    return referral


async def complete_referral(ctx: ServiceContext, referral_id: int, *, note: str = "") -> Referral:
    """The recipient did what the referral asked for."""
    v = Validator()
    clean_note = check.text(v, ("input", "note"), note, max_length=MAX_REASON, required=False) or ""
    v.raise_if_any()
    referral, _target, to = await _answering(ctx, referral_id, "complete")
    referral.status = to
    referral.completed_by = ctx.viewer.label
    referral.completed_at = ctx.now()
    referral.completion_note = clean_note
    await _answered(ctx)
    await _tell_sender(ctx, referral, events.ReferralCompleted)
    return referral


async def referrals_by_id(ctx: ServiceContext, ids: list[int]) -> dict[int, Referral]:
    """The referrals among `ids` the caller may address, sent or received (node lookups, one query)."""
    if not ids:
        return {}
    rows = await ctx.session.scalars(
        select(Referral).where(Referral.id.in_(ids), sent_scope(ctx) | received_scope(ctx))
    )
    return {r.id: r for r in rows}


# -- lists ---------------------------------------------------------------------------------------------------------


def _filtered(stmt: Any, f: ReferralFilter) -> Any:
    if f.statuses:
        stmt = stmt.where(Referral.status.in_(list(f.statuses)))
    if f.resident_id is not None:
        stmt = stmt.where(Referral.resident_id == f.resident_id)
    return stmt


async def referrals_sent(
    ctx: ServiceContext, f: ReferralFilter = ReferralFilter(), *, first: int = 50, after: str | None = None
) -> Page[Referral]:
    """Referrals the caller's organisation sent, newest first."""
    access.require_signed_in(ctx)
    return await paginate(ctx, _filtered(select(Referral).where(sent_scope(ctx)), f), NEWEST, first=first, after=after)


async def referrals_received(
    ctx: ServiceContext, f: ReferralFilter = ReferralFilter(), *, first: int = 50, after: str | None = None
) -> Page[Referral]:
    """Referrals to the caller's organisation the caller may answer, newest first: live ones under a
    consent in force (received_scope; row-level security agrees)."""
    access.require_signed_in(ctx)
    stmt = _filtered(select(Referral).where(received_scope(ctx)), ReferralFilter(statuses=f.statuses))
    return await paginate(ctx, stmt, NEWEST, first=first, after=after)


def statuses(values: Sequence[str]) -> tuple[str, ...]:
    """Validated status filter values."""
    known = {s.value for s in ReferralStatus}
    unknown = sorted(set(values) - known)
    if unknown:
        raise DomainError("INVALID_INPUT", "Unknown statuses: {values}.", ("statuses",), values=tuple(unknown))
    return tuple(values)
