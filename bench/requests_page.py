"""A page of 100 help requests with community, assignments and volunteer name, over HTTP: our service
against PostGraphile 4 and against raw asyncpg+orjson behind the same Starlette/uvicorn (issue 13).

Same database and rows for all (the demo topped up to 1,257 requests, 162 communities and ~2,400
assignments), one server process each with a 10-connection pool, one load generator (bench.loadgen:
keep-alive connections, one request in flight each), servers alternated A/B/C/A/B/C after a warm-up, at
concurrency 1 and 16. Everyone reads as the demo's organisation member through the app role, so
row-level security is in every figure (our service and PostGraphile set app.org_id/app.role per request;
the raw floor once per connection), and the benchmark checks that all three return the same rows.

Goal: p50 and throughput at least as good as PostGraphile's at both concurrencies, and our throughput at
16 not below our throughput at 1. Also prints time per page size (10/100/200) and per nesting depth for
our service against raw. PostGraphile needs Node and npm (installed once into a cache folder outside the
repository); without them it is skipped and the rest still runs.

    make bench            # or: .venv/bin/python -m bench.requests_page [--rounds 3 --seconds 2.5] [--gc] [--rls]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from sqlalchemy import select

from bench import floor, loadgen
from bench import postgraphile as pgl
from bench.common import bench_database, cpu_seconds, free_port, percentile, summary
from bench.loadgen import Result, Target
from bench.processes import ROOT, healthz, running, service_env, sign_in, wait_ready
from core.database import app_url, asyncpg_dsn, create_engine, create_sessionmaker
from core.demo import load_demo
from core.models import Volunteer
from core.services import assignments, help_requests
from core.services.context import ServiceContext, Viewer
from core.vocab import RequestCategory, Urgency

CONCURRENCIES = (1, 16)
# The demo plus these make the issue's data set: 1,257 requests, 162 communities, ~2,400 assignments.
SERVICE_MADE_REQUESTS = 120
BULK_REQUESTS = 1_080
BULK_COMMUNITIES = 150
MEMBER = "orgadmin"
# The service's pool in every comparison.
POOL = {"YUNSHEGONG_DB_POOL_SIZE": "10", "YUNSHEGONG_DB_MAX_OVERFLOW": "0"}

# Depth 0: the requests' own fields; 1: + community name; 2: + assignments' status; 3: + volunteer name.
DEPTHS = ("requests only", "+ community", "+ assignments", "+ assignments.volunteer")


def service_query(first: int = 100, depth: int = 3) -> str:
    nested = ["", "community { name }", "community { name } assignments { status }"]
    nested.append("community { name } assignments { status volunteer { name } }")
    fields = f"id title status urgency neededBy {nested[depth]}"
    return f"{{ helpRequests(first: {first}) {{ edges {{ node {{ {fields} }} }} }} }}"


QUERY = service_query()


# -- data ----------------------------------------------------------------------------------------------------


async def add_requests(url: str, count: int) -> None:
    """Requests made through the services, as users make them: verified, with two offers on every other."""
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


# Bulk rows in plain SQL (the services would take minutes for a thousand): communities spread over the
# districts, requests over all the organisation's communities with every urgency, status and category, and
# two or three finished assignments each (finished ones hold no capacity, so no volunteer overflows).
TOP_UP_SQL = (
    """
INSERT INTO communities (organization_id, district_id, name, street, head_name)
SELECT $1, d.ids[1 + i % array_length(d.ids, 1)], '基准社区 ' || i, '基准街道 ' || i, '基准主任'
FROM generate_series(1, $2::int) i, (SELECT array_agg(id ORDER BY id) AS ids FROM districts) d""",
    """
INSERT INTO help_requests (community_id, title, description, category, beneficiaries, urgency, needed_by,
                           requester_name, requester_phone, requester_address, health_details, status)
SELECT c.ids[1 + i % array_length(c.ids, 1)], '基准批量请求 ' || i, '基准数据',
       (ARRAY['medicine','food','daily_supplies','medical_care','psychological','epidemic_prevention_supplies',
              'other'])[1 + i % 7],
       1 + i % 5, (ARRAY['critical','high','normal','low'])[1 + i % 4],
       CASE WHEN i % 3 = 0 THEN NULL ELSE now() + i * interval '1 hour' END,
       '基准', '139' || lpad(i::text, 8, '0'), '基准地址', '',
       (ARRAY['submitted','verified','matched','in_progress','fulfilled'])[1 + i % 5]
