"""case_work: a group changes hands -- facilitator changes recorded, sessions handed to the new facilitator

Revision ID: w010
Revises: w009

Groups were fixed at creation; running groups need their facilitator changed (sick leave, a worker leaving).
- `case_work_group_facilitator_changes` (append-only, organisation-owned): every change of a group's facilitator
  or co-facilitator -- from whom, to whom, who changed it, when, why (a reason is required). Its `seq` counts a
  group's changes from 1; `case_work_groups.facilitator_seq` is the last one's.
- The group's guard lets its facilitator or co-facilitator change only with that record: `facilitator_seq`
  moves by one and the change row of that seq names exactly the old and the new people (as a stage step needs
  its history row). A facilitator change row is the group's next one, from the people it has then. An ended
  group takes none (the child guard, as for its other rows).
- A session may be handed over while scheduled: its appointment and facilitator change (to the group's
  facilitator, nothing else of it), so that the sessions still ahead move to the new facilitator's calendar.
  Cancelling stays as it was.
Capacity, purpose and goals of a running group could already change (the CHECK keeps capacity within 2..100
and not below the participants); nothing here changes that.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

import core

revision: str = "w010"
down_revision: str | Sequence[str] | None = "w009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PIN = "SET search_path = pg_catalog, public, pg_temp"
TABLE = "case_work_group_facilitator_changes"


def _sibling(name: str) -> ModuleType:
    """An earlier migration of this branch (its reseal condition; the downgrade puts its functions back)."""
    spec = importlib.util.spec_from_file_location(f"case_work_{name}", Path(__file__).parent / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


W005 = _sibling("w005_case_groups")

# w005's guard, and: a group starts with no facilitator change; its facilitators change only with their record.
GUARD_GROUP = f"""CREATE OR REPLACE FUNCTION case_work_group_guard() RETURNS trigger LANGUAGE plpgsql {PIN} AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF {W005._resealing("case_work_groups", "closing_summary_sealed")} THEN
            RETURN NEW;
        END IF;
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NEW.stage <> 'preparation' OR NEW.stage_seq <> 0 OR NEW.participant_count <> 0 THEN
            RAISE EXCEPTION 'a group starts in preparation, empty'
                USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_group_stage_recorded';
        END IF;
        IF NEW.facilitator_seq <> 0 THEN
            RAISE EXCEPTION 'a group starts with its first facilitators'
                USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_group_facilitators_recorded';
        END IF;
        RETURN NEW;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'groups are kept' USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_group_kept';
    END IF;
    IF OLD.stage = 'ending' THEN
        RAISE EXCEPTION 'group % has ended', OLD.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_group_ended';
    END IF;
    IF NEW.facilitator_account_id IS DISTINCT FROM OLD.facilitator_account_id
        OR NEW.co_facilitator_account_id IS DISTINCT FROM OLD.co_facilitator_account_id
        OR NEW.facilitator_seq IS DISTINCT FROM OLD.facilitator_seq THEN
        IF NEW.facilitator_seq <> OLD.facilitator_seq + 1 OR NOT EXISTS (
            SELECT FROM {TABLE} c
            WHERE c.group_id = OLD.id AND c.seq = NEW.facilitator_seq
                AND c.from_facilitator_account_id = OLD.facilitator_account_id
                AND c.to_facilitator_account_id = NEW.facilitator_account_id
                AND c.from_co_facilitator_account_id IS NOT DISTINCT FROM OLD.co_facilitator_account_id
                AND c.to_co_facilitator_account_id IS NOT DISTINCT FROM NEW.co_facilitator_account_id
        ) THEN
            RAISE EXCEPTION 'group %: its facilitators change with a recorded change', OLD.id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_group_facilitators_recorded';
        END IF;
    END IF;
    IF NEW.stage IS NOT DISTINCT FROM OLD.stage THEN
        IF NEW.stage_seq <> OLD.stage_seq THEN
            RAISE EXCEPTION 'group %: stage_seq changes only with the stage', OLD.id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_group_stage_recorded';
        END IF;
        RETURN NEW;
    END IF;
    IF NOT case_work_group_is_step(OLD.stage, NEW.stage) THEN
        RAISE EXCEPTION 'group %: % -> % is not a step of the group stages', OLD.id, OLD.stage, NEW.stage
            USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_group_stage_transition';
    END IF;
    IF NEW.stage_seq <> OLD.stage_seq + 1 OR NOT EXISTS (
        SELECT FROM case_work_group_stage_changes h
        WHERE h.group_id = OLD.id AND h.seq = NEW.stage_seq AND h.from_stage = OLD.stage AND h.to_stage = NEW.stage
    ) THEN
        RAISE EXCEPTION 'group %: % -> % has no history row', OLD.id, OLD.stage, NEW.stage
            USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_group_stage_recorded';
    END IF;
    RETURN NEW;
