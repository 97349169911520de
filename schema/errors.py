"""Expected errors as schema data: `errors: [UserError!]!` on every mutation payload, core's and plugins'.

One error type and one `ErrorCode` enum for the whole API, so that generated clients get one type to switch
on. The enum holds core's codes (core.errors.CORE_ERROR_CODES) and the codes the loaded plugins declare
(hook `register_error_codes`), each with its description: `use_codes` sets them before a schema is built.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, cast

import strawberry
from graphql import GraphQLError, Node
from strawberry.types.enum import EnumValue, StrawberryEnumDefinition

from core.errors import CORE_ERROR_CODES, DomainError
from core.i18n import translate


def _core_enum() -> type[Enum]:
    members = Enum("ErrorCode", {code: code for code in CORE_ERROR_CODES})  # type: ignore[misc]
    return strawberry.enum(
        members,
        name="ErrorCode",
        description="Stable error codes (core's and the plugins'): clients may switch on them; never renamed.",
    )


ErrorCode = _core_enum()
_DEFINITION = cast(StrawberryEnumDefinition, ErrorCode.__strawberry_definition__)  # type: ignore[attr-defined]
# Every code any schema built in this process declared: a service raising anything else is a bug.
_DECLARED: dict[str, str] = dict(CORE_ERROR_CODES)


def use_codes(codes: dict[str, str]) -> None:
    """The codes (with descriptions) of the next schema built: core's and its plugins'. A strawberry schema
    converts the enum's values when it is built, so each schema keeps the codes it was built with."""
    _DECLARED.update(codes)
    _DEFINITION.values = [EnumValue(name=code, value=code, description=text) for code, text in codes.items()]


use_codes(CORE_ERROR_CODES)


@strawberry.interface(description="What every expected error carries.")
class Error:
    message: str = strawberry.field(description="Human-readable; may change between releases.")
    field: list[str] | None = strawberry.field(
        default=None, description='Path to the input field at fault, e.g. ["input", "phone"].'
    )


@strawberry.type(description="An expected failure of a mutation. Nothing was written.")
class UserError(Error):
    code: ErrorCode  # type: ignore[valid-type]


def to_user_errors(exc: DomainError) -> list[Any]:
    out = []
    for item in exc.errors:
        if item.code not in _DECLARED:
            # A service raised a code nobody declared: a programming error, not user input.
            raise RuntimeError(f"error code {item.code!r} is not declared (core.errors or register_error_codes)")
        # In the caller's language (Accept-Language); the code stays what it is.
        message = item.localized()
        out.append(UserError(message=message, field=list(item.field) if item.field else None, code=item.code))
    return out


class Refusal(GraphQLError):
    """A GraphQL error the service words itself (a refused scalar value, a query limit), with `extensions.code`.
    Like a DomainError, its message is an English template with parameters, said in the caller's language
    when the error is presented (schema.extensions.safe_error), also where graphql-core quotes it inside a
    message of its own ("Variable '$x' has invalid value: <ours>")."""

    def __init__(
        self,
        template: str,
        *,
        code: str,
        nodes: Node | list[Node] | None = None,
        extensions: dict[str, Any] | None = None,
        **params: Any,
    ) -> None:
        super().__init__(
            translate(template, params, "en") if params else template,
            nodes,
            extensions={**(extensions or {}), "code": code},
        )
        self.template = template
        self.params = params

    def at(self, node: Node) -> Refusal:
        """The same refusal, located at `node` (a literal in the document)."""
        extensions = {k: v for k, v in (self.extensions or {}).items() if k != "code"}
        return Refusal(self.template, code=self.code, nodes=node, extensions=extensions, **self.params)

    @property
    def code(self) -> str:
        return str((self.extensions or {}).get("code"))

    def localized(self, locale: str | None = None) -> str:
        return translate(self.template, self.params, locale)
