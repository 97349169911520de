"""ephemeral: tags

Revision ID: e002
"""

import sqlalchemy as sa
from alembic import op

revision = "e002"
down_revision = "e001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("ephemeral_tags", sa.Column("id", sa.BigInteger(), primary_key=True))


def downgrade() -> None:
    op.drop_table("ephemeral_tags")
