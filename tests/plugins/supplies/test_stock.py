"""Supplies invariants against real PostgreSQL: nothing lost, nothing doubled, never negative."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from core.errors import DomainError
from core.models import Organization
from core.services.context import ServiceContext, Viewer
from plugins.supplies import services
from plugins.supplies.models import Distribution
from tests.concurrency import Racer, rounds
from tests.plugins.supplies.conftest import NewCommunity


@pytest.fixture
def ctx(staff_ctx: ServiceContext) -> ServiceContext:
    """The supplies organisation's staff (tests/plugins/supplies/conftest.py)."""
    return staff_ctx


@pytest.fixture
async def stock(ctx: ServiceContext) -> dict[str, int]:
    masks = await services.create_item(ctx, "N95口罩", "medical_protection", "只")
    formula = await services.create_item(ctx, "婴儿配方奶粉", "infant_supplies", "罐", batched=True)
    main = await services.create_warehouse(ctx, "碑林仓库")
    other = await services.create_warehouse(ctx, "雁塔仓库")
    receipt = await services.receive(ctx, warehouse_id=main.id, item_id=masks.id, quantity=100)
    await ctx.session.commit()
    return {
        "masks": masks.id,
        "formula": formula.id,
        "main": main.id,
        "other": other.id,
        "mask_batch": receipt.batch_id,
    }


async def test_fifty_concurrent_distributions_never_overdraw(
    stock: dict[str, int],
    db_url: URL,
    new_community: NewCommunity,
    ctx: ServiceContext,
    staff: Viewer,
    clock: Any,
) -> None:
    # given a community, and 50 coordinators each distributing 4 masks
    community = await new_community()

    async def distribute(side: ServiceContext, i: int) -> str:
        await services.distribute(
            side, warehouse_id=stock["main"], item_id=stock["masks"], quantity=4, community_id=community.id
        )
        return "ok"

    async with Racer.open(db_url, workers=50, clock=clock) as racer:
        for n in range(rounds(2)):
            if n:  # the fixture received the first 100 masks; each further round receives 100 more
                await services.receive(ctx, warehouse_id=stock["main"], item_id=stock["masks"], quantity=100)
                await ctx.session.commit()
            # when 100 masks are on hand and the 50 distribute at once (200 wanted)
            outcomes = await racer.race(distribute, viewer=staff)
            # then exactly 100 units left in 25 distributions, every other attempt was told why, and the
            # balances agree with the ledger
            assert sorted(outcomes) == ["INSUFFICIENT_STOCK"] * 25 + ["ok"] * 25
            left = await ctx.session.scalar(text("SELECT sum(on_hand) FROM supplies_balances"))
            assert left == 0
            assert await services.ledger_agrees(ctx)
            (masks,) = [r for r in await services.report(ctx) if r.category == "medical_protection"]
            total = 100 * (n + 1)
            assert (masks.received, masks.distributed, masks.on_hand, masks.balanced) == (total, total, 0, True)
            await ctx.session.commit()


async def test_one_key_sent_twenty_times_at_once_moves_stock_once(
    stock: dict[str, int],
    db_url: URL,
    new_community: NewCommunity,
    ctx: ServiceContext,
    staff: Viewer,
    clock: Any,
) -> None:
    community = await new_community()
    arguments = {"warehouse": stock["main"], "item": stock["masks"], "quantity": 10, "community": community.id}

    async def round_(racer: Racer, key: str) -> None:
        async def send(side: ServiceContext, i: int) -> int:
            distribution = await services.idempotent(
                side,
                key,
                "distribute",
                arguments,
                lambda: services.distribute(
                    side, warehouse_id=stock["main"], item_id=stock["masks"], quantity=10, community_id=community.id
                ),
                lambda pk: side.session.get(Distribution, pk),
            )
            return distribution.id

        # when twenty retries of one key arrive at once, the stock moves once
        on_hand = await ctx.session.scalar(text("SELECT sum(on_hand) FROM supplies_balances"))
        await ctx.session.commit()
        ids = await racer.race(send, viewer=staff)
        assert len(set(ids)) == 1
        assert await ctx.session.scalar(text("SELECT sum(on_hand) FROM supplies_balances")) == on_hand - 10
        await ctx.session.commit()

    async with Racer.open(db_url, workers=20, clock=clock) as racer:
        # one key per round (100 masks allow up to ten)
        for n in range(rounds(2)):
            await round_(racer, f"retry-key-{n + 1}")
    # the same key with other arguments is refused
    with pytest.raises(DomainError) as err:
        await services.idempotent(
            ctx,
            "retry-key-1",
            "distribute",
            {**arguments, "quantity": 11},
            lambda: services.distribute(
                ctx, warehouse_id=stock["main"], item_id=stock["masks"], quantity=11, community_id=community.id
            ),
            lambda pk: ctx.session.get(Distribution, pk),
        )
    assert err.value.code == "IDEMPOTENCY_MISMATCH"


