"""A graphql-transport-ws client (the `websockets` library) and an in-process server for subscription tests."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
import websockets
from websockets.asyncio.client import ClientConnection

PROTOCOL = "graphql-transport-ws"
# Long enough for a loaded 2-core machine; a passing test never waits for it (it only bounds a failure).
WAIT = 15.0


class Closed(Exception):
    def __init__(self, code: int | None) -> None:
        super().__init__(f"closed with {code}")
        self.code = code


class WsClient:
    """One graphql-transport-ws connection."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls, url: str, token: str | None, *, header: bool = False, ack: bool = True
    ) -> AsyncIterator[WsClient]:
        headers = {"Authorization": f"Bearer {token}"} if header and token else None
        async with websockets.connect(url, subprotocols=[PROTOCOL], additional_headers=headers) as ws:  # type: ignore[list-item]
            client = cls(ws)
            payload = {"authorization": f"Bearer {token}"} if token and not header else {}
            await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
            if ack:
                message = await client.receive()
                assert message["type"] == "connection_ack", message
            yield client

    async def receive(self, seconds: float = WAIT) -> dict[str, Any]:
        """The next message other than a ping (answered); Closed when the server closed the connection."""
        while True:
            try:
                raw = await asyncio.wait_for(self.ws.recv(), seconds)
            except websockets.ConnectionClosed as exc:
                raise Closed(exc.rcvd.code if exc.rcvd else None) from None
            message = json.loads(raw)
            if message.get("type") == "ping":
                await self.ws.send(json.dumps({"type": "pong"}))
                continue
            return message  # type: ignore[no-any-return]

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        op = str(next(self._ids))
        await self.ws.send(
            json.dumps({"id": op, "type": "subscribe", "payload": {"query": query, "variables": variables or {}}})
        )
        return op

    async def next(self, op: str, seconds: float = WAIT) -> dict[str, Any]:
        """The payload of the next `next` message of operation `op` (an error or completion fails)."""
        message = await self.receive(seconds)
        assert (message.get("id"), message["type"]) == (op, "next"), message
        return message["payload"]  # type: ignore[no-any-return]

    async def closed(self, seconds: float = WAIT) -> int | None:
        """The close code, once the server closes (messages before it are skipped)."""
        try:
            while True:
                await self.receive(seconds)
        except Closed as closed:
            return closed.code


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """`app` on a free local port, in this event loop; yields its websocket URL for /graphql."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning", ws="websockets-sansio")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/graphql"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def listening(count: int, seconds: float = WAIT) -> None:
    """Wait until this process holds `count` live subscriptions (each listens once it is counted)."""
    from core import live

    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while live.subscriber_count() < count:
        assert loop.time() < deadline, f"{live.subscriber_count()} of {count} subscriptions after {seconds}s"
        await asyncio.sleep(0.01)
