from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, column_property, mapped_column

from core import Base, OrganizationOwned, created_at_column, pk_column
from core.models import Appointment

# When an appointment starts (the lower bound of its range), typed for cursors and comparisons.
APPOINTMENT_START = func.lower(Appointment.during, type_=DateTime(timezone=True))


class Counselor(OrganizationOwned, Base):
    """A staff member (their volunteer record) who gives counseling sessions."""

    __tablename__ = "counseling_counselors"

    id: Mapped[int] = pk_column()
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id"), unique=True)
    qualifications: Mapped[list[str]] = mapped_column(ARRAY(String(50)), server_default=text("'{}'"))
    specialties: Mapped[list[str]] = mapped_column(ARRAY(String(30)), server_default=text("'{}'"))
    languages: Mapped[list[str]] = mapped_column(ARRAY(String(30)), server_default=text("'{}'"))
    modes: Mapped[list[str]] = mapped_column(ARRAY(String(10)), server_default=text("'{online,offline}'"))
    created_at: Mapped[datetime] = created_at_column()


class Client(OrganizationOwned, Base):
    """A resident receiving counseling. Consent is recorded before anything else happens.

    The person is core's resident (`resident_id`, decisions.md "One identity"); name and phone stay here
    too, as counseling's own record of how the client was registered."""

    __tablename__ = "counseling_clients"

    id: Mapped[int] = pk_column()
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    name: Mapped[str] = mapped_column(String(50))
    phone: Mapped[str] = mapped_column(String(20))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id"))
    consent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    consent_note: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[datetime] = created_at_column()


class Session(OrganizationOwned, Base):
    __tablename__ = "counseling_sessions"
    __table_args__ = (
        CheckConstraint("status IN ('booked', 'attended', 'no_show', 'cancelled')", name="status_valid"),
        CheckConstraint("mode IN ('online', 'offline')", name="mode_valid"),
        Index("ix_counseling_sessions_counselor", "counselor_id", "id"),
    )

    id: Mapped[int] = pk_column()
    counselor_id: Mapped[int] = mapped_column(ForeignKey("counseling_counselors.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("counseling_clients.id"), index=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id"), unique=True)
    status: Mapped[str] = mapped_column(String(16), server_default="booked")
    mode: Mapped[str] = mapped_column(String(10))
    meeting_link: Mapped[str] = mapped_column(Text, server_default="")
    place: Mapped[str] = mapped_column(Text, server_default="")
    cancel_reason: Mapped[str] = mapped_column(Text, server_default="")
    # Sensitive: visible to the session's counselor and supervisors only.
    notes: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[datetime] = created_at_column()
    # When the session starts: its appointment's, read with the row (lists filter and order by it).
    starts_at: Mapped[datetime] = column_property(
        select(APPOINTMENT_START)
        .where(Appointment.id == appointment_id)
        .correlate_except(Appointment)
        .scalar_subquery()
    )


class Programme(OrganizationOwned, Base):
    """A journal programme: its days and daily prompts are data, not code."""

    __tablename__ = "counseling_programmes"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    id: Mapped[int] = pk_column()
    name: Mapped[str] = mapped_column(String(100))
    days: Mapped[int] = mapped_column(SmallInteger)
    prompts: Mapped[list[Any]] = mapped_column(JSONB)


class Enrolment(OrganizationOwned, Base):
    __tablename__ = "counseling_enrolments"
    __table_args__ = (UniqueConstraint("client_id", "programme_id", "starts_on"),)

    id: Mapped[int] = pk_column()
    client_id: Mapped[int] = mapped_column(ForeignKey("counseling_clients.id"), index=True)
    programme_id: Mapped[int] = mapped_column(ForeignKey("counseling_programmes.id"))
    starts_on: Mapped[date] = mapped_column(Date)
    days: Mapped[int] = mapped_column(SmallInteger)


class JournalEntry(OrganizationOwned, Base):
    __tablename__ = "counseling_journal_entries"
    __table_args__ = (
        UniqueConstraint("enrolment_id", "day"),
        CheckConstraint("mood BETWEEN 0 AND 10", name="mood_range"),
        CheckConstraint("day >= 1", name="day_positive"),
    )

    id: Mapped[int] = pk_column()
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("counseling_enrolments.id"))
    day: Mapped[int] = mapped_column(SmallInteger)
    mood: Mapped[int] = mapped_column(SmallInteger)
    text: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[datetime] = created_at_column()


class RiskFlag(OrganizationOwned, Base):
    """An open concern for a client: raised by a low mood trend or by a counselor; listed until resolved.
    At most one open flag per client and source (partial unique index)."""

    __tablename__ = "counseling_risk_flags"
    __table_args__ = (
        CheckConstraint("severity IN ('low', 'medium', 'high')", name="severity_valid"),
        CheckConstraint("source IN ('mood_trend', 'counselor')", name="source_valid"),
        Index(
            "uq_counseling_risk_flags_open",
            "client_id",
            "source",
            unique=True,
            postgresql_where=text("resolved_at IS NULL"),
        ),
    )

    id: Mapped[int] = pk_column()
    client_id: Mapped[int] = mapped_column(ForeignKey("counseling_clients.id"))
    severity: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, server_default="")
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
