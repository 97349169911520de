"""graphql-transport-ws for the service: strawberry's handler with our authentication, one context per
operation, keep-alive pings, and the connection ended when its credential stops working.

- `connection_init` must carry `{"authorization": "Bearer <token>"}` (or the upgrade request an Authorization
  header): the bearer check of the HTTP path. No credential, or one that is refused: close 4403. It may
  carry `timezone` (IANA name) and `locale` (an Accept-Language value); else the upgrade request's
  X-Timezone and Accept-Language headers apply, to every operation, as on HTTP.
- An account (or API token) holds at most settings.live_max_connections_per_account connections in one
  process (more: close 4429); a connection runs at most settings.live_max_subscriptions_per_connection
  operations at once (strawberry's limit: an error for the one too many). A message longer than
  settings.max_body_bytes closes the connection (1009; yunshegong.app's adapter, and uvicorn's ws_max_size).
- Each operation gets its own LiveContext (strawberry passes one context to all of a connection's
  operations: their sessions, loaders and memos would mix), whose first transaction starts with the bearer
  check: the credential is checked again for every query, mutation and subscription, never trusted from
  connection_init (refused: close 4403).
- The connection listens for "auth" announcements about its credential (password changed, account
  disabled, token revoked) and checks it again at once; refused, the connection closes with 4403. It also
  closes (4403) when a sign-in token expires. Each delivered event also begins with that check
  (LiveContext.begin_event).
- Each result is executed, then its audit is written and its session closed (LiveContext.end_event), then
  it is sent: no pooled connection waits on a slow client, and no sensitive read waits for the next event.
- Queries and mutations over the websocket count in the operation metrics as over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

from graphql import GraphQLError, OperationType, get_operation_ast, parse
from strawberry.schema.schema import StreamResult
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ConnectionInitMessage
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.utils.aio import aclosing

from core import live, observability
from core.i18n import CALLER_LOCALE, negotiate, translate
from core.services import auth
from schema import operation_labels
from schema.build import CALLER_ZONE
from schema.extensions import UNAVAILABLE_MESSAGE, is_unavailable
from schema.subscriptions.context import ConnectionEnded, LiveConnection, LiveContext

log = logging.getLogger("yunshegong.live")

FORBIDDEN = 4403
TOO_MANY = 4429
# graphql-transport-ws leaves the server's own failures to the 1xxx codes: 1011 is "internal error".
UNAVAILABLE = 1011
INVALID = 4400
# A sign-in token that passed its check is checked again at least this long after its `exp` seemed not yet
# reached (the clock the check uses may differ from the event loop's), so a credential is never re-checked in
# a tight loop.
EXPIRY_RECHECK_SECONDS = 1.0

# Open connections per credential in this process (settings.live_max_connections_per_account).
_open: Counter[tuple[str, int]] = Counter()


def connection_count() -> int:
    """Authenticated websocket connections open in this process (for /metrics)."""
    return sum(_open.values())


def _credential(connection: LiveConnection) -> tuple[str, int] | None:
    viewer = connection.viewer
    if viewer.account_id is not None:
        return ("account", viewer.account_id)
    if viewer.api_token_id is not None:
        return ("api_token", viewer.api_token_id)
    return None


def _authorization(payload: dict[str, Any], header: str | None) -> str | None:
    value = payload.get("authorization", payload.get("Authorization"))
    if isinstance(value, str) and value.strip():
        value = value.strip()
        # graphql-ws clients often pass the bare token.
        return value if " " in value else f"Bearer {value}"
    return header


def _zone_and_locale(payload: dict[str, Any], request: Any) -> tuple[ZoneInfo | None, str]:
    """The caller's time zone and language for every operation of the connection: connection_init's
    `timezone` / `locale`, else the upgrade request's X-Timezone / Accept-Language (as on HTTP). ValueError
    for a zone that does not exist."""
    headers = request.headers if request is not None else {}
    zone = payload.get("timezone")
    if not isinstance(zone, str) or not zone:
        zone = headers.get("x-timezone")
    language = payload.get("locale")
    if not isinstance(language, str) or not language:
        language = headers.get("accept-language")
    found = None
    if zone:
        try:
            found = ZoneInfo(zone)
        except (KeyError, ValueError, OSError):
            raise ValueError(zone) from None
    return found, negotiate(language)


def _is_subscription(query: str | None, operation_name: str | None) -> bool:
    """Whether the operation a (valid) document names is a subscription: not timed as an operation (it lasts
    as long as the client wants); the subscription gauge shows those."""
    try:
        found = get_operation_ast(parse(query or ""), operation_name)
    except GraphQLError:
        return False
    return found is not None and found.operation == OperationType.SUBSCRIPTION


class LiveTransportHandler(BaseGraphQLTransportWSHandler[Any, Any]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connection: LiveConnection | None = None
        self._credential: tuple[str, int] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self._expiry: asyncio.Task[None] | None = None
        self._auth_events: live.Subscription | None = None

    @property
    def _state(self) -> Any:
        return self.view.state  # type: ignore[attr-defined]

    # -- connection_init: who is this --------------------------------------------------------------------------

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        if self.connection_timed_out:
            return
        if self.connection_init_timeout_task:
            self.connection_init_timeout_task.cancel()
        payload = message.get("payload") or {}
        if not isinstance(payload, dict):
            await self.websocket.close(code=4400, reason="Invalid connection init payload")
            return
        if self.connection_init_received:
            await self.websocket.close(code=TOO_MANY, reason="Too many initialisation requests")
            return
        self.connection_init_received = True
        request = getattr(self.context, "request", None)
        header = request.headers.get("authorization") if request is not None else None
        connection = LiveConnection(app=self._state, authorization=_authorization(payload, header), request=request)
        try:
            connection.zone, connection.locale = _zone_and_locale(payload, request)
        except ValueError:
            await self.websocket.close(code=INVALID, reason="Unknown time zone")
            return
        try:
            await connection.check()
        except auth.Unauthenticated:
            await self.websocket.close(code=FORBIDDEN, reason="Forbidden")
            return
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            await self.websocket.close(code=UNAVAILABLE, reason="Database unavailable")
            return
        credential = _credential(connection)
        limit = self._state.settings.live_max_connections_per_account
        if credential is not None:
            # Counted and reserved in one step (no await between): connections whose connection_init arrive
            # together cannot all see the count below the limit. Released in shutdown (self._credential).
            if _open[credential] >= limit:
                await self.websocket.close(code=TOO_MANY, reason="Too many connections")
                return
            _open[credential] += 1
            self._credential = credential
        try:
            # Its own bookkeeping, not a subscriber: announcements about this connection's credential.
            self._auth_events = await live.broker().subscribe(
                {live.AUTH},
                accept=lambda e: connection.holds(
                    e.id if e.get("kind") == "account" else None, e.id if e.get("kind") == "api_token" else None
                ),
                counted=False,
            )
        except live.LiveUnavailable:
            self._release()
            await self.websocket.close(code=UNAVAILABLE, reason="Live updates unavailable")
            return
        except BaseException:
            self._release()
            raise
        self.connection = connection
        self._watcher = asyncio.create_task(self._watch_credential(self._auth_events))
        self._expiry = asyncio.create_task(self._watch_expiry(connection))
        interval = self._state.settings.live_keepalive_seconds
        if interval > 0:
            self._keepalive = asyncio.create_task(self._ping(interval))
        await self.send_message({"type": "connection_ack"})
        self.connection_acknowledged = True

    async def _watch_credential(self, events: live.Subscription) -> None:
        assert self.connection is not None
        async for event in events:  # an announcement about this credential, or a resync
            if event.resync:
                # Announcements may have been lost while the listener reconnected. Every connection checking at
                # once would be a stampede on the pool (1,000 connections, one reconnect); nothing is served
                # without a check anyway: each operation and each delivered event begins with one.
                continue
            try:
                await self.connection.check()
            except auth.Unauthenticated:
                await self.end(FORBIDDEN, "Forbidden")
                return
            except Exception as exc:  # the database is away: each event's own check still guards
                log.warning("live: credential re-check failed (%s)", type(exc).__name__)

    async def _watch_expiry(self, connection: LiveConnection) -> None:
        """Close the connection (4403) once its sign-in token expires, even if nothing else happens on it."""
        clock = self._state.clock
        if connection.expires_at is None:
            return
        delay = max((connection.expires_at - clock()).total_seconds(), 0.0)
        while True:
            await asyncio.sleep(delay)
            try:
                await connection.check()  # by the service's clock, as every request is checked
            except auth.Unauthenticated:
                await self.end(FORBIDDEN, "Forbidden")
                return
            except Exception as exc:  # the database is away: each operation's and event's own check still guards
                log.warning("live: credential expiry check failed (%s)", type(exc).__name__)
            if connection.expires_at is None:
                return
            delay = max((connection.expires_at - clock()).total_seconds(), EXPIRY_RECHECK_SECONDS)

    async def _ping(self, interval: float) -> None:
        # Keeps proxies from closing an idle connection; a peer that is gone shows as a failed send.
        while True:
            await asyncio.sleep(interval)
            try:
                await self.send_message({"type": "ping"})
            except Exception:
                return

    async def end(self, code: int, reason: str) -> None:
        """Close the connection (its operations are cancelled as it shuts down)."""
        if self.connection is not None:
            self.connection.ended = True
        with contextlib.suppress(Exception):
            await self.websocket.close(code=code, reason=reason)

    # -- operations: a context each ----------------------------------------------------------------------------

    async def run_operation(self, operation: Operation[Any, Any]) -> None:
        assert self.connection is not None
        # The caller's zone and language, in this operation's task only (as the HTTP edge sets them per request).
        CALLER_ZONE.set(self.connection.zone)
        CALLER_LOCALE.set(self.connection.locale or CALLER_LOCALE.get())
        context = LiveContext.for_operation(self.connection, self.context)
        context.operation_name = operation.operation_name
        started = time.perf_counter()
        try:
            try:
                # The operation's first transaction begins with the bearer check, as an HTTP request's does:
                # what connection_init accepted may have expired, been revoked or lost a role since.
                await context.begin_operation()
            except ConnectionEnded:
                await self.end(FORBIDDEN, "Forbidden")
                return
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                await operation.send_operation_message(
                    {"id": operation.id, "type": "error", "payload": [_unavailable(context.request_id)]}
                )
                return
            result_source = await self.schema.stream(
                operation.query,
                variable_values=operation.variables,
                context_value=context,
                root_value=self.root_value,
                operation_name=operation.operation_name,
            )
            async with aclosing(result_source):
                await self._send_results(operation, result_source, context, started)
            await operation.send_operation_message({"id": operation.id, "type": "complete"})
        except Exception as error:
            if type(error).__name__ == "_OperationStreamClosed":
                return
            await self.handle_task_exception(error)
            with contextlib.suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)
            raise
        finally:
            with contextlib.suppress(Exception):
                await context.end_event()
            if self.connection.ended:
                await self.end(FORBIDDEN, "Forbidden")

    async def _send_results(
        self, operation: Operation[Any, Any], result_source: StreamResult, context: LiveContext, started: float
    ) -> None:
        """strawberry's _send_result_stream, with each result's event ended before it is sent: its sensitive
        reads written to the audit trail and its session (a pooled connection, maybe in an open transaction)
        closed while the client reads at its own pace. Queries and mutations are counted in the metrics."""
        first = True
        async for result in result_source:
            await context.end_event()
            if first and (
                isinstance(result, PreExecutionError) or not _is_subscription(operation.query, operation.operation_name)
            ):
                # In this task, where the schema's OperationLabel left the operation's label (its root fields).
                codes = observability.result_codes(getattr(result, "errors", None), getattr(result, "data", None))
                operation_labels.record_graphql_operation(time.perf_counter() - started, codes)
            if first and isinstance(result, PreExecutionError):
                await self._handle_pre_execution_error(operation, result)
                return
            if not isinstance(result, ExecutionResult):
                await self._reject_incremental_delivery(operation)
                return
            await operation.send_next(result)
            first = False

    def _release(self) -> None:
        """Give back this connection's slot in the per-account count."""
        if self._credential is not None:
            _open[self._credential] -= 1
            if _open[self._credential] <= 0:
                del _open[self._credential]
            self._credential = None

    async def shutdown(self) -> None:
        for task in (self._watcher, self._keepalive, self._expiry):
            if task is not None:
                task.cancel()
        if self._auth_events is not None:
            self._auth_events.close()
        self._release()
        await super().shutdown()


def _unavailable(request_id: str) -> dict[str, Any]:
    return {
        "message": translate(UNAVAILABLE_MESSAGE),
        "extensions": {"code": "UNAVAILABLE", "requestId": request_id},
    }
