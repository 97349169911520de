"""GraphQL of the registry: mothers, pregnancies, risk. Root fields start with `maternalCare`, types with
`MaternalCare`. The rules live in services.py; the resolvers translate, and note every health detail they
reveal for the audit trail (`note_sensitive_read`): a pregnancy's dating, grade, outcome and histories.
A mother's name comes from core's resident record, her phone and address from core's `Resident`
(`resident(id: residentId)`), with core's rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import Info, relay
from strawberry.dataloader import DataLoader

from core.models import Account
from plugins.maternal_care.models import DatingCorrection, Mother, Pregnancy, RiskChange
from plugins.maternal_care.registry import services
from schema import api as gql

if TYPE_CHECKING:
    from plugins.maternal_care.needs.types import MaternalCareUrgentNeed

AUDITED = "MaternalCarePregnancy"


@strawberry.enum(description="五色管理: one of green, yellow, orange, red (purple, infectious, is a flag beside it).")
class MaternalCareRiskColour(Enum):
    GREEN = "green"
    YELLOW = "yellow"
    ORANGE = "orange"
    RED = "red"


@strawberry.enum(description="Where a pregnancy stands.")
class MaternalCarePregnancyStatus(Enum):
    ONGOING = "ongoing"
    DELIVERED = "delivered"
    LOSS = "loss"


@strawberry.enum(description="The outcome of a pregnancy.")
class MaternalCareOutcome(Enum):
    DELIVERED = "delivered"
    LOSS = "loss"


@strawberry.enum(description="What the dating was entered from: the last menstrual period or the due date.")
class MaternalCareDatingBasis(Enum):
    LMP = "lmp"
    EDD = "edd"


@strawberry.type(description="A staff member's account, as maternal care names them.")
class MaternalCarePerson:
    account_id: strawberry.ID
    name: str

    @classmethod
    def of(cls, a: Account) -> MaternalCarePerson:
        return cls(account_id=strawberry.ID(gql.encode_id("Account", a.id)), name=a.display_name)


async def _person(info: Info, pk: int | None) -> MaternalCarePerson | None:
    return await gql.load(info, Account, pk, MaternalCarePerson.of)


def _batched(info: Info, key: str, fetch: Callable[..., Any]) -> DataLoader[int, Any]:
    async def load(ids: list[int]) -> list[Any]:
        return await info.context.read(fetch, ids)  # type: ignore[no-any-return]

    return info.context.loaders.get(f"maternal_care:{key}", lambda _: DataLoader(load_fn=load))  # type: ignore[no-any-return]


def mother_name_loader(info: Info) -> DataLoader[int, str | None]:
    """Mothers' names by resident id, batched, with core's residents rules (null where the caller may not see
    the record); the lectures slice names its registrations' mothers through it too."""
    return _batched(info, "mother_name", services.mother_names)


async def _resolve_nodes(
    info: Info, node_ids: Iterable[str], model: type, convert: Callable[[Any], Any], required: bool
) -> list[Any]:
    return await gql.resolve_node_rows(
        info, node_ids, lambda ctx, pks: services.rows_by_id(ctx, model, pks), convert, required
    )


@strawberry.type(description="Gestational age: completed weeks and days since the LMP, and the trimester.")
class MaternalCareGestationalAge:
    on: date = strawberry.field(description="The date the age is for (where the mother lives).")
    weeks: int
    days: int
    trimester: int = strawberry.field(description="1 (to 13+6), 2 (14+0 to 27+6) or 3 (from 28+0).")


@strawberry.type(description="One change of a pregnancy's risk grade (append-only): who, when, why.")
class MaternalCareRiskChange:
    seq: int
    from_colour: MaternalCareRiskColour
    from_infectious: bool
    to_colour: MaternalCareRiskColour
    to_infectious: bool
    actor: str
    reason: str
    at: datetime
    responsible_pk: strawberry.Private[int | None]

    @classmethod
    def of(cls, r: RiskChange) -> MaternalCareRiskChange:
        return cls(
            seq=r.seq,
            from_colour=MaternalCareRiskColour(r.from_colour),
            from_infectious=r.from_infectious,
            to_colour=MaternalCareRiskColour(r.to_colour),
            to_infectious=r.to_infectious,
            actor=r.actor,
            reason=r.reason,
            at=r.at,
            responsible_pk=r.responsible_account_id,
        )

    @strawberry.field
    async def responsible(self, info: Info) -> MaternalCarePerson | None:
        return await _person(info, self.responsible_pk)


