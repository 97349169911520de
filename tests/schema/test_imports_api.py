"""importRecords through /graphql: a real multipart request (GraphQL multipart request spec) to the app.

The edge (yunshegong/http.py, "uploads") reads a multipart body under its own limit, only from a signed-in
caller (a valid bearer credential), a few at once per process, holding no database connection meanwhile, and
refuses malformed bodies with 400; the mutation answers the import's report, or its file-level errors as
payload errors.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import tracemalloc
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import openpyxl
import orjson
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import create_sessionmaker
from core.models import AuditEntry, Community, HelpRequest
from core.services.context import ServiceContext, Viewer
from core.settings import Settings
from schema.context import AppState
from schema.mutations import imports as import_mutations
from tests.factories import Factory
from tests.schema.helpers import gid
from yunshegong import http
from yunshegong.app import bearer_authenticator, create_app

IMPORT = """
mutation Import($input: ImportInput!) {
  importRecords(input: $input) {
    report {
      kind dryRun rowsRead created updated unchanged duplicatesTotal rejectedTotal rejectedRows
      ignoredColumns ignoredTotal
      duplicates { row column field code }
      rejected { row column field code message }
      mapping { header field }
    }
    errors { field code }
  }
}"""

COMMUNITIES_CSV = (
    "社区名称,所在区县,地址,负责人,负责人电话,户数\n"
    "粉巷社区,碑林区,粉巷5号,王主任,029-88881234,1200\n"
    "大雁塔社区,雁塔,雁塔路1号,李主任,13812345678,800\n"
    "火星社区,火星区,,,,10\n"  # unknown district
    "粉巷社区,碑林区,重复,,,\n"  # the same (district, name) as row 2
    "坏电话社区,碑林区,,张三,12345,\n"  # bad phone
)
AUTH = {"Authorization": "Bearer test"}  # the tests' app authenticates everyone as one viewer


def multipart(
    query: str, variables: dict[str, Any], data: bytes, filename: str = "data.csv", path: str = "variables.input.file"
) -> dict[str, Any]:
    """httpx arguments of a multipart request per the spec: operations (the file as null), map, the file."""
    return {
        "data": {
            "operations": orjson.dumps({"query": query, "variables": variables}).decode(),
            "map": f'{{"0": ["{path}"]}}',
        },
        "files": {"0": (filename, data, "application/octet-stream")},
    }


def import_vars(kind: str = "COMMUNITIES", **extra: Any) -> dict[str, Any]:
    return {"input": {"kind": kind, "file": None, **extra}}


def xlsx(rows: list[list[Any]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


Client = Callable[..., Any]


@pytest.fixture
async def client_as(engine: AsyncEngine, clock: Any) -> AsyncIterator[Callable[..., Any]]:
    """An httpx client on an app whose every request acts for `viewer` (settings adjustable)."""
    opened: list[httpx.AsyncClient] = []

    async def make(viewer: Viewer, **settings: Any) -> httpx.AsyncClient:
        config = Settings(database_url=None, max_page_size=200, **settings)

        async def as_viewer(request: Any, session: Any) -> Viewer:
            return viewer

        state = AppState(settings=config, sessionmaker=create_sessionmaker(engine), clock=clock, authenticate=as_viewer)
        app = create_app(config, engine=engine, state=state)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.aclose()


@pytest.fixture
async def admin_client(client_as: Any, admin: Viewer) -> httpx.AsyncClient:
    return await client_as(dataclasses.replace(admin, label="test admin"))


async def _count(engine: AsyncEngine, model: Any) -> int:
    async with create_sessionmaker(engine)() as session:
        ctx = ServiceContext(session=session, viewer=Viewer(label="t", role="platform_admin"))
        return int(await ctx.session.scalar(select(func.count()).select_from(model)) or 0)


async def _districts(make: Factory) -> None:
    await make.district("碑林区")
    await make.district("雁塔区")


async def test_a_csv_of_communities_lands_with_a_report_naming_each_bad_row(
    admin_client: httpx.AsyncClient, make: Factory, engine: AsyncEngine
) -> None:
    # given the city's districts
    await _districts(make)
    # when a CSV of communities is uploaded
    response = await admin_client.post(
        "/graphql", headers=AUTH, **multipart(IMPORT, import_vars(), COMMUNITIES_CSV.encode("utf-8-sig"))
    )
    # then the good rows land and the report names each bad row by row, column and code
    assert response.status_code == 200, response.text
    payload = response.json()["data"]["importRecords"]
    assert payload["errors"] == []
    report = payload["report"]
    assert (report["kind"], report["dryRun"], report["rowsRead"], report["created"]) == ("COMMUNITIES", False, 5, 2)
    assert [(d["row"], d["code"]) for d in report["duplicates"]] == [(5, "DUPLICATE_ROW")]
    assert sorted((r["row"], r["column"], r["field"], r["code"]) for r in report["rejected"]) == [
        (4, "所在区县", "district", "NOT_FOUND"),
        (6, "负责人电话", "head_phone", "INVALID_PHONE"),
    ]
    assert (report["rejectedTotal"], report["rejectedRows"], report["duplicatesTotal"]) == (2, 2, 1)
    assert (report["ignoredColumns"], report["ignoredTotal"]) == (["户数"], 1)
    assert {"header": "所在区县", "field": "district"} in report["mapping"]
    assert await _count(engine, Community) == 2


async def test_an_xlsx_of_help_requests_is_submitted(
    admin_client: httpx.AsyncClient, make: Factory, engine: AsyncEngine
) -> None:
    # given a community
    await make.community(name="粉巷社区")
    sheet = xlsx(
        [
            ["社区", "需求标题", "需求类别", "紧急程度", "求助人", "联系电话", "人数"],
            ["粉巷社区", "30名结核病患者断药", "药品", "特急", "王主任", 13812345678, 30],
            ["粉巷社区", "独居老人买菜", "食品", "一般", "李奶奶", "13912345678", "abc"],
        ]
    )
    # when it is uploaded as XLSX
    response = await admin_client.post(
        "/graphql", headers=AUTH, **multipart(IMPORT, import_vars("REQUESTS"), sheet, "求助.xlsx")
    )
    # then the good row is submitted and the wrong number is rejected on its column
    payload = response.json()["data"]["importRecords"]
    assert payload["errors"] == [], payload
    report = payload["report"]
    assert report["created"] == 1
    assert [(r["row"], r["column"], r["code"]) for r in report["rejected"]] == [(3, "人数", "INVALID_INPUT")]
    assert await _count(engine, HelpRequest) == 1


async def test_a_dry_run_writes_nothing_and_a_second_import_changes_nothing(
    admin_client: httpx.AsyncClient, make: Factory, engine: AsyncEngine
) -> None:
    await _districts(make)
    body = COMMUNITIES_CSV.encode()
    # when the file is imported as a dry run
    dry = await admin_client.post("/graphql", headers=AUTH, **multipart(IMPORT, import_vars(dryRun=True), body))
    # then the report says what would happen, and nothing is written
    report = dry.json()["data"]["importRecords"]["report"]
    assert (report["dryRun"], report["created"], report["rejectedRows"]) == (True, 2, 2)
    assert await _count(engine, Community) == 0
    # when it is imported for real, twice
    await admin_client.post("/graphql", headers=AUTH, **multipart(IMPORT, import_vars(), body))
    again = await admin_client.post("/graphql", headers=AUTH, **multipart(IMPORT, import_vars(), body))
    # then the second import creates and updates nothing
    report = again.json()["data"]["importRecords"]["report"]
    assert (report["created"], report["updated"], report["unchanged"]) == (0, 0, 2)
    assert await _count(engine, Community) == 2


@pytest.mark.parametrize(
    ("data", "filename", "code"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "picture.csv", "UNSUPPORTED_FILE"),
        (b"", "empty.csv", "EMPTY_FILE"),
        ("社区名称,所在区县\n".encode() + b"x" * 5000, "big.csv", "TOO_LARGE"),
    ],
)
async def test_bad_files_are_payload_errors_on_the_file(
    client_as: Any, admin: Viewer, make: Factory, engine: AsyncEngine, data: bytes, filename: str, code: str
) -> None:
    # given a service accepting files of up to 4,000 bytes
    client = await client_as(admin, import_max_bytes=4000)
    await _districts(make)
    # when a file that is not a spreadsheet, an empty one or one over the limit is uploaded
    response = await client.post("/graphql", headers=AUTH, **multipart(IMPORT, import_vars(), data, filename))
    # then the payload names the file and nothing is written
    assert response.status_code == 200, response.text
    payload = response.json()["data"]["importRecords"]
    assert payload["report"] is None
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [(["input", "file"], code)]
    assert await _count(engine, Community) == 0


async def test_a_mapping_naming_an_unknown_field_is_refused(admin_client: httpx.AsyncClient, make: Factory) -> None:
    await _districts(make)
    variables = import_vars(mapping=[{"header": "户数", "field": "households"}])
    response = await admin_client.post(
        "/graphql", headers=AUTH, **multipart(IMPORT, variables, COMMUNITIES_CSV.encode())
    )
    errors = response.json()["data"]["importRecords"]["errors"]
    assert [e["code"] for e in errors] == ["INVALID_MAPPING"]
    assert errors[0]["field"][:2] == ["input", "mapping"]


async def test_an_explicit_mapping_fills_fields_from_other_headers(
    admin_client: httpx.AsyncClient, make: Factory, engine: AsyncEngine
) -> None:
    await _districts(make)
    csv = "小区叫啥,哪个区\n粉巷社区,碑林区\n".encode()
    variables = import_vars(
        mapping=[{"header": "小区叫啥", "field": "name"}, {"header": "哪个区", "field": "district"}]
    )
    response = await admin_client.post("/graphql", headers=AUTH, **multipart(IMPORT, variables, csv))
    assert response.json()["data"]["importRecords"]["report"]["created"] == 1
    assert await _count(engine, Community) == 1


# -- the edge -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_kwargs",
    [
        # not multipart at all, though it says so
        {"content": b"this is not multipart", "headers": {"content-type": "multipart/form-data; boundary=xyz"}},
        # no boundary
        {"content": b"--x\r\n", "headers": {"content-type": "multipart/form-data"}},
        # the map names a file that was not sent
        {
            "data": {
                "operations": orjson.dumps({"query": IMPORT, "variables": import_vars()}).decode(),
                "map": '{"1": ["variables.input.file"]}',
            },
            "files": {"0": ("a.csv", b"a,b\n1,2\n", "text/csv")},
        },
        # the map points at something that is not a null of the operation
        {
            "data": {
                "operations": orjson.dumps({"query": IMPORT, "variables": import_vars()}).decode(),
                "map": '{"0": ["variables.input.nothing.here"]}',
            },
            "files": {"0": ("a.csv", b"a,b\n1,2\n", "text/csv")},
        },
        # no map at all
        {
            "data": {"operations": orjson.dumps({"query": IMPORT, "variables": import_vars()}).decode()},
            "files": {"0": ("a.csv", b"a,b\n1,2\n", "text/csv")},
        },
        # operations is not JSON
        {"data": {"operations": "{not json", "map": "{}"}, "files": {"0": ("a.csv", b"x", "text/csv")}},
    ],
)
async def test_a_malformed_multipart_request_is_a_400(
    admin_client: httpx.AsyncClient, request_kwargs: dict[str, Any]
) -> None:
    headers = {**AUTH, **request_kwargs.pop("headers", {})}
    response = await admin_client.post("/graphql", headers=headers, **request_kwargs)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_REQUEST"


@pytest.mark.parametrize(
    "headers",
    [
        [(b"graphql-preflight", b"1")],  # a preflight header is no credential
        [(b"apollo-require-preflight", b"1")],
        [],
        [(b"authorization", b"Bearer not-a-token")],  # a credential that is not valid
    ],
)
async def test_multipart_from_a_caller_not_signed_in_is_refused_unread(
    engine: AsyncEngine, app_state: AppState, headers: list[tuple[bytes, bytes]]
) -> None:
    # given the service's own bearer authenticator
    state = dataclasses.replace(app_state)
    state.authenticate = bearer_authenticator(state)
    app = create_app(state.settings, engine=engine, state=state)
    # when a multipart import arrives without a valid credential
    status, body, read = await _raw_asgi(app, [MULTIPART, *headers], [_body(COMMUNITIES_CSV.encode())])
    # then it is refused with 401 before a byte of its body is read
    assert (status, orjson.loads(body)["errors"][0]["extensions"]["code"], read) == (401, "UNAUTHENTICATED", 0)


MULTIPART = (b"content-type", b"multipart/form-data; boundary=b")
_AUTH_HEADERS = [(b"authorization", b"Bearer test")]


def _body(data: bytes, variables: dict[str, Any] | None = None) -> bytes:
    """A multipart body per the spec (boundary "b") carrying the import of `data`."""
    operations = orjson.dumps({"query": IMPORT, "variables": variables or import_vars()}).decode()
    return (
        (
            f'--b\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{operations}\r\n'
            '--b\r\nContent-Disposition: form-data; name="map"\r\n\r\n{"0": ["variables.input.file"]}\r\n'
            '--b\r\nContent-Disposition: form-data; name="0"; filename="c.csv"\r\nContent-Type: text/csv\r\n\r\n'
        ).encode()
        + data
        + b"\r\n--b--\r\n"
    )


async def _raw_asgi(
    app: Any, headers: list[tuple[bytes, bytes]], chunks: list[bytes], *, more: bool = False
) -> tuple[int | None, bytes, int]:
    """Call the app directly: (status, or None if it answered nothing; body; how many body chunks it read).
    `more`: the last chunk promises more, and the client disconnects instead."""
    read = 0

    async def receive() -> dict[str, Any]:
        nonlocal read
        if read < len(chunks):
            read += 1
            return {"type": "http.request", "body": chunks[read - 1], "more_body": more or read < len(chunks)}
        return {"type": "http.disconnect"}

    status, body = await _raw_asgi_with(app, headers, receive)
    return status, body, read


async def test_a_multipart_body_over_the_limit_is_refused_before_it_is_read(
    engine: AsyncEngine, app_state: AppState
) -> None:
    settings = Settings(database_url=None, import_max_bytes=10_000, max_body_bytes=5_000)
    app = create_app(settings, engine=engine, state=dataclasses.replace(app_state, settings=settings))
    base = [(b"content-type", b"multipart/form-data; boundary=b"), (b"authorization", b"Bearer test")]
    # when a multipart body declares more than the upload limit (plus the JSON parts' limit)
    status, body, read = await _raw_asgi(app, [*base, (b"content-length", b"15001")], [b"x" * 100])
    # then it is refused without a byte read
    assert (status, orjson.loads(body)["errors"][0]["extensions"]["code"], read) == (413, "BODY_TOO_LARGE", 0)
    # and a chunked body that grows past the limit stops being read there
    part = b'--b\r\nContent-Disposition: form-data; name="0"; filename="a.csv"\r\n\r\n'
    status, body, read = await _raw_asgi(app, base, [part, *[b"x" * 4000] * 10])
    assert (status, orjson.loads(body)["errors"][0]["extensions"]["code"]) == (413, "BODY_TOO_LARGE")
    assert read < 11
    # while the JSON limit stays as it was for JSON
    json_headers = [(b"content-type", b"application/json"), (b"content-length", b"6000")]
    status, body, read = await _raw_asgi(app, json_headers, [b"{}"])
    assert (status, read) == (413, 0)


async def test_a_file_sent_inside_json_is_refused(admin_client: httpx.AsyncClient) -> None:
    response = await admin_client.post(
        "/graphql", json={"query": IMPORT, "variables": {"input": {"kind": "COMMUNITIES", "file": "a,b\n1,2"}}}
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


async def test_an_ordinary_json_request_still_works(admin_client: httpx.AsyncClient) -> None:
    response = await admin_client.post(
        "/graphql", json={"query": "{ importColumns(kind: COMMUNITIES) { field required aliases } }"}
    )
    assert response.status_code == 200
    columns = {c["field"]: c for c in response.json()["data"]["importColumns"]}
    assert columns["name"]["required"]
    assert "社区名称" in columns["name"]["aliases"]
    assert not columns["street"]["required"]


# -- who may ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["volunteer", "counselor"])
async def test_a_caller_who_may_import_nothing_is_refused_its_body_unread(
    engine: AsyncEngine, owner_engine: AsyncEngine, app_state: AppState, home_org: int, make: Factory, role: str
) -> None:
    # given a signed-in account whose role may import no kind at all, on a service taking one upload at once
    await _districts(make)
    caller = Viewer(label="no importer", role=role, organization_id=home_org, volunteer_id=1)
    app = _reading_app(engine, app_state, caller, import_upload_concurrency=1)
    for kind in ("COMMUNITIES", "REQUESTS", "VOLUNTEERS"):
        # when it sends an upload
        body = _body(COMMUNITIES_CSV.encode(), import_vars(kind))
        status, answer, read = await _raw_asgi(app, [MULTIPART, *_AUTH_HEADERS], [body[:100], body[100:]])
        # then it is refused before a byte of the body is read (so it never holds an upload slot)
        assert (status, orjson.loads(answer)["errors"][0]["extensions"]["code"], read) == (403, "FORBIDDEN", 0)
    # and nothing is written but the refusals, kept as a refused mutation's are
    assert await _count(engine, Community) == 0
    assert await _denied(owner_engine) == [("upload", "no importer")] * 3


async def test_the_upload_gate_lets_through_a_role_that_may_import_some_kind(
    engine: AsyncEngine, app_state: AppState, home_org: int, make: Factory
) -> None:
    # given a community head (may submit requests, not manage communities)
    await _districts(make)
    head = Viewer(label="head", role="community_head", organization_id=home_org, community_id=1)
    app = _reading_app(engine, app_state, head)
    # when it uploads communities
    status, answer, _read = await _raw_asgi(app, [MULTIPART, *_AUTH_HEADERS], [_body(COMMUNITIES_CSV.encode())])
    # then the body is read and the mutation itself refuses the kind
    assert status == 200
    assert [e["code"] for e in orjson.loads(answer)["data"]["importRecords"]["errors"]] == ["FORBIDDEN"]


async def _denied(owner_engine: AsyncEngine) -> list[tuple[str, str]]:
    # As tests/schema/test_auth.py reads the audit trail (no role's view filters it).
    async with owner_engine.connect() as conn:
        rows = await conn.execute(
            select(AuditEntry.operation, AuditEntry.actor).where(AuditEntry.action == "denied").order_by(AuditEntry.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_another_organisations_administrator_is_forbidden(
    client_as: Any, home_org: int, make: Factory, engine: AsyncEngine
) -> None:
    # given an administrator of another organisation
    await _districts(make)
    other = await make.organization_using("counseling", "别的机构")
    client = await client_as(Viewer(label="b", role="organization_admin", organization_id=other.id))
    # when they import into ours
    for kind in ("COMMUNITIES", "REQUESTS"):
        variables = import_vars(kind, organizationId=gid("Organization", home_org))
        response = await client.post("/graphql", headers=AUTH, **multipart(IMPORT, variables, COMMUNITIES_CSV.encode()))
        # then they are refused and nothing is written
        errors = response.json()["data"]["importRecords"]["errors"]
        assert [(e["field"], e["code"]) for e in errors] == [(["input", "organizationId"], "FORBIDDEN")], kind
    assert await _count(engine, Community) == 0


async def test_an_import_waiting_too_long_for_a_slot_is_unavailable(
    admin_client: httpx.AsyncClient, make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an import holding the process's only slot, and a short wait for one
    await _districts(make)
    monkeypatch.setattr(import_mutations, "WAIT_SECONDS", 0.2)
    async with import_mutations.import_slot(1):
        # when another arrives
        response = await admin_client.post(
            "/graphql", headers=AUTH, **multipart(IMPORT, import_vars(), COMMUNITIES_CSV.encode())
        )
    # then it is told to retry instead of waiting on
    assert [e["code"] for e in response.json()["data"]["importRecords"]["errors"]] == ["UNAVAILABLE"]


async def test_imports_beyond_the_waiting_room_are_unavailable_at_once(
    admin_client: httpx.AsyncClient, make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an import holding the slot and no room to wait
    await _districts(make)
    monkeypatch.setattr(import_mutations, "MAX_WAITING", 0)
    async with import_mutations.import_slot(1):
        response = await admin_client.post(
            "/graphql", headers=AUTH, **multipart(IMPORT, import_vars(), COMMUNITIES_CSV.encode())
        )
    assert [e["code"] for e in response.json()["data"]["importRecords"]["errors"]] == ["UNAVAILABLE"]


async def test_imports_at_once_wait_for_each_other(admin_client: httpx.AsyncClient, make: Factory) -> None:
    # given several imports sent at once (one slot)
    await _districts(make)
    bodies = [f"社区名称,所在区县\n社区{i},碑林区\n".encode() for i in range(4)]
    responses = await asyncio.gather(
        *(admin_client.post("/graphql", headers=AUTH, **multipart(IMPORT, import_vars(), b)) for b in bodies)
    )
    # then each one runs in turn
    assert [r.json()["data"]["importRecords"]["report"]["created"] for r in responses] == [1, 1, 1, 1]


# -- what an upload holds while it waits ----------------------------------------------------------------------------


class _Stalled:
    """An upload whose body stops before its last bytes until `resume` is set (a slow client)."""

    def __init__(self, app: Any, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.chunks = [body[:-10], body[-10:]]
        self.read = 0
        self.reading = asyncio.Event()  # the first chunk was read: the body is being parsed
        self.resume = asyncio.Event()
        self.task = asyncio.ensure_future(_raw_asgi_with(app, headers, self.receive))

    async def receive(self) -> dict[str, Any]:
        if self.read == 1:
            self.reading.set()
            await self.resume.wait()
        if self.read < len(self.chunks):
            self.read += 1
            return {"type": "http.request", "body": self.chunks[self.read - 1], "more_body": self.read < 2}
        await asyncio.Event().wait()  # a client that sent everything just waits for the answer
        raise AssertionError("unreachable")


async def _raw_asgi_with(app: Any, headers: list[tuple[bytes, bytes]], receive: Any) -> tuple[int | None, bytes]:
    """Call the app directly with the given receive: (status, or None if it answered nothing; body)."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }
    await app(scope, receive, send)
    status = next((m["status"] for m in sent if m["type"] == "http.response.start"), None)
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def _reading_app(engine: AsyncEngine, app_state: AppState, viewer: Viewer, **settings: Any) -> Any:
    """An app whose token check reads on the request's session, as the real one does (its transaction begun)."""
    config = Settings(database_url=None, max_page_size=200, **settings)

    async def checked(request: Any, session: Any) -> Viewer:
        await session.execute(text("SELECT 1"))
        return viewer

    state = dataclasses.replace(app_state, settings=config, authenticate=checked)
    return create_app(config, engine=engine, state=state)


