"""Supplies: concurrent distributions over HTTP -- the GraphQL mutation on the real app against a raw
conditional UPDATE behind the same Starlette/uvicorn -- and the full report over 600,000 ledger movements.

Both servers run under uvicorn in subprocesses on one fresh database; one httpx client drives both with the
same number of concurrent workers. Two cases, each on fresh warehouses so that every run starts alike:
- ample: the stock covers every request;
- oversell: twice as much is asked for as there is (half the requests must be refused).
Servers alternate (raw, GraphQL, raw, GraphQL, ...) after a warm-up; after every run the bench checks that
no stock went negative, that exactly the stock there was left in the oversell case, and that every balance
equals the sum of its ledger movements. It prints GraphQL / raw throughput (goal >= 0.5x, issue 13).

GraphQL acts as an organisation administrator through the app role (row-level security in the figure); the
raw side is hand-written asyncpg as the owner (no row-level security, no distribution row, no audit entry):
the ceiling.

    .venv/bin/python -m bench.supplies [--requests 400] [--concurrency 16] [--rounds 2] [--movements 600000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import bench_database, cpu_seconds, free_port
from bench.processes import healthz, running, service_env, wait_ready
from core.database import asyncpg_dsn, create_engine, create_sessionmaker
from core.migrate import upgrade
from core.plugins import build_plugin_host
from core.services import auth, organizations, plugins
from core.services.context import ServiceContext, Viewer
from core.vocab import OrganizationKind, Role
from plugins.supplies import services
from schema import ids

MUTATION = """mutation($input: SuppliesDistributeInput!) { suppliesDistribute(input: $input) {
  distribution { id status } errors { code } } }"""
LOGIN = "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { token } }"
USERNAME, PASSWORD = "bench-stores", "bench-stores password 2026"
QUANTITY = 3

# -- the raw side: what one distribution needs at least, by hand -------------------------------------------------

TAKE = (
    "UPDATE supplies_balances SET on_hand = on_hand - $3 WHERE batch_id = $1 AND warehouse_id = $2 "
    "AND on_hand >= $3 RETURNING on_hand"
)
LEDGER = (
    "INSERT INTO supplies_movements (organization_id, kind, batch_id, warehouse_id, quantity, actor, at) "
    "VALUES ($4, 'distribution', $1, $2, -$3::integer, 'bench', now())"
)


def raw_app() -> Any:
    """`uvicorn bench.supplies:raw_app --factory`: POST /distribute {batch, warehouse, organization, quantity}
    takes the quantity by a conditional UPDATE and writes its ledger row, in one transaction (BENCH_DSN: the
    owner's database URL; a pool as large as the app's)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    pools: list[asyncpg.Pool] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pools.append(await asyncpg.create_pool(**asyncpg_dsn(os.environ["BENCH_DSN"]), min_size=10, max_size=20))
        yield
        await pools[0].close()

    async def distribute(request: Request) -> Response:
        body = orjson.loads(await request.body())
        args = (body["batch"], body["warehouse"], body["quantity"])
        async with pools[0].acquire() as conn, conn.transaction():
            if await conn.fetchval(TAKE, *args) is None:
                answer: dict[str, Any] = {"errors": [{"code": "INSUFFICIENT_STOCK"}]}
            else:
                await conn.execute(LEDGER, *args, body["organization"])
                answer = {"errors": []}
        return Response(orjson.dumps(answer), media_type="application/json")

    async def healthz(request: Request) -> Response:
        return Response(b"{}", media_type="application/json")

    return Starlette(
        routes=[Route("/distribute", distribute, methods=["POST"]), Route("/healthz", healthz)], lifespan=lifespan
    )


# -- servers and load ------------------------------------------------------------------------------------------


