"""The machinery of the plugin permission matrix (tests/schema/test_plugin_access.py): a world in which both
organisations enabled the built-in plugins, the row types, and the cell shorthands. Each plugin's rows and
its part of the world live beside its tests (tests/plugins/<name>/access_rows.py)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from core.database import create_sessionmaker
from core.services import plugins as plugin_service
from core.services.context import ServiceContext, Viewer
from schema import ids
from tests.schema.access_world import ROLES, World

SHANGHAI = ZoneInfo("Asia/Shanghai")
PLUGINS = frozenset({"supplies", "counseling", "case_work"})
STAFF = frozenset({"supplies.manage", "counseling.manage", "counseling.read_notes", "case_work.manage"})
NULL = None
OK = "OK"
U, F, N = "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND"
PHONE_A, PHONE_B = "13700001111", "13700003333"
MASKED_A, MASKED_B = "137****1111", "137****3333"
CONTACT_A, CONTACT_B = "13800009999", "029-22222222"
NOTES_A, NOTES_B = "甲的机密笔记：来访者提到失眠", "乙的机密笔记"
UNIQUE = itertools.count(1)


def per_role(**expect: Any) -> dict[str, Any]:
    assert set(expect) == set(ROLES), set(ROLES) ^ set(expect)
    return expect


def managers(a: Any, b: Any, both: Any, others: str = F, **overrides: Any) -> dict[str, Any]:
    """Supplies: A's managers see `a`, B's administrator `b`, the platform administrator `both`."""
    cells = {
        "anonymous": U,
        "platform_admin": both,
        "org_admin_a": a,
        "org_admin_b": b,
        "social_worker": a,
        "counselor": others,
        "community_head": others,
        "volunteer": others,
        "partner_a": others,
    }
    return per_role(**(cells | overrides))


def counseling_staff(a: Any, b: Any, both: Any, **overrides: Any) -> dict[str, Any]:
    """Counseling: as supplies, and counselors too."""
    return managers(a, b, both, counselor=a, **overrides)


@dataclass
class PluginWorld:
    w: World
    pk: dict[str, int] = field(default_factory=dict)
    monday: datetime = field(default_factory=lambda: datetime.now(SHANGHAI))

    def gid(self, type_name: str, key: str) -> str:
        return ids.encode(type_name, self.pk[key])

    @asynccontextmanager
    async def staff(self, org: str = "a", **viewer: Any) -> AsyncIterator[ServiceContext]:
        """A transaction (committed) as `org`'s administrator holding every plugin permission."""
        fields = {"label": f"{org} staff", "role": "organization_admin", "organization_id": self.pk[f"org_{org}"]}
        async with create_sessionmaker(self.w.engine)() as session, session.begin():
            yield ServiceContext(session, Viewer(**(fields | {"extra_permissions": STAFF} | viewer)))

    def slot(self) -> datetime:
        """A free hour in the counselors' calendars (each booking gets its own)."""
        n = next(UNIQUE)
        return (self.monday + timedelta(days=n // 10)).replace(hour=8 + n % 10)


async def build_world(w: World, parts: list[Callable[[PluginWorld], Awaitable[None]]]) -> PluginWorld:
    """Both organisations enable the built-in plugins; then each plugin's part adds its records."""
    p = PluginWorld(w, pk=dict(w.ids))
    today = datetime.now(SHANGHAI).date()
    p.monday = datetime.combine(today + timedelta(days=7 - today.weekday()), time(0), SHANGHAI)
    async with w.service() as ctx:
        for org in ("org_a", "org_b"):
            for plugin in PLUGINS:
                await plugin_service.set_enabled(
                    ctx, organization_id=w.ids[org], plugin=plugin, enabled=True, installed=PLUGINS, known=PLUGINS
                )
    for part in parts:
        await part(p)
    return p


def outcome(body: dict[str, Any]) -> tuple[str | None, Any]:
    errors = body.get("errors")
    if errors:
        return errors[0].get("extensions", {}).get("code"), None
    return None, body["data"]["r"]


@dataclass(frozen=True)
class Read:
    name: str
    query: str
    variables: Callable[[PluginWorld], dict[str, Any]]
    extract: Callable[[Any], Any]
    expect: dict[str, Any]


def no_vars(p: PluginWorld) -> dict[str, Any]:
    return {}


def node(type_name: str, key: str, fields: str, extract: Callable[[Any], Any]) -> tuple[Any, ...]:
    query = f"query($id: ID!) {{ r: node(id: $id) {{ ... on {type_name} {{ {fields} }} }} }}"
    return query, lambda p: {"id": p.gid(type_name, key)}, lambda d: extract(d) if d else NULL


def yuan(amount: str) -> str:
    """Money as yuan with two decimals, whichever way the API writes it (one money scalar: issue 11)."""
    return f"{Decimal(amount):.2f}"


def names(d: Any, key: str = "name") -> list[str]:
    return sorted(str(x[key]) for x in d)


@dataclass(frozen=True)
class Write:
    name: str
    mutation: str
    prepare: Callable[[PluginWorld], Awaitable[dict[str, Any]]]
    expect: dict[str, Any]


def fixed(make: Callable[[PluginWorld], dict[str, Any]]) -> Callable[[PluginWorld], Awaitable[dict[str, Any]]]:
    async def prepare(p: PluginWorld) -> dict[str, Any]:
        return make(p)

    return prepare


def fresh_name(prefix: str) -> str:
    return f"w-{prefix}{next(UNIQUE)}"
