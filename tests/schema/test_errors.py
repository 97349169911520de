"""Malformed queries get spec errors; unexpected failures are masked; nothing leaks."""

from __future__ import annotations

import logging

import pytest

from core.services import stats
from tests.conftest import GraphQLClient


@pytest.mark.parametrize(
    "query",
    [
        "{ helpRequests( { totalCount } }",
        "{ noSuchField }",
        "mutation { verifyHelpRequest { errors { code } } }",
        '{ helpRequests(first: "ten") { totalCount } }',
    ],
)
async def test_malformed_queries_get_errors_not_500(gql, query: str) -> None:  # type: ignore[no-untyped-def]
    response = await gql.http.post("/graphql", json={"query": query})
    assert response.status_code in (200, 400)
    body = response.json()
    assert body["errors"]
    assert all("message" in e for e in body["errors"])
    assert "Traceback" not in response.text


@pytest.mark.parametrize("body", [b"{not json", b'{"query": ""}', b'{"query": 5}'])
async def test_unusable_request_bodies_are_client_errors(gql, body: bytes) -> None:  # type: ignore[no-untyped-def]
    response = await gql.http.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500
    assert "Traceback" not in response.text


async def test_unexpected_errors_are_masked_and_logged(gql, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    # given a service that fails in a way nobody expected (with SQL in its message)
    async def broken(ctx):  # type: ignore[no-untyped-def]
        raise RuntimeError('relation "secret_table" does not exist: SELECT password FROM accounts')

    monkeypatch.setattr(stats, "compute", broken)
    # when a client asks for it
    with caplog.at_level(logging.ERROR, logger="yunshegong.graphql"):
        response = await gql.http.post("/graphql", json={"query": "{ stats { volunteersTotal } }"})
    # then the client sees a masked message with a request id, and the log has the details
    body = response.json()
    error = body["errors"][0]
    assert error["extensions"]["code"] == "INTERNAL_ERROR"
    request_id = error["extensions"]["requestId"]
    assert request_id in error["message"]
    assert "secret_table" not in response.text
    assert "SELECT" not in response.text
    assert any(request_id in r.getMessage() for r in caplog.records)
    assert any("secret_table" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


async def test_expected_refusals_do_not_fill_the_log_with_tracebacks(
    gql: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    # given a query that the rules refuse (an unknown id: NOT_FOUND-like null; a malformed one: INVALID_ID)
    with caplog.at_level("ERROR"):
        body = await gql.raw('{ node(id: "garbage") { id } }')
    # then the client is told, and nothing was logged as an error
    assert body["errors"][0]["extensions"]["code"] == "INVALID_ID"
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []
