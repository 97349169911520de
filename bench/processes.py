"""Servers the benchmarks run in subprocesses: started with the settings of a measurement, waited for until
they answer, stopped on the way out; `yunshegong serve` itself, signed in as the demo's organisation
administrator."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import free_port

ROOT = Path(__file__).resolve().parent.parent
# The demo's organisation administrator (core.demo), whom the benchmarks measure as: an organisation member,
# not a platform administrator, so row-level security is in the figures.
LOGIN = 'mutation { login(input: {username: "orgadmin", password: "demo-orgadmin-2021"}) { token } }'
Probe = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


def service_env(**settings: str) -> dict[str, str]:
    """The environment of a service under measurement: quiet logs and no background jobs (they would change
    rows and take CPU in the middle of a measurement), then `settings`."""
    return {**os.environ, "YUNSHEGONG_LOG_LEVEL": "warning", "YUNSHEGONG_JOBS_INTERVAL": "0", **settings}


@asynccontextmanager
async def running(process: asyncio.subprocess.Process, grace: float = 10) -> AsyncIterator[asyncio.subprocess.Process]:
    """`process`, terminated on the way out (killed if it has not exited `grace` seconds later)."""
    try:
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), grace)
            except TimeoutError:
                process.kill()
                await process.wait()


def healthz(port: int) -> Probe:
    return lambda http: http.get(f"http://127.0.0.1:{port}/healthz")


async def wait_ready(
    process: asyncio.subprocess.Process, probe: Probe, what: str, seconds: float = 60, log: Path | None = None
) -> None:
    """Returns once `probe` answers 200; raises if `process` exits first or `seconds` pass."""
    see = f" (see {log})" if log else ""
    async with httpx.AsyncClient(timeout=30) as http:
        for _ in range(round(seconds * 10)):
            if process.returncode is not None:
                raise RuntimeError(f"{what} exited with {process.returncode} before it was ready{see}")
            try:
                if (await probe(http)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{what} was not ready after {seconds:g} s{see}")


async def sign_in(port: int) -> str:
    """A token of the demo's organisation administrator."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        login = (await http.post("/graphql", json={"query": LOGIN})).json()
    return str(login["data"]["login"]["token"])


@dataclass
class Served:
    process: asyncio.subprocess.Process
    port: int
    token: str  # the demo's organisation administrator's
    log: Path

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"


@asynccontextmanager
async def serve(url: str, name: str, *options: str, **settings: str) -> AsyncIterator[Served]:
    """`yunshegong serve *options` (the CLI of this checkout) on the database `url` with `settings` over
    `service_env`'s, its output in a temporary file named after `name`; once it answers and is signed in."""
    port = free_port()
    env = service_env(DATABASE_URL=url, **settings)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = Path(tempfile.gettempdir()) / f"ysg-bench-{name}-{os.getpid()}-{port}.log"
    command = [sys.executable, "-m", "yunshegong.cli", "serve", *options, "--port", str(port)]
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(*command, env=env, cwd=ROOT, stdout=out, stderr=out)
    async with running(process, grace=30):
        await wait_ready(process, healthz(port), " ".join(["serve", *options]), seconds=120, log=log)
        yield Served(process, port, await sign_in(port), log)
