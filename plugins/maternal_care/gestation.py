"""Gestational age: pure date arithmetic, shared by the registry, lectures and follow-ups.

Obstetric dating counts from the first day of the last menstrual period (LMP); the expected due date (EDD)
is LMP + 280 days (Naegele's rule), so either one gives the other. Age on a date is whole weeks and days
since the LMP: 13+6 is the last day of the first trimester, 14+0 the first of the second. The trimesters
follow China's maternal-care practice (早孕期 < 14 weeks, 中孕期 14+0 to 27+6, 晚孕期 from 28+0).

A date is a calendar date where the woman lives: an instant (a lecture's start, "now") becomes a date in a
time zone first (`local_date`): 07:30 on Monday in Shanghai (UTC+8) is Monday there, while the same instant
is still 23:30 on Sunday in UTC and 13:30 on Sunday in Honolulu (UTC-10) -- a day earlier in the pregnancy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

PREGNANCY = timedelta(days=280)
# From LONGEST_WEEKS+0 on, a pregnancy still recorded as ongoing is a record nobody updated, not a pregnancy:
# the registry refuses dating that far back, the lectures' audience rule places it in no trimester.
LONGEST_WEEKS = 44
SECOND_TRIMESTER_WEEK, THIRD_TRIMESTER_WEEK = 14, 28


@dataclass(frozen=True, order=True)
class GestationalAge:
    """Completed weeks and days since the LMP (`weeks`+`days`, days 0..6)."""

    weeks: int
    days: int

    @classmethod
    def of_days(cls, total: int) -> GestationalAge:
        return cls(total // 7, total % 7)

    @property
    def total_days(self) -> int:
        return self.weeks * 7 + self.days

    @property
    def trimester(self) -> int:
        return trimester_of(self.weeks)

    def __str__(self) -> str:
        return f"{self.weeks}+{self.days}"


def trimester_of(weeks: int) -> int:
    """1, 2 or 3 for a gestational age of `weeks` completed weeks."""
    if weeks < SECOND_TRIMESTER_WEEK:
        return 1
    return 2 if weeks < THIRD_TRIMESTER_WEEK else 3


def edd_from_lmp(lmp: date) -> date:
    return lmp + PREGNANCY


def lmp_from_edd(edd: date) -> date:
    return edd - PREGNANCY


def local_date(at: datetime, zone: ZoneInfo | str) -> date:
    """The calendar date of the instant `at` (timezone-aware) in `zone`."""
    if at.tzinfo is None:
        raise ValueError("an instant needs its UTC offset")
    tz = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
    return at.astimezone(tz).date()


def age_on(lmp: date, on: date) -> GestationalAge | None:
    """Gestational age on the date `on`, or None before the LMP."""
    total = (on - lmp).days
    return None if total < 0 else GestationalAge.of_days(total)


def age_at(lmp: date, at: datetime, zone: ZoneInfo | str) -> GestationalAge | None:
    """Gestational age at the instant `at` as lived in `zone`."""
    return age_on(lmp, local_date(at, zone))


def date_at(lmp: date, weeks: int, days: int = 0) -> date:
    """The date on which the pregnancy reaches `weeks`+`days` (the first day of week `weeks` for days=0)."""
    return lmp + timedelta(days=weeks * 7 + days)
