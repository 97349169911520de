"""Plant each race the suite guards, run the test meant to catch it alone, and report how often it does.

    .venv/bin/python -m tests.planted_races [--runs 10] [--only WORD] [--control] [--separate] [--rounds N]

For every race test below, this runs pytest on that one test with this module loaded as a plugin
(`-p tests.planted_races`) and `YSG_PLANTED_RACE=<name>` in the environment: the plugin's autouse fixture
removes the guard (a row lock, a conditional update, a database constraint) so that the code is still
right when calls come one at a time and wrong only when they overlap -- a check-then-act race. The test
is repeated `--runs` times in one pytest process (each repetition opens its own racer engine, so no run
inherits warm connections from the previous one; `--separate` starts a process per run instead). A run
*catches* the race when it fails on an assertion; any other failure is reported apart (a plant that
breaks the code outright proves nothing about the race).

`--control` also runs each test unplanted the same number of times (it must pass every time).
`--rounds N` overrides every test's number of rounds (`--rounds 1`: the odds of catching in one round).

Database plants (`DROP CONSTRAINT`) apply to the run's own database, which the test session creates and
drops (tests/conftest.py `test_db`): nothing outside the run is changed.

What is planted, per test:

- capacity under concurrent offers: `assignments.offer` reads the volunteer without its row lock
  (FOR UPDATE stripped from SELECTs on `volunteers`), and the database backstop CHECK
  `ck_volunteers_capacity` is dropped. The service's capacity check remains: correct one at a time.
- staffing: `offer` reads the request without its row lock (there is no database backstop for the
  volunteers-needed cap; the request's row lock is the guard)
- liaison team limit: `add_liaison` reads the community without its row lock (FOR UPDATE stripped from
  SELECTs on `communities`); the count check remains (there is no database backstop to drop).
- planning, two concurrent commits: `commit_plan`'s and `offer`'s volunteer locks stripped and
  `ck_volunteers_capacity` dropped (as for offers).
- shared calendar, twenty bookings / counseling, twenty bookings of one counselor: the exclusion
  constraint `ex_appointments_no_overlap` is dropped and replaced by a check-then-insert in
  `scheduling._write_or_taken` (SELECT an overlapping active appointment of the person; SLOT_TAKEN if
  there is one, else insert), the usual way such a guard is written without a lock; and `book` reads
  the person without the row lock that serialises one person's bookings (FOR UPDATE stripped from
  SELECTs on `volunteers`).
- stock, fifty concurrent distributions / more asked than there is, at once: `distribute`'s one statement
  reads the balances without their row lock (`LOCK_BALANCES` emptied; FOR UPDATE also stripped from
  SELECTs on `supplies_balances` for the other paths), takes its planned picks unconditionally
  (`TAKE_ONLY_WHAT_IS_THERE` emptied; `_take` likewise), and CHECK `ck_supplies_balances_not_negative` is
  dropped; the statement's "enough on hand?" check on its snapshot remains.
- stock, one idempotency key sent twenty times: `services.idempotent` claims the key by
  check-then-insert (SELECT the key; if absent run and INSERT) instead of INSERT … ON CONFLICT on the key's
  primary key, and the primary key `pk_supplies_idempotency_keys` is dropped.
- money, allocations never exceed the donation: `allocate` reads the donation without its row lock (FOR
  UPDATE stripped from SELECTs on `supplies_money_donations`); the "enough left?" check remains.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.concurrency import ROUNDS_ENV

PLANT_ENV = "YSG_PLANTED_RACE"
RUNS_ENV = "YSG_PLANTED_RUNS"
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Race:
    name: str
    test: str
    plants: tuple[str, ...]


RACES: tuple[Race, ...] = (
    Race(
        "capacity under concurrent offers",
        "tests/core/services/test_assignments.py::test_capacity_holds_under_concurrent_offers",
        ("unlock:volunteers", "drop:volunteers.ck_volunteers_capacity"),
    ),
    Race(
        "staffing under concurrent offers",
        "tests/core/services/test_assignments.py::test_staffing_holds_under_concurrent_offers",
        ("unlock:help_requests",),
    ),
    Race(
        "liaison team limit under concurrent additions",
        "tests/core/services/test_communities.py::test_team_limit_holds_under_concurrent_additions",
        ("unlock:communities",),
    ),
    Race(
        "planning: two concurrent commits",
        "tests/core/services/test_planning.py::test_capacity_holds_under_two_concurrent_commits",
        ("unlock:volunteers", "drop:volunteers.ck_volunteers_capacity"),
    ),
    Race(
        "calendar: twenty concurrent bookings",
        "tests/core/services/test_scheduling.py::test_twenty_concurrent_bookings_of_one_slot_leave_exactly_one",
        ("unlock:volunteers", "calendar-check-then-insert", "drop:appointments.ex_appointments_no_overlap"),
    ),
    Race(
        "counseling: twenty concurrent bookings",
        "tests/plugins/counseling/test_counseling.py::test_twenty_concurrent_bookings_of_one_counselor",
        ("unlock:volunteers", "calendar-check-then-insert", "drop:appointments.ex_appointments_no_overlap"),
    ),
    Race(
        "stock: fifty concurrent distributions",
        "tests/plugins/supplies/test_stock.py::test_fifty_concurrent_distributions_never_overdraw",
        (
            "unlock:supplies_balances",
            "unlock-distribution",
            "take-unconditionally",
            "drop:supplies_balances.ck_supplies_balances_not_negative",
        ),
    ),
    Race(
        "stock: more asked than there is, at once",
        "tests/plugins/supplies/test_one_statement.py::test_more_asked_than_there_is_at_once_takes_exactly_the_stock",
        (
            "unlock-distribution",
            "take-unconditionally",
            "drop:supplies_balances.ck_supplies_balances_not_negative",
        ),
    ),
    Race(
        "stock: one key sent twenty times",
        "tests/plugins/supplies/test_stock.py::test_one_key_sent_twenty_times_at_once_moves_stock_once",
        ("idempotency-check-then-insert", "drop:supplies_idempotency_keys.pk_supplies_idempotency_keys"),
    ),
    Race(
        "money: allocations never exceed the donation",
        "tests/plugins/supplies/test_money_and_reports.py::test_allocations_never_exceed_the_donation_under_concurrency",
        ("unlock:supplies_money_donations",),
    ),
)
BY_NAME = {race.name: race for race in RACES}


# -- the plugin: loaded into the pytest run with `-p tests.planted_races` -------------------------------------------


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Repeat every collected test `YSG_PLANTED_RUNS` times (the script selects one test)."""
    runs = int(os.environ.get(RUNS_ENV, "1"))
    if runs > 1:
        metafunc.fixturenames.append("planted_run")
        metafunc.parametrize("planted_run", range(runs), ids=lambda n: f"run{n}")


