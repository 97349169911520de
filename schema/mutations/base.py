"""How every mutation runs: decode, call the service in a transaction, answer with a payload.

A DomainError anywhere (ID decoding included) rolls the transaction back and comes back as
`errors` on the payload; nothing is written.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import strawberry
from strawberry import Info

from core.errors import DomainError
from core.services import access, audit
from core.services.context import ServiceContext
from schema.errors import UserError, to_user_errors

R = TypeVar("R")

DENIED_CODES = frozenset({"FORBIDDEN", "UNAUTHENTICATED", "PLUGIN_DISABLED"})


def payload(name: str, field_name: str, type_: Any, description: str = "") -> Any:
    """A payload type `{ <field_name>: <type_>, errors: [UserError!]! }` (one error type for every mutation,
    core's and plugins')."""
    cls = type(
        name,
        (),
        {
            "__annotations__": {field_name: type_ | None, "errors": list[UserError]},
            field_name: None,
            "errors": strawberry.field(default_factory=list),
        },
    )
    return strawberry.type(cls, description=description or f"Result of a mutation on a {field_name}.")


async def mutate(
    info: Info,
    payload_cls: Any,
    field_name: str,
    convert: Callable[[Any], Any],
    work: Callable[[ServiceContext], Awaitable[Any]],
) -> Any:
    context = info.context
    context.operation_name = info.field_name

    async def signed_in_work(ctx: ServiceContext) -> Any:
        # Every mutation but sign-in needs a caller: answered before any lookup, since a lookup by an
        # anonymous caller finds nothing (row-level security) and would say NOT_FOUND instead.
        access.require_signed_in(ctx)
        return await work(ctx)

    try:
        result = await context.write(signed_in_work)
    except DomainError as exc:
        if exc.code in DENIED_CODES:
            # The change was refused and rolled back; the attempt itself is kept.
            await audit.record_separately(
                context.app.sessionmaker,
                context.viewer,
                [audit.AuditRecord(action="denied", operation=info.field_name, detail=str(exc))],
                context.app.clock(),
                context.request_id,
            )
        return payload_cls(errors=to_user_errors(exc))
    return payload_cls(**{field_name: convert(result)}, errors=[])


def changes(data: Any, *, skip: Iterable[str] = ("id",), nullable: Iterable[str] = ()) -> dict[str, Any]:
    """The fields a partial-update input actually carries. An explicit null is refused (REQUIRED)
    unless the field is nullable, where it clears the value."""
    skip_set, nullable_set = set(skip), set(nullable)
    out: dict[str, Any] = {}
    missing: list[str] = []
    for key, value in vars(data).items():
        if key in skip_set or value is strawberry.UNSET:
            continue
        if value is None and key not in nullable_set:
            missing.append(key)
            continue
        out[key] = value
    if missing:
        from strawberry.utils.str_converters import to_camel_case

        from core.errors import UserErrorData

        raise DomainError.many(
            UserErrorData(message="This field cannot be null.", code="REQUIRED", field=("input", to_camel_case(k)))
            for k in missing
        )
    return out
