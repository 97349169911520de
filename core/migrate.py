"""Schema migrations: Alembic, driven programmatically over the service's own async engine.

Core owns the `core` branch in migrations/versions; each plugin may contribute its own version directory
(its own branch, labelled with the plugin's name), and `upgrade heads` brings every branch up to date:
core first, then each plugin's branch in turn, so that every table a plugin's migrations create can be
checked against the plugin's namespace (`<name>_…`).

After each migration the revisions and tables of every plugin branch are recorded in `app_meta`
(`plugin_branch:<name>`), so that a plugin uninstalled later is still known by name (its scripts are gone
with it) and `yunshegong plugins remove` can drop what it left behind.
"""

from __future__ import annotations

import ast
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import migrations
from core import tenancy

MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent
CORE_VERSIONS_DIR = MIGRATIONS_DIR / "versions"
CORE_BRANCH = "core"
# The first core revision: plugin branches whose tables reference core tables depend on it.
CORE_ROOT_REVISION = "0001"
# app_meta key prefix of the record of a plugin branch (see module docstring).
RECORD_PREFIX = "plugin_branch:"


class MigrationError(RuntimeError):
    """The database cannot be migrated as things stand; the message says why and what to do (one line)."""


@dataclass(frozen=True)
class RevisionScript:
    """What a migration file declares (read without building Alembic's revision map)."""

    revision: str
    down_revisions: tuple[str, ...]
    branch_labels: tuple[str, ...]
    depends_on: tuple[str, ...]
    path: Path


def _tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def read_scripts(directory: Path) -> list[RevisionScript]:
    """The revisions of one version directory, in file-name order (cached while the files are unchanged)."""
    paths = sorted(p for p in Path(directory).glob("*.py") if not p.name.startswith("_"))
    key = (str(Path(directory).resolve()), tuple((p.name, p.stat().st_mtime_ns) for p in paths))
    cached = _SCRIPTS.get(key)
    if cached is None:
        cached = _SCRIPTS[key] = _read_scripts(paths)
    return list(cached)


_SCRIPTS: dict[tuple[str, tuple[tuple[str, int], ...]], list[RevisionScript]] = {}


_FIELDS = ("revision", "down_revision", "branch_labels", "depends_on")


def _read_scripts(paths: list[Path]) -> list[RevisionScript]:
    """Read each file's module-level `revision = …` style assignments as literals, without running it (a
    migration may need Alembic's context to import, e.g. `op.f(...)` at module level)."""
    scripts = []
    for path in paths:
        values: dict[str, Any] = {}
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except SyntaxError as exc:
            raise MigrationError(f"migration {path} does not parse: {exc.msg} (line {exc.lineno})") from exc
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                target, value = node.target, node.value
            else:
                continue
            if isinstance(target, ast.Name) and target.id in _FIELDS:
                try:
                    values[target.id] = ast.literal_eval(value)
                except ValueError as exc:
                    raise MigrationError(f"migration {path}: {target.id} must be a literal") from exc
        revision = values.get("revision")
        if not isinstance(revision, str):
            raise MigrationError(f"migration {path} declares no `revision`")
        scripts.append(
            RevisionScript(
                revision=revision,
                down_revisions=_tuple(values.get("down_revision")),
                branch_labels=_tuple(values.get("branch_labels")),
                depends_on=_tuple(values.get("depends_on")),
                path=path,
            )
        )
    return scripts


def branch_label(directory: Path, scripts: Sequence[RevisionScript] | None = None) -> str | None:
    """The branch label of a plugin's version directory: that of its first revision."""
    for script in scripts if scripts is not None else read_scripts(directory):
        if not script.down_revisions and script.branch_labels:
            return script.branch_labels[0]
    return None


def check_references(directories: Iterable[Path]) -> None:
    """Every `down_revision` and `depends_on` names a revision (or branch label) that exists: one line naming
    the branch and revision otherwise, instead of Alembic's bare KeyError."""
    dirs = [CORE_VERSIONS_DIR, *directories]
    per_dir = {d: read_scripts(d) for d in dirs}
    known = {s.revision for scripts in per_dir.values() for s in scripts}
    labels = {label for scripts in per_dir.values() for s in scripts for label in s.branch_labels}
    for directory, scripts in per_dir.items():
        owner = CORE_BRANCH if directory == CORE_VERSIONS_DIR else (branch_label(directory, scripts) or str(directory))
        for script in scripts:
            for ref, what in [(r, "down_revision") for r in script.down_revisions] + [
                (r, "depends_on") for r in script.depends_on
            ]:
                name = ref.partition("@")[2] if "@" in ref else ref
                if name not in known and ref not in labels:
                    raise MigrationError(
                        f"plugin {owner!r}: migration {script.revision!r} ({script.path.name}) has {what} "
                        f"{ref!r}, which is no known revision: fix it (core's latest revision is "
                        f"{core_head()!r})"
                    )


