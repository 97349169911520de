"""Reading a spreadsheet as rows of text: CSV (csv module) or XLSX (openpyxl, read-only), told apart by content.

A file-level problem raises DomainError (UNSUPPORTED_FILE, EMPTY_FILE, TOO_LARGE) before anything is written.
Rows are streamed: a CSV is decoded as it is parsed (its encoding checked first by an incremental decoder, so
the decoded text is never held whole), an XLSX sheet is parsed row by row.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from core.errors import DomainError
from core.i18n import _

FILE_FIELD = ("file",)
# A CSV is tried as UTF-8 (a BOM, which Excel writes, is dropped), then as GB18030, a superset of GBK and
# GB2312 that Chinese Excel and form services write. Both strict: a wrong guess fails instead of garbling.
ENCODINGS = ("utf-8-sig", "gb18030")
DELIMITERS = ",;\t"
# An XLSX is a zip: its parts uncompressed may be at most this many times the size limit, no part may
# inflate more than MAX_RATIO times (a zip bomb does ~1000x; sheet XML does 5-30x) -- both checked from the
# zip's directory before openpyxl parses anything -- and at most MAX_COLUMNS cells of a row are read.
UNCOMPRESSED_FACTOR = 8
MAX_RATIO = 200
RATIO_FLOOR = 1 << 20  # parts smaller than 1 MiB inflated are harmless whatever their ratio
MAX_COLUMNS = 200
# No part may inflate beyond PART_FACTOR times the size limit (the sheet is streamed, but parsing 160 MB of XML
# is minutes of CPU), and the shared strings, read whole before the first row, beyond 1/SHARED_STRINGS_DIVISOR
# of it (10 MiB by default: ~500,000 strings, some seconds).
PART_FACTOR = 4
SHARED_STRINGS_DIVISOR = 2
# Excel's last row; a row numbered beyond it is a crafted file.
MAX_SHEET_ROWS = 1_048_576
# Blank rows present in a sheet (separators, trailing formatted rows) are skipped, but counted: at most
# max_rows + this many, so that a sheet of millions of empty <row/> elements is refused, not walked.
BLANK_ROWS_ALLOWED = 100_000
# A CSV line with more delimiters than this is refused before csv splits it (quoted cells may hold some).
MAX_LINE_DELIMITERS = 10_000
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_rows: int


class Table:
    """The header and the data rows of a spreadsheet. `rows()` yields (row number as a person sees it,
    cells as text); `estimated_rows` is for a progress bar (None: unknown)."""

    def __init__(
        self, header: list[str], header_number: int, rows: Iterator[tuple[int, list[str]]], estimated_rows: int | None
    ) -> None:
        self.header = header
        self.header_number = header_number
        self._rows = rows
        self.estimated_rows = estimated_rows

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        return self._rows


NOT_A_SPREADSHEET = _("The file is neither a CSV nor an Excel (.xlsx) spreadsheet.")


def unsupported(reason: str = NOT_A_SPREADSHEET) -> DomainError:
    return DomainError("UNSUPPORTED_FILE", reason, FILE_FIELD)


def too_large(limit: int) -> DomainError:
    return DomainError("TOO_LARGE", "The file is larger than the limit of {limit} bytes.", FILE_FIELD, limit=limit)


def empty() -> DomainError:
    return DomainError("EMPTY_FILE", "The file has no header row or no data rows.", FILE_FIELD)


def open_table(source: bytes | Path, limits: Limits) -> Table:
    """The table in `source` (file content or a path); which reader by content, not by the file's name."""
    size = source.stat().st_size if isinstance(source, Path) else len(source)
    if size > limits.max_bytes:
        raise too_large(limits.max_bytes)
    if size == 0:
        raise empty()
    head = _head(source, 8)
    if head.startswith(b"PK\x03\x04"):
        return _xlsx(source, limits)
    if head.startswith((b"PK", b"\xd0\xcf\x11\xe0", b"%PDF", b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"\x1f\x8b")):
        # Another zip (.docx, .ods), the old binary .xls, a PDF, an image, gzip: say so rather than
        # reading noise as text.
        raise unsupported()
    return _csv(source, limits)


def _head(source: bytes | Path, n: int) -> bytes:
    if isinstance(source, Path):
        with source.open("rb") as handle:
            return handle.read(n)
    return source[:n]


def _open_binary(source: bytes | Path) -> IO[bytes]:
    return source.open("rb") if isinstance(source, Path) else io.BytesIO(source)


