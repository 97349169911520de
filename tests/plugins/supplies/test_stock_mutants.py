"""Stock: the exact balances and ledger rows each change writes, the bounds of every quantity, the field each
refusal names, first-expiry-first-out and partial deliveries. Written for what mutation testing
(`make mutation`) found unguarded in plugins/supplies/services.py."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from core.errors import DomainError
from core.services.context import ServiceContext, Viewer
from plugins.supplies import services
from plugins.supplies.services import MAX_QUANTITY
from tests.factories import Factory
from tests.plugins.supplies.conftest import NewCommunity


@pytest.fixture
def ctx(staff_ctx: ServiceContext) -> ServiceContext:
    """The supplies organisation's staff (tests/plugins/supplies/conftest.py)."""
    return staff_ctx


@pytest.fixture
async def stock(ctx: ServiceContext) -> dict[str, int]:
    """100 masks in the main warehouse; the other warehouse is empty."""
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
        "batch": receipt.batch_id,
        "receipt": receipt.id,
    }


async def on_hand(ctx: ServiceContext, batch: int, warehouse: int) -> int | None:
    return await ctx.session.scalar(
        text("SELECT on_hand FROM supplies_balances WHERE batch_id = :b AND warehouse_id = :w"),
        {"b": batch, "w": warehouse},
    )


async def ledger(ctx: ServiceContext, after: int = 0) -> list[tuple[Any, ...]]:
    """(kind, batch, warehouse, quantity, reason, reverses, distribution, actor) of every movement after `after`."""
    rows = await ctx.session.execute(
        text(
            "SELECT kind, batch_id, warehouse_id, quantity, reason, reverses_id, distribution_id, actor "
            "FROM supplies_movements WHERE id > :after ORDER BY id"
        ),
        {"after": after},
    )
    return [tuple(r) for r in rows]


async def refused(ctx: ServiceContext, call: Any) -> list[tuple[str, tuple[str, ...] | None]]:
    """The (code, field) of each error of a refused call; the transaction is rolled back."""
    with pytest.raises(DomainError) as err:
        await call
    await ctx.session.rollback()
    return sorted((e.code, e.field) for e in err.value.errors)


# --- receiving ------------------------------------------------------------------------------------------------


async def test_receiving_a_donors_batch_again_adds_up_and_a_new_code_is_a_new_batch(
    stock: dict[str, int], ctx: ServiceContext, clock: Any
) -> None:
    donor = (await services.create_donor(ctx, "爱心企业", "organization")).id
    first = await services.receive(
        ctx, warehouse_id=stock["main"], item_id=stock["masks"], quantity=100, donor_id=donor, batch_code="A"
    )
    again = await services.receive(
        ctx, warehouse_id=stock["main"], item_id=stock["masks"], quantity=MAX_QUANTITY, donor_id=donor, batch_code="A"
    )
    other = await services.receive(
        ctx, warehouse_id=stock["main"], item_id=stock["masks"], quantity=1, donor_id=donor, batch_code="  B-2 "
    )
    await ctx.session.commit()
    assert again.batch_id == first.batch_id
    assert other.batch_id != first.batch_id
    assert await on_hand(ctx, first.batch_id, stock["main"]) == 100 + MAX_QUANTITY
    assert await on_hand(ctx, other.batch_id, stock["main"]) == 1
    row = await ctx.session.execute(
        text("SELECT code, donor_id, item_id FROM supplies_batches WHERE id = :b"), {"b": other.batch_id}
    )
    assert tuple(row.one()) == ("B-2", donor, stock["masks"])
    assert (again.kind, again.quantity, again.actor, again.at) == ("receipt", MAX_QUANTITY, "supplies staff", clock.now)
    assert (again.batch_id, again.warehouse_id) == (first.batch_id, stock["main"])


