"""functions that read tables by name read the real ones: search path pinned, no temporary tables for the app

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

A function resolves a table name through the caller's search path, and a session's temporary schema comes
first in it. A temporary table called `communities` or `accounts` would then stand in for the real one
inside `tenant_inherit` (a link to another organisation's record accepted), the bearer check's functions (an
account of the session's making) or `platform_figures`. Defence in depth, as row-level security itself is:
the functions that read tables get `search_path = pg_catalog, public, pg_temp` (temporary schema last), and
the service's role may not create temporary tables at all (nothing in the service uses them).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The functions that read tables by name (the RLS helpers app_org/app_role read settings only, and stay
# inlinable: a SET clause would stop PostgreSQL inlining them into every policy).
PINNED = ("tenant_inherit()", "platform_figures()", "app_bearer_account(bigint, boolean)", "app_api_token(text)")
REVOKE_TEMP = """DO $$ BEGIN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
END $$"""
GRANT_TEMP = """DO $$ BEGIN
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO PUBLIC', current_database());
END $$"""


def upgrade() -> None:
    for function in PINNED:
        op.execute(f"ALTER FUNCTION {function} SET search_path = pg_catalog, public, pg_temp")
    op.execute(REVOKE_TEMP)


def downgrade() -> None:
    op.execute(GRANT_TEMP)
    for function in PINNED:
        op.execute(f"ALTER FUNCTION {function} RESET search_path")
