"""What every service call receives: the database session, who is acting, and the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

if TYPE_CHECKING:
    from core.events import DomainEvent


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Viewer:
    """Who is acting. `label` is what histories record as the actor; `role` None means anonymous.

    Scope fields: `organization_id` (organisation roles, API tokens), `community_id` (community heads),
    `volunteer_id` (volunteers, and social workers: the communities they serve are their liaison seats).
    """

    label: str = "anonymous"
    account_id: int | None = None
    organization_id: int | None = None
    role: str | None = None
    community_id: int | None = None
    volunteer_id: int | None = None
    # Plugin permissions granted to the role (core.hookspecs.register_permissions).
    extra_permissions: frozenset[str] = frozenset()
    api_token_id: int | None = None


# Scripts and jobs: every permission, but -- like everyone -- only within the organisation named
# (`dataclasses.replace(SYSTEM, organization_id=…)`); the database keeps them there (core.tenancy).
SYSTEM = Viewer(label="system", role="system")
# Reads accounts before the caller is known (sign-in); nothing else. The bearer check reads as the
# authenticator only inside app_bearer_account/app_api_token (migration 0009).
AUTHENTICATOR = Viewer(label="authenticator", role="authenticator")


class EventPublisher(Protocol):
    async def publish(self, event: DomainEvent, ctx: ServiceContext) -> None: ...


def _default_policy() -> Any:
    from core.services.matching_policy import MatchingPolicy

    return MatchingPolicy()


class _Nobody:
    async def publish(self, event: DomainEvent, ctx: ServiceContext) -> None:
        return None


@dataclass
class ServiceContext:
    session: AsyncSession
    viewer: Viewer = SYSTEM
    # Injected so that deadlines and expiry can be tested without sleeping.
    clock: Callable[[], datetime] = field(default=utc_now)
    # The plugin host in a running service; without one, nobody listens.
    events: EventPublisher = field(default_factory=_Nobody)
    # Per-request memo (e.g. which plugins the viewer's organisation enabled); shared by one request's calls.
    memo: dict[str, Any] = field(default_factory=dict)
    # Matching weights, offer lifetime and deadline targets (core.services.matching_policy).
    policy: Any = field(default_factory=_default_policy)
    # The audit entry of the write being run (core.services.audit.PendingWrite), set by its runner.
    pending_write: Any = None
    # The caller's time zone (the X-Timezone header, else the deployment's YUNSHEGONG_TIMEZONE), for what
    # "today" means to them; None outside a request (scripts, jobs): UTC (`local_zone`).
    zone: tzinfo | None = None

    def __post_init__(self) -> None:
        # The database acts for this viewer from the next statement on (organisation isolation).
        from core import tenancy

        tenancy.bind(self.session, self.viewer)

    def now(self) -> datetime:
        return self.clock()

    def local_zone(self) -> tzinfo:
        return self.zone or UTC

    def start_of_today(self) -> datetime:
        """Midnight today in the caller's zone (`local_zone`), as an aware datetime."""
        local = self.now().astimezone(self.local_zone())
        return local.replace(hour=0, minute=0, second=0, microsecond=0)

    async def publish(self, event: DomainEvent) -> None:
        """Tell plugins what happened, inside this transaction: a plugin's failure undoes the change."""
        await self.events.publish(event, self)
