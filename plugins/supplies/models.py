from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core import Base, OrganizationOwned, created_at_column, pk_column

CATEGORIES = ("medical_protection", "food", "daily_necessities", "medicine", "infant_supplies", "equipment")
DONOR_KINDS = ("organization", "person")
MOVEMENT_KINDS = ("receipt", "transfer_out", "transfer_in", "distribution", "return", "adjustment", "reversal")
DISTRIBUTION_STATUSES = ("planned", "dispatched", "delivered", "cancelled")


class Item(OrganizationOwned, Base):
    __tablename__ = "supplies_items"
    __table_args__ = (
        CheckConstraint(f"category IN {CATEGORIES!r}", name="category_valid"),
        UniqueConstraint("organization_id", "name"),
    )

    id: Mapped[int] = pk_column()
    name: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(32))
    unit: Mapped[str] = mapped_column(String(16))
    # Tracked by batch with an expiry date (medicine, food, formula): picked first-expiry-first-out.
    batched: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class Warehouse(OrganizationOwned, Base):
    __tablename__ = "supplies_warehouses"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    id: Mapped[int] = pk_column()
    name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(Text, server_default="")


class Donor(OrganizationOwned, Base):
    __tablename__ = "supplies_donors"
    __table_args__ = (CheckConstraint(f"kind IN {DONOR_KINDS!r}", name="kind_valid"),)

    id: Mapped[int] = pk_column()
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    # Sensitive: donor contact details are for supplies managers only.
    contact: Mapped[str] = mapped_column(String(100), server_default="")


class Batch(OrganizationOwned, Base):
    """A lot of one item: a donation line's goods, with its expiry. `code` '' for unbatched items."""

    __tablename__ = "supplies_batches"
    __table_args__ = (UniqueConstraint("item_id", "code", "donor_id"),)

    id: Mapped[int] = pk_column()
    item_id: Mapped[int] = mapped_column(ForeignKey("supplies_items.id"))
    code: Mapped[str] = mapped_column(String(64), server_default="")
    expires_on: Mapped[date | None] = mapped_column(Date)
    donor_id: Mapped[int | None] = mapped_column(ForeignKey("supplies_donors.id"))


class Balance(OrganizationOwned, Base):
    """On hand per batch and warehouse, kept in the same transaction as the ledger. The CHECK makes
    negative stock impossible whatever code writes; services also decrement conditionally."""

    __tablename__ = "supplies_balances"
    __table_args__ = (CheckConstraint("on_hand >= 0", name="not_negative"),)

    batch_id: Mapped[int] = mapped_column(ForeignKey("supplies_batches.id"), primary_key=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("supplies_warehouses.id"), primary_key=True)
    on_hand: Mapped[int] = mapped_column(Integer)


class Movement(OrganizationOwned, Base):
    """The append-only stock ledger (a trigger refuses UPDATE and DELETE). Corrections are reversals."""

    __tablename__ = "supplies_movements"
    __table_args__ = (
        CheckConstraint(f"kind IN {MOVEMENT_KINDS!r}", name="kind_valid"),
        CheckConstraint("quantity <> 0", name="quantity_not_zero"),
        Index("ix_supplies_movements_batch", "batch_id", "warehouse_id"),
        Index(
            "uq_supplies_movements_reverses",
            "reverses_id",
            unique=True,
            postgresql_where=text("reverses_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = pk_column()
    kind: Mapped[str] = mapped_column(String(16))
    batch_id: Mapped[int] = mapped_column(ForeignKey("supplies_batches.id"))
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("supplies_warehouses.id"))
    # Signed: into the warehouse positive, out of it negative.
    quantity: Mapped[int] = mapped_column(Integer)
    distribution_id: Mapped[int | None] = mapped_column(ForeignKey("supplies_distributions.id"))
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("supplies_movements.id"))
    reason: Mapped[str] = mapped_column(Text, server_default="")
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Distribution(OrganizationOwned, Base):
    __tablename__ = "supplies_distributions"
    __table_args__ = (
        CheckConstraint(f"status IN {DISTRIBUTION_STATUSES!r}", name="status_valid"),
        CheckConstraint(
            "(community_id IS NOT NULL)::int + (request_id IS NOT NULL)::int + (recipient <> '')::int = 1",
            name="one_recipient",
        ),
    )

    id: Mapped[int] = pk_column()
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("supplies_warehouses.id"))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id"))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("help_requests.id"), index=True)
    recipient: Mapped[str] = mapped_column(String(100), server_default="")
    status: Mapped[str] = mapped_column(String(16), server_default="planned")
    # Set at delivery; less than was sent means the rest came back into the warehouse ('return' movements).
    delivered_quantity: Mapped[int | None] = mapped_column(Integer)
    confirmed_by: Mapped[str] = mapped_column(String(100), server_default="")
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A planned distribution cancelled: what it had reserved went back to stock ('return' movements).
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_reason: Mapped[str] = mapped_column(Text, server_default="")
    note: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[datetime] = created_at_column()


class IdempotencyKey(Base):
    """A mutation's key, the fingerprint of its arguments and what it produced: a retry returns that."""

    __tablename__ = "supplies_idempotency_keys"
    __tenancy__ = "organization"

    # Keys are per organisation: one organisation's key never collides with (or reveals) another's.
    organization_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("organizations.id"), primary_key=True, index=True, server_default=FetchedValue()
    )
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    operation: Mapped[str] = mapped_column(String(50))
    fingerprint: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'"))
    created_at: Mapped[datetime] = created_at_column()


class MoneyDonation(OrganizationOwned, Base):
    """Money received, in fen (never floats). What is left to allocate is derived, never stored."""

    __tablename__ = "supplies_money_donations"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        UniqueConstraint("organization_id", "receipt_no"),
    )

    id: Mapped[int] = pk_column()
    donor_id: Mapped[int] = mapped_column(ForeignKey("supplies_donors.id"), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    purpose: Mapped[str] = mapped_column(Text, server_default="")
    receipt_no: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MoneyAllocation(OrganizationOwned, Base):
    """Part of a donation assigned to a purchase or programme."""

    __tablename__ = "supplies_money_allocations"
    __table_args__ = (CheckConstraint("amount_fen > 0", name="amount_positive"),)

    id: Mapped[int] = pk_column()
    donation_id: Mapped[int] = mapped_column(ForeignKey("supplies_money_donations.id"), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    purpose: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
