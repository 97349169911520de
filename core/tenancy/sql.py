"""The SQL of organisation isolation: the app role, the functions policies read, the policy itself.

Migrations call these (core's 0006 and the plugins' own), so they are append-only: changing what an
existing function returns means a new migration that runs `setup_sql()` again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
SET app.role = 'platform_admin' SET search_path = pg_catalog, public, pg_temp AS $$
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
    # The parent is looked up by name: with the search path pinned (temporary schema last), a temporary table
    # of the same name cannot stand in for it (a session's own temporary tables come first by default).
    f"""CREATE OR REPLACE FUNCTION tenant_inherit() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
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
