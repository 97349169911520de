"""One API style for core and plugins, checked on the built schema (core + the built-in plugins), so that a
new field that breaks the style fails here whoever adds it. The plugin host enforces the first and third
rules for every plugin at startup (schema/build.py; tested at the end of this module).

- every mutation takes exactly one argument, `input: <X>Input!`, and answers a payload whose `errors` is
  `[UserError!]!` (one error type, one ErrorCode enum);
- every plugin object type with an `id` implements `Node`;
- every list of Node objects that can grow is a cursor connection (`…Connection` with `edges`, `nodes`,
  `pageInfo`, `totalCount`, and `first`/`after` arguments); the few bounded lists are named below with why;
- amounts of money are `Money`.
"""

from __future__ import annotations

from typing import Any

import pytest
import strawberry
from graphql import (
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
)
from strawberry import Info

import core
from core.plugins import PluginLoadError, build_plugin_host
from schema.build import build_schema
from tests.conftest import GraphQLClient
from tests.factories import Factory

# Lists of Node objects that are not connections, each bounded by something other than the data's growth.
BOUNDED_LISTS = {
    "MaternalCareMother.pregnancies": "a woman's pregnancies: a handful in a lifetime, one ongoing at a time",
    "Query.maternalCareLectureRecommendations": "a shortlist: at most 50 (first <= 50), within 180 days",
    "Query.districts": "the city's districts and counties: reference data of a dozen or so rows",
    "Query.organizations": "the deployment's partner organisations: reference data, tens of rows",
    "Query.trainings": "the training catalogue: reference data",
    "HelpRequest.assignments": "the volunteers on one request: a handful",
    "CoordinatorQueue.unverified": "a work list: the top `first` items (the full list is helpRequests)",
    "CoordinatorQueue.unmatched": "a work list: the top `first` items (the full list is helpRequests)",
    "CoordinatorQueue.pendingOffers": "a work list: the top `first` items (the full list is assignments)",
    "CommitPlanPayload.assignments": "what one committed plan created, bounded by the plan's size",
    "CaseWorkPlan.goals": "a service plan's goals: at most 20 (refused beyond, when a goal is added)",
    "CaseWorkGoal.actions": "a goal's actions: at most 20 (refused beyond, when an action is added)",
    "CaseWorkCase.transfers": "a case's transfer offers: at most 20 (refused beyond, when one is proposed)",
    "CaseWorkGroup.participants": "a group's participants, leavers included: at most twice its capacity (<= 200)",
    "CaseWorkGroup.sessions": "a group's sessions: at most 30 (refused beyond, when one is scheduled)",
}
MONEY_WORDS = ("amount", "money", "unallocated", "allocated", "price")


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return build_schema(None, build_plugin_host(entry_points=False))._schema


def _unwrap(t: Any) -> Any:
    while isinstance(t, GraphQLNonNull):
        t = t.of_type
    return t


PLUGIN_PREFIXES = ("Supplies", "Counseling", "CaseWork")


def test_every_mutation_takes_one_input_and_answers_user_errors(schema: GraphQLSchema) -> None:
    wrong = {}
    for name, field in schema.mutation_type.fields.items():  # type: ignore[union-attr]
        arg = field.args.get("input")
        if list(field.args) != ["input"] or not isinstance(arg.type, GraphQLNonNull):  # type: ignore[union-attr]
            wrong[name] = f"arguments {list(field.args)}"
            continue
        if not isinstance(_unwrap(arg.type), GraphQLInputObjectType):  # type: ignore[union-attr]
            wrong[name] = "input is not an input object"
            continue
        payload = _unwrap(field.type)
        errors = payload.fields.get("errors") if isinstance(payload, GraphQLObjectType) else None
        if errors is None or str(errors.type) != "[UserError!]!":
            wrong[name] = f"payload errors are {errors.type if errors else None}"
    assert wrong == {}


def test_one_error_type_and_one_error_code_enum(schema: GraphQLSchema) -> None:
    assert [n for n in schema.type_map if n.endswith("ErrorCode")] == ["ErrorCode"]
    errors = [n for n, t in schema.type_map.items() if isinstance(t, GraphQLObjectType) and n.endswith("Error")]
    assert errors == ["UserError"]


def test_every_plugin_type_with_an_id_is_a_node(schema: GraphQLSchema) -> None:
    node = schema.type_map["Node"]
    not_nodes = [
        name
        for name, t in schema.type_map.items()
        if isinstance(t, GraphQLObjectType)
        and name.startswith(PLUGIN_PREFIXES)
        and "id" in t.fields
        and node not in t.interfaces
    ]
    assert not_nodes == []


