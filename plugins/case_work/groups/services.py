"""Group work (小组工作, MZ/T 095-2017): groups through their stages, participants, sessions, attendance, notes.

**Stages** (`TRANSITIONS`, the same rows as the SQL function `case_work_group_stage_graph()` the database
checks): 筹备 preparation → 形成 formation → 转折 transition → 成熟 maturity → 结束 ending. A group that does
not reach maturity may end early (from preparation, formation or transition), with a reason. Every step is a
history row (who, when, from, to, why) written before the group changes. Ending needs a closing summary
(sealed); the sessions still ahead are cancelled with it; an ended group changes no more (GROUP_ENDED; the
database refuses it too).

**Who** (all within the group's organisation; row-level security keeps the others out whatever happens):
- sees a group (`group_scope`): every holder of `case_work.manage` of the organisation -- group work is
  recruited in the open; callers without it (volunteers, community heads, counselors) are FORBIDDEN;
- runs it (`runs`: adds participants, schedules sessions, records attendance, moves its stage): its
  facilitator and co-facilitator, its supervisor (holding `case_work.supervisor`) and the organisation's
  administrators; anyone else who sees the group is FORBIDDEN (they know the group exists already);
- sees who takes part (participants by name, attendance, leave reasons): the people who run it, whether or
  not they serve each participant's case (contact and case stay with those who do) -- the others see
  how many take part, not who;
- reads and writes the confidential text (session outcome notes, the closing summary) -- `reads_notes`:
  the facilitators and the supervisor, by relation. Not administrators (organisation or platform: a
  purpose-of-access route for them is not built yet), not other social workers: for them the text is null.

**Capacity** is the database's: a trigger counts active participants on the group's row and a CHECK keeps the
count within capacity, so concurrent joins cannot overfill it (GROUP_FULL); the services check first only to
answer early. **Sessions** are appointments of the facilitator on core's calendar (kind
`case_work.group_session`): an overlap with anything else on their calendar is the calendar's SLOT_TAKEN.

**Changes of a running group** (none once it has ended: GROUP_ENDED): its supervisor or an administrator
hands it to another facilitator (and/or co-facilitator), eligible as at creation, with a reason, recorded (who,
when, why; the database wants the record). The sessions still ahead move with it -- booked on the new
facilitator's calendar at the same times, cancelled on the previous one's -- and if one does not fit there
(SLOT_TAKEN, OUTSIDE_AVAILABILITY) the whole change is refused, nothing written: a session the participants
expect is not dropped by a change of hands. The previous facilitator keeps nothing of the group: who runs it
and who reads its confidential text are relations to the group as it is now. Those who run the group change
its capacity (within 2..100, never below the participants now: GROUP_CAPACITY_BELOW_PARTICIPANTS, the
database's CHECK), its purpose and goals, and move a session still ahead on the calendar (core's reschedule).

Locks, in this order: the group (for stage steps, sessions and attendance), then staff records, then
appointments (core's calendar). Joins do not lock the group first: the counter's UPDATE does, in the database.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, false, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

import core
from core.i18n import _
from core.models import Account, AccountPluginRole, Appointment, Resident
from core.services import sealing
from plugins.case_work import services as cases
from plugins.case_work.groups.models import (
    ATTENDANCE,
    GROUPS_TABLE,
    MAX_CAPACITY,
    MIN_CAPACITY,
    NOTES_TABLE,
    STAGES,
    SUMMARY_COLUMN,
    TEXT_COLUMN,
    Attendance,
    Group,
    GroupFacilitatorChange,
    GroupNote,
    GroupSession,
    GroupStageChange,
    Participant,
)
from plugins.case_work.models import CATEGORIES, Client
from plugins.case_work.visits import services as visits_services

log = logging.getLogger(__name__)

KIND = "case_work.group_session"
MIN_MINUTES, MAX_MINUTES = 30, 240
MAX_SHORT, MAX_TEXT = 500, 20_000
# Bounds that make the nested lists' sizes known to the query cost (types.py declares them): sessions per group,
# outcome notes per session, participant rows per group (those who left included; a join past it is refused,
# and joins beyond capacity are refused anyway, so concurrent joins overshoot it by less than the capacity).
MAX_SESSIONS, MAX_NOTES, MAX_PARTICIPANT_ROWS = 30, 10, 2 * MAX_CAPACITY
# Facilitator changes a group keeps (a bound for the query cost, as for its sessions; more is refused).
MAX_FACILITATOR_CHANGES = 20
# The deployment's max_range_days when the caller passes none (the resolvers pass the setting).
MAX_RANGE_DAYS = visits_services.MAX_RANGE_DAYS
# Who may facilitate: social workers, and holders of the supervisor role (checked with the role itself).
FACILITATOR_ROLE = "social_worker"


@dataclass(frozen=True)
class Step:
    """An allowed stage change: `kind` forward or early_end (which needs a reason)."""

    kind: str


# The stage graph, as data (migration w005 writes the same rows into the database's; a test compares them).
TRANSITIONS: dict[tuple[str, str], Step] = {
    ("preparation", "formation"): Step("forward"),
    ("formation", "transition"): Step("forward"),
    ("transition", "maturity"): Step("forward"),
    ("maturity", "ending"): Step("forward"),
    ("preparation", "ending"): Step("early_end"),
    ("formation", "ending"): Step("early_end"),
    ("transition", "ending"): Step("early_end"),
}

# Wiring (plugins/case_work/plugin.py): the slice's error codes, and its sealed columns for `reseal`.
ERROR_CODES = {
    "GROUP_ILLEGAL_TRANSITION": "The group cannot go to that stage from its stage (MZ/T 095-2017 stage graph).",
    "GROUP_FULL": "The group has as many participants as its capacity.",
    "GROUP_ENDED": "The group has ended (结束): nothing of it changes.",
    "GROUP_SUMMARY_REQUIRED": "A group ends with a closing summary.",
    "GROUP_CAPACITY_BELOW_PARTICIPANTS": "A group's capacity is not set below the participants it has.",
}
SEALED_COLUMNS = (
    sealing.SealedColumn(GROUPS_TABLE, SUMMARY_COLUMN),
    sealing.SealedColumn(NOTES_TABLE, TEXT_COLUMN),
)

# Refusals the database makes, as the answers the services' own checks give.
CONSTRAINT_ERRORS: dict[str, tuple[str, str, tuple[str, ...] | None]] = {
    "case_work_group_ended": ("GROUP_ENDED", "The group has ended: nothing of it changes.", None),
    "case_work_group_stage_transition": (
        "GROUP_ILLEGAL_TRANSITION",
        "The group cannot go to this stage from its stage.",
        ("input", "to"),
    ),
    "case_work_group_stage_recorded": (
        "GROUP_ILLEGAL_TRANSITION",
        "The group cannot go to this stage from its stage.",
        ("input", "to"),
    ),
    "ck_case_work_groups_within_capacity": ("GROUP_FULL", "The group is full.", ("input", "groupId")),
    "ck_case_work_groups_summary_at_ending": (
        "GROUP_SUMMARY_REQUIRED",
        "A group ends with a closing summary.",
        ("input", "summary"),
    ),
    "uq_case_work_group_participants_active": (
        "ALREADY_EXISTS",
        "The client takes part in the group already.",
        ("input", "clientId"),
    ),
}

# A capacity below the participants now is the same CHECK a join over capacity trips; said for what it is.
CAPACITY_ERRORS: dict[str, tuple[str, str, tuple[str, ...] | None]] = {
    **CONSTRAINT_ERRORS,
    "ck_case_work_groups_within_capacity": (
        "GROUP_CAPACITY_BELOW_PARTICIPANTS",
        "The group has more participants than that.",
        ("input", "capacity"),
    ),
}


class _Keep:
    """An argument left out: the value stays."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()

