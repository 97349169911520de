"""The reference graphql-transport-ws client, npm `graphql-ws` under Node (tests/e2e/js/client.mjs), against the
service on a local port: it signs in through connectionParams, subscribes to helpRequestChanged and receives
help requests submitted over HTTP; a bad token makes it fail with 4403.

Needs `node` and `npm` (the versions are pinned by tests/e2e/js/package-lock.json, installed with `npm ci` on
first use). Without them the test is skipped -- except in CI (the CI environment variable set), where it
fails: .ci/run installs them.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncEngine

from core import live
from core.database import create_sessionmaker
from core.plugins import build_plugin_host
from core.services import auth
from core.settings import Settings
from schema import ids
from schema.context import AppState
from tests.live_support import WAIT, serve
from yunshegong.app import bearer_authenticator, create_app
from yunshegong.testing import Harness

JS = Path(__file__).resolve().parent / "js"
SUBMIT = """mutation($c: ID!, $t: String!) { submitHelpRequest(input: {communityId: $c, title: $t, category: OTHER,
  urgency: HIGH, requesterName: "测试", requesterPhone: "13900000000"}) { helpRequest { id } errors { code } } }"""
# Bounds a failure only: `npm ci` from the network, Node's start on a loaded machine.
NPM_TIMEOUT = 300
CLIENT_TIMEOUT = 60


def _tools() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        reason = "the graphql-ws client test needs node and npm on PATH (.ci/run installs Debian's nodejs and npm)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set, so this is a failure")
        pytest.skip(reason)
    return node, npm


@pytest.fixture(scope="module")
def node() -> str:
    """Node, with the pinned client packages installed (`npm ci`, once: the lock file makes it reproducible)."""
    node, npm = _tools()
    if not (JS / "node_modules" / "graphql-ws" / "package.json").exists():
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=JS,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, f"npm ci failed ({done.returncode}): {done.stderr[-2000:]}"
    return node


class Kit(Harness):
    url: str


@pytest.fixture
async def kit(engine: AsyncEngine, clock: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Kit]:
    """The service (built-in plugins, real sign-in) in this process on a free local port; HTTP goes to that
    port too (the client and the mutations reach the same server over the network)."""
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    host = build_plugin_host(entry_points=False)
    settings = Settings(login_max_failures=1000, jobs_interval=0, gc_tuning=False, delivery_in_serve=False)
    state = AppState(settings=settings, sessionmaker=create_sessionmaker(engine), clock=clock, host=host)
    state.authenticate = bearer_authenticator(state)
    app = create_app(settings, engine=engine, state=state)
    async with serve(app) as url:
        base = url.replace("ws://", "http://").removesuffix("/graphql")
        async with httpx.AsyncClient(base_url=base, timeout=WAIT) as http:
            made = Kit(host, engine, http)
            made.url = url
            try:
                yield made
            finally:
                await live.shutdown()


class NodeClient:
    """client.mjs as a subprocess: its stdout lines (JSON), its exit code and stderr."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, node: str, url: str, token: str, count: int) -> NodeClient:
        process = await asyncio.create_subprocess_exec(
            node,
            str(JS / "client.mjs"),
            url,
            token,
            str(count),
            cwd=JS,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "CLIENT_TIMEOUT_MS": str(CLIENT_TIMEOUT * 1000)},
        )
        return cls(process)

    async def line(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), CLIENT_TIMEOUT)
        assert raw, f"the client ended without output: {await self.finish()}"
        return _json_or_text(raw.decode())

    async def finish(self) -> tuple[int, list[dict[str, Any]]]:
        """The exit code and the JSON lines on stderr (killed if it does not end in time)."""
        try:
            await asyncio.wait_for(self.process.wait(), CLIENT_TIMEOUT)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        assert self.process.stderr is not None
        errors = [_json_or_text(line) for line in (await self.process.stderr.read()).decode().splitlines() if line]
        return int(self.process.returncode or 0), errors

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


async def test_the_graphql_ws_client_receives_requests_submitted_over_http(node: str, kit: Kit) -> None:
    # given an organisation administrator subscribed with graphql-ws (the token in connectionParams)
    org = await kit.organization()
    community = ids.encode("Community", await kit.community(org))
    admin = await kit.sign_in("organization_admin", org)
    client = await NodeClient.start(node, kit.url, admin.token or "", 3)
    try:
        assert await client.line() == {"ready": True}  # connection_ack received
        # every subscription begins with RESYNC once the service listens: load now, changes follow
        first = await client.line()
        assert first["data"]["helpRequestChanged"]["change"] == "RESYNC", first
        # when two help requests are submitted over HTTP
        for title in ("节点一", "节点二"):
            body = await admin.raw(SUBMIT, {"c": community, "t": title})
            assert body["data"]["submitHelpRequest"]["errors"] == [], body
        # then the client printed both, in order, as `next` payloads, and exited cleanly after the second
        got = [await client.line(), await client.line()]
        assert [p["data"]["helpRequestChanged"]["change"] for p in got] == ["CREATED", "CREATED"]
        assert [p["data"]["helpRequestChanged"]["request"]["title"] for p in got] == ["节点一", "节点二"]
        assert all("errors" not in p for p in got)
        assert await client.finish() == (0, [])
    finally:
        client.kill()


async def test_the_graphql_ws_client_is_refused_with_4403_for_a_bad_token(node: str, kit: Kit) -> None:
    # given a token the service never issued
    client = await NodeClient.start(node, kit.url, "not-a-token", 1)
    try:
        # when the client connects, then the server closes the connection with 4403 before any payload
        code, errors = await client.finish()
        assert code == 4, errors
        assert [e.get("closed") for e in errors if "closed" in e] == [4403]
        assert client.process.stdout is not None
        assert await client.process.stdout.read() == b""
    finally:
        client.kill()


def _json_or_text(line: str) -> dict[str, Any]:
    try:
        return json.loads(line)  # type: ignore[no-any-return]
    except json.JSONDecodeError:
        return {"text": line}
