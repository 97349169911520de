"""The GraphQL-over-HTTP conformance audit (npm `graphql-http`'s auditServer) against the real service.

The service runs under uvicorn on a free loopback port (in a thread, with its own event loop and engine);
a small node script runs every audit against it. graphql-http is installed once per version into the
pytest cache (or a temporary folder), so later runs cost a second, not an npm install.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from core.plugins import build_plugin_host
from core.settings import Settings
from yunshegong.app import create_app

GRAPHQL_HTTP = "1.23.1"
GRAPHQL_JS = "16.11.0"

AUDIT_SCRIPT = """
const { auditServer } = require('graphql-http');
auditServer({ url: process.argv[2] }).then((results) => {
  process.stdout.write(JSON.stringify(results.map((r) => ({ id: r.id, name: r.name, status: r.status,
    reason: r.reason }))));
}, (error) => { console.error(error); process.exit(1); });
"""


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"`{name}` is not on PATH: the GraphQL-over-HTTP audit needs node and npm (apt-get install nodejs npm)"
        )
    return found


@pytest.fixture(scope="session")
def graphql_http(request: pytest.FixtureRequest) -> Path:
    """A folder holding node_modules/graphql-http at the pinned version and the audit script."""
    node, npm = _tool("node"), _tool("npm")
    cache = getattr(request.config, "cache", None)
    name = f"graphql-http-{GRAPHQL_HTTP}"
    folder = cache.mkdir(name) if cache is not None else Path(tempfile.gettempdir()) / f"ysg-{name}"
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "node_modules" / "graphql-http" / "package.json").exists():
        (folder / "package.json").write_text('{"name": "ysg-audit", "private": true}')
        subprocess.run(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                "--silent",
                f"graphql-http@{GRAPHQL_HTTP}",
                f"graphql@{GRAPHQL_JS}",
            ],
            cwd=folder,
            check=True,
            timeout=300,
        )
    (folder / "audit.js").write_text(AUDIT_SCRIPT)
    assert node
    return folder


@pytest.fixture
def served(test_db: Any) -> Iterator[str]:
    """The service on a free loopback port, its own engine and plugin host (as `serve` builds them)."""
    settings = Settings(database_url=test_db.render_as_string(hide_password=False), jobs_interval=0)
    app = create_app(settings, host=build_plugin_host(entry_points=False))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the service did not start under uvicorn")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/graphql"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def _run_audit(folder: Path, url: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [_tool("node"), str(folder / "audit.js"), url],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_service_passes_every_graphql_over_http_audit(graphql_http: Path, served: str) -> None:
    # given the service, as it runs in production
    # when graphql-http audits it
    results = _run_audit(graphql_http, served)
    # then every audit passes. graphql-http reports a failed MUST as an error and a failed SHOULD or MAY as a
    # warning; its "SHOULD" count (48) is those warning-level audits, SHOULD and MAY together.
    must = [r for r in results if r["name"].startswith("MUST")]
    should = [r for r in results if not r["name"].startswith("MUST")]
    failed = [f"{r['id']} {r['name']}: {r['reason']}" for r in results if r["status"] != "ok"]
    summary = {"MUST": (sum(r["status"] == "ok" for r in must), len(must))}
    summary["SHOULD"] = (sum(r["status"] == "ok" for r in should), len(should))
    print("graphql-http audit:", summary)  # noqa: T201
    assert summary == {"MUST": (13, 13), "SHOULD": (48, 48)}, failed
