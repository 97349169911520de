"""The per-request GraphQL context: one session, one lock, one loader set, who is asking."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.plugins import PluginHost
from core.services import plugins as plugin_service
from core.services.context import ServiceContext, Viewer, utc_now
from core.settings import Settings
from schema.loaders import Loaders

P = ParamSpec("P")
R = TypeVar("R")


async def anonymous(request: Any) -> Viewer:
    return Viewer()


@dataclass
class AppState:
    """What lives for the whole process and every request reads."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    clock: Callable[[], datetime] = utc_now
    host: PluginHost | None = None
    # Who is asking, from the HTTP request. Accounts (bearer tokens) plug in here.
    authenticate: Callable[[Any], Awaitable[Viewer]] = anonymous


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
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _loaders: Loaders | None = None
    _memo: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return self.app.settings

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            self._loaders = Loaders(self._get_session, self._lock)
        return self._loaders

    async def _get_session(self) -> AsyncSession:
        if self._session is None:
            self._session = self.app.sessionmaker()
        return self._session

    def service_context(self, session: AsyncSession) -> ServiceContext:
        ctx = ServiceContext(session=session, viewer=self.viewer, clock=self.app.clock, memo=self._memo)
        if self.app.host is not None:
            ctx.events = self.app.host
        return ctx

    async def require_plugin(self, name: str) -> None:
        """PLUGIN_DISABLED unless the viewer's organisation has enabled plugin `name`."""
        await self.read(plugin_service.ensure_enabled, name)

    async def read(
        self, fn: Callable[Concatenate[ServiceContext, P], Awaitable[R]], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Run a read-only service call on the request's session."""
        async with self._lock:
            session = await self._get_session()
            return await fn(self.service_context(session), *args, **kwargs)

    async def write(
        self, fn: Callable[Concatenate[ServiceContext, P], Awaitable[R]], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Run a service call in its own transaction: committed if it returns, rolled back if it raises."""
        async with self._lock:
            session = await self._get_session()
            if session.in_transaction():
                # A read earlier in this request opened a transaction; a write starts on a fresh snapshot.
                await session.rollback()
            try:
                async with session.begin():
                    result = await fn(self.service_context(session), *args, **kwargs)
            finally:
                # Loaded rows and memos may predate this write (or its rollback).
                self.loaders.clear()
                self._memo.clear()
        return result

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
