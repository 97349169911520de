"""One id per request: taken from a trusted proxy's `X-Request-Id` when it is well-formed, otherwise made
here; set for everything the request runs (log lines, the GraphQL context, a masked error's message) and
echoed in the response's `X-Request-Id`. The same ASGI middleware counts requests for /metrics."""

from __future__ import annotations

import contextvars
import ipaddress
import re
import time
import uuid
from typing import Any

from core.observability import metrics
from core.settings import trusted_networks

REQUEST_ID_HEADER = "x-request-id"
# Letters, digits and `._-` only (a UUID, a hex id): nothing that could forge a log line or a header. At most
# 32 characters: the audit trail keeps the request id of every write in a column of that width (audit_log).
_WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")

_REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("yunshegong_request_id", default=None)

Scope = dict[str, Any]


def new_request_id() -> str:
    """16 hex digits: the form the service has always shown in masked errors."""
    return uuid.uuid4().hex[:16]


def current_request_id() -> str | None:
    """The id of the request this code runs for, or None outside a request (startup, jobs)."""
    return _REQUEST_ID.get()


def well_formed_request_id(value: str | None) -> bool:
    return value is not None and _WELL_FORMED.fullmatch(value) is not None


def _from_trusted_proxy(scope: Scope, trusted: tuple[str, ...]) -> bool:
    client = scope.get("client")
    if not trusted or not client:
        return False
    try:
        address = ipaddress.ip_address(client[0])
    except ValueError:
        return False
    return any(address in network for network in trusted_networks(trusted))


def request_id_for(scope: Scope, trusted: tuple[str, ...]) -> str:
    """The proxy's id if the peer is a trusted proxy and the id is well-formed, else a new one. A client's
    own header is not believed: it could make its requests look like someone else's in the logs."""
    if _from_trusted_proxy(scope, trusted):
        for name, value in scope.get("headers") or ():
            if name == b"x-request-id":
                text = value.decode("latin-1")
                if well_formed_request_id(text):
                    return text
                break
    return new_request_id()


class RequestMiddleware:
    """Outermost ASGI middleware: the request id (set, echoed) and the HTTP request metrics."""

    def __init__(self, app: Any, *, trusted_proxies: tuple[str, ...] = ()) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = request_id_for(scope, self.trusted_proxies)
        token = _REQUEST_ID.set(request_id)
        try:
            if scope["type"] == "websocket":
                # One id for the whole connection (its log lines); no response headers to echo it in.
                await self.app(scope, receive, send)
                return
            await self._http(scope, receive, send, request_id)
        finally:
            _REQUEST_ID.reset(token)

    async def _http(self, scope: Scope, receive: Any, send: Any, request_id: str) -> None:
        status = 500  # what the client gets if the app raises before answering
        echoed = (REQUEST_ID_HEADER.encode(), request_id.encode())

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            metrics.record_http(scope.get("path", ""), status, time.perf_counter() - started)
