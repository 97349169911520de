"""The HTTP edge of /graphql: hostile bodies, GraphQL-over-HTTP media types and statuses, error codes,
an unreachable database, what reaches the log, and GraphiQL served by the service itself.

Every refusal is JSON with `extensions.code` (never a 500, plain text or a traceback), and the service
answers normally afterwards.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from core.database import async_url, create_engine, create_sessionmaker
from core.services.context import Viewer
from core.settings import Settings
from schema.context import AppState, Context
from yunshegong.app import bearer_authenticator, create_app

GRAPHQL_RESPONSE = "application/graphql-response+json"
TYPENAME = {"query": "{ __typename }"}
STATS = "{ stats { volunteersTotal } }"
FIRST_N = "query($n: Int!) { helpRequests(first: $n) { totalCount } }"
CREATE_DISTRICT = 'mutation { createDistrict(input: {name: "东区", kind: DISTRICT}) { errors { code } } }'


def _deep_variables(depth: int) -> bytes:
    return b'{"query": "{ __typename }", "variables": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"


HOSTILE_BODIES: dict[str, bytes] = {
    "a number": b"42",
    "null": b"null",
    "a string": b'"x"',
    "a list of numbers": b"[42]",
    "a list of lists": b"[[]]",
    "an empty batch": b"[]",
    "invalid UTF-8": b'{"query": "{ __typename \xff\xfe }"}',
    "not JSON": b"{ query: nope",
    "NaN": b'{"query": "{ __typename }", "variables": {"x": NaN}}',
    "a number beyond a double": b'{"query": "{ __typename }", "variables": {"x": 1e999999999}}',
    "no query": b'{"variables": {}}',
    "an empty query": b'{"query": ""}',
    "a query that is not a string": b'{"query": 5}',
    "variables that are a list": b'{"query": "{ __typename }", "variables": [1]}',
    "variables that are a string": b'{"query": "{ __typename }", "variables": "{}"}',
    "extensions that are a number": b'{"query": "{ __typename }", "extensions": 3}',
    "an operation name that is a number": b'{"query": "{ __typename }", "operationName": 1}',
    "variables nested 50,000 deep": _deep_variables(50_000),
    "variables nested 100 deep": _deep_variables(100),
}


def _code(response: httpx.Response) -> str:
    return response.json()["errors"][0]["extensions"]["code"]


async def _still_answers(http: httpx.AsyncClient) -> None:
    response = await http.post("/graphql", json=TYPENAME)
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.fixture
async def http(gql: Any) -> httpx.AsyncClient:
    return gql.http


# -- 1. bodies --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(HOSTILE_BODIES))
async def test_hostile_bodies_are_invalid_requests(http: httpx.AsyncClient, name: str) -> None:
    # given a body that is no GraphQL request
    # when it is posted as JSON
    response = await http.post("/graphql", content=HOSTILE_BODIES[name], headers={"content-type": "application/json"})
    # then it is refused as the client's mistake, in JSON with a code, and the service goes on
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert _code(response) == "INVALID_REQUEST"
    await _still_answers(http)


async def test_a_body_that_is_not_json_by_content_type_is_refused(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/graphql", content=b'{"query": "{ __typename }"}', headers={"content-type": "text/plain"}
    )
    assert response.status_code == 415
    assert _code(response) == "INVALID_REQUEST"
    await _still_answers(http)


@pytest.fixture
async def small_body(engine: AsyncEngine, app_state: AppState) -> AsyncIterator[httpx.AsyncClient]:
    app_state.settings = Settings(database_url=None, max_body_bytes=1000)
    app = create_app(app_state.settings, engine=engine, state=app_state)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


async def test_a_body_declared_too_large_is_refused_unread(small_body: httpx.AsyncClient) -> None:
    # given a limit of 1,000 bytes, when a body says it has 5,000
    big = {"query": "{ __typename }", "variables": {"pad": "x" * 5000}}
    response = await small_body.post("/graphql", json=big)
    # then it is refused with 413
    assert response.status_code == 413
    assert _code(response) == "BODY_TOO_LARGE"
    await _still_answers(small_body)


async def test_a_streamed_body_is_counted_as_it_arrives(small_body: httpx.AsyncClient) -> None:
    # given a chunked body without Content-Length, longer than the limit
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ __typename }", "variables": {"pad": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}}'

    response = await small_body.post("/graphql", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    # then reading stops at the limit with 413
    assert response.status_code == 413
    assert _code(response) == "BODY_TOO_LARGE"
    await _still_answers(small_body)


async def test_a_body_within_the_limit_is_served(small_body: httpx.AsyncClient) -> None:
    response = await small_body.post("/graphql", json={"query": "{ __typename }", "variables": {"pad": "x" * 500}})
    assert response.status_code == 200


# -- 2. GraphQL over HTTP ---------------------------------------------------------------------------------------


async def test_graphql_response_json_is_honoured(http: httpx.AsyncClient) -> None:
    response = await http.post("/graphql", json=TYPENAME, headers={"accept": GRAPHQL_RESPONSE})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        (f"application/json, {GRAPHQL_RESPONSE}", "application/json"),
        (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0.5, application/json", "application/json"),
    ],
)
async def test_the_media_type_follows_accept(http: httpx.AsyncClient, accept: str | None, media_type: str) -> None:
    headers = {"accept": accept} if accept else {}
    response = await http.post("/graphql", json=TYPENAME, headers=headers)
    assert response.headers["content-type"].startswith(media_type)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"query": "{"}, "GRAPHQL_PARSE_FAILED"),
        ({"query": "{ noSuchField }"}, "GRAPHQL_VALIDATION_FAILED"),
        ({"query": "query($n: Int!) { helpRequests(first: $n) { totalCount } }", "variables": {}}, "INVALID_INPUT"),
        (
            {"query": FIRST_N, "variables": {"n": "x"}},
            "INVALID_INPUT",
        ),
    ],
)
async def test_request_errors_are_4xx_without_data_for_graphql_response_json(
    http: httpx.AsyncClient, body: dict[str, Any], code: str
) -> None:
    # given a document that cannot run (syntax, schema, variables)
    # when the client accepts application/graphql-response+json
    modern = await http.post("/graphql", json=body, headers={"accept": GRAPHQL_RESPONSE})
    # then it is a 400 without `data`, with the code of what failed
    assert modern.status_code == 400
    assert modern.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert "data" not in modern.json()
    assert _code(modern) == code
    # and an application/json client keeps the legacy 200 (with the same code)
    legacy = await http.post("/graphql", json=body, headers={"accept": "application/json"})
    assert legacy.status_code == 200
    assert legacy.headers["content-type"].startswith("application/json")
    assert _code(legacy) == code


async def test_field_errors_keep_200_for_graphql_response_json(http: httpx.AsyncClient) -> None:
    # given a query that runs but whose field fails (a malformed ID): not a request error
    response = await http.post(
        "/graphql", json={"query": '{ node(id: "") { id } }'}, headers={"accept": GRAPHQL_RESPONSE}
    )
    assert response.status_code == 200
    assert response.json()["data"] == {"node": None}
    assert _code(response) == "INVALID_ID"


async def test_a_mutation_over_get_is_method_not_allowed(http: httpx.AsyncClient) -> None:
    response = await http.get("/graphql", params={"query": CREATE_DISTRICT}, headers={"accept": "application/json"})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert _code(response) == "INVALID_REQUEST"
    await _still_answers(http)


async def test_queries_over_get_are_served(http: httpx.AsyncClient) -> None:
    response = await http.get("/graphql", params={"query": "{ __typename }"}, headers={"accept": "application/json"})
    assert response.json() == {"data": {"__typename": "Query"}}
    bad = await http.get("/graphql", params={"query": "{ __typename }", "variables": "{nope"})
    assert bad.status_code == 400
    assert _code(bad) == "INVALID_REQUEST"


async def test_other_methods_are_refused_in_json(http: httpx.AsyncClient) -> None:
    response = await http.put("/graphql", json=TYPENAME)
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]
    assert _code(response) == "INVALID_REQUEST"


async def test_a_batch_too_large_is_refused_in_json(http: httpx.AsyncClient) -> None:
    response = await http.post("/graphql", json=[TYPENAME] * 11)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    assert _code(response) == "BATCH_TOO_LARGE"
    small = await http.post("/graphql", json=[TYPENAME] * 2)
    assert small.json() == [{"data": {"__typename": "Query"}}] * 2


# -- 3. every error has a code -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("{ helpRequests( { totalCount } }", "GRAPHQL_PARSE_FAILED"),
        ('{ node(id: "x" { id } }', "GRAPHQL_PARSE_FAILED"),
        ("{ noSuchField }", "GRAPHQL_VALIDATION_FAILED"),
        ("{ helpRequests(nope: 1) { totalCount } }", "GRAPHQL_VALIDATION_FAILED"),
        ('{ node(id: "") { id } }', "INVALID_ID"),
        ('{ nodes(ids: [""]) { id } }', "INVALID_ID"),
        ('{ node(id: "garbage") { id } }', "INVALID_ID"),
    ],
)
async def test_every_error_has_a_code(http: httpx.AsyncClient, query: str, code: str) -> None:
    body = (await http.post("/graphql", json={"query": query})).json()
    assert [e["extensions"]["code"] for e in body["errors"]] == [code] * len(body["errors"])


async def test_an_id_from_a_variable_has_a_code(http: httpx.AsyncClient) -> None:
    query = "query($id: ID!) { node(id: $id) { id } }"
    body = (await http.post("/graphql", json={"query": query, "variables": {"id": ""}})).json()
    assert body["errors"][0]["extensions"]["code"] == "INVALID_ID"


async def test_variables_that_do_not_fit_are_invalid_input(http: httpx.AsyncClient) -> None:
    query = "query($f: HelpRequestFilter) { helpRequests(filter: $f) { totalCount } }"
    for variables in ({"f": {"statu": ["NEW"]}}, {"f": {"urgencies": ["SOON"]}}, {"f": 3}):
        body = (await http.post("/graphql", json={"query": query, "variables": variables})).json()
        assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT", body


async def test_a_failure_after_the_operation_is_masked_with_a_code(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the request's cleanup failing (after SafeErrors has seen the result), with SQL in the message
    async def broken(self: Any) -> None:
        raise RuntimeError("SELECT password FROM accounts")

    monkeypatch.setattr(Context, "flush_audit", broken)
    # when a query runs
    response = await http.post("/graphql", json={"query": STATS})
    # then the error is masked and coded, like any other unexpected one
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["INTERNAL_ERROR"]
    assert "SELECT" not in response.text


# -- 5. the database unreachable ----------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def no_database(admin: Viewer) -> AsyncIterator[tuple[httpx.AsyncClient, AppState]]:
    """The app with an engine pointing at a port where nothing listens."""
    settings = Settings(database_url=None)
    dead = create_engine(f"postgresql://nobody@127.0.0.1:{_closed_port()}/nothing", pool_size=1)

    async def as_admin(request: object, session: object) -> Viewer:
        return admin

    state = AppState(settings=settings, sessionmaker=create_sessionmaker(dead), authenticate=as_admin)
    app = create_app(settings, engine=dead, state=state)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client, state
    await dead.dispose()


@pytest.mark.parametrize("accept", ["application/json", GRAPHQL_RESPONSE])
@pytest.mark.parametrize("query", [STATS, CREATE_DISTRICT])
async def test_an_unreachable_database_is_503_unavailable(
    no_database: tuple[httpx.AsyncClient, AppState], query: str, accept: str, caplog: pytest.LogCaptureFixture
) -> None:
    client, _state = no_database
    # when a query or a mutation needs the database
    with caplog.at_level(logging.INFO):
        response = await client.post("/graphql", json={"query": query}, headers={"accept": accept})
    # then the whole answer says the service is unavailable, and when to retry
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"].isdigit()
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["UNAVAILABLE"]
    # and the log has a warning, not an error with a traceback
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("yunshegong")]
    assert warnings
    assert all(r.exc_info is None for r in warnings)


async def test_a_token_that_cannot_be_checked_is_503(no_database: tuple[httpx.AsyncClient, AppState]) -> None:
    client, state = no_database
    state.authenticate = bearer_authenticator(state)
    response = await client.post("/graphql", json=TYPENAME, headers={"authorization": "Bearer some.token.here"})
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/json")
    assert _code(response) == "UNAVAILABLE"
    assert "retry-after" in response.headers


async def test_connections_killed_under_the_service_are_503_then_it_recovers(
    db_url: Any, owner_engine: AsyncEngine, admin: Viewer
) -> None:
    # given the service with a pooled connection (its own engine, named so that only it is terminated)
    engine = create_async_engine(
        async_url(db_url),
        pool_size=1,
        connect_args={"server_settings": {"timezone": "UTC", "application_name": "ysg-test-terminated"}},
    )

    async def as_admin(request: object, session: object) -> Viewer:
        return admin

    settings = Settings(database_url=None)
    state = AppState(settings=settings, sessionmaker=create_sessionmaker(engine), authenticate=as_admin)
    app = create_app(settings, engine=engine, state=state)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            assert (await client.post("/graphql", json={"query": STATS})).status_code == 200
            # when an administrator terminates its backend (as a crash or restart of PostgreSQL would)
            async with owner_engine.connect() as conn:
                killed = await conn.scalar(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = 'ysg-test-terminated'"
                    )
                )
                await conn.commit()
            assert killed == 1
            # then the request on the dead connection is answered 503 UNAVAILABLE, not INTERNAL_ERROR
            lost = await client.post("/graphql", json={"query": STATS})
            assert lost.status_code == 503, lost.text
            assert _code(lost) == "UNAVAILABLE"
            # and the next one gets a fresh connection
            again = await client.post("/graphql", json={"query": STATS})
            assert again.status_code == 200, again.text
    finally:
        await engine.dispose()


# -- 6. what reaches the log -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"query": "{"},
        {"query": "{ noSuchField }"},
        {"query": FIRST_N, "variables": {"n": "x"}},
        {"query": '{ node(id: "") { id } }'},
        {"query": "{ helpRequests(first: 100000) { totalCount } }"},
    ],
)
async def test_expected_refusals_are_logged_as_info_without_traceback(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, body: dict[str, Any]
) -> None:
    with caplog.at_level(logging.DEBUG):
        response = await http.post("/graphql", json=body)
    assert response.json()["errors"]
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    refusals = [r for r in caplog.records if r.name == "yunshegong.graphql"]
    assert refusals
    assert all(r.levelno == logging.INFO and r.exc_info is None for r in refusals)


# -- 7. GraphiQL offline -------------------------------------------------------------------------------------------


async def test_graphiql_loads_nothing_from_other_hosts(http: httpx.AsyncClient) -> None:
    # given a browser opening /graphql
    page = await http.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    # then the page names no other host (no CDN: it works offline)
    assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page.text, re.IGNORECASE), "an external URL"
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert {a.rsplit("/", 1)[-1] for a in assets} >= {
        "react.production.min.js",
        "react-dom.production.min.js",
        "graphiql.min.js",
        "graphiql.min.css",
    }
    # and every asset it names is served by the service itself
    for asset in assets:
        assert asset.startswith("/graphiql/static/")
        response = await http.get(asset)
        assert response.status_code == 200, asset
        assert response.content
        assert response.headers["content-type"].split(";")[0] in (
            "text/css",
            "text/javascript",
            "application/javascript",
        )


async def test_graphiql_keeps_no_bearer_token_in_the_browser(http: httpx.AsyncClient) -> None:
    # given the GraphiQL page, where people paste `Authorization: Bearer …` into the headers editor
    page = (await http.get("/graphql", headers={"accept": "text/html"})).text
    # then the headers are not persisted to localStorage (a token there outlives the session and any
    # script on the origin can read it) and never written into the address bar
    assert re.search(r"shouldPersistHeaders:\s*false", page)
    assert not re.search(r"updateURL\(\{\s*headers", page)


async def test_graphiql_switched_off_is_a_json_404(engine: AsyncEngine, app_state: AppState) -> None:
    app_state.settings = Settings(database_url=None, graphiql=False)
    app = create_app(app_state.settings, engine=engine, state=app_state)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 404
    assert _code(response) == "NOT_FOUND"


async def test_an_unknown_operation_name_in_a_batch_does_not_hide_what_the_batch_wrote(
    http: httpx.AsyncClient, gql: Any
) -> None:
    # given a batch of a mutation and an operation naming an operation its document lacks (found from outside:
    # the whole batch answered 400 while the mutation, run alongside, had committed)
    create = (
        'mutation { createDistrict(input: {kind: DISTRICT, name: "批量区"}) { district { name } errors { code } } }'
    )
    batch = [{"query": create}, {"query": "query A { __typename }", "operationName": "Nope"}]
    # when it is sent
    response = await http.post("/graphql", json=batch)
    # then the answer is 200: the mutation's result, and the unknown name refused in its own result
    assert response.status_code == 200
    created, refused = response.json()
    assert created["data"]["createDistrict"] == {"district": {"name": "批量区"}, "errors": []}
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["INVALID_REQUEST"]
    # and alone, the unknown name is still a 400 refusal of the request
    alone = await http.post("/graphql", json=batch[1])
    assert (alone.status_code, alone.json()["errors"][0]["extensions"]["code"]) == (400, "INVALID_REQUEST")
