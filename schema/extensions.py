"""Schema extensions: close the request's session, and make errors safe to show.

Every error leaves with `extensions.code`. Expected errors (a DomainError raised from a query) keep their
message; errors in the client's document or variables get the code of what failed (GRAPHQL_PARSE_FAILED,
GRAPHQL_VALIDATION_FAILED, a limiter's, INVALID_INPUT); a lost database connection is UNAVAILABLE; anything
else is replaced by a masked message carrying only the request id, so no stack trace or SQL reaches a client.
`log_errors` decides what reaches the log: only unexpected errors as ERROR with a traceback.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import sqlalchemy.exc
from graphql import GraphQLError, GraphQLSyntaxError, IntValueNode, ValidationContext, ValidationRule
from strawberry.extensions import SchemaExtension
from strawberry.relay.types import GlobalIDValueError

from core.errors import DomainError
from core.i18n import CALLER_LOCALE, _, translate
from schema.errors import Refusal

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
                    try:
                        await context.flush_audit()
                    finally:
                        # Even when the audit cannot be written (database gone): the connection goes back.
                        context.forget_loaded()
                        await context.close()


# The connection may have broken while a change was being committed: the client is told to look, not that
# nothing happened (which a retry on that promise would double).
UNAVAILABLE_MESSAGE = _(
    "The database cannot be reached for the moment. Retry shortly; if you were saving a change, check whether "
    "it was saved before sending it again."
)
INTERNAL_MESSAGE = _("Internal error. Quote request id {request_id} to the operators.")


# Connection-level failures: the database is down, restarting, refusing connections or full. Anything else
# the driver raises (a constraint, a syntax error, "another operation is in progress") is a fault of ours.
_UNAVAILABLE_DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.PostgresConnectionError,  # ConnectionDoesNotExistError, ConnectionFailureError, ...
    asyncpg.exceptions.CannotConnectNowError,  # starting up, shutting down, in recovery
    asyncpg.exceptions.AdminShutdownError,  # pg_terminate_backend, fast shutdown
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    sqlalchemy.exc.TimeoutError,  # no pooled connection came free in time
)
# Python's own errors count only when the driver or the pool raised them (a refused or reset socket, a connect
# timeout): the same error from a plugin's outbound call or a bug is a fault, logged with its traceback.
_UNAVAILABLE_OS_ERRORS: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)
_DRIVER_MODULES = ("asyncpg", "sqlalchemy", "asyncio", "uvloop")  # `serve` runs on uvloop


def _raised_by_driver(exc: BaseException) -> bool:
    frame = exc.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    module = frame.tb_frame.f_globals.get("__name__", "") if frame is not None else ""
    return module.split(".")[0] in _DRIVER_MODULES


def is_unavailable(exc: BaseException | None) -> bool:
    """Whether `exc` (or what caused it) means the database cannot be reached right now: answered UNAVAILABLE
    with HTTP 503 and Retry-After, logged as a warning, not as a fault of the service."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, _UNAVAILABLE_DRIVER_ERRORS):
            return True
        if isinstance(exc, _UNAVAILABLE_OS_ERRORS) and _raised_by_driver(exc):
            return True
        if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
            return True
        if isinstance(exc, GraphQLError):
            exc = exc.original_error
            continue
        wrapped = getattr(exc, "orig", None) if isinstance(exc, sqlalchemy.exc.StatementError) else None
        # Only what an error says it was caused by (`raise … from`, the driver's original): an error that merely
        # happened while another was being handled (__context__) is not that error.
        exc = wrapped if isinstance(wrapped, BaseException) else exc.__cause__
    return False


# The limiters strawberry's extensions report as plain validation errors, told apart by their wording
# (graphql-core and strawberry are pinned; tests/schema/test_hardening.py checks each code), and how each is
# said in the caller's language (its numbers as parameters).
_LIMIT_CODES = (
    (
        re.compile(r"^Syntax Error: Document contains more than (?P<limit>\d+) tokens"),
        "TOO_MANY_TOKENS",
        _("The document is longer than {limit} tokens."),
    ),
    (
        re.compile(r"^'.*' exceeds maximum operation depth of (?P<limit>\d+)$", re.DOTALL),
        "QUERY_TOO_DEEP",
        _("The operation nests selections deeper than {limit} levels."),
    ),
    (
        re.compile(r"^(?P<count>\d+) aliases found\. Allowed: (?P<limit>\d+)$"),
        "TOO_MANY_ALIASES",
        _("The document uses {count} aliases; at most {limit} are allowed."),
    ),
)
# graphql-core's "Did you mean 'statuses'?" / "Did you mean the enum value 'URGENT'?": names the schema holds.
_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


class Stage(enum.Enum):
    PARSING = "parsing"
    VALIDATION = "validation"
    EXECUTION = "execution"


def client_error_code(error: GraphQLError, stage: Stage) -> str:
    """The code of an error in the client's document or variables (one without a path), by where it arose."""
    for pattern, code, _template in _LIMIT_CODES:
        if pattern.match(error.message):
            return code
    if isinstance(error, GraphQLSyntaxError) or stage is Stage.PARSING:
        return "GRAPHQL_PARSE_FAILED"
    if stage is Stage.VALIDATION:
        return "GRAPHQL_VALIDATION_FAILED"
    # Execution refuses before any resolver runs only what the variables carry (missing, wrong type).
    return "INVALID_INPUT"


def without_suggestions(message: str) -> str:
    return _SUGGESTION.sub("", message)


