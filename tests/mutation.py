"""Mutation testing with mutmut, one module at a time, each against the tests that exercise it.

    .venv/bin/python -m tests.mutation                 # every module below
    .venv/bin/python -m tests.mutation help_requests   # only these

mutmut 3 copies core/ and plugins/ into mutants/ (git-ignored) and mutates the copy; the source tree is never
touched. Every mutant runs in a fresh pytest process that migrates its own database, so one embedded
PostgreSQL is started here for the whole run (DATABASE_URL) instead of one per mutant.

This module is also the pytest plugin mutmut runs with (`-p tests.mutation`, set in pyproject.toml): when
YSG_MUTATION_TESTS names test files, only their tests are collected, so that a module's mutants are judged
by its own tests in a time that fits (the whole suite per mutant would take days).

Results: `.venv/bin/mutmut results` and `.venv/bin/mutmut show NAME`; survivors and why some are equivalent
are listed in docs/mutation-testing.md.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

ENV = "YSG_MUTATION_TESTS"
REPORTS = Path(".mutation")  # git-ignored: the last score of each module


STATUS = {0: "survived", 1: "killed", 33: "no tests", 36: "timeout", None: "not run"}


def _score(name: str, module: str) -> str:
    """killed/total over the module's focus functions, and the survivors (from mutmut's metadata)."""
    verdicts = {m: STATUS.get(v, f"exit {v}") for m, v in _verdicts(module).items() if _in_focus(name, m)}
    counts = {v: sum(x == v for x in verdicts.values()) for v in sorted(set(verdicts.values()))}
    survivors = "".join(f"\n    {m}" for m, v in sorted(verdicts.items()) if v == "survived")
    return f"killed {counts.get('killed', 0)}/{len(verdicts)} {counts}{survivors}"


TEMPLATE = "ysg_mutation_template"
TEMPLATE_ENV = "YSG_MUTATION_TEMPLATE"

if os.environ.get(TEMPLATE_ENV):
    # Imported as `-p tests.mutation` before tests/conftest.py is: every test database is a copy of the
    # migrated template (~0.3 s) instead of a fresh migration per mutant (the migration then finds nothing
    # to do). Same schema, same migrations, just not re-run thousands of times.
    import core.database as _database

    _ensure_database = _database.ensure_database

    async def _ensure_from_template(admin_url: Any, name: str, *, template: str | None = None) -> None:
        await _ensure_database(admin_url, name, template=template or os.environ[TEMPLATE_ENV])

    _database.ensure_database = _ensure_from_template  # type: ignore[assignment]


def pytest_sessionstart(session: pytest.Session) -> None:
    # mutmut forks every mutant's pytest from one warmed-up process, which imported tests/conftest.py once:
    # give each its own database name (the conftest's is the importing process's pid), or concurrent
    # mutants would drop each other's database.
    conftest = sys.modules.get("tests.conftest")
    if os.environ.get(ENV) and conftest is not None:
        conftest.RUN_TAG = f"{os.getpid()}"  # type: ignore[attr-defined]


async def _create_template(server_url: str) -> None:
    from core import migrate
    from core.database import create_engine, database_url_for, drop_database, ensure_database
    from core.plugins import build_plugin_host

    await drop_database(server_url, TEMPLATE)
    await ensure_database(server_url, TEMPLATE)
    engine = create_engine(database_url_for(server_url, TEMPLATE), pool_size=1)
    await migrate.upgrade(engine, build_plugin_host(entry_points=False).migration_dirs())
    await engine.dispose()


def _within(nodeid: str, path: str) -> bool:
    path = path.rstrip("/")
    return nodeid.startswith(path + ("::" if path.endswith(".py") else "/"))


# module (as mutmut names its mutants) → the tests that state its invariants
MODULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "help_requests": (
        "core.services.help_requests",
        ("tests/core/services/test_help_requests.py", "tests/core/services/test_help_requests_mutants.py"),
    ),
    "assignments": (
        "core.services.assignments",
        ("tests/core/services/test_assignments.py", "tests/core/services/test_assignments_mutants.py"),
    ),
    "scheduling": (
        "core.services.scheduling",
        ("tests/core/services/test_scheduling.py", "tests/core/services/test_scheduling_mutants.py"),
    ),
    # pure functions: their own unit tests (no database) judge them; the GraphQL-level masking tests
    # (tests/schema/test_access.py) would take an hour per run
    "privacy": ("core.services.privacy", ("tests/core/services/test_privacy_mutants.py",)),
    # service-level: the GraphQL permission matrix (tests/schema/test_access.py, test_auth.py) builds a whole
    # world over HTTP per test and would take hours per run; the same rules, stated where they are decided
    "access": ("core.services.access", ("tests/core/services/test_access_mutants.py",)),
    "supplies": ("plugins.supplies.services", ("tests/plugins/supplies",)),
}

# Within a module, the functions that hold its invariants (None: all of them). The others (input validation
# messages, duplicate detection, event payloads) are left out to keep a run within an hour on two cores.
FOCUS: dict[str, tuple[str, ...] | None] = {
    "help_requests": (
        "_move",
        "transition",
        "start",
        "verify",
        "reject",
        "cancel",
        "fulfil",
        "lock",
        "_record",
        "_release_assignments",
        "return_to_queue_if_unstaffed",
        "update",
        "_reason",
        "history",
    ),
    "assignments": ("offer", "accept", "decline", "withdraw", "_require", "complete"),
    "scheduling": None,
    "privacy": None,
    "access": None,
    # stock (the guarded decrement, transfers, corrections, reversals), money and idempotency: 677 of the ~2600
    # mutants, to keep a run within ~35 minutes here. receive, receive_money, _put, distribute, dispatch,
    # confirm_delivery and cancel_distribution are left for a run of their own (docs/mutation-testing.md).
    "supplies": ("_take", "transfer", "adjust", "reverse", "to_fen", "unallocated_fen", "allocate", "idempotent"),
}


def _in_focus(name: str, mutant: str) -> bool:
    focus = FOCUS[name]
    function = mutant.rsplit(".x_", 1)[-1].rsplit("__mutmut_", 1)[0]
    return focus is None or function in focus


def _verdicts(module: str) -> dict[str, int | None]:
    """mutant → exit code recorded so far (None: not run yet), from mutmut's metadata."""
    import json

    meta = Path("mutants") / (module.replace(".", "/") + ".py.meta")
    if not meta.exists():
        return {}
    return json.loads(meta.read_text())["exit_code_by_key"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = [w for w in os.environ.get(ENV, "").split(",") if w]
    if not wanted:
        return
    keep = [i for i in items if any(_within(i.nodeid, w) for w in wanted)]
    dropped = [i for i in items if i not in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def main(argv: list[str]) -> int:
    """Each named module (default: all), one after the other. A module whose mutants/ is still there resumes
    where it stopped; with --survivors, re-runs only the mutants that survived (after adding tests)."""
    survivors_only = "--survivors" in argv
    names = [a for a in argv if a != "--survivors"] or list(MODULES)
    unknown = set(names) - set(MODULES)
    if unknown:
        sys.exit(f"unknown modules {sorted(unknown)}; known: {', '.join(MODULES)}")
    if survivors_only and (len(names) != 1 or not Path("mutants/.module").exists()):
        sys.exit("--survivors re-runs one module, the one last run (mutants/ must still be there)")
    from core.database import EmbeddedPostgres

    mutmut = str(Path(sys.executable).with_name("mutmut"))
    failures = 0
    with tempfile.TemporaryDirectory(prefix="ysg-mutation-") as tmp:
        server = EmbeddedPostgres.start(Path(tmp) / "pgdata", delete_on_stop=True)
        try:
            server.server.psql(
                "ALTER SYSTEM SET fsync = off; ALTER SYSTEM SET synchronous_commit = off;"
                "ALTER SYSTEM SET full_page_writes = off; SELECT pg_reload_conf();"
            )
            asyncio.run(_create_template(server.url()))
            for name in names:
                module, tests = MODULES[name]
                selection = ",".join(t for t in tests if Path(t).exists())
                env = dict(os.environ, DATABASE_URL=server.url(), **{ENV: selection, TEMPLATE_ENV: TEMPLATE})
                fresh = not Path("mutants/.module").exists() or Path("mutants/.module").read_text().strip() != name
                if fresh:
                    # A fresh mutants/ per module: mutmut's test↔mutant map belongs to one test selection.
                    shutil.rmtree("mutants", ignore_errors=True)
                    focus = FOCUS[name]
                    targets = [f"{module}.x_{f}__mutmut_*" for f in focus] if focus else [f"{module}.*"]
                else:
                    # Resume (or, with --survivors, re-run what survived, e.g. after adding tests).
                    wanted = {0} if survivors_only else {None}
                    targets = sorted(m for m, v in _verdicts(module).items() if v in wanted and _in_focus(name, m))
                print(f"== {name}: {len(targets)} targets against {selection}", flush=True)  # noqa: T201
                if targets:
                    run = subprocess.run([mutmut, "run", *targets], env=env, check=False)
                    failures += run.returncode != 0
                Path("mutants/.module").write_text(name)
                # mutants/ goes with the next module: keep each module's score and survivors.
                REPORTS.mkdir(exist_ok=True)
                score = f"{name} ({module}): {_score(name, module)}"
                (REPORTS / f"{name}.txt").write_text(score + "\n")
                print(score, flush=True)  # noqa: T201
        finally:
            server.stop()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
