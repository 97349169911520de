"""`yunshegong serve` in a subprocess, for the tests that run the service as an operator does: a free port, the
start, a wait until it answers /healthz, the stop."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
# The installed console script, as a user runs it.
SCRIPT = shutil.which("yunshegong", path=str(Path(sys.executable).parent)) or "yunshegong"
# The CLI of this checkout (`python -m` from the repository), as the console script would run it.
CHECKOUT = [sys.executable, "-m", "yunshegong.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(command: Sequence[str], env: Mapping[str, str], log: Path | None = None) -> subprocess.Popen[bytes]:
    """`command` run from the repository, its output (stdout and stderr) appended to `log`, or without one to a
    pipe that `stop` reads. A file for a process whose output nobody reads while it runs: a full pipe would
    block it."""
    if log is None:
        return subprocess.Popen(
            list(command), env=dict(env), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
    with log.open("ab") as out:
        return subprocess.Popen(list(command), env=dict(env), cwd=REPO, stdout=out, stderr=subprocess.STDOUT)


def wait_healthy(proc: subprocess.Popen[bytes], port: int, log: Path | None = None, *, timeout: float = 180) -> None:
    """Returns once the service on `port` answers /healthz; fails with its output if it exits first. A readiness
    wait, not a speed check: initdb, migrations and plugin loading share the cores with the other test
    processes, so the bound is generous."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"serve exited early ({proc.returncode}):\n{_output(proc, log)}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"serve did not become healthy within {timeout:g} s:\n{_output(proc, log)}")


def stop(proc: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGINT, timeout: float = 30) -> str:
    """Stops `proc` with `sig` unless it has exited (killed if it has not within `timeout` s); returns its piped
    output ("" when it wrote to a log)."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return (out or b"").decode(errors="replace")


def _output(proc: subprocess.Popen[bytes], log: Path | None) -> str:
    """The end of what the service wrote: its log, or its pipe once it has exited (reading a live one blocks)."""
    if log is not None:
        return log.read_text(errors="replace")[-4000:]
    return stop(proc)[-4000:] if proc.poll() is not None else "(its output is in a pipe)"
