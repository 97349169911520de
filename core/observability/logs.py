"""Log lines as text (a terminal) or JSON (production: one object per line, for a log shipper), set by
YUNSHEGONG_LOG_FORMAT. Every line written while a request runs carries its request id, uvicorn's access
line included (it is written from the request's own task).

Structured fields: a line may carry fields beside its message through `extra=` (the log channel puts each
message's under `delivery`). Only the names in LOG_FIELDS are written, in both formats: `extra` can hold any
object, and a field nobody vetted for personal data must not reach a log shipper by accident. Whoever
adds a name here masks what it carries (the log channel masks the phone).

One dictConfig for the whole process, which uvicorn applies again in each worker it spawns (`log_config`):
the service's loggers, uvicorn's and the libraries' all go through the same handler on stderr.
"""

from __future__ import annotations

import logging
import logging.config
import os
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from core.observability.requests import current_request_id

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The `extra` fields written with a line (see the module's docstring).
LOG_FIELDS = ("delivery",)


def structured_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's whitelisted `extra` fields that are present."""
    return {name: getattr(record, name) for name in LOG_FIELDS if getattr(record, name, None) is not None}


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every record (`record.request_id`, None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id()
        return True


class TextFormatter(logging.Formatter):
    """The service's usual line, then each structured field as ` name={compact JSON}`, then
    ` [request <id>]` when the line belongs to a request."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        fields = structured_fields(record)
        if request_id is None and not fields:
            return line
        head, newline, rest = line.partition("\n")  # after the message, before a traceback
        for name, value in fields.items():
            head += f" {name}={orjson.dumps(value, default=str).decode()}"
        if request_id is not None:
            head += f" [request {request_id}]"
        return f"{head}{newline}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, pid, request_id when the
    line belongs to a request, the structured fields (LOG_FIELDS) the line carries, each under its name,
    exception (the formatted traceback) when there is one. The standard library's
    formatter is enough here: the fields are few and fixed, and orjson escapes what a message may contain."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process or os.getpid(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            entry["request_id"] = request_id
        entry |= structured_fields(record)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


def logging_config(log_format: LogFormat = "text", level: str = "INFO") -> dict[str, Any]:
    """A logging.config.dictConfig for the service (also given to uvicorn as `log_config`). uvicorn's own
    loggers hand their lines to the root handler instead of keeping handlers and formats of their own."""
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    return {
        "version": 1,
        # Loggers made before (alembic's, with the filter the CLI puts on it) keep working.
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": f"{__name__}.RequestIdFilter"}},
        "formatters": {"default": {"()": f"{__name__}.{formatter.__name__}"}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "default",
                "filters": ["request_id"],
            }
        },
        "loggers": {
            name: {"handlers": [], "propagate": True} for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
        "root": {"level": _level(level), "handlers": ["default"]},
    }


def _level(level: str) -> str:
    # YUNSHEGONG_LOG_LEVEL=trace is uvicorn's level, registered only once uvicorn is imported (not in
    # `yunshegong worker`): the standard library's most detailed level stands in for it there.
    name = level.upper()
    return name if isinstance(logging.getLevelName(name), int) else "DEBUG"


def configure_logging(log_format: LogFormat = "text", level: str = "INFO") -> None:
    logging.config.dictConfig(logging_config(log_format, level))
