"""Urgent needs: a mother's or her infant's urgent need becomes a core help request.

Through core's public service (`core.submit_help_request`), as the caller: core's rules decide whether they
may post for the mother's community (`requests.create`, the communities they serve), and the request has
core's history (submitted, by whom) and events (`help_request.submitted`, then every step), its matching and
its visibility. What maternal care adds is the link (`UrgentNeed`): the request was raised for this mother.

Who raises one: those who read her health details (the registry's `mother_scope`: her assigned social worker,
maternal-care staff, administrators of her organisation) -- and who see her contact in full (core's residents:
those who serve her), since the request carries her name and phone as the requester's, to reach her. An
administrator reads her contact masked and so does not copy it into a request: FORBIDDEN.
The plugin adds no way around core's rule for WHERE a request is posted: a social worker or staff member
who does not serve her community in core (a liaison seat there) is refused (FORBIDDEN, on `motherId`) like
anyone posting for a community they do not serve. The mother's social worker is expected to hold a seat in
her community; the registry does not require it, so that a worker can be assigned before the seat is given.

What the request says. Core shows requests to volunteers, community heads and coordinators: it says what is
needed and how much, never why -- no pregnancy, grade, ward or diagnosis is copied into it, and no population
tag is set for her. Its description is built from `what`, the quantity and whom it is for (mother or infant:
no health word), plus `public_note` only when the staff member writes one to publish. `note` is private: it
stays on the link, read with her health details, and is never copied into the request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select

import core
from core.i18n import _
from plugins.maternal_care.models import Mother
from plugins.maternal_care.needs.models import BENEFICIARIES, MAX_QUANTITY, UrgentNeed
from plugins.maternal_care.registry import services as registry

# Core's help-request categories and urgencies (core.vocab), by value: the GraphQL enums are core's own.
CATEGORIES = (
    "medicine",
    "food",
    "daily_supplies",
    "medical_care",
    "psychological",
    "epidemic_prevention_supplies",
    "other",
)
URGENCIES = ("critical", "high", "normal", "low")
MAX_WHAT = 200  # core's title
MAX_NOTE = 2000

ERROR_CODES = {
    "MATERNAL_CARE_NO_COMMUNITY": "The mother has no community: a help request is posted for one.",
    "MATERNAL_CARE_NO_CONTACT": "The mother's resident record has no phone to reach her.",
}

# Core's fields that have another name here.
_FIELDS = {"title": "what", "description": "publicNote", "communityId": "motherId", "requesterPhone": "motherId"}


@dataclass(frozen=True)
class NeedInput:
    mother_id: int
    category: str
    urgency: str
    what: str
    quantity: int = 1
    beneficiary: str = "mother"
    note: str = ""
    public_note: str = ""
    needed_by: datetime | None = None


def _validated(data: NeedInput) -> tuple[str, str, str]:
    v = core.Validator()
    v.check(data.category in CATEGORIES, ("input", "category"), "INVALID_INPUT", "Unknown category.")
    v.check(data.urgency in URGENCIES, ("input", "urgency"), "INVALID_INPUT", "Unknown urgency.")
    v.check(
        data.beneficiary in BENEFICIARIES, ("input", "beneficiary"), "INVALID_INPUT", "For the mother or her infant."
    )
    what = (data.what or "").strip()
    v.check(bool(what), ("input", "what"), "REQUIRED", "Say what is needed.")
    v.check(len(what) <= MAX_WHAT, ("input", "what"), "OUT_OF_RANGE", "At most 200 characters.")
    v.check(1 <= data.quantity <= MAX_QUANTITY, ("input", "quantity"), "OUT_OF_RANGE", "The quantity is 1 to 10000.")
    note = (data.note or "").strip()
    v.check(len(note) <= MAX_NOTE, ("input", "note"), "OUT_OF_RANGE", "At most 2000 characters.")
    public_note = (data.public_note or "").strip()
    v.check(len(public_note) <= MAX_NOTE, ("input", "publicNote"), "OUT_OF_RANGE", "At most 2000 characters.")
    v.raise_if_any()
    return what, note, public_note


# Whom the need is for, as the request says it (the organisation's language; no health word).
_FOR = {"mother": "母亲", "infant": "婴儿"}


def public_description(what: str, quantity: int, beneficiary: str, public_note: str) -> str:
    """The request's description: what, how much, for whom, and what the staff member chose to publish --
    never the private note (volunteers and community heads read the request)."""
    text = f"{what} × {quantity}（{_FOR[beneficiary]}）"
    return text + (f"\n{public_note}" if public_note else "")


def _renamed(error: core.DomainError) -> core.DomainError:
    """Core's refusal, addressed to this mutation's input (core names its own fields)."""

    def field(path: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if path is not None and len(path) >= 2 and path[0] == "input" and path[1] in _FIELDS:
            return ("input", _FIELDS[path[1]], *path[2:])
        return path

    return core.DomainError.many(replace(e, field=field(e.field)) for e in error.errors)


async def raise_need(ctx: core.ServiceContext, data: NeedInput) -> UrgentNeed:
    """Raise an urgent need of a mother (or her infant) as a core help request for her community, with her as
    the requester, and link it to her. Nothing is written on a refusal (core's included)."""
    core.require(ctx, registry.MANAGE)
    what, note, public_note = _validated(data)
    mother: Mother = await core.get_row(
        ctx,
        Mother,
        data.mother_id,
        what=_("Mother"),
        field=("input", "motherId"),
        lock=True,  # one at a time per mother: core's duplicate detection sees the one before
        scope=registry.mother_scope(ctx),
    )
    if mother.community_id is None:
        raise core.DomainError(
            "MATERNAL_CARE_NO_COMMUNITY",
            "The mother has no community: a help request is posted for one.",
            ("input", "motherId"),
        )
    resident = await core.residents.get_resident(ctx, mother.resident_id)
    if not await core.residents.sees_contact(ctx, resident):
        raise core.DomainError(
            "FORBIDDEN", "Only those who serve the mother post requests with her contact.", ("input", "motherId")
        )
    if not (resident.phone or "").strip():
        raise core.DomainError(
            "MATERNAL_CARE_NO_CONTACT", "The mother's resident record has no phone to reach her.", ("input", "motherId")
        )
    description = public_description(what, data.quantity, data.beneficiary, public_note)
    try:
        request = await core.submit_help_request(
            ctx,
            core.HelpRequestInput(
                community_id=mother.community_id,
                title=what,
                category=data.category,  # type: ignore[arg-type]
                urgency=data.urgency,  # type: ignore[arg-type]
                requester_name=resident.name,
                requester_phone=resident.phone,
                description=description,
                needed_by=data.needed_by,
                requester_address=(resident.address or "")[:300],
            ),
        )
    except core.DomainError as refusal:
        raise _renamed(refusal) from None
    need = UrgentNeed(
        mother_id=mother.id,
        help_request_id=request.id,
        beneficiary=data.beneficiary,
        what=what,
        quantity=data.quantity,
        note=note,
        raised_by_account_id=ctx.viewer.account_id,
        raised_by=ctx.viewer.label[:100],
        organization_id=mother.organization_id,
    )
    ctx.session.add(need)
    await core.flush(ctx)
    return need


async def needs_of(ctx: core.ServiceContext, mother_ids: Sequence[int]) -> list[list[UrgentNeed]]:
    """Each mother's urgent needs, newest first: for those who read her health details (the registry's scope),
    none for anyone else. One query for a page of mothers."""
    rows = await ctx.session.scalars(
        select(UrgentNeed)
        .where(
            UrgentNeed.mother_id.in_(list(mother_ids)),
            UrgentNeed.mother_id.in_(select(Mother.id).where(registry.mother_scope(ctx))),
        )
        .order_by(UrgentNeed.mother_id, UrgentNeed.id.desc())
    )
    found: dict[int, list[UrgentNeed]] = {pk: [] for pk in mother_ids}
    for row in rows:
        found[row.mother_id].append(row)
    return [found[pk] for pk in mother_ids]