@strawberry.type(description="A correction of a pregnancy's dating: from which LMP to which, who, when, why.")
class MaternalCareDatingCorrection:
    from_lmp: date
    to_lmp: date
    basis: MaternalCareDatingBasis
    actor: str
    reason: str
    at: datetime

    @classmethod
    def of(cls, c: DatingCorrection) -> MaternalCareDatingCorrection:
        return cls(
            from_lmp=c.from_lmp,
            to_lmp=c.to_lmp,
            basis=MaternalCareDatingBasis(c.basis),
            actor=c.actor,
            reason=c.reason,
            at=c.at,
        )


@strawberry.type(
    description="A pregnancy of a mother (health details: her social worker, maternal-care staff and "
    "administrators of her organisation only; every read audited)."
)
class MaternalCarePregnancy(relay.Node):
    id: relay.NodeID[int]
    row: strawberry.Private[Pregnancy]

    @classmethod
    def of(cls, p: Pregnancy) -> MaternalCarePregnancy:
        return cls(id=p.id, row=p)

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Pregnancy, cls.of, required)

    @classmethod
    def revealed(cls, info: Info, rows: Iterable[Pregnancy], field: str) -> list[MaternalCarePregnancy]:
        """Rows whose mere presence tells something (she is pregnant, high-risk): noted for the audit trail
        whatever fields the client then asks for (`{ id }` alone included)."""
        found = []
        for p in rows:
            info.context.note_sensitive_read(AUDITED, p.id, field)
            found.append(cls.of(p))
        return found

    def _read(self, info: Info, field: str) -> Pregnancy:
        # The row reached the caller through the registry's scope (lists, nodes, payloads): note the reveal.
        info.context.note_sensitive_read(AUDITED, self.row.id, field)
        return self.row

    @strawberry.field(description="First day of the last menstrual period (the dating's anchor).")
    def lmp(self, info: Info) -> date:
        return self._read(info, "lmp").lmp

    @strawberry.field(description="Expected due date: LMP + 280 days.")
    def edd(self, info: Info) -> date:
        return self._read(info, "edd").edd

    @strawberry.field
    def dating_basis(self, info: Info) -> MaternalCareDatingBasis:
        return MaternalCareDatingBasis(self._read(info, "datingBasis").dating_basis)

    @strawberry.field
    def status(self, info: Info) -> MaternalCarePregnancyStatus:
        return MaternalCarePregnancyStatus(self._read(info, "status").status)

    @strawberry.field(description="The delivery or loss date.")
    def outcome_on(self, info: Info) -> date | None:
        return self._read(info, "outcomeOn").outcome_on

    @strawberry.field
    def outcome_note(self, info: Info) -> str:
        return self._read(info, "outcomeNote").outcome_note

    @strawberry.field(description="Discharged from hospital after the delivery.")
    def discharged_on(self, info: Info) -> date | None:
        return self._read(info, "dischargedOn").discharged_on

    @strawberry.field(description="The risk colour (五色管理).")
    def risk_colour(self, info: Info) -> MaternalCareRiskColour:
        return MaternalCareRiskColour(self._read(info, "riskColour").risk_colour)

    @strawberry.field(description="Purple: an infectious disease, alongside the colour.")
    def infectious(self, info: Info) -> bool:
        return self._read(info, "infectious").infectious

    @strawberry.field(description="The staff member responsible (required for orange, red and purple).")
    async def responsible(self, info: Info) -> MaternalCarePerson | None:
        return await _person(info, self._read(info, "responsible").responsible_account_id)

    @strawberry.field(
        description="Gestational age on a date, at an instant as lived in `timeZone` (IANA; default the "
        "deployment's), or today there; null before the LMP and after the outcome."
    )
    async def gestational_age(
        self, info: Info, on: date | None = None, at: datetime | None = None, time_zone: str | None = None
    ) -> MaternalCareGestationalAge | None:
        row = self._read(info, "gestationalAge")
        day, age = await info.context.read(
            services.gestational_age, row, on=on, at=at, time_zone=time_zone or info.context.settings.timezone
        )
        if age is None:
            return None
        return MaternalCareGestationalAge(on=day, weeks=age.weeks, days=age.days, trimester=age.trimester)

    @strawberry.field(description="Every change of the risk grade, oldest first (append-only).")
    async def risk_history(self, info: Info) -> list[MaternalCareRiskChange]:
        self._read(info, "riskHistory")
        rows = await _batched(info, "risk_history", services.risk_histories).load(self.row.id)
        return [MaternalCareRiskChange.of(r) for r in rows]

    @strawberry.field(description="Every correction of the dating, oldest first (append-only).")
    async def dating_corrections(self, info: Info) -> list[MaternalCareDatingCorrection]:
        self._read(info, "datingCorrections")
        rows = await _batched(info, "dating_corrections", services.dating_corrections).load(self.row.id)
        return [MaternalCareDatingCorrection.of(r) for r in rows]

    @strawberry.field
    async def mother(self, info: Info) -> MaternalCareMother:
        return await gql.load_required(info, Mother, self.row.mother_id, MaternalCareMother.of)  # type: ignore[no-any-return]


