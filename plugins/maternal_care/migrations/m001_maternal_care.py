"""maternal_care: mothers, pregnancies, their risk history and dating corrections (branch `maternal_care`,
after core 0012: residents)

Revision ID: m001
Revises:
Create Date: 2026-11-30

Every table belongs to one organisation under row-level security (core.own_table): a mother inherits hers
from her resident record (and her social worker's account must be of it); a pregnancy, a risk change and a
dating correction from their parents.

The database holds the risk history as casework's w009 holds a case's: `maternal_care_pregnancies.risk_seq`
counts a pregnancy's risk changes and `maternal_care_risk_changes.seq` numbers them 1..n. A pregnancy is
inserted green, not infectious, with no responsible and `risk_seq` 0 (its first grade is change 1); its grade
(colour, infectious flag, responsible) changes only with `risk_seq` = old + 1 and the history row of that
number from the old grade to the new one; a history row is the next change from the grade the pregnancy has;
at commit every row has been taken up. History and dating corrections are append-only. Every refusal is
`maternal_care_risk_recorded` or `maternal_care_append_only`: the services write what the guards expect, so
these are internal guards, not user errors.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core

revision: str = "m001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("maternal_care",)
depends_on: str | Sequence[str] | None = "0012"

PIN = "SET search_path = pg_catalog, public, pg_temp"
COLOURS = "('green', 'yellow', 'orange', 'red')"
HIGH_RISK_HAS_RESPONSIBLE = (
    "responsible_account_id IS NOT NULL OR (risk_colour IN ('green', 'yellow') AND NOT infectious)"
)

GUARD_PREGNANCY = f"""CREATE OR REPLACE FUNCTION maternal_care_risk_guard_pregnancy() RETURNS trigger
LANGUAGE plpgsql {PIN} AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.risk_seq <> 0 OR NEW.risk_colour <> 'green' OR NEW.infectious
            OR NEW.responsible_account_id IS NOT NULL THEN
            RAISE EXCEPTION 'a pregnancy is registered ungraded: its first grade is risk change 1'
                USING ERRCODE = 'check_violation', CONSTRAINT = 'maternal_care_risk_recorded';
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.risk_colour IS NOT DISTINCT FROM OLD.risk_colour AND NEW.infectious IS NOT DISTINCT FROM OLD.infectious
        AND NEW.responsible_account_id IS NOT DISTINCT FROM OLD.responsible_account_id THEN
        IF NEW.risk_seq IS DISTINCT FROM OLD.risk_seq THEN
            RAISE EXCEPTION 'pregnancy %: risk_seq changes only with the grade', OLD.id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'maternal_care_risk_recorded';
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.risk_seq IS DISTINCT FROM OLD.risk_seq + 1 OR NOT EXISTS (
        SELECT FROM maternal_care_risk_changes r
        WHERE r.pregnancy_id = OLD.id AND r.seq = NEW.risk_seq
            AND r.from_colour = OLD.risk_colour AND r.from_infectious = OLD.infectious
            AND r.to_colour = NEW.risk_colour AND r.to_infectious = NEW.infectious
            AND r.responsible_account_id IS NOT DISTINCT FROM NEW.responsible_account_id
    ) THEN
        RAISE EXCEPTION 'pregnancy %: risk % -> % has no history row', OLD.id, OLD.risk_colour, NEW.risk_colour
            USING ERRCODE = 'check_violation', CONSTRAINT = 'maternal_care_risk_recorded';
    END IF;
    RETURN NEW;
END $$"""

# Read with the writer's rights: another organisation's pregnancy is not there, and the row is refused.
GUARD_CHANGE = f"""CREATE OR REPLACE FUNCTION maternal_care_risk_guard_change() RETURNS trigger
LANGUAGE plpgsql {PIN} AS $$
DECLARE
    p record;
BEGIN
    SELECT id, risk_colour, infectious, risk_seq INTO p FROM maternal_care_pregnancies WHERE id = NEW.pregnancy_id;
    IF NOT FOUND OR NEW.seq IS DISTINCT FROM p.risk_seq + 1 OR NEW.from_colour IS DISTINCT FROM p.risk_colour
        OR NEW.from_infectious IS DISTINCT FROM p.infectious THEN
        RAISE EXCEPTION 'pregnancy %: risk history row % is not the next change', NEW.pregnancy_id, NEW.seq
            USING ERRCODE = 'check_violation', CONSTRAINT = 'maternal_care_risk_recorded';
    END IF;
    RETURN NEW;
