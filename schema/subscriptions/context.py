"""Who a websocket connection acts for, and the context of each operation on it.

A connection is authenticated in `connection_init` (or by the upgrade request's Authorization header), with
the bearer check the HTTP path uses. That check is not trusted afterwards: every operation (query, mutation
or subscription) and every event a subscription delivers runs in a fresh session whose transaction starts
with the same bearer check, as an HTTP request does. A token expired, revoked or downgraded meanwhile is
refused there (the connection ends), a plugin role withdrawn is gone, and nothing is held between events.
Plugins' extend_context runs for each operation and event, with that checked context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import jwt

from core import observability
from core.errors import DomainError
from core.services import auth
from core.services.context import Viewer
from schema.context import AppState, Context


class ConnectionEnded(DomainError):
    """The connection's credential stopped working: the operation ends with UNAUTHENTICATED and the transport
    closes the connection (4403)."""

    def __init__(self) -> None:
        super().__init__("UNAUTHENTICATED", "The token has been revoked; sign in again.")


@dataclass(eq=False)
class LiveConnection:
    """One websocket connection's caller: the credential it presented and who that is now."""

    app: AppState
    authorization: str | None = None
    viewer: Viewer = field(default_factory=Viewer)
    # The upgrade request (headers, client address), for what reads the request (e.g. extend_context hooks).
    request: Any = None
    ended: bool = False
    # When the credential expires by itself (a sign-in token's `exp`; None for API tokens): the transport
    # closes the connection then, even if no operation or event runs.
    expires_at: datetime | None = None
    # The caller's time zone and language (connection_init payload, else the upgrade request's X-Timezone and
    # Accept-Language), applied to each operation as the HTTP edge applies them to a request.
    zone: ZoneInfo | None = None
    locale: str | None = None

    async def authenticate(self, session: Any) -> Viewer:
        """Run the bearer check on `session` (its transaction then acts for the viewer it finds). Raises
        auth.Unauthenticated for a credential that no longer works (or none)."""
        if not self.authorization:
            raise auth.Unauthenticated("Sign in first.")
        client = getattr(self.request, "client", None)
        holder = SimpleNamespace(headers={"authorization": self.authorization}, client=client)
        viewer = await self.app.authenticate(holder, session)
        if viewer.role is None:
            raise auth.Unauthenticated("Sign in first.")
        self.viewer = viewer
        self.expires_at = _expiry(self.authorization)
        return viewer

    async def check(self) -> Viewer:
        """The bearer check in a transaction of its own (at connection_init, and when an "auth" event says
        the credential may have changed)."""
        async with self.app.sessionmaker() as session:
            try:
                return await self.authenticate(session)
            finally:
                await session.rollback()

    def holds(self, account_id: int | None, api_token_id: int | None) -> bool:
        return (account_id is not None and self.viewer.account_id == account_id) or (
            api_token_id is not None and self.viewer.api_token_id == api_token_id
        )


@dataclass(eq=False)
class LiveContext(Context):
    """The context of one operation on a websocket connection. Subscription fields call `begin_event()`
    before loading what an event names and `end_event()` once it was delivered."""

    connection: LiveConnection | None = None
    # Run once the current event's session is closed (e.g. live_events' reload slot): the transport ends each
    # event before sending its result, so what the event held is given back while the client reads.
    after_event: list[Callable[[], None]] = field(default_factory=list)

    async def begin_operation(self) -> None:
        """The operation's first transaction begins with the connection's bearer check, as an HTTP request's
        does: what connection_init accepted may have expired, been revoked or lost a role since. Raises
        ConnectionEnded when it no longer works (the transport then closes the connection)."""
        await self._begin()

    async def begin_event(self) -> None:
        """A fresh session whose transaction begins with the connection's bearer check (one statement, as
        on every HTTP request): the event is loaded by who the credential stands for now. Raises
        ConnectionEnded when it no longer works."""
        await self._begin()

    async def _begin(self) -> None:
        await self.end_event()
        assert self.connection is not None
        session = self.app.sessionmaker()
        try:
            viewer = await self.connection.authenticate(session)
        except auth.Unauthenticated:
            await session.close()
            self.connection.ended = True
            raise ConnectionEnded from None
        except BaseException:
            await session.close()
            raise
        self.viewer = viewer
        self._session = session
        self._adopted = True  # acts for the viewer from its first use (schema.context.Context._get_session)
        self.extend()

    def extend(self) -> None:
        """Plugins' per-request state (the extend_context hook), made afresh for this operation or event and
        the viewer it was just checked for: a plugin's DataLoaders never carry rows from one event to the
        next, nor from one operation to another."""
        self.plugin_state = {}
        host = self.app.host
        if host is not None:
            for plugin, value in host.call_each("extend_context", context=self):
                if value is not None:
                    self.plugin_state[plugin.name] = value

    async def end_event(self) -> None:
        """What the previous event read goes to the audit trail; its session and loaders go away."""
        try:
            if self._sensitive_reads:
                await self.flush_audit()
        finally:
            self.forget_loaded()
            self._memo.clear()
            self._plugins_check = None
            try:
                await self.close()
            finally:
                callbacks, self.after_event[:] = list(self.after_event), []
                for callback in callbacks:
                    callback()

    @classmethod
    def for_operation(cls, connection: LiveConnection, base: Context | None = None) -> LiveContext:
        context = cls(app=connection.app, viewer=connection.viewer, request=connection.request, connection=connection)
        # The connection's request id (core.observability's middleware sets one per websocket): its operations'
        # log lines and audit entries carry it, as an HTTP request's do.
        context.request_id = observability.current_request_id() or context.request_id
        if base is not None:
            # Not base.plugin_state: that was made once per connection, for nobody (before connection_init).
            context.response = base.response
        return context


def _expiry(authorization: str | None) -> datetime | None:
    """The `exp` of a sign-in token that the bearer check just accepted (its signature verified there; read
    here only for when it runs out). None for API tokens, which do not expire by themselves."""
    _scheme, _space, token = (authorization or "").partition(" ")
    token = token.strip()
    if not token or token.startswith(auth.API_TOKEN_PREFIX):
        return None
    try:
        expires = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        return None
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        return None
    try:
        return datetime.fromtimestamp(expires, UTC)
    except (OverflowError, OSError, ValueError):
        return None
