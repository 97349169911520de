"""Prometheus metrics of the service (prometheus-client), served on /metrics.

Labels never hold personal data and never grow without bound: a GraphQL operation is labelled by the root
fields it selects, names the schema declares (schema.operation_labels), never by the name the client
gave it; an error by its code (the service's fixed vocabulary, folded into `other` past CODE_LABELS); an HTTP
request by its route (a fixed list) and status.

Several worker processes (`yunshegong serve --workers N`) each count their own requests. prometheus-client's
multiprocess mode adds them up: the parent points PROMETHEUS_MULTIPROC_DIR at a fresh directory before the
workers start (`multiprocess_directory`), every process writes its values to files there, and whichever
worker answers /metrics reads them all. Gauges say how processes combine: pool usage and subscriptions add up
over the live workers, the outbox depth (one figure for the whole database) is the most recent reading.

A scrape never touches the database: the outbox depth is read by a background task every
OUTBOX_READ_INTERVAL seconds (GaugeSources.start) and /metrics serves the last reading, so scraping often,
or by anyone who reaches the port, costs the database nothing. Only in-process values (the pool, this
process's subscriptions) are read at the scrape itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from threading import Lock
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
OTHER = "other"
# The operation label of a request refused before any operation ran.
NONE = "none"
CODE_LABELS = 100
# Seconds between two readings of the outbox depth (a count over the deliveries table) in each process.
OUTBOX_READ_INTERVAL = 10.0
_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
ROUTES = ("/graphql", "/healthz", "/metrics", "/graphiql/static", "/board", "/export")

# Seconds: a page is a few milliseconds, a heavy report or a slow database seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

OPERATIONS = Counter(
    "yunshegong_graphql_operations",
    "GraphQL operations run, by root fields (sorted, joined with `,`; `invalid`: the document did not run).",
    ["operation"],
)
OPERATION_SECONDS = Histogram(
    "yunshegong_graphql_operation_duration_seconds",
    "Time to run a GraphQL operation, by root fields.",
    ["operation"],
    buckets=LATENCY_BUCKETS,
)
ERRORS = Counter(
    "yunshegong_graphql_errors",
    "Errors answered, by root fields and error code (GraphQL errors' extensions.code and mutation payload "
    "errors' code; `none` as the operation: the request was refused before any operation ran).",
    ["operation", "code"],
)
HTTP_REQUESTS = Counter("yunshegong_http_requests", "HTTP requests answered, by route and status.", ["route", "status"])
HTTP_SECONDS = Histogram(
    "yunshegong_http_request_duration_seconds",
    "Time to answer an HTTP request, by route.",
    ["route"],
    buckets=LATENCY_BUCKETS,
)
# Per process (a `pid` label in multiprocess mode): how the load spreads over the workers.
WORKER_REQUESTS = Gauge(
    "yunshegong_worker_http_requests",
    "HTTP requests answered by this worker process since it started.",
    multiprocess_mode="liveall",
)
POOL_CHECKED_OUT = Gauge(
    "yunshegong_db_pool_checked_out",
    "Database connections in use (summed over the live workers).",
    multiprocess_mode="livesum",
)
POOL_SIZE = Gauge(
    "yunshegong_db_pool_size",
    "Database connections kept open per pool (summed over the live workers).",
    multiprocess_mode="livesum",
)
POOL_MAX = Gauge(
    "yunshegong_db_pool_max",
    "Most database connections the pools may open, overflow included (summed over the live workers).",
    multiprocess_mode="livesum",
)
OUTBOX_PENDING = Gauge(
    "yunshegong_outbox_pending",
    "Outbox messages waiting: not routed to a channel yet, or queued for delivery (the whole database).",
    multiprocess_mode="livemostrecent",
)
OUTBOX_PARKED = Gauge(
    "yunshegong_outbox_parked",
    "Deliveries given up after their retries, waiting for an administrator (the whole database).",
    multiprocess_mode="livemostrecent",
)
OUTBOX_OLDEST = Gauge(
    "yunshegong_outbox_oldest_queued_seconds",
    "Age of the oldest delivery still queued (0: none).",
    multiprocess_mode="livemostrecent",
)
SUBSCRIPTIONS = Gauge(
    "yunshegong_subscriptions",
    "Open GraphQL subscriptions (summed over the live workers).",
    multiprocess_mode="livesum",
)


class LabelFolder:
    """Admits the first `limit` values that match `pattern` as label values; any other value is `OTHER`.
    Bounded per process, so a client inventing operation names cannot grow the series without limit
    (at most `limit` names per worker); names it admitted stay admitted."""

    def __init__(self, pattern: re.Pattern[str], limit: int) -> None:
        self._pattern = pattern
        self._limit = limit
        self._admitted: set[str] = set()
        self._lock = Lock()

    def __call__(self, value: str, *, admit: bool = True) -> str:
        if value in self._admitted:
            return value
        if not admit or self._pattern.fullmatch(value) is None:
            return OTHER
        with self._lock:
            if len(self._admitted) >= self._limit:
                return OTHER
            self._admitted.add(value)
        return value


code_label = LabelFolder(_CODE, CODE_LABELS)


def route_label(path: str) -> str:
    for route in ROUTES:
        if path == route or path.startswith(route + "/"):
            return route
    return OTHER


def record_http(path: str, status: int, seconds: float) -> None:
    route = route_label(path)
    HTTP_REQUESTS.labels(route, str(status)).inc()
    HTTP_SECONDS.labels(route).observe(seconds)
    WORKER_REQUESTS.inc()


def record_refusal(code: str) -> None:
    """A request refused before any operation ran (unparsable body, 401, 413 …)."""
    ERRORS.labels(NONE, code_label(code)).inc()


def result_codes(errors: Iterable[Any] | None, data: Any) -> list[str]:
    """The codes of an execution result: each GraphQL error's `extensions.code`, and for each root field
    answering a payload with `errors`, each error's `code` (when the client selected it)."""
    codes = [str((getattr(e, "extensions", None) or {}).get("code") or "INTERNAL_ERROR") for e in errors or ()]
    if isinstance(data, dict):
        for value in data.values():
            payload_errors = value.get("errors") if isinstance(value, dict) else None
            if isinstance(payload_errors, list):
                codes += [str(e["code"]) for e in payload_errors if isinstance(e, dict) and e.get("code")]
    return codes


