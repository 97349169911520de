"""A bare strawberry schema with the same response shape as bench.requests_page's query and in-memory
resolvers: what GraphQL execution alone costs in this process (no HTTP, database, loaders or rules)."""

from __future__ import annotations

import strawberry


@strawberry.type
class Named:
    name: str


@strawberry.type
class FloorAssignment:
    status: str

    @strawberry.field
    async def volunteer(self) -> Named:
        return Named(name="v")


@strawberry.type
class FloorRequest:
    id: strawberry.ID
    title: str
    status: str
    urgency: str
    needed_by: str

    @strawberry.field
    async def community(self) -> Named:
        return Named(name="c")

    @strawberry.field
    async def assignments(self) -> list[FloorAssignment]:
        return [FloorAssignment(status="offered"), FloorAssignment(status="accepted")]


@strawberry.type
class FloorQuery:
    @strawberry.field
    async def items(self) -> list[FloorRequest]:
        return [
            FloorRequest(id=strawberry.ID(str(i)), title="t", status="s", urgency="u", needed_by="n")
            for i in range(100)
        ]


SCHEMA = strawberry.Schema(query=FloorQuery)
QUERY = "{ items { id title status urgency neededBy community { name } assignments { status volunteer { name } } } }"


async def execute() -> None:
    result = await SCHEMA.execute(QUERY)
    assert not result.errors, result.errors
