from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Numeric, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from core.database import Base
from core.models._columns import enum_check, pk
from core.tenancy import OrganizationOwned
from core.vocab import ACTIVE_ASSIGNMENT_STATUSES, AssignmentStatus, sql_in


class Assignment(OrganizationOwned, Base):
    """A volunteer on a help request: offered → accepted / declined → completed / withdrawn."""

    __tablename__ = "assignments"
    __table_args__ = (
        enum_check("status", AssignmentStatus),
        CheckConstraint("hours IS NULL OR (hours > 0 AND hours <= 1000)", name="hours_range"),
        CheckConstraint("(status = 'completed') = (hours IS NOT NULL)", name="hours_iff_completed"),
        # One live assignment per volunteer and request; a declined or withdrawn one may be offered again.
        Index(
            "uq_assignments_active_pair",
            "request_id",
            "volunteer_id",
            unique=True,
            postgresql_where=text(f"status IN ({sql_in(ACTIVE_ASSIGNMENT_STATUSES)})"),
        ),
        Index("ix_assignments_request", "request_id"),
        Index("ix_assignments_volunteer", "volunteer_id", "id"),
        Index("ix_assignments_expiring", "expires_at", postgresql_where=text("status = 'offered'")),
    )

    id: Mapped[int] = pk()
    request_id: Mapped[int] = mapped_column(ForeignKey("help_requests.id"))
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id"))
    status: Mapped[str] = mapped_column(String(16), server_default="offered")
    note: Mapped[str] = mapped_column(Text, default="")
    decline_reason: Mapped[str] = mapped_column(Text, default="")
    hours: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    offered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    responded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # An offer not answered by then expires and the request returns to the queue.
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
