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
    # The login the service uses (row-level security applies to it); None: DATABASE_URL's server and
    # database as the role `yunshegong_app`, without a password (core.database.app_url).
    app_database_url: str | None = None
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
    # Signs bearer tokens. None: generated once and kept in the database (fine for one deployment;
    # set it explicitly when several processes or databases must accept each other's tokens).
    secret_key: str | None = None
    token_ttl_minutes: int = 12 * 60
    # Hardening. Introspection off also turns field suggestions off.
    introspection: bool = True
    max_query_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 4000
    max_batch: int = 10
    cors_origins: tuple[str, ...] = ()
    # Failed sign-ins per username (and per client address) within the window before sign-in pauses.
    login_max_failures: int = 5
    login_window_minutes: int = 15
    # Longest pause a sign-in is made to wait after repeated failures (the delay doubles per failure).
    login_max_delay_seconds: float = 30.0
    # Password hashes computed at once (each is ~0.3 s of CPU off the event loop); more callers wait, then BUSY.
    password_hash_concurrency: int = 2
    # Addresses of reverse proxies whose X-Forwarded-For is believed; empty: the peer address is the client.
    trusted_proxies: tuple[str, ...] = ()
    # Largest request body accepted on /graphql.
    max_body_bytes: int = 1_000_000
    # Budget of objects a query may produce (`first:` multiplied through nested lists); the cost is in the error.
    max_query_cost: int = 50_000
    # Widest date range any search or free-slot query may span.
    max_range_days: int = 366
    # Seconds between rounds of offer expiry and escalation in `serve`; 0 turns them off.
    jobs_interval: float = 30.0

    @classmethod
    def from_env(cls) -> Settings:
        defaults = cls()
        data_dir = os.environ.get("YUNSHEGONG_DATA_DIR")
        return cls(
            database_url=os.environ.get("DATABASE_URL") or None,
            app_database_url=os.environ.get("YUNSHEGONG_APP_DATABASE_URL") or None,
            data_dir=Path(data_dir).expanduser() if data_dir else defaults.data_dir,
            host=os.environ.get("YUNSHEGONG_HOST", defaults.host),
            port=int(os.environ.get("YUNSHEGONG_PORT", defaults.port)),
            timezone=os.environ.get("YUNSHEGONG_TIMEZONE", defaults.timezone),
            graphiql=_env_bool("YUNSHEGONG_GRAPHIQL", defaults.graphiql),
            max_page_size=int(os.environ.get("YUNSHEGONG_MAX_PAGE_SIZE", defaults.max_page_size)),
            db_pool_size=int(os.environ.get("YUNSHEGONG_DB_POOL_SIZE", defaults.db_pool_size)),
            plugins=_env_list("YUNSHEGONG_PLUGINS"),
            log_level=os.environ.get("YUNSHEGONG_LOG_LEVEL", defaults.log_level),
            secret_key=os.environ.get("YUNSHEGONG_SECRET_KEY") or None,
            token_ttl_minutes=int(os.environ.get("YUNSHEGONG_TOKEN_TTL_MINUTES", defaults.token_ttl_minutes)),
            introspection=_env_bool("YUNSHEGONG_INTROSPECTION", defaults.introspection),
            max_query_depth=int(os.environ.get("YUNSHEGONG_MAX_QUERY_DEPTH", defaults.max_query_depth)),
            max_aliases=int(os.environ.get("YUNSHEGONG_MAX_ALIASES", defaults.max_aliases)),
            max_tokens=int(os.environ.get("YUNSHEGONG_MAX_TOKENS", defaults.max_tokens)),
            max_batch=int(os.environ.get("YUNSHEGONG_MAX_BATCH", defaults.max_batch)),
            cors_origins=_env_list("YUNSHEGONG_CORS_ORIGINS") or (),
            login_max_failures=int(os.environ.get("YUNSHEGONG_LOGIN_MAX_FAILURES", defaults.login_max_failures)),
            login_window_minutes=int(os.environ.get("YUNSHEGONG_LOGIN_WINDOW_MINUTES", defaults.login_window_minutes)),
            login_max_delay_seconds=float(
                os.environ.get("YUNSHEGONG_LOGIN_MAX_DELAY_SECONDS", defaults.login_max_delay_seconds)
            ),
            password_hash_concurrency=int(
                os.environ.get("YUNSHEGONG_PASSWORD_HASH_CONCURRENCY", defaults.password_hash_concurrency)
            ),
            trusted_proxies=_env_list("YUNSHEGONG_TRUSTED_PROXIES") or (),
            max_body_bytes=int(os.environ.get("YUNSHEGONG_MAX_BODY_BYTES", defaults.max_body_bytes)),
            max_query_cost=int(os.environ.get("YUNSHEGONG_MAX_QUERY_COST", defaults.max_query_cost)),
            max_range_days=int(os.environ.get("YUNSHEGONG_MAX_RANGE_DAYS", defaults.max_range_days)),
            jobs_interval=float(os.environ.get("YUNSHEGONG_JOBS_INTERVAL", defaults.jobs_interval)),
        )

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with the given fields replaced; `None` values mean "keep"."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]
