"""The plugin system, proven with a real third-party package (tests/fixtures/yunshegong-hello) installed
through pip with an entry point, and small fixture plugins for the failure cases."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from core import hookspecs, migrate
from core.database import create_engine, create_sessionmaker
from core.demo import load_demo
from core.plugins import PluginHost, PluginLoadError, build_plugin_host
from core.services import organizations
from core.services import plugins as plugin_service
from core.services.context import ServiceContext, Viewer
from core.vocab import OrganizationKind, RequestStatus
from schema.build import build_schema
from tests.factories import Factory
from tests.plugin_support import Client
from tests.schema.helpers import gid

REPO = Path(__file__).resolve().parents[2]


def fixture_plugin(name: str) -> Any:
    return importlib.import_module(f"tests.fixture_plugins.{name}.plugin")


PLATFORM = Viewer(label="test admin", role="platform_admin")


@pytest.fixture
async def hello_make(hello_engine: AsyncEngine, clock: Any, hello_host: PluginHost) -> Any:
    """A platform administrator's factory whose records belong to an organisation that enabled hello."""
    async with create_sessionmaker(hello_engine)() as session:
        make = Factory(ServiceContext(session=session, viewer=PLATFORM, clock=clock, events=hello_host))
        home = await make.organization_using("hello", name="hello 协会")
        yield make.in_org(home.id)


async def _org(make: Factory, name: str) -> int:
    org = await organizations.create_organization(make.ctx, name=name, kind=OrganizationKind.AGENCY)
    await make.commit()
    return org.id


async def _enable(client: Client, org: int, enabled: bool = True, plugin: str = "hello") -> dict[str, Any]:
    data = await client(
        "mutation($o: ID!, $p: String!, $e: Boolean!) { setPluginEnabled(input: "
        "{organizationId: $o, plugin: $p, enabled: $e}) { plugin { name enabledForMe } errors { code field } } }",
        {"o": gid("Organization", org), "p": plugin, "e": enabled},
        org=org,
    )
    return data["setPluginEnabled"]


# -- identity and discovery ---------------------------------------------------------------------------------


def test_hook_register_plugin(hello_installed: Path) -> None:
    # given the hello package installed with pip: when the host is built from entry points
    host = build_plugin_host(builtins=())
    # then hello is found through its entry point, with its name, version and source
    hello = host.plugins["hello"]
    assert (hello.info.version, hello.info.description) == ("1.2.0", "Thanks volunteers when a request is fulfilled.")
    assert hello.source == "entry point hello = yunshegong_hello.plugin (yunshegong-hello 1.2.0)"


def test_plugin_appears_in_the_sdl_only_when_installed(hello_installed: Path) -> None:
    without = build_schema(host=build_plugin_host(entry_points=False)).as_str()
    with_hello = build_schema(host=build_plugin_host()).as_str()
    filtered = build_schema(host=build_plugin_host(enabled=[])).as_str()
    assert "helloGreet(" not in without
    assert "helloGreet(" in with_hello
    assert "type HelloGreeting implements Node" in with_hello
    assert "helloGreet(" not in filtered


def test_operator_setting_naming_a_missing_plugin_fails_startup(hello_installed: Path) -> None:
    with pytest.raises(PluginLoadError, match="not installed: \\['nope'\\]"):
        build_plugin_host(enabled=["hello", "nope"])


# -- GraphQL contributions and enablement ---------------------------------------------------------------------

GREET = """mutation($r: ID!, $m: String!) { helloGreet(input: {requestId: $r, message: $m}) {
  greeting { id message } errors { code field message } } }"""


async def test_hook_register_graphql(hello_client: Client, hello_make: Factory) -> None:
    # given an organisation that enabled hello and one that did not
    enabled_org, other_org = await _org(hello_make, "A 社工站"), await _org(hello_make, "B 社工站")
    request = await hello_make.in_org(enabled_org).request()
    assert (await _enable(hello_client, enabled_org))["plugin"] == {"name": "hello", "enabledForMe": True}
    # when a member of each uses hello's mutation and query
    ok = await hello_client(GREET, {"r": gid("HelpRequest", request.id), "m": "加油"}, org=enabled_org)
    refused = await hello_client.raw(GREET, {"r": gid("HelpRequest", request.id), "m": "hi"}, org=other_org)
    anonymous = await hello_client.raw("{ helloGreetings { message } }")
    # then it works for the first, and the others get PLUGIN_DISABLED and no data
    assert ok["helloGreet"]["greeting"]["message"] == "加油"
    assert refused["data"] is None
    assert refused["errors"][0]["extensions"]["code"] == "PLUGIN_DISABLED"
    assert anonymous["errors"][0]["extensions"]["code"] == "PLUGIN_DISABLED"
    listed = await hello_client("{ helloGreetings { message } }", org=enabled_org)
    assert listed["helloGreetings"] == [{"message": "加油"}]


