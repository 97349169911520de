"""Scalars shared by core and plugins: annotate with `Money`; the schema maps it (SCALARS, StrawberryConfig)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, NewType

import strawberry

_MONEY = re.compile(r"^-?\d{1,13}(\.\d{1,2})?$")


def _parse_money(value: Any) -> Decimal:
    # A string of yuan with at most two decimals, or a whole number: never a float (binary fractions), an
    # exponent, NaN or Infinity.
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError('Money is a string of yuan with at most two decimals, e.g. "1200.50".')
    text = str(value).strip()
    if not _MONEY.match(text):
        raise ValueError('Money is a string of yuan with at most two decimals, e.g. "1200.50".')
    return Decimal(text)


def _serialize_money(value: Decimal | int) -> str:
    return f"{Decimal(value):.2f}"


Money = NewType("Money", Decimal)
MONEY_SCALAR = strawberry.scalar(
    name="Money",
    description='An amount of yuan as a string with two decimals, e.g. "1200.50" (in and out).',
    serialize=_serialize_money,
    parse_value=_parse_money,
)

SCALARS: dict[object, Any] = {Money: MONEY_SCALAR}
