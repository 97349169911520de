"""Shared plumbing for Relay node types backed by a by-id DataLoader."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from strawberry import Info
from strawberry.dataloader import DataLoader

from core.errors import DomainError

# A caller who may not address a type at all (signed out, lacking the plugin's permission, plugin not enabled
# for their organisation) gets null from node(id:), as core's types answer outside the caller's scope: the
# answer does not depend on whether the id exists, and one such id in nodes(ids:) does not blank the others.
NOT_ADDRESSABLE = frozenset({"UNAUTHENTICATED", "FORBIDDEN", "PLUGIN_DISABLED"})


def _pk(raw: str) -> int | None:
    try:
        pk = int(raw)
    except ValueError:
        return None
    return pk if 0 < pk < 2**63 else None


async def resolve_nodes(
    info: Info,
    node_ids: Iterable[str],
    loader: Callable[[Any], DataLoader[int, Any]],
    convert: Callable[[Any], Any],
    required: bool,
) -> list[Any]:
    """Load nodes by id in one batch; unknown or malformed ids are None (an error if `required`)."""
    pks = [_pk(str(i)) for i in node_ids]
    rows = await loader(info.context.loaders).load_many([p for p in pks if p is not None])
    found = {row.id: row for row in rows if row is not None}
    out = [convert(found[p]) if p in found else None for p in pks]
    if required and any(o is None for o in out):
        raise ValueError("Some of the requested nodes do not exist.")
    return out


async def resolve_node_rows(
    info: Info,
    node_ids: Iterable[str],
    fetch: Callable[[Any, list[int]], Awaitable[dict[int, Any]]],
    convert: Callable[[Any], Any],
    required: bool,
) -> list[Any]:
    """`resolve_nodes` for types without a core loader (plugin types): `fetch(ctx, pks)` is a service call
    returning the rows the caller may see by id (row-level security leaves out other organisations'), so an
    unknown, malformed or foreign id is None alike (an error if `required`)."""
    pks = [_pk(str(i)) for i in node_ids]
    try:
        found = await info.context.read(fetch, [p for p in pks if p is not None])
    except DomainError as refused:
        if refused.code not in NOT_ADDRESSABLE:
            raise
        found = {}
    out = [convert(found[p]) if p in found else None for p in pks]
    if required and any(o is None for o in out):
        raise ValueError("Some of the requested nodes do not exist.")
    return out
