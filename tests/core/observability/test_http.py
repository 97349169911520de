"""Over the app's HTTP edge: one request id per request (echoed, in the masked error, in the log) and
GET /metrics with operations, errors by code, and its optional token."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from core.observability.logs import RequestIdFilter
from core.services import stats
from core.settings import Settings
from schema.context import AppState
from yunshegong.app import create_app

HEX_ID = re.compile(r"[0-9a-f]{16}")


async def _client(app_state: AppState, settings: Settings, engine: Any) -> httpx.AsyncClient:
    state = AppState(
        settings=settings,
        sessionmaker=app_state.sessionmaker,
        clock=app_state.clock,
        authenticate=app_state.authenticate,
    )
    app = create_app(settings, engine=engine, state=state)
    # httpx's in-process transport connects from 127.0.0.1.
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture
async def behind_proxy(app_state: AppState, engine: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with await _client(app_state, Settings(trusted_proxies=("127.0.0.1",)), engine) as http:
        yield http


@pytest.fixture
async def direct(app_state: AppState, engine: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with await _client(app_state, Settings(), engine) as http:
        yield http


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def _sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_a_trusted_proxys_request_id_is_used_and_echoed(behind_proxy: httpx.AsyncClient) -> None:
    # given a request from a trusted proxy with a well-formed id
    response = await behind_proxy.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"X-Request-Id": "lb-7f3a.0001"}
    )
    # then the response carries the same id
    assert response.headers["x-request-id"] == "lb-7f3a.0001"


# (33 characters: longer than the audit trail's request id column.)
@pytest.mark.parametrize("sent", ["has space", "x" * 33, "<script>", ""])
async def test_a_malformed_id_is_replaced(behind_proxy: httpx.AsyncClient, sent: str) -> None:
    response = await behind_proxy.post("/graphql", json={"query": "{ __typename }"}, headers={"X-Request-Id": sent})
    assert HEX_ID.fullmatch(response.headers["x-request-id"])


async def test_a_clients_own_request_id_is_not_believed(direct: httpx.AsyncClient) -> None:
    # given no trusted proxies: the peer is the client itself
    response = await direct.post("/graphql", json={"query": "{ __typename }"}, headers={"X-Request-Id": "mine-0001"})
    # then the service makes its own id
    assert HEX_ID.fullmatch(response.headers["x-request-id"])
    # and every request gets a different one (also /healthz)
    other = await direct.get("/healthz")
    assert HEX_ID.fullmatch(other.headers["x-request-id"])
    assert other.headers["x-request-id"] != response.headers["x-request-id"]


async def test_a_masked_error_shows_the_requests_own_id_which_its_log_lines_carry(
    behind_proxy: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # given a service that fails unexpectedly
    async def broken(ctx: Any) -> Any:
        raise RuntimeError("nobody expected this")

    monkeypatch.setattr(stats, "compute", broken)
    caplog.handler.addFilter(RequestIdFilter())
    # when a request with the proxy's id asks for it
    with caplog.at_level(logging.ERROR):
        response = await behind_proxy.post(
            "/graphql", json={"query": "{ stats { volunteersTotal } }"}, headers={"X-Request-Id": "trace-42"}
        )
    # then the masked error's request id is the request's id (one id, not two)
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "INTERNAL_ERROR"
    assert error["extensions"]["requestId"] == "trace-42" == response.headers["x-request-id"]
    # and the logged traceback's line carries it
    logged = [r for r in caplog.records if r.exc_info]
    assert logged
    assert all(getattr(r, "request_id", None) == "trace-42" for r in logged)


async def test_metrics_count_operations_by_root_field_and_errors_by_code(direct: httpx.AsyncClient) -> None:
    text = (await direct.get("/metrics")).text
    typename_before = _sample(text, "yunshegong_graphql_operations_total", operation="__typename") or 0
    node_errors_before = _sample(text, "yunshegong_graphql_errors_total", operation="node", code="INVALID_ID") or 0
    invalid_before = _sample(text, "yunshegong_graphql_operations_total", operation="invalid") or 0
    # given two runs of a query named after a person and her phone, and a query answering INVALID_ID
    for _ in range(2):
        await direct.post("/graphql", json={"query": "query Zhang_San_13812345678 { __typename }"})
    await direct.post(
        "/graphql", json={"query": 'query Lookup { node(id: "garbage") { id } }', "operationName": "Lookup"}
    )
    # and a document that fails validation
    await direct.post("/graphql", json={"query": "query Squatter { noSuchField }"})
    # when /metrics is scraped
    response = await direct.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    # then each operation is counted under its root field, the error under its code
    assert _sample(text, "yunshegong_graphql_operations_total", operation="__typename") == typename_before + 2
    assert _sample(text, "yunshegong_graphql_errors_total", operation="node", code="INVALID_ID") == (
        node_errors_before + 1
    )
    assert _sample(text, "yunshegong_graphql_operations_total", operation="invalid") == invalid_before + 1
    # and no name a client chose is a label
    assert "Zhang_San" not in text
    assert "Lookup" not in text
    assert "Squatter" not in text
    # and the HTTP side and the pool are there
    assert (_sample(text, "yunshegong_http_requests_total", route="/graphql", status="200") or 0) >= 3
    assert "yunshegong_db_pool_checked_out" in text
    assert "yunshegong_db_pool_size" in text


async def test_invented_names_cannot_take_the_labels_real_operations_need(direct: httpx.AsyncClient) -> None:
    # given a client that sends 150 operations under 150 invented names
    for i in range(150):
        await direct.post("/graphql", json={"query": f"query Squat{i} {{ __typename }}"})
    before = _sample(
        (await direct.get("/metrics")).text, "yunshegong_graphql_errors_total", operation="node", code="INVALID_ID"
    )  # (the registry lives as long as the test process: earlier tests may have counted this one too)
    # when a real operation runs afterwards
    await direct.post("/graphql", json={"query": 'query RealPage { node(id: "garbage") { id } }'})
    text = (await direct.get("/metrics")).text
    # then it is counted under its own root field, not folded into `other`
    assert _sample(text, "yunshegong_graphql_errors_total", operation="node", code="INVALID_ID") == (before or 0) + 1
    assert "Squat" not in text


async def test_a_refused_request_counts_its_code_without_an_operation(direct: httpx.AsyncClient) -> None:
    before = (
        _sample(
            (await direct.get("/metrics")).text,
            "yunshegong_graphql_errors_total",
            operation="none",
            code="INVALID_REQUEST",
        )
        or 0
    )
    await direct.post("/graphql", content=b"{not json", headers={"content-type": "application/json"})
    after = _sample(
        (await direct.get("/metrics")).text, "yunshegong_graphql_errors_total", operation="none", code="INVALID_REQUEST"
    )
    assert after == before + 1


async def test_gauges_read_the_sources_the_app_is_given(app_state: AppState, engine: Any) -> None:
    # given an app whose outbox and subscription counts come from plugged-in callables (one async)
    app = create_app(Settings(), engine=engine, state=app_state)
    outbox_reads = 0

    async def outbox() -> int:
        nonlocal outbox_reads
        outbox_reads += 1
        return 7

    app.state.gauges.outbox_depth = outbox
    app.state.gauges.subscription_count = lambda: 3
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        # when the background refresher has read them once, then /metrics is scraped twice
        await app.state.gauges.refresh()
        for _ in range(2):
            text = (await http.get("/metrics")).text
    # then /metrics shows them, the outbox having been read by the refresher only
    assert "yunshegong_outbox_pending 7.0" in text
    assert "yunshegong_subscriptions 3.0" in text
    assert outbox_reads == 1


async def test_a_scrape_never_queries_the_database(app_state: AppState, engine: Any) -> None:
    from sqlalchemy import event

    # given the app with its real gauges (the outbox depth is a query over the deliveries)
    app = create_app(Settings(), engine=engine, state=app_state)
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
            # when /metrics is scraped three times
            answers = [(await http.get("/metrics")).status_code for _ in range(3)]
            # then it answered without a single statement reaching the database
            assert answers == [200, 200, 200]
            assert statements == []
            # and the background refresher's round is what reads the outbox
            await app.state.gauges.refresh()
            assert statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)


async def test_the_metrics_token_is_required_when_set(app_state: AppState, engine: Any) -> None:
    token = "s3cret-metrics-token"
    async with await _client(app_state, Settings(metrics_token=token), engine) as http:
        missing = await http.get("/metrics")
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer nope"})
        right = await http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert (missing.status_code, missing.json()["errors"][0]["extensions"]["code"]) == (401, "UNAUTHENTICATED")
    assert wrong.status_code == 401
    assert right.status_code == 200
    assert "yunshegong_http_requests_total" in right.text


@pytest.mark.parametrize(
    ("settings", "status"),
    [
        # listening on loopback, nothing forwarding to it: only this machine can ask
        (Settings(), 200),
        (Settings(host="::1"), 200),
        # reachable from elsewhere: refused unless the operator says the network is private
        (Settings(host="0.0.0.0"), 403),
        (Settings(host="10.0.0.5"), 403),
        (Settings(host="service.internal"), 403),
        # a proxy on the same machine forwards everyone's requests to the loopback address
        (Settings(trusted_proxies=("127.0.0.1",)), 403),
        (Settings(host="0.0.0.0", metrics_public=True), 200),
    ],
)
async def test_without_a_token_metrics_answer_only_where_nobody_else_can_ask(
    app_state: AppState, engine: Any, settings: Settings, status: int
) -> None:
    async with await _client(app_state, settings, engine) as http:
        response = await http.get("/metrics")
    assert response.status_code == status
    if status == 403:
        assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert "yunshegong_" not in response.text
    else:
        assert "yunshegong_http_requests_total" in response.text


async def test_a_token_is_required_on_a_public_address_and_then_suffices(app_state: AppState, engine: Any) -> None:
    token = "s3cret-metrics-token"
    async with await _client(app_state, Settings(host="0.0.0.0", metrics_token=token), engine) as http:
        missing = await http.get("/metrics")
        right = await http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert (missing.status_code, missing.json()["errors"][0]["extensions"]["code"]) == (401, "UNAUTHENTICATED")
    assert right.status_code == 200


async def test_the_outbox_depth_and_subscriptions_are_read_from_the_delivery_and_live_parts(
    app_state: AppState, engine: Any, ctx: Any, make: Any
) -> None:
    from core.services import outbox

    # given two messages queued in the outbox of an organisation (nobody delivers them: no worker runs here)
    volunteer = await make.volunteer()
    for i in range(2):
        await outbox.notify(ctx, "core.test_message", outbox.Recipient.volunteer(volunteer.id), {"n": i})
    await ctx.session.commit()
    # when the background refresher has read the outbox, and /metrics is scraped by a caller who sees no
    # organisation at all
    app = create_app(Settings(), engine=engine, state=app_state)
    await app.state.gauges.refresh()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        text = (await http.get("/metrics")).text
    # then the whole database's outbox is counted (counts only, through the delivery part's function)
    assert _sample_plain(text, "yunshegong_outbox_pending") == 2
    assert _sample_plain(text, "yunshegong_outbox_parked") == 0
    # and the subscriptions of this process (none open) are there too
    assert _sample_plain(text, "yunshegong_subscriptions") == 0


def _sample_plain(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_an_operation_streamed_as_over_the_websocket_is_labelled_for_recording(app_state: AppState) -> None:
    from schema.operation_labels import current_operation_label, record_graphql_operation
    from yunshegong.app import GraphQLApp

    # given the app's schema, run as the websocket transport runs an operation (schema.stream, in its task)
    view = GraphQLApp(app_state)
    stream = await view.schema.stream("query Zhang_San_13812345678 { __typename }")
    results = [result async for result in stream]
    # then the operation ran, and the label its recording will use is its root field
    assert results[0].data == {"__typename": "Query"}
    assert current_operation_label() == "__typename"
    assert record_graphql_operation(0.001, []) == "__typename"