# The reason written on a handed-over session's appointment left on the previous facilitator's calendar.
HANDED_OVER_REASON = _("The group has a new facilitator.")
# A session still to come that does not fit the new facilitator's calendar refuses the change (the calendar's code).
HANDOVER_REFUSED = {
    "SLOT_TAKEN": _(
        "A session of the group still to come clashes with the new facilitator's calendar: move or cancel it first."
    ),
    "OUTSIDE_AVAILABILITY": _(
        "A session of the group still to come falls outside the new facilitator's hours: move or cancel it first."
    ),
}

GROUPS_NEWEST: core.Ordering[Group] = core.Ordering(
    "case_work_groups_newest", (Group.id,), lambda g: (g.id,), descending=True
)


@dataclass(frozen=True)
class GroupFilter:
    stages: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    facilitator_account_id: int | None = None


# -- who -------------------------------------------------------------------------------------------------------


def group_scope(ctx: core.ServiceContext) -> ColumnElement[bool]:
    """The groups the caller sees: those of their organisation, for holders of case_work.manage."""
    viewer = ctx.viewer
    if not core.can(viewer, cases.MANAGE) or viewer.organization_id is None:
        return false()
    column: ColumnElement[bool] = Group.organization_id == viewer.organization_id
    return column


def _facilitates(viewer: core.Viewer, group: Group) -> bool:
    return viewer.account_id is not None and viewer.account_id in (
        group.facilitator_account_id,
        group.co_facilitator_account_id,
    )


def _supervises(viewer: core.Viewer, group: Group) -> bool:
    return viewer.account_id == group.supervisor_account_id and core.can(viewer, cases.SUPERVISE)


def runs(viewer: core.Viewer, group: Group) -> bool:
    """The people who run a group (see the module's docstring)."""
    if viewer.organization_id != group.organization_id or not core.can(viewer, cases.MANAGE):
        return False
    return _facilitates(viewer, group) or _supervises(viewer, group) or cases.is_admin_of(viewer, group.organization_id)


def hands_over(viewer: core.Viewer, group: Group) -> bool:
    """Who changes a group's facilitators: its supervisor or the organisation's administrators -- not the
    facilitators themselves (a group is handed on by those answerable for it)."""
    return runs(viewer, group) and (_supervises(viewer, group) or cases.is_admin_of(viewer, group.organization_id))


def writes_notes(viewer: core.Viewer, group: Group) -> bool:
    """Facilitators and the supervisor write the confidential text."""
    if viewer.organization_id != group.organization_id or not core.can(viewer, cases.MANAGE):
        return False
    return _facilitates(viewer, group) or _supervises(viewer, group)


def reads_notes(viewer: core.Viewer, group: Group) -> bool:
    """The facilitators and the supervisor, by relation. Administrators (platform ones included) do not:
    decisions.md has them read confidential text only through an explicit, audited access with a stated
    purpose, which group work does not offer yet."""
    return writes_notes(viewer, group)


def _running_scope(ctx: core.ServiceContext) -> ColumnElement[bool]:
    """The groups whose participants the caller sees (`runs`, as SQL)."""
    viewer = ctx.viewer
    if not core.can(viewer, cases.MANAGE) or viewer.organization_id is None:
        return false()
    mine: ColumnElement[bool] = Group.organization_id == viewer.organization_id
    if viewer.role in cases.ADMIN_ROLES:
        return mine
    if viewer.account_id is None:
        return false()
    relation: ColumnElement[bool] = or_(
        Group.facilitator_account_id == viewer.account_id, Group.co_facilitator_account_id == viewer.account_id
    )
    if core.can(viewer, cases.SUPERVISE):
        relation = or_(relation, Group.supervisor_account_id == viewer.account_id)
    return and_(mine, relation)


# -- helpers ---------------------------------------------------------------------------------------------------


async def _flush(ctx: core.ServiceContext) -> None:
    await core.flush(ctx, CONSTRAINT_ERRORS)