# -- CSV -------------------------------------------------------------------------------------------------------


def _encoding(source: bytes | Path) -> str:
    """The first of ENCODINGS that decodes the whole file strictly, checked chunk by chunk (nothing kept)."""
    for encoding in ENCODINGS:
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        try:
            with _open_binary(source) as handle:
                while chunk := handle.read(_CHUNK):
                    text = decoder.decode(chunk)
                    # NUL never occurs in a text table: a binary file that happens to decode.
                    if "\x00" in text:
                        raise unsupported()
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise unsupported(_("The file is not text in UTF-8 or GBK/GB18030, nor an Excel (.xlsx) spreadsheet."))


def _newlines(source: bytes | Path) -> int:
    if not isinstance(source, Path):
        return source.count(b"\n")
    with source.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(_CHUNK), b""))


def _delimiter(sample: str) -> str:
    """The delimiter among , ; and tab: csv.Sniffer on the first lines, else the one the header uses most."""
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        first = sample.splitlines()[0] if sample else ""
        return max(DELIMITERS, key=first.count)


def _lines(text: IO[str], delimiter: str) -> Iterator[str]:
    """The text's lines, refusing one with more delimiters than any table has columns: csv.reader would
    otherwise build a list of millions of cells from one line of commas."""
    for line in text:
        if line.count(delimiter) > MAX_LINE_DELIMITERS:
            raise DomainError(
                "TOO_LARGE", "A row of the file has more than {limit} columns.", FILE_FIELD, limit=MAX_LINE_DELIMITERS
            )
        yield line


def _csv(source: bytes | Path, limits: Limits) -> Table:
    encoding = _encoding(source)
    binary = _open_binary(source)
    text = io.TextIOWrapper(binary, encoding=encoding, errors="strict", newline="")
    sample = text.read(_CHUNK)
    text.seek(0)
    delimiter = _delimiter(sample)
    reader = csv.reader(_lines(text, delimiter), delimiter=delimiter, strict=False)
    # Lines counted for the progress bar only (a quoted cell may span lines): cheap on bytes.
    estimated = max(_newlines(source) - 1, 0) or None

    def records() -> Iterator[tuple[int, list[str]]]:
        try:
            # A record is one row of the spreadsheet however many lines its quoted cells span.
            for number, record in enumerate(reader, start=1):
                # At most MAX_COLUMNS cells, as for an XLSX: columns beyond are never mapped.
                yield number, [cell.strip() for cell in record[:MAX_COLUMNS]]
        except csv.Error as exc:
            raise DomainError(
                "UNSUPPORTED_FILE", "The CSV file is malformed: {reason}.", FILE_FIELD, reason=str(exc)
            ) from exc
        finally:
            text.close()

    return _with_header(records(), estimated, limits)


def _with_header(records: Iterator[tuple[int, list[str]]], estimated: int | None, limits: Limits) -> Table:
    budget = [limits.max_rows + BLANK_ROWS_ALLOWED]
    for number, cells in records:
        if any(cells):
            return Table(cells, number, _nonempty(records, budget, limits), estimated)
        _blank(budget, limits)
    raise empty()


def _blank(budget: list[int], limits: Limits) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise DomainError("TOO_LARGE", "The file holds more than {limit} rows.", FILE_FIELD, limit=limits.max_rows)


def _nonempty(
    records: Iterator[tuple[int, list[str]]], budget: list[int], limits: Limits
) -> Iterator[tuple[int, list[str]]]:
    # Blank rows (a spreadsheet's trailing ones, separators) are no data; their numbers still count, and so
    # do they, against a generous budget: a file of millions of blank rows is refused, not walked.
    for number, cells in records:
        if any(cells):
            yield number, cells
        else:
            _blank(budget, limits)


# -- XLSX ------------------------------------------------------------------------------------------------------


def _check_zip(source: bytes | Path, limits: Limits) -> None:
    """Refuse a zip bomb from the central directory alone (sizes are declared there; nothing inflated)."""
    try:
        with zipfile.ZipFile(_open_binary(source)) as archive:
            entries = archive.infolist()
            names = {e.filename for e in entries}
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise unsupported() from exc
    if "xl/workbook.xml" not in names:
        raise unsupported()
    total = sum(e.file_size for e in entries)
    if total > limits.max_bytes * UNCOMPRESSED_FACTOR:
        raise too_large(limits.max_bytes)
    for entry in entries:
        if entry.file_size > limits.max_bytes * PART_FACTOR:
            raise too_large(limits.max_bytes)
        if entry.file_size > RATIO_FLOOR and entry.file_size > MAX_RATIO * max(entry.compress_size, 1):
            raise unsupported(_("The spreadsheet is malformed (a part inflates far beyond its size)."))


