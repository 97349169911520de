"""The contract between the import engine (core.imports) and the kinds of record it imports.

File-level problems (not a spreadsheet, empty, too large, a bad mapping) raise
`core.errors.DomainError(code, message, field)`; row-level problems go into the `ImportReport`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from core.i18n import Text

if TYPE_CHECKING:
    from core.services.context import ServiceContext


@dataclass(frozen=True)
class Column:
    """One field an import kind accepts."""

    field: str  # target name, e.g. "phone" (what a mapping maps a header to)
    # Headers recognised by default, Chinese and English; compared after NFKC, casefold, stripping spaces,
    # '*', '（必填）'/'(required)' marks and surrounding punctuation (core.imports.mapping.normalize_header).
    aliases: tuple[str, ...]
    required: bool
    label: Text  # _("Phone"), for messages


@dataclass
class Row:
    number: int  # the row number a person sees in the spreadsheet (header row = 1)
    values: dict[str, str]  # field -> cell text, stripped ('' for empty); only mapped fields


@dataclass
class RowIssue:
    row: int
    column: str | None  # the header text as in the file
    field: str | None
    code: str
    message: str


@dataclass
class ImportReport:
    kind: str
    dry_run: bool
    rows_read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    # Skipped as duplicates (inside the file, or of an existing record the kind does not update).
    duplicates: list[RowIssue] = field(default_factory=list)
    # One entry per problem (a row may have several); nothing of a rejected row is written.
    rejected: list[RowIssue] = field(default_factory=list)
    # Headers mapped to nothing: reported, not an error (the first MAX_IGNORED_REPORTED; ignored_total counts all).
    ignored_columns: list[str] = field(default_factory=list)
    ignored_total: int = 0
    mapping: dict[str, str] = field(default_factory=dict)  # header -> field actually used


# progress(stage, done, total or None): the stages in order, each counting rows.
READ, CHECK, WRITE = "read", "check", "write"
Progress = Callable[[str, int, int | None], None]
# The running import's progress callback, set by run_import for the kind's `write` (which the Protocol below
# keeps free of it); a kind tells it with `report_progress`. A context variable, so that it follows the
# import into asyncio.to_thread and never leaks into another request.
PROGRESS: ContextVar[Progress | None] = ContextVar("import_progress", default=None)


def report_progress(stage: str, done: int, total: int | None) -> None:
    """Tell the running import's caller how far `stage` got (nothing when nobody listens)."""
    callback = PROGRESS.get()
    if callback is not None:
        callback(stage, done, total)


class ImportKind(Protocol):
    name: str  # "volunteers" | "communities" | "requests"
    columns: tuple[Column, ...]
    permission: str  # e.g. "volunteers.manage" (checked with access.require_manage for the organisation)

    async def write(
        self,
        ctx: ServiceContext,
        rows: Sequence[Row],
        *,
        organization_id: int,
        dry_run: bool,
        report: ImportReport,
    ) -> None: ...
