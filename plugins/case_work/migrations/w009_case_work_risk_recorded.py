"""case_work: the database holds the risk history, as it holds the stage history

Revision ID: w009
Revises: w008
Create Date: 2026-11-30

Until now the service wrote a `case_work_risk_changes` row and then set `case_work_cases.risk_level`, and
nothing in PostgreSQL tied the two: a path that changed the level without a row, or wrote a row that was not
the case's change, left the history wrong for good (it is append-only). Now, as for the stages (w001):

- `case_work_cases.risk_seq` counts the case's risk changes and `case_work_risk_changes.seq` numbers them
  1..n per case (unique per case). Existing rows are numbered per case in id order (the order they were
  written), and each case's `risk_seq` is its number of rows.
- A case opens with `risk_seq` 0; its `risk_level` changes only with `risk_seq` = old + 1 and a history row of
  that number from the old level to the new one; `risk_seq` changes only with the level.
- A history row is the next change of its case from the level the case has (a row written ahead would take
  the number of a later change and wedge the case), and never of a closed case -- a closed case does not
  change (the stage guard refuses any other UPDATE of it; this refuses the row before it).
- At commit every history row has been taken up by its case (`risk_seq` reached it): a row written and
  left behind would hold the next number, and the next real change could never be recorded. (A deferred
  check: the row comes first, the case's UPDATE after it, in the same transaction.)
- History rows stay as written: w006 put `case_work_append_only()` on the table (UPDATE and DELETE refused),
  and the app role has no TRUNCATE. Nothing to add.

Every refusal is `case_work_risk_recorded` (or `case_work_case_closed`), which no user reaches through the
services -- they lock the case, refuse a closed one and write the row the guards expect -- so the services
do not map them to a code: they are internal guards, an unexpected error if they ever fire.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "w009"
down_revision: str | Sequence[str] | None = "w008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PIN = "SET search_path = pg_catalog, public, pg_temp"

GUARD_CASE = f"""CREATE OR REPLACE FUNCTION case_work_risk_guard_case() RETURNS trigger LANGUAGE plpgsql {PIN} AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.risk_seq <> 0 THEN
            RAISE EXCEPTION 'a case opens with no risk changes'
                USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_risk_recorded';
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.risk_level IS NOT DISTINCT FROM OLD.risk_level THEN
        IF NEW.risk_seq IS DISTINCT FROM OLD.risk_seq THEN
            RAISE EXCEPTION 'case %: risk_seq changes only with the risk level', OLD.id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_risk_recorded';
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.risk_seq IS DISTINCT FROM OLD.risk_seq + 1 OR NOT EXISTS (
        SELECT FROM case_work_risk_changes r
        WHERE r.case_id = OLD.id AND r.seq = NEW.risk_seq
            AND r.from_level = OLD.risk_level AND r.to_level = NEW.risk_level
    ) THEN
        RAISE EXCEPTION 'case %: risk % -> % has no history row', OLD.id, OLD.risk_level, NEW.risk_level
            USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_risk_recorded';
    END IF;
    RETURN NEW;
END $$"""

# The case is read with the writer's rights: a case of another organisation is not there, and the row is
# refused (the tenant trigger, which fires after this one by name, would refuse it too).
GUARD_CHANGE = f"""CREATE OR REPLACE FUNCTION case_work_risk_guard_change() RETURNS trigger LANGUAGE plpgsql {PIN} AS $$
DECLARE
    c record;
BEGIN
    SELECT id, stage, risk_level, risk_seq INTO c FROM case_work_cases WHERE id = NEW.case_id;
    IF FOUND AND c.stage IN ('closure', 'not_opened') THEN
        RAISE EXCEPTION 'case % is closed', NEW.case_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_case_closed';
    END IF;
    IF NOT FOUND OR NEW.seq IS DISTINCT FROM c.risk_seq + 1 OR NEW.from_level IS DISTINCT FROM c.risk_level THEN
        RAISE EXCEPTION 'case %: risk history row % is not the next change', NEW.case_id, NEW.seq
            USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_risk_recorded';
    END IF;
    RETURN NEW;
