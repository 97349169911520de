"""Load what a page's query asks for up front, so nested fields answer from loaded data without waiting.

A field made with `reference(...)` reads its value through one of the request's DataLoaders, keyed by an
attribute of its parent. When the loader already holds the value, the resolver returns it at once (no
coroutine, no future, no task: on a page of 100 requests with their community and offers that was ~400
awaitables and most of the execution time); otherwise it returns the loader's awaitable, which GraphQL
awaits as before — so a field answers the same whether or not anything was prefetched.

Every connection's `edges` and `nodes` call `prefetch` for their page (schema.types.common.Connection, so
core's lists and the plugins' alike): it reads the query's selection below the nodes and, for every
`reference` field asked for, loads the keys of the whole page in one batched statement, then does the same
for the level below with the rows just loaded. Nested connections (one per parent) resolve in the same
turn of the event loop, so their loads still batch into one statement per level.
The loaders apply the viewer's scope and row-level security as always; prefetching changes when a row is
read, never which. Fields the query does not select are not loaded; `@skip`/`@include` and type
conditions are not evaluated (loading a little more than needed is harmless, and cheaper than asking).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import strawberry
from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    SelectionSetNode,
    get_named_type,
)
from strawberry import Info
from strawberry.dataloader import DataLoader

from schema.execution.compiler import DIRECT_RESOLVER
from schema.loaders import Loader, Loaders

T = TypeVar("T")
R = TypeVar("R")

# The key under which a field's StrawberryField.metadata says how to load it.
PREFETCH = "yunshegong.prefetch"
# strawberry keeps the StrawberryField behind each GraphQLField in its extensions under this name.
_DEFINITION = "strawberry-definition"


@dataclass(frozen=True)
class Loads:
    """A field's value is `loader(loaders).load(parent.<key>)` (a None key answers None)."""

    loader: Callable[[Loaders], DataLoader[Any, Any]]
    key: str


_NOTHING: dict[Any, Any] = {}


def now_or_later(loader: DataLoader[Any, T], key: Hashable) -> T | Awaitable[T]:
    """The loaded value when the loader already has it, else the loader's awaitable (which also reports a
    failed load to this field exactly as awaiting it would)."""
    values = getattr(loader, "values", _NOTHING)  # a schema.loaders.Loader filled by prefetch
    if key in values:
        return values[key]
    future = loader.cache_map.get(key)
    if future is not None and future.done() and not future.cancelled() and future.exception() is None:
        return future.result()
    return loader.load(key)


def then(value: T | Awaitable[T], convert: Callable[[T], R]) -> R | Awaitable[R]:
    """`convert(value)`, now if the value is here, else once it arrives."""
    if inspect.isawaitable(value):
        return _later(value, convert)
    return convert(value)


async def _later(value: Awaitable[T], convert: Callable[[T], R]) -> R:
    return convert(await value)


def reference(
    loader: Callable[[Loaders], DataLoader[Any, Any]],
    key: str,
    convert: Callable[[Any], Any],
    *,
    many: bool = False,
    description: str | None = None,
) -> Any:
    """A field whose value comes through `loader`, keyed by the parent's `key` attribute, converted by
    `convert` (row → GraphQL object; with `many`, applied to each row of the list). Declare its GraphQL
    type on the class: `community: Community = reference(lambda ld: ld.community, "community_id", …)`.
    Prefetched by `prefetch` when a connection above it is asked for it."""

    def convert_value(value: Any) -> Any:
        if value is None:
            return None
        return [convert(row) for row in value] if many else convert(value)

    def resolve_direct(root: Any, context: Any) -> Any:
        pk = getattr(root, key)
        if pk is None:
            return None
        source = loader(context.loaders)
        values = getattr(source, "values", _NOTHING)
        if pk in values:
            # Prefetched: converted once per request and key (a page's requests share a few communities, its
            # offers a few volunteers), the same object for every parent that refers to it.
            converted = source.converted.get(convert_value)
            if converted is None:
                converted = source.converted[convert_value] = {}
            if pk in converted:
                return converted[pk]
            value = converted[pk] = convert_value(values[pk])
            return value
        return then(now_or_later(source, pk), convert_value)

    def resolve(root: Any, info: Info) -> Any:
        return resolve_direct(root, info.context)

    # The compiled executor calls resolve_direct itself (no Info needed): the same answer, without strawberry's
    # per-call resolver machinery.
    metadata = {PREFETCH: Loads(loader, key), DIRECT_RESOLVER: resolve_direct}
    return strawberry.field(resolver=resolve, description=description, metadata=metadata)


