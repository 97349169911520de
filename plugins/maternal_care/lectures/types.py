"""GraphQL of the maternal-care lectures (root fields `maternalCare…Lecture…`, types `MaternalCareLecture…`).

The rules live in services.py; the resolvers below only translate. Who is registered for a lecture is
health-adjacent (a pregnancy lecture says she is pregnant): registrations answer only for the mothers the
caller serves (staff, administrators, her social worker), and every registration revealed -- in a lecture's
list, by node, in a mother's list -- and every recommendation (it follows her gestational week) is noted for
the audit trail against the mother (`AUDITED`).
`graphql_parts()` is what plugins/maternal_care/plugin.py merges into the plugin's query and mutation types.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry import Info, relay
from strawberry.dataloader import DataLoader

import core
from plugins.maternal_care.lectures import services
from plugins.maternal_care.lectures.models import Lecture, Registration
from plugins.maternal_care.models import Mother
from plugins.maternal_care.registry.types import mother_name_loader
from schema import api as gql

AUDITED = "MaternalCareMother"  # a registration's reveal is noted against the mother it names


def _audit_registrations(info: Info, rows: Iterable[Registration], field: str) -> None:
    for r in rows:
        info.context.note_sensitive_read(AUDITED, r.mother_id, field)


@strawberry.enum(description="Who a lecture is for: a trimester of pregnancy, or the 42 days after a delivery.")
class MaternalCareLectureAudience(Enum):
    TRIMESTER_1 = "trimester_1"
    TRIMESTER_2 = "trimester_2"
    TRIMESTER_3 = "trimester_3"
    POSTPARTUM = "postpartum"


@strawberry.enum(description="A lecture is SCHEDULED or CANCELLED.")
class MaternalCareLectureStatus(Enum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


@strawberry.enum(description="REGISTERED: a seat; WAITLISTED: waiting, first in first out; CANCELLED.")
class MaternalCareRegistrationStatus(Enum):
    REGISTERED = "registered"
    WAITLISTED = "waitlisted"
    CANCELLED = "cancelled"


@strawberry.enum(description="Whether a mother with a seat came.")
class MaternalCareAttendance(Enum):
    PRESENT = "present"
    ABSENT = "absent"


def _loader(info: Info, key: str, fn: Any) -> Any:
    async def load(keys: list[int]) -> list[Any]:
        return await info.context.read(fn, keys)

    return info.context.loaders.get(f"maternal_care:lectures:{key}", lambda _: DataLoader(load_fn=load))


@strawberry.type(description="A lecture for expectant mothers (e.g. an obstetrician online).")
class MaternalCareLecture(relay.Node):
    id: relay.NodeID[int]
    title: str
    speaker: str
    description: str
    starts_at: datetime
    ends_at: datetime
    online_url: str = strawberry.field(description="Empty when it takes place only at `place`.")
    place: str
    capacity: int
    registered_count: int = strawberry.field(description="Seats taken (kept by the database, never over capacity).")
    audience: list[MaternalCareLectureAudience]
    status: MaternalCareLectureStatus
    cancel_reason: str
    row: strawberry.Private[Lecture]

    @classmethod
    def of(cls, lec: Lecture) -> MaternalCareLecture:
        return cls(
            id=lec.id,
            title=lec.title,
            speaker=lec.speaker,
            description=lec.description,
            starts_at=lec.starts_at,
            ends_at=lec.ends_at,
            online_url=lec.online_url,
            place=lec.place,
            capacity=lec.capacity,
            registered_count=lec.registered_count,
            audience=[MaternalCareLectureAudience(a) for a in lec.audience],
            status=MaternalCareLectureStatus(lec.status),
            cancel_reason=lec.cancel_reason,
            row=lec,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await gql.resolve_node_rows(info, node_ids, services.lectures_by_id, cls.of, required)

    @strawberry.field(description="Seats still free (0: a registration joins the waitlist).")
    def seats_left(self) -> int:
        return max(self.capacity - self.registered_count, 0)

    @strawberry.field(description="How many wait for a seat.")
    async def waitlisted_count(self, info: Info) -> int:
        return int(await _loader(info, "waitlisted", services.lecture_counts).load(self.row.id))

    @strawberry.field(
        description="Seats held by mothers who no longer fit the audience on the lecture's date (an edit moved it "
        "or changed whom it is for; each judged in her registration's time zone), of the mothers you serve: they "
        "keep the seat, staff decide. Their registrations answer `fitsAudience: false`."
    )
    async def registrations_outside_audience(self, info: Info) -> int:
        mothers: list[int] = await _loader(info, "outside", services.lectures_outside_audience).load(self.row.id)
        for mother_id in mothers:  # says where her pregnancy stands against the lecture's audience
            info.context.note_sensitive_read(AUDITED, mother_id, "lectureAudienceFit")
        return len(mothers)

    @strawberry.field(
        description="Registrations in arrival order (the waitlist's order): all of them for maternal-care staff "
        "and administrators, those of your own mothers for a social worker."
    )
    async def registrations(
        self,
        info: Info,
        statuses: list[MaternalCareRegistrationStatus] | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> gql.Connection[MaternalCareLectureRegistration]:
        chosen = tuple(s.value for s in statuses or ())
        if after is None:
            # The first page of every lecture of the answer in one statement (a DataLoader keyed by lecture).
            page = await _loader(info, "registrations", services.lectures_registrations).load(
                (self.row.id, chosen, gql.first_of(info, first))
            )
        else:  # paging on within one lecture
            page = await info.context.read(
                services.lecture_registrations, self.row.id, chosen, first=gql.first_of(info, first), after=after
            )
        _audit_registrations(info, page.items, "lectureRegistrations")
        return gql.connection(info, page, MaternalCareLectureRegistration.of)


@strawberry.type(description="A mother's registration for a lecture (seen by those who serve her).")
class MaternalCareLectureRegistration(relay.Node):
    id: relay.NodeID[int]
    status: MaternalCareRegistrationStatus
    created_at: datetime
    promoted_at: datetime | None = strawberry.field(description="When she moved from the waitlist to a seat.")
    cancelled_at: datetime | None
    cancel_reason: str
    attendance: MaternalCareAttendance | None
    time_zone: str = strawberry.field(
        description="The IANA zone she registered in: her lecture's date, reminders and messages are counted in it."
    )
    row: strawberry.Private[Registration]

    @classmethod
    def of(cls, r: Registration) -> MaternalCareLectureRegistration:
        return cls(
            id=r.id,
            status=MaternalCareRegistrationStatus(r.status),
            created_at=r.created_at,
            promoted_at=r.promoted_at,
            cancelled_at=r.cancelled_at,
            cancel_reason=r.cancel_reason,
            attendance=None if r.attendance is None else MaternalCareAttendance(r.attendance),
            time_zone=r.time_zone,
            row=r,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        async def found(ctx: core.ServiceContext, pks: Any) -> dict[int, Registration]:
            rows = await services.registrations_by_id(ctx, pks)
            _audit_registrations(info, rows.values(), "lectureRegistrations")
            return rows

        return await gql.resolve_node_rows(info, node_ids, found, cls.of, required)

    @strawberry.field(description="A MaternalCareMother ID.")
    def mother_id(self) -> strawberry.ID:
        return strawberry.ID(gql.encode_id("MaternalCareMother", self.row.mother_id))

    @strawberry.field(description="The mother's name (her resident record's, with core's rules: empty where hidden).")
    async def mother_name(self, info: Info) -> str:
        mother = await gql.load(info, Mother, self.row.mother_id, lambda m: m)
        if mother is None:
            return ""
        name: str | None = await mother_name_loader(info).load(mother.resident_id)
        return name or ""

    @strawberry.field
    async def lecture(self, info: Info) -> MaternalCareLecture:
        return await gql.load_required(info, Lecture, self.row.lecture_id, MaternalCareLecture.of)  # type: ignore[no-any-return]

    @strawberry.field(
        description="Whether she fits the lecture's audience as it is now, on its date in her registration's time "
        "zone (an edit may have moved it; a seat is kept, a waitlisted one is cancelled when her turn comes)."
    )
    async def fits_audience(self, info: Info) -> bool:
        info.context.note_sensitive_read(AUDITED, self.row.mother_id, "lectureAudienceFit")
        return bool(await _loader(info, "fits", services.registrations_fit).load(self.row.id))

    @strawberry.field(description="Her place on the waitlist (1: next for a seat); null when not waitlisted.")
    async def waitlist_position(self, info: Info) -> int | None:
        if self.row.status != "waitlisted":
            return None
        found: int | None = await _loader(info, "positions", services.waitlist_positions).load(self.row.id)
        return found


MaternalCareLecturePayload = gql.payload("MaternalCareLecturePayload", "lecture", MaternalCareLecture)
MaternalCareLectureRegistrationPayload = gql.payload(
    "MaternalCareLectureRegistrationPayload", "registration", MaternalCareLectureRegistration
)


def _id(raw: str, type_name: str, field: str) -> int:
    return gql.decode_id(raw, type_name, ("input", field))


@strawberry.input(description="All given conditions must hold.")
class MaternalCareLectureFilter:
    upcoming_only: bool = strawberry.field(default=False, description="Only those not started yet.")
    include_cancelled: bool = True


@strawberry.input
class MaternalCareCreateLectureInput:
    title: str
    speaker: str = strawberry.field(description="Who gives it (e.g. an obstetrician of the district hospital).")
    starts_at: datetime = strawberry.field(description="With its offset.")
    ends_at: datetime = strawberry.field(description="After `startsAt`.")
    capacity: int = strawberry.field(description="1 to 500 seats.")
    audience: list[MaternalCareLectureAudience]
    online_url: str = strawberry.field(default="", description="An online link, or a place, or both.")
    place: str = ""
    description: str = ""


@strawberry.input(description="Fields left out stay as they are.")
class MaternalCareUpdateLectureInput:
    id: strawberry.ID
    title: str | None = strawberry.UNSET
    speaker: str | None = strawberry.UNSET
    starts_at: datetime | None = strawberry.UNSET
    ends_at: datetime | None = strawberry.UNSET
    capacity: int | None = strawberry.field(
        default=strawberry.UNSET, description="Not below the seats taken; a higher one promotes the waitlist."
    )
    audience: list[MaternalCareLectureAudience] | None = strawberry.UNSET
    online_url: str | None = strawberry.UNSET
    place: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET


@strawberry.input
class MaternalCareCancelLectureInput:
    id: strawberry.ID
    reason: str


@strawberry.input
class MaternalCareRegisterForLectureInput:
    lecture_id: strawberry.ID
    mother_id: strawberry.ID
    time_zone: str | None = strawberry.field(
        default=None,
        description="The IANA zone she lives in (default: the service's): the registration keeps it, and her "
        "lecture's date (the audience rule, at registration and at promotion) and messages are counted in it.",
    )


@strawberry.input
class MaternalCareCancelLectureRegistrationInput:
    id: strawberry.ID
    reason: str = ""


@strawberry.input
class MaternalCareRecordLectureAttendanceInput:
    id: strawberry.ID
    attendance: MaternalCareAttendance


def _zone(info: Info, given: str | None) -> str:
    return given or info.context.settings.timezone


@strawberry.type
class MaternalCareLecturesQuery:
    @strawberry.field(description="Your organisation's lectures by start.")
    async def maternal_care_lectures(
        self,
        info: Info,
        filter: MaternalCareLectureFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> gql.Connection[MaternalCareLecture]:
        f = filter or MaternalCareLectureFilter()
        page = await info.context.read(
            services.list_lectures,
            services.LectureFilter(upcoming_only=f.upcoming_only, include_cancelled=f.include_cancelled),
            first=gql.first_of(info, first),
            after=after,
        )
        return gql.connection(info, page, MaternalCareLecture.of)

    @strawberry.field(
        description="Upcoming lectures that fit the mother on each lecture's date (trimester, or postpartum "
        "within 42 days), leaving out those she is registered or waitlisted for; soonest first (at most 50). "
        "Dates in `timeZone`, else the zone of her latest registration, else the service's."
    )
    async def maternal_care_lecture_recommendations(
        self, info: Info, mother_id: strawberry.ID, time_zone: str | None = None, first: int = 10
    ) -> list[MaternalCareLecture]:
        pk = gql.decode_id(mother_id, "MaternalCareMother", ("motherId",))
        rows = await info.context.read(
            services.recommendations, pk, time_zone, first=first, default_zone=info.context.settings.timezone
        )
        # What fits her says where her pregnancy stands.
        info.context.note_sensitive_read(AUDITED, pk, "lectureRecommendations")
        return [MaternalCareLecture.of(r) for r in rows]

    @strawberry.field(
        description="A mother's lecture registrations, newest first (her social worker, staff, administrators)."
    )
    async def maternal_care_mother_lecture_registrations(
        self, info: Info, mother_id: strawberry.ID, first: int | None = None, after: str | None = None
    ) -> gql.Connection[MaternalCareLectureRegistration]:
        pk = gql.decode_id(mother_id, "MaternalCareMother", ("motherId",))
        page = await info.context.read(services.mother_registrations, pk, first=gql.first_of(info, first), after=after)
        info.context.note_sensitive_read(AUDITED, pk, "lectureRegistrations")
        return gql.connection(info, page, MaternalCareLectureRegistration.of)


def _given(value: Any) -> Any:
    """A field left out (or null) of an update: None, "leave it" (the service merges under the lecture's lock)."""
    return None if value is strawberry.UNSET else value


@strawberry.type
class MaternalCareLecturesMutation:
    @strawberry.mutation(description="Create a lecture (maternal-care staff, administrators).")
    async def maternal_care_create_lecture(
        self, info: Info, input: MaternalCareCreateLectureInput
    ) -> MaternalCareLecturePayload:
        data = services.LectureInput(
            title=input.title,
            speaker=input.speaker,
            starts_at=input.starts_at,
            ends_at=input.ends_at,
            capacity=input.capacity,
            audience=tuple(a.value for a in input.audience),
            online_url=input.online_url,
            place=input.place,
            description=input.description,
        )
        return await gql.mutate(
            info,
            MaternalCareLecturePayload,
            "lecture",
            MaternalCareLecture.of,
            lambda ctx: services.create_lecture(ctx, data),
        )

    @strawberry.mutation(
        description="Change a lecture ahead; a higher capacity promotes the waitlist's first. Seated mothers are "
        "told of a new time or place; one the edit leaves outside the audience keeps her seat, is told, and is "
        "counted in `registrationsOutsideAudience`."
    )
    async def maternal_care_update_lecture(
        self, info: Info, input: MaternalCareUpdateLectureInput
    ) -> MaternalCareLecturePayload:
        async def work(ctx: core.ServiceContext) -> Lecture:
            pk = _id(input.id, "MaternalCareLecture", "id")
            audience = _given(input.audience)
            changes = services.LectureChanges(
                title=_given(input.title),
                speaker=_given(input.speaker),
                starts_at=_given(input.starts_at),
                ends_at=_given(input.ends_at),
                capacity=_given(input.capacity),
                audience=None if audience is None else tuple(a.value for a in audience),
                online_url=_given(input.online_url),
                place=_given(input.place),
                description=_given(input.description),
            )
            return await services.update_lecture(ctx, pk, changes)

        return await gql.mutate(info, MaternalCareLecturePayload, "lecture", MaternalCareLecture.of, work)

    @strawberry.mutation(description="Cancel a lecture ahead, with a reason.")
    async def maternal_care_cancel_lecture(
        self, info: Info, input: MaternalCareCancelLectureInput
    ) -> MaternalCareLecturePayload:
        return await gql.mutate(
            info,
            MaternalCareLecturePayload,
            "lecture",
            MaternalCareLecture.of,
            lambda ctx: services.cancel_lecture(ctx, _id(input.id, "MaternalCareLecture", "id"), input.reason),
        )

    @strawberry.mutation(
        description="Register a mother for a lecture: a seat while any is free, else the waitlist (first in, "
        "first out)."
    )
    async def maternal_care_register_for_lecture(
        self, info: Info, input: MaternalCareRegisterForLectureInput
    ) -> MaternalCareLectureRegistrationPayload:
        return await gql.mutate(
            info,
            MaternalCareLectureRegistrationPayload,
            "registration",
            MaternalCareLectureRegistration.of,
            lambda ctx: services.register(
                ctx,
                _id(input.lecture_id, "MaternalCareLecture", "lectureId"),
                _id(input.mother_id, "MaternalCareMother", "motherId"),
                _zone(info, input.time_zone),
            ),
        )

    @strawberry.mutation(description="Cancel a registration; a freed seat goes to the first waitlisted at once.")
    async def maternal_care_cancel_lecture_registration(
        self, info: Info, input: MaternalCareCancelLectureRegistrationInput
    ) -> MaternalCareLectureRegistrationPayload:
        return await gql.mutate(
            info,
            MaternalCareLectureRegistrationPayload,
            "registration",
            MaternalCareLectureRegistration.of,
            lambda ctx: services.cancel_registration(
                ctx, _id(input.id, "MaternalCareLectureRegistration", "id"), input.reason
            ),
        )

    @strawberry.mutation(description="Record whether a mother with a seat came (once the lecture has started).")
    async def maternal_care_record_lecture_attendance(
        self, info: Info, input: MaternalCareRecordLectureAttendanceInput
    ) -> MaternalCareLectureRegistrationPayload:
        return await gql.mutate(
            info,
            MaternalCareLectureRegistrationPayload,
            "registration",
            MaternalCareLectureRegistration.of,
            lambda ctx: services.record_attendance(
                ctx, _id(input.id, "MaternalCareLectureRegistration", "id"), input.attendance.value
            ),
        )


def graphql_parts() -> tuple[type, type, tuple[type, ...]]:
    """(query fields, mutation fields, extra types) for plugins/maternal_care/plugin.py."""
    return (
        MaternalCareLecturesQuery,
        MaternalCareLecturesMutation,
        (MaternalCareLecture, MaternalCareLectureRegistration),
    )
