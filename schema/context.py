"""The per-request GraphQL context: one session, one lock, one loader set, who is asking."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import cached_property
from typing import Any, Concatenate, ParamSpec, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.exc import DBAPIError, PendingRollbackError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core import tenancy
from core.plugins import PluginHost
from core.services import audit, auth
from core.services import plugins as plugin_service
from core.services.common import domain_error_for
from core.services.context import ServiceContext, Viewer, utc_now
from core.services.matching_policy import MatchingPolicy
from core.settings import Settings
from schema.loaders import Loaders

P = ParamSpec("P")
R = TypeVar("R")


async def anonymous(request: Any, session: AsyncSession) -> Viewer:
    return Viewer()


@dataclass
class AppState:
    """What lives for the whole process and every request reads."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    clock: Callable[[], datetime] = utc_now
    host: PluginHost | None = None
    # Who is asking, from the HTTP request (yunshegong.app installs bearer-token authentication), read on the
    # request's own session (the operation then runs in that same transaction). Raises
    # auth.Unauthenticated for credentials that are present but not valid.
    authenticate: Callable[[Any, AsyncSession], Awaitable[Viewer]] = anonymous
    policy: MatchingPolicy = field(default_factory=MatchingPolicy.from_env)
    _secret: str | None = None

    async def token_secret(self) -> str:
        if self._secret is None:
            configured = self.settings.secret_key
            if configured is not None and len(configured) < 32:
                raise RuntimeError("YUNSHEGONG_SECRET_KEY must be at least 32 characters long")
            async with self.sessionmaker() as session:
                self._secret = await auth.token_secret(session, configured)
        return self._secret

    @cached_property
    def plugin_permissions(self) -> dict[str, frozenset[str]]:
        """Role → plugin permissions it holds: by default role, and platform administrators every permission
        held by rank (computed once: the host is fixed per process)."""
        return self.host.permissions_by_role() if self.host else {}


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


