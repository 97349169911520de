"""Finding the translatable messages in source code, for the catalogs (`yunshegong messages`).

A message is the English template given with an error code: the string right after a known code in a call or
a tuple (`DomainError("OUT_OF_RANGE", "At most {limit}.", …)`, `v.add(field, "REQUIRED", "…")`, constraint
tables `("ALREADY_EXISTS", "…", field)`), the string before the code in `UserErrorData("…", "CODE")`, the
template of `UserErrorData.of(code, "…")` and `DomainError(code, "…")` whatever the code, the first argument
of the calls that word a refusal without a code beside it (`refusal("…")` and `Refusal("…")` for GraphQL
errors, `Unauthenticated("…")` for a bad bearer token), and every `_("…")` / `Text("…")` phrase. An f-string
there is reported: its values would be baked into the text, so no catalog could translate it (pass them as
parameters instead).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

_CODE = re.compile(r"^[A-Z][A-Z0-9_]{2,}$")
_PHRASE_CALLS = {"_", "Text"}
# Calls whose first argument is a message template whatever follows it.
_MESSAGE_CALLS = {"refusal", "Refusal", "Unauthenticated"}


@dataclass
class Found:
    messages: dict[str, list[str]] = field(default_factory=dict)  # msgid -> ["path:line", …]
    baked: list[str] = field(default_factory=list)  # "path:line" of f-string messages

    def add(self, text: str, where: str) -> None:
        self.messages.setdefault(text, []).append(where)


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _is_code(node: ast.expr, codes: set[str]) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in codes


def _take(node: ast.expr, where: str, found: Found) -> None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value:
        found.add(node.value, where)
    elif isinstance(node, ast.JoinedStr):
        found.baked.append(where)


def scan_source(source: str, where: str, codes: set[str], found: Found) -> None:
    for node in ast.walk(ast.parse(source)):
        items: Sequence[ast.expr] = ()
        if isinstance(node, ast.Call):
            name = _name(node.func)
            if name in _PHRASE_CALLS | _MESSAGE_CALLS and node.args:
                _take(node.args[0], f"{where}:{node.lineno}", found)
                continue
            items = node.args
            if name in ("of", "DomainError") and len(items) >= 2:
                # `UserErrorData.of(code, template, …)`, `DomainError(code, template, …)`: the code may be a
                # variable (a filter's own code, a plugin's code passed on).
                _take(items[1], f"{where}:{node.lineno}", found)
                continue
            if name == "UserErrorData":
                keywords = {k.arg: k.value for k in node.keywords}
                if "message" in keywords:
                    _take(keywords["message"], f"{where}:{node.lineno}", found)
                elif len(items) >= 2 and _is_code(items[1], codes):
                    _take(items[0], f"{where}:{node.lineno}", found)
                continue
        elif isinstance(node, ast.Tuple):
            items = node.elts
        for index, item in enumerate(items[:-1]):
            if _is_code(item, codes):
                _take(items[index + 1], f"{where}:{getattr(node, 'lineno', 0)}", found)


def scan(paths: Iterable[Path], codes: Iterable[str], root: Path | None = None) -> Found:
    """Every message in the Python files under `paths` (codes: the error codes that mark a message)."""
    found = Found()
    known = {c for c in codes if _CODE.match(c)}
    for base in paths:
        for path in sorted(base.rglob("*.py")) if base.is_dir() else [base]:
            shown = (
                path.resolve().relative_to(root.resolve())
                if root and path.resolve().is_relative_to(root.resolve())
                else path
            )
            scan_source(path.read_text(encoding="utf-8"), str(shown), known, found)
    return found


def update_po(po: Path, found: Found, locale: str) -> tuple[int, int]:
    """Adds the messages missing from `po` (empty translations for the translator) and marks those no longer in
    the code obsolete. Returns (added, untranslated)."""
    if po.exists():
        with po.open("rb") as handle:
            catalog = read_po(handle, locale=locale)
    else:
        catalog = Catalog(locale=locale, project="yunshegong")
    added = 0
    for msgid, places in sorted(found.messages.items()):
        if msgid not in catalog:
            added += 1
        existing = catalog.get(msgid)
        catalog.add(msgid, existing.string if existing else "", locations=[tuple(p.rsplit(":", 1)) for p in places])
    for message in list(catalog):
        if message.id and message.id not in found.messages:
            catalog.obsolete[message.id] = message
            catalog.delete(message.id)
    po.parent.mkdir(parents=True, exist_ok=True)
    with po.open("wb") as handle:
        write_po(handle, catalog, width=120, sort_output=True, include_lineno=False)
    untranslated = sum(1 for m in catalog if m.id and not m.string)
    return added, untranslated
