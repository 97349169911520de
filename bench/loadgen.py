"""A small HTTP/1.1 load generator: keep-alive connections, one request in flight per connection.

Every server in a comparison is measured with this same client from the same process. It is written on
asyncio streams and httptools (uvicorn's own parser) rather than httpx because httpx costs ~1 ms of
client CPU per request, which on a 2-core machine is taken from the servers being measured and would
compress every ratio towards 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import httptools


class HttpError(Exception):
    pass


class _ClosedWhileIdle(Exception):
    pass


class Connection:
    """One keep-alive connection; `post` sends a request and returns (status, body)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int) -> None:
        self.reader = reader
        self.writer = writer
        self.host = host
        self.port = port

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, host, port)

    async def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        head = [f"POST {path} HTTP/1.1", f"Host: {self.host}", "Content-Type: application/json"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        head.append(f"Content-Length: {len(body)}")
        request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        self.writer.write(request)
        try:
            return await self._response()
        except _ClosedWhileIdle:
            # The server closed the connection while it sat idle (servers are alternated, so a connection
            # can wait longer than a keep-alive timeout): nothing was answered, so open another and resend.
            await self.close()
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.writer.write(request)
            return await self._response()

    async def _response(self) -> tuple[int, bytes]:
        chunks: list[bytes] = []
        done = False
        received = False

        class Callbacks:
            def on_body(self, data: bytes) -> None:
                chunks.append(data)

            def on_message_complete(self) -> None:
                nonlocal done
                done = True

        parser = httptools.HttpResponseParser(Callbacks())
        while not done:
            try:
                data = await self.reader.read(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                if not received:
                    raise _ClosedWhileIdle
                raise HttpError("connection closed before the response was complete")
            received = True
            parser.feed_data(data)
        return parser.get_status_code(), b"".join(chunks)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


@dataclass
class Result:
    """Latencies (seconds) of every request, and how many completed in how long (for requests/s)."""

    samples: list[float] = field(default_factory=list)
    requests: int = 0
    elapsed: float = 0.0
    # The server's CPU time over the same requests, when the caller measured it.
    cpu_seconds: float = 0.0

    def add(self, other: Result) -> None:
        self.samples += other.samples
        self.requests += other.requests
        self.elapsed += other.elapsed
        self.cpu_seconds += other.cpu_seconds

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed if self.elapsed else 0.0


@dataclass
class Target:
    """A server and the request to send it; `check` raises on a response that is not the expected page."""

    name: str
    port: int
    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    connections: list[Connection] = field(default_factory=list)

    async def ensure_connections(self, count: int) -> list[Connection]:
        while len(self.connections) < count:
            self.connections.append(await Connection.open("127.0.0.1", self.port))
        return self.connections[:count]

    async def close(self) -> None:
        for connection in self.connections:
            await connection.close()
        self.connections.clear()


def check_ok(status: int, body: bytes) -> None:
    # A cheap check on every response (the first one of each server is compared in full elsewhere).
    if status != 200 or b'"errors"' in body[:200]:
        raise HttpError(f"unexpected response {status}: {body[:300]!r}")


async def run(target: Target, concurrency: int, seconds: float, min_requests: int) -> Result:
    """`concurrency` clients, each with its own connection and one request in flight, for `seconds` and at
    least `min_requests` requests in all. Latency is per request; requests/s counts until the last
    in-flight request has returned."""
    connections = await target.ensure_connections(concurrency)
    per_worker = -(-min_requests // concurrency)
    result = Result()

    async def worker(connection: Connection) -> None:
        count = 0
        while count < per_worker or time.perf_counter() < deadline:
            start = time.perf_counter()
            status, body = await connection.post(target.path, target.body, target.headers)
            result.samples.append(time.perf_counter() - start)
            check_ok(status, body)
            count += 1

    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(worker(c) for c in connections))
    result.elapsed = time.perf_counter() - started
    result.requests = len(result.samples)
    return result
