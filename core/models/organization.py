from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from core.database import Base
from core.models._columns import created_at, enum_check, pk
from core.vocab import DistrictKind, OrganizationKind


class Organization(Base):
    """The association, a partner agency, a hospital, a foundation …: whoever members act for."""

    __tablename__ = "organizations"
    __table_args__ = (enum_check("kind", OrganizationKind),)

    id: Mapped[int] = pk()
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = created_at()


class District(Base):
    """A district (区), county (县) or development zone (开发区) of the city."""

    __tablename__ = "districts"
    __table_args__ = (enum_check("kind", DistrictKind),)

    id: Mapped[int] = pk()
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
