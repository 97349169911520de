"""Relay global IDs: opaque to clients, `base64("Type:pk")` inside."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from strawberry.relay import GlobalID, GlobalIDValueError

from core.errors import DomainError


def encode(type_name: str, pk: int) -> str:
    return str(GlobalID(type_name, str(pk)))


# Our IDs are a few dozen characters; longer ones are refused before decoding (and not echoed whole).
MAX_ID_LENGTH = 200
_DIGITS = re.compile(r"^[1-9][0-9]{0,18}$")


def decode(raw: str, expected: str, field: Sequence[str]) -> int:
    """The primary key inside a global ID of type `expected`, or INVALID_ID addressed to `field`."""
    type_name, pk = decode_any(raw, field)
    if type_name != expected:
        raise DomainError(
            "INVALID_ID",
            "Expected the ID of a {expected}, got one of a {actual}.",
            field,
            expected=expected,
            actual=type_name,
        )
    return pk


def decode_any(raw: str, field: Sequence[str]) -> tuple[str, int]:
    """(type name, primary key) of a global ID of any type, or INVALID_ID: the key is plain ASCII digits
    and fits a bigint (1 to 2^63 - 1), so no malformed ID reaches a query."""
    invalid = DomainError("INVALID_ID", "“{value}” is not a valid ID.", field, value=str(raw)[:40])
    if not isinstance(raw, str) or len(raw) > MAX_ID_LENGTH:
        raise invalid
    try:
        gid = GlobalID.from_id(raw)
    except (GlobalIDValueError, ValueError, TypeError):
        raise invalid from None
    if not gid.type_name or not _DIGITS.match(gid.node_id) or int(gid.node_id) > 2**63 - 1:
        raise invalid
    return gid.type_name, int(gid.node_id)


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