def flag(loader: Callable[[Loaders], DataLoader[Any, Any]], key: str = "id") -> dict[str, Loads]:
    """Metadata for a hand-written resolver that reads `loader` by the parent's `key` (with `now_or_later`):
    `@strawberry.field(metadata=flag(lambda ld: ld.holds_accepted))` lets `prefetch` load it for a page."""
    return {PREFETCH: Loads(loader, key)}


async def prefetch(info: Info, items: Sequence[Any], path: Sequence[str] = ()) -> None:
    """Load, for all `items` at once, what the query selects below them: `items` are the values of the
    field `info` resolves, or of the field reached from it by `path` (a connection's `edges` → `node`)."""
    if not items:
        return
    raw = info._raw_info
    schema: GraphQLSchema = raw.schema
    fragments = raw.fragments
    field_nodes = list(raw.field_nodes)
    gql_type = get_named_type(raw.return_type)
    for step in path:
        if not isinstance(gql_type, GraphQLObjectType) or step not in gql_type.fields:
            return
        field_nodes = _subfields(field_nodes, fragments).get(step, [])
        gql_type = get_named_type(gql_type.fields[step].type)
    if not field_nodes or not isinstance(gql_type, GraphQLObjectType):
        return
    try:
        await _load_level(schema, info.context.loaders, fragments, gql_type.name, list(items), field_nodes, depth=0)
    except Exception:
        # A failed load stays cached in its loader: each field that needs it reports it, as without prefetch.
        return


# Deeper than any page we serve; only a guard against a schema whose references loop.
_MAX_DEPTH = 8


async def _load_level(
    schema: GraphQLSchema,
    loaders: Loaders,
    fragments: dict[str, Any],
    type_name: str,
    parents: list[Any],
    field_nodes: list[FieldNode],
    depth: int,
) -> None:
    gql_type = schema.get_type(type_name)
    if depth > _MAX_DEPTH or not isinstance(gql_type, GraphQLObjectType) or not parents:
        return
    for name, nodes in _subfields(field_nodes, fragments).items():
        field = gql_type.fields.get(name)
        definition = (field.extensions or {}).get(_DEFINITION) if field is not None else None
        loads = (getattr(definition, "metadata", None) or {}).get(PREFETCH)
        if field is None or not isinstance(loads, Loads):
            continue
        keys = list(dict.fromkeys(k for k in (getattr(p, loads.key, None) for p in parents) if k is not None))
        if not keys:
            continue
        loader = loads.loader(loaders)
        values = await (loader.fill(keys) if isinstance(loader, Loader) else loader.load_many(keys))
        children = [row for value in values for row in _rows(value)]
        child_type = get_named_type(field.type)
        if children and any(n.selection_set for n in nodes):
            await _load_level(schema, loaders, fragments, child_type.name, children, nodes, depth + 1)


def _rows(value: Any) -> Iterable[Any]:
    if value is None or isinstance(value, bool | int | float | str):
        return ()
    if isinstance(value, list):
        return value
    return (value,)


def _subfields(field_nodes: Iterable[FieldNode], fragments: dict[str, Any]) -> dict[str, list[FieldNode]]:
    """The fields selected below `field_nodes`, by field name (aliases merged), through fragments."""
    found: dict[str, list[FieldNode]] = {}

    def visit(selection_set: SelectionSetNode | None, seen: frozenset[str]) -> None:
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                found.setdefault(selection.name.value, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                visit(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is not None and name not in seen:
                    visit(fragment.selection_set, seen | {name})

    for node in field_nodes:
        visit(node.selection_set, frozenset())
    return found
