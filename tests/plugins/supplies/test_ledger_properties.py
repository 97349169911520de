"""Property test: any sequence of receipts, transfers, distributions, cancellations, adjustments and reversals keeps
stock conservation and non-negativity, checked after every step (hypothesis, against real PostgreSQL)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.errors import DomainError
from core.services.context import ServiceContext
from plugins.supplies import services

WAREHOUSE = st.integers(0, 1)
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("receive"), WAREHOUSE, st.integers(1, 50)),
        st.tuples(st.just("distribute"), WAREHOUSE, st.integers(1, 60)),
        st.tuples(st.just("transfer"), WAREHOUSE, st.integers(1, 40)),
        st.tuples(st.just("adjust"), WAREHOUSE, st.integers(-30, 30).filter(bool)),
        st.tuples(st.just("reverse"), WAREHOUSE, st.integers(0, 1000)),
        st.tuples(st.just("cancel"), WAREHOUSE, st.integers(0, 1000)),
    ),
    max_size=25,
)


TABLES = (
    "supplies_movements",
    "supplies_balances",
    "supplies_distributions",
    "supplies_batches",
    "supplies_items",
    "supplies_warehouses",
    "supplies_idempotency_keys",
)


async def _reset(owner_engine: AsyncEngine) -> None:
    """Empty the supplies tables between examples, as the owner: the app role may not lift the ledger's
    append-only guard (nor see past row-level security)."""
    async with owner_engine.begin() as conn:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        for table in TABLES:
            await conn.execute(text(f"DELETE FROM {table}"))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(operations=OPERATIONS)
async def test_any_sequence_keeps_conservation_and_non_negativity(
    staff_ctx: ServiceContext, owner_engine: AsyncEngine, operations: list[Any]
) -> None:
    # as the staff of an organisation with supplies enabled (tests/plugins/supplies/conftest.py)
    await _reset(owner_engine)
    ctx, session = staff_ctx, staff_ctx.session
    item = (await services.create_item(ctx, "口罩", "medical_protection", "只")).id
    warehouses = [(await services.create_warehouse(ctx, f"仓库{i}")).id for i in range(2)]
    await session.commit()
    reversible: list[int] = []
    planned: list[int] = []
    for kind, w, n in operations:
        batch = await session.scalar(text("SELECT min(id) FROM supplies_batches"))
        try:
            if kind == "receive":
                reversible.append(
                    (await services.receive(ctx, warehouse_id=warehouses[w], item_id=item, quantity=n)).id
                )
            elif kind == "distribute":
                planned.append(
                    (
                        await services.distribute(
                            ctx, warehouse_id=warehouses[w], item_id=item, quantity=n, recipient="居民"
                        )
                    ).id
                )
            elif kind == "transfer" and batch is not None:
                await services.transfer(
                    ctx, batch_id=batch, from_warehouse=warehouses[w], to_warehouse=warehouses[1 - w], quantity=n
                )
            elif kind == "adjust" and batch is not None:
                reversible.append(
                    (await services.adjust(ctx, batch_id=batch, warehouse_id=warehouses[w], delta=n, reason="盘点")).id
                )
            elif kind == "reverse" and reversible:
                await services.reverse(ctx, reversible[n % len(reversible)], "更正")
            elif kind == "cancel" and planned:
                await services.cancel_distribution(ctx, planned[n % len(planned)], "取消")
            await session.commit()
        except DomainError:
            await session.rollback()  # a refused step changes nothing
        # after every step: nothing negative, balances equal the ledger, every category conserved
        assert await session.scalar(text("SELECT count(*) FROM supplies_balances WHERE on_hand < 0")) == 0
        assert await services.ledger_agrees(ctx)
        assert all(r.balanced for r in await services.report(ctx))
        await session.commit()
