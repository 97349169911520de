"""The link between a mother and the help requests raised for her urgent needs (migration m004).

The help request is core's record (status, history, matching, delivery, its own visibility by core's rules);
this table says only that it was raised for this mother -- for her or for her infant -- by whom, and what and
how much was asked. That link is a health-adjacent detail (it tells that she is followed by maternal care), so
it is shown with the mother, to those who read her health details, never on the request.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core import Base, OrganizationOwned, created_at_column, pk_column

BENEFICIARIES = ("mother", "infant")
MAX_QUANTITY = 10_000


class UrgentNeed(OrganizationOwned, Base):
    """An urgent need of a mother or her infant, raised as a core help request (one request, one need)."""

    __tablename__ = "maternal_care_urgent_needs"
    __table_args__ = (
        CheckConstraint(f"beneficiary IN {BENEFICIARIES!r}", name="beneficiary_valid"),
        CheckConstraint(f"quantity BETWEEN 1 AND {MAX_QUANTITY}", name="quantity_valid"),
        UniqueConstraint("organization_id", "help_request_id"),
        Index("ix_maternal_care_urgent_needs_mother", "mother_id", "id"),
    )

    id: Mapped[int] = pk_column()
    mother_id: Mapped[int] = mapped_column(ForeignKey("maternal_care_mothers.id"))
    help_request_id: Mapped[int] = mapped_column(ForeignKey("help_requests.id"))
    beneficiary: Mapped[str] = mapped_column(String(8))
    what: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(Text, server_default="")
    raised_by_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    raised_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = created_at_column()
