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
from graphql import GraphQLObjectType
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
from strawberry.types.base import StrawberryOptional
from strawberry.utils.str_converters import to_camel_case

from core.errors import CORE_ERROR_CODES, DomainError
from core.plugin_api import camel_prefix, pascal_prefix
from core.plugins import LoadedPlugin, PluginHost, PluginLoadError
from core.settings import Settings
from schema.errors import UserError, use_codes
from schema.execution import compiled_execution_context
from schema.extensions import RequestLifecycle, SafeErrors, page_size_rule
from schema.mutations.assignments import AssignmentMutations
from schema.mutations.auth import AuthMutations
from schema.mutations.communities import CommunityMutations
from schema.mutations.deliveries import DeliveryMutations
from schema.mutations.help_requests import HelpRequestMutations
from schema.mutations.imports import ImportMutations  # importRecords (uploads: yunshegong/http.py)
from schema.mutations.people import PeopleMutations
from schema.mutations.plugin_roles import PluginRoleMutations
from schema.mutations.plugins import PluginMutations
from schema.mutations.reference import ReferenceMutations
from schema.mutations.scheduling import SchedulingMutations
from schema.mutations.volunteers import VolunteerMutations
from schema.queries import CoreQuery, node_fields
from schema.scalars import MAX_YEAR, MIN_YEAR, SCALARS, input_scalars, literal_parser, parse_datetime
from schema.subscriptions import CoreSubscription
from schema.types.imports import UPLOAD_SCALARS  # the Upload scalar (importRecords)
from schema.types.nodes import NOT_ADDRESSABLE

CORE_MUTATIONS = (
    AuthMutations,
    CommunityMutations,
    VolunteerMutations,
    HelpRequestMutations,
    AssignmentMutations,
    ReferenceMutations,
    PluginMutations,
    PluginRoleMutations,
    SchedulingMutations,
    PeopleMutations,
    DeliveryMutations,
    ImportMutations,
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
            f"ISO 8601 date-time with offset and milliseconds; shown in the zone of the X-Timezone request header "
            f"(IANA name), else {zone}. Inputs must carry an offset and lie between the years {MIN_YEAR} and "
            f"{MAX_YEAR}."
        ),
        # One precision for every timestamp (milliseconds, as JavaScript's Date keeps them), whatever the value.
        serialize=lambda value: value.astimezone(CALLER_ZONE.get() or default).isoformat(timespec="milliseconds"),
        # Inputs: an offset required, years bounded, typed refusals (schema.scalars).
        parse_value=parse_datetime,
        parse_literal=literal_parser(parse_datetime),
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


class PluginFieldGate(FieldExtension):
    """A plugin's field on a core type answers null for callers whose organisation has not enabled the
    plugin (the core object itself stays readable: only the plugin's part of it is withheld)."""

    def __init__(self, plugin: str) -> None:
        super().__init__()
        self.plugin = plugin

    async def resolve_async(self, next_: Callable[..., Awaitable[Any]], source: Any, info: Info, **kwargs: Any) -> Any:
        try:
            await info.context.require_plugin(self.plugin)
        except DomainError as refused:
            if refused.code in NOT_ADDRESSABLE:
                return None
            raise
        result = next_(source, info, **kwargs)
        return await result if inspect.isawaitable(result) else result


# Core types a plugin may add fields to (GraphQLContribution.type_fields), by GraphQL name.
EXTENSIBLE_CORE_TYPES: dict[str, type] = {}
# Each core type's own fields, kept the first time a plugin extends it: every schema build starts from them,
# so that schemas built with other plugins (tests build many) do not inherit each other's fields.
_CORE_FIELDS: dict[type, list[Any]] = {}


def _extensible_core_types() -> dict[str, type]:
    if not EXTENSIBLE_CORE_TYPES:
        from schema.types.assignment import Assignment
        from schema.types.community import Community
        from schema.types.help_request import HelpRequest
        from schema.types.reference import Organization
        from schema.types.volunteer import Volunteer

        EXTENSIBLE_CORE_TYPES.update(
            {c.__name__: c for c in (HelpRequest, Volunteer, Community, Assignment, Organization)}
        )
    return EXTENSIBLE_CORE_TYPES


