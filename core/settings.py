"""Configuration: environment variables, overridable by command-line flags.

Every setting has one environment variable; the README's configuration table lists them all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import platformdirs


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("yunshegong")) / "pgdata"


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str) -> tuple[str, ...] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    # None means: start the embedded PostgreSQL in data_dir.
    database_url: str | None = None
    data_dir: Path = field(default_factory=_default_data_dir)
    host: str = "127.0.0.1"
    port: int = 8000
    # Zone used to present timestamps; the database always stores UTC.
    timezone: str = "Asia/Shanghai"
    graphiql: bool = True
    # Largest `first:` a connection accepts; asking for more is an error, not a silent cut.
    max_page_size: int = 200
    db_pool_size: int = 10
    # None: every installed plugin loads; otherwise only these names.
    plugins: tuple[str, ...] | None = None
    log_level: str = "info"

    @classmethod
    def from_env(cls) -> Settings:
        defaults = cls()
        data_dir = os.environ.get("YUNSHEGONG_DATA_DIR")
        return cls(
            database_url=os.environ.get("DATABASE_URL") or None,
            data_dir=Path(data_dir).expanduser() if data_dir else defaults.data_dir,
            host=os.environ.get("YUNSHEGONG_HOST", defaults.host),
            port=int(os.environ.get("YUNSHEGONG_PORT", defaults.port)),
            timezone=os.environ.get("YUNSHEGONG_TIMEZONE", defaults.timezone),
            graphiql=_env_bool("YUNSHEGONG_GRAPHIQL", defaults.graphiql),
            max_page_size=int(os.environ.get("YUNSHEGONG_MAX_PAGE_SIZE", defaults.max_page_size)),
            db_pool_size=int(os.environ.get("YUNSHEGONG_DB_POOL_SIZE", defaults.db_pool_size)),
            plugins=_env_list("YUNSHEGONG_PLUGINS"),
            log_level=os.environ.get("YUNSHEGONG_LOG_LEVEL", defaults.log_level),
        )

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with the given fields replaced; `None` values mean "keep"."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]
