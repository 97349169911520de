"""Schema migrations: Alembic, driven programmatically over the service's own async engine.

Core owns the `core` branch in migrations/versions; each plugin may contribute its own version directory
(its own branch), and `upgrade heads` brings every branch up to date.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

import migrations
from core import tenancy

MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent
CORE_VERSIONS_DIR = MIGRATIONS_DIR / "versions"
# The first core revision: plugin branches whose tables reference core tables depend on it.
CORE_ROOT_REVISION = "0001"


def alembic_config(extra_version_dirs: Sequence[Path] = ()) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    locations = [str(CORE_VERSIONS_DIR), *(str(Path(p).resolve()) for p in extra_version_dirs)]
    # os.pathsep keeps paths with spaces intact.
    cfg.set_main_option("path_separator", "os")

    cfg.set_main_option("version_locations", os.pathsep.join(locations))
    return cfg


async def _run(engine: AsyncEngine, extra_version_dirs: Sequence[Path], step: Callable[[Config], None]) -> None:
    cfg = alembic_config(extra_version_dirs)

    def run(connection: Connection) -> None:
        cfg.attributes["connection"] = connection
        step(cfg)

    async with engine.begin() as conn:
        # Two processes migrating at once (two replicas starting) must not interleave.
        await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(727001)")
        await conn.run_sync(run)
        if await conn.scalar(text("SELECT to_regproc('app_org') IS NOT NULL")):
            # Tables a plugin branch just created are usable by the app role (RLS decides which rows).
            for statement in tenancy.grant_sql():
                await conn.exec_driver_sql(statement)


async def upgrade(engine: AsyncEngine, extra_version_dirs: Sequence[Path] = (), target: str = "heads") -> None:
    await _run(engine, extra_version_dirs, lambda cfg: command.upgrade(cfg, target))


async def downgrade(engine: AsyncEngine, target: str, extra_version_dirs: Sequence[Path] = ()) -> None:
    await _run(engine, extra_version_dirs, lambda cfg: command.downgrade(cfg, target))


async def current_heads(engine: AsyncEngine, extra_version_dirs: Sequence[Path] = ()) -> set[str]:
    from alembic.runtime.migration import MigrationContext

    def read(connection: Connection) -> set[str]:
        return set(MigrationContext.configure(connection).get_current_heads())

    async with engine.connect() as conn:
        return await conn.run_sync(read)
