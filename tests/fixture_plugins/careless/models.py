"""A plugin table without an organisation: every organisation would read every row."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

import core


class CarelessNote(core.Base):
    __tablename__ = "careless_notes"

    id: Mapped[int] = core.pk_column()
    text: Mapped[str] = mapped_column(String(100))
