"""The plugin lifecycle (core.plugin_lifecycle, core.migrate) and the host's load-time checks, each against
a real PostgreSQL database of its own: a plugin migrated, then uninstalled, then removed; a plugin left out
by YUNSHEGONG_PLUGINS; migrations outside the plugin's branch or namespace; permissions naming roles that do
not exist; one plugin's failing statistics."""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core import migrate, plugin_lifecycle
from core.database import create_engine, database_url_for, drop_database, ensure_database
from core.plugins import PluginHost, PluginLoadError, build_plugin_host
from core.services import organizations, stats
from core.services import plugins as plugin_service
from core.services.context import ServiceContext
from core.vocab import OrganizationKind
from tests.factories import Factory


def fixture_plugin(name: str) -> Any:
    return importlib.import_module(f"tests.fixture_plugins.{name}.plugin")


def host_with(*names: str, enabled: list[str] | None = None) -> PluginHost:
    """A host with exactly these fixture plugins (no built-ins, nothing installed leaks in)."""
    return build_plugin_host(entry_points=False, builtins=(), extra=[fixture_plugin(n) for n in names], enabled=enabled)


CORE_ONLY = build_plugin_host(entry_points=False, builtins=())


@pytest.fixture
async def fresh(server_url: str, request: pytest.FixtureRequest) -> AsyncIterator[AsyncEngine]:
    """The owner's engine to an empty database of this test's own."""
    name = "ysg_life_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40]
    await drop_database(server_url, name)
    await ensure_database(server_url, name)
    engine = create_engine(database_url_for(server_url, name), pool_size=1)
    yield engine
    await engine.dispose()
    await drop_database(server_url, name)


async def _upgrade(engine: AsyncEngine, host: PluginHost) -> None:
    await migrate.upgrade(engine, host.migration_dirs(), keep_dirs=list(host.unloaded_migration_branches().values()))


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return await migrate.public_tables(conn)


