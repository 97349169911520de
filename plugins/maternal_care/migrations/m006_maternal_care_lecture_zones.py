"""maternal_care: a lecture registration keeps the time zone it was made in

Revision ID: m006
Revises: m004

`maternal_care_lecture_registrations.time_zone`: the IANA zone given at registration (the service validates it
and writes the deployment's zone when none is given). Reminders, promotion (the audience judged again on her
lecture's local date) and the audience fit staff see count her dates in it, not in the deployment's zone.
Registrations made before this revision were judged in the deployment's default zone, Asia/Shanghai: that is
what they keep (the server default). A CHECK keeps the column to a zone name's shape (what the service
accepts); whether the zone exists is the service's to say.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "m006"
down_revision: str | Sequence[str] | None = "m004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

T = "maternal_care_lecture_registrations"
SHAPE = "^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$"


def upgrade() -> None:
    op.add_column(T, sa.Column("time_zone", sa.String(length=64), server_default="Asia/Shanghai", nullable=False))
    op.create_check_constraint(op.f(f"ck_{T}_time_zone_shape"), T, f"time_zone ~ '{SHAPE}'")


def downgrade() -> None:
    op.drop_constraint(op.f(f"ck_{T}_time_zone_shape"), T, type_="check")
    op.drop_column(T, "time_zone")
