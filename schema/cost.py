"""Query cost: how many objects an operation can produce, refused before any resolver runs when over budget.

Depth, alias and token limits bound the document, not the answer: three nested connections of 200 fit every
one of them and still ask for millions of objects. The cost multiplies page sizes through the nesting:

- every composite value (object, interface, union) counts 1 per time it is produced; scalars count 0;
- a field with a `first` argument is a page: a list field produces `first` items, an object field (a
  connection, the coordinator's queue) passes `first` down as the size of the lists directly inside it
  (`edges`, `nodes`, ...). Absent, `first` counts as the default page size; above the largest page, as the
  largest page (the resolver refuses it with PAGE_SIZE_EXCEEDED). This is structural, so plugin
  connections are costed without registering anything;
- a field with an `ids` list argument (`nodes(ids:)`) produces as many items as it names;
- any other list counts with its declared size: a strawberry field's `metadata={"cost_list_size": n}`, else
  `LIST_SIZES` below, else the assumed size (the deployment's largest page);
- fragments and inline fragments count where they are spread (each spread again, each alias separately: the
  count never undercounts; branches of an abstract type are added, not maxed), `@skip`/`@include` are
  honoured, introspection (`__schema`, `__type`) counts 0: the schema bounds it.

It runs at execution, with the operation's coerced variables (`first: $n` counts with n): a validation rule
sees only literals and is cached per document. Each operation of a batch is executed, and so costed, on its
own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLIncludeDirective,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSkipDirective,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Undefined,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
    is_composite_type,
    is_list_type,
    type_from_ast,
)
from graphql.execution.values import VariableValues, get_directive_values, get_variable_values
from graphql.utilities.coerce_input_value import coerce_input_literal
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionResult

from core.services.pagination import DEFAULT_PAGE_SIZE
from schema.errors import Refusal

# Declared sizes of plain lists, by `Type.field` or by item type: what a real record holds, so that a normal
# page (requests with their assignments and history) is costed as what it is, not as 200 of each.
LIST_SIZES: dict[str, int] = {
    # Offers on a request: most need 1-4 volunteers, plus a few declined or expired offers. 20 is more than
    # almost any request holds, and makes back-references (assignments → request → assignments …), which
    # multiply real rows without any connection, cost what they could: two round trips on a page of five
    # are refused. (Not a hard bound: a request may hold up to 100 active offers; see the issue-12 note.)
    "HelpRequest.assignments": 20,
    "HelpRequest.history": 20,
    # At most one social worker and two volunteers (LIAISON_TEAM_LIMITS).
    "Community.liaisons": 3,
    "Volunteer.credentials": 10,
    "Volunteer.trainings": 10,
    # One component per matching criterion.
    "ScoreComponent": 10,
    # A mutation's payload errors: one per input field at most.
    "UserError": 10,
    "PluginPermission": 20,
}
# Key a strawberry field may carry in its `metadata` to declare its plain list's size.
LIST_SIZE_KEY = "cost_list_size"
# Costs are reported as JSON numbers: beyond this, "more than" is all a client needs to know.
MAX_REPORTED_COST = 2**53 - 1


@dataclass(frozen=True)
class CostModel:
    default_page: int = DEFAULT_PAGE_SIZE
    # The assumed size of a list nobody declared.
    plain_list: int = 200
    # `first:` above the largest page counts as the largest page: the resolver refuses it (PAGE_SIZE_EXCEEDED,
    # the more precise answer) rather than produce it.
    max_page: int = 200
    sizes: Mapping[str, int] = field(default_factory=lambda: dict(LIST_SIZES))


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    model: CostModel | None = None,
) -> int | None:
    """The cost of the operation `operation_name` selects, with these variables; None when the operation or
    its variables are invalid (execution refuses those itself, before any resolver)."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return None
    coerced = get_variable_values(schema, operation.variable_definitions or (), dict(variables or {}))
    if not isinstance(coerced, VariableValues):
        return None
    root = schema.get_root_type(operation.operation)
    if root is None:
        return None
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    return _Counter(schema, fragments, coerced, model or CostModel()).selection(operation.selection_set, root, None)


