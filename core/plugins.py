"""The plugin host: builds the pluggy manager once per process and validates what plugins contribute.

Load order: the built-in plugins in BUILTIN_PLUGINS order, then entry points of the group
`yunshegong.plugins` sorted by name. The host calls hook implementations itself, in that registration
order (pluggy's own calling order would be the reverse), so that every result is attributed to its plugin
and event reactions run in a documented order. Built-ins register through exactly the
same path as third-party packages: a module with `@hookimpl` functions.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from core import hookspecs
from core.errors import CORE_ERROR_CODES, DomainError
from core.events import CORE_EVENT_TYPES, DomainEvent
from core.plugin_api import (
    PLUGIN_API_VERSION,
    PLUGIN_NAME,
    GraphQLContribution,
    MatchCriterion,
    Permission,
    PluginInfo,
    describe,
)
from core.vocab import Role

log = logging.getLogger(__name__)

ERROR_CODE = re.compile(r"^[A-Z][A-Z0-9_]{1,59}$")

ENTRY_POINT_GROUP = "yunshegong.plugins"

ROLE_NAMES = frozenset(r.value for r in Role)

# Built-in service modules, by module path, in registration order. Each arrives with its own issue.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "plugins.counseling.plugin",
    "plugins.supplies.plugin",
    "plugins.case_work.plugin",
    "plugins.maternal_care.plugin",
)


class PluginLoadError(RuntimeError):
    """A plugin could not be loaded or contributed something malformed: startup stops."""


@dataclass(frozen=True)
class LoadedPlugin:
    info: PluginInfo
    module: Any
    source: str  # "built-in" or "entry point <name> = <value> (<distribution>)"

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def package(self) -> str:
        """Python package whose types belong to this plugin (its module's parent package)."""
        module_name = getattr(self.module, "__name__", type(self.module).__module__)
        return module_name.rpartition(".")[0] or module_name


class PluginHost:
    def __init__(
        self,
        pm: pluggy.PluginManager,
        plugins: Sequence[LoadedPlugin],
        skipped: Iterable[str],
        unloaded: Sequence[LoadedPlugin] = (),
    ) -> None:
        self.pm = pm
        self.plugins: dict[str, LoadedPlugin] = {p.name: p for p in plugins}
        # Installed but not loaded (filtered out by the YUNSHEGONG_PLUGINS setting).
        self.skipped: frozenset[str] = frozenset(skipped)
        # Those plugins themselves (their hooks are never called; their migrations are kept known).
        self.unloaded: dict[str, LoadedPlugin] = {p.name: p for p in unloaded}
        self.permissions: list[Permission] = self._collect_permissions()
        self.event_types: dict[str, type[DomainEvent]] = self._collect_event_types()
        self.match_criteria: list[MatchCriterion] = self._collect_match_criteria()
        self.error_codes: dict[str, str] = self._collect_error_codes()
        self._add_translations()

    # -- calling hooks, with attribution -------------------------------------------------------------------

    def call_each(
        self, hook_name: str, *, only: Iterable[str] | None = None, **kwargs: Any
    ) -> list[tuple[LoadedPlugin, Any]]:
        """Call one hook on every plugin implementing it (or on those named in `only`), returning
        (plugin, result) pairs. Unlike pm.hook.X(), this keeps track of who returned what, so errors can
        name the plugin."""
        wanted = None if only is None else set(only)
        results = []
        by_object = {id(p.module): p for p in self.plugins.values()}
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            plugin = by_object.get(id(impl.plugin))
            if plugin is None or (wanted is not None and plugin.name not in wanted):
                continue
            results.append((plugin, impl.function(**{k: kwargs[k] for k in impl.argnames})))
        return results

    async def call_each_async(
        self, hook_name: str, *, only: Iterable[str] | None = None, **kwargs: Any
    ) -> list[tuple[LoadedPlugin, Any]]:
        out = []
        for plugin, result in self.call_each(hook_name, only=only, **kwargs):
            out.append((plugin, await result if inspect.isawaitable(result) else result))
        return out

    # -- contributions ------------------------------------------------------------------------------------

    def graphql_contributions(self) -> list[tuple[LoadedPlugin, GraphQLContribution]]:
        out = []
        for plugin, contribution in self.call_each("register_graphql"):
            if not isinstance(contribution, GraphQLContribution):
                raise PluginLoadError(
                    f"plugin {plugin.name!r}: register_graphql must return GraphQLContribution, "
                    f"got {describe(contribution)}"
                )
            out.append((plugin, contribution))
        return out

    def migration_dirs(self) -> list[Path]:
        return list(self.migration_branches().values())

    def migration_branches(self) -> dict[str, Path]:
        """Plugin name → its Alembic version directory (loaded plugins with migrations)."""
        dirs = {}
        for name in self.plugins:
            try:
                results = self.call_each("register_migrations", only=[name])
            except Exception as exc:
                raise PluginLoadError(f"plugin {name!r}: register_migrations failed: {exc!r}") from exc
            for plugin, value in results:
                dirs[plugin.name] = _migration_dir(plugin, value)
        return dirs

    def unloaded_migration_branches(self) -> dict[str, Path]:
        """The same for installed plugins YUNSHEGONG_PLUGINS leaves out: their revisions stay known."""
        dirs = {}
        for plugin in self.unloaded.values():
            hook = getattr(plugin.module, "register_migrations", None)
            if hook is None:
                continue
            try:
                value = hook()
            except Exception as exc:
                raise PluginLoadError(f"plugin {plugin.name!r}: register_migrations failed: {exc!r}") from exc
            dirs[plugin.name] = _migration_dir(plugin, value)
        return dirs

    def permissions_by_role(self) -> dict[str, frozenset[str]]:
        """Role → the plugin permissions it holds: its default roles, and for platform administrators every
        permission held by rank (`Permission.by_rank`)."""
        granted: dict[str, set[str]] = {}
        for permission in self.permissions:
            roles = set(permission.default_roles)
            if permission.by_rank:
                roles.add(Role.PLATFORM_ADMIN.value)
            for role in roles:
                granted.setdefault(role, set()).add(permission.name)
        return {role: frozenset(names) for role, names in sorted(granted.items())}

    def _collect_permissions(self) -> list[Permission]:
        seen: dict[str, str] = {}
        permissions = []
        for plugin, value in self.call_each("register_permissions"):
            for permission in _as_list(plugin, "register_permissions", value, Permission):
                if not permission.name.startswith(f"{plugin.name}."):
                    raise PluginLoadError(
                        f"plugin {plugin.name!r}: permission {permission.name!r} must start with '{plugin.name}.'"
                    )
                unknown = [r for r in permission.default_roles if r not in ROLE_NAMES]
                if unknown:
                    raise PluginLoadError(
                        f"plugin {plugin.name!r}: permission {permission.name!r} names role {unknown[0]!r}, which "
                        f"does not exist; use one of {', '.join(sorted(ROLE_NAMES))}"
                    )
                if permission.name in seen:
                    raise PluginLoadError(
                        f"permission {permission.name!r} is declared by both {seen[permission.name]!r} "
                        f"and {plugin.name!r}"
                    )
                seen[permission.name] = plugin.name
                permissions.append(permission)
        return permissions

    def _collect_event_types(self) -> dict[str, type[DomainEvent]]:
        types = {t.name: t for t in CORE_EVENT_TYPES}
        for plugin, value in self.call_each("register_event_types"):
            for event_type in _as_list(plugin, "register_event_types", value, type):
                if not issubclass(event_type, DomainEvent) or not event_type.name.startswith(f"{plugin.name}."):
                    raise PluginLoadError(
                        f"plugin {plugin.name!r}: event types must subclass DomainEvent and be named "
                        f"'{plugin.name}.…', got {event_type!r}"
                    )
                if event_type.name in types:
                    raise PluginLoadError(f"plugin {plugin.name!r}: event name {event_type.name!r} is taken")
                types[event_type.name] = event_type
        return types

    def _collect_match_criteria(self) -> list[MatchCriterion]:
        criteria = []
        for plugin, value in self.call_each("register_match_criteria"):
            for criterion in _as_list(plugin, "register_match_criteria", value, MatchCriterion):
                if not criterion.name.startswith(f"{plugin.name}."):
                    raise PluginLoadError(
                        f"plugin {plugin.name!r}: match criterion {criterion.name!r} must start with '{plugin.name}.'"
                    )
                criteria.append(criterion)
        return criteria

    def _add_translations(self) -> None:
        from core import i18n

        for plugin, value in self.call_each("register_translations"):
            if not isinstance(value, dict):
                raise PluginLoadError(
                    f"plugin {plugin.name!r}: register_translations must return dict[str, Path], got {describe(value)}"
                )
            for locale, path in value.items():
                if locale not in i18n.LOCALES:
                    raise PluginLoadError(
                        f"plugin {plugin.name!r}: translations for {locale!r}; known locales: {', '.join(i18n.LOCALES)}"
                    )
                if not isinstance(path, (str, Path)) or not Path(path).is_file():
                    raise PluginLoadError(f"plugin {plugin.name!r}: no translation file at {path!r}")
                i18n.add_catalog(locale, Path(path))

    def _collect_error_codes(self) -> dict[str, str]:
        """Core's codes, then each plugin's own, in load order."""
        codes = dict(CORE_ERROR_CODES)
        for plugin, value in self.call_each("register_error_codes"):
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                raise PluginLoadError(
                    f"plugin {plugin.name!r}: register_error_codes must return dict[str, str], got {describe(value)}"
                )
            for code, description in value.items():
                if not ERROR_CODE.match(code):
                    raise PluginLoadError(f"plugin {plugin.name!r}: error code {code!r} must be UPPER_SNAKE_CASE")
                if code in CORE_ERROR_CODES:
                    raise PluginLoadError(
                        f"plugin {plugin.name!r}: error code {code!r} is core's; raise it without declaring it"
                    )
                codes.setdefault(code, description)
        return codes

    def owner_of(self, cls: type) -> LoadedPlugin | None:
        """The plugin whose package defines `cls`, if any."""
        module = getattr(cls, "__module__", "") or ""
        for plugin in self.plugins.values():
            if module == plugin.package or module.startswith(plugin.package + "."):
                return plugin
        return None

    # -- events -------------------------------------------------------------------------------------------

    async def publish(self, event: DomainEvent, ctx: Any) -> None:
        """Let every plugin enabled for the event's organisation react to `event` in the caller's
        transaction. Any failure aborts the change. A plugin the organisation has not enabled neither
        hears of the change nor can block it."""
        from core.services.plugins import enabled_for

        impls = self.pm.hook.on_event.get_hookimpls()
        if not impls:
            return
        enabled = await enabled_for(ctx, event.organization_id)
        for impl in impls:
            name = impl.plugin_name
            if name not in enabled:
                continue
            try:
                result = impl.function(**{k: {"event": event, "ctx": ctx}[k] for k in impl.argnames})
                if inspect.isawaitable(result):
                    await result
            except DomainError as exc:
                code = exc.code if exc.code in self.error_codes else "PLUGIN_REJECTED"
                # The plugin's own reason, said in the caller's language along with the sentence around it.
                raise DomainError(
                    code, "The {plugin} plugin refused this change: {reason}", plugin=name, reason=exc.errors[0]
                ) from exc
            except Exception as exc:
                log.exception("plugin %s failed on event %s", name, event.name)
                raise DomainError(
                    "PLUGIN_FAILED",
                    "The {plugin} plugin failed while handling {event}; nothing was saved.",
                    plugin=name,
                    event=event.name,
                ) from exc


def _migration_dir(plugin: LoadedPlugin, value: Any) -> Path:
    path = Path(value) if isinstance(value, (str, Path)) else None
    if path is None or not path.is_dir():
        raise PluginLoadError(f"plugin {plugin.name!r}: register_migrations must return a directory, got {value!r}")
    return path


def _as_list(plugin: LoadedPlugin, hook: str, value: Any, kind: type) -> list[Any]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, kind) for v in value):
        raise PluginLoadError(f"plugin {plugin.name!r}: {hook} must return a list of {kind.__name__}, got {value!r}")
    return list(value)


