"""Bringing the database up for a command: embedded or external, created and migrated."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.engine import URL

from core.database import APP_DATABASE, EmbeddedPostgres, database_url_for, ensure_database
from core.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Database:
    url: str | URL
    embedded: EmbeddedPostgres | None

    def stop(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()


async def open_database(settings: Settings) -> Database:
    """DATABASE_URL if set; otherwise the embedded server in settings.data_dir (started, and the
    application database created, on first use)."""
    if settings.database_url:
        return Database(url=settings.database_url, embedded=None)
    embedded = EmbeddedPostgres.start(settings.data_dir)
    await ensure_database(embedded.url(), APP_DATABASE)
    return Database(url=database_url_for(embedded.url(), APP_DATABASE), embedded=embedded)
