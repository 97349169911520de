"""run_import: a spreadsheet read, mapped and handed to an import kind, in the caller's transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import DomainError
from core.i18n import _
from core.imports import mapping as mapping_rules
from core.imports.reading import FILE_FIELD, Limits, empty, open_table
from core.imports.spec import ImportKind, ImportReport, Row
from core.services import access

if TYPE_CHECKING:
    from core.services.context import ServiceContext
    from core.settings import Settings

ORG_FIELD = ("organizationId",)
# How often (rows) the progress callback hears of reading.
PROGRESS_EVERY = 500


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


def _read(
    source: bytes | Path,
    limits: Limits,
    kind: ImportKind,
    mapping: Mapping[str, str] | None,
    progress: Callable[[int, int | None], None] | None,
) -> tuple[list[str], mapping_rules.Resolved, list[Row]]:
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
            progress(len(rows), expected)
    if not rows:
        raise empty()
    return list(table.header), resolved, rows


async def run_import(
    ctx: ServiceContext,
    kind: str,
    source: bytes | Path,
    *,
    filename: str,
    mapping: Mapping[str, str] | None = None,
    dry_run: bool = False,
    organization_id: int | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    settings: Settings | None = None,
) -> ImportReport:
    """Import the rows of `source` (CSV or XLSX, told apart by content; `filename` is only for messages)
    into `organization_id` (default: the caller's). Rows with problems are reported and skipped, the good
    ones written in the caller's transaction. A file-level problem raises DomainError before anything is
    written; so does a missing permission. `dry_run` validates everything, the database checks included,
    then rolls its writes back. `progress(rows done, rows expected or None)` is called as rows are read."""
    import_kind = _kind(kind)
    org = access.owning_organization(ctx, organization_id, ORG_FIELD)
    # Checked before the file is even read: a caller who may not import learns nothing about the file.
    access.require_manage(ctx, import_kind.permission, org, _("records"))
    limits = _limits(settings)
    # Inflating an XLSX and splitting 50,000 rows is CPU work of seconds: off the event loop, so that the
    # service keeps answering everyone else meanwhile (the callers cap how many imports run at once).
    header, resolved, rows = await asyncio.to_thread(_read, source, limits, import_kind, mapping, progress)
    report = ImportReport(
        kind=import_kind.name, dry_run=dry_run, ignored_columns=resolved.ignored, mapping=resolved.mapping
    )
    report.rows_read = len(rows)
    if progress is not None:
        progress(len(rows), len(rows))
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
    # Row by row, and within a row in the file's column order: as a person reads the sheet.
    position = {text: index for index, text in enumerate(header)}
    for issues in (report.rejected, report.duplicates):
        issues.sort(key=lambda issue: (issue.row, position.get(issue.column or "", len(position))))
    return report