def _actor(ctx: core.ServiceContext) -> int:
    """Group work records who acted by account: callers without one (API tokens) do not act."""
    core.require(ctx, cases.MANAGE)
    if ctx.viewer.account_id is None or ctx.viewer.organization_id is None:
        raise core.DomainError("FORBIDDEN", "You may not do this.")
    return ctx.viewer.account_id


async def _group(ctx: core.ServiceContext, group_id: int, field: str = "groupId", *, lock: bool = True) -> Group:
    """A group the caller sees (else NOT_FOUND) and runs (else FORBIDDEN), locked for the change."""
    _actor(ctx)
    group: Group = await core.get_row(
        ctx, Group, group_id, what=_("Group"), field=("input", field), lock=lock, scope=group_scope(ctx)
    )
    if not runs(ctx.viewer, group):
        raise core.DomainError("FORBIDDEN", "Only the people who run the group change it.", ("input", field))
    return group


def _not_ended(group: Group) -> None:
    if group.stage == "ending":
        raise core.DomainError("GROUP_ENDED", "The group has ended: nothing of it changes.", ("input", "groupId"))


def _text(v: core.Validator, field: str, value: str, limit: int, *, required: bool = False) -> str:
    clean = value.strip()
    if required:
        v.check(bool(clean), ("input", field), "REQUIRED", "This is required.")
    v.check(len(clean) <= limit, ("input", field), "OUT_OF_RANGE", "At most {limit} characters.", limit=limit)
    return clean


async def _staff(ctx: core.ServiceContext, account_id: int, field: str, *, facilitator: bool) -> Account:
    """An active account of the caller's organisation (another organisation's answers like a missing one):
    a facilitator is a social worker or holds the supervisor role; a supervisor holds the supervisor role."""
    account: Account = await core.get_row(
        ctx,
        Account,
        account_id,
        what=_("Account"),
        field=("input", field),
        scope=Account.organization_id == ctx.viewer.organization_id,
    )
    holds_role = await ctx.session.scalar(
        select(func.count())
        .select_from(AccountPluginRole)
        .where(AccountPluginRole.account_id == account.id, AccountPluginRole.role == cases.SUPERVISOR_ROLE)
    )
    fits = bool(holds_role) or (facilitator and account.role == FACILITATOR_ROLE)
    if not account.is_active or not fits:
        raise core.DomainError(
            "INVALID_INPUT",
            "Name a social worker (a facilitator) or a casework supervisor of the organisation.",
            ("input", field),
        )
    return account


# -- groups and their stages -----------------------------------------------------------------------------------


async def create_group(
    ctx: core.ServiceContext,
    *,
    name: str,
    purpose: str,
    category: str,
    capacity: int,
    supervisor_account_id: int,
    goals: str = "",
    facilitator_account_id: int | None = None,
    co_facilitator_account_id: int | None = None,
) -> Group:
    """A new group in preparation. A social worker facilitates the groups they create; administrators name
    any facilitator of the organisation."""
    actor = _actor(ctx)
    v = core.Validator()
    clean_name = _text(v, "name", name, 100, required=True)
    clean_purpose = _text(v, "purpose", purpose, 2000, required=True)
    clean_goals = _text(v, "goals", goals, 5000)
    v.check(category in CATEGORIES, ("input", "category"), "INVALID_INPUT", "Unknown category.")
    v.check(
        MIN_CAPACITY <= capacity <= MAX_CAPACITY,
        ("input", "capacity"),
        "OUT_OF_RANGE",
        "A group takes {low} to {high} participants.",
        low=MIN_CAPACITY,
        high=MAX_CAPACITY,
    )
    v.raise_if_any()
    facilitator_id = facilitator_account_id or actor
    if facilitator_id != actor and ctx.viewer.role not in cases.ADMIN_ROLES:
        raise core.DomainError(
            "FORBIDDEN", "You create groups you facilitate; administrators name others.", ("input", "facilitatorId")
        )
    facilitator = await _staff(ctx, facilitator_id, "facilitatorId", facilitator=True)
    if co_facilitator_account_id is not None:
        if co_facilitator_account_id == facilitator.id:
            raise core.DomainError("INVALID_INPUT", "The co-facilitator is someone else.", ("input", "coFacilitatorId"))
        await _staff(ctx, co_facilitator_account_id, "coFacilitatorId", facilitator=True)
    supervisor = await _staff(ctx, supervisor_account_id, "supervisorId", facilitator=False)
    if supervisor.id == facilitator.id:
        raise core.DomainError("INVALID_INPUT", "The supervisor is someone else.", ("input", "supervisorId"))
    group = Group(
        name=clean_name,
        purpose=clean_purpose,
        goals=clean_goals,
        category=category,
        capacity=capacity,
        facilitator_account_id=facilitator.id,
        co_facilitator_account_id=co_facilitator_account_id,
        supervisor_account_id=supervisor.id,
        stage="preparation",
        stage_seq=0,
        facilitator_seq=0,
        participant_count=0,
        organization_id=ctx.viewer.organization_id,
    )
    ctx.session.add(group)
    await _flush(ctx)
    ctx.session.add(
        GroupStageChange(
            group_id=group.id,
            seq=0,
            from_stage=None,
            to_stage="preparation",
            actor_account_id=actor,
            actor=ctx.viewer.label[:100],
        )
    )
    await _flush(ctx)
    return group


