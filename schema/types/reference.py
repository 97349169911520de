"""Reference data: organisations, districts, trainings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import strawberry
from strawberry import Info, relay

from core import models
from schema.types import enums
from schema.types.nodes import resolve_nodes


@strawberry.type(description="The association, a partner agency, a hospital, a foundation …")
class Organization(relay.Node):
    id: relay.NodeID[int]
    name: str
    kind: enums.OrganizationKind  # type: ignore[valid-type]

    @classmethod
    def from_model(cls, m: models.Organization) -> Organization:
        return cls(id=m.id, name=m.name, kind=enums.OrganizationKind(m.kind))

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await resolve_nodes(info, node_ids, lambda ld: ld.organization, cls.from_model, required)


@strawberry.type(description="A district (区), county (县) or development zone (开发区).")
class District(relay.Node):
    id: relay.NodeID[int]
    name: str
    kind: enums.DistrictKind  # type: ignore[valid-type]

    @classmethod
    def from_model(cls, m: models.District) -> District:
        return cls(id=m.id, name=m.name, kind=enums.DistrictKind(m.kind))

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await resolve_nodes(info, node_ids, lambda ld: ld.district, cls.from_model, required)


@strawberry.type(description="A pre-service training course.")
class Training(relay.Node):
    id: relay.NodeID[int]
    code: str
    name: str
    description: str

    @classmethod
    def from_model(cls, m: models.Training) -> Training:
        return cls(id=m.id, code=m.code, name=m.name, description=m.description)

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await resolve_nodes(info, node_ids, lambda ld: ld.training, cls.from_model, required)


async def load_optional(info: Info, loader_name: str, pk: int | None, convert: Any) -> Any:
    if pk is None:
        return None
    row = await getattr(info.context.loaders, loader_name).load(pk)
    return None if row is None else convert(row)
