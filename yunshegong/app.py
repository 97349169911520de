"""create_app(): the Starlette application serving /graphql and /healthz."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import html
import ipaddress
import logging
import re  # the situation board: the Host header it writes into its CSP
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException, StarletteRequestAdapter
from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult

from core import imports, observability  # imports: who may send files (any import kind's permission)
from core.database import create_sessionmaker, ping
from core.i18n import CALLER_LOCALE, _, negotiate, translate
from core.plugins import PluginHost, build_plugin_host
from core.services import access, audit, auth
from core.services.context import Viewer
from core.settings import Settings
from schema import operation_labels
from schema.build import CALLER_ZONE, build_schema
from schema.context import AppState, Context
from schema.extensions import INTERNAL_MESSAGE, is_unavailable, safe_error
from yunshegong import exports, http

log = logging.getLogger("yunshegong")

# GraphiQL's page and the files it loads, vendored (yunshegong/static/graphiql/README.md): never a CDN.
STATIC = Path(__file__).parent / "static"
GRAPHIQL_PAGE = STATIC / "graphiql.html"
GRAPHIQL_STATIC = "/graphiql/static"
# strawberry's own refusals that can still reach a client (its words are the msgids, translated in
# core/locale like ours; anything else it says stays English).
STRAWBERRY_REASONS = (
    _("Not Found"),
    _("No GraphQL query found in the request"),
    _("Can't get GraphQL operation type"),
    _("GraphQL only supports GET and POST requests."),
    _("Unable to parse request body as JSON"),
    _("Unsupported content type"),
)


# -- websocket frames (live proofs, issue 16): graphql-transport-ws messages go as TEXT frames --
class TextFrameWebSocketAdapter(ASGIWebSocketAdapter):
    """strawberry sends bytes from encode_json (ours: orjson) as binary frames, which the protocol's clients
    cannot read (graphql-ws rejects them: "Message is missing the 'type' property"; a browser gets a Blob).
    tests/e2e/test_graphql_ws_client.py runs that client."""

    async def send_json(self, message: Any) -> None:
        from starlette.websockets import WebSocketDisconnect
        from strawberry.http.exceptions import WebSocketDisconnected

        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncIterator[object]:
        """strawberry's, with each message bounded by settings.max_body_bytes (as an HTTP body is): a longer
        one closes the connection with 1009 (message too big). uvicorn's ws_max_size (yunshegong.cli) refuses
        it before reading it whole; this holds under any server. Our strict JSON parser's refusal is a
        non-JSON message (close 4400), as the protocol says."""
        from starlette.websockets import WebSocketDisconnect, WebSocketState
        from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived

        limit = self.view.state.settings.max_body_bytes  # type: ignore[attr-defined]
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                text = await self.ws.receive_text()
                if len(text) > limit or len(text.encode("utf-8", "surrogatepass")) > limit:
                    await self.ws.close(code=1009, reason="Message too big")
                    return
                try:
                    message = self.view.decode_json(text)
                except http.RequestRefused as exc:
                    if not ignore_parsing_errors:
                        raise NonJsonMessageReceived from exc
                    continue
                yield message
        except KeyError as exc:  # a binary frame
            raise NonTextMessageReceived from exc
        except WebSocketDisconnect:
            pass


class EdgeRequestAdapter(StarletteRequestAdapter):
    """strawberry's request adapter, with the body as a stream: a multipart upload is parsed as it arrives
    (yunshegong.http.multipart_operations), never read whole before the parts are checked."""

    def stream(self) -> AsyncGenerator[bytes, None]:
        return self._request.stream()


class GraphQLApp(GraphQL):
    """strawberry's ASGI view behind the service's edge (yunshegong.http): a bounded body, one strict parser
    for every request, JSON errors with codes for every refusal, the GraphQL-over-HTTP media types and
    statuses, 503 when the database is unreachable, and GraphiQL from the service's own files."""

    websocket_adapter_class = TextFrameWebSocketAdapter  # live proofs: text frames (see the adapter)
    request_adapter_class = EdgeRequestAdapter  # uploads: the body as a stream (multipart parsing)

    def __init__(self, state: AppState, **kwargs: Any) -> None:
        super().__init__(build_schema(state.settings, state.host), **kwargs)
        self.state = state
        # -- uploads: multipart requests handled at once by this process (yunshegong.http.UploadGate) --
        self.uploads = http.UploadGate(state.settings.import_upload_concurrency)
        # -- metrics: each operation is labelled by its root fields as it executes (HTTP and websocket alike;
        # schema.operation_labels), never by the name the client gave it.
        self.schema.extensions = (*self.schema.extensions, operation_labels.OperationLabel)  # type: ignore[attr-defined]
        # -- live updates (docs/realtime.md): graphql-transport-ws only, through our handler (authentication in
        # connection_init, a context per operation, keep-alive), with the limits from the settings.
        from strawberry.http.websocket_origin import normalize_allowed_origins
        from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

        from schema.subscriptions.transport import LiveTransportHandler

        self.graphql_transport_ws_handler_class = LiveTransportHandler
        self.protocols = (GRAPHQL_TRANSPORT_WS_PROTOCOL,)
        self.max_subscriptions_per_connection = state.settings.live_max_subscriptions_per_connection
        self.allowed_origins = normalize_allowed_origins(state.settings.cors_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, http.bounded(receive, self.body_limit(Headers(scope=scope))))
        media_type = http.response_media_type(request.headers.get("accept"))
        # Set for every request (the defaults without the headers): a server running several requests in one
        # task (e.g. an in-process test client) must not carry one caller's zone or language into the next.
        CALLER_ZONE.set(None)
        CALLER_LOCALE.set(negotiate(request.headers.get("accept-language")))
        try:
            response = await self._answer(request)
        except http.RequestRefused as refused:
            if not getattr(refused, "counted", False):
                observability.record_refusal(refused.code)
            response = refused.response(media_type)
        except ClientDisconnect:
            # The client went away before its body arrived (e.g. an upload abandoned halfway): nobody is left
            # to answer, and nothing went wrong here (not an INTERNAL_ERROR, not counted as one).
            log.info("request abandoned: the client disconnected before its body was read")
            return
        except HTTPException as exc:
            # strawberry's own refusals (e.g. GraphiQL switched off): JSON with a code as well.
            code = "NOT_FOUND" if exc.status_code == 404 else "INVALID_REQUEST"
            observability.record_refusal(code)
            response = http.error_response(exc.status_code, code, translate(exc.reason), media_type=media_type)
        except Exception as exc:
            if is_unavailable(exc):
                # E.g. the bearer token could not be checked: an outage, not a fault (no traceback).
                log.warning("request refused: database unavailable (%s)", type(exc).__name__)
                observability.record_refusal("UNAVAILABLE")
                response = http.unavailable().response(media_type)
            else:
                # The request's own id (yunshegong.observability): the one in its log lines and X-Request-Id.
                request_id = observability.current_request_id() or observability.new_request_id()
                observability.record_refusal("INTERNAL_ERROR")
                log.error("unexpected error in request %s", request_id, exc_info=exc)
                message = translate(INTERNAL_MESSAGE, {"request_id": request_id})
                response = http.error_response(
                    500, "INTERNAL_ERROR", message, media_type=media_type, requestId=request_id
                )
        await response(scope, receive, send)

    async def _answer(self, request: Request) -> Response:
        if request.method not in ("GET", "POST"):
            raise http.RequestRefused(
                405, "INVALID_REQUEST", "GraphQL is served over GET and POST.", headers={"Allow": "GET, POST"}
            )
        http.check_declared_length(request.headers, self.body_limit(request.headers))
        zone = request.headers.get("x-timezone")
        if zone:
            try:
                CALLER_ZONE.set(ZoneInfo(zone))
            except (KeyError, ValueError, OSError):
                # OSError: a name that is a directory of the zone database ("Asia") or too long for a file name.
                raise http.RequestRefused(
                    400, "INVALID_INPUT", "Unknown time zone {zone}.", zone=repr(zone[:64])
                ) from None
        # One session (so one pooled connection and one transaction) for the whole request: the token check
        # reads on it first, then the operation adopts it (schema.context.Context). Opening it connects nothing.
        session = request.state.session = self.state.sessionmaker()
        try:
            # Credentials that are present but not valid are refused outright (never downgraded to anonymous).
            try:
                request.state.viewer = await self.state.authenticate(request, session)
            except auth.Unauthenticated as exc:
                raise http.RequestRefused(
                    401, "UNAUTHENTICATED", str(exc), headers={"WWW-Authenticate": "Bearer"}
                ) from exc
            if http.is_multipart(request.headers):
                return await self._upload(request, session)
            return await self.run(request)
        finally:
            # The operation closes it when it ends; this covers every way out before or around it.
            await session.close()

    # -- uploads (issue 17): a multipart body is read only for a signed-in caller, a few at once per process --
    async def _upload(self, request: Request, session: AsyncSession) -> Response:
        http.require_signed_in_for_upload(request.state.viewer.role is not None)  # the body still unread
        # 403 for a caller who may import nothing, the body still unread and before a slot is taken. Decided
        # from the viewer the token check built (nothing read); the refusal audited like a mutation's denial.
        viewer = request.state.viewer
        if not any(access.can(viewer, kind.permission) for kind in imports.KINDS.values()):
            await session.rollback()  # the token check's transaction ends before the audit's own one
            await audit.record_separately(
                self.state.sessionmaker,
                viewer,
                [audit.AuditRecord(action="denied", operation="upload", detail="may not import")],
                self.state.clock(),
                observability.current_request_id() or "",
            )
            http.require_may_import(False)
        self.uploads.take()  # 429 past the limit, the body still unread
        try:
            # The token check's transaction ends here: no pooled connection waits while the body streams in
            # or while the import waits for its slot and parses (the write opens its own transaction).
            await session.rollback()
            return await self.run(request)
        finally:
            self.uploads.give_back()

    # -- what strawberry's view lets us replace -------------------------------------------------------------

    def decode_json(self, data: str | bytes) -> object:
        return http.decode_json(data)

    def parse_json(self, data: str | bytes) -> Any:
        return http.decode_json(data)

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData | list[GraphQLRequestData]:
        if request.method == "GET":
            data: object = self.parse_query_params(request.query_params)
        else:
            content_type, _ = parse_content_type(request.content_type or "")
            if content_type == http.MULTIPART_FORM_DATA and isinstance(request, EdgeRequestAdapter):
                return await http.multipart_operations(
                    request.headers,
                    request.stream(),
                    max_json_bytes=self.state.settings.max_body_bytes,
                    deadline_seconds=self.state.settings.import_upload_seconds,
                )
            if content_type != http.APPLICATION_JSON:
                raise http.RequestRefused(415, "INVALID_REQUEST", "Send the request as application/json.")
            data = http.decode_json(await request.get_body())
        return http.operations(data, self.state.settings.max_batch)

    # -- uploads (GraphQL multipart request spec; yunshegong.http) --
    def body_limit(self, headers: Headers) -> int:
        """The largest body read: the upload limit for multipart/form-data, the JSON limit otherwise."""
        settings = self.state.settings
        if http.is_multipart(headers):
            return http.multipart_limit(settings.import_max_bytes, settings.max_body_bytes)
        return settings.max_body_bytes

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: Any,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """One operation, counted for /metrics under its root fields (labelled by the schema as it executed:
        operation_labels.OperationLabel): latency and the codes of its errors."""
        started = time.perf_counter()
        try:
            result = await self._execute_single(
                request, request_adapter, sub_response, context, root_value, request_data
            )
        except http.RequestRefused as refused:
            operation_labels.record_graphql_operation(time.perf_counter() - started, [refused.code])
            refused.counted = True  # type: ignore[attr-defined]
            raise
        codes = observability.result_codes(result.errors, result.data)
        operation_labels.record_graphql_operation(time.perf_counter() - started, codes)
        return result

    async def _execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: Any,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        try:
            return await super().execute_single(
                request, request_adapter, sub_response, context, root_value, request_data
            )
        except HTTPException as exc:
            cause = exc.__cause__
            if isinstance(cause, InvalidOperationTypeError) and request_adapter.method == "GET":
                # GraphQL-over-HTTP: a mutation over GET is a method the operation does not allow.
                raise http.RequestRefused(
                    405, "INVALID_REQUEST", "Send mutations with POST.", headers={"Allow": "POST"}
                ) from exc
            if isinstance(cause, CannotGetOperationTypeError) and cause.operation_name is not None:
                refused = http.RequestRefused(
                    400, "INVALID_REQUEST", "Unknown operation named {name}.", name=repr(cause.operation_name)
                )
            else:
                refused = http.RequestRefused(400, "INVALID_REQUEST", exc.reason)
            if getattr(context, "in_batch", False):
                # The batch's other operations run at the same time and may have written: this one answers
                # its own error, and the response stays 200 (a 400 would tell the client nothing happened).
                return ExecutionResult(
                    data=None,
                    errors=[
                        GraphQLError(translate(refused.template, refused.params), extensions={"code": refused.code})
                    ],
                )
            raise refused from exc

    async def execute_operation(  # type: ignore[override]
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Context,
        root_value: Any,
        sub_response: Response,
    ) -> Any:
        context.in_batch = isinstance(request_data, list)
        return await super().execute_operation(
            request, request_adapter, request_data, context, root_value, sub_response
        )

    async def get_sub_response(self, request: Request) -> Response:
        sub_response = await super().get_sub_response(request)
        # The media type negotiated from Accept, read back by create_response.
        sub_response.media_type = http.response_media_type(request.headers.get("accept"))
        return sub_response

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        media_type = sub_response.media_type or http.APPLICATION_JSON
        results = response_data if isinstance(response_data, list) else [response_data]
        status = sub_response.status_code
        if any(_code_in(result, "UNAVAILABLE") for result in results) and not any(map(_produced, results)):
            # The database is gone and nothing was answered: the whole response says so, and when to retry.
            # (Where part of a document or batch did run, the answer stays 200 with UNAVAILABLE on the fields
            # that failed: a client retrying the whole request on a 503 would repeat what already happened.)
            status = 503
            sub_response.headers["Retry-After"] = str(http.RETRY_AFTER_SECONDS)
        elif media_type == http.GRAPHQL_RESPONSE_JSON:
            # GraphQL-over-HTTP: a request that failed before execution (parse, validation, variables) is
            # a 4xx without `data`; application/json clients keep the legacy 200.
            refused = [_request_error(result) for result in results]
            for result, is_refused in zip(results, refused, strict=True):
                if is_refused:
                    result.pop("data", None)
            if all(refused):
                status = 400
        response = Response(self.encode_json(response_data), status_code=status or 200, media_type=media_type)
        response.headers.raw.extend(h for h in sub_response.headers.raw if h[0] != b"content-type")
        if sub_response.background:
            response.background = sub_response.background
        return response

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        # An error raised outside the operation (e.g. by an extension's cleanup) never met SafeErrors.
        if result.errors and any(not (e.extensions or {}).get("code") for e in result.errors):
            context = request.state.graphql_context if hasattr(request.state, "graphql_context") else None
            request_id = getattr(context, "request_id", "-")
            result.errors = [
                e if (e.extensions or {}).get("code") else safe_error(e, request_id, None) for e in result.errors
            ]
        return await super().process_result(request, result)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    async def render_graphql_ide(self, request: Request) -> Response:
        static = html.escape(request.scope.get("root_path", "") + GRAPHIQL_STATIC, quote=True)
        return HTMLResponse(GRAPHIQL_PAGE.read_text(encoding="utf-8").replace("{{static}}", static))

    async def get_context(self, request: Any, response: Any) -> Context:  # type: ignore[override]
        viewer = getattr(request.state, "viewer", None) or Viewer()
        context = Context(
            app=self.state,
            viewer=viewer,
            request=request,
            response=response,
            _session=getattr(request.state, "session", None),
            # The id the request's log lines and X-Request-Id carry (observability.RequestMiddleware).
            request_id=observability.current_request_id() or observability.new_request_id(),
        )
        request.state.graphql_context = context
        # A websocket's context is made once, before connection_init says who is asking: plugins' state is made
        # per operation and event, for the checked viewer (schema.subscriptions.context.LiveContext.extend).
        if self.state.host is not None and request.scope.get("type") != "websocket":
            for plugin, value in self.state.host.call_each("extend_context", context=context):
                if value is not None:
                    context.plugin_state[plugin.name] = value
        return context


