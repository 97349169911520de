"""The README's run command, end to end: `yunshegong serve --demo` on the embedded database.

Runs the real console script in a subprocess (as a user would), queries it over HTTP, restarts it and
checks the data survived, then checks `yunshegong schema` prints the committed SDL.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = shutil.which("yunshegong", path=str(Path(sys.executable).parent)) or "yunshegong"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.Popen(
        [SCRIPT, "serve", "--demo", "--data-dir", str(data_dir), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _wait_healthy(proc: subprocess.Popen[bytes], port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            pytest.fail(f"server exited early:\n{out}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail("server did not become healthy in time")


def _stop(proc: subprocess.Popen[bytes]) -> str:
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out.decode(errors="replace")


QUERY = '{ helpRequests(filter: {search: "结核病"}) { totalCount nodes { beneficiaries } } stats { volunteersTotal } }'
LOGIN = 'mutation { login(input: {username: "admin", password: "demo-admin-2021"}) { token errors { code } } }'


def _post(port: int, query: str, variables: dict | None = None, token: str | None = None) -> dict:  # type: ignore[type-arg]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(
        f"http://127.0.0.1:{port}/graphql",
        json={"query": query, "variables": variables or {}},
        headers=headers,
        timeout=10,
    ).json()


def test_serve_with_demo_data_survives_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "pgdata"
    port = _free_port()
    # given the service started as the README says
    proc = _serve(data_dir, port)
    try:
        _wait_healthy(proc, port)
        # when a front end signs in with the documented demo account and queries it
        anonymous = _post(port, QUERY)
        token = _post(port, LOGIN)["data"]["login"]["token"]
        body = _post(port, QUERY, token=token)
        # then the demo data set answers (and anonymous callers get nothing but the stats)
        assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert body["data"]["helpRequests"]["nodes"] == [{"beneficiaries": 30}]
        volunteers = body["data"]["stats"]["volunteersTotal"]
        assert volunteers == 300
        # and a new request survives a restart
        add = _post(port, "{ communities(first: 1) { nodes { id } } }", token=token)
        community_id = add["data"]["communities"]["nodes"][0]["id"]
        created = _post(
            port,
            'mutation($c: ID!) { submitHelpRequest(input: {communityId: $c, title: "重启测试", '
            'category: OTHER, urgency: LOW, requesterName: "测试", requesterPhone: "13900000000"}) '
            "{ errors { code } } }",
            {"c": community_id},
            token=token,
        )
        assert created["data"]["submitHelpRequest"]["errors"] == []
    finally:
        _stop(proc)
    restarted = _serve(data_dir, port)
    try:
        _wait_healthy(restarted, port)
        token = _post(port, LOGIN)["data"]["login"]["token"]
        body = _post(
            port, '{ helpRequests(filter: {search: "重启测试"}) { totalCount } stats { volunteersTotal } }', token=token
        )
        # then the data is still there, and the demo was not loaded twice
        assert body["data"]["helpRequests"]["totalCount"] == 1
        assert body["data"]["stats"]["volunteersTotal"] == 300
    finally:
        _stop(restarted)


def test_schema_command_prints_the_committed_sdl() -> None:
    out = subprocess.run([SCRIPT, "schema", "--builtin-only"], capture_output=True, check=True, text=True).stdout
    assert out == (REPO / "schema" / "schema.graphql").read_text(encoding="utf-8")


def test_createadmin_creates_a_platform_administrator(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {
        "YUNSHEGONG_ADMIN_PASSWORD": "first admin pw 2026"
    }
    data_dir = str(tmp_path / "pgdata")
    created = subprocess.run(
        [SCRIPT, "createadmin", "root", "--data-dir", data_dir], env=env, capture_output=True, text=True, timeout=120
    )
    assert created.returncode == 0, created.stderr
    assert "platform administrator 'root' created" in created.stdout
    again = subprocess.run(
        [SCRIPT, "createadmin", "root", "--data-dir", data_dir], env=env, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 2
    assert "ALREADY_EXISTS" in again.stderr
