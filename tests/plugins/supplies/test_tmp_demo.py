from core.demo import load_demo
from core.plugins import build_plugin_host


async def test_demo_loads_supplies(engine, api) -> None:
    assert await load_demo(engine, host=build_plugin_host(entry_points=False, enabled=["supplies"]))
    from sqlalchemy import text
    from core.database import create_sessionmaker
    from core.services.context import ServiceContext, Viewer
    async with create_sessionmaker(engine)() as s:
        ServiceContext(s, Viewer(role="platform_admin"))
        org = await s.scalar(text("SELECT id FROM organizations WHERE kind = 'association'"))
        print(await s.scalar(text("SELECT count(*) FROM supplies_balances")), org)
        print((await s.execute(text("SELECT organization_id, status FROM supplies_distributions"))).all())
    body = await api("{ suppliesStock { item warehouse onHand } }", role="organization_admin", org=org)
    print(body)
