"""Money in fen, allocations that never exceed a donation (also under concurrency), stock reports."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.engine import URL

from core.errors import DomainError
from core.services.context import ServiceContext, Viewer
from plugins.supplies import services
from tests.concurrency import Racer, rounds
from tests.plugins.supplies.conftest import NewCommunity


@pytest.fixture
def ctx(staff_ctx: ServiceContext) -> ServiceContext:
    """The supplies organisation's staff (tests/plugins/supplies/conftest.py)."""
    return staff_ctx


@pytest.mark.parametrize(("amount", "fen"), [("5000000", 500_000_000), ("30000.5", 3_000_050), ("0.01", 1)])
def test_amounts_become_fen(amount: str, fen: int) -> None:
    assert services.to_fen(amount) == fen


@pytest.mark.parametrize(
    ("amount", "code"),
    [("1.005", "OUT_OF_RANGE"), ("0", "OUT_OF_RANGE"), ("-3", "OUT_OF_RANGE"), ("abc", "INVALID_INPUT")],
)
def test_bad_amounts(amount: str, code: str) -> None:
    with pytest.raises(DomainError) as err:
        services.to_fen(amount)
    assert err.value.code == code


async def test_allocations_never_exceed_the_donation_under_concurrency(
    ctx: ServiceContext, staff: Viewer, db_url: URL, clock: Any
) -> None:
    donor = await services.create_donor(ctx, "陕西慈善基金会", "organization", contact="029-88880000")
    await ctx.session.commit()

    async def round_(racer: Racer, receipt: str) -> None:
        # given a 5,000,000 yuan donation from a foundation
        donation = await services.receive_money(ctx, donor.id, Decimal("5000000"), receipt, "抗疫专项")
        await ctx.session.commit()

        async def allocate(side: ServiceContext, i: int) -> str:
            await services.allocate(side, donation.id, "400000", "采购防护服")
            return "ok"

        # when twenty purchases of 400,000 are allocated at once
        outcomes = await racer.race(allocate, viewer=staff)
        # then twelve fit (4,800,000) and 200,000 remain, derived from the allocations
        assert sorted(outcomes) == ["INSUFFICIENT_FUNDS"] * 8 + ["ok"] * 12
        assert await services.unallocated_fen(ctx, donation.id) == 20_000_000
        await ctx.session.commit()

    async with Racer.open(db_url, workers=20, clock=clock) as racer:
        for n in range(rounds(2)):
            await round_(racer, f"R-2021-{n + 1:04d}")
    with pytest.raises(DomainError) as err:
        await services.receive_money(ctx, donor.id, "1", "R-2021-0001")
    assert err.value.code == "ALREADY_EXISTS"


async def test_stock_reports(ctx: ServiceContext, clock: Any) -> None:
    donor = await services.create_donor(ctx, "爱心企业", "organization")
    formula = await services.create_item(ctx, "婴儿配方奶粉", "infant_supplies", "罐", batched=True)
    masks = await services.create_item(ctx, "N95口罩", "medical_protection", "只")
    store = await services.create_warehouse(ctx, "碑林仓库")
    today = clock.now.date()
    await services.receive(
        ctx,
        warehouse_id=store.id,
        item_id=formula.id,
        quantity=8,
        donor_id=donor.id,
        batch_code="A",
        expires_on=today + timedelta(days=10),
    )
    await services.receive(
        ctx,
        warehouse_id=store.id,
        item_id=formula.id,
        quantity=20,
        donor_id=donor.id,
        batch_code="B",
        expires_on=today + timedelta(days=300),
    )
    await services.receive(ctx, warehouse_id=store.id, item_id=masks.id, quantity=500)
    near = await services.stock_lines(ctx, near_expiry_days=30)
    low = await services.stock_lines(ctx, below=10)
    assert [(s.batch, s.on_hand) for s in near] == [("A", 8)]
    assert [(s.item, s.on_hand) for s in low] == [("婴儿配方奶粉", 8)]
    assert [(t.donor, t.items, t.money_fen) for t in await services.received_by_donor(ctx)] == [("爱心企业", 28, 0)]


async def test_reports_by_dimension(ctx: ServiceContext, new_community: NewCommunity) -> None:
    donor = await services.create_donor(ctx, "爱心企业", "organization")
    masks = await services.create_item(ctx, "N95口罩", "medical_protection", "只")
    rice = await services.create_item(ctx, "大米", "food", "袋")
    a, b = await services.create_warehouse(ctx, "碑林仓库"), await services.create_warehouse(ctx, "雁塔仓库")
    await services.receive(ctx, warehouse_id=a.id, item_id=masks.id, quantity=100, donor_id=donor.id)
    await services.receive(ctx, warehouse_id=b.id, item_id=rice.id, quantity=40)
    community = await new_community(name="粉巷社区")
    await services.distribute(ctx, warehouse_id=a.id, item_id=masks.id, quantity=30, community_id=community.id)
    assert await services.report_by(ctx, "warehouse") == [("碑林仓库", 100, 30, 70), ("雁塔仓库", 40, 0, 40)]
    assert sorted(await services.report_by(ctx, "donor")) == sorted([("爱心企业", 100, 30, 70), ("—", 40, 0, 40)])
    community_rows = await services.report_by(ctx, "community")
    assert ("粉巷社区", 0, 30, 0) in community_rows
    assert (
        services.rows_csv("donor,received,distributed,on_hand", [("a, b", 1, 2, 3)]).splitlines()[1] == '"a, b",1,2,3'
    )
    with pytest.raises(DomainError):
        await services.report_by(ctx, "weather")
