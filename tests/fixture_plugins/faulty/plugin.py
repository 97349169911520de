"""Test plugin `faulty`: its statistics hook fails in the database (which aborts the transaction)."""

from __future__ import annotations

from sqlalchemy import text

import core


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(name="faulty", version="0.1")


@core.hookimpl
async def register_stats(ctx: core.ServiceContext) -> list[core.StatFigure]:
    await ctx.session.execute(text("SELECT * FROM faulty_no_such_table"))
    return [core.StatFigure(key="never", label="Never", value=0)]
