"""usernames in one spelling: compatibility-normalised and lower-cased (core.services.auth.canonical_username)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

Sign-up and sign-in now map full-width letters to ASCII and compose accents, so that ａｄｍｉｎ is admin and
one é is one é. An account stored in another spelling is rewritten to the canonical one, so its owner still
signs in. Two accounts whose names become one are left as they are and named in the log: an administrator
must rename one (the newer is most likely the look-alike).
"""

import logging
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger(__name__)


def _canonical(raw: str) -> str:
    # The same mapping as core.services.auth.canonical_username, frozen here: a migration must not change
    # when the service's code does.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", raw.strip()).lower())


def upgrade() -> None:
    bind = op.get_bind()
    # Every organisation's accounts (row-level security is forced on the table, even for its owner).
    bind.execute(sa.text("SELECT set_config('app.role', 'platform_admin', true)"))
    rows = bind.execute(sa.text("SELECT id, username FROM accounts ORDER BY id")).all()
    taken = {username for _id, username in rows}
    for account_id, username in rows:
        canonical = _canonical(username)
        if canonical == username:
            continue
        if canonical in taken:
            log.warning("account %s (%r) spells the username of another account: rename one", account_id, username)
            continue
        bind.execute(sa.text("UPDATE accounts SET username = :u WHERE id = :id"), {"u": canonical, "id": account_id})
        taken.discard(username)
        taken.add(canonical)
    bind.execute(sa.text("SELECT set_config('app.role', '', true)"))


def downgrade() -> None:
    # The old spellings are not kept: the canonical one signs in under the old code too (it lower-cased).
    pass