async def test_hook_register_error_codes(hello_client: Client, hello_make: Factory) -> None:
    org = await _org(hello_make, "C 社工站")
    request = await hello_make.in_org(org).request()
    await _enable(hello_client, org)
    shouted = await hello_client(GREET, {"r": gid("HelpRequest", request.id), "m": "HELLO!!"}, org=org)
    assert shouted["helloGreet"]["greeting"] is None
    assert [(e["code"], e["field"]) for e in shouted["helloGreet"]["errors"]] == [("TOO_LOUD", ["input", "message"])]
    unknown = await hello_client(GREET, {"r": gid("HelpRequest", 999), "m": "hi"}, org=org)
    assert unknown["helloGreet"]["errors"][0]["code"] == "NOT_FOUND"


async def test_hook_register_translations(hello_client: Client, hello_make: Factory) -> None:
    # given hello's refusal (its own message, translated by its catalog), a request hello's reaction refuses
    # to see fulfilled, and an organisation without hello
    refusing = await hello_make.request(status=RequestStatus.IN_PROGRESS, title="refuse 送药")
    await hello_make.ctx.session.commit()
    org, other = await _org(hello_make, "翻译 社工站"), await _org(hello_make, "无 hello 社工站")
    request = await hello_make.in_org(org).request()
    await _enable(hello_client, org)
    shout = {"r": gid("HelpRequest", request.id), "m": "HELLO!!"}
    languages = ({}, {"accept-language": "en-US,en;q=0.9"}, {"accept-language": "zh-CN"})
    # when the same refused greeting is sent without Accept-Language, asking for English, and for Chinese
    refused = [(await hello_client(GREET, shout, org=org, headers=h))["helloGreet"]["errors"] for h in languages]
    # then the code is the same each time, and the message is in the language asked for
    assert [[e["code"] for e in errors] for errors in refused] == [["TOO_LOUD"]] * 3
    assert [errors[0]["message"] for errors in refused] == ["请不要大喊。", "No shouting.", "请不要大喊。"]
    # and so is a top-level refusal of the plugin (core's message naming it)
    disabled = [await hello_client.raw("{ helloGreetings { message } }", org=other, headers=h) for h in languages]
    assert [d["errors"][0]["extensions"]["code"] for d in disabled] == ["PLUGIN_DISABLED"] * 3
    assert [d["errors"][0]["message"] for d in disabled] == [
        "您所在的机构未启用插件 hello。",
        "The hello plugin is not enabled for your organisation.",
        "您所在的机构未启用插件 hello。",
    ]
    # and a plugin's reason quoted in core's sentence is said in the caller's language as well
    quoted = await hello_client(FULFIL, {"id": gid("HelpRequest", refusing.id)})
    assert (
        quoted["fulfillHelpRequest"]["errors"][0]["message"]
        == "插件 hello 拒绝了此更改：hello 不接受标题含 refuse 的求助。"
    )


async def test_disabling_takes_effect_at_once_and_keeps_data(hello_client: Client, hello_make: Factory) -> None:
    # given greetings written while hello was enabled
    org = await _org(hello_make, "D 社工站")
    request = await hello_make.in_org(org).request()
    await _enable(hello_client, org)
    await hello_client(GREET, {"r": gid("HelpRequest", request.id), "m": "第一条"}, org=org)
    # when hello is disabled, then re-enabled
    assert (await _enable(hello_client, org, enabled=False))["plugin"]["enabledForMe"] is False
    disabled = await hello_client.raw("{ helloGreetings { message } }", org=org)
    await _enable(hello_client, org)
    again = await hello_client("{ helloGreetings { message } }", org=org)
    # then it was refused at once while disabled, and the data is back afterwards
    assert disabled["errors"][0]["extensions"]["code"] == "PLUGIN_DISABLED"
    assert again["helloGreetings"] == [{"message": "第一条"}]