@asynccontextmanager
async def server(target: str, env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """`target` under uvicorn in a subprocess; a client to it once it answers /healthz (its `pid` attribute
    is the server's process)."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "uvicorn", target, "--factory", "--port", str(port)],
        *["--log-level", "warning", "--no-access-log"],
        env=service_env(**env),
    )
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with (
        running(process),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60, limits=limits) as http,
    ):
        http.pid = process.pid  # type: ignore[attr-defined]
        await wait_ready(process, healthz(port), target, seconds=30)
        yield http


async def load(send: Callable[[], Awaitable[bool]], requests: int, concurrency: int) -> tuple[float, int]:
    """`requests` calls by `concurrency` workers: (requests per second, how many succeeded)."""
    left = requests
    ok = 0

    async def worker() -> None:
        nonlocal left, ok
        while left > 0:
            left -= 1
            succeeded = await send()  # (not `ok += await ...`: that would read `ok` before the await)
            ok += succeeded

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return requests / (time.perf_counter() - start), ok


# -- the database side: stock for each run, and the checks after it --------------------------------------------


@dataclass
class Stores:
    engine: AsyncEngine
    organization: int
    item: int
    serial: int = 0

    async def warehouse(self, quantity: int) -> tuple[int, int]:
        """A fresh warehouse holding `quantity` of the item in one batch: (warehouse, batch)."""
        self.serial += 1
        viewer = Viewer(label="bench setup", role="system", organization_id=self.organization)
        async with create_sessionmaker(self.engine)() as session, session.begin():
            ctx = ServiceContext(session, viewer)
            store = await services.create_warehouse(ctx, f"仓库 {self.serial}")
            receipt = await services.receive(ctx, warehouse_id=store.id, item_id=self.item, quantity=quantity)
            return store.id, receipt.batch_id


async def check(owner: asyncpg.Connection, warehouse: int, stock: int, succeeded: int) -> str:
    """No oversell: what left is what succeeded, nothing negative, balances equal the ledger."""
    on_hand = await owner.fetchval(
        "SELECT coalesce(sum(on_hand), 0) FROM supplies_balances WHERE warehouse_id = $1", warehouse
    )
    negative = await owner.fetchval("SELECT count(*) FROM supplies_balances WHERE on_hand < 0")
    out = await owner.fetchval(
        "SELECT coalesce(-sum(quantity), 0) FROM supplies_movements WHERE warehouse_id = $1 AND kind = 'distribution'",
        warehouse,
    )
    mismatched = await owner.fetchval(
        "SELECT count(*) FROM supplies_balances b FULL JOIN (SELECT batch_id, warehouse_id, sum(quantity) AS q "
        "FROM supplies_movements GROUP BY 1, 2) m USING (batch_id, warehouse_id) "
        "WHERE coalesce(b.on_hand, 0) <> coalesce(m.q, 0)"
    )
    problems = []
    if negative:
        problems.append(f"{negative} negative balances")
    if out != succeeded * QUANTITY or on_hand != stock - out:
        problems.append(f"{out} left for {succeeded} successes, {on_hand} of {stock} on hand")
    if mismatched:
        problems.append(f"{mismatched} balances differ from the ledger")
    assert not problems, problems
    return "ok"


async def supplies_organization(ctx: ServiceContext, host: Any, name: str) -> Any:
    """A new organisation with the supplies plugin enabled."""
    org = await organizations.create_organization(ctx, name=name, kind=OrganizationKind.ASSOCIATION)
    await plugins.set_enabled(
        ctx,
        organization_id=org.id,
        plugin="supplies",
        enabled=True,
        installed=frozenset(host.plugins),
        known=frozenset(host.plugins),
    )
    return org


async def setup(url: str) -> Stores:
    host = build_plugin_host(entry_points=False)
    engine = create_engine(url, pool_size=1)
    await upgrade(engine, host.migration_dirs())  # the plugins' migration branches (bench_database ran core's)
    staff = frozenset(p.name for p in host.permissions)
    async with create_sessionmaker(engine)() as session, session.begin():
        ctx = ServiceContext(session, Viewer(label="setup", role="platform_admin", extra_permissions=staff))
        org = await supplies_organization(ctx, host, "物资组")
        await auth.create_account(
            ctx,
            auth.AccountInput(
                username=USERNAME,
                display_name="仓库管理员",
                password=PASSWORD,
                role=Role.ORGANIZATION_ADMIN,
                organization_id=org.id,
            ),
        )
        ctx = ServiceContext(session, replace(ctx.viewer, organization_id=org.id))
        item = await services.create_item(ctx, "N95口罩", "medical_protection", "只")
    return Stores(engine, org.id, item.id)


async def distributions(url: str, requests: int, concurrency: int, rounds: int, bypassed: bool) -> None:
    stores = await setup(url)
    owner = await asyncpg.connect(**asyncpg_dsn(url))
    ample, oversold = requests * QUANTITY, requests * QUANTITY // 2
    sides = ["raw", "graphql"] + (["bypassed"] if bypassed else [])
    async with (
        server("bench.supplies:raw_app", {"BENCH_DSN": url}) as raw_http,
        server("yunshegong.app:create_app", {"DATABASE_URL": url}) as gql_http,
        server("yunshegong.app:create_app", {"DATABASE_URL": url, "YUNSHEGONG_APP_DATABASE_URL": url})
        if bypassed
        else _nothing() as owner_http,
    ):
        clients = {"raw": raw_http, "graphql": gql_http, "bypassed": owner_http}
        for side in ("graphql", "bypassed"):
            if clients[side] is not None:
                login = await clients[side].post(
                    "/graphql", json={"query": LOGIN, "variables": {"u": USERNAME, "p": PASSWORD}}
                )
                clients[side].headers["Authorization"] = f"Bearer {login.json()['data']['login']['token']}"

        def sender(side: str, warehouse: int, batch: int) -> Callable[[], Awaitable[bool]]:
            http = clients[side]
            assert http is not None
            if side == "raw":
                body = orjson.dumps(
                    {"batch": batch, "warehouse": warehouse, "organization": stores.organization, "quantity": QUANTITY}
                )

                async def raw() -> bool:
                    answer = orjson.loads((await http.post("/distribute", content=body)).content)
                    return not answer["errors"]

                return raw
            request = orjson.dumps(
                {
                    "query": MUTATION,
                    "variables": {
                        "input": {
                            "warehouseId": ids.encode("SuppliesWarehouse", warehouse),
                            "itemId": ids.encode("SuppliesItem", stores.item),
                            "quantity": QUANTITY,
                            "recipient": "居民",
                        }
                    },
                }
            )

            async def graphql() -> bool:
                response = await http.post("/graphql", content=request, headers={"Content-Type": "application/json"})
                answer = orjson.loads(response.content)
                assert "errors" not in answer, answer
                payload = answer["data"]["suppliesDistribute"]
                assert payload["errors"] in ([], [{"code": "INSUFFICIENT_STOCK"}]), payload
                return not payload["errors"]

            return graphql

        cpu: dict[tuple[str, str], list[float]] = {}

        async def run(side: str, stock: int) -> tuple[float, int, float]:
            """(requests per second, successes, server CPU milliseconds per request)."""
            warehouse, batch = await stores.warehouse(stock)
            pid = clients[side].pid  # type: ignore[union-attr]
            before = cpu_seconds(pid)
            rate, ok = await load(sender(side, warehouse, batch), requests, concurrency)
            used = (cpu_seconds(pid) - before) * 1000 / requests
            await check(owner, warehouse, stock, ok)
            return rate, ok, used

        # Warm-up: connections, prepared statements, caches, the GraphQL parser's and validator's caches.
        for side in sides:
            await run(side, ample)
        rates: dict[tuple[str, str], list[float]] = {}
        succeeded: dict[tuple[str, str], set[int]] = {}
        order = list(sides)
        for n in range(rounds):
            for case, stock in (("ample", ample), ("oversell", oversold)):
                # Alternated, and the order flipped every round: drift on a noisy machine hits all sides alike.
                for side in order if n % 2 == 0 else order[::-1]:
                    rate, ok, used = await run(side, stock)
                    rates.setdefault((case, side), []).append(rate)
                    cpu.setdefault((case, side), []).append(used)
                    succeeded.setdefault((case, side), set()).add(ok)
    await owner.close()
    await stores.engine.dispose()
    print(
        f"{requests} distributions of {QUANTITY} per run, {concurrency} concurrent clients over HTTP, "
        f"{rounds} alternated rounds after a warm-up, one item in one warehouse:"
    )
    for case, stock in (("ample", ample), ("oversell", oversold)):
        print(f"  {case}: {stock} on hand for {requests * QUANTITY} asked")
        raw = sum(rates[(case, "raw")]) / rounds
        for side in sides:
            rate = sum(rates[(case, side)]) / rounds
            label = {
                "raw": "raw conditional UPDATE + ledger row (asyncpg, owner)",
                "graphql": "GraphQL suppliesDistribute (app role, RLS)",
                "bypassed": "GraphQL, RLS bypassed (owner connection)",
            }[side]
            runs = ", ".join(f"{r:.0f}" for r in rates[(case, side)])
            ms = sum(cpu[(case, side)]) / rounds
            print(
                f"    {label:55} {rate:8.1f} /s  (runs: {runs})  server CPU {ms:5.2f} ms/request  "
                f"succeeded {sorted(succeeded[(case, side)])}"
            )
        gql = sum(rates[(case, "graphql")]) / rounds
        print(f"    GraphQL / raw throughput: {gql / raw:.2f}x (goal >= 0.5x); oversold: none (checked every run)")
        if bypassed:
            owner_rate = sum(rates[(case, "bypassed")]) / rounds
            print(f"    row-level security costs {owner_rate / gql:.3f}x (goal <= 1.10x)")


@asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield None


# -- the report over a long ledger ---------------------------------------------------------------------------------


async def report(url: str, movements: int) -> None:
    """The full report over `movements` ledger rows (50 items x 5 warehouses), under RLS and bypassed."""
    host = build_plugin_host(entry_points=False)
    from core.database import app_url

    engine = create_engine(app_url(url), pool_size=1)
    owner_engine = create_engine(url, pool_size=1)
    staff = frozenset(p.name for p in host.permissions)
    async with create_sessionmaker(engine)() as session, session.begin():
        ctx = ServiceContext(session, Viewer(label="setup", role="platform_admin", extra_permissions=staff))
        org = await supplies_organization(ctx, host, "报表组")
    viewer = Viewer(label="bench", role="organization_admin", organization_id=org.id, extra_permissions=staff)
    conn = await asyncpg.connect(**asyncpg_dsn(url))
    rng = random.Random(1)
    # A bulk load by the owner: triggers (append-only, organisation inheritance) are skipped, so every row
    # names its organisation itself.
    await conn.execute("SET session_replication_role = replica")
    await conn.execute(
        "INSERT INTO supplies_items (organization_id, name, category, unit) SELECT $1, 'item' || g, "
        "(ARRAY['food','medicine','daily_necessities','medical_protection'])[1 + g % 4], '件' "
        "FROM generate_series(1, 50) g",
        org.id,
    )
    await conn.execute(
        "INSERT INTO supplies_warehouses (organization_id, name) SELECT $1, 'wh' || g FROM generate_series(1, 5) g",
        org.id,
    )
    item_ids = [r[0] for r in await conn.fetch("SELECT id FROM supplies_items WHERE organization_id = $1", org.id)]
    wh_ids = [r[0] for r in await conn.fetch("SELECT id FROM supplies_warehouses WHERE organization_id = $1", org.id)]
    await conn.executemany(
        "INSERT INTO supplies_batches (organization_id, item_id, code) VALUES ($2, $1, '')",
        [(i, org.id) for i in item_ids],
    )
    batches = [r[0] for r in await conn.fetch("SELECT id FROM supplies_batches WHERE item_id = ANY($1)", item_ids)]
    now = datetime.now(UTC)
    records = []
    for n in range(movements):
        b, w = rng.choice(batches), rng.choice(wh_ids)
        kind, quantity = ("receipt", 10) if n % 2 == 0 else ("distribution", -rng.randint(1, 5))
        records.append((org.id, kind, b, w, quantity, "bench", now))
    start = time.perf_counter()
    await conn.copy_records_to_table(
        "supplies_movements",
        columns=["organization_id", "kind", "batch_id", "warehouse_id", "quantity", "actor", "at"],
        records=records,
    )
    await conn.execute(
        "INSERT INTO supplies_balances (organization_id, batch_id, warehouse_id, on_hand) SELECT $2, "
        "batch_id, warehouse_id, sum(quantity) FROM supplies_movements WHERE batch_id = ANY($1) GROUP BY 2, 3 "
        "ON CONFLICT (batch_id, warehouse_id) DO UPDATE SET on_hand = EXCLUDED.on_hand",
        batches,
        org.id,
    )
    await conn.execute("RESET session_replication_role")
    await conn.execute("ANALYZE")
    await conn.close()
    print(f"loaded {movements} movements with COPY in {time.perf_counter() - start:.1f} s")
    timings: dict[str, float] = {}
    agrees = balanced = False
    for name, sessions in (("rls", engine), ("bypassed", owner_engine)) * 5:
        async with create_sessionmaker(sessions)() as session:
            ctx = ServiceContext(session, viewer)
            start = time.perf_counter()
            rows = await services.report(ctx)
            timings[name] = min(timings.get(name, 1e9), time.perf_counter() - start)
            agrees, balanced = await services.ledger_agrees(ctx), all(r.balanced for r in rows)
    rls_ms = timings["rls"] * 1000
    print(
        f"full report over {movements} movements (best of 5): {rls_ms:.0f} ms as an organisation member under RLS, "
        f"{timings['bypassed'] * 1000:.0f} ms bypassed ({rls_ms / (timings['bypassed'] * 1000):.3f}x); "
        f"conserved in every category: {balanced}; balances agree with the ledger: {agrees}"
    )
    await engine.dispose()
    await owner_engine.dispose()


async def main(args: argparse.Namespace) -> None:
    async with bench_database("ysg_bench_supplies") as url:
        await distributions(url, args.requests, args.concurrency, args.rounds, args.bypassed)
        if args.movements:
            await report(url, args.movements)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="distributions per run")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="alternated rounds (each: every case, every side)")
    parser.add_argument("--bypassed", action="store_true", help="also the app connected as the owner (RLS cost)")
    parser.add_argument("--movements", type=int, default=600_000, help="ledger rows for the report (0: skip)")
    asyncio.run(main(parser.parse_args()))
