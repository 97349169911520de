"""counseling: every row belongs to an organisation, under row-level security

Revision ID: c002
Revises: c001
Create Date: 2026-11-29

Existing rows go to their parent's organisation (roots: the association). Programme names become unique
per organisation.
"""

from collections.abc import Sequence

from alembic import op

from core.tenancy import Inherit, adopt_existing, release_existing

revision: str = "c002"
down_revision: str | Sequence[str] | None = "c001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "0006"

CLIENT = Inherit("counseling_clients", "client_id")
# (table, links, had the column already, rows default to the caller's organisation); parents first.
TABLES: tuple[tuple[str, tuple[Inherit, ...], bool, bool], ...] = (
    ("counseling_counselors", (Inherit("volunteers", "volunteer_id"),), True, False),
    ("counseling_clients", (Inherit("communities", "community_id"),), True, True),
    ("counseling_programmes", (), False, True),
    (
        "counseling_sessions",
        (Inherit("counseling_counselors", "counselor_id"), CLIENT, Inherit("appointments", "appointment_id")),
        False,
        False,
    ),
    ("counseling_enrolments", (CLIENT, Inherit("counseling_programmes", "programme_id")), False, False),
    ("counseling_journal_entries", (Inherit("counseling_enrolments", "enrolment_id"),), False, False),
    ("counseling_risk_flags", (CLIENT,), False, False),
)


def upgrade() -> None:
    for table, links, has_column, default_to_caller in TABLES:
        adopt_existing(op, table, inherit=links, has_column=has_column, default_to_caller=default_to_caller)
    op.drop_constraint("uq_counseling_programmes_name", "counseling_programmes", type_="unique")
    op.create_unique_constraint(
        "uq_counseling_programmes_organization_id_name", "counseling_programmes", ["organization_id", "name"]
    )


def downgrade() -> None:
    op.drop_constraint("uq_counseling_programmes_organization_id_name", "counseling_programmes", type_="unique")
    op.create_unique_constraint("uq_counseling_programmes_name", "counseling_programmes", ["name"])
    for table, links, has_column, _ in reversed(TABLES):
        release_existing(op, table, inherit=links, keep_column=has_column)
        if has_column:
            op.alter_column(table, "organization_id", nullable=True)
    op.drop_index("ix_counseling_counselors_organization_id", "counseling_counselors")
