"""Money and idempotency: amounts in fen and their bounds, what a donation and an allocation record, never
allocating more than is left, and a key that applies a change once. Written for what mutation testing
(`make mutation`) found unguarded in plugins/supplies/services.py."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from core.errors import DomainError
from core.services.context import ServiceContext
from plugins.supplies import services
from plugins.supplies.models import MoneyDonation


@pytest.fixture
def ctx(staff_ctx: ServiceContext) -> ServiceContext:
    """The supplies organisation's staff (tests/plugins/supplies/conftest.py)."""
    return staff_ctx


@pytest.fixture
async def donor(ctx: ServiceContext) -> int:
    d = await services.create_donor(ctx, "陕西慈善基金会", "organization")
    await ctx.session.commit()
    return d.id


async def refused(ctx: ServiceContext, call: Any) -> list[tuple[str, tuple[str, ...] | None]]:
    with pytest.raises(DomainError) as err:
        await call
    await ctx.session.rollback()
    return sorted((e.code, e.field) for e in err.value.errors)


def fen_error(amount: Any, field: str = "amount") -> tuple[str, tuple[str, ...] | None] | None:
    try:
        services.to_fen(amount, field)
    except DomainError as err:
        return (err.code, err.errors[0].field)
    return None


# --- amounts --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "fen"),
    [("100000000000", 10_000_000_000_000), ("0.01", 1), (Decimal("12.30"), 1230), ("7", 700)],
    ids=["the largest", "one fen", "a Decimal", "whole yuan"],
)
def test_an_amount_up_to_a_hundred_billion_yuan_becomes_fen(amount: Any, fen: int) -> None:
    assert services.to_fen(amount) == fen


@pytest.mark.parametrize(
    ("amount", "code"),
    [("100000000000.01", "OUT_OF_RANGE"), ("0.00", "OUT_OF_RANGE"), ("-0.01", "OUT_OF_RANGE"), ("", "INVALID_INPUT")],
    ids=["a fen over the largest", "zero", "negative", "empty"],
)
def test_a_bad_amount_is_refused_on_the_field_named(amount: str, code: str) -> None:
    assert fen_error(amount) == (code, ("input", "amount"))
    assert fen_error(amount, "price") == (code, ("input", "price"))


# --- donations ------------------------------------------------------------------------------------------------


async def test_a_donation_records_donor_amount_receipt_purpose_and_time(
    ctx: ServiceContext, donor: int, clock: Any
) -> None:
    d = await services.receive_money(ctx, donor, "30000.5", "  R-1 ", "  抗疫专项 ")
    await ctx.session.commit()
    row = await ctx.session.get(MoneyDonation, d.id, populate_existing=True)
    assert row is not None
    assert (row.donor_id, row.amount_fen, row.receipt_no, row.purpose, row.received_at) == (
        donor,
        3_000_050,
        "R-1",
        "抗疫专项",
        clock.now,
    )
    plain = await services.receive_money(ctx, donor, "1", "R-2")
    await ctx.session.commit()
    assert (await ctx.session.get(MoneyDonation, plain.id, populate_existing=True)).purpose == ""  # type: ignore[union-attr]


async def test_a_donation_names_what_is_wrong(ctx: ServiceContext, donor: int) -> None:
    await services.receive_money(ctx, donor, "1", "R-1")
    await ctx.session.commit()
    cases = [
        (services.receive_money(ctx, donor, "0", "R-9"), [("OUT_OF_RANGE", ("input", "amount"))]),
        (services.receive_money(ctx, donor, "1", "  "), [("REQUIRED", ("input", "receiptNo"))]),
        (services.receive_money(ctx, donor, "1", "R" * 65), [("OUT_OF_RANGE", ("input", "receiptNo"))]),
        (services.receive_money(ctx, 999999, "1", "R-9"), [("NOT_FOUND", ("input", "donorId"))]),
        (services.receive_money(ctx, donor, "2", " R-1"), [("ALREADY_EXISTS", ("input", "receiptNo"))]),
    ]
    for call, expected in cases:
        assert await refused(ctx, call) == expected
    assert await ctx.session.scalar(text("SELECT count(*) FROM supplies_money_donations")) == 1


# --- allocations ----------------------------------------------------------------------------------------------