async def test_uploads_past_the_process_limit_are_answered_429_unread(
    engine: AsyncEngine, app_state: AppState, admin: Viewer, make: Factory
) -> None:
    # given a service handling one upload at once, busy with a slow one
    await _districts(make)
    app = _reading_app(engine, app_state, admin, import_upload_concurrency=1)
    headers = [MULTIPART, *[(k.lower().encode(), v.encode()) for k, v in AUTH.items()]]
    slow = _Stalled(app, headers, _body("社区名称,所在区县\n慢社区,碑林区\n".encode()))
    try:
        await asyncio.wait_for(slow.reading.wait(), 10)
        # when another upload arrives
        status, body, read = await _raw_asgi(app, headers, [_body(COMMUNITIES_CSV.encode())])
        # then it is told to retry, its body unread
        assert (status, orjson.loads(body)["errors"][0]["extensions"]["code"], read) == (429, "UNAVAILABLE", 0)
    finally:
        slow.resume.set()
        finished = await _finished([slow.task])
    # and once the slow one is done, uploads are taken again
    assert finished[0][0] == 200
    status, body, read = await _raw_asgi(app, headers, [_body("社区名称,所在区县\n快社区,碑林区\n".encode())])
    assert status == 200
    assert orjson.loads(body)["data"]["importRecords"]["report"]["created"] == 1


