"""supplies: planned distributions can be cancelled; dispatch and cancellation times

Revision ID: s004
Revises: s003
Create Date: 2026-11-30

A cancelled distribution keeps its row (and its ledger movements: what it had reserved goes back to stock as
'return' movements); `status` gains 'cancelled', with when and why.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "s004"
down_revision: str | Sequence[str] | None = "s003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "supplies_distributions"
STATUS = op.f("ck_supplies_distributions_status_valid")


def upgrade() -> None:
    op.drop_constraint(STATUS, TABLE, type_="check")
    op.create_check_constraint(STATUS, TABLE, "status IN ('planned', 'dispatched', 'delivered', 'cancelled')")
    op.add_column(TABLE, sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(TABLE, sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(TABLE, sa.Column("cancel_reason", sa.Text(), server_default="", nullable=False))


def downgrade() -> None:
    op.drop_column(TABLE, "cancel_reason")
    op.drop_column(TABLE, "cancelled_at")
    op.drop_column(TABLE, "dispatched_at")
    op.drop_constraint(STATUS, TABLE, type_="check")
    op.create_check_constraint(STATUS, TABLE, "status IN ('planned', 'dispatched', 'delivered')")
