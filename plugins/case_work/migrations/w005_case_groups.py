"""case_work: group work (小组工作, MZ/T 095-2017)

Revision ID: w005
Revises: w004

Six organisation-owned tables under row-level security (core.own_table), each inheriting its organisation
from its parents (accounts, clients, appointments of another organisation are refused):
- `case_work_groups`: purpose, goals, category, facilitator (co-facilitator), supervisor, capacity, stage.
  The stage graph is an immutable SQL function (`case_work_group_stage_graph()`, the same rows as
  groups/services.TRANSITIONS); a trigger lets the stage change only along it, one step at a time, after its
  history row. `participant_count` is kept by the participants' trigger and held within `capacity` by a CHECK:
  concurrent joins serialise on the group's row and the one over capacity is refused. Ending (结束) needs
  the closing summary (sealed); an ended group changes no more.
- `case_work_group_stage_changes`: append-only history.
- `case_work_group_participants`: clients of the organisation; leaving sets `left_at` and a reason, once.
- `case_work_group_sessions`: an appointment of the facilitator on core's calendar each; cancelled with a reason.
- `case_work_group_attendance`: a session and a participant of the same group (composite foreign keys).
- `case_work_group_notes`: outcome notes per session, sealed text, append-only.
Nothing of an ended group is written (`case_work_group_ended`, answered GROUP_ENDED); nothing is deleted.
Both sealed columns (a note's text, the closing summary) let `yunshegong reseal` move a value to the current
key and change nothing else (`app.resealing`, as w006 does for case notes).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core
from core.services import sealing

revision: str = "w005"
down_revision: str | Sequence[str] | None = "w004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STAGES = "('preparation', 'formation', 'transition', 'maturity', 'ending')"
CATEGORIES = "('elderly_care', 'disability', 'mental_health', 'maternal', 'poverty', 'child_protection', 'other')"
PIN = "SET search_path = pg_catalog, public, pg_temp"

# (from, to, kind): the same rows as groups/services.TRANSITIONS (a test compares them). Written out here
# because a migration never changes with the code after it.
TRANSITIONS = (
    ("preparation", "formation", "forward"),
    ("formation", "transition", "forward"),
    ("transition", "maturity", "forward"),
    ("maturity", "ending", "forward"),
    ("preparation", "ending", "early_end"),
    ("formation", "ending", "early_end"),
    ("transition", "ending", "early_end"),
)

GRAPH = (
    "CREATE OR REPLACE FUNCTION case_work_group_stage_graph() "
    "RETURNS TABLE (from_stage text, to_stage text, kind text) "
    f"LANGUAGE sql IMMUTABLE PARALLEL SAFE {PIN} AS $$ VALUES "
    + ", ".join(f"('{a}', '{b}', '{k}')" for a, b, k in TRANSITIONS)
    + " $$"
)
IS_STEP = f"""CREATE OR REPLACE FUNCTION case_work_group_is_step(from_stage text, to_stage text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE {PIN} AS $$
SELECT EXISTS (SELECT FROM case_work_group_stage_graph() g WHERE g.from_stage = $1 AND g.to_stage = $2) $$"""


def _resealing(table: str, column: str) -> str:
    """A reseal (`yunshegong reseal`, core.services.sealing): in a transaction that declared
    `app.resealing = '<table>.<column>'`, an UPDATE that changes nothing but `column`, and changes its key id.
    The same narrow exemption w006 gives the case notes (see its docstring): it lets a guarded row's sealed
    value move to the current key -- an ended group's summary, an append-only note -- and nothing else."""
    return f"""current_setting('app.resealing', true) = '{table}.{column}'
            AND (to_jsonb(NEW) - '{column}') = (to_jsonb(OLD) - '{column}')
            AND substring(NEW.{column} FROM 1 FOR 4 + get_byte(NEW.{column}, 3))
                <> substring(OLD.{column} FROM 1 FOR 4 + get_byte(OLD.{column}, 3))"""


# A group: created in preparation with nobody in it; its stage moves along the graph after its history row;
# once ended nothing changes -- but for a reseal of its closing summary. (The participant counter's own
# updates pass: stage and seq unchanged.)
GUARD_GROUP = f"""CREATE OR REPLACE FUNCTION case_work_group_guard() RETURNS trigger LANGUAGE plpgsql {PIN} AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF {_resealing("case_work_groups", "closing_summary_sealed")} THEN
            RETURN NEW;
        END IF;
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NEW.stage <> 'preparation' OR NEW.stage_seq <> 0 OR NEW.participant_count <> 0 THEN
            RAISE EXCEPTION 'a group starts in preparation, empty'
                USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_group_stage_recorded';
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

# The rows of a group (history, participants, sessions, attendance, notes): none is written for an ended
# group, none is deleted; history and notes are never updated; a participant only leaves (once), a
# session is only cancelled (once). A history row is its group's next step, from the stage it is in. A reseal
# moves a note's sealed text to the current key, an ended group's too.
GUARD_CHILD = f"""CREATE OR REPLACE FUNCTION case_work_group_child_guard() RETURNS trigger LANGUAGE plpgsql {PIN} AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION '% rows are kept', TG_TABLE_NAME
            USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_group_kept';
    END IF;
    -- Nested: only a note has a `text_sealed` to read.
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'case_work_group_notes' THEN
        IF {_resealing("case_work_group_notes", "text_sealed")} THEN
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
    END IF;
    RETURN NEW;
END $$"""

# The capacity counter: a join adds one, a leave takes one. The UPDATE locks the group's row, so concurrent
# joins queue there and each sees the count the one before left; ck_case_work_groups_within_capacity
# refuses the join that would overfill the group (and the group's guard one of an ended group).
COUNT = f"""CREATE OR REPLACE FUNCTION case_work_group_count() RETURNS trigger LANGUAGE plpgsql {PIN} AS $$
DECLARE
    delta integer := 0;
BEGIN
    IF TG_OP = 'INSERT' AND NEW.left_at IS NULL THEN
        delta := 1;
    ELSIF TG_OP = 'UPDATE' AND OLD.left_at IS NULL AND NEW.left_at IS NOT NULL THEN
        delta := -1;
    END IF;
    IF delta <> 0 THEN
        UPDATE case_work_groups SET participant_count = participant_count + delta WHERE id = NEW.group_id;
        -- Row-level security would filter the group's row silently: never let the count drift.
        IF NOT FOUND THEN
            RAISE EXCEPTION 'group % is not visible', NEW.group_id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'case_work_group_count';
        END IF;
    END IF;
    RETURN NULL;
END $$"""

CHILDREN = (
    "case_work_group_stage_changes",
    "case_work_group_participants",
    "case_work_group_sessions",
    "case_work_group_attendance",
    "case_work_group_notes",
)


def _id() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False)


def _at(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)


def _fk(table: str, column: str, parent: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{parent}.id"], name=op.f(f"fk_{table}_{column}_{parent}"))


def upgrade() -> None:
    op.execute(GRAPH)
    op.execute(IS_STEP)

    t = "case_work_groups"
    op.create_table(
        t,
        _id(),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("goals", sa.Text(), server_default="", nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("facilitator_account_id", sa.BigInteger(), nullable=False),
        sa.Column("co_facilitator_account_id", sa.BigInteger(), nullable=True),
        sa.Column("supervisor_account_id", sa.BigInteger(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("participant_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("stage", sa.String(length=16), server_default="preparation", nullable=False),
        sa.Column("stage_seq", sa.Integer(), server_default="0", nullable=False),
        sa.Column("closing_summary_sealed", sa.LargeBinary(), nullable=True),
        _at("created_at"),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        core.organization_column(),
        sa.CheckConstraint(f"stage IN {STAGES}", name=op.f("ck_case_work_groups_stage_valid")),
        sa.CheckConstraint(f"category IN {CATEGORIES}", name=op.f("ck_case_work_groups_category_valid")),
        sa.CheckConstraint("capacity BETWEEN 2 AND 100", name=op.f("ck_case_work_groups_capacity_valid")),
        sa.CheckConstraint(
            "participant_count >= 0 AND participant_count <= capacity", name=op.f("ck_case_work_groups_within_capacity")
        ),
        sa.CheckConstraint(
            "co_facilitator_account_id <> facilitator_account_id", name=op.f("ck_case_work_groups_two_facilitators")
        ),
        sa.CheckConstraint(
            "supervisor_account_id <> facilitator_account_id",
            name=op.f("ck_case_work_groups_supervisor_not_facilitator"),
        ),
        sa.CheckConstraint(
            "stage_seq > 0 OR stage = 'preparation'", name=op.f("ck_case_work_groups_starts_in_preparation")
        ),
        sa.CheckConstraint(
            "(stage = 'ending') = (ended_at IS NOT NULL)", name=op.f("ck_case_work_groups_ended_when_ending")
        ),
        sa.CheckConstraint(
            "stage <> 'ending' OR closing_summary_sealed IS NOT NULL",
            name=op.f("ck_case_work_groups_summary_at_ending"),
        ),
        sa.CheckConstraint(
            sealing.sealed_check_sql("closing_summary_sealed"),
            name=op.f("ck_case_work_groups_closing_summary_sealed_sealed"),
        ),
        _fk(t, "facilitator_account_id", "accounts"),
        _fk(t, "co_facilitator_account_id", "accounts"),
        _fk(t, "supervisor_account_id", "accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_work_groups")),
    )
    op.create_index("ix_case_work_groups_facilitator", t, ["facilitator_account_id", "id"], unique=False)
    # The facilitators' and supervisor's accounts fill the organisation in and must all be of the same one.
    core.own_table(
        op,
        t,
        inherit=[
            core.Inherit("accounts", "facilitator_account_id"),
            core.Inherit("accounts", "co_facilitator_account_id"),
            core.Inherit("accounts", "supervisor_account_id"),
        ],
    )

    t = "case_work_group_stage_changes"
    op.create_table(
        t,
        _id(),
        sa.Column("group_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("from_stage", sa.String(length=16), nullable=True),
        sa.Column("to_stage", sa.String(length=16), nullable=False),
        sa.Column("actor_account_id", sa.BigInteger(), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        _at("at"),
        core.organization_column(),
        sa.CheckConstraint(f"to_stage IN {STAGES}", name=op.f(f"ck_{t}_to_stage_valid")),
        sa.CheckConstraint("(seq = 0) = (from_stage IS NULL)", name=op.f(f"ck_{t}_creation_first")),
        sa.CheckConstraint(
            "from_stage IS NULL OR case_work_group_is_step(from_stage, to_stage)",
            name=op.f(f"ck_{t}_step_of_the_graph"),
        ),
        _fk(t, "group_id", "case_work_groups"),
        _fk(t, "actor_account_id", "accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("group_id", "seq", name=op.f(f"uq_{t}_group_id_seq")),
    )
    core.own_table(op, t, inherit=[core.Inherit("case_work_groups", "group_id")])

    t = "case_work_group_participants"
    op.create_table(
        t,
        _id(),
        sa.Column("group_id", sa.BigInteger(), nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=False),
        sa.Column("added_by_account_id", sa.BigInteger(), nullable=False),
        _at("joined_at"),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("left_by_account_id", sa.BigInteger(), nullable=True),
        sa.Column("leave_reason", sa.Text(), nullable=True),
        core.organization_column(),
        sa.CheckConstraint(
            "(left_at IS NULL) = (left_by_account_id IS NULL) AND (left_at IS NULL) = (leave_reason IS NULL)",
            name=op.f(f"ck_{t}_leave_complete"),
        ),
        sa.CheckConstraint(
            "leave_reason IS NULL OR length(btrim(leave_reason)) > 0", name=op.f(f"ck_{t}_leave_reason_given")
        ),
        _fk(t, "group_id", "case_work_groups"),
        _fk(t, "client_id", "case_work_clients"),
        _fk(t, "added_by_account_id", "accounts"),
        _fk(t, "left_by_account_id", "accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("id", "group_id", name=op.f(f"uq_{t}_id_group_id")),
    )
    op.create_index(
        "uq_case_work_group_participants_active",
        t,
        ["group_id", "client_id"],
        unique=True,
        postgresql_where=sa.text("left_at IS NULL"),
    )
    op.create_index("ix_case_work_group_participants_client", t, ["client_id"], unique=False)
    # The group and the client must be of one organisation (a client of another is not even visible).
    core.own_table(
        op,
        t,
        inherit=[core.Inherit("case_work_groups", "group_id"), core.Inherit("case_work_clients", "client_id")],
    )

    t = "case_work_group_sessions"
    op.create_table(
        t,
        _id(),
        sa.Column("group_id", sa.BigInteger(), nullable=False),
        sa.Column("topic", sa.Text(), server_default="", nullable=False),
        sa.Column("appointment_id", sa.BigInteger(), nullable=False),
        sa.Column("facilitator_account_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="scheduled", nullable=False),
        sa.Column("cancel_reason", sa.Text(), server_default="", nullable=False),
        _at("created_at"),
        core.organization_column(),
        sa.CheckConstraint("status IN ('scheduled', 'cancelled')", name=op.f(f"ck_{t}_status_valid")),
        sa.CheckConstraint(
            "(status = 'cancelled') = (cancel_reason <> '')", name=op.f(f"ck_{t}_cancelled_with_reason")
        ),
        _fk(t, "group_id", "case_work_groups"),
        _fk(t, "appointment_id", "appointments"),
        _fk(t, "facilitator_account_id", "accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("appointment_id", name=op.f(f"uq_{t}_appointment_id")),
        sa.UniqueConstraint("id", "group_id", name=op.f(f"uq_{t}_id_group_id")),
    )
    op.create_index("ix_case_work_group_sessions_group", t, ["group_id", "id"], unique=False)
    core.own_table(
        op,
        t,
        inherit=[
            core.Inherit("case_work_groups", "group_id"),
            core.Inherit("appointments", "appointment_id"),
            core.Inherit("accounts", "facilitator_account_id"),
        ],
    )

    t = "case_work_group_attendance"
    op.create_table(
        t,
        _id(),
        sa.Column("group_id", sa.BigInteger(), nullable=False),
        sa.Column("session_id", sa.BigInteger(), nullable=False),
        sa.Column("participant_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("recorded_by_account_id", sa.BigInteger(), nullable=False),
        _at("recorded_at"),
        core.organization_column(),
        sa.CheckConstraint("status IN ('present', 'absent', 'excused')", name=op.f(f"ck_{t}_status_valid")),
        _fk(t, "group_id", "case_work_groups"),
        _fk(t, "recorded_by_account_id", "accounts"),
        sa.ForeignKeyConstraint(
            ["session_id", "group_id"],
            ["case_work_group_sessions.id", "case_work_group_sessions.group_id"],
            name="fk_case_work_group_attendance_session_of_group",
        ),
        sa.ForeignKeyConstraint(
            ["participant_id", "group_id"],
            ["case_work_group_participants.id", "case_work_group_participants.group_id"],
            name="fk_case_work_group_attendance_participant_of_group",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("session_id", "participant_id", name=op.f(f"uq_{t}_session_id_participant_id")),
    )
    core.own_table(op, t, inherit=[core.Inherit("case_work_groups", "group_id")])

    t = "case_work_group_notes"
    op.create_table(
        t,
        _id(),
        sa.Column("group_id", sa.BigInteger(), nullable=False),
        sa.Column("session_id", sa.BigInteger(), nullable=False),
        sa.Column("text_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("author_account_id", sa.BigInteger(), nullable=False),
        sa.Column("author", sa.String(length=100), nullable=False),
        _at("created_at"),
        core.organization_column(),
        sa.CheckConstraint(sealing.sealed_check_sql("text_sealed"), name=op.f(f"ck_{t}_text_sealed_sealed")),
        _fk(t, "group_id", "case_work_groups"),
        _fk(t, "author_account_id", "accounts"),
        sa.ForeignKeyConstraint(
            ["session_id", "group_id"],
            ["case_work_group_sessions.id", "case_work_group_sessions.group_id"],
            name="fk_case_work_group_notes_session_of_group",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
    )
    op.create_index("ix_case_work_group_notes_session", t, ["session_id", "id"], unique=False)
    core.own_table(
        op,
        t,
        inherit=[core.Inherit("case_work_groups", "group_id"), core.Inherit("accounts", "author_account_id")],
    )

    op.execute(GUARD_GROUP)
    op.execute(
        "CREATE TRIGGER case_work_group_guard BEFORE INSERT OR UPDATE OR DELETE ON case_work_groups "
        "FOR EACH ROW EXECUTE FUNCTION case_work_group_guard()"
    )
    op.execute(GUARD_CHILD)
    for table in CHILDREN:
        op.execute(
            f"CREATE TRIGGER case_work_group_child_guard BEFORE INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION case_work_group_child_guard()"
        )
    op.execute(COUNT)
    op.execute(
        "CREATE TRIGGER case_work_group_count AFTER INSERT OR UPDATE ON case_work_group_participants "
        "FOR EACH ROW EXECUTE FUNCTION case_work_group_count()"
    )


def downgrade() -> None:
    for table in reversed(CHILDREN):
        op.drop_table(table)
    op.drop_table("case_work_groups")
    for function in (
        "case_work_group_count()",
        "case_work_group_child_guard()",
        "case_work_group_guard()",
        "case_work_group_is_step(text, text)",
        "case_work_group_stage_graph()",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
