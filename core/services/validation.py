"""Input rules shared by the services: phone numbers, names, coordinates, tags."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import StrEnum

from core.errors import Validator
from core.i18n import Text, _

# Mainland mobile: 1[3-9] + 9 digits. Landline: an area code, then a 7–8 digit number, optionally an
# extension. Area codes are 010 and 02x (the large cities) or 0 + three digits starting 3–9; this
# tells where the area code ends once separators are gone. Spaces, hyphens, brackets and a +86/0086
# prefix are accepted and dropped.
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^(0(?:10|2\d)|0[3-9]\d{2})(\d{7,8})(?:[#*转](\d{1,6}))?$")
_COUNTRY_PREFIX = re.compile(r"^(?:\+86|0086)")


def normalize_phone(raw: str) -> str | None:
    """The canonical form (`13812345678` or `029-88881234`), or None when `raw` is not a valid number."""
    compact = re.sub(r"[\s\-()（）]", "", raw or "")
    compact = _COUNTRY_PREFIX.sub("", compact)
    if _MOBILE.match(compact):
        return compact
    landline = _LANDLINE.match(compact)
    if landline:
        area, number, extension = landline.groups()
        formatted = f"{area}-{number}"
        return f"{formatted}-{extension}" if extension else formatted
    return None


def phone(v: Validator, field: Sequence[str] | str, raw: str | None, *, required: bool = True) -> str | None:
    if raw is None or raw.strip() == "":
        if required:
            v.add(field, "REQUIRED", "A phone number is required.")
        return None
    normalized = normalize_phone(raw)
    if normalized is None:
        v.add(field, "INVALID_PHONE", "“{value}” is not a mainland mobile or landline number.", value=raw[:40])
    return normalized


def _shows_anything(value: str) -> bool:
    """Whether the text has a visible character: not only separators (Z*) and format or control marks (C*),
    e.g. U+200B zero-width space or U+202E right-to-left override."""
    return any(unicodedata.category(ch)[0] not in "ZC" for ch in value)


def text(
    v: Validator,
    field: Sequence[str] | str,
    raw: str | None,
    *,
    max_length: int,
    required: bool = True,
    label: Text = _("This field"),
) -> str:
    """`raw` trimmed; REQUIRED when empty (unless optional), OUT_OF_RANGE when longer than `max_length`.
    `label` names the field in the message: a translatable phrase, e.g. `_("Name")`."""
    value = (raw or "").strip()
    if not _shows_anything(value):
        # Only spaces, zero-width or direction marks: nothing a reader would see is as empty as nothing.
        value = ""
    if required and not value:
        v.add(field, "REQUIRED", "{label} must not be empty.", label=label)
    elif len(value) > max_length:
        v.add(field, "OUT_OF_RANGE", "{label} is longer than {limit} characters.", label=label, limit=max_length)
    return value


def int_range(v: Validator, field: Sequence[str] | str, value: int, low: int, high: int, label: Text) -> int:
    v.check(
        low <= value <= high,
        field,
        "OUT_OF_RANGE",
        "{label} must be between {low} and {high}.",
        label=label,
        low=low,
        high=high,
    )
    return value


def location(
    v: Validator, latitude: float | None, longitude: float | None, prefix: Sequence[str] = ()
) -> tuple[float | None, float | None]:
    if (latitude is None) != (longitude is None):
        v.add(
            (*prefix, "latitude" if latitude is None else "longitude"),
            "REQUIRED",
            "Latitude and longitude go together.",
        )
        return None, None
    if latitude is not None and not -90 <= latitude <= 90:
        v.add((*prefix, "latitude"), "OUT_OF_RANGE", "Latitude must be between -90 and 90.")
    if longitude is not None and not -180 <= longitude <= 180:
        v.add((*prefix, "longitude"), "OUT_OF_RANGE", "Longitude must be between -180 and 180.")
    return latitude, longitude


def future_time(v: Validator, field: Sequence[str] | str, value: datetime | None, now: datetime) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        v.add(field, "INVALID_INPUT", "Times must carry a UTC offset, e.g. 2026-12-01T18:00:00+08:00.")
        return None
    v.check(value > now, field, "IN_PAST", "This time lies in the past.")
    return value


def tags(
    v: Validator, field: Sequence[str] | str, raw: Iterable[str] | None, *, max_items: int = 30, max_length: int = 50
) -> list[str]:
    """Free-form tags (skills): trimmed, lower-cased, de-duplicated, order kept."""
    out: list[str] = []
    for item in raw or ():
        tag = item.strip().lower()
        if not tag:
            continue
        if len(tag) > max_length:
            v.add(
                field, "OUT_OF_RANGE", "“{value}…” is longer than {limit} characters.", value=tag[:20], limit=max_length
            )
            continue
        if tag not in out:
            out.append(tag)
    v.check(len(out) <= max_items, field, "OUT_OF_RANGE", "At most {limit} entries.", limit=max_items)
    return out


def enum_values(items: Iterable[StrEnum | str] | None) -> list[str]:
    """Enum members (or their stored strings) as stored strings, de-duplicated, order kept."""
    out: list[str] = []
    for item in items or ():
        value = str(item)  # a StrEnum's str() is its value
        if value not in out:
            out.append(value)
    return out
