"""Assignment: a volunteer on a help request."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry
from strawberry import Info, relay

from core import models
from schema.prefetch import reference
from schema.types import enums
from schema.types.help_request import HelpRequest
from schema.types.nodes import resolve_nodes
from schema.types.volunteer import Volunteer


@strawberry.type(description="A volunteer on a help request.")
class Assignment(relay.Node):
    id: relay.NodeID[int]
    status: enums.AssignmentStatus  # type: ignore[valid-type]
    note: str
    decline_reason: str
    hours: Decimal | None
    offered_at: datetime
    responded_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None = strawberry.field(description="An unanswered offer expires then.")
    request_id: strawberry.Private[int]
    volunteer_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, m: models.Assignment) -> Assignment:
        return cls(
            id=m.id,
            status=enums.AssignmentStatus(m.status),
            note=m.note,
            decline_reason=m.decline_reason,
            hours=m.hours,
            offered_at=m.offered_at,
            responded_at=m.responded_at,
            finished_at=m.finished_at,
            expires_at=m.expires_at,
            request_id=m.request_id,
            volunteer_id=m.volunteer_id,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await resolve_nodes(info, node_ids, lambda ld: ld.assignment, cls.from_model, required)

    request: HelpRequest = reference(lambda ld: ld.help_request, "request_id", HelpRequest.from_model)
    volunteer: Volunteer = reference(lambda ld: ld.volunteer, "volunteer_id", Volunteer.from_model)