async def test_node_lookup_of_a_plugin_type_obeys_enablement(hello_client: Client, hello_make: Factory) -> None:
    org, other = await _org(hello_make, "E 社工站"), await _org(hello_make, "F 社工站")
    request = await hello_make.in_org(org).request()
    await _enable(hello_client, org)
    greeting = await hello_client(GREET, {"r": gid("HelpRequest", request.id), "m": "你好"}, org=org)
    node_id = greeting["helloGreet"]["greeting"]["id"]
    query = "query($id: ID!) { node(id: $id) { ... on HelloGreeting { message } } }"
    assert (await hello_client(query, {"id": node_id}, org=org))["node"] == {"message": "你好"}
    # an organisation without the plugin gets null, as for an id outside its scope (nodes(ids:) stays whole)
    refused = await hello_client.raw(query, {"id": node_id}, org=other)
    assert refused == {"data": {"node": None}}


async def test_set_plugin_enabled_answers_the_target_organisations_state(
    hello_client: Client, hello_make: Factory
) -> None:
    # given a platform administrator of no organisation, and an organisation
    org = await _org(hello_make, "P 社工站")
    mutation = (
        'mutation($o: ID!, $e: Boolean!) { setPluginEnabled(input: {organizationId: $o, plugin: "hello", '
        "enabled: $e}) { plugin { name enabledForMe } enabled organizationId errors { code } } }"
    )
    # when the administrator enables hello for the organisation, then disables it
    enabled = await hello_client(mutation, {"o": gid("Organization", org), "e": True})
    disabled = await hello_client(mutation, {"o": gid("Organization", org), "e": False})
    # then the payload answers the organisation's state (the administrator's own stays off)
    assert enabled["setPluginEnabled"] == {
        "plugin": {"name": "hello", "enabledForMe": False},
        "enabled": True,
        "organizationId": gid("Organization", org),
        "errors": [],
    }
    assert (disabled["setPluginEnabled"]["enabled"], disabled["setPluginEnabled"]["organizationId"]) == (
        False,
        gid("Organization", org),
    )
    # and a refused change carries no state
    refused = await hello_client(mutation, {"o": gid("Organization", 999999), "e": True})
    assert refused["setPluginEnabled"] == {
        "plugin": None,
        "enabled": None,
        "organizationId": None,
        "errors": [{"code": "NOT_FOUND"}],
    }


@pytest.mark.parametrize(("plugin", "code"), [("no_such_plugin", "UNKNOWN_PLUGIN"), ("hello", None)])
async def test_enabling_unknown_plugins_is_a_user_error(
    hello_client: Client, hello_make: Factory, plugin: str, code: str | None
) -> None:
    org = await _org(hello_make, "G 社工站")
    result = await _enable(hello_client, org, plugin=plugin)
    assert [e["code"] for e in result["errors"]] == ([code] if code else [])


async def test_enabling_an_installed_but_unloaded_plugin(
    hello_installed: Path, hello_engine: AsyncEngine, hello_make: Factory
) -> None:
    # given a deployment whose operator loads no plugins although hello is installed
    from core.settings import Settings
    from schema.context import AppState
    from tests.plugin_support import viewer_from_test_header
    from yunshegong.app import create_app

    host = build_plugin_host(enabled=[])
    state = AppState(
        settings=Settings(),
        sessionmaker=create_sessionmaker(hello_engine),
        host=host,
        authenticate=viewer_from_test_header,
    )
    import httpx

    app = create_app(Settings(), engine=hello_engine, state=state)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        org = await _org(hello_make, "H 社工站")
        result = await _enable(Client(http), org)
    # then enabling it says it is not installed here
    assert result["errors"] == [{"code": "PLUGIN_NOT_INSTALLED", "field": ["input", "plugin"]}]


async def test_plugins_query_lists_installed_plugins(hello_client: Client, hello_make: Factory) -> None:
    org = await _org(hello_make, "I 社工站")
    data = await hello_client("{ plugins { name version description enabledForMe permissions { name } } }", org=org)
    assert data["plugins"] == [
        {
            "name": "hello",
            "version": "1.2.0",
            "description": "Thanks volunteers when a request is fulfilled.",
            "enabledForMe": False,
            "permissions": [{"name": "hello.greet"}],
        },
    ]


# -- events ------------------------------------------------------------------------------------------------------

FULFIL = (
    "mutation($id: ID!) { fulfillHelpRequest(input: {id: $id}) { helpRequest { status } errors { code message } } }"
)


async def _greetings(make: Factory) -> int:
    return int(await make.ctx.session.scalar(text("SELECT count(*) FROM hello_greetings")) or 0)


async def test_hook_on_event(hello_client: Client, hello_make: Factory) -> None:
    # given a request in progress
    request = await hello_make.request(status=RequestStatus.IN_PROGRESS, title="送药")
    # when it is fulfilled
    data = await hello_client(FULFIL, {"id": gid("HelpRequest", request.id)})
    # then hello's reaction wrote its greeting in the same change
    assert data["fulfillHelpRequest"]["errors"] == []
    assert await _greetings(hello_make) == 1


