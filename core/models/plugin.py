from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from core.database import Base
from core.models._columns import updated_at


class PluginEnablement(Base):
    __tenancy__ = "organization"
    """Whether an organisation uses an installed plugin. No row means not enabled; disabling keeps data."""

    __tablename__ = "plugin_enablements"

    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    plugin_name: Mapped[str] = mapped_column(String(40), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    changed_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = updated_at()
