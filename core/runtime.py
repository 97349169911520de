"""Bringing the database up for a command: embedded or external, checked, created and migrated."""

from __future__ import annotations

import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL

from core.database import APP_DATABASE, EmbeddedPostgres, database_url_for, ensure_database, unreachable
from core.settings import Settings, SettingsError

log = logging.getLogger(__name__)


@dataclass
class Database:
    url: str | URL
    embedded: EmbeddedPostgres | None

    def supervise(self) -> None:
        """Restart the embedded server whenever it dies (nothing to do for an external one)."""
        if self.embedded is not None:
            self.embedded.supervise()

    def stop(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()


def check_data_dir(data_dir: Path) -> None:
    """The embedded server's data directory can be used: a directory (or creatable as one) that is either
    a PostgreSQL data directory or empty. Raises SettingsError (one line) otherwise."""
    path = data_dir.expanduser()
    if path.exists() and not path.is_dir():
        raise SettingsError("data_dir", f"{path} is a file, not a directory")
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise SettingsError("data_dir", f"{ancestor} is a file, not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise SettingsError("data_dir", f"{ancestor} is not writable")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError("data_dir", f"cannot create {path}: {exc.strerror or exc}") from None
    if not (path / "PG_VERSION").exists() and any(path.iterdir()):
        raise SettingsError("data_dir", f"{path} is neither empty nor a PostgreSQL data directory")


async def check_database(settings: Settings) -> None:
    """What the command will need is there: an external server that answers, or a usable data directory.
    Raises SettingsError (one line) otherwise."""
    if settings.database_url:
        reason = await unreachable(settings.database_url)
        if reason is not None:
            raise SettingsError("database_url", f"cannot connect: {reason}")
    else:
        check_data_dir(settings.data_dir)


async def open_database(settings: Settings) -> Database:
    """DATABASE_URL if set; otherwise the embedded server in settings.data_dir (started, and the
    application database created, on first use)."""
    if settings.database_url:
        return Database(url=settings.database_url, embedded=None)
    check_data_dir(settings.data_dir)
    try:
        embedded = EmbeddedPostgres.start(settings.data_dir)
    except (subprocess.SubprocessError, OSError) as exc:
        # initdb or pg_ctl failed (another PostgreSQL version's data, a full disk, ...): its log says why.
        log_file = settings.data_dir / "log"
        raise SettingsError(
            "data_dir", f"PostgreSQL did not start in {settings.data_dir} ({type(exc).__name__}): see {log_file}"
        ) from None
    try:
        await ensure_database(embedded.url(), APP_DATABASE)
    except BaseException:
        embedded.stop()
        raise
    return Database(url=database_url_for(embedded.url(), APP_DATABASE), embedded=embedded)