END $$"""

# At commit, whatever the caller's settings are then (as w009's): one pregnancy read by id, nothing answered
# but a refusal.
CONSUMED = f"""CREATE OR REPLACE FUNCTION maternal_care_risk_consumed() RETURNS trigger LANGUAGE plpgsql
SET app.role = 'platform_admin' {PIN} AS $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM maternal_care_pregnancies p WHERE p.id = NEW.pregnancy_id AND p.risk_seq >= NEW.seq
    ) THEN
        RAISE EXCEPTION 'pregnancy %: risk history row % was written and the pregnancy did not change',
            NEW.pregnancy_id, NEW.seq
            USING ERRCODE = 'check_violation', CONSTRAINT = 'maternal_care_risk_recorded';
    END IF;
    RETURN NULL;
END $$"""

APPEND_ONLY = f"""CREATE OR REPLACE FUNCTION maternal_care_append_only() RETURNS trigger LANGUAGE plpgsql {PIN} AS $$
BEGIN
    RAISE EXCEPTION '% rows are kept as written', TG_TABLE_NAME
        USING ERRCODE = 'check_violation', CONSTRAINT = 'maternal_care_append_only';
END $$"""


def _account_fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["accounts.id"], name=op.f(f"fk_{table}_{column}_accounts"))


def upgrade() -> None:
    t = "maternal_care_mothers"
    op.create_table(
        t,
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("resident_id", sa.BigInteger(), nullable=False),
        sa.Column("community_id", sa.BigInteger(), nullable=True),
        sa.Column("social_worker_account_id", sa.BigInteger(), nullable=True),
        sa.Column("registered_by_account_id", sa.BigInteger(), nullable=True),
        sa.Column("consent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consent_note", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        core.organization_column(),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"], name=op.f(f"fk_{t}_resident_id_residents")),
        sa.ForeignKeyConstraint(["community_id"], ["communities.id"], name=op.f(f"fk_{t}_community_id_communities")),
        _account_fk(t, "social_worker_account_id"),
        _account_fk(t, "registered_by_account_id"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        # A resident belongs to one organisation, so this key names no other organisation's row.
        sa.UniqueConstraint("resident_id", name=op.f(f"uq_{t}_resident_id")),
    )
    # The resident fills the organisation in; the community and the social worker must be of it.
    core.own_table(
        op,
        t,
        inherit=[
            core.Inherit("residents", "resident_id"),
            core.Inherit("communities", "community_id"),
            core.Inherit("accounts", "social_worker_account_id"),
        ],
    )

    t = "maternal_care_pregnancies"
    op.create_table(
        t,
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("mother_id", sa.BigInteger(), nullable=False),
        sa.Column("lmp", sa.Date(), nullable=False),
        sa.Column("edd", sa.Date(), nullable=False),
        sa.Column("dating_basis", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="ongoing", nullable=False),
        sa.Column("outcome_on", sa.Date(), nullable=True),
        sa.Column("outcome_note", sa.Text(), server_default="", nullable=False),
        sa.Column("discharged_on", sa.Date(), nullable=True),
        sa.Column("risk_colour", sa.String(length=8), server_default="green", nullable=False),
        sa.Column("infectious", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("risk_seq", sa.Integer(), server_default="0", nullable=False),
        sa.Column("responsible_account_id", sa.BigInteger(), nullable=True),
        sa.Column("created_by_account_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        core.organization_column(),
        sa.CheckConstraint("status IN ('ongoing', 'delivered', 'loss')", name=op.f(f"ck_{t}_status_valid")),
        sa.CheckConstraint("dating_basis IN ('lmp', 'edd')", name=op.f(f"ck_{t}_dating_basis_valid")),
        sa.CheckConstraint(f"risk_colour IN {COLOURS}", name=op.f(f"ck_{t}_risk_colour_valid")),
        sa.CheckConstraint("edd = lmp + 280", name=op.f(f"ck_{t}_edd_from_lmp")),
        sa.CheckConstraint("(status = 'ongoing') = (outcome_on IS NULL)", name=op.f(f"ck_{t}_outcome_dated")),
        sa.CheckConstraint("outcome_on IS NULL OR outcome_on >= lmp", name=op.f(f"ck_{t}_outcome_after_lmp")),
        sa.CheckConstraint(
            "discharged_on IS NULL OR (status = 'delivered' AND discharged_on >= outcome_on)",
            name=op.f(f"ck_{t}_discharge_after"),
        ),
        sa.CheckConstraint(HIGH_RISK_HAS_RESPONSIBLE, name=op.f(f"ck_{t}_high_risk_has_responsible")),
        sa.ForeignKeyConstraint(
            ["mother_id"], ["maternal_care_mothers.id"], name=op.f(f"fk_{t}_mother_id_maternal_care_mothers")
        ),
        _account_fk(t, "responsible_account_id"),
        _account_fk(t, "created_by_account_id"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
    )
    op.create_index(op.f(f"ix_{t}_mother_id"), t, ["mother_id"], unique=False)
    op.create_index(
        "uq_maternal_care_pregnancies_one_ongoing",
        t,
        ["mother_id"],
        unique=True,
        postgresql_where=sa.text("status = 'ongoing'"),
    )
    core.own_table(
        op,
        t,
        inherit=[
            core.Inherit("maternal_care_mothers", "mother_id"),
            core.Inherit("accounts", "responsible_account_id"),
        ],
    )

    t = "maternal_care_risk_changes"
    op.create_table(
        t,
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("pregnancy_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("from_colour", sa.String(length=8), nullable=False),
        sa.Column("from_infectious", sa.Boolean(), nullable=False),
        sa.Column("to_colour", sa.String(length=8), nullable=False),
        sa.Column("to_infectious", sa.Boolean(), nullable=False),
        sa.Column("responsible_account_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_account_id", sa.BigInteger(), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        core.organization_column(),
        sa.CheckConstraint(f"from_colour IN {COLOURS}", name=op.f(f"ck_{t}_from_colour_valid")),
        sa.CheckConstraint(f"to_colour IN {COLOURS}", name=op.f(f"ck_{t}_to_colour_valid")),
        sa.CheckConstraint("seq >= 1", name=op.f(f"ck_{t}_seq_positive")),
        sa.CheckConstraint(
            "responsible_account_id IS NOT NULL OR (to_colour IN ('green', 'yellow') AND NOT to_infectious)",
            name=op.f(f"ck_{t}_high_risk_has_responsible"),
        ),
        sa.ForeignKeyConstraint(
            ["pregnancy_id"],
            ["maternal_care_pregnancies.id"],
            name=op.f(f"fk_{t}_pregnancy_id_maternal_care_pregnancies"),
        ),
        _account_fk(t, "responsible_account_id"),
        _account_fk(t, "actor_account_id"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("pregnancy_id", "seq", name=op.f(f"uq_{t}_pregnancy_id_seq")),
    )
    op.create_index("ix_maternal_care_risk_changes_pregnancy", t, ["pregnancy_id", "seq"], unique=False)
    core.own_table(
        op,
        t,
        inherit=[
            core.Inherit("maternal_care_pregnancies", "pregnancy_id"),
            core.Inherit("accounts", "responsible_account_id"),
        ],
    )

    t = "maternal_care_dating_corrections"
    op.create_table(
        t,
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("pregnancy_id", sa.BigInteger(), nullable=False),
        sa.Column("from_lmp", sa.Date(), nullable=False),
        sa.Column("to_lmp", sa.Date(), nullable=False),
        sa.Column("basis", sa.String(length=8), nullable=False),
        sa.Column("actor_account_id", sa.BigInteger(), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        core.organization_column(),
        sa.CheckConstraint("basis IN ('lmp', 'edd')", name=op.f(f"ck_{t}_basis_valid")),
        sa.CheckConstraint("from_lmp <> to_lmp", name=op.f(f"ck_{t}_a_change")),
        sa.ForeignKeyConstraint(
            ["pregnancy_id"],
            ["maternal_care_pregnancies.id"],
            name=op.f(f"fk_{t}_pregnancy_id_maternal_care_pregnancies"),
        ),
        _account_fk(t, "actor_account_id"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
    )
    op.create_index("ix_maternal_care_dating_corrections_pregnancy", t, ["pregnancy_id", "id"], unique=False)
    core.own_table(op, t, inherit=[core.Inherit("maternal_care_pregnancies", "pregnancy_id")])

    op.execute(GUARD_PREGNANCY)
    op.execute(
        "CREATE TRIGGER maternal_care_risk_guard BEFORE INSERT OR UPDATE ON maternal_care_pregnancies "
        "FOR EACH ROW EXECUTE FUNCTION maternal_care_risk_guard_pregnancy()"
    )
    op.execute(GUARD_CHANGE)
    op.execute(
        "CREATE TRIGGER maternal_care_risk_guard BEFORE INSERT ON maternal_care_risk_changes "
        "FOR EACH ROW EXECUTE FUNCTION maternal_care_risk_guard_change()"
    )
    op.execute(CONSUMED)
    op.execute(
        "CREATE CONSTRAINT TRIGGER maternal_care_risk_consumed AFTER INSERT ON maternal_care_risk_changes "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION maternal_care_risk_consumed()"
    )
    op.execute(APPEND_ONLY)
    for table in ("maternal_care_risk_changes", "maternal_care_dating_corrections"):
        op.execute(
            f"CREATE TRIGGER maternal_care_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION maternal_care_append_only()"
        )


def downgrade() -> None:
    op.drop_table("maternal_care_dating_corrections")
    op.drop_table("maternal_care_risk_changes")
    op.drop_table("maternal_care_pregnancies")
    op.drop_table("maternal_care_mothers")
    for function in (
        "maternal_care_append_only",
        "maternal_care_risk_consumed",
        "maternal_care_risk_guard_change",
        "maternal_care_risk_guard_pregnancy",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS {function}()")