@pytest.mark.parametrize("quantity", [0, -1, MAX_QUANTITY + 1])
async def test_a_quantity_is_one_to_ten_million(stock: dict[str, int], ctx: ServiceContext, quantity: int) -> None:
    calls = [
        services.receive(ctx, warehouse_id=stock["main"], item_id=stock["masks"], quantity=quantity),
        services.transfer(
            ctx, batch_id=stock["batch"], from_warehouse=stock["main"], to_warehouse=stock["other"], quantity=quantity
        ),
        services.distribute(
            ctx, warehouse_id=stock["main"], item_id=stock["masks"], quantity=quantity, recipient="张三"
        ),
    ]
    for call in calls:
        assert await refused(ctx, call) == [("OUT_OF_RANGE", ("input", "quantity"))]
    assert await on_hand(ctx, stock["batch"], stock["main"]) == 100


# --- transfers ------------------------------------------------------------------------------------------------


async def test_a_transfer_moves_exactly_its_quantity_and_writes_both_legs(
    stock: dict[str, int], ctx: ServiceContext
) -> None:
    batch, main, other = stock["batch"], stock["main"], stock["other"]
    moved = await services.transfer(ctx, batch_id=batch, from_warehouse=main, to_warehouse=other, quantity=30)
    await ctx.session.commit()
    assert (await on_hand(ctx, batch, main), await on_hand(ctx, batch, other)) == (70, 30)
    assert [r[:4] for r in await ledger(ctx, stock["receipt"])] == [
        ("transfer_out", batch, main, -30),
        ("transfer_in", batch, other, 30),
    ]
    assert (moved.kind, moved.warehouse_id, moved.quantity) == ("transfer_in", other, 30)
    # the rest, exactly all of it, can follow; then nothing more
    await services.transfer(ctx, batch_id=batch, from_warehouse=main, to_warehouse=other, quantity=70)
    await ctx.session.commit()
    assert (await on_hand(ctx, batch, main), await on_hand(ctx, batch, other)) == (0, 100)
    call = services.transfer(ctx, batch_id=batch, from_warehouse=main, to_warehouse=other, quantity=1)
    assert await refused(ctx, call) == [("INSUFFICIENT_STOCK", ("input", "quantity"))]
    assert (await on_hand(ctx, batch, main), await on_hand(ctx, batch, other)) == (0, 100)


async def test_a_transfer_names_what_is_wrong(stock: dict[str, int], ctx: ServiceContext) -> None:
    batch, main, other = stock["batch"], stock["main"], stock["other"]
    cases = [
        (
            (batch, main, main, 0),
            [("OUT_OF_RANGE", ("input", "quantity")), ("SAME_WAREHOUSE", ("input", "toWarehouseId"))],
        ),
        ((999999, main, other, 1), [("NOT_FOUND", ("input", "batchId"))]),
        ((batch, 999999, other, 1), [("NOT_FOUND", ("input", "fromWarehouseId"))]),
        ((batch, main, 999999, 1), [("NOT_FOUND", ("input", "toWarehouseId"))]),
        ((batch, other, main, 1), [("INSUFFICIENT_STOCK", ("input", "quantity"))]),
    ]
    for (b, f, t, q), expected in cases:
        call = services.transfer(ctx, batch_id=b, from_warehouse=f, to_warehouse=t, quantity=q)
        assert await refused(ctx, call) == expected
    assert await ledger(ctx, stock["receipt"]) == []


# --- adjustments ----------------------------------------------------------------------------------------------


