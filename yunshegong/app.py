"""create_app(): the Starlette application serving /graphql and /healthz."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL

from core.database import create_sessionmaker, ping
from core.plugins import PluginHost, build_plugin_host
from core.services import auth
from core.services.context import Viewer
from core.settings import Settings
from schema.build import CALLER_ZONE, build_schema
from schema.context import AppState, Context

log = logging.getLogger("yunshegong")


class GraphQLApp(GraphQL):
    def __init__(self, state: AppState, **kwargs: Any) -> None:
        super().__init__(build_schema(state.settings, state.host), **kwargs)
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Credentials that are present but not valid are refused outright (never downgraded to anonymous).
        if scope["type"] == "http":
            request = Request(scope, receive)
            zone = request.headers.get("x-timezone")
            # Set for every request (None without the header): a server running several requests in one
            # task (e.g. an in-process test client) must not carry one caller's zone into the next.
            CALLER_ZONE.set(None)
            if zone:
                try:
                    CALLER_ZONE.set(ZoneInfo(zone))
                except (KeyError, ValueError):
                    message = f"Unknown time zone {zone!r}."
                    body = {"errors": [{"message": message, "extensions": {"code": "INVALID_INPUT"}}]}
                    await JSONResponse(body, status_code=400)(scope, receive, send)
                    return
            try:
                scope.setdefault("state", {})["viewer"] = await self.state.authenticate(request)
            except auth.Unauthenticated as exc:
                body = {"errors": [{"message": str(exc), "extensions": {"code": "UNAUTHENTICATED"}}]}
                response = JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def get_context(self, request: Any, response: Any) -> Context:  # type: ignore[override]
        viewer = request.scope.get("state", {}).get("viewer") or Viewer()
        context = Context(app=self.state, viewer=viewer, request=request, response=response)
        if self.state.host is not None:
            for plugin, value in self.state.host.call_each("extend_context", context=context):
                if value is not None:
                    context.plugin_state[plugin.name] = value
        return context


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

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        jobs = None
        if settings.jobs_interval > 0:
            from core.jobs import run_forever

            jobs = asyncio.create_task(run_forever(state, settings.jobs_interval))
        yield
        if jobs is not None:
            jobs.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await jobs
        if "engine" in owned:
            await owned["engine"].dispose()

    if state is None:
        if engine is None:
            from core.database import app_url, create_engine

            if settings.database_url is None:
                raise RuntimeError("create_app needs settings.database_url or an engine")
            # Served as the app role, which row-level security applies to (DATABASE_URL is the owner's).
            served = app_url(settings.database_url, settings.app_database_url)
            engine = owned["engine"] = create_engine(served, pool_size=settings.db_pool_size)
        if host is None:
            host = build_plugin_host(enabled=settings.plugins)
        state = AppState(settings=settings, sessionmaker=create_sessionmaker(engine), host=host)
        state.authenticate = bearer_authenticator(state)
    # A malformed plugin job stops startup here, naming the plugin, not later inside the job runner.
    from core.jobs import plugin_jobs
    from core.plugin_settings import load as load_plugin_settings
    from core.services.plugin_roles import plugin_roles

    plugin_jobs(state.host)
    plugin_roles(state.host)
    if state.host is not None:
        state.host._plugin_settings = load_plugin_settings(state.host)  # type: ignore[attr-defined]
    graphql = GraphQLApp(state, graphql_ide="graphiql" if settings.graphiql else None)
    db_engine = engine

    async def healthz(request: Request) -> JSONResponse:
        ok = db_engine is not None and await ping(db_engine)
        return JSONResponse(
            {"status": "ok" if ok else "degraded", "database": "ok" if ok else "unreachable"},
            status_code=200 if ok else 503,
        )

    middleware = []
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
            )
        )
    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        middleware=middleware,
        lifespan=lifespan,
    )


def bearer_authenticator(state: AppState) -> Callable[[Any], Awaitable[Viewer]]:
    """`Authorization: Bearer <JWT or API token>` → the viewer; no header → anonymous."""

    async def authenticate(request: Any) -> Viewer:
        header = request.headers.get("authorization")
        if not header:
            return Viewer()
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise auth.Unauthenticated("Use `Authorization: Bearer <token>`.")
        secret = await state.token_secret()
        async with state.sessionmaker() as session:
            return await auth.authenticate_bearer(
                session, token.strip(), secret, state.clock(), state.plugin_permissions, state.host
            )

    return authenticate
