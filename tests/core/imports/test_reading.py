"""Reading spreadsheets (core.imports.reading): encodings, delimiters, XLSX cells, and every file-level refusal.
Files are generated here, not committed."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook

from core.errors import DomainError
from core.imports.reading import Limits, open_table

LIMITS = Limits(max_bytes=1_000_000, max_rows=1000)
TEXT = "姓名,手机号,所在区县\n张三,13812345678,雁塔区\n李四,13912345678,碑林区\n"


def read(data: bytes | Path, limits: Limits = LIMITS) -> tuple[list[str], list[tuple[int, list[str]]]]:
    table = open_table(data, limits)
    return table.header, list(table.rows())


def refused(data: bytes | Path, limits: Limits = LIMITS) -> str:
    with pytest.raises(DomainError) as error:
        read(data, limits)
    return error.value.code


def xlsx(*rows: list[object]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


EXPECTED = (
    ["姓名", "手机号", "所在区县"],
    [(2, ["张三", "13812345678", "雁塔区"]), (3, ["李四", "13912345678", "碑林区"])],
)


@pytest.mark.parametrize(
    "data",
    [
        TEXT.encode("utf-8"),
        b"\xef\xbb\xbf" + TEXT.encode("utf-8"),  # Excel's "CSV UTF-8" writes a BOM
        TEXT.encode("gbk"),  # Chinese Excel's plain "CSV"
        TEXT.encode("gb18030"),
        TEXT.replace(",", ";").encode(),  # European Excel
        TEXT.replace(",", "\t").encode(),  # tab-separated
        TEXT.replace("\n", "\r\n").encode(),
    ],
    ids=["utf8", "bom", "gbk", "gb18030", "semicolon", "tab", "crlf"],
)
def test_csv_encodings_and_delimiters(data: bytes) -> None:
    assert read(data) == EXPECTED


def test_quoted_cells_and_blank_lines_keep_spreadsheet_row_numbers() -> None:
    data = '姓名,备注\n张三,"第一行\n第二行, 带逗号"\n\n李四,x\n'.encode()
    assert read(data)[1] == [(2, ["张三", "第一行\n第二行, 带逗号"]), (4, ["李四", "x"])]


def test_csv_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "v.csv"
    path.write_bytes(TEXT.encode("gbk"))
    assert read(path) == EXPECTED


def test_xlsx_cells_as_text() -> None:
    # given numbers that are phone numbers (int and float), a date, a blank row
    data = xlsx(
        ["姓名", "手机号", "日期", "经度"],
        ["张三", 13812345678, date(2026, 1, 2), 108.94],
        [],
        ["李四", 13912345678.0, datetime(2026, 1, 2, 8, 30), None],  # noqa: DTZ001 -- Excel times are naive
    )
    header, rows = read(data)
    assert header == ["姓名", "手机号", "日期", "经度"]
    assert rows == [
        (2, ["张三", "13812345678", "2026-01-02", "108.94"]),
        (4, ["李四", "13912345678", "2026-01-02T08:30:00"]),
    ]


def test_xlsx_is_recognised_by_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "really-a-spreadsheet.csv"
    path.write_bytes(xlsx(["姓名"], ["张三"]))
    assert read(path) == (["姓名"], [(2, ["张三"])])


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64,  # the old binary .xls
        b"name,phone\n\x00\x01\x02\x03",
        b"\xff\xfe\xfa\xfb\x80\x81" * 10,  # not UTF-8, not GB18030
    ],
    ids=["pdf", "png", "xls", "nul", "undecodable"],
)
def test_not_a_spreadsheet(data: bytes) -> None:
    assert refused(data) == "UNSUPPORTED_FILE"


def test_a_zip_that_is_not_a_workbook() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    assert refused(out.getvalue()) == "UNSUPPORTED_FILE"


@pytest.mark.parametrize(
    "data", [b"", b"\n\n  \n", b",,,\n,,\n", "\ufeff".encode()], ids=["zero", "blank", "commas", "bom"]
)
def test_empty(data: bytes) -> None:
    assert refused(data) == "EMPTY_FILE"


def test_over_the_size_limit() -> None:
    assert refused(TEXT.encode(), Limits(max_bytes=20, max_rows=10)) == "TOO_LARGE"


def test_xlsx_bomb_is_refused_before_parsing() -> None:
    # given a workbook whose sheet inflates from a few kilobytes to 50 MB (sizes in the zip's directory)
    good = zipfile.ZipFile(io.BytesIO(xlsx(["姓名"], ["张三"])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as bomb:
        for item in good.infolist():
            content = good.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                padding = b"<!--" + b" " * 50_000_000 + b"-->"
                content = content.replace(b"<sheetData>", padding + b"<sheetData>", 1)
            bomb.writestr(item.filename, content)
    data = out.getvalue()
    assert len(data) < 200_000
    # then it is refused under a limit that lets the small file itself through
    assert refused(data, Limits(max_bytes=1_000_000, max_rows=10)) in ("UNSUPPORTED_FILE", "TOO_LARGE")


# -- crafted workbooks (review of issue 17): each trap refused by its own check, not by the size limit ----------

_CT = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships '
    'xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8"?><workbook '
    'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships '
    'xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/></Relationships>'
)
HEADER = ["姓名", "手机号", "志愿类型"]


def _row(number: int, values: list[str]) -> str:
    cells = "".join(
        f'<c r="{chr(65 + i)}{number}" t="inlineStr"><is><t>{value}</t></is></c>' for i, value in enumerate(values)
    )
    return f'<row r="{number}">{cells}</row>'


def raw_xlsx(rows: str, dimension: str | None = None) -> bytes:
    """A workbook whose sheet XML is exactly `rows` (row elements), as a hand-made or crafted file has it."""
    sheet = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        + (f'<dimension ref="{dimension}"/>' if dimension else "")
        + f"<sheetData>{rows}</sheetData></worksheet>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CT)
        archive.writestr("_rels/.rels", _RELS)
        archive.writestr("xl/workbook.xml", _WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        archive.writestr("xl/worksheets/sheet1.xml", sheet)
    return out.getvalue()


def _data(first: int, last: int) -> str:
    return "".join(_row(n, [f"n{n}", f"138{n:08d}", "线下"]) for n in range(first, last + 1))


@pytest.mark.parametrize("dimension", ["A1:C3", "A1", None])
def test_rows_and_columns_beyond_the_declared_dimension_are_read(dimension: str | None) -> None:
    # given a sheet declaring A1:C3 (or only A1, or nothing) that holds a header and six data rows
    header, rows = read(raw_xlsx(_row(1, HEADER) + _data(2, 7), dimension))
    # then every column of the header and every row is read: the declared size is no limit
    assert header == HEADER
    assert [number for number, _ in rows] == [2, 3, 4, 5, 6, 7]
    assert rows[-1][1] == ["n7", "13800000007", "线下"]


def test_skipped_row_numbers_cost_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    # given a 2 KB sheet with rows numbered 1, 2 and 20,000 (openpyxl's iter_rows makes up every row between,
    # each as wide as the sheet: 4 million made-up cells)
    from core.imports import reading

    made: list[object] = []
    real = reading._cell_text
    monkeypatch.setattr(reading, "_cell_text", lambda value: made.append(value) or real(value))
    _, rows = read(raw_xlsx(_row(1, HEADER) + _data(2, 2) + _data(20_000, 20_000)), Limits(1_000_000, 10))
    # then only the rows present are read, and only their cells are looked at
    assert [number for number, _ in rows] == [2, 20_000]
    assert len(made) <= 3 * 3


def test_a_row_number_beyond_excels_last_row_is_refused() -> None:
    # given rows numbered 1, 2 and 900,000,000 (the review's hours-long file)
    data = raw_xlsx(_row(1, HEADER) + _data(2, 2) + _row(900_000_000, ["b", "13800000002", "线下"]))
    assert len(data) < 2_000
    assert refused(data, Limits(1_000_000, 50_000)) == "UNSUPPORTED_FILE"


def test_blank_rows_count_against_a_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.imports import reading

    monkeypatch.setattr(reading, "BLANK_ROWS_ALLOWED", 50)
    blank = "".join(f'<row r="{n}"/>' for n in range(3, 100))
    # given 97 blank rows between two data rows, under max_rows 10 + 50 blank rows allowed: refused
    assert refused(raw_xlsx(_row(1, HEADER) + _data(2, 2) + blank + _data(100, 100)), Limits(1_000_000, 10)) == (
        "TOO_LARGE"
    )
    # the same in a CSV
    assert refused(("姓名\n甲\n" + "\n" * 97 + "乙\n").encode(), Limits(1_000_000, 10)) == "TOO_LARGE"
    # and a few blank rows are fine (their numbers still count)
    few = "".join(f'<row r="{n}"/>' for n in range(3, 40))
    _, rows = read(raw_xlsx(_row(1, HEADER) + _data(2, 2) + few + _data(100, 100)), Limits(1_000_000, 10))
    assert [number for number, _ in rows] == [2, 100]


def test_a_rows_width_is_the_headers() -> None:
    # given data rows with cells far beyond the header's last column (a crafted sheet, or notes off to the side)
    wide = (
        '<row r="2"><c r="A2" t="inlineStr"><is><t>甲</t></is></c><c r="GR2" t="inlineStr"><is><t>x</t></is></c></row>'
    )
    header, rows = read(raw_xlsx(_row(1, HEADER) + wide))
    assert header == HEADER
    assert rows == [(2, ["甲"])]


def _inflated(part: str, padding: bytes) -> bytes:
    """A small workbook (a string table included) whose `part` carries `padding` in an XML comment."""
    good = zipfile.ZipFile(io.BytesIO(xlsx(["姓名"], ["张三"])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for item in good.infolist():
            content = good.read(item.filename)
            if item.filename == part:
                head, sep, rest = content.partition(b"?>")
                content = head + sep + b"<!--" + padding + b"-->" + rest
            archive.writestr(item.filename, content)
    return out.getvalue()


def _noise(size: int) -> bytes:
    # Two letters at random: deflates ~6x, far under the ratio trap.
    import random

    rnd = random.Random(17)
    return bytes(97 + (byte & 1) for byte in rnd.randbytes(size))


LIMIT = Limits(max_bytes=1_000_000, max_rows=10)


def test_a_part_inflating_far_beyond_its_size_is_refused_by_the_ratio() -> None:
    # given a sheet inflating from a few KB to 2 MB: under the total (8 MB) and part (4 MB) caps
    data = _inflated("xl/worksheets/sheet1.xml", b" " * 2_000_000)
    assert len(data) < 20_000
    # then the ratio check refuses it (UNSUPPORTED_FILE; the size caps say TOO_LARGE)
    assert refused(data, LIMIT) == "UNSUPPORTED_FILE"


def test_a_part_over_its_own_cap_is_refused() -> None:
    # given a sheet of 4.5 MB that deflates ordinarily (~6x): file, ratio and total all within the limits
    data = _inflated("xl/worksheets/sheet1.xml", _noise(4_500_000))
    assert len(data) < LIMIT.max_bytes
    assert refused(data, LIMIT) == "TOO_LARGE"


def _with_strings(padding: bytes) -> bytes:
    """A workbook whose cells come from a shared-string table (as Excel writes them), `padding` in that table."""
    sst = (
        b'<?xml version="1.0" encoding="UTF-8"?><!--' + padding + b"-->"
        b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        + "<si><t>姓名</t></si><si><t>张三</t></si>".encode()
        + b"</sst>"
    )
    sheet = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        '<row r="1"><c r="A1" t="s"><v>0</v></c></row><row r="2"><c r="A2" t="s"><v>1</v></c></row>'
        "</sheetData></worksheet>"
    )
    content_types = _CT.replace(
        "</Types>",
        '<Override PartName="/xl/sharedStrings.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
    )
    workbook_rels = _WORKBOOK_RELS.replace(
        "</Relationships>",
        '<Relationship Id="rId2" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" '
        'Target="sharedStrings.xml"/></Relationships>',
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        archive.writestr("[Content_Types].xml", content_types)
        archive.writestr("_rels/.rels", _RELS)
        archive.writestr("xl/workbook.xml", _WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", workbook_rels)
        archive.writestr("xl/sharedStrings.xml", sst)
        archive.writestr("xl/worksheets/sheet1.xml", sheet)
    return out.getvalue()


def test_shared_strings_over_their_cap_are_refused() -> None:
    # given a string table of 600 KB (read whole before the first row): over half the size limit, while the
    # file, every ratio and the total stay within the limits
    data = _with_strings(_noise(600_000))
    assert len(data) < LIMIT.max_bytes
    assert refused(data, LIMIT) == "TOO_LARGE"
    # while the same workbook with a small string table reads
    assert read(_with_strings(_noise(10_000)), LIMIT) == (["姓名"], [(2, ["张三"])])


def test_a_csv_keeps_at_most_max_columns() -> None:
    from core.imports.reading import MAX_COLUMNS

    header = ",".join(f"c{i}" for i in range(MAX_COLUMNS + 50))
    got_header, rows = read(f"{header}\n{'x,' * (MAX_COLUMNS + 49)}x\n".encode())
    assert len(got_header) == MAX_COLUMNS
    assert len(rows[0][1]) == MAX_COLUMNS


def test_a_csv_line_of_a_million_columns_is_refused_before_it_is_split() -> None:
    assert refused(b"," * 1_000_000 + b"x\n1\n", Limits(max_bytes=2_000_000, max_rows=10)) == "TOO_LARGE"


# -- second review of issue 17: work bounded by the structure of the file, not only by its size ----------------


def test_the_delimiter_is_told_without_the_quadratic_sniffer(monkeypatch: pytest.MonkeyPatch) -> None:
    # given a header and one quoted cell of 60,000 commas (csv.Sniffer's quote-guessing regex took 45 s on it)
    import csv

    from core.imports import reading

    def sniffer() -> None:
        raise AssertionError("csv.Sniffer guesses quoting in time quadratic in a quoted cell")

    monkeypatch.setattr(csv, "Sniffer", sniffer)
    sample = '姓名,手机号\n"' + "," * 60_000 + '"\n'
    # then the delimiter is found by one pass that counts delimiters outside quoted cells
    assert reading._delimiter(sample) == ","
    # and the import of that file answers: its row holds more delimiters than any table has columns
    assert refused(sample.encode()) == "TOO_LARGE"
    # while a long quoted cell of fewer commas is read whole, as one cell
    cell = "降压药," * 3000
    assert read(f'姓名,详情\n张三,"{cell}"\n'.encode())[1] == [(2, ["张三", cell.strip()])]


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("姓名;详情;手机号\n张三;药品,两盒;13812345678\n", ";"),  # commas in a semicolon file's free text
        ('"姓名,全名";手机号\n张三;138\n', ";"),  # a delimiter inside a quoted header cell does not count
        ('"说 ""你好"", 再见";x\n1;2\n', ";"),  # doubled quotes inside a quoted cell
        ("\n\n姓名\t手机号\t备注\n张三\t138\t无\n", "\t"),  # blank lines before the header
        ("姓名\n张三\n", ","),  # one column: the comma
        ("姓名\t电话,手机\n张三\t138\n李四\t139\n", "\t"),  # a tie: the one the next rows agree on
        ("姓名,电话;手机\n张三,138\n李四,139\n", ","),
    ],
)
def test_delimiter_from_the_header_outside_quoted_cells(sample: str, expected: str) -> None:
    from core.imports.reading import _delimiter

    assert _delimiter(sample) == expected


def _wide_row(cells: int) -> bytes:
    """A workbook, without a <dimension>, whose second row holds `cells` numeric cells (random: the file
    deflates as a real one does, under the ratio check)."""
    import random

    rnd = random.Random(17)
    values = "".join(f"<c><v>{rnd.randrange(10**6)}</v></c>" for _ in range(cells))
    return raw_xlsx(_row(1, HEADER) + f'<row r="2">{values}</row>' + _data(3, 3))


def test_a_row_of_a_million_cells_is_refused_as_it_is_read() -> None:
    import tracemalloc

    from core.imports.reading import MAX_ROW_CELLS

    # given a 4 MB workbook whose second row holds a million cells (3.9 million took 36 s and 2.2 GB: openpyxl
    # builds a row's cells whole, and walks a sheet without a <dimension> whole to learn its size)
    data = _wide_row(1_000_000)
    assert 1_000_000 < len(data) < 8_000_000
    tracemalloc.start()
    try:
        with pytest.raises(DomainError) as error:
            read(data, Limits(max_bytes=20_000_000, max_rows=10))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # then it is refused for its width, Excel's own, once past it; cells are dropped as they are read
    assert error.value.code == "TOO_LARGE"
    assert dict(error.value.errors[0].params) == {"limit": MAX_ROW_CELLS}
    assert peak < 20_000_000


def test_a_row_as_wide_as_excel_allows_is_read() -> None:
    from core.imports.reading import MAX_ROW_CELLS

    header, rows = read(_wide_row(MAX_ROW_CELLS), Limits(max_bytes=20_000_000, max_rows=10))
    # the cells beyond the header's width are not kept
    assert header == HEADER
    assert [(number, len(cells)) for number, cells in rows] == [(2, 3), (3, 3)]


def _styled(formats: int) -> bytes:
    """A workbook whose style table holds `formats` cell formats (a "too many formats" workbook)."""
    import random

    rnd = random.Random(17)
    xfs = "".join(
        f'<xf numFmtId="{rnd.randrange(200)}" fontId="0" fillId="0" borderId="0" xfId="0"/>' for _ in range(formats)
    ).encode()
    good = zipfile.ZipFile(io.BytesIO(xlsx(["姓名"], ["张三"])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for item in good.infolist():
            content = good.read(item.filename)
            if item.filename == "xl/styles.xml":
                content = content.replace(b'<cellXfs count="1">', b'<cellXfs count="%d">' % (formats + 1) + xfs)
            archive.writestr(item.filename, content)
    return out.getvalue()


def test_a_style_table_of_200000_formats_is_refused_before_it_is_parsed() -> None:
    from core.imports.reading import SETTINGS_PART_MAX

    # given 200,000 cell formats (16 MB of XML, 8.5 s to parse) in a file far under the size limit
    data = _styled(200_000)
    limits = Limits(max_bytes=20_000_000, max_rows=10)
    assert len(data) < 2_000_000
    with pytest.raises(DomainError) as error:
        read(data, limits)
    # then its own cap refuses it (the parameters name the part)
    assert error.value.code == "TOO_LARGE"
    assert dict(error.value.errors[0].params) == {"part": "xl/styles.xml", "limit": SETTINGS_PART_MAX}
    # while a workbook with some thousands of formats reads
    assert read(_styled(5_000), limits) == (["姓名"], [(2, ["张三"])])


@pytest.mark.parametrize(("dimension", "expected"), [("A1:C7", 6), ("A1", None), (None, None), ("nonsense", None)])
def test_the_declared_size_is_only_an_estimate(dimension: str | None, expected: int | None) -> None:
    table = open_table(raw_xlsx(_row(1, HEADER) + _data(2, 4), dimension), LIMITS)
    assert table.estimated_rows == expected
    assert [number for number, _ in table.rows()] == [2, 3, 4]
