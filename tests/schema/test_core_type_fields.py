"""Plugins add fields to core types (GraphQLContribution.type_fields): prefixed, nullable, gated by the
caller's organisation's enablement, and only in the schema built with the plugin."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import strawberry
from strawberry import Info

import core
from core.database import create_sessionmaker
from core.plugins import PluginLoadError, build_plugin_host
from core.services.context import Viewer
from core.settings import Settings
from schema.build import build_schema
from schema.context import AppState, Context
from tests.factories import Factory
from tests.schema.helpers import gid

ANNOTATOR = "tests.fixture_plugins.annotator.plugin"
QUERY = "query($id: ID!) { node(id: $id) { ... on HelpRequest { title annotatorLabel } } }"


async def test_a_plugin_field_on_a_core_type_answers_where_the_plugin_is_enabled(make: Factory, engine) -> None:  # type: ignore[no-untyped-def]
    # given the annotator plugin, enabled by A and not by B, and a request in each
    host = build_plugin_host(entry_points=False, builtins=(), extra=[importlib.import_module(ANNOTATOR)])
    schema = build_schema(Settings(), host)
    a = await make.organization_using("annotator", "甲机构")
    b = await make.organization_using("something_else", "乙机构")
    in_a = await make.in_org(a.id).request(community=await make.in_org(a.id).community(), title="送药")
    in_b = await make.in_org(b.id).request(community=await make.in_org(b.id).community(), title="买菜")
    await make.commit()
    state = AppState(settings=Settings(), sessionmaker=create_sessionmaker(engine), host=host)

    async def ask(org: int, request_id: int) -> Any:
        viewer = Viewer(label="admin", role="organization_admin", organization_id=org)
        result = await schema.execute(
            QUERY, {"id": gid("HelpRequest", request_id)}, context_value=Context(app=state, viewer=viewer)
        )
        assert result.errors is None, result.errors
        return result.data["node"]  # type: ignore[index]

    # when each reads its request with the plugin's field
    # then A gets the plugin's value, B gets the request with the field null (not an error)
    assert await ask(a.id, in_a.id) == {"title": "送药", "annotatorLabel": "标签：送药"}
    assert await ask(b.id, in_b.id) == {"title": "买菜", "annotatorLabel": None}


def test_the_field_exists_only_in_schemas_built_with_the_plugin() -> None:
    with_it = str(
        build_schema(
            Settings(), build_plugin_host(entry_points=False, builtins=(), extra=[importlib.import_module(ANNOTATOR)])
        )
    )
    without = str(build_schema(Settings(), build_plugin_host(entry_points=False, builtins=())))
    assert "annotatorLabel: String" in with_it
    assert "annotatorLabel" not in without


def _plugin(name: str, fields: type, type_name: str = "HelpRequest") -> Any:
    class Plugin:
        @core.hookimpl
        def register_plugin(self) -> core.PluginInfo:
            return core.PluginInfo(name=name, version="1")

        @core.hookimpl
        def register_graphql(self) -> core.GraphQLContribution:
            return core.GraphQLContribution(type_fields={type_name: fields})

    return Plugin()


@strawberry.type
class Unprefixed:
    @strawberry.field
    async def label(self, info: Info) -> str | None:
        return None


@strawberry.type
class NonNull:
    @strawberry.field
    async def strict_label(self, info: Info) -> str:
        return ""


@pytest.mark.parametrize(
    ("plugin", "message"),
    [
        (_plugin("loose", Unprefixed), r"'loose'.*'HelpRequest.label' must start with 'loose'"),
        (_plugin("strict", NonNull), r"'strict'.*'HelpRequest.strictLabel' must be nullable"),
        (_plugin("loose", Unprefixed, "Account"), r"'loose'.*cannot add fields to 'Account'"),
    ],
)
def test_a_malformed_core_type_field_stops_startup_naming_the_plugin(plugin: Any, message: str) -> None:
    with pytest.raises(PluginLoadError, match=message):
        build_schema(Settings(), build_plugin_host(entry_points=False, builtins=(), extra=[plugin]))
