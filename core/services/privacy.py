"""Masking of sensitive values for viewers who may know a record exists but not its private details."""

from __future__ import annotations

from core.services import access
from core.services.context import Viewer
from core.vocab import Role

MASK = "****"


def mask_phone(phone: str | None) -> str | None:
    """`13812345678` → `138****5678`; `029-88881234` → `029-****1234`."""
    if not phone:
        return phone
    if "-" in phone:
        area, _, rest = phone.partition("-")
        return f"{area}-{MASK}{rest[-4:]}"
    return f"{phone[:3]}{MASK}{phone[-4:]}"


def mask_text(value: str) -> str:
    """Addresses keep their first characters (the district) so a volunteer can judge the distance."""
    return value[:3] + MASK if value else value


def sees_request_details(viewer: Viewer, holds_accepted_assignment: bool) -> bool:
    """Requester phone, address and health details of a request the viewer can already see."""
    role = access.role_of(viewer)
    if role in access.SENSITIVE_REQUEST_ROLES:
        return True
    return role == Role.VOLUNTEER and holds_accepted_assignment


def sees_contact(viewer: Viewer, volunteer_id: int | None = None) -> bool:
    """Volunteers' and community heads' phone numbers."""
    role = access.role_of(viewer)
    if role in access.CONTACT_ROLES:
        return True
    return role == Role.VOLUNTEER and volunteer_id is not None and volunteer_id == viewer.volunteer_id