def core_head() -> str:
    scripts = read_scripts(CORE_VERSIONS_DIR)
    below = {d for s in scripts for d in s.down_revisions}
    heads = [s.revision for s in scripts if s.revision not in below]
    return heads[-1] if heads else CORE_ROOT_REVISION


def alembic_config(extra_version_dirs: Sequence[Path] = ()) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    locations = [str(CORE_VERSIONS_DIR), *(str(Path(p).resolve()) for p in extra_version_dirs)]
    # os.pathsep keeps paths with spaces intact.
    cfg.set_main_option("path_separator", "os")

    cfg.set_main_option("version_locations", os.pathsep.join(locations))
    return cfg


# -- what the database holds ----------------------------------------------------------------------------------


async def version_rows(conn: AsyncConnection) -> set[str]:
    """The revisions in alembic_version (empty for a fresh database)."""
    if not await conn.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL")):
        return set()
    return set((await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars())


async def public_tables(conn: AsyncConnection) -> set[str]:
    rows = await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"))
    return set(rows.scalars())


async def records(conn: AsyncConnection) -> dict[str, dict[str, Any]]:
    """Plugin name → {"revisions": [...], "tables": [...], "depends_on": [...]} as recorded at migration."""
    if not await conn.scalar(text("SELECT to_regclass('app_meta') IS NOT NULL")):
        return {}
    rows = await conn.execute(
        text("SELECT key, value FROM app_meta WHERE key LIKE :prefix"), {"prefix": RECORD_PREFIX + "%"}
    )
    return {key[len(RECORD_PREFIX) :]: json.loads(value) for key, value in rows}


async def forget(conn: AsyncConnection, plugin: str) -> None:
    if await conn.scalar(text("SELECT to_regclass('app_meta') IS NOT NULL")):
        await conn.execute(text("DELETE FROM app_meta WHERE key = :key"), {"key": RECORD_PREFIX + plugin})


def core_tables() -> set[str]:
    """Tables core declares (never a plugin's, whatever their name): every table on the metadata that no
    class outside `core` maps."""
    import core.models  # noqa: F401  (all of core's tables on the metadata)
    from core.database import Base

    others = {m.local_table.name for m in Base.registry.mappers if not m.class_.__module__.startswith("core.")}
    return (set(Base.metadata.tables) - others) | {"alembic_version"}


def owner_of_table(table: str, labels: Iterable[str]) -> str | None:
    """The plugin whose namespace a table lies in: the longest label `name` with `table` = `name_…`; None
    for core's tables."""
    if table in core_tables():
        return None
    matches = [label for label in labels if table.startswith(label + "_")]
    return max(matches, key=len) if matches else None


async def _record(conn: AsyncConnection, branches: dict[str, list[RevisionScript]]) -> None:
    if not await conn.scalar(text("SELECT to_regclass('app_meta') IS NOT NULL")):
        return
    applied = await version_rows(conn)
    recorded = await records(conn)
    labels = set(branches) | set(recorded)
    tables = await public_tables(conn)
    for label, scripts in branches.items():
        revisions = [s.revision for s in scripts]
        if not applied & set(revisions):
            continue  # not migrated (or left behind by YUNSHEGONG_PLUGINS and never migrated)
        own = {s.revision for s in scripts}
        value = {
            "revisions": revisions,
            "tables": sorted(t for t in tables if owner_of_table(t, labels) == label),
            "depends_on": sorted({d for s in scripts for d in s.depends_on if d not in own}),
        }
        await conn.execute(
            text(
                "INSERT INTO app_meta (key, value) VALUES (:key, :value) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
            ),
            {"key": RECORD_PREFIX + label, "value": json.dumps(value)},
        )


def unknown_revision_message(revision: str, plugin: str | None) -> str:
    if plugin is None:
        return (
            f"the database holds migration {revision!r} of a plugin that is not installed here: reinstall it "
            "(and load it), then remove its tables with `yunshegong plugins remove NAME --uninstalling`"
        )
    return (
        f"the database holds migration {revision!r} of plugin {plugin!r}, which is not loaded here: reinstall it "
        f"(or add it to YUNSHEGONG_PLUGINS), or drop its tables with `yunshegong plugins remove {plugin}`"
    )


async def _check_versions(conn: AsyncConnection, dirs: Sequence[Path]) -> None:
    """Refuse a database holding revisions no version directory knows (an uninstalled plugin's), naming the
    plugin from the record kept at migration time."""
    rows = await version_rows(conn)
    if not rows:
        return
    known = {s.revision for d in [CORE_VERSIONS_DIR, *dirs] for s in read_scripts(d)}
    unknown = sorted(rows - known)
    if not unknown:
        return
    by_revision = {r: name for name, rec in (await records(conn)).items() for r in rec.get("revisions", [])}
    raise MigrationError(unknown_revision_message(unknown[0], by_revision.get(unknown[0])))


# -- running Alembic ----------------------------------------------------------------------------------------


async def _run(
    engine: AsyncEngine,
    extra_version_dirs: Sequence[Path],
    step: Callable[[Config], None],
    keep_dirs: Sequence[Path] = (),
) -> None:
    dirs = [*extra_version_dirs, *keep_dirs]
    check_references(dirs)
    cfg = alembic_config(dirs)
    branches = {}
    for d in dirs:
        scripts = read_scripts(d)
        label = branch_label(d, scripts)
        if label is not None:
            branches[label] = scripts

    def run(connection: Connection) -> None:
        cfg.attributes["connection"] = connection
        step(cfg)

    async with engine.begin() as conn:
        # Two processes migrating at once (two replicas starting) must not interleave.
        await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(727001)")
        await _check_versions(conn, dirs)
        await conn.run_sync(run)
        if await conn.scalar(text("SELECT to_regproc('app_org') IS NOT NULL")):
            # Tables a plugin branch just created are usable by the app role (RLS decides which rows).
            for statement in tenancy.grant_sql():
                await conn.exec_driver_sql(statement)
        await _record(conn, branches)


def _tables(connection: Connection) -> set[str]:
    rows = connection.exec_driver_sql("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    return {r[0] for r in rows}


def _upgrade_branches(cfg: Config, labels: Sequence[str]) -> None:
    """Core first, then each plugin branch, checking that a plugin's migrations create only `<name>_…` tables
    (the transaction rolls back and the message names plugin and table otherwise)."""
    connection: Connection = cfg.attributes["connection"]
    command.upgrade(cfg, f"{CORE_BRANCH}@head")
    for label in labels:
        before = _tables(connection)
        command.upgrade(cfg, f"{label}@head")
        stray = sorted(t for t in _tables(connection) - before if not t.startswith(label + "_"))
        if stray:
            raise MigrationError(
                f"plugin {label!r}: its migrations create table {stray[0]!r}, which must start with "
                f"'{label}_': rename it in the plugin's migration and models"
            )


async def upgrade(
    engine: AsyncEngine,
    extra_version_dirs: Sequence[Path] = (),
    target: str = "heads",
    *,
    keep_dirs: Sequence[Path] = (),
) -> None:
    """Bring core and the branches of `extra_version_dirs` up to `target` ("heads": all of them).
    `keep_dirs`: branches of installed plugins that are not loaded (YUNSHEGONG_PLUGINS): their revisions
    are known (so the database may hold them) but not upgraded."""
    if target != "heads":
        await _run(engine, extra_version_dirs, lambda cfg: command.upgrade(cfg, target), keep_dirs)
        return
    labels = []
    for d in extra_version_dirs:
        label = branch_label(d)
        if label is None:
            raise MigrationError(f"migrations in {d} open no branch: give the first revision branch_labels")
        labels.append(label)
    await _run(engine, extra_version_dirs, lambda cfg: _upgrade_branches(cfg, labels), keep_dirs)


async def downgrade(
    engine: AsyncEngine, target: str, extra_version_dirs: Sequence[Path] = (), *, keep_dirs: Sequence[Path] = ()
) -> None:
    await _run(engine, extra_version_dirs, lambda cfg: command.downgrade(cfg, target), keep_dirs)


async def current_heads(engine: AsyncEngine, extra_version_dirs: Sequence[Path] = ()) -> set[str]:
    from alembic.runtime.migration import MigrationContext

    def read(connection: Connection) -> set[str]:
        return set(MigrationContext.configure(connection).get_current_heads())

    async with engine.connect() as conn:
        return await conn.run_sync(read)
