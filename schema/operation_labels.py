"""What a GraphQL operation is counted under on /metrics: the root fields it selects, as the schema it ran
in names them (`helpRequests`, `submitHelpRequest`, `__typename`), never the operation name the client chose.

A client's operation name is free text: `query Zhang_San_13812345678` would put personal data into a label,
and the first names to arrive would take the places real operations need. Root field names come from the
schema, a bounded set known in advance, and say what the operation did. An operation selecting several root
fields is labelled by their names sorted and joined with `,` (at most MAX_JOINED names, and at most
COMBINATION_LABELS such combinations per process; beyond either it is `several` / `other`). A document that
never ran (unparsable, invalid, naming an operation it lacks) is `invalid`.

The label is found while the schema executes (OperationLabel, a strawberry extension the composition root
adds to the schema: it sees the document strawberry parsed, so nothing is parsed twice) and kept in a context
variable of the task running the operation; `record_graphql_operation`, called in that task once the
operation answered, counts it. The HTTP view and the websocket transport both call it.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Iterable, Iterator

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLSchema,
    InlineFragmentNode,
    SelectionSetNode,
)
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension

from core.observability import metrics
from core.observability.metrics import OTHER, LabelFolder

INVALID = "invalid"
SEVERAL = "several"
MAX_JOINED = 3
COMBINATION_LABELS = 100
# Fields every root type answers without declaring them (introspection).
META_FIELDS = frozenset({"__typename", "__schema", "__type"})

# Only combinations of names the schema declares reach it; the folder bounds how many.
_combination_label = LabelFolder(re.compile(r"[A-Za-z_][A-Za-z0-9_,]*"), COMBINATION_LABELS)

_LABEL: contextvars.ContextVar[str] = contextvars.ContextVar("yunshegong_operation_label", default=INVALID)


def _root_field_names(
    selection_set: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode], seen: set[str]
) -> Iterator[str]:
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection.name.value  # the field, not the client's alias
        elif isinstance(selection, InlineFragmentNode):
            yield from _root_field_names(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in seen:  # a cycle is invalid, but never loop on one
                seen.add(name)
                yield from _root_field_names(fragment.selection_set, fragments, seen)


def operation_label(schema: GraphQLSchema, document: DocumentNode | None, operation_name: str | None) -> str:
    """The label of the operation `operation_name` of `document` (the only one when None) in `schema`."""
    if document is None:
        return INVALID
    operation = get_operation_ast(document, operation_name)
    root = schema.get_root_type(operation.operation) if operation is not None else None
    if operation is None or root is None:
        return INVALID
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    names = sorted(set(_root_field_names(operation.selection_set, fragments, set())))
    if not names:
        return INVALID
    if any(name not in root.fields and name not in META_FIELDS for name in names):
        return OTHER  # not a field of this schema: a document that was not validated
    if len(names) == 1:
        return names[0]
    if len(names) > MAX_JOINED:
        return SEVERAL
    return _combination_label(",".join(names))


class OperationLabel(SchemaExtension):
    """Labels each operation the schema runs (see the module): `invalid` until it executes, then its root
    fields. The label lives in the running task's context, where record_graphql_operation reads it."""

    def on_operation(self) -> Iterator[None]:
        _LABEL.set(INVALID)
        yield

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        _LABEL.set(operation_label(context.schema._schema, context.graphql_document, context.operation_name))
        yield


def current_operation_label() -> str:
    return _LABEL.get()


def record_graphql_operation(seconds: float, codes: Iterable[str], *, label: str | None = None) -> str:
    """Count one GraphQL operation: one run, its duration, and one error per code (result_codes). Call it
    in the task that ran the operation through the schema, after it answered: the label is the one the
    schema's OperationLabel found for it (or `label`, when given). The label is consumed, so an operation
    that never reaches the schema afterwards counts as `invalid`, not as its predecessor. Returns the label."""
    label = label or _LABEL.get()
    _LABEL.set(INVALID)
    metrics.OPERATIONS.labels(label).inc()
    metrics.OPERATION_SECONDS.labels(label).observe(seconds)
    for code in codes:
        metrics.ERRORS.labels(label, metrics.code_label(code)).inc()
    return label
