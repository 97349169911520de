"""The execution context strawberry hands to graphql-core: runs a query's compiled plan when there is one, else
graphql-core's own executor (the choice is made before anything runs)."""

from __future__ import annotations

import dataclasses
from collections import Counter, OrderedDict
from types import CoroutineType
from typing import Any, ClassVar

from graphql import GraphQLError, OperationType
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema.execution.compiler import CannotCompile, Plan, compile_operation, directive_variables


@dataclasses.dataclass
class ExecutionStats:
    """What ran how, for the benchmark and the tests: a silent slowdown (a document the compiler stopped
    covering) shows up as fallbacks with their reasons."""

    compiled: int = 0  # operations run by compiled code
    first_uses: int = 0  # operations run by graphql-core before their plan was worth compiling
    fallbacks: int = 0  # operations run by graphql-core because the compiler does not cover them
    compilations: int = 0
    reasons: Counter[str] = dataclasses.field(default_factory=Counter)

    def reset(self) -> None:
        self.compiled = self.first_uses = self.fallbacks = self.compilations = 0
        self.reasons.clear()


class _NotCompilable:
    def __init__(self, reason: str) -> None:
        self.reason = reason


class CompiledExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Use through `compiled_execution_context()`, which gives each schema its own cache and counters."""

    plans: ClassVar[OrderedDict[Any, Plan | _NotCompilable]]
    seen: ClassVar[OrderedDict[Any, list[Any]]]
    stats: ClassVar[ExecutionStats]
    compile_after: ClassVar[int] = 2
    max_plans: ClassVar[int] = 256

    def execute_operation(self, serially: bool | None = None) -> Any:
        plan = self._plan(serially)
        if plan is None:
            return super().execute_operation(serially)
        self.stats.compiled += 1
        return _run(self, plan)

    def _fallback(self, reason: str) -> None:
        self.stats.fallbacks += 1
        self.stats.reasons[reason] += 1

    def _plan(self, serially: bool | None) -> Plan | None:
        """The compiled plan for this operation, or None to let graphql-core run it (decided up front)."""
        operation = self.operation
        if operation.operation is not OperationType.QUERY or serially:
            self._fallback(operation.operation.value)
            return None
        manager = self.middleware_manager
        if manager is not None and manager._middleware_resolvers is not None:
            # A schema extension with a `resolve` hook must see every field.
            self._fallback("middleware")
            return None
        if self.abort_signal is not None or self.hooks is not None or not self.error_propagation:
            self._fallback("execution options")
            return None
        if operation.loc is None:
            self._fallback("no source")
            return None
        name = operation.name.value if operation.name else None
        document_key = (operation.loc.source.body, name)
        seen = self.seen.get(document_key)
        if seen is None:
            seen = [0, directive_variables(operation, self.fragment_definitions)]
            self.seen[document_key] = seen
            if len(self.seen) > 4 * self.max_plans:
                self.seen.popitem(last=False)
        seen[0] += 1
        # @skip/@include with variables select the fields: one plan per combination of their values.
        coerced = self.variable_values.coerced
        key = (document_key, tuple(coerced.get(v) for v in seen[1]))
        plan = self.plans.get(key)
        if plan is None:
            if seen[0] < self.compile_after:
                self.stats.first_uses += 1
                return None
            try:
                plan = compile_operation(self)
                self.stats.compilations += 1
            except CannotCompile as refusal:
                plan = _NotCompilable(str(refusal))
            except Exception as bug:  # nothing has run yet: graphql-core runs it, and it counts
                plan = _NotCompilable(f"compiler error: {type(bug).__name__}: {bug}")
            self.plans[key] = plan
            if len(self.plans) > self.max_plans:
                self.plans.popitem(last=False)
        else:
            self.plans.move_to_end(key)
        if isinstance(plan, _NotCompilable):
            self._fallback(plan.reason)
            return None
        return plan


def _run(ex: CompiledExecutionContext, plan: Plan) -> Any:
    """graphql-core's Executor.execute_operation, with the plan in place of collecting and executing fields."""
    try:
        result = plan.root(ex, ex.root_value, None)
        if result.__class__ is CoroutineType:

            async def await_result() -> Any:
                try:
                    data = await result
                except GraphQLError as error:
                    ex.collected_errors.add(error, None)
                    return ex.build_response(None)
                except Exception:
                    await ex.cancel_incremental_work()
                    ex.run_async_work_finished_hook()
                    raise
                return ex.build_response(data)

            return await_result()
        data = result
    except GraphQLError as error:
        ex.collected_errors.add(error, None)
        return ex.finish(ex.build_response(None))
    return ex.finish(ex.build_response(data))


def compiled_execution_context(*, compile_after: int = 2, max_plans: int = 256) -> type[CompiledExecutionContext]:
    """An execution context class with its own plan cache and counters (`.stats`): one per schema.
    `compile_after`: an operation is compiled on its n-th use (a document seen once is not worth compiling)."""
    return type(
        "CompiledExecutionContext",
        (CompiledExecutionContext,),
        {
            "plans": OrderedDict(),
            "seen": OrderedDict(),
            "stats": ExecutionStats(),
            "compile_after": compile_after,
            "max_plans": max_plans,
        },
    )
