"""The HTTP edge of /graphql: one parser for every request body, and the answers that refuse one.

Whatever a client sends (a JSON document that is not an operation, invalid UTF-8, a body larger than the
limit, variables nested without end) is refused here with a GraphQL-shaped JSON error carrying
`extensions.code` (INVALID_REQUEST, BODY_TOO_LARGE, BATCH_TOO_LARGE), never a 500 or plain text. Media types
follow the GraphQL-over-HTTP draft: `application/graphql-response+json` when the client asks for it,
`application/json` otherwise (also for `*/*` and no Accept header at all).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.responses import Response
from starlette.types import Message, Receive
from strawberry.http import GraphQLRequestData

from core.i18n import ranked_by_quality, translate

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
APPLICATION_JSON = "application/json"
# Deeper than any input the schema declares: a value nested further is hostile (a JSON parser, a coercion or a
# copy walking it recursively would exhaust the stack).
MAX_NESTING = 64
# Seconds a client is asked to wait when the database is unreachable (the pool reconnects by itself).
RETRY_AFTER_SECONDS = 5


class RequestRefused(Exception):
    """A request the service will not run: answered as `{"errors": [{message, extensions: {code}}]}`."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None, **params: Any
    ) -> None:
        super().__init__(message.format(**params) if params else message)
        self.status = status
        self.code = code
        self.template = message
        self.params = params
        self.headers = dict(headers or {})

    def response(self, media_type: str = APPLICATION_JSON) -> Response:
        return error_response(
            self.status, self.code, translate(self.template, self.params), media_type=media_type, headers=self.headers
        )


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    media_type: str = APPLICATION_JSON,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": code, **extensions}}]}
    return Response(orjson.dumps(body), status_code=status, media_type=media_type, headers=dict(headers or {}))


