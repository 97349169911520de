"""Tables of casework's group work (小组工作, MZ/T 095-2017); migration w005_case_groups.py.

The database holds the rules whoever writes (triggers and constraints of w005):
- a group's stage moves only along `case_work_group_stage_graph()` (the same rows as services.TRANSITIONS),
  one step at a time, each step an append-only history row written first; it ends (结束) only with a closing
  summary; an ended group, and everything of it (participants, sessions, attendance, notes), changes no more;
- capacity: `participant_count` is kept by a trigger on the participants (a join adds one, a leave takes one)
  and a CHECK keeps it within `capacity`, so concurrent joins cannot overfill a group (the counter's row lock
  serialises them; the one over capacity is refused);
- a session is an appointment of the facilitator on core's shared calendar (kind `case_work.group_session`):
  the calendar's exclusion constraint keeps the facilitator from being double-booked; a scheduled session is
  handed to the group's (new) facilitator with a new appointment, nothing else of it changing (w010);
- the facilitator and co-facilitator change only with a change record (who, when, why; w010), counted by
  `facilitator_seq` as the stage steps are by `stage_seq`;
- attendance names a session and a participant of the same group (composite foreign keys);
- free text about participants (session outcome notes, the closing summary) is sealed (core.services.sealing).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
    text,
)
from sqlalchemy.orm import Mapped, column_property, mapped_column

from core import Base, OrganizationOwned, created_at_column, pk_column
from core.models import Appointment
from core.services import sealing
from plugins.case_work.models import CATEGORIES

STAGES = ("preparation", "formation", "transition", "maturity", "ending")
SESSION_STATUSES = ("scheduled", "cancelled")
ATTENDANCE = ("present", "absent", "excused")
MIN_CAPACITY, MAX_CAPACITY = 2, 100

GROUPS_TABLE = "case_work_groups"
NOTES_TABLE = "case_work_group_notes"
SUMMARY_COLUMN = "closing_summary_sealed"
TEXT_COLUMN = "text_sealed"

APPOINTMENT_START = func.lower(Appointment.during, type_=DateTime(timezone=True))


class Group(OrganizationOwned, Base):
    """A group: purpose and goals, facilitator (and co-facilitator), supervisor, stage, capacity."""

    __tablename__ = GROUPS_TABLE
    __table_args__ = (
        CheckConstraint(f"stage IN {STAGES!r}", name="stage_valid"),
        CheckConstraint(f"category IN {CATEGORIES!r}", name="category_valid"),
        CheckConstraint(f"capacity BETWEEN {MIN_CAPACITY} AND {MAX_CAPACITY}", name="capacity_valid"),
        CheckConstraint("participant_count >= 0 AND participant_count <= capacity", name="within_capacity"),
        CheckConstraint("co_facilitator_account_id <> facilitator_account_id", name="two_facilitators"),
        CheckConstraint("supervisor_account_id <> facilitator_account_id", name="supervisor_not_facilitator"),
        CheckConstraint("stage_seq > 0 OR stage = 'preparation'", name="starts_in_preparation"),
        CheckConstraint("(stage = 'ending') = (ended_at IS NOT NULL)", name="ended_when_ending"),
        CheckConstraint(f"stage <> 'ending' OR {SUMMARY_COLUMN} IS NOT NULL", name="summary_at_ending"),
        sealing.sealed_check(SUMMARY_COLUMN),
        Index("ix_case_work_groups_facilitator", "facilitator_account_id", "id"),
    )

    id: Mapped[int] = pk_column()
    name: Mapped[str] = mapped_column(String(100))
    purpose: Mapped[str] = mapped_column(Text)
    goals: Mapped[str] = mapped_column(Text, server_default="")
    category: Mapped[str] = mapped_column(String(20))
    facilitator_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    co_facilitator_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    supervisor_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    capacity: Mapped[int] = mapped_column(Integer)
    # Kept by the participants' trigger (active participants), never by the services.
    participant_count: Mapped[int] = mapped_column(Integer, server_default="0")
    stage: Mapped[str] = mapped_column(String(16), server_default="preparation")
    stage_seq: Mapped[int] = mapped_column(Integer, server_default="0")
    # The number of facilitator changes: the last change record's seq (the database checks it; w010).
    facilitator_seq: Mapped[int] = mapped_column(Integer, server_default="0")
    closing_summary_sealed: Mapped[bytes | None] = sealing.sealed_column()
    created_at: Mapped[datetime] = created_at_column()
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class GroupStageChange(OrganizationOwned, Base):
    """One step of a group (append-only): who, when, from, to, why. `seq` 0 is the creation."""

    __tablename__ = "case_work_group_stage_changes"
    __table_args__ = (
        UniqueConstraint("group_id", "seq"),
        CheckConstraint(f"to_stage IN {STAGES!r}", name="to_stage_valid"),
        CheckConstraint("(seq = 0) = (from_stage IS NULL)", name="creation_first"),
        CheckConstraint(
            "from_stage IS NULL OR case_work_group_is_step(from_stage, to_stage)", name="step_of_the_graph"
        ),
    )

    id: Mapped[int] = pk_column()
    group_id: Mapped[int] = mapped_column(ForeignKey("case_work_groups.id"))
    seq: Mapped[int] = mapped_column(Integer)
    from_stage: Mapped[str | None] = mapped_column(String(16))
    to_stage: Mapped[str] = mapped_column(String(16))
    actor_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text, server_default="")
    at: Mapped[datetime] = created_at_column()


class GroupFacilitatorChange(OrganizationOwned, Base):
    """A change of a group's facilitator and/or co-facilitator (append-only): from whom, to whom, who, when, why.
    `seq` counts the group's changes from 1 (migration w010)."""

    __tablename__ = "case_work_group_facilitator_changes"
    __table_args__ = (
        UniqueConstraint("group_id", "seq"),
        CheckConstraint("seq > 0", name="seq_positive"),
        CheckConstraint("length(btrim(reason)) > 0", name="reason_given"),
        CheckConstraint(
            "(from_facilitator_account_id, from_co_facilitator_account_id) IS DISTINCT FROM "
            "(to_facilitator_account_id, to_co_facilitator_account_id)",
            name="changes_someone",
        ),
        CheckConstraint("to_co_facilitator_account_id <> to_facilitator_account_id", name="two_facilitators"),
    )

    id: Mapped[int] = pk_column()
    group_id: Mapped[int] = mapped_column(ForeignKey("case_work_groups.id"))
    seq: Mapped[int] = mapped_column(Integer)
    from_facilitator_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    to_facilitator_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    from_co_facilitator_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    to_co_facilitator_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    actor_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = created_at_column()


