"""What travels on the live channel: small announcements of IDs and routing keys, never rows.

PostgreSQL sends them (`pg_notify('yunshegong_live', json)`) when the transaction that made the change
commits: from row triggers (migration 0013, `core.live.migrations`) and from `core.live.publish`. A rolled
back transaction announces nothing. A subscriber reloads what an event names with its own permissions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

# The one channel every process LISTENs on (one LISTEN connection per process, whatever the topics).
CHANNEL = "yunshegong_live"
# PostgreSQL refuses payloads of 8000 bytes or more; ours name IDs and a few keys, so a payload anywhere near
# this is a mistake (personal data in the keys): refused before it reaches the database.
MAX_PAYLOAD_BYTES = 1000

# Topics core announces. Plugins announce `<plugin>.<what>` (checked by `plugin_topic`).
HELP_REQUESTS = "help_requests"
ASSIGNMENTS = "assignments"
# A credential may have stopped working (password change, account disabled, API token revoked): holders of a
# connection authenticated by it check it again. id: the account's id (kind "account") or the token's
# (kind "api_token").
AUTH = "auth"
# A plugin was switched on or off for an organisation (id: the organisation; keys: plugin, enabled).
PLUGINS = "plugins"
# Sent by the broker itself, never by PostgreSQL: events may have been lost (the LISTEN connection was lost
# and restored, or the subscriber fell behind). Subscribers reload what they show.
RESYNC = "resync"

CORE_TOPICS = frozenset({HELP_REQUESTS, ASSIGNMENTS, AUTH, PLUGINS})
_PLUGIN_TOPIC = re.compile(r"^[a-z][a-z0-9_]{1,39}\.[a-z][a-z0-9_]{0,39}$")


def plugin_topic(topic: str) -> str:
    """`topic` if it is a plugin topic (`<plugin>.<what>`, lower case), else ValueError."""
    if not _PLUGIN_TOPIC.match(topic):
        raise ValueError(f"live topic {topic!r} must be `<plugin>.<what>` (lower case, e.g. 'supplies.stock')")
    return topic


@dataclass(frozen=True)
class Event:
    """One announcement. `op`: "insert", "update", "delete" (row triggers) or "publish" (`core.live.publish`);
    `keys`: the routing keys the announcer chose (e.g. community_id, urgency, status); `was`: on an update,
    the previous values of the routing keys that changed (e.g. {"status": "submitted"})."""

    topic: str
    id: int | None = None
    organization_id: int | None = None
    op: str = "publish"
    keys: Mapping[str, Any] = field(default_factory=dict)
    was: Mapping[str, Any] = field(default_factory=dict)

    @property
    def resync(self) -> bool:
        return self.topic == RESYNC

    def get(self, key: str, default: Any = None) -> Any:
        return self.keys.get(key, default)


RESYNC_EVENT = Event(topic=RESYNC, op="resync")

_OPS = {"i": "insert", "u": "update", "d": "delete", "p": "publish"}


def encode(topic: str, id: int | None, organization_id: int | None, keys: Mapping[str, Any]) -> str:
    """The payload `core.live.publish` sends (the same shape the triggers build)."""
    message: dict[str, Any] = {"t": topic, "id": id, "o": organization_id, "op": "p"}
    for key, value in keys.items():
        if key in message or key == "was":
            raise ValueError(f"live key {key!r} is reserved")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise ValueError(f"live key {key!r}: IDs and short codes only (got {type(value).__name__})")
        message[key] = value
    payload = orjson.dumps(message).decode()
    if len(payload.encode()) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"live payload over {MAX_PAYLOAD_BYTES} bytes: send IDs, not rows")
    return payload


def decode(payload: str) -> Event | None:
    """The event a payload announces; None for one that is not ours (logged by the caller)."""
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(message, dict) or not isinstance(message.get("t"), str):
        return None
    topic = message.pop("t")
    raw_id = message.pop("id", None)
    organization = message.pop("o", None)
    op = _OPS.get(str(message.pop("op", "p")), "publish")
    was = message.pop("was", None)
    return Event(
        topic=topic,
        id=raw_id if isinstance(raw_id, int) else None,
        organization_id=organization if isinstance(organization, int) else None,
        op=op,
        keys=message,
        was=was if isinstance(was, dict) else {},
    )
