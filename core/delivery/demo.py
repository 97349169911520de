"""The delivery part of the demo data set: the association's messages routed to the log channel (sent by the
first round of a running service) and a webhook endpoint, switched off (example.org answers nothing useful)."""

from __future__ import annotations

from sqlalchemy import exists, select

from core.delivery import webhooks
from core.models import Delivery, Notification, WebhookEndpoint
from core.services.common import flush
from core.services.context import ServiceContext

DEMO_ENDPOINT = "https://hooks.example.org/yunshegong"


async def add_demo_data(ctx: ServiceContext, organization_id: int) -> None:
    """Call in the demo transaction, acting for `organization_id`, after the demo's messages are queued."""
    pending = (
        await ctx.session.scalars(
            select(Notification).where(
                Notification.organization_id == organization_id,
                Notification.delivered_at.is_(None),
                ~exists().where(Delivery.notification_id == Notification.id),
            )
        )
    ).all()
    ctx.session.add_all(
        Delivery(notification_id=n.id, channel="log", kind=n.kind, next_attempt_at=ctx.now()) for n in pending
    )
    done = await webhooks.configure(ctx, organization_id, DEMO_ENDPOINT, None, allow_private=False)
    endpoint: WebhookEndpoint = done.endpoint
    endpoint.enabled = False
    await flush(ctx)
