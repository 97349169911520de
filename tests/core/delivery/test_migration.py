"""Migration 0014 as an upgrade meets it: what the outbox already holds is history, not work; and the outbox
depth /metrics reads comes from a small index."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core import migrate
from core.database import create_engine, database_url_for, drop_database, ensure_database
from core.plugins import build_plugin_host

NAME = "ysg_delivery_upgrade"


async def test_messages_queued_before_delivery_existed_are_not_sent_by_the_upgrade(server_url: str) -> None:
    await drop_database(server_url, NAME)
    await ensure_database(server_url, NAME)
    engine = create_engine(database_url_for(server_url, NAME), pool_size=1)
    try:
        dirs = build_plugin_host(entry_points=False).migration_dirs()
        # given a deployment at 0013 whose outbox holds a message nothing ever delivered
        await migrate.upgrade(engine, dirs, target="0013")
        async with engine.begin() as conn:
            org = (
                await conn.execute(
                    text("INSERT INTO organizations (name, kind) VALUES ('协会', 'association') RETURNING id")
                )
            ).scalar_one()
            await conn.execute(
                text(
                    "INSERT INTO notifications (organization_id, recipient_name, recipient_phone, kind) "
                    "VALUES (:org, '王', '13900000000', 'offer')"
                ),
                {"org": org},
            )
        # when it upgrades to delivery
        await migrate.upgrade(engine, dirs)
        # then the old message counts as delivered: no worker routes it, nothing is due
        async with engine.connect() as conn:
            assert (
                await conn.execute(text("SELECT count(*) FROM notifications WHERE delivered_at IS NULL"))
            ).one() == (0,)
            assert (await conn.execute(text("SELECT delivery_due_organizations(now())"))).scalar_one() == []
            # and a message queued after the upgrade is work again
            await conn.execute(
                text(
                    "INSERT INTO notifications (organization_id, recipient_name, recipient_phone, kind) "
                    "VALUES (:org, '李', '13900000001', 'offer')"
                ),
                {"org": org},
            )
            assert (await conn.execute(text("SELECT delivery_due_organizations(now())"))).scalar_one() == [org]
            await conn.rollback()
    finally:
        await engine.dispose()
        await drop_database(server_url, NAME)


async def test_outbox_depth_counts_from_the_open_deliveries_index(owner_engine: AsyncEngine, db_url: Any) -> None:
    # given the planner told to avoid sequential scans (the table is tiny here)
    async with owner_engine.connect() as conn:
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        # when it plans what delivery_depth() counts
        plans = {
            status: "\n".join(
                r[0]
                for r in await conn.execute(text(f"EXPLAIN SELECT count(*) FROM deliveries WHERE status = '{status}'"))
            )
            for status in ("queued", "parked")
        }
        oldest = "\n".join(
            r[0]
            for r in await conn.execute(text("EXPLAIN SELECT min(created_at) FROM deliveries WHERE status = 'queued'"))
        )
        await conn.rollback()
    # then each reads a partial index (of queued and parked rows, or of queued ones), not every delivery ever
    # sent
    assert "ix_deliveries_open" in plans["parked"], plans
    for plan in (plans["queued"], oldest):
        assert "ix_deliveries_open" in plan or "ix_deliveries_due" in plan, plan
