"""Gestational age at the edges: trimester boundaries, the due date, time zones."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from plugins.maternal_care import gestation
from plugins.maternal_care.gestation import GestationalAge

LMP = date(2026, 1, 5)


@pytest.mark.parametrize(
    ("on", "age", "trimester"),
    [
        (date(2026, 1, 5), GestationalAge(0, 0), 1),
        (date(2026, 1, 11), GestationalAge(0, 6), 1),
        (date(2026, 1, 12), GestationalAge(1, 0), 1),
        # the last day of the first trimester and the first of the second
        (gestation.date_at(LMP, 13, 6), GestationalAge(13, 6), 1),
        (gestation.date_at(LMP, 14), GestationalAge(14, 0), 2),
        (gestation.date_at(LMP, 27, 6), GestationalAge(27, 6), 2),
        (gestation.date_at(LMP, 28), GestationalAge(28, 0), 3),
        # the due date is 40+0
        (gestation.edd_from_lmp(LMP), GestationalAge(40, 0), 3),
    ],
)
def test_age_and_trimester_on_a_date(on: date, age: GestationalAge, trimester: int) -> None:
    found = gestation.age_on(LMP, on)
    assert found == age
    assert found is not None
    assert found.trimester == trimester


def test_before_the_lmp_there_is_no_age() -> None:
    assert gestation.age_on(LMP, date(2026, 1, 4)) is None


def test_lmp_and_edd_give_each_other() -> None:
    edd = gestation.edd_from_lmp(LMP)
    assert edd == date(2026, 10, 12)
    assert gestation.lmp_from_edd(edd) == LMP


def test_an_instant_is_dated_where_it_is_lived() -> None:
    # given midnight starting 14+0 in Shanghai (UTC+8): 16:00 the day before in UTC, 06:00 in Honolulu
    assert gestation.date_at(LMP, 14) == date(2026, 4, 13)
    at = datetime(2026, 4, 12, 16, 0, tzinfo=UTC)
    assert gestation.age_at(LMP, at, "Asia/Shanghai") == GestationalAge(14, 0)
    assert gestation.age_at(LMP, at, "UTC") == GestationalAge(13, 6)
    assert gestation.age_at(LMP, at, "Pacific/Honolulu") == GestationalAge(13, 6)
    assert gestation.age_at(LMP, at, "Asia/Shanghai").trimester == 2  # type: ignore[union-attr]
    assert gestation.age_at(LMP, at, "UTC").trimester == 1  # type: ignore[union-attr]


def test_an_instant_without_an_offset_is_refused() -> None:
    with pytest.raises(ValueError, match="offset"):
        gestation.local_date(datetime(2026, 3, 1, 12), "Asia/Shanghai")  # noqa: DTZ001 (the point)
