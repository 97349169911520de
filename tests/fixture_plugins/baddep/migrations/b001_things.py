"""baddep: depends on a core revision that does not exist."""

import sqlalchemy as sa
from alembic import op

revision = "b001"
down_revision = None
branch_labels = ("baddep",)
depends_on = "0099"


def upgrade() -> None:
    op.create_table("baddep_things", sa.Column("id", sa.BigInteger(), primary_key=True))


def downgrade() -> None:
    op.drop_table("baddep_things")