async def test_an_adjustment_adds_or_takes_its_delta_with_its_reason(
    stock: dict[str, int], ctx: ServiceContext
) -> None:
    batch, main = stock["batch"], stock["main"]
    found = await services.adjust(ctx, batch_id=batch, warehouse_id=main, delta=5, reason="  found behind a shelf ")
    assert await on_hand(ctx, batch, main) == 105
    await services.adjust(ctx, batch_id=batch, warehouse_id=main, delta=-105, reason="flooded")
    await ctx.session.commit()
    assert await on_hand(ctx, batch, main) == 0
    assert [r[:5] for r in await ledger(ctx, stock["receipt"])] == [
        ("adjustment", batch, main, 5, "found behind a shelf"),
        ("adjustment", batch, main, -105, "flooded"),
    ]
    assert (found.kind, found.quantity, found.reason) == ("adjustment", 5, "found behind a shelf")
    # stock never goes below zero
    call = services.adjust(ctx, batch_id=batch, warehouse_id=main, delta=-1, reason="lost")
    assert await refused(ctx, call) == [("INSUFFICIENT_STOCK", ("input", "delta"))]
    assert await on_hand(ctx, batch, main) == 0


async def test_an_adjustment_may_be_up_to_ten_million_either_way(stock: dict[str, int], ctx: ServiceContext) -> None:
    batch, main = stock["batch"], stock["main"]
    await services.adjust(ctx, batch_id=batch, warehouse_id=main, delta=MAX_QUANTITY, reason="donation counted")
    await services.adjust(ctx, batch_id=batch, warehouse_id=main, delta=-MAX_QUANTITY, reason="miscounted")
    await ctx.session.commit()
    assert await on_hand(ctx, batch, main) == 100


@pytest.mark.parametrize(
    ("delta", "reason", "expected"),
    [
        (0, "x", [("OUT_OF_RANGE", ("input", "delta"))]),
        (MAX_QUANTITY + 1, "x", [("OUT_OF_RANGE", ("input", "delta"))]),
        (-MAX_QUANTITY - 1, "x", [("OUT_OF_RANGE", ("input", "delta"))]),
        (3, "   ", [("REQUIRED", ("input", "reason"))]),
        (3, "x" * 501, [("OUT_OF_RANGE", ("input", "reason"))]),
        (0, "", [("OUT_OF_RANGE", ("input", "delta")), ("REQUIRED", ("input", "reason"))]),
    ],
    ids=["zero", "over ten million", "under minus ten million", "no reason", "reason too long", "both"],
)
async def test_an_adjustment_is_a_bounded_non_zero_delta_with_a_reason(
    stock: dict[str, int], ctx: ServiceContext, delta: int, reason: str, expected: list[Any]
) -> None:
    call = services.adjust(ctx, batch_id=stock["batch"], warehouse_id=stock["main"], delta=delta, reason=reason)
    assert await refused(ctx, call) == expected
    assert await on_hand(ctx, stock["batch"], stock["main"]) == 100


async def test_an_adjustment_of_an_unknown_batch_or_warehouse_is_not_found_on_that_field(
    stock: dict[str, int], ctx: ServiceContext
) -> None:
    call = services.adjust(ctx, batch_id=999999, warehouse_id=stock["main"], delta=1, reason="x")
    assert await refused(ctx, call) == [("NOT_FOUND", ("input", "batchId"))]
    call = services.adjust(ctx, batch_id=stock["batch"], warehouse_id=999999, delta=1, reason="x")
    assert await refused(ctx, call) == [("NOT_FOUND", ("input", "warehouseId"))]


# --- reversals ------------------------------------------------------------------------------------------------


async def test_a_reversal_writes_the_opposite_and_links_the_original(
    stock: dict[str, int], ctx: ServiceContext
) -> None:
    batch, main = stock["batch"], stock["main"]
    lost = await services.adjust(ctx, batch_id=batch, warehouse_id=main, delta=-40, reason="lost")
    await ctx.session.commit()
    lost_id = lost.id
    # reversing a negative adjustment puts the goods back
    back = await services.reverse(ctx, lost_id, "  found again ")
    await ctx.session.commit()
    assert await on_hand(ctx, batch, main) == 100
    assert (await ledger(ctx, lost_id))[0][:6] == ("reversal", batch, main, 40, "found again", lost_id)
    assert (back.kind, back.quantity, back.reverses_id, back.reason) == ("reversal", 40, lost_id, "found again")
    # reversing the receipt takes exactly its 100 out again
    await services.reverse(ctx, stock["receipt"], "entered twice")
    await ctx.session.commit()
    assert await on_hand(ctx, batch, main) == 0
    assert (await ledger(ctx, back.id))[0][:6] == ("reversal", batch, main, -100, "entered twice", stock["receipt"])


