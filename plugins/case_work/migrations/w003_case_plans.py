"""case_work: assessments, service plans, goals, actions, progress, reviews

Revision ID: w003
Revises: w002

Every table belongs to one organisation (core.own_table, organisation inherited from the case) and names
its case; a child's case is its parent's (composite foreign keys). Triggers make the database hold the
rules the services check: no plan row changes once the case is closed (the same refusal as w001's closed
case, `case_work_case_closed`), nor outside planning/intervention/evaluation; assessments are recorded only
in assessment; no goal or action is due after the plan's planned end; assessments, needs and progress are
append-only, and nothing of a plan is deleted.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import core

revision: str = "w003"
down_revision: str | Sequence[str] | None = "w002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RISKS = "('low', 'medium', 'high')"
DOMAINS = "('health', 'daily_living', 'finances', 'housing', 'family_social', 'safety', 'mental_wellbeing')"
GOAL_DOMAINS = (
    "('health', 'daily_living', 'finances', 'housing', 'family_social', 'safety', 'mental_wellbeing', 'other')"
)
GOAL_STATUSES = "('not_started', 'in_progress', 'achieved', 'dropped')"
PLAN_TABLES = (
    "case_work_plans",
    "case_work_goals",
    "case_work_actions",
    "case_work_goal_progress",
    "case_work_reviews",
)
ASSESSMENT_TABLES = ("case_work_assessments", "case_work_assessment_needs")
APPEND_ONLY = ("case_work_assessments", "case_work_assessment_needs", "case_work_goal_progress")

# The stage of the row's case decides whether it may be written. FOR SHARE: a write waits for a stage change
# of the case under way (and a stage change waits for it), so no plan edit slips past a closing.
GUARD = """CREATE OR REPLACE FUNCTION case_work_plan_guard() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    case_stage text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION '% rows are kept (a goal is dropped, not deleted)', TG_TABLE_NAME
            USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_append_only';
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.case_id <> OLD.case_id THEN
        RAISE EXCEPTION '% rows stay with their case', TG_TABLE_NAME
            USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_append_only';
    END IF;
    SELECT c.stage INTO case_stage FROM case_work_cases c WHERE c.id = NEW.case_id FOR SHARE;
    IF NOT FOUND THEN
        RETURN NEW;  -- a case the caller cannot see: the tenancy trigger refuses the row
    END IF;
    IF case_stage IN ('closure', 'not_opened') THEN
        RAISE EXCEPTION 'case % is closed', NEW.case_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_case_closed';
    END IF;
    IF TG_TABLE_NAME IN ('case_work_assessments', 'case_work_assessment_needs') THEN
        IF case_stage <> 'assessment' THEN
            RAISE EXCEPTION 'case %: assessments are recorded in the assessment stage', NEW.case_id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_assessment_stage';
        END IF;
    ELSIF case_stage NOT IN ('planning', 'intervention', 'evaluation') THEN
        RAISE EXCEPTION 'case %: plans change in planning, intervention or evaluation only', NEW.case_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_plan_stage';
    END IF;
    RETURN NEW;
END $$"""

# No goal or action is due after the plan's planned end; a planned end is not moved before them. The plan
# row is read FOR SHARE (and updated with its row lock), so a goal and a shorter end cannot pass each other.
WITHIN_END = """CREATE OR REPLACE FUNCTION case_work_within_planned_end() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    plan_end date;
    latest date;
