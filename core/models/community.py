from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.database import Base
from core.models._columns import created_at, enum_check, latlng_checks, pk, updated_at
from core.tenancy import OrganizationOwned
from core.vocab import LiaisonRole


class Community(OrganizationOwned, Base):
    """A residential community (社区) that posts needs through its head."""

    __tablename__ = "communities"
    __table_args__ = (
        UniqueConstraint("organization_id", "district_id", "name"),
        *latlng_checks(),
        Index("ix_communities_name_trgm", "name", postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"}),
    )

    id: Mapped[int] = pk()
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    street: Mapped[str] = mapped_column(String(100), default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    head_name: Mapped[str] = mapped_column(String(50), default="")
    head_phone: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class CommunityLiaison(OrganizationOwned, Base):
    """A member of a community's work group: one professional social worker and two volunteers."""

    __tablename__ = "community_liaisons"
    __table_args__ = (
        UniqueConstraint("community_id", "volunteer_id"),
        enum_check("role", LiaisonRole),
    )

    id: Mapped[int] = pk()
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    volunteer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("volunteers.id"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = created_at()