async def test_a_reversal_is_refused_once_its_goods_have_left(stock: dict[str, int], ctx: ServiceContext) -> None:
    await services.transfer(
        ctx, batch_id=stock["batch"], from_warehouse=stock["main"], to_warehouse=stock["other"], quantity=1
    )
    await ctx.session.commit()
    call = services.reverse(ctx, stock["receipt"], "wrong")
    assert await refused(ctx, call) == [("INSUFFICIENT_STOCK", ("input", "movementId"))]
    assert await on_hand(ctx, stock["batch"], stock["main"]) == 99


async def test_what_cannot_be_reversed_is_refused_on_movement_id(
    stock: dict[str, int], ctx: ServiceContext, new_community: NewCommunity
) -> None:
    batch, main, other = stock["batch"], stock["main"], stock["other"]
    await services.transfer(ctx, batch_id=batch, from_warehouse=main, to_warehouse=other, quantity=10)
    community = await new_community()
    await services.distribute(ctx, warehouse_id=main, item_id=stock["masks"], quantity=5, community_id=community.id)
    extra = await services.adjust(ctx, batch_id=batch, warehouse_id=main, delta=3, reason="found")
    reversal = await services.reverse(ctx, extra.id, "miscounted")
    await ctx.session.commit()
    extra_id, reversal_id = extra.id, reversal.id
    ids = {r[0]: i for i, r in zip(await _ids(ctx), await ledger(ctx), strict=True)}
    for kind in ("transfer_out", "transfer_in", "distribution"):
        call = services.reverse(ctx, ids[kind], "undo")
        assert await refused(ctx, call) == [("INVALID_TRANSITION", ("input", "movementId"))]
    assert await refused(ctx, services.reverse(ctx, reversal_id, "undo")) == [
        ("INVALID_TRANSITION", ("input", "movementId"))
    ]
    assert await refused(ctx, services.reverse(ctx, extra_id, "again")) == [("ALREADY_EXISTS", ("input", "movementId"))]
    assert await refused(ctx, services.reverse(ctx, 999999, "x")) == [("NOT_FOUND", ("input", "movementId"))]
    assert await refused(ctx, services.reverse(ctx, stock["receipt"], " ")) == [("REQUIRED", ("input", "reason"))]
    # nothing of that moved stock: 100 - 10 - 5 (+3 -3)
    assert (await on_hand(ctx, batch, main), await on_hand(ctx, batch, other)) == (85, 10)


async def _ids(ctx: ServiceContext) -> list[int]:
    return list((await ctx.session.scalars(text("SELECT id FROM supplies_movements ORDER BY id"))).all())


# --- distributions --------------------------------------------------------------------------------------------


async def test_a_distribution_goes_to_exactly_one_recipient(
    stock: dict[str, int], ctx: ServiceContext, new_community: NewCommunity
) -> None:
    community = await new_community()
    await ctx.session.commit()
    base = {"warehouse_id": stock["main"], "item_id": stock["masks"], "quantity": 1}
    for targets in ({}, {"recipient": "   "}, {"community_id": community.id, "recipient": "张三"}):
        call = services.distribute(ctx, **base, **targets)  # type: ignore[arg-type]
        assert await refused(ctx, call) == [("INVALID_INPUT", ("input", "communityId"))]
    assert await on_hand(ctx, stock["batch"], stock["main"]) == 100


