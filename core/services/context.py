"""What every service call receives: the database session, who is acting, and the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Viewer:
    """Who is acting. `label` is what histories record as the actor."""

    label: str = "anonymous"
    account_id: int | None = None
    organization_id: int | None = None


SYSTEM = Viewer(label="system")


@dataclass
class ServiceContext:
    session: AsyncSession
    viewer: Viewer = SYSTEM
    # Injected so that deadlines and expiry can be tested without sleeping.
    clock: Callable[[], datetime] = field(default=utc_now)

    def now(self) -> datetime:
        return self.clock()
