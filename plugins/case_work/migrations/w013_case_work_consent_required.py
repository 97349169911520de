"""case_work: a referral that waits for the resident's consent

Revision ID: w013
Revises: w012

A maternal-care raise or a counseling risk flag tells casework health details. Without the resident's consent
to casework it reaches only a worker who serves her already; anything else waits in the queue with the reason
`consent_required` (plugins/case_work/reactions.py). This widens the queue reasons the table accepts.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "w013"
down_revision: str | Sequence[str] | None = "w012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ck_case_work_intakes_queue_reason_valid"


def _check(reasons: str) -> str:
    return (
        f"ALTER TABLE case_work_intakes ADD CONSTRAINT {NAME} CHECK "
        f"((status = 'queued') = (queue_reason IS NOT NULL) AND (queue_reason IS NULL OR queue_reason IN ({reasons})))"
    )


def upgrade() -> None:
    op.execute(f"ALTER TABLE case_work_intakes DROP CONSTRAINT {NAME}")
    op.execute(_check("'no_social_worker', 'no_supervisor', 'no_resident', 'refused', 'consent_required'"))


def downgrade() -> None:
    # The older schema knows no such reason: they wait as refused (a supervisor decides by hand), across
    # organisations as a migration does (RLS is forced on the owner too: a transaction-local setting).
    op.execute(sa.text("SELECT set_config('app.role', 'platform_admin', true)"))
    op.execute("UPDATE case_work_intakes SET queue_reason = 'refused' WHERE queue_reason = 'consent_required'")
    op.execute(f"ALTER TABLE case_work_intakes DROP CONSTRAINT {NAME}")
    op.execute(_check("'no_social_worker', 'no_supervisor', 'no_resident', 'refused'"))
