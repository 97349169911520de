"""help_requests.import_key: the spreadsheet row a request was imported from

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02

The requests import (core.imports.requests) stores on each request it creates a key of the row it came from
(a hash of the organisation, the form's submission id when the file has one, and the row's values), unique
per organisation where set. Importing the same file again then creates nothing, even for requests that were
closed since, while two different needs of one requester are two requests. Requests submitted one by one
keep NULL. The table is organisation-owned already (row-level security unchanged).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("help_requests", sa.Column("import_key", sa.String(length=64), nullable=True))
    op.create_index(
        "uq_help_requests_import_key",
        "help_requests",
        ["organization_id", "import_key"],
        unique=True,
        postgresql_where=sa.text("import_key IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_help_requests_import_key", table_name="help_requests")
    op.drop_column("help_requests", "import_key")
