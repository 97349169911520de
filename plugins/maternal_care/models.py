"""The registry's tables: mothers (one core resident each) and their pregnancies.

The woman is core's resident (decisions.md, "One identity"): her name, phone and address live there, shown
to those who serve her. What maternal care adds is health: pregnancies (episodes: one woman, several
pregnancies), dating, outcome and the five-colour risk grade (五色管理), visible only to her assigned social
worker, maternal-care staff and administrators.

Lectures (plugins.maternal_care.lectures) and follow-ups build on these two tables.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core import Base, OrganizationOwned, created_at_column, pk_column

PREGNANCY_STATUSES = ("ongoing", "delivered", "loss")
DATING_BASES = ("lmp", "edd")  # what the staff member entered: the last menstrual period, or a due date
# 五色管理: exactly one of green..red; purple (infectious disease) is a flag alongside them.
RISK_COLOURS = ("green", "yellow", "orange", "red")


class Mother(OrganizationOwned, Base):
    """A woman registered with the organisation's maternal care: consent first, an assigned social worker."""

    __tablename__ = "maternal_care_mothers"

    id: Mapped[int] = pk_column()
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), unique=True)
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id"))
    social_worker_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    registered_by_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    consent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    consent_note: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[datetime] = created_at_column()


class Pregnancy(OrganizationOwned, Base):
    """One pregnancy of a mother: dated by LMP (the EDD is LMP + 280 days; both are kept, `lmp` is the
    anchor every computation uses), its outcome, and its current risk grade (history: the registry's
    risk-change table)."""

    __tablename__ = "maternal_care_pregnancies"
    __table_args__ = (
        CheckConstraint(f"status IN {PREGNANCY_STATUSES!r}", name="status_valid"),
        CheckConstraint(f"dating_basis IN {DATING_BASES!r}", name="dating_basis_valid"),
        CheckConstraint(f"risk_colour IN {RISK_COLOURS!r}", name="risk_colour_valid"),
        CheckConstraint("edd = lmp + 280", name="edd_from_lmp"),
        CheckConstraint("(status = 'ongoing') = (outcome_on IS NULL)", name="outcome_dated"),
        # An outcome never comes before the pregnancy began; a discharge follows a delivery.
        CheckConstraint("outcome_on IS NULL OR outcome_on >= lmp", name="outcome_after_lmp"),
        CheckConstraint(
            "discharged_on IS NULL OR (status = 'delivered' AND discharged_on >= outcome_on)", name="discharge_after"
        ),
        # Orange, red and purple need a named responsible staff member.
        CheckConstraint(
            "responsible_account_id IS NOT NULL OR (risk_colour IN ('green', 'yellow') AND NOT infectious)",
            name="high_risk_has_responsible",
        ),
        # A mother's pregnancies follow one another: each begins (LMP) after the previous one ended (its
        # outcome), and an ongoing one (no outcome yet) overlaps whatever would begin after it.
        ExcludeConstraint(
            ("mother_id", "="),
            (text("daterange(lmp, outcome_on, '[]')"), "&&"),
            name="ex_maternal_care_pregnancies_no_overlap",
            using="gist",
        ),
        # One ongoing pregnancy per mother.
        Index(
            "uq_maternal_care_pregnancies_one_ongoing",
            "mother_id",
            unique=True,
            postgresql_where=text("status = 'ongoing'"),
        ),
    )

    id: Mapped[int] = pk_column()
    mother_id: Mapped[int] = mapped_column(ForeignKey("maternal_care_mothers.id"), index=True)
    lmp: Mapped[date] = mapped_column(Date)
    edd: Mapped[date] = mapped_column(Date)
    dating_basis: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), server_default="ongoing")
    outcome_on: Mapped[date | None] = mapped_column(Date)
    outcome_note: Mapped[str] = mapped_column(Text, server_default="")
    discharged_on: Mapped[date | None] = mapped_column(Date)
    risk_colour: Mapped[str] = mapped_column(String(8), server_default="green")
    infectious: Mapped[bool] = mapped_column(Boolean, server_default="false")
    risk_seq: Mapped[int] = mapped_column(Integer, server_default="0")
    responsible_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    created_by_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = created_at_column()


class RiskChange(OrganizationOwned, Base):
    """One change of a pregnancy's risk grade (append-only): who, when, why, from what to what. `seq` numbers
    a pregnancy's changes from 1; the database keeps history and pregnancy together (migration m001, as
    casework's w009): the grade changes only with the next row, from the grade the pregnancy had, and a row
    written is always taken up before commit. The first row is the grade given at registration."""

    __tablename__ = "maternal_care_risk_changes"
    __table_args__ = (
        UniqueConstraint("pregnancy_id", "seq"),
        CheckConstraint(f"from_colour IN {RISK_COLOURS!r}", name="from_colour_valid"),
        CheckConstraint(f"to_colour IN {RISK_COLOURS!r}", name="to_colour_valid"),
        CheckConstraint("seq >= 1", name="seq_positive"),
        CheckConstraint(
            "responsible_account_id IS NOT NULL OR (to_colour IN ('green', 'yellow') AND NOT to_infectious)",
            name="high_risk_has_responsible",
        ),
        Index("ix_maternal_care_risk_changes_pregnancy", "pregnancy_id", "seq"),
    )

    id: Mapped[int] = pk_column()
    pregnancy_id: Mapped[int] = mapped_column(ForeignKey("maternal_care_pregnancies.id"))
    seq: Mapped[int] = mapped_column(Integer)
    from_colour: Mapped[str] = mapped_column(String(8))
    from_infectious: Mapped[bool] = mapped_column(Boolean)
    to_colour: Mapped[str] = mapped_column(String(8))
    to_infectious: Mapped[bool] = mapped_column(Boolean)
    responsible_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    actor_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text, server_default="")
    at: Mapped[datetime] = created_at_column()


class DatingCorrection(OrganizationOwned, Base):
    """A correction of a pregnancy's dating (an ultrasound moves the LMP, a mistyped due date): from which LMP
    to which, on what basis, who, when and why. Append-only."""

    __tablename__ = "maternal_care_dating_corrections"
    __table_args__ = (
        CheckConstraint(f"basis IN {DATING_BASES!r}", name="basis_valid"),
        CheckConstraint("from_lmp <> to_lmp", name="a_change"),
        Index("ix_maternal_care_dating_corrections_pregnancy", "pregnancy_id", "id"),
    )

    id: Mapped[int] = pk_column()
    pregnancy_id: Mapped[int] = mapped_column(ForeignKey("maternal_care_pregnancies.id"))
    from_lmp: Mapped[date] = mapped_column(Date)
    to_lmp: Mapped[date] = mapped_column(Date)
    basis: Mapped[str] = mapped_column(String(8))
    actor_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = created_at_column()