def _reset_core_type_fields() -> None:
    for cls, fields in _CORE_FIELDS.items():
        cls.__strawberry_definition__.fields = list(fields)  # type: ignore[attr-defined]


def _add_core_type_fields(plugin: LoadedPlugin, type_fields: dict[str, type], owners: dict[str, str]) -> None:
    """Add a plugin's fields to core types for this build: named with the plugin's camelCase prefix,
    nullable, async, and gated (null where the caller's organisation has not enabled the plugin)."""
    prefix = camel_prefix(plugin.name)
    targets = _extensible_core_types()
    for type_name, cls in type_fields.items():
        target = targets.get(type_name)
        if target is None:
            raise PluginLoadError(
                f"plugin {plugin.name!r}: cannot add fields to {type_name!r}; extensible core types: "
                f"{', '.join(sorted(targets))}"
            )
        definition = target.__strawberry_definition__  # type: ignore[attr-defined]
        _CORE_FIELDS.setdefault(target, list(definition.fields))
        for name, field in _root_fields(cls).items():
            where = f"{type_name}.{name}"
            if not name.startswith(prefix):
                raise PluginLoadError(f"plugin {plugin.name!r}: field {where!r} must start with {prefix!r}")
            if where in owners or name in {f.graphql_name or to_camel_case(f.python_name) for f in definition.fields}:
                raise PluginLoadError(
                    f"field {where!r} is defined by both {owners.get(where, 'core')!r} and {plugin.name!r}"
                )
            if field.base_resolver is None or not field.is_async:
                raise PluginLoadError(f"plugin {plugin.name!r}: field {where!r} needs an async resolver")
            if not isinstance(field.type, StrawberryOptional):
                raise PluginLoadError(f"plugin {plugin.name!r}: field {where!r} must be nullable (null where disabled)")
            owners[where] = plugin.name
            if not any(isinstance(e, PluginFieldGate) for e in field.extensions):
                field.extensions.append(PluginFieldGate(plugin.name))
            definition.fields.append(field)


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
        if kind == "mutation":
            _check_mutation_style(plugin, name, field)
        if not any(isinstance(e, PluginGate) and e.plugin == plugin.name for e in field.extensions):
            field.extensions.append(PluginGate(plugin.name))


