"""delivery of the outbox: deliveries (one per message and channel), webhook endpoints, depth for operators

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01

`deliveries` holds one row per (notification, channel): queued, sent, or parked with the reason. It belongs
to its notification's organisation (the inherit trigger fills it in) and is organisation-owned like the
outbox itself. `webhook_endpoints` holds each organisation's endpoint URL and its signing secret, sealed.

Two functions read across organisations for the worker and the operator, and return numbers, never rows
(like `platform_figures`): `delivery_due_organizations(now)` -- the ids of the organisations with messages to
route or deliveries due, so a worker opens a transaction only for those -- and `delivery_depth()`, the outbox
depth (messages waiting to be routed, deliveries queued, parked) for /metrics.

A row trigger on `notifications` announces each new message on the live channel (topic "outbox": id and
organisation only), so delivery workers start a round at once instead of at their next poll.

Messages already in the outbox are history, not work: before this revision nothing delivered them, so they
are marked delivered here (at upgrade time) rather than sent -- otherwise the first round would send every
offer and reminder queued since revision 0004.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.services.sealing import sealed_check_sql
from core.tenancy import APP_ROLE, Inherit, organization_column, own_table

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Messages not routed yet: undelivered and without any delivery row.
UNROUTED = "n.delivered_at IS NULL AND NOT EXISTS (SELECT FROM deliveries d WHERE d.notification_id = n.id)"
DUE_ORGANIZATIONS = f"""CREATE OR REPLACE FUNCTION delivery_due_organizations(due timestamptz) RETURNS bigint[]
LANGUAGE sql STABLE SECURITY DEFINER
SET app.role = 'platform_admin' SET search_path = pg_catalog, public, pg_temp AS $$
SELECT coalesce(array_agg(o ORDER BY o), '{{}}') FROM (
    SELECT organization_id AS o FROM deliveries WHERE status = 'queued' AND next_attempt_at <= due
    UNION
    SELECT n.organization_id FROM notifications n WHERE {UNROUTED}
) s
$$"""
DEPTH = f"""CREATE OR REPLACE FUNCTION delivery_depth() RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET app.role = 'platform_admin' SET search_path = pg_catalog, public, pg_temp AS $$
SELECT jsonb_build_object(
    'unrouted', (SELECT count(*) FROM notifications n WHERE {UNROUTED}),
    'queued', (SELECT count(*) FROM deliveries WHERE status = 'queued'),
    'parked', (SELECT count(*) FROM deliveries WHERE status = 'parked'),
    'oldest_queued_seconds', (SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)
                              FROM deliveries WHERE status = 'queued')
) $$"""
FUNCTIONS = ("delivery_due_organizations(timestamptz)", "delivery_depth()")
# The delivery workers' wake-up: each new outbox row is announced on the live channel (0013's live_notify,
# topic "outbox" = core.delivery.worker.OUTBOX_TOPIC) with its id and organisation only, never the recipient
# or the payload; on commit only, so a rolled-back message wakes nobody. Workers still poll for retries.
# Written out here, not built by core.live.migrations: what this revision installs must not change when that
# helper does.
OUTBOX_WAKEUP = (
    "CREATE TRIGGER live_insert AFTER INSERT ON notifications FOR EACH ROW EXECUTE FUNCTION live_notify('outbox', 'id')",
)
OUTBOX_WAKEUP_DROP = ("DROP TRIGGER IF EXISTS live_insert ON notifications",)
# Messages queued before delivery existed: marked delivered, never sent (see the module's docstring).
HISTORY = "UPDATE notifications SET delivered_at = now() WHERE delivered_at IS NULL"


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("notification_id", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=80), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="queued", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_error", sa.Text(), server_default="", nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        organization_column(),
        sa.CheckConstraint("status IN ('queued', 'sent', 'parked')", name=op.f("ck_deliveries_status_valid")),
        sa.CheckConstraint("(status = 'sent') = (sent_at IS NOT NULL)", name=op.f("ck_deliveries_sent_at_when_sent")),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_deliveries_attempts_not_negative")),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_deliveries_notification_id_notifications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("notification_id", "channel", name=op.f("uq_deliveries_notification_id_channel")),
    )
    op.create_index(
        "ix_deliveries_due", "deliveries", ["next_attempt_at", "id"], postgresql_where=sa.text("status = 'queued'")
    )
    op.create_index("ix_deliveries_organization_id_status", "deliveries", ["organization_id", "status", "id"])
    # delivery_depth() (every /metrics scrape): counts of queued and parked rows and the oldest queued, across
    # organisations, from this small index instead of a scan of every delivery ever sent.
    op.create_index(
        "ix_deliveries_open",
        "deliveries",
        ["status", "created_at"],
        postgresql_where=sa.text("status IN ('queued', 'parked')"),
    )
    own_table(op, "deliveries", inherit=(Inherit("notifications", "notification_id"),))

    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("configured_by", sa.String(length=100), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        organization_column(),
        sa.CheckConstraint(sealed_check_sql("secret"), name=op.f("ck_webhook_endpoints_secret_sealed")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
        sa.UniqueConstraint("organization_id", name=op.f("uq_webhook_endpoints_organization_id")),
    )
    own_table(op, "webhook_endpoints", default_to_caller=True)

    op.execute(DUE_ORGANIZATIONS)
    op.execute(DEPTH)
    for function in FUNCTIONS:
        op.execute(f"REVOKE EXECUTE ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {APP_ROLE}")
    op.execute(HISTORY)
    for statement in OUTBOX_WAKEUP:
        op.execute(statement)


def downgrade() -> None:
    for statement in OUTBOX_WAKEUP_DROP:
        op.execute(statement)
    for function in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
    op.drop_table("webhook_endpoints")
    op.drop_table("deliveries")
