"""Batched reads behind the supplies types' nested fields: each is one statement per page of parents (per
request, through `info.context.loaders`), never one per parent. Row-level security applies to all of them
(the request's session acts for the caller's organisation).

Written here rather than in `schema.api` (which has no nested-connection helper yet): `nested_connection` uses
the request's window and count loaders (`schema.loaders.Loaders.window` / `.count`) with their key type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import select
from strawberry import Info
from strawberry.dataloader import DataLoader

import core
from plugins.supplies import services
from schema import api as gql
from schema.loaders import WindowKey

T = TypeVar("T")


def _grouped(info: Info, name: str, statement: Callable[[list[int]], Any], default: Any) -> DataLoader[int, Any]:
    """A loader of `{parent id: value}` from a service's `(parent id, value…)` statement."""
    loaders = info.context.loaders

    def factory(_: Any) -> DataLoader[int, Any]:
        async def load(ids: list[int]) -> list[Any]:
            found = {r[0]: tuple(r[1:]) for r in await loaders.run(statement(ids))}
            return [found.get(i, default) for i in ids]

        return DataLoader(load)

    return loaders.get(f"supplies:{name}", factory)


async def distribution_line(info: Info, distribution_id: int) -> tuple[int | None, int]:
    """(item id, quantity planned) of a distribution."""
    return await _grouped(info, "distribution_line", services.distribution_lines_statement, (None, 0)).load(
        distribution_id
    )


async def allocated_fen(info: Info, donation_id: int) -> int:
    (fen,) = await _grouped(info, "allocated", services.allocated_statement, (0,)).load(donation_id)
    return int(fen or 0)


async def batch_on_hand(info: Info, batch_id: int) -> int:
    (on_hand,) = await _grouped(info, "batch_on_hand", services.batch_on_hand_statement, (0,)).load(batch_id)
    return int(on_hand or 0)


def require_manage(info: Info) -> None:
    """supplies.manage for nested lists that lead to the ledger and donors (a community head confirming a
    delivery gets the distribution, not its ledger)."""
    viewer = info.context.viewer
    if viewer.role is None:
        raise core.DomainError("UNAUTHENTICATED", "Sign in first.")
    if not core.can(viewer, "supplies.manage"):
        raise core.DomainError("FORBIDDEN", "You may not do this.")


async def nested_connection(
    info: Info,
    name: str,
    model: type,
    fk: Any,
    ordering: core.Ordering[Any],
    parent_id: int,
    first: int | None,
    after: str | None,
    convert: Callable[[Any], T],
) -> gql.Connection[T]:
    """A page of a parent's children (e.g. a batch's movements) in one statement for all parents of a page
    (row_number() per parent), with `totalCount` counted per parent on demand, also batched."""
    require_manage(info)
    size = gql.first_of(info, first)
    loaders = info.context.loaders

    def base(_filter: Any) -> Any:
        return select(model)

    page = await loaders.window(f"supplies:{name}", base, fk, ordering).load(WindowKey(parent_id, size, after))

    async def count() -> int:
        return int(await loaders.count(f"supplies:{name}", base, fk).load((parent_id, None)))

    return gql.Connection.build(page, convert, count)
