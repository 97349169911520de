"""shared scheduling: appointments, availability

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "appointments",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column("during", postgresql.TSTZRANGE(), nullable=False),
        sa.Column("blocked", postgresql.TSTZRANGE(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("cancel_reason", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        postgresql.ExcludeConstraint(
            (sa.column("owner_id"), "="),
            (sa.column("blocked"), "&&"),
            where=sa.text("status = 'active'"),
            using="gist",
            name="ex_appointments_no_overlap",
        ),
        sa.CheckConstraint("status IN ('active', 'cancelled')", name=op.f("ck_appointments_status_valid")),
        sa.CheckConstraint(
            "NOT isempty(during) AND lower(during) = lower(blocked) AND upper(during) <= upper(blocked)",
            name=op.f("ck_appointments_blocked_covers_during"),
        ),
        sa.ForeignKeyConstraint(["owner_id"], ["volunteers.id"], name=op.f("fk_appointments_owner_id_volunteers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointments")),
    )
    op.create_index(
        "ix_appointments_owner_during", "appointments", ["owner_id", "during"], unique=False, postgresql_using="gist"
    )
    op.create_table(
        "availability_exceptions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("during", postgresql.TSTZRANGE(), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["volunteers.id"],
            name=op.f("fk_availability_exceptions_owner_id_volunteers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_availability_exceptions")),
    )
    op.create_index(
        "ix_availability_exceptions_owner_during",
        "availability_exceptions",
        ["owner_id", "during"],
        unique=False,
        postgresql_using="gist",
    )
    op.create_table(
        "availability_windows",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("weekday", sa.SmallInteger(), nullable=False),
        sa.Column("start_time", sa.Time(), nullable=False),
        sa.Column("end_time", sa.Time(), nullable=False),
        sa.Column("timezone", sa.String(length=64), server_default="Asia/Shanghai", nullable=False),
        sa.CheckConstraint("end_time > start_time", name=op.f("ck_availability_windows_order")),
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name=op.f("ck_availability_windows_weekday_range")),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["volunteers.id"],
            name=op.f("fk_availability_windows_owner_id_volunteers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_availability_windows")),
    )
    op.create_index(op.f("ix_availability_windows_owner_id"), "availability_windows", ["owner_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_availability_windows_owner_id"), table_name="availability_windows")
    op.drop_table("availability_windows")
    op.drop_index(
        "ix_availability_exceptions_owner_during", table_name="availability_exceptions", postgresql_using="gist"
    )
    op.drop_table("availability_exceptions")
    op.drop_index("ix_appointments_owner_during", table_name="appointments", postgresql_using="gist")
    op.drop_table("appointments")
