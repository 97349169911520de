"""The values plugins hand to the host through hooks (see core.hookspecs)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

# Notification delivery channels (hook register_channels): the interface lives in core.delivery.channel,
# which imports nothing heavy, and is part of the plugin API from here and from `core`.
from core.delivery.channel import Channel, Contact, Message, PermanentFailure, TemporaryFailure  # noqa: F401

PLUGIN_NAME = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
# The plugin API's major version: bumped when a name plugins use is removed or changes meaning; additions
# keep it. Plugins state the major version they were written for (PluginInfo.api_version).
PLUGIN_API_VERSION = 1


@dataclass(frozen=True)
class PluginInfo:
    name: str
    version: str
    description: str = ""
    # The major version of the plugin API the plugin was written for (core.plugin_api.PLUGIN_API_VERSION);
    # a plugin written for another major version does not load. See docs/plugins.md, "Compatibility".
    api_version: int = 1


@dataclass(frozen=True)
class GraphQLContribution:
    """Strawberry types whose fields join the root types, plus extra types to include."""

    query: type | None = None
    mutation: type | None = None
    subscription: type | None = None
    types: tuple[type, ...] = field(default_factory=tuple)
    # Fields on core types: core type name ("HelpRequest", "Volunteer", "Community", "Assignment",
    # "Organization") → a strawberry type whose fields join that type (see register_graphql).
    type_fields: dict[str, type] = field(default_factory=dict)


@dataclass(frozen=True)
class Permission:
    name: str
    description: str
    # Role names (core.vocab.Role values) granted this permission unless an administrator changes it.
    default_roles: tuple[str, ...] = ()
    # Platform administrators hold every plugin permission by rank, except one marked by_rank=False: a
    # relation-only permission (e.g. reading confidential notes), held through default_roles and the
    # plugin's own checks only.
    by_rank: bool = True


@dataclass(frozen=True)
class StatFigure:
    key: str
    label: str
    value: int | Decimal


@dataclass(frozen=True)
class MatchCriterion:
    """A plugin's extra say in matching. `score(ctx, request, volunteer_ids)` resolves to a value in [0, 1]
    per volunteer id (missing ids count 0), or None to rule a volunteer out."""

    name: str
    weight: float
    score: Callable[[Any, Any, list[int]], Awaitable[dict[int, float | None]]]


def camel_prefix(plugin_name: str) -> str:
    """`case_work` → `caseWork`: the prefix of the plugin's root field names."""
    head, *rest = plugin_name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def pascal_prefix(plugin_name: str) -> str:
    """`case_work` → `CaseWork`: the prefix of the plugin's type names."""
    return "".join(part.capitalize() for part in plugin_name.split("_"))


def describe(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}"


# -- exports (hook register_exports; yunshegong/exports.py serves them) --------------------------------------
EXPORT_KINDS = ("text", "number", "date", "datetime")


@dataclass(frozen=True)
class ExportColumn:
    """One column of an export: `key` (stable, lowerCamelCase), `header` (a `_()` phrase, translated for the
    header row), `path` (dotted path into one node of the query's answer, e.g. "district.name"; a list on the
    way is joined with "、") and `kind` ("text", "number", "date" or "datetime": how spreadsheets type it)."""

    key: str
    header: str
    path: str
    kind: str = "text"


@dataclass(frozen=True)
class ExportDefinition:
    """A list a caller can download as CSV or XLSX (GET /export/{name}.csv|.xlsx).

    `document` is a GraphQL query of the public API, run page by page for the caller, so permissions,
    row-level security, masking and audit are the API's own. For a connection it declares `$first: Int`
    and `$after: String` (the host pages with them; a plain list may declare `$first` for its length), plus
    any of `variables` (the names a caller
    may pass in the `variables` parameter, e.g. "filter"). `connection` is the dotted path in the answer to
    a connection (edges { node } or nodes, and pageInfo { hasNextPage endCursor }) or to a plain list (read
    in one page). `rows`, if given, is the dotted path of a list inside each node, one row per item (the
    columns' paths that start with it read the item). `permission` names the permission the list needs, so
    that the `exports` query lists it only to those who hold it (the query itself still decides)."""

    name: str
    label: str
    document: str
    connection: str
    columns: tuple[ExportColumn, ...]
    rows: str | None = None
    variables: tuple[str, ...] = ()
    permission: str | None = None
