"""stray: one table in its namespace, one outside it."""

import sqlalchemy as sa
from alembic import op

revision = "x001"
down_revision = None
branch_labels = ("stray",)
depends_on = "0006"


def upgrade() -> None:
    op.create_table("stray_things", sa.Column("id", sa.BigInteger(), primary_key=True))
    op.create_table("widgets", sa.Column("id", sa.BigInteger(), primary_key=True))


def downgrade() -> None:
    op.drop_table("widgets")
    op.drop_table("stray_things")