async def advance(
    ctx: core.ServiceContext, group_id: int, to_stage: str, reason: str = "", summary: str | None = None
) -> Group:
    """The next step along the graph. Ending needs a closing summary (the facilitators' or the supervisor's:
    it is confidential text); it cancels the sessions still ahead."""
    group = await _group(ctx, group_id)
    actor = _actor(ctx)
    _not_ended(group)
    step = TRANSITIONS.get((group.stage, to_stage))
    if step is None:
        raise core.DomainError(
            "GROUP_ILLEGAL_TRANSITION",
            "A group in {stage} cannot go to {to}.",
            ("input", "to"),
            stage=group.stage,
            to=to_stage if to_stage in STAGES else "?",
        )
    v = core.Validator()
    clean_reason = _text(v, "reason", reason, 2000, required=step.kind == "early_end")
    clean_summary = _text(v, "summary", summary or "", MAX_TEXT)
    v.raise_if_any()
    now = ctx.now()
    if to_stage == "ending":
        if not writes_notes(ctx.viewer, group):
            raise core.DomainError(
                "FORBIDDEN", "The facilitators or the supervisor end a group (they write its summary).", ("input", "to")
            )
        if not clean_summary:
            raise core.DomainError(
                "GROUP_SUMMARY_REQUIRED", "A group ends with a closing summary.", ("input", "summary")
            )
        ahead = await ctx.session.scalars(
            select(GroupSession).where(
                GroupSession.group_id == group.id,
                GroupSession.status == "scheduled",
                GroupSession.starts_at > now,  # type: ignore[operator]
            )
        )
        for session in list(ahead):
            await core.cancel_appointment(ctx, session.appointment_id, "小组已结束")
            session.status, session.cancel_reason = "cancelled", "小组已结束"
        await _flush(ctx)
    ctx.session.add(
        GroupStageChange(
            group_id=group.id,
            seq=group.stage_seq + 1,
            from_stage=group.stage,
            to_stage=to_stage,
            actor_account_id=actor,
            actor=ctx.viewer.label[:100],
            reason=clean_reason,
        )
    )
    # The history row first: the database checks it exists when the group's stage changes.
    await _flush(ctx)
    if to_stage == "ending":
        # With the step (one UPDATE): the database wants the summary and the end time exactly then.
        group.closing_summary_sealed = await sealing.seal(
            ctx, clean_summary, table=GROUPS_TABLE, column=SUMMARY_COLUMN, row_id=group.id
        )
        group.ended_at = now
    group.stage = to_stage
    group.stage_seq = group.stage_seq + 1
    await _flush(ctx)
    return group


# -- changes of a running group --------------------------------------------------------------------------------


async def change_facilitators(
    ctx: core.ServiceContext,
    group_id: int,
    reason: str,
    *,
    facilitator_account_id: int | None = None,
    co_facilitator_account_id: Any = KEEP,
) -> Group:
    """Hand a running group to another facilitator and/or co-facilitator (None / KEEP: the same; a co-facilitator
    of None: none), with a reason, recorded. The sessions still ahead move to the new facilitator's calendar."""
    v = core.Validator()
    clean = _text(v, "reason", reason, MAX_SHORT, required=True)
    v.raise_if_any()
    actor = _actor(ctx)
    group = await _group(ctx, group_id)
    if not hands_over(ctx.viewer, group):
        raise core.DomainError(
            "FORBIDDEN", "The group's supervisor or an administrator changes its facilitators.", ("input", "groupId")
        )
    _not_ended(group)
    before = (group.facilitator_account_id, group.co_facilitator_account_id)
    facilitator_id = before[0] if facilitator_account_id is None else facilitator_account_id
    co_id = before[1] if co_facilitator_account_id is KEEP else co_facilitator_account_id
    if (facilitator_id, co_id) == before:
        raise core.DomainError("INVALID_INPUT", "Name someone new.", ("input", "facilitatorId"))
    # Only the people newly named are checked: someone kept was eligible when named.
    if facilitator_id != before[0]:
        await _staff(ctx, facilitator_id, "facilitatorId", facilitator=True)
        if facilitator_id == group.supervisor_account_id:
            raise core.DomainError("INVALID_INPUT", "The supervisor is someone else.", ("input", "facilitatorId"))
    if co_id is not None and co_id != before[1]:
        await _staff(ctx, co_id, "coFacilitatorId", facilitator=True)
    if co_id == facilitator_id:
        raise core.DomainError("INVALID_INPUT", "The co-facilitator is someone else.", ("input", "coFacilitatorId"))
    if group.facilitator_seq >= MAX_FACILITATOR_CHANGES:
        raise core.DomainError(
            "OUT_OF_RANGE",
            "A group changes facilitators at most {n} times.",
            ("input", "groupId"),
            n=MAX_FACILITATOR_CHANGES,
        )
    seq = group.facilitator_seq + 1
    # The record first: the database checks it exists when the group's facilitators change.
    ctx.session.add(
        GroupFacilitatorChange(
            group_id=group.id,
            seq=seq,
            from_facilitator_account_id=before[0],
            to_facilitator_account_id=facilitator_id,
            from_co_facilitator_account_id=before[1],
            to_co_facilitator_account_id=co_id,
            actor_account_id=actor,
            actor=ctx.viewer.label[:100],
            reason=clean,
            at=ctx.now(),
        )
    )
    await _flush(ctx)
    group.facilitator_account_id, group.co_facilitator_account_id, group.facilitator_seq = facilitator_id, co_id, seq
    await _flush(ctx)
    if facilitator_id != before[0]:
        # After the group's row: the database hands a session only to the group's facilitator.
        await _hand_over_sessions(ctx, group, facilitator_id)
    return group


