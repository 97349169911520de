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
