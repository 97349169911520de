"""case_work: clients are residents, transfers between workers, risk history, org admins' note access, reseal

Revision ID: w006
Revises: w005
Create Date: 2026-11-30

- **One identity** (decisions.md, "One of each"): a casework client becomes casework's extension of a core
  resident (`residents`, core 0012). Each existing client becomes the client of the resident of its
  organisation with the same name and phone (one counseling's c003 made, say) if there is one no other client
  holds, or else gets a resident of its own (same name, community, phone, address, organisation; noted in
  `app_meta` for the downgrade), `resident_id` becomes NOT NULL and unique (one client per resident), and the
  client's own name, phone, address and community are dropped: two copies of a phone number drift apart,
  and the resident's row is the one the other services (counseling, referrals, consent) read. The client's
  organisation is now inherited from its resident. The downgrade copies them back and deletes the residents
  the upgrade made that nothing else references.
- `case_work_risk_changes`: every change of a case's risk level (append-only, like the stage history).
- `case_work_transfers`: a case handed to another social worker, pending until the receiver answers; one
  pending per case, nobody receives a transfer they proposed, the answer is the receiver's, and a row
  changes once (from pending) and only in its answer's columns.
- Note accesses: an organisation administrator may open a case's notes through the audited purpose path
  (relation 'organization_admin').
- **Resealing append-only rows** (`yunshegong reseal`, core.services.sealing): the guards of notes,
  revisions and the closed-case check let through an UPDATE that only moves a sealed text to another key --
  every other column unchanged, the key id in the header changed -- in a transaction that declared it with
  `set_config('app.resealing', '<table>.text_sealed', true)`. Any other change is refused as before. (The
  app role can set that setting, so this narrows what an UPDATE may do rather than who may do it: it can
  put another sealed value in place of the text, and a value moved from another row or key does not open --
  sealing binds it to its row -- so the worst it can do is what a DELETE could, which the guards still refuse
  to everyone: destroy, not read or forge.)
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

import core

revision: str = "w006"
down_revision: str | Sequence[str] | None = "w005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "0012"

RISK_LEVELS = "('low', 'medium', 'high')"
TRANSFER_STATUSES = "('pending', 'accepted', 'declined', 'withdrawn')"


def _resealing(table: str) -> str:
    """The condition under which a guard lets a reseal through (see the module's docstring)."""
    return f"""current_setting('app.resealing', true) = '{table}.text_sealed'
            AND (to_jsonb(NEW) - 'text_sealed') = (to_jsonb(OLD) - 'text_sealed')
            AND substring(NEW.text_sealed FROM 1 FOR 4 + get_byte(NEW.text_sealed, 3))
                <> substring(OLD.text_sealed FROM 1 FOR 4 + get_byte(OLD.text_sealed, 3))"""


GUARD_APPEND_ONLY = f"""CREATE OR REPLACE FUNCTION case_work_append_only() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    -- Nested: the row of another table has no `status` (no `text_sealed`) to read.
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'case_work_approvals' THEN
        IF OLD.status = 'pending' AND NEW.id = OLD.id AND NEW.case_id = OLD.case_id AND NEW.kind = OLD.kind
            AND NEW.stage_seq = OLD.stage_seq AND NEW.requested_by_account_id = OLD.requested_by_account_id
            AND NEW.summary = OLD.summary AND NEW.outcomes = OLD.outcomes THEN
            RETURN NEW;
        END IF;
    ELSIF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'case_work_note_revisions' THEN
        IF {_resealing("case_work_note_revisions")} THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION '% rows are kept as written', TG_TABLE_NAME
        USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_append_only';
END $$"""

GUARD_OPEN_CASE = f"""CREATE OR REPLACE FUNCTION case_work_note_case_open() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    note_case bigint;
BEGIN
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'case_work_notes' THEN
        IF {_resealing("case_work_notes")} THEN
            RETURN NEW;
        END IF;
    END IF;
    IF TG_TABLE_NAME = 'case_work_note_revisions' THEN
        SELECT n.case_id INTO note_case FROM case_work_notes n WHERE n.id = NEW.note_id;
    ELSE
        note_case := NEW.case_id;
    END IF;
    IF EXISTS (SELECT FROM case_work_cases c WHERE c.id = note_case AND c.stage IN ('closure', 'not_opened')) THEN
        RAISE EXCEPTION 'case % is closed', note_case
            USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_case_closed';
    END IF;
    RETURN NEW;
END $$"""

GUARD_NOTE = f"""CREATE OR REPLACE FUNCTION case_work_note_guard() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'case_work_notes rows are kept (void a note instead)'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_append_only';
    END IF;
    IF {_resealing("case_work_notes")} THEN
        RETURN NEW;
    END IF;
    IF OLD.voided_at IS NOT NULL THEN
        RAISE EXCEPTION 'note % is voided', OLD.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_note_voided';
    END IF;
    IF NEW.id <> OLD.id OR NEW.case_id <> OLD.case_id OR NEW.author_account_id <> OLD.author_account_id
        OR NEW.author <> OLD.author
        OR NEW.created_at <> OLD.created_at OR NEW.organization_id <> OLD.organization_id THEN
        RAISE EXCEPTION 'note %: case, author and creation are kept as written', OLD.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_append_only';
    END IF;
    IF (NEW.text_sealed, NEW.note_type, NEW.occurred_at) IS DISTINCT FROM (OLD.text_sealed, OLD.note_type, OLD.occurred_at)
        OR NEW.revision <> OLD.revision THEN
        IF NEW.revision <> OLD.revision + 1 OR NOT EXISTS (
            SELECT FROM case_work_note_revisions r WHERE r.note_id = OLD.id AND r.revision = OLD.revision
        ) THEN
            RAISE EXCEPTION 'note %: an edit keeps the previous version as a revision first', OLD.id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_note_revision_kept';
        END IF;
    END IF;
    RETURN NEW;
END $$"""

# A transfer starts pending; it changes once, from pending, and only in its answer's columns.
GUARD_TRANSFER = """CREATE OR REPLACE FUNCTION case_work_transfer_guard() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status <> 'pending' OR NEW.decided_by_account_id IS NOT NULL THEN
            RAISE EXCEPTION 'a transfer starts pending'
                USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_transfer_decided';
        END IF;
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.status = 'pending'
        AND (to_jsonb(NEW) - '{status,decided_by_account_id,decided_at,decision_reason}'::text[])
            = (to_jsonb(OLD) - '{status,decided_by_account_id,decided_at,decision_reason}'::text[]) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'transfer % is kept as answered', OLD.id
        USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_transfer_decided';
END $$"""

# Where the upgrade notes the residents it made (ids, comma-separated), for the downgrade to take back.
MADE_KEY = "case_work:w006_residents"

# A client whose person the organisation knows already -- a resident of the same organisation with the same
# name and phone (a counseling client's, made by c003; one registered in core) that no other casework client
# holds -- becomes that resident's client; what the client knew and the resident did not (an address, a
# community) is kept on the resident. Otherwise the client gets a resident of its own. A phone is needed to
# match: a name alone is too thin to say two records are one person.
BACKFILL = f"""DO $$
DECLARE
    c record;
    rid bigint;
    made bigint[] := '{{}}';
BEGIN
    FOR c IN SELECT id, name, phone, address, community_id, organization_id FROM case_work_clients
             WHERE resident_id IS NULL ORDER BY id LOOP
        SELECT r.id INTO rid FROM residents r
        WHERE r.organization_id = c.organization_id AND r.name = c.name AND c.phone <> '' AND r.phone = c.phone
            AND NOT EXISTS (SELECT FROM case_work_clients o WHERE o.resident_id = r.id)
        ORDER BY r.id LIMIT 1;
        IF rid IS NULL THEN
            INSERT INTO residents (name, phone, address, community_id, organization_id)
            VALUES (c.name, c.phone, c.address, c.community_id, c.organization_id) RETURNING id INTO rid;
            made := made || rid;
        ELSE
            UPDATE residents SET address = CASE WHEN address = '' THEN c.address ELSE address END,
                community_id = coalesce(community_id, c.community_id)
            WHERE id = rid AND (address = '' AND c.address <> '' OR community_id IS NULL AND c.community_id IS NOT NULL);
        END IF;
        UPDATE case_work_clients SET resident_id = rid WHERE id = c.id;
    END LOOP;
    IF cardinality(made) > 0 THEN
        INSERT INTO app_meta (key, value) VALUES ('{MADE_KEY}', array_to_string(made, ','))
        ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
    END IF;
END $$"""

# The downgrade takes back the residents the upgrade made that nothing references any more (the clients hold
# their facts again): every foreign key to `residents.id`, of whatever table, core's or a plugin's, is
# asked -- a resident consented, referred or served by counseling since stays, as core's record.
TAKE_BACK = f"""DO $$
DECLARE
    made bigint[];
    fk record;
BEGIN
    SELECT string_to_array(value, ',')::bigint[] INTO made FROM app_meta WHERE key = '{MADE_KEY}';
    IF made IS NULL THEN
        RETURN;
    END IF;
    FOR fk IN
        SELECT c.conrelid::regclass AS tbl, a.attname AS col
        FROM pg_constraint c
        CROSS JOIN LATERAL unnest(c.conkey, c.confkey) AS k(own, ref)
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.own
        JOIN pg_attribute r ON r.attrelid = c.confrelid AND r.attnum = k.ref
        WHERE c.contype = 'f' AND c.confrelid = 'residents'::regclass AND r.attname = 'id'
    LOOP
        EXECUTE format('SELECT array(SELECT unnest($1) EXCEPT SELECT %I FROM %s)', fk.col, fk.tbl)
            INTO made USING made;
    END LOOP;
    DELETE FROM residents WHERE id = ANY(made);
    DELETE FROM app_meta WHERE key = '{MADE_KEY}';
END $$"""


def _sibling(name: str) -> ModuleType:
    """An earlier migration of this branch (the downgrade puts its functions back as they were)."""
    spec = importlib.util.spec_from_file_location(f"case_work_{name}", Path(__file__).parent / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _case_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["case_id"], ["case_work_cases.id"], name=op.f(f"fk_{table}_case_id_case_work_cases")
    )


def _account_fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["accounts.id"], name=op.f(f"fk_{table}_{column}_accounts"))