def _check_shared_strings(archive: zipfile.ZipFile, part: str | None, limits: Limits) -> None:
    """openpyxl reads the shared strings whole, at ~20 µs a string, before the first row: their part gets a
    cap of its own (the sheet itself is streamed and stopped by the row limit)."""
    for name in {"xl/sharedStrings.xml", *([part.lstrip("/")] if part else [])}:
        try:
            size = archive.getinfo(name).file_size
        except KeyError:
            continue
        if size > limits.max_bytes // SHARED_STRINGS_DIVISOR:
            raise too_large(limits.max_bytes)


def _cell_text(value: Any) -> str:
    """A cell as the text a person sees: integers without a decimal point or exponent (a phone number stored
    as a number must not become 1.3812345678E10), dates in ISO form."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e17:
            return str(int(value))
        return repr(value)
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    return str(value).strip()


def _xlsx(source: bytes | Path, limits: Limits) -> Table:
    _check_zip(source, limits)
    from openpyxl.reader.excel import ExcelReader
    from openpyxl.worksheet._reader import WorkSheetParser
    from openpyxl.xml.constants import SHARED_STRINGS

    try:
        reader = ExcelReader(_open_binary(source), read_only=True, data_only=True)
        reader.read_manifest()
        strings = reader.package.find(SHARED_STRINGS)
    except Exception as exc:  # openpyxl raises many kinds on a damaged file; all mean "cannot read it"
        raise unsupported(_("The Excel file cannot be read.")) from exc
    try:
        _check_shared_strings(reader.archive, strings.PartName if strings is not None else None, limits)
    except DomainError:
        reader.archive.close()
        raise
    try:
        reader.read()
        workbook = reader.wb
        sheet = workbook.worksheets[0]
    except Exception as exc:
        reader.archive.close()
        raise unsupported(_("The Excel file cannot be read.")) from exc
    estimated = None
    try:
        # The sheet's <dimension>, when the writer gave one, only for the progress bar: it may lie (rows
        # beyond it are read all the same).
        declared_rows = sheet.max_row
        estimated = declared_rows - 1 if declared_rows and declared_rows > 1 else None
    except Exception:  # a missing or malformed dimension only costs the progress bar its total
        pass
    # Never the declared size as a limit: rows beyond an understated <dimension> are rows all the same.
    sheet.reset_dimensions()

    def records() -> Iterator[tuple[int, list[str]]]:
        # The rows as the sheet's XML has them, parsed by openpyxl's own row parser rather than iter_rows:
        # read-only iter_rows makes up an empty row for every row number the XML skips, so that rows
        # numbered 1, 2 and 900,000,000 would cost 900 million made-up rows. Here a skipped number costs
        # nothing, a blank row present in the XML counts against a budget (_with_header), and no row
        # number may exceed Excel's own last row.
        source_xml = None
        try:
            source_xml = sheet._get_source()
            parser = WorkSheetParser(
                source_xml,
                sheet._shared_strings,
                data_only=True,
                epoch=workbook.epoch,
                date_formats=workbook._date_formats,
                timedelta_formats=workbook._timedelta_formats,
            )
            width = MAX_COLUMNS  # until the header row is known: then as wide as the header (at most MAX_COLUMNS)
            seen_header = False
            for number, parsed in parser.parse():
                if number > MAX_SHEET_ROWS:
                    raise unsupported(_("The spreadsheet is malformed (a row number beyond Excel's last row)."))
                cells = [""] * width
                for cell in parsed:
                    column = cell["column"]
                    if 1 <= column <= width:
                        cells[column - 1] = _cell_text(cell["value"])
                while cells and not cells[-1]:
                    cells.pop()
                if cells and not seen_header:
                    seen_header = True
                    width = len(cells)
                yield number, cells
        except DomainError:
            raise
        except Exception as exc:
            raise unsupported(_("The Excel file cannot be read.")) from exc
        finally:
            if source_xml is not None:
                source_xml.close()
            workbook.close()

    return _with_header(records(), estimated, limits)