END $$"""

# w005's guard of a group's rows, and: a scheduled session may be handed to the group's facilitator (a new
# appointment, nothing else of it changed); a facilitator change row is the group's next, from its people then.
GUARD_CHILD = f"""CREATE OR REPLACE FUNCTION case_work_group_child_guard() RETURNS trigger LANGUAGE plpgsql {PIN} AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION '% rows are kept', TG_TABLE_NAME
            USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_group_kept';
    END IF;
    -- Nested: only a note has a `text_sealed` to read.
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'case_work_group_notes' THEN
        IF {W005._resealing("case_work_group_notes", "text_sealed")} THEN
            RETURN NEW;
        END IF;
    END IF;
    IF EXISTS (SELECT FROM case_work_groups g WHERE g.id = NEW.group_id AND g.stage = 'ending') THEN
        RAISE EXCEPTION 'group % has ended', NEW.group_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_group_ended';
    END IF;
    IF TG_OP = 'UPDATE' THEN
        -- Nested IFs: a row of another table has none of these columns to read.
        IF TG_TABLE_NAME = 'case_work_group_participants' THEN
            IF OLD.left_at IS NULL AND NEW.left_at IS NOT NULL AND NEW.id = OLD.id AND NEW.group_id = OLD.group_id
                AND NEW.client_id = OLD.client_id AND NEW.joined_at = OLD.joined_at THEN
                RETURN NEW;
            END IF;
        ELSIF TG_TABLE_NAME = 'case_work_group_sessions' THEN
            IF OLD.status = 'scheduled' AND NEW.status = 'cancelled' AND NEW.id = OLD.id
                AND NEW.group_id = OLD.group_id AND NEW.appointment_id = OLD.appointment_id THEN
                RETURN NEW;
            END IF;
            IF OLD.status = 'scheduled' AND NEW.status = 'scheduled' AND NEW.id = OLD.id
                AND NEW.group_id = OLD.group_id AND NEW.topic = OLD.topic AND NEW.created_at = OLD.created_at
                AND NEW.cancel_reason = OLD.cancel_reason
                AND NEW.facilitator_account_id = (
                    SELECT g.facilitator_account_id FROM case_work_groups g WHERE g.id = NEW.group_id
                ) THEN
                RETURN NEW;
            END IF;
        ELSIF TG_TABLE_NAME = 'case_work_group_attendance' THEN
            IF NEW.id = OLD.id AND NEW.session_id = OLD.session_id AND NEW.participant_id = OLD.participant_id THEN
                RETURN NEW;
            END IF;
        END IF;
        RAISE EXCEPTION '% rows are kept as written', TG_TABLE_NAME
            USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_group_kept';
    END IF;
    IF TG_TABLE_NAME = 'case_work_group_stage_changes' THEN
        IF NEW.seq > 0 AND NOT EXISTS (
            SELECT FROM case_work_groups g WHERE g.id = NEW.group_id AND g.stage_seq + 1 = NEW.seq
                AND g.stage = NEW.from_stage
        ) THEN
            RAISE EXCEPTION 'group %: history row % is not the next step', NEW.group_id, NEW.seq
                USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_group_stage_recorded';
        END IF;
    ELSIF TG_TABLE_NAME = '{TABLE}' THEN
        IF NOT EXISTS (
            SELECT FROM case_work_groups g WHERE g.id = NEW.group_id AND g.facilitator_seq + 1 = NEW.seq
                AND g.facilitator_account_id = NEW.from_facilitator_account_id
                AND g.co_facilitator_account_id IS NOT DISTINCT FROM NEW.from_co_facilitator_account_id
        ) THEN
            RAISE EXCEPTION 'group %: facilitator change % is not the next one', NEW.group_id, NEW.seq
                USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_group_facilitators_recorded';
        END IF;
    END IF;
    RETURN NEW;
END $$"""


def _fk(column: str, parent: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{parent}.id"], name=op.f(f"fk_{TABLE}_{column}_{parent}"))


def upgrade() -> None:
    op.add_column("case_work_groups", sa.Column("facilitator_seq", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        TABLE,
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("group_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("from_facilitator_account_id", sa.BigInteger(), nullable=False),
        sa.Column("to_facilitator_account_id", sa.BigInteger(), nullable=False),
        sa.Column("from_co_facilitator_account_id", sa.BigInteger(), nullable=True),
        sa.Column("to_co_facilitator_account_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_account_id", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        core.organization_column(),
        sa.CheckConstraint("seq > 0", name=op.f(f"ck_{TABLE}_seq_positive")),
        sa.CheckConstraint("length(btrim(reason)) > 0", name=op.f(f"ck_{TABLE}_reason_given")),
        sa.CheckConstraint(
            "(from_facilitator_account_id, from_co_facilitator_account_id) IS DISTINCT FROM "
            "(to_facilitator_account_id, to_co_facilitator_account_id)",
            name=op.f(f"ck_{TABLE}_changes_someone"),
        ),
        sa.CheckConstraint(
            "to_co_facilitator_account_id <> to_facilitator_account_id", name=op.f(f"ck_{TABLE}_two_facilitators")
        ),
        _fk("group_id", "case_work_groups"),
        _fk("from_facilitator_account_id", "accounts"),
        _fk("to_facilitator_account_id", "accounts"),
        _fk("from_co_facilitator_account_id", "accounts"),
        _fk("to_co_facilitator_account_id", "accounts"),
        _fk("actor_account_id", "accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{TABLE}")),
        sa.UniqueConstraint("group_id", "seq", name=op.f(f"uq_{TABLE}_group_id_seq")),
    )
    # The group gives the organisation; the people it names and who acted must be of the same one.
    core.own_table(
        op,
        TABLE,
        inherit=[
            core.Inherit("case_work_groups", "group_id"),
            core.Inherit("accounts", "to_facilitator_account_id"),
            core.Inherit("accounts", "to_co_facilitator_account_id"),
            core.Inherit("accounts", "actor_account_id"),
        ],
    )
    op.execute(GUARD_GROUP)
    op.execute(GUARD_CHILD)
    op.execute(
        f"CREATE TRIGGER case_work_group_child_guard BEFORE INSERT OR UPDATE OR DELETE ON {TABLE} "
        "FOR EACH ROW EXECUTE FUNCTION case_work_group_child_guard()"
    )


def downgrade() -> None:
    # Changes already made stay made (the groups keep their current facilitators); their record goes.
    op.drop_table(TABLE)
    op.execute(W005.GUARD_GROUP)
    op.execute(W005.GUARD_CHILD)
    op.drop_column("case_work_groups", "facilitator_seq")