async def test_first_expiry_first_out(stock: dict[str, int], ctx: ServiceContext) -> None:
    today = date(2030, 1, 1)
    late = await services.receive(
        ctx,
        warehouse_id=stock["main"],
        item_id=stock["formula"],
        quantity=10,
        batch_code="B-late",
        expires_on=today + timedelta(days=200),
    )
    soon = await services.receive(
        ctx,
        warehouse_id=stock["main"],
        item_id=stock["formula"],
        quantity=4,
        batch_code="B-soon",
        expires_on=today + timedelta(days=20),
    )
    distribution = await services.distribute(
        ctx, warehouse_id=stock["main"], item_id=stock["formula"], quantity=6, recipient="隔离病房 3 床"
    )
    picked = dict(
        (
            await ctx.session.execute(
                text("SELECT batch_id, -quantity FROM supplies_movements WHERE distribution_id = :d"),
                {"d": distribution.id},
            )
        ).all()
    )
    assert picked == {soon.batch_id: 4, late.batch_id: 2}


async def test_transfers_adjustments_and_reversals(stock: dict[str, int], ctx: ServiceContext) -> None:
    batch, main, other = stock["mask_batch"], stock["main"], stock["other"]
    await services.transfer(ctx, batch_id=batch, from_warehouse=main, to_warehouse=other, quantity=30)
    damaged = await services.adjust(ctx, batch_id=batch, warehouse_id=other, delta=-5, reason="受潮")
    await services.reverse(ctx, damaged.id, "counted again: they were fine")
    (masks,) = [r for r in await services.report(ctx) if r.category == "medical_protection"]
    assert (masks.received, masks.adjusted, masks.on_hand, masks.balanced) == (100, 0, 100, True)
    assert await services.ledger_agrees(ctx)


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda s, c: services.receive(c, warehouse_id=s["main"], item_id=s["masks"], quantity=0), "OUT_OF_RANGE"),
        (lambda s, c: services.receive(c, warehouse_id=s["main"], item_id=s["masks"], quantity=-3), "OUT_OF_RANGE"),
        (lambda s, c: services.receive(c, warehouse_id=s["main"], item_id=999999, quantity=1), "NOT_FOUND"),
        (lambda s, c: services.receive(c, warehouse_id=999999, item_id=s["masks"], quantity=1), "NOT_FOUND"),
        (lambda s, c: services.receive(c, warehouse_id=s["main"], item_id=s["formula"], quantity=1), "REQUIRED"),
        (
            lambda s, c: services.distribute(
                c, warehouse_id=s["main"], item_id=s["masks"], quantity=101, recipient="x"
            ),
            "INSUFFICIENT_STOCK",
        ),
        (
            lambda s, c: services.transfer(
                c, batch_id=s["mask_batch"], from_warehouse=s["main"], to_warehouse=s["main"], quantity=1
            ),
            "SAME_WAREHOUSE",
        ),
        (
            lambda s, c: services.adjust(
                c, batch_id=s["mask_batch"], warehouse_id=s["main"], delta=-101, reason="lost"
            ),
            "INSUFFICIENT_STOCK",
        ),
        (lambda s, c: services.distribute(c, warehouse_id=s["main"], item_id=s["masks"], quantity=1), "INVALID_INPUT"),
    ],
)
async def test_bad_input_writes_nothing(stock: dict[str, int], ctx: ServiceContext, call: Any, code: str) -> None:
    before = await ctx.session.scalar(text("SELECT count(*) FROM supplies_movements"))
    with pytest.raises(DomainError) as err:
        await call(stock, ctx)
    await ctx.session.rollback()
    assert err.value.code == code
    assert await ctx.session.scalar(text("SELECT count(*) FROM supplies_movements")) == before