async def test_a_donation_is_allocated_to_the_last_fen_and_not_one_more(ctx: ServiceContext, donor: int) -> None:
    donation = (await services.receive_money(ctx, donor, "100", "R-1")).id
    other = (await services.receive_money(ctx, donor, "50", "R-2")).id
    await ctx.session.commit()
    assert await services.unallocated_fen(ctx, donation) == 10_000
    first = await services.allocate(ctx, donation, "99.99", "  采购防护服 ")
    await services.allocate(ctx, other, "50", "口罩")
    await ctx.session.commit()
    assert (first.donation_id, first.amount_fen, first.purpose) == (donation, 9_999, "采购防护服")
    # another donation's allocations are not this one's
    assert (await services.unallocated_fen(ctx, donation), await services.unallocated_fen(ctx, other)) == (1, 0)
    assert await refused(ctx, services.allocate(ctx, donation, "0.02", "x")) == [
        ("INSUFFICIENT_FUNDS", ("input", "amount"))
    ]
    last = await services.allocate(ctx, donation, "0.01", "x")
    await ctx.session.commit()
    assert last.amount_fen == 1
    assert await services.unallocated_fen(ctx, donation) == 0


async def test_an_unknown_donation_has_nothing_to_allocate(ctx: ServiceContext) -> None:
    assert await services.unallocated_fen(ctx, 999999) == 0
    assert await refused(ctx, services.allocate(ctx, 999999, "1", "x")) == [("NOT_FOUND", ("input", "donationId"))]


async def test_an_allocation_names_what_is_wrong(ctx: ServiceContext, donor: int) -> None:
    donation = (await services.receive_money(ctx, donor, "100", "R-1")).id
    await ctx.session.commit()
    cases = [
        (services.allocate(ctx, donation, "0", "x"), [("OUT_OF_RANGE", ("input", "amount"))]),
        (services.allocate(ctx, donation, "1", " "), [("REQUIRED", ("input", "purpose"))]),
        (services.allocate(ctx, donation, "1", "x" * 501), [("OUT_OF_RANGE", ("input", "purpose"))]),
    ]
    for call, expected in cases:
        assert await refused(ctx, call) == expected
    assert await services.unallocated_fen(ctx, donation) == 10_000


# --- idempotency ----------------------------------------------------------------------------------------------


class Runs:
    """A change run through `idempotent`: counts how often it really ran."""

    def __init__(self, ctx: ServiceContext, donor: int) -> None:
        self.ctx, self.donor, self.count = ctx, donor, 0

    async def __call__(self, key: str | None, operation: str = "receiveMoney", **arguments: Any) -> Any:
        async def run() -> Any:
            self.count += 1
            return await services.receive_money(self.ctx, self.donor, "1", f"R-{self.count}")

        async def load(pk: int) -> Any:
            return await self.ctx.session.get(MoneyDonation, pk)

        return await services.idempotent(self.ctx, key, operation, arguments or {"amount": "1"}, run, load)


async def test_a_key_applies_a_change_once_and_returns_the_first_result(ctx: ServiceContext, donor: int) -> None:
    send = Runs(ctx, donor)
    first = await send("k-1")
    await ctx.session.commit()
    again = await send("k-1")
    await ctx.session.commit()
    assert (send.count, again.id) == (1, first.id)
    stored = (
        await ctx.session.execute(text("SELECT operation, result FROM supplies_idempotency_keys WHERE key = 'k-1'"))
    ).one()
    assert tuple(stored) == ("receiveMoney", {"id": first.id})
    # another key is another change
    assert (await send("k-2")).id != first.id
    assert send.count == 2


@pytest.mark.parametrize("key", [None, ""])
async def test_without_a_key_every_call_applies(ctx: ServiceContext, donor: int, key: str | None) -> None:
    send = Runs(ctx, donor)
    a, b = await send(key), await send(key)
    await ctx.session.commit()
    assert (send.count, a.id != b.id) == (2, True)
    assert await ctx.session.scalar(text("SELECT count(*) FROM supplies_idempotency_keys")) == 0


async def test_a_key_reused_for_other_arguments_or_another_operation_is_refused(
    ctx: ServiceContext, donor: int
) -> None:
    send = Runs(ctx, donor)
    await send("k-1", amount="1")
    await ctx.session.commit()
    for call in (send("k-1", amount="2"), send("k-1", "allocate", amount="1")):
        assert await refused(ctx, call) == [("IDEMPOTENCY_MISMATCH", ("input", "idempotencyKey"))]
    assert send.count == 1


async def test_a_key_is_at_most_a_hundred_characters(ctx: ServiceContext, donor: int) -> None:
    send = Runs(ctx, donor)
    await send("k" * 100)
    await ctx.session.commit()
    assert await refused(ctx, send("k" * 101)) == [("OUT_OF_RANGE", ("input", "idempotencyKey"))]
    assert send.count == 1
