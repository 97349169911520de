"""unlabelled: opens no branch of its own."""

import sqlalchemy as sa
from alembic import op

revision = "u001"
down_revision = None
branch_labels = None
depends_on = "0006"


def upgrade() -> None:
    op.create_table("unlabelled_things", sa.Column("id", sa.BigInteger(), primary_key=True))


def downgrade() -> None:
    op.drop_table("unlabelled_things")
