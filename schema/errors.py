"""Expected errors as schema data: `errors: [UserError!]!` on every mutation payload.

Core mutations use `UserError` with `code: ErrorCode`. A plugin builds its own error type with
`error_type("Supplies", {...})` (saleor's pattern: one error type per domain); it carries the core codes
as well, since plugins meet NOT_FOUND or INVALID_ID too.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry

from core.errors import CORE_ERROR_CODES, DomainError


def _enum(name: str, codes: dict[str, str]) -> type[Enum]:
    members = Enum(name, {code: code for code in codes})  # type: ignore[misc]
    return strawberry.enum(
        members,
        name=name,
        description="Stable error codes: clients may switch on them; they are never renamed.",
    )


ErrorCode = _enum("ErrorCode", CORE_ERROR_CODES)


@strawberry.interface(description="What every expected error carries.")
class Error:
    message: str = strawberry.field(description="Human-readable; may change between releases.")
    field: list[str] | None = strawberry.field(
        default=None, description='Path to the input field at fault, e.g. ["input", "phone"].'
    )


@strawberry.type(description="An expected failure of a core mutation. Nothing was written.")
class UserError(Error):
    code: ErrorCode  # type: ignore[valid-type]


def error_type(prefix: str, extra_codes: dict[str, str]) -> type[Any]:
    """A plugin's own error type `<prefix>Error` with enum `<prefix>ErrorCode` (core codes included)."""
    codes = {**CORE_ERROR_CODES, **extra_codes}
    enum_cls = _enum(f"{prefix}ErrorCode", codes)
    cls = type(f"{prefix}Error", (Error,), {"__annotations__": {"code": enum_cls}})
    return strawberry.type(cls, description=f"An expected failure of a {prefix} mutation. Nothing was written.")


def to_user_errors(exc: DomainError, error_cls: type[Any] = UserError) -> list[Any]:
    code_enum = error_cls.__annotations__["code"] if error_cls is not UserError else ErrorCode
    out = []
    for item in exc.errors:
        try:
            code = code_enum[item.code]
        except KeyError:
            # A service raised a code its error type does not declare: a programming error, not user input.
            raise RuntimeError(f"error code {item.code!r} is not declared for {error_cls.__name__}") from exc
        out.append(error_cls(message=item.message, field=list(item.field) if item.field else None, code=code))
    return out
