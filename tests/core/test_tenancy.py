"""Organisation isolation held by PostgreSQL itself (core.tenancy): the catalog, and what the app role sees
and changes with the service's checks bypassed -- plain SQL under another organisation's settings."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core import tenancy
from core.database import create_sessionmaker
from core.demo import load_demo
from core.models import Organization
from core.plugins import build_plugin_host
from core.services import deadlines
from core.services.context import ServiceContext, Viewer
from core.tenancy.session import adopt
from tests.factories import Factory

# Tables shared by every organisation on purpose: reference data, and what sign-in needs before the
# caller is known. Nothing personal of a resident is in them.
GLOBAL_TABLES = {
    "alembic_version",
    "app_meta",  # the token-signing secret and the demo marker
    "organizations",  # the registry of organisations itself
    "districts",
    "trainings",
    "category_trainings",
    "login_attempts",  # throttling counts attempts per username and address before anyone is known
}


_CURRENT_SETTINGS = text(
    f"SELECT current_setting('{tenancy.ORG_SETTING}', true), current_setting('{tenancy.ROLE_SETTING}', true)"
)


async def _set_settings(session: Any, org: str, role: str) -> None:
    """What the bearer check does in its own statement: set the transaction's settings."""
    await session.execute(
        text(
            f"SELECT set_config('{tenancy.ORG_SETTING}', :org, true), set_config('{tenancy.ROLE_SETTING}', :role, true)"
        ),
        {"org": org, "role": role},
    )


async def _tables(conn: AsyncConnection) -> dict[str, dict[str, Any]]:
    rows = await conn.execute(
        text(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
            "EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'organization_id' "
            "AND NOT a.attisdropped) AS owned, "
            "(SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r'"
        )
    )
    return {r.relname: dict(r._mapping) for r in rows}


async def test_every_table_is_organisation_owned_under_forced_rls_or_deliberately_global(
    owner_engine: AsyncEngine,
) -> None:
    # given the database migrated with core and the built-in plugins
    async with owner_engine.connect() as conn:
        tables = await _tables(conn)
    # then each table either carries organization_id with RLS enabled, forced and at least one policy ...
    owned = {name for name, t in tables.items() if t["owned"]}
    unprotected = {
        name for name in owned if not (tables[name]["relrowsecurity"] and tables[name]["relforcerowsecurity"])
    }
    without_policy = {name for name in owned if tables[name]["policies"] == 0}
    assert (unprotected, without_policy) == (set(), set())
    # ... or is in the short documented list of shared tables (a new table must choose)
    assert set(tables) - owned == GLOBAL_TABLES
    # and every model declared organisation-owned is protected in this database (what `serve` checks)
    declared = set(tenancy.owned_tables(build_plugin_host(entry_points=False)))
    assert declared <= owned
    assert declared >= owned - {"audit_log"}  # the audit trail has its own policies (read / append)
    async with owner_engine.connect() as conn:
        assert await tenancy.unprotected_tables(conn) == []


async def test_the_startup_check_names_a_table_whose_protection_was_dropped(owner_engine: AsyncEngine) -> None:
    # given a table whose RLS is no longer forced, and one whose policy is gone (in a rolled-back change)
    async with owner_engine.connect() as conn, conn.begin() as tx:
        await conn.execute(text("ALTER TABLE supplies_donors NO FORCE ROW LEVEL SECURITY"))
        await conn.execute(text("DROP POLICY tenant_isolation ON counseling_clients"))
        # then the check `serve` runs at startup names both
        assert await tenancy.unprotected_tables(conn) == ["counseling_clients", "supplies_donors"]
        await tx.rollback()


