"""Organisation isolation, enforced by PostgreSQL row-level security.

Every organisation-owned row carries `organization_id`; each such table has RLS enabled *and forced*
and a policy that lets a transaction see and write only the rows of the organisation named in its
settings (platform administrators: every organisation, through that same explicit policy). The service
connects as `APP_ROLE`, which is neither superuser nor BYPASSRLS; only migrations run as the owner.

Per transaction the session sets `app.org_id` and `app.role` from its viewer with
`set_config(name, value, true)` (transaction-local: a pooled connection forgets them at COMMIT, and the
policies read them null-safely, so a connection that was never told who is asking sees nothing).
Service-layer scopes (communities served, requests offered) refine *within* an organisation; RLS is the
floor that no service, plugin or forgotten `WHERE` can go below.

Plugins declare their tables with `OrganizationOwned` (models) and `own_table()` (migrations); the plugin
host refuses to load a plugin with an undeclared table (see `check_declared`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, FetchedValue, ForeignKey, event, text
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from core.services.context import Viewer

APP_ROLE = "yunshegong_app"
ORG_SETTING = "app.org_id"
ROLE_SETTING = "app.role"
# The role value with which the authenticator reads accounts and API tokens before it knows the caller.
AUTHENTICATOR_ROLE = "authenticator"
# The policy expression every organisation-owned table uses. The scalar subqueries make the settings
# InitPlans, read once per statement instead of once per row (which costs ~15% on a 600,000-row report).
TENANT_CHECK = "((SELECT app_is_platform()) OR organization_id = (SELECT app_org()))"
# Raised by the inherit trigger when a child names a parent of another organisation.
SAME_ORGANIZATION = "tenant_same_organization"

FUNCTIONS: tuple[str, ...] = (
    # NULLIF: a pooled connection answers '' (not NULL) for a setting an earlier transaction set locally.
    f"""CREATE OR REPLACE FUNCTION app_org() RETURNS bigint LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT NULLIF(current_setting('{ORG_SETTING}', true), '')::bigint $$""",
    f"""CREATE OR REPLACE FUNCTION app_role() RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT coalesce(current_setting('{ROLE_SETTING}', true), '') $$""",
    """CREATE OR REPLACE FUNCTION app_is_platform() RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT app_role() = 'platform_admin' $$""",
    # The public headline figures (the `stats` query) are totals over every organisation. This function
    # is the one place that reads across organisations for a caller who is not a platform administrator:
    # its SET clause applies to its own body only (restored on return), and it returns counts, never rows.
    """CREATE OR REPLACE FUNCTION platform_figures() RETURNS jsonb LANGUAGE sql STABLE
SET app.role = 'platform_admin' AS $$
SELECT jsonb_build_object(
    'volunteers_total', (SELECT count(*) FROM volunteers),
    'requests_total', (SELECT count(*) FROM help_requests),
    'communities_total', (SELECT count(*) FROM communities),
    'communities_served', (SELECT count(DISTINCT community_id) FROM help_requests WHERE status = 'fulfilled'),
    'beneficiaries_served', (SELECT coalesce(sum(beneficiaries), 0) FROM help_requests WHERE status = 'fulfilled'),
    'hours_served', (SELECT coalesce(sum(hours), 0) FROM assignments WHERE status = 'completed'),
    'volunteers_by_mode', (SELECT coalesce(jsonb_agg(jsonb_build_array(k, n) ORDER BY n DESC, k), '[]')
        FROM (SELECT mode AS k, count(*) AS n FROM volunteers GROUP BY mode) b),
    'volunteers_by_district', (SELECT coalesce(jsonb_agg(jsonb_build_array(k, n) ORDER BY n DESC, k), '[]')
        FROM (SELECT coalesce(d.name, '—') AS k, count(v.id) AS n FROM volunteers v
              LEFT JOIN districts d ON d.id = v.district_id GROUP BY d.name) b),
    'requests_by_status', (SELECT coalesce(jsonb_agg(jsonb_build_array(k, n) ORDER BY n DESC, k), '[]')
        FROM (SELECT status AS k, count(*) AS n FROM help_requests GROUP BY status) b),
    'requests_by_category', (SELECT coalesce(jsonb_agg(jsonb_build_array(k, n) ORDER BY n DESC, k), '[]')
        FROM (SELECT category AS k, count(*) AS n FROM help_requests GROUP BY category) b),
    'requests_by_urgency', (SELECT coalesce(jsonb_agg(jsonb_build_array(k, n) ORDER BY n DESC, k), '[]')
        FROM (SELECT urgency AS k, count(*) AS n FROM help_requests GROUP BY urgency) b),
    'hours_by_team', (SELECT coalesce(jsonb_agg(jsonb_build_array(k, n) ORDER BY n DESC, k), '[]')
        FROM (SELECT t.team AS k, sum(a.hours) AS n FROM assignments a
              JOIN (SELECT id, unnest(teams) AS team FROM volunteers) t ON t.id = a.volunteer_id
              WHERE a.status = 'completed' GROUP BY t.team) b)
) $$""",
    # A child row belongs to its parent's organisation: filled in when absent, refused when different.
    # The parent is read with the caller's rights, so a parent of another organisation is invisible and
    # the insert fails with insufficient_privilege (42501) -- which the service answers as NOT_FOUND.
    f"""CREATE OR REPLACE FUNCTION tenant_inherit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    parent_id bigint := (to_jsonb(NEW) ->> TG_ARGV[1])::bigint;
    parent_org bigint;
