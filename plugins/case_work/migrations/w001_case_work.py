"""case_work: clients, cases, their stage graph and history, approvals (branch `case_work`, after core 0008)

Revision ID: w001
Revises:
Create Date: 2026-12-01

Every table belongs to one organisation, under row-level security (core.own_table). The stage graph
(MZ/T 094-2017) is an immutable SQL function, which the app role can read and not change.
Triggers make the database hold the workflow: a case's stage changes only along the graph, one step at a
time, with the history row written first and the approval the step needs; a closed case does not change
except by reopening; history and decided approvals are never updated or deleted.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import core

revision: str = "w001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("case_work",)
depends_on: str | Sequence[str] | None = "0008"

STAGES = "('intake', 'assessment', 'planning', 'intervention', 'evaluation', 'closure', 'not_opened')"
CATEGORIES = "('elderly_care', 'disability', 'mental_health', 'maternal', 'poverty', 'child_protection', 'other')"

# (from, to, kind, approval needed, only when high-risk): the same rows as services.TRANSITIONS (a test
# compares them). Written out here because a migration never changes with the code after it.
TRANSITIONS = (
    ("intake", "assessment", "forward", None, False),
    ("intake", "not_opened", "not_opened", None, False),
    ("assessment", "planning", "forward", "assessment", True),
    ("planning", "intervention", "forward", None, False),
    ("intervention", "evaluation", "forward", None, False),
    ("evaluation", "intervention", "back", None, False),
    ("evaluation", "closure", "forward", "closure", False),
    ("closure", "assessment", "reopen", None, False),
)


def _sql(value: object) -> str:
    return "NULL" if value is None else ("true" if value is True else "false" if value is False else f"'{value}'")


# The graph as an immutable function: the app role cannot change it (it owns nothing), and nothing that
# empties tables (tests, a careless script) can empty it. Changing the graph is a new migration.
GRAPH = (
    "CREATE OR REPLACE FUNCTION case_work_stage_graph() "
    "RETURNS TABLE (from_stage text, to_stage text, kind text, approval text, high_risk_only boolean) "
    "LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, public, pg_temp AS $$ VALUES "
    + ", ".join("(" + ", ".join(_sql(v) for v in row) + ")" for row in TRANSITIONS)
    + " $$"
)
IS_STEP = """CREATE OR REPLACE FUNCTION case_work_is_step(from_stage text, to_stage text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, public, pg_temp AS $$
SELECT EXISTS (SELECT FROM case_work_stage_graph() g WHERE g.from_stage = $1 AND g.to_stage = $2) $$"""

# Constraint names the service maps to its codes (services.CONSTRAINT_ERRORS).
GUARD_CASE = """CREATE OR REPLACE FUNCTION case_work_guard_case() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    step record;
BEGIN
    IF NEW.stage IS NOT DISTINCT FROM OLD.stage THEN
        IF OLD.stage IN ('closure', 'not_opened') THEN
            RAISE EXCEPTION 'case % is closed', OLD.id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_case_closed';
        END IF;
        IF NEW.stage_seq <> OLD.stage_seq THEN
            RAISE EXCEPTION 'case %: stage_seq changes only with the stage', OLD.id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_stage_recorded';
        END IF;
        RETURN NEW;
    END IF;
    SELECT * INTO step FROM case_work_stage_graph() g WHERE g.from_stage = OLD.stage AND g.to_stage = NEW.stage;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'case %: % -> % is not a step of the casework stages', OLD.id, OLD.stage, NEW.stage
            USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_stage_transition';
    END IF;
    IF NEW.stage_seq <> OLD.stage_seq + 1 OR NOT EXISTS (
        SELECT FROM case_work_stage_changes h
        WHERE h.case_id = OLD.id AND h.seq = NEW.stage_seq AND h.from_stage = OLD.stage AND h.to_stage = NEW.stage
    ) THEN
        RAISE EXCEPTION 'case %: % -> % has no history row', OLD.id, OLD.stage, NEW.stage
            USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_stage_recorded';
    END IF;
    IF step.approval IS NOT NULL
        AND (NOT step.high_risk_only OR 'high' IN (OLD.risk_level, NEW.risk_level))
        AND NOT EXISTS (
            SELECT FROM case_work_approvals a
            WHERE a.case_id = OLD.id AND a.kind = step.approval AND a.status = 'approved'
                AND a.stage_seq = OLD.stage_seq
        ) THEN
        RAISE EXCEPTION 'case %: % -> % needs an approved % request', OLD.id, OLD.stage, NEW.stage, step.approval
            USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_approval_required';
    END IF;
    RETURN NEW;
END $$"""

# Rows start where the workflow starts: a case at intake (its opening is history row 0), an approval pending
# (it is decided by an UPDATE, which names who decided: ck_case_work_approvals_decided_by_someone).
GUARD_INSERT = """CREATE OR REPLACE FUNCTION case_work_guard_insert() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    -- Nested: a row of another table has none of these columns to read.
    IF TG_TABLE_NAME = 'case_work_cases' THEN
        IF NEW.stage <> 'intake' OR NEW.stage_seq <> 0 THEN
            RAISE EXCEPTION 'a case opens at intake'
                USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_opens_at_intake';
        END IF;
    ELSIF TG_TABLE_NAME = 'case_work_approvals' THEN
        IF NEW.status <> 'pending' OR NEW.decided_by_account_id IS NOT NULL THEN
            RAISE EXCEPTION 'an approval request starts pending'
                USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_approval_starts_pending';
        END IF;
    -- A history row is the next step of its case, from the stage the case is in: a row written ahead of
    -- its step would take the step's number and wedge the case (history is append-only).
    ELSIF NEW.seq > 0 AND NOT EXISTS (
        SELECT FROM case_work_cases c WHERE c.id = NEW.case_id AND c.stage_seq + 1 = NEW.seq AND c.stage = NEW.from_stage
    ) THEN
        RAISE EXCEPTION 'case %: history row % is not the next step', NEW.case_id, NEW.seq
            USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_stage_recorded';
    END IF;
    RETURN NEW;
END $$"""

# History is append-only; an approval changes once, from pending to its decision (or withdrawn).
GUARD_APPEND_ONLY = """CREATE OR REPLACE FUNCTION case_work_append_only() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    -- Nested: the row of another table has no `status` to read.
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'case_work_approvals' THEN
        IF OLD.status = 'pending' AND NEW.id = OLD.id AND NEW.case_id = OLD.case_id AND NEW.kind = OLD.kind
            AND NEW.stage_seq = OLD.stage_seq AND NEW.requested_by_account_id = OLD.requested_by_account_id
            AND NEW.summary = OLD.summary AND NEW.outcomes = OLD.outcomes THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION '% rows are kept as written', TG_TABLE_NAME
        USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_append_only';
END $$"""


def upgrade() -> None:
    op.execute(GRAPH)
    op.execute(IS_STEP)

    op.create_table(
        "case_work_clients",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("phone", sa.String(length=20), server_default="", nullable=False),
        sa.Column("address", sa.Text(), server_default="", nullable=False),
        sa.Column("community_id", sa.BigInteger(), nullable=True),
        core.organization_column(),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_case_work_clients_community_id_communities")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_work_clients")),
    )
    core.own_table(
        op, "case_work_clients", inherit=[core.Inherit("communities", "community_id")], default_to_caller=True
    )

    op.create_table(
        "case_work_cases",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=False),
        sa.Column("social_worker_account_id", sa.BigInteger(), nullable=False),
        sa.Column("supervisor_account_id", sa.BigInteger(), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("risk_level", sa.String(length=8), nullable=False),
        sa.Column("stage", sa.String(length=16), server_default="intake", nullable=False),
        sa.Column("stage_seq", sa.Integer(), server_default="0", nullable=False),
        sa.Column("source_kind", sa.String(length=24), nullable=True),
        sa.Column("source_id", sa.BigInteger(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        core.organization_column(),
        sa.CheckConstraint(f"stage IN {STAGES}", name=op.f("ck_case_work_cases_stage_valid")),
        sa.CheckConstraint(f"category IN {CATEGORIES}", name=op.f("ck_case_work_cases_category_valid")),
        sa.CheckConstraint("risk_level IN ('low', 'medium', 'high')", name=op.f("ck_case_work_cases_risk_level_valid")),
        sa.CheckConstraint(
            "source_kind IS NULL OR source_kind IN ('help_request', 'counseling_risk_flag', 'referral')",
            name=op.f("ck_case_work_cases_source_kind_valid"),
        ),
        sa.CheckConstraint(
            "(source_kind IS NULL) = (source_id IS NULL)", name=op.f("ck_case_work_cases_source_complete")
        ),
        sa.CheckConstraint(
            "social_worker_account_id <> supervisor_account_id",
            name=op.f("ck_case_work_cases_supervisor_not_worker"),
        ),
        # The workflow starts at intake: a case is inserted there (its opening is history row 0).
        sa.CheckConstraint("stage_seq > 0 OR stage = 'intake'", name=op.f("ck_case_work_cases_opens_at_intake")),
        sa.ForeignKeyConstraint(
            ["client_id"], ["case_work_clients.id"], name=op.f("fk_case_work_cases_client_id_case_work_clients")
        ),
        sa.ForeignKeyConstraint(
            ["social_worker_account_id"],
            ["accounts.id"],
            name=op.f("fk_case_work_cases_social_worker_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["supervisor_account_id"], ["accounts.id"], name=op.f("fk_case_work_cases_supervisor_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_work_cases")),
    )
    op.create_index(op.f("ix_case_work_cases_client_id"), "case_work_cases", ["client_id"], unique=False)
    op.create_index(
        "ix_case_work_cases_social_worker", "case_work_cases", ["social_worker_account_id", "id"], unique=False
    )
    op.create_index("ix_case_work_cases_supervisor", "case_work_cases", ["supervisor_account_id", "id"], unique=False)
    # The client fills the organisation in; the social worker's and the supervisor's accounts must be of the
    # same organisation (an account of another is not even visible: NOT_FOUND).
    core.own_table(
        op,
        "case_work_cases",
        inherit=[
            core.Inherit("case_work_clients", "client_id"),
            core.Inherit("accounts", "social_worker_account_id"),
            core.Inherit("accounts", "supervisor_account_id"),
        ],
    )

    op.create_table(
        "case_work_stage_changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("from_stage", sa.String(length=16), nullable=True),
        sa.Column("to_stage", sa.String(length=16), nullable=False),
        sa.Column("actor_account_id", sa.BigInteger(), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        core.organization_column(),
        sa.CheckConstraint(f"to_stage IN {STAGES}", name=op.f("ck_case_work_stage_changes_to_stage_valid")),
        sa.CheckConstraint("(seq = 0) = (from_stage IS NULL)", name=op.f("ck_case_work_stage_changes_opening_first")),
        sa.CheckConstraint(
            "from_stage IS NULL OR case_work_is_step(from_stage, to_stage)",
            name=op.f("ck_case_work_stage_changes_step_of_the_graph"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case_work_cases.id"], name=op.f("fk_case_work_stage_changes_case_id_case_work_cases")
        ),
        sa.ForeignKeyConstraint(
            ["actor_account_id"], ["accounts.id"], name=op.f("fk_case_work_stage_changes_actor_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_work_stage_changes")),
        sa.UniqueConstraint("case_id", "seq", name=op.f("uq_case_work_stage_changes_case_id_seq")),
    )
    core.own_table(op, "case_work_stage_changes", inherit=[core.Inherit("case_work_cases", "case_id")])

    op.create_table(
        "case_work_approvals",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("stage_seq", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), server_default="", nullable=False),
        sa.Column("outcomes", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("requested_by_account_id", sa.BigInteger(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("decided_by_account_id", sa.BigInteger(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), server_default="", nullable=False),
        core.organization_column(),
        sa.CheckConstraint("kind IN ('assessment', 'closure')", name=op.f("ck_case_work_approvals_kind_valid")),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'refused', 'withdrawn')",
            name=op.f("ck_case_work_approvals_status_valid"),
        ),
        sa.CheckConstraint(
            "(status = 'pending') = (decided_at IS NULL)", name=op.f("ck_case_work_approvals_decided_when_not_pending")
        ),
        sa.CheckConstraint(
            "status NOT IN ('approved', 'refused') OR decided_by_account_id IS NOT NULL",
            name=op.f("ck_case_work_approvals_decided_by_someone"),
        ),
        sa.CheckConstraint(
            "decided_by_account_id <> requested_by_account_id", name=op.f("ck_case_work_approvals_not_self_decided")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case_work_cases.id"], name=op.f("fk_case_work_approvals_case_id_case_work_cases")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_account_id"],
            ["accounts.id"],
            name=op.f("fk_case_work_approvals_requested_by_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_account_id"],
            ["accounts.id"],
            name=op.f("fk_case_work_approvals_decided_by_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_work_approvals")),
    )
    op.create_index(op.f("ix_case_work_approvals_case_id"), "case_work_approvals", ["case_id"], unique=False)
    op.create_index(
        "uq_case_work_approvals_pending",
        "case_work_approvals",
        ["case_id", "kind"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
    )
    core.own_table(op, "case_work_approvals", inherit=[core.Inherit("case_work_cases", "case_id")])

    op.execute(GUARD_CASE)
    op.execute(
        "CREATE TRIGGER case_work_guard BEFORE UPDATE ON case_work_cases "
        "FOR EACH ROW EXECUTE FUNCTION case_work_guard_case()"
    )
    op.execute(GUARD_INSERT)
    for table in ("case_work_cases", "case_work_approvals", "case_work_stage_changes"):
        op.execute(
            f"CREATE TRIGGER case_work_guard_insert BEFORE INSERT ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION case_work_guard_insert()"
        )
    op.execute(GUARD_APPEND_ONLY)
    for table in ("case_work_stage_changes", "case_work_approvals"):
        op.execute(
            f"CREATE TRIGGER case_work_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION case_work_append_only()"
        )


def downgrade() -> None:
    op.drop_table("case_work_approvals")
    op.drop_table("case_work_stage_changes")
    op.drop_table("case_work_cases")
    op.drop_table("case_work_clients")
    op.execute("DROP FUNCTION IF EXISTS case_work_guard_case()")
    op.execute("DROP FUNCTION IF EXISTS case_work_append_only()")
    op.execute("DROP FUNCTION IF EXISTS case_work_guard_insert()")
    op.execute("DROP FUNCTION IF EXISTS case_work_is_step(text, text)")
    op.execute("DROP FUNCTION IF EXISTS case_work_stage_graph()")