async def test_a_plugin_the_organisation_has_not_enabled_neither_hears_nor_blocks(
    hello_client: Client, hello_make: Factory
) -> None:
    # given a request of an organisation that has not enabled hello, titled so hello's reaction would refuse
    other = await _org(hello_make, "N 社工站")
    request = await hello_make.in_org(other).request(status=RequestStatus.IN_PROGRESS, title="refuse 送药")
    # when it is fulfilled
    data = await hello_client(FULFIL, {"id": gid("HelpRequest", request.id)})
    # then hello was not asked: the change went through and hello wrote nothing for that organisation
    assert data["fulfillHelpRequest"] == {"helpRequest": {"status": "FULFILLED"}, "errors": []}
    assert await _greetings(hello_make) == 0


@pytest.mark.parametrize(
    ("title", "code", "says"),
    [
        ("boom 送药", "PLUGIN_FAILED", "The hello plugin failed while handling help_request.fulfilled"),
        ("refuse 送药", "OUT_OF_RANGE", "The hello plugin refused this change: hello refuses"),
    ],
)
async def test_a_failing_reaction_rolls_the_core_change_back(
    hello_client: Client, hello_make: Factory, title: str, code: str, says: str
) -> None:
    # given a request whose fulfilment hello's reaction will fail on
    request = await hello_make.request(status=RequestStatus.IN_PROGRESS, title=title)
    history_before = await hello_make.ctx.session.scalar(
        text("SELECT count(*) FROM help_request_status_changes WHERE request_id = :id"), {"id": request.id}
    )
    await hello_make.ctx.session.commit()
    # when it is fulfilled (by a caller who reads English)
    data = await hello_client(FULFIL, {"id": gid("HelpRequest", request.id)}, headers={"accept-language": "en"})
    # then the client is told which plugin failed, and neither core nor plugin changes were kept
    payload = data["fulfillHelpRequest"]
    assert payload["helpRequest"] is None
    assert payload["errors"][0]["code"] == code
    assert says in payload["errors"][0]["message"]
    status = await hello_make.ctx.session.scalar(
        text("SELECT status FROM help_requests WHERE id = :id"), {"id": request.id}
    )
    history_after = await hello_make.ctx.session.scalar(
        text("SELECT count(*) FROM help_request_status_changes WHERE request_id = :id"), {"id": request.id}
    )
    assert (status, history_after) == ("in_progress", history_before)
    assert await _greetings(hello_make) == 0


async def test_hook_register_event_types(hello_plugin: Any, hello_engine: AsyncEngine, clock: Any) -> None:
    # given hello (which publishes hello.greeted) and a listener that never imports hello
    listener = fixture_plugin("listener")
    listener.HEARD.clear()
    host = build_plugin_host(entry_points=False, extra=[hello_plugin, listener])
    assert "hello.greeted" in host.event_types
    async with create_sessionmaker(hello_engine)() as session:
        make = Factory(ServiceContext(session=session, viewer=PLATFORM, clock=clock, events=host))
        org = await make.organization_using("hello")
        await plugin_service.set_enabled(
            make.ctx,
            organization_id=org.id,
            plugin="listener",
            enabled=True,
            installed=frozenset({"listener"}),
            known=frozenset({"listener"}),
        )
        make = make.in_org(org.id)
        request = await make.request()
        # when hello publishes its event
        services = importlib.import_module("yunshegong_hello.services")
        greeting = await services.greet(make.ctx, request.id, "你好")
        await session.commit()
    # then the listener heard it by name, with its data, after core's own events
    names = [name for name, _ in listener.HEARD]
    assert names[0] == "help_request.submitted"
    assert listener.HEARD[-1] == (
        "hello.greeted",
        {"organization_id": org.id, "greeting_id": greeting.id, "request_id": request.id},
    )


# -- other contributions ---------------------------------------------------------------------------------------


async def test_hook_register_migrations(hello_engine: AsyncEngine, hello_host: PluginHost) -> None:
    # given the hello database migrated through the host's migration directories
    heads = await migrate.current_heads(hello_engine)
    # then both branches are at their heads and hello's table exists
    # (h001 depends on core's 0006; core's own head is listed beside it once core has gone further)
    assert heads == {"h001", migrate.core_head()} - {"0006"}
    async with hello_engine.connect() as conn:
        assert await conn.scalar(text("SELECT to_regclass('hello_greetings') IS NOT NULL"))
    assert [p.name for p in hello_host.migration_dirs()] == ["migrations"]


