"""Shared plumbing for Relay node types backed by a by-id DataLoader."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from strawberry import Info
from strawberry.dataloader import DataLoader


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