class _Counter:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: VariableValues,
        model: CostModel,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.model = model
        # A fragment's cost depends only on the page size handed to it: memoised, so that fragments spreading
        # each other twice over cannot make the count itself exponential.
        self.memo: dict[tuple[str, int | None], int] = {}

    def selection(self, selection_set: SelectionSetNode, parent: Any, page: int | None) -> int:
        total = 0
        for node in selection_set.selections:
            if not self._included(node):
                continue
            if isinstance(node, FieldNode):
                total += self._field(node, parent, page)
            elif isinstance(node, InlineFragmentNode):
                inner = type_from_ast(self.schema, node.type_condition) if node.type_condition else parent
                total += self.selection(node.selection_set, inner or parent, page)
            elif isinstance(node, FragmentSpreadNode):
                total += self._spread(node.name.value, page)
        return total

    def _spread(self, name: str, page: int | None) -> int:
        key = (name, page)
        if key not in self.memo:
            self.memo[key] = 0  # a cycle (validation refuses them) counts once, not forever
            fragment = self.fragments.get(name)
            if fragment is not None:
                inner = type_from_ast(self.schema, fragment.type_condition)
                self.memo[key] = self.selection(fragment.selection_set, inner, page) if inner else 0
        return self.memo[key]

    def _field(self, node: FieldNode, parent: Any, page: int | None) -> int:
        name = node.name.value
        if name.startswith("__") or node.selection_set is None:
            return 0  # introspection (bounded by the schema) and leaves
        if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return 0
        definition = parent.fields.get(name)
        if definition is None:
            return 0
        item = get_named_type(definition.type)
        if not is_composite_type(item):
            return 0
        first = self._first(definition, node)
        if is_list_type(get_nullable_type(definition.type)):
            size = first if first is not None else self._list_size(parent.name, name, definition, node, page)
            inner_page = None
        else:
            size, inner_page = 1, first
        return size * (1 + self.selection(node.selection_set, item, inner_page))

    def _first(self, definition: GraphQLField, node: FieldNode) -> int | None:
        if "first" not in definition.args:
            return None
        value = self._argument(definition, node, "first")
        return min(max(0, value), self.model.max_page) if isinstance(value, int) else self.model.default_page

    def _list_size(self, parent: str, name: str, definition: GraphQLField, node: FieldNode, page: int | None) -> int:
        if "ids" in definition.args:
            ids = self._argument(definition, node, "ids")
            if isinstance(ids, list):
                return len(ids)
        if page is not None:
            return page
        strawberry_field = (definition.extensions or {}).get("strawberry-definition")
        declared = getattr(strawberry_field, "metadata", None) or {}
        if isinstance(declared.get(LIST_SIZE_KEY), int):
            return int(declared[LIST_SIZE_KEY])
        sizes = self.model.sizes
        item = get_named_type(definition.type).name
        return sizes.get(f"{parent}.{name}", sizes.get(item, self.model.plain_list))

    def _argument(self, definition: GraphQLField, node: FieldNode, name: str) -> Any:
        argument = definition.args[name]
        given = next((a for a in node.arguments or () if a.name.value == name), None)
        if given is None:
            return None if argument.default_value is Undefined else argument.default_value
        value = coerce_input_literal(given.value, argument.type, self.variables)
        return None if value is Undefined else value

    def _included(self, node: Any) -> bool:
        try:
            skip = get_directive_values(GraphQLSkipDirective, node, self.variables)
            include = get_directive_values(GraphQLIncludeDirective, node, self.variables)
        except GraphQLError:
            return True  # a malformed directive: execution refuses it; count the selection meanwhile
        return not (skip and skip.get("if") is True) and not (include and include.get("if") is False)


def too_costly(cost: int, budget: int, operation: OperationDefinitionNode | None = None) -> GraphQLError:
    reported = min(cost, MAX_REPORTED_COST)
    return Refusal(
        "This query may produce {cost} objects; the budget is {budget}. Ask for smaller pages (`first:`) "
        "or nest fewer lists.",
        code="QUERY_TOO_COSTLY",
        nodes=[operation] if operation is not None else None,
        extensions={"cost": reported, "budget": budget},
        cost=reported,
        budget=budget,
    )


class QueryCost(SchemaExtension):
    """Refuses an operation whose cost exceeds the budget, before any resolver runs (QUERY_TOO_COSTLY, with
    `cost` and `budget` in the error's extensions)."""

    def __init__(self, *, budget: int, model: CostModel | None = None) -> None:
        super().__init__()
        self.budget = budget
        self.model = model or CostModel()

    def on_execute(self) -> Iterator[None]:  # type: ignore[override]
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            schema = context.schema._schema
            cost = operation_cost(schema, document, context.operation_name, context.variables, self.model)
            if cost is not None and cost > self.budget:
                operation = get_operation_ast(document, context.operation_name)
                error = too_costly(cost, self.budget, operation)
                if operation is not None and operation.operation is OperationType.SUBSCRIPTION:
                    # The subscription path turns an error raised here into its one result.
                    raise error
                # A result set before execution replaces it: no resolver runs. strawberry's own result type,
                # not graphql-core's, so that the refusal is not logged as a fault of the service.
                context.result = ExecutionResult(data=None, errors=[error])
        yield