def _codes(result: GraphQLHTTPResponse) -> list[Any]:
    return [(e.get("extensions") or {}).get("code") for e in result.get("errors") or () if isinstance(e, dict)]


def _code_in(result: GraphQLHTTPResponse, code: str) -> bool:
    return code in _codes(result)


def _request_error(result: GraphQLHTTPResponse) -> bool:
    """Whether the operation failed before execution began because of the request (no data, and no error
    located in the result). A fault of the service at that point (INTERNAL_ERROR) is not the client's."""
    errors = result.get("errors") or []
    return (
        result.get("data") is None
        and bool(errors)
        and all("path" not in e for e in errors)
        and not _code_in(result, "INTERNAL_ERROR")
    )


def _produced(result: GraphQLHTTPResponse) -> bool:
    """Whether an operation answered anything (a root field with a value)."""
    data = result.get("data")
    return isinstance(data, dict) and any(value is not None for value in data.values())


def create_app(
    settings: Settings | None = None,
    *,
    engine: Any = None,
    state: AppState | None = None,
    host: PluginHost | None = None,
) -> Starlette:
    """The ASGI app. Pass `engine` (tests, embedding) or let the lifespan open one from settings; pass
    `host` or let it load the installed plugins (settings.plugins limits which)."""
    settings = settings or Settings.from_env()
    owned: dict[str, Any] = {}
    if settings.sealing_keys is not None:
        # Keys given in code (not only through the environment) are the ones services seal with.
        from core.services import sealing

        sealing.configure(settings.sealing_keys)

    # The gauges of /metrics (pool, outbox depth, subscriptions): read every few seconds in each worker.
    gauges = observability.GaugeSources()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.gc_tuning:
            tune_garbage_collector()
        gauges.start()
        jobs = None
        if settings.jobs_interval > 0:
            from core.jobs import run_forever

            jobs = asyncio.create_task(run_forever(state, settings.jobs_interval))
        # -- notification delivery (docs/notifications.md): the outbox worker, unless it runs apart --
        delivery = asyncio.create_task(delivery_worker.run_forever()) if delivery_worker is not None else None
        app.state.delivery_worker = delivery_worker
        yield
        if delivery is not None:
            delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await delivery
        if jobs is not None:
            jobs.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await jobs
        # Live updates: the LISTEN connection closes, open subscriptions end.
        from core import live

        await live.shutdown()
        await gauges.stop()
        if "engine" in owned:
            await owned["engine"].dispose()

    if state is None:
        if engine is None:
            from core.database import app_url, create_engine

            if settings.database_url is None:
                raise RuntimeError("create_app needs settings.database_url or an engine")
            # Served as the app role, which row-level security applies to (DATABASE_URL is the owner's).
            served = app_url(settings.database_url, settings.app_database_url)
            engine = owned["engine"] = create_engine(
                served,
                pool_size=settings.db_pool_size,
                max_overflow=settings.db_max_overflow,
                statement_timeout_ms=settings.db_statement_timeout_ms,
            )
        if host is None:
            host = build_plugin_host(enabled=settings.plugins)
        state = AppState(settings=settings, sessionmaker=create_sessionmaker(engine), host=host)
        state.authenticate = bearer_authenticator(state)
    # A malformed plugin job stops startup here, naming the plugin, not later inside the job runner.
    from core.jobs import plugin_jobs
    from core.plugin_settings import load as load_plugin_settings
    from core.services import passwords
    from core.services.plugin_roles import plugin_roles

    # Password hashing runs in worker threads, this many at once; more callers wait briefly, then BUSY.
    passwords.configure(settings.password_hash_concurrency)
    plugin_jobs(state.host)
    # -- notification delivery: the worker of this process (a malformed plugin channel stops startup here) --
    delivery_worker = None
    if settings.delivery_in_serve:
        from core.delivery import build_worker

        delivery_worker = build_worker(state.sessionmaker, settings, state.host, clock=state.clock)
    plugin_roles(state.host)
    if state.host is not None:
        state.host._plugin_settings = load_plugin_settings(state.host)  # type: ignore[attr-defined]
    graphql = GraphQLApp(state, graphql_ide="graphiql" if settings.graphiql else None)
    # -- live updates: where this process LISTENs (one connection, opened by the first subscriber; core.live) --
    from core import live

    listened = engine if engine is not None else state.sessionmaker.kw.get("bind")
    live.configure(
        settings.listen_database_url or (listened.url if listened is not None else settings.database_url),
        queue_size=settings.live_queue_size,
    )
    db_engine = engine

    async def healthz(request: Request) -> JSONResponse:
        ok = db_engine is not None and await ping(db_engine)
        return JSONResponse(
            {"status": "ok" if ok else "degraded", "database": "ok" if ok else "unreachable"},
            status_code=200 if ok else 503,
        )

    gauges.pool = getattr(getattr(db_engine, "sync_engine", None), "pool", None)
    # The outbox's depth (counts only, through a SECURITY DEFINER function: no organisation's rows) and this
    # process's open subscriptions.
    gauges.outbox_depth = outbox_depth_reader(state.sessionmaker)
    gauges.subscription_count = live.subscriber_count
    metrics = metrics_endpoint(settings, gauges)

    # Outermost: the request id is set before anything logs, and every answer is counted (CORS refusals too).
    middleware = [Middleware(observability.RequestMiddleware, trusted_proxies=settings.trusted_proxies)]
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
                expose_headers=["X-Request-Id"],
            )
        )
    app = Starlette(
        routes=[
            # Every method reaches the view, which answers the ones it does not serve with a JSON 405.
            Route("/graphql", graphql),
            WebSocketRoute("/graphql", graphql),  # subscriptions (graphql-transport-ws)
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Mount(GRAPHIQL_STATIC, StaticFiles(directory=STATIC / "graphiql"), name="graphiql-static"),
            # -- exports (issue 17): GET /export/{name}.csv|.xlsx, the API's lists as spreadsheets --
            exports.route(state, graphql.schema),
            # -- the situation board (issue 17): its page and its files (board_page below) --
            Route("/board", board_page, methods=["GET"]),
            Mount(BOARD_STATIC, StaticFiles(directory=STATIC / "board"), name="board-static"),
        ],
        middleware=middleware,
        lifespan=lifespan,
    )
    # Where the gauges read from (observability.GaugeSources): replaceable, e.g. by tests.
    app.state.gauges = gauges
    return app