@dataclass
class Context:
    app: AppState
    viewer: Viewer = field(default_factory=Viewer)
    request: Any = None
    response: Any = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    # Per-request state plugins add through the extend_context hook, by plugin name.
    plugin_state: dict[str, Any] = field(default_factory=dict)
    _session: AsyncSession | None = None
    _adopted: bool = False
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _loaders: Loaders | None = None
    _memo: dict[str, Any] = field(default_factory=dict)
    _plugins_check: asyncio.Future[frozenset[str]] | None = None
    _sensitive_reads: dict[tuple[str, int], set[str]] = field(default_factory=dict)
    operation_name: str | None = None
    active_operations: int = 0
    # Set by the HTTP view for a batched request: its operations run side by side on this context.
    in_batch: bool = False

    def __post_init__(self) -> None:
        # A session handed over by the HTTP view (the token was checked on it) acts for the viewer from its
        # first use by this request on (_get_session), in the transaction the check began.
        self._adopted = self._session is not None

    @property
    def settings(self) -> Settings:
        return self.app.settings

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            self._loaders = Loaders(self._get_session, self._lock, self.viewer)
        return self._loaders

    def note_sensitive_read(self, record_type: str, record_id: int, field: str) -> None:
        """Remember that this request revealed a sensitive value; written to the audit trail at the end."""
        self._sensitive_reads.setdefault((record_type, record_id), set()).add(field)

    async def flush_audit(self) -> None:
        records = [
            audit.AuditRecord(
                action="read",
                operation=self.operation_name or "query",
                record_type=rtype,
                record_id=rid,
                fields=tuple(sorted(fields)),
            )
            for (rtype, rid), fields in sorted(self._sensitive_reads.items())
        ]
        self._sensitive_reads.clear()
        await audit.record_separately(self.app.sessionmaker, self.viewer, records, self.app.clock(), self.request_id)

    async def _get_session(self) -> AsyncSession:
        if self._session is None:
            self._session = self.app.sessionmaker()
            tenancy.bind(self._session, self.viewer)
        elif self._adopted:
            self._adopted = False
            await tenancy.rebind(self._session, self.viewer)
        return self._session

    @property
    def zone(self) -> tzinfo:
        """The caller's time zone: the request's X-Timezone (or the subscription's), else the deployment's."""
        from schema.build import CALLER_ZONE  # schema.build imports this module

        return CALLER_ZONE.get() or ZoneInfo(self.settings.timezone)

    def service_context(self, session: AsyncSession) -> ServiceContext:
        ctx = ServiceContext(
            session=session,
            viewer=self.viewer,
            clock=self.app.clock,
            memo=self._memo,
            policy=self.app.policy,
            zone=self.zone,
        )
        if self.app.host is not None:
            ctx.events = self.app.host
        return ctx

    async def require_plugin(self, name: str) -> None:
        """PLUGIN_DISABLED unless the viewer's organisation has enabled plugin `name`.

        One read per request, shared: every gate of the request awaits the same task, so the plugin fields of a
        page resume on the same tick and their DataLoaders batch the whole page. (A read per gate queues each on
        the session's lock, and the fields then resume one lock turn apart, in batches of a few rows.)"""
        if self._plugins_check is None:
            self._plugins_check = asyncio.ensure_future(self.read(plugin_service.enabled_plugins))
        enabled = await asyncio.shield(self._plugins_check)
        if name not in enabled:
            await self.read(plugin_service.ensure_enabled, name)  # the refusal, in its usual words and order

    async def read(
        self, fn: Callable[Concatenate[ServiceContext, P], Awaitable[R]], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Run a read-only service call on the request's session. A value the database refuses (out of range, bad
        data) is a typed error, as in `write`.

        The call runs as a task of its own, shielded from the field that awaits it: when that field is cancelled
        (a non-null root field beside it failed, nulling the whole answer), its statement still finishes and the
        lock is released after it. Cancelled mid-statement, asyncpg would close the request's connection, and
        the request's last step (audit, close) would answer UNAVAILABLE instead of the sibling's error."""
        task = asyncio.ensure_future(self._read_locked(fn, *args, **kwargs))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(_retrieve)  # its result or error is nobody's now: not a never-retrieved one
            raise

    async def _read_locked(
        self, fn: Callable[Concatenate[ServiceContext, P], Awaitable[R]], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        async with self._lock:
            session = await self._get_session()
            try:
                try:
                    return await fn(self.service_context(session), *args, **kwargs)
                except PendingRollbackError:
                    # A sibling field cancelled mid-statement (a non-null field beside it failed) left the
                    # connection unusable: this read, and the request's later ones, run on a fresh session.
                    await self._close_session()
                    session = await self._get_session()
                    return await fn(self.service_context(session), *args, **kwargs)
            except DBAPIError as exc:
                error = domain_error_for(exc)
                if error is None:
                    raise
                # The failed statement aborted the transaction: the request's later reads get a fresh session.
                # Closed, not rolled back: a rollback would expire the objects sibling fields are still
                # reading (a lazy refresh then fails outside the greenlet); closing keeps what they loaded.
                await self._close_session()
                raise error from exc

    async def write(
        self,
        fn: Callable[Concatenate[ServiceContext, P], Awaitable[R]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """Run a service call in its own transaction: committed if it returns, rolled back if it raises.
        The audit entry of the write is part of the same transaction."""
        operation = self.operation_name or "mutation"
        async with self._lock:
            session = await self._get_session()
            current = session.get_transaction()
            if current is not None and not current.is_active:
                await session.rollback()
            # The token check (and any read before this write) opened the request's transaction: the write
            # continues it rather than paying a ROLLBACK and a BEGIN. Under READ COMMITTED every statement sees
            # what is committed when it starts, so nothing read earlier constrains the write; what the session
            # loaded is expired, so the write reads its rows afresh (as after a rollback).
            session.expire_all()
            try:
                try:
                    sctx = self.service_context(session)
                    sctx.pending_write = audit.PendingWrite(operation, self.request_id)
                    result = await fn(sctx, *args, **kwargs)
                    if not sctx.pending_write.written:
                        audit.record(sctx, _write_record(operation, result), self.request_id)
                    await session.commit()
                except BaseException:
                    await session.rollback()
                    raise
            except DBAPIError as exc:
                # Refusals the database makes at flush or commit (row-level security, constraints).
                error = domain_error_for(exc)
                if error is None:
                    raise
                raise error from exc
            finally:
                # Loaded rows, memos and the plugin check may predate this write (or its rollback).
                self.loaders.clear()
                self._memo.clear()
                self._plugins_check = None
        return result

    async def record_attempt(
        self, fn: Callable[Concatenate[ServiceContext, P], Awaitable[R]], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Run `fn` in its own transaction and commit whatever it recorded, success or not (sign-ins:
        a failed attempt must count towards throttling and stay in the audit trail)."""
        async with self._lock:
            session = await self._get_session()
            if session.in_transaction():
                await session.rollback()
            async with session.begin():
                return await fn(self.service_context(session), *args, **kwargs)

    async def close(self) -> None:
        # Under the lock: a shielded read of a cancelled field may still be running its statement.
        async with self._lock:
            await self._close_session()

    async def _close_session(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def forget_loaded(self) -> None:
        """Drop what the request's loaders hold, once its operations are over. A loader's batch function
        refers back to the loader set, a cycle only the garbage collector frees: every row and object a page
        loaded (~1,200 for the bench's page) waited for it, and made each young collection walk them."""
        if self._loaders is not None:
            self._loaders.clear()
            self._loaders = None


def _write_record(operation: str, result: Any) -> audit.AuditRecord:
    record_id = getattr(result, "id", None)
    if isinstance(record_id, int):
        return audit.AuditRecord(
            action="write", operation=operation, record_type=type(result).__name__, record_id=record_id
        )
    return audit.AuditRecord(action="write", operation=operation, detail=str(result)[:200])
