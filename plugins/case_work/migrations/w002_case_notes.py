"""case_work: progress notes (sealed text, revisions, void, purpose-of-access reads)

Revision ID: w002
Revises: w001
Create Date: 2026-12-02

Three organisation-owned tables under row-level security (core.own_table), each inheriting its
organisation from its case or note:

- `case_work_notes`: a progress note, its text sealed (AES-256-GCM, core.services.sealing; a CHECK refuses
  anything but sealed bytes). Never deleted; an edit bumps `revision` and must come with the revision row
  that keeps the previous version; a voided note changes no more.
- `case_work_note_revisions`: the previous versions (text sealed for the revision row), append-only.
- `case_work_note_accesses`: who opened a case's notes without being its social worker, and why
  (the purpose), append-only.

Triggers hold it in the database, whoever writes: no note is written, edited or voided while its case is
closed (as w001's trigger forbids changes to a closed case), nothing is deleted, revisions and accesses
are kept as written.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core
from core.services import sealing

revision: str = "w002"
down_revision: str | Sequence[str] | None = "w001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOTE_TYPES = "('home_visit', 'call', 'meeting', 'other')"

# A note (or a revision of one) is written only while its case is open: the same constraint name as w001's
# guard of the case, so that the service answers CASE_CLOSED for both.
GUARD_OPEN_CASE = """CREATE OR REPLACE FUNCTION case_work_note_case_open() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    note_case bigint;
BEGIN
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

# Notes are never deleted; an UPDATE is an edit (the previous version kept as revision OLD.revision) or a
# void (once, with a reason), and keeps what a note is about (case, author, creation) as written.
GUARD_NOTE = """CREATE OR REPLACE FUNCTION case_work_note_guard() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'case_work_notes rows are kept (void a note instead)'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_append_only';
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


def upgrade() -> None:
    op.create_table(
        "case_work_notes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("note_type", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("text_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("revision", sa.Integer(), server_default="0", nullable=False),
        sa.Column("author_account_id", sa.BigInteger(), nullable=False),
        sa.Column("author", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("edited_by_account_id", sa.BigInteger(), nullable=True),
        sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("voided_by_account_id", sa.BigInteger(), nullable=True),
        sa.Column("void_reason", sa.Text(), nullable=True),
        core.organization_column(),
        sa.CheckConstraint(f"note_type IN {NOTE_TYPES}", name=op.f("ck_case_work_notes_note_type_valid")),
        sa.CheckConstraint(sealing.sealed_check_sql("text_sealed"), name=op.f("ck_case_work_notes_text_sealed_sealed")),
        sa.CheckConstraint("revision >= 0", name=op.f("ck_case_work_notes_revision_not_negative")),
        sa.CheckConstraint(
            "(voided_at IS NULL) = (void_reason IS NULL) AND (voided_at IS NULL) = (voided_by_account_id IS NULL)",
            name=op.f("ck_case_work_notes_void_complete"),
        ),
        sa.CheckConstraint(
            "void_reason IS NULL OR length(btrim(void_reason)) > 0", name=op.f("ck_case_work_notes_void_reason_given")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case_work_cases.id"], name=op.f("fk_case_work_notes_case_id_case_work_cases")
        ),
        sa.ForeignKeyConstraint(
            ["author_account_id"], ["accounts.id"], name=op.f("fk_case_work_notes_author_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["edited_by_account_id"], ["accounts.id"], name=op.f("fk_case_work_notes_edited_by_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["voided_by_account_id"], ["accounts.id"], name=op.f("fk_case_work_notes_voided_by_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_work_notes")),
    )
    op.create_index("ix_case_work_notes_case", "case_work_notes", ["case_id", "occurred_at", "id"], unique=False)
    core.own_table(
        op,
        "case_work_notes",
        inherit=[core.Inherit("case_work_cases", "case_id"), core.Inherit("accounts", "author_account_id")],
    )

    op.create_table(
        "case_work_note_revisions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("note_id", sa.BigInteger(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("note_type", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("text_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("written_by_account_id", sa.BigInteger(), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replaced_by_account_id", sa.BigInteger(), nullable=False),
        sa.Column("replaced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        core.organization_column(),
        sa.CheckConstraint(f"note_type IN {NOTE_TYPES}", name=op.f("ck_case_work_note_revisions_note_type_valid")),
        sa.CheckConstraint(
            sealing.sealed_check_sql("text_sealed"), name=op.f("ck_case_work_note_revisions_text_sealed_sealed")
        ),
        sa.ForeignKeyConstraint(
            ["note_id"], ["case_work_notes.id"], name=op.f("fk_case_work_note_revisions_note_id_case_work_notes")
        ),
        sa.ForeignKeyConstraint(
            ["written_by_account_id"],
            ["accounts.id"],
            name=op.f("fk_case_work_note_revisions_written_by_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["replaced_by_account_id"],
            ["accounts.id"],
            name=op.f("fk_case_work_note_revisions_replaced_by_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_work_note_revisions")),
        sa.UniqueConstraint("note_id", "revision", name=op.f("uq_case_work_note_revisions_note_id_revision")),
    )
    core.own_table(op, "case_work_note_revisions", inherit=[core.Inherit("case_work_notes", "note_id")])

    op.create_table(
        "case_work_note_accesses",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("relation", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        core.organization_column(),
        sa.CheckConstraint(
            "relation IN ('supervisor', 'platform_admin')", name=op.f("ck_case_work_note_accesses_relation_valid")
        ),
        sa.CheckConstraint("length(btrim(purpose)) > 0", name=op.f("ck_case_work_note_accesses_purpose_given")),
        sa.CheckConstraint("expires_at > at", name=op.f("ck_case_work_note_accesses_expires_after")),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case_work_cases.id"], name=op.f("fk_case_work_note_accesses_case_id_case_work_cases")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_case_work_note_accesses_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_work_note_accesses")),
    )
    op.create_index(
        "ix_case_work_note_accesses_case", "case_work_note_accesses", ["case_id", "account_id", "expires_at"]
    )
    core.own_table(
        op,
        "case_work_note_accesses",
        inherit=[core.Inherit("case_work_cases", "case_id"), core.Inherit("accounts", "account_id")],
    )

    op.execute(GUARD_OPEN_CASE)
    op.execute(
        "CREATE TRIGGER case_work_note_case_open BEFORE INSERT OR UPDATE ON case_work_notes "
        "FOR EACH ROW EXECUTE FUNCTION case_work_note_case_open()"
    )
    op.execute(
        "CREATE TRIGGER case_work_note_case_open BEFORE INSERT ON case_work_note_revisions "
        "FOR EACH ROW EXECUTE FUNCTION case_work_note_case_open()"
    )
    op.execute(GUARD_NOTE)
    op.execute(
        "CREATE TRIGGER case_work_note_guard BEFORE UPDATE OR DELETE ON case_work_notes "
        "FOR EACH ROW EXECUTE FUNCTION case_work_note_guard()"
    )
    # w001's function: refuses every UPDATE and DELETE of a table other than approvals.
    for table in ("case_work_note_revisions", "case_work_note_accesses"):
        op.execute(
            f"CREATE TRIGGER case_work_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION case_work_append_only()"
        )


def downgrade() -> None:
    op.drop_table("case_work_note_accesses")
    op.drop_table("case_work_note_revisions")
    op.drop_table("case_work_notes")
    op.execute("DROP FUNCTION IF EXISTS case_work_note_guard()")
    op.execute("DROP FUNCTION IF EXISTS case_work_note_case_open()")
