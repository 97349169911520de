"""Periodic work of a running service: core's (expire unanswered offers, raise escalations) and the
plugins' scheduled jobs (hook `register_jobs`: reminders, follow-ups).

Runs inside `yunshegong serve` (the app's lifespan) every YUNSHEGONG_JOBS_INTERVAL seconds, for each
organisation in a transaction of its own, acting for that organisation. Safe with several processes: expiry
skips rows another process holds (SKIP LOCKED), escalations are unique per request and stage, and a plugin
job runs for an organisation only while holding that organisation's `job_runs` row (SKIP LOCKED), and only
once it is due.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import select, text

from core.models import Organization
from core.services import assignments, deadlines
from core.services.context import SYSTEM, ServiceContext
from core.services.plugins import enabled_for

JOB_NAME = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]{0,58}$")


@dataclass(frozen=True)
class Job:
    """A plugin's scheduled job (hook `register_jobs`). `run(ctx)` is awaited for each organisation that
    enabled the plugin, at most once per `every`, in a transaction acting for that organisation (a system
    caller of it: row-level security shows it that organisation's rows only). Raising rolls back that run's
    work; the error is kept (job_runs.last_error) and logged with the job's name, and the job runs again
    when next due. Name: `<plugin>.<what>`."""

    name: str
    every: timedelta
    run: Callable[[ServiceContext], Awaitable[None]]
    description: str = ""


class JobError(ValueError):
    """A plugin contributed a malformed job (startup stops with this message)."""


def plugin_jobs(host: Any) -> list[tuple[str, Job]]:
    """(plugin name, job) for every job the loaded plugins register, validated."""
    if host is None:
        return []
    out: list[tuple[str, Job]] = []
    seen: set[str] = set()
    for plugin, value in host.call_each("register_jobs"):
        if not isinstance(value, (list, tuple)) or not all(isinstance(j, Job) for j in value):
            raise JobError(f"plugin {plugin.name!r}: register_jobs must return a list of core.Job")
        for job in value:
            if not JOB_NAME.match(job.name) or not job.name.startswith(f"{plugin.name}."):
                raise JobError(f"plugin {plugin.name!r}: job name {job.name!r} must be '{plugin.name}.<what>'")
            if job.every < timedelta(seconds=1):
                raise JobError(f"plugin {plugin.name!r}: job {job.name!r} runs at most once a second")
            if job.name in seen:
                raise JobError(f"plugin {plugin.name!r}: job {job.name!r} is registered twice")
            seen.add(job.name)
            out.append((plugin.name, job))
    return out


log = logging.getLogger(__name__)


async def run_once(state: object) -> tuple[int, int]:
    """One round: (offers expired, escalations raised); plugin jobs that are due run too. Each
    organisation's work runs in a transaction of its own, acting for that organisation: a job sees no more
    than the organisation it works for."""
    async with state.sessionmaker() as session:  # type: ignore[attr-defined]
        org_ids = (await session.scalars(select(Organization.id).order_by(Organization.id))).all()
    expired = raised = 0
    jobs = plugin_jobs(getattr(state, "host", None))
    for org_id in org_ids:
        async with state.sessionmaker() as session, session.begin():  # type: ignore[attr-defined]
            ctx = _context(state, session, org_id)
            expired += await assignments.expire_offers(ctx)
            raised += await deadlines.escalate(ctx)
            enabled = await enabled_for(ctx, org_id) if jobs else frozenset()
        for plugin, job in jobs:
            if plugin in enabled:
                await run_job(state, org_id, job)
    return expired, raised


def _context(state: object, session: Any, org_id: int) -> ServiceContext:
    viewer = replace(SYSTEM, organization_id=org_id)
    ctx = ServiceContext(session=session, viewer=viewer, clock=state.clock, policy=state.policy)  # type: ignore[attr-defined]
    if getattr(state, "host", None) is not None:
        ctx.events = state.host  # type: ignore[attr-defined]
    return ctx


async def run_job(state: object, org_id: int, job: Job) -> bool:
    """Run `job` for one organisation if it is due and no other process is running it now. Returns whether
    it ran (successfully or not)."""
    async with state.sessionmaker() as session, session.begin():  # type: ignore[attr-defined]
        ctx = _context(state, session, org_id)
        await session.execute(
            text("INSERT INTO job_runs (organization_id, job) VALUES (:org, :job) ON CONFLICT DO NOTHING"),
            {"org": org_id, "job": job.name},
        )
        row = (
            await session.execute(
                text(
                    "SELECT last_started_at FROM job_runs WHERE organization_id = :org AND job = :job "
                    "FOR UPDATE SKIP LOCKED"
                ),
                {"org": org_id, "job": job.name},
            )
        ).first()
        now = ctx.now()
        if row is None or (row.last_started_at is not None and row.last_started_at + job.every > now):
            return False  # another process holds it, or it is not due yet
        error = ""
        try:
            async with session.begin_nested():
                await job.run(ctx)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one job's failure must not stop the others, nor the next round
            log.exception("job %s failed for organisation %s", job.name, org_id)
            error = f"{type(exc).__name__}: {exc}"[:2000]
        await session.execute(
            text(
                "UPDATE job_runs SET last_started_at = :now, last_error = :error "
                "WHERE organization_id = :org AND job = :job"
            ),
            {"now": now, "error": error, "org": org_id, "job": job.name},
        )
        return True


async def run_forever(state: object, interval: float) -> None:
    while True:
        try:
            expired, raised = await run_once(state)
            if expired or raised:
                log.info("jobs: %d offers expired, %d escalations raised", expired, raised)
        except asyncio.CancelledError:
            raise
        except Exception:  # a failing round must not stop the next one
            log.exception("periodic jobs failed")
        await asyncio.sleep(interval)
