"""Relay global IDs: opaque to clients, `base64("Type:pk")` inside."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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


def decode_any(raw: str, field: Sequence[str]) -> tuple[str, int]:
    """(type name, primary key) of a global ID of any type, or INVALID_ID."""
    try:
        gid = GlobalID.from_id(raw)
        return gid.type_name, int(gid.node_id)
    except (GlobalIDValueError, ValueError, TypeError):
        raise DomainError("INVALID_ID", f"“{raw}” is not a valid ID.", field) from None


def decode_optional(raw: str | None, expected: str, field: Sequence[str]) -> int | None:
    return None if raw is None else decode(raw, expected, field)


# Reference fields inputs carry as global IDs: python field name → expected type.
REFERENCE_FIELDS = {"district_id": "District", "organization_id": "Organization", "community_id": "Community"}


def decode_refs(values: dict[str, Any], refs: dict[str, str] = REFERENCE_FIELDS) -> dict[str, Any]:
    """Decode the global IDs among an input's values in place (absent and null ones stay as they are)."""
    from strawberry.utils.str_converters import to_camel_case

    for key, type_name in refs.items():
        if values.get(key) is not None:
            values[key] = decode(values[key], type_name, ("input", to_camel_case(key)))
    return values