async def _hand_over_sessions(ctx: core.ServiceContext, group: Group, account_id: int) -> None:
    """The group's scheduled sessions still to come, booked on `account_id`'s calendar at the same times and
    cancelled on the previous facilitator's (their time is free again); sessions that have started stay as they
    are: they say who led them. A session that does not fit refuses everything (see the module's docstring)."""
    now = ctx.now()
    ahead = list(
        (
            await ctx.session.scalars(
                select(GroupSession)
                .where(
                    GroupSession.group_id == group.id,
                    GroupSession.status == "scheduled",
                    GroupSession.starts_at > now,  # type: ignore[operator]
                )
                .order_by(GroupSession.id)
                .with_for_update(of=GroupSession)
            )
        ).all()
    )
    if not ahead:
        return
    field = ("input", "facilitatorId")
    account: Account = await core.get_row(ctx, Account, account_id, what=_("Account"), field=field)
    if account.volunteer_id is None:
        raise core.DomainError("OUTSIDE_AVAILABILITY", "The new facilitator has no calendar to book.", field)
    slots = {
        a.id: a
        for a in await ctx.session.scalars(
            select(Appointment).where(Appointment.id.in_([s.appointment_id for s in ahead]))
        )
    }
    # Every calendar this touches, locked in id order before core's calendar locks them one at a time.
    people = sorted({account.volunteer_id, *(a.owner_id for a in slots.values())})
    await ctx.session.scalars(
        select(core.Volunteer.id).where(core.Volunteer.id.in_(people)).order_by(core.Volunteer.id).with_for_update()
    )
    reason = str(HANDED_OVER_REASON)
    for session in ahead:
        old = slots[session.appointment_id]
        try:
            booked = await core.book_appointment(
                ctx, account.volunteer_id, KIND, old.during.lower, old.during.upper, record_id=session.id
            )
        except core.DomainError as refused:
            message = HANDOVER_REFUSED.get(refused.code)
            if message is None:
                raise
            raise core.DomainError(refused.code, message, field) from refused
        await core.cancel_appointment(ctx, session.appointment_id, reason)
        session.appointment_id, session.facilitator_account_id = booked.id, account_id
    await _flush(ctx)


async def update_group(
    ctx: core.ServiceContext,
    group_id: int,
    *,
    capacity: int | None = None,
    purpose: str | None = None,
    goals: str | None = None,
) -> Group:
    """Capacity, purpose and goals of a running group (None: the same), by those who run it. A capacity below
    the participants now is refused by the database's CHECK (GROUP_CAPACITY_BELOW_PARTICIPANTS): the group's
    row is locked, and a join waits on it, so the count it compares is the count that holds."""
    v = core.Validator()
    if capacity is not None:
        v.check(
            MIN_CAPACITY <= capacity <= MAX_CAPACITY,
            ("input", "capacity"),
            "OUT_OF_RANGE",
            "A group takes {low} to {high} participants.",
            low=MIN_CAPACITY,
            high=MAX_CAPACITY,
        )
    clean_purpose = None if purpose is None else _text(v, "purpose", purpose, 2000, required=True)
    clean_goals = None if goals is None else _text(v, "goals", goals, 5000)
    v.raise_if_any()
    group = await _group(ctx, group_id)
    _not_ended(group)
    if capacity is not None:
        group.capacity = capacity
    if clean_purpose is not None:
        group.purpose = clean_purpose
    if clean_goals is not None:
        group.goals = clean_goals
    await core.flush(ctx, CAPACITY_ERRORS)
    return group


# -- participants ----------------------------------------------------------------------------------------------


async def add_participant(ctx: core.ServiceContext, group_id: int, client_id: int) -> Participant:
    """A client of the organisation (one the caller sees) joins the group, within its capacity."""
    # Not locked: the database's counter holds the capacity (and serialises joins on the group's row).
    group = await _group(ctx, group_id, lock=False)
    actor = _actor(ctx)
    _not_ended(group)
    client: Client = await core.get_row(
        ctx, Client, client_id, what=_("Client"), field=("input", "clientId"), scope=cases.client_scope(ctx)
    )
    joined = await ctx.session.scalar(
        select(Participant.id).where(
            Participant.group_id == group.id, Participant.client_id == client.id, Participant.left_at.is_(None)
        )
    )
    if joined is not None:
        raise core.DomainError("ALREADY_EXISTS", "The client takes part in the group already.", ("input", "clientId"))
    rows = await ctx.session.scalar(
        select(func.count()).select_from(Participant).where(Participant.group_id == group.id)
    )
    if (rows or 0) >= MAX_PARTICIPANT_ROWS:
        raise core.DomainError(
            "OUT_OF_RANGE",
            "A group keeps at most {n} participants, past ones included.",
            ("input", "groupId"),
            n=MAX_PARTICIPANT_ROWS,
        )
    if group.participant_count >= group.capacity:
        raise core.DomainError("GROUP_FULL", "The group is full.", ("input", "groupId"))
    # Joined on the caller's clock (not the database's), the one attendance is judged by.
    participant = Participant(group_id=group.id, client_id=client.id, added_by_account_id=actor, joined_at=ctx.now())
    ctx.session.add(participant)
    await _flush(ctx)
    return participant


async def _participant(ctx: core.ServiceContext, participant_id: int, field: str = "id") -> tuple[Participant, Group]:
    _actor(ctx)
    participant: Participant = await core.get_row(
        ctx,
        Participant,
        participant_id,
        what=_("Participant"),
        field=("input", field),
        scope=Participant.group_id.in_(select(Group.id).where(_running_scope(ctx))),
    )
    group = await _group(ctx, participant.group_id, field)
    return participant, group


async def remove_participant(ctx: core.ServiceContext, participant_id: int, reason: str) -> Participant:
    """A participant leaves, with a reason (kept); their place is free again."""
    v = core.Validator()
    clean = _text(v, "reason", reason, MAX_SHORT, required=True)
    v.raise_if_any()
    participant, group = await _participant(ctx, participant_id)
    _not_ended(group)
    if participant.left_at is not None:
        raise core.DomainError("INVALID_TRANSITION", "The participant has left already.", ("input", "id"))
    participant.left_at, participant.left_by_account_id, participant.leave_reason = ctx.now(), _actor(ctx), clean
    await _flush(ctx)
    return participant


# -- sessions --------------------------------------------------------------------------------------------------