BEGIN
    IF parent_id IS NULL THEN
        RETURN NEW;
    END IF;
    EXECUTE format('SELECT organization_id FROM %I WHERE id = $1', TG_ARGV[0]) INTO parent_org USING parent_id;
    IF parent_org IS NULL THEN
        RAISE EXCEPTION '% % is not visible to this organisation', TG_ARGV[0], parent_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.organization_id IS NULL THEN
        NEW.organization_id := parent_org;
    ELSIF NEW.organization_id <> parent_org THEN
        RAISE EXCEPTION '%.% belongs to organisation %, the row to %', TG_TABLE_NAME, TG_ARGV[1], parent_org,
            NEW.organization_id USING ERRCODE = 'check_violation', CONSTRAINT = '{SAME_ORGANIZATION}';
    END IF;
    RETURN NEW;
END $$""",
)


# -- models --------------------------------------------------------------------------------------------------


class OrganizationOwned:
    """Mixin for a model whose rows belong to one organisation (core and plugin tables alike).

    The column is NOT NULL and indexed. Its value comes from the service, from the parent row (see
    `own_table(..., inherit=...)`), or from the transaction's organisation (the column default), so a
    plugin can simply leave it out. The table is marked so that the plugin host can check it."""

    __tenancy__ = "organization"

    @declared_attr
    def organization_id(cls) -> Mapped[int]:
        return mapped_column(
            BigInteger,
            ForeignKey("organizations.id"),
            nullable=False,
            index=True,
            server_default=FetchedValue(),
        )


class SharedByAllOrganizations:
    """Mixin for a table deliberately shared by every organisation (reference data, no personal data).
    Subclasses say why in `__tenancy_why__`: it is what a reviewer reads, and the host refuses an empty one."""

    __tenancy__ = "global"
    __tenancy_why__ = ""


def tenancy_of(cls: type) -> str | None:
    """'organization', 'global' (with a stated reason) or None (undeclared) for a mapped class."""
    declared = getattr(cls, "__tenancy__", None)
    if declared == "global" and not str(getattr(cls, "__tenancy_why__", "")).strip():
        return None
    return declared


# -- migrations ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inherit:
    """`column` references `parent`; the row belongs to the parent's organisation."""

    parent: str
    column: str


def own_table_sql(table: str, *, inherit: Sequence[Inherit] = (), default_to_caller: bool = False) -> list[str]:
    """The statements that make `table` (which already has a NOT NULL `organization_id`) organisation-owned:
    RLS enabled and forced, one policy for reads and writes, and triggers deriving the organisation from
    parents. `default_to_caller`: rows without an organisation take the transaction's (root tables)."""
    statements = [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS tenant_isolation ON {table}",
        f"CREATE POLICY tenant_isolation ON {table} USING {TENANT_CHECK} WITH CHECK {TENANT_CHECK}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP_ROLE}",
    ]
    if default_to_caller:
        statements.append(f"ALTER TABLE {table} ALTER COLUMN organization_id SET DEFAULT app_org()")
    for i, link in enumerate(inherit):
        # Triggers fire in name order: the first link fills the organisation in, the others check it.
        statements.append(
            f"CREATE TRIGGER tenant_{i}_{link.column} BEFORE INSERT OR UPDATE OF {link.column}, organization_id "
            f"ON {table} FOR EACH ROW EXECUTE FUNCTION tenant_inherit('{link.parent}', '{link.column}')"
        )
    return statements


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


def setup_sql() -> list[str]:
    """Role, functions and grants; idempotent (roles are cluster-wide and outlive any one database)."""
    return [
        f"""DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END $$""",
        *FUNCTIONS,
        f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}",
    ]


def grant_sql() -> list[str]:
    """Run after every migration: the app role may use every table and sequence (RLS decides which rows),
    but never TRUNCATE, never own anything, never change the schema."""
    return [
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}",
        f"REVOKE TRUNCATE ON ALL TABLES IN SCHEMA public FROM {APP_ROLE}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}",
    ]


# -- per-transaction settings ------------------------------------------------------------------------------

_VIEWER = "tenancy.viewer"
_APPLIED = "tenancy.applied"


def bind(session: Any, viewer: Viewer) -> None:
    """Make `session`'s transactions act for `viewer` (AsyncSession or Session)."""
    sync = getattr(session, "sync_session", session)
    sync.info[_VIEWER] = viewer


def settings_for(viewer: Viewer | None) -> tuple[str, str]:
    if viewer is None:
        return "", ""
    org = "" if viewer.organization_id is None else str(viewer.organization_id)
    return org, viewer.role or ""


def _apply(session: Session, connection: Connection) -> None:
    viewer = session.info.get(_VIEWER)
    if session.info.get(_APPLIED, "unset") is viewer:
        return
    org, role = settings_for(viewer)
    connection.execute(
        text(f"SELECT set_config('{ORG_SETTING}', :org, true), set_config('{ROLE_SETTING}', :role, true)"),
        {"org": org, "role": role},
    )
    session.info[_APPLIED] = viewer


@event.listens_for(Session, "after_begin")
def _after_begin(session: Session, transaction: Any, connection: Connection) -> None:
    session.info.pop(_APPLIED, None)
    if _VIEWER in session.info:
        _apply(session, connection)


@event.listens_for(Session, "do_orm_execute")
def _before_execute(state: Any) -> None:
    # A session rebound to another viewer mid-transaction (tests do) acts for the new one from now on.
    session = state.session
    if _VIEWER not in session.info or session.info.get(_APPLIED, "unset") is session.info[_VIEWER]:
        return
    connection = session.connection()  # begins the transaction (and applies, in after_begin) if needed
    if session.info.get(_APPLIED, "unset") is not session.info[_VIEWER]:
        _apply(session, connection)


# -- checking the catalog ------------------------------------------------------------------------------------


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
