"""Types of the spreadsheet import (core.imports): the Upload scalar, the report, the columns of each kind."""

from __future__ import annotations

from enum import Enum
from typing import Any, NewType

import strawberry

from core.i18n import translate
from core.imports import ImportReport as ServiceReport
from core.imports import RowIssue
from core.imports.spec import Column
from schema.errors import ErrorCode, Refusal

# How many issues of each list a report carries; the totals count them all.
MAX_ISSUES = 1000


class UploadedFile:
    """What the edge puts in place of an upload's null (yunshegong.http.UploadedFile): duck-typed here, since
    the schema does not import the HTTP layer."""

    filename: str
    content_type: str
    data: bytes


def _parse_upload(value: Any) -> Any:
    # Only a file part of a multipart request (the edge's object) is a file: a string or object sent in a JSON
    # request is refused, as is any literal in the document.
    if isinstance(getattr(value, "data", None), bytes) and isinstance(getattr(value, "filename", None), str):
        return value
    raise Refusal(
        "Send the file as a part of a multipart request (GraphQL multipart request spec).", code="INVALID_INPUT"
    )


def _refuse_literal(node: Any, variables: Any = None) -> Any:
    raise Refusal(
        "Send the file as a part of a multipart request (GraphQL multipart request spec).", code="INVALID_INPUT"
    )


Upload = NewType("Upload", object)
UPLOAD_SCALAR = strawberry.scalar(
    name="Upload",
    description="A file sent as a part of a multipart/form-data request (GraphQL multipart request spec); "
    "the variable is null in `operations` and filled by `map`.",
    serialize=lambda value: None,
    parse_value=_parse_upload,
    parse_literal=_refuse_literal,
)
# For StrawberryConfig.scalar_map (schema.build).
UPLOAD_SCALARS: dict[object, Any] = {Upload: UPLOAD_SCALAR}


@strawberry.enum(description="What a spreadsheet import creates.")
class ImportKind(Enum):
    VOLUNTEERS = "volunteers"
    COMMUNITIES = "communities"
    REQUESTS = "requests"


@strawberry.type(description="A problem with one row of an imported file (a row may have several).")
class ImportRowIssue:
    row: int = strawberry.field(description="The row number as the spreadsheet shows it (the header is row 1).")
    column: str | None = strawberry.field(description="The column's header as the file spells it.")
    field: str | None = strawberry.field(description="The import field the column maps to (see importColumns).")
    code: ErrorCode  # type: ignore[valid-type]
    message: str

    @classmethod
    def of(cls, issue: RowIssue) -> ImportRowIssue:
        return cls(row=issue.row, column=issue.column, field=issue.field, code=issue.code, message=issue.message)


@strawberry.type(description="A header of the file and the field it filled.")
class ImportMappingEntry:
    header: str
    field: str


@strawberry.type(description="What an import did (or, in a dry run, would do). Nothing of a rejected row is written.")
class ImportReport:
    kind: ImportKind
    dry_run: bool
    rows_read: int
    created: int
    updated: int
    unchanged: int
    duplicates: list[ImportRowIssue] = strawberry.field(
        description=f"Rows skipped as duplicates (the first {MAX_ISSUES}; duplicatesTotal counts them all)."
    )
    duplicates_total: int
    rejected: list[ImportRowIssue] = strawberry.field(
        description=f"Problems of rejected rows, by row (the first {MAX_ISSUES}; rejectedTotal counts them all)."
    )
    rejected_total: int
    rejected_rows: int = strawberry.field(description="How many rows were rejected.")
    ignored_columns: list[str] = strawberry.field(
        description="Headers mapped to no field (not an error; the first ones, ignoredTotal counts them all)."
    )
    ignored_total: int
    mapping: list[ImportMappingEntry] = strawberry.field(description="The mapping actually used.")

    @classmethod
    def of(cls, report: ServiceReport) -> ImportReport:
        return cls(
            kind=ImportKind(report.kind),
            dry_run=report.dry_run,
            rows_read=report.rows_read,
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
            duplicates=[ImportRowIssue.of(i) for i in report.duplicates[:MAX_ISSUES]],
            duplicates_total=len(report.duplicates),
            rejected=[ImportRowIssue.of(i) for i in report.rejected[:MAX_ISSUES]],
            rejected_total=len(report.rejected),
            rejected_rows=len({i.row for i in report.rejected}),
            ignored_columns=list(report.ignored_columns),
            ignored_total=report.ignored_total,
            mapping=[ImportMappingEntry(header=h, field=f) for h, f in report.mapping.items()],
        )


@strawberry.type(description="A field an import kind fills, for a front end's mapping screen.")
class ImportColumn:
    field: str
    label: str = strawberry.field(description="In the caller's language.")
    required: bool
    aliases: list[str] = strawberry.field(description="Headers recognised without a mapping (Chinese and English).")

    @classmethod
    def of(cls, column: Column) -> ImportColumn:
        return cls(
            field=column.field, label=translate(column.label), required=column.required, aliases=list(column.aliases)
        )