# -- the situation board (issue 17): /board, a static page that is a client of /graphql like any other --
BOARD_PAGE = STATIC / "board" / "index.html"
BOARD_STATIC = "/board/static"
# The page runs only its own files (no inline script or style, no CDN) and talks only to this service.
BOARD_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'{sockets}; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# A Host header that is a host name or address and a port, nothing else: it is written into the CSP.
_PLAIN_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


async def board_page(request: Request) -> Response:
    """GET /board. connect-src names ws:/wss: to this host too: 'self' covers the websocket only under CSP
    level 3."""
    host = request.headers.get("host", "")
    sockets = f" ws://{host} wss://{host}" if _PLAIN_HOST.fullmatch(host) else ""
    return HTMLResponse(
        BOARD_PAGE.read_text(encoding="utf-8"),
        headers={
            "Content-Security-Policy": BOARD_CSP.format(sockets=sockets),
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        },
    )


def worker_app() -> Starlette:
    """The app of each worker process of `yunshegong serve --workers N` (uvicorn imports it by name, as a
    factory): built from the environment, which the parent prepared -- DATABASE_URL of the database it
    started and migrated, PROMETHEUS_MULTIPROC_DIR shared by the workers' metrics."""
    return create_app(Settings.from_env())


def outbox_depth_reader(sessionmaker: Any) -> Callable[[], Awaitable[Any]]:
    async def read() -> Any:
        from core.delivery import depth

        async with sessionmaker() as session:
            return await depth(session)

    return read


