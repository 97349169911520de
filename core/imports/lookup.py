"""How an import compares names, and the city's districts looked up by what a sheet writes for them."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from sqlalchemy import select

from core.models import District
from core.services.context import ServiceContext

# Longest first where one ends another (开发区 / 新区 / 区).
DISTRICT_SUFFIXES = ("开发区", "新区", "区", "县", "市")


def fold(text: str) -> str:
    """A name as compared: NFKC (full-width letters and digits), no spaces, case-folded."""
    return "".join(unicodedata.normalize("NFKC", text).split()).casefold()


class Districts:
    """Districts by name, by id, and by name without its 区/县/市 suffix when that short name stays
    unambiguous and keeps two characters (雁塔区 → 雁塔; 高新区 → 高新, never 高). Read once per import."""

    def __init__(self, rows: Iterable[tuple[int, str]]) -> None:
        rows = list(rows)
        exact = {fold(name): id_ for id_, name in rows}
        short: dict[str, set[int]] = {}
        for id_, name in rows:
            key = fold(name)
            for suffix in DISTRICT_SUFFIXES:
                if key.endswith(suffix) and len(key) > len(suffix) + 1:
                    short.setdefault(key[: -len(suffix)], set()).add(id_)
                    break
        unique_short = {k: next(iter(ids)) for k, ids in short.items() if len(ids) == 1 and k not in exact}
        by_id = {str(id_): id_ for id_, _ in rows}
        self.by_key: dict[str, int] = {**by_id, **unique_short, **exact}

    @classmethod
    async def load(cls, ctx: ServiceContext) -> Districts:
        return cls((await ctx.session.execute(select(District.id, District.name))).all())

    def find(self, text: str) -> int | None:
        return self.by_key.get(fold(text))
