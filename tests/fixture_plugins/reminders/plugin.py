"""A plugin with scheduled jobs (tests/core/test_jobs.py): a reminder queued through the one outbox, and a
job that fails on demand."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

import core

RUNS: list[int] = []  # the organisations the reminder ran for, in order
FAIL: set[int] = set()  # organisations for which the failing job raises


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(name="reminders", version="1.0")


async def remind(ctx: core.ServiceContext) -> None:
    org = ctx.viewer.organization_id
    assert org is not None
    # Slow enough that a second process arriving meanwhile finds the job's row locked.
    await asyncio.sleep(0.2)
    RUNS.append(org)
    hour = ctx.now().strftime("%Y-%m-%dT%H")
    await core.notify(
        ctx,
        "reminders.lecture",
        core.Recipient.person("李女士", "13900001111"),
        {"hour": hour},
        source="reminders",
        dedupe_key=f"lecture:{hour}",
    )


async def flaky(ctx: core.ServiceContext) -> None:
    await core.notify(ctx, "reminders.flaky", core.Recipient.person("张先生", "13900002222"), source="reminders")
    if ctx.viewer.organization_id in FAIL:
        raise RuntimeError("the reminder service is down")


@core.hookimpl
def register_jobs() -> list[core.Job]:
    return [
        core.Job("reminders.lecture", timedelta(hours=1), remind, "Remind mothers of tomorrow's lecture."),
        core.Job("reminders.flaky", timedelta(hours=1), flaky),
    ]


@dataclass(frozen=True)
class RemindersSettings:
    lead_time: timedelta = timedelta(hours=24)
    sms: bool = False
    sender: str = "社工站"


@core.hookimpl
def register_settings() -> type:
    return RemindersSettings
