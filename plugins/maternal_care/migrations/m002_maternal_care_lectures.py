"""maternal_care: lectures, registrations with a FIFO waitlist (branch `maternal_care`, after m001)

Revision ID: m002
Revises: m001

Two organisation-owned tables under row-level security (core.own_table):
- `maternal_care_lectures`: title, speaker, start/end (end after start), online link or place, capacity,
  target audience (a non-empty subset of trimester_1..3, postpartum), status. `registered_count` is kept by
  the registrations' trigger and held within `capacity` by a CHECK: it is the database, not a lock, that
  refuses a seat past capacity (the services try the seat and fall back to the waitlist on that CHECK).
- `maternal_care_lecture_registrations`: a mother and a lecture of the same organisation; one live
  (registered or waitlisted) registration per pair (partial unique index); the waitlist is FIFO by `id`
  (an identity). A guard lets a row move only waitlisted → registered and registered|waitlisted →
  cancelled, keeps who/what it is about, records attendance only on a seat; nothing is deleted.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import core

revision: str = "m002"
down_revision: str | Sequence[str] | None = "m001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PIN = "SET search_path = pg_catalog, public, pg_temp"
AUDIENCES = "ARRAY['trimester_1', 'trimester_2', 'trimester_3', 'postpartum']::varchar[]"

# The seat counter: a seat taken adds one, a seat freed takes one. Its UPDATE locks the lecture's row, so
# concurrent seat-takers queue there and each sees the count the one before left; the CHECK
# ck_maternal_care_lectures_within_capacity refuses the one that would overfill the lecture.
COUNT = f"""CREATE OR REPLACE FUNCTION maternal_care_lecture_count() RETURNS trigger LANGUAGE plpgsql {PIN} AS $$
DECLARE
    delta integer := (NEW.status = 'registered')::integer;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        delta := delta - (OLD.status = 'registered')::integer;
    END IF;
    IF delta <> 0 THEN
        UPDATE maternal_care_lectures SET registered_count = registered_count + delta WHERE id = NEW.lecture_id;
        -- Row-level security would filter the lecture's row silently: never let the count drift.
        IF NOT FOUND THEN
            RAISE EXCEPTION 'lecture % is not visible', NEW.lecture_id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'maternal_care_lecture_count';
        END IF;
    END IF;
    RETURN NULL;
END $$"""

# What a registration may become: waitlisted → registered (promoted), registered | waitlisted → cancelled
# (once); attendance only on a seat. Whom and what it is about never change; rows are kept.
GUARD = f"""CREATE OR REPLACE FUNCTION maternal_care_registration_guard() RETURNS trigger LANGUAGE plpgsql {PIN} AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'registrations are kept'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'maternal_care_registration_kept';
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NEW.status NOT IN ('registered', 'waitlisted') OR NEW.attendance IS NOT NULL THEN
            RAISE EXCEPTION 'a registration starts registered or waitlisted'
                USING ERRCODE = 'check_violation', CONSTRAINT = 'maternal_care_registration_transition';
        END IF;
        IF EXISTS (SELECT FROM maternal_care_lectures l WHERE l.id = NEW.lecture_id AND l.status = 'cancelled') THEN
            RAISE EXCEPTION 'lecture % is cancelled', NEW.lecture_id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'maternal_care_lecture_cancelled';
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.id <> OLD.id OR NEW.lecture_id <> OLD.lecture_id OR NEW.mother_id <> OLD.mother_id
        OR NEW.created_at <> OLD.created_at OR NEW.organization_id <> OLD.organization_id THEN
        RAISE EXCEPTION 'a registration stays about its mother and lecture'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'maternal_care_registration_kept';
    END IF;
    IF NEW.status <> OLD.status AND NOT (
        (OLD.status = 'waitlisted' AND NEW.status IN ('registered', 'cancelled'))
        OR (OLD.status = 'registered' AND NEW.status = 'cancelled')
    ) THEN
        RAISE EXCEPTION 'registration %: % -> % is not allowed', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'maternal_care_registration_transition';
    END IF;
    RETURN NEW;
