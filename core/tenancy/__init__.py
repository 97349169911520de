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
host refuses to load a plugin with an undeclared table (`core.plugins.check_tables_declared`).
"""

from core.tenancy import session as _session  # noqa: F401  (registers the per-transaction settings)
from core.tenancy.catalog import owned_tables, unprotected_tables
from core.tenancy.migrations import (
    ASSOCIATION,
    adopt_existing,
    organization_column,
    own_table,
    release_existing,
)
from core.tenancy.models import OrganizationOwned, SharedByAllOrganizations, tenancy_of
from core.tenancy.session import bind, rebind, settings_for
from core.tenancy.sql import (
    APP_ROLE,
    AUTHENTICATOR_ROLE,
    FUNCTIONS,
    ORG_SETTING,
    ROLE_SETTING,
    SAME_ORGANIZATION,
    TENANT_CHECK,
    Inherit,
    grant_sql,
    own_table_sql,
    setup_sql,
)

__all__ = [
    "APP_ROLE",
    "ASSOCIATION",
    "AUTHENTICATOR_ROLE",
    "FUNCTIONS",
    "ORG_SETTING",
    "ROLE_SETTING",
    "SAME_ORGANIZATION",
    "TENANT_CHECK",
    "Inherit",
    "OrganizationOwned",
    "SharedByAllOrganizations",
    "adopt_existing",
    "bind",
    "grant_sql",
    "organization_column",
    "own_table",
    "own_table_sql",
    "owned_tables",
    "rebind",
    "release_existing",
    "settings_for",
    "setup_sql",
    "tenancy_of",
    "unprotected_tables",
]
