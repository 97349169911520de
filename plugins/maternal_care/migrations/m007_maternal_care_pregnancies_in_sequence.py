"""maternal_care: a mother's pregnancies follow one another

Revision ID: m007
Revises: m006

An exclusion constraint over (mother, the days from LMP to outcome, both included): a new pregnancy cannot
begin (its LMP) on or before the day the previous one ended, and a dating correction cannot move an LMP into an
earlier pregnancy. An ongoing pregnancy has no outcome yet, so its range is open-ended: the one-ongoing index
stays (it names the clearer refusal), this covers the dates. btree_gist is installed by core's first migration.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "m007"
down_revision: str | Sequence[str] | None = "m006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

T = "maternal_care_pregnancies"
NAME = "ex_maternal_care_pregnancies_no_overlap"


def upgrade() -> None:
    op.execute(
        f"ALTER TABLE {T} ADD CONSTRAINT {NAME} EXCLUDE USING gist (mother_id WITH =, daterange(lmp, outcome_on, '[]') WITH &&)"
    )


def downgrade() -> None:
    op.execute(f"ALTER TABLE {T} DROP CONSTRAINT {NAME}")
