"""1,000 idle subscribers held by one service process (issue 16): memory per subscriber, database connections
held while idle, and the time one event takes to reach all of them.

A real `yunshegong serve` process (one worker, its defaults; YUNSHEGONG_LIVE_MAX_CONNECTIONS_PER_ACCOUNT raised
so one account may hold them all) on a fresh database with the demo data, so its memory is its own
(VmRSS from /proc/<pid>/status). This script is the client: N websocket connections (graphql-transport-ws),
each with one `helpRequestChanged` subscription as the demo's organisation administrator; the file-descriptor
soft limit is raised to the hard limit first (the service, started from here, inherits it).

1. RSS before: after one subscriber connected, received an event and left (one-time costs: the listener,
   the subscription machinery, the first reload).
2. N subscribers connect and subscribe; /metrics' `yunshegong_subscriptions` says when all are listening.
   RSS after, and the database's connections (pg_stat_activity): an idle subscriber holds none, so their
   number stays at the pool's and the listener's, whatever N.
3. One help request submitted over HTTP: time until the first and the last subscriber received it (each
   reloads it in its own short transaction as the subscriber), against the mutation's own HTTP answer.

    .venv/bin/python -m bench.idle_subscribers [--subscribers 1000 --connect-concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import resource
import time
from typing import Any

import asyncpg
import httpx

from bench.common import bench_database, percentile
from bench.live_latency import CHANGED, Subscriber, demo_community, serve, submit, with_demo
from bench.processes import Served
from core.database import asyncpg_dsn

DATABASE = "ysg_bench_idle_subscribers"


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def raise_fd_limit(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < needed:
        raise SystemExit(f"the open-file limit is {soft}, {needed} are needed: raise it (ulimit -n)")
    return soft


async def subscriptions(http: httpx.AsyncClient) -> float:
    text = (await http.get("/metrics")).text
    return sum(
        float(line.rpartition(" ")[2]) for line in text.splitlines() if line.startswith("yunshegong_subscriptions")
    )


async def backends(url: str) -> dict[str, int]:
    """The database's connections other than this one, by application name and state."""
    connection = await asyncpg.connect(**asyncpg_dsn(url))
    try:
        rows = await connection.fetch(
            "SELECT coalesce(nullif(application_name, ''), '-') AS app, coalesce(state, '-') AS state, count(*) "
            "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() GROUP BY 1, 2"
        )
    finally:
        await connection.close()
    return {f"{r['app']}/{r['state']}": int(r["count"]) for r in rows}


class Held:
    """A connected subscriber kept open by a task until `stop`; records when its next message arrives."""

    def __init__(self, service: Served, stop: asyncio.Event) -> None:
        self.service, self.stop = service, stop
        self.subscribed = asyncio.Event()
        self.arrivals: list[tuple[float, str]] = []
        self.task = asyncio.create_task(self._hold())

    async def _hold(self) -> None:
        async with Subscriber.connect(self.service.ws_url, self.service.token) as subscriber:
            await subscriber.subscribe(CHANGED)
            self.subscribed.set()
            stopping = asyncio.create_task(self.stop.wait())
            while not self.stop.is_set():
                receiving = asyncio.create_task(subscriber.next_title(3600))
                done, _ = await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if receiving in done:
                    self.arrivals.append((time.perf_counter(), receiving.result()))
                else:
                    receiving.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await receiving


async def connect_all(service: Served, count: int, concurrency: int, stop: asyncio.Event) -> list[Held]:
    held: list[Held] = []
    for start in range(0, count, concurrency):
        batch = [Held(service, stop) for _ in range(min(concurrency, count - start))]
        await asyncio.wait_for(asyncio.gather(*(h.subscribed.wait() for h in batch)), 120)
        held.extend(batch)
    return held


async def until(seconds: float, check: Any) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"not reached within {seconds:g} s")
        await asyncio.sleep(0.2)