async def test_the_service_role_cannot_bypass_row_level_security(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        role = (
            await conn.execute(
                text("SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            )
        ).one()
    assert tuple(role) == (tenancy.APP_ROLE, False, False)


@pytest.fixture
async def two_organisations(engine: AsyncEngine, clock: Any) -> dict[str, int]:
    """The demo's association (A) with every plugin's data, and a second organisation (B) with its own
    community, volunteer and request -- all loaded through the app role."""
    host = build_plugin_host(entry_points=False)
    await load_demo(engine, host=host)
    platform = Viewer(label="setup", role="platform_admin")
    async with create_sessionmaker(engine)() as session:
        ctx = ServiceContext(session=session, viewer=platform, clock=clock)
        association = (await session.execute(text("SELECT id FROM organizations WHERE kind = 'association'"))).scalar()
        other = Organization(name="乙机构", kind="agency")
        session.add(other)
        await session.commit()
        # Three days on, A's open requests are overdue: escalations exist too.
        later = ServiceContext(session=session, viewer=replace(platform, organization_id=int(association)))
        later.clock = lambda: clock() + timedelta(days=3)
        assert await deadlines.escalate(later) > 0
        # A scheduled job has run for A (core/jobs.py keeps its row).
        await session.execute(
            text("INSERT INTO job_runs (organization_id, job) VALUES (:org, 'demo.reminder')"), {"org": association}
        )
        # ... and one of A's accounts holds a plugin role.
        await session.execute(
            text(
                "INSERT INTO account_plugin_roles (account_id, role, granted_by) "
                "SELECT id, 'demo.supervisor', 'setup' FROM accounts WHERE organization_id = :org ORDER BY id LIMIT 1"
            ),
            {"org": association},
        )
        await session.commit()
        make = Factory(ctx).in_org(other.id)
        await make.request(community=await make.community(name="乙社区"))
        await make.volunteer(phone="13900000001")
    return {"a": int(association), "b": other.id}  # type: ignore[arg-type]


async def _act_as(conn: AsyncConnection, org: int | None) -> None:
    await conn.execute(
        text("SELECT set_config('app.org_id', :org, true), set_config('app.role', 'organization_admin', true)"),
        {"org": "" if org is None else str(org)},
    )


async def test_plain_sql_under_another_organisations_settings_sees_and_changes_nothing(
    engine: AsyncEngine, owner_engine: AsyncEngine, two_organisations: dict[str, int]
) -> None:
    a, b = two_organisations["a"], two_organisations["b"]
    tables = tenancy.owned_tables(build_plugin_host(entry_points=False))
    # given the truth, read by the owner (RLS does not apply to it)
    truth: dict[str, dict[int, int]] = {}
    async with owner_engine.connect() as conn:
        for table in tables:
            rows = await conn.execute(text(f"SELECT organization_id, count(*) FROM {table} GROUP BY 1"))
            truth[table] = {int(org): int(n) for org, n in rows}
    # (A's data reaches every organisation-owned table: the positive control below is real)
    assert [t for t in tables if not truth[t].get(a)] == []
    for me, them in ((a, b), (b, a)):
        async with engine.connect() as conn, conn.begin() as tx:
            # when the app role acts for `me` with plain SQL, bypassing every service-layer check
            await _act_as(conn, me)
            for table in tables:
                seen = await conn.execute(text(f"SELECT organization_id, count(*) FROM {table} GROUP BY 1"))
                # then it sees exactly its own rows (all of them) and none of the other's
                expected = {me: truth[table][me]} if truth[table].get(me) else {}
                assert {int(org): int(n) for org, n in seen} == expected, table
                # and can change or delete none of the other's, whatever it asks
                changed = await conn.execute(
                    text(f"UPDATE {table} SET organization_id = organization_id WHERE organization_id = :o"),
                    {"o": them},
                )
                deleted = await conn.execute(text(f"DELETE FROM {table} WHERE organization_id = :o"), {"o": them})
                assert (table, changed.rowcount, deleted.rowcount) == (table, 0, 0)
            await tx.rollback()
    # and nothing changed
    async with owner_engine.connect() as conn:
        for table in tables:
            rows = await conn.execute(text(f"SELECT organization_id, count(*) FROM {table} GROUP BY 1"))
            assert {int(org): int(n) for org, n in rows} == truth[table], table


async def test_writing_a_row_for_another_organisation_is_refused(
    engine: AsyncEngine, owner_engine: AsyncEngine, two_organisations: dict[str, int]
) -> None:
    a, b = two_organisations["a"], two_organisations["b"]
    async with owner_engine.connect() as conn:
        community_a, community_b, volunteer_b = (
            await conn.execute(
                text(
                    "SELECT (SELECT min(id) FROM communities WHERE organization_id = :a), "
                    "(SELECT min(id) FROM communities WHERE organization_id = :b), "
                    "(SELECT min(id) FROM volunteers WHERE organization_id = :b)"
                ),
                {"a": a, "b": b},
            )
        ).one()
    refusals = [
        # a root row naming the other organisation
        (
            "INSERT INTO communities (organization_id, district_id, name, street, head_name) "
            f"SELECT {a}, district_id, 'X', '', '' FROM communities WHERE id = {community_b}",
            "42501",
        ),
        # a child of the other organisation's row (the parent is invisible, so it "does not exist")
        (
            "INSERT INTO community_liaisons (community_id, volunteer_id, role) "
            f"VALUES ({community_a}, {volunteer_b}, 'volunteer')",
            "42501",
        ),
        # moving one's own row to the other organisation
        (f"UPDATE volunteers SET organization_id = {a} WHERE id = {volunteer_b}", "42501"),
    ]
    for statement, sqlstate in refusals:
        async with engine.connect() as conn, conn.begin():
            await _act_as(conn, b)
            with pytest.raises(DBAPIError) as refused:
                await conn.execute(text(statement))
            assert refused.value.orig.sqlstate == sqlstate, statement  # type: ignore[union-attr]


async def test_a_connection_that_was_not_told_who_is_asking_sees_nothing(
    engine: AsyncEngine, two_organisations: dict[str, int]
) -> None:
    async with engine.connect() as conn:
        for table in ("help_requests", "volunteers", "counseling_clients", "supplies_donors", "accounts"):
            assert await conn.scalar(text(f"SELECT count(*) FROM {table}")) == 0, table


async def test_a_session_rebound_mid_transaction_acts_for_the_new_viewer_on_its_raw_connection(
    engine: AsyncEngine,
) -> None:
    # given a transaction begun for one viewer (as the bearer check begins one as the authenticator)
    first = Viewer(label="checker", role="authenticator")
    then = Viewer(label="member", role="organization_admin", organization_id=42)
    settings = _CURRENT_SETTINGS
    async with create_sessionmaker(engine)() as session:
        tenancy.bind(session, first)
        assert tuple((await session.execute(settings)).one()) == ("", "authenticator")
        # when the session is rebound to the caller
        await tenancy.rebind(session, then)
        # then a statement on the bare connection (no ORM event in between) already acts for the caller
        connection = await session.connection()
        assert tuple((await connection.execute(settings)).one()) == ("42", "organization_admin")


async def test_settings_a_statement_set_for_the_viewer_are_adopted_without_applying_them_again(
    engine: AsyncEngine,
) -> None:
    # given a transaction whose settings a statement of its own set (as the bearer check does)
    viewer = Viewer(label="member", role="organization_admin", organization_id=42)
    settings = _CURRENT_SETTINGS
    seen: list[str] = []
    async with create_sessionmaker(engine)() as session:
        await _set_settings(session, "42", "organization_admin")
        # when the session adopts them for the viewer they belong to
        await adopt(session, viewer, ("42", "organization_admin"))
        listen = (engine.sync_engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
        event.listen(*listen)
        try:
            # then its next statements (ORM or on the bare connection) run with them, and nothing re-applied them
            assert tuple((await session.execute(settings)).one()) == ("42", "organization_admin")
            await tenancy.rebind(session, viewer)
            assert tuple((await (await session.connection()).execute(settings)).one()) == ("42", "organization_admin")
        finally:
            event.remove(*listen)
    assert seen == [str(settings), str(settings)]


async def test_settings_that_are_not_the_viewers_are_replaced_before_the_next_statement(engine: AsyncEngine) -> None:
    # given a transaction whose statement set settings other than the viewer's (another organisation)
    viewer = Viewer(label="member", role="organization_admin", organization_id=42)
    settings = _CURRENT_SETTINGS
    async with create_sessionmaker(engine)() as session:
        await _set_settings(session, "7", "organization_admin")
        # when the session is told they were set for the viewer
        await adopt(session, viewer, ("7", "organization_admin"))
        # then the viewer's own settings are applied before anything runs on the bare connection
        connection = await session.connection()
        assert tuple((await connection.execute(settings)).one()) == ("42", "organization_admin")


async def test_a_temporary_table_cannot_stand_in_for_a_parent_or_be_made_by_the_service(
    engine: AsyncEngine, owner_engine: AsyncEngine, two_organisations: dict[str, int]
) -> None:
    a, b = two_organisations["a"], two_organisations["b"]
    async with owner_engine.connect() as conn:
        community_b, volunteer_a = (
            await conn.execute(
                text(
                    "SELECT (SELECT min(id) FROM communities WHERE organization_id = :b), "
                    "(SELECT min(id) FROM volunteers WHERE organization_id = :a)"
                ),
                {"a": a, "b": b},
            )
        ).one()
    # given a session holding a temporary `communities` that says B's community is A's (made by the owner:
    # the service's role may not make one at all)
    async with owner_engine.connect() as conn, conn.begin():
        await conn.execute(text("CREATE TEMP TABLE communities (id bigint, organization_id bigint)"))
        await conn.execute(text("INSERT INTO communities VALUES (:c, :a)"), {"c": community_b, "a": a})
        await conn.execute(text(f"GRANT SELECT ON pg_temp.communities TO {tenancy.APP_ROLE}"))
        await conn.execute(text(f"SET LOCAL ROLE {tenancy.APP_ROLE}"))
        await _act_as(conn, a)
        # when A links its volunteer to B's community in that session
        with pytest.raises(DBAPIError) as refused:
            await conn.execute(
                text("INSERT INTO community_liaisons (community_id, volunteer_id, role) VALUES (:c, :v, 'volunteer')"),
                {"c": community_b, "v": volunteer_a},
            )
    # then the organisation check read the real table: B's community is not A's to link
    assert refused.value.orig.sqlstate == "42501"  # type: ignore[union-attr]
    # and the service's own role cannot make a temporary table in the first place
    async with engine.connect() as conn, conn.begin():
        with pytest.raises(DBAPIError) as denied:
            await conn.execute(text("CREATE TEMP TABLE anything (x int)"))
    assert denied.value.orig.sqlstate == "42501"  # type: ignore[union-attr]
