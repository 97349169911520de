"""Reading a spreadsheet as rows of text: CSV (csv module) or XLSX (openpyxl, read-only), told apart by content.

A file-level problem raises DomainError (UNSUPPORTED_FILE, EMPTY_FILE, TOO_LARGE) before anything is written.
Rows are streamed: a CSV is decoded as it is parsed (its encoding checked first by an incremental decoder, so
the decoded text is never held whole), an XLSX sheet is parsed cell by cell (nothing of it kept but the open
row's text). Work is bounded by the file's structure as well as by its size: the delimiter is found in one pass,
a row may hold no more cells than Excel allows, and each part read whole has a cap of its own.
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
# The parts read whole before the first row that hold the workbook's settings and formatting, not its data
# (the workbook part and its relationships under whatever name the manifest gives too): at most
# SETTINGS_PART_MAX each. Nothing else is read but the sheet (streamed) and the shared strings (capped apart).
SETTINGS_PARTS = frozenset({"[Content_Types].xml", "xl/workbook.xml", "xl/_rels/workbook.xml.rels", "xl/styles.xml"})
SETTINGS_PART_MAX = 2 << 20
# The sheet's <dimension> (for the progress bar) is looked for among its first this many elements only.
DIMENSION_LOOKAHEAD = 100
# Excel's last row; a row numbered beyond it is a crafted file.
MAX_SHEET_ROWS = 1_048_576
# Blank rows present in a sheet (separators, trailing formatted rows) are skipped, but counted: at most
# max_rows + this many, so that a sheet of millions of empty <row/> elements is refused, not walked.
BLANK_ROWS_ALLOWED = 100_000
# A sheet row holding more <c> elements than Excel has columns (XFD) is a crafted file: refused as it is read.
MAX_ROW_CELLS = 16_384
# A CSV line with more delimiters than this is refused before csv splits it (quoted cells may hold some).
MAX_LINE_DELIMITERS = 10_000
# The delimiter is told from the header and at most this many records after it (_delimiter).
SNIFF_RECORDS = 20
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
    """The delimiter among , ; and tab: the one the header row uses most outside quoted cells; a tie goes to
    the one on which more of the next rows agree with the header, then to the comma (a one-column file).

    One linear pass over at most SNIFF_RECORDS records: csv.Sniffer, used before, guesses quoting with a
    regex that is quadratic in a quoted cell (a 60 KB cell of commas cost 45 s before a row was read)."""
    records: list[dict[str, int]] = []
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = closed = False
    blank = True  # the record so far holds nothing but white space: a blank line is no record
    previous = "\n"
    for char in sample:
        if quoted:
            if char == '"':
                quoted, closed = False, True
                continue
        elif char == '"' and (closed or previous in DELIMITERS or previous in "\r\n"):
            # A quote opens a quoted cell only at a cell's start, or right after one closes ('""' inside a
            # quoted cell is a quote): as csv reads it.
            quoted = True
            blank = False
        elif char in "\r\n":
            if not blank:
                records.append(counts)
                if len(records) == SNIFF_RECORDS:
                    break
            counts, blank = dict.fromkeys(DELIMITERS, 0), True
        else:
            if char in counts:
                counts[char] += 1
            blank = blank and char.isspace()
        previous, closed = char, False
    else:
        if not blank:
            records.append(counts)
    if not records:
        return DELIMITERS[0]
    header, rest = records[0], records[1:]
    # max() keeps the first of equals: DELIMITERS starts with the comma.
    return max(DELIMITERS, key=lambda d: (header[d], sum(r[d] == header[d] for r in rest)))


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


def _check_whole_parts(archive: zipfile.ZipFile, strings: str | None, workbook: str | None, limits: Limits) -> None:
    """Caps, from the zip's directory, on the parts parsed whole before the first row (the sheet itself is
    streamed and stopped by the row limit). The shared strings grow with the data: half the size limit
    (10 MiB by default: ~500,000 strings at ~20 µs each, some seconds). The workbook's settings and formatting
    do not: SETTINGS_PART_MAX (a style table of 200,000 formats, 16 MB, took 8.5 s; Excel allows 64,000)."""
    data_parts = {"xl/sharedStrings.xml", *([strings.lstrip("/")] if strings else [])}
    settings_parts = set(SETTINGS_PARTS)
    if workbook:
        name = workbook.lstrip("/")
        folder, _slash, base = name.rpartition("/")
        settings_parts |= {name, f"{folder}/_rels/{base}.rels" if folder else f"_rels/{base}.rels"}
    for entry in archive.infolist():
        if entry.filename in data_parts and entry.file_size > limits.max_bytes // SHARED_STRINGS_DIVISOR:
            raise too_large(limits.max_bytes)
        if entry.filename in settings_parts and entry.file_size > SETTINGS_PART_MAX:
            raise DomainError(
                "TOO_LARGE",
                "The spreadsheet's formatting or settings ({part}) are larger than {limit} bytes: copy its rows "
                "into a new workbook and import that.",
                FILE_FIELD,
                part=entry.filename,
                limit=SETTINGS_PART_MAX,
            )


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
    from openpyxl.reader.excel import ExcelReader, _find_workbook_part
    from openpyxl.styles.stylesheet import apply_stylesheet
    from openpyxl.worksheet._reader import WorkSheetParser
    from openpyxl.xml.constants import SHARED_STRINGS

    try:
        # keep_links=False: links to other workbooks carry cached copies of their sheets, parsed whole.
        reader = ExcelReader(_open_binary(source), read_only=True, data_only=True, keep_links=False)
    except Exception as exc:  # openpyxl raises many kinds on a damaged file; all mean "cannot read it"
        raise unsupported(_("The Excel file cannot be read.")) from exc
    archive = reader.archive
    try:
        _check_whole_parts(archive, None, None, limits)  # the manifest among them: read_manifest parses it
        reader.read_manifest()
        strings = reader.package.find(SHARED_STRINGS)
        workbook_part = _find_workbook_part(reader.package).PartName
        _check_whole_parts(archive, strings.PartName if strings is not None else None, workbook_part, limits)
        # Only what the rows need, not reader.read(): that also opens every sheet, and openpyxl's read-only
        # sheet walks one without a <dimension> whole (keeping its elements) just to learn its size; and it
        # parses properties, theme, each sheet's relationships (a hyperlink a row) and chart sheets, none of
        # which an import uses.
        reader.read_strings()
        reader.read_workbook()
        apply_stylesheet(archive, reader.wb)  # the date formats: a number cell styled as a date is a date
        sheet_path = _first_worksheet(reader)
    except DomainError:
        archive.close()
        raise
    except Exception as exc:
        archive.close()
        raise unsupported(_("The Excel file cannot be read.")) from exc
    workbook = reader.wb
    estimated = _declared_rows(archive, sheet_path)

    def records() -> Iterator[tuple[int, list[str]]]:
        # The rows as the sheet's XML has them, not read-only iter_rows: that makes up an empty row for every
        # row number the XML skips, so that rows numbered 1, 2 and 900,000,000 would cost 900 million made-up
        # rows. Here a skipped number costs nothing, a blank row present in the XML counts against a budget
        # (_with_header), and no row number may exceed Excel's own last row. Nor openpyxl's parse(): it
        # gathers a row's cells whole before anything can look at them (_sheet_rows streams them).
        source_xml = None
        try:
            source_xml = archive.open(sheet_path)
            parser = WorkSheetParser(
                source_xml,
                reader.shared_strings,
                data_only=True,
                epoch=workbook.epoch,
                date_formats=workbook._date_formats,
                timedelta_formats=workbook._timedelta_formats,
            )
            yield from _sheet_rows(parser, source_xml)
        except DomainError:
            raise
        except Exception as exc:
            raise unsupported(_("The Excel file cannot be read.")) from exc
        finally:
            if source_xml is not None:
                source_xml.close()
            archive.close()

    return _with_header(records(), estimated, limits)


def _first_worksheet(reader: Any) -> str:
    """The path of the workbook's first worksheet (chart sheets have no rows), as openpyxl's worksheets[0]."""
    for _sheet, rel in reader.parser.find_sheets():
        if rel.target in reader.valid_files and "chartsheet" not in rel.Type:
            return str(rel.target)
    raise unsupported(_("The Excel file cannot be read."))


def _declared_rows(archive: zipfile.ZipFile, sheet_path: str) -> int | None:
    """Data rows as the sheet's <dimension> declares them, for the progress bar only: it may lie or be missing
    (rows beyond it are read all the same). Only the sheet's first elements are looked at: Excel writes the
    dimension second, and a sheet whose rows come first has none worth walking the sheet for."""
    from openpyxl.utils.cell import range_boundaries
    from openpyxl.worksheet._reader import DATA_TAG, DIMENSION_TAG
    from openpyxl.xml.functions import iterparse

    try:
        with archive.open(sheet_path) as source_xml:
            for seen, (_event, element) in enumerate(iterparse(source_xml, events=("start",))):
                if element.tag == DIMENSION_TAG:
                    last = range_boundaries(element.get("ref", ""))[3]
                    return last - 1 if last and last > 1 else None
                if element.tag == DATA_TAG or seen > DIMENSION_LOOKAHEAD:
                    return None
    except Exception:  # a malformed dimension or sheet only costs the progress bar its total (rows say more)
        return None
    return None


def _sheet_rows(parser: Any, source_xml: IO[bytes]) -> Iterator[tuple[int, list[str]]]:
    """The sheet's rows (number, cells as text) from its XML, cell by cell: each <c> is parsed by openpyxl's
    own parse_cell as it ends and then dropped, as is every other element once read, so that memory stays
    flat whatever one row holds (openpyxl's parse_row builds every cell of a row first: a row of 3.9 million
    cells took 2.2 GB), and a row with more cells than Excel has columns is refused when the limit is passed.
    `parser` is an openpyxl WorkSheetParser (its cell parsing, its row and column counters)."""
    from openpyxl.worksheet._reader import CELL_TAG, ROW_TAG
    from openpyxl.xml.functions import iterparse

    width = MAX_COLUMNS  # until the header row is known: then as wide as the header (at most MAX_COLUMNS)
    seen_header = False
    open_elements: list[Any] = []
    in_cell = 0  # depth of <c> elements open: their children (value, inline string) are kept until it ends
    cells: list[str] | None = None  # the open row's cells
    present = 0  # <c> elements of the open row so far
    for event, element in iterparse(source_xml, events=("start", "end")):
        tag = element.tag
        if event == "start":
            open_elements.append(element)
            if tag == CELL_TAG:
                in_cell += 1
            elif tag == ROW_TAG and not in_cell:
                if cells is not None:
                    raise ValueError("a row inside a row")
                parser.row_counter = _row_number(element.get("r"), parser.row_counter)
                parser.col_counter = 0
                if parser.row_counter > MAX_SHEET_ROWS:
                    raise unsupported(_("The spreadsheet is malformed (a row number beyond Excel's last row)."))
                cells, present = [""] * width, 0
            continue
        open_elements.pop()
        parent = open_elements[-1] if open_elements else None
        if tag == CELL_TAG:
            in_cell -= 1
            if in_cell == 0 and cells is not None and parent is not None and parent.tag == ROW_TAG:
                present += 1
                if present > MAX_ROW_CELLS:
                    raise DomainError(
                        "TOO_LARGE", "A row of the file has more than {limit} columns.", FILE_FIELD, limit=MAX_ROW_CELLS
                    )
                cell = parser.parse_cell(element)
                if 1 <= cell["column"] <= width:
                    cells[cell["column"] - 1] = _cell_text(cell["value"])
        elif tag == ROW_TAG and not in_cell and cells is not None:
            while cells and not cells[-1]:
                cells.pop()
            if cells and not seen_header:
                seen_header = True
                width = len(cells)
            number, row = parser.row_counter, cells
            cells = None
            if parent is not None:
                parent.remove(element)
            yield number, row
            continue
        if not in_cell and parent is not None:
            # Read, or of no interest (formatting, merged ranges, extensions): dropped, not kept in the tree.
            parent.remove(element)


def _row_number(declared: str | None, previous: int) -> int:
    """A <row>'s number: its r attribute (openpyxl accepts "2.0"), else the one after the previous row's."""
    if declared is None:
        return previous + 1
    try:
        return int(declared)
    except ValueError:
        value = float(declared)
        if not value.is_integer():
            raise
        return int(value)
