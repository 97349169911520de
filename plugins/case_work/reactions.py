"""Casework's reactions: cases that open themselves from what other parts of the platform report.

- A counseling risk flag (`counseling.risk_raised`) opens a case for the flagged resident, assigned to the social
  worker serving the resident's community (core's `community_liaisons`, role 'social_worker': that liaison's
  volunteer record, the social worker's account with that volunteer id), supervised by a holder of
  `case_work.supervisor` who is not that worker -- or, when the resident has an open case already, is attached
  to it (and raises its risk when the flag is graver).
- A help request tagged for casework (`tag_help_request`: a social worker or administrator) opens a case when
  it is verified (`help_request.verified`), or at once when tagged after verification; the client is a resident
  made from the requester through core's residents service (the same name and phone find the same resident).
  Its worker is the tagging social worker, else the one serving the request's community.
- A maternal-care high-risk flag (`maternal_care.risk_raised`: a pregnancy graded orange or red, or purple)
  refers the mother to casework, category `maternal`, when the staff member who graded her named casework
  (`refer_to`, default casework; counseling reacts by its own rules when named), and only to her own social
  worker (the one the event names): a pregnancy and its risk are health details no other worker is to learn of.
  So the case is hers, or joins the mother's open case when that case is hers too; with no own worker, or an open
  case held by someone else, the referral waits in the queue for a supervisor (never the worker serving her
  community, never another worker's case). One intake per pregnancy: a later raise of the same pregnancy
  raises the risk of what that intake became instead of opening a second case, and:
  - only her own social worker: when the case it became has a worker who is not her own worker now (the case
    was transferred, or she has another worker), nothing is raised on it: the intake goes back to the queue;
  - a queued intake is routed when a later raise names her own worker (the same intake: no second one);
  - once that case is closed, a later raise is routed again (a new case, or the queue).
  Casework knows maternal care only by the event's name and fields (no import), as it knows counseling.
- Consent (health details: a maternal raise, a counseling risk flag). Within one organisation a source may tell
  without asking only a worker who serves her already: her own maternal social worker (he keeps her maternal
  record), or the worker of her open case (joining it). Anyone else -- a new case for the worker serving her
  community, a worker a supervisor picks from the queue -- learns it only under her consent in force to casework
  of her organisation covering `summary` and `health` (core.consent.covering, target `case_work`). Without it
  nothing of her health is copied (no case, no risk raised, nobody told): the intake waits with the reason
  `consent_required`, and a supervisor's `open_from_intake` is refused (CONSENT_REQUIRED) until she consents.
- Whatever cannot be assigned (nobody serves the community, no supervisor, no resident) waits in the intake
  queue (`list_intakes`), which supervisors and administrators turn into cases (`open_from_intake`).

Exactly once: every source is claimed first in `case_work_intakes`, unique per organisation, kind and id; a
second delivery of the same event (a retry, a concurrent duplicate waiting on the first's row) finds the claim
and does nothing. A reaction runs inside the transaction that caused it (a risk flag, a verification), whoever
caused it -- a counselor or a community head holds no casework permission -- so the casework it does acts as the
system *of the event's organisation* (row-level security keeps it there), recorded as such in the case's
history; it never acts on what the caller could not name, since it reads only the records the event names.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from sqlalchemy import false, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ColumnElement

import core
from core import tenancy
from core.i18n import _
from core.models import Account, AccountPluginRole, CommunityLiaison, Resident
from plugins.case_work import services
from plugins.case_work.models import CATEGORIES, RISK_LEVELS, Case, Client
from plugins.case_work.reaction_models import INTAKE_STATUSES, Intake, RequestTag

logger = logging.getLogger(__name__)

RISK_FLAG = "counseling_risk_flag"
HELP_REQUEST = "help_request"
MATERNAL_RISK = "maternal_risk"
RISK_RAISED = "counseling.risk_raised"
MATERNAL_RISK_RAISED = "maternal_care.risk_raised"
# 五色管理 in casework's terms: red is high risk; orange, and purple (an infectious disease) alone, medium.
MATERNAL_RISK_LEVELS = {"red": "high", "orange": "medium"}
# A request is verified from then on (a tag on one of these opens its case at once).
VERIFIED = frozenset({"verified", "matched", "in_progress", "fulfilled"})
ENDED = frozenset({"rejected", "cancelled"})
MAX_ADDRESS = 200  # core's residents keep at most this much of an address
# Health details (a pregnancy's risk, a counseling risk flag) reach a worker who does not serve the resident yet
# only under her consent to casework (core.consent), covering these scopes, for her own organisation.
CASE_WORK = "case_work"
CONSENT_SCOPES = ("summary", "health")
CONSENT_REQUIRED = "consent_required"  # the queue reason (w013)

INTAKES_NEWEST: core.Ordering[Intake] = core.Ordering(
    "case_work_intakes_newest", (Intake.id,), lambda i: (i.id,), descending=True
)
CONSTRAINT_ERRORS: dict[str, tuple[str, str, tuple[str, ...] | None]] = {
    "uq_case_work_request_tags_organization_id_help_request_id": (
        "ALREADY_EXISTS",
        "This help request is tagged for casework already.",
        ("input", "helpRequestId"),
    ),
}


@dataclass(frozen=True)
class IntakeFilter:
    statuses: tuple[str, ...] = ()


# -- acting as the organisation ---------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def as_system(ctx: core.ServiceContext, organization_id: int, label: str) -> AsyncIterator[core.ServiceContext]:
    """The casework a reaction does, as the system of `organization_id` (every casework permission, that
    organisation's rows only), in the caller's transaction; the caller's settings are back afterwards.

    Why not the caller: the counselor who raised a flag or the head who verified a request may not open cases,
    and the case must not claim they did. (A public core helper would serve every plugin's reactions: see the
    report; this is that helper, kept here until core has it.)"""
    system = core.Viewer(label=label[:100], role="system", organization_id=organization_id)
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
        else:  # the transaction may be failed: no statement now; the caller's next statement re-applies
            tenancy.bind(ctx.session, ctx.viewer)


# -- who serves, who supervises -----------------------------------------------------------------------------------


async def serving_worker(ctx: core.ServiceContext, community_id: int | None) -> int | None:
    """The account of the social worker serving `community_id` (its liaison seat), if active."""
    if community_id is None:
        return None
    found: int | None = await ctx.session.scalar(
        select(Account.id)
        .join(CommunityLiaison, CommunityLiaison.volunteer_id == Account.volunteer_id)
        .where(
            CommunityLiaison.community_id == community_id,
            CommunityLiaison.role == services.SOCIAL_WORKER,
            Account.role == services.SOCIAL_WORKER,
            Account.is_active.is_(True),
        )
        .order_by(CommunityLiaison.id)
        .limit(1)
    )
    return found


async def a_supervisor(ctx: core.ServiceContext, organization_id: int, worker: int) -> int | None:
    """An active holder of the supervisor role in the organisation who is not `worker` (the longest-standing)."""
    found: int | None = await ctx.session.scalar(
        select(Account.id)
        .join(AccountPluginRole, AccountPluginRole.account_id == Account.id)
        .where(
            AccountPluginRole.role == services.SUPERVISOR_ROLE,
            Account.organization_id == organization_id,
            Account.is_active.is_(True),
            Account.id != worker,
        )
        .order_by(Account.id)
        .limit(1)
    )
    return found


# -- the one path every source takes ------------------------------------------------------------------------------


async def _claim(
    ctx: core.ServiceContext, kind: str, source_id: int, risk_level: str, community_id: int | None
) -> Intake | None:
    """Claim a source for this transaction (queued until routed), or None: handled already."""
    claimed = await ctx.session.scalar(
        insert(Intake)
        .values(
            source_kind=kind,
            source_id=source_id,
            community_id=community_id,
            risk_level=risk_level,
            status="queued",
            queue_reason="no_resident",
            received_at=ctx.now(),
            organization_id=ctx.viewer.organization_id,
        )
        .on_conflict_do_nothing(constraint="uq_case_work_intakes_organization_id_source_kind_source_id")
        .returning(Intake.id)
    )
    if claimed is None:
        return None
    return await ctx.session.get(Intake, claimed)


async def _open_case_of(ctx: core.ServiceContext, resident_id: int) -> Case | None:
    """The resident's open case (the newest, should there be several), locked."""
    found: Case | None = await ctx.session.scalar(
        select(Case)
        .join(Client, Client.id == Case.client_id)
        .where(Client.resident_id == resident_id, Case.stage.not_in(list(services.CLOSED)))
        .order_by(Case.id.desc())
        .limit(1)
        .with_for_update(of=Case)
    )
    return found


async def consented(ctx: core.ServiceContext, resident_id: int | None) -> bool:
    """Whether the resident's consent in force lets casework of her organisation learn her health details
    (core.consent.covering: target `case_work`, scopes summary and health)."""
    if resident_id is None:
        return False
    found = await core.consent.covering(
        ctx, resident_id, CASE_WORK, CONSENT_SCOPES, target_organization_id=ctx.viewer.organization_id
    )
    return found is not None


async def _route(
    ctx: core.ServiceContext,
    intake: Intake,
    *,
    category: str,
    reason: str,
    worker: int | None = None,
    only_worker: bool = False,
    consent: bool = True,
) -> Intake:
    """Attach the intake to its resident's open case, or open one, or leave it queued saying why. A refusal by
    casework (a rule, a constraint) queues the intake as `refused` instead of failing the change that caused the
    event: a counselor's risk flag or a coordinator's verification must not depend on casework's answer.

    `only_worker`: the source may reach `worker` and nobody else (no community fallback, no other worker's
    case), since what it says is not for them. `consent`: whether the resident consented to casework learning
    what the source says; without it, only a worker who serves her already learns it (the worker of her open
    case; `worker` when `only_worker`: her own), and anything else waits as `consent_required`."""
    if intake.resident_id is None:
        return await _queue(ctx, intake, "no_resident")
    if only_worker and worker is None:
        return await _queue(ctx, intake, "no_social_worker" if consent else CONSENT_REQUIRED)
    try:
        async with ctx.session.begin_nested():
            return await _attach_or_open(
                ctx, intake, category=category, reason=reason, worker=worker, only_worker=only_worker, consent=consent
            )
    except (core.DomainError, DBAPIError) as refusal:
        logger.warning(
            "case_work: intake %s (%s %s) queued: casework refused (%s)",
            intake.id,
            intake.source_kind,
            intake.source_id,
            getattr(refusal, "code", type(refusal).__name__),
        )
        await ctx.session.refresh(intake)
        return await _queue(ctx, intake, "refused")


async def _attach_or_open(
    ctx: core.ServiceContext,
    intake: Intake,
    *,
    category: str,
    reason: str,
    worker: int | None,
    only_worker: bool,
    consent: bool,
) -> Intake:
    assert intake.resident_id is not None
    case = await _open_case_of(ctx, intake.resident_id)
    if case is not None and only_worker and case.social_worker_account_id != worker:
        # Joining would tell the case's worker what is not for them: a supervisor decides (open_from_intake).
        logger.warning(
            "case_work: intake %s (%s %s) queued: the resident's open case %s is another worker's",
            intake.id,
            intake.source_kind,
            intake.source_id,
            case.id,
        )
        return await _queue(ctx, intake, "refused" if consent else CONSENT_REQUIRED)
    if case is not None:  # its worker serves her already: joining tells nobody new
        if RISK_LEVELS.index(intake.risk_level) > RISK_LEVELS.index(case.risk_level):
            await services.update_case(ctx, case.id, risk_level=intake.risk_level, reason=reason)
        return await _settle(ctx, intake, "attached", case, ctx.viewer.account_id)
    if not consent and not only_worker:
        # A new case would be the community's worker's (or the queue's): someone she has not met learns it.
        return await _queue(ctx, intake, CONSENT_REQUIRED)
    worker = worker or await serving_worker(ctx, intake.community_id)
    if worker is None:
        return await _queue(ctx, intake, "no_social_worker")
    supervisor = await a_supervisor(ctx, intake.organization_id, worker)
    if supervisor is None:
        return await _queue(ctx, intake, "no_supervisor")
    case = await services.open_case(
        ctx,
        category=category,
        risk_level=intake.risk_level,
        supervisor_account_id=supervisor,
        social_worker_account_id=worker,
        resident_id=intake.resident_id,
        source_kind=intake.source_kind,
        source_id=intake.source_id,
        reason=reason,
    )
    return await _settle(ctx, intake, "opened", case, None)


async def _queue(ctx: core.ServiceContext, intake: Intake, why: str) -> Intake:
    intake.queue_reason = why
    await core.flush(ctx)
    return intake


async def _settle(ctx: core.ServiceContext, intake: Intake, status: str, case: Case, handled_by: int | None) -> Intake:
    intake.status = status
    intake.queue_reason = None
    intake.case_id = case.id
    intake.handled_at = ctx.now()
    intake.handled_by_account_id = handled_by
    await core.flush(ctx)
    # The worker hears of it (once per intake and case, whatever runs this again; a maternal intake routed
    # again after its case closed settles on another case).
    await core.notify(
        ctx,
        f"case_work.intake_{status}",
        core.Recipient.account(case.social_worker_account_id),
        {"case": case.id, "source_kind": intake.source_kind, "source_id": intake.source_id},
        source="case_work",
        dedupe_key=f"case_work.intake:{intake.id}:{case.id}",
    )
    return intake


# -- counseling risk flags ----------------------------------------------------------------------------------------


async def on_risk_raised(ctx: core.ServiceContext, event: core.DomainEvent) -> Intake | None:
    data = event.data()
    severity = str(data.get("severity"))
    if severity not in RISK_LEVELS:  # a severity casework does not know: the flag stays counseling's
        return None
    async with as_system(ctx, event.organization_id, ACTORS[RISK_FLAG]) as system:
        resident_id = data.get("resident_id")
        resident = None if resident_id is None else await system.session.get(Resident, int(resident_id))
        intake = await _claim(
            system, RISK_FLAG, int(data["flag_id"]), severity, None if resident is None else resident.community_id
        )
        if intake is None:
            return None
        intake.resident_id = None if resident is None else resident.id
        consent = await consented(system, intake.resident_id)
        return await _route(system, intake, category="mental_health", reason=REASONS[RISK_FLAG], consent=consent)


# -- maternal-care high-risk flags ----------------------------------------------------------------------------------


def maternal_risk_level(colour: object, infectious: object) -> str | None:
    """Casework's risk level for a maternal-care grade, or None when the grade is not high (nothing to refer)."""
    level = MATERNAL_RISK_LEVELS.get(str(colour))
    if level is None and infectious is True:
        level = "medium"
    return level


async def on_maternal_risk_raised(ctx: core.ServiceContext, event: core.DomainEvent) -> Intake | None:
    """Refer a high-risk mother to casework: open a `maternal` case for her resident assigned to her own social
    worker (the one the event names), or join her open case when it is that worker's, or queue.

    Keyed by pregnancy: the first raise claims the intake; a later one (orange, then red) finds the claim and
    raises the risk of what it became -- a redelivered event, at the same grade, changes nothing -- or, when
    what it became is closed, routes the intake again."""
    data = event.data()
    level = maternal_risk_level(data.get("colour"), data.get("infectious"))
    pregnancy_id = data.get("pregnancy_id")
    # Referred here only when the grading staff member named casework (an event without the list: casework).
    if level is None or pregnancy_id is None or CASE_WORK not in (data.get("refer_to") or (CASE_WORK,)):
        return None
    async with as_system(ctx, event.organization_id, ACTORS[MATERNAL_RISK]) as system:
        resident_id = data.get("resident_id")
        resident = None if resident_id is None else await system.session.get(Resident, int(resident_id))
        community_id = data.get("community_id")
        if community_id is None and resident is not None:
            community_id = resident.community_id
        intake = await _claim(
            system, MATERNAL_RISK, int(pregnancy_id), level, None if community_id is None else int(community_id)
        )
        worker = await _named_worker(system, data.get("social_worker_account_id"))
        consent = await consented(system, None if resident is None else resident.id)
        if intake is None:
            return await _raise_claimed(system, int(pregnancy_id), level, resident, worker, consent)
        intake.resident_id = None if resident is None else resident.id
        return await _route(
            system,
            intake,
            category="maternal",
            reason=REASONS[MATERNAL_RISK],
            worker=worker,
            only_worker=True,
            consent=consent,
        )


async def _named_worker(ctx: core.ServiceContext, account_id: object) -> int | None:
    """The account the event names as serving the person, if it is an active social worker of this organisation
    (row-level security keeps other organisations' accounts out); else None, and the referral waits."""
    if not isinstance(account_id, int):
        return None
    found: int | None = await ctx.session.scalar(
        select(Account.id).where(
            Account.id == account_id,
            Account.organization_id == ctx.viewer.organization_id,
            Account.role == services.SOCIAL_WORKER,
            Account.is_active.is_(True),
        )
    )
    return found


async def _raise_claimed(
    ctx: core.ServiceContext,
    pregnancy_id: int,
    level: str,
    resident: Resident | None,
    worker: int | None,
    consent: bool,
) -> Intake | None:
    """A later raise of a pregnancy referred already (`worker`: her own social worker now, if any):

    - the case it became (or joined) is closed: the raise is a new referral of the same intake (a new case for
      her worker, or the queue), whatever its grade: dropping it would leave a high-risk mother with nobody told;
    - the case is open but no longer her own worker's (transferred, or she has another worker now): nothing is
      raised on another worker's case; the intake goes back to the queue for a supervisor;
    - the intake waits in the queue: it waits at the graver level, and when the raise names her own worker it is
      routed to him now (the same intake: never a second one);
    - the case is her worker's and open: its risk is raised, with casework's history, when the grade is graver."""
    intake = await ctx.session.scalar(
        select(Intake).where(Intake.source_kind == MATERNAL_RISK, Intake.source_id == pregnancy_id).with_for_update()
    )
    if intake is None:
        return None
    if resident is not None and intake.resident_id is None:
        intake.resident_id = resident.id
    graver = RISK_LEVELS.index(level) > RISK_LEVELS.index(intake.risk_level)
    if graver:
        intake.risk_level = level
    case = None if intake.case_id is None else await ctx.session.get(Case, intake.case_id, populate_existing=True)
    if intake.case_id is not None and (case is None or case.stage in services.CLOSED):
        _requeue(intake, level)
        await core.flush(ctx)
        return await _route(
            ctx,
            intake,
            category="maternal",
            reason=REASONS[MATERNAL_RISK],
            worker=worker,
            only_worker=True,
            consent=consent,
        )
    if case is not None and case.social_worker_account_id != worker:
        # Only her own social worker learns of her pregnancy's risk: a supervisor decides (open_from_intake).
        logger.warning(
            "case_work: maternal intake %s back in the queue: its case %s is no longer her own worker's",
            intake.id,
            case.id,
        )
        _requeue(intake, intake.risk_level)
        return await _queue(ctx, intake, "refused" if consent else CONSENT_REQUIRED)
    if case is None:  # queued
        await core.flush(ctx)
        if worker is None:
            if intake.queue_reason in ("no_social_worker", CONSENT_REQUIRED):  # the reason follows her consent
                return await _queue(ctx, intake, "no_social_worker" if consent else CONSENT_REQUIRED)
            return intake
        return await _route(
            ctx,
            intake,
            category="maternal",
            reason=REASONS[MATERNAL_RISK],
            worker=worker,
            only_worker=True,
            consent=consent,
        )
    await core.flush(ctx)
    if not graver or RISK_LEVELS.index(level) <= RISK_LEVELS.index(case.risk_level):
        return intake if graver else None
    try:
        async with ctx.session.begin_nested():
            await services.update_case(ctx, case.id, risk_level=level, reason=REASONS[MATERNAL_RISK])
    except (core.DomainError, DBAPIError) as refusal:  # the registry's change must not depend on casework
        logger.warning(
            "case_work: case %s kept its risk on a maternal raise (%s)",
            case.id,
            getattr(refusal, "code", type(refusal).__name__),
        )
    return intake


def _requeue(intake: Intake, level: str) -> None:
    """Back to the queue (the caller routes it or says why it waits): no case, not handled."""
    intake.status = "queued"
    intake.queue_reason = "no_resident"  # until routed or queued by the caller
    intake.case_id = None
    intake.handled_at = None
    intake.handled_by_account_id = None
    intake.risk_level = level


# -- help requests tagged for casework ------------------------------------------------------------------------------


async def tag_help_request(
    ctx: core.ServiceContext, help_request_id: int, *, category: str, risk_level: str, reason: str = ""
) -> RequestTag:
    """Tag a help request for casework: a social worker or an administrator of the request's organisation.
    Its verification opens a case; a request verified already opens it now."""
    core.require(ctx, services.MANAGE)
    if ctx.viewer.account_id is None:
        raise core.DomainError("FORBIDDEN", "You may not do this.")
    v = core.Validator()
    v.check(category in CATEGORIES, ("input", "category"), "INVALID_INPUT", "Unknown category.")
    v.check(risk_level in RISK_LEVELS, ("input", "riskLevel"), "INVALID_INPUT", "Risk is low, medium or high.")
    clean = reason.strip()
    v.check(len(clean) <= 2000, ("input", "reason"), "OUT_OF_RANGE", "At most 2000 characters.")
    v.raise_if_any()
    request = await core.get_row(
        ctx,
        core.HelpRequest,
        help_request_id,
        what=_("Help request"),
        field=("input", "helpRequestId"),
        lock=True,
        scope=core.request_scope(ctx.viewer),
    )
    if request.organization_id != ctx.viewer.organization_id:  # a platform administrator sees others' requests
        raise core.NotFound(_("Help request"), ("input", "helpRequestId"))
    if request.status in ENDED:
        raise core.DomainError(
            "INVALID_TRANSITION", "The help request was rejected or cancelled.", ("input", "helpRequestId")
        )
    tagged = await ctx.session.scalar(select(RequestTag.id).where(RequestTag.help_request_id == request.id))
    if tagged is not None:
        raise core.DomainError(
            "ALREADY_EXISTS", "This help request is tagged for casework already.", ("input", "helpRequestId")
        )
    tag = RequestTag(
        help_request_id=request.id,
        category=category,
        risk_level=risk_level,
        reason=clean,
        tagged_by_account_id=ctx.viewer.account_id,
        tagged_by=ctx.viewer.label[:100],
        tagged_at=ctx.now(),
        organization_id=request.organization_id,
    )
    ctx.session.add(tag)
    await core.flush(ctx, CONSTRAINT_ERRORS)
    if request.status in VERIFIED:
        await _open_for_request(ctx, tag, request)
    return tag


async def on_request_verified(ctx: core.ServiceContext, event: core.DomainEvent) -> Intake | None:
    request_id = int(event.data()["request_id"])
    async with as_system(ctx, event.organization_id, ACTORS[HELP_REQUEST]) as system:
        tag = await system.session.scalar(select(RequestTag).where(RequestTag.help_request_id == request_id))
        if tag is None:
            return None
        request = await system.session.get(core.HelpRequest, request_id)
        assert request is not None
        return await _open_for_request(system, tag, request, in_system=True)


async def _open_for_request(
    ctx: core.ServiceContext, tag: RequestTag, request: core.HelpRequest, *, in_system: bool = False
) -> Intake | None:
    if not in_system:
        async with as_system(ctx, request.organization_id, ACTORS[HELP_REQUEST]) as system:
            return await _open_for_request(system, tag, request, in_system=True)
    intake = await _claim(ctx, HELP_REQUEST, request.id, tag.risk_level, request.community_id)
    if intake is None:
        return None
    intake.resident_id = (await _requester(ctx, request)).id
    tagger = await ctx.session.get(Account, tag.tagged_by_account_id)
    worker = tagger.id if tagger is not None and tagger.role == services.SOCIAL_WORKER and tagger.is_active else None
    return await _route(ctx, intake, category=tag.category, reason=tag.reason or REASONS[HELP_REQUEST], worker=worker)


async def _requester(ctx: core.ServiceContext, request: core.HelpRequest) -> Resident:
    """The requester as a resident of the request's organisation: the one with the same name and phone, else a
    new one (without the phone or address, should core's rules refuse them as written on the request)."""
    name = request.requester_name.strip()
    phone = request.requester_phone.strip()
    if phone:
        same = await ctx.session.scalar(
            select(Resident)
            .where(Resident.organization_id == request.organization_id, Resident.name == name, Resident.phone == phone)
            .order_by(Resident.id)
            .limit(1)
        )
        if same is not None:
            return same
    address = (request.requester_address or "").strip()[:MAX_ADDRESS]
    try:
        return await core.residents.create_resident(
            ctx, name=name, community_id=request.community_id, phone=phone, address=address
        )
    except core.DomainError:
        # Validation refuses before anything is written: keep the person, drop what did not validate.
        return await core.residents.create_resident(ctx, name=name[:50], community_id=request.community_id)


# -- the intake queue -------------------------------------------------------------------------------------------------


def may_triage(viewer: core.Viewer) -> bool:
    """Supervisors (the plugin role) and administrators list the queue and turn intakes into cases."""
    return viewer.organization_id is not None and (
        viewer.role in services.ADMIN_ROLES or core.can(viewer, services.SUPERVISE)
    )


def intake_scope(ctx: core.ServiceContext) -> ColumnElement[bool]:
    """The intakes of the caller's organisation, for supervisors and administrators; nothing for others."""
    if not core.can(ctx.viewer, services.MANAGE) or not may_triage(ctx.viewer):
        return false()
    column: ColumnElement[bool] = Intake.organization_id == ctx.viewer.organization_id
    return column


def _require_triage(ctx: core.ServiceContext) -> None:
    core.require(ctx, services.MANAGE)
    if not may_triage(ctx.viewer):
        raise core.DomainError("FORBIDDEN", "You may not do this.")


async def list_intakes(
    ctx: core.ServiceContext, f: IntakeFilter = IntakeFilter(), *, first: int = 50, after: str | None = None
) -> core.Page[Intake]:
    """The organisation's intakes, newest first (the queue: statuses ['queued'])."""
    _require_triage(ctx)
    unknown = [s for s in f.statuses if s not in INTAKE_STATUSES]
    if unknown:
        raise core.DomainError("INVALID_INPUT", "Unknown statuses.", ("filter", "statuses"))
    stmt = select(Intake).where(intake_scope(ctx))
    if f.statuses:
        stmt = stmt.where(Intake.status.in_(list(f.statuses)))
    return await core.paginate(ctx, stmt, INTAKES_NEWEST, first=first, after=after)


async def open_from_intake(
    ctx: core.ServiceContext,
    intake_id: int,
    *,
    social_worker_account_id: int,
    supervisor_account_id: int | None = None,
    category: str,
    risk_level: str | None = None,
    reason: str = "",
) -> Intake:
    """Turn a queued intake into a case (a supervisor or an administrator), assigned to the social worker and
    supervisor named (default supervisor: the caller, if they hold the role). The case's rules are
    services.open_case's: an active social worker, a supervisor holding the role who is not the worker."""
    _require_triage(ctx)
    if ctx.viewer.account_id is None:
        raise core.DomainError("FORBIDDEN", "You may not do this.")
    intake: Intake = await core.get_row(
        ctx, Intake, intake_id, what=_("Intake"), field=("input", "id"), lock=True, scope=intake_scope(ctx)
    )
    if intake.status != "queued":
        raise core.DomainError("INVALID_TRANSITION", "This intake has been handled already.", ("input", "id"))
    if intake.resident_id is None:
        raise core.DomainError("INVALID_INPUT", "The intake names nobody to open a case for.", ("input", "id"))
    if intake.queue_reason == CONSENT_REQUIRED:
        # What it says (her pregnancy's risk, a counseling flag) is for a worker she has not consented to: her
        # consent to casework first (recorded since: the check is now, as the system of her organisation).
        async with as_system(ctx, intake.organization_id, ctx.viewer.label) as system:
            allowed = await consented(system, intake.resident_id)
        if not allowed:
            raise core.DomainError(
                "CONSENT_REQUIRED", "The resident's consent does not cover casework learning this.", ("input", "id")
            )
    if supervisor_account_id is None:
        if not core.can(ctx.viewer, services.SUPERVISE):
            raise core.DomainError("REQUIRED", "Name the case's supervisor.", ("input", "supervisorId"))
        supervisor_account_id = ctx.viewer.account_id
    actor = ctx.viewer.account_id
    async with as_system(ctx, intake.organization_id, ctx.viewer.label) as system:
        case = await services.open_case(
            system,
            category=category,
            risk_level=risk_level or intake.risk_level,
            supervisor_account_id=supervisor_account_id,
            social_worker_account_id=social_worker_account_id,
            resident_id=intake.resident_id,
            source_kind=intake.source_kind,
            source_id=intake.source_id,
            reason=reason,
        )
        intake = await _settle(system, intake, "opened", case, actor)
    return intake


async def intakes_by_id(ctx: core.ServiceContext, pks: Sequence[int]) -> dict[int, Intake]:
    """node(id:): the intakes among `pks` the caller sees."""
    if not pks:
        return {}
    rows = await ctx.session.scalars(select(Intake).where(Intake.id.in_(list(pks)), intake_scope(ctx)))
    return {row.id: row for row in rows}


async def intake_residents(ctx: core.ServiceContext, intake_ids: Sequence[int]) -> list[Resident | None]:
    """The resident of each intake the caller sees (one query for a page of the queue)."""
    rows = await ctx.session.execute(
        select(Intake.id, Resident)
        .join(Resident, Resident.id == Intake.resident_id)
        .where(Intake.id.in_(list(intake_ids)), intake_scope(ctx))
    )
    found: dict[int, Resident] = {row[0]: row[1] for row in rows.all()}
    return [found.get(pk) for pk in intake_ids]


# -- HelpRequest.caseWorkCaseFile -----------------------------------------------------------------------------------


async def case_files(ctx: core.ServiceContext, request_ids: Sequence[int]) -> list[Case | None]:
    """The case each help request became (the newest, if several), for those who see that case by casework's
    own scope (services.case_scope); None for everyone else. One query for a page of requests, none for callers
    without casework."""
    if not request_ids or not core.can(ctx.viewer, services.MANAGE):
        return [None] * len(request_ids)
    rows = await ctx.session.scalars(
        select(Case)
        .where(
            Case.source_kind == HELP_REQUEST,
            Case.source_id.in_(list(request_ids)),
            services.case_scope(ctx),
        )
        .order_by(Case.id)
    )
    found: dict[int, Case] = {}
    for case in rows:
        found[int(case.source_id or 0)] = case  # the newest wins
    return [found.get(pk) for pk in request_ids]


# -- the hook -------------------------------------------------------------------------------------------------------


@core.hookimpl
async def on_event(event: core.DomainEvent, ctx: core.ServiceContext) -> None:
    """Wired in plugin.py (`from plugins.case_work.reactions import on_event`)."""
    if event.name == RISK_RAISED:
        await on_risk_raised(ctx, event)
    elif event.name == MATERNAL_RISK_RAISED:
        await on_maternal_risk_raised(ctx, event)
    elif isinstance(event, core.HelpRequestVerified):
        await on_request_verified(ctx, event)


# What the case's history records as the actor and the reason of an opening the system did: data written once, in
# the organisation's language (like a worker's own reasons), not a message translated when shown.
ACTORS = {
    RISK_FLAG: "系统（咨询风险标记）",
    HELP_REQUEST: "系统（求助转介个案）",
    MATERNAL_RISK: "系统（孕产妇高危标记）",
}
REASONS = {
    RISK_FLAG: "咨询风险标记自动开案",
    HELP_REQUEST: "求助经核实，按个案工作标记开案",
    MATERNAL_RISK: "孕产妇高危（橙色、红色或紫色）转介个案",
}
