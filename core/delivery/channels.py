"""Core's channels: `log` (a structured log line per message; always on) and `webhook` (the organisation's
endpoint, signed payloads)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Collection
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.delivery import signing, webhooks
from core.delivery.channel import Message, PermanentFailure, TemporaryFailure
from core.services.context import SYSTEM, ServiceContext
from core.services.privacy import mask_phone

log = logging.getLogger("yunshegong.delivery")


class LogChannel:
    """Writes one structured line per message (logger `yunshegong.delivery`, fields under `delivery` in the
    record's extras): the trail of every message even where no other channel is configured. The recipient's
    phone is masked: logs travel further than the database."""

    name = "log"

    def accepts(self, message: Message) -> bool:
        return True

    async def send(self, message: Message) -> None:
        fields = {
            "delivery_id": message.delivery_id,
            "notification_id": message.notification_id,
            "organization_id": message.organization_id,
            "kind": message.kind,
            "source": message.source,
            "volunteer_id": message.recipient.volunteer_id,
            "account_id": message.recipient.account_id,
            "phone": mask_phone(message.recipient.phone) or "",
            "attempt": message.attempt,
        }
        log.info(
            "message %s (%s) for organisation %s",
            message.notification_id,
            message.kind,
            message.organization_id,
            extra={"delivery": fields},
        )


def payload_of(message: Message) -> dict[str, Any]:
    """The JSON document the webhook posts (docs/notifications.md, "Webhook payload")."""
    return {
        "id": str(message.delivery_id),
        "notificationId": str(message.notification_id),
        "organizationId": str(message.organization_id),
        "type": message.kind,
        "source": message.source,
        "createdAt": message.created_at.isoformat() if message.created_at else None,
        "attempt": message.attempt,
        # The organisation's own data, to the endpoint its administrator configured.
        "recipient": {
            "name": message.recipient.name,
            "phone": message.recipient.phone,
            "volunteerId": message.recipient.volunteer_id,
            "accountId": message.recipient.account_id,
        },
        "data": dict(message.payload),
    }


# Statuses after which trying again can succeed: the receiver is overloaded, down, or timed out itself.
RETRYABLE_STATUSES = frozenset({408, 425, 429})
# What is read of an answer: only its status matters; a receiver cannot make the service read a huge body.
MAX_ANSWER_BYTES = 4096
ANSWER_READ_SECONDS = 1.0
# Addresses of a name tried in turn when connecting fails (all of them checked first).
MAX_ADDRESSES = 4
# One text for refused, reset, timed out, TLS failure: what administrators read (lastError) must not tell an
# open port from a closed or filtered one. The detail goes to the server log.
UNREACHABLE = "the endpoint could not be reached"
# One text whether the name does not resolve or resolves to a private address: an administrator must not be
# able to tell which internal names exist (the detail goes to the server's log).
UNUSABLE_ADDRESS = "the endpoint's address cannot be used"


class WebhookChannel:
    """Posts a message to its organisation's endpoint (core.delivery.webhooks), signed with the
    organisation's secret (core.delivery.signing). 2xx: sent. 408/425/429/5xx, timeouts and connection errors:
    retried. Any other answer (a 4xx, a redirect, which is not followed): parked with the status. At most
    MAX_ANSWER_BYTES of an answer are read.

    The endpoint's port must be one of `ports` (empty: any), and its name is resolved here: every address must
    be public, embedded IPv4 included (unless `allow_private`, for tests and closed networks). The request then
    goes to an address that was checked (the Host header and TLS server name stay the endpoint's; the next
    one if connecting fails), so a name that resolves differently a moment later cannot point the service at
    an internal address."""

    name = "webhook"

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        timeout: float = 10.0,
        allow_private: bool = False,
        ports: Collection[int] = webhooks.DEFAULT_PORTS,
        cache_seconds: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.timeout = timeout
        self.allow_private = allow_private
        self.ports = frozenset(ports)
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._cache: dict[int, tuple[float, tuple[str, str] | None]] = {}
        self._client: httpx.AsyncClient | None = None

    async def _target(self, organization_id: int, *, fresh: bool) -> tuple[str, str] | None:
        now = time.monotonic()
        cached = self._cache.get(organization_id)
        if not fresh and cached is not None and cached[0] > now:
            return cached[1]
        # A short transaction of its own, acting for that organisation only (row-level security).
        async with self.sessionmaker() as session, session.begin():
            ctx = ServiceContext(session=session, viewer=replace(SYSTEM, organization_id=organization_id))
            found = await webhooks.target(ctx, organization_id)
        self._cache[organization_id] = (now + self.cache_seconds, found)
        return found

    async def accepts(self, message: Message) -> bool:
        return await self._target(message.organization_id, fresh=False) is not None

    async def send(self, message: Message) -> None:
        target = await self._target(message.organization_id, fresh=True)
        if target is None:
            raise PermanentFailure("no webhook endpoint is configured (any more)")
        url, secret = target
        body = orjson.dumps(payload_of(message))
        timestamp = int(self.clock())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "yunshegong-webhook/1",
            signing.SIGNATURE_HEADER: signing.sign(secret, body, timestamp),
            signing.DELIVERY_HEADER: str(message.delivery_id),
            signing.IDEMPOTENCY_HEADER: str(message.delivery_id),
            signing.EVENT_HEADER: message.kind,
            # The endpoint's own name, whichever address the request is sent to.
            "Host": urlsplit(url).netloc,
        }
        status = await self._post(url, body, headers, message.delivery_id)
        if 200 <= status < 300:
            return
        if status >= 500 or status in RETRYABLE_STATUSES:
            raise TemporaryFailure(f"the endpoint answered {status}")
        raise PermanentFailure(f"the endpoint answered {status}")

    async def _post(self, url: str, body: bytes, headers: dict[str, str], delivery_id: int) -> int:
        """POST to each checked address of the endpoint in turn until one connects; its status."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = webhooks.port_of(parts.scheme, parts.port)
        if self.ports and port not in self.ports:
            raise PermanentFailure("the endpoint's port is not allowed")
        for address in await self._addresses(host, port):
            target, extensions = _pinned(parts, host, address)
            try:
                async with self._http().stream(
                    "POST", target, content=body, headers=headers, extensions=extensions
                ) as response:
                    # The status decides; a little of the body is read, briefly: a body that is huge, slow or
                    # never ends changes nothing.
                    with contextlib.suppress(httpx.HTTPError, TimeoutError):
                        async with asyncio.timeout(ANSWER_READ_SECONDS):
                            read = 0
                            async for chunk in response.aiter_raw():
                                read += len(chunk)
                                if read >= MAX_ANSWER_BYTES:
                                    break
                    return response.status_code
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                log.info("webhook delivery %s: connecting to %s failed (%s)", delivery_id, address, type(exc).__name__)
            except httpx.HTTPError as exc:
                log.info("webhook delivery %s: %s failed (%s)", delivery_id, address, type(exc).__name__)
                raise TemporaryFailure(UNREACHABLE) from None
        raise TemporaryFailure(UNREACHABLE)

    async def _addresses(self, host: str, port: int) -> list[webhooks.Address]:
        """The endpoint's addresses, each checked (all must be public unless private ones are allowed)."""
        try:
            addresses: list[webhooks.Address] = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError:
                log.info("webhook: %s does not resolve", host)
                raise TemporaryFailure(UNUSABLE_ADDRESS) from None
            addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
        if not addresses:
            log.info("webhook: %s does not resolve", host)
            raise TemporaryFailure(UNUSABLE_ADDRESS)
        if not self.allow_private and not all(webhooks.is_public(a) for a in addresses):
            log.warning("webhook: %s resolves to an address that is not public", host)
            raise PermanentFailure(UNUSABLE_ADDRESS)
        return addresses[:MAX_ADDRESSES]

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # No kept-alive connections: requests go to a checked address with the endpoint's name only for TLS,
            # and the pool would reuse a connection by address alone -- one organisation's payload over a
            # connection whose certificate was checked for another organisation's host on the same address.
            self._client = httpx.AsyncClient(
                timeout=self.timeout,
                follow_redirects=False,
                trust_env=False,
                limits=httpx.Limits(max_keepalive_connections=0),
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _pinned(parts: Any, host: str, address: webhooks.Address) -> tuple[str, dict[str, Any]]:
    """The endpoint's URL with `address` in place of its name, and the TLS server name to give: the
    connection goes where the check looked. The Host header is the endpoint's (set by the caller)."""
    shown = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{shown}:{parts.port}" if parts.port else shown
    extensions = {"sni_hostname": host} if parts.scheme == "https" and str(address) != host else {}
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), extensions
