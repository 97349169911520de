"""The periodic jobs of a running service."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select, text

import core
from core import jobs
from core.database import create_sessionmaker
from core.models import Escalation
from core.services import assignments
from core.settings import Settings
from core.vocab import RequestStatus, Urgency
from schema.context import AppState
from tests.factories import Factory


async def test_one_round_expires_offers_and_raises_escalations(make: Factory, engine, clock) -> None:  # type: ignore[no-untyped-def]
    # given an offer and a critical request waiting for verification
    request = await make.request(status=RequestStatus.VERIFIED)
    await assignments.offer(make.ctx, request.id, (await make.volunteer()).id)
    await make.request(urgency=Urgency.CRITICAL, needed_by=None)
    await make.commit()
    state = AppState(settings=Settings(), sessionmaker=create_sessionmaker(engine), clock=clock)
    # when an hour passes and a round runs (twice)
    clock.now += timedelta(hours=1)
    first = await jobs.run_once(state)
    second = await jobs.run_once(state)
    # then the offer expired and the escalation was raised, once
    assert first == (1, 1)
    assert second == (0, 0)
    assert await make.ctx.session.scalar(select(func.count()).select_from(Escalation)) == 1


# -- plugin jobs (hook register_jobs) -----------------------------------------------------------------------

REMINDERS = "tests.fixture_plugins.reminders.plugin"


async def _reminders_world(make: Factory, engine, clock):  # type: ignore[no-untyped-def]
    """Organisation A enabled the reminders plugin, B did not; the job runner's state knows the plugin."""
    import importlib

    from core.plugins import build_plugin_host

    module = importlib.import_module(REMINDERS)
    module.RUNS.clear()
    module.FAIL.clear()
    host = build_plugin_host(entry_points=False, builtins=(), extra=[module])
    a = await make.organization_using("reminders", "甲机构")
    b = await make.organization_using("other_plugin", "乙机构")
    state = AppState(settings=Settings(), sessionmaker=create_sessionmaker(engine), clock=clock, host=host)
    return module, state, a.id, b.id


async def _queued(engine, org_id: int) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    from core.services.context import Viewer

    async with create_sessionmaker(engine)() as session, session.begin():
        from core.services.context import ServiceContext
        from core.services.outbox import pending

        ctx = ServiceContext(
            session=session, viewer=Viewer(label="auditor", role="organization_admin", organization_id=org_id)
        )
        return [(n.kind, n.recipient_name) for n in await pending(ctx)]


async def test_a_plugin_job_runs_when_due_for_the_organisations_that_enabled_it(make: Factory, engine, clock) -> None:  # type: ignore[no-untyped-def]
    # given the reminders plugin (hourly jobs) enabled by A only
    module, state, a, b = await _reminders_world(make, engine, clock)
    # when the runner goes round twice at once, then again an hour later
    await jobs.run_once(state)
    await jobs.run_once(state)
    clock.now += timedelta(hours=1)
    await jobs.run_once(state)
    # then the job ran for A once per hour, never for B; each run queued its reminder in A's outbox
    assert [a, a] == module.RUNS
    assert sorted(await _queued(engine, a)) == sorted(
        [("reminders.lecture", "李女士")] * 2 + [("reminders.flaky", "张先生")] * 2
    )
    assert await _queued(engine, b) == []


async def test_two_processes_never_run_one_job_twice(make: Factory, engine, clock) -> None:  # type: ignore[no-untyped-def]
    # given two service processes' job runners (two sessionmakers on their own engines) and a slow job
    from core.database import create_engine

    module, state, a, _ = await _reminders_world(make, engine, clock)
    await jobs.run_once(state)  # the job has run before: its row exists, and it is due again an hour later
    clock.now += timedelta(hours=1)
    module.RUNS.clear()
    other_engine = create_engine(engine.url, pool_size=2)
    try:
        other = AppState(
            settings=Settings(), sessionmaker=create_sessionmaker(other_engine), clock=clock, host=state.host
        )
        # when both go round at the same moment
        await asyncio.gather(jobs.run_once(state), jobs.run_once(other))
    finally:
        await other_engine.dispose()
    # then the job ran once for A this hour (two reminders queued in all); without the row lock both
    # processes run it (planted: RUNS == [a, a])
    assert [a] == module.RUNS
    assert [k for k, _ in await _queued(engine, a)].count("reminders.lecture") == 2


async def test_a_failing_job_rolls_back_its_own_work_only_and_is_recorded(make: Factory, engine, clock) -> None:  # type: ignore[no-untyped-def]
    module, state, a, _ = await _reminders_world(make, engine, clock)
    module.FAIL.add(a)
    # when a round runs with the flaky job failing
    await jobs.run_once(state)
    # then the lecture reminder was queued, the flaky job's message was not, and its error is kept
    assert await _queued(engine, a) == [("reminders.lecture", "李女士")]
    async with create_sessionmaker(engine)() as session, session.begin():
        from core.services.context import ServiceContext, Viewer

        ServiceContext(session=session, viewer=Viewer(label="auditor", role="organization_admin", organization_id=a))
        errors = dict((await session.execute(text("SELECT job, last_error FROM job_runs ORDER BY job"))).all())
    assert errors == {"reminders.flaky": "RuntimeError: the reminder service is down", "reminders.lecture": ""}


def test_a_malformed_job_stops_startup_naming_the_plugin() -> None:
    import pytest

    from core.jobs import Job, JobError, plugin_jobs
    from core.plugins import build_plugin_host

    class Sloppy:
        @core.hookimpl
        def register_plugin(self) -> core.PluginInfo:
            return core.PluginInfo(name="sloppy_jobs", version="1")

        @core.hookimpl
        def register_jobs(self) -> list[Job]:
            return [Job("cleanup", timedelta(hours=1), lambda ctx: asyncio.sleep(0))]  # type: ignore[arg-type,return-value]

    host = build_plugin_host(entry_points=False, builtins=(), extra=[Sloppy()])
    with pytest.raises(JobError, match=r"'sloppy_jobs'.*'cleanup' must be 'sloppy_jobs\.<what>'"):
        plugin_jobs(host)


# -- plugin settings (hook register_settings) ----------------------------------------------------------------


def test_plugin_settings_come_from_the_environment_with_defaults() -> None:
    import importlib

    import pytest

    from core.plugin_settings import PluginSettingsError, load
    from core.plugins import build_plugin_host

    host = build_plugin_host(entry_points=False, builtins=(), extra=[importlib.import_module(REMINDERS)])
    # given no variables, then the defaults; given some, then those, converted to the fields' types
    defaults = load(host, {})["reminders"]
    assert (defaults.lead_time, defaults.sms, defaults.sender) == (timedelta(hours=24), False, "社工站")
    chosen = load(host, {"YUNSHEGONG_REMINDERS_LEAD_TIME": "3600", "YUNSHEGONG_REMINDERS_SMS": "yes"})["reminders"]
    assert (chosen.lead_time, chosen.sms) == (timedelta(hours=1), True)
    # and a value that does not convert stops startup naming the plugin and the variable
    with pytest.raises(
        PluginSettingsError, match=r"'reminders': YUNSHEGONG_REMINDERS_SMS='perhaps' is not a valid bool"
    ):
        load(host, {"YUNSHEGONG_REMINDERS_SMS": "perhaps"})
