"""organisation isolation: every organisation-owned row names its organisation, row-level security

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

Existing rows without an organisation are given to the association (core.tenancy.adopt_existing);
child rows take their parent's organisation.
"""

from collections.abc import Sequence

from alembic import op

from core.tenancy import (
    APP_ROLE,
    TENANT_CHECK,
    Inherit,
    adopt_existing,
    grant_sql,
    own_table_sql,
    release_existing,
    setup_sql,
)

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Root tables (the organisation is the service's choice); they have the column already.
ROOTS = ("communities", "volunteers", "api_tokens", "plugin_enablements")
# Child tables: (table, links); the first link's parent gives the organisation, the others must agree.
CHILDREN: tuple[tuple[str, tuple[Inherit, ...]], ...] = (
    ("community_liaisons", (Inherit("communities", "community_id"), Inherit("volunteers", "volunteer_id"))),
    ("volunteer_credentials", (Inherit("volunteers", "volunteer_id"),)),
    ("volunteer_trainings", (Inherit("volunteers", "volunteer_id"),)),
    ("help_requests", (Inherit("communities", "community_id"),)),
    ("help_request_status_changes", (Inherit("help_requests", "request_id"),)),
    ("assignments", (Inherit("help_requests", "request_id"), Inherit("volunteers", "volunteer_id"))),
    ("notifications", (Inherit("volunteers", "volunteer_id"),)),
    ("escalations", (Inherit("help_requests", "request_id"),)),
    ("appointments", (Inherit("volunteers", "owner_id"),)),
    ("availability_windows", (Inherit("volunteers", "owner_id"),)),
    ("availability_exceptions", (Inherit("volunteers", "owner_id"),)),
)
# Append-only tables refuse the backfill's UPDATE; their guards are lifted for it and put back.
ACCOUNT_LINKS = (Inherit("communities", "community_id"), Inherit("volunteers", "volunteer_id"))
GUARDED = {"help_request_status_changes": ("help_request_status_changes_append_only",)}


def upgrade() -> None:
    for statement in setup_sql():
        op.execute(statement)
    for table in ROOTS:
        # plugin_enablements' primary key (organization_id, plugin_name) serves as its index.
        adopt_existing(op, table, has_column=True, index=table != "plugin_enablements")
    for table, links in CHILDREN:
        adopt_existing(op, table, inherit=links, guards=GUARDED.get(table, ()))

    # Uniqueness is per organisation: a global key on a hidden row would tell one organisation what
    # another holds (an existence oracle).
    op.drop_constraint("uq_volunteers_phone", "volunteers", type_="unique")
    op.create_unique_constraint("uq_volunteers_organization_id_phone", "volunteers", ["organization_id", "phone"])
    op.drop_constraint("uq_communities_district_id_name", "communities", type_="unique")
    op.create_unique_constraint(
        "uq_communities_organization_id_district_id_name", "communities", ["organization_id", "district_id", "name"]
    )
    op.create_index("ix_volunteers_phone", "volunteers", ["phone"])

    # Accounts: a platform administrator may have no organisation (then only platform administrators see
    # the row); an account bound to a community or volunteer record belongs to that record's organisation.
    for statement in own_table_sql("accounts", inherit=ACCOUNT_LINKS):
        op.execute(statement)
    # Before the caller is known, the authenticator reads exactly these two tables (by username, by token
    # hash, by the id in a signed token): a narrow, read-only policy, not a bypass.
    for table in ("accounts", "api_tokens"):
        op.execute(
            f"CREATE POLICY authenticate ON {table} FOR SELECT TO {APP_ROLE} USING (app_role() = 'authenticator')"
        )

    # The audit trail: read by the organisation it concerns (or platform administrators); anyone may add
    # an entry about themselves or about no organisation (failed sign-ins).
    op.execute("ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE audit_log FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY audit_read ON audit_log FOR SELECT USING {TENANT_CHECK}")
    op.execute(
        f"CREATE POLICY audit_append ON audit_log FOR INSERT WITH CHECK (organization_id IS NULL OR {TENANT_CHECK})"
    )

    for statement in grant_sql():
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP POLICY IF EXISTS audit_read ON audit_log")
    op.execute("DROP POLICY IF EXISTS audit_append ON audit_log")
    op.execute("ALTER TABLE audit_log NO FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE audit_log DISABLE ROW LEVEL SECURITY")
    for table in ("accounts", "api_tokens"):
        op.execute(f"DROP POLICY IF EXISTS authenticate ON {table}")
    release_existing(op, "accounts", inherit=ACCOUNT_LINKS, keep_column=True)
    op.drop_index("ix_volunteers_phone", "volunteers")
    op.drop_constraint("uq_communities_organization_id_district_id_name", "communities", type_="unique")
    op.create_unique_constraint("uq_communities_district_id_name", "communities", ["district_id", "name"])
    op.drop_constraint("uq_volunteers_organization_id_phone", "volunteers", type_="unique")
    op.create_unique_constraint("uq_volunteers_phone", "volunteers", ["phone"])
    for table, links in reversed(CHILDREN):
        release_existing(op, table, inherit=links)
    for table in ROOTS:
        release_existing(op, table, keep_column=True)
    for table in ("communities", "volunteers"):
        op.alter_column(table, "organization_id", nullable=True)
    # The role and the functions stay: roles are cluster-wide, and other databases may use both.
