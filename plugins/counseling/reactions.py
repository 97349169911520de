"""Counseling's reactions: a maternal-care high-risk grade that names counseling (`maternal_care.risk_raised`
with "counseling" in `refer_to`) refers the mother to counseling of her own organisation.

Counseling's intake for a resident of its own organisation is core's referral (`core.referrals`): counselors
see it among the referrals received and accept it (`client_for_referral` then makes her a client) or decline
it. A referral shares a summary that says she is a high-risk pregnancy: a health detail, for counselors who
have not met her. So, the rule: the referral is sent only under her consent in force to counseling of her
organisation covering `summary` and `health` (core.consent.covering; core's referrals require a consent
anyway). Without it nothing reaches counseling (counseling keeps no queue of its own: a queue entry would
itself tell its staff of her pregnancy); her own social worker -- who serves her and knows already -- is told
that the referral waits for her consent (`counseling.referral_consent_required`), and a later raise naming
counseling sends it once she has consented (or he sends it himself, `sendReferral`). One referral per
pregnancy while it is live (sent or accepted): a redelivered or later raise sends no second one.

Counseling knows maternal care only by the event's name and fields (no import). The referral is sent as the
system of the event's organisation (the staff member who graded her holds no counseling permission), inside
the grading's transaction, in a savepoint: a refusal is logged and the grade stands.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

import core
from core import tenancy
from core.models import Account, Referral, Resident

logger = logging.getLogger(__name__)

MATERNAL_RISK_RAISED = "maternal_care.risk_raised"
COUNSELING = "counseling"
CONSENT_SCOPES = ("summary", "health")
SOURCE_PLUGIN = "maternal_care"
SOURCE_KIND = "pregnancy"
LIVE = ("sent", "accepted")
ACTOR = "系统（孕产妇高危转介心理咨询）"
# The summary is written once, in the organisation's language (like a staff member's own summary): data, not
# a message translated when shown.
COLOURS = {"orange": "橙色", "red": "红色"}


@contextlib.asynccontextmanager
async def as_system(ctx: core.ServiceContext, organization_id: int) -> AsyncIterator[core.ServiceContext]:
    """The work a reaction does, as the system of `organization_id`, in the caller's transaction (as casework's
    reactions do; a public core helper would serve both)."""
    system = core.Viewer(label=ACTOR, role="system", organization_id=organization_id)
    inner = core.ServiceContext(
        session=ctx.session,
        viewer=system,
        clock=ctx.clock,
        events=ctx.events,
        policy=ctx.policy,
        pending_write=ctx.pending_write,
    )
    await tenancy.rebind(ctx.session, system)
    ok = False
    try:
        yield inner
        ok = True
    finally:
        if ok:
            await tenancy.rebind(ctx.session, ctx.viewer)
        else:
            tenancy.bind(ctx.session, ctx.viewer)


def summary(colour: object, infectious: object) -> str:
    grade = "、".join([*([COLOURS[str(colour)]] if str(colour) in COLOURS else []), *(["紫色"] if infectious else [])])
    return f"孕产妇高危（{grade or '高危'}），转介心理咨询评估与支持"


async def on_maternal_risk_raised(ctx: core.ServiceContext, event: core.DomainEvent) -> Referral | None:
    data = event.data()
    if COUNSELING not in (data.get("refer_to") or ()):
        return None
    resident_id, pregnancy_id = data.get("resident_id"), data.get("pregnancy_id")
    if not isinstance(resident_id, int) or not isinstance(pregnancy_id, int):
        return None
    async with as_system(ctx, event.organization_id) as system:
        resident = await system.session.get(Resident, resident_id)
        if resident is None:
            return None
        live = await system.session.scalar(
            select(Referral.id).where(
                Referral.resident_id == resident.id,
                Referral.target_plugin == COUNSELING,
                Referral.target_organization_id == event.organization_id,
                Referral.source_plugin == SOURCE_PLUGIN,
                Referral.source_kind == SOURCE_KIND,
                Referral.source_id == pregnancy_id,
                Referral.status.in_(LIVE),
            )
        )
        if live is not None:  # referred already: a redelivery or a later raise of the same pregnancy
            return None
        consent = await core.consent.covering(
            system, resident.id, COUNSELING, CONSENT_SCOPES, target_organization_id=event.organization_id
        )
        if consent is None:
            await _ask_for_consent(system, data.get("social_worker_account_id"), resident.id, pregnancy_id)
            return None
        try:
            async with system.session.begin_nested():
                return await core.referrals.send_referral(
                    system,
                    resident_id=resident.id,
                    consent_id=consent.id,
                    summary=summary(data.get("colour"), data.get("infectious")),
                    target_plugin=COUNSELING,
                    target_organization_id=event.organization_id,
                    source_plugin=SOURCE_PLUGIN,
                    source_kind=SOURCE_KIND,
                    source_id=pregnancy_id,
                )
        except (core.DomainError, DBAPIError) as refusal:  # the grade must not depend on counseling's answer
            logger.warning(
                "counseling: no referral for pregnancy %s (%s)",
                pregnancy_id,
                getattr(refusal, "code", type(refusal).__name__),
            )
            return None


async def _ask_for_consent(ctx: core.ServiceContext, worker: object, resident_id: int, pregnancy_id: int) -> None:
    """Tell her own social worker (he serves her: he learns nothing new) that the referral waits for her
    consent; once per pregnancy. With nobody named, nobody is told: counseling learns nothing either way."""
    if not isinstance(worker, int):
        return
    account = await ctx.session.get(Account, worker)  # row-level security: this organisation's accounts only
    if account is None or account.organization_id != ctx.viewer.organization_id:
        return
    await core.notify(
        ctx,
        "counseling.referral_consent_required",
        core.Recipient.account(worker),
        {"resident": resident_id, "pregnancy": pregnancy_id},
        source=COUNSELING,
        dedupe_key=f"counseling.referral_consent:{pregnancy_id}",
    )


@core.hookimpl
async def on_event(event: core.DomainEvent, ctx: core.ServiceContext) -> None:
    """Wired in plugin.py (`from plugins.counseling.reactions import on_event`)."""
    if event.name == MATERNAL_RISK_RAISED:
        await on_maternal_risk_raised(ctx, event)
