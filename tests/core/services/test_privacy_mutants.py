"""Masking and who sees sensitive values, with expectations written out by hand (README "Sensitive fields"):
no database, so `make mutation` judges core/services/privacy.py in seconds."""

from __future__ import annotations

import pytest

from core.services import privacy
from core.services.context import Viewer

ALL_ROLES = (
    "platform_admin",
    "organization_admin",
    "social_worker",
    "counselor",
    "community_head",
    "volunteer",
    "partner",
    "system",
    None,  # anonymous
)
# Who serves the requester (sees phone, address, health details of any request they can see)
SEES_REQUEST_DETAILS = {
    "platform_admin",
    "organization_admin",
    "social_worker",
    "counselor",
    "community_head",
    "partner",
    "system",
}
# Who sees volunteers' and community heads' phone numbers
SEES_CONTACTS = {"platform_admin", "organization_admin", "social_worker", "counselor", "system"}


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812345678", "138****5678"),
        ("029-88881234", "029-****1234"),
        ("0917-7654321", "0917-****4321"),
        ("029-8888-1234", "029-****1234"),  # only the area code before the first hyphen stays
        ("12345", "123****2345"),
        ("", ""),
        (None, None),
    ],
)
def test_phone_masks_keep_the_prefix_and_the_last_four_digits(phone: str | None, masked: str | None) -> None:
    assert privacy.mask_phone(phone) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [("碑林区东大街1号", "碑林区****"), ("ab", "ab****"), ("", "")],
)
def test_text_masks_keep_the_first_three_characters(value: str, masked: str) -> None:
    assert privacy.mask_text(value) == masked


@pytest.mark.parametrize("role", ALL_ROLES)
@pytest.mark.parametrize("holds_accepted", [False, True])
def test_who_sees_a_requesters_details(role: str | None, holds_accepted: bool) -> None:
    # given a viewer of `role`, holding an accepted assignment on the request or not
    viewer = Viewer(label="someone", role=role, volunteer_id=7 if role == "volunteer" else None)
    # then the serving roles always see the details, a volunteer only while holding an accepted assignment
    expected = role in SEES_REQUEST_DETAILS or (role == "volunteer" and holds_accepted)
    assert privacy.sees_request_details(viewer, holds_accepted) is expected


@pytest.mark.parametrize("role", ALL_ROLES)
@pytest.mark.parametrize("whose", ["own", "another", "nobody's"])
def test_who_sees_a_contact_phone(role: str | None, whose: str) -> None:
    # given a viewer of `role` (a volunteer with record 7) and a phone of volunteer 7, of volunteer 8, or of no
    # volunteer (a community head's)
    viewer = Viewer(label="someone", role=role, volunteer_id=7 if role == "volunteer" else None)
    volunteer_id = {"own": 7, "another": 8, "nobody's": None}[whose]
    # then the contact roles see every phone, a volunteer only their own
    expected = role in SEES_CONTACTS or (role == "volunteer" and whose == "own")
    assert privacy.sees_contact(viewer, volunteer_id) is expected


def test_a_volunteer_without_a_record_sees_no_volunteers_phone() -> None:
    viewer = Viewer(label="someone", role="volunteer", volunteer_id=None)
    assert privacy.sees_contact(viewer, None) is False
    assert privacy.sees_contact(viewer) is False
