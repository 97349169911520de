"""The districts an import recognises: by name, by id, by a short name only when it names one district."""

from __future__ import annotations

from core.imports.lookup import Districts, fold


def test_a_district_is_found_by_name_id_and_unambiguous_short_name() -> None:
    # given the city's districts, two of which shorten to the same name
    districts = Districts([(1, "雁塔区"), (2, "高新区"), (3, "长安区"), (4, "长安县"), (5, "ＢＥＩＬＩＮ 区")])
    # then full names (spaces, width and case aside), ids and unambiguous short names find them
    assert [districts.find(t) for t in ("雁塔区", " 雁塔 区", "1", "雁塔", "beilin区", "beilin")] == [1, 1, 1, 1, 5, 5]
    # a short name keeps two characters (高新区 is 高新, never 高), and one naming two districts names none
    assert [districts.find(t) for t in ("高新", "高", "长安", "长安县", "火星区")] == [2, None, None, 4, None]


def test_names_compare_without_spaces_width_or_case() -> None:
    assert fold(" Ｙan Ta　区 ") == fold("yanta区") == "yanta区"