FROM generate_series(1, $2::int) i,
     (SELECT array_agg(id ORDER BY id) AS ids FROM communities WHERE organization_id = $1) c""",
    """
INSERT INTO assignments (request_id, volunteer_id, status, note, decline_reason, hours, offered_at,
                         responded_at, finished_at)
SELECT r.id, v.ids[1 + (r.id * 3 + k) % array_length(v.ids, 1)], s.status, '', '',
       CASE WHEN s.status = 'completed' THEN 2 END, now() - interval '2 days', now() - interval '1 day',
       CASE WHEN s.status = 'completed' THEN now() END
FROM help_requests r
CROSS JOIN (SELECT array_agg(id ORDER BY id) AS ids FROM volunteers WHERE organization_id = $1) v
CROSS JOIN LATERAL generate_series(0, CASE WHEN r.id % 9 = 0 THEN 2 ELSE 1 END) k
CROSS JOIN LATERAL (SELECT (ARRAY['completed','declined','withdrawn','expired'])[1 + (r.id + k) % 4] AS status) s
WHERE r.title LIKE '基准批量请求 %'""",
)


async def top_up(url: str, organization_id: int) -> None:
    conn = await asyncpg.connect(**asyncpg_dsn(url))
    try:
        async with conn.transaction():
            await conn.execute(TOP_UP_SQL[0], organization_id, BULK_COMMUNITIES)
            await conn.execute(TOP_UP_SQL[1], organization_id, BULK_REQUESTS)
            await conn.execute(TOP_UP_SQL[2], organization_id)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def table_counts(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(**asyncpg_dsn(url))
    try:
        return {
            t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in ("help_requests", "communities", "assignments")
        }
    finally:
        await conn.close()


async def page_data(url: str) -> tuple[dict[str, str], dict[str, int]]:
    """The issue's data set on `url` (the demo, SERVICE_MADE_REQUESTS made by the service, the bulk top-up):
    the member's settings (member_settings) and the table counts."""
    engine = create_engine(url, pool_size=1)
    await load_demo(engine)
    await engine.dispose()
    await add_requests(url, SERVICE_MADE_REQUESTS)
    settings = await member_settings(url)
    await top_up(url, int(settings["app.org_id"]))
    return settings, await table_counts(url)


async def member_settings(url: str) -> dict[str, str]:
    """app.org_id and app.role as our service sets them for the benchmark's signed-in member."""
    conn = await asyncpg.connect(**asyncpg_dsn(url))
    try:
        row = await conn.fetchrow("SELECT organization_id, role FROM accounts WHERE username = $1", MEMBER)
    finally:
        await conn.close()
    assert row is not None
    return {"app.org_id": str(row["organization_id"]), "app.role": row["role"]}


# -- servers -------------------------------------------------------------------------------------------------


def resident_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0


@dataclass
class Server:
    name: str
    process: asyncio.subprocess.Process
    port: int
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    # Shared by every Target made from this server, so the keep-alive connections are opened once.
    connections: list[loadgen.Connection] = field(default_factory=list)

    def target(self, body: bytes) -> Target:
        return Target(self.name, self.port, self.path, body, self.headers, self.connections)

    async def post(self, body: bytes) -> Any:
        connection = (await self.target(body).ensure_connections(1))[0]
        status, payload = await connection.post(self.path, body, self.headers)
        loadgen.check_ok(status, payload)
        return orjson.loads(payload)


def uvicorn(app: str, port: int) -> list[str]:
    server = [sys.executable, "-m", "uvicorn", app, "--factory", "--port", str(port)]
    # Servers are alternated: keep idle keep-alive connections open while the others are measured.
    return [*server, "--log-level", "warning", "--no-access-log", "--timeout-keep-alive", "600"]


