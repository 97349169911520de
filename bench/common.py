"""Shared benchmark plumbing: a database to measure on, and latency statistics."""

from __future__ import annotations

import os
import socket
import statistics
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from core import migrate
from core.database import EmbeddedPostgres, create_engine, database_url_for, drop_database, ensure_database


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (a figure the machine's other load does not inflate)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@asynccontextmanager
async def bench_database(name: str) -> AsyncIterator[str]:
    """A fresh, migrated database on DATABASE_URL's server or on a throwaway embedded one."""
    external = os.environ.get("DATABASE_URL")
    tmp = None
    server = None
    if external:
        server_url = external
    else:
        tmp = tempfile.TemporaryDirectory(prefix="ysg-bench-")
        server = EmbeddedPostgres.start(Path(tmp.name) / "pgdata", delete_on_stop=True)
        server_url = server.url()
    await drop_database(server_url, name)
    await ensure_database(server_url, name)
    url = database_url_for(server_url, name).render_as_string(hide_password=False)
    engine = create_engine(url, pool_size=1)
    await migrate.upgrade(engine)
    await engine.dispose()
    try:
        yield url
    finally:
        await drop_database(server_url, name)
        if server is not None:
            server.stop()
        if tmp is not None:
            tmp.cleanup()


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(samples: list[float]) -> str:
    return (
        f"p50 {percentile(samples, 50) * 1000:7.2f} ms  p95 {percentile(samples, 95) * 1000:7.2f} ms  "
        f"mean {statistics.fmean(samples) * 1000:7.2f} ms"
    )
