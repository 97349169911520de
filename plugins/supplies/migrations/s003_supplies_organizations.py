"""supplies: every row belongs to an organisation, under row-level security

Revision ID: s003
Revises: s002
Create Date: 2026-11-29

Existing rows go to their parent's organisation (roots: the association). Names, receipt numbers and
idempotency keys become unique per organisation.
"""

from collections.abc import Sequence

from alembic import op

from core.tenancy import Inherit, adopt_existing, release_existing

revision: str = "s003"
down_revision: str | Sequence[str] | None = "s002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "0006"

WAREHOUSE = Inherit("supplies_warehouses", "warehouse_id")
BATCH = Inherit("supplies_batches", "batch_id")


ROOTS = ("supplies_items", "supplies_warehouses", "supplies_donors", "supplies_idempotency_keys")
# Parents before children: a child's organisation is filled in from its parent's.
CHILDREN: tuple[tuple[str, tuple[Inherit, ...]], ...] = (
    ("supplies_batches", (Inherit("supplies_items", "item_id"), Inherit("supplies_donors", "donor_id"))),
    ("supplies_balances", (WAREHOUSE, BATCH)),
    ("supplies_movements", (WAREHOUSE, BATCH)),
    (
        "supplies_distributions",
        (WAREHOUSE, Inherit("communities", "community_id"), Inherit("help_requests", "request_id")),
    ),
    ("supplies_money_donations", (Inherit("supplies_donors", "donor_id"),)),
    ("supplies_money_allocations", (Inherit("supplies_money_donations", "donation_id"),)),
)
GUARDS = {"supplies_movements": ("supplies_movements_append_only",)}
UNIQUE = (("supplies_items", "name"), ("supplies_warehouses", "name"), ("supplies_money_donations", "receipt_no"))


def upgrade() -> None:
    for table in ROOTS:
        adopt_existing(op, table, default_to_caller=True)
    for table, links in CHILDREN:
        adopt_existing(op, table, inherit=links, guards=GUARDS.get(table, ()))
    for table, column in UNIQUE:
        op.drop_constraint(f"uq_{table}_{column}", table, type_="unique")
        op.create_unique_constraint(f"uq_{table}_organization_id_{column}", table, ["organization_id", column])
    op.drop_constraint("pk_supplies_idempotency_keys", "supplies_idempotency_keys", type_="primary")
    op.create_primary_key("pk_supplies_idempotency_keys", "supplies_idempotency_keys", ["organization_id", "key"])
    # The ledger refused UPDATE and DELETE but not TRUNCATE (found by the schema-mutation check): now all three.
    op.execute(
        "CREATE TRIGGER supplies_movements_no_truncate BEFORE TRUNCATE ON supplies_movements "
        "FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS supplies_movements_no_truncate ON supplies_movements")
    op.drop_constraint("pk_supplies_idempotency_keys", "supplies_idempotency_keys", type_="primary")
    op.create_primary_key("pk_supplies_idempotency_keys", "supplies_idempotency_keys", ["key"])
    for table, column in UNIQUE:
        op.drop_constraint(f"uq_{table}_organization_id_{column}", table, type_="unique")
        op.create_unique_constraint(f"uq_{table}_{column}", table, [column])
    for table, links in reversed(CHILDREN):
        release_existing(op, table, inherit=links)
    for table in ROOTS:
        release_existing(op, table)
