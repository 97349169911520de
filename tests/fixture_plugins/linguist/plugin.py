"""Test plugin `linguist`: prefers volunteers who speak Cantonese and rules out those marked `no_phone`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

import core


async def score(ctx: core.ServiceContext, request: Any, volunteer_ids: list[int]) -> dict[int, float | None]:
    rows = await ctx.session.execute(
        select(core.Volunteer.id, core.Volunteer.skills).where(core.Volunteer.id.in_(volunteer_ids))
    )
    out: dict[int, float | None] = {}
    for vid, skills in rows:
        out[vid] = None if "no_phone" in skills else (1.0 if "cantonese" in skills else 0.0)
    return out


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(name="linguist", version="0.1")


@core.hookimpl
def register_match_criteria() -> list[core.MatchCriterion]:
    return [core.MatchCriterion(name="linguist.cantonese", weight=2.0, score=score)]
