"""Tables of casework's reactions (migration w007): what casework heard about, once per source, and the help
requests tagged for casework.

`case_work_intakes` is both the record that a source was handled (exactly once: a unique key per
organisation, source kind and source id, so an event delivered twice opens nothing twice) and the intake
queue: a row without a case (`status` 'queued') waits for a supervisor to turn it into a case.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from core import Base, OrganizationOwned, created_at_column, pk_column
from plugins.case_work.models import CATEGORIES, RISK_LEVELS

INTAKE_KINDS = ("help_request", "counseling_risk_flag", "maternal_risk")  # maternal_risk: w012 (a pregnancy)
INTAKE_STATUSES = ("queued", "opened", "attached")
# Why a source waits in the queue rather than opening a case by itself.
QUEUE_REASONS = ("no_social_worker", "no_supervisor", "no_resident", "refused", "consent_required")  # w013


class Intake(OrganizationOwned, Base):
    """A source casework heard about (a counseling risk flag, a tagged help request) and what became of it:
    a case opened for it, an open case it was attached to, or a place in the intake queue."""

    __tablename__ = "case_work_intakes"
    __table_args__ = (
        UniqueConstraint("organization_id", "source_kind", "source_id"),
        CheckConstraint(f"source_kind IN {INTAKE_KINDS!r}", name="source_kind_valid"),
        CheckConstraint(f"status IN {INTAKE_STATUSES!r}", name="status_valid"),
        CheckConstraint(f"risk_level IN {RISK_LEVELS!r}", name="risk_level_valid"),
        CheckConstraint("(status = 'queued') = (case_id IS NULL)", name="case_unless_queued"),
        CheckConstraint(
            f"(status = 'queued') = (queue_reason IS NOT NULL) AND "
            f"(queue_reason IS NULL OR queue_reason IN {QUEUE_REASONS!r})",
            name="queue_reason_valid",
        ),
        Index("ix_case_work_intakes_queue", "organization_id", "id", postgresql_where=text("status = 'queued'")),
    )

    id: Mapped[int] = pk_column()
    source_kind: Mapped[str] = mapped_column(String(24))
    source_id: Mapped[int] = mapped_column(BigInteger)
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id"))
    risk_level: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    queue_reason: Mapped[str | None] = mapped_column(String(24))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case_work_cases.id"), index=True)
    received_at: Mapped[datetime] = created_at_column()
    handled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    handled_by_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))


class RequestTag(OrganizationOwned, Base):
    """A help request tagged for casework: its verification opens a case (category and risk as tagged)."""

    __tablename__ = "case_work_request_tags"
    __table_args__ = (
        UniqueConstraint("organization_id", "help_request_id"),
        CheckConstraint(f"category IN {CATEGORIES!r}", name="category_valid"),
        CheckConstraint(f"risk_level IN {RISK_LEVELS!r}", name="risk_level_valid"),
    )

    id: Mapped[int] = pk_column()
    help_request_id: Mapped[int] = mapped_column(ForeignKey("help_requests.id"))
    category: Mapped[str] = mapped_column(String(20))
    risk_level: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(Text, server_default="")
    tagged_by_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    tagged_by: Mapped[str] = mapped_column(String(100))
    tagged_at: Mapped[datetime] = created_at_column()
