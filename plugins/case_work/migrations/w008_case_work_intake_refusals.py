"""case_work: an intake casework refused to open waits in the queue

Revision ID: w008
Revises: w007

A reaction opens (or joins) a case inside a savepoint: when casework refuses, the intake waits for a supervisor
with the reason `refused` instead of failing the change that raised the event (a counselor's risk flag, a
coordinator's verification). This widens the queue reasons the table accepts.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "w008"
down_revision: str | Sequence[str] | None = "w007"
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
    op.execute(_check("'no_social_worker', 'no_supervisor', 'no_resident', 'refused'"))


def downgrade() -> None:
    # Refused intakes wait as having nobody to take them (the closest reason the older schema knows).
    op.execute("UPDATE case_work_intakes SET queue_reason = 'no_social_worker' WHERE queue_reason = 'refused'")
    op.execute(f"ALTER TABLE case_work_intakes DROP CONSTRAINT {NAME}")
    op.execute(_check("'no_social_worker', 'no_supervisor', 'no_resident'"))
