"""End-to-end latency of live updates (issue 16): from a mutation (submitHelpRequest over HTTP) to the
subscriber's graphql-transport-ws `next` message, against the HTTP mutation's own round trip in the same run.

A real `yunshegong serve` process (the CLI, one worker, its defaults: delivery worker on, jobs off) on a
fresh database with the demo data (bench.common.bench_database: DATABASE_URL's server or a throwaway embedded
one). The demo's organisation administrator subscribes to `helpRequestChanged` over a websocket and submits
requests one at a time over a keep-alive HTTP connection; for each, the latency is the time from sending the
mutation to receiving the `next` message that names it (PostgreSQL announces on commit, the service's
listener fans out, the subscription reloads the request as the subscriber, and sends it), the baseline the
time from sending the mutation to its HTTP answer. Warm-up first, then the measured mutations.

Goal: p95 of mutation -> message <= 100 ms.

    .venv/bin/python -m bench.live_latency [--mutations 300 --warmup 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from bench import processes
from bench.common import bench_database, percentile, summary
from bench.processes import Served
from core.database import asyncpg_dsn, create_engine
from core.demo import load_demo
from schema import ids

GOAL_P95 = 0.100
DATABASE = "ysg_bench_live_latency"
PROTOCOL = "graphql-transport-ws"
SUBMIT = """mutation($c: ID!, $t: String!) { submitHelpRequest(input: {communityId: $c, title: $t, category: OTHER,
  urgency: HIGH, requesterName: "测试", requesterPhone: "13900000000"}) { helpRequest { id } errors { code } } }"""
CHANGED = "subscription { helpRequestChanged { change request { id title } } }"


def serve(url: str, **settings: str) -> contextlib.AbstractAsyncContextManager[Served]:
    """`yunshegong serve` (one worker, its defaults) on `url`, signed in as the demo's organisation
    administrator."""
    return processes.serve(url, "live", **settings)


async def demo_community(url: str) -> str:
    """A community of the demo administrator's organisation (read as the owner)."""
    connection = await asyncpg.connect(**asyncpg_dsn(url))
    try:
        found = await connection.fetchval(
            "SELECT min(c.id) FROM communities c JOIN accounts a ON a.organization_id = c.organization_id "
            "WHERE a.username = 'orgadmin'"
        )
    finally:
        await connection.close()
    return ids.encode("Community", int(found))


async def with_demo(url: str) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        await load_demo(engine)
    finally:
        await engine.dispose()


class Subscriber:
    """One graphql-transport-ws connection with one subscription; answers the server's pings."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, url: str, token: str) -> AsyncIterator[Subscriber]:
        async with websockets.connect(url, subprotocols=[PROTOCOL], max_queue=None) as ws:  # type: ignore[list-item]
            await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
            subscriber = cls(ws)
            message = await subscriber.receive(30)
            if message.get("type") != "connection_ack":
                raise RuntimeError(f"connection refused: {message}")
            yield subscriber

    async def subscribe(self, query: str) -> str:
        op = str(next(self._ids))
        await self.ws.send(json.dumps({"id": op, "type": "subscribe", "payload": {"query": query}}))
        # A subscription's first message is RESYNC, once the service listens: only then do changes reach it.
        first = await self.receive(60)
        change = first.get("payload", {}).get("data", {}).get("helpRequestChanged", {}).get("change")
        if first.get("type") != "next" or change != "RESYNC":
            raise RuntimeError(f"expected the subscription's RESYNC, got {first}")
        return op

    async def receive(self, seconds: float) -> dict[str, Any]:
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), seconds))
            if message.get("type") == "ping":
                await self.ws.send(json.dumps({"type": "pong"}))
                continue
            return message  # type: ignore[no-any-return]

    async def next_title(self, seconds: float = 30) -> str:
        message = await self.receive(seconds)
        if message.get("type") != "next":
            raise RuntimeError(f"expected a next message, got {message}")
        return str(message["payload"]["data"]["helpRequestChanged"]["request"]["title"])


async def submit(http: httpx.AsyncClient, token: str, community: str, title: str) -> None:
    body = (
        await http.post(
            "/graphql",
            json={"query": SUBMIT, "variables": {"c": community, "t": title}},
            headers={"Authorization": f"Bearer {token}"},
        )
    ).json()
    if body.get("errors") or body["data"]["submitHelpRequest"]["errors"]:
        raise RuntimeError(f"submitHelpRequest failed: {body}")


async def measure(service: Served, community: str, count: int, tag: str) -> tuple[list[float], list[float]]:
    """`count` mutations one after another: (mutation -> message, mutation -> HTTP answer) for each."""
    pushed: list[float] = []
    answered: list[float] = []
    async with (
        Subscriber.connect(service.ws_url, service.token) as subscriber,
        httpx.AsyncClient(base_url=service.http_url, timeout=30) as http,
    ):
        await subscriber.subscribe(CHANGED)
        # Listening once a change of its own arrives (the subscription starts asynchronously); a late probe's
        # message is skipped.
        for n in itertools.count():
            probe = f"{tag} 探测 {n}"
            await submit(http, service.token, community, probe)
            try:
                while await subscriber.next_title(2) != probe:
                    pass
                break
            except TimeoutError:
                continue
        for i in range(count):
            title = f"{tag} {i}"
            arrived = asyncio.create_task(subscriber.next_title())
            start = time.perf_counter()
            await submit(http, service.token, community, title)
            answered.append(time.perf_counter() - start)
            got = await arrived
            pushed.append(time.perf_counter() - start)
            if got != title:
                raise RuntimeError(f"expected {title!r}, the subscriber received {got!r}")
    return pushed, answered


async def main(args: argparse.Namespace) -> None:
    async with bench_database(DATABASE) as url:
        await with_demo(url)
        community = await demo_community(url)
        async with serve(url) as service:
            await measure(service, community, args.warmup, "预热")
            pushed, answered = await measure(service, community, args.mutations, "测量")
    p95, base95 = percentile(pushed, 95), percentile(answered, 95)
    print(
        f"live latency: one `yunshegong serve` process, the demo data, {args.mutations} mutations one at a time "
        f"after {args.warmup} to warm up"
    )
    print(f"  mutation -> subscriber's next message: {summary(pushed)}")
    print(f"  mutation -> its HTTP answer (baseline): {summary(answered)}")
    print(
        f"  ratio (message ÷ HTTP answer): p50 {percentile(pushed, 50) / percentile(answered, 50):.2f}x  "
        f"p95 {p95 / base95:.2f}x"
    )
    verdict = "MET" if p95 <= GOAL_P95 else "NOT MET"
    print(f"  goal p95 <= {GOAL_P95 * 1000:.0f} ms: {p95 * 1000:.1f} ms ({verdict})")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--mutations", type=int, default=300, help="measured mutations")
    parser.add_argument("--warmup", type=int, default=30, help="mutations before measuring")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
