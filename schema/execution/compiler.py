"""Compile a validated query operation into Python specialised to its selection set (graphql-jit's technique).

What the compiled code does is graphql-core 3.3's `Executor` (execute_fields, execute_field, complete_value and
its branches) unrolled for one operation: the fields are collected once, by graphql-core's own `collect_fields`
(so merging, ordering, fragments and @skip/@include are graphql-core's); per object type of the selection, one
generated function fills the result dict. What it leaves out is only per-field work that cannot change the
result:
- a *plain* field (strawberry's basic field: no resolver, no field extension, read with `getattr`) is read
  inline; its value takes graphql-core's exact completion, with a fast path for leaves;
- a Relay `id` whose type keeps strawberry's `resolve_id`/`resolve_typename` is encoded inline;
- `__typename` on an object type is a constant;
- no `Path` and no resolve info is built for a plain field unless an error or its completion needs one.
Every other field calls `field_def.resolve` exactly as graphql-core does (same resolve info, arguments
coerced by graphql-core's `get_argument_values`, strawberry's field extensions inside), so permission checks,
masking and audited reads run unchanged. Errors are located, propagated and collected by the executor's own
`handle_field_error`/`CollectedErrors`; awaitables are gathered as graphql-core gathers them.

Generated source contains only identifiers we make and Python attribute names taken from the schema (checked
to be identifiers); response names, type names and everything else from a document are constants.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable, Iterable
from types import CoroutineType, GeneratorType
from typing import TYPE_CHECKING, Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    OperationDefinitionNode,
    SelectionSetNode,
    is_abstract_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution.collect_fields import collect_fields, collect_subfields
from graphql.execution.executor import Executor, collect_iterator_awaitables, invalid_return_type_error
from graphql.execution.values import get_argument_values
from graphql.language import InlineFragmentNode, VariableNode
from graphql.pyutils import Path, Undefined, gather_with_cancel, is_iterable
from strawberry.relay import GlobalID, Node
from strawberry.types.field import StrawberryField

if TYPE_CHECKING:
    from schema.execution.executor import CompiledExecutionContext

complete_leaf_value = Executor.complete_leaf_value
_STRAWBERRY_CONVERTER = "strawberry.schema.schema_converter"
_UNSUPPORTED_DIRECTIVES = frozenset({"defer", "stream", "experimental_disableErrorPropagation"})


class CannotCompile(Exception):
    """The operation uses something the compiler does not cover: graphql-core runs it."""


class Plan:
    __slots__ = ("root",)

    def __init__(self, root: Callable[..., Any]) -> None:
        self.root = root


# --- what a value is ----------------------------------------------------------------------------------------

# Classes whose instances are neither awaitable, nor async iterables, nor exceptions: a plain field holding one
# completes synchronously (graphql-core checks each value; we check each class once).
_PLAIN_CLASSES: set[type] = {str, int, float, bool, type(None), list, tuple, dict}


def _plain_class(cls: type) -> bool:
    plain = not (
        issubclass(cls, (BaseException, CoroutineType, GeneratorType))
        or hasattr(cls, "__await__")
        or hasattr(cls, "__aiter__")
    )
    if plain:
        _PLAIN_CLASSES.add(cls)
    return plain


# Node classes whose `id` strawberry computes as GlobalID(<parent type>, str(getattr(root, <attr>))): class → attr.
_NODE_ID_ATTRS: dict[type, str | None] = {}
_NODE_ID_FUNC = Node.__dict__.get("_id")


def _node_id_attr(cls: type) -> str | None:
    attr: str | None = None
    if (
        isinstance(cls, type)
        and issubclass(cls, Node)
        and getattr(cls.resolve_id, "__func__", None) is Node.resolve_id.__func__  # type: ignore[attr-defined]
        and getattr(cls.resolve_typename, "__func__", None) is Node.resolve_typename.__func__  # type: ignore[attr-defined]
    ):
        try:
            attr = cls.resolve_id_attr()
        except Exception:
            attr = None
    _NODE_ID_ATTRS[cls] = attr
    return attr


def _strawberry_field(field_def: GraphQLField) -> StrawberryField | None:
    field = (field_def.extensions or {}).get("strawberry-definition")
    return field if isinstance(field, StrawberryField) else None


def _is_plain(field_def: GraphQLField) -> str | None:
    """The attribute a strawberry basic field reads (`getattr(source, python_name)`), or None."""
    field = _strawberry_field(field_def)
    resolve = field_def.resolve
    if (
        field is None
        or getattr(resolve, "__name__", "") != "_get_basic_result"
        or getattr(resolve, "__module__", "") != _STRAWBERRY_CONVERTER
        or field.base_resolver is not None
        or field.extensions
        or type(field).get_result is not StrawberryField.get_result
        or field.default_resolver is not getattr
    ):
        return None
    return field.python_name


def _is_node_id(field_def: GraphQLField) -> bool:
    field = _strawberry_field(field_def)
    if field is None or field.base_resolver is None or field.extensions or field.is_async:
        return False
    wrapped = field.base_resolver.wrapped_func
    return wrapped is _NODE_ID_FUNC or getattr(wrapped, "__func__", None) is getattr(_NODE_ID_FUNC, "__func__", 0)


# A resolver that needs only its parent and the request's context may be declared in the field's strawberry
# metadata under this key (schema.prefetch.reference does): called as fn(source, context) in place of
# strawberry's resolver chain (an Info object, argument conversion, the extension chain: most of the cost of a
# nested reference), for a field without arguments, field extensions or permission classes. The field's own
# resolver must give the same answer (reference's is this function called with info.context).
DIRECT_RESOLVER = "yunshegong.direct_resolver"


def _direct_resolver(field_def: GraphQLField) -> Callable[[Any, Any], Any] | None:
    field = _strawberry_field(field_def)
    if field is None or field_def.args or field.extensions or field.permission_classes:
        return None
    direct = (field.metadata or {}).get(DIRECT_RESOLVER)
    return direct if callable(direct) else None


def _serializer(leaf: Any) -> Callable[[Any], Any]:
    """`leaf.coerce_output_value`, by dictionary for strawberry's enums (whose own looks for the member among
    all values, one comparison each: the costliest part of serialising a page of statuses and urgencies)."""
    wrapped = getattr(leaf, "wrapped_cls", None)
    coerce = leaf.coerce_output_value
    if wrapped is None or not isinstance(leaf, GraphQLEnumType):
        return coerce
    names: dict[Any, str] = {}
    try:
        for name, value in leaf.values.items():
            names.setdefault(value.value, name)
    except TypeError:  # an unhashable value: keep strawberry's search
        return coerce

    def serialize(value: Any) -> Any:
        if isinstance(value, wrapped):
            try:
                name = names.get(value.value)
            except TypeError:
                return coerce(value)
            if name is not None:
                return name
        return coerce(value)

    return serialize


def _strawberry_is_type_of(fn: Any) -> bool:
    # strawberry's own is_type_of (an isinstance test) ignores the resolve info it is given.
    return getattr(fn, "__module__", "") == _STRAWBERRY_CONVERTER and getattr(fn, "__name__", "") == "is_type_of"


def directive_variables(
    operation: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode]
) -> tuple[str, ...]:
    """Variables that @skip/@include read: the fields collected depend on their values."""
    found: set[str] = set()

    def walk(selection_set: SelectionSetNode | None) -> None:
        for selection in selection_set.selections if selection_set else ():
            for directive in selection.directives or ():
                for argument in directive.arguments or ():
                    if isinstance(argument.value, VariableNode):
                        found.add(argument.value.name.value)
            if isinstance(selection, (FieldNode, InlineFragmentNode)):
                walk(selection.selection_set)

    walk(operation.selection_set)
    for fragment in fragments.values():
        walk(fragment.selection_set)
    return tuple(sorted(found))


# --- the compiler -------------------------------------------------------------------------------------------


class FieldPlan:
    """One response key of an object type's selection: what graphql-core's execute_field does for it."""

    __slots__ = (
        "complete",
        "fdl",
        "field_def",
        "field_name",
        "has_args",
        "key",
        "needs_info",
        "node0",
        "nodes",
        "null_message",
        "parent_name",
        "parent_type",
        "resolve",
        "return_type",
    )

    def __init__(self, parent_type: GraphQLObjectType, key: str, fdl: list[Any], field_def: GraphQLField) -> None:
        self.parent_type = parent_type
        self.parent_name = parent_type.name
        self.key = key
        self.fdl = fdl
        self.nodes = [d.node for d in fdl]
        self.node0 = self.nodes[0]
        self.field_def = field_def
        self.field_name = self.node0.name.value
        self.return_type = field_def.type
        self.resolve = field_def.resolve
        self.has_args = bool(field_def.args or self.node0.arguments)
        self.needs_info = False
        self.null_message = f"Cannot return null for non-nullable field {parent_type}.{self.field_name}."
        self.complete: Callable[..., Any] = _unset

    def info(self, ex: CompiledExecutionContext, path: Path) -> Any:
        return ex.build_resolve_info(self.field_def, self.nodes, self.parent_type, path)

    def execute(self, ex: CompiledExecutionContext, source: Any, parent_path: Path | None) -> Any:
        """Executor.execute_field."""
        path = Path(parent_path, self.key, self.parent_name)
        resolve_fn = self.resolve or ex.field_resolver
        info = ex.build_resolve_info(self.field_def, self.nodes, self.parent_type, path)
        try:
            args = (
                get_argument_values(self.field_def, self.node0, ex.variable_values, None, ex.hide_suggestions)
                if self.has_args
                else {}
            )
            result = resolve_fn(source, info, **args)
        except Exception as raw_error:
            ex.handle_field_error(raw_error, self.return_type, self.fdl, path)
            return None
        return self._complete_resolved(ex, info, path, result)

    def resolved(self, ex: CompiledExecutionContext, parent_path: Path | None, result: Any) -> Any:
        """Executor.execute_field for a plain field whose value (`result`) was read inline but is not plain."""
        path = Path(parent_path, self.key, self.parent_name)
        info = ex.build_resolve_info(self.field_def, self.nodes, self.parent_type, path)
        return self._complete_resolved(ex, info, path, result)

    def _complete_resolved(self, ex: CompiledExecutionContext, info: Any, path: Path, result: Any) -> Any:
        """The rest of Executor.execute_field once the resolver returned `result`."""
        try:
            if ex.is_awaitable(result):
                return self.complete_awaitable(ex, info, path, result)
            completed = self.complete(ex, info, path, result)
            if ex.is_awaitable(completed):
                return self.await_completed(ex, completed, path)
        except Exception as raw_error:
            ex.handle_field_error(raw_error, self.return_type, self.fdl, path)
            return None
        return completed

    def error(self, ex: CompiledExecutionContext, raw_error: Exception, parent_path: Path | None) -> None:
        """Executor.handle_field_error: raises for a non-null field, else records the error (the field is null)."""
        ex.handle_field_error(raw_error, self.return_type, self.fdl, Path(parent_path, self.key, self.parent_name))

    async def complete_awaitable(self, ex: CompiledExecutionContext, info: Any, path: Path, result: Any) -> Any:
        """Executor.complete_awaitable_value (no abort signal)."""
        try:
            resolved = await result
            completed = self.complete(ex, info, path, resolved)
            if ex.is_awaitable(completed):
                completed = await completed
        except Exception as raw_error:
            ex.handle_field_error(raw_error, self.return_type, self.fdl, path)
            completed = None
        return completed

    async def await_completed(self, ex: CompiledExecutionContext, completed: Any, path: Path) -> Any:
        try:
            return await completed
        except Exception as raw_error:
            ex.handle_field_error(raw_error, self.return_type, self.fdl, path)
            return None


def _unset(*_args: Any) -> Any:  # pragma: no cover — replaced before use
    raise AssertionError("field plan used before it was compiled")


async def _gather_fields(results: dict[str, Any], awaitable_keys: list[str]) -> dict[str, Any]:
    """The tail of Executor.execute_fields."""
    if len(awaitable_keys) == 1:
        key = awaitable_keys[0]
        results[key] = await results[key]
    else:
        awaited = await gather_with_cancel(*(results[key] for key in awaitable_keys))
        results.update(zip(awaitable_keys, awaited, strict=True))
    return results


def _settle(ex: CompiledExecutionContext, results: dict[str, Any], awaitable_keys: list[str] | None) -> None:
    if awaitable_keys:
        ex.settle_in_background([results[key] for key in awaitable_keys])


class Compiler:
    def __init__(self, ex: CompiledExecutionContext) -> None:
        self.ex = ex
        self.schema = ex.schema
        self.functions = 0

    def collect_subfields(self, object_type: GraphQLObjectType, fdl: list[Any]) -> dict[str, list[Any]]:
        try:
            grouped, defers, _forbidden = collect_subfields(
                self.schema,
                self.ex.fragments,
                self.ex.variable_values,
                self.ex.operation,
                object_type,
                fdl,
                self.ex.hide_suggestions,
            )
        except RecursionError:
            raise CannotCompile("nested too deeply") from None
        if defers:
            raise CannotCompile("@defer")
        return grouped

    # -- value completion (Executor.complete_value and its branches), one closure per type of a field -------

    def completer(self, return_type: GraphQLOutputType, fp: FieldPlan, depth: int = 0) -> Callable[..., Any]:
        if is_non_null_type(return_type):
            return self.non_null_completer(return_type, fp, depth)
        if is_list_type(return_type):
            return self.list_completer(return_type, fp, depth)
        if is_leaf_type(return_type):
            return self.leaf_completer(return_type)
        if is_abstract_type(return_type):
            return self.abstract_completer(return_type, fp)
        if is_object_type(return_type):
            return self.object_completer(return_type, fp)
        raise CannotCompile(f"output type {return_type}")  # pragma: no cover

    def non_null_completer(self, return_type: GraphQLNonNull, fp: FieldPlan, depth: int) -> Callable[..., Any]:
        inner = self.completer(return_type.of_type, fp, depth)
        message = fp.null_message

        def complete_non_null(ex: Any, info: Any, path: Path, result: Any) -> Any:
            if isinstance(result, Exception):
                raise result
            completed = inner(ex, info, path, result)
            if completed is None:
                raise TypeError(message)
            return completed

        return complete_non_null

    def leaf_completer(self, return_type: Any) -> Callable[..., Any]:
        serialize = _serializer(return_type)

        def complete_leaf(_ex: Any, _info: Any, _path: Path, result: Any) -> Any:
            if isinstance(result, Exception):
                raise result
            if result is None or result is Undefined:
                return None
            serialized = serialize(result)
            if serialized is None or serialized is Undefined:
                # graphql-core's refusal, word for word.
                return complete_leaf_value(return_type, result)
            return serialized

        return complete_leaf

    def list_completer(self, return_type: GraphQLList, fp: FieldPlan, depth: int) -> Callable[..., Any]:
        item_type = return_type.of_type
        if depth or is_list_type(getattr(item_type, "of_type", item_type)):
            # graphql-core's async-iterable branch needs the resolve info (only lists of lists can meet one
            # below a plain field: a plain field's own value is checked for __aiter__ first).
            fp.needs_info = True
        item = self.completer(item_type, fp, depth + 1)
        fdl = fp.fdl
        not_iterable = f"Expected Iterable, but did not find one for field '{fp.parent_type}.{fp.field_name}'."

        def complete_list(ex: Any, info: Any, path: Path, result: Any) -> Any:
            if isinstance(result, Exception):
                raise result
            if result is None or result is Undefined:
                return None
            if ex.is_async_iterable(result):
                return ex.complete_list_value(return_type, fdl, info, path, result, None)
            if not is_iterable(result):
                raise GraphQLError(not_iterable)
            is_awaitable = ex.is_awaitable
            completed: list[Any] = []
            append = completed.append
            awaitable_indices: list[int] = []
            iterator = iter(result)
            index = 0
            try:
                for value in iterator:
                    item_path = Path(path, index, None)
                    if is_awaitable(value):
                        append(complete_awaitable_item(ex, info, item_path, value))
                        awaitable_indices.append(index)
                    else:
                        try:
                            completed_item = item(ex, info, item_path, value)
                            if is_awaitable(completed_item):
                                append(await_completed_item(ex, item_path, completed_item))
                                awaitable_indices.append(index)
                            else:
                                append(completed_item)
                        except Exception as raw_error:
                            ex.handle_field_error(raw_error, item_type, fdl, item_path)
                            append(None)
                    index += 1
            except Exception:
                pending = [completed[i] for i in awaitable_indices]
                pending.extend(collect_iterator_awaitables(iterator, is_awaitable))
                if pending:
                    ex.settle_in_background(pending)
                raise
            if not awaitable_indices:
                return completed
            return gather_items(completed, awaitable_indices)

        async def complete_awaitable_item(ex: Any, info: Any, item_path: Path, value: Any) -> Any:
            try:
                resolved = await value
                completed = item(ex, info, item_path, resolved)
                if ex.is_awaitable(completed):
                    completed = await completed
            except Exception as raw_error:
                ex.handle_field_error(raw_error, item_type, fdl, item_path)
                return None
            return completed

        async def await_completed_item(ex: Any, item_path: Path, completed: Any) -> Any:
            try:
                return await completed
            except Exception as raw_error:
                ex.handle_field_error(raw_error, item_type, fdl, item_path)
                return None

        async def gather_items(completed: list[Any], indices: list[int]) -> list[Any]:
            if len(indices) == 1:
                index = indices[0]
                completed[index] = await completed[index]
            else:
                awaited = await gather_with_cancel(*(completed[i] for i in indices))
                for index, value in zip(indices, awaited, strict=True):
                    completed[index] = value
            return completed

        return complete_list

    def abstract_completer(self, return_type: Any, fp: FieldPlan) -> Callable[..., Any]:
        fp.needs_info = True
        fdl = fp.fdl
        by_name = {
            object_type.name: self.object_completer(object_type, fp)
            for object_type in self.schema.get_possible_types(return_type)
        }
        resolve_type = return_type.resolve_type

        def complete_abstract(ex: Any, info: Any, path: Path, result: Any) -> Any:
            if isinstance(result, Exception):
                raise result
            if result is None or result is Undefined:
                return None
            runtime_type = (resolve_type or ex.type_resolver)(result, info, return_type)
            if ex.is_awaitable(runtime_type):

                async def await_complete_object_value() -> Any:
                    object_type = ex.ensure_valid_runtime_type(await runtime_type, return_type, fdl, info, result)
                    value = by_name[object_type.name](ex, info, path, result)
                    if ex.is_awaitable(value):
                        return await value
                    return value

                return await_complete_object_value()
            object_type = ex.ensure_valid_runtime_type(runtime_type, return_type, fdl, info, result)
            return by_name[object_type.name](ex, info, path, result)

        return complete_abstract

    def object_completer(self, object_type: GraphQLObjectType, fp: FieldPlan) -> Callable[..., Any]:
        fdl = fp.fdl
        function = self.object_function(object_type, self.collect_subfields(object_type, fdl))
        is_type_of = object_type.is_type_of
        if is_type_of is None:

            def complete_object(ex: Any, info: Any, path: Path, result: Any) -> Any:
                if isinstance(result, Exception):
                    raise result
                if result is None or result is Undefined:
                    return None
                return function(ex, result, path)

        elif _strawberry_is_type_of(is_type_of):

            def complete_object(ex: Any, info: Any, path: Path, result: Any) -> Any:
                if isinstance(result, Exception):
                    raise result
                if result is None or result is Undefined:
                    return None
                if not is_type_of(result, info):
                    raise invalid_return_type_error(object_type, result, fdl)
                return function(ex, result, path)

        else:
            fp.needs_info = True

            def complete_object(ex: Any, info: Any, path: Path, result: Any) -> Any:
                if isinstance(result, Exception):
                    raise result
                if result is None or result is Undefined:
                    return None
                matches = is_type_of(result, info)
                if ex.is_awaitable(matches):

                    async def execute_subfields_async() -> Any:
                        if not await matches:
                            raise invalid_return_type_error(object_type, result, fdl)
                        sub_fields = function(ex, result, path)
                        if ex.is_awaitable(sub_fields):
                            return await sub_fields
                        return sub_fields

                    return execute_subfields_async()
                if not matches:
                    raise invalid_return_type_error(object_type, result, fdl)
                return function(ex, result, path)

        return complete_object

    # -- one generated function per object type of the selection (Executor.execute_fields) ------------------

    def object_function(self, object_type: GraphQLObjectType, grouped: dict[str, list[Any]]) -> Callable[..., Any]:
        namespace: dict[str, Any] = {
            "Path": Path,
            "CT": CoroutineType,
            "PLAIN": _PLAIN_CLASSES,
            "plain_class": _plain_class,
            "UNDEF": Undefined,
            "gather_fields": _gather_fields,
            "settle": _settle,
            "NODE_ID_ATTRS": _NODE_ID_ATTRS,
            "node_id_attr": _node_id_attr,
            "GlobalID": GlobalID,
            "MISSING": _MISSING,
            "T": object_type.name,
        }
        lines = ["def run(ex, s, path):", "    r = {}", "    aw = None", "    try:"]
        emit = lines.append

        def constant(name: str, value: Any) -> str:
            namespace[name] = value
            return name

        for n, (response_key, fdl) in enumerate(grouped.items()):
            field_name = fdl[0].node.name.value
            field_def = self.schema.get_field(object_type, field_name)
            if field_def is None:  # graphql-core leaves the key out (Undefined)
                continue
            k = constant(f"k{n}", response_key)
            if field_name == "__typename":
                emit(f"        r[{k}] = T")
                continue
            fp = FieldPlan(object_type, response_key, fdl, field_def)
            fp.complete = self.completer(field_def.type, fp)
            f = constant(f"f{n}", fp)
            constant(f"x{n}", fp.execute)
            constant(f"e{n}", fp.error)
            attribute = _is_plain(field_def)
            direct = None if attribute is not None else _direct_resolver(field_def)
            non_null = is_non_null_type(field_def.type)
            if attribute is not None or direct is not None:
                if direct is not None:
                    read = f"{constant(f'd{n}', direct)}(s, ex.context_value)"
                elif attribute.isidentifier() and not keyword.iskeyword(attribute) and not attribute.startswith("__"):
                    read = f"s.{attribute}"
                else:
                    read = f"getattr(s, {constant(f'a{n}', attribute)})"
                emit("        try:")
                emit(f"            v = {read}")
                emit("            if v.__class__ in PLAIN or plain_class(v.__class__):")
                named = field_def.type.of_type if non_null else field_def.type
                if is_leaf_type(named):
                    ser = constant(f"s{n}", _serializer(named))
                    leaf = constant(f"l{n}", named)
                    constant("complete_leaf_value", complete_leaf_value)
                    emit("                if v is None:")
                    null_case = f"raise TypeError({constant(f'm{n}', fp.null_message)})" if non_null else "pass"
                    emit(f"                    {null_case}")
                    emit("                else:")
                    emit(f"                    c = {ser}(v)")
                    emit("                    if c is None or c is UNDEF:")
                    emit(f"                        c = complete_leaf_value({leaf}, v)")
                    emit("                    v = c")
                else:
                    constant(f"c{n}", fp.complete)
                    emit(f"                fp = Path(path, {k}, T)")
                    info = f"{f}.info(ex, fp)" if fp.needs_info else "None"
                    emit(f"                v = c{n}(ex, {info}, fp, v)")
                    emit("                if v.__class__ is CT:")
                    emit(f"                    v = {f}.await_completed(ex, v, fp)")
                emit("            else:")
                emit(f"                v = {f}.resolved(ex, path, v)")
                emit(f"            r[{k}] = v")
                emit("            if v.__class__ is CT:")
                emit(f"                aw = aw or []; aw.append({k})")
                emit("        except Exception as e:")
                emit(f"            r[{k}] = e{n}(ex, e, path)")
            elif _is_node_id(field_def) and is_leaf_type(getattr(field_def.type, "of_type", None)):
                ser = constant(f"s{n}", field_def.type.of_type.coerce_output_value)
                leaf = constant(f"l{n}", field_def.type.of_type)
                constant("complete_leaf_value", complete_leaf_value)
                emit("        try:")
                emit("            a = NODE_ID_ATTRS.get(s.__class__, MISSING)")
                emit("            if a is MISSING:")
                emit("                a = node_id_attr(s.__class__)")
                emit("            v = None if a is None else getattr(s, a, None)")
                emit("            if v is None:")
                emit(f"                v = x{n}(ex, s, path)")
                emit(f"                r[{k}] = v")
                emit("                if v.__class__ is CT:")
                emit(f"                    aw = aw or []; aw.append({k})")
                emit("            else:")
                emit(f"                c = {ser}(GlobalID(type_name=T, node_id=str(v)))")
                emit("                if c is None or c is UNDEF:")
                emit(f"                    c = complete_leaf_value({leaf}, GlobalID(type_name=T, node_id=str(v)))")
                emit(f"                r[{k}] = c")
                emit("        except Exception as e:")
                emit(f"            r[{k}] = e{n}(ex, e, path)")
            else:
                emit(f"        v = x{n}(ex, s, path)")
                emit(f"        r[{k}] = v")
                emit("        if v.__class__ is CT:")
                emit(f"            aw = aw or []; aw.append({k})")
        emit("        pass")
        emit("    except Exception:")
        emit("        settle(ex, r, aw)")
        emit("        raise")
        emit("    if aw is None:")
        emit("        return r")
        emit("    return gather_fields(r, aw)")
        self.functions += 1
        exec(compile("\n".join(lines), f"<compiled selection {self.functions}>", "exec"), namespace)
        return namespace["run"]


_MISSING = object()


def compile_operation(ex: CompiledExecutionContext) -> Plan:
    """The plan for the executor's operation with its current @skip/@include values; CannotCompile if the
    operation uses what the compiler does not cover."""
    operation = ex.operation
    for details in ex.fragments.values():
        if details.variable_signatures:
            raise CannotCompile("fragment variables")
    if _uses(operation, ex.fragment_definitions.values(), _UNSUPPORTED_DIRECTIVES):
        raise CannotCompile("incremental delivery directives")
    root_type = ex.schema.get_root_type(operation.operation)
    if root_type is None:
        raise CannotCompile("no root type")
    try:
        grouped, defers, _forbidden = collect_fields(
            ex.schema, ex.fragments, ex.variable_values, root_type, operation, ex.hide_suggestions
        )
    except RecursionError:
        raise CannotCompile("nested too deeply") from None
    if defers:
        raise CannotCompile("@defer")
    try:
        return Plan(Compiler(ex).object_function(root_type, grouped))
    except RecursionError:
        raise CannotCompile("nested too deeply") from None


def _uses(
    operation: OperationDefinitionNode, fragments: Iterable[FragmentDefinitionNode], names: frozenset[str]
) -> bool:
    def walk(selection_set: SelectionSetNode | None) -> bool:
        for selection in selection_set.selections if selection_set else ():
            if any(d.name.value in names for d in selection.directives or ()):
                return True
            if isinstance(selection, (FieldNode, InlineFragmentNode)) and walk(selection.selection_set):
                return True
        return False

    return any(d.name.value in names for d in operation.directives or ()) or any(
        walk(s) for s in (operation.selection_set, *(f.selection_set for f in fragments))
    )
