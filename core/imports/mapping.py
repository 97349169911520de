"""Which column of a file fills which field of a kind: the kind's aliases by default, a mapping file on top.

Headers are compared loosely (`normalize_header`), because form services and hand-made sheets decorate them:
"手机号码*", "姓名（必填）", " Phone (required) ", "【所在区县】" all name the same thing as their bare form.
"""

from __future__ import annotations

import json
import re
import tomllib
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import DomainError, UserErrorData
from core.imports.spec import Column

_MARKS = re.compile(r"\((?:必填|必填项|选填|可选|required|optional)\)")
_SPACES = re.compile(r"\s+")


def normalize_header(text: str) -> str:
    """NFKC (full-width to half-width), case folded, without spaces, '*' and required/optional marks, and
    without punctuation around it."""
    value = unicodedata.normalize("NFKC", text or "").casefold()
    value = _SPACES.sub("", value).replace("*", "")
    value = _MARKS.sub("", value)
    start, end = 0, len(value)
    while start < end and unicodedata.category(value[start])[0] in "PS":
        start += 1
    while end > start and unicodedata.category(value[end - 1])[0] in "PS":
        end -= 1
    return value[start:end]


@dataclass
class Resolved:
    """The mapping actually used: column index -> field, and what is reported."""

    by_index: dict[int, str] = field(default_factory=dict)
    mapping: dict[str, str] = field(default_factory=dict)  # header text -> field
    ignored: list[str] = field(default_factory=list)
    header_of: dict[str, str] = field(default_factory=dict)  # field -> header text


def load_mapping(path: Path) -> dict[str, str]:
    """A mapping file: TOML or JSON, `{"header text": "field"}` (TOML: `"手机" = "phone"`, optionally under a
    [mapping] table). A field of "" maps the column to nothing (ignored)."""
    raw = path.read_bytes()
    try:
        if path.suffix.lower() == ".json" or raw.lstrip().startswith(b"{"):
            data = json.loads(raw.decode("utf-8-sig"))
        else:
            data = tomllib.loads(raw.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DomainError(
            "INVALID_MAPPING", "The mapping file cannot be read: {reason}.", ("mapping",), reason=str(exc)[:200]
        ) from exc
    if isinstance(data, dict) and isinstance(data.get("mapping"), dict):
        data = data["mapping"]
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise DomainError("INVALID_MAPPING", 'A mapping is a table of "header text" = "field" entries.', ("mapping",))
    return dict(data)


def resolve(header: Sequence[str], columns: Sequence[Column], mapping: Mapping[str, str] | None) -> Resolved:
    """Map each header to a field. An explicit `mapping` entry wins over the defaults; a field claimed by two
    columns goes to the first (by default) or is an error (explicitly). Raises INVALID_MAPPING naming every
    problem: a mapping entry naming an unknown field, a field mapped twice, a required field left unmapped."""
    known = {c.field: c for c in columns}
    aliases: dict[str, str] = {}
    for column in columns:
        for alias in (column.field, *column.aliases):
            aliases.setdefault(normalize_header(alias), column.field)
    problems: list[UserErrorData] = []
    explicit: dict[str, str] = {}
    for key, target in (mapping or {}).items():
        target = target.strip()
        if target and target not in known:
            problems.append(
                UserErrorData.of(
                    "INVALID_MAPPING",
                    "“{header}” is mapped to “{target}”, which is not a field of this import.",
                    ("mapping", key),
                    header=key,
                    target=target,
                )
            )
        explicit[normalize_header(key)] = target
    out = Resolved()
    claimed: dict[str, str] = {}
    for index, text in enumerate(header):
        if not text.strip():
            continue
        key = normalize_header(text)
        chosen = explicit.get(key) if key in explicit else aliases.get(key)
        if not chosen or chosen not in known:
            out.ignored.append(text)
            continue
        if chosen in claimed:
            if key in explicit:
                problems.append(
                    UserErrorData.of(
                        "INVALID_MAPPING",
                        "“{header}” and “{other}” are both mapped to “{target}”.",
                        ("mapping", text),
                        header=text,
                        other=claimed[chosen],
                        target=chosen,
                    )
                )
            out.ignored.append(text)
            continue
        claimed[chosen] = text
        out.by_index[index] = chosen
        out.mapping[text] = chosen
        out.header_of[chosen] = text
    for column in columns:
        if column.required and column.field not in claimed:
            problems.append(
                UserErrorData.of(
                    "INVALID_MAPPING",
                    "No column is mapped to the required field “{target}” ({label}).",
                    ("mapping", column.field),
                    target=column.field,
                    label=column.label,
                )
            )
    if problems:
        raise DomainError.many(problems)
    return out
