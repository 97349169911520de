"""The stock ledger's own guards, checked by writing straight into the table (no service in the way): each
test fails when `make schema-mutation` drops the object that keeps the invariant."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from core.services.context import ServiceContext
from plugins.supplies import services

UNIQUE_VIOLATION = "23505"


@pytest.fixture
def ctx(staff_ctx: ServiceContext) -> ServiceContext:
    """The supplies organisation's staff (tests/plugins/supplies/conftest.py)."""
    return staff_ctx


async def test_the_database_refuses_a_second_reversal_of_one_movement(ctx: ServiceContext) -> None:
    # given a receipt, an adjustment and its reversal
    masks = await services.create_item(ctx, "N95口罩", "medical_protection", "只")
    main = await services.create_warehouse(ctx, "碑林仓库")
    receipt = await services.receive(ctx, warehouse_id=main.id, item_id=masks.id, quantity=100)
    extra = await services.adjust(ctx, batch_id=receipt.batch_id, warehouse_id=main.id, delta=5, reason="found")
    reversal = await services.reverse(ctx, extra.id, "miscounted")
    await ctx.session.commit()
    reversal_id, extra_id = reversal.id, extra.id
    # when a second reversal of the same movement is written straight into the ledger
    with pytest.raises(IntegrityError) as err:
        await ctx.session.execute(
            text(
                "INSERT INTO supplies_movements"
                " (kind, batch_id, warehouse_id, quantity, reverses_id, reason, actor, at)"
                " SELECT kind, batch_id, warehouse_id, quantity, reverses_id, reason, actor, at"
                " FROM supplies_movements WHERE id = :id"
            ),
            {"id": reversal_id},
        )
    await ctx.session.rollback()
    # then the unique index refuses it: the movement stays reversed once
    orig: Any = err.value.orig
    cause: Any = orig.__cause__ or orig
    assert (getattr(orig, "sqlstate", None) or cause.sqlstate) == UNIQUE_VIOLATION
    assert cause.constraint_name == "uq_supplies_movements_reverses"
    count = "SELECT count(*) FROM supplies_movements WHERE reverses_id = :id"
    assert await ctx.session.scalar(text(count), {"id": extra_id}) == 1
