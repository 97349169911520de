"""GET /export/{name}.csv and /export/{name}.xlsx: a list of the API as a spreadsheet.

An export is a GraphQL query of the public API (schema/exports.py, plugins' register_exports), run page by
page as the caller and flattened into rows: permissions, row-level security, masking and the audit of
sensitive reads are exactly the API's, with no second code path that could drift from it.

- Each page is its own GraphQL operation with its own context and session, closed before the page's bytes
  are sent: no transaction stays open while a slow client reads (decisions.md).
- The first page runs before any byte is sent, so a refusal (FORBIDDEN, a bad variable) is a JSON error
  with the API's code and a 4xx status, never a truncated file. A later page failing (the database gone)
  ends the CSV stream without its last chunk, so the client sees an incomplete download, not a short file.
- Every row of the list or none: a connection is read page after page to its end; a list the API gives
  in one piece with a size (`first`, no cursor) is refused (OUT_OF_RANGE) when it holds more than a page,
  never cut. A page too costly for the API's budget is asked again at half the size, and paging goes on.
- CSV: UTF-8 with a byte-order mark (Excel then reads Chinese correctly), CRLF, the csv module, every
  field quoted (a `;`-separated locale cannot split a field into a cell of its own), text that a
  spreadsheet would run as a formula neutralised (yunshegong.cell_guard).
- XLSX: openpyxl's write-only workbook (rows go to a temporary file as they come), saved into a
  SpooledTemporaryFile in a worker thread, then streamed. It is built whole before the answer starts (a
  zip's directory comes last), so any page's refusal is still a clean JSON error. Text cells are typed
  as strings (inline strings: never evaluated on opening); one that looks like a formula also carries
  the quotePrefix style, so that editing it keeps it text, with no quote shown. Its temporary file is
  removed however the export ends (refused, failed, cancelled).
- Enum values are written in the caller's words (schema.exports.ENUM_LABELS), not as GraphQL names.
- At most `export_concurrency` downloads at once per process; one more is answered 429 with Retry-After.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
import os
import re
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from graphql import parse, validate
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from core import observability
from core.i18n import CALLER_LOCALE, _, negotiate, translate
from core.plugins import PluginLoadError
from core.services import auth
from core.services import plugins as plugin_service
from core.services.context import Viewer
from schema.build import CALLER_ZONE
from schema.context import AppState, Context
from schema.exports import ENUM_LABELS, Export, column_enums, exports_of
from yunshegong import http
from yunshegong.cell_guard import TRIGGERS, neutralise

log = logging.getLogger("yunshegong.exports")

BOM = "\ufeff"
LIST_SEPARATOR = "、"
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# An XLSX is kept in memory up to this size, then on disk.
SPOOL_BYTES = 8 * 1024 * 1024
CHUNK_BYTES = 64 * 1024
# The API's codes, as HTTP statuses of a refused download (anything else the client sent: 400).
STATUS_OF_CODE = {
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "PLUGIN_DISABLED": 404,
    "UNAVAILABLE": 503,
    "INTERNAL_ERROR": 500,
}
# Characters XML 1.0 cannot hold (openpyxl refuses them): dropped from XLSX cells.
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
MAX_XLSX_TEXT = 32_767  # Excel's longest cell
# Per column, the labels of its enum values (None: not an enum column, or an enum without labels).
Labels = Sequence[dict[str, Any] | None]


class PageFailed(Exception):
    """A page after the first failed: the CSV stream ends without its last chunk; an XLSX is refused."""

    def __init__(self, errors: Sequence[Any]) -> None:
        super().__init__((errors[0].extensions or {}).get("code"))
        self.errors = errors


# -- reading the answers ---------------------------------------------------------------------------------------


def _at(value: Any, parts: Sequence[str]) -> Any:
    """The value at a dotted path; through a list, the list of values (nested lists as they come)."""
    for index, part in enumerate(parts):
        if value is None:
            return None
        if isinstance(value, list):
            return [_at(item, parts[index:]) for item in value]
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _flat(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [leaf for item in value for leaf in _flat(item)]
    return [] if value is None else [value]


def page_of(data: Any, export: Export) -> tuple[list[Any], str | None]:
    """The nodes of one page and the cursor of the next (None: the last page)."""
    found = _at(data, export.definition.connection.split("."))
    if isinstance(found, list):
        return found, None
    if not isinstance(found, dict):
        return [], None
    nodes = found.get("nodes")
    if nodes is None:
        nodes = [edge.get("node") for edge in found.get("edges") or ()]
    info = found.get("pageInfo") or {}
    return [n for n in nodes if n is not None], (info.get("endCursor") if info.get("hasNextPage") else None)


def raw_rows(nodes: Iterable[Any], export: Export) -> Iterable[list[Any]]:
    """One list of raw values per row (one per node, or per item of `rows` inside each node)."""
    columns = export.definition.columns
    rows = export.definition.rows
    if rows is None:
        for node in nodes:
            yield [_at(node, c.path.split(".")) for c in columns]
        return
    prefix = rows + "."
    for node in nodes:
        for item in _flat(_at(node, rows.split("."))):
            yield [
                _at(item, c.path[len(prefix) :].split("."))
                if c.path.startswith(prefix)
                else _at(node, c.path.split("."))
                for c in columns
            ]


# -- cells ---------------------------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, list):
        return LIST_SEPARATOR.join(_text(v) for v in _flat(value))
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def labelled(value: Any, labels: dict[str, Any] | None) -> Any:
    """An enum value (or a list of them) in the caller's words; anything else as it is."""
    if labels is None:
        return value
    if isinstance(value, list):
        return [labelled(v, labels) for v in value]
    found = labels.get(value) if isinstance(value, str) else None
    return value if found is None else translate(found)


