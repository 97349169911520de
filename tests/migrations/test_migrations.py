"""Migrations and models agree, and the core branch upgrades and downgrades cleanly."""

from __future__ import annotations

import importlib
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

BUILTIN_MODELS = ("plugins.counseling.models", "plugins.supplies.models")


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


async def test_downgrade_to_base_and_upgrade_again(server_url: str) -> None:
    name = "ysg_migration_roundtrip"
    await drop_database(server_url, name)
    await ensure_database(server_url, name)
    engine = create_engine(database_url_for(server_url, name), pool_size=1)
    dirs = build_plugin_host(entry_points=False).migration_dirs()
    heads = {"s003", "c002"}  # core 0006 is below both
    try:
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
    finally:
        await engine.dispose()
        await drop_database(server_url, name)
