"""Accounts, API tokens and the audit trail as GraphQL."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import Info

from core import models
from core.vocab import Role as RoleVocab
from schema.types.enums import mirror
from schema.types.reference import Organization, load_optional

Role = mirror(RoleVocab, "What an account may do; scopes limit where.")


@strawberry.type(description="A person who signs in.")
class Account:
    id: strawberry.ID
    username: str
    display_name: str
    role: Role  # type: ignore[valid-type]
    organization_id: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, m: models.Account) -> Account:
        from schema import ids

        return cls(
            id=strawberry.ID(ids.encode("Account", m.id)),
            username=m.username,
            display_name=m.display_name,
            role=Role(m.role),
            organization_id=m.organization_id,
        )

    @strawberry.field
    async def organization(self, info: Info) -> Organization | None:
        return await load_optional(info, "organization", self.organization_id, Organization.from_model)


@strawberry.type(description="Who is asking.")
class Me:
    label: str
    role: Role | None  # type: ignore[valid-type]
    account: Account | None
    organization_id: strawberry.Private[int | None]
    permissions: list[str]

    @strawberry.field
    async def organization(self, info: Info) -> Organization | None:
        return await load_optional(info, "organization", self.organization_id, Organization.from_model)


@strawberry.type(description="A partner system's credential. The token itself is shown once, at creation.")
class ApiToken:
    id: strawberry.ID
    name: str
    prefix: str = strawberry.field(description="The first characters, to tell tokens apart.")
    created_by: str
    created_at: datetime
    revoked_at: datetime | None
    organization_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, m: models.ApiToken) -> ApiToken:
        from schema import ids

        return cls(
            id=strawberry.ID(ids.encode("ApiToken", m.id)),
            name=m.name,
            prefix=m.prefix,
            created_by=m.created_by,
            created_at=m.created_at,
            revoked_at=m.revoked_at,
            organization_id=m.organization_id,
        )

    @strawberry.field
    async def organization(self, info: Info) -> Organization | None:
        return await load_optional(info, "organization", self.organization_id, Organization.from_model)


@strawberry.type(description="One entry of the append-only audit trail.")
class AuditEntry:
    at: datetime
    actor: str
    action: str = strawberry.field(
        description=(
            "write, read (a sensitive field), denied, login, login_failed, "
            "override (a coordinator waived matching's filters)"
        )
    )
    operation: str
    record_type: str | None
    record_id: strawberry.ID | None
    fields: list[str]
    request_id: str
    detail: str

    @classmethod
    def from_model(cls, m: models.AuditEntry) -> AuditEntry:
        from schema import ids

        record_id = (
            strawberry.ID(ids.encode(m.record_type, m.record_id)) if m.record_type and m.record_id is not None else None
        )
        return cls(
            at=m.at,
            actor=m.actor,
            action=m.action,
            operation=m.operation,
            record_type=m.record_type,
            record_id=record_id,
            fields=list(m.fields),
            request_id=m.request_id,
            detail=m.detail,
        )
