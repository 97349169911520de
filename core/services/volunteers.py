"""Volunteers: registration, profile, availability, credentials and trainings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select

from core import events
from core.errors import DomainError, Validator
from core.i18n import _
from core.models import District, Organization, Training, Volunteer, VolunteerCredential, VolunteerTraining
from core.services import access
from core.services import validation as check
from core.services.common import flush, get
from core.services.context import ServiceContext
from core.services.pagination import Ordering, Page, paginate
from core.services.search import contains
from core.vocab import Availability, CredentialKind, Team, VolunteerMode


@dataclass
class VolunteerInput:
    name: str
    phone: str
    mode: VolunteerMode
    district_id: int | None = None
    organization_id: int | None = None
    latitude: float | None = None
    longitude: float | None = None
    teams: Sequence[Team] = ()
    skills: Sequence[str] = ()
    availability: Availability = Availability.AVAILABLE
    max_concurrent_assignments: int = 3


@dataclass
class VolunteerFilter:
    mode: VolunteerMode | None = None
    availability: Availability | None = None
    district_id: int | None = None
    team: Team | None = None
    skills: Sequence[str] = field(default_factory=tuple)
    search: str | None = None


BY_ID: Ordering[Volunteer] = Ordering(name="volunteer_id", columns=(Volunteer.id,), key=lambda v: (v.id,))


def _require_manage(ctx: ServiceContext, organization_id: int | None) -> None:
    access.require_manage(ctx, "volunteers.manage", organization_id, _("volunteers"))


# What volunteers may change about themselves.
SELF_SERVICE_FIELDS = frozenset({"availability"})


def clean_volunteer(v: Validator, data: VolunteerInput, active_assignments: int | None = None) -> dict[str, Any]:
    """The rules of a volunteer's fields that need no database, problems added to `v` (field paths under
    "input", as the mutations name them): the column values to store. `active_assignments` is the current
    record's, when updating one. Shared by the mutations and the bulk import (core.imports.volunteers)."""
    values: dict[str, Any] = {
        "name": check.text(v, ("input", "name"), data.name, max_length=50, label=_("Name")),
        "phone": check.phone(v, ("input", "phone"), data.phone),
        "mode": VolunteerMode(data.mode).value,
        "district_id": data.district_id,
        "organization_id": data.organization_id,
        "teams": check.enum_values(data.teams),
        "skills": check.tags(v, ("input", "skills"), data.skills),
        "availability": Availability(data.availability).value,
        "max_concurrent_assignments": check.int_range(
            v,
            ("input", "maxConcurrentAssignments"),
            data.max_concurrent_assignments,
            1,
            50,
            _("The maximum of concurrent assignments"),
        ),
    }
    values["latitude"], values["longitude"] = check.location(v, data.latitude, data.longitude, ("input",))
    if active_assignments is not None and data.max_concurrent_assignments < active_assignments:
        v.add(
            ("input", "maxConcurrentAssignments"),
            "OUT_OF_RANGE",
            "The volunteer holds {active} active assignments now; "
            "withdraw some before lowering the maximum below that.",
            active=active_assignments,
        )
    return values


async def _validated(ctx: ServiceContext, data: VolunteerInput, current: Volunteer | None) -> dict[str, Any]:
    v = Validator()
    values = clean_volunteer(v, data, None if current is None else current.active_assignments)
    v.raise_if_any()
    if data.district_id is not None:
        await get(ctx, District, data.district_id, what=_("District"), field=("input", "districtId"))
    await get(ctx, Organization, data.organization_id, what=_("Organisation"), field=ORG_FIELD)
    taken = await ctx.session.scalar(
        select(Volunteer.id).where(
            Volunteer.organization_id == data.organization_id, Volunteer.phone == values["phone"]
        )
    )
    if taken is not None and (current is None or taken != current.id):
        raise DomainError("ALREADY_EXISTS", "A volunteer with this phone number exists already.", ("input", "phone"))
    return values


ORG_FIELD = ("input", "organizationId")


async def register_volunteer(ctx: ServiceContext, data: VolunteerInput) -> Volunteer:
    data = replace(data, organization_id=access.owning_organization(ctx, data.organization_id, ORG_FIELD))
    _require_manage(ctx, data.organization_id)
    volunteer = Volunteer(**await _validated(ctx, data, None))
    ctx.session.add(volunteer)
    await flush(ctx)
    await ctx.publish(
        events.VolunteerRegistered(
            organization_id=volunteer.organization_id, volunteer_id=volunteer.id, mode=volunteer.mode
        )
    )
    return volunteer


async def update_volunteer(ctx: ServiceContext, volunteer_id: int, changes: Mapping[str, Any]) -> Volunteer:
    """Apply the given fields (absent ones keep their value). Locks the row: capacity checks read it.

    A volunteer may change their own availability; everything else needs volunteers.manage."""
    self_service = ctx.viewer.volunteer_id == volunteer_id and set(changes) <= SELF_SERVICE_FIELDS
    if not self_service:
        access.require(ctx, "volunteers.manage")
    volunteer = await get(
        ctx,
        Volunteer,
        volunteer_id,
        what=_("Volunteer"),
        field=("input", "id"),
        lock=True,
        scope=access.volunteer_scope(ctx.viewer),
    )
    access.refuse_move(volunteer.organization_id, dict(changes), ORG_FIELD)
    if not self_service:
        _require_manage(ctx, volunteer.organization_id)
    current = VolunteerInput(**{f.name: getattr(volunteer, f.name) for f in fields(VolunteerInput)})
    for key, value in (await _validated(ctx, replace(current, **changes), volunteer)).items():
        setattr(volunteer, key, value)
    await flush(ctx)
    return volunteer