def _check_times(ctx: core.ServiceContext, v: core.Validator, start: datetime, minutes: int, horizon_days: int) -> None:
    v.check(
        MIN_MINUTES <= minutes <= MAX_MINUTES,
        ("input", "minutes"),
        "OUT_OF_RANGE",
        "A session lasts {low} to {high} minutes.",
        low=MIN_MINUTES,
        high=MAX_MINUTES,
    )
    # Core's calendar checks the offset and the past; the horizon is casework's, as for visits: a session
    # beyond it would lie past any search that starts today (a typo, not a plan).
    if start.tzinfo is not None:
        v.check(
            start - ctx.now() <= timedelta(days=horizon_days),
            ("input", "start"),
            "OUT_OF_RANGE",
            "A session is booked at most {days} days ahead.",
            days=horizon_days,
        )


async def schedule_session(
    ctx: core.ServiceContext,
    group_id: int,
    *,
    start: datetime,
    minutes: int,
    topic: str = "",
    horizon_days: int = MAX_RANGE_DAYS,
) -> GroupSession:
    """A session of the group on its facilitator's calendar (core refuses an overlap: SLOT_TAKEN), at most
    `horizon_days` (the deployment's max_range_days) ahead."""
    v = core.Validator()
    _check_times(ctx, v, start, minutes, horizon_days)
    clean_topic = _text(v, "topic", topic, MAX_SHORT)
    v.raise_if_any()
    group = await _group(ctx, group_id)
    _not_ended(group)
    held = await ctx.session.scalar(
        select(func.count()).select_from(GroupSession).where(GroupSession.group_id == group.id)
    )
    if (held or 0) >= MAX_SESSIONS:
        raise core.DomainError(
            "OUT_OF_RANGE", "A group has at most {n} sessions.", ("input", "groupId"), n=MAX_SESSIONS
        )
    facilitator: Account = await core.get_row(
        ctx, Account, group.facilitator_account_id, what=_("Account"), field=("input", "groupId")
    )
    if facilitator.volunteer_id is None:
        raise core.DomainError("OUTSIDE_AVAILABILITY", "The facilitator has no calendar to book.", ("input", "groupId"))
    appointment = await core.book_appointment(
        ctx, facilitator.volunteer_id, KIND, start, start + timedelta(minutes=minutes)
    )
    session = GroupSession(
        group_id=group.id, topic=clean_topic, appointment_id=appointment.id, facilitator_account_id=facilitator.id
    )
    ctx.session.add(session)
    await _flush(ctx)
    appointment.record_id = session.id
    await _flush(ctx)
    return session


async def _session(ctx: core.ServiceContext, session_id: int, field: str) -> tuple[GroupSession, Group]:
    """A session of a group the caller runs, and its group (locked first), or NOT_FOUND / FORBIDDEN."""
    _actor(ctx)
    found: GroupSession = await core.get_row(
        ctx,
        GroupSession,
        session_id,
        what=_("Session"),
        field=("input", field),
        scope=GroupSession.group_id.in_(select(Group.id).where(group_scope(ctx))),
    )
    group = await _group(ctx, found.group_id, field)
    session: GroupSession = await core.get_row(
        ctx, GroupSession, session_id, what=_("Session"), field=("input", field), lock=True
    )
    return session, group


async def cancel_session(ctx: core.ServiceContext, session_id: int, reason: str) -> GroupSession:
    """Cancel a scheduled session, with a reason; the facilitator's time is free again."""
    v = core.Validator()
    clean = _text(v, "reason", reason, MAX_SHORT, required=True)
    v.raise_if_any()
    session, group = await _session(ctx, session_id, "id")
    _not_ended(group)
    if session.status != "scheduled":
        raise core.DomainError("INVALID_TRANSITION", "The session is cancelled already.", ("input", "id"))
    await core.cancel_appointment(ctx, session.appointment_id, clean)
    session.status, session.cancel_reason = "cancelled", clean
    await _flush(ctx)
    return session


async def reschedule_session(
    ctx: core.ServiceContext, session_id: int, *, start: datetime, minutes: int, horizon_days: int = MAX_RANGE_DAYS
) -> GroupSession:
    """Move a scheduled session still to come on its facilitator's calendar (core refuses an overlap: SLOT_TAKEN;
    a time outside their hours: OUTSIDE_AVAILABILITY). A session that has started stays: it took place."""
    v = core.Validator()
    _check_times(ctx, v, start, minutes, horizon_days)
    v.raise_if_any()
    session, group = await _session(ctx, session_id, "id")
    _not_ended(group)
    if session.status != "scheduled":
        raise core.DomainError("INVALID_TRANSITION", "A cancelled session is not moved.", ("input", "id"))
    if session.starts_at <= ctx.now():
        raise core.DomainError("INVALID_TRANSITION", "A session that has started is not moved.", ("input", "id"))
    await core.reschedule_appointment(ctx, session.appointment_id, start, start + timedelta(minutes=minutes))
    await _flush(ctx)
    await ctx.session.refresh(session, ["starts_at"])
    return session


async def record_attendance(ctx: core.ServiceContext, session_id: int, participant_id: int, status: str) -> Attendance:
    """Whether a participant came to a session that has started (recorded again: the last word counts)."""
    v = core.Validator()
    v.check(status in ATTENDANCE, ("input", "status"), "INVALID_INPUT", "Present, absent or excused.")
    v.raise_if_any()
    actor = _actor(ctx)
    session, group = await _session(ctx, session_id, "sessionId")
    _not_ended(group)
    participant = await ctx.session.scalar(
        select(Participant).where(Participant.id == participant_id, Participant.group_id == group.id)
    )
    if participant is None:
        raise core.NotFound(_("Participant"), ("input", "participantId"))
    if session.status != "scheduled" or session.starts_at > ctx.now():
        raise core.DomainError(
            "INVALID_TRANSITION", "Attendance is recorded for a session that took place.", ("input", "sessionId")
        )
    if participant.joined_at > session.starts_at:
        raise core.DomainError(
            "INVALID_INPUT", "The participant joined after this session.", ("input", "participantId")
        )
    if participant.left_at is not None and participant.left_at <= session.starts_at:
        raise core.DomainError(
            "INVALID_INPUT", "The participant had left before this session.", ("input", "participantId")
        )
    row = await ctx.session.scalar(
        select(Attendance)
        .where(Attendance.session_id == session.id, Attendance.participant_id == participant.id)
        .with_for_update()
    )
    if row is None:
        row = Attendance(group_id=group.id, session_id=session.id, participant_id=participant.id)
        ctx.session.add(row)
    row.status, row.recorded_by_account_id, row.recorded_at = status, actor, ctx.now()
    await _flush(ctx)
    return row


