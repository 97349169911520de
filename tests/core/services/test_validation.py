"""Phone numbers: mainland mobile and landline formats."""

from __future__ import annotations

import pytest

from core.errors import Validator
from core.services import validation
from core.services.validation import normalize_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13812345678", "13812345678"),
        ("138 1234 5678", "13812345678"),
        ("+86 138-1234-5678", "13812345678"),
        ("008619912345678", "19912345678"),
        ("029-88881234", "029-88881234"),
        ("02988881234", "029-88881234"),
        ("(029) 8888 1234", "029-88881234"),
        ("010-12345678", "010-12345678"),
        ("0917-3211234", "0917-3211234"),
        ("029-88881234转123", "029-88881234-123"),
    ],
)
def test_valid_numbers_are_normalised(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "12345",
        "12812345678",
        "1381234567",
        "138123456789",
        "phone",
        "029-123",
        "012-34567890",
        "13812345678x",
        "+1 415 555 0100",
    ],
)
def test_invalid_numbers_are_refused(raw: str) -> None:
    assert normalize_phone(raw) is None


@pytest.mark.parametrize("raw", ["\u200b", " \u200b\u202e ", "\u2060\ufeff", "\u3000"])
def test_text_that_shows_nothing_is_required_like_empty_text(raw: str) -> None:
    # given a name of only zero-width, direction or space characters (found from outside: accepted as a title)
    v = Validator()
    # when it is checked as required text
    value = validation.text(v, ("input", "title"), raw, max_length=200)
    # then it is REQUIRED, and a visible name with such marks around it stays as written
    assert ([e.code for e in v.errors], value) == (["REQUIRED"], "")
    shown = Validator()
    assert validation.text(shown, ("input", "title"), "\u200b送药", max_length=200) == "\u200b送药"
    assert shown.errors == []
