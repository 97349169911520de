"""plugin roles granted to accounts (a casework supervisor, a midwife)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

A plugin declares roles (hook `register_roles`: a name and the plugin permissions it carries); an
organisation's administrator grants them to accounts of the organisation. The grant belongs to the
account's organisation (row-level security); the authenticator, which reads accounts before the caller is
known, may read grants the same narrow way.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.tenancy import APP_ROLE, Inherit, organization_column, own_table_sql

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account_plugin_roles",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.String(length=80), nullable=False),
        organization_column(),
        sa.Column("granted_by", sa.String(length=100), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_account_plugin_roles_account_id_accounts", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("account_id", "role", name="pk_account_plugin_roles"),
    )
    for statement in own_table_sql("account_plugin_roles", inherit=[Inherit("accounts", "account_id")]):
        op.execute(statement)
    op.execute(
        f"CREATE POLICY authenticate ON account_plugin_roles FOR SELECT TO {APP_ROLE} "
        "USING (app_role() = 'authenticator')"
    )


def downgrade() -> None:
    op.drop_table("account_plugin_roles")
