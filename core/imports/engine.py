"""run_import: a spreadsheet read, mapped and handed to an import kind, in the caller's transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import DomainError
from core.i18n import _
from core.imports import mapping as mapping_rules
from core.imports import spec
from core.imports.reading import FILE_FIELD, Limits, empty, open_table
from core.imports.spec import READ, WRITE, ImportKind, ImportReport, Progress, Row
from core.services import access

if TYPE_CHECKING:
    from core.services.context import ServiceContext
    from core.settings import Settings

ORG_FIELD = ("organizationId",)
# How often (rows) the progress callback hears of reading.
PROGRESS_EVERY = 500
# At most this many ignored headers are listed in a report (ignored_total counts them all): a crafted header
# of thousands of columns must not come back as thousands of strings.
MAX_IGNORED_REPORTED = 100


def load_mapping(path: Path) -> dict[str, str]:
    """A mapping file (TOML or JSON: {"header text": "field"})."""
    return mapping_rules.load_mapping(path)


def _kind(name: str) -> ImportKind:
    from core.imports import KINDS

    kind = KINDS.get(name)
    if kind is None:
        raise DomainError("INVALID_INPUT", "There is no import of “{kind}”.", ("kind",), kind=name)
    return kind


def _limits(settings: Settings | None) -> Limits:
    if settings is None:
        from core.settings import Settings

        settings = Settings()  # the defaults; callers with a deployment's settings pass them
    return Limits(max_bytes=settings.import_max_bytes, max_rows=settings.import_max_rows)


@dataclass
class ParsedImport:
    """A file read, mapped and split into rows (`parse_import`), ready to be written (`run_import`)."""

    kind: str
    header: list[str]
    resolved: mapping_rules.Resolved
    rows: list[Row]


def _read(
    source: bytes | Path,
    limits: Limits,
    kind: ImportKind,
    mapping: Mapping[str, str] | None,
    progress: Progress | None,
) -> ParsedImport:
    """The file's header, its mapping to the kind's fields and its rows; DomainError for a file-level problem."""
    table = open_table(source, limits)
    resolved = mapping_rules.resolve(table.header, kind.columns, mapping)
    rows: list[Row] = []
    expected = table.estimated_rows
    for number, cells in table.rows():
        if len(rows) >= limits.max_rows:
            raise DomainError("TOO_LARGE", "The file holds more than {limit} rows.", FILE_FIELD, limit=limits.max_rows)
        values = {name: (cells[index] if index < len(cells) else "") for index, name in resolved.by_index.items()}
        rows.append(Row(number=number, values=values))
        if progress is not None and len(rows) % PROGRESS_EVERY == 0:
            progress(READ, len(rows), expected)
    if not rows:
        raise empty()
    return ParsedImport(kind=kind.name, header=list(table.header), resolved=resolved, rows=rows)


def check_import_permission(ctx: ServiceContext, kind: str, organization_id: int | None) -> int:
    """The organisation imported into (the one named, else the caller's), once the caller may import `kind`
    there; DomainError otherwise. Reads neither the database nor the file: a caller who may not import
    learns nothing about the file, and an upload can be refused before it is parsed."""
    import_kind = _kind(kind)
    org = access.owning_organization(ctx, organization_id, ORG_FIELD)
    access.require_manage(ctx, import_kind.permission, org, _("records"))
    return org


async def parse_import(
    kind: str,
    source: bytes | Path,
    *,
    mapping: Mapping[str, str] | None = None,
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> ParsedImport:
    """Read, map and split `source` (CSV or XLSX, told apart by content) for `kind`, in a worker thread: no
    caller, no database, so that it can run before any transaction is opened. DomainError for a file-level
    problem (not a spreadsheet, empty, too large, a bad mapping). `progress("read", rows read, rows expected
    or None)` is called from the worker thread."""
    import_kind = _kind(kind)
    # Inflating an XLSX and splitting 50,000 rows is CPU work of seconds: off the event loop, so that the
    # service keeps answering everyone else meanwhile (the callers cap how many imports run at once).
    return await asyncio.to_thread(_read, source, _limits(settings), import_kind, mapping, progress)


async def run_import(
    ctx: ServiceContext,
    kind: str,
    source: bytes | Path | ParsedImport,
    *,
    filename: str,
    mapping: Mapping[str, str] | None = None,
    dry_run: bool = False,
    organization_id: int | None = None,
    progress: Progress | None = None,
    settings: Settings | None = None,
) -> ImportReport:
    """Import the rows of `source` (CSV or XLSX, told apart by content; `filename` is only for messages; or a
    file `parse_import` read already, then `mapping` and `settings` were applied there) into
    `organization_id` (default: the caller's). Rows with problems are reported and skipped, the good ones
    written in the caller's transaction. A file-level problem raises DomainError before anything is written;
    so does a missing permission. `dry_run` validates everything, the database checks included, then rolls
    its writes back. `progress(stage, done, total or None)` hears of reading ("read"), checking ("check")
    and writing ("write")."""
    # Checked before the file is even read: a caller who may not import learns nothing about the file.
    org = check_import_permission(ctx, kind, organization_id)
    import_kind = _kind(kind)
    if isinstance(source, ParsedImport):
        if source.kind != import_kind.name:
            raise DomainError(
                "INVALID_INPUT", "The file was read for the import of “{other}”.", ("kind",), other=source.kind
            )
        parsed = source
    else:
        parsed = await parse_import(kind, source, mapping=mapping, settings=settings, progress=progress)
    rows = parsed.rows
    report = ImportReport(
        kind=import_kind.name,
        dry_run=dry_run,
        ignored_columns=parsed.resolved.ignored[:MAX_IGNORED_REPORTED],
        ignored_total=len(parsed.resolved.ignored),
        mapping=parsed.resolved.mapping,
    )
    report.rows_read = len(rows)
    if progress is not None:
        progress(READ, len(rows), len(rows))
    token = spec.PROGRESS.set(progress)
    try:
        if dry_run:
            # The kind writes nothing in a dry run; the savepoint makes sure of it (a plugin reacting, a
            # kind's oversight), while every check the database makes still runs.
            savepoint = await ctx.session.begin_nested()
            try:
                await import_kind.write(ctx, rows, organization_id=org, dry_run=True, report=report)
            finally:
                await savepoint.rollback()
        else:
            await import_kind.write(ctx, rows, organization_id=org, dry_run=False, report=report)
    finally:
        spec.PROGRESS.reset(token)
    if progress is not None:
        progress(WRITE, len(rows), len(rows))
    # Row by row, and within a row in the file's column order: as a person reads the sheet.
    position = {text: index for index, text in enumerate(parsed.header)}
    for issues in (report.rejected, report.duplicates):
        issues.sort(key=lambda issue: (issue.row, position.get(issue.column or "", len(position))))
    return report