async def add_credential(
    ctx: ServiceContext,
    volunteer_id: int,
    *,
    kind: CredentialKind,
    number: str = "",
    issued_by: str = "",
    valid_from: datetime | None = None,
    expires_at: datetime | None = None,
) -> VolunteerCredential:
    owner = await get(ctx, Volunteer, volunteer_id, what=_("Volunteer"), field=("input", "volunteerId"))
    _require_manage(ctx, owner.organization_id)
    v = Validator()
    clean_number = check.text(v, ("input", "number"), number, max_length=64, required=False)
    clean_issuer = check.text(v, ("input", "issuedBy"), issued_by, max_length=100, required=False)
    for name, value in (("validFrom", valid_from), ("expiresAt", expires_at)):
        if value is not None and value.tzinfo is None:
            v.add(("input", name), "INVALID_INPUT", "Times must carry a UTC offset.")
    if valid_from and expires_at and valid_from.tzinfo and expires_at.tzinfo and expires_at <= valid_from:
        v.add(("input", "expiresAt"), "OUT_OF_RANGE", "A credential must expire after it becomes valid.")
    v.raise_if_any()
    credential = VolunteerCredential(
        volunteer_id=volunteer_id,
        kind=kind.value,
        number=clean_number,
        issued_by=clean_issuer,
        valid_from=valid_from,
        expires_at=expires_at,
    )
    ctx.session.add(credential)
    await flush(ctx)
    return credential


async def create_training(ctx: ServiceContext, *, code: str, name: str, description: str = "") -> Training:
    access.require(ctx, "volunteers.manage")
    v = Validator()
    clean_code = check.text(v, ("input", "code"), code, max_length=50, label=_("Code")).lower()
    clean_name = check.text(v, ("input", "name"), name, max_length=100, label=_("Name"))
    clean_description = check.text(v, ("input", "description"), description, max_length=4000, required=False)
    v.raise_if_any()
    if await ctx.session.scalar(select(Training.id).where(Training.code == clean_code)) is not None:
        raise DomainError("ALREADY_EXISTS", "A training with this code exists already.", ("input", "code"))
    training = Training(code=clean_code, name=clean_name, description=clean_description)
    ctx.session.add(training)
    await flush(ctx)
    return training


async def record_training(
    ctx: ServiceContext, volunteer_id: int, training_id: int, completed_at: datetime
) -> VolunteerTraining:
    owner = await get(ctx, Volunteer, volunteer_id, what=_("Volunteer"), field=("input", "volunteerId"))
    _require_manage(ctx, owner.organization_id)
    await get(ctx, Training, training_id, what=_("Training"), field=("input", "trainingId"))
    v = Validator()
    if completed_at.tzinfo is None:
        v.add(("input", "completedAt"), "INVALID_INPUT", "Times must carry a UTC offset.")
    elif completed_at > ctx.now():
        v.add(("input", "completedAt"), "OUT_OF_RANGE", "A training cannot be completed in the future.")
    v.raise_if_any()
    record = VolunteerTraining(volunteer_id=volunteer_id, training_id=training_id, completed_at=completed_at)
    ctx.session.add(record)
    await flush(ctx)
    return record


def filtered(f: VolunteerFilter) -> Select[tuple[Volunteer]]:
    stmt = select(Volunteer)
    if f.mode is not None:
        stmt = stmt.where(Volunteer.mode == f.mode.value)
    if f.availability is not None:
        stmt = stmt.where(Volunteer.availability == f.availability.value)
    if f.district_id is not None:
        stmt = stmt.where(Volunteer.district_id == f.district_id)
    if f.team is not None:
        stmt = stmt.where(Volunteer.teams.contains([f.team.value]))
    if f.skills:
        stmt = stmt.where(Volunteer.skills.contains([s.strip().lower() for s in f.skills]))
    if f.search:
        stmt = stmt.where(contains(Volunteer.name, f.search))
    return stmt


async def list_volunteers(ctx: ServiceContext, f: VolunteerFilter, *, first: int, after: str | None) -> Page[Volunteer]:
    access.require(ctx, "volunteers.read")
    return await paginate(ctx, filtered(f).where(access.volunteer_scope(ctx.viewer)), BY_ID, first=first, after=after)


async def get_volunteer(ctx: ServiceContext, volunteer_id: int) -> Volunteer:
    return await get(
        ctx,
        Volunteer,
        volunteer_id,
        what=_("Volunteer"),
        field=("input", "volunteerId"),
        scope=access.volunteer_scope(ctx.viewer),
    )


async def list_trainings(ctx: ServiceContext) -> list[Training]:
    access.require_signed_in(ctx)
    return list((await ctx.session.scalars(select(Training).order_by(Training.id))).all())
