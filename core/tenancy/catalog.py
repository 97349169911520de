"""Checking the database: which tables are declared organisation-owned, and which lack protection."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text


def owned_tables(host: Any) -> list[str]:
    """Every table declared organisation-owned by core or by a plugin loaded in `host`."""
    from core.database import Base

    return sorted(
        {
            mapper.local_table.name  # type: ignore[attr-defined]
            for mapper in Base.registry.mappers
            if getattr(mapper.class_, "__tenancy__", None) == "organization"
            and (mapper.class_.__module__.startswith("core.") or host.owner_of(mapper.class_) is not None)
        }
    )


async def unprotected_tables(conn: Any) -> list[str]:
    """Tables that carry `organization_id` but lack RLS (enabled and forced) or a policy in the connected
    database. Alembic's autogenerate does not compare policies; this does, at startup and in the tests."""
    rows = await conn.execute(
        text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'organization_id' AND NOT a.attisdropped "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r' AND NOT (c.relrowsecurity "
            "AND c.relforcerowsecurity AND EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid)) "
            "ORDER BY c.relname"
        )
    )
    return [r[0] for r in rows]