def test_a_plugin_table_that_does_not_say_whom_its_rows_belong_to_stops_startup() -> None:
    # given a plugin whose model is neither organisation-owned nor declared shared
    # when the host is built with it, then startup stops, naming the plugin, the table and what to do
    with pytest.raises(PluginLoadError, match=r"'careless'.*'careless_notes'.*core.OrganizationOwned"):
        build_plugin_host(entry_points=False, builtins=(), extra=[fixture_plugin("careless")])
    # while a table declared shared with a reason (reference data) is accepted
    host = build_plugin_host(entry_points=False, builtins=(), extra=[fixture_plugin("shared_ref")])
    assert list(host.plugins) == ["shared_ref"]


def test_hook_register_permissions(hello_host: PluginHost) -> None:
    assert [p.name for p in hello_host.permissions] == ["hello.greet"]
    with pytest.raises(PluginLoadError, match=r"'sloppy_perm'.*must start with 'sloppy_perm\.'"):
        build_plugin_host(entry_points=False, extra=[fixture_plugin("sloppy_perm")])


async def test_hook_register_stats(hello_client: Client, hello_make: Factory) -> None:
    org, other = await _org(hello_make, "J 社工站"), await _org(hello_make, "K 社工站")
    request = await hello_make.in_org(org).request()
    await _enable(hello_client, org)
    await hello_client(GREET, {"r": gid("HelpRequest", request.id), "m": "一"}, org=org)
    query = "{ stats { pluginFigures { plugin key label value } } }"
    assert (await hello_client(query, org=org))["stats"]["pluginFigures"] == [
        {"plugin": "hello", "key": "greetings", "label": "Greetings sent", "value": "1"}
    ]
    assert (await hello_client(query, org=other))["stats"]["pluginFigures"] == []


async def test_hook_register_demo_data(hello_engine: AsyncEngine, hello_host: PluginHost, hello_db: Any) -> None:
    # when the demo is loaded with hello installed (through the app role, as a platform administrator)
    assert await load_demo(hello_engine, host=hello_host)
    # then hello added its greeting, thanked the volunteers of the demo's fulfilled request (its event
    # reaction ran during the demo too), and is enabled for the association (read as the owner)
    owner = create_engine(hello_db, pool_size=1)
    async with owner.connect() as conn:
        messages = (await conn.execute(text("SELECT message FROM hello_greetings ORDER BY id"))).scalars().all()
        assert sorted(messages) == ["Welcome to the demo", "谢谢！Thank you, volunteers."]
        enabled = await conn.scalar(
            select(func.count()).select_from(text("plugin_enablements")).where(text("plugin_name = 'hello'"))
        )
    await owner.dispose()
    assert enabled == 1


async def test_hook_extend_context(hello_client: Client, hello_make: Factory) -> None:
    org = await _org(hello_make, "L 社工站")
    await _enable(hello_client, org)
    assert (await hello_client("{ helloContextState }", org=org)) == {"helloContextState": "hello from the context"}


# -- startup failures --------------------------------------------------------------------------------------------


def test_root_field_clash_names_both_plugins() -> None:
    host = build_plugin_host(
        entry_points=False, builtins=(), extra=[fixture_plugin("case"), fixture_plugin("case_work")]
    )
    with pytest.raises(PluginLoadError, match="'caseWorkItems' is defined by both 'case' and 'case_work'"):
        build_schema(host=host)


@pytest.mark.parametrize(
    ("plugin", "message"),
    [
        ("badtype", "plugin 'badtype': type 'Widget' must start with 'Badtype'"),
        ("badfield", "plugin 'badfield': query field 'stats' must start with 'badfield'"),
        ("malformed", "plugin 'malformed': register_graphql must return GraphQLContribution, got builtins.str"),
    ],
)
def test_malformed_contributions_stop_startup_naming_the_plugin(plugin: str, message: str) -> None:
    host = build_plugin_host(entry_points=False, extra=[fixture_plugin(plugin)])
    with pytest.raises(PluginLoadError, match=re.escape(message)):
        build_schema(host=host)


def test_two_plugins_with_one_name_stop_startup(hello_plugin: Any) -> None:
    with pytest.raises(PluginLoadError, match="two plugins are named 'hello'"):
        build_plugin_host(entry_points=False, extra=[hello_plugin, hello_plugin])


def test_a_plugin_that_fails_to_import_stops_startup() -> None:
    message = "built-in plugin tests.fixture_plugins.missing.plugin: failed to import"
    with pytest.raises(PluginLoadError, match=re.escape(message)):
        build_plugin_host(entry_points=False, builtins=["tests.fixture_plugins.missing.plugin"])


