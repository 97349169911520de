"""GraphQL enums mirroring core.vocab (same member names and values, so conversion is `Vocab(value)`).

Mirrors rather than decorating core's enums: core stays free of strawberry.
"""

from __future__ import annotations

from enum import Enum, EnumType, StrEnum
from typing import Any, TypeVar

import strawberry

from core import vocab

E = TypeVar("E", bound=StrEnum)


class _ByValue(EnumType):
    """`Enum(value)` in one dictionary lookup. EnumType.__call__ takes ~0.6 µs, and a page converts a database
    value to its member for every enum column of every row (~1,200 on a page of requests with their offers)."""

    def __call__(cls, value: Any, *args: Any, **kwargs: Any) -> Any:
        if not args and not kwargs:
            try:
                member = cls._value2member_map_.get(value)
            except TypeError:  # an unhashable value: EnumType says what is wrong with it
                member = None
            if member is not None:
                return member
        return super().__call__(value, *args, **kwargs)


class _MirrorEnum(StrEnum, metaclass=_ByValue):
    pass


def mirror(source: type[E], description: str) -> Any:
    return strawberry.enum(_MirrorEnum(source.__name__, {m.name: m.value for m in source}), description=description)  # type: ignore[misc, call-overload]


def to_vocab(source: type[E], value: Enum | None) -> E | None:
    return None if value is None else source(value.value)


OrganizationKind = mirror(vocab.OrganizationKind, "What kind of body an organisation is.")
DistrictKind = mirror(vocab.DistrictKind, "District (区), county (县) or development zone (开发区).")
LiaisonRole = mirror(vocab.LiaisonRole, "A seat on a community's work group.")
VolunteerMode = mirror(vocab.VolunteerMode, "How a volunteer serves: online, offline (in person) or in reserve.")
Team = mirror(vocab.Team, "The online volunteer teams of the association.")
Availability = mirror(vocab.Availability, "Whether a volunteer can take new assignments now.")
CredentialKind = mirror(vocab.CredentialKind, "Passes, permits and licences volunteers hold.")
RequestCategory = mirror(vocab.RequestCategory, "What a help request asks for.")
PopulationTag = mirror(vocab.PopulationTag, "Who the people helped are.")
Urgency = mirror(vocab.Urgency, "How urgent a request is; lists sort critical first.")
RequestStatus = mirror(vocab.RequestStatus, "Where a request is in its lifecycle.")
EscalationStage = mirror(vocab.EscalationStage, "The target a request can miss.")
AssignmentStatus = mirror(vocab.AssignmentStatus, "Where an assignment is in its lifecycle.")


@strawberry.enum(description="Orderings of help request lists.")
class HelpRequestOrder(Enum):
    URGENCY = "urgency"
    NEWEST = "newest"
