"""Tables of the casework plugin (migrations: plugins/case_work/migrations).

The stage graph of MZ/T 094-2017 is data in the database too (the SQL function `case_work_stage_graph()`,
the same rows as services.TRANSITIONS; a test compares them), and the database enforces it: a trigger on
`case_work_cases` refuses a stage change that is not in the graph, that has no matching row in the
append-only history, or that skips a required approval. So a manual UPDATE cannot skip a stage, close
without approval, or change a closed case. (A function rather than a table: the app role cannot change
it, and nothing that empties tables can empty it.)
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
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

from core import Base, OrganizationOwned, created_at_column, pk_column

STAGES = ("intake", "assessment", "planning", "intervention", "evaluation", "closure", "not_opened")
CATEGORIES = (
    "elderly_care",
    "disability",
    "mental_health",
    "maternal",
    "poverty",
    "child_protection",
    "other",
)
RISK_LEVELS = ("low", "medium", "high")
SOURCE_KINDS = ("help_request", "counseling_risk_flag", "referral", "maternal_risk")  # maternal_risk: w012
APPROVAL_KINDS = ("assessment", "closure")
APPROVAL_STATUSES = ("pending", "approved", "refused", "withdrawn")
TRANSFER_STATUSES = ("pending", "accepted", "declined", "withdrawn")


class Client(OrganizationOwned, Base):
    """Casework's extension of a core resident (decisions.md, "One identity"): the person's name, community,
    phone and address are the resident's (`core.residents`), read through the client by the people who see
    it; one client per resident. Phone and address are sensitive: raw for the people serving them."""

    __tablename__ = "case_work_clients"

    id: Mapped[int] = pk_column()
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), unique=True)
    created_at: Mapped[datetime] = created_at_column()


class Case(OrganizationOwned, Base):
    __tablename__ = "case_work_cases"
    __table_args__ = (
        CheckConstraint(f"stage IN {STAGES!r}", name="stage_valid"),
        CheckConstraint(f"category IN {CATEGORIES!r}", name="category_valid"),
        CheckConstraint(f"risk_level IN {RISK_LEVELS!r}", name="risk_level_valid"),
        CheckConstraint(f"source_kind IS NULL OR source_kind IN {SOURCE_KINDS!r}", name="source_kind_valid"),
        CheckConstraint("(source_kind IS NULL) = (source_id IS NULL)", name="source_complete"),
        CheckConstraint("social_worker_account_id <> supervisor_account_id", name="supervisor_not_worker"),
        CheckConstraint("stage_seq > 0 OR stage = 'intake'", name="opens_at_intake"),
        Index("ix_case_work_cases_social_worker", "social_worker_account_id", "id"),
        Index("ix_case_work_cases_supervisor", "supervisor_account_id", "id"),
    )

    id: Mapped[int] = pk_column()
    client_id: Mapped[int] = mapped_column(ForeignKey("case_work_clients.id"), index=True)
    social_worker_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    supervisor_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    category: Mapped[str] = mapped_column(String(20))
    risk_level: Mapped[str] = mapped_column(String(8))
    stage: Mapped[str] = mapped_column(String(16), server_default="intake")
    # How many stage changes the case has had: the history row of each change carries the new value.
    stage_seq: Mapped[int] = mapped_column(Integer, server_default="0")
    # How many risk changes the case has had: the history row of each carries the new value (the database
    # refuses a change of `risk_level` without it, migration w009).
    risk_seq: Mapped[int] = mapped_column(Integer, server_default="0")
    # Where the case came from (a help request; a counseling risk flag or a referral later): no foreign key,
    # since the source may be another plugin's record.
    source_kind: Mapped[str | None] = mapped_column(String(24))
    source_id: Mapped[int | None] = mapped_column(BigInteger)
    opened_at: Mapped[datetime] = created_at_column()
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class StageChange(OrganizationOwned, Base):
    """One step of a case (append-only): who, when, from, to, why. `seq` 0 is the opening (from nothing)."""

    __tablename__ = "case_work_stage_changes"
    __table_args__ = (
        UniqueConstraint("case_id", "seq"),
        CheckConstraint("from_stage IS NULL OR case_work_is_step(from_stage, to_stage)", name="step_of_the_graph"),
        CheckConstraint(f"to_stage IN {STAGES!r}", name="to_stage_valid"),
        CheckConstraint("(seq = 0) = (from_stage IS NULL)", name="opening_first"),
    )

    id: Mapped[int] = pk_column()
    case_id: Mapped[int] = mapped_column(ForeignKey("case_work_cases.id"))
    seq: Mapped[int] = mapped_column(Integer)
    from_stage: Mapped[str | None] = mapped_column(String(16))
    to_stage: Mapped[str] = mapped_column(String(16))
    actor_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text, server_default="")
    at: Mapped[datetime] = created_at_column()


class Approval(OrganizationOwned, Base):
    """A request for approval (of a high-risk assessment, or of closure) and its decision. It counts only for
    the stage visit it was requested in (`stage_seq`): a case that went back needs a fresh one."""

    __tablename__ = "case_work_approvals"
    __table_args__ = (
        CheckConstraint(f"kind IN {APPROVAL_KINDS!r}", name="kind_valid"),
        CheckConstraint(f"status IN {APPROVAL_STATUSES!r}", name="status_valid"),
        CheckConstraint("(status = 'pending') = (decided_at IS NULL)", name="decided_when_not_pending"),
        # Nobody approves their own request, whoever writes the row.
        CheckConstraint(
            "status NOT IN ('approved', 'refused') OR decided_by_account_id IS NOT NULL", name="decided_by_someone"
        ),
        CheckConstraint("decided_by_account_id <> requested_by_account_id", name="not_self_decided"),
        Index(
            "uq_case_work_approvals_pending",
            "case_id",
            "kind",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = pk_column()
    case_id: Mapped[int] = mapped_column(ForeignKey("case_work_cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    stage_seq: Mapped[int] = mapped_column(Integer)
    summary: Mapped[str] = mapped_column(Text, server_default="")
    # Closure: one outcome per goal (plain text until goals exist).
    outcomes: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    requested_by_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    requested_at: Mapped[datetime] = created_at_column()
    decided_by_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_note: Mapped[str] = mapped_column(Text, server_default="")


class RiskChange(OrganizationOwned, Base):
    """A change of a case's risk level (append-only, like the stage history): who, when, from, to, why.
    `seq` numbers a case's changes from 1; the database holds the history and the case together (w009): the
    level changes only with the next row, from the level the case had, and a row is always taken up."""

    __tablename__ = "case_work_risk_changes"
    __table_args__ = (
        UniqueConstraint("case_id", "seq"),
        CheckConstraint(f"from_level IN {RISK_LEVELS!r}", name="from_level_valid"),
        CheckConstraint(f"to_level IN {RISK_LEVELS!r}", name="to_level_valid"),
        CheckConstraint("from_level <> to_level", name="a_change"),
        Index("ix_case_work_risk_changes_case", "case_id", "id"),
    )

    id: Mapped[int] = pk_column()
    case_id: Mapped[int] = mapped_column(ForeignKey("case_work_cases.id"))
    seq: Mapped[int] = mapped_column(Integer)
    from_level: Mapped[str] = mapped_column(String(8))
    to_level: Mapped[str] = mapped_column(String(8))
    actor_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text, server_default="")
    at: Mapped[datetime] = created_at_column()


class Transfer(OrganizationOwned, Base):
    """A case handed from one social worker to another: proposed (with why), then accepted or declined (with
    why) by the receiver, or withdrawn. One pending transfer per case; nobody receives a transfer they
    proposed; a decision is the receiver's (the database checks all three). Kept as the case's history."""

    __tablename__ = "case_work_transfers"
    __table_args__ = (
        CheckConstraint(f"status IN {TRANSFER_STATUSES!r}", name="status_valid"),
        CheckConstraint("to_account_id <> from_account_id", name="to_someone_else"),
        CheckConstraint("proposed_by_account_id <> to_account_id", name="not_self_transfer"),
        CheckConstraint("(status = 'pending') = (decided_at IS NULL)", name="decided_when_not_pending"),
        CheckConstraint(
            "status NOT IN ('accepted', 'declined') OR decided_by_account_id = to_account_id",
            name="decided_by_receiver",
        ),
        CheckConstraint("length(btrim(reason)) > 0", name="reason_given"),
        Index("ix_case_work_transfers_case", "case_id", "id"),
        Index("ix_case_work_transfers_to", "to_account_id", "status"),
        Index(
            "uq_case_work_transfers_pending",
            "case_id",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = pk_column()
    case_id: Mapped[int] = mapped_column(ForeignKey("case_work_cases.id"))
    from_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    to_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    reason: Mapped[str] = mapped_column(Text)
    proposed_by_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    proposed_by: Mapped[str] = mapped_column(String(100))
    proposed_at: Mapped[datetime] = created_at_column()
    decided_by_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_reason: Mapped[str] = mapped_column(Text, server_default="")
