"""counseling: counselors, clients, sessions, journals, risk flags (branch `counseling`, after core 0005)

Revision ID: c001
Revises:
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "c001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("counseling",)
depends_on: str | Sequence[str] | None = "0005"


def upgrade() -> None:
    op.create_table(
        "counseling_programmes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("days", sa.SmallInteger(), nullable=False),
        sa.Column("prompts", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_counseling_programmes")),
        sa.UniqueConstraint("name", name=op.f("uq_counseling_programmes_name")),
    )
    op.create_table(
        "counseling_clients",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("community_id", sa.BigInteger(), nullable=True),
        sa.Column("organization_id", sa.BigInteger(), nullable=True),
        sa.Column("consent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consent_note", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_counseling_clients_community_id_communities")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_counseling_clients_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_counseling_clients")),
    )
    op.create_index(
        op.f("ix_counseling_clients_organization_id"), "counseling_clients", ["organization_id"], unique=False
    )
    op.create_table(
        "counseling_counselors",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("volunteer_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "qualifications", postgresql.ARRAY(sa.String(length=50)), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column(
            "specialties", postgresql.ARRAY(sa.String(length=30)), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column("languages", postgresql.ARRAY(sa.String(length=30)), server_default=sa.text("'{}'"), nullable=False),
        sa.Column(
            "modes",
            postgresql.ARRAY(sa.String(length=10)),
            server_default=sa.text("'{online,offline}'"),
            nullable=False,
        ),
        sa.Column("organization_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_counseling_counselors_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["volunteer_id"], ["volunteers.id"], name=op.f("fk_counseling_counselors_volunteer_id_volunteers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_counseling_counselors")),
        sa.UniqueConstraint("volunteer_id", name=op.f("uq_counseling_counselors_volunteer_id")),
    )
    op.create_table(
        "counseling_enrolments",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=False),
        sa.Column("programme_id", sa.BigInteger(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("days", sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["counseling_clients.id"], name=op.f("fk_counseling_enrolments_client_id_counseling_clients")
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["counseling_programmes.id"],
            name=op.f("fk_counseling_enrolments_programme_id_counseling_programmes"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_counseling_enrolments")),
        sa.UniqueConstraint(
            "client_id",
            "programme_id",
            "starts_on",
            name=op.f("uq_counseling_enrolments_client_id_programme_id_starts_on"),
        ),
    )
    op.create_index(op.f("ix_counseling_enrolments_client_id"), "counseling_enrolments", ["client_id"], unique=False)
    op.create_table(
        "counseling_risk_flags",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "severity IN ('low', 'medium', 'high')", name=op.f("ck_counseling_risk_flags_severity_valid")
        ),
        sa.CheckConstraint("source IN ('mood_trend', 'counselor')", name=op.f("ck_counseling_risk_flags_source_valid")),
        sa.ForeignKeyConstraint(
            ["client_id"], ["counseling_clients.id"], name=op.f("fk_counseling_risk_flags_client_id_counseling_clients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_counseling_risk_flags")),
    )
    op.create_index(
        "uq_counseling_risk_flags_open",
        "counseling_risk_flags",
        ["client_id", "source"],
        unique=True,
        postgresql_where=sa.text("resolved_at IS NULL"),
    )
    op.create_table(
        "counseling_sessions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("counselor_id", sa.BigInteger(), nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=False),
        sa.Column("appointment_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="booked", nullable=False),
        sa.Column("mode", sa.String(length=10), nullable=False),
        sa.Column("meeting_link", sa.Text(), server_default="", nullable=False),
        sa.Column("place", sa.Text(), server_default="", nullable=False),
        sa.Column("cancel_reason", sa.Text(), server_default="", nullable=False),
        sa.Column("notes", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("mode IN ('online', 'offline')", name=op.f("ck_counseling_sessions_mode_valid")),
        sa.CheckConstraint(
            "status IN ('booked', 'attended', 'no_show', 'cancelled')", name=op.f("ck_counseling_sessions_status_valid")
        ),
        sa.ForeignKeyConstraint(
            ["appointment_id"], ["appointments.id"], name=op.f("fk_counseling_sessions_appointment_id_appointments")
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["counseling_clients.id"], name=op.f("fk_counseling_sessions_client_id_counseling_clients")
        ),
        sa.ForeignKeyConstraint(
            ["counselor_id"],
            ["counseling_counselors.id"],
            name=op.f("fk_counseling_sessions_counselor_id_counseling_counselors"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_counseling_sessions")),
        sa.UniqueConstraint("appointment_id", name=op.f("uq_counseling_sessions_appointment_id")),
    )
    op.create_index(op.f("ix_counseling_sessions_client_id"), "counseling_sessions", ["client_id"], unique=False)
    op.create_index("ix_counseling_sessions_counselor", "counseling_sessions", ["counselor_id", "id"], unique=False)
    op.create_table(
        "counseling_journal_entries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("enrolment_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.SmallInteger(), nullable=False),
        sa.Column("mood", sa.SmallInteger(), nullable=False),
        sa.Column("text", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("day >= 1", name=op.f("ck_counseling_journal_entries_day_positive")),
        sa.CheckConstraint("mood BETWEEN 0 AND 10", name=op.f("ck_counseling_journal_entries_mood_range")),
        sa.ForeignKeyConstraint(
            ["enrolment_id"],
            ["counseling_enrolments.id"],
            name=op.f("fk_counseling_journal_entries_enrolment_id_counseling_enrolments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_counseling_journal_entries")),
        sa.UniqueConstraint("enrolment_id", "day", name=op.f("uq_counseling_journal_entries_enrolment_id_day")),
    )


def downgrade() -> None:
    op.drop_table("counseling_journal_entries")
    op.drop_index("ix_counseling_sessions_counselor", table_name="counseling_sessions")
    op.drop_index(op.f("ix_counseling_sessions_client_id"), table_name="counseling_sessions")
    op.drop_table("counseling_sessions")
    op.drop_index(
        "uq_counseling_risk_flags_open",
        table_name="counseling_risk_flags",
        postgresql_where=sa.text("resolved_at IS NULL"),
    )
    op.drop_table("counseling_risk_flags")
    op.drop_index(op.f("ix_counseling_enrolments_client_id"), table_name="counseling_enrolments")
    op.drop_table("counseling_enrolments")
    op.drop_table("counseling_counselors")
    op.drop_index(op.f("ix_counseling_clients_organization_id"), table_name="counseling_clients")
    op.drop_table("counseling_clients")
    op.drop_table("counseling_programmes")
