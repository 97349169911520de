"""Lectures for expectant mothers and their registrations (migration m002_maternal_care_lectures.py).

The database holds the rules whoever writes (constraints and triggers of m002):
- a lecture ends after it starts, has an online link or a place (or both), a capacity of 1..500 and a target
  audience: a non-empty set of trimester_1, trimester_2, trimester_3, postpartum;
- capacity: `registered_count` is kept by a trigger on the registrations (a seat taken adds one, a seat freed
  takes one) and a CHECK keeps it within `capacity`. That CHECK is what decides, under any concurrency,
  whether a registration gets a seat or joins the waitlist (services.register tries the seat first);
- one live registration (registered or waitlisted) per mother and lecture (a partial unique index);
- the waitlist is first in, first out by the registration's identity (`id`, taken under the lecture's row
  lock, so it is the arrival order); a registration only moves waitlisted → registered (promoted),
  registered|waitlisted → cancelled; nothing is deleted;
- a registration keeps the IANA time zone it was made in (m006: `time_zone`, of a zone name's shape; the
  service validates the zone): her lecture's local date, hence her gestational week, is counted in it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from core import Base, OrganizationOwned, created_at_column, pk_column

AUDIENCES = ("trimester_1", "trimester_2", "trimester_3", "postpartum")
LECTURE_STATUSES = ("scheduled", "cancelled")
REGISTRATION_STATUSES = ("registered", "waitlisted", "cancelled")
ATTENDANCE = ("present", "absent")
MIN_CAPACITY, MAX_CAPACITY = 1, 500
# The zone of registrations made before m006 (they were judged in the deployment's default zone).
DEFAULT_ZONE = "Asia/Shanghai"
ZONE_SHAPE = "^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$"  # the registry's _ZONE_NAME, at most 64 long

LECTURES_TABLE = "maternal_care_lectures"
REGISTRATIONS_TABLE = "maternal_care_lecture_registrations"
WITHIN_CAPACITY = "ck_maternal_care_lectures_within_capacity"
ONE_LIVE = "uq_maternal_care_lecture_registrations_live"


class Lecture(OrganizationOwned, Base):
    """A lecture (e.g. an obstetrician online: "self-care for pregnant women at home during the epidemic")."""

    __tablename__ = LECTURES_TABLE
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("online_url <> '' OR place <> ''", name="link_or_place"),
        CheckConstraint(f"capacity BETWEEN {MIN_CAPACITY} AND {MAX_CAPACITY}", name="capacity_valid"),
        CheckConstraint("registered_count >= 0 AND registered_count <= capacity", name="within_capacity"),
        CheckConstraint(
            f"cardinality(audience) > 0 AND audience <@ ARRAY{list(AUDIENCES)!r}::varchar[]", name="audience_valid"
        ),
        CheckConstraint(f"status IN {LECTURE_STATUSES!r}", name="status_valid"),
        CheckConstraint("(status = 'cancelled') = (cancelled_at IS NOT NULL)", name="cancelled_when_cancelled"),
        Index("ix_maternal_care_lectures_starts_at", "starts_at", "id"),
    )

    id: Mapped[int] = pk_column()
    title: Mapped[str] = mapped_column(String(200))
    speaker: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, server_default="")
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    online_url: Mapped[str] = mapped_column(String(500), server_default="")
    place: Mapped[str] = mapped_column(String(200), server_default="")
    capacity: Mapped[int] = mapped_column(Integer)
    registered_count: Mapped[int] = mapped_column(Integer, server_default="0")
    audience: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    status: Mapped[str] = mapped_column(String(16), server_default="scheduled")
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_reason: Mapped[str] = mapped_column(Text, server_default="")
    created_by_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = created_at_column()


class Registration(OrganizationOwned, Base):
    """A mother's place at a lecture: registered (a seat), waitlisted (FIFO by `id`) or cancelled; attendance
    once the lecture has started."""

    __tablename__ = REGISTRATIONS_TABLE
    __table_args__ = (
        CheckConstraint(f"status IN {REGISTRATION_STATUSES!r}", name="status_valid"),
        CheckConstraint(f"attendance IS NULL OR attendance IN {ATTENDANCE!r}", name="attendance_valid"),
        CheckConstraint("attendance IS NULL OR status = 'registered'", name="attendance_of_a_seat"),
        CheckConstraint("(status = 'cancelled') = (cancelled_at IS NOT NULL)", name="cancelled_when_cancelled"),
        CheckConstraint(f"time_zone ~ '{ZONE_SHAPE}'", name="time_zone_shape"),
        Index(ONE_LIVE, "lecture_id", "mother_id", unique=True, postgresql_where=text("status <> 'cancelled'")),
        Index("ix_maternal_care_lecture_registrations_lecture", "lecture_id", "status", "id"),
        Index("ix_maternal_care_lecture_registrations_mother", "mother_id", "id"),
    )

    id: Mapped[int] = pk_column()
    lecture_id: Mapped[int] = mapped_column(ForeignKey("maternal_care_lectures.id"))
    mother_id: Mapped[int] = mapped_column(ForeignKey("maternal_care_mothers.id"))
    status: Mapped[str] = mapped_column(String(16))
    registered_by_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = created_at_column()
    promoted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_by_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    cancel_reason: Mapped[str] = mapped_column(Text, server_default="")
    attendance: Mapped[str | None] = mapped_column(String(8))
    attendance_recorded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attendance_recorded_by_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    # Where she lives, as given when she registered: reminders, promotion and the audience rule count her
    # lecture's local date in it (services.zone_of_registration).
    time_zone: Mapped[str] = mapped_column(String(64), server_default=DEFAULT_ZONE)
