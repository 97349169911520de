"""Throughput of the requests page with `yunshegong serve --workers 1` against `--workers 2` (issue 16).

The requests-page benchmark's page and data (bench.requests_page: 1,257 requests, 162 communities, ~2,400
assignments; the page of 100 with community, assignments and volunteer name, read as the demo's organisation
member through the app role), one database, both services started by the real CLI on it (`serve` with
DATABASE_URL: each migrates nothing and serves), measured by the same load generator (bench.loadgen:
keep-alive connections, one request in flight each; written for low client CPU) in this process, which runs
nothing else. Blocks alternate 1/2/1/2 after a warm-up so drift hits both alike.

Goal: 2 workers ≥ 1.6× the throughput of 1. On this 2-core machine the two workers share the cores with
PostgreSQL and the load generator, so the script also prints where the CPU went (service processes, the
load generator, the machine as a whole) and how the requests spread over the workers (from /metrics).

    .venv/bin/python -m bench.workers [--rounds 3 --seconds 4 --concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import psutil

from bench import loadgen, processes
from bench.common import bench_database
from bench.loadgen import Result
from bench.requests_page import POOL, normalised, page_data, service_body

GOAL = 1.6
DATABASE = "ysg_bench_workers"
CORES = psutil.cpu_count() or 1


@dataclass
class Service:
    workers: int
    process: asyncio.subprocess.Process
    port: int
    token: str
    log: Path
    connections: list[loadgen.Connection] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"--workers {self.workers}"

    def target(self) -> loadgen.Target:
        return loadgen.Target(
            self.name,
            self.port,
            "/graphql",
            service_body(),
            {"Authorization": f"Bearer {self.token}"},
            self.connections,
        )

    def cpu_seconds(self) -> float:
        """The CPU of the parent and every worker (workers can be replaced, so read the tree each time)."""
        try:
            parent = psutil.Process(self.process.pid)
            total = 0.0
            for p in [parent, *parent.children(recursive=True)]:
                times = p.cpu_times()
                total += times.user + times.system
            return total
        except psutil.NoSuchProcess:
            return 0.0

    async def per_worker(self) -> dict[str, float]:
        """Requests answered per worker pid, as /metrics reports them."""
        async with httpx.AsyncClient(timeout=30) as http:
            text = (await http.get(f"http://127.0.0.1:{self.port}/metrics")).text
        found = {}
        for line in text.splitlines():
            if line.startswith("yunshegong_worker_http_requests"):
                labels, _, value = line.rpartition(" ")
                pid = labels.split('pid="')[1].split('"')[0] if 'pid="' in labels else str(self.process.pid)
                found[pid] = float(value)
        return found


@asynccontextmanager
async def serve(url: str, workers: int) -> AsyncIterator[Service]:
    # The delivery worker off: background work would change rows and take CPU in the middle of the comparison.
    settings = {**POOL, "YUNSHEGONG_DELIVERY_IN_SERVE": "false"}
    async with processes.serve(url, f"workers-{workers}", "--workers", str(workers), **settings) as served:
        yield Service(workers, served.process, served.port, served.token, served.log)


@dataclass
class Block:
    result: Result
    service_cpu: float
    client_cpu: float
    machine_busy: float  # share of all cores busy during the block (0..1)
    database_cpu: float


def database_cpu_seconds() -> float:
    """CPU of the PostgreSQL backends serving the benchmark's database (their process titles name it)."""
    total = 0.0
    for p in psutil.process_iter(["cmdline"]):
        try:
            if DATABASE in " ".join(p.info["cmdline"] or ()):
                times = p.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            continue
    return total


async def measure(service: Service, concurrency: int, seconds: float) -> Block:
    target = service.target()
    cpu_before, client_before, db_before = service.cpu_seconds(), time.process_time(), database_cpu_seconds()
    psutil.cpu_percent(None)
    result = await loadgen.run(target, concurrency, seconds, 2 * concurrency)
    busy = psutil.cpu_percent(None) / 100
    return Block(
        result,
        service.cpu_seconds() - cpu_before,
        time.process_time() - client_before,
        busy,
        database_cpu_seconds() - db_before,
    )