def localized_message(error: GraphQLError) -> str:
    """`error`'s message in the caller's language where the service worded it: a Refusal (a refused value, a
    limit), also where graphql-core quotes one inside its own sentence ("Variable '$x' has invalid value:
    <ours>"), and the limiters' refusals. graphql-core's own wording (syntax and validation errors, the
    prefix naming the variable) stays English: it is the GraphQL reference implementation's, not ours."""
    message = error.message
    if CALLER_LOCALE.get() != "en":
        for pattern, _code, template in _LIMIT_CODES:
            found = pattern.match(message)
            if found:
                return translate(template, found.groupdict())
    cause: BaseException | None = error
    for _depth in range(8):  # graphql-core wraps a scalar's refusal once or twice
        if isinstance(cause, Refusal):
            return message.replace(cause.message, cause.localized()) if cause.message in message else message
        cause = getattr(cause, "original_error", None)
        if cause is None:
            break
    return message


def safe_error(error: GraphQLError, request_id: str, stage: Stage | None, *, suggestions: bool = True) -> GraphQLError:
    """`error` as the client may see it, always with `extensions.code`: a DomainError keeps its code and
    message (in the caller's language); an error in the document or variables gets the code of what failed;
    a lost database connection is UNAVAILABLE; anything else is masked as INTERNAL_ERROR with the request id.
    `stage` None: the error arose outside the operation (e.g. in an extension's cleanup), so it cannot be
    the client's document or variables."""
    original = error.original_error
    if isinstance(original, GlobalIDValueError):
        # A global ID naming no object type (`node(id:)`): the client's ID is malformed.
        original = DomainError("INVALID_ID", "This ID names no kind of object.", ("id",))
    if isinstance(original, DomainError):
        first = original.errors[0]
        message = (
            "; ".join(f"{e.code}: {e.localized()}" for e in original.errors)
            if len(original.errors) > 1
            else first.localized()
        )
        extensions = {"code": first.code, "field": list(first.field) if first.field else None}
    elif is_unavailable(original):
        message = translate(UNAVAILABLE_MESSAGE)
        extensions = {"code": "UNAVAILABLE", "requestId": request_id}
    elif (error.extensions or {}).get("code"):
        message, extensions = localized_message(error), dict(error.extensions or {})
    elif isinstance(error, GraphQLSyntaxError) or (
        stage is not None and (original is None or isinstance(original, GraphQLError) or error.path is None)
    ):
        # The client's document or variables (a value a scalar refused carries that scalar's exception). A
        # syntax error raised by ParserCache's parsing hook escapes the operation, so it arrives without a stage.
        code = client_error_code(error, stage or Stage.PARSING)
        message, extensions = localized_message(error), {**(error.extensions or {}), "code": code}
    else:
        message = translate(INTERNAL_MESSAGE, {"request_id": request_id})
        extensions = {"code": "INTERNAL_ERROR", "requestId": request_id}
    if not suggestions:
        message = without_suggestions(message)
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions=extensions,
    )


def log_errors(errors: list[GraphQLError], request_id: str) -> None:
    """Log the errors of one operation as what they are: a refusal the rules or the document make (a
    DomainError, a syntax or validation error, a refused value) is an answer to the client, one INFO line; a
    lost database connection is one WARNING line; only the unexpected is an ERROR, with its traceback."""
    for error in errors:
        original = error.original_error
        where = f" at {'.'.join(map(str, error.path))}" if error.path else ""
        if is_unavailable(original):
            log.warning("request %s%s: database unavailable (%s)", request_id, where, type(original).__name__)
        elif (
            original is None
            or isinstance(original, (DomainError, GlobalIDValueError, GraphQLError))
            or (error.path is None and (error.extensions or {}).get("code"))
        ):
            code = original.code if isinstance(original, DomainError) else (error.extensions or {}).get("code")
            log.info("request %s%s refused (%s): %s", request_id, where, code or "-", error.message.splitlines()[0])
        elif (
            error.path is None
            and isinstance(original, (ValueError, TypeError))
            and error.message.startswith("Variable '$")
        ):
            # A value a scalar refused while the variables were coerced.
            log.info("request %s refused: %s", request_id, error.message.splitlines()[0])
        else:
            log.error("unexpected error in request %s at %s", request_id, error.path, exc_info=original)


class SafeErrors(SchemaExtension):
    """Every error leaves with `extensions.code` and nothing internal in it (see `safe_error`); with
    introspection off, graphql-core's "Did you mean …" suggestions are cut from every message."""

    def __init__(self, *, execution_context: Any = None) -> None:
        super().__init__(execution_context=execution_context)
        self.stage = Stage.PARSING

    def on_validate(self) -> Iterator[None]:  # type: ignore[override]
        self.stage = Stage.VALIDATION
        yield

    def on_execute(self) -> Iterator[None]:  # type: ignore[override]
        self.stage = Stage.EXECUTION
        yield

    def on_operation(self):  # type: ignore[no-untyped-def]
        yield
        result = self.execution_context.result
        if result is not None and getattr(result, "errors", None):
            result.errors = self._safe_all(result.errors)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        """The same treatment for each result of a subscription (or other streamed execution)."""
        if getattr(result, "errors", None):
            result.errors = self._safe_all(result.errors)
        yield None

    def _safe_all(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        context = self.execution_context.context
        request_id = getattr(context, "request_id", "-")
        settings = getattr(getattr(context, "app", None), "settings", None)
        suggestions = settings is None or settings.introspection
        return [safe_error(error, request_id, self.stage, suggestions=suggestions) for error in errors]


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
                    Refusal(
                        "`first` must be at most {limit}.", code="PAGE_SIZE_EXCEEDED", nodes=node, limit=max_page_size
                    )
                )

    return PageSizeLimit
