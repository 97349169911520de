"""A page of 100 help requests with community and assignments: GraphQL over HTTP vs hand-written SQL.

Both sides run in this process's event loop against the same database, in the same run:
- GraphQL: the real app under uvicorn in a subprocess, queried over HTTP with httpx;
- baseline: asyncpg with hand-written SQL, the same data serialised with orjson.
Prints p50/p95 latency (sequential) and requests/s (8 concurrent clients) for both, and the ratios.
Goal (issue 2): p50 ratio <= 3x.

    make bench            # or: .venv/bin/python -m bench.requests_page [--rounds 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import orjson
from sqlalchemy import select

from bench import floor
from bench.common import bench_database, percentile, summary
from core.database import asyncpg_dsn, create_engine, create_sessionmaker
from core.demo import load_demo
from core.models import Volunteer
from core.services import assignments, help_requests
from core.services.context import ServiceContext, Viewer
from core.vocab import RequestCategory, Urgency

QUERY = """{ helpRequests(first: 100) { edges { node {
  id title status urgency neededBy
  community { name }
  assignments { status volunteer { name } }
} } } }"""

# An organisation member (not a platform administrator): row-level security is in the figure.
LOGIN = 'mutation { login(input: {username: "orgadmin", password: "demo-orgadmin-2021"}) { token } }'

PAGE_SQL = """
SELECT id, title, status, urgency, needed_by, community_id FROM help_requests
ORDER BY urgency_rank, needed_by_sort, id LIMIT 100"""
COMMUNITIES_SQL = "SELECT id, name FROM communities WHERE id = ANY($1::bigint[])"
ASSIGNMENTS_SQL = """
SELECT a.request_id, a.status, v.name FROM assignments a JOIN volunteers v ON v.id = a.volunteer_id
WHERE a.request_id = ANY($1::bigint[]) ORDER BY a.id"""


async def baseline(conn: asyncpg.Connection) -> bytes:
    rows = await conn.fetch(PAGE_SQL)
    ids = [r["id"] for r in rows]
    communities = {
        r["id"]: r["name"] for r in await conn.fetch(COMMUNITIES_SQL, list({r["community_id"] for r in rows}))
    }
    assignments: dict[int, list[dict[str, Any]]] = {}
    for a in await conn.fetch(ASSIGNMENTS_SQL, ids):
        assignments.setdefault(a["request_id"], []).append({"status": a["status"], "volunteer": {"name": a["name"]}})
    nodes = [
        {
            "id": r["id"],
            "title": r["title"],
            "status": r["status"],
            "urgency": r["urgency"],
            "neededBy": r["needed_by"],
            "community": {"name": communities[r["community_id"]]},
            "assignments": assignments.get(r["id"], []),
        }
        for r in rows
    ]
    return orjson.dumps({"data": {"helpRequests": {"edges": [{"node": n} for n in nodes]}}})


async def add_requests(url: str, count: int) -> None:
    """Top the demo up so the page is full, with two offers on every other request."""
    engine = create_engine(url, pool_size=1)
    async with create_sessionmaker(engine)() as session, session.begin():
        ctx = ServiceContext(session=session, viewer=Viewer(label="bench", role="platform_admin"))
        roomy = select(Volunteer.id).where(
            Volunteer.availability == "available",
            Volunteer.max_concurrent_assignments >= 5,
            # FOOD is in-person help: offers go to volunteers who can come (the offer's hard filters).
            Volunteer.mode != "online",
        )
        volunteer_ids = (await session.execute(roomy)).scalars().all()
        for i in range(count):
            request = await help_requests.submit(
                ctx,
                help_requests.HelpRequestInput(
                    community_id=1 + i % 12,
                    title=f"基准请求 {i}",
                    category=RequestCategory.FOOD,
                    urgency=list(Urgency)[i % 4],
                    requester_name="基准",
                    requester_phone=f"137{i:08d}",
                    volunteers_needed=2,
                ),
            )
            if i % 2 == 0:
                await help_requests.verify(ctx, request.id)
                for v in volunteer_ids[(2 * i) % len(volunteer_ids) :][:2]:
                    await assignments.offer(ctx, request.id, v)
    await engine.dispose()


async def measure(call: Callable[[], Awaitable[Any]], rounds: int, concurrency: int) -> tuple[list[float], float]:
    for _ in range(10):  # warm-up: prepared statements, caches
        await call()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    per_worker = max(1, rounds // concurrency)

    async def worker() -> None:
        for _ in range(per_worker):
            await call()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    throughput = per_worker * concurrency / (time.perf_counter() - start)
    return samples, throughput


async def measure_service(
    url: str, extra_env: dict[str, str], rounds: int, concurrency: int, rss: list[int] | None = None
) -> tuple[list[float], float]:
    """Start the app under uvicorn in a subprocess and measure the page through HTTP (and, into `rss`, the
    server's resident memory in kB after the run)."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "YUNSHEGONG_LOG_LEVEL": "warning", **extra_env}
    server = await asyncio.create_subprocess_exec(
        *[
            sys.executable,
            "-m",
            "uvicorn",
            "yunshegong.app:create_app",
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            for _ in range(100):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
            login = await http.post("/graphql", json={"query": LOGIN})
            http.headers["Authorization"] = f"Bearer {login.json()['data']['login']['token']}"

            async def graphql() -> None:
                response = await http.post("/graphql", json={"query": QUERY})
                body = response.json()
                assert "errors" not in body, body
                assert len(body["data"]["helpRequests"]["edges"]) == 100

            result = await measure(graphql, rounds, concurrency)
            if rss is not None:
                rss.append(resident_kb(server.pid))
            return result
    finally:
        server.terminate()
        await server.wait()


def resident_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def main(rounds: int, concurrency: int) -> None:
    async with bench_database("ysg_bench_requests") as url:
        engine = create_engine(url, pool_size=1)
        await load_demo(engine)
        await engine.dispose()
        await add_requests(url, 120)

        pool = await asyncpg.create_pool(**asyncpg_dsn(url), min_size=concurrency, max_size=concurrency)

        async def sql() -> None:
            async with pool.acquire() as conn:
                await baseline(conn)

        sql_samples, sql_rps = await measure(sql, rounds, concurrency)
        floor_samples, _ = await measure(floor.execute, rounds, 1)
        # The service as deployed (the app role, under row-level security), and the same service connected
        # as the owner, which RLS does not apply to: the difference is what isolation costs.
        # Alternated (RLS, bypassed, RLS, bypassed) so that drift on a noisy machine hits both alike.
        gql_samples, owner_samples, gql_rates, owner_rates = [], [], [], []
        for _ in range(2):
            samples, rate = await measure_service(url, {}, rounds // 2, concurrency)
            gql_samples += samples
            gql_rates.append(rate)
            samples, rate = await measure_service(url, {"YUNSHEGONG_APP_DATABASE_URL": url}, rounds // 2, concurrency)
            owner_samples += samples
            owner_rates.append(rate)
        gql_rps, owner_rps = sum(gql_rates) / 2, sum(owner_rates) / 2
        # The garbage collector's tuning (YUNSHEGONG_GC_TUNING, on above), alternated off/on the same way.
        tuned_samples, untuned_samples, tuned_rates, untuned_rates = [], [], [], []
        tuned_rss: list[int] = []
        untuned_rss: list[int] = []
        for _ in range(2):
            samples, rate = await measure_service(
                url, {"YUNSHEGONG_GC_TUNING": "false"}, rounds // 2, concurrency, untuned_rss
            )
            untuned_samples += samples
            untuned_rates.append(rate)
            samples, rate = await measure_service(url, {}, rounds // 2, concurrency, tuned_rss)
            tuned_samples += samples
            tuned_rates.append(rate)
        await pool.close()

    print(f"page of 100 requests + community + assignments, {rounds} sequential rounds, {concurrency} concurrent")
    print(f"  baseline asyncpg+orjson  {summary(sql_samples)}  {sql_rps:8.1f} req/s")
    print(f"  GraphQL over HTTP        {summary(gql_samples)}  {gql_rps:8.1f} req/s  (app role, RLS)")
    print(f"  GraphQL, RLS bypassed    {summary(owner_samples)}  {owner_rps:8.1f} req/s  (owner connection)")
    print(f"  strawberry floor, no I/O  {summary(floor_samples)}  (GraphQL execution alone, same shape)")
    ratio = percentile(gql_samples, 50) / percentile(sql_samples, 50)
    print(f"  p50 ratio GraphQL/baseline: {ratio:.2f}x (goal <= 3x); throughput ratio {sql_rps / gql_rps:.2f}x")
    tuned_rps, untuned_rps = sum(tuned_rates) / 2, sum(untuned_rates) / 2
    print(f"  GC tuning off            {summary(untuned_samples)}  {untuned_rps:8.1f} req/s  RSS {max(untuned_rss)} kB")
    print(f"  GC tuning on             {summary(tuned_samples)}  {tuned_rps:8.1f} req/s  RSS {max(tuned_rss)} kB")
    print(
        f"  GC tuning: p50 {percentile(tuned_samples, 50) / percentile(untuned_samples, 50):.2f}x, "
        f"throughput {tuned_rps / untuned_rps:.2f}x, memory {max(tuned_rss) / max(untuned_rss):.2f}x of untuned"
    )
    rls = percentile(gql_samples, 50) / percentile(owner_samples, 50)
    print(
        f"  row-level security: p50 {rls:.3f}x, throughput {owner_rps / gql_rps:.3f}x of the bypassed run "
        "(goal <= 1.10x)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.concurrency))
