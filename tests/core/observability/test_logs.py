"""Log lines: JSON objects (one per line) or text, each carrying the id of the request it belongs to."""

from __future__ import annotations

import io
import logging
from typing import Any

import orjson
import pytest

from core.observability import requests
from core.observability.logs import JsonFormatter, RequestIdFilter, TextFormatter, logging_config


def _logger(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger(f"tests.observability.{id(stream)}")
    logger.propagate = False
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    return logger, stream


def test_a_json_line_carries_the_request_id_and_the_traceback() -> None:
    logger, stream = _logger(JsonFormatter())
    # given a request running with id abc123
    token = requests._REQUEST_ID.set("abc123")
    try:
        # when it logs a message with a quote, a newline and Chinese text, and an exception
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception('failed "%s"\nsecond line', "社区")
    finally:
        requests._REQUEST_ID.reset(token)
    # then the output is one line of JSON with the request id, the message as logged and the traceback
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    entry = orjson.loads(lines[0])
    assert entry["request_id"] == "abc123"
    assert entry["message"] == 'failed "社区"\nsecond line'
    assert entry["level"] == "ERROR"
    assert entry["logger"] == logger.name
    assert "ValueError: boom" in entry["exception"]
    assert {"time", "pid"} <= entry.keys()


def test_a_line_outside_any_request_has_no_request_id() -> None:
    logger, stream = _logger(JsonFormatter())
    logger.info("started")
    assert "request_id" not in orjson.loads(stream.getvalue())


def test_a_text_line_names_its_request() -> None:
    logger, stream = _logger(TextFormatter())
    token = requests._REQUEST_ID.set("feed01")
    try:
        logger.warning("slow")
    finally:
        requests._REQUEST_ID.reset(token)
    logger.warning("idle")
    first, second = stream.getvalue().splitlines()
    assert first.endswith("slow [request feed01]")
    assert second.endswith("idle")


def _delivery_message() -> Any:
    from core.delivery.channel import Contact, Message

    return Message(
        notification_id=41,
        organization_id=7,
        kind="core.offer_made",
        source="core",
        recipient=Contact(name="张三", phone="13812345678", volunteer_id=9),
        delivery_id=1001,
        attempt=2,
    )


async def _log_channel_line(formatter: logging.Formatter) -> str:
    from core.delivery.channels import LogChannel

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("yunshegong.delivery")
    saved = logger.handlers, logger.propagate, logger.level
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    try:
        await LogChannel().send(_delivery_message())
    finally:
        logger.handlers, logger.propagate = saved[0], saved[1]
        logger.setLevel(saved[2])
    return stream.getvalue()


async def test_the_log_channels_fields_appear_in_a_json_line() -> None:
    # when the log channel writes a message's line as JSON
    (line,) = (await _log_channel_line(JsonFormatter())).splitlines()
    entry = orjson.loads(line)
    # then the line carries the delivery's fields, the phone masked
    assert entry["delivery"]["delivery_id"] == 1001
    assert entry["delivery"]["notification_id"] == 41
    assert entry["delivery"]["organization_id"] == 7
    assert entry["delivery"]["kind"] == "core.offer_made"
    assert entry["delivery"]["attempt"] == 2
    assert "13812345678" not in line


async def test_the_log_channels_fields_appear_in_a_text_line() -> None:
    (line,) = (await _log_channel_line(TextFormatter())).splitlines()
    _, _, fields = line.partition(" delivery=")
    assert orjson.loads(fields)["delivery_id"] == 1001
    assert "13812345678" not in line


def test_only_whitelisted_extra_fields_are_written() -> None:
    # given a line logged with a field nobody vetted beside a whitelisted one
    for formatter in (JsonFormatter(), TextFormatter()):
        logger, stream = _logger(formatter)
        token = requests._REQUEST_ID.set("feed02")
        try:
            logger.info("sent", extra={"delivery": {"delivery_id": 5}, "gateway_url": "https://k:secret@sms"})
        finally:
            requests._REQUEST_ID.reset(token)
        line = stream.getvalue()
        # then the whitelisted field is there and the other is not
        assert "delivery_id" in line
        assert "secret" not in line
        assert "feed02" in line


def test_the_worker_can_apply_the_configuration_at_the_trace_level(monkeypatch: pytest.MonkeyPatch) -> None:
    # given a process where uvicorn (which registers the TRACE level) is not loaded: `yunshegong worker`
    monkeypatch.delitem(logging._nameToLevel, "TRACE", raising=False)
    # when the configuration for YUNSHEGONG_LOG_LEVEL=trace is made
    config = logging_config("json", "trace")
    # then its level is one the standard library knows (dictConfig would refuse an unknown one)
    assert isinstance(logging.getLevelName(config["root"]["level"]), int)
    assert config["formatters"]["default"]["()"].endswith("JsonFormatter")
