"""The demo leaves rows in the delivery tables (the isolation test's positive control needs them)."""

from __future__ import annotations

import dataclasses

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import create_sessionmaker
from core.delivery.demo import add_demo_data
from core.demo import load_demo
from core.plugins import build_plugin_host
from core.services.context import SYSTEM, ServiceContext
from tests.core.delivery.support import rows


async def test_the_demo_part_routes_the_associations_messages_and_adds_a_switched_off_endpoint(
    engine: AsyncEngine, owner_engine: AsyncEngine
) -> None:
    await load_demo(engine, host=build_plugin_host(entry_points=False))
    async with create_sessionmaker(engine)() as session, session.begin():
        org = (await session.execute(text("SELECT id FROM organizations WHERE kind = 'association'"))).scalar_one()
        ctx = ServiceContext(session=session, viewer=dataclasses.replace(SYSTEM, organization_id=org))
        await add_demo_data(ctx, org)
    assert (await rows(owner_engine, "SELECT count(*) FROM deliveries WHERE channel = 'log'"))[0][0] > 0  # type: ignore[operator]
    assert await rows(owner_engine, "SELECT enabled FROM webhook_endpoints") == [(False,)]