async def test_a_distribution_records_its_recipient_and_note_trimmed(
    stock: dict[str, int], ctx: ServiceContext
) -> None:
    d = await services.distribute(
        ctx, warehouse_id=stock["main"], item_id=stock["masks"], quantity=7, recipient=" 张三 ", note=" 3 床 "
    )
    await ctx.session.commit()
    row = (
        await ctx.session.execute(
            text(
                "SELECT warehouse_id, community_id, request_id, recipient, note, status "
                "FROM supplies_distributions WHERE id = :d"
            ),
            {"d": d.id},
        )
    ).one()
    assert tuple(row) == (stock["main"], None, None, "张三", "3 床", "planned")
    assert [r[:4] + r[6:7] for r in await ledger(ctx, stock["receipt"])] == [
        ("distribution", stock["batch"], stock["main"], -7, d.id)
    ]
    assert await on_hand(ctx, stock["batch"], stock["main"]) == 93


async def test_first_expiry_first_out_across_batches_undated_last(stock: dict[str, int], ctx: ServiceContext) -> None:
    # given formula in three dated batches in main (and more of the soonest in the other warehouse)
    day = date(2030, 1, 1)

    async def receive(code: str, days: int, quantity: int, warehouse: str = "main") -> int:
        m = await services.receive(
            ctx,
            warehouse_id=stock[warehouse],
            item_id=stock["formula"],
            quantity=quantity,
            batch_code=code,
            expires_on=day + timedelta(days=days),
        )
        return m.batch_id

    late = await receive("late", 300, 10)
    soon = await receive("soon", 10, 4)
    mid = await receive("mid", 100, 3)
    elsewhere = await receive("soon", 10, 50, "other")
    await ctx.session.commit()
    # when 12 are distributed from main: 4 soon + 3 mid + 5 late
    d = await services.distribute(ctx, warehouse_id=stock["main"], item_id=stock["formula"], quantity=12, recipient="x")
    await ctx.session.commit()
    picks = [(r[1], r[3]) for r in await ledger(ctx) if r[6] == d.id]
    assert picks == [(soon, -4), (mid, -3), (late, -5)]
    assert [await on_hand(ctx, b, stock["main"]) for b in (soon, mid, late)] == [0, 0, 5]
    # and all that is left (5), but not one more, can still go; the other warehouse's 50 do not count
    call = services.distribute(ctx, warehouse_id=stock["main"], item_id=stock["formula"], quantity=6, recipient="x")
    assert await refused(ctx, call) == [("INSUFFICIENT_STOCK", ("input", "quantity"))]
    await services.distribute(ctx, warehouse_id=stock["main"], item_id=stock["formula"], quantity=5, recipient="x")
    await ctx.session.commit()
    assert await on_hand(ctx, late, stock["main"]) == 0
    assert await on_hand(ctx, elsewhere, stock["other"]) == 50


async def test_an_undated_batch_goes_after_dated_ones_and_other_items_do_not_count(
    stock: dict[str, int], ctx: ServiceContext
) -> None:
    # masks: the undated batch of the fixture (100) and a later dated one (5)
    dated = await services.receive(
        ctx, warehouse_id=stock["main"], item_id=stock["masks"], quantity=5, batch_code="D", expires_on=date(2031, 1, 1)
    )
    await services.receive(
        ctx, warehouse_id=stock["main"], item_id=stock["formula"], quantity=500, expires_on=date(2031, 1, 1)
    )
    await ctx.session.commit()
    d = await services.distribute(ctx, warehouse_id=stock["main"], item_id=stock["masks"], quantity=8, recipient="x")
    await ctx.session.commit()
    assert [(r[1], r[3]) for r in await ledger(ctx) if r[6] == d.id] == [(dated.batch_id, -5), (stock["batch"], -3)]
    call = services.distribute(ctx, warehouse_id=stock["main"], item_id=stock["masks"], quantity=98, recipient="x")
    assert await refused(ctx, call) == [("INSUFFICIENT_STOCK", ("input", "quantity"))]


