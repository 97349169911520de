"""`yunshegong serve --workers 2` on the embedded database, end to end: the parent starts PostgreSQL and
migrates once, two worker processes answer on one port, /metrics (behind its token) adds up both workers'
counts by root field, every response and JSON log line carries the request id, and SIGTERM stops it all.
`yunshegong worker` writes its lines in YUNSHEGONG_LOG_FORMAT too.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.serve_process import CHECKOUT, free_port, start, stop, wait_healthy

PROBE = "query WorkersProbe { __typename }"
METRICS_TOKEN = "workers-metrics-token"
SCRAPE = {"Authorization": f"Bearer {METRICS_TOKEN}"}


def _samples(text: str, name: str) -> dict[str, float]:
    """{labels: value} of one metric in the text exposition."""
    found = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            labels, _, value = line.rpartition(" ")
            found[labels[len(name) :]] = float(value)
    return found


async def _probe_concurrently(port: int, count: int, tag: str) -> list[httpx.Response]:
    # A connection each, all at once: the kernel hands them to whichever worker accepts first.
    async def one(i: int) -> httpx.Response:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            return await http.post("/graphql", json={"query": PROBE}, headers={"X-Request-Id": f"{tag}-{i}"})

    return await asyncio.gather(*(one(i) for i in range(count)))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    port = free_port()
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR")}
    env |= {
        "YUNSHEGONG_LOG_FORMAT": "json",
        "YUNSHEGONG_TRUSTED_PROXIES": "127.0.0.1",
        "YUNSHEGONG_JOBS_INTERVAL": "0",
        "YUNSHEGONG_DB_POOL_SIZE": "3",
        # Behind a trusted proxy, so /metrics needs its token.
        "YUNSHEGONG_METRICS_TOKEN": METRICS_TOKEN,
    }
    command = [*CHECKOUT, "serve", "--workers", "2", "--data-dir", str(tmp_path / "pgdata"), "--port", str(port)]
    proc = start(command, env, log)
    try:
        yield proc, port, log
    finally:
        stop(proc, signal.SIGTERM, timeout=60)


def test_two_workers_answer_on_one_port_and_metrics_add_up(served: tuple[subprocess.Popen[bytes], int, Path]) -> None:
    proc, port, log = served
    # given `serve --workers 2` on a fresh embedded database
    wait_healthy(proc, port, log)

    # when clients send the named probe concurrently, round after round, until both workers have answered
    sent = 0
    per_worker: dict[str, float] = {}
    for round_ in range(30):
        responses = asyncio.run(_probe_concurrently(port, 24, f"probe{round_}"))
        sent += len(responses)
        # then every response is the probe's answer and echoes the id the (trusted) proxy sent
        for i, response in enumerate(responses):
            assert response.status_code == 200
            assert response.json() == {"data": {"__typename": "Query"}}
            assert response.headers["x-request-id"] == f"probe{round_}-{i}"
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", headers=SCRAPE, timeout=10).text
        per_worker = {k: v for k, v in _samples(metrics, "yunshegong_worker_http_requests").items() if v > 0}
        if len(per_worker) >= 2:
            break
    # then two worker processes (two pids, neither the parent) answered on the one port
    pids = {labels.split('pid="')[1].split('"')[0] for labels in per_worker}
    assert len(pids) == 2, per_worker
    assert str(proc.pid) not in pids

    # and /metrics, whichever worker answers it, counts every probe of both workers under its root field (the
    # name the client gave the operation is no label)
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", headers=SCRAPE, timeout=10).text
    assert _samples(metrics, "yunshegong_graphql_operations_total").get('{operation="__typename"}') == sent
    assert "WorkersProbe" not in metrics
    # and without the token nobody reads it
    assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).status_code == 401
    # and the pools of both live workers add up (3 connections each)
    assert _samples(metrics, "yunshegong_db_pool_size").get("") == 6

    # when it is stopped as a process manager stops it
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    # then the log is JSON lines, and each probe's access line carries its request id, from both workers
    entries = [orjson.loads(line) for line in log.read_bytes().splitlines() if line.startswith(b"{")]
    access = [e for e in entries if e["logger"] == "uvicorn.access" and e.get("request_id", "").startswith("probe")]
    assert len(access) == sent
    assert {str(e["pid"]) for e in access} == pids
    # and the embedded PostgreSQL was stopped with it
    data_dir = str(log.parent / "pgdata")
    running = subprocess.run(["pgrep", "-f", f"postgres -D {data_dir}"], capture_output=True, check=False)
    assert running.stdout == b""


def test_the_delivery_worker_logs_in_the_configured_format(tmp_path: Path) -> None:
    # given `yunshegong worker` on a fresh embedded database, with JSON logs asked for
    log = tmp_path / "worker.log"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR")}
    env |= {"YUNSHEGONG_LOG_FORMAT": "json"}
    proc = start([*CHECKOUT, "worker", "--data-dir", str(tmp_path / "pgdata")], env, log)
    try:
        # when it has started (a readiness wait: initdb and migrations share the cores with other tests)
        deadline = time.monotonic() + 180
        while b"delivery worker started" not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"worker did not start:\n{log.read_text(errors='replace')[-4000:]}")
            time.sleep(0.2)
    finally:
        stop(proc, signal.SIGTERM, timeout=60)
    # then its lines are JSON objects, the start line among them
    lines = [line for line in log.read_bytes().splitlines() if line.strip()]
    started = [line for line in lines if b"delivery worker started" in line]
    entry = orjson.loads(started[0])
    assert entry["logger"] == "yunshegong"
    assert entry["message"].startswith("delivery worker started")
    assert all(line.startswith(b"{") for line in lines), lines
    # and the embedded PostgreSQL was stopped with it
    running = subprocess.run(["pgrep", "-f", f"postgres -D {tmp_path / 'pgdata'}"], capture_output=True, check=False)
    assert running.stdout == b""
