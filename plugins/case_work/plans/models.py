"""Tables of the plans slice: assessments (needs scored by domain), service plans, goals, actions, progress,
reviews (migration w003_case_plans).

Every row names its case (`case_id`), and a child's case is its parent's (composite foreign keys on
`(parent_id, case_id)`), so that the database's guards can read the case's stage from the row itself: plan
rows change only while the case is in planning, intervention or evaluation, never once it is closed;
assessments are recorded only in assessment; a goal's target date and an action's due date never pass the
plan's planned end. Assessments, their needs and goal progress are kept as written (append-only); nothing
of a plan is deleted (a goal is dropped by a progress entry, not removed).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from core import Base, OrganizationOwned, created_at_column, pk_column

# The needs an assessment scores, each 0 (no need) to 4 (critical).
DOMAINS = ("health", "daily_living", "finances", "housing", "family_social", "safety", "mental_wellbeing")
GOAL_DOMAINS = (*DOMAINS, "other")
GOAL_STATUSES = ("not_started", "in_progress", "achieved", "dropped")
RISK_LEVELS = ("low", "medium", "high")


class Assessment(OrganizationOwned, Base):
    """A structured assessment (预估) of a case, recorded by its social worker in the assessment stage. Kept
    as written: a correction is a new assessment. `risk_before`/`risk_after`: the case's risk level when it
    was recorded and after (raised to `implied_risk` when that is higher)."""

    __tablename__ = "case_work_assessments"
    __table_args__ = (
        CheckConstraint("total_score BETWEEN 0 AND 28", name="total_score_range"),
        CheckConstraint("highest_score BETWEEN 0 AND 4", name="highest_score_range"),
        CheckConstraint(f"implied_risk IN {RISK_LEVELS!r}", name="implied_risk_valid"),
        CheckConstraint(f"risk_before IN {RISK_LEVELS!r}", name="risk_before_valid"),
        CheckConstraint(f"risk_after IN {RISK_LEVELS!r}", name="risk_after_valid"),
        UniqueConstraint("id", "case_id"),
        Index("ix_case_work_assessments_case", "case_id", "id"),
    )

    id: Mapped[int] = pk_column()
    case_id: Mapped[int] = mapped_column(ForeignKey("case_work_cases.id"))
    # The stage visit it belongs to (the case's stage_seq then): an approval of that visit approved it.
    stage_seq: Mapped[int] = mapped_column(Integer)
    total_score: Mapped[int] = mapped_column(SmallInteger)
    highest_score: Mapped[int] = mapped_column(SmallInteger)
    implied_risk: Mapped[str] = mapped_column(String(8))
    risk_before: Mapped[str] = mapped_column(String(8))
    risk_after: Mapped[str] = mapped_column(String(8))
    strengths: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    risks: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    summary: Mapped[str] = mapped_column(Text, server_default="")
    recorded_by_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    recorded_at: Mapped[datetime] = created_at_column()


class AssessmentNeed(OrganizationOwned, Base):
    """One domain of an assessment: its score (0 no need … 4 critical) and a note."""

    __tablename__ = "case_work_assessment_needs"
    __table_args__ = (
        CheckConstraint(f"domain IN {DOMAINS!r}", name="domain_valid"),
        CheckConstraint("score BETWEEN 0 AND 4", name="score_range"),
        UniqueConstraint("assessment_id", "domain"),
        ForeignKeyConstraint(
            ["assessment_id", "case_id"],
            ["case_work_assessments.id", "case_work_assessments.case_id"],
            name="fk_case_work_assessment_needs_assessment",
        ),
    )

    id: Mapped[int] = pk_column()
    assessment_id: Mapped[int] = mapped_column(BigInteger)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_work_cases.id"))
    domain: Mapped[str] = mapped_column(String(20))
    score: Mapped[int] = mapped_column(SmallInteger)
    note: Mapped[str] = mapped_column(Text, server_default="")


class Plan(OrganizationOwned, Base):
    """A case's service plan (one per case). `planned_end`: when the case is planned to end; no goal or
    action is due after it. Reviews are due from `started_on` on, every 30/60/90 days by the case's risk."""

    __tablename__ = "case_work_plans"
    __table_args__ = (
        UniqueConstraint("organization_id", "case_id"),
        UniqueConstraint("id", "case_id"),
        CheckConstraint("planned_end IS NULL OR planned_end >= started_on", name="ends_after_start"),
    )

    id: Mapped[int] = pk_column()
    case_id: Mapped[int] = mapped_column(ForeignKey("case_work_cases.id"))
    started_on: Mapped[date] = mapped_column(Date)
    planned_end: Mapped[date | None] = mapped_column(Date)
    created_by_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = created_at_column()