def _strip_for_update(tables: set[str]) -> Any:
    """A before_cursor_execute listener that removes FOR UPDATE from SELECTs reading `tables`."""
    lock = re.compile(r"\s+FOR (NO KEY )?UPDATE( OF [\w, ]+?)?( NOWAIT| SKIP LOCKED)?\s*$")

    def listener(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> Any:
        if statement.lstrip().upper().startswith("SELECT") and any(
            re.search(rf"\bFROM {table}\b", statement) for table in tables
        ):
            statement = lock.sub("", statement)
        return statement, parameters

    return listener


async def _calendar_check_then_insert(ctx: Any, change: Any) -> None:
    """scheduling._write_or_taken with the exclusion constraint's job done by an unlocked check."""
    from sqlalchemy import select

    from core.errors import DomainError
    from core.models import Appointment

    change()
    with ctx.session.no_autoflush:
        for new in [o for o in ctx.session.new if isinstance(o, Appointment)]:
            clash = await ctx.session.scalar(
                select(Appointment.id).where(
                    Appointment.owner_id == new.owner_id,
                    Appointment.status == "active",
                    Appointment.blocked.overlaps(new.blocked),
                )
            )
            if clash is not None:
                ctx.session.expunge(new)
                raise DomainError("SLOT_TAKEN", "This person is already booked then.", ("input", "start"))
    await ctx.session.flush()


async def _idempotent_check_then_insert(
    ctx: Any, key: str | None, operation: str, arguments: dict[str, Any], run: Any, load: Any
) -> Any:
    """supplies.services.idempotent with the key claimed by a check instead of the primary key."""
    from sqlalchemy import select

    from core.errors import DomainError
    from plugins.supplies import services
    from plugins.supplies.models import IdempotencyKey

    if not key:
        return await run()
    organization_id = services._manage(ctx)
    fingerprint = hashlib.sha256(json.dumps([operation, arguments], sort_keys=True, default=str).encode()).hexdigest()
    first = await ctx.session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.organization_id == organization_id, IdempotencyKey.key == key)
    )
    if first is not None:
        if first.fingerprint != fingerprint:
            raise DomainError(
                "IDEMPOTENCY_MISMATCH", "This key was used with other arguments.", ("input", "idempotencyKey")
            )
        return await load(int(first.result["id"]))
    result = await run()
    ctx.session.add(
        IdempotencyKey(
            organization_id=organization_id,
            key=key,
            operation=operation,
            fingerprint=fingerprint,
            result={"id": result.id},
        )
    )
    await ctx.session.flush()
    return result


