"""case_work: a maternal-care high-risk flag is a source of cases

Revision ID: w012
Revises: w011
Create Date: 2026-11-30

Casework reacts to `maternal_care.risk_raised` (a pregnancy graded orange or red, or purple) as it reacts to a
counseling risk flag: it claims an intake and opens or joins a case. The source is the pregnancy, of kind
`maternal_risk`; this widens the source kinds the intakes and the cases accept.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "w012"
down_revision: str | Sequence[str] | None = "w011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INTAKES = "ck_case_work_intakes_source_kind_valid"
CASES = "ck_case_work_cases_source_kind_valid"


def _checks(intake_kinds: str, case_kinds: str) -> None:
    op.execute(f"ALTER TABLE case_work_intakes DROP CONSTRAINT {INTAKES}")
    op.execute(f"ALTER TABLE case_work_intakes ADD CONSTRAINT {INTAKES} CHECK (source_kind IN ({intake_kinds}))")
    op.execute(f"ALTER TABLE case_work_cases DROP CONSTRAINT {CASES}")
    op.execute(
        f"ALTER TABLE case_work_cases ADD CONSTRAINT {CASES} "
        f"CHECK (source_kind IS NULL OR source_kind IN ({case_kinds}))"
    )


def upgrade() -> None:
    _checks(
        "'help_request', 'counseling_risk_flag', 'maternal_risk'",
        "'help_request', 'counseling_risk_flag', 'referral', 'maternal_risk'",
    )


def downgrade() -> None:
    # The older schema knows no such source: the cases keep their client and history but lose the link to the
    # pregnancy, and the claims go (a raise after a re-upgrade may then refer the pregnancy again).
    # Across organisations, as a migration does (RLS is forced on the owner too): a transaction-local setting.
    op.execute(sa.text("SELECT set_config('app.role', 'platform_admin', true)"))
    # The cases' guard keeps closed cases as they are: off for this statement only, in the migration's transaction.
    op.execute("ALTER TABLE case_work_cases DISABLE TRIGGER case_work_guard")
    op.execute("UPDATE case_work_cases SET source_kind = NULL, source_id = NULL WHERE source_kind = 'maternal_risk'")
    op.execute("ALTER TABLE case_work_cases ENABLE TRIGGER case_work_guard")
    op.execute("DELETE FROM case_work_intakes WHERE source_kind = 'maternal_risk'")
    _checks("'help_request', 'counseling_risk_flag'", "'help_request', 'counseling_risk_flag', 'referral'")
