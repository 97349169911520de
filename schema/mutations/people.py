"""Mutations on residents, consents and referrals (rules in core.services.residents/consent/referrals)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry import UNSET, Info

from core.services import consent, referrals, residents
from core.services.context import ServiceContext
from schema import ids
from schema.mutations.base import changes, mutate, payload
from schema.types.people import Consent, ConsentScope, ConsentTargetKind, Referral, Resident

ResidentPayload = payload("ResidentPayload", "resident", Resident)
ConsentPayload = payload("ConsentPayload", "consent", Consent)
ReferralPayload = payload("ReferralPayload", "referral", Referral)


@strawberry.input
class CreateResidentInput:
    name: str
    community_id: strawberry.ID | None = None
    phone: str = ""
    address: str = ""


@strawberry.input(description="Only the fields given change.")
class UpdateResidentInput:
    id: strawberry.ID
    name: str | None = UNSET
    community_id: strawberry.ID | None = UNSET
    phone: str | None = UNSET
    address: str | None = UNSET


@strawberry.input
class RecordConsentInput:
    resident_id: strawberry.ID
    scopes: list[ConsentScope]  # type: ignore[valid-type]
    target: str
    purpose: str
    target_kind: ConsentTargetKind = ConsentTargetKind.PLUGIN
    target_organization_id: strawberry.ID | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None


@strawberry.input
class RevokeInput:
    id: strawberry.ID
    reason: str = ""


@strawberry.input
class SendReferralInput:
    resident_id: strawberry.ID
    consent_id: strawberry.ID
    summary: str
    target_plugin: str | None = None
    target_organization_id: strawberry.ID | None = None
    target_outside: str | None = None


@strawberry.input
class ReferralInput:
    id: strawberry.ID


@strawberry.input
class DeclineReferralInput:
    id: strawberry.ID
    reason: str


@strawberry.input
class CompleteReferralInput:
    id: strawberry.ID
    note: str = ""


def _community(raw: strawberry.ID | None) -> int | None:
    return ids.decode(raw, "Community", ("input", "communityId")) if raw else None


def _referral(raw: strawberry.ID) -> int:
    return ids.decode(raw, "Referral", ("input", "id"))


@strawberry.type
class PeopleMutations:
    @strawberry.mutation
    async def create_resident(self, info: Info, input: CreateResidentInput) -> ResidentPayload:
        async def work(ctx: ServiceContext) -> Any:
            return await residents.create_resident(
                ctx,
                name=input.name,
                community_id=_community(input.community_id),
                phone=input.phone,
                address=input.address,
            )

        return await mutate(info, ResidentPayload, "resident", Resident.from_model, work)

    @strawberry.mutation
    async def update_resident(self, info: Info, input: UpdateResidentInput) -> ResidentPayload:
        async def work(ctx: ServiceContext) -> Any:
            pk = ids.decode(input.id, "Resident", ("input", "id"))
            fields = changes(input, nullable=("community_id",))
            if "community_id" in fields:
                fields["community_id"] = _community(fields["community_id"])
            return await residents.update_resident(ctx, pk, **fields)

        return await mutate(info, ResidentPayload, "resident", Resident.from_model, work)

    @strawberry.mutation(description="Record what a resident agreed may be shared, with whom and why.")
    async def record_consent(self, info: Info, input: RecordConsentInput) -> ConsentPayload:
        async def work(ctx: ServiceContext) -> Any:
            return await consent.record_consent(
                ctx,
                resident_id=ids.decode(input.resident_id, "Resident", ("input", "residentId")),
                scopes=[s.value for s in input.scopes],
                target=input.target,
                purpose=input.purpose,
                target_kind=input.target_kind.value,
                target_organization_id=ids.decode(org, "Organization", ("input", "targetOrganizationId"))
                if (org := input.target_organization_id)
                else None,
                valid_from=input.valid_from,
                valid_until=input.valid_until,
            )

        return await mutate(info, ConsentPayload, "consent", Consent.from_model, work)

    @strawberry.mutation(description="End a consent now; referrals under it leave the recipient's view at once.")
    async def revoke_consent(self, info: Info, input: RevokeInput) -> ConsentPayload:
        async def work(ctx: ServiceContext) -> Any:
            pk = ids.decode(input.id, "Consent", ("input", "id"))
            return await consent.revoke_consent(ctx, pk, reason=input.reason)

        return await mutate(info, ConsentPayload, "consent", Consent.from_model, work)

    @strawberry.mutation(description="Refer a resident to a service, under a consent that covers it.")
    async def send_referral(self, info: Info, input: SendReferralInput) -> ReferralPayload:
        async def work(ctx: ServiceContext) -> Any:
            org = input.target_organization_id
            return await referrals.send_referral(
                ctx,
                resident_id=ids.decode(input.resident_id, "Resident", ("input", "residentId")),
                consent_id=ids.decode(input.consent_id, "Consent", ("input", "consentId")),
                summary=input.summary,
                target_plugin=input.target_plugin,
                target_organization_id=ids.decode(org, "Organization", ("input", "targetOrganizationId"))
                if org
                else None,
                target_outside=input.target_outside,
            )

        return await mutate(info, ReferralPayload, "referral", Referral.from_model, work)

    @strawberry.mutation
    async def accept_referral(self, info: Info, input: ReferralInput) -> ReferralPayload:
        async def work(ctx: ServiceContext) -> Any:
            return await referrals.accept_referral(ctx, _referral(input.id))

        return await mutate(info, ReferralPayload, "referral", Referral.from_model, work)

    @strawberry.mutation
    async def decline_referral(self, info: Info, input: DeclineReferralInput) -> ReferralPayload:
        async def work(ctx: ServiceContext) -> Any:
            return await referrals.decline_referral(ctx, _referral(input.id), reason=input.reason)

        return await mutate(info, ReferralPayload, "referral", Referral.from_model, work)

    @strawberry.mutation
    async def complete_referral(self, info: Info, input: CompleteReferralInput) -> ReferralPayload:
        async def work(ctx: ServiceContext) -> Any:
            return await referrals.complete_referral(ctx, _referral(input.id), note=input.note)

        return await mutate(info, ReferralPayload, "referral", Referral.from_model, work)

    @strawberry.mutation(description="The sender withdraws a sent or accepted referral.")
    async def revoke_referral(self, info: Info, input: RevokeInput) -> ReferralPayload:
        async def work(ctx: ServiceContext) -> Any:
            return await referrals.revoke_referral(ctx, _referral(input.id), reason=input.reason)

        return await mutate(info, ReferralPayload, "referral", Referral.from_model, work)
