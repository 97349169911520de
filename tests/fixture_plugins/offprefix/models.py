"""A table outside the plugin's namespace."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

import core


class LooseNote(core.OrganizationOwned, core.Base):
    __tablename__ = "loose_notes"

    id: Mapped[int] = core.pk_column()
    text: Mapped[str] = mapped_column(String(100))