async def test_distributing_from_an_unknown_item_warehouse_community_or_request_is_not_found(
    stock: dict[str, int], ctx: ServiceContext
) -> None:
    base = {"warehouse_id": stock["main"], "item_id": stock["masks"], "quantity": 1}
    cases = [
        ({**base, "item_id": 999999, "recipient": "x"}, "itemId"),
        ({**base, "warehouse_id": 999999, "recipient": "x"}, "warehouseId"),
        ({**base, "community_id": 999999}, "communityId"),
        ({**base, "request_id": 999999}, "requestId"),
    ]
    for kw, field in cases:
        assert await refused(ctx, services.distribute(ctx, **kw)) == [("NOT_FOUND", ("input", field))]


# --- dispatch and delivery ------------------------------------------------------------------------------------


async def _planned(ctx: ServiceContext, stock: dict[str, int], quantity: int, **kw: Any) -> int:
    d = await services.distribute(ctx, warehouse_id=stock["main"], item_id=stock["masks"], quantity=quantity, **kw)
    await ctx.session.commit()
    return d.id


async def _status(ctx: ServiceContext, distribution: int) -> tuple[Any, ...]:
    row = await ctx.session.execute(
        text(
            "SELECT status, delivered_quantity, confirmed_by, confirmed_at, note "
            "FROM supplies_distributions WHERE id = :d"
        ),
        {"d": distribution},
    )
    return tuple(row.one())


async def test_a_distribution_is_dispatched_once_and_then_delivered_once(
    stock: dict[str, int], ctx: ServiceContext, clock: Any
) -> None:
    d = await _planned(ctx, stock, 10, recipient="x", note="urgent")
    # it cannot be delivered before it is dispatched
    assert await refused(ctx, services.confirm_delivery(ctx, d)) == [("INVALID_TRANSITION", ("input", "id"))]
    await services.dispatch(ctx, d)
    await ctx.session.commit()
    assert (await _status(ctx, d))[0] == "dispatched"
    assert await refused(ctx, services.dispatch(ctx, d)) == [("INVALID_TRANSITION", ("input", "id"))]
    # delivered in full: no goods come back, who and when are recorded, the notes are joined
    clock.now += timedelta(hours=2)
    await services.confirm_delivery(ctx, d, "  all there ")
    await ctx.session.commit()
    assert await _status(ctx, d) == ("delivered", 10, "supplies staff", clock.now, "urgent all there")
    assert await on_hand(ctx, stock["batch"], stock["main"]) == 90
    assert [r[0] for r in await ledger(ctx, stock["receipt"])] == ["distribution"]
    # and never again
    assert await refused(ctx, services.dispatch(ctx, d)) == [("INVALID_TRANSITION", ("input", "id"))]
    assert await refused(ctx, services.confirm_delivery(ctx, d)) == [("INVALID_TRANSITION", ("input", "id"))]
    assert await refused(ctx, services.dispatch(ctx, 999999)) == [("NOT_FOUND", ("input", "id"))]


async def test_a_delivery_without_notes_keeps_the_note(stock: dict[str, int], ctx: ServiceContext) -> None:
    d = await _planned(ctx, stock, 1, recipient="x")
    await services.dispatch(ctx, d)
    await services.confirm_delivery(ctx, d)
    await ctx.session.commit()
    assert (await _status(ctx, d))[4] == ""


