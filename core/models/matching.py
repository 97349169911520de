from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.database import Base
from core.models._columns import created_at, enum_check, pk
from core.tenancy import OrganizationOwned
from core.vocab import EscalationStage, RequestCategory


class Notification(OrganizationOwned, Base):
    """Outbox: a message to a volunteer (an offer, an expiry …) that delivery channels (SMS, WeChat,
    app push) pick up with SELECT … FOR UPDATE SKIP LOCKED and mark delivered."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_pending", "id", postgresql_where=text("delivered_at IS NULL")),)

    id: Mapped[int] = pk()
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'"))
    created_at: Mapped[datetime] = created_at()
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


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