def test_a_module_without_register_plugin_is_refused() -> None:
    # given a module that is not a plugin; when the host is asked to load it
    with pytest.raises(PluginLoadError) as refused:
        build_plugin_host(entry_points=False, extra=[importlib.import_module("tests.fixture_plugins")])
    # then the message names the module (not `builtins.module`) and what to do
    assert str(refused.value) == (
        "extra: module tests.fixture_plugins has no register_plugin hook, so it is not a plugin: add an "
        "@core.hookimpl register_plugin() returning core.PluginInfo, or point the entry point at the module "
        "that has it"
    )


# -- the plugin API is documented and tested ------------------------------------------------------------------


def _hook_names() -> list[str]:
    return [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, "yunshegong_spec")]


def test_every_hook_is_documented() -> None:
    docs = (REPO / "docs" / "plugins.md").read_text(encoding="utf-8")
    assert _hook_names(), "no hookspecs found"
    missing = [name for name in _hook_names() if f"### `{name}`" not in docs]
    assert missing == [], f"document these hooks in docs/plugins.md: {missing}"


def test_every_hook_has_a_test() -> None:
    tests = {name for name, _ in inspect.getmembers(importlib.import_module(__name__), inspect.isfunction)}
    missing = [name for name in _hook_names() if f"test_hook_{name}" not in tests]
    assert missing == [], f"write test_hook_<name> for: {missing}"


async def test_plugin_subscriptions_are_gated_too(hello_engine: AsyncEngine, hello_make: Factory) -> None:
    # given a plugin contributing a subscription, and an organisation that enabled it
    from core.settings import Settings
    from schema.context import AppState, Context

    host = build_plugin_host(entry_points=False, extra=[fixture_plugin("ticker")])
    schema = build_schema(host=host)
    org = await _org(hello_make, "M 社工站")
    await plugin_service.set_enabled(
        hello_make.ctx,
        organization_id=org,
        plugin="ticker",
        enabled=True,
        installed=frozenset({"ticker"}),
        known=frozenset({"ticker"}),
    )
    await hello_make.commit()
    state = AppState(settings=Settings(), sessionmaker=create_sessionmaker(hello_engine), host=host)

    async def ticks(viewer: Viewer) -> tuple[list[Any], list[str]]:
        result = await schema.subscribe(
            "subscription { tickerTicks(count: 2) }", context_value=Context(app=state, viewer=viewer)
        )
        data, errors = [], []
        async for item in result:  # type: ignore[union-attr]
            data += [item.data] if item.data else []
            errors += [(e.extensions or {}).get("code", e.message) for e in item.errors or []]
        return data, errors

    # when a member subscribes, and an outsider does
    member = await ticks(Viewer(label="member", role="organization_admin", organization_id=org))
    outsider = await ticks(Viewer(label="outsider", role="organization_admin"))
    # then only the member gets the stream
    assert member == ([{"tickerTicks": 0}, {"tickerTicks": 1}], [])
    assert outsider[0] == []
    assert outsider[1] == ["PLUGIN_DISABLED"]


def test_plugin_permissions_reach_the_roles_that_hold_them(hello_host: PluginHost) -> None:
    # given hello's permission, granted to social workers by default
    from core.models import Account
    from core.services import access, auth
    from core.settings import Settings
    from schema.context import AppState

    granted = AppState(settings=Settings(), sessionmaker=None, host=hello_host).plugin_permissions  # type: ignore[arg-type]
    # when accounts of two roles are turned into viewers
    social_worker = auth.viewer_for(Account(id=1, username="sw", role="social_worker", token_version=1), granted)
    head = auth.viewer_for(Account(id=2, username="head", role="community_head", token_version=1), granted)
    platform = auth.viewer_for(Account(id=3, username="root", role="platform_admin", token_version=1), granted)
    # then the social worker holds it, and the platform administrator by rank; the community head does not
    assert granted == {"platform_admin": frozenset({"hello.greet"}), "social_worker": frozenset({"hello.greet"})}
    assert access.can(social_worker, "hello.greet")
    assert access.can(platform, "hello.greet")
    assert not access.can(head, "hello.greet")