def _entry_points() -> list[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def build_plugin_host(
    *,
    enabled: Sequence[str] | None = None,
    builtins: Sequence[str] = BUILTIN_PLUGINS,
    entry_points: bool = True,
    extra: Sequence[ModuleType | Any] = (),
) -> PluginHost:
    """Build the process's plugin host.

    `enabled`: load only plugins with these names (None: all installed). `entry_points=False` and `extra`
    let tests build a host with exactly the plugins they name (installed packages do not leak in).
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    candidates: list[tuple[str, Any]] = []
    for module_path in builtins:
        candidates.append(("built-in", _import(module_path, f"built-in plugin {module_path}")))
    if entry_points:
        for ep in _entry_points():
            dist = f" ({ep.dist.name} {ep.dist.version})" if ep.dist else ""
            source = f"entry point {ep.name} = {ep.value}{dist}"
            try:
                candidates.append((source, ep.load()))
            except Exception as exc:
                raise PluginLoadError(f"{source}: failed to import: {exc!r}") from exc
    candidates += [("extra", module) for module in extra]

    loaded: list[LoadedPlugin] = []
    skipped: list[str] = []
    unloaded: list[LoadedPlugin] = []
    names: dict[str, str] = {}
    for source, module in candidates:
        info = _info(module, source)
        if info.name in names:
            raise PluginLoadError(f"two plugins are named {info.name!r}: {names[info.name]} and {source}")
        names[info.name] = source
        if enabled is not None and info.name not in enabled:
            skipped.append(info.name)
            unloaded.append(LoadedPlugin(info=info, module=module, source=source))
            continue
        try:
            pm.register(module, name=info.name)
        except pluggy.PluginValidationError as exc:
            raise PluginLoadError(f"plugin {info.name!r} ({source}): {exc}") from exc
        loaded.append(LoadedPlugin(info=info, module=module, source=source))
        log.info("plugin %s %s loaded (%s)", info.name, info.version, source)
    if enabled is not None:
        missing = set(enabled) - set(names)
        if missing:
            raise PluginLoadError(f"YUNSHEGONG_PLUGINS names plugins that are not installed: {sorted(missing)}")
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginLoadError(str(exc)) from exc
    host = PluginHost(pm, loaded, skipped, unloaded)
    check_tables_declared(host)
    check_migrations(host)
    return host


def check_migrations(host: PluginHost) -> None:
    """A plugin's migrations open a branch labelled with its name (`branch_labels = ("<name>",)` on the first
    revision), stay on it (every `down_revision` is one of its own revisions), reuse no revision id and
    depend only on revisions that exist. Tables are checked twice: the models' here
    (`check_tables_declared`), and what the migrations really create when `migrate` runs them
    (core.migrate, branch by branch)."""
    from core import migrate

    branches = {**host.migration_branches(), **host.unloaded_migration_branches()}
    owners: dict[str, str] = {s.revision: "core" for s in migrate.read_scripts(migrate.CORE_VERSIONS_DIR)}
    for name, directory in branches.items():
        try:
            scripts = migrate.read_scripts(directory)
        except Exception as exc:
            raise PluginLoadError(f"plugin {name!r}: its migrations in {directory} failed to load: {exc!r}") from exc
        own = {s.revision for s in scripts}
        if not scripts:
            raise PluginLoadError(f"plugin {name!r}: register_migrations returned {directory}, which has no migration")
        for script in scripts:
            where = f"migration {script.revision!r} ({script.path.name})"
            if script.revision in owners:
                raise PluginLoadError(
                    f"plugin {name!r}: {where} reuses the revision id of {owners[script.revision]!r}: choose another"
                )
            owners[script.revision] = name
            if not script.down_revisions and script.branch_labels != (name,):
                raise PluginLoadError(
                    f"plugin {name!r}: {where} opens its branch, so it must say branch_labels = ({name!r},)"
                )
            if script.down_revisions and script.branch_labels:
                raise PluginLoadError(
                    f"plugin {name!r}: {where} labels a branch of its own; only the first revision says "
                    f"branch_labels = ({name!r},)"
                )
            outside = [r for r in script.down_revisions if r not in own]
            if outside:
                raise PluginLoadError(
                    f"plugin {name!r}: {where} continues revision {outside[0]!r}, which is not the plugin's: "
                    "use depends_on for core's revisions"
                )
    try:
        migrate.check_references(branches.values())
    except migrate.MigrationError as exc:
        raise PluginLoadError(str(exc)) from exc


def check_tables_declared(host: PluginHost) -> None:
    """Refuse a plugin with a table that is neither organisation-owned (`core.OrganizationOwned`, and the
    migration's `core.tenancy.own_table`) nor declared shared with a reason (`core.SharedByAllOrganizations`).
    A forgotten declaration would be a table every organisation reads: it stops startup instead."""
    from core.database import Base
    from core.migrate import core_tables
    from core.tenancy import tenancy_of

    core_names = core_tables()
    for plugin in host.plugins.values():
        clash = sorted(t for t in core_names if t.startswith(plugin.name + "_"))
        if clash:
            raise PluginLoadError(
                f"plugin {plugin.name!r}: core's table {clash[0]!r} lies in its namespace '{plugin.name}_…': "
                "choose another plugin name"
            )
    for plugin in host.plugins.values():
        # A plugin's models are checked whether or not its hooks have imported them yet.
        models = f"{plugin.package}.models"
        try:
            importlib.import_module(models)
        except ModuleNotFoundError as exc:
            if exc.name != models:
                raise PluginLoadError(f"plugin {plugin.name!r}: {models} failed to import: {exc!r}") from exc
    for mapper in Base.registry.mappers:
        cls = mapper.class_
        plugin = host.owner_of(cls)
        if plugin is None:
            continue
        table = getattr(mapper.local_table, "name", cls.__name__)
        if not table.startswith(plugin.name + "_"):
            raise PluginLoadError(
                f"plugin {plugin.name!r}: table {table!r} ({cls.__qualname__}) must start with '{plugin.name}_': "
                "rename it (__tablename__ and the migration)"
            )
        tenancy = tenancy_of(cls)
        if tenancy is None:
            raise PluginLoadError(
                f"plugin {plugin.name!r}: table {table!r} ({cls.__qualname__}) does not say whom its rows belong "
                "to: subclass core.OrganizationOwned (and call core.tenancy.own_table in its migration), or "
                "core.SharedByAllOrganizations with __tenancy_why__ for reference data"
            )
        if tenancy == "organization":
            column = mapper.local_table.c.get("organization_id")
            if column is None or column.nullable:
                raise PluginLoadError(
                    f"plugin {plugin.name!r}: table {table!r} is organisation-owned but has no NOT NULL organization_id"
                )


def _import(module_path: str, what: str) -> ModuleType:
    try:
        return importlib.import_module(module_path)
    except Exception as exc:
        raise PluginLoadError(f"{what}: failed to import: {exc!r}") from exc


def _info(module: Any, source: str) -> PluginInfo:
    hook = getattr(module, "register_plugin", None)
    if hook is None:
        what = f"module {module.__name__}" if isinstance(module, ModuleType) else describe(module)
        raise PluginLoadError(
            f"{source}: {what} has no register_plugin hook, so it is not a plugin: add an @core.hookimpl "
            "register_plugin() returning core.PluginInfo, or point the entry point at the module that has it"
        )
    try:
        info = hook()
    except Exception as exc:
        raise PluginLoadError(f"{source}: register_plugin failed: {exc!r}") from exc
    if not isinstance(info, PluginInfo) or not PLUGIN_NAME.match(info.name) or not info.version:
        raise PluginLoadError(
            f"{source}: register_plugin must return PluginInfo with a lower_snake_case name and a version, got {info!r}"
        )
    if info.api_version != PLUGIN_API_VERSION:
        raise PluginLoadError(
            f"plugin {info.name!r} {info.version} ({source}) is written for plugin API {info.api_version}, "
            f"this yunshegong provides {PLUGIN_API_VERSION}: install a release of the plugin for API "
            f"{PLUGIN_API_VERSION} (docs/plugins.md, Compatibility)"
        )
    return info
