"""Schema extensions: close the request's session, and make errors safe to show.

Expected errors (DomainError raised from a query) keep their message and gain `extensions.code`;
GraphQL syntax and validation errors pass unchanged; anything else is logged with the request id and
replaced by a masked message carrying only that id, so no stack trace or SQL reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

from graphql import GraphQLError, IntValueNode, ValidationContext, ValidationRule
from strawberry.extensions import SchemaExtension
from strawberry.relay.types import GlobalIDValueError

from core.errors import DomainError

log = logging.getLogger("yunshegong.graphql")


class RequestLifecycle(SchemaExtension):
    async def on_operation(self) -> AsyncIterator[None]:  # type: ignore[override]
        context = self.execution_context.context
        # A batched HTTP request runs several operations on one context: the last one out cleans up.
        if hasattr(context, "active_operations"):
            context.active_operations += 1
        try:
            yield
        finally:
            if hasattr(context, "active_operations"):
                context.active_operations -= 1
                if context.active_operations == 0:
                    await context.flush_audit()
                    await context.close()


class SafeErrors(SchemaExtension):
    def on_operation(self):  # type: ignore[no-untyped-def]
        yield
        result = self.execution_context.result
        if result is None or not getattr(result, "errors", None):
            return
        context = self.execution_context.context
        request_id = getattr(context, "request_id", "-")
        result.errors = [self._safe(error, request_id) for error in result.errors]

    def on_stream_result(self, result: Any) -> Iterator[None]:
        """The same treatment for each result of a subscription (or other streamed execution)."""
        if getattr(result, "errors", None):
            request_id = getattr(self.execution_context.context, "request_id", "-")
            result.errors = [self._safe(error, request_id) for error in result.errors]
        yield None

    @staticmethod
    def _safe(error: GraphQLError, request_id: str) -> GraphQLError:
        original = error.original_error
        if original is None:
            return error  # syntax or validation: the client's query itself
        if isinstance(original, GlobalIDValueError):
            # A global ID naming no object type (`node(id:)`): the client's ID is malformed.
            original = DomainError("INVALID_ID", "This ID names no kind of object.", ("id",))
        if isinstance(original, DomainError):
            first = original.errors[0]
            return GraphQLError(
                str(original) if len(original.errors) > 1 else first.message,
                nodes=error.nodes,
                source=error.source,
                positions=error.positions,
                path=error.path,
                extensions={"code": first.code, "field": list(first.field) if first.field else None},
            )
        if isinstance(original, GraphQLError):
            return error  # e.g. a value that failed input coercion
        log.error("unexpected error in request %s at %s", request_id, error.path, exc_info=original)
        return GraphQLError(
            f"Internal error. Quote request id {request_id} to the operators.",
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": "INTERNAL_ERROR", "requestId": request_id},
        )


def page_size_rule(max_page_size: int) -> type[ValidationRule]:
    """Refuse `first:` literals above the page limit during validation (variables are checked by the
    resolvers, which see their values)."""

    class PageSizeLimit(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)

        def enter_argument(self, node, *_args):  # type: ignore[no-untyped-def]
            literal = isinstance(node.value, IntValueNode)
            if node.name.value == "first" and literal and int(node.value.value) > max_page_size:
                self.report_error(
                    GraphQLError(
                        f"`first` must be at most {max_page_size}.",
                        node,
                        extensions={"code": "PAGE_SIZE_EXCEEDED"},
                    )
                )

    return PageSizeLimit