async def test_hook_register_match_criteria(make: Factory) -> None:
    # given a plugin that strongly prefers Cantonese speakers and rules out volunteers without a phone
    from core.services import matching
    from core.services.matching_policy import MatchingPolicy

    host = build_plugin_host(entry_points=False, extra=[fixture_plugin("linguist")])
    request = await make.request(status=RequestStatus.VERIFIED)
    plain = await make.volunteer()
    cantonese = await make.volunteer(skills=["cantonese"])
    unreachable = await make.volunteer(skills=["no_phone"])
    # when candidates are ranked with the plugin's criteria
    ranked = await matching.candidates(make.ctx, request.id, 10, MatchingPolicy(), host.match_criteria)
    # then its component is in the breakdown, the Cantonese speaker leads, the other is gone
    assert [c.volunteer_id for c in ranked] == [cantonese.id, plain.id]
    assert unreachable.id not in [c.volunteer_id for c in ranked]
    assert next(p for p in ranked[0].parts if p.component == "linguist.cantonese").value == 1.0


def test_hook_register_jobs() -> None:
    # given a plugin with two hourly jobs; then the runner knows them by name (running them when due, once
    # across processes, keeping failures: tests/core/test_jobs.py)
    from datetime import timedelta

    from core.jobs import plugin_jobs

    host = build_plugin_host(entry_points=False, builtins=(), extra=[fixture_plugin("reminders")])
    assert [(p, j.name, j.every) for p, j in plugin_jobs(host)] == [
        ("reminders", "reminders.lecture", timedelta(hours=1)),
        ("reminders", "reminders.flaky", timedelta(hours=1)),
    ]


def test_hook_register_settings() -> None:
    # given a plugin's settings class; then its defaults, overridden by YUNSHEGONG_<PLUGIN>_<FIELD>
    # (conversion and bad values: tests/core/test_jobs.py)
    from core.plugin_settings import load

    host = build_plugin_host(entry_points=False, builtins=(), extra=[fixture_plugin("reminders")])
    assert load(host, {"YUNSHEGONG_REMINDERS_SENDER": "东区社工站"})["reminders"].sender == "东区社工站"


def test_hook_register_roles() -> None:
    # given a plugin declaring a role; then it is known with its permissions (granting through GraphQL and
    # the permissions it gives per request: tests/core/services/test_plugin_roles.py)
    from core.services.plugin_roles import permissions_of, plugin_roles

    host = build_plugin_host(entry_points=False, builtins=(), extra=[fixture_plugin("supervision")])
    assert list(plugin_roles(host)) == ["supervision.supervisor"]
    assert permissions_of(host, ["supervision.supervisor", "gone.role"]) == {"supervision.approve"}