@strawberry.type(
    description="A woman registered with maternal care (her social worker, maternal-care staff and "
    "administrators of her organisation). Phone and address: core's Resident (`resident(id: residentId)`)."
)
class MaternalCareMother(relay.Node):
    id: relay.NodeID[int]
    consent_at: datetime
    consent_note: str
    created_at: datetime
    row: strawberry.Private[Mother]

    @classmethod
    def of(cls, m: Mother) -> MaternalCareMother:
        return cls(id=m.id, consent_at=m.consent_at, consent_note=m.consent_note, created_at=m.created_at, row=m)

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Mother, cls.of, required)

    @strawberry.field(description="Core's record of the person (contact there, with core's rules).")
    def resident_id(self) -> strawberry.ID:
        return strawberry.ID(gql.encode_id("Resident", self.row.resident_id))

    @strawberry.field(description="Her name, from her resident record (null where core's rules hide it).")
    async def name(self, info: Info) -> str | None:
        return await mother_name_loader(info).load(self.row.resident_id)

    @strawberry.field
    async def community(self, info: Info) -> gql.Community | None:
        from core.models import Community

        return await gql.load(info, Community, self.row.community_id, gql.Community.from_model)

    @strawberry.field(description="The assigned social worker.")
    async def social_worker(self, info: Info) -> MaternalCarePerson | None:
        return await _person(info, self.row.social_worker_account_id)

    @strawberry.field(description="Her pregnancies, latest first (health details, audited).")
    async def pregnancies(self, info: Info) -> list[MaternalCarePregnancy]:
        rows = await _batched(info, "pregnancies", services.pregnancies_of).load(self.row.id)
        info.context.note_sensitive_read("MaternalCareMother", self.row.id, "pregnancies")
        return MaternalCarePregnancy.revealed(info, rows, "pregnancies")

    @strawberry.field(description="Her ongoing pregnancy, if any (audited: whether she is pregnant is health).")
    async def current_pregnancy(self, info: Info) -> MaternalCarePregnancy | None:
        rows = await _batched(info, "pregnancies", services.pregnancies_of).load(self.row.id)
        info.context.note_sensitive_read("MaternalCareMother", self.row.id, "currentPregnancy")
        current = [p for p in rows if p.status == "ongoing"][:1]
        ongoing = MaternalCarePregnancy.revealed(info, current, "currentPregnancy")
        return ongoing[0] if ongoing else None

    @strawberry.field(
        description="Urgent needs raised for her or her infant as help requests, newest first (health details, "
        "audited; each request with core's rules)."
    )
    async def urgent_needs(
        self, info: Info
    ) -> list[Annotated[MaternalCareUrgentNeed, strawberry.lazy("plugins.maternal_care.needs.types")]]:
        from plugins.maternal_care.needs.types import urgent_needs_of

        return await urgent_needs_of(info, self.row)  # type: ignore[return-value]


# -- inputs and payloads -----------------------------------------------------------------------------------------

MaternalCareMotherPayload = gql.payload("MaternalCareMotherPayload", "mother", MaternalCareMother)
MaternalCarePregnancyPayload = gql.payload("MaternalCarePregnancyPayload", "pregnancy", MaternalCarePregnancy)


def _id(raw: str, type_name: str, field: str) -> int:
    return gql.decode_id(raw, type_name, ("input", field))


def _optional_id(raw: str | None, type_name: str, field: str, where: str = "input") -> int | None:
    return gql.decode_optional_id(raw, type_name, (where, field))


@strawberry.input(description="A new resident, made through core's residents service.")
class MaternalCareNewResidentInput:
    name: str
    phone: str = ""
    address: str = ""


@strawberry.input(description="Register a woman: an existing resident (`residentId`) or a new one (`resident`).")
class MaternalCareRegisterMotherInput:
    consent: bool = strawberry.field(description="Her consent, recorded first (must be true).")
    social_worker_id: strawberry.ID = strawberry.field(description="The assigned social worker's account.")
    resident_id: strawberry.ID | None = None
    resident: MaternalCareNewResidentInput | None = None
    community_id: strawberry.ID | None = None
    consent_note: str = ""


@strawberry.input
class MaternalCareAssignSocialWorkerInput:
    id: strawberry.ID
    social_worker_id: strawberry.ID


