"""The database holds a case's risk history as it holds its stage history (migration w009): the risk level
changes only with the next numbered history row, from the level the case had to the new one; a row is the
next change of an open case and is taken up by its case before commit; rows stay as written. Raw SQL runs as
the app role under an organisation (row-level security on), as the services do."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from core import migrate
from core.database import create_engine, database_url_for, drop_database, ensure_database
from core.plugins import build_plugin_host
from core.services.common import constraint_name
from plugins.case_work import services
from plugins.case_work.models import RiskChange
from tests.plugins.case_work.conftest import CaseWorld

RECORDED = "case_work_risk_recorded"
ROW = (
    "INSERT INTO case_work_risk_changes (case_id, seq, from_level, to_level, actor) "
    "VALUES (:id, {seq}, {frm}, {to}, 'x')"
)


def row(frm: str, to: str, seq: str = "(SELECT risk_seq + 1 FROM case_work_cases WHERE id = :id)") -> str:
    return ROW.format(seq=seq, frm=f"'{frm}'", to=f"'{to}'")


def raise_to(level: str) -> str:
    return f"UPDATE case_work_cases SET risk_level = '{level}', risk_seq = risk_seq + 1 WHERE id = :id"


async def sql(cw: CaseWorld, who: str, *statements: str, **params: object) -> str | None:
    """Run `statements` in one transaction as `who` (the app role, under `who`'s organisation); the violated
    constraint's name (at a statement or at commit), or None if it was committed."""
    try:
        async with cw.as_(who) as ctx:
            for statement in statements:
                await ctx.session.execute(text(statement), params)
    except DBAPIError as exc:
        return constraint_name(exc) or str(getattr(exc.orig, "sqlstate", "") or exc.orig)
    return None


async def history(cw: CaseWorld, case_id: int) -> list[tuple[int, str, str]]:
    async with cw.as_("admin") as ctx:
        rows = await ctx.session.scalars(
            select(RiskChange).where(RiskChange.case_id == case_id).order_by(RiskChange.id)
        )
        return [(r.seq, r.from_level, r.to_level) for r in rows]


async def test_the_services_number_every_risk_change_and_the_case_counts_them(cw: CaseWorld) -> None:
    # given a medium-risk case
    case_id = await cw.open(risk="medium")
    assert (await cw.case(case_id)).risk_seq == 0
    # when its social worker raises it, the supervisor lowers it (saying why), and a no-op change is made
    await cw.call("sw", services.update_case, case_id, risk_level="high")
    await cw.call("sup", services.update_case, case_id, risk_level="low", reason="家属已接回同住")
    await cw.call("sw", services.update_case, case_id, risk_level="low", category="other")
    # then the history is numbered 1, 2 from each level to the next, and the case counts two changes
    assert await history(cw, case_id) == [(1, "medium", "high"), (2, "high", "low")]
    case = await cw.case(case_id)
    assert (case.risk_level, case.risk_seq) == ("low", 2)


async def test_sql_cannot_change_the_risk_without_its_history_row(cw: CaseWorld) -> None:
    # given a low-risk case with one change behind it
    case_id = await cw.open(risk="medium")
    await cw.call("sup", services.update_case, case_id, risk_level="low", reason="复核")
    before = await cw.counts()
    # when SQL changes the level with no row, with the number and no row, or keeping the number: refused
    assert (
        await sql(cw, "admin", "UPDATE case_work_cases SET risk_level = 'high' WHERE id = :id", id=case_id) == RECORDED
    )
    assert await sql(cw, "admin", raise_to("high"), id=case_id) == RECORDED
    # when SQL moves the number without the level, either way: refused
    bump = "UPDATE case_work_cases SET risk_seq = risk_seq {op} 1 WHERE id = :id"
    assert await sql(cw, "admin", bump.format(op="+"), id=case_id) == RECORDED
    assert await sql(cw, "admin", bump.format(op="-"), id=case_id) == RECORDED
    # when SQL writes the row and sets another level than the row's, or skips a number: refused
    assert await sql(cw, "admin", row("low", "medium"), raise_to("high"), id=case_id) == RECORDED
    skip = "UPDATE case_work_cases SET risk_level = 'medium', risk_seq = risk_seq + 2 WHERE id = :id"
    assert await sql(cw, "admin", row("low", "medium"), skip, id=case_id) == RECORDED
    # when SQL opens a case that claims changes it never had: refused
    opened = (
        "INSERT INTO case_work_cases (client_id, social_worker_account_id, supervisor_account_id, category, "
        "risk_level, risk_seq) SELECT client_id, social_worker_account_id, supervisor_account_id, category, "
        "risk_level, 3 FROM case_work_cases WHERE id = :id"
    )
    assert await sql(cw, "admin", opened, id=case_id) == RECORDED
    # then nothing was written, and the case is as it was
    assert await cw.counts() == before
    case = await cw.case(case_id)
    assert (case.risk_level, case.risk_seq) == ("low", 1)


async def test_sql_cannot_write_a_history_row_that_is_not_the_cases_next_change(cw: CaseWorld) -> None:
    # given a low-risk case with one change behind it
    case_id = await cw.open(risk="medium")
    await cw.call("sup", services.update_case, case_id, risk_level="low", reason="复核")
    before = await cw.counts()
    # when SQL writes a row ahead of the next number, from another level than the case's, or twice the next
    # number (each matching the change made after it): refused
    assert await sql(cw, "admin", row("low", "high", seq="3"), id=case_id) == RECORDED
    assert await sql(cw, "admin", row("high", "medium", seq="2"), id=case_id) == RECORDED
    twice = (row("low", "high"), row("low", "medium"), raise_to("high"))
    assert await sql(cw, "admin", *twice, id=case_id) == "uq_case_work_risk_changes_case_id_seq"
    # when SQL writes the next row and leaves the case as it was: refused at commit (the row would hold the
    # next number, and the next real change could never be recorded)
    assert await sql(cw, "admin", row("low", "high"), id=case_id) == RECORDED
    # when a member of another organisation writes a row for the case (which it does not see): refused
    assert await sql(cw, "admin_b", row("low", "high"), raise_to("high"), id=case_id) is not None
    # then nothing was written
    assert await cw.counts() == before
    assert await history(cw, case_id) == [(1, "medium", "low")]
    # and the next change, by SQL that writes the row first, then by the services, is recorded in turn
    assert await sql(cw, "admin", row("low", "high"), raise_to("high"), id=case_id) is None
    await cw.call("sup", services.update_case, case_id, risk_level="medium", reason="复核")
    assert await history(cw, case_id) == [(1, "medium", "low"), (2, "low", "high"), (3, "high", "medium")]
    assert (await cw.case(case_id)).risk_seq == 3


async def test_a_closed_case_takes_no_risk_row_and_the_history_stays_as_written(cw: CaseWorld) -> None:
    # given a closed case with a risk change behind it
    case_id = await cw.open(risk="low")
    await cw.call("sw", services.update_case, case_id, risk_level="medium")
    await cw.bring_to(case_id, "closure")
    before = await cw.counts()
    # when SQL writes its next risk row, alone or with the change (or with reopening it in one statement)
    assert await sql(cw, "admin", row("medium", "high"), id=case_id) == "case_work_case_closed"
    assert await sql(cw, "admin", row("medium", "high"), raise_to("high"), id=case_id) == "case_work_case_closed"
    reopen_raised = (
        "UPDATE case_work_cases SET stage = 'assessment', stage_seq = stage_seq + 1, "
        "risk_level = 'high', risk_seq = risk_seq + 1 WHERE id = :id"
    )
    assert await sql(cw, "admin", row("medium", "high"), reopen_raised, id=case_id) == "case_work_case_closed"
    # and the services refuse the change as before
    assert await cw.refused("sup", services.update_case, case_id, risk_level="high") == "CASE_CLOSED"
    # when SQL rewrites or deletes the history
    for statement in (
        "UPDATE case_work_risk_changes SET to_level = 'high' WHERE case_id = :id",
        "UPDATE case_work_risk_changes SET seq = 2 WHERE case_id = :id",
        "DELETE FROM case_work_risk_changes WHERE case_id = :id",
    ):
        assert await sql(cw, "admin", statement, id=case_id) == "case_work_append_only", statement
    # then nothing changed
    assert await cw.counts() == before
    assert await history(cw, case_id) == [(1, "low", "medium")]


async def test_w009_numbers_the_existing_history_per_case_and_its_downgrade_drops_what_it_added(
    server_url: str,
) -> None:
    # given a database at w008 with risk histories of two cases written interleaved (one case closed since)
    # and a case without one
    name = "ysg_case_work_w009_backfill"
    await drop_database(server_url, name)
    await ensure_database(server_url, name)
    engine = create_engine(database_url_for(server_url, name), pool_size=1)
    dirs = build_plugin_host(entry_points=False).migration_dirs()

    async def rows(statement: str) -> list[tuple[Any, ...]]:
        async with engine.begin() as conn:
            await conn.execute(text("SELECT set_config('app.role', 'platform_admin', true)"))
            return [tuple(r) for r in (await conn.execute(text(statement))).all()]

    added = (
        "SELECT (SELECT count(*) FROM information_schema.columns WHERE (table_name, column_name) IN "
        "(('case_work_cases', 'risk_seq'), ('case_work_risk_changes', 'seq'))), "
        "(SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'case\\_work\\_risk\\_%'), "
        "(SELECT count(*) FROM pg_proc WHERE proname LIKE 'case\\_work\\_risk\\_%')"
    )
    try:
        await migrate.upgrade(engine, dirs, target="w008")
        async with engine.begin() as conn:
            # Fixtures at an old revision, as the owner: the guards of w001 would want each step's history.
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            for statement in (
                "INSERT INTO organizations (id, name, kind) VALUES (1, 'A', 'agency')",
                "INSERT INTO accounts (id, username, display_name, password_hash, role, organization_id) "
                "VALUES (1, 'w', 'w', '-', 'social_worker', 1), (2, 's', 's', '-', 'social_worker', 1)",
                "INSERT INTO residents (id, name, organization_id) VALUES (1, '张奶奶', 1)",
                "INSERT INTO case_work_clients (id, resident_id, organization_id) VALUES (1, 1, 1)",
                "INSERT INTO case_work_cases (id, client_id, social_worker_account_id, supervisor_account_id, "
                "category, risk_level, stage, stage_seq, organization_id) VALUES "
                "(1, 1, 1, 2, 'other', 'high', 'intake', 0, 1), (2, 1, 1, 2, 'other', 'medium', 'closure', 5, 1), "
                "(3, 1, 1, 2, 'other', 'low', 'intake', 0, 1)",
                "INSERT INTO case_work_risk_changes (id, case_id, from_level, to_level, actor, organization_id) "
                "VALUES (1, 1, 'low', 'medium', 'w', 1), (2, 2, 'high', 'medium', 's', 1), "
                "(3, 1, 'medium', 'high', 'w', 1)",
            ):
                await conn.execute(text(statement))
        # when it is migrated
        await migrate.upgrade(engine, dirs)
        # then each case's rows are numbered in the order they were written, and each case counts its own
        assert await rows("SELECT id, seq FROM case_work_risk_changes ORDER BY id") == [(1, 1), (2, 1), (3, 2)]
        assert await rows("SELECT id, risk_seq FROM case_work_cases ORDER BY id") == [(1, 2), (2, 1), (3, 0)]
        assert (await rows(added))[0] == (2, 3, 3)
        # and the guards hold from then on (the owner, too)
        try:
            await rows("UPDATE case_work_cases SET risk_level = 'low' WHERE id = 1")
            refused = None
        except DBAPIError as exc:
            refused = constraint_name(exc)
        assert refused == RECORDED
        # when w009 is undone, then what it added is gone and the history is as it was; and up again
        await migrate.downgrade(engine, "w008", dirs)
        assert (await rows(added))[0] == (0, 0, 0)
        assert await rows("SELECT id, case_id, from_level, to_level FROM case_work_risk_changes ORDER BY id") == [
            (1, 1, "low", "medium"),
            (2, 2, "high", "medium"),
            (3, 1, "medium", "high"),
        ]
        await migrate.upgrade(engine, dirs)
        assert await rows("SELECT id, risk_seq FROM case_work_cases ORDER BY id") == [(1, 2), (2, 1), (3, 0)]
    finally:
        await engine.dispose()
        await drop_database(server_url, name)
