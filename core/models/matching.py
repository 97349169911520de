from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.database import Base
from core.models._columns import created_at, enum_check, pk
from core.tenancy import OrganizationOwned
from core.vocab import EscalationStage, RequestCategory


class Notification(OrganizationOwned, Base):
    """The one outbox (core's and plugins' messages): delivery channels pick rows up with
    SELECT … FOR UPDATE SKIP LOCKED and mark them delivered. Queue through core.services.outbox.notify."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_pending", "id", postgresql_where=text("delivered_at IS NULL")),
        CheckConstraint(
            "volunteer_id IS NOT NULL OR account_id IS NOT NULL OR recipient_phone <> ''", name="has_recipient"
        ),
        UniqueConstraint("organization_id", "dedupe_key"),
    )

    id: Mapped[int] = pk()
    volunteer_id: Mapped[int | None] = mapped_column(ForeignKey("volunteers.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    recipient_name: Mapped[str] = mapped_column(String(100), server_default="", default="")
    recipient_phone: Mapped[str] = mapped_column(String(32), server_default="", default="")
    kind: Mapped[str] = mapped_column(String(80))
    source: Mapped[str] = mapped_column(String(40), server_default="core", default="core")
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'"))
    created_at: Mapped[datetime] = created_at()
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class JobRun(OrganizationOwned, Base):
    """When a scheduled job last ran for an organisation; its row lock keeps two processes from running
    the same job for the same organisation at once (core/jobs.py)."""

    __tablename__ = "job_runs"

    organization_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("organizations.id"), primary_key=True)
    job: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str] = mapped_column(Text, server_default="", default="")


class Escalation(OrganizationOwned, Base):
    """A request crossed a target time for one stage. Unique per (request, stage): fired once."""

    __tablename__ = "escalations"
    __table_args__ = (
        UniqueConstraint("request_id", "stage"),
        enum_check("stage", EscalationStage),
    )

    id: Mapped[int] = pk()
    request_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("help_requests.id"))
    stage: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CategoryTraining(Base):
    """A training volunteers must have completed before they are matched to requests of a category."""

    __tablename__ = "category_trainings"
    __table_args__ = (UniqueConstraint("category", "training_id"), enum_check("category", RequestCategory))

    id: Mapped[int] = pk()
    category: Mapped[str] = mapped_column(String(40))
    training_id: Mapped[int] = mapped_column(ForeignKey("trainings.id"))