async def add_note(ctx: core.ServiceContext, session_id: int, text: str) -> GroupNote:
    """An outcome note of a session (confidential, sealed), by a facilitator or the supervisor."""
    v = core.Validator()
    clean = _text(v, "text", text, MAX_TEXT, required=True)
    v.raise_if_any()
    session, group = await _session(ctx, session_id, "sessionId")
    if not writes_notes(ctx.viewer, group):
        raise core.DomainError("FORBIDDEN", "The facilitators or the supervisor write outcome notes.")
    _not_ended(group)
    written = await ctx.session.scalar(
        select(func.count()).select_from(GroupNote).where(GroupNote.session_id == session.id)
    )
    if (written or 0) >= MAX_NOTES:
        raise core.DomainError(
            "OUT_OF_RANGE", "A session has at most {n} outcome notes.", ("input", "sessionId"), n=MAX_NOTES
        )
    note_id = await sealing.next_id(ctx, NOTES_TABLE)
    note = GroupNote(
        id=note_id,
        group_id=group.id,
        session_id=session.id,
        text_sealed=await sealing.seal(ctx, clean, table=NOTES_TABLE, column=TEXT_COLUMN, row_id=note_id),
        author_account_id=_actor(ctx),
        author=ctx.viewer.label[:100],
        created_at=ctx.now(),
    )
    ctx.session.add(note)
    await _flush(ctx)
    return note


# -- reading ---------------------------------------------------------------------------------------------------


def _unknown(values: Sequence[str], allowed: Sequence[str], field: str) -> None:
    wrong = set(values) - set(allowed)
    if wrong:
        raise core.DomainError(
            "INVALID_INPUT", "Unknown values: {values}.", ("filter", field), values=tuple(sorted(wrong))
        )


async def list_groups(
    ctx: core.ServiceContext, f: GroupFilter = GroupFilter(), *, first: int = 50, after: str | None = None
) -> core.Page[Group]:
    """The groups of the caller's organisation, newest first."""
    core.require(ctx, cases.MANAGE)
    _unknown(f.stages, STAGES, "stages")
    _unknown(f.categories, CATEGORIES, "categories")
    stmt = select(Group).where(group_scope(ctx))
    if f.stages:
        stmt = stmt.where(Group.stage.in_(list(f.stages)))
    if f.categories:
        stmt = stmt.where(Group.category.in_(list(f.categories)))
    if f.facilitator_account_id is not None:
        stmt = stmt.where(Group.facilitator_account_id == f.facilitator_account_id)
    return await core.paginate(ctx, stmt, GROUPS_NEWEST, first=first, after=after)


async def groups_by_id(ctx: core.ServiceContext, pks: Sequence[int]) -> dict[int, Group]:
    """node(id:): those of `pks` the caller sees; others are simply absent (like missing ones)."""
    core.require(ctx, cases.MANAGE)
    if not pks:
        return {}
    rows = await ctx.session.scalars(select(Group).where(Group.id.in_(list(pks)), group_scope(ctx)))
    return {g.id: g for g in rows}


async def histories(ctx: core.ServiceContext, group_ids: Sequence[int]) -> list[list[GroupStageChange]]:
    """Each group's steps, in order (one query for a page of groups)."""
    rows = await ctx.session.scalars(
        select(GroupStageChange)
        .where(
            GroupStageChange.group_id.in_(list(group_ids)),
            GroupStageChange.group_id.in_(select(Group.id).where(group_scope(ctx))),
        )
        .order_by(GroupStageChange.group_id, GroupStageChange.seq)
    )
    by_group: dict[int, list[GroupStageChange]] = {pk: [] for pk in group_ids}
    for row in rows:
        by_group[row.group_id].append(row)
    return [by_group[pk] for pk in group_ids]


async def facilitator_changes(
    ctx: core.ServiceContext, group_ids: Sequence[int]
) -> list[list[GroupFacilitatorChange] | None]:
    """Each group's facilitator changes, in order (one query for a page of groups), for those who run it (the
    reasons are about the staff: sick leave, a move); None for the others."""
    shown = set(await ctx.session.scalars(select(Group.id).where(Group.id.in_(list(group_ids)), _running_scope(ctx))))
    by_group: dict[int, list[GroupFacilitatorChange]] = {pk: [] for pk in shown}
    if shown:
        rows = await ctx.session.scalars(
            select(GroupFacilitatorChange)
            .where(GroupFacilitatorChange.group_id.in_(shown))
            .order_by(GroupFacilitatorChange.group_id, GroupFacilitatorChange.seq)
        )
        for row in rows:
            by_group[row.group_id].append(row)
    return [by_group.get(pk) for pk in group_ids]


async def participants(ctx: core.ServiceContext, group_ids: Sequence[int]) -> list[list[Participant] | None]:
    """Each group's participants, those who left included, in joining order (one query for a page of groups);
    None for a group whose participants the caller does not see."""
    shown = set(await ctx.session.scalars(select(Group.id).where(Group.id.in_(list(group_ids)), _running_scope(ctx))))
    by_group: dict[int, list[Participant]] = {pk: [] for pk in shown}
    if shown:
        rows = await ctx.session.scalars(
            select(Participant).where(Participant.group_id.in_(shown)).order_by(Participant.group_id, Participant.id)
        )
        for row in rows:
            by_group[row.group_id].append(row)
    return [by_group.get(pk) for pk in group_ids]


