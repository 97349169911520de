"""the bearer check in one statement: functions that read a token's account or API token as the authenticator

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

Every signed-in request reads its account (or API token) before the caller is known, then acts for it.
That used to take three statements: settings for the authenticator, the read, settings for the caller.
These functions read as the authenticator inside their own body only (the SET clause is restored when
they return, as `platform_figures` does), so one statement can read the row *and* set the caller's
settings from it with `set_config(…, true)` (core.services.auth). They run with the caller's rights (no
SECURITY DEFINER): row-level security and its narrow `authenticate` policies still decide what is read,
and they return only what the check needs (never a password hash).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Columns are qualified throughout: in a SQL function a column of the same name as an output column or an
# argument would otherwise silently win.
BEARER_ACCOUNT = """CREATE OR REPLACE FUNCTION app_bearer_account(wanted bigint, with_roles boolean)
RETURNS TABLE (id bigint, username text, role text, organization_id bigint, community_id bigint,
               volunteer_id bigint, is_active boolean, token_version integer, plugin_roles text[])
LANGUAGE sql STABLE SET app.role = 'authenticator' AS $$
SELECT a.id, a.username::text, a.role::text, a.organization_id, a.community_id, a.volunteer_id, a.is_active,
       a.token_version,
       CASE WHEN with_roles THEN
           (SELECT array_agg(r.role::text) FROM account_plugin_roles r WHERE r.account_id = a.id)
       END
FROM accounts a
WHERE a.id = wanted
$$"""

API_TOKEN = """CREATE OR REPLACE FUNCTION app_api_token(wanted_hash text)
RETURNS TABLE (id bigint, name text, organization_id bigint, revoked boolean)
LANGUAGE sql STABLE SET app.role = 'authenticator' AS $$
SELECT t.id, t.name::text, t.organization_id, t.revoked_at IS NOT NULL
FROM api_tokens t
WHERE t.token_hash = wanted_hash
$$"""


def upgrade() -> None:
    op.execute(BEARER_ACCOUNT)
    op.execute(API_TOKEN)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS app_api_token(text)")
    op.execute("DROP FUNCTION IF EXISTS app_bearer_account(bigint, boolean)")
