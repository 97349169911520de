"""Messages in the caller's language: Chinese (zh-CN, the default) or English, chosen by `Accept-Language`.

Code keeps English message templates (`"Only {available} left."` with the values as parameters); the
translations live in gettext `.po` catalogs (`core/locale/<locale>.po`, and a plugin's own through the
`register_translations` hook), so translators work with their usual tools. A message is translated where it
is presented (a payload's `errors`, a top-level error), never where it is raised: a service does not know who
reads its message, and logs stay in English. A template without a translation falls back to English, and a
test keeps every template in the code translated.

Error *codes* never change with the language: clients switch on codes, people read messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

DEFAULT_LOCALE = "zh_CN"
LOCALES = ("zh_CN", "en")
CORE_CATALOG_DIR = Path(__file__).parent / "locale"

# The language of the current request's messages (set from Accept-Language at the edge).
CALLER_LOCALE: ContextVar[str] = ContextVar("caller_locale", default=DEFAULT_LOCALE)


class Text(str):
    """A word or phrase that is itself translated when it fills a template's parameter (e.g. a field's
    label in "{label} must not be empty."). Plain `str` parameters (names, values the caller sent) are not."""

    __slots__ = ()


def _(message: str) -> Text:
    """Marks a phrase as translatable (found by the catalog check); translated when presented."""
    return Text(message)


_catalogs: dict[str, dict[str, str]] = {locale: {} for locale in LOCALES}


def _load_po(path: Path) -> dict[str, str]:
    with path.open("rb") as handle:
        catalog = read_po(handle)
    return {str(m.id): str(m.string) for m in catalog if m.id and m.string and not m.fuzzy}


def add_catalog(locale: str, path: Path) -> None:
    """Adds the translations of a `.po` file (core's at import, each plugin's when the host loads it).
    Earlier entries win, so a plugin cannot change core's wording."""
    entries = _load_po(path)
    target = _catalogs.setdefault(locale, {})
    for msgid, text in entries.items():
        target.setdefault(msgid, text)


def catalog(locale: str) -> Mapping[str, str]:
    return _catalogs.get(locale, {})


def ranked_by_quality(header: str | None) -> list[str]:
    """The values of an HTTP header with q-values (Accept, Accept-Language), best first, ties in the order
    given, without those refused (q=0) or malformed."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "").split(",")):
        value, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            name, _sep, number = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(number)
                except ValueError:
                    quality = 0.0
        if value and quality > 0:
            ranked.append((-quality, position, value))
    return [value for _q, _position, value in sorted(ranked)]


def negotiate(accept_language: str | None) -> str:
    """The best of LOCALES for an `Accept-Language` header (q-values honoured); zh-CN without one."""
    for tag in ranked_by_quality(accept_language):
        if tag == "*":
            return DEFAULT_LOCALE
        language = tag.replace("_", "-").split("-")[0].lower()
        for locale in LOCALES:
            if locale.split("_")[0] == language:
                return locale
    return DEFAULT_LOCALE


# How a list parameter (a tuple of words, e.g. missing credentials) is joined in each language.
_LIST_SEPARATORS = {"zh_CN": "、", "en": ", "}


def _parameter(value: Any, locale: str) -> Any:
    """A parameter as it fills a template: a Text translated, a tuple joined (its Text items translated), a
    message of its own (a core.errors.UserErrorData, e.g. a plugin's reason quoted by core) localized."""
    localized = getattr(value, "localized", None)
    if callable(localized):
        return localized(locale)
    if isinstance(value, Text):
        return str(value) if locale == "en" else translate(value, locale=locale)
    if isinstance(value, (tuple, list)):
        return _LIST_SEPARATORS.get(locale, ", ").join(str(_parameter(item, locale)) for item in value)
    return value


def translate(
    template: str, params: Mapping[str, Any] | Iterable[tuple[str, Any]] = (), locale: str | None = None
) -> str:
    """`template` with `params` filled in, in `locale` (the caller's by default). English when untranslated."""
    locale = locale or CALLER_LOCALE.get()
    values = {key: _parameter(value, locale) for key, value in dict(params).items()}
    text = template if locale == "en" else _catalogs.get(locale, {}).get(template, template)
    if not values:
        return text
    try:
        return text.format(**values)
    except (KeyError, IndexError, ValueError):
        # A translation naming a parameter the template lacks: say it in English rather than fail.
        return template.format(**values)


for _locale in LOCALES:
    _po = CORE_CATALOG_DIR / f"{_locale}.po"
    if _po.exists():
        add_catalog(_locale, _po)
