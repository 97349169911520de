"""counseling: every client is a core resident

Revision ID: c003
Revises: c002
Create Date: 2026-11-30

Each existing client becomes a resident of its own organisation (its name, phone and community), and
`resident_id` is NOT NULL from then on. A client's resident belongs to the client's organisation (the
tenancy trigger checks it, as it does the community).
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
        INSERT INTO residents (organization_id, name, phone, community_id)
        VALUES (c.organization_id, c.name, c.phone, c.community_id) RETURNING id INTO made;
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
