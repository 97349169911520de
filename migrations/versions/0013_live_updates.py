"""live updates: NOTIFY on the changes subscribers follow

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30

PostgreSQL itself announces changes (`pg_notify('yunshegong_live', json)`), from row triggers, in the
transaction that makes them: every path announces (services, plugins, jobs, a script, psql), a rolled-back
change announces nothing, and each service process LISTENs once (core.live). The announcement carries IDs
and routing keys only, never personal data; subscribers reload with their own permissions.

- help_requests, assignments: inserts and updates (topic "help_requests" / "assignments"), with the keys
  subscriptions route on (community, urgency, status; request, volunteer, status) and, under "was", the
  previous values of those that changed. A request's update is announced only when a column subscribers
  are shown changed (not for updated_at or computed columns alone).
- accounts (a password change bumps token_version; deactivation), api_tokens (revocation): topic "auth",
  so connections authenticated by that credential check it again at once.
- plugin_enablements: topic "plugins" (id: the organisation), so subscriptions to a plugin end when it is
  switched off.

The SQL is written out here, not built by core.live.migrations (whose helper plugin migrations use): a
revision installs what it says, whatever that helper becomes later. A later change is a new revision.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Rows as JSON to pick the named keys: one function for every table (the trigger's arguments: topic, id
# column, then routing keys, or name=value constants). Runs as whoever changed the row; reads nothing and
# sends only what the arguments name. Pinned search path, as every function here.
FUNCTION_SQL = """CREATE FUNCTION live_notify() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    new_row jsonb;
    old_row jsonb;
    message jsonb;
    was jsonb := '{}'::jsonb;
    arg text;
    i int;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        old_row := to_jsonb(OLD);
    END IF;
    IF TG_OP = 'DELETE' THEN
        new_row := old_row;
    ELSE
        new_row := to_jsonb(NEW);
    END IF;
    message := jsonb_build_object(
        't', TG_ARGV[0], 'op', lower(left(TG_OP, 1)), 'id', new_row -> TG_ARGV[1], 'o', new_row -> 'organization_id'
    );
    FOR i IN 2 .. TG_NARGS - 1 LOOP
        arg := TG_ARGV[i];
        IF position('=' IN arg) > 0 THEN
            -- name=value: a constant (e.g. kind=account), for topics several tables share
            message := message || jsonb_build_object(split_part(arg, '=', 1), split_part(arg, '=', 2));
        ELSE
            message := message || jsonb_build_object(arg, new_row -> arg);
            IF TG_OP = 'UPDATE' AND (old_row -> arg) IS DISTINCT FROM (new_row -> arg) THEN
                was := was || jsonb_build_object(arg, old_row -> arg);
            END IF;
        END IF;
    END LOOP;
    IF was <> '{}'::jsonb THEN
        message := message || jsonb_build_object('was', was);
    END IF;
    PERFORM pg_notify('yunshegong_live', message::text);
    RETURN NULL;
END $$"""

# The help request columns subscribers are shown (schema HelpRequest): an update of anything else alone
# (updated_at, the computed urgency_rank/needed_by_sort/search_text) announces nothing.
_SHOWN = (
    "community_id", "title", "description", "category", "population_tags", "beneficiaries", "volunteers_needed",
    "urgency", "needed_by", "required_skills", "required_credentials", "duplicate_of_id", "requester_name",
    "requester_phone", "requester_address", "health_details", "latitude", "longitude", "status",
)  # fmt: skip
_REQUEST_CHANGED = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in _SHOWN)
_REQUEST_ARGS = "'help_requests', 'id', 'community_id', 'urgency', 'status'"
_ASSIGNMENT_ARGS = "'assignments', 'id', 'request_id', 'volunteer_id', 'status'"
_PLUGIN_ARGS = "'plugins', 'organization_id', 'plugin_name', 'enabled'"

TRIGGERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "help_requests",
        (
            f"CREATE TRIGGER live_insert AFTER INSERT ON help_requests FOR EACH ROW "
            f"EXECUTE FUNCTION live_notify({_REQUEST_ARGS})",
            f"CREATE TRIGGER live_update AFTER UPDATE ON help_requests FOR EACH ROW WHEN ({_REQUEST_CHANGED}) "
            f"EXECUTE FUNCTION live_notify({_REQUEST_ARGS})",
        ),
    ),
    (
        "assignments",
        (
            f"CREATE TRIGGER live_insert AFTER INSERT ON assignments FOR EACH ROW "
            f"EXECUTE FUNCTION live_notify({_ASSIGNMENT_ARGS})",
            f"CREATE TRIGGER live_update AFTER UPDATE ON assignments FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) "
            f"EXECUTE FUNCTION live_notify({_ASSIGNMENT_ARGS})",
        ),
    ),
    (
        "accounts",
        (
            "CREATE TRIGGER live_update AFTER UPDATE ON accounts FOR EACH ROW WHEN (OLD.is_active IS DISTINCT FROM "
            "NEW.is_active OR OLD.token_version IS DISTINCT FROM NEW.token_version) "
            "EXECUTE FUNCTION live_notify('auth', 'id', 'kind=account')",
            "CREATE TRIGGER live_delete AFTER DELETE ON accounts FOR EACH ROW "
            "EXECUTE FUNCTION live_notify('auth', 'id', 'kind=account')",
        ),
    ),
    (
        "api_tokens",
        (
            "CREATE TRIGGER live_update AFTER UPDATE ON api_tokens FOR EACH ROW WHEN (OLD.revoked_at IS DISTINCT FROM "
            "NEW.revoked_at) EXECUTE FUNCTION live_notify('auth', 'id', 'kind=api_token')",
            "CREATE TRIGGER live_delete AFTER DELETE ON api_tokens FOR EACH ROW "
            "EXECUTE FUNCTION live_notify('auth', 'id', 'kind=api_token')",
        ),
    ),
    (
        "plugin_enablements",
        (
            f"CREATE TRIGGER live_insert AFTER INSERT ON plugin_enablements FOR EACH ROW "
            f"EXECUTE FUNCTION live_notify({_PLUGIN_ARGS})",
            f"CREATE TRIGGER live_update AFTER UPDATE ON plugin_enablements FOR EACH ROW "
            f"WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION live_notify({_PLUGIN_ARGS})",
            f"CREATE TRIGGER live_delete AFTER DELETE ON plugin_enablements FOR EACH ROW "
            f"EXECUTE FUNCTION live_notify({_PLUGIN_ARGS})",
        ),
    ),
)


def upgrade() -> None:
    op.execute(FUNCTION_SQL)
    for _table, statements in TRIGGERS:
        for statement in statements:
            op.execute(statement)


def downgrade() -> None:
    for table, _statements in reversed(TRIGGERS):
        for name in ("live_insert", "live_update", "live_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS live_notify()")