def _check_mutation_style(plugin: LoadedPlugin, name: str, field: Any) -> None:
    """One API style for core and plugins: a mutation takes one argument, `input`, and answers a payload
    whose `errors` are `[UserError!]!` (build it with gql.payload, run it with gql.mutate)."""
    arguments = [a.python_name for a in field.arguments]
    if arguments != ["input"]:
        raise PluginLoadError(
            f"plugin {plugin.name!r}: mutation {name!r} must take one argument, `input` (an input object), "
            f"not {arguments}"
        )
    definition = getattr(field.type, "__strawberry_definition__", None)
    errors = next((f for f in definition.fields if f.python_name == "errors"), None) if definition else None
    if errors is None or getattr(errors.type, "of_type", None) is not UserError:
        raise PluginLoadError(
            f"plugin {plugin.name!r}: mutation {name!r} must answer a payload with `errors: [UserError!]!` "
            "(build it with gql.payload)"
        )


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
    validation (the cost, which needs the variables, just before execution): before any resolver runs."""
    from schema.cost import CostModel, QueryCost

    # The limits' validation rules, made once: strawberry's limiters make a new rule class per instance, and
    # the validation cache is keyed by the rule classes, so rules made per request never hit it (every request
    # was validated again: ~6 ms of CPU on a small mutation).
    rules = (
        *QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
        page_size_rule(settings.max_page_size),
    )
    extensions: list[Any] = [
        RequestLifecycle,
        SafeErrors,
        # Front ends send the same few documents again and again: parse and validate each once.
        ParserCache,
        ValidationCache,
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: AddValidationRules(list(rules)),
        # Cost needs the variables' values, so it is checked at execution (each operation of a batch alone),
        # still before any resolver runs; lists nobody declared count as a full page.
        lambda: QueryCost(
            budget=settings.max_query_cost,
            model=CostModel(plain_list=settings.max_page_size, max_page=settings.max_page_size),
        ),
    ]
    if not settings.introspection:
        extensions.append(DisableIntrospection)
    return extensions


class Schema(strawberry.Schema):
    """strawberry's schema, logging only unexpected errors as faults: a refusal (a DomainError such as sign in
    first, forbidden, not found; a syntax or validation error; a refused value) is an answer to the client
    and a lost database connection is an outage, so neither fills the log with tracebacks
    (schema.extensions.log_errors; strawberry's own logger would log each at ERROR)."""

    def process_errors(self, errors: list[Any], execution_context: Any = None) -> None:
        from schema.extensions import log_errors

        log_errors(errors, getattr(getattr(execution_context, "context", None), "request_id", "-"))


def build_schema(settings: Settings | None = None, host: PluginHost | None = None) -> strawberry.Schema:
    settings = settings or Settings()
    core_query = type("CoreQueryFields", (CoreQuery,), node_fields())
    owners: dict[str, dict[str, str]] = {
        "query": dict.fromkeys(_root_fields(strawberry.type(core_query)), "core"),
        "mutation": {name: "core" for cls in CORE_MUTATIONS for name in _root_fields(cls)},
        "subscription": dict.fromkeys(_root_fields(CoreSubscription), "core"),
        "type_fields": {},
    }
    parts: dict[str, list[type]] = {"query": [], "mutation": [], "subscription": []}
    extra_types: list[type] = []
    _reset_core_type_fields()
    for plugin, contribution in host.graphql_contributions() if host else []:
        for kind in ("query", "mutation", "subscription"):
            cls = getattr(contribution, kind)
            if cls is not None:
                _gate_root_type(plugin, cls, kind, owners[kind])
                parts[kind].append(cls)
        extra_types.extend(contribution.types)
        _add_core_type_fields(plugin, dict(getattr(contribution, "type_fields", {}) or {}), owners["type_fields"])

    query = strawberry.type(type("Query", (CoreQuery, *parts["query"]), node_fields()))
    mutation = strawberry.type(type("Mutation", (*CORE_MUTATIONS, *parts["mutation"]), {}))
    # Core's live fields (schema.subscriptions) and the plugins', served over graphql-transport-ws.
    subscription = strawberry.type(type("Subscription", (CoreSubscription, *parts["subscription"]), {}))
    use_codes(host.error_codes if host is not None else CORE_ERROR_CODES)
    try:
        schema = Schema(
            query=query,
            mutation=mutation,
            subscription=subscription,
            types=extra_types,
            extensions=hardening(settings),
            # Queries run compiled (schema.execution); the setting turns it off, e.g. to compare with graphql-core.
            execution_context_class=(compiled_execution_context() if settings.compiled_execution else None),
            scalar_overrides={**input_scalars(), datetime: datetime_scalar(settings.timezone)},  # type: ignore[dict-item]
            config=StrawberryConfig(
                auto_camel_case=True,
                # Suggestions ("did you mean …") would leak the schema that introspection hides.
                disable_field_suggestions=not settings.introspection,
                batching_config={"max_operations": settings.max_batch},
                scalar_map={**SCALARS, **UPLOAD_SCALARS},  # + Upload (importRecords: schema/types/imports.py)
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
        elif isinstance(concrete.implementation, GraphQLObjectType) and "id" in concrete.implementation.fields:
            raise PluginLoadError(
                f"plugin {owner.name!r}: type {name!r} has an id, so it must implement Node (subclass relay.Node "
                "with resolve_nodes; see gql.resolve_node_rows)"
            )
