"""Compiled execution of GraphQL queries (issue 13, step 3): each validated query operation is compiled once
into Python specialised to its selection set, the technique of graphql-jit, and plugged into strawberry through
`execution_context_class`. Everything the compiled code does not cover runs on graphql-core's executor, decided
before the operation starts (an operation never runs twice: audited reads would be written twice).

graphql-core marks its executor internals as non-public: strawberry-graphql and graphql-core are pinned, and
tests/schema/test_execution_differential.py runs documents both ways and requires identical results.
"""

from schema.execution.executor import CompiledExecutionContext, ExecutionStats, compiled_execution_context

__all__ = ["CompiledExecutionContext", "ExecutionStats", "compiled_execution_context"]
