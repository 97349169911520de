"""Alembic helpers: make a table organisation-owned (new or existing), or undo it in a downgrade."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.tenancy.sql import Inherit, own_table_sql


def own_table(op: Any, table: str, *, inherit: Sequence[Inherit] = (), default_to_caller: bool = False) -> None:
    """Alembic helper for plugin migrations: declare `table` organisation-owned (see `own_table_sql`).
    Call it right after `op.create_table(...)` with an `organization_column()` in the table."""
    for statement in own_table_sql(table, inherit=inherit, default_to_caller=default_to_caller):
        op.execute(statement)


# Existing rows that name no organisation go to the association: the organisation of kind 'association'
# with the lowest id (created when rows exist and no organisation does).
ASSOCIATION = "西安市社会工作协会"
_ASSOCIATION_ID = "(SELECT id FROM organizations ORDER BY kind <> 'association', id LIMIT 1)"


def adopt_existing(
    op: Any,
    table: str,
    *,
    inherit: Sequence[Inherit] = (),
    guards: Sequence[str] = (),
    default_to_caller: bool = False,
    has_column: bool = False,
    index: bool = True,
) -> None:
    """Alembic helper: make an existing table organisation-owned. Adds `organization_id` (unless
    `has_column`), fills it from the first parent (rows without a parent, and root tables, go to the
    association), makes it NOT NULL and indexed, then applies `own_table`. `guards`: triggers (e.g.
    append-only ones) lifted for the backfill and put back."""
    if not has_column:
        op.execute(f"ALTER TABLE {table} ADD COLUMN organization_id bigint REFERENCES organizations (id)")
    for guard in guards:
        op.execute(f"ALTER TABLE {table} DISABLE TRIGGER {guard}")
    if inherit:
        link = inherit[0]
        op.execute(
            f"UPDATE {table} c SET organization_id = p.organization_id FROM {link.parent} p "
            f"WHERE p.id = c.{link.column} AND c.organization_id IS NULL"
        )
    op.execute(
        f"""DO $$ BEGIN
    IF EXISTS (SELECT FROM {table} WHERE organization_id IS NULL) AND NOT EXISTS (SELECT FROM organizations) THEN
        INSERT INTO organizations (name, kind) VALUES ('{ASSOCIATION}', 'association');
    END IF;
END $$"""
    )
    op.execute(f"UPDATE {table} SET organization_id = {_ASSOCIATION_ID} WHERE organization_id IS NULL")
    for guard in guards:
        op.execute(f"ALTER TABLE {table} ENABLE TRIGGER {guard}")
    op.execute(f"ALTER TABLE {table} ALTER COLUMN organization_id SET NOT NULL")
    if index:
        op.execute(f"CREATE INDEX IF NOT EXISTS ix_{table}_organization_id ON {table} (organization_id)")
    own_table(op, table, inherit=inherit, default_to_caller=default_to_caller)


def release_existing(op: Any, table: str, *, inherit: Sequence[Inherit] = (), keep_column: bool = False) -> None:
    """Alembic helper undoing `adopt_existing` (for downgrades): triggers, policy and RLS go; the column
    goes too unless `keep_column` (then only its default goes; make it nullable again if it was)."""
    for i, link in enumerate(inherit):
        op.execute(f"DROP TRIGGER IF EXISTS tenant_{i}_{link.column} ON {table}")
    op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
    op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    if keep_column:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN organization_id DROP DEFAULT")
    else:
        op.execute(f"ALTER TABLE {table} DROP COLUMN organization_id")


def organization_column() -> Any:
    """The `organization_id` column for `op.create_table` in a migration."""
    import sqlalchemy as sa

    return sa.Column("organization_id", sa.BigInteger, sa.ForeignKey("organizations.id"), nullable=False, index=True)
