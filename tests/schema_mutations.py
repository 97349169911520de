"""Schema mutations: drop each constraint, trigger or policy that guards an invariant and expect a test to fail.

Mutation tools (mutmut) mutate Python, never the SQL the migrations install, so this does the same for the
schema: for each object below it runs the relevant tests against a freshly migrated database from which that
one object has been removed. A run in which some test fails *kills* the mutation; a run that passes means
nothing in the suite notices the object is gone (it *survived*: a missing test).

    .venv/bin/python -m tests.schema_mutations            # every mutation
    .venv/bin/python -m tests.schema_mutations NAME ...   # only these (see --list)

How: this module is also a pytest plugin (`-p tests.schema_mutations`). When YSG_SCHEMA_MUTATION holds SQL,
its session fixture runs that SQL as the migrating owner right after the suite's `test_db` fixture migrated
the run's database, before any test. One embedded PostgreSQL serves every run (DATABASE_URL); each run
migrates its own database, as the suite always does.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ENV = "YSG_SCHEMA_MUTATION"
BAD_MUTATION = 7  # pytest's exit code when the mutation's SQL itself failed (the object does not exist)


@pytest.fixture(scope="session", autouse=True)
async def _schema_mutation(test_db: Any) -> None:
    sql = os.environ.get(ENV)
    if sql:
        from sqlalchemy import text

        from core.database import create_engine

        engine = create_engine(test_db, pool_size=1)
        try:
            async with engine.begin() as conn:
                for statement in sql.split(";"):
                    if statement.strip():
                        await conn.execute(text(statement))
        except Exception as exc:
            pytest.exit(f"schema mutation failed to apply: {exc}", returncode=BAD_MUTATION)
        finally:
            await engine.dispose()


@dataclass(frozen=True)
class Mutation:
    name: str
    sql: str
    tests: tuple[str, ...]
    guards: str


def _permissive(table: str) -> str:
    """Organisation isolation off for one table: its tenant policy replaced by one letting every row through."""
    return (
        f"DROP POLICY tenant_isolation ON {table}; "
        f"CREATE POLICY tenant_isolation ON {table} USING (true) WITH CHECK (true)"
    )


HR = "tests/core/services/test_help_requests.py"
AS = "tests/core/services/test_assignments.py"
SCHED = "tests/core/services/test_scheduling.py"
SUPPLIES = "tests/plugins/supplies"
APPEND_ONLY = "tests/core/test_append_only.py"
GUARDS = "tests/core/test_schema_guards.py"
TENANCY = ("tests/core/test_tenancy.py", "tests/schema/test_isolation.py")
REFERRALS = ("tests/core/services/test_referrals.py", "tests/schema/test_people_api.py")
CONSENTS = "tests/core/services/test_consent.py"
PEOPLE_CATALOG = "tests/core/test_people_catalog.py"

MUTATIONS = [
    Mutation(
        "ck_volunteers_capacity",
        "ALTER TABLE volunteers DROP CONSTRAINT ck_volunteers_capacity",
        (AS,),
        "a volunteer never holds more active assignments than their maximum",
    ),
    Mutation(
        "assignments_track_active",
        "DROP TRIGGER assignments_track_active ON assignments",
        (AS, HR),
        "the active-assignment counter the capacity CHECK reads",
    ),
    Mutation(
        "uq_assignments_active_pair",
        "DROP INDEX uq_assignments_active_pair",
        (AS, GUARDS),
        "one active assignment per (request, volunteer)",
    ),
    Mutation(
        "assignments_no_delete",
        "DROP TRIGGER assignments_no_delete ON assignments",
        (AS, APPEND_ONLY),
        "assignments are records: never deleted",
    ),
    Mutation(
        "ex_appointments_no_overlap",
        "ALTER TABLE appointments DROP CONSTRAINT ex_appointments_no_overlap",
        (SCHED,),
        "no two active appointments of one calendar overlap",
    ),
    Mutation(
        "ck_supplies_balances_not_negative",
        "ALTER TABLE supplies_balances DROP CONSTRAINT ck_supplies_balances_not_negative",
        (SUPPLIES,),
        "stock on hand never goes below zero",
    ),
    Mutation(
        "uq_supplies_movements_reverses",
        "DROP INDEX uq_supplies_movements_reverses",
        (SUPPLIES,),
        "a movement is reversed at most once",
    ),
    Mutation(
        "help_request_status_changes_append_only",
        "DROP TRIGGER help_request_status_changes_append_only ON help_request_status_changes",
        (HR, APPEND_ONLY),
        "request history is never rewritten",
    ),
    Mutation(
        "help_request_status_changes_no_truncate",
        "DROP TRIGGER help_request_status_changes_no_truncate ON help_request_status_changes",
        (HR, APPEND_ONLY),
        "request history is never truncated",
    ),
    Mutation(
        "audit_log_append_only",
        "DROP TRIGGER audit_log_append_only ON audit_log",
        ("tests/schema/test_auth.py", APPEND_ONLY),
        "the audit trail is never rewritten",
    ),
    Mutation(
        "audit_log_no_truncate",
        "DROP TRIGGER audit_log_no_truncate ON audit_log",
        ("tests/schema/test_auth.py", APPEND_ONLY),
        "the audit trail is never truncated",
    ),
    Mutation(
        "supplies_movements_append_only",
        "DROP TRIGGER supplies_movements_append_only ON supplies_movements",
        (SUPPLIES, APPEND_ONLY),
        "the stock ledger is never rewritten",
    ),
    Mutation(
        "supplies_movements_no_truncate",
        "DROP TRIGGER supplies_movements_no_truncate ON supplies_movements",
        (APPEND_ONLY,),
        "the stock ledger is never truncated",
    ),
    Mutation(
        "tenant_isolation(help_requests)",
        _permissive("help_requests"),
        TENANCY,
        "an organisation never sees another's help requests",
    ),
    Mutation(
        "tenant_isolation(volunteers)",
        _permissive("volunteers"),
        TENANCY,
        "an organisation never sees another's volunteers",
    ),
    Mutation(
        "tenant_isolation(supplies_items)",
        _permissive("supplies_items"),
        ("tests/plugins/supplies/test_isolation.py",),
        "an organisation never sees another's supplies",
    ),
    Mutation(
        "tenant_isolation(counseling_clients)",
        _permissive("counseling_clients"),
        ("tests/plugins/counseling/test_isolation.py",),
        "an organisation never sees another's counseling clients",
    ),
    Mutation(
        "referral_received",
        "DROP POLICY referral_received ON referrals; CREATE POLICY referral_received ON referrals FOR SELECT "
        "USING (target_organization_id = (SELECT app_org()))",
        REFERRALS,
        "the recipient sees a referral only while it is not revoked and its consent is in force",
    ),
    Mutation(
        "referrals_recipient_guard",
        "DROP TRIGGER referrals_recipient_guard ON referrals",
        REFERRALS,
        "the recipient of a referral only answers or completes it",
    ),
    Mutation(
        "consents_never_deleted",
        "DROP TRIGGER consents_never_deleted ON consents",
        (CONSENTS,),
        "consents are revoked, never deleted",
    ),
    Mutation(
        "consents_revoke_only",
        "DROP TRIGGER consents_revoke_only ON consents",
        (CONSENTS, PEOPLE_CATALOG),
        "a consent is never rewritten: only its revocation is recorded, once",
    ),
    Mutation(
        "referrals_never_deleted",
        "DROP TRIGGER referrals_never_deleted ON referrals",
        (*REFERRALS, PEOPLE_CATALOG),
        "referrals are revoked, never deleted",
    ),
    Mutation(
        "fk_referrals_consent_target",
        "ALTER TABLE referrals DROP CONSTRAINT fk_referrals_consent_target",
        (*REFERRALS, PEOPLE_CATALOG),
        "a referral goes to the organisation its consent names",
    ),
    Mutation(
        "audit_read",
        "DROP POLICY audit_read ON audit_log; CREATE POLICY audit_read ON audit_log FOR SELECT USING (true)",
        (*TENANCY, "tests/schema/test_auth.py", GUARDS),
        "an organisation reads only its own audit trail",
    ),
]


def _pytest(mutation: Mutation, server_url: str) -> tuple[str, float, str]:
    env = dict(os.environ, DATABASE_URL=server_url, **{ENV: mutation.sql})
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-x",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.schema_mutations",
            *mutation.tests,
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.monotonic() - started
    verdict = {0: "SURVIVED", 1: "killed", BAD_MUTATION: "INVALID (object not found)"}.get(
        done.returncode, f"error (pytest exit {done.returncode})"
    )
    if done.returncode not in (0, 1):
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
    failed = [line.split(" - ")[0] for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    return verdict, elapsed, failed[0] if failed else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="mutations to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    args = parser.parse_args(argv)
    if args.list:
        for m in MUTATIONS:
            print(f"{m.name:45} {m.guards}")  # noqa: T201
        return 0
    chosen = [m for m in MUTATIONS if not args.names or m.name in args.names]
    unknown = set(args.names) - {m.name for m in MUTATIONS}
    if unknown:
        parser.error(f"unknown mutations: {', '.join(sorted(unknown))}")

    from core.database import EmbeddedPostgres

    results = []
    external = os.environ.get("DATABASE_URL")
    with tempfile.TemporaryDirectory(prefix="ysg-schema-mutations-") as tmp:
        server = None if external else EmbeddedPostgres.start(Path(tmp) / "pgdata", delete_on_stop=True)
        try:
            if server is not None:
                server.server.psql(
                    "ALTER SYSTEM SET fsync = off; ALTER SYSTEM SET synchronous_commit = off;"
                    "ALTER SYSTEM SET full_page_writes = off; SELECT pg_reload_conf();"
                )
            url = external or server.url()  # type: ignore[union-attr]
            # The control: with nothing dropped every selected test passes (else "killed" would mean nothing).
            files = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
            verdict, elapsed, first = _pytest(Mutation("(control: nothing dropped)", "SELECT 1", files, ""), url)
            print(f"{verdict:10} (control: nothing dropped) {elapsed:5.1f}s {first}", flush=True)  # noqa: T201
            if verdict != "SURVIVED":
                print("the selected tests fail without any mutation: fix them first")  # noqa: T201
                return 2
            for m in chosen:
                verdict, elapsed, first = _pytest(m, url)
                results.append((m, verdict))
                print(f"{verdict:10} {m.name:45} {elapsed:5.1f}s  {first or ' '.join(m.tests)}", flush=True)  # noqa: T201
        finally:
            if server is not None:
                server.stop()
    survived = [m for m, v in results if v != "killed"]
    print(  # noqa: T201
        f"\n{len(results) - len(survived)}/{len(results)} schema mutations killed"
        + "".join(f"\n  not killed: {m.name} ({m.guards})" for m in survived)
    )
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
