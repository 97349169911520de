"""The counseling API follows core's style: one `input` per mutation, payloads with errors, UPPER_CASE enums,
Relay nodes for every type with an id, cursor connections for every list that can grow."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import GraphQLEnumType, GraphQLList, GraphQLNonNull, GraphQLObjectType, GraphQLSchema

from core.plugins import build_plugin_host
from core.settings import Settings
from schema.build import build_schema

# Root lists bounded by their arguments (a free-slot search spans at most a month).
BOUNDED_LISTS = {"counselingFreeSlots"}


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return build_schema(Settings(), build_plugin_host(entry_points=False))._schema


def _named(t: Any) -> Any:
    while isinstance(t, GraphQLNonNull | GraphQLList):
        t = t.of_type
    return t


def test_every_mutation_takes_one_input_and_answers_a_payload_with_errors(schema: GraphQLSchema) -> None:
    assert schema.mutation_type is not None
    fields = {n: f for n, f in schema.mutation_type.fields.items() if n.startswith("counseling")}
    assert len(fields) == 12
    for name, field in fields.items():
        assert list(field.args) == ["input"], name
        arg = field.args["input"].type
        assert isinstance(arg, GraphQLNonNull), name
        assert arg.of_type.name == name[0].upper() + name[1:] + "Input", name
        payload = _named(field.type)
        assert payload.name.startswith("Counseling"), name
        assert payload.name.endswith("Payload"), name
        assert str(payload.fields["errors"].type) == "[UserError!]!", name


def test_enums_are_upper_case_and_prefixed(schema: GraphQLSchema) -> None:
    enums = {n: t for n, t in schema.type_map.items() if isinstance(t, GraphQLEnumType) and n.startswith("Counseling")}
    assert set(enums) == {"CounselingSessionStatus", "CounselingMode", "CounselingRiskSeverity", "CounselingRiskSource"}
    for name, enum in enums.items():
        assert all(v == v.upper() for v in enum.values), name


def test_types_with_an_id_are_nodes_and_growing_lists_are_connections(schema: GraphQLSchema) -> None:
    for name, t in schema.type_map.items():
        if name.startswith("Counseling") and isinstance(t, GraphQLObjectType) and "id" in t.fields:
            assert any(i.name == "Node" for i in t.interfaces), name
    assert schema.query_type is not None
    for name, field in schema.query_type.fields.items():
        if not name.startswith("counseling") or name in BOUNDED_LISTS:
            continue
        returned = _named(field.type)
        if isinstance(field.type, GraphQLNonNull) and isinstance(field.type.of_type, GraphQLList):
            pytest.fail(f"{name} is a plain list")
        if returned.name.endswith("Connection"):
            assert {"first", "after", "filter"} <= set(field.args), name
            assert "totalCount" in returned.fields, name
    # references are object fields, not bare ids
    session = schema.type_map["CounselingSession"]
    assert isinstance(session, GraphQLObjectType)
    assert (str(session.fields["counselor"].type), str(session.fields["client"].type)) == (
        "CounselingCounselor!",
        "CounselingClient!",
    )
    flag = schema.type_map["CounselingRiskFlag"]
    assert isinstance(flag, GraphQLObjectType)
    assert "clientId" not in flag.fields
    assert str(flag.fields["client"].type) == "CounselingClient!"
