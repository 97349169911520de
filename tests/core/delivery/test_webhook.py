"""The webhook channel against a real HTTP receiver: signed payloads, idempotency key, retries, parking."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import create_sessionmaker
from core.delivery import DeliveryConfig, Worker, signing, webhooks
from core.delivery.channels import UNREACHABLE, UNUSABLE_ADDRESS, WebhookChannel
from core.errors import DomainError
from tests.core.delivery.support import Receiver, queue, rows
from tests.factories import Factory


def _worker(engine: AsyncEngine, clock, *, allow_private: bool = True, ports=()) -> Worker:  # type: ignore[no-untyped-def]
    # The test receiver listens on a random port: any port unless a test says otherwise.
    channel = WebhookChannel(
        create_sessionmaker(engine), timeout=5, allow_private=allow_private, ports=ports, cache_seconds=0
    )
    return Worker(create_sessionmaker(engine), [channel], config=DeliveryConfig(max_attempts=3), clock=clock)


async def _configure(make: Factory, url: str, secret: str | None = None) -> str:
    ctx = make.ctx
    done = await webhooks.configure(ctx, ctx.viewer.organization_id, url, secret, allow_private=True, ports=())  # type: ignore[arg-type]
    await ctx.session.commit()
    assert done.generated_secret is None or done.generated_secret.startswith("whsec_")
    return secret or done.generated_secret  # type: ignore[return-value]


async def test_a_message_is_posted_signed_with_its_delivery_id_as_idempotency_key(
    make: Factory, engine: AsyncEngine, owner_engine: AsyncEngine, clock
) -> None:  # type: ignore[no-untyped-def]
    with Receiver() as receiver:
        # given an endpoint with a generated secret, and a message for a volunteer
        secret = await _configure(make, receiver.url)
        await queue(make.ctx, 1)
        # when the worker runs
        done = await _worker(engine, clock).run_once()
    # then the receiver got one POST whose signature verifies with the secret, over the raw body
    assert done.sent == 1
    ((headers, body),) = receiver.requests
    assert signing.verify(secret, body, headers["yunshegong-signature"], now=time.time())
    assert not signing.verify(secret, body + b" ", headers["yunshegong-signature"], now=time.time())
    signature = headers["yunshegong-signature"]
    assert not signing.verify("whsec_another-secret-of-enough-length", body, signature, time.time())
    # (a replay long after is refused by the receiver's clock check)
    assert not signing.verify(secret, body, headers["yunshegong-signature"], now=time.time() + 3600)
    ((delivery_id,),) = await rows(owner_engine, "SELECT id FROM deliveries")
    assert headers["idempotency-key"] == headers["yunshegong-delivery"] == str(delivery_id)
    document = json.loads(body)
    assert (document["id"], document["type"], document["data"]) == (str(delivery_id), "test.ping", {"i": 0})
    assert document["recipient"]["phone"] == "13700000000"
    # and the secret is stored sealed, not as text
    ((stored,),) = await rows(owner_engine, "SELECT secret FROM webhook_endpoints")
    assert secret.encode() not in bytes(stored)  # type: ignore[arg-type]


@pytest.mark.parametrize(("status", "outcome"), [(503, "queued"), (429, "queued"), (410, "parked"), (302, "parked")])
async def test_server_errors_are_retried_and_refusals_parked(
    make: Factory, engine: AsyncEngine, owner_engine: AsyncEngine, clock, status: int, outcome: str
) -> None:  # type: ignore[no-untyped-def]
    with Receiver() as receiver:
        receiver.status = status
        await _configure(make, receiver.url, "s" * 32)
        await queue(make.ctx, 1)
        await _worker(engine, clock).run_once()
    assert await rows(owner_engine, "SELECT status, last_error FROM deliveries") == [
        (outcome, f"the endpoint answered {status}")
    ]


async def test_an_unreachable_endpoint_is_retried(make: Factory, engine: AsyncEngine, owner_engine, clock) -> None:  # type: ignore[no-untyped-def]
    with Receiver() as receiver:
        url = receiver.url
    await _configure(make, url, "s" * 32)  # the receiver is gone: connection refused
    await queue(make.ctx, 1)
    assert (await _worker(engine, clock).run_once()).retried == 1
    # and administrators read one coarse reason (refused, reset and timed out alike: no port scanner)
    assert await rows(owner_engine, "SELECT last_error FROM deliveries") == [(UNREACHABLE,)]


async def test_an_endpoint_on_a_private_address_is_refused_unless_allowed(
    make: Factory, engine: AsyncEngine, owner_engine, clock
) -> None:  # type: ignore[no-untyped-def]
    # given an endpoint whose name resolves to the loopback address (configured while that was allowed)
    await _configure(make, "http://localhost:9/hook", "s" * 32)
    await queue(make.ctx, 1)
    # when a worker that does not allow private addresses sends
    await _worker(engine, clock, allow_private=False).run_once()
    # then nothing is posted there: parked with the reason
    assert await rows(owner_engine, "SELECT status, last_error FROM deliveries") == [("parked", UNUSABLE_ADDRESS)]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/hook",
        "https://user:pass@example.org/hook",
        "https://token@example.org/hook",
        "https:///hook",
        "https://example.org/hook#x",
        "http://127.0.0.1/hook",
        "http://169.254.169.254/latest",
        "http://[::1]/hook",
        # IPv6 forms carrying a private IPv4 address: mapped, IPv4-compatible, NAT64 (both prefixes), 6to4,
        # Teredo (Python's is_global passes most of them)
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::127.0.0.1]/hook",
        "http://[64:ff9b::a9fe:a9fe]/latest",
        "http://[64:ff9b:1::a00:1]/hook",
        "http://[2002:a9fe:a9fe::1]/latest",
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",
        "http://[ff02::1]/hook",
        # ports other than 443 and 80
        "https://hooks.example.org:22/hook",
        "http://hooks.example.org:6379/",
        "not a url",
    ],
)
def test_endpoint_urls_are_checked(url: str) -> None:
    with pytest.raises(DomainError) as refused:
        webhooks.check_url(url, allow_private=False)
    assert (refused.value.code, refused.value.errors[0].field) == ("INVALID_INPUT", ("input", "url"))


def test_a_public_https_url_is_accepted() -> None:
    assert webhooks.check_url(" https://hooks.example.org/yunshegong?x=1 ", allow_private=False) == (
        "https://hooks.example.org/yunshegong?x=1"
    )


def test_a_public_ipv6_endpoint_and_a_configured_port_are_accepted() -> None:
    assert webhooks.check_url("https://[2001:4860:4860::8888]/hook", allow_private=False)
    assert webhooks.check_url("https://hooks.example.org:8443/x", allow_private=False, ports=(8443,))


@pytest.mark.parametrize(
    "resolved",
    ["64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1", "::127.0.0.1", "::ffff:10.0.0.1", "8.8.8.8 10.0.0.1"],
)
async def test_a_name_resolving_to_a_private_address_in_any_form_is_refused(
    make: Factory, engine: AsyncEngine, owner_engine: AsyncEngine, clock, monkeypatch, resolved: str
) -> None:  # type: ignore[no-untyped-def]
    # given an endpoint whose name resolves (now) to a private address written as IPv6, or to a public and a
    # private one
    _resolve(monkeypatch, {"hooks.example.org": resolved.split()})
    await _configure(make, "https://hooks.example.org/hook", "s" * 32)
    await queue(make.ctx, 1)
    # when a worker that does not allow private addresses sends: nothing is posted, the delivery is parked
    await _worker(engine, clock, allow_private=False).run_once()
    assert await rows(owner_engine, "SELECT status, last_error FROM deliveries") == [("parked", UNUSABLE_ADDRESS)]


async def test_a_port_not_allowed_any_more_is_not_posted_to(
    make: Factory, engine: AsyncEngine, owner_engine: AsyncEngine, clock
) -> None:  # type: ignore[no-untyped-def]
    with Receiver() as receiver:
        await _configure(make, receiver.url, "s" * 32)
        await queue(make.ctx, 1)
        await _worker(engine, clock, ports=(443, 80)).run_once()
    assert receiver.requests == []
    assert await rows(owner_engine, "SELECT status, last_error FROM deliveries") == [
        ("parked", "the endpoint's port is not allowed")
    ]


async def test_the_request_goes_to_the_address_that_was_checked(
    make: Factory, engine: AsyncEngine, owner_engine: AsyncEngine, clock, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    with Receiver() as receiver:
        # given an endpoint under a name only the worker's check resolves (to the receiver's address):
        # a client resolving the name itself would not find it
        port = receiver.url.split(":")[2].split("/")[0]
        lookups = _resolve(monkeypatch, {"hooks.invalid": ["127.0.0.1"]})
        await _configure(make, f"http://hooks.invalid:{port}/hook", "s" * 32)
        await queue(make.ctx, 1)
        # when the worker sends
        done = await _worker(engine, clock).run_once()
    # then the receiver got it, addressed to the endpoint's name, after one lookup (the checked one)
    assert done.sent == 1
    ((headers, _),) = receiver.requests
    assert headers["host"] == f"hooks.invalid:{port}"
    assert lookups == ["hooks.invalid"]


async def test_an_endless_answer_is_not_read_to_its_end(
    make: Factory, engine: AsyncEngine, owner_engine: AsyncEngine, clock
) -> None:  # type: ignore[no-untyped-def]
    with Receiver() as receiver:
        # given an endpoint that answers 200 with a body that never ends
        receiver.endless = True
        await _configure(make, receiver.url, "s" * 32)
        await queue(make.ctx, 1)
        # when the worker sends (a send may take a minute)
        worker = _worker(engine, clock)
        worker.config = DeliveryConfig(max_attempts=3, send_timeout=60)
        done = await worker.run_once()
    # then the status decided: sent
    assert done.sent == 1


def _resolve(monkeypatch, names: dict[str, list[str]]) -> list[str]:  # type: ignore[no-untyped-def]
    """Make the event loop's resolver answer `names` (the webhook channel's check); the lookups made."""
    import asyncio
    import socket

    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo
    lookups: list[str] = []

    async def getaddrinfo(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host not in names:
            return await real(host, port, *args, **kwargs)
        lookups.append(host)
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in names[host]
        ]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    return lookups


async def test_reseal_moves_the_webhook_secrets_to_the_new_key(
    make: Factory, engine: AsyncEngine, owner_engine: AsyncEngine
) -> None:
    from core.services import sealing
    from core.services.context import ServiceContext

    # given an endpoint whose secret is sealed under the current key
    await _configure(make, "https://hooks.example.org/x")
    ((before,),) = await rows(owner_engine, "SELECT secret FROM webhook_endpoints")
    async with create_sessionmaker(engine)() as session:
        old = await sealing.keyring(ServiceContext(session=session, viewer=make.ctx.viewer))
    ring = sealing.Keyring((("rot", b"R" * 32), *old.keys))
    # when `yunshegong reseal` runs over core's sealed columns with a new current key
    reports = await sealing.reseal(engine, sealing.CORE_SEALED_COLUMNS, ring)
    # then the secret moved to it, none was unreadable or left behind
    assert [(r.column.name, r.resealed, r.unreadable, r.remaining) for r in reports] == [
        ("webhook_endpoints.secret", 1, [], 0)
    ]
    ((after,),) = await rows(owner_engine, "SELECT secret FROM webhook_endpoints")
    assert bytes(after) != bytes(before)  # type: ignore[arg-type]


async def test_each_post_opens_its_own_connection(make: Factory, engine: AsyncEngine, clock) -> None:  # type: ignore[no-untyped-def]
    # given two messages for an endpoint (posted to its checked address, its name only for TLS)
    with Receiver() as receiver:
        await _configure(make, receiver.url)
        await queue(make.ctx, 2)
        # when one worker sends both, one after the other
        worker = _worker(engine, clock)
        worker.config = DeliveryConfig(max_attempts=3, concurrency=1)
        done = await worker.run_once()
    # then each went over a connection of its own: a kept-alive one, pooled by address alone, could carry
    # another organisation's payload over a connection whose certificate was checked for another host
    assert done.sent == 2
    assert len(set(receiver.peers)) == 2