BEGIN
    IF TG_TABLE_NAME = 'case_work_plans' THEN
        IF NEW.planned_end IS NULL THEN
            RETURN NEW;
        END IF;
        SELECT max(d) INTO latest FROM (
            SELECT g.target_date AS d FROM case_work_goals g WHERE g.plan_id = NEW.id
            UNION ALL
            SELECT a.due_on FROM case_work_actions a JOIN case_work_goals g ON g.id = a.goal_id
            WHERE g.plan_id = NEW.id
        ) dates;
        IF latest > NEW.planned_end THEN
            RAISE EXCEPTION 'plan %: a goal or action is due after %', NEW.id, NEW.planned_end
                USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_beyond_planned_end';
        END IF;
    ELSIF TG_TABLE_NAME = 'case_work_goals' THEN
        SELECT p.planned_end INTO plan_end FROM case_work_plans p WHERE p.id = NEW.plan_id FOR SHARE;
        IF NEW.target_date > plan_end THEN
            RAISE EXCEPTION 'goal %: target % after the planned end %', NEW.id, NEW.target_date, plan_end
                USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_beyond_planned_end';
        END IF;
    ELSE
        SELECT p.planned_end INTO plan_end FROM case_work_plans p JOIN case_work_goals g ON g.plan_id = p.id
        WHERE g.id = NEW.goal_id FOR SHARE OF p;
        IF NEW.due_on > plan_end THEN
            RAISE EXCEPTION 'action %: due % after the planned end %', NEW.id, NEW.due_on, plan_end
                USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_beyond_planned_end';
        END IF;
    END IF;
    RETURN NEW;
