"""A plugin's life in a deployment, for operators: list what is installed and migrated, enable or disable a
plugin for an organisation, remove what an uninstalled plugin left in the database.

`yunshegong plugins …` (yunshegong/cli.py) only translates arguments and errors; everything happens here.
Every failure is a `LifecycleError` whose message is one line naming the plugin and what to do.

The rule for `remove`: it refuses while the plugin is loaded (installed and not left out by
YUNSHEGONG_PLUGINS) unless the operator says it is being uninstalled (`uninstalling=True`, the CLI's
`--uninstalling`). When the plugin's migration scripts are at hand (it is installed, loaded or not), its
branch is downgraded to nothing by Alembic, so its own `downgrade()` cleans up; when they are gone with the
package, the tables recorded for it at migration time (core.migrate keeps `plugin_branch:<name>` in
app_meta) are dropped and its rows in alembic_version are replaced by the core revisions they implied.
Either way its enablement rows go too, and the change is in the audit trail.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from core import migrate, tenancy
from core.database import create_sessionmaker
from core.errors import DomainError
from core.models import Organization, PluginEnablement
from core.plugins import PluginHost
from core.services import audit
from core.services import plugins as plugin_service
from core.services.context import ServiceContext, Viewer

# The operator at the command line acts as a platform administrator.
OPERATOR = Viewer(label="cli", role="platform_admin")


class LifecycleError(RuntimeError):
    """A lifecycle command cannot be carried out; the message (one line) says why and what to do."""


@dataclass(frozen=True)
class PluginStatus:
    name: str
    version: str  # "-" when not installed
    source: str  # "built-in", "entry point …", or "not installed"
    loaded: bool
    migrated: tuple[str, ...]  # the plugin's revisions in alembic_version; () when it has no tables
    enabled_for: tuple[str, ...]  # names of the organisations that enabled it


@dataclass(frozen=True)
class RemovalPlan:
    plugin: str
    installed: bool
    tables: tuple[str, ...]  # what will be dropped
    revisions: tuple[str, ...]  # its rows in alembic_version
    enablements: int  # organisations' enablement rows (enabled or not)
    downgrade: bool  # through Alembic (scripts at hand) rather than by dropping the recorded tables

    @property
    def empty(self) -> bool:
        return not (self.tables or self.revisions or self.enablements)

    def describe(self) -> str:
        parts = []
        if self.tables:
            parts.append(f"drop table{'s' if len(self.tables) > 1 else ''} {', '.join(self.tables)}")
        if self.revisions:
            parts.append(f"forget migration{'s' if len(self.revisions) > 1 else ''} {', '.join(self.revisions)}")
        if self.enablements:
            parts.append(f"delete {self.enablements} enablement row{'s' if self.enablements > 1 else ''}")
        return f"plugin {self.plugin!r}: " + ("; ".join(parts) if parts else "nothing to remove")


# -- reading ---------------------------------------------------------------------------------------------------


def _branches(host: PluginHost) -> tuple[dict[str, Path], dict[str, Path]]:
    """Migration directories of loaded plugins, and of installed plugins that are not loaded."""
    return host.migration_branches(), host.unloaded_migration_branches()


async def _has_table(conn: AsyncConnection | AsyncSession, table: str) -> bool:
    return bool(await conn.scalar(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": table}))


def _operator_session(engine: AsyncEngine) -> AsyncSession:
    session = create_sessionmaker(engine)()
    tenancy.bind(session, OPERATOR)
    return session


async def _enabled_by_plugin(session: AsyncSession) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Plugin → names of organisations that enabled it, and plugin → enablement rows (any state)."""
    if not await _has_table(session, "plugin_enablements"):
        return {}, {}
    rows = await session.execute(
        select(PluginEnablement.plugin_name, PluginEnablement.enabled, Organization.name)
        .join(Organization, Organization.id == PluginEnablement.organization_id)
        .order_by(PluginEnablement.plugin_name, Organization.name)
    )
    enabled: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    for plugin, is_enabled, org in rows:
        counts[plugin] = counts.get(plugin, 0) + 1
        if is_enabled:
            enabled.setdefault(plugin, []).append(org)
    return enabled, counts


