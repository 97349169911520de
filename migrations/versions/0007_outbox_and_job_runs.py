"""one outbox for core and plugins (recipients without an account, deduplication), job runs

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

The `notifications` outbox grows from "a message to a volunteer" into the one outbox of the platform:
a recipient is a volunteer, an account, or a person known only by name and phone (a mother, a requester);
`source` names core or the plugin that queued it; `dedupe_key` (unique per organisation) lets a job that
runs again queue the same reminder once. `job_runs` records each scheduled job's last run per organisation;
its row lock (SKIP LOCKED) keeps several service processes from running one job twice.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.tenancy import own_table_sql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("notifications", "volunteer_id", nullable=True)
    op.alter_column("notifications", "kind", type_=sa.String(length=80))
    op.add_column("notifications", sa.Column("account_id", sa.BigInteger(), nullable=True))
    op.add_column(
        "notifications", sa.Column("recipient_name", sa.String(length=100), server_default="", nullable=False)
    )
    op.add_column(
        "notifications", sa.Column("recipient_phone", sa.String(length=32), server_default="", nullable=False)
    )
    op.add_column("notifications", sa.Column("source", sa.String(length=40), server_default="core", nullable=False))
    op.add_column("notifications", sa.Column("dedupe_key", sa.String(length=200), nullable=True))
    op.create_foreign_key("fk_notifications_account_id_accounts", "notifications", "accounts", ["account_id"], ["id"])
    op.create_index("ix_notifications_account_id", "notifications", ["account_id"])
    op.create_check_constraint(
        "ck_notifications_has_recipient",
        "notifications",
        "volunteer_id IS NOT NULL OR account_id IS NOT NULL OR recipient_phone <> ''",
    )
    op.create_unique_constraint(
        "uq_notifications_organization_id_dedupe_key", "notifications", ["organization_id", "dedupe_key"]
    )
    # A message to an account takes the account's organisation; one to a person without an account, the
    # organisation of the transaction that queued it.
    op.execute(
        "CREATE TRIGGER tenant_1_account_id BEFORE INSERT OR UPDATE OF account_id, organization_id "
        "ON notifications FOR EACH ROW EXECUTE FUNCTION tenant_inherit('accounts', 'account_id')"
    )
    op.execute("ALTER TABLE notifications ALTER COLUMN organization_id SET DEFAULT app_org()")

    op.create_table(
        "job_runs",
        # No index of its own: the primary key leads with it.
        sa.Column("organization_id", sa.BigInteger(), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("job", sa.String(length=100), nullable=False),
        sa.Column("last_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "job", name="pk_job_runs"),
    )
    for statement in own_table_sql("job_runs", default_to_caller=True):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("job_runs")
    op.execute("ALTER TABLE notifications ALTER COLUMN organization_id DROP DEFAULT")
    op.execute("DROP TRIGGER IF EXISTS tenant_1_account_id ON notifications")
    # Messages to people without a volunteer record cannot survive the older shape.
    op.execute("DELETE FROM notifications WHERE volunteer_id IS NULL")
    op.drop_constraint("uq_notifications_organization_id_dedupe_key", "notifications", type_="unique")
    op.drop_constraint("ck_notifications_has_recipient", "notifications", type_="check")
    op.drop_index("ix_notifications_account_id", "notifications")
    op.drop_constraint("fk_notifications_account_id_accounts", "notifications", type_="foreignkey")
    for column in ("dedupe_key", "source", "recipient_phone", "recipient_name", "account_id"):
        op.drop_column("notifications", column)
    op.alter_column("notifications", "kind", type_=sa.String(length=40))
    op.alter_column("notifications", "volunteer_id", nullable=False)
