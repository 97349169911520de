"""Metric labels stay bounded and free of personal data: an operation counts under the root fields the schema
declares (never the name the client gave it), error codes fold into `other` past their limit."""

from __future__ import annotations

import re

import pytest
from graphql import build_schema, parse

from core.observability import metrics
from core.observability.metrics import OTHER, LabelFolder
from schema import operation_labels as operations
from schema.operation_labels import INVALID, SEVERAL, operation_label, record_graphql_operation

SCHEMA = build_schema(
    """
    type Query { helpRequests: Int stats: Int queue: Int node(id: ID): Int volunteers: Int }
    type Mutation { submitHelpRequest: Int login: Int }
    type Subscription { helpRequestChanged: Int }
    """
)


def _label(document: str, operation_name: str | None = None) -> str:
    return operation_label(SCHEMA, parse(document), operation_name)


def test_an_operation_is_labelled_by_its_root_field_never_by_the_name_the_client_chose() -> None:
    # given operations whose names carry a person's name and phone, or imitate another operation
    assert _label("query Zhang_San_13812345678 { helpRequests }") == "helpRequests"
    assert _label("query RequestsPage { stats }") == "stats"
    # then the label is the root field, whatever the alias
    assert _label("{ mine: helpRequests other: helpRequests }") == "helpRequests"
    # and mutations and subscriptions alike; introspection's own fields are fields too
    assert _label("mutation M { submitHelpRequest }") == "submitHelpRequest"
    assert _label("subscription S { helpRequestChanged }") == "helpRequestChanged"
    assert _label("query Probe { __typename }") == "__typename"


def test_several_root_fields_are_sorted_and_joined_and_capped() -> None:
    assert _label("{ stats helpRequests }") == "helpRequests,stats"
    assert _label("{ stats helpRequests queue }") == "helpRequests,queue,stats"
    # more than three: one label for all such documents
    assert _label("{ stats helpRequests queue volunteers }") == SEVERAL


def test_fragments_at_the_root_count_their_fields() -> None:
    document = "query Q { ...Page ... on Query { queue } } fragment Page on Query { stats }"
    assert _label(document) == "queue,stats"


def test_the_selected_operation_of_a_document_is_labelled() -> None:
    document = "query A { stats } mutation B { login }"
    assert _label(document, "B") == "login"
    assert _label(document, "A") == "stats"
    # a name the document does not hold, or no name for a document of several: it never ran
    assert _label(document, "Nope") == INVALID
    assert _label(document) == INVALID
    assert operation_label(SCHEMA, None, None) == INVALID


def test_a_field_the_schema_does_not_declare_never_becomes_a_label() -> None:
    # (validation refuses it before execution; the label does not rely on that)
    assert _label("{ Zhang_San_13812345678 }") == OTHER
    assert _label("{ stats Zhang_San_13812345678 }") == OTHER


def test_combinations_are_bounded_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # given room for two combinations
    monkeypatch.setattr(operations, "_combination_label", LabelFolder(re.compile(r"[A-Za-z_,]+"), 2))
    labels = [_label(d) for d in ("{ stats queue }", "{ stats login: queue helpRequests }", "{ node stats }")]
    # then the third combination is `other`, and single fields are never folded
    assert labels == ["queue,stats", "helpRequests,queue,stats", OTHER]
    assert _label("{ node }") == "node"
    assert _label("{ stats queue }") == "queue,stats"


def test_recording_counts_under_the_label_the_schema_found_and_consumes_it() -> None:
    # given an operation the schema labelled `stats`
    operations._LABEL.set("stats")
    before = metrics.ERRORS.labels("stats", "NOT_FOUND")._value.get()
    runs = metrics.OPERATIONS.labels(INVALID)._value.get()
    # when it is recorded with two NOT_FOUND errors
    assert record_graphql_operation(0.01, ["NOT_FOUND", "NOT_FOUND"]) == "stats"
    # then both errors count under its label
    assert metrics.ERRORS.labels("stats", "NOT_FOUND")._value.get() == before + 2
    # and an operation recorded next without reaching the schema is `invalid`, not `stats`
    assert record_graphql_operation(0.01, ["INVALID_REQUEST"]) == INVALID
    assert metrics.OPERATIONS.labels(INVALID)._value.get() == runs + 1


def test_the_first_well_formed_codes_are_admitted_and_the_rest_fold_into_other() -> None:
    # given a folder admitting three values
    fold = LabelFolder(re.compile(r"[A-Z][A-Z0-9_]{0,63}"), 3)
    labels = [fold(code) for code in ("NOT_FOUND", "FORBIDDEN", "BUSY", "FOURTH")]
    assert labels == ["NOT_FOUND", "FORBIDDEN", "BUSY", OTHER]
    assert fold("13812345678") == OTHER
    assert fold("NOT_FOUND") == "NOT_FOUND"


def test_error_codes_come_from_graphql_errors_and_from_mutation_payloads() -> None:
    class Error:
        def __init__(self, code: str | None) -> None:
            self.extensions = {"code": code} if code else {}

    # given a result with a GraphQL error, one without a code, and a mutation payload with two errors
    data = {
        "offerAssignment": {"assignment": None, "errors": [{"code": "ALREADY_EXISTS"}, {"code": "FORBIDDEN"}]},
        "other": {"errors": [{"message": "no code selected"}]},
        "plain": 3,
    }
    codes = metrics.result_codes([Error("INVALID_ID"), Error(None)], data)
    # then each is counted once by its code (an error without one is an internal error)
    assert sorted(codes) == ["ALREADY_EXISTS", "FORBIDDEN", "INTERNAL_ERROR", "INVALID_ID"]


def test_routes_are_a_fixed_list() -> None:
    assert metrics.route_label("/graphql") == "/graphql"
    assert metrics.route_label("/graphiql/static/graphiql.min.js") == "/graphiql/static"
    assert metrics.route_label("/board/static/vendor/echarts/echarts.min.js") == "/board"
    # an export's name (and its variables) never becomes a label
    assert metrics.route_label("/export/volunteers.csv") == "/export"
    # a path a client makes up (it may carry anything) is `other`
    assert metrics.route_label("/users/13812345678") == OTHER
