"""case_work: an approval holds what it approved

Revision ID: w011
Revises: w010
Create Date: 2026-11-30

The services already refuse each of these; the database now refuses them too, whoever writes the row:

- An assessment approval is requested only once an assessment of the case's stage visit is recorded
  (`case_work_assessment_required`): a request with nothing to approve would pass a high-risk case to
  planning unassessed -- and while it is pending, no assessment may be recorded any more.
- While a closure request of the case's stage visit is pending or approved, the plan's content is not
  changed (`case_work_plan_under_closure`): no new plan, goal or action, no change of the planned end, of a
  goal's text, domain or target date, of an action's text, responsible or due date. The supervisor approved
  the closure of this plan, with an outcome for each of its goals. Marking an action done and goal progress
  (goal status and percentage) record the work done and go on. The case's row is read FOR SHARE, as w003's
  plan guard does, so an edit and a request (which locks the case) do not pass each other.
- The step from evaluation to closure finds the approved closure request stating one outcome for each goal
  of the plan as it is then (`case_work_outcome_per_goal`). The stage guard of w001 checks that an approved
  request exists; this checks what it says.

The services map the three names to ASSESSMENT_REQUIRED, INVALID_TRANSITION and OUTCOME_PER_GOAL.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "w011"
down_revision: str | Sequence[str] | None = "w010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PIN = "SET search_path = pg_catalog, public, pg_temp"

ASSESSMENT_REQUIRED = f"""CREATE OR REPLACE FUNCTION case_work_assessment_required() RETURNS trigger
LANGUAGE plpgsql {PIN} AS $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM case_work_assessments a WHERE a.case_id = NEW.case_id AND a.stage_seq = NEW.stage_seq
    ) THEN
        RAISE EXCEPTION 'case %: an assessment approval needs an assessment of stage visit %',
            NEW.case_id, NEW.stage_seq
            USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_assessment_required';
    END IF;
    RETURN NEW;
END $$"""

UNDER_CLOSURE = f"""CREATE OR REPLACE FUNCTION case_work_plan_under_closure() RETURNS trigger
LANGUAGE plpgsql {PIN} AS $$
DECLARE
    visit integer;
BEGIN
    SELECT c.stage_seq INTO visit FROM case_work_cases c WHERE c.id = NEW.case_id FOR SHARE;
    IF NOT FOUND THEN
        RETURN NEW;  -- a case the caller cannot see: the tenancy trigger refuses the row
    END IF;
    IF EXISTS (
        SELECT FROM case_work_approvals a
        WHERE a.case_id = NEW.case_id AND a.kind = 'closure' AND a.stage_seq = visit
            AND a.status IN ('pending', 'approved')
    ) THEN
        RAISE EXCEPTION 'case %: a closure request of the plan is pending or approved', NEW.case_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_plan_under_closure';
    END IF;
    RETURN NEW;
END $$"""

# Runs only on the step evaluation -> closure (the trigger's WHEN). Only an approved request that states the
# wrong number is refused here: a missing approval is w001's refusal (`case_work_approval_required`), whatever
# order the triggers fire in.
OUTCOME_PER_GOAL = f"""CREATE OR REPLACE FUNCTION case_work_outcome_per_goal() RETURNS trigger
LANGUAGE plpgsql {PIN} AS $$
DECLARE
    goals integer;
BEGIN
    SELECT count(*) INTO goals FROM case_work_goals g WHERE g.case_id = OLD.id;
    IF goals > 0
        AND EXISTS (
            SELECT FROM case_work_approvals a
            WHERE a.case_id = OLD.id AND a.kind = 'closure' AND a.status = 'approved' AND a.stage_seq = OLD.stage_seq
        )
        AND NOT EXISTS (
            SELECT FROM case_work_approvals a
            WHERE a.case_id = OLD.id AND a.kind = 'closure' AND a.status = 'approved' AND a.stage_seq = OLD.stage_seq
                AND cardinality(a.outcomes) = goals
        ) THEN
        RAISE EXCEPTION 'case %: the approved closure request does not state one outcome for each of % goals',
            OLD.id, goals
            USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_outcome_per_goal';
    END IF;
    RETURN NEW;
END $$"""

# (table, the columns that are the plan's content: an UPDATE naming one of them is refused under closure)
PLAN_CONTENT = (
    ("case_work_plans", "planned_end"),
    ("case_work_goals", "plan_id, text, domain, target_date"),
    ("case_work_actions", "goal_id, text, responsible_account_id, responsible_name, due_on"),
)


def upgrade() -> None:
    op.execute(ASSESSMENT_REQUIRED)
    op.execute(
        "CREATE TRIGGER case_work_assessment_required BEFORE INSERT ON case_work_approvals "
        "FOR EACH ROW WHEN (NEW.kind = 'assessment') EXECUTE FUNCTION case_work_assessment_required()"
    )
    op.execute(UNDER_CLOSURE)
    for table, columns in PLAN_CONTENT:
        op.execute(
            f"CREATE TRIGGER case_work_plan_under_closure BEFORE INSERT OR UPDATE OF {columns} ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION case_work_plan_under_closure()"
        )
    op.execute(OUTCOME_PER_GOAL)
    op.execute(
        "CREATE TRIGGER case_work_outcome_per_goal BEFORE UPDATE OF stage ON case_work_cases "
        "FOR EACH ROW WHEN (OLD.stage = 'evaluation' AND NEW.stage = 'closure') "
        "EXECUTE FUNCTION case_work_outcome_per_goal()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS case_work_outcome_per_goal ON case_work_cases")
    for table, _columns in reversed(PLAN_CONTENT):
        op.execute(f"DROP TRIGGER IF EXISTS case_work_plan_under_closure ON {table}")
    op.execute("DROP TRIGGER IF EXISTS case_work_assessment_required ON case_work_approvals")
    op.execute("DROP FUNCTION IF EXISTS case_work_outcome_per_goal()")
    op.execute("DROP FUNCTION IF EXISTS case_work_plan_under_closure()")
    op.execute("DROP FUNCTION IF EXISTS case_work_assessment_required()")
