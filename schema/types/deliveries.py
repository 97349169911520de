"""Delivery of notifications as administrators see it (core.delivery.admin): deliveries with their status
and reason, and the organisation's webhook endpoint (never its secret)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry import Info

from core.delivery import admin
from core.services.pagination import page_size
from schema import ids
from schema.types.common import Connection


@strawberry.enum(description="Where a delivery stands: QUEUED (waiting or retrying), SENT, or PARKED (given up).")
class DeliveryStatus(Enum):
    QUEUED = "queued"
    SENT = "sent"
    PARKED = "parked"


@strawberry.type(
    description="One notification on one channel (log, webhook, or a plugin's). Administrators of the "
    "organisation see these; the recipient's phone is masked."
)
class Delivery:
    id: strawberry.ID
    status: DeliveryStatus
    channel: str
    kind: str = strawberry.field(description="What the message is about (`offer`, `maternal_care.reminder`…).")
    attempts: int = strawberry.field(description="Attempts made so far (counted afresh by retryDelivery).")
    last_error: str = strawberry.field(description="Why the last attempt failed (why it is parked); empty if none.")
    next_attempt_at: datetime | None = strawberry.field(description="When a queued delivery is tried next.")
    sent_at: datetime | None
    created_at: datetime
    recipient: str = strawberry.field(description="The recipient's name and masked phone.")

    @classmethod
    def from_model(cls, m: Any, recipients: dict[int, str] | None = None) -> Delivery:
        return cls(
            id=strawberry.ID(ids.encode("Delivery", m.id)),
            status=DeliveryStatus(m.status),
            channel=m.channel,
            kind=m.kind,
            attempts=m.attempts,
            last_error=m.last_error,
            next_attempt_at=m.next_attempt_at if m.status == "queued" else None,
            sent_at=m.sent_at,
            created_at=m.created_at,
            recipient=(recipients or {}).get(m.notification_id, ""),
        )


@strawberry.type(description="Where the organisation's notifications are posted. The signing secret is never shown.")
class WebhookEndpoint:
    url: str
    enabled: bool
    configured_by: str
    created_at: datetime
    updated_at: datetime
    organization_pk: strawberry.Private[int]
    generated: strawberry.Private[str | None] = None

    @strawberry.field
    def organization_id(self) -> strawberry.ID:
        return strawberry.ID(ids.encode("Organization", self.organization_pk))

    @classmethod
    def from_model(cls, m: Any, generated: str | None = None) -> WebhookEndpoint:
        return cls(
            url=m.url,
            enabled=m.enabled,
            configured_by=m.configured_by,
            created_at=m.created_at,
            updated_at=m.updated_at,
            organization_pk=m.organization_id,
            generated=generated,
        )


def _organization(raw: strawberry.ID | None) -> int | None:
    return ids.decode(raw, "Organization", ("organizationId",)) if raw is not None else None


@strawberry.type
class DeliveriesQuery:
    @strawberry.field(
        description="Deliveries of notifications (administrators: their organisation's; platform administrators: "
        "the one named, else their own), parked first, newest first within a status."
    )
    async def deliveries(
        self,
        info: Info,
        organization_id: strawberry.ID | None = None,
        statuses: list[DeliveryStatus] | None = None,
        channel: str | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Delivery]:
        size = page_size(first, info.context.settings.max_page_size)
        page = await info.context.read(
            admin.list_deliveries,
            _organization(organization_id),
            statuses=[s.value for s in statuses or ()],
            channel=channel,
            first=size,
            after=after,
        )
        shown = await info.context.read(admin.recipients, [d.notification_id for d in page.items])
        return Connection.build(
            page,
            lambda d: Delivery.from_model(d, shown),
            lambda: info.context.read(lambda _: page.total_count()),
        )

    @strawberry.field(description="The organisation's webhook endpoint (null if none is configured).")
    async def webhook_endpoint(
        self, info: Info, organization_id: strawberry.ID | None = None
    ) -> WebhookEndpoint | None:
        found = await info.context.read(admin.endpoint, _organization(organization_id))
        return WebhookEndpoint.from_model(found) if found is not None else None
