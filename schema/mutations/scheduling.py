"""A staff member's working hours and absences (the shared calendar's availability)."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

import strawberry
from strawberry import Info

from core.services import scheduling
from core.services.context import ServiceContext
from schema import ids
from schema.errors import UserError
from schema.mutations.base import mutate


@strawberry.type(description="A change to someone's hours; nothing is written when errors is non-empty.")
class AvailabilityPayload:
    ok: bool = False
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input(description="A weekly window, in local time of `timezone` (IANA name).")
class AvailabilityWindowInput:
    volunteer_id: strawberry.ID
    weekday: int = strawberry.field(description="0 = Monday … 6 = Sunday")
    start: time
    end: time
    timezone: str = "Asia/Shanghai"


@strawberry.input(description="Leave, holidays: no appointments between start and end.")
class AvailabilityExceptionInput:
    volunteer_id: strawberry.ID
    start: datetime
    end: datetime
    reason: str = ""


@strawberry.type
class SchedulingMutations:
    @strawberry.mutation(description="Add a weekly window in which the person takes appointments.")
    async def add_availability_window(self, info: Info, input: AvailabilityWindowInput) -> AvailabilityPayload:
        async def work(ctx: ServiceContext) -> Any:
            owner = ids.decode(input.volunteer_id, "Volunteer", ("input", "volunteerId"))
            return await scheduling.add_window(ctx, owner, input.weekday, input.start, input.end, input.timezone)

        return await mutate(info, AvailabilityPayload, "ok", lambda _: True, work)

    @strawberry.mutation(description="Record an absence (leave, holidays).")
    async def add_availability_exception(self, info: Info, input: AvailabilityExceptionInput) -> AvailabilityPayload:
        async def work(ctx: ServiceContext) -> Any:
            owner = ids.decode(input.volunteer_id, "Volunteer", ("input", "volunteerId"))
            return await scheduling.add_exception(
                ctx, owner, input.start, input.end, input.reason, max_days=info.context.settings.max_range_days
            )

        return await mutate(info, AvailabilityPayload, "ok", lambda _: True, work)