def metrics_endpoint(
    settings: Settings, gauges: observability.GaugeSources
) -> Callable[[Request], Awaitable[Response]]:
    """GET /metrics: Prometheus text exposition (metrics_access says who may read it). A scrape reads only
    what the process holds: the outbox depth is the background refresher's last reading (GaugeSources), so
    scraping never queries the database."""
    expected = settings.metrics_token
    access = metrics_access(settings)
    if access == "closed":
        log.warning(
            "/metrics is closed: the service listens on %s; set YUNSHEGONG_METRICS_TOKEN (or "
            "YUNSHEGONG_METRICS_PUBLIC=true) to serve it",
            settings.host,
        )

    async def metrics(request: Request) -> Response:
        if access == "closed":
            return http.error_response(
                403,
                "FORBIDDEN",
                translate(_("Metrics are not served on this address without a token: set YUNSHEGONG_METRICS_TOKEN.")),
                media_type=http.APPLICATION_JSON,
            )
        if expected is not None:
            scheme, _space, token = (request.headers.get("authorization") or "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
                return http.error_response(
                    401,
                    "UNAUTHENTICATED",
                    translate(_("Send the metrics token: `Authorization: Bearer <token>`.")),
                    media_type=http.APPLICATION_JSON,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        await gauges.refresh_local()
        body, content_type = observability.render()
        return Response(body, media_type=content_type)

    return metrics


def metrics_access(settings: Settings) -> Literal["token", "open", "closed"]:
    """Who may read /metrics (operation counts, error rates, pool and queue sizes: what an attacker would
    like to watch). With a token set, whoever sends it. Without one, everyone only where nobody else can
    connect -- the service listens on a loopback address and no trusted proxy forwards to it (a proxy on the
    same machine would make /metrics as public as the proxy) -- or when YUNSHEGONG_METRICS_PUBLIC says the
    network is private; otherwise nobody."""
    if settings.metrics_token is not None:
        return "token"
    if settings.metrics_public:
        return "open"
    return "open" if _loopback(settings.host) and not settings.trusted_proxies else "closed"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


# Young-generation threshold: Python's default (700 allocations) runs a collection many times per page of
# GraphQL (each field makes coroutines, futures and dicts), and each one walks the young objects of every
# request in flight. Collections still run, just hundreds of times less often; older generations as before.
GC_YOUNG_THRESHOLD = 50_000


def tune_garbage_collector() -> None:
    """Once the service is built (schema, plugins, pools): move everything alive into the permanent
    generation, which collections no longer walk (a full collection used to traverse the whole schema and
    ORM metadata every time), and collect young garbage in larger batches. Measured in bench/requests_page."""
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def bearer_authenticator(state: AppState) -> Callable[[Any, AsyncSession], Awaitable[Viewer]]:
    """`Authorization: Bearer <JWT or API token>` → the viewer; no header → anonymous."""

    async def authenticate(request: Any, session: AsyncSession) -> Viewer:
        header = request.headers.get("authorization")
        if not header:
            return Viewer()
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise auth.Unauthenticated("Use `Authorization: Bearer <token>`.")
        secret = await state.token_secret()
        return await auth.authenticate_bearer(
            session, token.strip(), secret, state.clock(), state.plugin_permissions, state.host
        )

    return authenticate
