"""counseling: every client is a core resident

Revision ID: c003
Revises: c002
Create Date: 2026-11-30

Each existing client becomes a resident of its own organisation (its name, phone and community), and
`resident_id` is NOT NULL from then on. A client's resident belongs to the client's organisation (the
tenancy trigger checks it, as it does the community).

One person, one resident: a client whose organisation already has a resident of the same name and
(non-empty) phone is attached to that resident instead of a new one. Such residents exist when casework's
w006 ran first (both depend only on 0012, so either order happens), or for a second counseling client of the
same person. The match is (organisation, name, phone) -- the key casework's reactions use to find a
requester's resident; a client without a phone always gets a resident of its own (a name alone is no
identity). The residents made here have no recorder (`recorded_by_account_id` NULL): those who serve them
by relation see them (core.residents).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c003"
down_revision: str | Sequence[str] | None = "c002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "0012"

BACKFILL = """DO $$
DECLARE
    c record;
    made bigint;
BEGIN
    FOR c IN SELECT id, organization_id, name, phone, community_id FROM counseling_clients
             WHERE resident_id IS NULL ORDER BY id LOOP
        made := NULL;
        IF c.phone <> '' THEN
            SELECT r.id INTO made FROM residents r
            WHERE r.organization_id = c.organization_id AND r.name = c.name AND r.phone = c.phone
            ORDER BY r.id LIMIT 1;
        END IF;
        IF made IS NULL THEN
            INSERT INTO residents (organization_id, name, phone, community_id)
            VALUES (c.organization_id, c.name, c.phone, c.community_id) RETURNING id INTO made;
        END IF;
        UPDATE counseling_clients SET resident_id = made WHERE id = c.id;
    END LOOP;
END $$"""


def upgrade() -> None:
    op.add_column("counseling_clients", sa.Column("resident_id", sa.BigInteger(), nullable=True))
    op.execute(BACKFILL)
    op.alter_column("counseling_clients", "resident_id", nullable=False)
    op.create_foreign_key(
        op.f("fk_counseling_clients_resident_id_residents"), "counseling_clients", "residents", ["resident_id"], ["id"]
    )
    op.create_index(op.f("ix_counseling_clients_resident_id"), "counseling_clients", ["resident_id"])
    # The second link (after tenant_0_community_id): the resident must be of the client's organisation.
    op.execute(
        "CREATE TRIGGER tenant_1_resident_id BEFORE INSERT OR UPDATE OF resident_id, organization_id "
        "ON counseling_clients FOR EACH ROW EXECUTE FUNCTION tenant_inherit('residents', 'resident_id')"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS tenant_1_resident_id ON counseling_clients")
    op.drop_index(op.f("ix_counseling_clients_resident_id"), "counseling_clients")
    op.drop_constraint(op.f("fk_counseling_clients_resident_id_residents"), "counseling_clients", type_="foreignkey")
    # The residents made for clients stay: they are core's records now, possibly referred or consented since.
    op.drop_column("counseling_clients", "resident_id")
