"""Casework rules: cases from intake to closure along the stages of MZ/T 094-2017, approvals, who sees a case.

Stages (`TRANSITIONS`, the same rows as the SQL function `case_work_stage_graph()` the database checks):
intake 接案 → assessment 预估 → planning 计划 → intervention 介入 → evaluation 评估 → closure 结案. An intake
may end `not_opened` (with a reason); evaluation may go back to intervention (with a reason); a closed case
is reopened to assessment by its supervisor or an administrator (with a reason). Every step is a history
row (who, when, from, to, why), written before the case changes -- the database refuses a stage change
without one, so the history cannot miss a step.

Approvals: a high-risk case leaves assessment for planning only with an approved assessment (asked for once
an assessment is recorded); a case is closed only with an approved closure request (a summary and an outcome
per goal of the plan, checked again at the step: plans/services.py freezes the plan meanwhile). An approval counts for
the stage visit it was asked in (a case that moved on needs a fresh one; pending requests are withdrawn
when the case moves). The approvers are the case's supervisor (holding the plugin role
`case_work.supervisor`) and the administrators of the case's organisation; nobody decides their own
request (the database refuses it too).

Who sees a case (`case_scope`): its social worker, its supervisor (while holding the role), and the
organisation and platform administrators *of the case's organisation*. Everyone else answers as for a
missing case: `null` in queries, `NOT_FOUND` in payloads -- another social worker of the organisation
included, because even the existence of a case (a child-protection case about a neighbour) is sensitive,
and FORBIDDEN would confirm it. Callers without `case_work.manage` (volunteers, community heads,
counselors, partners) are FORBIDDEN from every field: that is about their role, not about a record.
Row-level security keeps every other organisation out whatever the services do.

What an organisation administrator sees of a case (they run the office, they do not do the casework): its
*metadata* -- category, risk, stage, its history of steps, risk changes and transfers, its approvals, who
its social worker and supervisor are, its client's name and community, its plans and visits -- enough to
assign, approve, supervise the workload and answer for the organisation. Not by rank: the client's phone
and address (masked: they are for the people serving the client) and the progress notes, which they open
only through the audited purpose-of-access path (notes/services.py), like the supervisor and a platform
administrator.

Transfers: see "transfers between social workers" below. A social worker who handed a case over loses it
at once, by relation: nothing is revoked, the case simply names someone else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import and_, false, func, or_, select, true, update
from sqlalchemy.sql.elements import ColumnElement

import core
from core.i18n import _
from core.models import Account, AccountPluginRole, Resident
from core.services import validation
from plugins.case_work.models import (
    APPROVAL_KINDS,
    CATEGORIES,
    RISK_LEVELS,
    SOURCE_KINDS,
    STAGES,
    Approval,
    Case,
    Client,
    RiskChange,
    StageChange,
    Transfer,
)

MANAGE = "case_work.manage"
SUPERVISE = "case_work.supervise"
SUPERVISOR_ROLE = "case_work.supervisor"
ADMIN_ROLES = frozenset({"organization_admin", "platform_admin"})
SOCIAL_WORKER = "social_worker"
# Staff a case may name beside its social worker and supervisor (a visit's second staff member, an action's
# responsible person): people with a calendar who serve clients or run the office. Volunteers and community
# heads are not told a confidential case's plan by being named in it.
STAFF_ROLES = frozenset({"social_worker", "counselor", "organization_admin"})
SYSTEM = "system"
CLOSED = frozenset({"closure", "not_opened"})
MAX_TRANSFERS = 20
APPROVAL_STATUSES = frozenset({"pending", "approved", "refused", "withdrawn"})

M = TypeVar("M")


@dataclass(frozen=True)
class Step:
    """An allowed stage change: `kind` forward / not_opened / back / reopen; `approval` the approved request
    it needs (of the stage it leaves), `high_risk_only` when only high-risk cases need it."""

    kind: str
    approval: str | None = None
    high_risk_only: bool = False


# The stage graph, as data (migration w001 writes the same rows into the database's; a test compares them).
TRANSITIONS: dict[tuple[str, str], Step] = {
    ("intake", "assessment"): Step("forward"),
    ("intake", "not_opened"): Step("not_opened"),
    ("assessment", "planning"): Step("forward", "assessment", high_risk_only=True),
    ("planning", "intervention"): Step("forward"),
    ("intervention", "evaluation"): Step("forward"),
    ("evaluation", "intervention"): Step("back"),
    ("evaluation", "closure"): Step("forward", "closure"),
    ("closure", "assessment"): Step("reopen"),
}
# Steps that must say why.
NEEDS_REASON = frozenset({"not_opened", "back", "reopen"})
# The stage in which each kind of approval is asked for.
APPROVAL_STAGE = {"assessment": "assessment", "closure": "evaluation"}
# How a stage (and the kind of approval, named after its stage's work) reads inside a message: the
# standard's names, translated with the message (plugins/case_work/locale), never the stored value.
STAGE_LABELS = {
    "intake": _("intake"),
    "assessment": _("assessment"),
    "planning": _("planning"),
    "intervention": _("intervention"),
    "evaluation": _("evaluation"),
    "closure": _("closure"),
    "not_opened": _("not opened"),
}
APPROVAL_LABELS = {"assessment": _("assessment"), "closure": _("closure")}


def stage_label(stage: str) -> str:
    """A stage as a message shows it ("?" for a value that is no stage: the caller's input, not ours to echo)."""
    return STAGE_LABELS.get(stage, "?")


# Refusals the database makes (triggers and keys), as the answers the services' own checks give.
CONSTRAINT_ERRORS: dict[str, tuple[str, str, tuple[str, ...] | None]] = {
    "case_work_case_closed": ("CASE_CLOSED", "The case is closed: it cannot be changed.", None),
    "case_work_stage_transition": ("ILLEGAL_TRANSITION", "The case cannot go to this stage from its stage.", None),
    "case_work_stage_recorded": ("ILLEGAL_TRANSITION", "The case cannot go to this stage from its stage.", None),
    "case_work_approval_required": ("APPROVAL_REQUIRED", "This step needs an approved request first.", None),
    # w011: an assessment approval approves a recorded assessment; a closure states an outcome per goal of the
    # plan as it is when the case closes.
    "case_work_assessment_required": (
        "ASSESSMENT_REQUIRED",
        "Record the assessment before asking for its approval.",
        ("input", "kind"),
    ),
    "case_work_outcome_per_goal": (
        "OUTCOME_PER_GOAL",
        "The approved closure request does not state one outcome for each of the plan's goals.",
        ("input", "to"),
    ),
    "case_work_plan_under_closure": (
        "INVALID_TRANSITION",
        "A closure request of this plan is pending or approved: the plan is not changed now.",
        None,
    ),
    "uq_case_work_approvals_pending": (
        "ALREADY_EXISTS",
        "A request of this kind is waiting for a decision already.",
        ("input", "kind"),
    ),
    "ck_case_work_approvals_not_self_decided": ("SELF_APPROVAL", "Nobody decides their own request.", None),
    "uq_case_work_transfers_pending": (
        "ALREADY_EXISTS",
        "A transfer of this case is waiting for an answer already.",
        ("input", "caseId"),
    ),
    "ck_case_work_transfers_not_self_transfer": ("SELF_TRANSFER", "Nobody receives a transfer they proposed.", None),
    "case_work_transfer_decided": ("INVALID_TRANSITION", "This transfer is answered already.", ("input", "id")),
}


# -- list filters ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseFilter:
    stages: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    risk_levels: tuple[str, ...] = ()
    social_worker_account_id: int | None = None
    client_id: int | None = None


@dataclass(frozen=True)
class ApprovalFilter:
    case_id: int | None = None
    kinds: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    # Pending requests the caller may decide (not their own).
    awaiting_my_decision: bool = False


@dataclass(frozen=True)
class ClientInput:
    name: str
    phone: str = ""
    address: str = ""
    community_id: int | None = None


CASES_NEWEST: core.Ordering[Case] = core.Ordering(
    "case_work_cases_newest", (Case.id,), lambda c: (c.id,), descending=True
)
APPROVALS_OLDEST: core.Ordering[Approval] = core.Ordering(
    "case_work_approvals_oldest", (Approval.id,), lambda a: (a.id,)
)


# -- who sees what ----------------------------------------------------------------------------------------------


def is_admin_of(viewer: core.Viewer, organization_id: int) -> bool:
    """An organisation or platform administrator whose account belongs to `organization_id`."""
    return (
        viewer.role in ADMIN_ROLES and viewer.organization_id is not None and viewer.organization_id == organization_id
    )


def supervises(viewer: core.Viewer, case: Case) -> bool:
    """The case's supervisor, while they hold the supervisor role (a revoked grant stops at once)."""
    return (
        viewer.account_id is not None
        and viewer.account_id == case.supervisor_account_id
        and viewer.organization_id == case.organization_id
        and core.can(viewer, SUPERVISE)
    )


def may_approve(viewer: core.Viewer, case: Case) -> bool:
    """Approvers and reopeners: the case's supervisor, and administrators of the case's organisation."""
    return supervises(viewer, case) or is_admin_of(viewer, case.organization_id)


def case_scope(ctx: core.ServiceContext) -> ColumnElement[bool]:
    """The cases the caller may see: see the module's docstring. The same condition for lists, node(id:),
    nested fields and every mutation."""
    viewer = ctx.viewer
    if not core.can(viewer, MANAGE) or viewer.organization_id is None:
        return false()
    in_organisation: ColumnElement[bool] = Case.organization_id == viewer.organization_id
    # The system of an organisation (casework's reactions, jobs) works on every case of it.
    if viewer.role in ADMIN_ROLES or viewer.role == SYSTEM:
        return in_organisation
    if viewer.account_id is None:
        return false()
    relation: ColumnElement[bool] = Case.social_worker_account_id == viewer.account_id
    if core.can(viewer, SUPERVISE):
        relation = or_(relation, Case.supervisor_account_id == viewer.account_id)
    return and_(in_organisation, relation)


def client_scope(ctx: core.ServiceContext) -> ColumnElement[bool]:
    """Clients: administrators see their organisation's; the others the clients of the cases they see."""
    viewer = ctx.viewer
    if not core.can(viewer, MANAGE) or viewer.organization_id is None:
        return false()
    if viewer.role in ADMIN_ROLES:
        column: ColumnElement[bool] = Client.organization_id == viewer.organization_id
        return column
    return Client.id.in_(select(Case.client_id).where(case_scope(ctx)))


def approval_scope(ctx: core.ServiceContext) -> ColumnElement[bool]:
    """Approvals: those of the cases the caller sees."""
    return Approval.case_id.in_(select(Case.id).where(case_scope(ctx)))


async def served_client_ids(ctx: core.ServiceContext) -> frozenset[int]:
    """Clients the caller serves (social worker or supervisor of one of their cases): one query per request."""
    key = "case_work.served_clients"
    if key not in ctx.memo:
        viewer = ctx.viewer
        if viewer.account_id is None or viewer.organization_id is None or not core.can(viewer, MANAGE):
            ctx.memo[key] = frozenset()
        else:
            relation: ColumnElement[bool] = Case.social_worker_account_id == viewer.account_id
            if core.can(viewer, SUPERVISE):
                relation = or_(relation, Case.supervisor_account_id == viewer.account_id)
            rows = await ctx.session.scalars(
                select(Case.client_id).where(relation, Case.organization_id == viewer.organization_id)
            )
            ctx.memo[key] = frozenset(rows)
    found: frozenset[int] = ctx.memo[key]
    return found


async def sees_contact(ctx: core.ServiceContext, client: Client) -> bool:
    """A client's phone and address: raw for the people serving them (the social worker and supervisor of
    one of their cases); masked for everyone else, administrators included (like counseling's clients)."""
    return client.organization_id == ctx.viewer.organization_id and client.id in await served_client_ids(ctx)


def mask_address(address: str) -> str:
    """The first three characters (the district, usually), then stars: where, roughly, not the door."""
    return f"{address[:3]}****" if address else ""


# -- loading ----------------------------------------------------------------------------------------------------


async def _case(ctx: core.ServiceContext, case_id: int, field: str = "id", *, lock: bool = True) -> Case:
    """A case the caller may see, locked for the change (steps of one case are serialised), or NOT_FOUND."""
    core.require(ctx, MANAGE)
    case: Case = await core.get_row(
        ctx, Case, case_id, what=_("Case"), field=("input", field), lock=lock, scope=case_scope(ctx)
    )
    return case


async def _flush(ctx: core.ServiceContext) -> None:
    await core.flush(ctx, CONSTRAINT_ERRORS)


def _own_organisation(ctx: core.ServiceContext) -> int:
    if ctx.viewer.organization_id is None:
        raise core.DomainError("REQUIRED", "Act as a member of an organisation to keep casework records.")
    return ctx.viewer.organization_id


def _actor(ctx: core.ServiceContext) -> int | None:
    """Who acts, by account; None for the system: casework's reactions (reactions.py) open cases and raise risks
    as the system of the event's organisation. Other callers without an account do not act on cases."""
    if ctx.viewer.role == SYSTEM:
        return None
    return _account_of_caller(ctx)


def _account_of_caller(ctx: core.ServiceContext) -> int:
    """Casework records who acted by account: callers without one (API tokens) do not act on cases."""
    if ctx.viewer.account_id is None:
        raise core.DomainError("FORBIDDEN", "You may not do this.")
    return ctx.viewer.account_id


def _not_closed(case: Case, field: tuple[str, ...] = ("input", "id")) -> None:
    """CASE_CLOSED on `field`: the input's field that named the case (its id, or `caseId`)."""
    if case.stage in CLOSED:
        raise core.DomainError("CASE_CLOSED", "The case is closed: it cannot be changed.", field)


def _validate_kinds(v: core.Validator, category: str | None, risk_level: str | None) -> None:
    if category is not None:
        v.check(category in CATEGORIES, ("input", "category"), "INVALID_INPUT", "Unknown category.")
    if risk_level is not None:
        v.check(risk_level in RISK_LEVELS, ("input", "riskLevel"), "INVALID_INPUT", "Risk is low, medium or high.")


# -- opening a case ---------------------------------------------------------------------------------------------


async def _staff_account(ctx: core.ServiceContext, account_id: int, organization_id: int, field: str) -> Account:
    """An account of the caller's organisation (another organisation's answers like a missing one)."""
    account: Account = await core.get_row(
        ctx,
        Account,
        account_id,
        what=_("Account"),
        field=("input", field),
        scope=Account.organization_id == organization_id,
    )
    return account


async def _check_source(
    ctx: core.ServiceContext, kind: str | None, source_id: int | None, organization_id: int
) -> None:
    if kind is None:
        return
    if kind == "help_request":
        request = await core.get_row(
            ctx,
            core.HelpRequest,
            source_id,  # type: ignore[arg-type]
            what=_("Help request"),
            field=("input", "sourceId"),
            scope=core.request_scope(ctx.viewer),
        )
        if request.organization_id != organization_id:
            raise core.NotFound(_("Help request"), ("input", "sourceId"))
        return
    # A counseling risk flag or a referral: another plugin's record, linked by the reactions that will open
    # such cases (through events), not by a caller who could name any id.
    if ctx.viewer.role != "system":
        raise core.DomainError(
            "INVALID_INPUT", "Cases are linked to this kind of source by the system only.", ("input", "sourceKind")
        )


async def open_case(
    ctx: core.ServiceContext,
    *,
    category: str,
    risk_level: str,
    supervisor_account_id: int,
    social_worker_account_id: int | None = None,
    client_id: int | None = None,
    client: ClientInput | None = None,
    resident_id: int | None = None,
    source_kind: str | None = None,
    source_id: int | None = None,
    reason: str = "",
) -> Case:
    """Open a case at intake for an existing client (one the caller sees), for a resident of the organisation
    (core's record: their casework client is found or created), or for a new person (a new resident and
    client). A social worker opens cases assigned to themselves; administrators assign any social worker of
    the organisation."""
    core.require(ctx, MANAGE)
    actor = _actor(ctx)
    v = core.Validator()
    _validate_kinds(v, category, risk_level)
    v.check(
        [client_id, client, resident_id].count(None) == 2,
        ("input", "clientId"),
        "INVALID_INPUT",
        "Name an existing client or resident, or describe a new one (one of the three).",
    )
    if source_kind is not None:
        v.check(source_kind in SOURCE_KINDS, ("input", "sourceKind"), "INVALID_INPUT", "Unknown source kind.")
    v.check(
        (source_kind is None) == (source_id is None),
        ("input", "sourceId"),
        "REQUIRED",
        "A source is a kind and an id.",
    )
    fields: dict[str, Any] = {}
    if client is not None:
        fields["name"] = validation.text(v, ("input", "client", "name"), client.name, max_length=50, label=_("Name"))
        fields["phone"] = validation.phone(v, ("input", "client", "phone"), client.phone, required=False) or ""
        address = client.address.strip()
        v.check(len(address) <= 200, ("input", "client", "address"), "OUT_OF_RANGE", "At most 200 characters.")
        fields["address"] = address
    clean_reason = reason.strip()
    v.check(len(clean_reason) <= 2000, ("input", "reason"), "OUT_OF_RANGE", "At most 2000 characters.")
    v.raise_if_any()
    organization_id = _own_organisation(ctx)

    if social_worker_account_id is None:
        if ctx.viewer.role != SOCIAL_WORKER:
            raise core.DomainError("REQUIRED", "Name the case's social worker.", ("input", "socialWorkerId"))
        social_worker_account_id = actor
    if social_worker_account_id != actor and ctx.viewer.role not in ADMIN_ROLES | {SYSTEM}:
        raise core.DomainError(
            "FORBIDDEN", "Only administrators assign cases to someone else.", ("input", "socialWorkerId")
        )
    worker = await _staff_account(ctx, social_worker_account_id, organization_id, "socialWorkerId")
    if worker.role != SOCIAL_WORKER or not worker.is_active:
        raise core.DomainError(
            "INVALID_INPUT", "The case's worker must be an active social worker.", ("input", "socialWorkerId")
        )
    supervisor = await _staff_account(ctx, supervisor_account_id, organization_id, "supervisorId")
    holds_role = await ctx.session.scalar(
        select(AccountPluginRole.account_id).where(
            AccountPluginRole.account_id == supervisor.id, AccountPluginRole.role == SUPERVISOR_ROLE
        )
    )
    if holds_role is None or not supervisor.is_active:
        raise core.DomainError(
            "INVALID_INPUT", "The supervisor must hold the casework supervisor role.", ("input", "supervisorId")
        )
    if supervisor.id == worker.id:
        raise core.DomainError(
            "INVALID_INPUT", "A case's supervisor is not its own social worker.", ("input", "supervisorId")
        )
    await _check_source(ctx, source_kind, source_id, organization_id)

    if client_id is not None:
        person = await core.get_row(
            ctx, Client, client_id, what=_("Client"), field=("input", "clientId"), scope=client_scope(ctx)
        )
    elif resident_id is not None:
        person = await _client_of_resident(ctx, resident_id, organization_id)
    else:
        assert client is not None
        if client.community_id is not None:
            community = await core.get_row(
                ctx,
                core.Community,
                client.community_id,
                what=_("Community"),
                field=("input", "client", "communityId"),
            )
            if community.organization_id != organization_id:  # visible to a platform administrator only
                raise core.NotFound(_("Community"), ("input", "client", "communityId"))
        # One identity: a new client is a new resident of the organisation (core's record), extended here.
        resident = await core.residents.create_resident(ctx, community_id=client.community_id, **fields)
        person = Client(resident_id=resident.id, organization_id=organization_id)
        ctx.session.add(person)
        await _flush(ctx)

    case = Case(
        client_id=person.id,
        social_worker_account_id=worker.id,
        supervisor_account_id=supervisor.id,
        category=category,
        risk_level=risk_level,
        stage="intake",
        stage_seq=0,
        source_kind=source_kind,
        source_id=source_id,
        organization_id=organization_id,
    )
    ctx.session.add(case)
    await _flush(ctx)
    ctx.session.add(
        StageChange(
            case_id=case.id,
            seq=0,
            from_stage=None,
            to_stage="intake",
            actor_account_id=actor,
            actor=ctx.viewer.label[:100],
            reason=clean_reason,
        )
    )
    await _flush(ctx)
    return case


async def _client_of_resident(ctx: core.ServiceContext, resident_id: int, organization_id: int) -> Client:
    """The casework client of a resident the caller may address (core's rule), created on first use. The
    resident row is locked so that two cases opened for them at once make one client, not a refusal."""
    resident = await core.residents.get_resident(ctx, resident_id, lock=True)
    if resident.organization_id != organization_id:  # a platform administrator sees other organisations'
        raise core.NotFound(_("Resident"), ("input", "residentId"))
    found = await ctx.session.scalar(select(Client).where(Client.resident_id == resident.id))
    if found is not None:
        return found
    person = Client(resident_id=resident.id, organization_id=organization_id)
    ctx.session.add(person)
    await _flush(ctx)
    return person


async def client_residents(ctx: core.ServiceContext, client_ids: Sequence[int]) -> list[Resident | None]:
    """The resident behind each client the caller sees (one query for a page of clients): the name, community
    and contact the GraphQL client shows. Read by the client's relation, not by core's resident rules: who
    sees a casework client sees whom it is about (the contact is masked apart: `sees_contact`)."""
    rows = await ctx.session.execute(
        select(Client.id, Resident)
        .join(Resident, Resident.id == Client.resident_id)
        .where(Client.id.in_(list(client_ids)), client_scope(ctx))
    )
    by_client: dict[int, Resident] = {row[0]: row[1] for row in rows.all()}
    return [by_client.get(pk) for pk in client_ids]


# -- stages -----------------------------------------------------------------------------------------------------


async def _approved(ctx: core.ServiceContext, case: Case, kind: str) -> Approval | None:
    """The approved request of `kind` asked during the case's current stage visit, if any."""
    found: Approval | None = await ctx.session.scalar(
        select(Approval)
        .where(
            Approval.case_id == case.id,
            Approval.kind == kind,
            Approval.status == "approved",
            Approval.stage_seq == case.stage_seq,
        )
        .order_by(Approval.id.desc())
        .limit(1)
    )
    return found


def _reason(reason: str, required: bool) -> str:
    v = core.Validator()
    clean = reason.strip()
    if required:
        v.check(bool(clean), ("input", "reason"), "REQUIRED", "Say why.")
    v.check(len(clean) <= 2000, ("input", "reason"), "OUT_OF_RANGE", "At most 2000 characters.")
    v.raise_if_any()
    return clean


async def _move(ctx: core.ServiceContext, case: Case, to_stage: str, reason: str) -> Case:
    """Record the step, withdraw the requests of the stage visit it ends, then move the case (in this
    order: the database checks the history row when the case changes)."""
    actor = _account_of_caller(ctx)
    now = ctx.now()
    ctx.session.add(
        StageChange(
            case_id=case.id,
            seq=case.stage_seq + 1,
            from_stage=case.stage,
            to_stage=to_stage,
            actor_account_id=actor,
            actor=ctx.viewer.label[:100],
            reason=reason,
        )
    )
    await _flush(ctx)
    await ctx.session.execute(
        update(Approval)
        .where(Approval.case_id == case.id, Approval.status == "pending")
        .values(status="withdrawn", decided_at=now)
        .execution_options(synchronize_session=False)
    )
    case.stage = to_stage
    case.stage_seq = case.stage_seq + 1
    case.closed_at = now if to_stage in CLOSED else None
    await _flush(ctx)
    if to_stage in CLOSED:
        await _on_close(ctx, case)
    return case


# The reason written on what closing a case cancels (translated where it is shown).
CLOSED_REASON = _("The case was closed.")


async def _on_close(ctx: core.ServiceContext, case: Case) -> None:
    """What a closing ends, in the closing's transaction: the case's booked visits still to come are cancelled
    (their time is free again on everyone's calendar), and a pending transfer is withdrawn. Past visits left
    booked stay as they are: they say a visit was planned, and freeing past time frees nothing."""
    # Imported here: the visits slice builds on this module.
    from plugins.case_work.visits.models import Visit

    now = ctx.now()
    visits = (
        await ctx.session.scalars(
            select(Visit)
            .where(Visit.case_id == case.id, Visit.status == "booked", Visit.starts_at > now)
            .order_by(Visit.id)
            .with_for_update(of=Visit)
        )
    ).all()
    reason = str(CLOSED_REASON)
    for visit in visits:
        for appointment_id in (visit.appointment_id, visit.second_appointment_id):
            if appointment_id is not None:
                await core.cancel_appointment(ctx, appointment_id, reason)
        visit.status, visit.cancel_reason, visit.updated_at = "cancelled", reason, now
    await ctx.session.execute(
        update(Transfer)
        .where(Transfer.case_id == case.id, Transfer.status == "pending")
        .values(status="withdrawn", decided_at=now)
        .execution_options(synchronize_session=False)
    )
    await _flush(ctx)


async def advance(ctx: core.ServiceContext, case_id: int, to_stage: str, reason: str = "") -> Case:
    """The next step along the graph (forward, ending an intake as not opened, or back from evaluation to
    intervention). Reopening is `reopen`."""
    case = await _case(ctx, case_id)
    _not_closed(case)
    step = TRANSITIONS.get((case.stage, to_stage))
    if step is None or step.kind == "reopen":
        raise core.DomainError(
            "ILLEGAL_TRANSITION",
            "A case in {stage} cannot go to {to}.",
            ("input", "to"),
            stage=stage_label(case.stage),
            to=stage_label(to_stage),
        )
    clean = _reason(reason, step.kind in NEEDS_REASON)
    needs = step.approval if step.approval and (not step.high_risk_only or case.risk_level == "high") else None
    approval = None if needs is None else await _approved(ctx, case, needs)
    if needs is not None and approval is None:
        raise core.DomainError(
            "APPROVAL_REQUIRED",
            "This step needs an approved {kind} request first.",
            ("input", "to"),
            kind=APPROVAL_LABELS[needs],
        )
    if approval is not None and approval.kind == "closure":
        # Once more at the step: the plan is frozen while a closure request is pending or approved, but a
        # request approved before that rule (or a plan changed around the services) must not close a case
        # with goals nobody stated an outcome for. The database checks the same (w011).
        from plugins.case_work.plans.services import goal_count

        goals = await goal_count(ctx, case.id)
        if goals and len(approval.outcomes) != goals:
            raise core.DomainError(
                "OUTCOME_PER_GOAL",
                "The approved closure request states {stated} outcomes for the plan's {count} goals: go back to "
                "intervention and ask again.",
                ("input", "to"),
                stated=len(approval.outcomes),
                count=goals,
            )
    return await _move(ctx, case, to_stage, clean)


async def reopen(ctx: core.ServiceContext, case_id: int, reason: str) -> Case:
    """A closed case back to assessment: its supervisor or an administrator of its organisation, with a reason."""
    case = await _case(ctx, case_id)
    if not may_approve(ctx.viewer, case):
        raise core.DomainError("FORBIDDEN", "Only the case's supervisor or an administrator reopens it.")
    if case.stage != "closure":
        raise core.DomainError("ILLEGAL_TRANSITION", "Only a closed case is reopened.", ("input", "id"))
    clean = _reason(reason, True)
    return await _move(ctx, case, "assessment", clean)


async def update_case(
    ctx: core.ServiceContext,
    case_id: int,
    *,
    category: str | None = None,
    risk_level: str | None = None,
    reason: str = "",
) -> Case:
    """Change a case's category or risk level (not once it is closed). Lowering the risk is the supervisor's
    or an administrator's decision, with a reason: otherwise a social worker could lower a high risk, step
    into planning without the approval a high-risk assessment needs, and raise it again. Every change of
    the risk is a history row (who, when, from, to, why), read with the case like its steps."""
    case = await _case(ctx, case_id)
    _not_closed(case)
    v = core.Validator()
    _validate_kinds(v, category, risk_level)
    v.raise_if_any()
    lowers = risk_level is not None and RISK_LEVELS.index(risk_level) < RISK_LEVELS.index(case.risk_level)
    if lowers and not may_approve(ctx.viewer, case):
        raise core.DomainError(
            "FORBIDDEN", "Only the case's supervisor or an administrator lowers its risk.", ("input", "riskLevel")
        )
    clean = _reason(reason, lowers)
    if risk_level is not None and risk_level != case.risk_level:
        # The row first, then the case (the database checks the row when the level changes); the case is
        # locked, so the next number is ours.
        seq = case.risk_seq + 1
        ctx.session.add(
            RiskChange(
                case_id=case.id,
                seq=seq,
                from_level=case.risk_level,
                to_level=risk_level,
                actor_account_id=_actor(ctx),
                actor=ctx.viewer.label[:100],
                reason=clean,
            )
        )
        await _flush(ctx)
        case.risk_level, case.risk_seq = risk_level, seq
    if category is not None:
        case.category = category
    await _flush(ctx)
    return case


# -- approvals --------------------------------------------------------------------------------------------------


async def request_approval(
    ctx: core.ServiceContext, case_id: int, kind: str, summary: str, outcomes: Sequence[str] = ()
) -> Approval:
    """Ask for approval of the case's assessment (in assessment) or of its closure (in evaluation; a summary
    and one outcome per goal)."""
    case = await _case(ctx, case_id, "caseId")
    _not_closed(case, ("input", "caseId"))
    actor = _account_of_caller(ctx)
    v = core.Validator()
    v.check(kind in APPROVAL_KINDS, ("input", "kind"), "INVALID_INPUT", "Approval is of an assessment or a closure.")
    clean_summary = summary.strip()
    v.check(bool(clean_summary), ("input", "summary"), "REQUIRED", "Write a summary.")
    v.check(len(clean_summary) <= 5000, ("input", "summary"), "OUT_OF_RANGE", "At most 5000 characters.")
    clean_outcomes = [o.strip() for o in outcomes]
    v.check(len(clean_outcomes) <= 50, ("input", "outcomes"), "OUT_OF_RANGE", "At most 50 outcomes.")
    v.check(all(clean_outcomes), ("input", "outcomes"), "REQUIRED", "An outcome cannot be empty.")
    v.check(
        all(len(o) <= 1000 for o in clean_outcomes), ("input", "outcomes"), "OUT_OF_RANGE", "At most 1000 characters."
    )
    if kind == "closure":
        v.check(bool(clean_outcomes), ("input", "outcomes"), "REQUIRED", "Closure states an outcome per goal.")
    v.raise_if_any()
    if case.stage != APPROVAL_STAGE[kind]:
        raise core.DomainError(
            "ILLEGAL_TRANSITION",
            "Approval of the {kind} is requested in the {stage} stage.",
            ("input", "kind"),
            kind=APPROVAL_LABELS[kind],
            stage=stage_label(APPROVAL_STAGE[kind]),
        )
    existing = await ctx.session.scalar(
        select(Approval.id).where(
            Approval.case_id == case.id,
            Approval.kind == kind,
            or_(
                Approval.status == "pending", and_(Approval.status == "approved", Approval.stage_seq == case.stage_seq)
            ),
        )
    )
    if existing is not None:
        raise core.DomainError(
            "ALREADY_EXISTS", "A request of this kind is pending or approved already.", ("input", "kind")
        )
    # Imported here: the plans slice builds on this module.
    from plugins.case_work.plans.services import check_assessment_recorded, check_closure_outcomes

    if kind == "assessment":
        # The approver approves an assessment they can read: without one, the request would pass a high-risk
        # case to planning unassessed (and, pending, it blocks recording one).
        await check_assessment_recorded(ctx, case)
    if kind == "closure":
        # One outcome per goal of the case's plan.
        await check_closure_outcomes(ctx, case.id, clean_outcomes)
    approval = Approval(
        case_id=case.id,
        kind=kind,
        status="pending",
        stage_seq=case.stage_seq,
        summary=clean_summary,
        outcomes=clean_outcomes,
        requested_by_account_id=actor,
    )
    ctx.session.add(approval)
    await _flush(ctx)
    return approval


async def decide_approval(ctx: core.ServiceContext, approval_id: int, approve: bool, note: str = "") -> Approval:
    """Approve or refuse a pending request (a refusal says why): the case's supervisor or an administrator
    of its organisation, never the person who asked."""
    core.require(ctx, MANAGE)
    found: Approval = await core.get_row(
        ctx, Approval, approval_id, what=_("Approval"), field=("input", "id"), lock=False, scope=approval_scope(ctx)
    )
    # The case first, then the approval: the order `advance` and `reopen` lock them in (they withdraw the
    # case's pending requests), so a decision beside a step waits instead of deadlocking.
    case = await _case(ctx, found.case_id)
    approval: Approval = await core.get_row(
        ctx, Approval, approval_id, what=_("Approval"), field=("input", "id"), lock=True, scope=approval_scope(ctx)
    )
    _not_closed(case)
    actor = _account_of_caller(ctx)
    if approval.requested_by_account_id == actor:
        raise core.DomainError("SELF_APPROVAL", "Nobody decides their own request.", ("input", "id"))
    if not may_approve(ctx.viewer, case):
        raise core.DomainError("FORBIDDEN", "Only the case's supervisor or an administrator decides.")
    if approval.status != "pending":
        raise core.DomainError("INVALID_TRANSITION", "This request is decided already.", ("input", "id"))
    v = core.Validator()
    clean = note.strip()
    v.check(approve or bool(clean), ("input", "note"), "REQUIRED", "Say why the request is refused.")
    v.check(len(clean) <= 2000, ("input", "note"), "OUT_OF_RANGE", "At most 2000 characters.")
    v.raise_if_any()
    approval.status = "approved" if approve else "refused"
    approval.decided_by_account_id = actor
    approval.decided_at = ctx.now()
    approval.decision_note = clean
    await _flush(ctx)
    return approval


# -- reading ----------------------------------------------------------------------------------------------------


def _unknown(values: Sequence[str], allowed: Sequence[str] | frozenset[str], field: str) -> None:
    wrong = set(values) - set(allowed)
    if wrong:
        raise core.DomainError(
            "INVALID_INPUT", "Unknown values: {values}.", ("filter", field), values=tuple(sorted(wrong))
        )


async def list_cases(
    ctx: core.ServiceContext, f: CaseFilter = CaseFilter(), *, first: int = 50, after: str | None = None
) -> core.Page[Case]:
    """The cases the caller sees, newest first."""
    core.require(ctx, MANAGE)
    _unknown(f.stages, STAGES, "stages")
    _unknown(f.categories, CATEGORIES, "categories")
    _unknown(f.risk_levels, RISK_LEVELS, "riskLevels")
    stmt = select(Case).where(case_scope(ctx))
    if f.stages:
        stmt = stmt.where(Case.stage.in_(list(f.stages)))
    if f.categories:
        stmt = stmt.where(Case.category.in_(list(f.categories)))
    if f.risk_levels:
        stmt = stmt.where(Case.risk_level.in_(list(f.risk_levels)))
    if f.social_worker_account_id is not None:
        stmt = stmt.where(Case.social_worker_account_id == f.social_worker_account_id)
    if f.client_id is not None:
        stmt = stmt.where(Case.client_id == f.client_id)
    return await core.paginate(ctx, stmt, CASES_NEWEST, first=first, after=after)


async def list_approvals(
    ctx: core.ServiceContext, f: ApprovalFilter = ApprovalFilter(), *, first: int = 50, after: str | None = None
) -> core.Page[Approval]:
    """Approval requests of the cases the caller sees, oldest first (a supervisor's queue:
    `awaiting_my_decision`)."""
    core.require(ctx, MANAGE)
    _unknown(f.kinds, APPROVAL_KINDS, "kinds")
    _unknown(f.statuses, APPROVAL_STATUSES, "statuses")
    stmt = select(Approval).where(approval_scope(ctx))
    if f.case_id is not None:
        stmt = stmt.where(Approval.case_id == f.case_id)
    if f.kinds:
        stmt = stmt.where(Approval.kind.in_(list(f.kinds)))
    if f.statuses:
        stmt = stmt.where(Approval.status.in_(list(f.statuses)))
    if f.awaiting_my_decision:
        viewer = ctx.viewer
        if viewer.account_id is None:
            return await core.paginate(ctx, stmt.where(false()), APPROVALS_OLDEST, first=first, after=after)
        mine: ColumnElement[bool] = true() if viewer.role in ADMIN_ROLES else false()
        if core.can(viewer, SUPERVISE):
            mine = or_(mine, Case.supervisor_account_id == viewer.account_id)
        stmt = stmt.where(
            Approval.status == "pending",
            Approval.requested_by_account_id != viewer.account_id,
            Approval.case_id.in_(select(Case.id).where(mine)),
        )
    return await core.paginate(ctx, stmt, APPROVALS_OLDEST, first=first, after=after)


async def rows_by_id(ctx: core.ServiceContext, model: type[M], pks: Sequence[int]) -> dict[int, M]:
    """node(id:): those of `pks` the caller sees (the same scopes as the lists); others are simply absent."""
    core.require(ctx, MANAGE)
    scopes: dict[type, ColumnElement[bool]] = {
        Case: case_scope(ctx),
        Client: client_scope(ctx),
        Approval: approval_scope(ctx),
        Transfer: transfer_scope(ctx),
    }
    if not pks:
        return {}
    rows = await ctx.session.scalars(select(model).where(model.id.in_(list(pks)), scopes[model]))  # type: ignore[attr-defined]
    return {row.id: row for row in rows}  # type: ignore[attr-defined]


async def histories(ctx: core.ServiceContext, case_ids: Sequence[int]) -> list[list[StageChange]]:
    """Each case's steps, in order (one query for a page of cases). Only cases the caller sees have any."""
    rows = await ctx.session.scalars(
        select(StageChange)
        .where(StageChange.case_id.in_(list(case_ids)), StageChange.case_id.in_(select(Case.id).where(case_scope(ctx))))
        .order_by(StageChange.case_id, StageChange.seq)
    )
    by_case: dict[int, list[StageChange]] = {pk: [] for pk in case_ids}
    for row in rows:
        by_case[row.case_id].append(row)
    return [by_case[pk] for pk in case_ids]


async def latest_approvals(ctx: core.ServiceContext, keys: Sequence[tuple[int, str]]) -> list[Approval | None]:
    """The latest request of each (case, kind) (one query for a page of cases)."""
    case_ids = sorted({k[0] for k in keys})
    rows = await ctx.session.scalars(
        select(Approval)
        .where(Approval.case_id.in_(case_ids), approval_scope(ctx))
        .order_by(Approval.case_id, Approval.kind, Approval.id.desc())
    )
    latest: dict[tuple[int, str], Approval] = {}
    for row in rows:
        latest.setdefault((row.case_id, row.kind), row)
    return [latest.get(k) for k in keys]


async def risk_histories(ctx: core.ServiceContext, case_ids: Sequence[int]) -> list[list[RiskChange]]:
    """Each case's risk changes, oldest first (one query for a page of cases); only for cases the caller sees."""
    rows = await ctx.session.scalars(
        select(RiskChange)
        .where(RiskChange.case_id.in_(list(case_ids)), RiskChange.case_id.in_(select(Case.id).where(case_scope(ctx))))
        .order_by(RiskChange.case_id, RiskChange.id)
    )
    by_case: dict[int, list[RiskChange]] = {pk: [] for pk in case_ids}
    for row in rows:
        by_case[row.case_id].append(row)
    return [by_case[pk] for pk in case_ids]


# -- transfers between social workers ---------------------------------------------------------------------------
#
# A case's social worker, its supervisor or an administrator of its organisation proposes handing the case to
# another active social worker of the organisation, saying why; the receiver accepts or declines (saying why).
# Until then the receiver sees the proposal (the transfer, its reason, who proposed it) and nothing of the
# case: they have no relation to it yet. On acceptance the case names the receiver as its social worker in
# the same transaction, and because every casework read is by relation (`case_scope`, the notes' reader),
# the previous worker loses the case, its client's contact, its notes, plans and visits at once. The
# transfer rows are the case's history of workers (who proposed, who accepted, when, why).
#
# Concurrency: proposing, answering and withdrawing lock the case first (like every step of a case), so an
# acceptance and a stage change of the same case are serialised; a step by the previous worker that waited
# for the acceptance finds the case no longer theirs (NOT_FOUND), and an acceptance that waited for a
# closing finds the transfer withdrawn.

TRANSFERS_NEWEST: core.Ordering[Transfer] = core.Ordering(
    "case_work_transfers_newest", (Transfer.id,), lambda t: (t.id,), descending=True
)
TRANSFER_STATUSES = frozenset({"pending", "accepted", "declined", "withdrawn"})


@dataclass(frozen=True)
class TransferFilter:
    case_id: int | None = None
    statuses: tuple[str, ...] = ()
    # Pending transfers offered to the caller.
    awaiting_my_answer: bool = False


def transfer_scope(ctx: core.ServiceContext) -> ColumnElement[bool]:
    """Transfers: those of the cases the caller sees, and those offered to the caller (whatever became of them:
    the receiver keeps seeing what they were offered and answered, not the case)."""
    viewer = ctx.viewer
    if not core.can(viewer, MANAGE) or viewer.organization_id is None:
        return false()
    visible: ColumnElement[bool] = Transfer.case_id.in_(select(Case.id).where(case_scope(ctx)))
    if viewer.account_id is None:
        return visible
    offered: ColumnElement[bool] = and_(
        Transfer.to_account_id == viewer.account_id, Transfer.organization_id == viewer.organization_id
    )
    return or_(visible, offered)


def _transfer_reason(reason: str, field: str = "reason") -> str:
    v = core.Validator()
    clean = reason.strip()
    if v.check(bool(clean), ("input", field), "REQUIRED", "Say why."):
        v.check(len(clean) <= 2000, ("input", field), "OUT_OF_RANGE", "At most 2000 characters.")
    v.raise_if_any()
    return clean


async def propose_transfer(ctx: core.ServiceContext, case_id: int, to_account_id: int, reason: str) -> Transfer:
    """Propose handing a case to another social worker: its social worker, its supervisor or an administrator
    of its organisation, with a reason. One pending transfer per case."""
    case = await _case(ctx, case_id, "caseId")
    actor = _account_of_caller(ctx)
    viewer = ctx.viewer
    if case.social_worker_account_id != actor and not may_approve(viewer, case):
        raise core.DomainError(
            "FORBIDDEN", "Only the case's social worker, supervisor or an administrator proposes a transfer."
        )
    clean = _transfer_reason(reason)
    _not_closed(case, ("input", "caseId"))
    receiver = await _staff_account(ctx, to_account_id, case.organization_id, "toId")
    if receiver.id == actor:
        raise core.DomainError("SELF_TRANSFER", "Nobody receives a transfer they proposed.", ("input", "toId"))
    if receiver.role != SOCIAL_WORKER or not receiver.is_active:
        raise core.DomainError("INVALID_INPUT", "A case is transferred to an active social worker.", ("input", "toId"))
    if receiver.id == case.social_worker_account_id:
        raise core.DomainError("INVALID_INPUT", "This is the case's social worker already.", ("input", "toId"))
    if receiver.id == case.supervisor_account_id:
        raise core.DomainError("INVALID_INPUT", "A case's supervisor is not its own social worker.", ("input", "toId"))
    pending = await ctx.session.scalar(
        select(Transfer.id).where(Transfer.case_id == case.id, Transfer.status == "pending")
    )
    proposed = await ctx.session.scalar(select(func.count()).where(Transfer.case_id == case.id))
    if (proposed or 0) >= MAX_TRANSFERS:
        # A bound that keeps the case's transfer history a short list (CaseWorkCase.transfers), not a page.
        raise core.DomainError(
            "OUT_OF_RANGE", "A case is offered for transfer at most {n} times.", ("input", "caseId"), n=MAX_TRANSFERS
        )
    if pending is not None:
        raise core.DomainError(
            "ALREADY_EXISTS", "A transfer of this case is waiting for an answer already.", ("input", "caseId")
        )
    transfer = Transfer(
        case_id=case.id,
        from_account_id=case.social_worker_account_id,
        to_account_id=receiver.id,
        status="pending",
        reason=clean,
        proposed_by_account_id=actor,
        proposed_by=viewer.label[:100],
        proposed_at=ctx.now(),
    )
    ctx.session.add(transfer)
    await _flush(ctx)
    return transfer


async def _transfer_and_case(ctx: core.ServiceContext, transfer_id: int) -> tuple[Transfer, Case]:
    """A transfer the caller sees, and its case, both locked: the case first (the order every step of a case
    takes), read whether or not the caller sees it (a receiver does not, yet)."""
    core.require(ctx, MANAGE)
    found: Transfer = await core.get_row(
        ctx, Transfer, transfer_id, what=_("Transfer"), field=("input", "id"), scope=transfer_scope(ctx)
    )
    case: Case = await core.get_row(
        ctx,
        Case,
        found.case_id,
        what=_("Transfer"),
        field=("input", "id"),
        lock=True,
        scope=Case.organization_id == found.organization_id,
    )
    transfer: Transfer = await core.get_row(
        ctx, Transfer, transfer_id, what=_("Transfer"), field=("input", "id"), lock=True, scope=transfer_scope(ctx)
    )
    return transfer, case


def _pending(transfer: Transfer) -> None:
    if transfer.status != "pending":
        raise core.DomainError("INVALID_TRANSITION", "This transfer is answered already.", ("input", "id"))


async def answer_transfer(ctx: core.ServiceContext, transfer_id: int, accept: bool, reason: str = "") -> Transfer:
    """The receiver accepts (the case is theirs at once, and no longer the previous worker's) or declines,
    saying why. Nobody else answers: not the proposer, not an administrator."""
    transfer, case = await _transfer_and_case(ctx, transfer_id)
    actor = _account_of_caller(ctx)
    if transfer.proposed_by_account_id == actor:
        raise core.DomainError("SELF_TRANSFER", "Nobody receives a transfer they proposed.", ("input", "id"))
    if transfer.to_account_id != actor:
        raise core.DomainError("FORBIDDEN", "Only the social worker it is offered to answers a transfer.")
    clean = reason.strip()
    if not accept:
        clean = _transfer_reason(reason)
    elif len(clean) > 2000:
        raise core.DomainError("OUT_OF_RANGE", "At most 2000 characters.", ("input", "reason"))
    _pending(transfer)
    if accept:
        _not_closed(case)
        if case.social_worker_account_id != transfer.from_account_id:
            # The case changed hands since (an administrator's reassignment): the offer is stale.
            raise core.DomainError("INVALID_TRANSITION", "The case changed hands since.", ("input", "id"))
        if ctx.viewer.role != SOCIAL_WORKER or actor == case.supervisor_account_id:
            raise core.DomainError(
                "INVALID_INPUT", "A case is transferred to an active social worker.", ("input", "id")
            )
        # Imported here: the visits slice builds on this module.
        from plugins.case_work.visits.services import hand_over

        # The case's visits still to come go to the new worker's calendar first: a clash refuses the acceptance.
        await hand_over(ctx, case, actor)
    now = ctx.now()
    transfer.status = "accepted" if accept else "declined"
    transfer.decided_by_account_id = actor
    transfer.decided_at = now
    transfer.decision_reason = clean
    await _flush(ctx)
    if accept:
        case.social_worker_account_id = actor
        await _flush(ctx)
        ctx.memo.pop("case_work.served_clients", None)
    return transfer


async def withdraw_transfer(ctx: core.ServiceContext, transfer_id: int) -> Transfer:
    """Withdraw a pending transfer: who proposed it, the case's social worker or supervisor, an administrator."""
    transfer, case = await _transfer_and_case(ctx, transfer_id)
    actor = _account_of_caller(ctx)
    allowed = (
        transfer.proposed_by_account_id == actor
        or case.social_worker_account_id == actor
        or may_approve(ctx.viewer, case)
    )
    if not allowed:
        if transfer.to_account_id == actor:
            raise core.DomainError("FORBIDDEN", "The receiver declines a transfer; they do not withdraw it.")
        raise core.NotFound(_("Transfer"), ("input", "id"))
    _pending(transfer)
    transfer.status = "withdrawn"
    transfer.decided_at = ctx.now()
    await _flush(ctx)
    return transfer


async def list_transfers(
    ctx: core.ServiceContext, f: TransferFilter = TransferFilter(), *, first: int = 50, after: str | None = None
) -> core.Page[Transfer]:
    """Transfers of the cases the caller sees and those offered to them, newest first."""
    core.require(ctx, MANAGE)
    _unknown(f.statuses, TRANSFER_STATUSES, "statuses")
    stmt = select(Transfer).where(transfer_scope(ctx))
    if f.case_id is not None:
        stmt = stmt.where(Transfer.case_id == f.case_id)
    if f.statuses:
        stmt = stmt.where(Transfer.status.in_(list(f.statuses)))
    if f.awaiting_my_answer:
        stmt = stmt.where(Transfer.status == "pending", Transfer.to_account_id == ctx.viewer.account_id)
    return await core.paginate(ctx, stmt, TRANSFERS_NEWEST, first=first, after=after)


async def case_transfers(ctx: core.ServiceContext, case_ids: Sequence[int]) -> list[list[Transfer]]:
    """Each case's transfers, oldest first (one query for a page of cases); only for cases the caller sees."""
    rows = await ctx.session.scalars(
        select(Transfer)
        .where(Transfer.case_id.in_(list(case_ids)), Transfer.case_id.in_(select(Case.id).where(case_scope(ctx))))
        .order_by(Transfer.case_id, Transfer.id)
    )
    by_case: dict[int, list[Transfer]] = {pk: [] for pk in case_ids}
    for row in rows:
        by_case[row.case_id].append(row)
    return [by_case[pk] for pk in case_ids]
