"""GET /export/{name}.csv|.xlsx: the API's lists as spreadsheets, as the caller sees them (yunshegong/exports.py).

Given / when / then against the real endpoint (in-process, real bearer sign-in, row-level security, the
built-in plugins)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openpyxl
import pytest
from argon2 import PasswordHasher
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import create_sessionmaker
from core.i18n import translate
from core.plugins import build_plugin_host
from core.services import auth
from core.settings import Settings
from schema.context import AppState
from yunshegong.app import bearer_authenticator, create_app
from yunshegong.testing import Client, Harness

FORMULAS = ['=HYPERLINK("http://x","y")', "+1", "-1+1", "@SUM(A1:A2)", "\tTAB"]
# What the services store of them (names are trimmed, so a leading tab cannot be planted through the API; the
# writers' own tests below cover it), plus a full-width sign.
STORED_FORMULAS = [*FORMULAS[:4], "＝1+1"]


def _harness(engine: AsyncEngine, clock: Any, settings: Settings) -> tuple[Harness, Any, httpx.AsyncClient]:
    host = build_plugin_host(entry_points=False)
    state = AppState(settings=settings, sessionmaker=create_sessionmaker(engine), clock=clock, host=host)
    state.authenticate = bearer_authenticator(state)
    app = create_app(settings, engine=engine, state=state)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    return Harness(host, engine, http), app, http


@pytest.fixture
async def world(engine: AsyncEngine, clock: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Harness, Any]]:
    """The service with a small export page (3 rows) and one download at a time."""
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    settings = Settings(login_max_failures=1000, export_page_size=3, export_concurrency=1)
    kit, app, http = _harness(engine, clock, settings)
    async with http:
        yield kit, app


async def download(kit: Harness, caller: Client | None, path: str, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {caller.token}"} if caller is not None else {}
    return await kit.http.get(path, params=params, headers=headers)


def read_csv(response: httpx.Response) -> list[list[str]]:
    body = response.content
    assert body.startswith("\ufeff".encode())  # the BOM: Excel reads the UTF-8 as such
    assert b"\r\n" in body
    assert b"\n" not in body.replace(b"\r\n", b"")
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def read_xlsx(response: httpx.Response) -> list[tuple[Any, ...]]:
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    return list(book.worksheets[0].iter_rows(values_only=True))


def code(response: httpx.Response) -> str:
    return response.json()["errors"][0]["extensions"]["code"]


async def offer(worker: Client, request: int, *volunteers: int) -> None:
    """The request verified and offered to each volunteer, by an administrator of its organisation."""
    from schema import ids

    verify = "mutation($id: ID!) { verifyHelpRequest(input: {id: $id}) { errors { code } } }"
    offer = (
        "mutation($r: ID!, $v: ID!) { offerAssignment(input: {requestId: $r, volunteerId: $v}) { errors { code } } }"
    )
    rid = ids.encode("HelpRequest", request)
    assert (await worker(verify, {"id": rid}))["verifyHelpRequest"]["errors"] == []
    for volunteer in volunteers:
        answer = await worker(offer, {"r": rid, "v": ids.encode("Volunteer", volunteer)})
        assert answer["offerAssignment"]["errors"] == []


async def two_orgs(kit: Harness) -> dict[str, int]:
    a, b = await kit.organization(plugins=["supplies"]), await kit.organization()
    return {"a": a, "b": b, "community_a": await kit.community(a), "community_b": await kit.community(b)}


# -- content, masking, isolation ----------------------------------------------------------------------------------


async def test_csv_of_volunteers_as_an_admin_has_their_own_rows_in_full_and_no_other_organisations(
    world: tuple[Harness, Any],
) -> None:
    # given volunteers in two organisations
    kit, _app = world
    orgs = await two_orgs(kit)
    await kit.volunteer(orgs["a"], "甲一", phone="13900000001")
    await kit.volunteer(orgs["a"], "甲二", phone="13900000002")
    await kit.volunteer(orgs["b"], "乙一", phone="13900000009")
    admin = await kit.sign_in("organization_admin", orgs["a"])
    # when A's administrator downloads the volunteers
    response = await download(kit, admin, "/export/volunteers.csv", lang="zh")
    # then a CSV attachment with a Chinese header, A's volunteers with their phones, none of B's
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith("attachment;")
    assert "filename*=UTF-8''" in response.headers["content-disposition"]
    rows = read_csv(response)
    zh = [translate(h, locale="zh_CN") for h in ("Name", "Phone")]
    assert zh != ["Name", "Phone"]  # positive control: the catalog translates both headers
    assert rows[0][:2] == zh
    assert rows[0][1] == "手机号"
    by_name = {r[0]: r for r in rows[1:]}
    assert {"甲一", "甲二"} <= set(by_name)  # positive control: own rows
    assert by_name["甲一"][1] == "13900000001"
    assert "乙一" not in by_name
    assert all("13900000009" not in r for r in rows)


async def test_english_header_with_lang_en(world: tuple[Harness, Any]) -> None:
    kit, _app = world
    orgs = await two_orgs(kit)
    admin = await kit.sign_in("organization_admin", orgs["a"])
    rows = read_csv(await download(kit, admin, "/export/volunteers.csv", lang="en"))
    assert rows[0][:3] == ["Name", "Phone", "Mode"]


async def test_phones_are_masked_for_a_role_that_sees_them_masked(world: tuple[Harness, Any]) -> None:
    # given a volunteer of A offered a request of A's community, and the community's head (who sees the
    # volunteers working on their requests, with phones masked, in the API)
    kit, _app = world
    orgs = await two_orgs(kit)
    volunteer = await kit.volunteer(orgs["a"], "甲一", phone="13900000001")
    request = await kit.help_request(orgs["community_a"])
    await offer(await kit.sign_in("organization_admin", orgs["a"]), request, volunteer)
    head = await kit.sign_in("community_head", orgs["a"], community_id=orgs["community_a"])
    api = await head("{ volunteers(first: 50) { nodes { name phone } } }")
    # when the head downloads the volunteers, in both formats
    csv_rows = read_csv(await download(kit, head, "/export/volunteers.csv"))
    xlsx_rows = read_xlsx(await download(kit, head, "/export/volunteers.xlsx"))
    # then the phone is masked exactly as the API masks it
    shown = {n["name"]: n["phone"] for n in api["volunteers"]["nodes"]}
    assert shown["甲一"] == "139****0001"
    assert {r[0]: r[1] for r in csv_rows[1:]}["甲一"] == "139****0001"
    assert {r[0]: r[1] for r in xlsx_rows[1:]}["甲一"] == "139****0001"


async def test_help_requests_with_a_filter_variable(world: tuple[Harness, Any]) -> None:
    kit, _app = world
    orgs = await two_orgs(kit)
    await kit.help_request(orgs["community_a"], title="送药", requester_phone="13811112222")
    await kit.help_request(orgs["community_a"], title="买菜", category=_category("FOOD"))
    await kit.help_request(orgs["community_b"], title="乙的请求")
    admin = await kit.sign_in("organization_admin", orgs["a"])
    everything = read_csv(await download(kit, admin, "/export/helpRequests.csv", lang="en"))
    assert sorted(r[0] for r in everything[1:]) == ["买菜", "送药"]
    assert {r[0]: r[7] for r in everything[1:]}["送药"] == "13811112222"
    filtered = read_csv(
        await download(
            kit, admin, "/export/helpRequests.csv", variables=json.dumps({"filter": {"categories": ["MEDICINE"]}})
        )
    )
    assert [r[0] for r in filtered[1:]] == ["送药"]


def _category(name: str) -> Any:
    from core.vocab import RequestCategory

    return RequestCategory[name]


async def test_assignments_are_flattened_one_row_per_assignment(world: tuple[Harness, Any]) -> None:
    # given a request with two offers and one without any
    kit, _app = world
    orgs = await two_orgs(kit)
    first, second = await kit.volunteer(orgs["a"], "甲一"), await kit.volunteer(orgs["a"], "甲二")
    request = await kit.help_request(orgs["community_a"], title="送药", volunteers_needed=2)
    await kit.help_request(orgs["community_a"], title="无人")
    worker = await kit.sign_in("organization_admin", orgs["a"])
    await offer(worker, request, first, second)
    # when the assignments are downloaded
    rows = read_csv(await download(kit, worker, "/export/assignments.csv", lang="en"))
    # then one row per assignment, with its request's title beside it, its status and the request's urgency in
    # the caller's words
    assert rows[0][:2] == ["Help request", "Urgency"]
    assert sorted((r[0], r[1], r[4], r[6]) for r in rows[1:]) == [
        ("送药", "high", "甲一", "offered"),
        ("送药", "high", "甲二", "offered"),
    ]
    # and in Chinese for a Chinese caller, in both formats
    offered, high = translate("offered", locale="zh_CN"), translate("high", locale="zh_CN")
    assert offered == "已派单"
    zh_csv = read_csv(await download(kit, worker, "/export/assignments.csv", lang="zh"))
    zh_xlsx = read_xlsx(await download(kit, worker, "/export/assignments.xlsx", lang="zh"))
    assert {(r[1], r[6]) for r in zh_csv[1:]} == {(high, offered)}
    assert {(r[1], r[6]) for r in zh_xlsx[1:]} == {(high, offered)}


# -- formula injection -------------------------------------------------------------------------------------------


async def test_formulas_are_neutralised_in_csv_and_xlsx_while_numbers_stay_numbers(
    world: tuple[Harness, Any],
) -> None:
    # given volunteers whose names a spreadsheet would run as formulas
    kit, _app = world
    orgs = await two_orgs(kit)
    for n, name in enumerate(STORED_FORMULAS):
        await kit.volunteer(orgs["a"], name, phone=f"1390000010{n}")
    admin = await kit.sign_in("organization_admin", orgs["a"])
    # when they are downloaded as CSV and XLSX
    csv_rows = read_csv(await download(kit, admin, "/export/volunteers.csv"))
    xlsx_rows = read_xlsx(await download(kit, admin, "/export/volunteers.xlsx"))
    book = openpyxl.load_workbook(io.BytesIO((await download(kit, admin, "/export/volunteers.xlsx")).content))
    # then in the CSV (no types) each starts with a quote
    assert sorted(r[0] for r in csv_rows[1:]) == sorted("'" + name for name in STORED_FORMULAS)
    # and in the XLSX each is a string cell holding exactly the name (nothing evaluates a string cell; no
    # quote to see), marked quotePrefix (Excel's mark of text typed as '=…, kept as text when edited)
    assert sorted(r[0] for r in xlsx_rows[1:]) == sorted(STORED_FORMULAS)
    sheet = book.worksheets[0]
    names = [row[0] for row in sheet.iter_rows(min_row=2)]
    assert {(c.value, c.data_type, c.quotePrefix) for c in names} == {(n, "s", True) for n in STORED_FORMULAS}
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
    # while the numbers (hours served, active assignments) are numbers
    hours_column = [c.value for c in sheet[2]]
    assert hours_column[8] == 0
    assert isinstance(hours_column[8], int)
    assert hours_column[9] == 0
    assert isinstance(hours_column[9], int)


def test_cell_guard() -> None:
    from yunshegong.cell_guard import neutralise

    assert [neutralise(v) for v in FORMULAS] == ["'" + v for v in FORMULAS]
    assert neutralise("\rx") == "'\rx"
    assert neutralise("＝1+1") == "'＝1+1"
    assert neutralise("＋1") == "'＋1"
    assert neutralise("－1") == "'－1"
    assert neutralise("＠x") == "'＠x"
    assert neutralise("王阿姨") == "王阿姨"
    assert neutralise("") == ""
    assert neutralise("a=1") == "a=1"


def test_xlsx_writer_types_text_as_text_and_numbers_and_dates_as_such() -> None:
    from datetime import date, datetime

    from yunshegong.exports import XlsxBook, typed

    kinds = ["text", "text", "number", "datetime", "date"]
    book = XlsxBook("表=1", ["=名", "b", "c", "d", "e"], kinds)
    values = ["=1+1", "\tx\x01", "-2", "2021-07-21T10:30:00.000+08:00", "2021-07-22"]
    book.extend([[typed(v, k) for v, k in zip(values, kinds, strict=True)]])
    sheet = openpyxl.load_workbook(book.save()).worksheets[0]
    header, row = list(sheet.iter_rows())
    assert header[0].value == "=名"
    assert header[0].data_type == "s"  # a header is never a formula
    assert header[0].quotePrefix
    assert [c.value for c in row][:3] == ["=1+1", "\tx", -2]
    assert isinstance(row[3].value, datetime)
    assert [row[3].value.isoformat(), row[4].value.isoformat()] == ["2021-07-21T10:30:00", "2021-07-22T00:00:00"]
    assert [c.data_type for c in row][:3] == ["s", "s", "n"]
    assert [c.quotePrefix for c in row][:3] == [True, True, False]
    assert not header[1].quotePrefix
    assert isinstance(typed("2021-07-22", "date"), date)


def test_numbers_are_typed_and_bad_numbers_become_text_neutralised_in_csv() -> None:
    from decimal import Decimal

    from yunshegong.exports import csv_lines, typed

    assert typed(-3, "number") == -3
    assert typed("-1.5", "number") == Decimal("-1.5")
    assert typed("2", "number") == 2
    assert typed("-1+1", "number") == "-1+1"
    assert typed(["a", "b"], "text") == "a、b"
    row = [typed(v, k) for v, k in (("-1+1", "number"), ("-1", "text"), (-2, "number"), ("-1.5", "number"))]
    assert list(csv.reader(io.StringIO(csv_lines([row])))) == [["'-1+1", "'-1", "-2", "-1.5"]]


def test_csv_quotes_every_field_so_a_semicolon_locale_cannot_split_a_formula_out() -> None:
    from yunshegong.exports import csv_lines

    # given a text with a `;` followed by a formula (what a `;`-separated spreadsheet would cut it at)
    line = csv_lines([["x;=1+1", "王阿姨", 3]])
    # then every field is quoted, and read with `;` as the separator no cell starts with "="
    assert line == '"x;=1+1","王阿姨","3"\r\n'
    cells = next(csv.reader(io.StringIO(line), delimiter=";"))
    assert not any(c.startswith("=") for c in cells)


# -- refusals ---------------------------------------------------------------------------------------------------


async def test_refusals(world: tuple[Harness, Any]) -> None:
    kit, _app = world
    orgs = await two_orgs(kit)
    admin_a = await kit.sign_in("organization_admin", orgs["a"])
    admin_b = await kit.sign_in("organization_admin", orgs["b"])
    volunteer = await kit.sign_in("volunteer", orgs["a"])
    # no credential: 401
    response = await download(kit, None, "/export/volunteers.csv")
    assert response.status_code == 401
    assert code(response) == "UNAUTHENTICATED"
    # a credential that is not valid: 401
    response = await kit.http.get("/export/volunteers.csv", headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 401
    assert code(response) == "UNAUTHENTICATED"
    # an unknown export or format: 404
    for path in ("/export/nothing.csv", "/export/volunteers.pdf"):
        response = await download(kit, admin_a, path)
        assert response.status_code == 404
        assert code(response) == "NOT_FOUND"
    # a plugin's export where the organisation has not enabled the plugin: 404 (positive control: A may)
    response = await download(kit, admin_b, "/export/suppliesStock.csv")
    assert response.status_code == 404
    assert code(response) == "NOT_FOUND"
    assert (await download(kit, admin_a, "/export/suppliesStock.csv")).status_code == 200
    # a list the caller may not read: the API's FORBIDDEN, as a JSON error with 403 before any byte of a file
    response = await download(kit, volunteer, "/export/suppliesStock.xlsx")
    assert response.status_code == 403
    assert code(response) == "FORBIDDEN"
    assert response.headers["content-type"].startswith("application/json")
    # bad variables: not JSON, not an object, not the export's, of the wrong type
    for variables in ("{", "[1]", json.dumps({"first": 5}), json.dumps({"filter": {"categories": ["NOPE"]}})):
        response = await download(kit, admin_a, "/export/helpRequests.csv", variables=variables)
        assert response.status_code == 400, (variables, response.text)
        assert code(response) in ("INVALID_REQUEST", "INVALID_INPUT", "GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT")


# -- streaming ---------------------------------------------------------------------------------------------------


class RawCall:
    """One GET through the ASGI app by hand: every body chunk is handed to `on_chunk` before the app may go
    on (a client reading slowly), and the app sees no disconnect until the call is over."""

    def __init__(self, app: Any, path: str, token: str) -> None:
        self.app, self.path, self.token = app, path, token
        self.status: int | None = None
        self.chunks: list[bytes] = []
        self.done = asyncio.Event()

    async def run(self, on_chunk: Any) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": self.path,
            "raw_path": self.path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"test"), (b"authorization", f"Bearer {self.token}".encode())],
            "client": ("127.0.0.1", 50000),
            "server": ("test", 80),
        }
        sent_request = False

        async def receive() -> dict[str, Any]:
            nonlocal sent_request
            if not sent_request:
                sent_request = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await self.done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]
            elif message["type"] == "http.response.body" and message.get("body"):
                self.chunks.append(message["body"])
                await on_chunk(len(self.chunks))

        try:
            await self.app(scope, receive, send)
        finally:
            self.done.set()


async def test_pages_are_streamed_each_in_its_own_transaction_none_open_while_the_client_reads(
    world: tuple[Harness, Any], owner_engine: AsyncEngine
) -> None:
    # given 8 volunteers (pages of 3: three pages)
    kit, app = world
    orgs = await two_orgs(kit)
    for n in range(8):
        await kit.volunteer(orgs["a"], f"志愿者{n}")
    admin = await kit.sign_in("organization_admin", orgs["a"])
    open_transactions: list[int] = []

    async def while_client_holds_the_chunk(_index: int) -> None:
        # then while the client has not read on, the app role holds no transaction open
        async with owner_engine.connect() as conn:
            found = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE usename = 'yunshegong_app' "
                    "AND state LIKE 'idle in transaction%'"
                )
            )
        open_transactions.append(int(found or 0))

    # when the CSV is downloaded by a client that reads chunk by chunk
    call = RawCall(app, "/export/volunteers.csv", admin.token or "")
    await call.run(while_client_holds_the_chunk)
    # then three pages came, one chunk each (the header with the first), every row once, and no transaction was
    # open at any chunk
    assert call.status == 200
    assert len(call.chunks) == 3
    rows = list(csv.reader(io.StringIO(b"".join(call.chunks).decode("utf-8-sig"), newline="")))
    assert sorted(r[0] for r in rows[1:]) == sorted(f"志愿者{n}" for n in range(8))
    assert open_transactions == [0, 0, 0]


async def test_one_download_too_many_is_told_to_retry(world: tuple[Harness, Any]) -> None:
    # given a download in progress (one at a time in this world), its client not reading on
    kit, app = world
    orgs = await two_orgs(kit)
    for n in range(4):
        await kit.volunteer(orgs["a"], f"志愿者{n}")
    admin = await kit.sign_in("organization_admin", orgs["a"])
    reading = asyncio.Event()
    go_on = asyncio.Event()

    async def hold(_index: int) -> None:
        reading.set()
        await go_on.wait()

    call = RawCall(app, "/export/volunteers.csv", admin.token or "")
    first = asyncio.create_task(call.run(hold))
    await asyncio.wait_for(reading.wait(), 30)
    try:
        # when another download is asked for
        response = await download(kit, admin, "/export/volunteers.xlsx")
        # then 429 with Retry-After, not a queue
        assert response.status_code == 429
        assert response.headers["retry-after"]
    finally:
        go_on.set()
        await asyncio.wait_for(first, 30)
    # and once the first is done, the next one runs
    assert (await download(kit, admin, "/export/volunteers.xlsx")).status_code == 200


# -- the `exports` query -----------------------------------------------------------------------------------------


async def test_exports_query_lists_what_the_caller_can_download(world: tuple[Harness, Any]) -> None:
    kit, _app = world
    orgs = await two_orgs(kit)
    admin_a = await kit.sign_in("organization_admin", orgs["a"])
    admin_b = await kit.sign_in("organization_admin", orgs["b"])
    query = "{ exports { name label plugin formats columns { key header kind } variables } }"
    listed_a = {e["name"]: e for e in (await admin_a(query))["exports"]}
    listed_b = {e["name"]: e for e in (await admin_b(query))["exports"]}
    assert {"volunteers", "helpRequests", "assignments", "overdue", "queueUnverified"} <= set(listed_a)
    assert "suppliesStock" in listed_a
    assert "suppliesStock" not in listed_b
    assert listed_a["volunteers"]["formats"] == ["csv", "xlsx"]
    assert listed_a["volunteers"]["columns"][1]["key"] == "phone"
    assert listed_a["helpRequests"]["variables"] == ["filter", "orderBy"]
    anonymous = await kit.anonymous.raw(query)
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


# -- every row or none ---------------------------------------------------------------------------------------------


async def test_queue_exports_read_every_page(world: tuple[Harness, Any]) -> None:
    # given 7 requests to verify and 4 to match (pages of 3), and one of B's
    kit, _app = world
    orgs = await two_orgs(kit)
    for n in range(7):
        await kit.help_request(orgs["community_a"], title=f"核实{n}", requester_phone=f"1381111{n:04d}")
    admin = await kit.sign_in("organization_admin", orgs["a"])
    for n in range(4):
        await offer(admin, await kit.help_request(orgs["community_a"], title=f"匹配{n}"))
    await kit.help_request(orgs["community_b"], title="乙的请求")
    # when the two parts of the queue are downloaded
    unverified = read_csv(await download(kit, admin, "/export/queueUnverified.csv", lang="en"))
    unmatched = read_xlsx(await download(kit, admin, "/export/queueUnmatched.xlsx", lang="en"))
    # then every row of each, once, most urgent first as the queue lists them, in the caller's words
    assert sorted(r[0] for r in unverified[1:]) == sorted(f"核实{n}" for n in range(7))
    assert {r[3] for r in unverified[1:]} == {"submitted"}
    assert sorted(r[0] for r in unmatched[1:]) == sorted(f"匹配{n}" for n in range(4))
    assert {r[3] for r in unmatched[1:]} == {"verified"}
    queue = await admin("{ queue(first: 3) { unverified { title } } }")
    assert [r[0] for r in unverified[1:4]] == [r["title"] for r in queue["queue"]["unverified"]]


async def test_overdue_is_read_page_after_page_to_its_end_however_long(
    engine: AsyncEngine, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from core.services import help_requests

    # given pages as large as the API allows (3 rows) and exactly that many overdue requests, besides a
    # cancelled one (not overdue: closed) and another organisation's overdue one
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    settings = Settings(login_max_failures=1000, export_page_size=3, max_page_size=3)
    kit, _app, http = _harness(engine, clock, settings)
    async with http:
        orgs = await two_orgs(kit)
        for n in range(3):
            await kit.help_request(orgs["community_a"], title=f"超时{n}", requester_phone=f"1382222{n:04d}")
        await kit.help_request(orgs["community_b"], title="乙超时", requester_phone="13822228888")
        cancelled = await kit.help_request(orgs["community_a"], title="撤销", requester_phone="13822227777")
        async with kit.service() as ctx:
            await help_requests.cancel(ctx, cancelled, "不需要了")
        clock.now += timedelta(days=3)
        admin = await kit.sign_in("organization_admin", orgs["a"])
        # when they are downloaded, then all three come, none else
        for path in ("/export/overdue.csv", "/export/overdue.xlsx"):
            response = await download(kit, admin, path, lang="en")
            assert response.status_code == 200
            rows = read_csv(response) if path.endswith(".csv") else read_xlsx(response)
            assert sorted(r[0] for r in rows[1:]) == ["超时0", "超时1", "超时2"]
            assert {r[3] for r in rows[1:]} == {"submitted"}
        # and given four more (seven: three pages), every one comes, once, most urgent first (here, as `overdue`
        # lists them: one urgency, no deadline)
        for n in range(3, 7):
            await kit.help_request(orgs["community_a"], title=f"超时{n}", requester_phone=f"1382222{n:04d}")
        clock.now += timedelta(days=3)
        admin = await kit.sign_in("organization_admin", orgs["a"])
        rows = read_csv(await download(kit, admin, "/export/overdue.csv", lang="en"))
        assert sorted(r[0] for r in rows[1:]) == [f"超时{n}" for n in range(7)]
        listed = await admin("{ overdue(first: 3) { request { title } } }")
        assert [r[0] for r in rows[1:4]] == [o["request"]["title"] for o in listed["overdue"]]
        # and the filter's other side is the rest of the organisation's requests
        rest = await admin("{ helpRequests(first: 3, filter: {overdue: false}) { nodes { title } } }")
        assert [n["title"] for n in rest["helpRequests"]["nodes"]] == ["撤销"]


async def test_a_page_too_costly_is_asked_again_smaller_and_paging_goes_on(
    engine: AsyncEngine, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from graphql import parse

    from schema.build import build_schema
    from schema.cost import CostModel, operation_cost
    from schema.exports import CORE_EXPORTS

    # given a query budget that refuses the assignments export at a page of 3 requests but not at 1
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    settings = Settings(login_max_failures=1000, export_page_size=3)
    document = parse(next(e.document for e in CORE_EXPORTS if e.name == "assignments"))
    model = CostModel(plain_list=settings.max_page_size, max_page=settings.max_page_size)
    graphql_schema = build_schema(settings, build_plugin_host(entry_points=False))._schema
    cost_of = [operation_cost(graphql_schema, document, None, {"first": n}, model) or 0 for n in (1, 3)]
    assert cost_of[0] < cost_of[1]
    settings = Settings(login_max_failures=1000, export_page_size=3, max_query_cost=cost_of[0])
    kit, _app, http = _harness(engine, clock, settings)
    async with http:
        orgs = await two_orgs(kit)
        admin = await kit.sign_in("organization_admin", orgs["a"])
        for n in range(5):
            volunteer = await kit.volunteer(orgs["a"], f"志愿者{n}")
            await offer(admin, await kit.help_request(orgs["community_a"], title=f"请求{n}"), volunteer)
        refused = await admin.raw(document.loc.source.body, {"first": 3})  # type: ignore[union-attr]
        assert refused["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"  # positive control
        # when the assignments are downloaded
        response = await download(kit, admin, "/export/assignments.csv", lang="en")
        # then every assignment is there
        assert response.status_code == 200
        assert sorted(r[0] for r in read_csv(response)[1:]) == [f"请求{n}" for n in range(5)]


# -- temporary files ----------------------------------------------------------------------------------------------


async def test_a_failed_xlsx_export_leaves_no_temporary_file(
    world: tuple[Harness, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import tempfile

    from yunshegong import exports

    # given a second page that fails (its cursor is refused by the API)
    kit, _app = world
    orgs = await two_orgs(kit)
    for n in range(5):
        await kit.volunteer(orgs["a"], f"志愿者{n}")
    admin = await kit.sign_in("organization_admin", orgs["a"])
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    real_page_of = exports.page_of
    monkeypatch.setattr(exports, "page_of", lambda data, export: (real_page_of(data, export)[0], "not-a-cursor"))
    # when the XLSX is downloaded
    response = await download(kit, admin, "/export/volunteers.xlsx")
    # then it is refused with the API's code, and the workbook's temporary file (its first page) is gone
    assert response.status_code == 400
    assert code(response) == "INVALID_CURSOR"
    assert list(tmp_path.iterdir()) == []


async def test_a_cancelled_xlsx_export_leaves_no_temporary_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    import tempfile

    from schema.exports import CORE_EXPORTS, _check
    from yunshegong.exports import xlsx_file

    # given an XLSX export whose first page is written and whose next page never comes
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    export = _check(CORE_EXPORTS[0], "core")
    waiting = asyncio.Event()

    async def rest() -> AsyncIterator[list[Any]]:
        waiting.set()
        await asyncio.Event().wait()
        yield []

    first = [{"name": f"志愿者{n}", "phone": "13900000001"} for n in range(50)]
    task = asyncio.create_task(xlsx_file(export, [None] * len(export.definition.columns), first, rest))
    await asyncio.wait_for(waiting.wait(), 30)
    assert [p.name.startswith("openpyxl.") for p in tmp_path.iterdir()] == [True]  # positive control
    # when it is cancelled (the client gone)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # then the temporary file is gone
    for _ in range(100):
        if not list(tmp_path.iterdir()):
            break
        await asyncio.sleep(0.05)
    assert list(tmp_path.iterdir()) == []


# -- communities ------------------------------------------------------------------------------------------------


async def test_communities_export_as_the_import_reads_it(world: tuple[Harness, Any]) -> None:
    from core.imports.communities import CommunitiesKind
    from core.imports.mapping import resolve

    # given communities in two organisations
    kit, _app = world
    orgs = await two_orgs(kit)
    for _n in range(3):
        await kit.community(orgs["a"])
    admin = await kit.sign_in("organization_admin", orgs["a"])
    api = await admin("{ communities(first: 50) { nodes { name headPhone district { name } } } }")
    # when A's administrator downloads them
    rows = read_csv(await download(kit, admin, "/export/communities.csv", lang="en"))
    # then A's four communities as the API gives them, none of B's, with the import's own headers
    shown = sorted((n["name"], n["district"]["name"], n["headPhone"] or "") for n in api["communities"]["nodes"])
    assert len(shown) == 4
    assert sorted((r[0], r[1], r[6]) for r in rows[1:]) == shown
    # and the communities import maps every one of those headers to its field
    fields = resolve(rows[0], CommunitiesKind.columns, None).by_index
    assert [fields.get(i) for i in range(7)] == [
        "name",
        "district",
        "street",
        "latitude",
        "longitude",
        "head_name",
        "head_phone",
    ]