def test_the_guide_lists_every_core_event_with_its_fields_and_every_role() -> None:
    import dataclasses

    from core.events import CORE_EVENT_TYPES
    from core.vocab import Role

    docs = (REPO / "docs" / "plugins.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(" `"): line for line in docs.splitlines() if line.startswith("| `")}
    for event in CORE_EVENT_TYPES:
        row = rows.get(event.__name__, "")
        fields = [f.name for f in dataclasses.fields(event) if f.name != "organization_id"]
        assert event.name in row, event.__name__
        assert all(f"`{f}`" in row for f in fields), (event.__name__, fields, row)
    assert all(f"`{role.value}`" in docs for role in Role)


def test_hook_register_sealed_columns() -> None:
    # given a plugin declaring two sealed columns; then `reseal` knows them (sealing, rotation, the command:
    # tests/core/services/test_sealing.py)
    from core.services.sealing import CORE_SEALED_COLUMNS, sealed_columns
    from tests.core.services.test_sealing import BODY, OTHER, Vault

    host = build_plugin_host(entry_points=False, builtins=(), extra=[Vault([BODY, OTHER])])
    # (after core's own: the organisations' webhook secrets)
    assert sealed_columns(host) == [*CORE_SEALED_COLUMNS, BODY, OTHER]


def test_hook_register_channels() -> None:
    # given a plugin registering a delivery channel; then the worker carries messages through it after core's
    # own channels (where the plugin is enabled, retries, parking: tests/core/delivery/test_plugin_channels.py,
    # test_worker.py)
    from core.delivery import build_worker, plugin_channels
    from core.settings import Settings
    from tests.core.delivery.support import Recording
    from tests.core.delivery.test_plugin_channels import Pager

    channel = Recording(name="pager.sms")
    host = build_plugin_host(entry_points=False, builtins=(), extra=[Pager(channel)])
    assert plugin_channels(host) == [("pager", channel)]
    worker = build_worker(None, Settings(), host)  # type: ignore[arg-type] # no round is run
    assert [c.name for c in worker.channels] == ["log", "webhook", "pager.sms"]


def test_hook_register_referral_targets() -> None:
    # given the built-in plugins; then counseling and supplies take referrals, each answered by its own staff
    # (round trip, consent, privacy: tests/core/services/test_referrals.py, tests/schema/test_people_api.py)
    from types import SimpleNamespace

    from core.hookspecs import hookimpl
    from core.plugin_api import PluginInfo
    from core.services.referrals import ReferralTarget, registered_targets

    def targets(host: PluginHost) -> dict[str, tuple[str, str]]:
        found = registered_targets(SimpleNamespace(events=host))  # type: ignore[arg-type] # reads ctx.events only
        return {name: (plugin, t.receiving_permission) for name, (plugin, t) in found.items()}

    found = targets(build_plugin_host(entry_points=False))
    assert found["counseling"] == ("counseling", "counseling.manage")
    assert found["supplies"] == ("supplies", "supplies.manage")

    class Referee:
        def __init__(self, name: str) -> None:
            self.name = name

        @hookimpl
        def register_plugin(self) -> PluginInfo:
            return PluginInfo(name="referee", version="1.0")

        @hookimpl
        def register_referral_targets(self) -> list[ReferralTarget]:
            return [ReferralTarget(self.name, "x", "referee.manage")]

    # and a plugin offers targets in its own namespace only
    only = build_plugin_host(entry_points=False, builtins=(), extra=[Referee("referee.visits")])
    assert targets(only) == {"referee.visits": ("referee", "referee.manage")}
    poacher = build_plugin_host(entry_points=False, builtins=(), extra=[Referee("counseling")])
    with pytest.raises(ValueError, match="outside its namespace"):
        targets(poacher)


def test_hook_register_resident_relations() -> None:
    # given the built-in plugins; then counseling and casework say how their staff serve residents (who sees
    # whom, end to end: tests/core/services/test_residents.py, tests/plugins/case_work/test_residents.py)
    from types import SimpleNamespace

    from sqlalchemy import column

    from core.hookspecs import hookimpl
    from core.plugin_api import PluginInfo
    from core.services.context import Viewer
    from core.services.residents import ResidentRelation, registered_relations

    def names(host: PluginHost) -> list[str]:
        return sorted(r.name for r in registered_relations(SimpleNamespace(events=host)))  # type: ignore[arg-type]

    assert names(build_plugin_host(entry_points=False)) == ["case_work", "counseling", "maternal_care"]
    # and a caller who works no cases and holds no sessions serves nobody by them
    nobody = Viewer(label="volunteer", role="volunteer", organization_id=1)
    for relation in registered_relations(SimpleNamespace(events=build_plugin_host(entry_points=False))):  # type: ignore[arg-type]
        assert relation.serves(nobody, column("resident_id")) is None, relation.name

    class Carer:
        def __init__(self, name: str) -> None:
            self.name = name

        @hookimpl
        def register_plugin(self) -> PluginInfo:
            return PluginInfo(name="carer", version="1.0")

        @hookimpl
        def register_resident_relations(self) -> list[ResidentRelation]:
            return [ResidentRelation(self.name, lambda viewer, resident_id: None)]

    # and a plugin names relations in its own namespace only
    assert names(build_plugin_host(entry_points=False, builtins=(), extra=[Carer("carer.home")])) == ["carer.home"]
    with pytest.raises(ValueError, match="outside its namespace"):
        names(build_plugin_host(entry_points=False, builtins=(), extra=[Carer("case_work")]))


def test_hook_register_exports() -> None:
    # given a plugin offering an export of its own GraphQL fields (downloads, masking, refusals:
    # tests/yunshegong/test_exports.py)
    from core.hookspecs import hookimpl
    from core.plugin_api import ExportColumn, ExportDefinition, PluginInfo
    from schema.exports import collect

    def tally(name: str, document: str = "query($first: Int) { tallyCounts(first: $first) { n } }") -> Any:
        class Tally:
            @hookimpl
            def register_plugin(self) -> PluginInfo:
                return PluginInfo(name="tally", version="1.0")

            @hookimpl
            def register_exports(self) -> list[ExportDefinition]:
                return [ExportDefinition(name, "Counts", document, "tallyCounts", (ExportColumn("n", "N", "n"),))]

        return Tally()

    # then it joins core's, owned by the plugin
    found = collect(build_plugin_host(entry_points=False, builtins=(), extra=[tally("tallyCounts")]))
    assert found["tallyCounts"].plugin == "tally"
    assert found["volunteers"].plugin is None
    # and a name outside its namespace, one core uses, or a document that is not one query stops startup
    for bad in (tally("counts"), tally("volunteers"), tally("tallyX", "mutation { x }"), tally("tallyY", "{")):
        with pytest.raises(PluginLoadError, match="tally"):
            collect(build_plugin_host(entry_points=False, builtins=(), extra=[bad]))
