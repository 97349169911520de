"""Supplies: concurrent distribution throughput through GraphQL against the same stock update in raw SQL,
and the full report over 600,000 ledger movements.

    .venv/bin/python -m bench.supplies [--movements 600000] [--distributions 400]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from dataclasses import replace
from datetime import UTC, datetime

import asyncpg

from bench.common import bench_database
from core.database import app_url, asyncpg_dsn, create_engine, create_sessionmaker
from core.migrate import upgrade
from core.plugins import build_plugin_host
from core.services import organizations, plugins
from core.services.context import ServiceContext, Viewer
from core.settings import Settings
from core.vocab import OrganizationKind
from plugins.supplies import services
from schema import ids
from schema.build import build_schema
from schema.context import AppState, Context

MUTATION = """mutation($input: SuppliesDistributeInput!) { suppliesDistribute(input: $input) {
  distribution { id } errors { code } } }"""


async def main(movements: int, distributions: int, concurrency: int) -> None:
    host = build_plugin_host(entry_points=False)
    async with bench_database("ysg_bench_supplies") as url:
        # `owner` connects as the owner (RLS does not apply); `engine` as the app role, as the service does.
        owner = create_engine(url, pool_size=concurrency)
        await upgrade(owner, host.migration_dirs())
        engine = create_engine(app_url(url), pool_size=concurrency)
        state = AppState(settings=Settings(), sessionmaker=create_sessionmaker(engine), host=host)
        staff = frozenset(p.name for p in host.permissions)
        async with create_sessionmaker(engine)() as session, session.begin():
            ctx = ServiceContext(session, Viewer(label="setup", role="platform_admin", extra_permissions=staff))
            org = await organizations.create_organization(ctx, name="物资组", kind=OrganizationKind.ASSOCIATION)
            await plugins.set_enabled(
                ctx,
                organization_id=org.id,
                plugin="supplies",
                enabled=True,
                installed=frozenset(host.plugins),
                known=frozenset(host.plugins),
            )
            ctx = ServiceContext(session, replace(ctx.viewer, organization_id=org.id))
            item = await services.create_item(ctx, "N95口罩", "medical_protection", "只")
            gql_store = await services.create_warehouse(ctx, "GraphQL 仓库")
            sql_store = await services.create_warehouse(ctx, "SQL 仓库")
            await services.receive(ctx, warehouse_id=gql_store.id, item_id=item.id, quantity=20 * distributions)
            receipt = await services.receive(
                ctx, warehouse_id=sql_store.id, item_id=item.id, quantity=10 * distributions
            )
        viewer = Viewer(
            label="bench",
            role="organization_admin",
            organization_id=org.id,
            extra_permissions=state.plugin_permissions.get("organization_admin", frozenset()),
        )
        schema = build_schema(state.settings, host)
        variables = {
            "input": {
                "warehouseId": ids.encode("SuppliesWarehouse", gql_store.id),
                "itemId": ids.encode("SuppliesItem", item.id),
                "quantity": 3,
                "recipient": "居民",
            }
        }

        bypassed = AppState(settings=Settings(), sessionmaker=create_sessionmaker(owner), host=host)

        async def graphql_worker(n: int, app: AppState) -> None:
            for _ in range(n):
                result = await schema.execute(
                    MUTATION, variable_values=variables, context_value=Context(app=app, viewer=viewer)
                )
                assert not result.errors, result.errors
                assert not result.data["suppliesDistribute"]["errors"], result.data

        pool = await asyncpg.create_pool(**asyncpg_dsn(url), min_size=concurrency, max_size=concurrency)

        async def sql_worker(n: int) -> None:
            for _ in range(n):
                async with pool.acquire() as conn, conn.transaction():
                    left = await conn.fetchval(
                        "UPDATE supplies_balances SET on_hand = on_hand - 3 WHERE batch_id = $1 AND warehouse_id = $2 "
                        "AND on_hand >= 3 RETURNING on_hand",
                        receipt.batch_id,
                        sql_store.id,
                    )
                    assert left is not None
                    await conn.execute(
                        "INSERT INTO supplies_movements (organization_id, kind, batch_id, warehouse_id, quantity, "
                        "actor, at) VALUES ($3, 'distribution', $1, $2, -3, 'bench', now())",
                        receipt.batch_id,
                        sql_store.id,
                        org.id,
                    )

        per = distributions // concurrency
        start = time.perf_counter()
        await asyncio.gather(*(sql_worker(per) for _ in range(concurrency)))
        sql_rate = per * concurrency / (time.perf_counter() - start)
        rates: dict[str, list[float]] = {"rls": [], "bypassed": []}
        # Alternated (RLS, bypassed, RLS, bypassed) so that drift on a noisy machine hits both alike.
        for _ in range(2):
            for name, app in (("rls", state), ("bypassed", bypassed)):
                start = time.perf_counter()
                await asyncio.gather(*(graphql_worker(per // 2, app) for _ in range(concurrency)))
                rates[name].append(per // 2 * concurrency / (time.perf_counter() - start))
        gql_rate, bypassed_rate = (sum(rates[k]) / 2 for k in ("rls", "bypassed"))
        print(f"{per * concurrency} distributions, {concurrency} concurrent, same item and warehouse:")
        print(f"  raw SQL (conditional update + ledger row)  {sql_rate:8.1f} /s")
        print(
            f"  GraphQL mutation (FEFO, ledger, checks)     {gql_rate:8.1f} /s  "
            f"-> SQL/GraphQL ratio {sql_rate / gql_rate:.1f}x"
        )
        print(
            f"  same, RLS bypassed (owner connection)       {bypassed_rate:8.1f} /s  "
            f"-> row-level security costs {bypassed_rate / gql_rate:.3f}x (goal <= 1.10x)"
        )

        # 600,000 ledger movements: receipts and distributions over 50 items x 5 warehouses, balances kept consistent.
        async with pool.acquire() as conn:
            rng = random.Random(1)
            # A bulk load by the owner: triggers (append-only, organisation inheritance) are skipped, so every
            # row names its organisation itself.
            await conn.execute("SET session_replication_role = replica")
            await conn.execute(
                "INSERT INTO supplies_items (organization_id, name, category, unit) SELECT $1, 'item' || g, "
                "(ARRAY['food','medicine','daily_necessities','medical_protection'])[1 + g % 4], '件' "
                "FROM generate_series(1, 50) g",
                org.id,
            )
            await conn.execute(
                "INSERT INTO supplies_warehouses (organization_id, name) SELECT $1, 'wh' || g "
                "FROM generate_series(1, 5) g",
                org.id,
            )
            item_ids = [r[0] for r in await conn.fetch("SELECT id FROM supplies_items WHERE name LIKE 'item%'")]
            wh_ids = [r[0] for r in await conn.fetch("SELECT id FROM supplies_warehouses WHERE name LIKE 'wh%'")]
            await conn.executemany(
                "INSERT INTO supplies_batches (organization_id, item_id, code) VALUES ($2, $1, '')",
                [(i, org.id) for i in item_ids],
            )
            batches = [
                r[0]
                for r in await conn.fetch(
                    "SELECT id FROM supplies_batches WHERE code = '' AND item_id = ANY($1)", item_ids
                )
            ]
            now = datetime.now(UTC)
            records = []
            for n in range(movements):
                b, w = rng.choice(batches), rng.choice(wh_ids)
                records.append(
                    (
                        org.id,
                        "receipt" if n % 2 == 0 else "distribution",
                        b,
                        w,
                        10 if n % 2 == 0 else -rng.randint(1, 5),
                        "bench",
                        now,
                    )
                )
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
            print(f"loaded {movements} movements with COPY in {time.perf_counter() - start:.1f} s")
        await pool.close()
        timings: dict[str, float] = {}
        for name, sessions in (("rls", engine), ("bypassed", owner)) * 5:
            async with create_sessionmaker(sessions)() as session:
                ctx = ServiceContext(session, viewer)
                start = time.perf_counter()
                rows = await services.report(ctx)
                timings[name] = min(timings.get(name, 1e9), time.perf_counter() - start)
                agrees = await services.ledger_agrees(ctx)
        rls_ms = timings["rls"] * 1000
        print(
            f"full report over {movements} movements (best of 5): {rls_ms:.0f} ms as an organisation member under RLS, "
            f"{timings['bypassed'] * 1000:.0f} ms bypassed ({rls_ms / (timings['bypassed'] * 1000):.3f}x); "
            f"conserved in every category: {all(r.balanced for r in rows)}; balances agree with the ledger: {agrees}"
        )
        await engine.dispose()
        await owner.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movements", type=int, default=600_000)
    parser.add_argument("--distributions", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.movements, args.distributions, args.concurrency))
