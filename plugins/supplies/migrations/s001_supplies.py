"""supplies: catalogue, warehouses, donors, batches, balances, ledger, distributions, idempotency keys

Revision ID: s001
Revises:
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "s001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("supplies",)
depends_on: str | Sequence[str] | None = "0005"


def upgrade() -> None:
    op.create_table(
        "supplies_donors",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("contact", sa.String(length=100), server_default="", nullable=False),
        sa.CheckConstraint("kind IN ('organization', 'person')", name=op.f("ck_supplies_donors_kind_valid")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supplies_donors")),
    )
    op.create_table(
        "supplies_idempotency_keys",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("operation", sa.String(length=50), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_supplies_idempotency_keys")),
    )
    op.create_table(
        "supplies_items",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("batched", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.CheckConstraint(
            "category IN ('medical_protection', 'food', 'daily_necessities', 'medicine', 'infant_supplies', 'equipment')",
            name=op.f("ck_supplies_items_category_valid"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supplies_items")),
        sa.UniqueConstraint("name", name=op.f("uq_supplies_items_name")),
    )
    op.create_table(
        "supplies_warehouses",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("address", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supplies_warehouses")),
        sa.UniqueConstraint("name", name=op.f("uq_supplies_warehouses_name")),
    )
    op.create_table(
        "supplies_batches",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(length=64), server_default="", nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("donor_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["donor_id"], ["supplies_donors.id"], name=op.f("fk_supplies_batches_donor_id_supplies_donors")
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["supplies_items.id"], name=op.f("fk_supplies_batches_item_id_supplies_items")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supplies_batches")),
        sa.UniqueConstraint("item_id", "code", "donor_id", name=op.f("uq_supplies_batches_item_id_code_donor_id")),
    )
    op.create_table(
        "supplies_balances",
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("warehouse_id", sa.BigInteger(), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.CheckConstraint("on_hand >= 0", name=op.f("ck_supplies_balances_not_negative")),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["supplies_batches.id"], name=op.f("fk_supplies_balances_batch_id_supplies_batches")
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["supplies_warehouses.id"],
            name=op.f("fk_supplies_balances_warehouse_id_supplies_warehouses"),
        ),
        sa.PrimaryKeyConstraint("batch_id", "warehouse_id", name=op.f("pk_supplies_balances")),
    )
    op.create_table(
        "supplies_distributions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("warehouse_id", sa.BigInteger(), nullable=False),
        sa.Column("community_id", sa.BigInteger(), nullable=True),
        sa.Column("request_id", sa.BigInteger(), nullable=True),
        sa.Column("recipient", sa.String(length=100), server_default="", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="planned", nullable=False),
        sa.Column("delivered_quantity", sa.Integer(), nullable=True),
        sa.Column("confirmed_by", sa.String(length=100), server_default="", nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "(community_id IS NOT NULL)::int + (request_id IS NOT NULL)::int + (recipient <> '')::int = 1",
            name=op.f("ck_supplies_distributions_one_recipient"),
        ),
        sa.CheckConstraint(
            "status IN ('planned', 'dispatched', 'delivered')", name=op.f("ck_supplies_distributions_status_valid")
        ),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_supplies_distributions_community_id_communities")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"], ["help_requests.id"], name=op.f("fk_supplies_distributions_request_id_help_requests")
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["supplies_warehouses.id"],
            name=op.f("fk_supplies_distributions_warehouse_id_supplies_warehouses"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supplies_distributions")),
    )
    op.create_index(
        op.f("ix_supplies_distributions_request_id"), "supplies_distributions", ["request_id"], unique=False
    )
    op.create_table(
        "supplies_movements",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("warehouse_id", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("distribution_id", sa.BigInteger(), nullable=True),
        sa.Column("reverses_id", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('receipt', 'transfer_out', 'transfer_in', 'distribution', 'return', 'adjustment', 'reversal')",
            name=op.f("ck_supplies_movements_kind_valid"),
        ),
        sa.CheckConstraint("quantity <> 0", name=op.f("ck_supplies_movements_quantity_not_zero")),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["supplies_batches.id"], name=op.f("fk_supplies_movements_batch_id_supplies_batches")
        ),
        sa.ForeignKeyConstraint(
            ["distribution_id"],
            ["supplies_distributions.id"],
            name=op.f("fk_supplies_movements_distribution_id_supplies_distributions"),
        ),
        sa.ForeignKeyConstraint(
            ["reverses_id"],
            ["supplies_movements.id"],
            name=op.f("fk_supplies_movements_reverses_id_supplies_movements"),
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["supplies_warehouses.id"],
            name=op.f("fk_supplies_movements_warehouse_id_supplies_warehouses"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supplies_movements")),
    )
    op.create_index("ix_supplies_movements_batch", "supplies_movements", ["batch_id", "warehouse_id"], unique=False)
    op.create_index(
        "uq_supplies_movements_reverses",
        "supplies_movements",
        ["reverses_id"],
        unique=True,
        postgresql_where=sa.text("reverses_id IS NOT NULL"),
    )

    # The ledger is never edited: corrections are new movements (refuse_rewrite comes from core 0001).
    op.execute(
        "CREATE TRIGGER supplies_movements_append_only BEFORE UPDATE OR DELETE ON supplies_movements "
        "FOR EACH ROW EXECUTE FUNCTION refuse_rewrite()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS supplies_movements_append_only ON supplies_movements")
    op.drop_index(
        "uq_supplies_movements_reverses",
        table_name="supplies_movements",
        postgresql_where=sa.text("reverses_id IS NOT NULL"),
    )
    op.drop_index("ix_supplies_movements_batch", table_name="supplies_movements")
    op.drop_table("supplies_movements")
    op.drop_index(op.f("ix_supplies_distributions_request_id"), table_name="supplies_distributions")
    op.drop_table("supplies_distributions")
    op.drop_table("supplies_balances")
    op.drop_table("supplies_batches")
    op.drop_table("supplies_warehouses")
    op.drop_table("supplies_items")
    op.drop_table("supplies_idempotency_keys")
    op.drop_table("supplies_donors")
