"""Mapping headers to fields (core.imports.mapping): defaults in Chinese and English, a mapping file on top,
and the refusals (unknown field, a field mapped twice, a required field without a column)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import DomainError
from core.imports import load_mapping
from core.imports.mapping import normalize_header, resolve
from core.imports.volunteers import COLUMNS


def test_defaults_in_chinese() -> None:
    got = resolve(
        ["姓名（必填）", "手机号码*", "所在区", "志愿者类型", "特长", "团队", "经度", "纬度", "备注"], COLUMNS, None
    )
    assert got.mapping == {
        "姓名（必填）": "name",
        "手机号码*": "phone",
        "所在区": "district",
        "志愿者类型": "mode",
        "特长": "skills",
        "团队": "teams",
        "经度": "longitude",
        "纬度": "latitude",
    }
    assert got.ignored == ["备注"]


def test_defaults_in_english() -> None:
    got = resolve(
        [" Name (required) ", "PHONE", "District", "Mode", "Skills", "Max concurrent assignments"], COLUMNS, None
    )
    assert set(got.mapping.values()) == {"name", "phone", "district", "mode", "skills", "max_concurrent_assignments"}


def test_the_first_of_two_default_columns_for_one_field_wins() -> None:
    got = resolve(["姓名", "手机号", "联系电话", "志愿类型"], COLUMNS, None)
    assert got.mapping["手机号"] == "phone"
    assert got.ignored == ["联系电话"]


def test_a_mapping_file_overrides_and_extends(tmp_path: Path) -> None:
    # given a TOML mapping naming a header the defaults do not know, and ignoring one they do
    path = tmp_path / "mapping.toml"
    path.write_text('"您的称呼" = "name"\n"手机号" = ""\n"紧急联系电话" = "phone"\n"方式" = "mode"\n', encoding="utf-8")
    mapping = load_mapping(path)
    got = resolve(["您的称呼", "手机号", "紧急联系电话", "方式"], COLUMNS, mapping)
    assert got.mapping == {"您的称呼": "name", "紧急联系电话": "phone", "方式": "mode"}
    assert got.ignored == ["手机号"]


def test_a_json_mapping_file(tmp_path: Path) -> None:
    path = tmp_path / "mapping.json"
    path.write_text('{"称呼": "name"}', encoding="utf-8")
    assert load_mapping(path) == {"称呼": "name"}


def test_a_mapping_naming_an_unknown_field() -> None:
    with pytest.raises(DomainError) as error:
        resolve(["姓名", "手机号", "志愿类型", "血型"], COLUMNS, {"血型": "blood_type"})
    assert [(e.code, e.field) for e in error.value.errors] == [("INVALID_MAPPING", ("mapping", "血型"))]


def test_a_required_field_left_unmapped() -> None:
    with pytest.raises(DomainError) as error:
        resolve(["姓名", "备注"], COLUMNS, None)
    assert {(e.code, e.field) for e in error.value.errors} == {
        ("INVALID_MAPPING", ("mapping", "phone")),
        ("INVALID_MAPPING", ("mapping", "mode")),
    }


def test_two_columns_mapped_explicitly_to_one_field() -> None:
    with pytest.raises(DomainError) as error:
        resolve(["姓名", "手机", "座机", "志愿类型"], COLUMNS, {"手机": "phone", "座机": "phone"})
    assert error.value.code == "INVALID_MAPPING"


def test_an_unreadable_mapping_file(tmp_path: Path) -> None:
    path = tmp_path / "mapping.toml"
    path.write_text("this is = = not toml", encoding="utf-8")
    with pytest.raises(DomainError) as error:
        load_mapping(path)
    assert error.value.code == "INVALID_MAPPING"


@pytest.mark.parametrize(
    ("header", "normal"),
    [("手机号码*", "手机号码"), ("【所在区县】", "所在区县"), ("Ｐｈｏｎｅ (Required)", "phone"), ("姓 名：", "姓名")],
)
def test_header_normalisation(header: str, normal: str) -> None:
    assert normalize_header(header) == normal
