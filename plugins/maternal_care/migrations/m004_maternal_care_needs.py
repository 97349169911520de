"""maternal_care: urgent needs of mothers and infants, linked to the core help requests raised for them

Revision ID: m004
Revises: m003

`maternal_care_urgent_needs`: one row per help request raised for a mother (unique per request, within the organisation, as every key), for her or her
infant, what and how much, who raised it. Organisation-owned under row-level security (core.own_table): it
inherits the mother's organisation, and the help request and the raising account must be of it. Append-only
(m001's `maternal_care_append_only`): the request changes through core; the link never does.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core

revision: str = "m004"
down_revision: str | Sequence[str] | None = "m003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

T = "maternal_care_urgent_needs"


def upgrade() -> None:
    op.create_table(
        T,
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("mother_id", sa.BigInteger(), nullable=False),
        sa.Column("help_request_id", sa.BigInteger(), nullable=False),
        sa.Column("beneficiary", sa.String(length=8), nullable=False),
        sa.Column("what", sa.String(length=200), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("raised_by_account_id", sa.BigInteger(), nullable=True),
        sa.Column("raised_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        core.organization_column(),
        sa.CheckConstraint("beneficiary IN ('mother', 'infant')", name=op.f(f"ck_{T}_beneficiary_valid")),
        sa.CheckConstraint("quantity BETWEEN 1 AND 10000", name=op.f(f"ck_{T}_quantity_valid")),
        sa.ForeignKeyConstraint(
            ["mother_id"], ["maternal_care_mothers.id"], name=op.f(f"fk_{T}_mother_id_maternal_care_mothers")
        ),
        sa.ForeignKeyConstraint(
            ["help_request_id"], ["help_requests.id"], name=op.f(f"fk_{T}_help_request_id_help_requests")
        ),
        sa.ForeignKeyConstraint(
            ["raised_by_account_id"], ["accounts.id"], name=op.f(f"fk_{T}_raised_by_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{T}")),
        sa.UniqueConstraint("organization_id", "help_request_id", name=op.f(f"uq_{T}_organization_id_help_request_id")),
    )
    op.create_index("ix_maternal_care_urgent_needs_mother", T, ["mother_id", "id"], unique=False)
    core.own_table(
        op,
        T,
        inherit=[
            core.Inherit("maternal_care_mothers", "mother_id"),
            core.Inherit("help_requests", "help_request_id"),
            core.Inherit("accounts", "raised_by_account_id"),
        ],
    )
    op.execute(
        f"CREATE TRIGGER maternal_care_append_only BEFORE UPDATE OR DELETE ON {T} "
        "FOR EACH ROW EXECUTE FUNCTION maternal_care_append_only()"
    )


def downgrade() -> None:
    op.drop_table(T)