def typed(value: Any, kind: str) -> Any:
    """The cell's value: int/Decimal for numbers, datetime (naive, in the caller's zone as the API presents
    it) or date for dates, else text (as it is: each writer guards it against formulas its own way). A value
    that is not of its column's kind is text."""
    if value is None or value == []:
        return None
    if isinstance(value, list):
        return _text(value)
    try:
        if kind == "number":
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, (int, float)):
                return value
            number = Decimal(str(value))
            if not number.is_finite():
                raise ValueError
            return int(number) if number == number.to_integral_value() else number
        if kind == "datetime" and isinstance(value, str):
            return datetime.fromisoformat(value).replace(tzinfo=None)
        if kind == "date" and isinstance(value, str):
            return date.fromisoformat(value)
    except (ValueError, InvalidOperation):
        pass
    return _text(value)


def csv_cell(value: Any) -> str:
    """A CSV field: a CSV has no types, so text that a spreadsheet would run as a formula gets its quote."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return neutralise(value)
    return str(value)


def csv_lines(rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    # Every field quoted: a spreadsheet reading `;` as the separator (many locales) would otherwise cut an
    # unquoted `x;=HYPERLINK(..)` into a cell of its own that starts with `=`.
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return out.getvalue()


class XlsxBook:
    """A write-only workbook: rows are appended as pages come (openpyxl keeps them in a temporary file, made
    at the first row). Its methods run in worker threads, one at a time (a lock); `discard` removes the
    temporary file whenever it is called, waiting for a write in progress to end."""

    def __init__(self, title: str, headers: Sequence[str], kinds: Sequence[str]) -> None:
        from openpyxl import Workbook

        self.book = Workbook(write_only=True)
        self.sheet = self.book.create_sheet(title=re.sub(r"[\[\]:*?/\\]", " ", title)[:31] or "export")
        self.kinds = list(kinds)
        self.headers = [str(h) for h in headers]
        self.lock = threading.Lock()
        self.discarded = False

    def append(self, row: Sequence[Any], *, text_only: bool = False) -> None:
        from openpyxl.cell import WriteOnlyCell

        cells = []
        for value, kind in zip(row, self.kinds, strict=True):
            cell = WriteOnlyCell(self.sheet, value=None)
            if isinstance(value, str) or text_only:
                # Typed as a string whatever it starts with (openpyxl makes a str starting with "=" a formula):
                # a string cell is never evaluated. One that would be a formula if typed in again also gets
                # quotePrefix, the style Excel gives text entered as '=…: it stays text when edited, and no
                # quote shows (a leading ' in the value itself would show).
                text = _ILLEGAL_XML.sub("", str(value))[:MAX_XLSX_TEXT]
                cell.value = text
                cell.data_type = "s"
                if text[:1] in TRIGGERS:
                    cell.quotePrefix = True
            elif isinstance(value, Decimal):
                cell.value = float(value)
            elif value is not None:
                cell.value = value
                if kind == "datetime":
                    cell.number_format = "yyyy-mm-dd hh:mm:ss"
                elif kind == "date":
                    cell.number_format = "yyyy-mm-dd"
            cells.append(cell)
        self.sheet.append(cells)

    def extend(self, rows: Iterable[Sequence[Any]]) -> None:
        with self.lock:
            if self.discarded:
                return
            if self.sheet._writer is None:  # the first rows: the header goes first
                self.append(self.headers, text_only=True)
            for row in rows:
                self.append(row)

    def save(self) -> Any:
        self.extend(())  # a list without rows still has its header
        with self.lock:
            if self.discarded:
                raise RuntimeError("the workbook was discarded")
            spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 # closed by the stream
            try:
                self.book.save(spool)  # (removes its temporary file when it succeeds)
            except BaseException:
                spool.close()
                raise
            spool.seek(0)
            return spool

    def discard(self) -> None:
        """Removes the temporary file of an unsaved workbook (after a save, openpyxl has removed it)."""
        from openpyxl.worksheet._writer import ALL_TEMP_FILES

        with self.lock:
            self.discarded = True
            writer = self.sheet._writer
            if writer is None or writer.out not in ALL_TEMP_FILES:
                return
            for stream in (self.sheet._rows, writer.xf):
                # Closes the file (a half-written XML, deleted next), whatever state it was left in.
                with contextlib.suppress(Exception):
                    if stream is not None:
                        stream.close()
            ALL_TEMP_FILES.remove(writer.out)
            with contextlib.suppress(FileNotFoundError):
                os.remove(writer.out)


# -- the endpoint ------------------------------------------------------------------------------------------------


class Gate:
    """At most `limit` downloads at once in this process (no queue: the one over the limit is told to retry)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.taken = limit, 0

    def take(self) -> bool:
        if self.taken >= self.limit:
            return False
        self.taken += 1
        return True

    def give_back(self) -> None:
        self.taken -= 1