async def start_service(stack: AsyncExitStack, url: str, extra_env: dict[str, str] | None = None) -> Server:
    port = free_port()
    env = service_env(**{"DATABASE_URL": url, **POOL, **(extra_env or {})})
    cmd = uvicorn("yunshegong.app:create_app", port)
    process = await stack.enter_async_context(running(await asyncio.create_subprocess_exec(*cmd, env=env, cwd=ROOT)))
    await wait_ready(process, healthz(port), "the service")
    return Server("yunshegong", process, port, "/graphql", {"Authorization": f"Bearer {await sign_in(port)}"})


async def start_raw(stack: AsyncExitStack, url: str, settings: dict[str, str]) -> Server:
    port = free_port()
    dsn = asyncpg_dsn(app_url(url, os.environ.get("YUNSHEGONG_APP_DATABASE_URL")))
    env = {
        **os.environ,
        "BENCH_RAW_DSN": orjson.dumps(dsn).decode(),
        "BENCH_RAW_SETTINGS": orjson.dumps(settings).decode(),
    }
    cmd = uvicorn("bench.raw_server:create_app", port)
    process = await stack.enter_async_context(running(await asyncio.create_subprocess_exec(*cmd, env=env, cwd=ROOT)))
    await wait_ready(process, healthz(port), "the raw server")
    return Server("raw asyncpg+orjson", process, port, "/page")


async def start_postgraphile(stack: AsyncExitStack, url: str, settings: dict[str, str], cache: Path) -> Server:
    port = free_port()
    connection = asyncpg_dsn(app_url(url, os.environ.get("YUNSHEGONG_APP_DATABASE_URL")))
    process = await stack.enter_async_context(running(await pgl.start(cache, port, connection, settings)))
    # Introspection happens on the first request; a 200 with data means the schema is built.
    await wait_ready(
        process,
        lambda http: http.post(f"http://127.0.0.1:{port}/graphql", json={"query": "{ __typename }"}),
        "PostGraphile",
    )
    return Server("PostGraphile 4", process, port, "/graphql")


# -- bodies and the same-rows check --------------------------------------------------------------------------


def service_body(first: int = 100, depth: int = 3) -> bytes:
    return orjson.dumps({"query": service_query(first, depth)})


def raw_body(first: int = 100, depth: int = 3) -> bytes:
    return orjson.dumps({"first": first, "depth": depth})


def postgraphile_body(first: int = 100) -> bytes:
    return orjson.dumps({"query": pgl.query(first)})


