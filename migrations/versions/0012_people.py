"""the people served: residents, consents, referrals (core services that plugins share)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30

Residents and consents belong to one organisation like every organisation-owned table. A referral belongs
to the sending organisation and is also readable by the receiving organisation through a second policy,
but only while the referral is not revoked and its consent is in force: `referral_consent_in_force` answers
that one boolean (the consent row itself stays invisible to the recipient), so revoking the consent ends the
recipient's access in the database at once. The recipient may update a live referral it received (answer
it, complete it); `referrals_recipient_guard` keeps such an update to one step of the answer (sent →
accepted | declined, accepted → completed) and that step's columns.

A consent names its receiving organisation too (`target_organization_id`, required for a plugin target) and a
referral's receiving organisation must be its consent's (a composite foreign key). `referral_consent_in_force`
answers only for consents of the caller's organisation or naming it as the recipient (false for any other, so
it is no oracle of other organisations' consents). Consents are never deleted and, once recorded, only their
revocation is written, once (`consents_revoke_only`); referrals are never deleted either.
`referral_hold_consent` lets the recipient lock a referral's consent FOR SHARE while it answers, so a
revocation racing an answer waits for it or wins cleanly (never a half-seen row).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from core.tenancy import APP_ROLE, Inherit, own_table

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCOPES = "'summary', 'contact', 'health', 'case_details'"
STATUSES = "'sent', 'accepted', 'declined', 'completed', 'revoked'"

# Whether a consent is in force now: recorded, not revoked, inside its validity. Read with platform rights
# (like platform_figures) because the recipient of a referral cannot see the sender's consent row; it
# returns a boolean and nothing else. Pinned search path: no temporary table can stand in for `consents`.
CONSENT_IN_FORCE = """CREATE OR REPLACE FUNCTION referral_consent_in_force(consent bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET app.role = 'platform_admin' SET search_path = pg_catalog, public, pg_temp AS $$
SELECT EXISTS (
    SELECT FROM consents c
    WHERE c.id = consent AND c.revoked_at IS NULL AND c.valid_from <= now()
      AND (c.valid_until IS NULL OR c.valid_until > now())
      AND NULLIF(current_setting('app.org_id', true), '')::bigint IN (c.organization_id, c.target_organization_id)
) $$"""
# The recipient answering a referral locks its consent FOR SHARE (a revocation waits for the answer to commit;
# an answer after a committed revocation finds it and stops) and learns whether it is still in force. Only for
# a referral to the caller's organisation; NULL for any other. VOLATILE: it locks.
HOLD_CONSENT = """CREATE OR REPLACE FUNCTION referral_hold_consent(referral bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET app.role = 'platform_admin' SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    held consents%ROWTYPE;
BEGIN
    SELECT c.* INTO held FROM referrals r JOIN consents c ON c.id = r.consent_id
    WHERE r.id = referral AND r.target_organization_id = NULLIF(current_setting('app.org_id', true), '')::bigint
    FOR SHARE OF c;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN held.revoked_at IS NULL AND held.valid_from <= now() AND (held.valid_until IS NULL OR held.valid_until > now());
END $$"""
# The plugins an organisation has enabled: the sender of a referral cannot read the receiving organisation's
# enablements, and needs them to refuse a referral to a service that is switched off there, and to deliver
# the referral's events to the plugins of the organisation they concern. Plugin names, nothing personal.
ENABLED_PLUGINS = """CREATE OR REPLACE FUNCTION organization_enabled_plugins(organization bigint)
RETURNS text[] LANGUAGE sql STABLE SECURITY DEFINER
SET app.role = 'platform_admin' SET search_path = pg_catalog, public, pg_temp AS $$
SELECT coalesce(array_agg(e.plugin_name::text ORDER BY e.plugin_name), '{}')
FROM plugin_enablements e WHERE e.organization_id = organization AND e.enabled
$$"""
# What the recipient of an accepted referral may copy about the resident, as the consent's scopes allow:
# the name always (a referral names the person), phone and address only under `contact`. NULL unless the
# caller's organisation is the recipient, the referral is accepted and its consent in force.
SHARED_RESIDENT = """CREATE OR REPLACE FUNCTION referral_shared_resident(referral bigint) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET app.role = 'platform_admin' SET search_path = pg_catalog, public, pg_temp AS $$
SELECT jsonb_build_object(
    'name', p.name,
    'phone', CASE WHEN 'contact' = ANY (c.scopes) THEN p.phone ELSE '' END,
    'address', CASE WHEN 'contact' = ANY (c.scopes) THEN p.address ELSE '' END,
    'scopes', to_jsonb(c.scopes)
)
FROM referrals r JOIN consents c ON c.id = r.consent_id JOIN residents p ON p.id = r.resident_id
WHERE r.id = referral AND r.status = 'accepted'
  AND r.target_organization_id = NULLIF(current_setting('app.org_id', true), '')::bigint
  AND referral_consent_in_force(r.consent_id)
$$"""
FUNCTIONS = (
    "referral_consent_in_force(bigint)",
    "organization_enabled_plugins(bigint)",
    "referral_shared_resident(bigint)",
    "referral_hold_consent(bigint)",
)
RECEIVED = (
    "(target_organization_id = (SELECT app_org()) AND status <> 'revoked' AND referral_consent_in_force(consent_id))"
)
# The recipient answers and completes: one step of the graph at a time, and only that step's columns change
# (to_jsonb minus the step's columns: a column added later is protected without editing this function).
RECIPIENT_GUARD = """CREATE OR REPLACE FUNCTION referrals_recipient_guard() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    step text[];
BEGIN
    IF app_is_platform() OR OLD.organization_id IS NOT DISTINCT FROM app_org() THEN
        RETURN NEW;
    END IF;
    step := CASE
        WHEN OLD.status = 'sent' AND NEW.status = 'accepted' THEN ARRAY['status', 'answered_by', 'answered_at']
        WHEN OLD.status = 'sent' AND NEW.status = 'declined'
            THEN ARRAY['status', 'answered_by', 'answered_at', 'decline_reason']
        WHEN OLD.status = 'accepted' AND NEW.status = 'completed'
            THEN ARRAY['status', 'completed_by', 'completed_at', 'completion_note']
    END;
    IF step IS NULL OR (to_jsonb(NEW) - step) IS DISTINCT FROM (to_jsonb(OLD) - step) THEN
        RAISE EXCEPTION 'the recipient of referral % may only answer or complete it', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$"""
NEVER_DELETED = """CREATE OR REPLACE FUNCTION consents_never_deleted() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'consents are revoked, never deleted' USING ERRCODE = 'restrict_violation';
END $$"""
# What was agreed stays as it was agreed: the one change a consent takes is its revocation, once.
REVOKE_ONLY = """CREATE OR REPLACE FUNCTION consents_revoke_only() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    revocation CONSTANT text[] := ARRAY['revoked_at', 'revoked_by', 'revoke_reason'];
BEGIN
    IF OLD.revoked_at IS NOT NULL OR NEW.revoked_at IS NULL
       OR (to_jsonb(NEW) - revocation) IS DISTINCT FROM (to_jsonb(OLD) - revocation) THEN
        RAISE EXCEPTION 'consent %: only its revocation is recorded, once', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END $$"""
REFERRALS_NEVER_DELETED = """CREATE OR REPLACE FUNCTION referrals_never_deleted() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'referrals are revoked, never deleted' USING ERRCODE = 'restrict_violation';
END $$"""


def upgrade() -> None:
    op.create_table(
        "residents",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("community_id", sa.BigInteger(), nullable=True),
        sa.Column("phone", sa.String(length=20), server_default="", nullable=False),
        sa.Column("address", sa.Text(), server_default="", nullable=False),
        sa.Column("recorded_by_account_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("organization_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["recorded_by_account_id"], ["accounts.id"], name=op.f("fk_residents_recorded_by_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_residents_community_id_communities")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_residents_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_residents")),
    )
    op.create_index(op.f("ix_residents_community_id"), "residents", ["community_id"])
    op.create_index(op.f("ix_residents_organization_id"), "residents", ["organization_id"])
    op.create_index("ix_residents_organization_id_id", "residents", ["organization_id", "id"])
    own_table(op, "residents", inherit=(Inherit("communities", "community_id"),), default_to_caller=True)

    op.create_table(
        "consents",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("resident_id", sa.BigInteger(), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.String(length=32)), nullable=False),
        sa.Column("target_kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=100), nullable=False),
        sa.Column("target_organization_id", sa.BigInteger(), nullable=True),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=100), nullable=True),
        sa.Column("revoke_reason", sa.Text(), server_default="", nullable=False),
        sa.Column("organization_id", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("target_kind IN ('plugin', 'outside')", name=op.f("ck_consents_target_kind_valid")),
        sa.CheckConstraint(
            f"cardinality(scopes) > 0 AND scopes <@ ARRAY[{SCOPES}]::varchar[]", name=op.f("ck_consents_scopes_valid")
        ),
        sa.CheckConstraint("valid_until IS NULL OR valid_until > valid_from", name=op.f("ck_consents_validity")),
        sa.CheckConstraint("(revoked_at IS NULL) = (revoked_by IS NULL)", name=op.f("ck_consents_revoked_together")),
        sa.CheckConstraint(
            "(target_kind = 'plugin') = (target_organization_id IS NOT NULL)",
            name=op.f("ck_consents_target_organization"),
        ),
        sa.ForeignKeyConstraint(
            ["target_organization_id"],
            ["organizations.id"],
            name=op.f("fk_consents_target_organization_id_organizations"),
        ),
        # The key a referral names its consent and receiving organisation by (fk_referrals_consent_target).
        sa.UniqueConstraint(
            "id",
            "organization_id",
            "target_organization_id",
            name=op.f("uq_consents_id_organization_id_target_organization_id"),
        ),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"], name=op.f("fk_consents_resident_id_residents")),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_consents_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
    )
    op.create_index("ix_consents_resident", "consents", ["resident_id", "id"])
    op.create_index(op.f("ix_consents_organization_id"), "consents", ["organization_id"])
    own_table(op, "consents", inherit=(Inherit("residents", "resident_id"),))
    op.execute(NEVER_DELETED)
    op.execute(
        "CREATE TRIGGER consents_never_deleted BEFORE DELETE ON consents "
        "FOR EACH ROW EXECUTE FUNCTION consents_never_deleted()"
    )
    op.execute(REVOKE_ONLY)
    op.execute(
        "CREATE TRIGGER consents_revoke_only BEFORE UPDATE ON consents FOR EACH ROW EXECUTE FUNCTION consents_revoke_only()"
    )

    op.create_table(
        "referrals",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("resident_id", sa.BigInteger(), nullable=False),
        sa.Column("consent_id", sa.BigInteger(), nullable=False),
        sa.Column("source_plugin", sa.String(length=40), nullable=False),
        sa.Column("source_kind", sa.String(length=40), server_default="", nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=True),
        sa.Column("target_plugin", sa.String(length=40), nullable=True),
        sa.Column("target_organization_id", sa.BigInteger(), nullable=True),
        sa.Column("target_outside", sa.String(length=100), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default=sa.text("'sent'"), nullable=False),
        sa.Column("sent_by", sa.String(length=100), nullable=False),
        sa.Column("sent_by_account_id", sa.BigInteger(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_by", sa.String(length=100), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decline_reason", sa.Text(), server_default="", nullable=False),
        sa.Column("completed_by", sa.String(length=100), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completion_note", sa.Text(), server_default="", nullable=False),
        sa.Column("revoked_by", sa.String(length=100), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoke_reason", sa.Text(), server_default="", nullable=False),
        sa.Column("organization_id", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(f"status IN ({STATUSES})", name=op.f("ck_referrals_status_valid")),
        sa.CheckConstraint(
            "(target_plugin IS NOT NULL AND target_organization_id IS NOT NULL AND target_outside IS NULL) OR "
            "(target_plugin IS NULL AND target_organization_id IS NULL AND target_outside IS NOT NULL)",
            name=op.f("ck_referrals_one_target"),
        ),
        sa.CheckConstraint(
            "status IN ('sent', 'revoked') OR target_outside IS NULL",
            name=op.f("ck_referrals_outside_only_sent_or_revoked"),
        ),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"], name=op.f("fk_referrals_resident_id_residents")),
        sa.ForeignKeyConstraint(["consent_id"], ["consents.id"], name=op.f("fk_referrals_consent_id_consents")),
        # A referral goes to the organisation its consent names (MATCH SIMPLE: an outside referral has none).
        sa.ForeignKeyConstraint(
            ["consent_id", "organization_id", "target_organization_id"],
            ["consents.id", "consents.organization_id", "consents.target_organization_id"],
            name=op.f("fk_referrals_consent_target"),
        ),
        sa.ForeignKeyConstraint(
            ["sent_by_account_id"], ["accounts.id"], name=op.f("fk_referrals_sent_by_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["target_organization_id"],
            ["organizations.id"],
            name=op.f("fk_referrals_target_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_referrals_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals")),
    )
    op.create_index("ix_referrals_received", "referrals", ["target_organization_id", "id"])
    op.create_index("ix_referrals_sent", "referrals", ["organization_id", "id"])
    op.create_index("ix_referrals_resident", "referrals", ["resident_id"])
    op.create_index("ix_referrals_consent", "referrals", ["consent_id"])
    op.create_index(op.f("ix_referrals_organization_id"), "referrals", ["organization_id"])
    own_table(op, "referrals", inherit=(Inherit("residents", "resident_id"), Inherit("consents", "consent_id")))
    op.execute(CONSENT_IN_FORCE)
    op.execute(ENABLED_PLUGINS)
    op.execute(SHARED_RESIDENT)
    op.execute(HOLD_CONSENT)
    for function in FUNCTIONS:
        op.execute(f"REVOKE EXECUTE ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {APP_ROLE}")
    # The receiving organisation's policies (policies of one command are OR-ed with tenant_isolation).
    op.execute(f"CREATE POLICY referral_received ON referrals FOR SELECT USING {RECEIVED}")
    op.execute(
        f"CREATE POLICY referral_answer ON referrals FOR UPDATE USING {RECEIVED} "
        "WITH CHECK (target_organization_id = (SELECT app_org()))"
    )
    op.execute(RECIPIENT_GUARD)
    op.execute(
        "CREATE TRIGGER referrals_recipient_guard BEFORE UPDATE ON referrals "
        "FOR EACH ROW EXECUTE FUNCTION referrals_recipient_guard()"
    )
    op.execute(REFERRALS_NEVER_DELETED)
    op.execute(
        "CREATE TRIGGER referrals_never_deleted BEFORE DELETE ON referrals "
        "FOR EACH ROW EXECUTE FUNCTION referrals_never_deleted()"
    )


def downgrade() -> None:
    op.drop_table("referrals")
    op.execute("DROP FUNCTION IF EXISTS referrals_recipient_guard()")
    op.execute("DROP FUNCTION IF EXISTS referrals_never_deleted()")
    for function in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
    op.drop_table("consents")
    op.execute("DROP FUNCTION IF EXISTS consents_never_deleted()")
    op.execute("DROP FUNCTION IF EXISTS consents_revoke_only()")
    op.drop_table("residents")