async def statuses(engine: AsyncEngine, host: PluginHost) -> list[PluginStatus]:
    """Installed plugins (loaded or not), then plugins the database still holds something of."""
    loaded_dirs, unloaded_dirs = _branches(host)
    dirs = {**loaded_dirs, **unloaded_dirs}
    async with engine.connect() as conn:
        rows = await migrate.version_rows(conn)
        recorded = await migrate.records(conn)
    async with _operator_session(engine) as session:
        enabled, counts = await _enabled_by_plugin(session)
    out = []
    for plugin, loaded in [(p, True) for p in host.plugins.values()] + [(p, False) for p in host.unloaded.values()]:
        revisions = [s.revision for s in migrate.read_scripts(dirs[plugin.name])] if plugin.name in dirs else []
        out.append(
            PluginStatus(
                name=plugin.name,
                version=plugin.info.version,
                source=plugin.source,
                loaded=loaded,
                migrated=tuple(r for r in revisions if r in rows),
                enabled_for=tuple(enabled.get(plugin.name, ())),
            )
        )
    installed = set(host.plugins) | set(host.unloaded)
    for name in sorted((set(recorded) | set(counts)) - installed):
        revisions = recorded.get(name, {}).get("revisions", [])
        out.append(
            PluginStatus(
                name=name,
                version="-",
                source="not installed",
                loaded=False,
                migrated=tuple(r for r in revisions if r in rows),
                enabled_for=tuple(enabled.get(name, ())),
            )
        )
    return out


# -- enabling ----------------------------------------------------------------------------------------------------


async def _organization(session: AsyncSession, ref: str) -> Organization:
    org = None
    if ref.strip().isdigit():
        org = await session.get(Organization, int(ref))
    if org is None:
        org = await session.scalar(select(Organization).where(Organization.name == ref))
    if org is None:
        raise LifecycleError(f"there is no organisation with id or name {ref!r}")
    return org


async def set_enabled(engine: AsyncEngine, host: PluginHost, plugin: str, organization: str, enabled: bool) -> str:
    """Enable or disable `plugin` for an organisation (by id or name) through the same service as the
    `setPluginEnabled` mutation, as a platform administrator, audited. Returns the organisation's name."""
    loaded = frozenset(host.plugins)
    async with _operator_session(engine) as session, session.begin():
        if not await _has_table(session, "plugin_enablements"):
            raise LifecycleError("the database is not migrated yet: run `yunshegong migrate` first")
        org = await _organization(session, organization)
        ctx = ServiceContext(session=session, viewer=OPERATOR)
        try:
            await plugin_service.set_enabled(
                ctx,
                organization_id=org.id,
                plugin=plugin,
                enabled=enabled,
                installed=loaded,
                known=loaded | host.skipped,
            )
        except DomainError as exc:
            hint = {
                "PLUGIN_NOT_INSTALLED": " (add it to YUNSHEGONG_PLUGINS)",
                "UNKNOWN_PLUGIN": ": see `yunshegong plugins list`",
            }.get(exc.code, "")
            raise LifecycleError(f"{exc.errors[0].message.rstrip('.')}{hint}") from exc
        # In the organisation's own trail, where its administrators see who switched what.
        in_org = dataclasses.replace(ctx, viewer=dataclasses.replace(OPERATOR, organization_id=org.id))
        audit.record(
            in_org,
            audit.AuditRecord(
                action="write",
                operation=f"cli plugins {'enable' if enabled else 'disable'}",
                record_type="Organization",
                record_id=org.id,
                detail=f"plugin {plugin} {'enabled' if enabled else 'disabled'} for organisation {org.id}",
            ),
        )
        return org.name


# -- removing ------------------------------------------------------------------------------------------------------


