"""Migrations and models agree, and the core branch upgrades and downgrades cleanly."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import AsyncIterator
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

import core.models  # noqa: F401  (all tables on the metadata)
from core import migrate
from core.database import Base, create_engine, database_url_for, drop_database, ensure_database
from core.plugins import build_plugin_host

BUILTIN_MODELS = (
    "plugins.counseling.models",
    "plugins.supplies.models",
    "plugins.case_work.models",
    "plugins.case_work.notes.models",
    "plugins.case_work.plans.models",
    "plugins.case_work.visits.models",
    "plugins.case_work.groups.models",
    "plugins.case_work.reaction_models",
    "plugins.maternal_care.models",
    "plugins.maternal_care.lectures.models",
    "plugins.maternal_care.followups.models",
    "plugins.maternal_care.needs.models",
)


async def test_models_match_the_migrated_schema(engine: AsyncEngine) -> None:
    # given the database migrated by the test harness
    # Core's and the built-in plugins' tables (the harness migrates both); a third-party test plugin may
    # have put its models on the same metadata, but its tables live in another database.
    for module in BUILTIN_MODELS:
        importlib.import_module(module)

    owned = ("core.", "plugins.")
    core_tables = {m.local_table.name for m in Base.registry.mappers if m.class_.__module__.startswith(owned)}

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        return type_ != "table" or name in core_tables

    def diff(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "include_object": include})
        return compare_metadata(context, Base.metadata)

    # when autogenerate compares it with the models
    async with engine.connect() as conn:
        changes = await conn.run_sync(diff)
    # then there is nothing left to migrate
    assert changes == []


@contextlib.asynccontextmanager
async def _fresh_database(server_url: str, name: str) -> AsyncIterator[tuple[AsyncEngine, list[Any]]]:
    """An empty database of its own (dropped afterwards), its engine, and the migration folders."""
    await drop_database(server_url, name)
    await ensure_database(server_url, name)
    engine = create_engine(database_url_for(server_url, name), pool_size=1)
    try:
        yield engine, build_plugin_host(entry_points=False).migration_dirs()
    finally:
        await engine.dispose()
        await drop_database(server_url, name)


async def test_downgrade_to_base_and_upgrade_again(server_url: str) -> None:
    # the plugins depend on core 0006 (case_work: 0008; supplies s005: 0013); core went on to 0015
    heads = {"s005", "c003", "w013", "m007", "0015"}
    async with _fresh_database(server_url, "ysg_migration_roundtrip") as (engine, dirs):
        await migrate.upgrade(engine, dirs)
        await migrate.upgrade(engine, dirs)  # a second run is a no-op
        assert await migrate.current_heads(engine, dirs) == heads
        await migrate.downgrade(engine, "base", dirs)
        async with engine.connect() as conn:
            left = (
                (
                    await conn.execute(
                        text(
                            "SELECT tablename FROM pg_tables "
                            "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                        )
                    )
                )
                .scalars()
                .all()
            )
        assert left == []
        await migrate.upgrade(engine, dirs)
        assert await migrate.current_heads(engine, dirs) == heads


async def test_existing_rows_are_given_to_the_association_and_children_follow_their_parents(server_url: str) -> None:
    async with _fresh_database(server_url, "ysg_migration_backfill") as (engine, dirs):
        # given a deployment from before organisation isolation, with rows that name no organisation
        await migrate.upgrade(engine, dirs, target="s002")
        await migrate.upgrade(engine, dirs, target="c001")
        async with engine.begin() as conn:
            for statement in (
                "INSERT INTO districts (name, kind) VALUES ('碑林区', 'district')",
                "INSERT INTO communities (district_id, name, street, head_name) VALUES (1, '粉巷社区', '', '')",
                "INSERT INTO volunteers (name, phone, mode, skills, availability, max_concurrent_assignments, teams) "
                "VALUES ('张', '13900000001', 'offline', '{}', 'available', 3, '{}')",
                "INSERT INTO help_requests (community_id, title, description, category, beneficiaries, urgency, "
                "requester_name, requester_phone, requester_address, health_details, status, required_skills) "
                "VALUES (1, '送药', '', 'medicine', 1, 'high', '王', '13800000000', '', '', 'submitted', '{}')",
                "INSERT INTO supplies_items (name, category, unit) VALUES ('N95口罩', 'medical_protection', '只')",
            ):
                await conn.execute(text(statement))
        # when it is migrated
        await migrate.upgrade(engine, dirs)
        # then an association exists, the roots belong to it and the request follows its community
        async with engine.connect() as conn:
            orgs = (await conn.execute(text("SELECT id, name, kind FROM organizations"))).all()
            owners = (
                await conn.execute(
                    text(
                        "SELECT (SELECT organization_id FROM communities), (SELECT organization_id FROM volunteers), "
                        "(SELECT organization_id FROM help_requests), (SELECT organization_id FROM supplies_items)"
                    )
                )
            ).one()
        assert [(o.name, o.kind) for o in orgs] == [("西安市社会工作协会", "association")]
        assert tuple(owners) == (orgs[0].id,) * 4


async def test_usernames_are_rewritten_in_their_one_spelling(server_url: str) -> None:
    async with _fresh_database(server_url, "ysg_migration_usernames") as (engine, dirs):
        # given accounts stored before usernames had one spelling: full width, a decomposed accent, and a
        # look-alike of an existing name
        await migrate.upgrade(engine, dirs, target="0009")
        async with engine.begin() as conn:
            await conn.execute(text("SELECT set_config('app.role', 'platform_admin', true)"))
            for username in ("ａｌｉ", "rene\u0301", "bob", "ｂｏｂ"):
                await conn.execute(
                    text(
                        "INSERT INTO accounts (username, display_name, password_hash, role) "
                        "VALUES (:u, '', '', 'social_worker')"
                    ),
                    {"u": username},
                )
        # when it is migrated
        await migrate.upgrade(engine, dirs)
        # then each name is in its canonical spelling, except the look-alike, left for an administrator
        async with engine.begin() as conn:
            await conn.execute(text("SELECT set_config('app.role', 'platform_admin', true)"))
            names = (await conn.execute(text("SELECT username FROM accounts ORDER BY id"))).scalars().all()
        assert names == ["ali", "ren\u00e9", "bob", "ｂｏｂ"]
