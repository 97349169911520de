"""Announcing a table's changes on the live channel, for core's and plugins' migrations.

    from core.live.migrations import install_trigger, drop_trigger

    def upgrade() -> None:
        install_trigger("supplies_distributions", "supplies.distribution", keys=("status", "community_id"))

    def downgrade() -> None:
        drop_trigger("supplies_distributions")

A plugin migration that does this depends on core revision "0013" (`depends_on = "0013"`), which creates the
trigger function. The announcement carries the row's id, its organisation_id, the named routing keys (their
new values, and under "was" the old values of those that changed) and the operation: IDs and short codes,
never personal data -- name only such columns. It is sent when the transaction commits, and not at all when
it rolls back, whatever code made the change (a service, a plugin, a script, psql).

A revision should install what it says for good: write the statements out in the revision (print
`trigger_sql(...)` once and paste them, as core's 0013 and the supplies plugin's s005 do) rather than call
the helper at upgrade time, so a later change here never changes what an old revision installs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# Rows as JSON to pick the named keys: one function for every table (the table's columns are its arguments).
# Runs as whoever changed the row; reads nothing (so no row-level security question) and sends only what the
# trigger's arguments name. Pinned search path, as every function here.
FUNCTION_SQL = """CREATE OR REPLACE FUNCTION live_notify() RETURNS trigger
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
DROP_FUNCTION_SQL = "DROP FUNCTION IF EXISTS live_notify()"

OPERATIONS = ("INSERT", "UPDATE", "DELETE")
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_ARG = re.compile(r"^[a-z_][a-z0-9_]*(=[a-z0-9_.]*)?$")
_TOPIC = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$")


def trigger_name(table: str, operation: str) -> str:
    return f"live_{operation.lower()}"


def trigger_sql(
    table: str,
    topic: str,
    *,
    keys: Sequence[str] = (),
    id_column: str = "id",
    on: Sequence[str] = ("INSERT", "UPDATE"),
    update_of: Sequence[str] = (),
) -> list[str]:
    """The CREATE TRIGGER statements (one per operation). `update_of`: announce an update only when one of
    these columns changed (default: when anything did)."""
    if not _NAME.match(table) or not _NAME.match(id_column) or not _TOPIC.match(topic):
        raise ValueError(f"live trigger: bad table, id column or topic ({table!r}, {id_column!r}, {topic!r})")
    for key in (*keys, *update_of):
        if not _ARG.match(key):
            raise ValueError(f"live trigger on {table}: bad key {key!r}")
    unknown = set(on) - set(OPERATIONS)
    if unknown or not on:
        raise ValueError(f"live trigger on {table}: operations are {OPERATIONS}, got {tuple(on)}")
    args = ", ".join(f"'{a}'" for a in (topic, id_column, *keys))
    statements = []
    for operation in on:
        when = ""
        if operation == "UPDATE":
            changed = update_of or ()
            when = (
                " WHEN (" + " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in changed) + ")"
                if changed
                else " WHEN (OLD.* IS DISTINCT FROM NEW.*)"
            )
        statements.append(
            f"CREATE TRIGGER {trigger_name(table, operation)} AFTER {operation} ON {table} "
            f"FOR EACH ROW{when} EXECUTE FUNCTION live_notify({args})"
        )
    return statements


def drop_sql(table: str, on: Sequence[str] = OPERATIONS) -> list[str]:
    if not _NAME.match(table):
        raise ValueError(f"live trigger: bad table {table!r}")
    return [f"DROP TRIGGER IF EXISTS {trigger_name(table, operation)} ON {table}" for operation in on]


def install_trigger(
    table: str,
    topic: str,
    *,
    keys: Sequence[str] = (),
    id_column: str = "id",
    on: Sequence[str] = ("INSERT", "UPDATE"),
    update_of: Sequence[str] = (),
) -> None:
    """In an Alembic migration: announce `table`'s inserts and updates (or `on`) under `topic`."""
    from alembic import op

    for statement in trigger_sql(table, topic, keys=keys, id_column=id_column, on=on, update_of=update_of):
        op.execute(statement)


def drop_trigger(table: str) -> None:
    """In an Alembic downgrade: stop announcing `table`'s changes."""
    from alembic import op

    for statement in drop_sql(table):
        op.execute(statement)