@strawberry.input(description="A risk grade: a colour, the purple flag beside it, and who answers for it.")
class MaternalCareGradeInput:
    colour: MaternalCareRiskColour = MaternalCareRiskColour.GREEN
    infectious: bool = False
    responsible_id: strawberry.ID | None = strawberry.field(
        default=None, description="Required for orange, red and purple: a staff member's account."
    )


@strawberry.input(description="A new pregnancy, dated by `lmp` or by `edd` (one of them).")
class MaternalCareRegisterPregnancyInput:
    mother_id: strawberry.ID
    lmp: date | None = None
    edd: date | None = None
    grade: MaternalCareGradeInput | None = None
    reason: str = ""
    time_zone: str | None = strawberry.field(default=None, description='Where "today" is (IANA zone).')


@strawberry.input
class MaternalCareCorrectDatingInput:
    id: strawberry.ID
    lmp: date | None = None
    edd: date | None = None
    reason: str
    time_zone: str | None = None


@strawberry.enum(description="A service a high-risk grade refers the mother to (within her organisation).")
class MaternalCareReferralTarget(Enum):
    CASE_WORK = "case_work"
    COUNSELING = "counseling"


@strawberry.input
class MaternalCareChangeRiskInput:
    id: strawberry.ID
    grade: MaternalCareGradeInput
    reason: str
    refer_to: list[MaternalCareReferralTarget] | None = strawberry.field(
        default=None,
        description="Where a raise to orange, red or purple refers her (default [CASE_WORK]); a service her "
        "organisation does not use is not told. Each service applies its own consent rules.",
    )


@strawberry.input
class MaternalCareRecordOutcomeInput:
    id: strawberry.ID
    outcome: MaternalCareOutcome
    on: date
    discharged_on: date | None = None
    note: str = ""
    time_zone: str | None = None


@strawberry.input(description="The discharge of a delivered pregnancy, recorded after its outcome.")
class MaternalCareRecordDischargeInput:
    pregnancy_id: strawberry.ID
    on: date
    time_zone: str | None = strawberry.field(default=None, description="Where `on` is a date (IANA).")


@strawberry.input
class MaternalCareMotherFilter:
    social_worker_id: strawberry.ID | None = None

    def to_service(self) -> services.MotherFilter:
        return services.MotherFilter(
            social_worker_account_id=_optional_id(self.social_worker_id, "Account", "socialWorkerId", "filter")
        )


def _grade(g: MaternalCareGradeInput | None) -> services.Grade:
    if g is None:
        return services.Grade()
    return services.Grade(
        colour=g.colour.value,
        infectious=g.infectious,
        responsible_account_id=_optional_id(g.responsible_id, "Account", "responsibleId"),
    )


def _zone(info: Info, given: str | None) -> str:
    return given or info.context.settings.timezone


# -- root fields -------------------------------------------------------------------------------------------------