def _instant(value: str | None) -> datetime | None:
    # Our DateTime is shown in the caller's zone with milliseconds; the others give UTC and microseconds.
    if value is None:
        return None
    instant = datetime.fromisoformat(value)
    return instant.replace(microsecond=instant.microsecond // 1000 * 1000)


def normalised(payload: Any) -> list[tuple[Any, ...]]:
    """The page as comparable rows, whichever server answered (ids differ: ours are global ids)."""
    data = payload["data"]
    if "allHelpRequests" in data:
        return [
            (
                n["title"],
                n["status"].lower(),
                n["urgency"].lower(),
                _instant(n["neededBy"]),
                n["communityByCommunityId"]["name"],
                [
                    (a["status"].lower(), a["volunteerByVolunteerId"]["name"])
                    for a in n["assignmentsByRequestId"]["nodes"]
                ],
            )
            for n in data["allHelpRequests"]["nodes"]
        ]
    rows = []
    for edge in data["helpRequests"]["edges"]:
        n = edge["node"]
        # Our enums are GraphQL enum names (MATCHED), the others the stored values (matched).
        row: list[Any] = [n["title"], n["status"].lower(), n["urgency"].lower(), _instant(n["neededBy"])]
        if "community" in n:
            row.append(n["community"]["name"])
        if "assignments" in n:
            row.append([(a["status"].lower(), a.get("volunteer", {}).get("name")) for a in n["assignments"]])
        rows.append(tuple(row))
    return rows


def assignment_count(rows: list[tuple[Any, ...]]) -> int:
    return sum(len(r[5]) for r in rows if len(r) > 5)


# -- measuring -----------------------------------------------------------------------------------------------


def min_requests(concurrency: int) -> int:
    return 20 if concurrency == 1 else 2 * concurrency


async def warm_up(target: Target, seconds: float) -> None:
    """Prepared statements, caches, compiled plans, V8's JIT: run the request for a while, keep nothing."""
    await loadgen.run(target, max(CONCURRENCIES), seconds, 0)
    await loadgen.run(target, 1, seconds / 2, 0)


def row(label: str, result: Result) -> str:
    line = f"  {label:<26} {summary(result.samples)}  {result.rate:8.1f} req/s  ({result.requests} requests)"
    if result.cpu_seconds and result.requests:
        # Where the time goes: the server's own CPU per request (what a machine's other load does not inflate).
        line += f"  server CPU {result.cpu_seconds * 1000 / result.requests:5.2f} ms/request"
    return line


def p50(result: Result) -> float:
    return percentile(result.samples, 50)


async def compare_variants(
    url: str, variants: list[tuple[str, dict[str, str]]], rounds: int, seconds: float, title: str, note: str
) -> None:
    """Our service started once per (round, variant) with different environments, alternated."""
    results = {(name, c): Result() for name, _ in variants for c in CONCURRENCIES}
    rss: dict[str, list[int]] = {name: [] for name, _ in variants}
    for _ in range(rounds):
        for name, env in variants:
            async with AsyncExitStack() as stack:
                server = await start_service(stack, url, env)
                target = server.target(service_body())
                await warm_up(target, seconds / 2)
                for c in CONCURRENCIES:
                    results[name, c].add(await loadgen.run(target, c, seconds, min_requests(c)))
                rss[name].append(resident_kb(server.process.pid))
                await target.close()
    print(f"\n{title}")
    for c in CONCURRENCIES:
        for name, _ in variants:
            print(row(f"{name}, c={c}", results[name, c]) + f"  RSS {max(rss[name])} kB")
    base = variants[0][0]
    for name, _ in variants[1:]:
        for c in CONCURRENCIES:
            b, v = results[base, c], results[name, c]
            print(
                f"  {base} ÷ {name}, c={c}: p50 {p50(b) / p50(v):.2f}x, throughput {b.rate / v.rate:.2f}x, "
                f"memory {max(rss[base]) / max(rss[name]):.2f}x  ({note})"
            )


async def main(args: argparse.Namespace) -> None:
    node = None if args.no_postgraphile else pgl.node_version()
    pg_version = None
    pg_skip = "--no-postgraphile" if args.no_postgraphile else "node and npm are not on PATH"
    if node is not None:
        try:
            started = time.perf_counter()
            pg_version = pgl.install(args.postgraphile_cache)
            print(
                f"PostGraphile {pg_version} (node {node}) in {args.postgraphile_cache} "
                f"({time.perf_counter() - started:.1f} s to install or find)"
            )
        except (RuntimeError, OSError, TimeoutError) as e:
            pg_skip = f"installing it failed: {e}"
    if pg_version is None:
        print(f"PostGraphile skipped: {pg_skip}. Comparing our service with the raw baseline only.")

    async with bench_database("ysg_bench_requests") as url:
        settings, counts = await page_data(url)
        assert counts["help_requests"] >= 1_000, counts
        print(
            f"data: {counts['help_requests']:,} requests, {counts['communities']:,} communities, "
            f"{counts['assignments']:,} assignments; every server reads as {MEMBER} through the app role "
            f"(RLS on) with {settings}: ours and PostGraphile (pgSettings) set them per request, raw per connection"
        )

        async with AsyncExitStack() as stack:
            servers = [await start_service(stack, url), await start_raw(stack, url, settings)]
            bodies = [service_body(), raw_body()]
            if pg_version is not None:
                servers.append(await start_postgraphile(stack, url, settings, args.postgraphile_cache))
                bodies.append(postgraphile_body())
            targets = [s.target(b) for s, b in zip(servers, bodies, strict=True)]

            # Fair only if everyone sees the same rows: the whole page, row by row.
            pages = [normalised(await s.post(b)) for s, b in zip(servers, bodies, strict=True)]
            for s, p in zip(servers[1:], pages[1:], strict=True):
                if p != pages[0]:
                    pairs = enumerate(zip(p, pages[0], strict=False))
                    first = next(((i, a, b) for i, (a, b) in pairs if a != b), "none (different lengths)")
                    raise SystemExit(
                        f"{s.name} returned a different page than {servers[0].name}: "
                        f"{len(p)} requests / {assignment_count(p)} assignments against "
                        f"{len(pages[0])} / {assignment_count(pages[0])}; first difference at row {first}"
                    )
            print(
                f"page: {len(pages[0])} requests, {assignment_count(pages[0])} assignments, the same rows from "
                + ", ".join(s.name for s in servers)
            )

            for target in targets:
                await warm_up(target, args.seconds)
            results = {(t.name, c): Result() for t in targets for c in CONCURRENCIES}
            for _ in range(args.rounds):
                for c in CONCURRENCIES:
                    for target, server in zip(targets, servers, strict=True):  # A/B/C, A/B/C: drift hits all alike
                        before = cpu_seconds(server.process.pid)
                        result = await loadgen.run(target, c, args.seconds, min_requests(c))
                        result.cpu_seconds = cpu_seconds(server.process.pid) - before
                        results[target.name, c].add(result)

            shapes = await measure_shapes(servers[0], servers[1], args)
            rss = {s.name: resident_kb(s.process.pid) for s in servers}
            for target in targets:
                await target.close()

        floor_samples = []
        for _ in range(100):
            start = time.perf_counter()
            await floor.execute()
            floor_samples.append(time.perf_counter() - start)

        report(results, targets, shapes, rss, floor_samples, args)

        if args.gc:
            await compare_variants(
                url,
                [("GC tuning on", {}), ("GC tuning off", {"YUNSHEGONG_GC_TUNING": "false"})],
                2,
                args.seconds,
                "garbage collector tuning (YUNSHEGONG_GC_TUNING), our service restarted per round, alternated",
                "p50 below 1x and throughput above 1x: the tuning helps",
            )
        if args.rls:
            await compare_variants(
                url,
                [("app role (RLS)", {}), ("owner (RLS bypassed)", {"YUNSHEGONG_APP_DATABASE_URL": url})],
                2,
                args.seconds,
                "row-level security: our service as the app role vs connected as the owner, alternated",
                "what isolation costs; goal: p50 <= 1.10x",
            )


SHAPES: tuple[tuple[str, int, int], ...] = (
    ("page size 10", 10, 3),
    ("page size 100", 100, 3),
    ("page size 200", 200, 3),
    (f"depth 0: {DEPTHS[0]}", 100, 0),
    (f"depth 1: {DEPTHS[1]}", 100, 1),
    (f"depth 2: {DEPTHS[2]}", 100, 2),
)


async def measure_shapes(ours: Server, raw: Server, args: argparse.Namespace) -> dict[tuple[str, str], Result]:
    """Sequential latency per page size and nesting depth, ours against raw, alternated per shape."""
    pairs = []
    for label, first, depth in SHAPES:
        a, b = service_body(first, depth), raw_body(first, depth)
        page_a, page_b = normalised(await ours.post(a)), normalised(await raw.post(b))
        if page_a != page_b or len(page_a) != first:
            raise SystemExit(
                f"{label}: the service and the raw baseline disagree ({len(page_a)} vs {len(page_b)} rows)"
            )
        pairs.append((label, ours.target(a), raw.target(b)))
    results = {(label, t.name): Result() for label, a, b in pairs for t in (a, b)}
    for _, a, b in pairs:
        await loadgen.run(a, 1, 0.3, 5)
        await loadgen.run(b, 1, 0.3, 5)
    for _ in range(args.shape_rounds):
        for label, a, b in pairs:
            for t in (a, b):
                results[label, t.name].add(await loadgen.run(t, 1, args.shape_seconds, 10))
    return results


def report(
    results: dict[tuple[str, int], Result],
    targets: list[Target],
    shapes: dict[tuple[str, str], Result],
    rss: dict[str, int],
    floor_samples: list[float],
    args: argparse.Namespace,
) -> None:
    names = [t.name for t in targets]
    ours, raw = names[0], names[1]
    pg = names[2] if len(names) > 2 else None
    print(
        f"\npage of 100 requests + community + assignments + volunteer name over HTTP; {args.rounds} rounds x "
        f"{args.seconds:g} s per server and concurrency, alternated, after warm-up"
    )
    for c in CONCURRENCIES:
        print(f" concurrency {c}")
        for name in names:
            print(row(name, results[name, c]) + f"  RSS {rss[name]} kB")
    print(" ratios (p50: below 1 means ours is faster; throughput: above 1 means ours serves more)")
    for c in CONCURRENCIES:
        r_ours, r_raw = results[ours, c], results[raw, c]
        line = f"  c={c:<3} ours÷raw p50 {p50(r_ours) / p50(r_raw):6.2f}x  throughput {r_ours.rate / r_raw.rate:5.2f}x"
        if pg is not None:
            r_pg = results[pg, c]
            line += (
                f"   ours÷PostGraphile p50 {p50(r_ours) / p50(r_pg):6.2f}x  throughput {r_ours.rate / r_pg.rate:5.2f}x"
            )
        print(line)

    scales = results[ours, 16].rate >= results[ours, 1].rate
    verdicts = [
        f"throughput at 16 {'not below' if scales else 'BELOW'} throughput at 1 "
        f"({results[ours, 16].rate:.1f} vs {results[ours, 1].rate:.1f} req/s)"
    ]
    met = scales
    if pg is None:
        verdicts.append("PostGraphile part not checked (PostGraphile skipped)")
    else:
        for c in CONCURRENCIES:
            r_ours, r_pg = results[ours, c], results[pg, c]
            ok = p50(r_ours) <= p50(r_pg) and r_ours.rate >= r_pg.rate
            met = met and ok
            verdicts.append(
                f"c={c}: {'at least as good as' if ok else 'WORSE than'} PostGraphile "
                f"(p50 {p50(r_ours) * 1000:.1f} vs {p50(r_pg) * 1000:.1f} ms, "
                f"{r_ours.rate:.1f} vs {r_pg.rate:.1f} req/s)"
            )
    status = "MET" if met and pg is not None else ("NOT MET" if not met else "PARTLY CHECKED")
    print(f" goal {status}: " + "; ".join(verdicts))

    print(
        f"\ntime per page size and nesting depth, concurrency 1, {args.shape_rounds} rounds x {args.shape_seconds:g} s"
    )
    print(f"  {'shape':<52} {'ours p50':>10} {'raw p50':>10} {'ours÷raw':>9}")
    for label, _, _ in SHAPES:
        a, b = shapes[label, ours], shapes[label, raw]
        print(f"  {label:<52} {p50(a) * 1000:8.2f}ms {p50(b) * 1000:8.2f}ms {p50(a) / p50(b):8.2f}x")
        if label == "depth 2: + assignments":
            a, b = results[ours, 1], results[raw, 1]
            print(
                f"  {'depth 3: ' + DEPTHS[3] + ' (the page, above)':<52} {p50(a) * 1000:8.2f}ms "
                f"{p50(b) * 1000:8.2f}ms {p50(a) / p50(b):8.2f}x"
            )
    print(
        f"\nstrawberry floor, no I/O, in this process: {summary(floor_samples)}  (GraphQL execution alone, same shape)"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternations of all servers per concurrency")
    parser.add_argument("--seconds", type=float, default=2.5, help="length of one measured block")
    parser.add_argument("--shape-rounds", type=int, default=2, help="alternations per page size / depth")
    parser.add_argument("--shape-seconds", type=float, default=1.0, help="length of one page size / depth block")
    parser.add_argument("--no-postgraphile", action="store_true", help="skip PostGraphile even if Node is present")
    parser.add_argument(
        "--postgraphile-cache",
        type=Path,
        default=pgl.DEFAULT_CACHE,
        help="where npm installs PostGraphile 4 (reused by later runs; never inside the repository)",
    )
    parser.add_argument("--gc", action="store_true", help="also compare the service with GC tuning on and off")
    parser.add_argument("--rls", action="store_true", help="also compare the app role with the owner connection")
    args = parser.parse_args(argv)
    cache = args.postgraphile_cache.resolve()
    if cache == ROOT or ROOT in cache.parents:
        parser.error("--postgraphile-cache must be outside the repository")
    args.postgraphile_cache = cache
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