async def main(args: argparse.Namespace) -> None:
    async with bench_database(DATABASE) as url:
        _, counts = await page_data(url)
        print(
            f"data: {counts['help_requests']:,} requests, {counts['communities']:,} communities, "
            f"{counts['assignments']:,} assignments; one database; {psutil.cpu_count()} CPU cores; "
            f"page of 100 requests + community + assignments + volunteer name as the organisation member (RLS on)"
        )
        async with AsyncExitStack() as stack:
            services = [await stack.enter_async_context(serve(url, n)) for n in (1, 2)]
            pages = []
            for service in services:
                connection = (await service.target().ensure_connections(1))[0]
                status, body = await connection.post("/graphql", service_body(), service.target().headers)
                loadgen.check_ok(status, body)
                pages.append(normalised(orjson.loads(body)))
            if pages[0] != pages[1] or len(pages[0]) != 100:
                raise SystemExit("the two services returned different pages")
            for service in services:  # warm-up: prepared statements, compiled operations, every worker's pool
                await loadgen.run(service.target(), args.concurrency, args.seconds, 0)
            before = {s.workers: await s.per_worker() for s in services}
            blocks: dict[int, list[Block]] = {1: [], 2: []}
            for _ in range(args.rounds):
                for service in services:  # 1/2, 1/2: drift hits both alike
                    blocks[service.workers].append(await measure(service, args.concurrency, args.seconds))
            after = {s.workers: await s.per_worker() for s in services}
            for service in services:
                await service.target().close()

    logs = {s.workers: s.log for s in services}
    kept = report(blocks, before, after, logs, args)
    for workers, log in logs.items():
        if workers not in kept:
            log.unlink(missing_ok=True)


def report(
    blocks: dict[int, list[Block]],
    before: dict[int, dict[str, float]],
    after: dict[int, dict[str, float]],
    services_logs: dict[int, Path],
    args: argparse.Namespace,
) -> set[int]:
    """Prints the figures; returns the services whose logs are worth keeping (a worker was replaced)."""
    print(
        f"\n{args.rounds} rounds x {args.seconds:g} s per service, concurrency {args.concurrency} "
        "(keep-alive connections), alternated, after a warm-up"
    )
    rates = {}
    kept = set()
    for workers in (1, 2):
        total = Result()
        for block in blocks[workers]:
            total.add(block.result)
        rates[workers] = total.rate
        service_cpu = sum(b.service_cpu for b in blocks[workers])
        client_cpu = sum(b.client_cpu for b in blocks[workers])
        database_cpu = sum(b.database_cpu for b in blocks[workers])
        busy = sum(b.machine_busy for b in blocks[workers]) / len(blocks[workers])
        spread = {pid: after[workers].get(pid, 0) - before[workers].get(pid, 0) for pid in after[workers]}
        # A worker that died (or that the supervisor killed as unresponsive) leaves its pid behind on /metrics.
        replaced = max(len(after[workers]) - workers, 0) if workers > 1 else 0
        if replaced:
            kept.add(workers)
        shares = ", ".join(f"{v / max(sum(spread.values()), 1):.0%}" for v in sorted(spread.values(), reverse=True))
        print(
            f"  --workers {workers}: {total.rate:8.1f} req/s  ({total.requests} requests)  "
            f"p50 {sorted(total.samples)[len(total.samples) // 2] * 1000:6.1f} ms  "
            f"service CPU {service_cpu / total.elapsed:4.2f} cores "
            f"({service_cpu * 1000 / total.requests:5.2f} ms/req)  "
            f"PostgreSQL {database_cpu / total.elapsed:4.2f} cores  "
            f"load generator {client_cpu / total.elapsed:4.2f} cores "
            f"({client_cpu * 1000 / total.requests:4.2f} ms/req)  "
            f"machine {busy:.0%} busy (of which other processes "
            f"{max(busy * CORES - (service_cpu + database_cpu + client_cpu) / total.elapsed, 0):4.2f} cores)  "
            f"requests per worker: {shares}"
            + (f"  (workers replaced during the run: {replaced}; see {services_logs[workers]})" if replaced else "")
        )
    # What the machine could do if this benchmark had it to itself, from the CPU each request cost (not a
    # measurement: a bound, for reading the measured ratio when other processes took cores).
    per_request = {
        w: sum(b.service_cpu + b.database_cpu + b.client_cpu for b in blocks[w])
        / sum(b.result.requests for b in blocks[w])
        for w in (1, 2)
    }
    service_per_request = sum(b.service_cpu for b in blocks[1]) / sum(b.result.requests for b in blocks[1])
    ceiling_1 = min(1 / service_per_request, CORES / per_request[1])
    ceiling_2 = min(2 / service_per_request, CORES / per_request[2])
    print(
        f"  CPU-bound ceiling on an otherwise idle machine (from CPU per request, not measured): "
        f"--workers 1 ≤ {ceiling_1:.0f} req/s, --workers 2 ≤ {ceiling_2:.0f} req/s, "
        f"ratio ≤ {ceiling_2 / ceiling_1:.2f}x"
    )
    ratio = rates[2] / rates[1]
    verdict = "MET" if ratio >= GOAL else "NOT MET"
    print(f"  throughput ratio --workers 2 ÷ --workers 1: {ratio:.2f}x  (goal ≥ {GOAL}x: {verdict})")
    return kept


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternations of the two services")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of one measured block")
    parser.add_argument("--concurrency", type=int, default=16, help="keep-alive connections, one request each")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
