"""The `situation` query: an organisation's situation right now, for the coordinators' wall screen (/board).
The rules live in core.services.situation; this translates."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import Info

from core.services import situation as service
from schema import ids
from schema.types import enums
from schema.types.community import Community
from schema.types.reference import District

if TYPE_CHECKING:
    from schema.queries import PluginFigure, UrgencyCount, VolunteerModeCount

# Declared beside the `stats` query, which uses them too (schema.queries imports this module).
UrgencyCountRef = Annotated["UrgencyCount", strawberry.lazy("schema.queries")]
VolunteerModeCountRef = Annotated["VolunteerModeCount", strawberry.lazy("schema.queries")]
PluginFigureRef = Annotated["PluginFigure", strawberry.lazy("schema.queries")]


@strawberry.type(description="Open requests of one district.")
class DistrictOpenCount:
    district: District
    count: int
    critical: int = strawberry.field(description="Of which CRITICAL.")


@strawberry.type(description="Open requests of one community, where it is (for the map).")
class CommunityOpenCount:
    community: Community
    count: int
    critical: int = strawberry.field(description="Of which CRITICAL.")
    latitude: float | None = strawberry.field(description="The community's; null if it has no location.")
    longitude: float | None


@strawberry.type(description="An organisation's situation at `asOf`: what is open, where, what is late, who is free.")
class Situation:
    as_of: datetime
    open_requests: int = strawberry.field(description="Requests submitted, verified, matched or in progress.")
    open_requests_by_urgency: list[UrgencyCountRef] = strawberry.field(
        description="Every urgency, most urgent first (zero included)."
    )
    open_requests_by_district: list[DistrictOpenCount] = strawberry.field(
        description="Districts with open requests, most first."
    )
    overdue_requests: int = strawberry.field(description="Open requests past their target (as the `overdue` query).")
    volunteers_available_by_mode: list[VolunteerModeCountRef] = strawberry.field(
        description="Available volunteers of every mode (zero included)."
    )
    open_requests_by_community: list[CommunityOpenCount] = strawberry.field(
        description="Communities with open requests, most first."
    )
    figures: list[PluginFigureRef] = strawberry.field(
        description="Figures of the plugins your organisation enabled (e.g. supplies' items_distributed_today)."
    )

    @classmethod
    def from_service(cls, s: service.Situation) -> Situation:
        from schema.queries import PluginFigure, UrgencyCount, VolunteerModeCount

        return cls(
            as_of=s.as_of,
            open_requests=s.open_requests,
            open_requests_by_urgency=[UrgencyCount(urgency=enums.Urgency(u.value), count=n) for u, n in s.by_urgency],
            open_requests_by_district=[
                DistrictOpenCount(district=District.from_model(d), count=c.count, critical=c.critical)
                for d, c in s.by_district
            ],
            overdue_requests=s.overdue_requests,
            volunteers_available_by_mode=[
                VolunteerModeCount(mode=enums.VolunteerMode(m.value), count=n)
                for m, n in s.volunteers_available_by_mode
            ],
            open_requests_by_community=[
                CommunityOpenCount(
                    community=Community.from_model(m),
                    count=c.count,
                    critical=c.critical,
                    latitude=m.latitude,
                    longitude=m.longitude,
                )
                for m, c in s.by_community
            ],
            figures=[PluginFigure(plugin=p, key=f.key, label=f.label, value=Decimal(f.value)) for p, f in s.figures],
        )


@strawberry.type
class SituationQuery:
    @strawberry.field(
        description="Your organisation's situation right now, for the coordinators' wall screen (/board): open "
        "requests by urgency, district and community, overdue requests, available volunteers, plugins' figures of "
        "today. Administrators, social workers (their communities) and community heads (theirs); platform "
        "administrators name the organisation (default: their own)."
    )
    async def situation(self, info: Info, organization_id: strawberry.ID | None = None) -> Situation:
        org = ids.decode_optional(organization_id, "Organization", ("organizationId",))
        found = await info.context.read(service.situation, org, info.context.app.host)
        return Situation.from_service(found)
