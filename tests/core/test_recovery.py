"""The embedded PostgreSQL dies under load (`kill -9` of the postmaster) and the service recovers by itself.

`yunshegong serve` runs as a subprocess on a data directory of its own with PostgreSQL's default
durability (fsync and synchronous_commit on; the suite's shared server turns them off, this one must not).
Writers sign in and create districts without pause; the postmaster is killed in the middle. While it is
down every write is refused with a typed answer (503, UNAVAILABLE); the service's supervisor starts
PostgreSQL again (crash recovery replays the WAL), the pool reconnects, writes succeed again without
restarting `serve`, and every write that was acknowledged is in the database afterwards.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

SCRIPT = shutil.which("yunshegong", path=str(Path(sys.executable).parent)) or "yunshegong"
ADMIN, PASSWORD = "root", "recovery admin pw 2026"
WRITERS = 4
CREATE = (
    "mutation($n: String!) { createDistrict(input: {name: $n, kind: DISTRICT}) "
    "{ district { id name } errors { code } } }"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"YUNSHEGONG_JOBS_INTERVAL": "0"}


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().splitlines()[0])


@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A migrated data directory with a platform administrator, served by `yunshegong serve`."""
    root = tmp_path_factory.mktemp("recovery")
    data_dir, log = (root / "pgdata").resolve(), root / "serve.log"
    created = subprocess.run(
        [SCRIPT, "createadmin", ADMIN, "--data-dir", str(data_dir)],
        env=_env() | {"YUNSHEGONG_ADMIN_PASSWORD": PASSWORD},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert created.returncode == 0, created.stderr
    port = _free_port()
    with log.open("wb") as out:
        # A file, not a pipe: nobody reads a pipe while the test runs, and a full one would block the server.
        proc = subprocess.Popen(
            [SCRIPT, "serve", "--data-dir", str(data_dir), "--port", str(port)],
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    svc = Service(proc=proc, port=port, data_dir=data_dir, log=log)
    try:
        deadline = time.monotonic() + 120
        while not _healthy(svc):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"serve did not become healthy:\n{svc.output()}")
            time.sleep(0.1)
        yield svc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def _healthy(svc: Service) -> bool:
    try:
        return httpx.get(f"{svc.url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


async def _durability(data_dir: Path) -> dict[str, str]:
    import asyncpg

    # The embedded server listens on a Unix socket in its data directory and trusts local connections.
    conn = await asyncpg.connect(user="postgres", database="postgres", host=str(data_dir))
    try:
        return {
            name: await conn.fetchval(f"SHOW {name}") for name in ("fsync", "synchronous_commit", "full_page_writes")
        }
    finally:
        await conn.close()


@dataclass
class Outcome:
    """What the writers saw."""

    acknowledged: list[str] = field(default_factory=list)
    refused: list[tuple[int, Any]] = field(default_factory=list)
    refused_at: list[float] = field(default_factory=list)
    acknowledged_at: list[float] = field(default_factory=list)


async def _write(client: httpx.AsyncClient, token: str, name: str, seen: Outcome) -> None:
    try:
        response = await client.post(
            "/graphql", json={"query": CREATE, "variables": {"n": name}}, headers={"Authorization": f"Bearer {token}"}
        )
    except httpx.HTTPError:
        return  # no answer at all: not acknowledged, and nothing to judge
    try:
        body = response.json()
    except ValueError:
        body = response.text
    payload = (body.get("data") or {}).get("createDistrict") if isinstance(body, dict) else None
    if response.status_code == 200 and payload and payload["district"] and not payload["errors"]:
        seen.acknowledged.append(name)
        seen.acknowledged_at.append(time.monotonic())
    else:
        seen.refused.append((response.status_code, body))
        seen.refused_at.append(time.monotonic())


async def test_the_service_recovers_from_a_killed_postgres_without_losing_an_acknowledged_write(
    service: Service,
) -> None:
    # given the service on PostgreSQL with its default durability, and a signed-in administrator
    assert await _durability(service.data_dir) == {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
    async with httpx.AsyncClient(base_url=service.url, timeout=15) as client:
        login = await client.post(
            "/graphql",
            json={
                "query": "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { token } }",
                "variables": {"u": ADMIN, "p": PASSWORD},
            },
        )
        token = login.json()["data"]["login"]["token"]
        seen = Outcome()
        stop = asyncio.Event()

        async def writer(number: int) -> None:
            count = 0
            while not stop.is_set():
                count += 1
                await _write(client, token, f"恢复区 {number}-{count}", seen)
                if seen.refused_at and seen.refused_at[-1] > time.monotonic() - 0.05:
                    await asyncio.sleep(0.05)  # no busy loop while the database is down

        writers = [asyncio.create_task(writer(n)) for n in range(WRITERS)]
        try:
            # when the postmaster is killed while writes are going on
            await _until(lambda: len(seen.acknowledged) >= 20, service, "writes before the kill")
            old_postmaster = _postmaster_pid(service.data_dir)
            os.kill(old_postmaster, signal.SIGKILL)
            killed_at = time.monotonic()
            # then writes are refused for a while, and then acknowledged again without restarting serve
            await _until(lambda: any(t > killed_at for t in seen.refused_at), service, "a refused write")
            await _until(
                lambda: sum(t > max(seen.refused_at) for t in seen.acknowledged_at) >= 20,
                service,
                "writes after recovery",
                seconds=120,
            )
        finally:
            stop.set()
            await asyncio.gather(*writers)
        recovered = time.monotonic() - killed_at
        assert service.proc.poll() is None
        assert _postmaster_pid(service.data_dir) != old_postmaster
        assert psutil.pid_exists(_postmaster_pid(service.data_dir))
        # and every refusal was typed: 503 with UNAVAILABLE, never a 200 with data nor a plain-text 500
        for status, body in seen.refused:
            assert status == 503, (status, body)
            assert isinstance(body, dict), body
            assert {e["extensions"]["code"] for e in body["errors"]} == {"UNAVAILABLE"}, body
            assert body.get("data") is None, body
        # and every acknowledged write is there
        listed = await client.post(
            "/graphql", json={"query": "{ districts { name } }"}, headers={"Authorization": f"Bearer {token}"}
        )
        present = {d["name"] for d in listed.json()["data"]["districts"]}
        lost = sorted(set(seen.acknowledged) - present)
        assert lost == [], f"{len(lost)} acknowledged writes lost"
        assert _healthy(service)
    print(  # noqa: T201  (the figures, with -s)
        f"acknowledged {len(seen.acknowledged)}, refused {len(seen.refused)}, recovered in {recovered:.1f} s"
    )


async def _until(condition: Any, svc: Service, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if svc.proc.poll() is not None:
            pytest.fail(f"serve exited waiting for {what}:\n{svc.output()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}:\n{svc.output()}")
        await asyncio.sleep(0.05)
