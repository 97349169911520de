"""Residents, their consents, and referrals between services (core.services.residents/consent/referrals)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry import Info, relay

from core import models
from core.models.people import ConsentScope as _ConsentScope
from core.models.people import ReferralStatus as _ReferralStatus
from core.services import consent, privacy, referrals, residents
from core.services.pagination import page_size
from schema import ids
from schema.types.common import Connection
from schema.types.enums import mirror
from schema.types.nodes import resolve_node_rows

ConsentScope = mirror(_ConsentScope, "What a consent lets be shared (a plugin copies only what a consent names).")
ReferralStatus = mirror(
    _ReferralStatus,
    "Where a referral stands: SENT, then ACCEPTED or DECLINED; ACCEPTED, then COMPLETED; SENT or ACCEPTED, "
    "then REVOKED by the sender.",
)


@strawberry.enum(description="Whom a consent shares with: a service in the platform (a plugin's), or an outside body.")
class ConsentTargetKind(Enum):
    # The values of core.services.consent.TARGET_KINDS (the service layer validates them).
    PLUGIN = "plugin"
    OUTSIDE = "outside"


@strawberry.type(
    description="A person an organisation serves: the one record plugins' clients point at. Seen by those who "
    "serve them, the account that recorded them, and administrators."
)
class Resident(relay.Node):
    id: relay.NodeID[int]
    name: str
    created_at: datetime
    phone_value: strawberry.Private[str]
    address_value: strawberry.Private[str]
    community_pk: strawberry.Private[int | None]
    organization_id: strawberry.Private[int]
    row: strawberry.Private[Any]

    @classmethod
    def from_model(cls, m: models.Resident) -> Resident:
        return cls(
            id=m.id,
            name=m.name,
            created_at=m.created_at,
            phone_value=m.phone,
            address_value=m.address,
            community_pk=m.community_id,
            organization_id=m.organization_id,
            row=m,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await resolve_node_rows(info, node_ids, residents.residents_by_id, cls.from_model, required)

    @strawberry.field(description="The community's ID, if the resident lives in one the organisation serves.")
    def community_id(self) -> strawberry.ID | None:
        return strawberry.ID(ids.encode("Community", self.community_pk)) if self.community_pk else None

    @strawberry.field(
        description="Sensitive. Masked unless you serve the resident (a plugin's relation: e.g. the social worker "
        "of one of their cases, their counselor); administrators and the recorder read it masked."
    )
    async def phone(self, info: Info) -> str:
        if await info.context.read(residents.sees_contact, self.row):
            if self.phone_value:
                info.context.note_sensitive_read("Resident", self.id, "phone")
            return self.phone_value
        return privacy.mask_phone(self.phone_value) or ""

    @strawberry.field(description="Sensitive. Masked unless you serve the resident (as `phone`).")
    async def address(self, info: Info) -> str:
        if await info.context.read(residents.sees_contact, self.row):
            if self.address_value:
                info.context.note_sensitive_read("Resident", self.id, "address")
            return self.address_value
        return privacy.mask_text(self.address_value)

    @strawberry.field(
        description="What the resident agreed may be shared, newest first, revoked ones included (for those who "
        "see the resident)."
    )
    async def consents(self, info: Info) -> list[Consent]:
        return [Consent.from_model(c) for c in await info.context.read(consent.list_consents, self.id)]


@strawberry.type(description="A resident's consent: what may be shared, with whom, why, and until when.")
class Consent:
    id: strawberry.ID
    scopes: list[ConsentScope]  # type: ignore[valid-type]
    target_kind: ConsentTargetKind
    target: str
    target_organization_pk: strawberry.Private[int | None]
    purpose: str
    valid_from: datetime
    valid_until: datetime | None
    recorded_by: str
    recorded_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None
    revoke_reason: str
    row: strawberry.Private[models.Consent]

    @classmethod
    def from_model(cls, m: models.Consent) -> Consent:
        return cls(
            id=strawberry.ID(ids.encode("Consent", m.id)),
            scopes=[ConsentScope(s) for s in m.scopes],
            target_kind=ConsentTargetKind(m.target_kind),
            target=m.target,
            target_organization_pk=m.target_organization_id,
            purpose=m.purpose,
            valid_from=m.valid_from,
            valid_until=m.valid_until,
            recorded_by=m.recorded_by,
            recorded_at=m.recorded_at,
            revoked_at=m.revoked_at,
            revoked_by=m.revoked_by,
            revoke_reason=m.revoke_reason,
            row=m,
        )

    @strawberry.field(description="Whether the consent allows sharing now: not revoked, inside its validity.")
    def in_force(self, info: Info) -> bool:
        # The request's clock, not the wall clock: what a request reads agrees with what its services decide.
        return consent.in_force(self.row, info.context.app.clock())

    @strawberry.field(description="The organisation whose service the consent is for (null: an outside body).")
    def target_organization_id(self) -> strawberry.ID | None:
        pk = self.target_organization_pk
        return strawberry.ID(ids.encode("Organization", pk)) if pk is not None else None


@strawberry.type(
    description="A resident referred to another service. The receiving organisation reads the summary only, "
    "and only while the referral is not revoked and its consent is in force."
)
class Referral(relay.Node):
    id: relay.NodeID[int]
    status: ReferralStatus  # type: ignore[valid-type]
    summary: str
    source_plugin: str
    source_kind: str
    target_plugin: str | None
    target_outside: str | None
    sent_by: str
    sent_at: datetime
    answered_by: str | None
    answered_at: datetime | None
    decline_reason: str
    completed_by: str | None
    completed_at: datetime | None
    completion_note: str
    revoked_by: str | None
    revoked_at: datetime | None
    revoke_reason: str
    resident_pk: strawberry.Private[int]
    organization_id: strawberry.Private[int]
    target_organization_pk: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, m: models.Referral) -> Referral:
        return cls(
            id=m.id,
            status=ReferralStatus(m.status),
            summary=m.summary,
            source_plugin=m.source_plugin,
            source_kind=m.source_kind,
            target_plugin=m.target_plugin,
            target_outside=m.target_outside,
            sent_by=m.sent_by,
            sent_at=m.sent_at,
            answered_by=m.answered_by,
            answered_at=m.answered_at,
            decline_reason=m.decline_reason,
            completed_by=m.completed_by,
            completed_at=m.completed_at,
            completion_note=m.completion_note,
            revoked_by=m.revoked_by,
            revoked_at=m.revoked_at,
            revoke_reason=m.revoke_reason,
            resident_pk=m.resident_id,
            organization_id=m.organization_id,
            target_organization_pk=m.target_organization_id,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await resolve_node_rows(info, node_ids, referrals.referrals_by_id, cls.from_model, required)

    @strawberry.field(description="The sending organisation's ID.")
    def sending_organization_id(self) -> strawberry.ID:
        return strawberry.ID(ids.encode("Organization", self.organization_id))

    @strawberry.field(description="The receiving organisation's ID (null for an outside organisation).")
    def target_organization_id(self) -> strawberry.ID | None:
        pk = self.target_organization_pk
        return strawberry.ID(ids.encode("Organization", pk)) if pk is not None else None

    @strawberry.field(
        description="The resident's ID: for members of the sending organisation (a recipient in another "
        "organisation: null; the resident itself is shown only to those who may see it)."
    )
    def resident_id(self, info: Info) -> strawberry.ID | None:
        if info.context.viewer.organization_id != self.organization_id:
            return None
        return strawberry.ID(ids.encode("Resident", self.resident_pk))


@strawberry.input
class ReferralListFilter:
    statuses: list[ReferralStatus] | None = None  # type: ignore[valid-type]


def _filter(f: ReferralListFilter | None) -> referrals.ReferralFilter:
    chosen = (f.statuses or []) if f else []
    return referrals.ReferralFilter(statuses=referrals.statuses([s.value for s in chosen]))


@strawberry.type
class PeopleQuery:
    @strawberry.field(description="A resident you serve, recorded, or administer (null otherwise).")
    async def resident(self, info: Info, id: strawberry.ID) -> Resident | None:
        pk = ids.decode(id, "Resident", ("id",))
        found = await Resident.resolve_nodes(info=info, node_ids=[str(pk)])
        return found[0] if found else None

    @strawberry.field(description="Referrals to your organisation that you may answer, newest first.")
    async def referrals_received(
        self, info: Info, filter: ReferralListFilter | None = None, first: int | None = None, after: str | None = None
    ) -> Connection[Referral]:
        size = page_size(first, info.context.settings.max_page_size)
        page = await info.context.read(referrals.referrals_received, _filter(filter), first=size, after=after)
        return Connection.build(page, Referral.from_model, lambda: info.context.read(lambda _: page.total_count()))

    @strawberry.field(
        description="Referrals your organisation sent that you may see (yours, those of residents you serve; "
        "administrators: all of the organisation's), newest first."
    )
    async def referrals_sent(
        self, info: Info, filter: ReferralListFilter | None = None, first: int | None = None, after: str | None = None
    ) -> Connection[Referral]:
        size = page_size(first, info.context.settings.max_page_size)
        page = await info.context.read(referrals.referrals_sent, _filter(filter), first=size, after=after)
        return Connection.build(page, Referral.from_model, lambda: info.context.read(lambda _: page.total_count()))
