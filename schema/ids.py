"""Relay global IDs: opaque to clients, `base64("Type:pk")` inside."""

from __future__ import annotations

from collections.abc import Sequence

from strawberry.relay import GlobalID, GlobalIDValueError

from core.errors import DomainError


def encode(type_name: str, pk: int) -> str:
    return str(GlobalID(type_name, str(pk)))


def decode(raw: str, expected: str, field: Sequence[str]) -> int:
    """The primary key inside a global ID of type `expected`, or INVALID_ID addressed to `field`."""
    try:
        gid = GlobalID.from_id(raw)
        pk = int(gid.node_id)
    except (GlobalIDValueError, ValueError, TypeError):
        raise DomainError("INVALID_ID", f"“{raw}” is not a valid ID.", field) from None
    if gid.type_name != expected:
        raise DomainError("INVALID_ID", f"Expected the ID of a {expected}, got one of a {gid.type_name}.", field)
    if pk <= 0 or pk > 2**63 - 1:
        raise DomainError("INVALID_ID", f"“{raw}” is not a valid ID.", field)
    return pk


def decode_optional(raw: str | None, expected: str, field: Sequence[str]) -> int | None:
    return None if raw is None else decode(raw, expected, field)
