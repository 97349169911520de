"""Delivery of the outbox (core.delivery): one row per (message, channel), and each organisation's webhook."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.database import Base
from core.models._columns import created_at, pk, updated_at
from core.services.sealing import sealed_check, sealed_column
from core.tenancy import OrganizationOwned

DELIVERY_STATUSES = ("queued", "sent", "parked")


class Delivery(OrganizationOwned, Base):
    """One message (a `notifications` row) on one channel. `queued` until the channel took it (`sent`) or
    it failed for good or too often (`parked`, with the reason; an administrator may queue it again).
    `attempts` counts claims: a worker claims a row by raising it and moving `next_attempt_at` past its lease,
    so a worker that died mid-send leaves a row that is retried once the lease is over. It belongs to its
    notification's organisation (a trigger fills it in)."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("notification_id", "channel"),
        CheckConstraint("status IN ('queued', 'sent', 'parked')", name="status_valid"),
        CheckConstraint("(status = 'sent') = (sent_at IS NOT NULL)", name="sent_at_when_sent"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        # What a worker claims next: due queued rows, oldest first.
        Index("ix_deliveries_due", "next_attempt_at", "id", postgresql_where=text("status = 'queued'")),
        # The administrators' list: parked first, newest first within a status.
        Index("ix_deliveries_organization_id_status", "organization_id", "status", "id"),
        # Outbox depth (/metrics): queued and parked counts and the oldest queued, without scanning sent rows.
        Index("ix_deliveries_open", "status", "created_at", postgresql_where=text("status IN ('queued', 'parked')")),
    )

    id: Mapped[int] = pk()
    notification_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("notifications.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(40))
    # The notification's kind, copied when routed (lists filter and show it without a join).
    kind: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16), server_default="queued", default="queued")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_error: Mapped[str] = mapped_column(Text, server_default="", default="")
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class WebhookEndpoint(OrganizationOwned, Base):
    """Where the `webhook` channel posts an organisation's messages (one endpoint per organisation), and
    the secret it signs them with, sealed (core.services.sealing, bound to this row's organisation id):
    the service never shows it again after it was set."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (UniqueConstraint("organization_id"), sealed_check("secret"))

    id: Mapped[int] = pk()
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[bytes] = sealed_column(nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"), default=True)
    configured_by: Mapped[str] = mapped_column(String(100), server_default="", default="")
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