async def test_an_upload_holds_no_connection_while_its_body_streams_in_or_it_waits_for_a_slot(
    engine: AsyncEngine, app_state: AppState, admin: Viewer, make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given uploads whose token check began a transaction on the request's connection
    await _districts(make)
    app = _reading_app(engine, app_state, admin)
    headers = [MULTIPART, *[(k.lower().encode(), v.encode()) for k, v in AUTH.items()]]
    pool = engine.sync_engine.pool
    idle = pool.checkedout()  # type: ignore[attr-defined]
    # when one streams its body slowly
    slow = _Stalled(app, headers, _body("社区名称,所在区县\n慢社区,碑林区\n".encode()))
    try:
        await asyncio.wait_for(slow.reading.wait(), 10)
        # then it holds no pooled connection meanwhile
        assert pool.checkedout() == idle  # type: ignore[attr-defined]
    finally:
        slow.resume.set()
        finished = await _finished([slow.task])
    assert finished[0][0] == 200
    # when several wait for the one import slot
    monkeypatch.setattr(import_mutations, "WAIT_SECONDS", 30)
    waiting: list[asyncio.Future[tuple[int, bytes]]] = []
    try:
        async with import_mutations.import_slot(1):
            slots = import_mutations._slots[asyncio.get_running_loop()]
            waiting = [
                asyncio.ensure_future(
                    _raw_asgi_with(app, headers, _once(_body(f"社区名称,所在区县\n社区{i},碑林区\n".encode())))
                )
                for i in range(3)
            ]
            for _ in range(500):
                await asyncio.sleep(0.01)
                if slots.waiting == 3:
                    break
            # then none of them holds a connection while it waits
            assert slots.waiting == 3
            assert pool.checkedout() == idle  # type: ignore[attr-defined]
    finally:
        results = await _finished(waiting)
    # and each runs once the slot is free
    assert [orjson.loads(body)["data"]["importRecords"]["report"]["created"] for _, body in results] == [1, 1, 1]


async def _finished(tasks: list[asyncio.Future[tuple[int, bytes]]]) -> list[tuple[int, bytes]]:
    """The tasks' results; whatever happened, none is left running past the test."""
    try:
        return await asyncio.wait_for(asyncio.gather(*tasks), 30)
    finally:
        for task in tasks:
            task.cancel()


def _once(body: bytes) -> Any:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return receive


async def test_a_file_is_held_in_memory_once() -> None:
    # given a multipart body carrying a file of 8 MB
    size = 8 * 1024 * 1024
    body = _body(b"x" * size)

    async def stream() -> Any:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    headers = {"content-type": "multipart/form-data; boundary=b"}
    # when it is parsed
    tracemalloc.start()
    try:
        request = await http.multipart_operations(headers, stream(), max_json_bytes=100_000)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # then the file came through whole, and was never held twice (its bytes handed over, not copied)
    assert not isinstance(request, list)
    assert len(request.variables["input"]["file"].data) == size  # type: ignore[index]
    assert peak < 1.5 * size


# -- what one upload may cost --------------------------------------------------------------------------------------


async def test_an_upload_body_too_slow_to_arrive_is_answered_408_and_frees_its_slot(
    engine: AsyncEngine, app_state: AppState, admin: Viewer, make: Factory
) -> None:
    # given a service taking one upload at once, with a short deadline for its body
    await _districts(make)
    app = _reading_app(engine, app_state, admin, import_upload_concurrency=1, import_upload_seconds=0.3)
    headers = [MULTIPART, *_AUTH_HEADERS]
    # when a client sends most of its body and then nothing more
    slow = _Stalled(app, headers, _body("社区名称,所在区县\n慢社区,碑林区\n".encode()))
    try:
        finished = await _finished([slow.task])
    finally:
        slow.resume.set()
    # then it is answered 408, nothing imported
    status, body = finished[0]
    assert (status, orjson.loads(body)["errors"][0]["extensions"]["code"]) == (408, "INVALID_REQUEST")
    assert await _count(engine, Community) == 0
    # and the slot it held is free again
    status, body, _read = await _raw_asgi(app, headers, [_body("社区名称,所在区县\n快社区,碑林区\n".encode())])
    assert status == 200
    assert orjson.loads(body)["data"]["importRecords"]["report"]["created"] == 1


def _multipart_body(operations: object, file_map: object, files: dict[str, bytes]) -> bytes:
    parts = [
        f'--b\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{orjson.dumps(operations).decode()}\r\n',
        f'--b\r\nContent-Disposition: form-data; name="map"\r\n\r\n{orjson.dumps(file_map).decode()}\r\n',
    ]
    body = "".join(parts).encode()
    for name, data in files.items():
        body += (
            (
                f'--b\r\nContent-Disposition: form-data; name="{name}"; filename="c.csv"\r\n'
                "Content-Type: text/csv\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    return body + b"--b--\r\n"


async def test_a_multipart_batch_is_refused(
    engine: AsyncEngine, app_state: AppState, admin: Viewer, make: Factory
) -> None:
    # given a batch of two imports, both mapped to one file
    await _districts(make)
    app = _reading_app(engine, app_state, admin)
    batch = [{"query": IMPORT, "variables": import_vars()}, {"query": IMPORT, "variables": import_vars()}]
    body = _multipart_body(batch, {"0": ["0.variables.input.file", "1.variables.input.file"]}, {"0": b"a"})
    # when it is sent
    status, answer, _read = await _raw_asgi(app, [MULTIPART, *_AUTH_HEADERS], [body])
    # then it is refused as a request; nothing is imported
    assert (status, orjson.loads(answer)["errors"][0]["extensions"]["code"]) == (400, "INVALID_REQUEST")
    assert await _count(engine, Community) == 0


async def test_a_request_imports_one_file_once(
    engine: AsyncEngine, app_state: AppState, admin: Viewer, make: Factory
) -> None:
    await _districts(make)
    app = _reading_app(engine, app_state, admin)
    headers = [MULTIPART, *_AUTH_HEADERS]
    csv = "社区名称,所在区县\n一社区,碑林区\n".encode()
    # when one operation imports its file under two aliases
    twice = (
        "mutation($input: ImportInput!) { a: importRecords(input: $input) { report { created } errors { code } } "
        "b: importRecords(input: $input) { report { created } errors { field code } } }"
    )
    body = _multipart_body({"query": twice, "variables": import_vars()}, {"0": ["variables.input.file"]}, {"0": csv})
    status, answer, _read = await _raw_asgi(app, headers, [body])
    # then the first imports it and the second is refused, the file not read again
    data = orjson.loads(answer)["data"]
    assert status == 200
    assert (data["a"]["report"]["created"], data["a"]["errors"]) == (1, [])
    assert (data["b"]["report"], data["b"]["errors"]) == (None, [{"field": ["input", "file"], "code": "INVALID_INPUT"}])
    # and a request carrying a second file part is refused as a request
    two_files = _multipart_body(
        {
            "query": twice.replace("$input", "$i")
            .replace("($i: ImportInput!)", "($i: ImportInput!, $j: ImportInput!)")
            .replace("b: importRecords(input: $i)", "b: importRecords(input: $j)"),
            "variables": {"i": import_vars()["input"], "j": import_vars()["input"]},
        },
        {"0": ["variables.i.file"], "1": ["variables.j.file"]},
        {"0": csv, "1": csv},
    )
    status, answer, _read = await _raw_asgi(app, headers, [two_files])
    assert (status, orjson.loads(answer)["errors"][0]["extensions"]["code"]) == (400, "INVALID_REQUEST")
    assert await _count(engine, Community) == 1


async def test_a_client_gone_mid_upload_is_no_error(
    engine: AsyncEngine, app_state: AppState, admin: Viewer, make: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    # given a service taking one upload at once
    await _districts(make)
    app = _reading_app(engine, app_state, admin, import_upload_concurrency=1)
    headers = [MULTIPART, *_AUTH_HEADERS]
    body = _body("社区名称,所在区县\n慢社区,碑林区\n".encode())
    internal = _internal_errors()
    # when a client disconnects halfway through its body
    with caplog.at_level(logging.INFO, logger="yunshegong"):
        _status, _answer, read = await _raw_asgi(app, headers, [body[:50]], more=True)
    # then nothing is logged as an error nor counted as an internal one
    assert read == 1
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert _internal_errors() == internal
    # and the upload slot is free again
    status, answer, _read = await _raw_asgi(app, headers, [_body("社区名称,所在区县\n快社区,碑林区\n".encode())])
    assert status == 200
    assert orjson.loads(answer)["data"]["importRecords"]["report"]["created"] == 1


def _internal_errors() -> float:
    from core.observability import metrics

    return sum(
        sample.value
        for family in metrics.ERRORS.collect()
        for sample in family.samples
        if sample.labels.get("code") == "INTERNAL_ERROR" and sample.name.endswith("_total")
    )
