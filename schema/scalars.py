"""Input scalars: what the API accepts, and the typed refusal of everything else, at the edge.

A value PostgreSQL cannot store (a NUL character, an unpaired surrogate), a number that is not a plain finite
decimal (`NaN`, `Infinity`, `1e999999999`), or a date outside the years anyone plans in is refused while the
request's values are coerced -- before any resolver or SQL runs -- as a GraphQL error with `extensions.code`
INVALID_INPUT (wrong shape) or OUT_OF_RANGE (well-formed, too large or too far). Literals in the document and
variables go through the same functions.

`Money` is ours (annotate with it; SCALARS maps it). Decimal, Date, Time and DateTime are strawberry's, replaced
through `input_scalars()` (schema.build passes them as `scalar_overrides`). String, ID, Int, Float and Boolean
are graphql-core's specified scalars, which graphql-core forbids redefining ("Redefinition of reserved type"):
`input_scalars()` wraps their input coercion in place instead, once per process.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, NewType

import dateutil.parser
import strawberry
from graphql import (
    FloatValueNode,
    GraphQLBoolean,
    GraphQLError,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLScalarType,
    GraphQLString,
    IntValueNode,
    StringValueNode,
    ValueNode,
    VariableNode,
)
from strawberry.schema.types.base_scalars import DateDefinition, DecimalDefinition, TimeDefinition
from strawberry.types.scalar import ScalarDefinition

from core.i18n import Text, _
from schema.errors import Refusal

# Years an input date or time may name: wide enough for any record this service keeps (birth years, expiry
# dates, plans), narrow enough that converting to UTC and storing in PostgreSQL can never overflow.
MIN_YEAR = 1900
MAX_YEAR = 2200
# Decimal inputs (hours, plan values): digits before and after the point.
MAX_INTEGER_DIGITS = 15
MAX_FRACTION_DIGITS = 6

_SURROGATE = re.compile("[\ud800-\udfff]")
# ASCII digits only: `\d` would take full-width and Arabic-Indic digits too, which Decimal then reads as numbers.
_DECIMAL = re.compile(r"^-?(\d+)(?:\.(\d+))?$", re.ASCII)
_MONEY = re.compile(r"^-?\d{1,13}(\.\d{1,2})?$", re.ASCII)


def refusal(message: str, code: str = "INVALID_INPUT", **params: Any) -> Refusal:
    """A coercion error with a code: graphql-core reports it as it is (with the variable or literal at fault).
    `message` is an English template with `params`, translated when presented."""
    return Refusal(message, code=code, **params)


def check_text(value: str) -> str:
    """`value`, unless it holds what PostgreSQL's text cannot store (NUL) or UTF-8 cannot encode (an unpaired
    surrogate, e.g. from a JSON "\\ud800" escape). Newlines, tabs and every other character stay as sent."""
    if "\x00" in value:
        raise refusal("Text must not contain the NUL character (U+0000).")
    if _SURROGATE.search(value):
        raise refusal("Text must not contain unpaired UTF-16 surrogates (U+D800 to U+DFFF).")
    return value


# -- graphql-core's specified scalars, wrapped in place ---------------------------------------------------------


def _check_float(value: float) -> float:
    # A literal such as 1e999999999 is a valid Float token that Python reads as infinity.
    if not math.isfinite(value):
        raise refusal("Float must be a finite number.")
    return value


def _at(error: GraphQLError, node: ValueNode) -> GraphQLError:
    """`error` located at the literal it refuses (graphql-core reports a scalar's own error as it is)."""
    if error.nodes:
        return error
    if isinstance(error, Refusal):
        return error.at(node)
    return GraphQLError(error.message, node, extensions=error.extensions)


def _with_code(error: GraphQLError) -> GraphQLError:
    if (error.extensions or {}).get("code"):
        return error
    return GraphQLError(error.message, error.nodes, extensions={**(error.extensions or {}), "code": "INVALID_INPUT"})


def _harden(scalar: GraphQLScalarType, check: Callable[[Any], Any]) -> None:
    """Run `check` after the scalar's own input coercion (values and literals), and give the scalar's own
    refusals the INVALID_INPUT code. Idempotent: the wrapped functions are marked."""
    if getattr(scalar.coerce_input_value, "__yunshegong_hardened__", False):
        return
    coerce_value = scalar.coerce_input_value
    coerce_literal = scalar.coerce_input_literal

    def coerce_input_value(value: Any) -> Any:
        try:
            coerced = coerce_value(value)
        except GraphQLError as error:
            raise _with_code(error) from None
        return check(coerced)

    def coerce_input_literal(node: ValueNode) -> Any:
        try:
            return check(coerce_literal(node))  # type: ignore[misc]
        except GraphQLError as error:
            raise _at(_with_code(error), node) from None

    coerce_input_value.__yunshegong_hardened__ = True  # type: ignore[attr-defined]
    scalar.coerce_input_value = coerce_input_value
    scalar.parse_value = coerce_input_value  # type: ignore[method-assign]
    if coerce_literal is not None:
        scalar.coerce_input_literal = coerce_input_literal


def harden_specified_scalars() -> None:
    """String and ID refuse NUL and unpaired surrogates, Float refuses infinity (Int is 32-bit already), and
    all five refuse with `extensions.code`. These objects are graphql-core's, shared by every schema in the
    process: wrapping them is the only way (they cannot be redefined), and it is the same rule everywhere."""
    _harden(GraphQLString, check_text)
    _harden(GraphQLID, check_text)
    _harden(GraphQLFloat, _check_float)
    _harden(GraphQLInt, lambda value: value)
    _harden(GraphQLBoolean, lambda value: value)


# -- our parsers ---------------------------------------------------------------------------------------------------


def literal_parser(parse: Callable[[Any], Any], *, numbers: bool = False) -> Callable[..., Any]:
    """A literal parser calling `parse` on the literal's source text (a string's value; a number's digits as
    written, when `numbers`), so that `1e3` is seen as written, not as the float Python would make of it."""

    def parse_literal(node: ValueNode, variables: dict[str, Any] | None = None) -> Any:
        if isinstance(node, VariableNode):
            return parse((variables or {}).get(node.name.value))
        try:
            if isinstance(node, StringValueNode):
                return parse(node.value)
            if numbers and isinstance(node, (IntValueNode, FloatValueNode)):
                return parse(node.value)
            raise refusal("Expected a quoted string here.")
        except GraphQLError as error:
            raise _at(error, node) from None

    return parse_literal


def _text_input(value: Any, what: Text, example: str) -> str:
    if not isinstance(value, str):
        raise refusal('{what} is a string, e.g. "{example}".', what=what, example=example)
    return check_text(value).strip()


def parse_decimal(value: Any) -> Decimal:
    """A plain decimal (`"2.5"`, `2.5`, `3`): never NaN, Infinity or an exponent, at most 15 digits before the
    point and 6 after it."""
    if isinstance(value, bool):
        raise refusal('A decimal is a number such as "2.5".')
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise refusal('A decimal is a finite number such as "2.5".')
        text = repr(value)
    else:
        text = _text_input(value, _("A decimal"), "2.5")
    shape = _DECIMAL.fullmatch(text)
    if shape is None:
        raise refusal(
            'A decimal is written with digits and at most one point, e.g. "2.5" (no exponent): "{value}".',
            value=text[:40],
        )
    whole, fraction = shape.group(1), shape.group(2) or ""
    if len(whole.lstrip("0")) > MAX_INTEGER_DIGITS or len(fraction) > MAX_FRACTION_DIGITS:
        raise refusal(
            "A decimal has at most {whole} digits before the point and {fraction} after it.",
            "OUT_OF_RANGE",
            whole=MAX_INTEGER_DIGITS,
            fraction=MAX_FRACTION_DIGITS,
        )
    return Decimal(text)


def _parse_money(value: Any) -> Decimal:
    # A string of yuan with at most two decimals, or a whole number: never a float (binary fractions), an
    # exponent, NaN or Infinity.
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise refusal('Money is a string of yuan with at most two decimals, e.g. "1200.50".')
    text = check_text(value).strip() if isinstance(value, str) else str(value)
    if not _MONEY.fullmatch(text):
        raise refusal('Money is a string of yuan with at most two decimals, e.g. "1200.50".')
    return Decimal(text)


def _in_years(value: date, what: Text) -> None:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise refusal(
            "{what} must lie between the years {low} and {high}.",
            "OUT_OF_RANGE",
            what=what,
            low=MIN_YEAR,
            high=MAX_YEAR,
        )


def parse_date(value: Any) -> date:
    """An ISO 8601 calendar date (`2026-12-01`) between MIN_YEAR and MAX_YEAR."""
    text = _text_input(value, _("A date"), "2026-12-01")
    try:
        parsed = date.fromisoformat(text)
    except ValueError:
        raise refusal('Not an ISO 8601 date (e.g. "2026-12-01"): "{value}".', value=text[:40]) from None
    _in_years(parsed, _("A date"))
    return parsed


def parse_datetime(value: Any) -> datetime:
    """An ISO 8601 date-time with a UTC offset (`2026-12-01T18:00:00+08:00`, or `Z`), between MIN_YEAR and
    MAX_YEAR: a time without an offset names no instant, and years near 1 or 9999 overflow on conversion."""
    text = _text_input(value, _("A date-time"), "2026-12-01T18:00:00+08:00")
    try:
        parsed = dateutil.parser.isoparse(text)
    except (ValueError, OverflowError):
        raise refusal(
            'Not an ISO 8601 date-time (e.g. "2026-12-01T18:00:00+08:00"): "{value}".', value=text[:40]
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise refusal("A date-time must carry a UTC offset, e.g. 2026-12-01T18:00:00+08:00.")
    _in_years(parsed, _("A date-time"))
    return parsed


def parse_time(value: Any) -> time:
    """A wall-clock time (`09:30`, `09:30:00`) without an offset: where one matters, the zone is a field of
    its own (an availability window's `timezone`)."""
    text = _text_input(value, _("A time"), "09:30")
    try:
        parsed = time.fromisoformat(text)
    except ValueError:
        raise refusal('Not an ISO 8601 time (e.g. "09:30"): "{value}".', value=text[:40]) from None
    if parsed.tzinfo is not None:
        raise refusal("A time is a wall-clock time without an offset, e.g. 09:30.")
    return parsed


def _serialize_money(value: Decimal | int) -> str:
    return f"{Decimal(value):.2f}"


Money = NewType("Money", Decimal)
MONEY_SCALAR = strawberry.scalar(
    name="Money",
    description='An amount of yuan as a string with two decimals, e.g. "1200.50" (in and out).',
    serialize=_serialize_money,
    parse_value=_parse_money,
    parse_literal=literal_parser(_parse_money),
)

SCALARS: dict[object, Any] = {Money: MONEY_SCALAR}


def _replace(
    definition: ScalarDefinition, parse: Callable[[Any], Any], description: str, *, numbers: bool = False
) -> ScalarDefinition:
    return dataclasses.replace(
        definition, description=description, parse_value=parse, parse_literal=literal_parser(parse, numbers=numbers)
    )


def input_scalars() -> dict[object, ScalarDefinition]:
    """Strawberry's Decimal, Date and Time with our parsing, for `scalar_overrides` (DateTime is added by
    schema.build, which presents it in the caller's zone). Also wraps graphql-core's specified scalars
    (harden_specified_scalars), so that building a schema is what puts every input rule in place."""
    harden_specified_scalars()
    return {
        Decimal: _replace(
            DecimalDefinition,
            parse_decimal,
            f'A decimal number as a string or number, e.g. "2.5": plain digits (no exponent, NaN or Infinity), at '
            f"most {MAX_INTEGER_DIGITS} digits before the point and {MAX_FRACTION_DIGITS} after it.",
            numbers=True,
        ),
        date: _replace(DateDefinition, parse_date, f"ISO 8601 date, e.g. 2026-12-01 (years {MIN_YEAR} to {MAX_YEAR})."),
        time: _replace(TimeDefinition, parse_time, "ISO 8601 wall-clock time without offset, e.g. 09:30."),
    }
