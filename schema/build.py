"""build_schema(): core's schema merged with what the loaded plugins contribute.

Fails loudly, naming the plugins involved, when a plugin's names leave its namespace or clash with core's
or another plugin's: never a half-built schema.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import strawberry
from strawberry import Info, relay
from strawberry.exceptions import DuplicatedTypeName
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    FieldExtension,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.types.base_scalars import DateTimeDefinition
from strawberry.utils.str_converters import to_camel_case

from core.errors import CORE_ERROR_CODES, DomainError
from core.plugin_api import camel_prefix, pascal_prefix
from core.plugins import LoadedPlugin, PluginHost, PluginLoadError
from core.settings import Settings
from schema.errors import use_codes
from schema.extensions import RequestLifecycle, SafeErrors, page_size_rule
from schema.mutations.assignments import AssignmentMutations
from schema.mutations.auth import AuthMutations
from schema.mutations.communities import CommunityMutations
from schema.mutations.help_requests import HelpRequestMutations
from schema.mutations.plugins import PluginMutations
from schema.mutations.reference import ReferenceMutations
from schema.mutations.scheduling import SchedulingMutations
from schema.mutations.volunteers import VolunteerMutations
from schema.queries import CoreQuery, node_fields
from schema.scalars import SCALARS
from schema.types.nodes import NOT_ADDRESSABLE

CORE_MUTATIONS = (
    AuthMutations,
    CommunityMutations,
    VolunteerMutations,
    HelpRequestMutations,
    AssignmentMutations,
    ReferenceMutations,
    PluginMutations,
    SchedulingMutations,
)


# The caller's zone for this request (the `X-Timezone` header), else the deployment's default.
CALLER_ZONE: ContextVar[ZoneInfo | None] = ContextVar("caller_zone", default=None)


def datetime_scalar(zone: str) -> object:
    """DateTime as ISO 8601 with offset, presented in the caller's zone (X-Timezone) or `zone`; the
    database keeps UTC."""
    default = ZoneInfo(zone)
    return dataclasses.replace(
        DateTimeDefinition,
        description=(
            f"ISO 8601 date-time with offset; shown in the zone of the X-Timezone request header (IANA name), "
            f"else {zone}. Inputs must carry an offset."
        ),
        serialize=lambda value: value.astimezone(CALLER_ZONE.get() or default).isoformat(),
    )


class PluginGate(FieldExtension):
    """Answers PLUGIN_DISABLED before a plugin's root field runs, unless the caller's organisation
    enabled the plugin. Added by the builder, so no plugin resolver can forget the check."""

    def __init__(self, plugin: str) -> None:
        super().__init__()
        self.plugin = plugin

    async def resolve_async(self, next_: Callable[..., Awaitable[Any]], source: Any, info: Info, **kwargs: Any) -> Any:
        await info.context.require_plugin(self.plugin)
        result = next_(source, info, **kwargs)
        # A subscription resolver hands back an async generator, which is not awaited.
        return await result if inspect.isawaitable(result) else result


def _root_fields(cls: type) -> dict[str, Any]:
    definition = getattr(cls, "__strawberry_definition__", None)
    if definition is None:
        raise TypeError(f"{cls!r} is not a strawberry type")
    return {f.graphql_name or to_camel_case(f.python_name): f for f in definition.fields}


def _gate_root_type(plugin: LoadedPlugin, cls: type, kind: str, owners: dict[str, str]) -> None:
    prefix = camel_prefix(plugin.name)
    for name, field in _root_fields(cls).items():
        if not name.startswith(prefix):
            raise PluginLoadError(f"plugin {plugin.name!r}: {kind} field {name!r} must start with {prefix!r}")
        if name in owners:
            raise PluginLoadError(f"{kind} field {name!r} is defined by both {owners[name]!r} and {plugin.name!r}")
        owners[name] = plugin.name
        if field.base_resolver is None or not field.is_async:
            raise PluginLoadError(f"plugin {plugin.name!r}: {kind} field {name!r} needs an async resolver")
        if not any(isinstance(e, PluginGate) and e.plugin == plugin.name for e in field.extensions):
            field.extensions.append(PluginGate(plugin.name))


def _gate_node_type(cls: type, plugin: str) -> None:
    """Make node(id:) on a plugin's type obey the plugin's enablement too."""
    if cls.__dict__.get("__yunshegong_gated__") == plugin:
        return
    original = cls.resolve_nodes  # type: ignore[attr-defined]

    async def resolve_nodes(cls_: type, *, info: Info, node_ids: Iterable[str], required: bool = False) -> Any:
        try:
            await info.context.require_plugin(plugin)
        except DomainError as refused:
            if required or refused.code not in NOT_ADDRESSABLE:
                raise
            return [None for _ in node_ids]
        result = original(info=info, node_ids=node_ids, required=required)
        return await result if inspect.isawaitable(result) else result

    cls.resolve_nodes = classmethod(resolve_nodes)  # type: ignore[attr-defined]
    cls.__yunshegong_gated__ = plugin  # type: ignore[attr-defined]


def hardening(settings: Settings) -> list[Any]:
    """Extensions, as factories (one instance per request). Limits reject hostile documents during
    validation, before anything executes."""
    extensions: list[Any] = [
        RequestLifecycle,
        SafeErrors,
        # Front ends send the same few documents again and again: parse and validate each once.
        ParserCache,
        ValidationCache,
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: QueryDepthLimiter(max_depth=settings.max_query_depth),
        lambda: MaxAliasesLimiter(max_alias_count=settings.max_aliases),
        lambda: AddValidationRules([page_size_rule(settings.max_page_size)]),
    ]
    if not settings.introspection:
        extensions.append(DisableIntrospection)
    return extensions


def build_schema(settings: Settings | None = None, host: PluginHost | None = None) -> strawberry.Schema:
    settings = settings or Settings()
    core_query = type("CoreQueryFields", (CoreQuery,), node_fields())
    owners: dict[str, dict[str, str]] = {
        "query": dict.fromkeys(_root_fields(strawberry.type(core_query)), "core"),
        "mutation": {name: "core" for cls in CORE_MUTATIONS for name in _root_fields(cls)},
        "subscription": {},
    }
    parts: dict[str, list[type]] = {"query": [], "mutation": [], "subscription": []}
    extra_types: list[type] = []
    for plugin, contribution in host.graphql_contributions() if host else []:
        for kind in ("query", "mutation", "subscription"):
            cls = getattr(contribution, kind)
            if cls is not None:
                _gate_root_type(plugin, cls, kind, owners[kind])
                parts[kind].append(cls)
        extra_types.extend(contribution.types)

    query = strawberry.type(type("Query", (CoreQuery, *parts["query"]), node_fields()))
    mutation = strawberry.type(type("Mutation", (*CORE_MUTATIONS, *parts["mutation"]), {}))
    subscription = (
        strawberry.type(type("Subscription", tuple(parts["subscription"]), {})) if parts["subscription"] else None
    )
    use_codes(host.error_codes if host is not None else CORE_ERROR_CODES)
    try:
        schema = strawberry.Schema(
            query=query,
            mutation=mutation,
            subscription=subscription,
            types=extra_types,
            extensions=hardening(settings),
            scalar_overrides={datetime: datetime_scalar(settings.timezone)},  # type: ignore[dict-item]
            config=StrawberryConfig(
                auto_camel_case=True,
                # Suggestions ("did you mean …") would leak the schema that introspection hides.
                disable_field_suggestions=not settings.introspection,
                batching_config={"max_operations": settings.max_batch},
                scalar_map=SCALARS,
            ),
        )
    except DuplicatedTypeName as exc:
        names = [_owner_name(host, c) for c in (exc.first_cls, exc.second_cls)]
        raise PluginLoadError(f"{exc.message}: by {names[0]!r} and {names[1]!r}") from exc
    if host is not None:
        _check_plugin_types(schema, host)
    return schema


def _owner_name(host: PluginHost | None, cls: type | None) -> str:
    owner = host.owner_of(cls) if host is not None and cls is not None else None
    return owner.name if owner else "core"


def _check_plugin_types(schema: strawberry.Schema, host: PluginHost) -> None:
    for name, concrete in schema.schema_converter.type_map.items():
        origin = getattr(concrete.definition, "origin", None)
        if not isinstance(origin, type):
            continue
        owner = host.owner_of(origin)
        if owner is None:
            continue
        if not name.startswith(pascal_prefix(owner.name)):
            raise PluginLoadError(f"plugin {owner.name!r}: type {name!r} must start with {pascal_prefix(owner.name)!r}")
        if issubclass(origin, relay.Node):
            _gate_node_type(origin, owner.name)