def test_every_growing_list_is_a_connection(schema: GraphQLSchema) -> None:
    node = schema.type_map["Node"]
    lists = {}
    for type_name, t in schema.type_map.items():
        if not isinstance(t, GraphQLObjectType) or type_name.startswith("__") or type_name.endswith("Connection"):
            continue
        for field_name, field in t.fields.items():
            inner = get_named_type(field.type)
            is_list = isinstance(_unwrap(field.type), GraphQLList)
            if is_list and isinstance(inner, GraphQLObjectType) and node in inner.interfaces:
                lists[f"{type_name}.{field_name}"] = inner.name
    assert sorted(set(lists) - set(BOUNDED_LISTS)) == []
    assert sorted(set(BOUNDED_LISTS) - set(lists)) == [], "a bounded list is gone: remove it from BOUNDED_LISTS"


def test_connections_page_and_count(schema: GraphQLSchema) -> None:
    for type_name, t in schema.type_map.items():
        if not (isinstance(t, GraphQLObjectType) and type_name.endswith("Connection")):
            continue
        assert {"edges", "nodes", "pageInfo", "totalCount"} <= set(t.fields), type_name
    for root in (schema.query_type,):
        for name, field in root.fields.items():  # type: ignore[union-attr]
            if get_named_type(field.type).name.endswith("Connection"):
                assert {"first", "after"} <= set(field.args), name


def test_money_is_money(schema: GraphQLSchema) -> None:
    wrong = []
    for type_name, t in schema.type_map.items():
        if type_name.startswith("__") or not isinstance(t, (GraphQLObjectType, GraphQLInputObjectType)):
            continue
        if type_name in ("Query", "Mutation", "Subscription"):
            continue  # root fields are operations, not amounts
        for field_name, field in t.fields.items():
            if any(w in field_name.lower() for w in MONEY_WORDS) and get_named_type(field.type).name not in (
                "Money",
                "Int",
            ):
                wrong.append(f"{type_name}.{field_name}: {field.type}")
    assert wrong == []


# -- enforced at startup for every plugin -----------------------------------------------------------------------


@strawberry.type
class LoosePayload:
    ok: bool


@strawberry.input
class ShoutInput:
    text: str


def _with_mutation(resolver: type) -> object:
    class Plugin:
        @core.hookimpl
        def register_plugin(self) -> core.PluginInfo:
            return core.PluginInfo(name="shout", version="1")

        @core.hookimpl
        def register_graphql(self) -> core.GraphQLContribution:
            return core.GraphQLContribution(mutation=resolver)

    return Plugin()


@strawberry.type
class LooseArguments:
    @strawberry.mutation
    async def shout_say(self, info: Info, text: str, loud: bool) -> LoosePayload:
        return LoosePayload(ok=True)


@strawberry.type
class NoUserErrors:
    @strawberry.mutation
    async def shout_say(self, info: Info, input: ShoutInput) -> LoosePayload:
        return LoosePayload(ok=True)


@strawberry.type
class ShoutThing:
    id: strawberry.ID
    text: str


@strawberry.type
class ShoutQuery:
    @strawberry.field
    async def shout_thing(self, info: Info) -> ShoutThing | None:
        return None


@pytest.mark.parametrize(
    ("plugin", "message"),
    [
        (_with_mutation(LooseArguments), r"'shout'.*'shoutSay' must take one argument, `input`.*\['text', 'loud'\]"),
        (_with_mutation(NoUserErrors), r"'shout'.*'shoutSay' must answer a payload with `errors: \[UserError!\]!`"),
    ],
)
def test_a_plugin_mutation_in_another_style_stops_startup(plugin: object, message: str) -> None:
    with pytest.raises(PluginLoadError, match=message):
        build_schema(None, build_plugin_host(entry_points=False, builtins=(), extra=[plugin]))


def test_a_plugin_type_with_an_id_that_is_not_a_node_stops_startup() -> None:
    class Plugin:
        @core.hookimpl
        def register_plugin(self) -> core.PluginInfo:
            return core.PluginInfo(name="shout", version="1")

        @core.hookimpl
        def register_graphql(self) -> core.GraphQLContribution:
            return core.GraphQLContribution(query=ShoutQuery)

    with pytest.raises(PluginLoadError, match=r"'shout'.*'ShoutThing' has an id, so it must implement Node"):
        build_schema(None, build_plugin_host(entry_points=False, builtins=(), extra=[Plugin()]))


async def test_every_timestamp_has_one_precision(gql: GraphQLClient, make: Factory, clock) -> None:  # type: ignore[no-untyped-def]
    # given two requests created at a whole second and at a fraction of one
    import re
    from datetime import timedelta

    from tests.schema.helpers import gid

    whole = await make.request(title="整秒", needed_by=clock.now.replace(microsecond=0) + timedelta(days=1))
    fraction = await make.request(title="小数", needed_by=clock.now.replace(microsecond=123456) + timedelta(days=1))
    await make.commit()
    query = "query($id: ID!) { node(id: $id) { ... on HelpRequest { neededBy } } }"
    # when their times are read, then both carry exactly milliseconds and an offset
    shapes = [(await gql(query, {"id": gid("HelpRequest", r.id)}))["node"]["neededBy"] for r in (whole, fraction)]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d", s) for s in shapes), shapes
    assert shapes[1].split(".")[1].startswith("123")
