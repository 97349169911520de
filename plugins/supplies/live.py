"""Live updates of the supplies plugin: distributions as they are planned, dispatched, delivered, cancelled.

The announcements come from a row trigger (migration s005): every path that changes a distribution
announces it, in its own transaction. The subscription reloads each one as
the subscriber (supplies staff of the organisation: `services.rows_by_id`) and ends when the plugin is
switched off for the subscriber's organisation (`live_events(..., plugin="supplies")`). Like every
subscription, it starts with RESYNC (listening from then on).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import strawberry
from strawberry import Info

import core
from core.live import Event
from plugins.supplies import services
from plugins.supplies.models import Distribution
from plugins.supplies.types import SuppliesDistribution, SuppliesDistributionStatus
from schema.api import LiveChange, live_events

TOPIC = "supplies.distribution"


@strawberry.type(description="A distribution that is new or changed, as you may see it now.")
class SuppliesDistributionChange:
    change: LiveChange
    distribution: SuppliesDistribution | None = strawberry.field(description="Null for RESYNC.")
    previous_status: SuppliesDistributionStatus | None = strawberry.field(
        description="The status it left, when the change moved it."
    )


async def _staff(ctx: core.ServiceContext) -> None:
    core.require(ctx, "supplies.manage")


async def _load(ctx: core.ServiceContext, pk: int) -> Any:
    return (await services.rows_by_id(ctx, Distribution, [pk])).get(pk)


@strawberry.type
class SuppliesSubscription:
    @strawberry.subscription(description="Distributions as they are planned, dispatched, delivered or cancelled.")
    async def supplies_distribution_changed(
        self, info: Info, statuses: list[SuppliesDistributionStatus] | None = None
    ) -> AsyncGenerator[SuppliesDistributionChange, None]:
        await info.context.read(_staff)
        wanted = {s.value for s in statuses or ()}

        def concerns(event: Event) -> bool:
            # (Another organisation's distributions never come: live_events keeps to the subscriber's.)
            return not wanted or event.get("status") in wanted

        async for event in live_events(info, {TOPIC}, accept=concerns, plugin="supplies"):
            if event.resync:
                yield SuppliesDistributionChange(change=LiveChange.RESYNC, distribution=None, previous_status=None)
                continue
            found = await info.context.read(_load, event.id)
            if found is not None:
                was = event.was.get("status")
                yield SuppliesDistributionChange(
                    change=LiveChange.CREATED if event.op == "insert" else LiveChange.UPDATED,
                    distribution=SuppliesDistribution.of(found),
                    previous_status=SuppliesDistributionStatus(was) if isinstance(was, str) else None,
                )
