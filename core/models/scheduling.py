from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, SmallInteger, String, Text, Time, text
from sqlalchemy.dialects.postgresql import TSTZRANGE, ExcludeConstraint, Range
from sqlalchemy.orm import Mapped, mapped_column

from core.database import Base
from core.models._columns import created_at, pk
from core.tenancy import OrganizationOwned


class Appointment(OrganizationOwned, Base):
    """A block of a staff member's time, booked by a plugin (a counseling session, a casework visit …).

    `blocked` is the appointment plus its buffer after it; the exclusion constraint makes two active
    appointments of one person never overlap, whichever plugin booked them and however many book at once.
    """

    __tablename__ = "appointments"
    __table_args__ = (
        ExcludeConstraint(
            ("owner_id", "="),
            ("blocked", "&&"),
            name="ex_appointments_no_overlap",
            using="gist",
            where=text("status = 'active'"),
        ),
        CheckConstraint("status IN ('active', 'cancelled')", name="status_valid"),
        CheckConstraint(
            "NOT isempty(during) AND lower(during) = lower(blocked) AND upper(during) <= upper(blocked)",
            name="blocked_covers_during",
        ),
        Index("ix_appointments_owner_during", "owner_id", "during", postgresql_using="gist"),
    )

    id: Mapped[int] = pk()
    owner_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id"))
    kind: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[int | None] = mapped_column(Integer)
    during: Mapped[Range[datetime]] = mapped_column(TSTZRANGE)
    blocked: Mapped[Range[datetime]] = mapped_column(TSTZRANGE)
    status: Mapped[str] = mapped_column(String(16), server_default="active")
    cancel_reason: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[datetime] = created_at()


class AvailabilityWindow(OrganizationOwned, Base):
    """A weekly recurring window in which a staff member takes appointments (local time of `timezone`)."""

    __tablename__ = "availability_windows"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        CheckConstraint("end_time > start_time", name="order"),
    )

    id: Mapped[int] = pk()
    owner_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"), index=True)
    weekday: Mapped[int] = mapped_column(SmallInteger)  # Monday = 0
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)
    timezone: Mapped[str] = mapped_column(String(64), server_default="Asia/Shanghai")


class AvailabilityException(OrganizationOwned, Base):
    """Time a staff member is away (leave, holidays) although a window would cover it."""

    __tablename__ = "availability_exceptions"
    __table_args__ = (Index("ix_availability_exceptions_owner_during", "owner_id", "during", postgresql_using="gist"),)

    id: Mapped[int] = pk()
    owner_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"))
    during: Mapped[Range[datetime]] = mapped_column(TSTZRANGE)
    reason: Mapped[str] = mapped_column(Text, server_default="")
