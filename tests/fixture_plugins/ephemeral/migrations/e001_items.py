"""ephemeral: items

Revision ID: e001
"""

import sqlalchemy as sa
from alembic import op

revision = "e001"
down_revision = None
branch_labels = ("ephemeral",)
depends_on = "0006"


def upgrade() -> None:
    op.create_table(
        "ephemeral_items",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("note", sa.String(length=100), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ephemeral_items")
