"""Channels and helpers for the delivery tests."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.delivery import Message, PermanentFailure, TemporaryFailure
from core.services import outbox
from core.services.context import ServiceContext


@dataclass
class Recording:
    """Accepts every message (or those `only` allows); records each send. `fail` is a list of what the next
    sends raise ("temporary", "permanent"), one per send, then they succeed. `pause` widens race windows."""

    name: str = "rec"
    fail: list[str] = field(default_factory=list)
    pause: float = 0.0
    sent: list[Message] = field(default_factory=list)
    tried: int = 0

    def accepts(self, message: Message) -> bool:
        return True

    async def send(self, message: Message) -> None:
        self.tried += 1
        if self.pause:
            await asyncio.sleep(self.pause)
        if self.fail:
            how = self.fail.pop(0)
            if how == "permanent":
                raise PermanentFailure("gateway refused the number")
            raise TemporaryFailure("gateway timed out")
        self.sent.append(message)

    def counts(self) -> Counter[int]:
        return Counter(m.notification_id for m in self.sent)


async def queue(ctx: ServiceContext, n: int, *, phone_prefix: str = "1370000") -> list[int]:
    """`n` messages to people without accounts, committed; their notification ids."""
    for i in range(n):
        await outbox.notify(ctx, "test.ping", outbox.Recipient.person(f"居民{i}", f"{phone_prefix}{i:04d}"), {"i": i})
    await ctx.session.commit()
    found = [r[0] for r in await ctx.session.execute(text("SELECT id FROM notifications ORDER BY id"))]
    await ctx.session.commit()  # no transaction left open with this caller's settings
    return found


async def rows(owner_engine: AsyncEngine, sql: str) -> list[tuple[object, ...]]:
    """The truth, read by the owner (row-level security does not apply)."""
    async with owner_engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(text(sql))]


class Receiver:
    """A webhook receiver on 127.0.0.1 (uvicorn in a thread): records every request, answers `status`."""

    def __init__(self) -> None:
        import threading

        import uvicorn
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import Response, StreamingResponse
        from starlette.routing import Route

        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.peers: list[int] = []  # the client's port of each request: one per TCP connection
        self.status = 200
        self.endless = False

        async def forever() -> Any:
            chunk = b"x" * 65536
            while True:
                yield chunk

        async def hook(request: Request) -> Response:
            self.requests.append((dict(request.headers), await request.body()))
            self.peers.append(request.client.port if request.client else 0)
            if self.endless:
                return StreamingResponse(forever(), status_code=self.status)
            return Response(status_code=self.status)

        app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Receiver:
        import time

        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the receiver did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
