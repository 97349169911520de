"""Mutations on delivery (rules in core.delivery.admin): retry a parked delivery, configure, test or remove
the organisation's webhook endpoint."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry import Info

from core.delivery import admin
from core.services.context import ServiceContext
from schema import ids
from schema.errors import UserError
from schema.mutations.base import mutate, payload
from schema.types.deliveries import Delivery, WebhookEndpoint

DeliveryPayload = payload("DeliveryPayload", "delivery", Delivery)


@strawberry.type(description="Result of configuring a webhook endpoint.")
class WebhookEndpointPayload:
    webhook_endpoint: WebhookEndpoint | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)

    @strawberry.field(
        description="The signing secret the service generated (when none was given): shown this once, never again."
    )
    def generated_secret(self) -> str | None:
        return self.webhook_endpoint.generated if self.webhook_endpoint is not None else None


@strawberry.type(description="Result of removing a webhook endpoint.")
class RemoveWebhookPayload:
    removed: bool | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class RetryDeliveryInput:
    id: strawberry.ID


@strawberry.input
class ConfigureWebhookInput:
    url: str = strawberry.field(
        description="https:// (or http://) URL, without user name or password, on an allowed port (443, 80 unless "
        "the deployment says otherwise)."
    )
    secret: str | None = strawberry.field(
        default=None, description="The signing secret (24-200 characters); omitted: one is generated and returned."
    )
    organization_id: strawberry.ID | None = strawberry.field(
        default=None, description="Platform administrators: the organisation (default: your own)."
    )


@strawberry.input
class OrganizationWebhookInput:
    organization_id: strawberry.ID | None = None


def _organization(raw: strawberry.ID | None) -> int | None:
    return ids.decode(raw, "Organization", ("input", "organizationId")) if raw is not None else None


@strawberry.type
class DeliveryMutations:
    @strawberry.mutation(description="Queue a parked delivery again (its attempts are counted afresh).")
    async def retry_delivery(self, info: Info, input: RetryDeliveryInput) -> DeliveryPayload:
        async def work(ctx: ServiceContext) -> Any:
            return await admin.retry(ctx, ids.decode(input.id, "Delivery", ("input", "id")))

        return await mutate(info, DeliveryPayload, "delivery", Delivery.from_model, work)

    @strawberry.mutation(description="Set (or replace) the organisation's webhook endpoint and signing secret.")
    async def configure_webhook(self, info: Info, input: ConfigureWebhookInput) -> WebhookEndpointPayload:
        settings = info.context.settings

        async def work(ctx: ServiceContext) -> Any:
            return await admin.configure_webhook(
                ctx,
                _organization(input.organization_id),
                input.url,
                input.secret,
                allow_private=settings.delivery_webhook_allow_private,
                ports=settings.delivery_webhook_ports,
            )

        def convert(done: Any) -> WebhookEndpoint:
            return WebhookEndpoint.from_model(done.endpoint, done.generated_secret)

        return await mutate(info, WebhookEndpointPayload, "webhook_endpoint", convert, work)

    @strawberry.mutation(description="Stop posting the organisation's notifications to its webhook.")
    async def remove_webhook(self, info: Info, input: OrganizationWebhookInput) -> RemoveWebhookPayload:
        async def work(ctx: ServiceContext) -> Any:
            return await admin.remove_webhook(ctx, _organization(input.organization_id))

        return await mutate(info, RemoveWebhookPayload, "removed", bool, work)

    @strawberry.mutation(description="Queue a test message to the organisation's webhook (sent with the next round).")
    async def send_test_webhook(self, info: Info, input: OrganizationWebhookInput) -> DeliveryPayload:
        async def work(ctx: ServiceContext) -> Any:
            return await admin.send_test(ctx, _organization(input.organization_id))

        return await mutate(info, DeliveryPayload, "delivery", Delivery.from_model, work)
