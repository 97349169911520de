"""Each organisation's webhook endpoint: where the `webhook` channel posts its messages, and the secret it
signs them with. Configured by the organisation's administrators (platform administrators for any); the
secret is sealed at rest and never shown again after the call that set it."""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert

from core.delivery import signing
from core.errors import DomainError
from core.models import WebhookEndpoint
from core.services import sealing
from core.services.common import flush
from core.services.context import ServiceContext

TABLE = "webhook_endpoints"
MAX_URL_LENGTH = 2000
FIELD_URL = ("input", "url")
FIELD_SECRET = ("input", "secret")
# The ports an endpoint may use unless the deployment says otherwise (YUNSHEGONG_DELIVERY_WEBHOOK_PORTS).
DEFAULT_PORTS = (443, 80)
# NAT64 prefixes (the well-known one and the local-use range): the last 32 bits are an IPv4 address.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries and may be routed to: IPv4-mapped, 6to4, Teredo (server and
    client), NAT64, and the deprecated IPv4-compatible form (::a.b.c.d)."""
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    low = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if any(address in network for network in _NAT64) or int(address) >> 32 == 0:
        found.append(low)
    return found


def is_public(address: Address) -> bool:
    """Whether the service may post to `address`: global unicast, and so is every IPv4 address embedded in
    it (Python's `is_global` alone passes 64:ff9b::a9fe:a9fe, 2002:a9fe:a9fe::1 or ::127.0.0.1)."""
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        return all(v4.is_global and not v4.is_multicast for v4 in embedded_ipv4(address))
    return True


def port_of(scheme: str, port: int | None) -> int:
    return port or (443 if scheme == "https" else 80)


def check_url(url: str, *, allow_private: bool, ports: Collection[int] = DEFAULT_PORTS) -> str:
    """`url` stripped, or INVALID_INPUT: http(s), a host, no user or password in it (it would be stored and
    shown), no fragment, a port among `ports` (empty: any); an address literal must be public unless
    `allow_private` (the worker checks what a name resolves to again when it sends)."""
    value = url.strip()
    if not value or len(value) > MAX_URL_LENGTH:
        raise DomainError(
            "INVALID_INPUT", "Give the endpoint's URL (at most {limit} characters).", FIELD_URL, limit=MAX_URL_LENGTH
        )
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise DomainError("INVALID_INPUT", "This is not a URL.", FIELD_URL) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DomainError("INVALID_INPUT", "The endpoint's URL starts with https:// or http://.", FIELD_URL)
    if parts.username is not None or parts.password is not None:
        raise DomainError("INVALID_INPUT", "Put no user name or password in the URL.", FIELD_URL)
    if parts.fragment or any(c.isspace() for c in value) or port == 0:
        raise DomainError("INVALID_INPUT", "This is not a URL.", FIELD_URL)
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        address = None
    if address is not None and not allow_private and not is_public(address):
        raise DomainError("INVALID_INPUT", "The endpoint must be a public address.", FIELD_URL)
    if ports and port_of(parts.scheme, port) not in ports:
        raise DomainError(
            "INVALID_INPUT",
            "The endpoint's port must be one of {ports}.",
            FIELD_URL,
            ports=", ".join(str(p) for p in sorted(ports)),
        )
    return value


def check_secret(secret: str) -> str:
    value = secret.strip()
    if len(value) < signing.MIN_SECRET_LENGTH or len(value) > 200:
        raise DomainError(
            "INVALID_INPUT",
            "A signing secret has {min} to {max} characters.",
            FIELD_SECRET,
            min=signing.MIN_SECRET_LENGTH,
            max=200,
        )
    return value


@dataclass(frozen=True)
class Configured:
    endpoint: WebhookEndpoint
    # The secret, when the service generated it: shown this once.
    generated_secret: str | None


async def configure(
    ctx: ServiceContext,
    organization_id: int,
    url: str,
    secret: str | None,
    *,
    allow_private: bool,
    ports: Collection[int] = DEFAULT_PORTS,
) -> Configured:
    """Set (or replace) the organisation's endpoint. Without a `secret`, one is generated and returned."""
    clean_url = check_url(url, allow_private=allow_private, ports=ports)
    generated = signing.new_secret() if secret is None else None
    plain = generated or check_secret(secret or "")
    label = ctx.viewer.label[:100]
    existing = await endpoint_of(ctx, organization_id, lock=True)
    if existing is None:
        row_id = await sealing.next_id(ctx, TABLE)
        sealed = await sealing.seal(ctx, plain, table=TABLE, column="secret", row_id=row_id)
        created = await ctx.session.scalar(
            insert(WebhookEndpoint)
            .values(id=row_id, organization_id=organization_id, url=clean_url, secret=sealed, configured_by=label)
            .on_conflict_do_nothing(constraint="uq_webhook_endpoints_organization_id")
            .returning(WebhookEndpoint.id)
        )
        # Another administrator created it meanwhile: replace theirs below, as a second call would.
        existing = await endpoint_of(ctx, organization_id, lock=True)
        if created is not None and existing is not None:
            return Configured(existing, generated)
    if existing is None:  # created and removed by others meanwhile: nothing of this call was written
        raise DomainError("NOT_FOUND", "The endpoint changed meanwhile; try again.")
    existing.url = clean_url
    existing.secret = await sealing.seal(ctx, plain, table=TABLE, column="secret", row_id=existing.id)
    existing.enabled = True
    existing.configured_by = label
    existing.updated_at = ctx.now()
    await flush(ctx)
    return Configured(existing, generated)


async def remove(ctx: ServiceContext, organization_id: int) -> bool:
    result = await ctx.session.execute(
        delete(WebhookEndpoint).where(WebhookEndpoint.organization_id == organization_id)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def endpoint_of(ctx: ServiceContext, organization_id: int, *, lock: bool = False) -> WebhookEndpoint | None:
    stmt = select(WebhookEndpoint).where(WebhookEndpoint.organization_id == organization_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await ctx.session.scalars(stmt)).one_or_none()


async def target(ctx: ServiceContext, organization_id: int) -> tuple[str, str] | None:
    """(url, secret) of the organisation's enabled endpoint, for the channel; None without one."""
    row = await endpoint_of(ctx, organization_id)
    if row is None or not row.enabled:
        return None
    secret = await sealing.unseal(ctx, row.secret, table=TABLE, column="secret", row_id=row.id)
    return row.url, secret or ""
