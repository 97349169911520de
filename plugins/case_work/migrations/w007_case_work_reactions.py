"""case_work: reactions -- sources heard once (the intake queue), help requests tagged for casework

Revision ID: w007
Revises: w006
Create Date: 2026-11-30

- `case_work_intakes`: a source casework heard about (a counseling risk flag, a tagged help request), once per
  organisation, kind and id (an event delivered twice finds the row and does nothing), and what became of it:
  a case opened for it, an open case it was attached to, or a place in the queue (no case yet, with why).
  The organisation comes from the resident, community and case it names (each must be of the same one).
- `case_work_request_tags`: a help request tagged for casework (one tag per request); the organisation is the
  request's.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core

revision: str = "w007"
down_revision: str | Sequence[str] | None = "w006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RISK_LEVELS = "('low', 'medium', 'high')"
CATEGORIES = "('elderly_care', 'disability', 'mental_health', 'maternal', 'poverty', 'child_protection', 'other')"


def upgrade() -> None:
    op.create_table(
        "case_work_intakes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("source_kind", sa.String(length=24), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("resident_id", sa.BigInteger(), nullable=True),
        sa.Column("community_id", sa.BigInteger(), nullable=True),
        sa.Column("risk_level", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("queue_reason", sa.String(length=24), nullable=True),
        sa.Column("case_id", sa.BigInteger(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("handled_by_account_id", sa.BigInteger(), nullable=True),
        core.organization_column(),
        sa.CheckConstraint(
            "source_kind IN ('help_request', 'counseling_risk_flag')",
            name=op.f("ck_case_work_intakes_source_kind_valid"),
        ),
        sa.CheckConstraint(
            "status IN ('queued', 'opened', 'attached')", name=op.f("ck_case_work_intakes_status_valid")
        ),
        sa.CheckConstraint(f"risk_level IN {RISK_LEVELS}", name=op.f("ck_case_work_intakes_risk_level_valid")),
        sa.CheckConstraint(
            "(status = 'queued') = (case_id IS NULL)", name=op.f("ck_case_work_intakes_case_unless_queued")
        ),
        sa.CheckConstraint(
            "(status = 'queued') = (queue_reason IS NOT NULL) AND (queue_reason IS NULL OR queue_reason IN "
            "('no_social_worker', 'no_supervisor', 'no_resident'))",
            name=op.f("ck_case_work_intakes_queue_reason_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["residents.id"], name=op.f("fk_case_work_intakes_resident_id_residents")
        ),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_case_work_intakes_community_id_communities")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case_work_cases.id"], name=op.f("fk_case_work_intakes_case_id_case_work_cases")
        ),
        sa.ForeignKeyConstraint(
            ["handled_by_account_id"],
            ["accounts.id"],
            name=op.f("fk_case_work_intakes_handled_by_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_work_intakes")),
        # Exactly once per source, whatever delivers it how often.
        sa.UniqueConstraint(
            "organization_id",
            "source_kind",
            "source_id",
            name=op.f("uq_case_work_intakes_organization_id_source_kind_source_id"),
        ),
    )
    op.create_index(op.f("ix_case_work_intakes_case_id"), "case_work_intakes", ["case_id"], unique=False)
    op.create_index(
        "ix_case_work_intakes_queue",
        "case_work_intakes",
        ["organization_id", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'queued'"),
    )
    core.own_table(
        op,
        "case_work_intakes",
        inherit=[
            core.Inherit("residents", "resident_id"),
            core.Inherit("communities", "community_id"),
            core.Inherit("case_work_cases", "case_id"),
        ],
        default_to_caller=True,
    )

    op.create_table(
        "case_work_request_tags",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("help_request_id", sa.BigInteger(), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("risk_level", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("tagged_by_account_id", sa.BigInteger(), nullable=False),
        sa.Column("tagged_by", sa.String(length=100), nullable=False),
        sa.Column("tagged_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        core.organization_column(),
        sa.CheckConstraint(f"category IN {CATEGORIES}", name=op.f("ck_case_work_request_tags_category_valid")),
        sa.CheckConstraint(f"risk_level IN {RISK_LEVELS}", name=op.f("ck_case_work_request_tags_risk_level_valid")),
        sa.ForeignKeyConstraint(
            ["help_request_id"],
            ["help_requests.id"],
            name=op.f("fk_case_work_request_tags_help_request_id_help_requests"),
        ),
        sa.ForeignKeyConstraint(
            ["tagged_by_account_id"],
            ["accounts.id"],
            name=op.f("fk_case_work_request_tags_tagged_by_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_work_request_tags")),
        sa.UniqueConstraint(
            "organization_id", "help_request_id", name=op.f("uq_case_work_request_tags_organization_id_help_request_id")
        ),
    )
    core.own_table(
        op,
        "case_work_request_tags",
        inherit=[core.Inherit("help_requests", "help_request_id"), core.Inherit("accounts", "tagged_by_account_id")],
    )


def downgrade() -> None:
    op.drop_table("case_work_request_tags")
    op.drop_index("ix_case_work_intakes_queue", table_name="case_work_intakes")
    op.drop_index(op.f("ix_case_work_intakes_case_id"), table_name="case_work_intakes")
    op.drop_table("case_work_intakes")