class Participant(OrganizationOwned, Base):
    """A casework client in a group: joined, and perhaps left (with a reason, kept). Rejoining is a new row."""

    __tablename__ = "case_work_group_participants"
    __table_args__ = (
        UniqueConstraint("id", "group_id"),
        CheckConstraint(
            "(left_at IS NULL) = (left_by_account_id IS NULL) AND (left_at IS NULL) = (leave_reason IS NULL)",
            name="leave_complete",
        ),
        CheckConstraint("leave_reason IS NULL OR length(btrim(leave_reason)) > 0", name="leave_reason_given"),
        Index(
            "uq_case_work_group_participants_active",
            "group_id",
            "client_id",
            unique=True,
            postgresql_where=text("left_at IS NULL"),
        ),
        Index("ix_case_work_group_participants_client", "client_id"),
    )

    id: Mapped[int] = pk_column()
    group_id: Mapped[int] = mapped_column(ForeignKey("case_work_groups.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("case_work_clients.id"))
    added_by_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    joined_at: Mapped[datetime] = created_at_column()
    left_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    left_by_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    leave_reason: Mapped[str | None] = mapped_column(Text)


class GroupSession(OrganizationOwned, Base):
    """A meeting of the group: an appointment of the facilitator on the shared calendar; cancelled with a reason."""

    __tablename__ = "case_work_group_sessions"
    __table_args__ = (
        UniqueConstraint("id", "group_id"),
        CheckConstraint(f"status IN {SESSION_STATUSES!r}", name="status_valid"),
        CheckConstraint("(status = 'cancelled') = (cancel_reason <> '')", name="cancelled_with_reason"),
        Index("ix_case_work_group_sessions_group", "group_id", "id"),
    )

    id: Mapped[int] = pk_column()
    group_id: Mapped[int] = mapped_column(ForeignKey("case_work_groups.id"))
    topic: Mapped[str] = mapped_column(Text, server_default="")
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id"), unique=True)
    facilitator_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    status: Mapped[str] = mapped_column(String(16), server_default="scheduled")
    cancel_reason: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[datetime] = created_at_column()
    starts_at: Mapped[datetime] = column_property(
        select(APPOINTMENT_START)
        .where(Appointment.id == appointment_id)
        .correlate_except(Appointment)
        .scalar_subquery()
    )


class Attendance(OrganizationOwned, Base):
    """Whether a participant came to a session (present / absent / excused): re-recorded while the group runs."""

    __tablename__ = "case_work_group_attendance"
    __table_args__ = (
        UniqueConstraint("session_id", "participant_id"),
        CheckConstraint(f"status IN {ATTENDANCE!r}", name="status_valid"),
        # A session and a participant of the same group, whoever writes the row.
        ForeignKeyConstraint(
            ["session_id", "group_id"],
            ["case_work_group_sessions.id", "case_work_group_sessions.group_id"],
            name="fk_case_work_group_attendance_session_of_group",
        ),
        ForeignKeyConstraint(
            ["participant_id", "group_id"],
            ["case_work_group_participants.id", "case_work_group_participants.group_id"],
            name="fk_case_work_group_attendance_participant_of_group",
        ),
    )

    id: Mapped[int] = pk_column()
    group_id: Mapped[int] = mapped_column(ForeignKey("case_work_groups.id"))
    session_id: Mapped[int] = mapped_column(BigInteger)
    participant_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    recorded_by_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    recorded_at: Mapped[datetime] = created_at_column()


class GroupNote(OrganizationOwned, Base):
    """An outcome note of a session (append-only), its text sealed: confidential, like a progress note."""

    __tablename__ = NOTES_TABLE
    __table_args__ = (
        sealing.sealed_check(TEXT_COLUMN),
        ForeignKeyConstraint(
            ["session_id", "group_id"],
            ["case_work_group_sessions.id", "case_work_group_sessions.group_id"],
            name="fk_case_work_group_notes_session_of_group",
        ),
        Index("ix_case_work_group_notes_session", "session_id", "id"),
    )

    id: Mapped[int] = pk_column()
    group_id: Mapped[int] = mapped_column(ForeignKey("case_work_groups.id"))
    session_id: Mapped[int] = mapped_column(BigInteger)
    text_sealed: Mapped[bytes] = sealing.sealed_column(nullable=False)
    author_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    author: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = created_at_column()
