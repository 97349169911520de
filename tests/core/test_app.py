"""The HTTP application: health check and the GraphQL route."""

from __future__ import annotations

import httpx

from core.database import create_engine
from core.settings import Settings
from yunshegong.app import create_app


async def test_healthz_reports_a_reachable_database(gql) -> None:  # type: ignore[no-untyped-def]
    response = await gql.http.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok", "database": "ok"})


async def test_healthz_reports_an_unreachable_database() -> None:
    # given an app whose database does not answer
    engine = create_engine("postgresql://nobody@127.0.0.1:1/nothing", pool_size=1)
    app = create_app(Settings(), engine=engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        response = await http.get("/healthz")
    await engine.dispose()
    # then it says so with a 503
    assert (response.status_code, response.json()["database"]) == (503, "unreachable")


async def test_graphiql_can_be_switched_off(engine) -> None:  # type: ignore[no-untyped-def]
    app = create_app(Settings(graphiql=False), engine=engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        page = await http.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 404


def test_the_garbage_collector_is_tuned_once_the_service_is_built() -> None:
    import gc

    from yunshegong.app import GC_YOUNG_THRESHOLD, tune_garbage_collector

    before = gc.get_threshold()
    try:
        # when the service tunes the collector (its lifespan does, unless YUNSHEGONG_GC_TUNING=false)
        tune_garbage_collector()
        # then what was alive is frozen out of the collections' sight and young garbage is collected in
        # larger batches, the older generations as before
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, before[1], before[2])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
