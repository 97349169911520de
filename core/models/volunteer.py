from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from core.database import Base
from core.models._columns import created_at, enum_check, latlng_checks, pk, updated_at
from core.tenancy import OrganizationOwned
from core.vocab import Availability, CredentialKind, Team, VolunteerMode, sql_in


class Volunteer(OrganizationOwned, Base):
    """A social worker or volunteer who can be assigned to help requests."""

    __tablename__ = "volunteers"
    __table_args__ = (
        # Per organisation: a global key on another organisation's (hidden) row would be an existence oracle.
        UniqueConstraint("organization_id", "phone"),
        enum_check("mode", VolunteerMode),
        enum_check("availability", Availability),
        CheckConstraint(f"teams <@ ARRAY[{sql_in(Team)}]::varchar[]", name="teams_valid"),
        CheckConstraint("max_concurrent_assignments BETWEEN 1 AND 50", name="max_concurrent_range"),
        # The capacity invariant, held by the database: a trigger on assignments keeps the counter exact
        # and this check refuses any write that would take a volunteer past their maximum.
        CheckConstraint(
            "active_assignments >= 0 AND active_assignments <= max_concurrent_assignments",
            name="capacity",
        ),
        *latlng_checks(),
        Index("ix_volunteers_name_trgm", "name", postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"}),
        Index("ix_volunteers_skills", "skills", postgresql_using="gin"),
        # Nearest-neighbour search (`<->`) for matching: earthdistance's earth() points in a GiST index.
        # Partial on availability: matching only ever wants available volunteers, and in a quiet week
        # most are not, so the scan never has to step over them.
        Index(
            "ix_volunteers_earth",
            text("ll_to_earth(latitude, longitude)"),
            postgresql_using="gist",
            postgresql_where=text("latitude IS NOT NULL AND availability = 'available'"),
        ),
        # Matching without a location orders by current load.
        Index(
            "ix_volunteers_load",
            "active_assignments",
            "id",
            postgresql_where=text("availability = 'available'"),
        ),
    )

    id: Mapped[int] = pk()
    name: Mapped[str] = mapped_column(String(50))
    phone: Mapped[str] = mapped_column(String(20), index=True)
    district_id: Mapped[int | None] = mapped_column(ForeignKey("districts.id"), index=True)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    mode: Mapped[str] = mapped_column(String(16))
    teams: Mapped[list[str]] = mapped_column(ARRAY(String(32)), server_default=text("'{}'"))
    skills: Mapped[list[str]] = mapped_column(ARRAY(String(50)), server_default=text("'{}'"))
    availability: Mapped[str] = mapped_column(String(16), server_default="available")
    max_concurrent_assignments: Mapped[int] = mapped_column(Integer, server_default="3")
    # Maintained only by the trigger on assignments (see the core migration); never written by Python.
    active_assignments: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class VolunteerCredential(OrganizationOwned, Base):
    """A document that lets a volunteer do something: a vehicle pass, a work permit, a licence."""

    __tablename__ = "volunteer_credentials"
    __table_args__ = (
        enum_check("kind", CredentialKind),
        CheckConstraint("expires_at IS NULL OR valid_from IS NULL OR expires_at > valid_from", name="validity"),
    )

    id: Mapped[int] = pk()
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    number: Mapped[str] = mapped_column(String(64), default="")
    issued_by: Mapped[str] = mapped_column(String(100), default="")
    valid_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at()


class Training(Base):
    """A pre-service training course (岗前培训) volunteers complete."""

    __tablename__ = "trainings"

    id: Mapped[int] = pk()
    code: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")


class VolunteerTraining(OrganizationOwned, Base):
    __tablename__ = "volunteer_trainings"
    __table_args__ = (UniqueConstraint("volunteer_id", "training_id"),)

    id: Mapped[int] = pk()
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"))
    training_id: Mapped[int] = mapped_column(ForeignKey("trainings.id"), index=True)
    completed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
