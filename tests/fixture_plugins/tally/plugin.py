"""Test plugin `tally`: a well-behaved statistics figure (read after `faulty` failed in the same request)."""

from __future__ import annotations

from sqlalchemy import text

import core


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(name="tally", version="0.1")


@core.hookimpl
async def register_stats(ctx: core.ServiceContext) -> list[core.StatFigure]:
    value = int(await ctx.session.scalar(text("SELECT 41 + 1")) or 0)
    return [core.StatFigure(key="answers", label="Answers", value=value)]