@strawberry.type
class MaternalCareRegistryQuery:
    @strawberry.field(
        description="The mothers you serve (staff and administrators: your organisation's), newest first."
    )
    async def maternal_care_mothers(
        self,
        info: Info,
        filter: MaternalCareMotherFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> gql.Connection[MaternalCareMother]:
        f = (filter or MaternalCareMotherFilter()).to_service()
        page = await info.context.read(services.list_mothers, f, first=gql.first_of(info, first), after=after)
        return gql.connection(info, page, MaternalCareMother.of)

    @strawberry.field(
        description="Ongoing pregnancies graded orange or red, or purple, of the mothers you serve: red first."
    )
    async def maternal_care_high_risk(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> gql.Connection[MaternalCarePregnancy]:
        page = await info.context.read(services.high_risk, first=gql.first_of(info, first), after=after)
        # Being on this list is a health detail in itself: every row is noted, whatever fields are asked for.
        MaternalCarePregnancy.revealed(info, page.items, "highRisk")
        return gql.connection(info, page, MaternalCarePregnancy.of)


@strawberry.type
class MaternalCareRegistryMutation:
    @strawberry.mutation(description="Register a woman with your organisation's maternal care, her consent first.")
    async def maternal_care_register_mother(
        self, info: Info, input: MaternalCareRegisterMotherInput
    ) -> MaternalCareMotherPayload:
        async def work(ctx: Any) -> Any:
            new = input.resident
            return await services.register_mother(
                ctx,
                consent=input.consent,
                social_worker_account_id=_id(input.social_worker_id, "Account", "socialWorkerId"),
                resident_id=_optional_id(input.resident_id, "Resident", "residentId"),
                name=new.name if new else None,
                phone=new.phone if new else "",
                address=new.address if new else "",
                community_id=_optional_id(input.community_id, "Community", "communityId"),
                consent_note=input.consent_note,
            )

        return await gql.mutate(info, MaternalCareMotherPayload, "mother", MaternalCareMother.of, work)

    @strawberry.mutation(description="Hand a mother to another social worker (staff and administrators).")
    async def maternal_care_assign_social_worker(
        self, info: Info, input: MaternalCareAssignSocialWorkerInput
    ) -> MaternalCareMotherPayload:
        return await gql.mutate(
            info,
            MaternalCareMotherPayload,
            "mother",
            MaternalCareMother.of,
            lambda ctx: services.assign_social_worker(
                ctx,
                _id(input.id, "MaternalCareMother", "id"),
                _id(input.social_worker_id, "Account", "socialWorkerId"),
            ),
        )

    @strawberry.mutation(description="Register a pregnancy of a mother, dated by LMP or EDD.")
    async def maternal_care_register_pregnancy(
        self, info: Info, input: MaternalCareRegisterPregnancyInput
    ) -> MaternalCarePregnancyPayload:
        return await gql.mutate(
            info,
            MaternalCarePregnancyPayload,
            "pregnancy",
            MaternalCarePregnancy.of,
            lambda ctx: services.register_pregnancy(
                ctx,
                _id(input.mother_id, "MaternalCareMother", "motherId"),
                lmp=input.lmp,
                edd=input.edd,
                grade=_grade(input.grade),
                reason=input.reason,
                time_zone=_zone(info, input.time_zone),
            ),
        )

    @strawberry.mutation(description="Correct an ongoing pregnancy's dating (LMP or EDD), with why; recorded.")
    async def maternal_care_correct_dating(
        self, info: Info, input: MaternalCareCorrectDatingInput
    ) -> MaternalCarePregnancyPayload:
        return await gql.mutate(
            info,
            MaternalCarePregnancyPayload,
            "pregnancy",
            MaternalCarePregnancy.of,
            lambda ctx: services.correct_dating(
                ctx,
                _id(input.id, "MaternalCarePregnancy", "id"),
                lmp=input.lmp,
                edd=input.edd,
                reason=input.reason,
                time_zone=_zone(info, input.time_zone),
            ),
        )

    @strawberry.mutation(description="Regrade a pregnancy's risk, with why; orange, red and purple name who answers.")
    async def maternal_care_change_risk(
        self, info: Info, input: MaternalCareChangeRiskInput
    ) -> MaternalCarePregnancyPayload:
        return await gql.mutate(
            info,
            MaternalCarePregnancyPayload,
            "pregnancy",
            MaternalCarePregnancy.of,
            lambda ctx: services.change_risk(
                ctx,
                _id(input.id, "MaternalCarePregnancy", "id"),
                _grade(input.grade),
                input.reason,
                refer_to=None if input.refer_to is None else [t.value for t in input.refer_to],
            ),
        )

    @strawberry.mutation(description="Record a pregnancy's outcome: delivered (and discharged) or a loss.")
    async def maternal_care_record_outcome(
        self, info: Info, input: MaternalCareRecordOutcomeInput
    ) -> MaternalCarePregnancyPayload:
        return await gql.mutate(
            info,
            MaternalCarePregnancyPayload,
            "pregnancy",
            MaternalCarePregnancy.of,
            lambda ctx: services.record_outcome(
                ctx,
                _id(input.id, "MaternalCarePregnancy", "id"),
                outcome=input.outcome.value,
                on=input.on,
                discharged_on=input.discharged_on,
                note=input.note,
                time_zone=_zone(info, input.time_zone),
            ),
        )

    @strawberry.mutation(
        description="Record the discharge of a delivered pregnancy (once); the open postpartum home visit moves "
        "to within 7 days of it."
    )
    async def maternal_care_record_discharge(
        self, info: Info, input: MaternalCareRecordDischargeInput
    ) -> MaternalCarePregnancyPayload:
        return await gql.mutate(
            info,
            MaternalCarePregnancyPayload,
            "pregnancy",
            MaternalCarePregnancy.of,
            lambda ctx: services.record_discharge(
                ctx,
                _id(input.pregnancy_id, "MaternalCarePregnancy", "pregnancyId"),
                on=input.on,
                time_zone=_zone(info, input.time_zone),
            ),
        )


def graphql_parts() -> tuple[type, type, tuple[type, ...]]:
    """(query, mutation, extra types) for plugin.py to merge with the other slices'."""
    return MaternalCareRegistryQuery, MaternalCareRegistryMutation, ()