END $$"""


def _id() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False)


def _at(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)


def _fk(table: str, column: str, parent: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{parent}.id"], name=op.f(f"fk_{table}_{column}_{parent}"))


def upgrade() -> None:
    t = "maternal_care_lectures"
    op.create_table(
        t,
        _id(),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("speaker", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("online_url", sa.String(length=500), server_default="", nullable=False),
        sa.Column("place", sa.String(length=200), server_default="", nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("registered_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("audience", postgresql.ARRAY(sa.String(length=16)), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="scheduled", nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.Text(), server_default="", nullable=False),
        sa.Column("created_by_account_id", sa.BigInteger(), nullable=False),
        _at("created_at"),
        core.organization_column(),
        sa.CheckConstraint("ends_at > starts_at", name=op.f(f"ck_{t}_ends_after_start")),
        sa.CheckConstraint("online_url <> '' OR place <> ''", name=op.f(f"ck_{t}_link_or_place")),
        sa.CheckConstraint("capacity BETWEEN 1 AND 500", name=op.f(f"ck_{t}_capacity_valid")),
        sa.CheckConstraint(
            "registered_count >= 0 AND registered_count <= capacity", name=op.f(f"ck_{t}_within_capacity")
        ),
        sa.CheckConstraint(
            f"cardinality(audience) > 0 AND audience <@ {AUDIENCES}", name=op.f(f"ck_{t}_audience_valid")
        ),
        sa.CheckConstraint("status IN ('scheduled', 'cancelled')", name=op.f(f"ck_{t}_status_valid")),
        sa.CheckConstraint(
            "(status = 'cancelled') = (cancelled_at IS NOT NULL)", name=op.f(f"ck_{t}_cancelled_when_cancelled")
        ),
        _fk(t, "created_by_account_id", "accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
    )
    op.create_index("ix_maternal_care_lectures_starts_at", t, ["starts_at", "id"], unique=False)
    core.own_table(op, t, inherit=[core.Inherit("accounts", "created_by_account_id")])

    t = "maternal_care_lecture_registrations"
    op.create_table(
        t,
        _id(),
        sa.Column("lecture_id", sa.BigInteger(), nullable=False),
        sa.Column("mother_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("registered_by_account_id", sa.BigInteger(), nullable=False),
        _at("created_at"),
        sa.Column("promoted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_by_account_id", sa.BigInteger(), nullable=True),
        sa.Column("cancel_reason", sa.Text(), server_default="", nullable=False),
        sa.Column("attendance", sa.String(length=8), nullable=True),
        sa.Column("attendance_recorded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attendance_recorded_by_account_id", sa.BigInteger(), nullable=True),
        core.organization_column(),
        sa.CheckConstraint("status IN ('registered', 'waitlisted', 'cancelled')", name=op.f(f"ck_{t}_status_valid")),
        sa.CheckConstraint(
            "attendance IS NULL OR attendance IN ('present', 'absent')", name=op.f(f"ck_{t}_attendance_valid")
        ),
        sa.CheckConstraint("attendance IS NULL OR status = 'registered'", name=op.f(f"ck_{t}_attendance_of_a_seat")),
        sa.CheckConstraint(
            "(status = 'cancelled') = (cancelled_at IS NOT NULL)", name=op.f(f"ck_{t}_cancelled_when_cancelled")
        ),
        _fk(t, "lecture_id", "maternal_care_lectures"),
        _fk(t, "mother_id", "maternal_care_mothers"),
        _fk(t, "registered_by_account_id", "accounts"),
        _fk(t, "cancelled_by_account_id", "accounts"),
        _fk(t, "attendance_recorded_by_account_id", "accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
    )
    op.create_index(
        "uq_maternal_care_lecture_registrations_live",
        t,
        ["lecture_id", "mother_id"],
        unique=True,
        postgresql_where=sa.text("status <> 'cancelled'"),
    )
    op.create_index("ix_maternal_care_lecture_registrations_lecture", t, ["lecture_id", "status", "id"])
    op.create_index("ix_maternal_care_lecture_registrations_mother", t, ["mother_id", "id"])
    # The lecture and the mother must be of one organisation (the other's rows are not even visible).
    core.own_table(
        op,
        t,
        inherit=[
            core.Inherit("maternal_care_lectures", "lecture_id"),
            core.Inherit("maternal_care_mothers", "mother_id"),
        ],
    )

    op.execute(GUARD)
    op.execute(
        f"CREATE TRIGGER maternal_care_registration_guard BEFORE INSERT OR UPDATE OR DELETE ON {t} "
        "FOR EACH ROW EXECUTE FUNCTION maternal_care_registration_guard()"
    )
    op.execute(COUNT)
    op.execute(
        f"CREATE TRIGGER maternal_care_lecture_count AFTER INSERT OR UPDATE OF status ON {t} "
        "FOR EACH ROW EXECUTE FUNCTION maternal_care_lecture_count()"
    )
    op.execute(
        "CREATE OR REPLACE FUNCTION maternal_care_lecture_kept() RETURNS trigger LANGUAGE plpgsql "
        f"{PIN} AS $$ BEGIN RAISE EXCEPTION 'lectures are kept' "
        "USING ERRCODE = 'check_violation', CONSTRAINT = 'maternal_care_lecture_kept'; END $$"
    )
    op.execute(
        "CREATE TRIGGER maternal_care_lecture_kept BEFORE DELETE ON maternal_care_lectures "
        "FOR EACH ROW EXECUTE FUNCTION maternal_care_lecture_kept()"
    )


def downgrade() -> None:
    op.drop_table("maternal_care_lecture_registrations")
    op.drop_table("maternal_care_lectures")
    for function in (
        "maternal_care_lecture_count()",
        "maternal_care_registration_guard()",
        "maternal_care_lecture_kept()",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
