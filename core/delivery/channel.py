"""The channel interface: what a delivery channel is, what it receives, and how it says it failed.

Deliberately free of database and framework imports: a third-party package implementing a channel imports
these names (`core.Channel`, `core.Message`, `core.TemporaryFailure`, `core.PermanentFailure`) and nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

# Channel names: core's are plain (`log`, `webhook`); a plugin's are its name or `<plugin>.<what>`.
CHANNEL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,19}(\.[a-z][a-z0-9_]{0,18})?$")


@dataclass(frozen=True)
class Contact:
    """Who a message is for, as far as the platform knows: a volunteer's or account's name and phone, or
    the name and phone a person without an account was queued with. Empty strings when unknown."""

    name: str = ""
    phone: str = ""
    volunteer_id: int | None = None
    account_id: int | None = None


@dataclass(frozen=True)
class Message:
    """One outbox message as a channel sees it. `delivery_id` is the id of this (message, channel) delivery
    (0 while routing): the same on every attempt, so it is the idempotency key a receiver deduplicates by;
    `attempt` counts from 1. `payload` is what the code that queued the message gave (`core.notify`)."""

    notification_id: int
    organization_id: int
    kind: str
    source: str
    recipient: Contact
    payload: Mapping[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    delivery_id: int = 0
    attempt: int = 0


class DeliveryFailure(Exception):
    """A channel could not deliver. The message (str) is kept as the delivery's `last_error` and shown to
    the organisation's administrators: say what went wrong, never a secret or a recipient's details."""


class TemporaryFailure(DeliveryFailure):
    """Try again later (a timeout, a 5xx, a gateway that is down): the worker retries with exponential
    backoff, and parks the delivery after the configured number of attempts."""


class PermanentFailure(DeliveryFailure):
    """Retrying cannot help (the gateway refused the number, the endpoint answered 4xx): parked at once."""


@runtime_checkable
class Channel(Protocol):
    """A way of delivering messages (register one with the hook `register_channels`).

    - `name`: unique in the deployment; a plugin's channel is named `<plugin>` or `<plugin>.<what>`.
    - `accepts(message)`: whether this channel should carry the message (SMS: the recipient has a phone);
      decided once per message, when the worker routes it. May return an awaitable.
    - `send(message)`: deliver it, or raise `TemporaryFailure` / `PermanentFailure`. Any other exception
      counts as temporary. Called outside any database transaction, at least once per delivery (a worker
      that dies after sending and before recording it sends again): use `message.delivery_id` to deduplicate.
      Keep it bounded in time (the worker also gives up after `YUNSHEGONG_DELIVERY_SEND_TIMEOUT` seconds).
    """

    name: str

    def accepts(self, message: Message) -> bool | Awaitable[bool]: ...

    async def send(self, message: Message) -> None: ...