def upgrade() -> None:
    bind = op.get_bind()
    # Across organisations, as a migration does (RLS is forced on the owner too): a transaction-local setting.
    bind.execute(sa.text("SELECT set_config('app.role', 'platform_admin', true)"))

    # -- clients are residents --------------------------------------------------------------------------------
    op.add_column("case_work_clients", sa.Column("resident_id", sa.BigInteger(), nullable=True))
    op.execute(BACKFILL)
    op.alter_column("case_work_clients", "resident_id", nullable=False)
    op.create_foreign_key(
        op.f("fk_case_work_clients_resident_id_residents"), "case_work_clients", "residents", ["resident_id"], ["id"]
    )
    op.create_unique_constraint(op.f("uq_case_work_clients_resident_id"), "case_work_clients", ["resident_id"])
    op.execute("DROP TRIGGER IF EXISTS tenant_0_community_id ON case_work_clients")
    for column in ("name", "phone", "address", "community_id"):
        op.drop_column("case_work_clients", column)
    op.execute(
        "CREATE TRIGGER tenant_0_resident_id BEFORE INSERT OR UPDATE OF resident_id, organization_id "
        "ON case_work_clients FOR EACH ROW EXECUTE FUNCTION tenant_inherit('residents', 'resident_id')"
    )

    # -- risk history ---------------------------------------------------------------------------------------------
    t = "case_work_risk_changes"
    op.create_table(
        t,
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("from_level", sa.String(length=8), nullable=False),
        sa.Column("to_level", sa.String(length=8), nullable=False),
        sa.Column("actor_account_id", sa.BigInteger(), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        core.organization_column(),
        sa.CheckConstraint(f"from_level IN {RISK_LEVELS}", name=op.f(f"ck_{t}_from_level_valid")),
        sa.CheckConstraint(f"to_level IN {RISK_LEVELS}", name=op.f(f"ck_{t}_to_level_valid")),
        sa.CheckConstraint("from_level <> to_level", name=op.f(f"ck_{t}_a_change")),
        _case_fk(t),
        _account_fk(t, "actor_account_id"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
    )
    op.create_index("ix_case_work_risk_changes_case", t, ["case_id", "id"])
    core.own_table(op, t, inherit=[core.Inherit("case_work_cases", "case_id")])
    op.execute(GUARD_APPEND_ONLY)
    op.execute(
        f"CREATE TRIGGER case_work_append_only BEFORE UPDATE OR DELETE ON {t} "
        "FOR EACH ROW EXECUTE FUNCTION case_work_append_only()"
    )

    # -- transfers --------------------------------------------------------------------------------------------------
    t = "case_work_transfers"
    op.create_table(
        t,
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("from_account_id", sa.BigInteger(), nullable=False),
        sa.Column("to_account_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("proposed_by_account_id", sa.BigInteger(), nullable=False),
        sa.Column("proposed_by", sa.String(length=100), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("decided_by_account_id", sa.BigInteger(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.Text(), server_default="", nullable=False),
        core.organization_column(),
        sa.CheckConstraint(f"status IN {TRANSFER_STATUSES}", name=op.f(f"ck_{t}_status_valid")),
        sa.CheckConstraint("to_account_id <> from_account_id", name=op.f(f"ck_{t}_to_someone_else")),
        sa.CheckConstraint("proposed_by_account_id <> to_account_id", name=op.f(f"ck_{t}_not_self_transfer")),
        sa.CheckConstraint(
            "(status = 'pending') = (decided_at IS NULL)", name=op.f(f"ck_{t}_decided_when_not_pending")
        ),
        sa.CheckConstraint(
            "status NOT IN ('accepted', 'declined') OR decided_by_account_id = to_account_id",
            name=op.f(f"ck_{t}_decided_by_receiver"),
        ),
        sa.CheckConstraint("length(btrim(reason)) > 0", name=op.f(f"ck_{t}_reason_given")),
        _case_fk(t),
        _account_fk(t, "from_account_id"),
        _account_fk(t, "to_account_id"),
        _account_fk(t, "proposed_by_account_id"),
        _account_fk(t, "decided_by_account_id"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
    )
    op.create_index("ix_case_work_transfers_case", t, ["case_id", "id"])
    op.create_index("ix_case_work_transfers_to", t, ["to_account_id", "status"])
    op.create_index(
        "uq_case_work_transfers_pending", t, ["case_id"], unique=True, postgresql_where=sa.text("status = 'pending'")
    )
    # The receiver is an account of the case's organisation (another organisation's is not even visible).
    core.own_table(
        op,
        t,
        inherit=[core.Inherit("case_work_cases", "case_id"), core.Inherit("accounts", "to_account_id")],
    )
    op.execute(GUARD_TRANSFER)
    op.execute(
        f"CREATE TRIGGER case_work_transfer_guard BEFORE INSERT OR UPDATE OR DELETE ON {t} "
        "FOR EACH ROW EXECUTE FUNCTION case_work_transfer_guard()"
    )

    # -- organisation administrators open notes through the purpose path -------------------------------------------
    op.alter_column("case_work_note_accesses", "relation", type_=sa.String(length=24))
    op.drop_constraint(op.f("ck_case_work_note_accesses_relation_valid"), "case_work_note_accesses", type_="check")
    op.create_check_constraint(
        op.f("ck_case_work_note_accesses_relation_valid"),
        "case_work_note_accesses",
        "relation IN ('supervisor', 'platform_admin', 'organization_admin')",
    )

    # -- resealing append-only rows -----------------------------------------------------------------------------------
    op.execute(GUARD_OPEN_CASE)
    op.execute(GUARD_NOTE)
    bind.execute(sa.text("SELECT set_config('app.role', '', true)"))


def downgrade() -> None:
    bind = op.get_bind()
    bind.execute(sa.text("SELECT set_config('app.role', 'platform_admin', true)"))
    w001, w002 = _sibling("w001_case_work"), _sibling("w002_case_notes")
    op.execute(w001.GUARD_APPEND_ONLY)
    op.execute(w002.GUARD_OPEN_CASE)
    op.execute(w002.GUARD_NOTE)
    # The accesses' wider relation check stays: rows of organisation administrators are append-only history.
    op.drop_table("case_work_transfers")
    op.execute("DROP FUNCTION IF EXISTS case_work_transfer_guard()")
    op.drop_table("case_work_risk_changes")

    op.execute("DROP TRIGGER IF EXISTS tenant_0_resident_id ON case_work_clients")
    op.add_column("case_work_clients", sa.Column("name", sa.String(length=50), server_default="", nullable=False))
    op.add_column("case_work_clients", sa.Column("phone", sa.String(length=20), server_default="", nullable=False))
    op.add_column("case_work_clients", sa.Column("address", sa.Text(), server_default="", nullable=False))
    op.add_column("case_work_clients", sa.Column("community_id", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE case_work_clients c SET name = r.name, phone = r.phone, address = r.address, "
        "community_id = r.community_id FROM residents r WHERE r.id = c.resident_id"
    )
    op.alter_column("case_work_clients", "name", server_default=None)
    op.create_foreign_key(
        op.f("fk_case_work_clients_community_id_communities"),
        "case_work_clients",
        "communities",
        ["community_id"],
        ["id"],
    )
    op.execute(
        "CREATE TRIGGER tenant_0_community_id BEFORE INSERT OR UPDATE OF community_id, organization_id "
        "ON case_work_clients FOR EACH ROW EXECUTE FUNCTION tenant_inherit('communities', 'community_id')"
    )
    op.drop_column("case_work_clients", "resident_id")
    # The residents the upgrade made go with it, unless something else points at them now.
    op.execute(TAKE_BACK)
    bind.execute(sa.text("SELECT set_config('app.role', '', true)"))
