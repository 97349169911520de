"""What administrators see and do about delivery: the deliveries of their organisation (parked first, with
the reason), queueing a parked one again, and the organisation's webhook endpoint.

Organisation administrators act for their own organisation; platform administrators for any (naming it,
else their own). Everyone else: FORBIDDEN. Another organisation's delivery answers like a missing one
(row-level security hides it). Recipients are shown masked: a name and a masked phone, never the number.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from sqlalchemy import case, select, update

from core.delivery import messages, webhooks
from core.errors import DomainError
from core.i18n import _
from core.models import Delivery, Notification
from core.services.access import role_of
from core.services.common import flush
from core.services.context import ServiceContext
from core.services.pagination import Ordering, Page, paginate
from core.services.privacy import mask_phone
from core.vocab import Role

STATUSES = ("queued", "sent", "parked")
# Parked first (they need someone), then queued, then sent; newest first within each.
_RANK = case({"parked": 0, "queued": 1}, value=Delivery.status, else_=2)
PARKED_FIRST: Ordering[Delivery] = Ordering(
    "deliveries.parked_first",
    (_RANK, -Delivery.id),
    lambda d: ({"parked": 0, "queued": 1}.get(d.status, 2), -d.id),
)
TEST_KIND = "webhook_test"
ADMINS = frozenset({Role.PLATFORM_ADMIN, Role.ORGANIZATION_ADMIN, Role.SYSTEM})


def require_admin(ctx: ServiceContext) -> None:
    role = role_of(ctx.viewer)
    if role is None:
        raise DomainError("UNAUTHENTICATED", "Sign in first.")
    if role not in ADMINS:
        raise DomainError("FORBIDDEN", "You may not do this.")


def organization_for(ctx: ServiceContext, organization_id: int | None) -> int:
    """The organisation the caller administers delivery for: `organization_id` or their own."""
    require_admin(ctx)
    chosen = organization_id if organization_id is not None else ctx.viewer.organization_id
    if chosen is None:
        raise DomainError("REQUIRED", "Name the organisation.", ("input", "organizationId"))
    if role_of(ctx.viewer) == Role.ORGANIZATION_ADMIN and chosen != ctx.viewer.organization_id:
        raise DomainError(
            "FORBIDDEN", "Only {what} of your organisation.", ("input", "organizationId"), what=_("deliveries")
        )
    return chosen


async def list_deliveries(
    ctx: ServiceContext,
    organization_id: int | None,
    *,
    statuses: Sequence[str] = (),
    channel: str | None = None,
    first: int,
    after: str | None,
) -> Page[Delivery]:
    org = organization_for(ctx, organization_id)
    stmt = select(Delivery).where(Delivery.organization_id == org)
    if statuses:
        stmt = stmt.where(Delivery.status.in_([s for s in statuses if s in STATUSES]))
    if channel:
        stmt = stmt.where(Delivery.channel == channel)
    return await paginate(ctx, stmt, PARKED_FIRST, first=first, after=after)


async def recipients(ctx: ServiceContext, notification_ids: Iterable[int]) -> dict[int, str]:
    """Each notification's recipient as administrators see it in the list: the name and a masked phone."""
    wanted = set(notification_ids)
    if not wanted:
        return {}
    rows = (await ctx.session.scalars(select(Notification).where(Notification.id.in_(wanted)))).all()
    out = {}
    for message in await messages.load(ctx.session, rows):
        phone = mask_phone(message.recipient.phone) or ""
        out[message.notification_id] = " ".join(p for p in (message.recipient.name, phone) if p)
    return out


async def retry(ctx: ServiceContext, delivery_id: int) -> Delivery:
    """Queue a parked delivery again, due now, with its attempts counted afresh."""
    require_admin(ctx)
    # One read to find it (row-level security hides another organisation's) and whose it is; then the locks.
    found = (
        await ctx.session.execute(
            select(Delivery.notification_id, Delivery.organization_id).where(Delivery.id == delivery_id)
        )
    ).one_or_none()
    if found is None:
        raise DomainError("NOT_FOUND", "No such delivery.", ("input", "id"))
    organization_for(ctx, found.organization_id)
    # The notification first, as the worker records outcomes: no deadlock with a worker finishing a sibling.
    await ctx.session.execute(
        select(Notification.id).where(Notification.id == found.notification_id).with_for_update(key_share=True)
    )
    locked = await ctx.session.scalar(
        select(Delivery).where(Delivery.id == delivery_id).with_for_update().execution_options(populate_existing=True)
    )
    if locked is None or locked.status != "parked":
        raise DomainError("INVALID_TRANSITION", "Only a parked delivery can be retried.", ("input", "id"))
    now = ctx.now()
    locked.status = "queued"
    locked.attempts = 0
    locked.next_attempt_at = now
    locked.updated_at = now
    await ctx.session.execute(
        update(Notification).where(Notification.id == found.notification_id).values(delivered_at=None)
    )
    await flush(ctx)
    return locked


async def endpoint(ctx: ServiceContext, organization_id: int | None) -> webhooks.WebhookEndpoint | None:
    return await webhooks.endpoint_of(ctx, organization_for(ctx, organization_id))


async def configure_webhook(
    ctx: ServiceContext,
    organization_id: int | None,
    url: str,
    secret: str | None,
    *,
    allow_private: bool,
    ports: Collection[int] = webhooks.DEFAULT_PORTS,
) -> webhooks.Configured:
    return await webhooks.configure(
        ctx, organization_for(ctx, organization_id), url, secret, allow_private=allow_private, ports=ports
    )


async def remove_webhook(ctx: ServiceContext, organization_id: int | None) -> bool:
    return await webhooks.remove(ctx, organization_for(ctx, organization_id))


async def send_test(ctx: ServiceContext, organization_id: int | None) -> Delivery:
    """Queue a test message to the organisation's webhook only (the worker sends it with the next round)."""
    org = organization_for(ctx, organization_id)
    if await webhooks.endpoint_of(ctx, org) is None:
        raise DomainError("NOT_FOUND", "No webhook endpoint is configured.", ("input", "organizationId"))
    # To a "person": the caller's account may belong to another organisation (a platform administrator).
    notification = Notification(
        organization_id=org,
        recipient_name=ctx.viewer.label[:100],
        recipient_phone="-",
        kind=TEST_KIND,
        source="core",
        payload={"test": True, "requestedBy": ctx.viewer.label},
    )
    ctx.session.add(notification)
    await flush(ctx)
    delivery = Delivery(notification_id=notification.id, channel="webhook", kind=TEST_KIND, next_attempt_at=ctx.now())
    ctx.session.add(delivery)
    await flush(ctx)
    await ctx.session.refresh(delivery)
    return delivery
