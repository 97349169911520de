"""The raw baseline as a server: the same page from hand-written SQL through asyncpg, serialised with orjson,
behind Starlette under uvicorn (as the service is), so the two are compared over the same HTTP path.

    BENCH_RAW_DSN='{"host": …, "user": "yunshegong_app", …}' BENCH_RAW_SETTINGS='{"app.org_id": "1", …}' \
        uvicorn bench.raw_server:create_app --factory

It connects as the app role with the organisation settings fixed for the session (server_settings), so
row-level security filters its rows like the service's; being a floor, it sets them once per connection
rather than once per transaction. POST /page with {"first": n, "depth": 0..3} answers the shape of
`helpRequests(first: n) { edges { node { … } } }`: depth 0 the requests' own fields, 1 + community name,
2 + assignments' status, 3 + the assignments' volunteer name (the benchmark page).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

POOL_SIZE = 10

PAGE_SQL = """
SELECT id, title, status, urgency, needed_by, community_id FROM help_requests
ORDER BY urgency_rank, needed_by_sort, id LIMIT $1"""
COMMUNITIES_SQL = "SELECT id, name FROM communities WHERE id = ANY($1::bigint[])"
ASSIGNMENTS_SQL = """
SELECT request_id, status FROM assignments WHERE request_id = ANY($1::bigint[]) ORDER BY id"""
ASSIGNMENTS_VOLUNTEERS_SQL = """
SELECT a.request_id, a.status, v.name FROM assignments a JOIN volunteers v ON v.id = a.volunteer_id
WHERE a.request_id = ANY($1::bigint[]) ORDER BY a.id"""


async def page(conn: asyncpg.Connection, first: int, depth: int) -> bytes:
    rows = await conn.fetch(PAGE_SQL, first)
    nodes = [
        {"id": r["id"], "title": r["title"], "status": r["status"], "urgency": r["urgency"], "neededBy": r["needed_by"]}
        for r in rows
    ]
    if depth >= 1:
        wanted = list({r["community_id"] for r in rows})
        names = {c["id"]: c["name"] for c in await conn.fetch(COMMUNITIES_SQL, wanted)}
        for node, r in zip(nodes, rows, strict=True):
            node["community"] = {"name": names[r["community_id"]]}
    if depth >= 2:
        by_request: dict[int, list[dict[str, Any]]] = {}
        ids = [r["id"] for r in rows]
        if depth >= 3:
            for a in await conn.fetch(ASSIGNMENTS_VOLUNTEERS_SQL, ids):
                by_request.setdefault(a["request_id"], []).append(
                    {"status": a["status"], "volunteer": {"name": a["name"]}}
                )
        else:
            for a in await conn.fetch(ASSIGNMENTS_SQL, ids):
                by_request.setdefault(a["request_id"], []).append({"status": a["status"]})
        for node in nodes:
            node["assignments"] = by_request.get(node["id"], [])
    return orjson.dumps({"data": {"helpRequests": {"edges": [{"node": n} for n in nodes]}}})


async def _keep_session(conn: asyncpg.Connection) -> None:
    # Read-only autocommit statements leave nothing to reset; asyncpg's default reset costs a round trip
    # per request, which a floor should not carry.
    return None


def create_app() -> Starlette:
    dsn = orjson.loads(os.environ["BENCH_RAW_DSN"])
    settings = orjson.loads(os.environ.get("BENCH_RAW_SETTINGS", "{}"))
    pool: asyncpg.Pool | None = None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal pool
        pool = await asyncpg.create_pool(
            **dsn,
            min_size=POOL_SIZE,
            max_size=POOL_SIZE,
            server_settings={**settings, "timezone": "UTC"},
            reset=_keep_session,
        )
        yield
        await pool.close()

    async def endpoint(request: Request) -> Response:
        body = orjson.loads(await request.body())
        assert pool is not None
        async with pool.acquire() as conn:
            return Response(await page(conn, int(body["first"]), int(body["depth"])), media_type="application/json")

    async def healthz(request: Request) -> Response:
        return Response(b"ok")

    return Starlette(routes=[Route("/page", endpoint, methods=["POST"]), Route("/healthz", healthz)], lifespan=lifespan)
