"""Bulk import of spreadsheets (CSV, XLSX) into core records: volunteers, communities, help requests.

`run_import` reads the file (core.imports.reading), maps its headers to a kind's fields
(core.imports.mapping) and hands the rows to the kind, which validates each row as the matching
mutation does and writes the good ones in bulk, all in the caller's transaction.
"""

from __future__ import annotations

from core.imports.communities import COMMUNITIES
from core.imports.engine import ParsedImport, check_import_permission, load_mapping, parse_import, run_import
from core.imports.requests import REQUESTS
from core.imports.spec import Column, ImportKind, ImportReport, Row, RowIssue
from core.imports.volunteers import VOLUNTEERS

KINDS: dict[str, ImportKind] = {
    "volunteers": VOLUNTEERS,
    "communities": COMMUNITIES,
    "requests": REQUESTS,
}

__all__ = [
    "KINDS",
    "Column",
    "ImportKind",
    "ImportReport",
    "ParsedImport",
    "Row",
    "RowIssue",
    "check_import_permission",
    "load_mapping",
    "parse_import",
    "run_import",
]
