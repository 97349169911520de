"""Declaring, on a model, whom its rows belong to."""

from __future__ import annotations

from sqlalchemy import BigInteger, FetchedValue, ForeignKey
from sqlalchemy.orm import Mapped, declared_attr, mapped_column


class OrganizationOwned:
    """Mixin for a model whose rows belong to one organisation (core and plugin tables alike).

    The column is NOT NULL and indexed. Its value comes from the service, from the parent row (see
    `own_table(..., inherit=...)`), or from the transaction's organisation (the column default), so a
    plugin can simply leave it out. The table is marked so that the plugin host can check it."""

    __tenancy__ = "organization"

    @declared_attr
    def organization_id(cls) -> Mapped[int]:
        return mapped_column(
            BigInteger,
            ForeignKey("organizations.id"),
            nullable=False,
            index=True,
            server_default=FetchedValue(),
        )


class SharedByAllOrganizations:
    """Mixin for a table deliberately shared by every organisation (reference data, no personal data).
    Subclasses say why in `__tenancy_why__`: it is what a reviewer reads, and the host refuses an empty one."""

    __tenancy__ = "global"
    __tenancy_why__ = ""


def tenancy_of(cls: type) -> str | None:
    """'organization', 'global' (with a stated reason) or None (undeclared) for a mapped class."""
    declared = getattr(cls, "__tenancy__", None)
    if declared == "global" and not str(getattr(cls, "__tenancy_why__", "")).strip():
        return None
    return declared
