"""case_work: visits on the shared calendar

Revision ID: w004
Revises: w003

A visit (home visit or call) of a case is an appointment of the case's social worker on core's calendar,
and optionally one of a second staff member: `appointments`' exclusion constraint keeps everyone from being
double-booked, whichever plugin booked the other time. The table belongs to the case's organisation (row-level
security; its appointments and accounts must be of the same one). A trigger refuses a visit booked, changed
or given an outcome on a closed case (`case_work_case_closed`, the constraint name the services answer as
CASE_CLOSED); cancelling stays possible, since it only frees time.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core

revision: str = "w004"
down_revision: str | Sequence[str] | None = "w003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GUARD_VISIT = """CREATE OR REPLACE FUNCTION case_work_visit_guard() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status = 'booked' AND NEW.status = 'cancelled' THEN
        RETURN NEW;
    END IF;
    IF EXISTS (
        SELECT FROM case_work_cases c WHERE c.id = NEW.case_id AND c.stage IN ('closure', 'not_opened')
    ) THEN
        RAISE EXCEPTION 'case % is closed: its visits are not booked or changed', NEW.case_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_case_closed';
    END IF;
    RETURN NEW;
END $$"""


def upgrade() -> None:
    op.create_table(
        "case_work_visits",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="booked", nullable=False),
        sa.Column("purpose", sa.Text(), server_default="", nullable=False),
        sa.Column("appointment_id", sa.BigInteger(), nullable=False),
        sa.Column("worker_account_id", sa.BigInteger(), nullable=False),
        sa.Column("second_appointment_id", sa.BigInteger(), nullable=True),
        sa.Column("second_account_id", sa.BigInteger(), nullable=True),
        sa.Column("outcome_note", sa.Text(), server_default="", nullable=False),
        sa.Column("outcome_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        core.organization_column(),
        sa.CheckConstraint("mode IN ('home_visit', 'call')", name=op.f("ck_case_work_visits_mode_valid")),
        sa.CheckConstraint(
            "status IN ('booked', 'done', 'no_answer', 'client_not_home', 'cancelled')",
            name=op.f("ck_case_work_visits_status_valid"),
        ),
        sa.CheckConstraint(
            "status <> 'cancelled' OR cancel_reason <> ''", name=op.f("ck_case_work_visits_cancelled_with_reason")
        ),
        sa.CheckConstraint(
            "(status IN ('booked', 'cancelled')) = (outcome_at IS NULL)",
            name=op.f("ck_case_work_visits_outcome_when_done"),
        ),
        sa.CheckConstraint(
            "second_appointment_id IS NULL OR second_appointment_id <> appointment_id",
            name=op.f("ck_case_work_visits_two_appointments"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case_work_cases.id"], name=op.f("fk_case_work_visits_case_id_case_work_cases")
        ),
        sa.ForeignKeyConstraint(
            ["appointment_id"], ["appointments.id"], name=op.f("fk_case_work_visits_appointment_id_appointments")
        ),
        sa.ForeignKeyConstraint(
            ["second_appointment_id"],
            ["appointments.id"],
            name=op.f("fk_case_work_visits_second_appointment_id_appointments"),
        ),
        sa.ForeignKeyConstraint(
            ["worker_account_id"], ["accounts.id"], name=op.f("fk_case_work_visits_worker_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["second_account_id"], ["accounts.id"], name=op.f("fk_case_work_visits_second_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_work_visits")),
        sa.UniqueConstraint("appointment_id", name=op.f("uq_case_work_visits_appointment_id")),
        sa.UniqueConstraint("second_appointment_id", name=op.f("uq_case_work_visits_second_appointment_id")),
    )
    op.create_index("ix_case_work_visits_case", "case_work_visits", ["case_id", "id"], unique=False)
    # The case fills the organisation in; its appointments and the accounts named must be of the same one.
    core.own_table(
        op,
        "case_work_visits",
        inherit=[
            core.Inherit("case_work_cases", "case_id"),
            core.Inherit("appointments", "appointment_id"),
            core.Inherit("appointments", "second_appointment_id"),
            core.Inherit("accounts", "worker_account_id"),
            core.Inherit("accounts", "second_account_id"),
        ],
    )
    op.execute(GUARD_VISIT)
    op.execute(
        "CREATE TRIGGER case_work_visit_guard BEFORE INSERT OR UPDATE ON case_work_visits "
        "FOR EACH ROW EXECUTE FUNCTION case_work_visit_guard()"
    )


def downgrade() -> None:
    op.drop_index("ix_case_work_visits_case", table_name="case_work_visits")
    op.drop_table("case_work_visits")
    op.execute("DROP FUNCTION IF EXISTS case_work_visit_guard()")
