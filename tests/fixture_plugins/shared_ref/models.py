"""One shared reference table (declared), one without a reason (refused when `UNREASONED` is loaded)."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

import core


class SharedRefUnit(core.SharedByAllOrganizations, core.Base):
    __tablename__ = "shared_ref_units"
    __tenancy_why__ = "units of measure (kg, box, dose): the same words for every organisation"

    id: Mapped[int] = core.pk_column()
    name: Mapped[str] = mapped_column(String(20))