async def _versions(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return await migrate.version_rows(conn)


async def _organization(engine: AsyncEngine, name: str) -> int:
    async with plugin_lifecycle._operator_session(engine) as session, session.begin():
        ctx = ServiceContext(session=session, viewer=plugin_lifecycle.OPERATOR)
        org = await organizations.create_organization(ctx, name=name, kind=OrganizationKind.AGENCY)
        return org.id


CORE_HEAD = migrate.core_head()


# -- a plugin migrated, uninstalled, removed ----------------------------------------------------------------------


async def test_an_uninstalled_plugin_is_named_by_migrate_and_removed_from_its_record(fresh: AsyncEngine) -> None:
    # given a database migrated with the ephemeral plugin, which an organisation enabled
    installed = host_with("ephemeral")
    await _upgrade(fresh, installed)
    await _organization(fresh, "甲 社工站")
    assert await plugin_lifecycle.set_enabled(fresh, installed, "ephemeral", "甲 社工站", True) == "甲 社工站"
    # when the package is uninstalled and the service migrates
    with pytest.raises(migrate.MigrationError) as refused:
        await _upgrade(fresh, CORE_ONLY)
    # then one line names the plugin and the command that resolves it
    assert str(refused.value) == (
        "the database holds migration 'e002' of plugin 'ephemeral', which is not loaded here: reinstall it "
        "(or add it to YUNSHEGONG_PLUGINS), or drop its tables with `yunshegong plugins remove ephemeral`"
    )
    # and `plugins list` still knows it, by its record
    listed = {p.name: p for p in await plugin_lifecycle.statuses(fresh, CORE_ONLY)}
    assert listed["ephemeral"] == plugin_lifecycle.PluginStatus(
        name="ephemeral",
        version="-",
        source="not installed",
        loaded=False,
        migrated=("e002",),
        enabled_for=("甲 社工站",),
    )
    # when it is removed
    plan = await plugin_lifecycle.plan_removal(fresh, CORE_ONLY, "ephemeral")
    assert (plan.tables, plan.revisions, plan.enablements, plan.downgrade) == (
        ("ephemeral_items", "ephemeral_tags"),
        ("e002",),
        1,
        False,
    )
    await plugin_lifecycle.remove(fresh, CORE_ONLY, plan)
    # then its tables, version row, enablement and record are gone, core's revision stays, and migrate works
    assert not {"ephemeral_items", "ephemeral_tags"} & await _tables(fresh)
    assert await _versions(fresh) == {CORE_HEAD}
    await _upgrade(fresh, CORE_ONLY)
    assert [p.name for p in await plugin_lifecycle.statuses(fresh, CORE_ONLY)] == []
    # and removing it again says there is nothing of it
    with pytest.raises(plugin_lifecycle.LifecycleError, match="there is no plugin 'ephemeral'"):
        await plugin_lifecycle.plan_removal(fresh, CORE_ONLY, "ephemeral")


async def test_remove_refuses_a_loaded_plugin_unless_it_is_being_uninstalled(fresh: AsyncEngine) -> None:
    # given a database migrated with the ephemeral plugin, still loaded
    host = host_with("ephemeral")
    await _upgrade(fresh, host)
    # when removal is asked for without saying it is being uninstalled, then it is refused, naming what to do
    with pytest.raises(plugin_lifecycle.LifecycleError) as refused:
        await plugin_lifecycle.plan_removal(fresh, host, "ephemeral")
    assert str(refused.value) == (
        "plugin 'ephemeral' is still loaded (extra): uninstall it or leave it out of YUNSHEGONG_PLUGINS first, "
        "or say `yunshegong plugins remove ephemeral --uninstalling` if you are about to"
    )
    # when it is said, then its branch is downgraded through its own migrations
    plan = await plugin_lifecycle.plan_removal(fresh, host, "ephemeral", uninstalling=True)
    assert (plan.downgrade, plan.revisions) == (True, ("e002",))
    await plugin_lifecycle.remove(fresh, host, plan)
    assert not {"ephemeral_items", "ephemeral_tags"} & await _tables(fresh)
    assert await _versions(fresh) == {CORE_HEAD}
    # and a later migrate with it installed creates it again
    await _upgrade(fresh, host)
    assert {"ephemeral_items", "ephemeral_tags"} <= await _tables(fresh)


async def test_a_plugin_left_out_by_the_operator_keeps_migrate_working_and_can_be_removed(fresh: AsyncEngine) -> None:
    # given a database migrated with ephemeral, which the operator then leaves out (YUNSHEGONG_PLUGINS=)
    await _upgrade(fresh, host_with("ephemeral"))
    left_out = host_with("ephemeral", enabled=[])
    # when the service migrates, then its revisions are still known and its tables untouched
    await _upgrade(fresh, left_out)
    assert "ephemeral_items" in await _tables(fresh)
    listed = await plugin_lifecycle.statuses(fresh, left_out)
    assert [(p.name, p.loaded, p.migrated, p.source) for p in listed] == [("ephemeral", False, ("e002",), "extra")]
    # when it is removed (no --uninstalling needed: it is not loaded), then through its own migrations
    plan = await plugin_lifecycle.plan_removal(fresh, left_out, "ephemeral")
    assert plan.downgrade
    await plugin_lifecycle.remove(fresh, left_out, plan)
    assert "ephemeral_items" not in await _tables(fresh)
    assert await _versions(fresh) == {CORE_HEAD}


async def test_enabling_from_the_lifecycle_service_names_unknown_plugins_and_organisations(fresh: AsyncEngine) -> None:
    host = host_with("ephemeral")
    await _upgrade(fresh, host)
    org = await _organization(fresh, "乙 社工站")
    # by id, through the mutation's service: enabled, then disabled
    assert await plugin_lifecycle.set_enabled(fresh, host, "ephemeral", str(org), True) == "乙 社工站"
    assert [p.enabled_for for p in await plugin_lifecycle.statuses(fresh, host)] == [("乙 社工站",)]
    await plugin_lifecycle.set_enabled(fresh, host, "ephemeral", "乙 社工站", False)
    assert [p.enabled_for for p in await plugin_lifecycle.statuses(fresh, host)] == [()]
    # and it is in the audit trail, as the operator's
    async with fresh.connect() as conn:
        audited = (await conn.execute(text("SELECT actor, operation FROM audit_log ORDER BY id"))).all()
    assert [tuple(a) for a in audited] == [("cli", "cli plugins enable"), ("cli", "cli plugins disable")]
    with pytest.raises(plugin_lifecycle.LifecycleError, match="There is no plugin called 'nope': see"):
        await plugin_lifecycle.set_enabled(fresh, host, "nope", str(org), True)
    with pytest.raises(plugin_lifecycle.LifecycleError, match="no organisation with id or name '丙'"):
        await plugin_lifecycle.set_enabled(fresh, host, "ephemeral", "丙", True)


# -- migration checks ------------------------------------------------------------------------------------------------


def test_a_migration_that_opens_no_branch_named_after_the_plugin_stops_startup() -> None:
    with pytest.raises(PluginLoadError) as refused:
        host_with("unlabelled")
    assert str(refused.value) == (
        "plugin 'unlabelled': migration 'u001' (u001_things.py) opens its branch, so it must say "
        "branch_labels = ('unlabelled',)"
    )


async def test_a_bad_depends_on_names_plugin_and_revision(fresh: AsyncEngine) -> None:
    message = (
        f"plugin 'baddep': migration 'b001' (b001_things.py) has depends_on '0099', which is no known revision: "
        f"fix it (core's latest revision is {CORE_HEAD!r})"
    )
    # when the host loads it, then startup stops with one line (not a bare KeyError)
    with pytest.raises(PluginLoadError) as at_load:
        host_with("baddep")
    assert str(at_load.value) == message
    # and migrate, handed its directory directly, says the same
    directory = fixture_plugin("baddep").register_migrations()
    with pytest.raises(migrate.MigrationError) as at_migrate:
        await migrate.upgrade(fresh, [directory])
    assert str(at_migrate.value) == message


async def test_a_migration_creating_a_table_outside_the_namespace_stops_migrate(fresh: AsyncEngine) -> None:
    # given a plugin whose migration creates `widgets` next to `stray_things`
    host = host_with("stray")
    # when the database is migrated, then it stops naming plugin and table, and nothing is kept
    with pytest.raises(migrate.MigrationError) as refused:
        await _upgrade(fresh, host)
    assert str(refused.value) == (
        "plugin 'stray': its migrations create table 'widgets', which must start with 'stray_': rename it in the "
        "plugin's migration and models"
    )
    assert await _tables(fresh) == set()


def test_a_model_table_outside_the_namespace_stops_startup() -> None:
    with pytest.raises(PluginLoadError) as refused:
        host_with("offprefix")
    assert str(refused.value) == (
        "plugin 'offprefix': table 'loose_notes' (LooseNote) must start with 'offprefix_': rename it "
        "(__tablename__ and the migration)"
    )


def test_a_plugin_name_whose_namespace_holds_a_core_table_stops_startup() -> None:
    # (its `remove` could otherwise take core's table for its own)
    with pytest.raises(PluginLoadError) as refused:
        host_with("help")
    assert str(refused.value).startswith("plugin 'help': core's table 'help_request")
    assert str(refused.value).endswith("lies in its namespace 'help_…': choose another plugin name")


# -- permissions ----------------------------------------------------------------------------------------------------


def test_a_permission_naming_a_role_that_does_not_exist_stops_startup() -> None:
    with pytest.raises(PluginLoadError, match=r"^plugin 'typo_role': permission 'typo_role.read' names role "):
        host_with("typo_role")
    with pytest.raises(PluginLoadError, match="'social_wroker', which does not exist; use one of community_head, "):
        host_with("typo_role")


def test_platform_administrators_hold_plugin_permissions_by_rank_but_not_relation_only_ones() -> None:
    # given the built-in plugins: counseling marks reading notes as relation-only
    host = build_plugin_host(entry_points=False)
    by_rank = {p.name: p.by_rank for p in host.permissions}
    # when roles are given their plugin permissions
    granted = host.permissions_by_role()
    # then a platform administrator holds every permission but the relation-only one
    assert by_rank["counseling.read_notes"] is False
    assert granted["platform_admin"] == {p for p, ranked in by_rank.items() if ranked}
    assert "counseling.read_notes" not in granted["platform_admin"]
    assert "counseling.read_notes" in granted["organization_admin"]


# -- statistics --------------------------------------------------------------------------------------------------


async def test_one_plugins_failing_statistics_leave_the_others_figures(
    make: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    # given two plugins enabled for the caller's organisation, the first failing in the database
    host = host_with("faulty", "tally")
    for name in ("faulty", "tally"):
        await plugin_service.set_enabled(
            make.ctx,
            organization_id=make.ctx.viewer.organization_id,  # type: ignore[arg-type]
            plugin=name,
            enabled=True,
            installed=frozenset(host.plugins),
            known=frozenset(host.plugins),
        )
    await make.commit()
    # when the statistics are computed
    with caplog.at_level(logging.ERROR, logger="core.services.stats"):
        figures = await stats.plugin_figures(make.ctx, host)
    # then the failing plugin's figure is left out and logged with its name; the other's is there
    assert [(plugin, f.key, f.value) for plugin, f in figures] == [("tally", "answers", 42)]
    assert [r.getMessage() for r in caplog.records] == [
        "plugin faulty: register_stats failed; its figures are left out of stats"
    ]
