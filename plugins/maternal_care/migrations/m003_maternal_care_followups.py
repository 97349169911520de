"""maternal_care: follow-ups from the national schedule (branch `maternal_care`, after m002)

Revision ID: m003
Revises: m002

- `maternal_care_followup_rules()`: the schedule (国家基本公共卫生服务规范, 孕产妇健康管理) as an immutable SQL
  function, as casework's stage graph: the app role reads it and cannot change it, and nothing that empties
  tables empties it. Changing the schedule is a new migration. Windows are inclusive day offsets from the
  anchor: the LMP (prenatal checks at <13, 16-20, 21-24, 28-36 and 37-40 weeks: "16-20" runs from 16+0 to
  20+6), the delivery (the day-42 check, 6 to 8 weeks after), the discharge (the home visit within 7 days),
  or an abnormal finding (its re-check within 14 days).
- `maternal_care_followups`: one item per pregnancy and rule (a re-check: per finding), organisation-owned
  under row-level security, its organisation the pregnancy's. A closed item (done, missed, not needed) is
  kept as it is; items are never deleted.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core

revision: str = "m003"
down_revision: str | Sequence[str] | None = "m002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PIN = "SET search_path = pg_catalog, public, pg_temp"

# (code, label, anchor, first day, last day, order). Written out here because a migration never changes with
# the code after it; the services read the function.
RULES = (
    ("prenatal_1", "第1次产前检查（孕13周前）", "lmp", 0, 90, 1),
    ("prenatal_2", "第2次产前检查（孕16～20周）", "lmp", 112, 146, 2),
    ("prenatal_3", "第3次产前检查（孕21～24周）", "lmp", 147, 174, 3),
    ("prenatal_4", "第4次产前检查（孕28～36周）", "lmp", 196, 258, 4),
    ("prenatal_5", "第5次产前检查（孕37～40周）", "lmp", 259, 286, 5),
    ("postpartum_visit", "产后访视（出院后7天内）", "discharge", 0, 7, 6),
    ("postpartum_42", "产后42天健康检查", "delivery", 42, 56, 7),
    ("recheck", "异常复查（14天内）", "finding", 0, 14, 8),
)


def _row(row: tuple[str, str, str, int, int, int]) -> str:
    code, label, anchor, start, end, order = row
    return f"('{code}', '{label}', '{anchor}', {start}, {end}, {order})"


RULES_FUNCTION = (
    "CREATE OR REPLACE FUNCTION maternal_care_followup_rules() "
    "RETURNS TABLE (code text, label text, anchor text, start_day integer, end_day integer, ord integer) "
    f"LANGUAGE sql IMMUTABLE PARALLEL SAFE {PIN} AS $$ VALUES " + ", ".join(_row(r) for r in RULES) + " $$"
)
IS_RULE = f"""CREATE OR REPLACE FUNCTION maternal_care_is_followup_rule(code text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE {PIN} AS $$
SELECT EXISTS (SELECT FROM maternal_care_followup_rules() r WHERE r.code = $1) $$"""

# A closed item is the record of what happened: it does not change, and no item is deleted.
GUARD = f"""CREATE OR REPLACE FUNCTION maternal_care_followup_guard() RETURNS trigger LANGUAGE plpgsql {PIN} AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'follow-ups are kept'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'maternal_care_followup_kept';
    END IF;
    IF OLD.status IN ('done', 'missed', 'not_needed') THEN
        RAISE EXCEPTION 'follow-up % is closed', OLD.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'maternal_care_followup_closed';
    END IF;
    IF NEW.pregnancy_id <> OLD.pregnancy_id OR NEW.rule_code <> OLD.rule_code THEN
        RAISE EXCEPTION 'a follow-up stays about its pregnancy and rule'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'maternal_care_followup_kept';
    END IF;
    RETURN NEW;
END $$"""


def upgrade() -> None:
    op.execute(RULES_FUNCTION)
    op.execute(IS_RULE)
    t = "maternal_care_followups"
    op.create_table(
        t,
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("pregnancy_id", sa.BigInteger(), nullable=False),
        sa.Column("rule_code", sa.String(length=32), nullable=False),
        sa.Column("window_start", sa.Date(), nullable=False),
        sa.Column("window_end", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="open", nullable=False),
        sa.Column("appointment_id", sa.BigInteger(), nullable=True),
        sa.Column("staff_account_id", sa.BigInteger(), nullable=True),
        sa.Column("rebook_needed", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("outcome", sa.String(length=8), nullable=True),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.Column("closed_by_account_id", sa.BigInteger(), nullable=True),
        sa.Column("referral_id", sa.BigInteger(), nullable=True),
        sa.Column("finding_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        core.organization_column(),
        sa.CheckConstraint(
            "status IN ('open', 'booked', 'done', 'missed', 'not_needed')", name=op.f(f"ck_{t}_status_valid")
        ),
        sa.CheckConstraint("maternal_care_is_followup_rule(rule_code)", name=op.f(f"ck_{t}_rule_known")),
        sa.CheckConstraint("window_end >= window_start", name=op.f(f"ck_{t}_window_ordered")),
        sa.CheckConstraint("outcome IS NULL OR outcome IN ('normal', 'abnormal')", name=op.f(f"ck_{t}_outcome_valid")),
        sa.CheckConstraint("(status = 'done') = (outcome IS NOT NULL)", name=op.f(f"ck_{t}_outcome_when_done")),
        sa.CheckConstraint(
            "(status IN ('done', 'missed')) = (closed_on IS NOT NULL)", name=op.f(f"ck_{t}_closed_dated")
        ),
        sa.CheckConstraint(
            "status <> 'booked' OR appointment_id IS NOT NULL", name=op.f(f"ck_{t}_booked_has_appointment")
        ),
        sa.CheckConstraint(
            "(outcome = 'abnormal') = (referral_id IS NOT NULL)", name=op.f(f"ck_{t}_abnormal_referred")
        ),
        sa.CheckConstraint(
            "(rule_code = 'recheck') = (finding_id IS NOT NULL)", name=op.f(f"ck_{t}_recheck_of_a_finding")
        ),
        sa.ForeignKeyConstraint(
            ["pregnancy_id"],
            ["maternal_care_pregnancies.id"],
            name=op.f(f"fk_{t}_pregnancy_id_maternal_care_pregnancies"),
        ),
        sa.ForeignKeyConstraint(
            ["appointment_id"], ["appointments.id"], name=op.f(f"fk_{t}_appointment_id_appointments")
        ),
        sa.ForeignKeyConstraint(["staff_account_id"], ["accounts.id"], name=op.f(f"fk_{t}_staff_account_id_accounts")),
        sa.ForeignKeyConstraint(
            ["closed_by_account_id"], ["accounts.id"], name=op.f(f"fk_{t}_closed_by_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(["referral_id"], ["referrals.id"], name=op.f(f"fk_{t}_referral_id_referrals")),
        sa.ForeignKeyConstraint(
            ["finding_id"], ["maternal_care_followups.id"], name=op.f(f"fk_{t}_finding_id_maternal_care_followups")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("appointment_id", name=op.f(f"uq_{t}_appointment_id")),
    )
    op.create_index(
        "uq_maternal_care_followups_rule",
        t,
        ["pregnancy_id", "rule_code"],
        unique=True,
        postgresql_where=sa.text("finding_id IS NULL"),
    )
    op.create_index(
        "uq_maternal_care_followups_finding",
        t,
        ["finding_id"],
        unique=True,
        postgresql_where=sa.text("finding_id IS NOT NULL"),
    )
    op.create_index(
        "ix_maternal_care_followups_due",
        t,
        ["window_end", "id"],
        postgresql_where=sa.text("status IN ('open', 'booked')"),
    )
    op.create_index("ix_maternal_care_followups_pregnancy", t, ["pregnancy_id", "window_start", "id"])
    # The organisation is the pregnancy's; a booking is on a calendar of that organisation, by its staff.
    core.own_table(
        op,
        t,
        inherit=[
            core.Inherit("maternal_care_pregnancies", "pregnancy_id"),
            core.Inherit("appointments", "appointment_id"),
            core.Inherit("accounts", "staff_account_id"),
        ],
    )
    op.execute(GUARD)
    op.execute(
        f"CREATE TRIGGER maternal_care_followup_guard BEFORE UPDATE OR DELETE ON {t} "
        "FOR EACH ROW EXECUTE FUNCTION maternal_care_followup_guard()"
    )


def downgrade() -> None:
    op.drop_table("maternal_care_followups")
    for function in (
        "maternal_care_followup_guard()",
        "maternal_care_is_followup_rule(text)",
        "maternal_care_followup_rules()",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
