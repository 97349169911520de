"""Configuration: environment variables, overridable by command-line flags, validated when read.

Every setting has one environment variable, `YUNSHEGONG_<NAME>` (and `DATABASE_URL`); the README's
configuration table lists them all. `Settings(...)` holds exactly what the code gives it (tests build it
that way); `Settings.from_env()` reads the environment. A value that cannot work raises `SettingsError`,
one line naming the variable and the reason, so that a typo stops startup instead of a request later.
"""

from __future__ import annotations

import contextvars
import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import platformdirs
from pydantic import Field, ValidationError, field_validator
from pydantic_core import PydanticUseDefault
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "YUNSHEGONG_"
# Never echoed in an error: they may hold passwords.
SECRET_FIELDS = frozenset(
    {"database_url", "app_database_url", "secret_key", "sealing_keys", "metrics_token", "listen_database_url"}
)
MIN_SECRET_KEY_LENGTH = 32

# Set while from_env() builds its instance: only then is the environment a source.
_READ_ENV: contextvars.ContextVar[bool] = contextvars.ContextVar("yunshegong_read_env", default=False)


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("yunshegong")) / "pgdata"


def env_name(field: str) -> str:
    """The environment variable of a setting."""
    return "DATABASE_URL" if field == "database_url" else ENV_PREFIX + field.upper()


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def trusted_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """settings.trusted_proxies as networks (an address is a network of one). ValueError names a bad entry."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"trusted proxy {entry!r} is not an IP address or network (CIDR)") from None
    return tuple(networks)


class SettingsError(ValueError):
    """A setting that cannot work; str() is one line: `<VARIABLE>: <reason>` (or the command-line flag the
    value came from, as `label`)."""

    def __init__(self, field: str, reason: str, *, label: str | None = None) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{label or env_name(field)}: {reason}")

    @classmethod
    def from_validation(cls, exc: ValidationError) -> SettingsError:
        error = exc.errors(include_url=False)[0]
        field = str(error["loc"][0]) if error["loc"] else "settings"
        if field == "DATABASE_URL":
            field = "database_url"
        reason = str(error["msg"]).removeprefix("Value error, ")
        if field not in SECRET_FIELDS and error.get("input") is not None and error["type"] != "missing":
            reason = f"{reason} (got {error['input']!r})"
        return cls(field, reason)


def _comma_list(value: Any) -> Any:
    # Comma-separated in the environment (not JSON, as pydantic-settings would assume for a tuple).
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _postgres_url(value: str | None) -> str | None:
    if value is None:
        return None
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(value)
    except (ArgumentError, ValueError):
        parsed = None
    if parsed is None or parsed.get_backend_name() != "postgresql":
        raise ValueError("not a PostgreSQL URL (postgresql://user:password@host:5432/database)")
    return value


PositiveInt = Annotated[int, Field(ge=1)]
CommaList = Annotated[tuple[str, ...], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        frozen=True,
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
    )

    # None means: start the embedded PostgreSQL in data_dir.
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    # The login the service uses (row-level security applies to it); None: DATABASE_URL's server and
    # database as the role `yunshegong_app`, without a password (core.database.app_url).
    app_database_url: str | None = None
    data_dir: Path = Field(default_factory=_default_data_dir)
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8000, ge=1, le=65535)
    # Zone used to present timestamps; the database always stores UTC.
    timezone: str = "Asia/Shanghai"
    graphiql: bool = True
    # Largest `first:` a connection accepts; asking for more is an error, not a silent cut.
    max_page_size: PositiveInt = 200
    db_pool_size: PositiveInt = 10
    # Connections opened beyond the pool under a burst (closed when returned); None: as many as the pool.
    db_max_overflow: int | None = Field(default=None, ge=0)
    # Longest any one statement of the service may run (lock waits included) before PostgreSQL cancels it;
    # 0: no limit. It bounds what the query-cost budget cannot (a slow plan, a read shielded from the
    # client's disconnect so it may finish cleanly) and frees the pooled connection it held.
    db_statement_timeout_ms: int = Field(default=30_000, ge=0)
    # None: every installed plugin loads; otherwise only these names (an empty value: none).
    plugins: Annotated[tuple[str, ...] | None, NoDecode] = None
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = "info"
    # Signs bearer tokens. None: generated once and kept in the database (fine for one deployment;
    # set it explicitly when several processes or databases must accept each other's tokens).
    secret_key: str | None = None
    token_ttl_minutes: PositiveInt = 12 * 60
    # Encrypt sealed text columns at rest (core.services.sealing): "id:base64key,id2:base64key", 32-byte
    # AES-256 keys, the first seals and all open (rotation). None: one key generated once and kept in the
    # database -- then a database dump holds the key too, so production sets this.
    sealing_keys: str | None = None
    # Hardening. Introspection off also turns field suggestions off.
    introspection: bool = True
    max_query_depth: PositiveInt = 12
    max_aliases: int = Field(default=30, ge=0)
    max_tokens: PositiveInt = 4000
    max_batch: PositiveInt = 10
    cors_origins: CommaList = ()
    # Failed sign-ins per username (and per client address) within the window before sign-in pauses.
    login_max_failures: PositiveInt = 5
    login_window_minutes: PositiveInt = 15
    # Longest pause a sign-in is made to wait after repeated failures (the delay doubles per failure).
    login_max_delay_seconds: float = Field(default=30.0, ge=0, allow_inf_nan=False)
    # Password hashes computed at once (each is ~0.3 s of CPU off the event loop); more callers wait, then BUSY.
    password_hash_concurrency: PositiveInt = 2
    # Addresses (or networks) of reverse proxies whose X-Forwarded-For is believed; empty: the peer address
    # is the client.
    trusted_proxies: CommaList = ()
    # Largest request body accepted on /graphql.
    max_body_bytes: PositiveInt = 1_000_000
    # Budget of objects a query may produce (`first:` multiplied through nested lists); the cost is in the error.
    max_query_cost: PositiveInt = 50_000
    # Widest date range any search or free-slot query may span.
    max_range_days: PositiveInt = 366
    # Seconds between rounds of offer expiry and escalation in `serve`; 0 turns them off.
    jobs_interval: float = Field(default=30.0, ge=0, allow_inf_nan=False)
    # Freeze the heap built at startup out of the garbage collector's sight and collect the young generation
    # less often (a request makes tens of thousands of short-lived objects; see yunshegong.app).
    gc_tuning: bool = True
    # Run queries through the compiled executor (schema.execution): each operation compiled once into code
    # specialised to its selection set; off runs graphql-core's general executor (same answers, slower).
    compiled_execution: bool = True
    # -- live updates (subscriptions over graphql-transport-ws: docs/realtime.md) --
    # The connection each process LISTENs on (one per process, not from the pool). None: the service's own
    # URL. Set it to the PostgreSQL server itself when the pool goes through PgBouncer in transaction mode
    # (LISTEN needs a session of its own).
    listen_database_url: str | None = None
    # Operations running at once on one websocket connection, and websocket connections one account (or API
    # token) may hold in one process; more are refused (limit reached / close 4429).
    live_max_subscriptions_per_connection: PositiveInt = 20
    live_max_connections_per_account: PositiveInt = 10
    # Events a subscription may fall behind by before it is told to resync instead (bounded memory).
    live_queue_size: PositiveInt = 100
    # Seconds between the server's pings on an idle websocket (graphql-transport-ws ping/pong); 0: none.
    live_keepalive_seconds: float = Field(default=15.0, ge=0, allow_inf_nan=False)
    # -- imports (core.imports: CSV/XLSX from the CLI and the upload mutation) --
    # Largest file accepted (bytes; for an XLSX also the sum of its uncompressed parts), and most data rows.
    import_max_bytes: PositiveInt = 20 * 1024 * 1024
    import_max_rows: PositiveInt = 50_000
    # Imports run at once by one process through the GraphQL upload (parsing and validating a file is CPU
    # work): one more waits up to 10 s (at most 8 waiting), then UNAVAILABLE (schema/mutations/imports.py).
    import_concurrency: PositiveInt = 1
    # Multipart (upload) requests one process handles at once, from reading the body to the answer (each
    # holds its file in memory: up to import_max_bytes); one more is answered 429 with Retry-After, unread.
    import_upload_concurrency: PositiveInt = 4
    # Seconds a multipart (upload) body may take to arrive whole; a slower one is answered 408 and its slot
    # freed (a client trickling bytes would otherwise hold one as long as it likes). 20 MB in 5 min: ~70 kB/s.
    import_upload_seconds: float = Field(default=300.0, gt=0, le=3600, allow_inf_nan=False)
    # -- exports (yunshegong/exports.py: GET /export/{name}.csv|.xlsx) --
    # Downloads streamed at once by one process; one more is answered 429 with Retry-After, not queued.
    export_concurrency: PositiveInt = 4
    # Rows asked per page (each page is one GraphQL operation in its own short transaction); never more than
    # max_page_size.
    export_page_size: PositiveInt = 200

    @field_validator("listen_database_url")
    @classmethod
    def _listen_url(cls, value: str | None) -> str | None:
        return _postgres_url(value)

    # -- operations (several processes, metrics, logs: docs/deployment.md) --
    # Worker processes of `yunshegong serve` sharing its port (each with its own pool of db_pool_size).
    workers: int = Field(default=1, ge=1, le=64)
    # `text` for a terminal; `json` (one object per line, with the request id) for production log shippers.
    log_format: Literal["text", "json"] = "text"
    # When set, GET /metrics requires `Authorization: Bearer <this>`. Unset, /metrics answers only where
    # nobody else can reach it (the service listens on a loopback address and no trusted proxy forwards to it)
    # or when metrics_public says so; otherwise it refuses (403).
    metrics_token: str | None = None
    # Serve /metrics without a token on any address (a private network the scraper alone reaches).
    metrics_public: bool = False
    # -- notification delivery (the outbox worker: docs/notifications.md) --
    # Run the delivery worker inside `serve` (every process of it); off: run `yunshegong worker` instead.
    delivery_in_serve: bool = True
    # Seconds between rounds when there is nothing to do (a NOTIFY wake-up will make it prompt sooner).
    delivery_poll_interval: float = Field(default=2.0, gt=0, allow_inf_nan=False)
    # Messages routed and deliveries claimed per organisation and round; sends in flight at once.
    delivery_batch_size: int = Field(default=20, ge=1, le=1000)
    delivery_concurrency: int = Field(default=4, ge=1, le=100)
    # Attempts before a failing delivery is parked; the first retry waits about base delay seconds,
    # doubling each time (with jitter) up to max delay.
    delivery_max_attempts: int = Field(default=8, ge=1, le=100)
    delivery_base_delay: float = Field(default=5.0, gt=0, allow_inf_nan=False)
    delivery_max_delay: float = Field(default=3600.0, gt=0, allow_inf_nan=False)
    # Longest one send may take before it counts as a temporary failure (a claim's lease is twice this + 30 s).
    delivery_send_timeout: float = Field(default=30.0, gt=0, le=3600, allow_inf_nan=False)
    # The webhook channel's HTTP timeout; and whether endpoints may be private addresses (tests, closed
    # networks) -- off, an endpoint resolving to a loopback, private or link-local address is refused.
    delivery_webhook_timeout: float = Field(default=10.0, gt=0, le=3600, allow_inf_nan=False)
    delivery_webhook_allow_private: bool = False
    # Ports a webhook endpoint may use (comma-separated). Other ports are refused when the
    # endpoint is configured and when it is posted to: the service is no port scanner for administrators.
    delivery_webhook_ports: Annotated[tuple[int, ...], NoDecode] = (443, 80)

    @field_validator("delivery_webhook_ports", mode="before")
    @classmethod
    def _ports(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("delivery_webhook_ports")
    @classmethod
    def _ports_valid(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 0 < port < 65536 for port in value):
            raise ValueError("ports are 1-65535")
        return value

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            # One line naming the variable, never pydantic's multi-line report.
            raise SettingsError.from_validation(exc) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Settings(...) in code and tests means exactly what it says; only from_env() reads the environment.
        return (init_settings, env_settings) if _READ_ENV.get() else (init_settings,)

    # -- validation -----------------------------------------------------------------------------------------

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any, info: Any) -> Any:
        # `YUNSHEGONG_X=` (as compose files write it) means "not set", except for the plugin list, where
        # an empty list means "no plugins".
        if isinstance(value, str) and not value.strip() and info.field_name != "plugins":
            raise PydanticUseDefault()
        return value

    @field_validator("plugins", "cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _comma_list(value)

    @field_validator("database_url", "app_database_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _postgres_url(value)

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not a time zone of the IANA database (e.g. Asia/Shanghai)") from None
        return value

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, value: str | None) -> str | None:
        # A short key would be guessable offline from any token; refusing it at startup beats a service
        # that starts "healthy" and then fails every signed-in request.
        if value is not None and len(value) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(f"must be at least {MIN_SECRET_KEY_LENGTH} characters long (got {len(value)})")
        return value

    @field_validator("sealing_keys")
    @classmethod
    def _sealing_keys(cls, value: str | None) -> str | None:
        # Parsed now, so that a mistyped key stops startup instead of the first confidential note written.
        if value is not None:
            from core.services.sealing import SealingKeysError, parse_keys

            try:
                parse_keys(value)
            except SealingKeysError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        trusted_networks(value)  # the parse the sign-in uses: a typo stops startup instead of trusting nobody
        return value

    # -- construction -----------------------------------------------------------------------------------------

    @classmethod
    def from_env(cls) -> Settings:
        """The settings of this process: defaults, overridden by the environment. Raises SettingsError."""
        token = _READ_ENV.set(True)
        try:
            return cls()
        finally:
            _READ_ENV.reset(token)

    def with_overrides(self, **changes: object) -> Settings:
        """A validated copy with the given fields replaced; `None` values mean "keep". Raises SettingsError."""
        values = self.model_dump()
        values.update({k: v for k, v in changes.items() if v is not None})
        return type(self)(**values)