async def main(args: argparse.Namespace) -> None:
    limit = raise_fd_limit(args.subscribers + 200)
    async with bench_database(DATABASE) as url:
        await with_demo(url)
        community = await demo_community(url)
        overrides = {"YUNSHEGONG_LIVE_MAX_CONNECTIONS_PER_ACCOUNT": str(args.subscribers + 10)}
        async with (
            serve(url, **overrides) as service,
            httpx.AsyncClient(base_url=service.http_url, timeout=60) as http,
        ):
            pid = service.process.pid
            # 1. one-time costs first: one subscriber, one event, gone
            async with Subscriber.connect(service.ws_url, service.token) as first:
                await first.subscribe(CHANGED)
                await until(30, lambda: _equals(subscriptions(http), 1))
                await submit(http, service.token, community, "预热")
                assert await first.next_title() == "预热"
            await until(30, lambda: _equals(subscriptions(http), 0))
            await asyncio.sleep(1)
            before, backends_before = rss_kib(pid), await backends(url)
            # 2. N subscribers, idle
            stop = asyncio.Event()
            started = time.perf_counter()
            held = await connect_all(service, args.subscribers, args.connect_concurrency, stop)
            await until(60, lambda: _equals(subscriptions(http), args.subscribers))
            connected_in = time.perf_counter() - started
            gc.collect()
            await asyncio.sleep(2)  # let the server settle (keep-alive tasks, buffers)
            after, backends_idle = rss_kib(pid), await backends(url)
            # 3. one event to everyone
            start = time.perf_counter()
            await submit(http, service.token, community, "全体")
            answered = time.perf_counter() - start
            await until(120, lambda: _all_received(held))
            arrivals = [h.arrivals[0][0] - start for h in held]
            wrong = sum(h.arrivals[0][1] != "全体" for h in held)
            after_event, backends_after = rss_kib(pid), await backends(url)
            stop.set()
            await asyncio.gather(*(h.task for h in held), return_exceptions=True)

    n = args.subscribers
    print(
        f"idle subscribers: one `yunshegong serve` process (pid {pid}), the demo data, {n} websocket connections "
        f"with one helpRequestChanged subscription each (one account; open-file limit {limit})"
    )
    print(f"  connected and subscribed in {connected_in:.1f} s ({args.connect_concurrency} at a time)")
    print(
        f"  service RSS: before {before / 1024:.1f} MiB, with {n} idle subscribers {after / 1024:.1f} MiB, "
        f"after one event to all {after_event / 1024:.1f} MiB"
    )
    print(
        f"  memory per idle subscriber: {(after - before) / n:.1f} KiB "
        f"(after the event: {(after_event - before) / n:.1f} KiB)"
    )
    print(
        f"  database connections: before {sum(backends_before.values())} {backends_before}; "
        f"idle with {n} subscribers {sum(backends_idle.values())} {backends_idle}; "
        f"after the event {sum(backends_after.values())} {backends_after}"
    )
    # The pool may have grown while N connections signed in at once (each connection_init checks its token in a
    # short transaction); an idle subscriber itself holds nothing: no session is busy and the total stays at
    # most the pool's size plus overflow, plus the LISTEN connection.
    busy = sum(v for k, v in backends_idle.items() if not k.endswith("/idle"))
    print(
        f"  while {n} subscribers are idle: {sum(backends_idle.values())} connections in all, {busy} not idle "
        f"(active or in a transaction; this count's own query is excluded)"
    )
    print(
        f"  one event to all {n}: first {min(arrivals) * 1000:.0f} ms, p50 {percentile(arrivals, 50) * 1000:.0f} ms, "
        f"p95 {percentile(arrivals, 95) * 1000:.0f} ms, last {max(arrivals) * 1000:.0f} ms; "
        f"the mutation's HTTP answer {answered * 1000:.0f} ms (last ÷ answer {max(arrivals) / answered:.1f}x); "
        f"wrong payloads: {wrong}"
    )


async def _equals(value: Any, expected: float) -> bool:
    return bool(await value == expected)


async def _all_received(held: list[Held]) -> bool:
    return all(h.arrivals for h in held)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=1000, help="idle subscribers to hold")
    parser.add_argument("--connect-concurrency", type=int, default=50, help="connections opened at a time")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
