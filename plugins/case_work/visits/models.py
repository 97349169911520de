"""The visits slice's table (migration plugins/case_work/migrations/w004_case_visits.py).

A visit is an appointment on core's shared calendar (`appointments`, kind `case_work.visit`) of the case's
social worker, and optionally a second one of another staff member: the calendar's exclusion constraint, not
this table, is what keeps anyone from being double-booked (with a counseling session or anything else).
When it starts and ends is the appointment's; the visit keeps what casework adds (its kind, purpose,
outcome). A trigger refuses a visit booked, moved or given an outcome on a closed case (only a cancellation
still passes: it frees someone's time).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, Text, func, select
from sqlalchemy.orm import Mapped, column_property, mapped_column

from core import Base, OrganizationOwned, created_at_column, pk_column
from core.models import Appointment

MODES = ("home_visit", "call")
OUTCOMES = ("done", "no_answer", "client_not_home")
STATUSES = ("booked", *OUTCOMES, "cancelled")

# When an appointment starts (the lower bound of its range), typed for cursors and comparisons.
APPOINTMENT_START = func.lower(Appointment.during, type_=DateTime(timezone=True))


class Visit(OrganizationOwned, Base):
    """A home visit or a call of a case: booked, then cancelled (with a reason) or given an outcome."""

    __tablename__ = "case_work_visits"
    __table_args__ = (
        CheckConstraint(f"mode IN {MODES!r}", name="mode_valid"),
        CheckConstraint(f"status IN {STATUSES!r}", name="status_valid"),
        CheckConstraint("status <> 'cancelled' OR cancel_reason <> ''", name="cancelled_with_reason"),
        CheckConstraint("(status IN ('booked', 'cancelled')) = (outcome_at IS NULL)", name="outcome_when_done"),
        CheckConstraint(
            "second_appointment_id IS NULL OR second_appointment_id <> appointment_id", name="two_appointments"
        ),
        Index("ix_case_work_visits_case", "case_id", "id"),
    )

    id: Mapped[int] = pk_column()
    case_id: Mapped[int] = mapped_column(ForeignKey("case_work_cases.id"))
    mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), server_default="booked")
    purpose: Mapped[str] = mapped_column(Text, server_default="")
    # The social worker's appointment (owner: their staff record); the second staff member's, if any.
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id"), unique=True)
    worker_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    second_appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointments.id"), unique=True)
    second_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    # A short note on how it went: not the confidential progress note (the notes slice keeps those).
    outcome_note: Mapped[str] = mapped_column(Text, server_default="")
    outcome_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_reason: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[datetime] = created_at_column()
    # Set by every change, a move of the appointment included: the closed-case trigger sees each one.
    updated_at: Mapped[datetime] = created_at_column()
    # When the visit starts: its appointment's, read with the row (lists filter and order by it).
    starts_at: Mapped[datetime] = column_property(
        select(APPOINTMENT_START)
        .where(Appointment.id == appointment_id)
        .correlate_except(Appointment)
        .scalar_subquery()
    )