async def test_a_reversal_cannot_be_reversed_nor_the_ledger_edited(stock: dict[str, int], ctx: ServiceContext) -> None:
    extra = await services.adjust(
        ctx, batch_id=stock["mask_batch"], warehouse_id=stock["main"], delta=5, reason="found"
    )
    reversal = await services.reverse(ctx, extra.id, "miscounted")
    with pytest.raises(DomainError) as err:
        await services.reverse(ctx, reversal.id, "again")
    assert err.value.code == "INVALID_TRANSITION"
    with pytest.raises(DomainError) as err:
        await services.reverse(ctx, extra.id, "twice")
    assert err.value.code == "ALREADY_EXISTS"
    await ctx.session.commit()
    with pytest.raises(DBAPIError, match="append-only"):
        await ctx.session.execute(text("UPDATE supplies_movements SET quantity = 1000"))
    await ctx.session.rollback()


async def test_the_database_refuses_negative_stock_whatever_writes(stock: dict[str, int], ctx: ServiceContext) -> None:
    with pytest.raises(DBAPIError, match="ck_supplies_balances_not_negative"):
        await ctx.session.execute(text("UPDATE supplies_balances SET on_hand = on_hand - 101"))
    await ctx.session.rollback()


async def test_trace_follows_a_donation_line(
    stock: dict[str, int], new_community: NewCommunity, ctx: ServiceContext
) -> None:
    community = await new_community()
    await services.transfer(
        ctx, batch_id=stock["mask_batch"], from_warehouse=stock["main"], to_warehouse=stock["other"], quantity=40
    )
    await services.distribute(
        ctx, warehouse_id=stock["other"], item_id=stock["masks"], quantity=15, community_id=community.id
    )
    kinds = [(m.kind, m.quantity) for m in await services.trace(ctx, stock["mask_batch"])]
    assert kinds == [("receipt", 100), ("transfer_out", -40), ("transfer_in", 40), ("distribution", -15)]


async def test_a_partial_delivery_returns_the_rest_to_stock(
    stock: dict[str, int], new_community: NewCommunity, ctx: ServiceContext
) -> None:
    community = await new_community()
    distribution = await services.distribute(
        ctx, warehouse_id=stock["main"], item_id=stock["masks"], quantity=30, community_id=community.id
    )
    await services.dispatch(ctx, distribution.id)
    with pytest.raises(DomainError) as err:
        await services.confirm_delivery(ctx, distribution.id, delivered=31)
    assert err.value.code == "OUT_OF_RANGE"
    done = await services.confirm_delivery(ctx, distribution.id, "两箱破损", delivered=25)
    assert (done.status, done.delivered_quantity) == ("delivered", 25)
    (masks,) = [r for r in await services.report(ctx) if r.category == "medical_protection"]
    assert (masks.distributed, masks.on_hand, masks.balanced) == (25, 75, True)
    assert await services.ledger_agrees(ctx)


async def test_report_for_a_period(stock: dict[str, int], ctx: ServiceContext, clock: Any) -> None:
    # 100 received before the period; during it 20 more arrive and 30 go out
    start = clock.now
    clock.now += timedelta(days=1)
    await services.receive(ctx, warehouse_id=stock["main"], item_id=stock["masks"], quantity=20)
    await services.distribute(ctx, warehouse_id=stock["main"], item_id=stock["masks"], quantity=30, recipient="社区")
    clock.now += timedelta(days=1)
    (row,) = [
        r
        for r in await services.report(ctx, since=start + timedelta(hours=1), until=clock.now)
        if r.category == "medical_protection"
    ]
    assert (row.opening, row.received, row.distributed, row.on_hand, row.balanced) == (100, 20, 30, 90, True)


async def test_community_heads_confirm_deliveries_to_their_own_community(
    stock: dict[str, int], new_community: NewCommunity, ctx: ServiceContext, supplies_org: Organization
) -> None:
    mine, theirs = await new_community(), await new_community()
    to_mine = await services.distribute(
        ctx, warehouse_id=stock["main"], item_id=stock["masks"], quantity=5, community_id=mine.id
    )
    to_theirs = await services.distribute(
        ctx, warehouse_id=stock["main"], item_id=stock["masks"], quantity=5, community_id=theirs.id
    )
    for d in (to_mine, to_theirs):
        await services.dispatch(ctx, d.id)
    head = ServiceContext(
        ctx.session,
        Viewer(label="head", role="community_head", organization_id=supplies_org.id, community_id=mine.id),
        ctx.clock,
    )
    done = await services.confirm_delivery(head, to_mine.id, "收到")
    assert (done.status, done.confirmed_by) == ("delivered", "head")
    with pytest.raises(DomainError) as err:
        await services.confirm_delivery(head, to_theirs.id)
    assert err.value.code == "FORBIDDEN"