async def test_a_partial_delivery_returns_the_latest_expiring_goods_first(
    stock: dict[str, int], ctx: ServiceContext
) -> None:
    # given 12 formula sent from two batches: 4 expiring soon, 8 later
    soon = await services.receive(
        ctx,
        warehouse_id=stock["main"],
        item_id=stock["formula"],
        quantity=4,
        batch_code="S",
        expires_on=date(2030, 1, 1),
    )
    late = await services.receive(
        ctx,
        warehouse_id=stock["main"],
        item_id=stock["formula"],
        quantity=20,
        batch_code="L",
        expires_on=date(2031, 1, 1),
    )
    d = await services.distribute(ctx, warehouse_id=stock["main"], item_id=stock["formula"], quantity=12, recipient="x")
    await services.dispatch(ctx, d.id)
    await ctx.session.commit()
    last = (await _ids(ctx))[-1]
    # when 2 are delivered, 10 go back: the 8 late ones first, then 2 of the soon ones
    await services.confirm_delivery(ctx, d.id, delivered=2)
    await ctx.session.commit()
    assert [r[:5] + r[6:7] for r in await ledger(ctx, last)] == [
        ("return", late.batch_id, stock["main"], 8, "not delivered", d.id),
        ("return", soon.batch_id, stock["main"], 2, "not delivered", d.id),
    ]
    assert (await on_hand(ctx, soon.batch_id, stock["main"]), await on_hand(ctx, late.batch_id, stock["main"])) == (
        2,
        20,
    )
    assert (await _status(ctx, d.id))[:2] == ("delivered", 2)


@pytest.mark.parametrize(("delivered", "back"), [(0, 10), (9, 1), (10, 0)])
async def test_delivered_is_between_none_and_all_that_was_sent(
    stock: dict[str, int], ctx: ServiceContext, delivered: int, back: int
) -> None:
    d = await _planned(ctx, stock, 10, recipient="x")
    await services.dispatch(ctx, d)
    await ctx.session.commit()
    for wrong in (-1, 11):
        call = services.confirm_delivery(ctx, d, delivered=wrong)
        assert await refused(ctx, call) == [("OUT_OF_RANGE", ("input", "delivered"))]
    await services.confirm_delivery(ctx, d, delivered=delivered)
    await ctx.session.commit()
    assert (await _status(ctx, d))[:2] == ("delivered", delivered)
    assert await on_hand(ctx, stock["batch"], stock["main"]) == 90 + back


async def test_only_the_head_of_the_receiving_community_confirms_without_supplies_rights(
    stock: dict[str, int], ctx: ServiceContext, new_community: NewCommunity, supplies_org: Any
) -> None:
    mine, theirs = await new_community(), await new_community()
    to_mine = await _planned(ctx, stock, 5, community_id=mine.id)
    to_person = await _planned(ctx, stock, 5, recipient="x")
    for d in (to_mine, to_person):
        await services.dispatch(ctx, d)
    await ctx.session.commit()

    def head(community: int) -> ServiceContext:
        viewer = Viewer(label="head", role="community_head", organization_id=supplies_org.id, community_id=community)
        return ServiceContext(ctx.session, viewer, ctx.clock)

    for who, d in ((head(theirs.id), to_mine), (head(mine.id), to_person)):
        with pytest.raises(DomainError) as err:
            await services.confirm_delivery(who, d)
        assert err.value.code == "FORBIDDEN"
        await ctx.session.rollback()
    await services.confirm_delivery(head(mine.id), to_mine)
    await ctx.session.commit()
    assert (await _status(ctx, to_mine))[:3] == ("delivered", 5, "head")


async def test_delivering_the_last_goods_of_a_request_in_progress_fulfils_it(
    stock: dict[str, int], ctx: ServiceContext, make: Factory, supplies_org: Any
) -> None:
    from core.vocab import RequestStatus

    request = await make.request(status=RequestStatus.IN_PROGRESS)
    first = await _planned(ctx, stock, 5, request_id=request.id)
    second = await _planned(ctx, stock, 5, request_id=request.id)
    for d in (first, second):
        await services.dispatch(ctx, d)
    await ctx.session.commit()

    async def status() -> str:
        return await ctx.session.scalar(text("SELECT status FROM help_requests WHERE id = :r"), {"r": request.id})

    # one of two delivered: still in progress
    await services.confirm_delivery(ctx, first)
    await ctx.session.commit()
    assert await status() == "in_progress"
    # both: fulfilled
    await services.confirm_delivery(ctx, second)
    await ctx.session.commit()
    assert await status() == "fulfilled"
