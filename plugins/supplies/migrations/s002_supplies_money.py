"""supplies: money donations (fen) and their allocations

Revision ID: s002
Revises: s001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "s002"
down_revision: str | Sequence[str] | None = "s001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "supplies_money_donations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("donor_id", sa.BigInteger(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("purpose", sa.Text(), server_default="", nullable=False),
        sa.Column("receipt_no", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_supplies_money_donations_amount_positive")),
        sa.ForeignKeyConstraint(
            ["donor_id"], ["supplies_donors.id"], name=op.f("fk_supplies_money_donations_donor_id_supplies_donors")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supplies_money_donations")),
        sa.UniqueConstraint("receipt_no", name=op.f("uq_supplies_money_donations_receipt_no")),
    )
    op.create_index(
        op.f("ix_supplies_money_donations_donor_id"), "supplies_money_donations", ["donor_id"], unique=False
    )
    op.create_table(
        "supplies_money_allocations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("donation_id", sa.BigInteger(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_supplies_money_allocations_amount_positive")),
        sa.ForeignKeyConstraint(
            ["donation_id"],
            ["supplies_money_donations.id"],
            name=op.f("fk_supplies_money_allocations_donation_id_supplies_money_donations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supplies_money_allocations")),
    )
    op.create_index(
        op.f("ix_supplies_money_allocations_donation_id"), "supplies_money_allocations", ["donation_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_supplies_money_allocations_donation_id"), table_name="supplies_money_allocations")
    op.drop_table("supplies_money_allocations")
    op.drop_index(op.f("ix_supplies_money_donations_donor_id"), table_name="supplies_money_donations")
    op.drop_table("supplies_money_donations")
