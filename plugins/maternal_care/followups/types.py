"""GraphQL of the follow-ups: the schedule's items of a pregnancy, the overdue list, booking and outcomes.
Follow-ups are health details (the registry's scope); every field revealing one is noted for the audit trail
(`MaternalCareFollowUp`, field by field)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry import Info, relay
from strawberry.dataloader import DataLoader

from plugins.maternal_care.followups import services
from plugins.maternal_care.followups.models import FollowUp
from plugins.maternal_care.models import Pregnancy
from plugins.maternal_care.registry import types as registry_types
from schema import api as gql

AUDITED = "MaternalCareFollowUp"


@strawberry.enum(description="Where a follow-up stands.")
class MaternalCareFollowUpStatus(Enum):
    OPEN = "open"
    BOOKED = "booked"
    DONE = "done"
    MISSED = "missed"
    NOT_NEEDED = "not_needed"


@strawberry.enum(description="What a follow-up found.")
class MaternalCareFindingOutcome(Enum):
    NORMAL = "normal"
    ABNORMAL = "abnormal"


def _appointments(info: Info) -> DataLoader[int, Any]:
    async def load(ids: list[int]) -> list[Any]:
        return await info.context.read(services.appointments_of, ids)  # type: ignore[no-any-return]

    return info.context.loaders.get("maternal_care:followup_appointments", lambda _: DataLoader(load_fn=load))  # type: ignore[no-any-return]


def _findings(info: Info) -> DataLoader[int, FollowUp | None]:
    """The findings re-checks follow, one statement for a page (a list of re-checks was one query per row)."""

    async def load(ids: list[int]) -> list[FollowUp | None]:
        found = await info.context.read(services.followups_by_id, ids)
        return [found.get(pk) for pk in ids]

    return info.context.loaders.get("maternal_care:followup_findings", lambda _: DataLoader(load_fn=load))  # type: ignore[no-any-return]


@strawberry.type(
    description="One follow-up of a pregnancy from the national schedule (a prenatal check, the postpartum "
    "visit, the day-42 check, an abnormal finding's re-check): its window, booking and outcome. Health "
    "details: those who see the pregnancy only; every read audited."
)
class MaternalCareFollowUp(relay.Node):
    id: relay.NodeID[int]
    row: strawberry.Private[FollowUp]

    @classmethod
    def of(cls, f: FollowUp) -> MaternalCareFollowUp:
        return cls(id=f.id, row=f)

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await gql.resolve_node_rows(info, node_ids, services.followups_by_id, cls.of, required)

    def _read(self, info: Info, field: str) -> FollowUp:
        info.context.note_sensitive_read(AUDITED, self.row.id, field)
        return self.row

    @strawberry.field(description="The schedule's rule (prenatal_1..5, postpartum_visit, postpartum_42, recheck).")
    def rule(self, info: Info) -> str:
        return self._read(info, "rule").rule_code

    @strawberry.field(description="The rule's name in the national schedule.")
    async def label(self, info: Info) -> str:
        schedule = await info.context.read(services.rules)
        return schedule[self._read(info, "label").rule_code].label  # type: ignore[no-any-return]

    @strawberry.field(description="First day of the window.")
    def window_start(self, info: Info) -> date:
        return self._read(info, "windowStart").window_start

    @strawberry.field(description="Last day of the window (overdue after it).")
    def window_end(self, info: Info) -> date:
        return self._read(info, "windowEnd").window_end

    @strawberry.field
    def status(self, info: Info) -> MaternalCareFollowUpStatus:
        return MaternalCareFollowUpStatus(self._read(info, "status").status)

    @strawberry.field(description="A dating correction moved the window away from the booked appointment.")
    def rebook_needed(self, info: Info) -> bool:
        return self._read(info, "rebookNeeded").rebook_needed

    @strawberry.field(description="When the booked appointment starts.")
    async def booked_at(self, info: Info) -> datetime | None:
        row = self._read(info, "bookedAt")
        if row.appointment_id is None or row.status != "booked":
            return None
        found = await _appointments(info).load(row.appointment_id)
        return None if found is None else found[0]  # type: ignore[no-any-return]

    @strawberry.field(description="The staff member it is booked with.")
    async def staff(self, info: Info) -> registry_types.MaternalCarePerson | None:
        from core.models import Account

        pk = self._read(info, "staff").staff_account_id
        return await gql.load(info, Account, pk, registry_types.MaternalCarePerson.of)

    @strawberry.field
    def outcome(self, info: Info) -> MaternalCareFindingOutcome | None:
        value = self._read(info, "outcome").outcome
        return None if value is None else MaternalCareFindingOutcome(value)

    @strawberry.field
    def note(self, info: Info) -> str:
        return self._read(info, "note").note

    @strawberry.field(description="The date it was done or missed.")
    def closed_on(self, info: Info) -> date | None:
        return self._read(info, "closedOn").closed_on

    @strawberry.field(description="The referral an abnormal finding created (core's Referral).")
    def referral_id(self, info: Info) -> strawberry.ID | None:
        pk = self._read(info, "referralId").referral_id
        return None if pk is None else strawberry.ID(gql.encode_id("Referral", pk))

    @strawberry.field(description="The abnormal finding a re-check follows.")
    async def finding(self, info: Info) -> MaternalCareFollowUp | None:
        pk = self._read(info, "finding").finding_id
        if pk is None:
            return None
        found = await _findings(info).load(pk)
        return None if found is None else MaternalCareFollowUp.of(found)

    @strawberry.field
    async def pregnancy(self, info: Info) -> registry_types.MaternalCarePregnancy:
        return await gql.load_required(  # type: ignore[no-any-return]
            info, Pregnancy, self.row.pregnancy_id, registry_types.MaternalCarePregnancy.of
        )


MaternalCareFollowUpPayload = gql.payload("MaternalCareFollowUpPayload", "followUp", MaternalCareFollowUp)


def _id(raw: str, type_name: str, field: str) -> int:
    return gql.decode_id(raw, type_name, ("input", field))


@strawberry.input(description="Book a follow-up (or move its booking) on a staff member's calendar.")
class MaternalCareBookFollowUpInput:
    id: strawberry.ID
    start: datetime
    minutes: int = 30
    staff_id: strawberry.ID | None = strawberry.field(default=None, description="Default: yourself.")
    time_zone: str | None = strawberry.field(default=None, description="Where the window's dates are (IANA).")


@strawberry.input(description="Where an abnormal finding is referred: a service and its organisation, or outside.")
class MaternalCareReferralInput:
    summary: str
    target_plugin: str | None = None
    target_organization_id: strawberry.ID | None = None
    target_outside: str | None = None
    consent_id: strawberry.ID | None = strawberry.field(
        default=None, description="Default: the newest consent covering summary and health for the recipient."
    )


@strawberry.input(description="A follow-up's outcome; an abnormal one names its referral.")
class MaternalCareRecordFollowUpInput:
    id: strawberry.ID
    outcome: MaternalCareFindingOutcome
    note: str = ""
    referral: MaternalCareReferralInput | None = None
    examined_on: date | None = strawberry.field(
        default=None,
        description="The day of the examination (the re-check is counted from it). Default: the booked "
        "appointment's date in `timeZone`, else today there; not in the future, nor before the window or the "
        "booked appointment.",
    )
    time_zone: str | None = None


@strawberry.input
class MaternalCareMissFollowUpInput:
    id: strawberry.ID
    note: str
    missed_on: date | None = strawberry.field(
        default=None,
        description="The day it was missed. Default: the booked appointment's date in `timeZone`, else today "
        "there; not in the future, nor before the window or the booked appointment.",
    )
    time_zone: str | None = None


@strawberry.input
class MaternalCareFollowUpFilter:
    pregnancy_id: strawberry.ID
    statuses: list[MaternalCareFollowUpStatus] | None = None


def _referral(r: MaternalCareReferralInput | None) -> services.ReferralRequest | None:
    if r is None:
        return None
    return services.ReferralRequest(
        summary=r.summary,
        target_plugin=r.target_plugin,
        target_organization_id=gql.decode_optional_id(
            r.target_organization_id, "Organization", ("input", "referral", "targetOrganizationId")
        ),
        target_outside=r.target_outside,
        consent_id=gql.decode_optional_id(r.consent_id, "Consent", ("input", "referral", "consentId")),
    )


def _zone(info: Info, given: str | None) -> str:
    return given or info.context.settings.timezone


@strawberry.type
class MaternalCareFollowUpQuery:
    @strawberry.field(
        description="A pregnancy's follow-ups, by window: for those who read the pregnancy (who serve the "
        "mother, and its named responsible staff member)."
    )
    async def maternal_care_follow_ups(
        self, info: Info, filter: MaternalCareFollowUpFilter, first: int | None = None, after: str | None = None
    ) -> gql.Connection[MaternalCareFollowUp]:
        pregnancy_id = gql.decode_id(filter.pregnancy_id, "MaternalCarePregnancy", ("filter", "pregnancyId"))
        statuses = tuple(s.value for s in filter.statuses or ())
        page = await info.context.read(
            services.of_pregnancy, pregnancy_id, statuses=statuses, first=gql.first_of(info, first), after=after
        )
        # The pregnancy's follow-ups were opened (even for `{ totalCount }`): noted as a read of the pregnancy.
        info.context.note_sensitive_read(registry_types.AUDITED, pregnancy_id, "followUps")
        return gql.connection(info, page, MaternalCareFollowUp.of)

    @strawberry.field(
        description="Follow-ups still open or booked whose window ended before `asOf` (default: today in "
        "`timeZone`), of the mothers you serve: the longest overdue first."
    )
    async def maternal_care_overdue_follow_ups(
        self,
        info: Info,
        as_of: date | None = None,
        time_zone: str | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> gql.Connection[MaternalCareFollowUp]:
        page = await info.context.read(
            services.overdue,
            as_of=as_of,
            time_zone=_zone(info, time_zone),
            first=gql.first_of(info, first),
            after=after,
        )
        return gql.connection(info, page, MaternalCareFollowUp.of)


@strawberry.type
class MaternalCareFollowUpMutation:
    @strawberry.mutation(description="Book a follow-up on a staff member's calendar, or move its booking.")
    async def maternal_care_book_follow_up(
        self, info: Info, input: MaternalCareBookFollowUpInput
    ) -> MaternalCareFollowUpPayload:
        return await gql.mutate(
            info,
            MaternalCareFollowUpPayload,
            "followUp",
            MaternalCareFollowUp.of,
            lambda ctx: services.book(
                ctx,
                _id(input.id, "MaternalCareFollowUp", "id"),
                start=input.start,
                minutes=input.minutes,
                staff_account_id=gql.decode_optional_id(input.staff_id, "Account", ("input", "staffId")),
                time_zone=_zone(info, input.time_zone),
            ),
        )

    @strawberry.mutation(description="Record a follow-up's outcome (abnormal: a referral and a re-check).")
    async def maternal_care_record_follow_up(
        self, info: Info, input: MaternalCareRecordFollowUpInput
    ) -> MaternalCareFollowUpPayload:
        return await gql.mutate(
            info,
            MaternalCareFollowUpPayload,
            "followUp",
            MaternalCareFollowUp.of,
            lambda ctx: services.record_result(
                ctx,
                _id(input.id, "MaternalCareFollowUp", "id"),
                outcome=input.outcome.value,
                note=input.note,
                referral=_referral(input.referral),
                examined_on=input.examined_on,
                time_zone=_zone(info, input.time_zone),
            ),
        )

    @strawberry.mutation(description="Record a follow-up as missed, with why.")
    async def maternal_care_miss_follow_up(
        self, info: Info, input: MaternalCareMissFollowUpInput
    ) -> MaternalCareFollowUpPayload:
        return await gql.mutate(
            info,
            MaternalCareFollowUpPayload,
            "followUp",
            MaternalCareFollowUp.of,
            lambda ctx: services.mark_missed(
                ctx,
                _id(input.id, "MaternalCareFollowUp", "id"),
                note=input.note,
                missed_on=input.missed_on,
                time_zone=_zone(info, input.time_zone),
            ),
        )


def graphql_parts() -> tuple[type, type, tuple[type, ...]]:
    """(query, mutation, extra types) for plugin.py to merge with the other slices'."""
    return MaternalCareFollowUpQuery, MaternalCareFollowUpMutation, (MaternalCareFollowUp,)
