"""GraphQL of urgent needs: `maternalCareRaiseUrgentNeed`, and a mother's `urgentNeeds` (resolved here; the field
itself sits on MaternalCareMother in registry/types.py). The rules live in services.py."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry import Info
from strawberry.dataloader import DataLoader

import core
from plugins.maternal_care.models import Mother
from plugins.maternal_care.needs import services
from plugins.maternal_care.needs.models import UrgentNeed
from schema import api as gql

AUDITED = "MaternalCareMother"


# Core's help-request categories and urgencies, by value (schema.api does not export core's GraphQL enums yet;
# tests/plugins/maternal_care/test_needs.py checks these stay core's).
@strawberry.enum(description="What kind of help: core's help-request categories.")
class MaternalCareNeedCategory(Enum):
    MEDICINE = "medicine"
    FOOD = "food"
    DAILY_SUPPLIES = "daily_supplies"
    MEDICAL_CARE = "medical_care"
    PSYCHOLOGICAL = "psychological"
    EPIDEMIC_PREVENTION_SUPPLIES = "epidemic_prevention_supplies"
    OTHER = "other"


@strawberry.enum(description="How urgent: core's help-request urgencies.")
class MaternalCareNeedUrgency(Enum):
    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


@strawberry.enum(description="Whom the need is for.")
class MaternalCareNeedBeneficiary(Enum):
    MOTHER = "mother"
    INFANT = "infant"


@strawberry.type(
    description="An urgent need of a mother or her infant, raised as a core help request (shown with the mother, "
    "to those who read her health details; the request itself follows core's rules)."
)
class MaternalCareUrgentNeed:
    beneficiary: MaternalCareNeedBeneficiary
    what: str
    quantity: int
    note: str
    raised_by: str = strawberry.field(description="Who raised it (as recorded then).")
    raised_at: datetime
    help_request_pk: strawberry.Private[int]

    @classmethod
    def of(cls, n: UrgentNeed) -> MaternalCareUrgentNeed:
        return cls(
            beneficiary=MaternalCareNeedBeneficiary(n.beneficiary),
            what=n.what,
            quantity=n.quantity,
            note=n.note,
            raised_by=n.raised_by,
            raised_at=n.created_at,
            help_request_pk=n.help_request_id,
        )

    @strawberry.field(description="The help request's ID (whether or not you may read the request).")
    def help_request_id(self) -> strawberry.ID:
        return strawberry.ID(gql.encode_id("HelpRequest", self.help_request_pk))

    @strawberry.field(description="The help request, with core's rules: null where you may not see it.")
    async def help_request(self, info: Info) -> gql.HelpRequest | None:
        return await gql.load(info, core.HelpRequest, self.help_request_pk, gql.HelpRequest.from_model)


async def urgent_needs_of(info: Info, mother: Mother) -> list[MaternalCareUrgentNeed]:
    """MaternalCareMother.urgentNeeds: newest first, batched over a page of mothers; audited as health details."""

    async def load(ids: list[int]) -> list[Any]:
        return await info.context.read(services.needs_of, ids)  # type: ignore[no-any-return]

    loader: DataLoader[int, list[UrgentNeed]] = info.context.loaders.get(
        "maternal_care:urgent_needs", lambda _: DataLoader(load_fn=load)
    )
    rows = await loader.load(mother.id)
    info.context.note_sensitive_read(AUDITED, mother.id, "urgentNeeds")
    return [MaternalCareUrgentNeed.of(n) for n in rows]


@strawberry.input(description="An urgent need of a mother or her infant, to become a core help request.")
class MaternalCareRaiseUrgentNeedInput:
    mother_id: strawberry.ID
    category: MaternalCareNeedCategory
    urgency: MaternalCareNeedUrgency
    what: str = strawberry.field(description="What is needed (the request's title), e.g. 婴儿配方奶粉.")
    quantity: int = 1
    beneficiary: MaternalCareNeedBeneficiary = MaternalCareNeedBeneficiary.MOTHER
    note: str = strawberry.field(
        default="", description="Private: kept with her health details, never shown on the help request."
    )
    public_note: str = strawberry.field(
        default="",
        description="Published on the help request (volunteers and community heads read it): "
        "write nothing she would not share.",
    )
    needed_by: datetime | None = None


MaternalCareUrgentNeedPayload = gql.payload("MaternalCareUrgentNeedPayload", "need", MaternalCareUrgentNeed)


@strawberry.type
class MaternalCareNeedsMutation:
    @strawberry.mutation(
        description="Raise an urgent need of a mother or her infant as a help request for her community, "
        "with her as the requester: her social worker or maternal-care staff who may also post requests for "
        "her community under core's rules (one they serve through a liaison seat; FORBIDDEN otherwise)."
    )
    async def maternal_care_raise_urgent_need(
        self, info: Info, input: MaternalCareRaiseUrgentNeedInput
    ) -> MaternalCareUrgentNeedPayload:
        async def work(ctx: Any) -> Any:
            return await services.raise_need(
                ctx,
                services.NeedInput(
                    mother_id=gql.decode_id(input.mother_id, "MaternalCareMother", ("input", "motherId")),
                    category=input.category.value,
                    urgency=input.urgency.value,
                    what=input.what,
                    quantity=input.quantity,
                    beneficiary=input.beneficiary.value,
                    note=input.note,
                    public_note=input.public_note,
                    needed_by=input.needed_by,
                ),
            )

        return await gql.mutate(info, MaternalCareUrgentNeedPayload, "need", MaternalCareUrgentNeed.of, work)


def graphql_parts() -> tuple[type | None, type, tuple[type, ...]]:
    """(query, mutation, extra types) for plugin.py to merge with the other slices'."""
    return None, MaternalCareNeedsMutation, (MaternalCareUrgentNeed,)
