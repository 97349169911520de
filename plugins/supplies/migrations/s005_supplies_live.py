"""supplies: distributions announce their changes on the live channel (suppliesDistributionChanged)

Revision ID: s005
Revises: s004
Create Date: 2026-11-30

A row trigger (the function live_notify comes with core revision 0013) announces each planned or changed
distribution with its id, organisation and routing keys -- status, warehouse, community, request: IDs and
codes only -- when its transaction commits.

The SQL is written out here (what core.live.migrations.install_trigger builds today): a revision installs
what it says, whatever that helper becomes later.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "s005"
down_revision: str | Sequence[str] | None = "s004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "0013"

_ARGS = "'supplies.distribution', 'id', 'status', 'warehouse_id', 'community_id', 'request_id'"


def upgrade() -> None:
    op.execute(
        "CREATE TRIGGER live_insert AFTER INSERT ON supplies_distributions FOR EACH ROW "
        f"EXECUTE FUNCTION live_notify({_ARGS})"
    )
    op.execute(
        "CREATE TRIGGER live_update AFTER UPDATE ON supplies_distributions FOR EACH ROW "
        f"WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION live_notify({_ARGS})"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS live_update ON supplies_distributions")
    op.execute("DROP TRIGGER IF EXISTS live_insert ON supplies_distributions")