END $$"""

# At commit, across organisations: the writer's settings at commit may be another organisation's than the
# row's (a reaction acts as the system of the case's organisation, then the caller's settings are back), and
# the check must not pass because the case went out of sight. It reads one case by id and answers nothing
# but a refusal (the same narrow, function-local setting as core's platform_figures()).
CONSUMED = f"""CREATE OR REPLACE FUNCTION case_work_risk_consumed() RETURNS trigger LANGUAGE plpgsql
SET app.role = 'platform_admin' {PIN} AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM case_work_cases c WHERE c.id = NEW.case_id AND c.risk_seq >= NEW.seq) THEN
        RAISE EXCEPTION 'case %: risk history row % was written and the case did not change', NEW.case_id, NEW.seq
            USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_risk_recorded';
    END IF;
    RETURN NULL;
END $$"""

NUMBER_ROWS = """UPDATE case_work_risk_changes r SET seq = n.seq
FROM (SELECT id, row_number() OVER (PARTITION BY case_id ORDER BY id) AS seq FROM case_work_risk_changes) n
WHERE n.id = r.id"""
COUNT_CHANGES = """UPDATE case_work_cases c SET risk_seq = n.changes
FROM (SELECT case_id, count(*) AS changes FROM case_work_risk_changes GROUP BY case_id) n
WHERE n.case_id = c.id"""


def upgrade() -> None:
    bind = op.get_bind()
    # Across organisations, as a migration does (RLS is forced on the owner too): a transaction-local setting.
    bind.execute(sa.text("SELECT set_config('app.role', 'platform_admin', true)"))

    op.add_column("case_work_cases", sa.Column("risk_seq", sa.Integer(), server_default="0", nullable=False))
    op.add_column("case_work_risk_changes", sa.Column("seq", sa.Integer(), nullable=True))
    # The backfill writes what the guards keep as written (history rows, closed cases): their triggers are off
    # for these two statements only, in the migration's transaction.
    op.execute("ALTER TABLE case_work_risk_changes DISABLE TRIGGER case_work_append_only")
    op.execute(NUMBER_ROWS)
    op.execute("ALTER TABLE case_work_risk_changes ENABLE TRIGGER case_work_append_only")
    op.execute("ALTER TABLE case_work_cases DISABLE TRIGGER case_work_guard")
    op.execute(COUNT_CHANGES)
    op.execute("ALTER TABLE case_work_cases ENABLE TRIGGER case_work_guard")
    op.alter_column("case_work_risk_changes", "seq", nullable=False)
    op.create_unique_constraint(
        op.f("uq_case_work_risk_changes_case_id_seq"), "case_work_risk_changes", ["case_id", "seq"]
    )

    op.execute(GUARD_CASE)
    op.execute(
        "CREATE TRIGGER case_work_risk_guard BEFORE INSERT OR UPDATE ON case_work_cases "
        "FOR EACH ROW EXECUTE FUNCTION case_work_risk_guard_case()"
    )
    op.execute(GUARD_CHANGE)
    op.execute(
        "CREATE TRIGGER case_work_risk_guard BEFORE INSERT ON case_work_risk_changes "
        "FOR EACH ROW EXECUTE FUNCTION case_work_risk_guard_change()"
    )
    op.execute(CONSUMED)
    op.execute(
        "CREATE CONSTRAINT TRIGGER case_work_risk_consumed AFTER INSERT ON case_work_risk_changes "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION case_work_risk_consumed()"
    )
    bind.execute(sa.text("SELECT set_config('app.role', '', true)"))


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS case_work_risk_consumed ON case_work_risk_changes")
    op.execute("DROP TRIGGER IF EXISTS case_work_risk_guard ON case_work_risk_changes")
    op.execute("DROP TRIGGER IF EXISTS case_work_risk_guard ON case_work_cases")
    op.execute("DROP FUNCTION IF EXISTS case_work_risk_consumed()")
    op.execute("DROP FUNCTION IF EXISTS case_work_risk_guard_change()")
    op.execute("DROP FUNCTION IF EXISTS case_work_risk_guard_case()")
    # The unique key goes with the column.
    op.drop_column("case_work_risk_changes", "seq")
    op.drop_column("case_work_cases", "risk_seq")