def unavailable() -> RequestRefused:
    from schema.extensions import UNAVAILABLE_MESSAGE

    return RequestRefused(503, "UNAVAILABLE", UNAVAILABLE_MESSAGE, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


# -- media types ----------------------------------------------------------------------------------------------


def response_media_type(accept: str | None) -> str:
    """The media type to answer with: the client's preferred of application/graphql-response+json and
    application/json (q-values honoured; on a tie the one named first); application/json when the client
    names neither (no header, `*/*`, `text/html`)."""
    for media in ranked_by_quality(accept):
        if media.lower() in (GRAPHQL_RESPONSE_JSON, APPLICATION_JSON):
            return media.lower()
    return APPLICATION_JSON


# -- the body -------------------------------------------------------------------------------------------------


def too_large(limit: int) -> RequestRefused:
    return RequestRefused(413, "BODY_TOO_LARGE", "The request body is larger than {limit} bytes.", limit=limit)


def check_declared_length(headers: Mapping[str, str], limit: int) -> None:
    """Refuse at once a body whose Content-Length already says it is too large (nothing is read)."""
    declared = headers.get("content-length")
    if declared is None:
        return
    if not declared.strip().isdigit():
        raise RequestRefused(400, "INVALID_REQUEST", "Content-Length must be a whole number of bytes.")
    if int(declared) > limit:
        raise too_large(limit)


def bounded(receive: Receive, limit: int) -> Receive:
    """`receive`, counting the body's bytes as they arrive: past `limit` (a chunked body, or one longer
    than its Content-Length claimed) reading stops with BODY_TOO_LARGE."""
    received = 0

    async def receive_bounded() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise too_large(limit)
        return message

    return receive_bounded


def decode_json(data: str | bytes) -> object:
    """Strict JSON (RFC 8259): UTF-8 only, no NaN or Infinity, no number beyond a double, nesting bounded by
    the parser itself (never a RecursionError); a leading byte-order mark is tolerated."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise RequestRefused(
            400, "INVALID_REQUEST", "Not valid JSON (UTF-8; no NaN or Infinity; numbers within a double's range)."
        ) from None


def _nesting(value: object) -> int:
    """How deeply `value` nests lists and objects (iterative: no recursion on hostile input)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > MAX_NESTING:
            return deepest
        stack.extend((child, depth) for child in children)
    return deepest


def operation(item: object) -> GraphQLRequestData:
    """One GraphQL request (`query`, `variables`, `operationName`, `extensions`), or INVALID_REQUEST."""
    if not isinstance(item, dict):
        raise RequestRefused(400, "INVALID_REQUEST", "A request (and each operation of a batch) is a JSON object.")
    query = item.get("query")
    if not isinstance(query, str) or not query.strip():
        raise RequestRefused(400, "INVALID_REQUEST", "A request needs `query`, a non-empty string.")
    name = item.get("operationName")
    if name is not None and not isinstance(name, str):
        raise RequestRefused(400, "INVALID_REQUEST", "`operationName` must be a string or null.")
    for key in ("variables", "extensions"):
        value = item.get(key)
        if value is not None and not isinstance(value, dict):
            raise RequestRefused(400, "INVALID_REQUEST", "`{key}` must be a JSON object or null.", key=key)
        if value is not None and _nesting(value) > MAX_NESTING:
            raise RequestRefused(
                400, "INVALID_REQUEST", "`{key}` nests deeper than {limit} levels.", key=key, limit=MAX_NESTING
            )
    return GraphQLRequestData(
        query=query,
        variables=item.get("variables"),
        operation_name=name,
        extensions=item.get("extensions"),
    )


def operations(data: object, max_batch: int) -> GraphQLRequestData | list[GraphQLRequestData]:
    """A request (an object) or a batch (a non-empty list of objects, at most `max_batch`)."""
    if isinstance(data, list):
        if not data:
            raise RequestRefused(400, "INVALID_REQUEST", "A batch must hold at least one operation.")
        if len(data) > max_batch:
            raise RequestRefused(
                400, "BATCH_TOO_LARGE", "A batch may hold at most {limit} operations.", limit=max_batch
            )
        return [operation(item) for item in data]
    return operation(data)


# -- uploads: the GraphQL multipart request spec (github.com/jaydenseric/graphql-multipart-request-spec) ------
# A multipart POST carries `operations` (the JSON request, files as nulls), `map` (file part name -> the paths
# of the nulls it fills, e.g. {"0": ["variables.input.file"]}) and the file parts. It has its own body limit
# (settings.import_max_bytes, plus room for the JSON parts): the JSON limit stays as it is for everything else.

MULTIPART_FORM_DATA = "multipart/form-data"
# File parts one request may carry: the import mutation takes one, and imports one file once per request
# (schema/mutations/imports.py), so one request is at most one import (the spec would allow several).
MAX_UPLOAD_FILES = 1


def is_multipart(headers: Mapping[str, str]) -> bool:
    media = (headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    return media == MULTIPART_FORM_DATA


def multipart_limit(max_file_bytes: int, max_body_bytes: int) -> int:
    """The largest multipart body read: the files' limit plus the JSON limit for `operations` and `map` and
    the parts' headers. A file over its own limit but within this still arrives, and the import answers
    TOO_LARGE for it as a payload error."""
    return max_file_bytes + max_body_bytes


def require_signed_in_for_upload(signed_in: bool) -> None:
    """Refuse a multipart body, unread, from a caller without a valid bearer credential (checked by the same
    authenticator as every request, before this; an invalid one was refused there already).

    Only imports take files, and only signed-in callers may import: reading and parsing up to the upload
    limit for anyone else would be work (and memory) for nothing. A preflight header alone no longer
    admits a body: it proves the request is not a cross-site form, not that anyone may send one, and this
    service authenticates by bearer token only (no cookie), so a credential is what every real uploader
    sends anyway."""
    if not signed_in:
        raise RequestRefused(
            401,
            "UNAUTHENTICATED",
            "Send files with a bearer credential: `Authorization: Bearer <token>`.",
            headers={"WWW-Authenticate": "Bearer"},
        )


def require_may_import(may_import: bool) -> None:
    """Refuse a multipart body, unread, from a signed-in caller who may import nothing at all (no import
    kind's permission: core.imports.KINDS). Otherwise anyone signed in, a volunteer say, could hold the
    process's upload slots with bodies sent slowly while the import itself would refuse them anyway. Decided
    from the viewer the token check built (its role and granted permissions): nothing is read for it. Whether
    the caller may import this kind into this organisation is still the mutation's check."""
    if not may_import:
        raise RequestRefused(403, "FORBIDDEN", "You may not import, so you may not send files.")


class UploadGate:
    """At most `limit` multipart requests of this process at once, from the first byte of the body read
    until the operation answered: their files are in memory all that time (up to the upload limit each).
    No queue: the one over the limit is answered 429 with Retry-After, its body unread. A plain counter
    (one event loop per process; no await between the check and the increment)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.taken = limit, 0

    def take(self) -> None:
        if self.taken >= self.limit:
            raise RequestRefused(
                429,
                "UNAVAILABLE",
                "Too many uploads at once; retry shortly.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        self.taken += 1

    def give_back(self) -> None:
        self.taken -= 1


@dataclass(frozen=True, eq=False)  # compared (and hashed) by identity: never by hashing its bytes
class UploadedFile:
    """One file of a multipart request, read whole into memory (bounded by the body limit), once: nothing of
    it stays on disk or open after the request."""

    filename: str
    content_type: str
    data: bytes


class _InMemoryParser(MultiPartParser):
    # Starlette spools a file part to a temporary file past 1 MB; the body is already bounded, so keep it in
    # memory and never touch the disk.
    spool_max_size = 1 << 62


async def _bytes_of(upload: UploadFile) -> bytes:
    """An uploaded part's bytes without a second copy of them: the spooled file is a BytesIO here (never
    rolled to disk), whose getvalue() hands over its own buffer (CPython shares it, trimmed to size, instead
    of copying); read() would copy the whole file while the buffer is still held, doubling the memory a
    request takes. Anything else (another parser's file) is read the usual way."""
    buffer = getattr(upload.file, "_file", None)
    if isinstance(buffer, io.BytesIO):
        return buffer.getvalue()
    await upload.seek(0)
    return await upload.read()


def upload_too_slow(seconds: float) -> RequestRefused:
    return RequestRefused(
        408, "INVALID_REQUEST", "The upload did not arrive within {seconds} seconds.", seconds=f"{seconds:g}"
    )


async def multipart_operations(
    headers: Mapping[str, str],
    stream: AsyncGenerator[bytes, None],
    *,
    max_json_bytes: int,
    deadline_seconds: float | None = None,
) -> GraphQLRequestData:
    """The request of a multipart body with each mapped file in place of its null (as an UploadedFile).
    Malformed multipart, a missing `operations` or `map`, a map naming a part that is not there or a path that
    leads nowhere, a batch: INVALID_REQUEST. A body not read whole within `deadline_seconds`: 408."""
    parser = _InMemoryParser(
        Headers(headers=dict(headers)),
        stream,
        max_files=MAX_UPLOAD_FILES,
        max_fields=2,
        max_part_size=max_json_bytes,
    )
    try:
        # A deadline on the whole body, not only between its chunks: a client trickling a byte now and then
        # would otherwise hold an upload slot (and its memory) for as long as it likes.
        async with asyncio.timeout(deadline_seconds):
            form = await parser.parse()
    except MultiPartException as exc:
        raise RequestRefused(400, "INVALID_REQUEST", "Not a valid multipart body: {reason}", reason=str(exc)) from None
    except TimeoutError:
        raise upload_too_slow(deadline_seconds or 0) from None
    files: dict[str, UploadedFile] = {}
    fields: dict[str, str] = {}
    try:
        for name, value in form.multi_items():
            if isinstance(value, str):
                fields[name] = value
            else:
                files[name] = UploadedFile(
                    filename=value.filename or "", content_type=value.content_type or "", data=await _bytes_of(value)
                )
    finally:
        await form.close()
    for part in ("operations", "map"):
        if part not in fields:
            raise RequestRefused(400, "INVALID_REQUEST", "A multipart request needs the `{part}` field.", part=part)
    data = decode_json(fields["operations"])
    if isinstance(data, list):
        # Each operation of a batch runs at once with the others: a batch of imports mapped to one file would
        # queue (and parse) that file once per operation while the upload gate counted one request.
        raise RequestRefused(400, "INVALID_REQUEST", "Send files with a single operation, not a batch.")
    mapping = decode_json(fields["map"])
    if not isinstance(mapping, dict) or not all(
        isinstance(paths, list) and all(isinstance(p, str) for p in paths) for paths in mapping.values()
    ):
        raise RequestRefused(400, "INVALID_REQUEST", "`map` must be a JSON object of file fields to lists of paths.")
    for name, paths in mapping.items():
        if name not in files:
            raise RequestRefused(
                400, "INVALID_REQUEST", "`map` names the file {name}, which was not sent.", name=repr(name[:64])
            )
        for path in paths:
            data = _place(data, path, files[name])
    return operation(data)


def _place(data: object, path: str, file: UploadedFile) -> object:
    """`data` (one request) with the null at `path` (dot-separated, starting with `variables`, list indexes as
    numbers) replaced by `file`."""
    keys = path.split(".")
    if keys[0] != "variables" or len(keys) < 2:
        raise RequestRefused(
            400, "INVALID_REQUEST", "A file may only stand for a variable: {path}.", path=repr(path[:200])
        )
    target: Any = data
    for key in keys[:-1]:
        target = _step(target, key, path)
    last = keys[-1]
    if isinstance(target, dict) and last in target and target[last] is None:
        target[last] = file
    elif isinstance(target, list) and last.isdigit() and int(last) < len(target) and target[int(last)] is None:
        target[int(last)] = file
    else:
        raise RequestRefused(
            400, "INVALID_REQUEST", "`map` names {path}, which is not a null in `operations`.", path=repr(path[:200])
        )
    return data


def _step(target: object, key: str, path: str) -> object:
    if isinstance(target, dict) and key in target:
        return target[key]
    if isinstance(target, list) and key.isdigit() and int(key) < len(target):
        return target[int(key)]
    raise RequestRefused(
        400, "INVALID_REQUEST", "`map` names {path}, which is not a null in `operations`.", path=repr(path[:200])
    )
