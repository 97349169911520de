"""The follow-ups slice's table (migration plugins/maternal_care/migrations/m003_maternal_care_followups.py).

A follow-up is one item of the national schedule (国家基本公共卫生服务规范, 孕产妇健康管理) for one pregnancy:
a prenatal check, the postpartum home visit, the day-42 check, or a re-check after an abnormal finding. The
schedule itself is data, not code: the immutable SQL function `maternal_care_followup_rules()` (code, label,
anchor, window offsets in days), which the services read and never restate. An item keeps the window its
rule gave it (inclusive dates); the rule's code is checked against that function by the database.

    open → booked → done (normal | abnormal) | missed;  open → done | missed;  open | booked → not_needed

An item may be booked on core's shared calendar (an appointment of a staff member: the calendar's exclusion
constraint refuses a double booking, whoever booked the other appointment).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from core import Base, OrganizationOwned, created_at_column, pk_column

STATUSES = ("open", "booked", "done", "missed", "not_needed")
OUTCOMES = ("normal", "abnormal")
ANCHORS = ("lmp", "delivery", "discharge", "finding")


class FollowUp(OrganizationOwned, Base):
    """One follow-up of a pregnancy, with its window, its booking and its outcome."""

    __tablename__ = "maternal_care_followups"
    __table_args__ = (
        CheckConstraint(f"status IN {STATUSES!r}", name="status_valid"),
        CheckConstraint("maternal_care_is_followup_rule(rule_code)", name="rule_known"),
        CheckConstraint("window_end >= window_start", name="window_ordered"),
        CheckConstraint(f"outcome IS NULL OR outcome IN {OUTCOMES!r}", name="outcome_valid"),
        CheckConstraint("(status = 'done') = (outcome IS NOT NULL)", name="outcome_when_done"),
        CheckConstraint("(status IN ('done', 'missed')) = (closed_on IS NOT NULL)", name="closed_dated"),
        CheckConstraint("status <> 'booked' OR appointment_id IS NOT NULL", name="booked_has_appointment"),
        # An abnormal finding is referred on: the referral is written with the outcome, or neither is.
        CheckConstraint("(outcome = 'abnormal') = (referral_id IS NOT NULL)", name="abnormal_referred"),
        CheckConstraint("(rule_code = 'recheck') = (finding_id IS NOT NULL)", name="recheck_of_a_finding"),
        # Idempotent generation: one item per pregnancy and schedule rule; one re-check per finding.
        Index(
            "uq_maternal_care_followups_rule",
            "pregnancy_id",
            "rule_code",
            unique=True,
            postgresql_where=text("finding_id IS NULL"),
        ),
        Index(
            "uq_maternal_care_followups_finding",
            "finding_id",
            unique=True,
            postgresql_where=text("finding_id IS NOT NULL"),
        ),
        # The overdue list: open and booked items by the end of their window.
        Index(
            "ix_maternal_care_followups_due",
            "window_end",
            "id",
            postgresql_where=text("status IN ('open', 'booked')"),
        ),
        Index("ix_maternal_care_followups_pregnancy", "pregnancy_id", "window_start", "id"),
    )

    id: Mapped[int] = pk_column()
    pregnancy_id: Mapped[int] = mapped_column(ForeignKey("maternal_care_pregnancies.id"))
    rule_code: Mapped[str] = mapped_column(String(32))
    window_start: Mapped[date] = mapped_column(Date)
    window_end: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), server_default="open")
    # The booking: an appointment on core's calendar of a staff member (kept when the window moves: see
    # `rebook_needed`).
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointments.id"), unique=True)
    staff_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    # A dating correction moved the window away from the booked appointment: the staff rebook (or keep it).
    rebook_needed: Mapped[bool] = mapped_column(Boolean, server_default="false")
    outcome: Mapped[str | None] = mapped_column(String(8))
    note: Mapped[str] = mapped_column(Text, server_default="")
    closed_on: Mapped[date | None] = mapped_column(Date)
    closed_by_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id"))
    # A re-check's abnormal finding (the item whose outcome called for it).
    finding_id: Mapped[int | None] = mapped_column(ForeignKey("maternal_care_followups.id"))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()
