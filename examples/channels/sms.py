"""Example SMS channel for yunshegong (not enabled by default): posts each message to an HTTP SMS gateway.

Install it as a plugin package (entry point group `yunshegong.plugins`, see docs/plugins.md) or copy it into
yours. It registers the channel `sms_example` through the hook `register_channels`; like every plugin channel it
carries messages only of organisations that enabled the plugin.

The gateway shape it expects (adapt `send` to your provider)::

    POST {YUNSHEGONG_SMS_EXAMPLE_GATEWAY_URL}
    Authorization: Bearer {YUNSHEGONG_SMS_EXAMPLE_API_KEY}
    Idempotency-Key: <delivery id>            # the gateway drops a repeat of the same key
    {"to": "13812345678", "template": "<message kind>", "params": {...payload...}, "reference": "<delivery id>"}

    200/201/202  accepted                     -> sent
    400/404/422  bad number, unknown template  -> parked (PermanentFailure, with the gateway's `error` code)
    429, 5xx, timeouts, connection errors      -> retried with backoff (TemporaryFailure)
"""

from __future__ import annotations

import os
from typing import Any

import httpx

import core


class SmsChannel:
    name = "sms_example"

    def __init__(self, gateway_url: str, api_key: str, timeout: float = 10.0) -> None:
        self.gateway_url = gateway_url
        self.api_key = api_key
        self.timeout = timeout

    def accepts(self, message: core.Message) -> bool:
        # Only messages to someone with a phone number.
        return bool(message.recipient.phone.strip())

    async def send(self, message: core.Message) -> None:
        body = {
            "to": message.recipient.phone,
            "template": message.kind,
            "params": dict(message.payload),
            "reference": str(message.delivery_id),
        }
        headers = {"Authorization": f"Bearer {self.api_key}", "Idempotency-Key": str(message.delivery_id)}
        try:
            async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
                response = await client.post(self.gateway_url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise core.TemporaryFailure(f"gateway unreachable ({type(exc).__name__})") from None
        if response.status_code in (200, 201, 202):
            return
        if response.status_code == 429 or response.status_code >= 500:
            raise core.TemporaryFailure(f"gateway answered {response.status_code}")
        # Never the number itself in the reason: administrators read it, logs keep it.
        raise core.PermanentFailure(f"gateway refused the message ({response.status_code} {_error_code(response)})")


def _error_code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", ""))[:60]
    except ValueError:
        return ""


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(name="sms_example", version="0.1.0", description="Example SMS channel (HTTP gateway)")


@core.hookimpl
def register_channels() -> list[Any]:
    url = os.environ.get("YUNSHEGONG_SMS_EXAMPLE_GATEWAY_URL", "")
    key = os.environ.get("YUNSHEGONG_SMS_EXAMPLE_API_KEY", "")
    # Not configured: no channel (nothing is queued for it, nothing parks).
    return [SmsChannel(url, key)] if url and key else []
