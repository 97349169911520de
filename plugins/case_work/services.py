"""Casework rules: cases from intake to closure along the stages of MZ/T 094-2017, approvals, who sees a case.

Stages (`TRANSITIONS`, the same rows as the SQL function `case_work_stage_graph()` the database checks):
intake 接案 → assessment 预估 → planning 计划 → intervention 介入 → evaluation 评估 → closure 结案. An intake
may end `not_opened` (with a reason); evaluation may go back to intervention (with a reason); a closed case
is reopened to assessment by its supervisor or an administrator (with a reason). Every step is a history
row (who, when, from, to, why), written before the case changes -- the database refuses a stage change
without one, so the history cannot miss a step.

Approvals: a high-risk case leaves assessment for planning only with an approved assessment; a case is
closed only with an approved closure request (a summary and an outcome per goal). An approval counts for
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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import and_, false, or_, select, true, update
from sqlalchemy.sql.elements import ColumnElement

import core
from core.i18n import _
from core.models import Account, AccountPluginRole
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
    StageChange,
)

MANAGE = "case_work.manage"
SUPERVISE = "case_work.supervise"
SUPERVISOR_ROLE = "case_work.supervisor"
ADMIN_ROLES = frozenset({"organization_admin", "platform_admin"})
SOCIAL_WORKER = "social_worker"
CLOSED = frozenset({"closure", "not_opened"})
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

# Refusals the database makes (triggers and keys), as the answers the services' own checks give.
CONSTRAINT_ERRORS: dict[str, tuple[str, str, tuple[str, ...] | None]] = {
    "case_work_case_closed": ("CASE_CLOSED", "The case is closed: it cannot be changed.", None),
    "case_work_stage_transition": ("ILLEGAL_TRANSITION", "The case cannot go to this stage from its stage.", None),
    "case_work_stage_recorded": ("ILLEGAL_TRANSITION", "The case cannot go to this stage from its stage.", None),
    "case_work_approval_required": ("APPROVAL_REQUIRED", "This step needs an approved request first.", None),
    "uq_case_work_approvals_pending": (
        "ALREADY_EXISTS",
        "A request of this kind is waiting for a decision already.",
        ("input", "kind"),
    ),
    "ck_case_work_approvals_not_self_decided": ("SELF_APPROVAL", "Nobody decides their own request.", None),
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
    if viewer.role in ADMIN_ROLES:
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


def _account_of_caller(ctx: core.ServiceContext) -> int:
    """Casework records who acted by account: callers without one (API tokens) do not act on cases."""
    if ctx.viewer.account_id is None:
        raise core.DomainError("FORBIDDEN", "You may not do this.")
    return ctx.viewer.account_id


def _not_closed(case: Case) -> None:
    if case.stage in CLOSED:
        raise core.DomainError("CASE_CLOSED", "The case is closed: it cannot be changed.", ("input", "id"))


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
    source_kind: str | None = None,
    source_id: int | None = None,
    reason: str = "",
) -> Case:
    """Open a case at intake for an existing client (one the caller sees) or a new one. A social worker
    opens cases assigned to themselves; administrators assign any social worker of the organisation."""
    core.require(ctx, MANAGE)
    actor = _account_of_caller(ctx)
    v = core.Validator()
    _validate_kinds(v, category, risk_level)
    v.check(
        (client_id is None) != (client is None),
        ("input", "clientId"),
        "INVALID_INPUT",
        "Name an existing client or describe a new one (one of the two).",
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
    if social_worker_account_id != actor and ctx.viewer.role not in ADMIN_ROLES:
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
        person = Client(community_id=client.community_id, organization_id=organization_id, **fields)
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


# -- stages -----------------------------------------------------------------------------------------------------


async def _approved(ctx: core.ServiceContext, case: Case, kind: str) -> bool:
    """An approved request of `kind` asked during the case's current stage visit."""
    found = await ctx.session.scalar(
        select(Approval.id).where(
            Approval.case_id == case.id,
            Approval.kind == kind,
            Approval.status == "approved",
            Approval.stage_seq == case.stage_seq,
        )
    )
    return found is not None


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
    return case


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
            stage=case.stage,
            to=to_stage if to_stage in STAGES else "?",
        )
    clean = _reason(reason, step.kind in NEEDS_REASON)
    needs = step.approval if step.approval and (not step.high_risk_only or case.risk_level == "high") else None
    if needs is not None and not await _approved(ctx, case, needs):
        raise core.DomainError(
            "APPROVAL_REQUIRED", "This step needs an approved {kind} request first.", ("input", "to"), kind=needs
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
    ctx: core.ServiceContext, case_id: int, *, category: str | None = None, risk_level: str | None = None
) -> Case:
    """Change a case's category or risk level (not once it is closed). Lowering the risk is the supervisor's
    or an administrator's decision: otherwise a social worker could lower a high risk, step into planning
    without the approval a high-risk assessment needs, and raise it again."""
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
    if category is not None:
        case.category = category
    if risk_level is not None:
        case.risk_level = risk_level
    await _flush(ctx)
    return case


# -- approvals --------------------------------------------------------------------------------------------------


async def request_approval(
    ctx: core.ServiceContext, case_id: int, kind: str, summary: str, outcomes: Sequence[str] = ()
) -> Approval:
    """Ask for approval of the case's assessment (in assessment) or of its closure (in evaluation; a summary
    and one outcome per goal)."""
    case = await _case(ctx, case_id, "caseId")
    _not_closed(case)
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
            "A {kind} request is made in the {stage} stage.",
            ("input", "kind"),
            kind=kind,
            stage=APPROVAL_STAGE[kind],
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
    if kind == "closure":
        # One outcome per goal of the case's plan (imported here: the plans slice builds on this module).
        from plugins.case_work.plans.services import check_closure_outcomes

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
