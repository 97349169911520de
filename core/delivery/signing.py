"""Signing webhook payloads (Stripe/Svix style), and verifying them -- what a receiver does, in Python.

The `webhook` channel posts the JSON body with::

    Yunshegong-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>

A receiver recomputes the HMAC over the timestamp, a dot and the *raw* body bytes (before any JSON parsing),
compares in constant time, and refuses a timestamp further than a few minutes from its clock (a captured
request cannot be replayed later). It then deduplicates by `Yunshegong-Delivery` (the delivery id, also sent
as `Idempotency-Key`): delivery is at least once. docs/notifications.md has the same in prose.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "Yunshegong-Signature"
DELIVERY_HEADER = "Yunshegong-Delivery"
EVENT_HEADER = "Yunshegong-Event"
IDEMPOTENCY_HEADER = "Idempotency-Key"
# How far a receiver should accept a timestamp from its own clock.
DEFAULT_TOLERANCE_SECONDS = 300
SECRET_PREFIX = "whsec_"
MIN_SECRET_LENGTH = 24


def new_secret() -> str:
    """A fresh signing secret (shown once, to the administrator who configures the endpoint)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return mac.hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The value of the signature header for `body` sent at `timestamp` (unix seconds)."""
    return f"t={timestamp},v1={signature(secret, body, timestamp)}"


def verify(secret: str, body: bytes, header: str, now: float, tolerance: float = DEFAULT_TOLERANCE_SECONDS) -> bool:
    """Whether `header` is a valid signature of `body` under `secret`, made within `tolerance` of `now`."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        fields.setdefault(key, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, body, timestamp)
    # Several v1 values may be sent while a secret is being rotated; one match suffices.
    return any(hmac.compare_digest(expected, candidate) for candidate in fields.get("v1", []))