async def participant_names(ctx: core.ServiceContext, participant_ids: Sequence[int]) -> list[str | None]:
    """Each participant's name (the resident's behind its client), for those who run its group: a facilitator
    leads a session and takes attendance by name, whether or not they serve that client's case. The name only:
    contact, address and the case stay with those who serve the client (the participant's `client`). None for
    a participant the caller does not see (another social worker, another organisation)."""
    if not participant_ids:
        return []
    rows = await ctx.session.execute(
        select(Participant.id, Resident.name)
        .join(Client, Client.id == Participant.client_id)
        .join(Resident, Resident.id == Client.resident_id)
        .where(
            Participant.id.in_(list(participant_ids)),
            Participant.group_id.in_(select(Group.id).where(_running_scope(ctx))),
        )
    )
    found: dict[int, str] = dict(rows.all())
    return [found.get(pk) for pk in participant_ids]


async def sessions(ctx: core.ServiceContext, group_ids: Sequence[int]) -> list[list[GroupSession]]:
    """Each group's sessions, earliest first (one query for a page of groups)."""
    rows = await ctx.session.scalars(
        select(GroupSession)
        .where(
            GroupSession.group_id.in_(list(group_ids)),
            GroupSession.group_id.in_(select(Group.id).where(group_scope(ctx))),
        )
        .order_by(GroupSession.group_id, GroupSession.starts_at, GroupSession.id)  # type: ignore[arg-type]
    )
    by_group: dict[int, list[GroupSession]] = {pk: [] for pk in group_ids}
    for row in rows:
        by_group[row.group_id].append(row)
    return [by_group[pk] for pk in group_ids]


async def attendance(ctx: core.ServiceContext, session_ids: Sequence[int]) -> list[list[Attendance] | None]:
    """Each session's attendance (one query for a page of sessions); None where the caller does not see
    who takes part."""
    rows = list(
        await ctx.session.scalars(
            select(Attendance)
            .where(
                Attendance.session_id.in_(list(session_ids)),
                Attendance.group_id.in_(select(Group.id).where(_running_scope(ctx))),
            )
            .order_by(Attendance.session_id, Attendance.participant_id)
        )
    )
    shown = set(
        await ctx.session.scalars(
            select(GroupSession.id).where(
                GroupSession.id.in_(list(session_ids)),
                GroupSession.group_id.in_(select(Group.id).where(_running_scope(ctx))),
            )
        )
    )
    by_session: dict[int, list[Attendance]] = {pk: [] for pk in shown}
    for row in rows:
        by_session[row.session_id].append(row)
    return [by_session.get(pk) for pk in session_ids]


async def _note_groups(ctx: core.ServiceContext, group_ids: Sequence[int]) -> dict[int, Group]:
    """Of these groups, those whose confidential text the caller reads."""
    if not group_ids or not core.can(ctx.viewer, cases.MANAGE):
        return {}
    rows = await ctx.session.scalars(select(Group).where(Group.id.in_(sorted(set(group_ids))), group_scope(ctx)))
    return {g.id: g for g in rows if reads_notes(ctx.viewer, g)}


async def notes(
    ctx: core.ServiceContext, session_ids: Sequence[int]
) -> list[list[tuple[GroupNote, str | None]] | None]:
    """Each session's outcome notes with their text, oldest first (one query for a page of sessions); None
    where the caller does not read them. A text that does not open is None (logged, the rest served)."""
    found = await ctx.session.execute(
        select(GroupSession.id, GroupSession.group_id).where(GroupSession.id.in_(list(session_ids)))
    )
    owners = {row.id: row.group_id for row in found}
    readable = await _note_groups(ctx, sorted(set(owners.values())))
    by_session: dict[int, list[tuple[GroupNote, str | None]]] = {pk: [] for pk, g in owners.items() if g in readable}
    if by_session:
        ring = await sealing.keyring(ctx)
        rows = await ctx.session.scalars(
            select(GroupNote).where(GroupNote.session_id.in_(list(by_session))).order_by(GroupNote.id)
        )
        for row in rows:
            try:
                value: str | None = ring.open(row.text_sealed, table=NOTES_TABLE, column=TEXT_COLUMN, row_id=row.id)
            except sealing.SealedValueError as exc:
                log.warning("case_work group note %s does not open: %s", row.id, exc.reason)
                value = None
            by_session[row.session_id].append((row, value))
    return [by_session.get(pk) for pk in session_ids]


async def closing_summary(ctx: core.ServiceContext, group: Group) -> str | None:
    """The closing summary, for those who read the group's confidential text (None for the others)."""
    if group.closing_summary_sealed is None or not reads_notes(ctx.viewer, group):
        return None
    try:
        return await sealing.unseal(
            ctx, group.closing_summary_sealed, table=GROUPS_TABLE, column=SUMMARY_COLUMN, row_id=group.id
        )
    except sealing.SealedValueError as exc:
        log.warning("case_work group %s summary does not open: %s", group.id, exc.reason)
        return None


async def sessions_by_id(ctx: core.ServiceContext, pks: Sequence[int]) -> dict[int, GroupSession]:
    """node(id:): sessions of the groups the caller sees; others are absent."""
    core.require(ctx, cases.MANAGE)
    if not pks:
        return {}
    rows = await ctx.session.scalars(
        select(GroupSession).where(
            GroupSession.id.in_(list(pks)), GroupSession.group_id.in_(select(Group.id).where(group_scope(ctx)))
        )
    )
    return {s.id: s for s in rows}


async def participants_by_id(ctx: core.ServiceContext, pks: Sequence[int]) -> dict[int, Participant]:
    """node(id:): participants of the groups the caller runs (who takes part is theirs); others are absent."""
    core.require(ctx, cases.MANAGE)
    if not pks:
        return {}
    rows = await ctx.session.scalars(
        select(Participant).where(
            Participant.id.in_(list(pks)), Participant.group_id.in_(select(Group.id).where(_running_scope(ctx)))
        )
    )
    return {p.id: p for p in rows}