async def plan_removal(engine: AsyncEngine, host: PluginHost, name: str, *, uninstalling: bool = False) -> RemovalPlan:
    """What `remove` would do, or a LifecycleError saying why it will not."""
    if name in host.plugins and not uninstalling:
        raise LifecycleError(
            f"plugin {name!r} is still loaded ({host.plugins[name].source}): uninstall it or leave it out of "
            f"YUNSHEGONG_PLUGINS first, or say `yunshegong plugins remove {name} --uninstalling` if you are "
            "about to"
        )
    loaded_dirs, unloaded_dirs = _branches(host)
    directory = loaded_dirs.get(name) or unloaded_dirs.get(name)
    installed = name in host.plugins or name in host.unloaded
    async with engine.connect() as conn:
        rows = await migrate.version_rows(conn)
        recorded = await migrate.records(conn)
        tables = await migrate.public_tables(conn)
    async with _operator_session(engine) as session:
        _, counts = await _enabled_by_plugin(session)
    record = recorded.get(name)
    if directory is not None:
        revisions = [s.revision for s in migrate.read_scripts(directory)]
    elif record is not None:
        revisions = list(record.get("revisions", []))
    else:
        revisions = []
    present = tuple(r for r in revisions if r in rows)
    labels = set(host.plugins) | set(host.unloaded) | set(recorded) | {name}
    own = {t for t in tables if migrate.owner_of_table(t, labels) == name}
    if record is not None:
        own |= set(record.get("tables", [])) & tables
    if directory is None and record is None and not installed:
        known = {
            s.revision
            for d in [migrate.CORE_VERSIONS_DIR, *loaded_dirs.values(), *unloaded_dirs.values()]
            for s in migrate.read_scripts(d)
        }
        if rows - known - {r for rec in recorded.values() for r in rec.get("revisions", [])}:
            raise LifecycleError(
                f"the database keeps no record of plugin {name!r}'s migrations (they ran before yunshegong "
                f"recorded them): reinstall it, then run `yunshegong plugins remove {name} --uninstalling`"
            )
        if not counts.get(name):
            raise LifecycleError(
                f"there is no plugin {name!r}: it is not installed and the database holds nothing of it "
                "(see `yunshegong plugins list`)"
            )
        own = set()  # without a record, tables are not guessed from their names
    return RemovalPlan(
        plugin=name,
        installed=installed,
        tables=tuple(sorted(own)),
        revisions=present,
        enablements=counts.get(name, 0),
        downgrade=directory is not None and bool(present),
    )


async def remove(engine: AsyncEngine, host: PluginHost, plan: RemovalPlan) -> None:
    """Carry out a plan from `plan_removal` (the caller has asked for confirmation)."""
    name = plan.plugin
    loaded_dirs, unloaded_dirs = _branches(host)
    if plan.downgrade:
        try:
            await migrate.downgrade(
                engine, f"{name}@base", list(loaded_dirs.values()), keep_dirs=list(unloaded_dirs.values())
            )
        except migrate.MigrationError as exc:
            raise LifecycleError(str(exc)) from exc
        except Exception as exc:
            raise LifecycleError(
                f"plugin {name!r}: downgrading its migrations failed ({exc!r}); fix its downgrade() or drop "
                "its tables by hand"
            ) from exc
    elif plan.tables or plan.revisions:
        known = {
            s.revision: s
            for d in [migrate.CORE_VERSIONS_DIR, *loaded_dirs.values(), *unloaded_dirs.values()]
            for s in migrate.read_scripts(d)
        }
        async with engine.begin() as conn:
            await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(727001)")
            record = (await migrate.records(conn)).get(name, {})
            for table in plan.tables:
                await conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{table}" CASCADE')
            remaining = (await migrate.version_rows(conn)) - set(plan.revisions)
            # Its head implied the revisions it depended on (core's, usually): they stay applied.
            heads = _heads(remaining | {d for d in record.get("depends_on", []) if d in known}, known)
            await conn.execute(text("DELETE FROM alembic_version"))
            for revision in sorted(heads):
                await conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:r)"), {"r": revision})
    async with _operator_session(engine) as session, session.begin():
        ctx = ServiceContext(session=session, viewer=OPERATOR)
        if await _has_table(session, "plugin_enablements"):
            await session.execute(
                PluginEnablement.__table__.delete().where(PluginEnablement.plugin_name == name)  # type: ignore[attr-defined]
            )
            audit.record(
                ctx,
                audit.AuditRecord(action="write", operation="cli plugins remove", detail=plan.describe()),
            )
        await migrate.forget(await session.connection(), name)


def _heads(revisions: Iterable[str], known: dict[str, migrate.RevisionScript]) -> set[str]:
    """`revisions` without those that another one implies (its ancestor through down_revision/depends_on)."""
    chosen = set(revisions)
    implied: set[str] = set()

    def walk(revision: str) -> None:
        script = known.get(revision)
        for parent in (*script.down_revisions, *script.depends_on) if script else ():
            if parent not in implied:
                implied.add(parent)
                walk(parent)

    for revision in chosen:
        walk(revision)
    return chosen - implied