async def _take_unconditionally(ctx: Any, batch_id: int, warehouse_id: int, quantity: int) -> bool:
    from sqlalchemy import update

    from plugins.supplies.models import Balance

    await ctx.session.execute(
        update(Balance)
        .where(Balance.batch_id == batch_id, Balance.warehouse_id == warehouse_id)
        .values(on_hand=Balance.on_hand - quantity)
    )
    return True


@pytest.fixture(autouse=True)
async def planted_race(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Apply the plants of the race named in YSG_PLANTED_RACE (none when unset)."""
    name = os.environ.get(PLANT_ENV)
    if not name:
        yield None
        return
    from sqlalchemy import event, text
    from sqlalchemy.engine import Engine

    race = BY_NAME[name]
    unlocked = {p.split(":", 1)[1] for p in race.plants if p.startswith("unlock:")}
    listener = _strip_for_update(unlocked) if unlocked else None
    for plant in race.plants:
        if plant.startswith("drop:"):
            table, constraint = plant.split(":", 1)[1].split(".")
            owner_engine = request.getfixturevalue("owner_engine")
            async with owner_engine.begin() as conn:
                await conn.execute(text(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {constraint}"))
        elif plant == "calendar-check-then-insert":
            from core.services import scheduling

            monkeypatch.setattr(scheduling, "_write_or_taken", _calendar_check_then_insert)
        elif plant == "idempotency-check-then-insert":
            from plugins.supplies import services

            monkeypatch.setattr(services, "idempotent", _idempotent_check_then_insert)
        elif plant == "take-unconditionally":
            from plugins.supplies import services

            monkeypatch.setattr(services, "_take", _take_unconditionally)
            # The one-statement distribution: take the planned quantity whatever is left.
            monkeypatch.setattr(services, "TAKE_ONLY_WHAT_IS_THERE", "")
        elif plant == "unlock-distribution":
            from plugins.supplies import services

            # Its statement begins with WITH, which the unlock plants (SELECT … FOR UPDATE) do not reach.
            monkeypatch.setattr(services, "LOCK_BALANCES", "")
        elif not plant.startswith("unlock:"):
            raise ValueError(f"unknown plant {plant}")
    if listener is not None:
        event.listen(Engine, "before_cursor_execute", listener, retval=True)
    try:
        yield race
    finally:
        if listener is not None:
            event.remove(Engine, "before_cursor_execute", listener)


# -- the script --------------------------------------------------------------------------------------------------


@dataclass
class Tally:
    caught: int = 0
    other_failures: int = 0
    passed: int = 0
    xfailed: int = 0
    seconds: list[float] | None = None
    details: list[str] | None = None


def _run_pytest(race: Race, runs: int, planted: bool, rounds: int | None) -> Tally:
    with tempfile.TemporaryDirectory(prefix="ysg-races-") as tmp:
        report = Path(tmp) / "junit.xml"
        env = {**os.environ, RUNS_ENV: str(runs)}
        env.pop(ROUNDS_ENV, None)
        if rounds is not None:
            env[ROUNDS_ENV] = str(rounds)
        env.pop(PLANT_ENV, None)
        if planted:
            env[PLANT_ENV] = race.name
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "tests.planted_races",
                "-p",
                "no:cacheprovider",
                "--junitxml",
                str(report),
                "-o",
                "junit_duration_report=call",
                race.test,
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        return _tally(report)


def _tally(report: Path) -> Tally:
    tally = Tally(seconds=[], details=[])
    if not report.exists():
        tally.other_failures += 1
        tally.details.append("pytest wrote no report")
        return tally
    for case in ET.parse(report).getroot().iter("testcase"):
        skipped = case.find("skipped")
        if skipped is not None:
            tally.xfailed += skipped.get("type") == "pytest.xfail"
            continue
        tally.seconds.append(float(case.get("time", "0")))
        failure, error = case.find("failure"), case.find("error")
        message = (failure.get("message") or "") if failure is not None else ""
        if failure is not None and message.startswith(("AssertionError", "assert ")):
            tally.caught += 1
        elif failure is not None or error is not None:
            tally.other_failures += 1
            node = failure if failure is not None else error
            tally.details.append((node.get("message") or "")[:200])
        else:
            tally.passed += 1
    return tally


def _measure(race: Race, runs: int, planted: bool, separate: bool, rounds: int | None) -> Tally:
    if not separate:
        return _run_pytest(race, runs, planted, rounds)
    total = Tally(seconds=[], details=[])
    for _ in range(runs):
        one = _run_pytest(race, 1, planted, rounds)
        total.caught += one.caught
        total.other_failures += one.other_failures
        total.passed += one.passed
        total.xfailed += one.xfailed
        total.seconds += one.seconds or []
        total.details += one.details or []
    return total


def _line(name: str, tally: Tally, runs: int, what: str) -> str:
    seconds = tally.seconds or [0.0]
    text = (
        f"{name}: {what} {tally.caught if what == 'caught' else tally.passed}/{runs}"
        f"  (test {min(seconds):.2f}-{max(seconds):.2f} s)"
    )
    if tally.xfailed:
        text += f"  [{tally.xfailed} xfailed: a known bug the test is marked with]"
    if tally.other_failures:
        text += f"  [{tally.other_failures} failed otherwise: {'; '.join(sorted(set(tally.details or [])))}]"
    return text


def _selected(only: str | None) -> Iterator[Race]:
    for race in RACES:
        if only is None or only.lower() in race.name.lower():
            yield race


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="runs of each test (default 10)")
    parser.add_argument("--only", help="only the races whose name contains this")
    parser.add_argument("--control", action="store_true", help="also run each test unplanted (must pass)")
    parser.add_argument("--separate", action="store_true", help="one pytest process per run")
    parser.add_argument("--rounds", type=int, help="rounds per test run instead of each test's own number")
    args = parser.parse_args(argv)
    missed = False
    for race in _selected(args.only):
        started = time.perf_counter()
        tally = _measure(race, args.runs, planted=True, separate=args.separate, rounds=args.rounds)
        line = _line(race.name, tally, args.runs, "caught")
        if args.control:
            control = _measure(race, args.runs, planted=False, separate=args.separate, rounds=args.rounds)
            line += "\n    unplanted: " + _line(race.name, control, args.runs, "passed")
            missed |= control.passed < args.runs
        print(f"{line}  [{time.perf_counter() - started:.0f} s]", flush=True)  # noqa: T201
        missed |= tally.caught < args.runs
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
