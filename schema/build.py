"""build_schema(): the strawberry schema of core (plugins' contributions join here)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from zoneinfo import ZoneInfo

import strawberry
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.types.base_scalars import DateTimeDefinition

from core.settings import Settings
from schema.extensions import RequestLifecycle, SafeErrors
from schema.mutations.assignments import AssignmentMutations
from schema.mutations.communities import CommunityMutations
from schema.mutations.help_requests import HelpRequestMutations
from schema.mutations.reference import ReferenceMutations
from schema.mutations.volunteers import VolunteerMutations
from schema.queries import CoreQuery, node_fields


def datetime_scalar(zone: str) -> object:
    """DateTime as ISO 8601 with offset, presented in `zone` (the database keeps UTC)."""
    tz = ZoneInfo(zone)
    return dataclasses.replace(
        DateTimeDefinition,
        description=f"ISO 8601 date-time with offset; shown in {zone}. Inputs must carry an offset.",
        serialize=lambda value: value.astimezone(tz).isoformat(),
    )


@strawberry.type
class Mutation(CommunityMutations, VolunteerMutations, HelpRequestMutations, AssignmentMutations, ReferenceMutations):
    pass


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    settings = settings or Settings()
    query = strawberry.type(type("Query", (CoreQuery,), node_fields()))
    return strawberry.Schema(
        query=query,
        mutation=Mutation,
        # Front ends send the same few documents again and again: parse and validate each once.
        extensions=[RequestLifecycle, SafeErrors, ParserCache, ValidationCache],
        scalar_overrides={datetime: datetime_scalar(settings.timezone)},  # type: ignore[dict-item]
        config=StrawberryConfig(auto_camel_case=True),
    )