class Goal(OrganizationOwned, Base):
    """A goal of a plan. `status` and `percent` are those of its latest progress entry (not started until
    one says otherwise)."""

    __tablename__ = "case_work_goals"
    __table_args__ = (
        CheckConstraint(f"domain IN {GOAL_DOMAINS!r}", name="domain_valid"),
        CheckConstraint(f"status IN {GOAL_STATUSES!r}", name="status_valid"),
        CheckConstraint("percent BETWEEN 0 AND 100", name="percent_range"),
        UniqueConstraint("id", "case_id"),
        ForeignKeyConstraint(
            ["plan_id", "case_id"],
            ["case_work_plans.id", "case_work_plans.case_id"],
            name="fk_case_work_goals_plan_id_case_work_plans",
        ),
        Index("ix_case_work_goals_plan", "plan_id", "id"),
    )

    id: Mapped[int] = pk_column()
    plan_id: Mapped[int] = mapped_column(BigInteger)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_work_cases.id"))
    text: Mapped[str] = mapped_column(Text)
    domain: Mapped[str] = mapped_column(String(20))
    target_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), server_default="not_started")
    percent: Mapped[int | None] = mapped_column(SmallInteger)
    created_at: Mapped[datetime] = created_at_column()


class Action(OrganizationOwned, Base):
    """A step toward a goal: who does it (an account of the organisation, or a named outside party) and by
    when."""

    __tablename__ = "case_work_actions"
    __table_args__ = (
        CheckConstraint("(responsible_account_id IS NULL) <> (responsible_name = '')", name="one_responsible"),
        CheckConstraint("(done_at IS NULL) = (done_by_account_id IS NULL)", name="done_by_someone"),
        ForeignKeyConstraint(
            ["goal_id", "case_id"],
            ["case_work_goals.id", "case_work_goals.case_id"],
            name="fk_case_work_actions_goal_id_case_work_goals",
        ),
        Index("ix_case_work_actions_goal", "goal_id", "id"),
        # The caseload's due actions: open ones by due date.
        Index("ix_case_work_actions_open_due", "due_on", postgresql_where=text("done_at IS NULL")),
    )

    id: Mapped[int] = pk_column()
    goal_id: Mapped[int] = mapped_column(BigInteger)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_work_cases.id"))
    text: Mapped[str] = mapped_column(Text)
    responsible_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    responsible_name: Mapped[str] = mapped_column(String(100), server_default="")
    due_on: Mapped[date | None] = mapped_column(Date)
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_by_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = created_at_column()


class GoalProgress(OrganizationOwned, Base):
    """A dated progress entry of a goal (append-only): a status, a percentage when known, a note."""

    __tablename__ = "case_work_goal_progress"
    __table_args__ = (
        CheckConstraint(f"status IN {GOAL_STATUSES!r}", name="status_valid"),
        CheckConstraint("percent BETWEEN 0 AND 100", name="percent_range"),
        ForeignKeyConstraint(
            ["goal_id", "case_id"],
            ["case_work_goals.id", "case_work_goals.case_id"],
            name="fk_case_work_goal_progress_goal_id_case_work_goals",
        ),
        Index("ix_case_work_goal_progress_goal", "goal_id", "on_date", "id"),
    )

    id: Mapped[int] = pk_column()
    goal_id: Mapped[int] = mapped_column(BigInteger)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_work_cases.id"))
    on_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12))
    percent: Mapped[int | None] = mapped_column(SmallInteger)
    note: Mapped[str] = mapped_column(Text, server_default="")
    recorded_by_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    recorded_at: Mapped[datetime] = created_at_column()


class Review(OrganizationOwned, Base):
    """A plan review due on `due_on`, raised by the job `case_work.plan_reviews`. One per plan and due
    date, and at most one open per plan (keys, not only the job's checks: two runs at once raise it once)."""

    __tablename__ = "case_work_reviews"
    __table_args__ = (
        CheckConstraint(f"risk_level IN {RISK_LEVELS!r}", name="risk_level_valid"),
        CheckConstraint("(done_at IS NULL) = (done_by_account_id IS NULL)", name="done_by_someone"),
        UniqueConstraint("organization_id", "plan_id", "due_on"),
        ForeignKeyConstraint(
            ["plan_id", "case_id"],
            ["case_work_plans.id", "case_work_plans.case_id"],
            name="fk_case_work_reviews_plan_id_case_work_plans",
        ),
        Index("uq_case_work_reviews_open", "plan_id", unique=True, postgresql_where=text("done_at IS NULL")),
        Index("ix_case_work_reviews_open_due", "due_on", "id", postgresql_where=text("done_at IS NULL")),
    )

    id: Mapped[int] = pk_column()
    plan_id: Mapped[int] = mapped_column(BigInteger)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_work_cases.id"))
    due_on: Mapped[date] = mapped_column(Date)
    # The case's risk level when the review was raised (which set its interval).
    risk_level: Mapped[str] = mapped_column(String(8))
    raised_at: Mapped[datetime] = created_at_column()
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_by_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    note: Mapped[str] = mapped_column(Text, server_default="")