END $$"""


def _case_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["case_id"], ["case_work_cases.id"], name=op.f(f"fk_{table}_case_id_case_work_cases")
    )


def _account_fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["accounts.id"], name=op.f(f"fk_{table}_{column}_accounts"))


def _id(table: str) -> list[Any]:
    return [
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    ]


def _at(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)


def upgrade() -> None:
    t = "case_work_assessments"
    op.create_table(
        t,
        *_id(t),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("stage_seq", sa.Integer(), nullable=False),
        sa.Column("total_score", sa.SmallInteger(), nullable=False),
        sa.Column("highest_score", sa.SmallInteger(), nullable=False),
        sa.Column("implied_risk", sa.String(length=8), nullable=False),
        sa.Column("risk_before", sa.String(length=8), nullable=False),
        sa.Column("risk_after", sa.String(length=8), nullable=False),
        sa.Column("strengths", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("risks", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("summary", sa.Text(), server_default="", nullable=False),
        sa.Column("recorded_by_account_id", sa.BigInteger(), nullable=False),
        _at("recorded_at"),
        core.organization_column(),
        sa.CheckConstraint("total_score BETWEEN 0 AND 28", name=op.f(f"ck_{t}_total_score_range")),
        sa.CheckConstraint("highest_score BETWEEN 0 AND 4", name=op.f(f"ck_{t}_highest_score_range")),
        sa.CheckConstraint(f"implied_risk IN {RISKS}", name=op.f(f"ck_{t}_implied_risk_valid")),
        sa.CheckConstraint(f"risk_before IN {RISKS}", name=op.f(f"ck_{t}_risk_before_valid")),
        sa.CheckConstraint(f"risk_after IN {RISKS}", name=op.f(f"ck_{t}_risk_after_valid")),
        _case_fk(t),
        _account_fk(t, "recorded_by_account_id"),
        sa.UniqueConstraint("id", "case_id", name=op.f(f"uq_{t}_id_case_id")),
    )
    op.create_index("ix_case_work_assessments_case", t, ["case_id", "id"], unique=False)
    core.own_table(op, t, inherit=[core.Inherit("case_work_cases", "case_id")])

    t = "case_work_assessment_needs"
    op.create_table(
        t,
        *_id(t),
        sa.Column("assessment_id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("domain", sa.String(length=20), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        core.organization_column(),
        sa.CheckConstraint(f"domain IN {DOMAINS}", name=op.f(f"ck_{t}_domain_valid")),
        sa.CheckConstraint("score BETWEEN 0 AND 4", name=op.f(f"ck_{t}_score_range")),
        sa.ForeignKeyConstraint(
            ["assessment_id", "case_id"],
            ["case_work_assessments.id", "case_work_assessments.case_id"],
            name="fk_case_work_assessment_needs_assessment",
        ),
        _case_fk(t),
        sa.UniqueConstraint("assessment_id", "domain", name=op.f(f"uq_{t}_assessment_id_domain")),
    )
    core.own_table(op, t, inherit=[core.Inherit("case_work_cases", "case_id")])

    t = "case_work_plans"
    op.create_table(
        t,
        *_id(t),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("planned_end", sa.Date(), nullable=True),
        sa.Column("created_by_account_id", sa.BigInteger(), nullable=False),
        _at("created_at"),
        core.organization_column(),
        sa.CheckConstraint("planned_end IS NULL OR planned_end >= started_on", name=op.f(f"ck_{t}_ends_after_start")),
        _case_fk(t),
        _account_fk(t, "created_by_account_id"),
        sa.UniqueConstraint("organization_id", "case_id", name=op.f(f"uq_{t}_organization_id_case_id")),
        sa.UniqueConstraint("id", "case_id", name=op.f(f"uq_{t}_id_case_id")),
    )
    core.own_table(op, t, inherit=[core.Inherit("case_work_cases", "case_id")])

    t = "case_work_goals"
    op.create_table(
        t,
        *_id(t),
        sa.Column("plan_id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("domain", sa.String(length=20), nullable=False),
        sa.Column("target_date", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=12), server_default="not_started", nullable=False),
        sa.Column("percent", sa.SmallInteger(), nullable=True),
        _at("created_at"),
        core.organization_column(),
        sa.CheckConstraint(f"domain IN {GOAL_DOMAINS}", name=op.f(f"ck_{t}_domain_valid")),
        sa.CheckConstraint(f"status IN {GOAL_STATUSES}", name=op.f(f"ck_{t}_status_valid")),
        sa.CheckConstraint("percent BETWEEN 0 AND 100", name=op.f(f"ck_{t}_percent_range")),
        sa.ForeignKeyConstraint(
            ["plan_id", "case_id"],
            ["case_work_plans.id", "case_work_plans.case_id"],
            name="fk_case_work_goals_plan_id_case_work_plans",
        ),
        _case_fk(t),
        sa.UniqueConstraint("id", "case_id", name=op.f(f"uq_{t}_id_case_id")),
    )
    op.create_index("ix_case_work_goals_plan", t, ["plan_id", "id"], unique=False)
    core.own_table(op, t, inherit=[core.Inherit("case_work_cases", "case_id")])

    t = "case_work_actions"
    op.create_table(
        t,
        *_id(t),
        sa.Column("goal_id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("responsible_account_id", sa.BigInteger(), nullable=True),
        sa.Column("responsible_name", sa.String(length=100), server_default="", nullable=False),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_by_account_id", sa.BigInteger(), nullable=True),
        _at("created_at"),
        core.organization_column(),
        sa.CheckConstraint(
            "(responsible_account_id IS NULL) <> (responsible_name = '')", name=op.f(f"ck_{t}_one_responsible")
        ),
        sa.CheckConstraint("(done_at IS NULL) = (done_by_account_id IS NULL)", name=op.f(f"ck_{t}_done_by_someone")),
        sa.ForeignKeyConstraint(
            ["goal_id", "case_id"],
            ["case_work_goals.id", "case_work_goals.case_id"],
            name="fk_case_work_actions_goal_id_case_work_goals",
        ),
        _case_fk(t),
        _account_fk(t, "responsible_account_id"),
        _account_fk(t, "done_by_account_id"),
    )
    op.create_index("ix_case_work_actions_goal", t, ["goal_id", "id"], unique=False)
    op.create_index(
        "ix_case_work_actions_open_due", t, ["due_on"], unique=False, postgresql_where=sa.text("done_at IS NULL")
    )
    # The responsible account must be of the case's organisation (another's is not even visible).
    core.own_table(
        op,
        t,
        inherit=[core.Inherit("case_work_cases", "case_id"), core.Inherit("accounts", "responsible_account_id")],
    )

    t = "case_work_goal_progress"
    op.create_table(
        t,
        *_id(t),
        sa.Column("goal_id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("on_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("percent", sa.SmallInteger(), nullable=True),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("recorded_by_account_id", sa.BigInteger(), nullable=False),
        _at("recorded_at"),
        core.organization_column(),
        sa.CheckConstraint(f"status IN {GOAL_STATUSES}", name=op.f(f"ck_{t}_status_valid")),
        sa.CheckConstraint("percent BETWEEN 0 AND 100", name=op.f(f"ck_{t}_percent_range")),
        sa.ForeignKeyConstraint(
            ["goal_id", "case_id"],
            ["case_work_goals.id", "case_work_goals.case_id"],
            name="fk_case_work_goal_progress_goal_id_case_work_goals",
        ),
        _case_fk(t),
        _account_fk(t, "recorded_by_account_id"),
    )
    op.create_index("ix_case_work_goal_progress_goal", t, ["goal_id", "on_date", "id"], unique=False)
    core.own_table(op, t, inherit=[core.Inherit("case_work_cases", "case_id")])

    t = "case_work_reviews"
    op.create_table(
        t,
        *_id(t),
        sa.Column("plan_id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("risk_level", sa.String(length=8), nullable=False),
        _at("raised_at"),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_by_account_id", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        core.organization_column(),
        sa.CheckConstraint(f"risk_level IN {RISKS}", name=op.f(f"ck_{t}_risk_level_valid")),
        sa.CheckConstraint("(done_at IS NULL) = (done_by_account_id IS NULL)", name=op.f(f"ck_{t}_done_by_someone")),
        sa.ForeignKeyConstraint(
            ["plan_id", "case_id"],
            ["case_work_plans.id", "case_work_plans.case_id"],
            name="fk_case_work_reviews_plan_id_case_work_plans",
        ),
        _case_fk(t),
        _account_fk(t, "done_by_account_id"),
        sa.UniqueConstraint(
            "organization_id", "plan_id", "due_on", name=op.f(f"uq_{t}_organization_id_plan_id_due_on")
        ),
    )
    op.create_index(
        "uq_case_work_reviews_open", t, ["plan_id"], unique=True, postgresql_where=sa.text("done_at IS NULL")
    )
    op.create_index(
        "ix_case_work_reviews_open_due", t, ["due_on", "id"], unique=False, postgresql_where=sa.text("done_at IS NULL")
    )
    core.own_table(op, t, inherit=[core.Inherit("case_work_cases", "case_id")])

    op.execute(GUARD)
    op.execute(WITHIN_END)
    for table in (*ASSESSMENT_TABLES, *PLAN_TABLES):
        op.execute(
            f"CREATE TRIGGER case_work_plan_guard BEFORE INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION case_work_plan_guard()"
        )
    for table in APPEND_ONLY:  # case_work_append_only(): w001's
        op.execute(
            f"CREATE TRIGGER case_work_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION case_work_append_only()"
        )
    op.execute(
        "CREATE TRIGGER case_work_within_planned_end BEFORE INSERT OR UPDATE OF target_date, plan_id "
        "ON case_work_goals FOR EACH ROW EXECUTE FUNCTION case_work_within_planned_end()"
    )
    op.execute(
        "CREATE TRIGGER case_work_within_planned_end BEFORE INSERT OR UPDATE OF due_on, goal_id "
        "ON case_work_actions FOR EACH ROW EXECUTE FUNCTION case_work_within_planned_end()"
    )
    op.execute(
        "CREATE TRIGGER case_work_within_planned_end BEFORE UPDATE OF planned_end "
        "ON case_work_plans FOR EACH ROW EXECUTE FUNCTION case_work_within_planned_end()"
    )


def downgrade() -> None:
    for table in reversed((*ASSESSMENT_TABLES, *PLAN_TABLES)):
        op.drop_table(table)
    op.execute("DROP FUNCTION IF EXISTS case_work_within_planned_end()")
    op.execute("DROP FUNCTION IF EXISTS case_work_plan_guard()")