# -- gauges read from the process's state ----------------------------------------------------------------------


Reading = Callable[[], Any]


async def _nothing() -> None:
    return None


def _set_outbox(value: Any) -> None:
    # A plain number is the pending count; the delivery part's reading (core.delivery.Depth) says more.
    if isinstance(value, int | float):
        OUTBOX_PENDING.set(value)
        return
    OUTBOX_PENDING.set(value.unrouted + value.queued)
    OUTBOX_PARKED.set(value.parked)
    OUTBOX_OLDEST.set(value.oldest_queued_seconds)


@dataclass
class GaugeSources:
    """Where the gauges' values come from. In-process values (the pool, this process's subscriptions) are
    read at each scrape (`refresh_local`); the outbox depth, a query, only by the background task every
    OUTBOX_READ_INTERVAL seconds (`refresh`, from `start`): a scrape serves its last reading and never
    queries the database. In multiprocess mode a gauge of another worker is whatever that worker last wrote.
    A source returning None leaves its gauge as it is. yunshegong.app plugs in the delivery part's outbox
    depth (a number, or an object with unrouted / queued / parked / oldest_queued_seconds) and the realtime
    part's subscription count."""

    pool: Any = None  # a SQLAlchemy QueuePool (size(), checkedout(), its overflow limit)
    outbox_depth: Reading = _nothing
    subscription_count: Reading = _nothing
    _refresher: asyncio.Task[None] | None = field(default=None, repr=False)

    async def refresh_local(self) -> None:
        """The values this process holds in memory: no I/O, cheap enough for every scrape."""
        pool = self.pool
        if pool is not None and hasattr(pool, "checkedout"):
            POOL_CHECKED_OUT.set(pool.checkedout())
            POOL_SIZE.set(pool.size())
            overflow = getattr(pool, "_max_overflow", -1)  # -1: no limit, which no deployment should run with
            if overflow >= 0:
                POOL_MAX.set(pool.size() + overflow)
        await _read(self.subscription_count, "subscriptions", SUBSCRIPTIONS.set)

    async def refresh(self) -> None:
        """Everything, the outbox depth's query included: the background task's round."""
        await self.refresh_local()
        await _read(self.outbox_depth, "outbox depth", _set_outbox)

    async def refresh_forever(self, interval: float) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(interval)

    def start(self, interval: float = OUTBOX_READ_INTERVAL) -> None:
        self._refresher = asyncio.ensure_future(self.refresh_forever(interval))

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
        if os.environ.get(MULTIPROC_ENV):
            # This worker's live gauges leave the sums (its counters stay: what it counted happened).
            multiprocess.mark_process_dead(os.getpid())


async def _read(source: Reading, what: str, record: Callable[[Any], None]) -> None:
    try:
        value = source()
        if inspect.isawaitable(value):
            value = await value
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # e.g. the database is down: the gauge keeps its last reading
        log.warning("metrics: reading the %s failed (%s)", what, type(exc).__name__)
        return
    if value is not None:
        record(value)


# -- exposition ----------------------------------------------------------------------------------------------


def render() -> tuple[bytes, str]:
    """The text exposition of every metric: this process's, or in multiprocess mode every worker's."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


@contextlib.contextmanager
def multiprocess_directory() -> Iterator[Path]:
    """For the parent of several workers: PROMETHEUS_MULTIPROC_DIR set to a directory the workers share,
    emptied first (values of an earlier run would be added to this one's), removed afterwards if made here.
    An operator's own PROMETHEUS_MULTIPROC_DIR is used (and emptied), not removed."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix="yunshegong-metrics-"))
    os.environ[MULTIPROC_ENV] = str(path)
    try:
        yield path
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)