class GatedStreamingResponse(StreamingResponse):
    """Gives the download's slot back however the response ends (a client gone mid-stream included: the body
    iterator is then abandoned, and its own `finally` might run only when it is collected)."""

    def __init__(self, content: AsyncIterator[bytes], release: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


def _too_costly(errors: Sequence[Any] | None) -> bool:
    return any((e.extensions or {}).get("code") == "QUERY_TOO_COSTLY" for e in errors or ())


def _refusal(errors: Sequence[Any]) -> http.RequestRefused:
    """The first error of a page as the download's answer: the API's code, its message (already in the
    caller's language), and the matching HTTP status."""
    first = errors[0]
    code = (first.extensions or {}).get("code") or "INTERNAL_ERROR"
    refused = http.RequestRefused(STATUS_OF_CODE.get(code, 400), code, "{text}", text=first.message)
    if code == "UNAVAILABLE":
        refused.headers["Retry-After"] = str(http.RETRY_AFTER_SECONDS)
    return refused


def _variables(request: Request, export: Export) -> dict[str, Any]:
    raw = request.query_params.get("variables")
    if raw is None or raw == "":
        return {}
    given = http.decode_json(raw)
    if not isinstance(given, dict):
        raise http.RequestRefused(400, "INVALID_INPUT", _("`variables` must be a JSON object."))
    unknown = sorted(set(given) - set(export.definition.variables))
    if unknown:
        raise http.RequestRefused(
            400,
            "INVALID_INPUT",
            _("This export takes no variable {names}; it takes: {allowed}."),
            names=", ".join(unknown),
            allowed=", ".join(export.definition.variables) or "-",
        )
    return given


def _filename(export: Export, fmt: str) -> str:
    stem = re.sub(r'[\\/:*?"<>|\s]+', "-", translate(export.definition.label)).strip("-") or export.name
    return f"attachment; filename=\"{export.name}.{fmt}\"; filename*=UTF-8''{quote(f'{stem}.{fmt}')}"


def route(state: AppState, schema: Any) -> Route:
    """The route serving every export of the deployment (core's and the loaded plugins', checked now: a
    malformed plugin definition stops startup)."""
    exports = exports_of(state.host)
    for export in exports.values():
        # A document that does not fit the schema (a field renamed, a typo) stops startup, not a download.
        problems = validate(schema._schema, parse(export.definition.document))
        if problems:
            raise PluginLoadError(f"{export.plugin or 'core'}: export {export.name!r}: {problems[0].message}")
    labels_of: dict[str, Labels] = {
        name: [ENUM_LABELS.get(enum) if enum else None for enum in column_enums(schema._schema, export)]
        for name, export in exports.items()
    }
    gate = Gate(state.settings.export_concurrency)

    async def run_page(viewer: Viewer, request: Request, export: Export, variables: dict[str, Any]) -> Any:
        """One page: one GraphQL operation on a context (and session) of its own, closed when it returns."""
        context = Context(
            app=state,
            viewer=viewer,
            request=request,
            request_id=observability.current_request_id() or observability.new_request_id(),
        )
        if state.host is not None:
            for plugin, value in state.host.call_each("extend_context", context=context):
                if value is not None:
                    context.plugin_state[plugin.name] = value
        try:
            return await schema.execute(export.definition.document, variable_values=variables, context_value=context)
        finally:
            await context.close()  # (the operation closed it already; this covers a failure around it)

    async def pages(
        viewer: Viewer, request: Request, export: Export, variables: dict[str, Any]
    ) -> tuple[list[Any], Callable[[], AsyncIterator[list[Any]]]]:
        """The first page's nodes (a refusal raised as RequestRefused), and an iterator of the later pages."""
        size = min(state.settings.export_page_size, state.settings.max_page_size)
        # A list in one piece (a size, no cursor) is asked for one row more than a page, to know it is whole. At
        # most max_page_size, though: a list of that many rows cannot be told whole, and is refused as having
        # more than max_page_size - 1 rows, which it has (the limit the refusal states is always `asked - 1`).
        sized_list = "first" in export.declared and not export.paged
        while True:
            asked = min(size + 1, state.settings.max_page_size) if sized_list else size
            paging = {"first": asked} if "first" in export.declared else {}
            result = await run_page(viewer, request, export, {**variables, **paging})
            if _too_costly(result.errors) and size > 1:
                # A page too costly for the API's budget (nested lists): halve it until the API accepts it.
                size //= 2
                continue
            break
        if result.errors:
            raise _refusal(result.errors)
        nodes, cursor = page_of(result.data, export)
        if sized_list and len(nodes) >= asked:
            raise http.RequestRefused(
                422,
                "OUT_OF_RANGE",
                _("This list has more than {limit} rows: more than it can be downloaded in one piece."),
                limit=asked - 1,
            )
        cursor = cursor if export.paged else None

        async def rest() -> AsyncIterator[list[Any]]:
            nonlocal size
            after = cursor
            while after is not None:
                page = await run_page(viewer, request, export, {**variables, "first": size, "after": after})
                if _too_costly(page.errors) and size > 1:
                    size //= 2  # the same page again, smaller: paging goes on from the same cursor
                    continue
                if page.errors:
                    log.warning("export %s stopped: %s", export.name, (page.errors[0].extensions or {}).get("code"))
                    raise PageFailed(page.errors)
                found, after = page_of(page.data, export)
                yield found

        return nodes, rest

    async def endpoint(request: Request) -> Response:
        CALLER_ZONE.set(None)
        lang = request.query_params.get("lang")
        CALLER_LOCALE.set(negotiate(lang if lang in ("zh", "en") else request.headers.get("accept-language")))
        try:
            return await answer(request)
        except http.RequestRefused as refused:
            observability.record_refusal(refused.code)
            return refused.response()

    async def answer(request: Request) -> Response:
        name, fmt = request.path_params["name"], request.path_params["format"]
        zone = request.headers.get("x-timezone")
        if zone:
            try:
                CALLER_ZONE.set(ZoneInfo(zone))
            except (KeyError, ValueError, OSError):
                raise http.RequestRefused(
                    400, "INVALID_INPUT", _("Unknown time zone {zone}."), zone=repr(zone[:64])
                ) from None
        viewer = await authenticate(request)
        export = exports.get(name)
        if export is None or fmt not in ("csv", "xlsx") or not await plugin_enabled(viewer, export):
            raise http.RequestRefused(404, "NOT_FOUND", _("No such export."))
        variables = _variables(request, export)
        if not gate.take():
            raise http.RequestRefused(
                429,
                "UNAVAILABLE",
                _("Too many downloads at once; retry shortly."),
                headers={"Retry-After": str(http.RETRY_AFTER_SECONDS)},
            )
        try:
            first, rest = await pages(viewer, request, export, variables)
            headers = {"Content-Disposition": _filename(export, fmt), "Cache-Control": "no-store"}
            labels = labels_of[export.name]
            if fmt == "csv":
                return GatedStreamingResponse(
                    csv_stream(export, labels, first, rest), gate.give_back, media_type=CSV_TYPE, headers=headers
                )
            spool = await xlsx_file(export, labels, first, rest)
            return GatedStreamingResponse(file_stream(spool), gate.give_back, media_type=XLSX_TYPE, headers=headers)
        except BaseException:
            gate.give_back()
            raise

    async def authenticate(request: Request) -> Viewer:
        """The caller, by the same bearer check as /graphql, on a session closed at once; anonymous: 401."""
        session = state.sessionmaker()
        try:
            viewer = await state.authenticate(request, session)
        except auth.Unauthenticated as exc:
            raise http.RequestRefused(401, "UNAUTHENTICATED", str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc
        finally:
            await session.close()
        if viewer.role is None:
            raise http.RequestRefused(
                401, "UNAUTHENTICATED", _("Sign in first."), headers={"WWW-Authenticate": "Bearer"}
            )
        return viewer

    async def plugin_enabled(viewer: Viewer, export: Export) -> bool:
        if export.plugin is None:
            return True
        context = Context(app=state, viewer=viewer)
        try:
            return export.plugin in await context.read(plugin_service.enabled_plugins)
        finally:
            await context.close()

    return Route("/export/{name}.{format}", endpoint, methods=["GET"])


def _header_and_kinds(export: Export) -> tuple[list[str], list[str]]:
    columns = export.definition.columns
    return [translate(c.header) for c in columns], [c.kind for c in columns]


def _typed_rows(export: Export, labels: Labels, nodes: list[Any], kinds: list[str]) -> list[list[Any]]:
    return [
        [typed(labelled(v, table), k) for v, table, k in zip(row, labels, kinds, strict=True)]
        for row in raw_rows(nodes, export)
    ]


async def csv_stream(
    export: Export, labels: Labels, first: list[Any], rest: Callable[[], AsyncIterator[list[Any]]]
) -> AsyncIterator[bytes]:
    """The header and first page in one chunk, then a chunk per page (each page read after the previous one
    was handed to the server, its session long closed)."""
    headers, kinds = _header_and_kinds(export)
    yield (BOM + csv_lines([headers]) + csv_lines(_typed_rows(export, labels, first, kinds))).encode()
    async for nodes in rest():
        yield csv_lines(_typed_rows(export, labels, nodes, kinds)).encode()


async def xlsx_file(
    export: Export, labels: Labels, first: list[Any], rest: Callable[[], AsyncIterator[list[Any]]]
) -> Any:
    """The whole workbook in a spooled file (built in worker threads, page by page); a later page's refusal
    raises PageFailed before any byte is sent. However it ends short of the saved file (a page refused, an
    error, the client gone and the task cancelled), the workbook's temporary file is removed: it holds the
    rows written so far, personal data among them."""
    headers, kinds = _header_and_kinds(export)
    book = XlsxBook(translate(export.definition.label), headers, kinds)  # (no file yet: made at the first row)
    saved = False
    try:
        await asyncio.to_thread(book.extend, _typed_rows(export, labels, first, kinds))
        try:
            async for nodes in rest():
                await asyncio.to_thread(book.extend, _typed_rows(export, labels, nodes, kinds))
        except PageFailed as failed:
            raise _refusal(failed.errors) from None
        spool = await asyncio.to_thread(book.save)
        saved = True
        return spool
    finally:
        if not saved:
            # Cancelled, a worker thread may still be writing; discard waits for it, in a thread of its own
            # so that the loop does not (and so that a second cancellation cannot stop it).
            if book.lock.acquire(blocking=False):
                book.lock.release()
                book.discard()
            else:
                asyncio.get_running_loop().run_in_executor(None, book.discard)


async def file_stream(spool: Any) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(spool.read, CHUNK_BYTES):
            yield chunk
    finally:
        spool.close()
