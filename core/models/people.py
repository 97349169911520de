"""The people served: one core record of a resident, the consents they gave, and referrals between services.

Counseling's client, casework's client and maternal care's mother are each a plugin's view of one
`Resident` (decisions.md, "One identity"). What may be shared about a resident, with whom and why is a
`Consent`; a `Referral` hands a resident over to another service (a plugin of this or another
organisation, or an outside organisation) under one consent, and the receiving organisation sees the
referral -- never the resident row -- only while the referral is live and its consent is in force
(row-level security: migration 0012).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from core.database import Base
from core.models._columns import created_at, enum_check, pk
from core.tenancy import OrganizationOwned
from core.vocab import sql_in


class ConsentScope(StrEnum):
    """What a consent lets be shared: a fixed vocabulary, so that a plugin copies only what it names."""

    SUMMARY = "summary"
    CONTACT = "contact"
    HEALTH = "health"
    CASE_DETAILS = "case_details"


class ReferralStatus(StrEnum):
    SENT = "sent"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    COMPLETED = "completed"
    REVOKED = "revoked"


class Resident(OrganizationOwned, Base):
    """A person an organisation serves. Seen by relation (core.services.residents): those who serve them by a
    plugin's relation, the account that recorded them, and administrators; phone and address in full only
    for those who serve them."""

    __tablename__ = "residents"
    __table_args__ = (Index("ix_residents_organization_id_id", "organization_id", "id"),)

    id: Mapped[int] = pk()
    name: Mapped[str] = mapped_column(String(50))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id"), index=True)
    phone: Mapped[str] = mapped_column(String(20), server_default="")
    address: Mapped[str] = mapped_column(Text, server_default="")
    # Who recorded the person (None: a script, a job, a migration): they keep seeing the record they made.
    recorded_by_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = created_at()


class Consent(OrganizationOwned, Base):
    """What a resident agreed may be shared (`scopes`), with whom (`target`: a plugin's referral target
    name at `target_organization_id`, or an outside organisation named in text), for what purpose, and for
    how long. Revoked, never deleted or otherwise changed (triggers refuse both): the history of what was
    allowed when is itself a record."""

    __tablename__ = "consents"
    __table_args__ = (
        CheckConstraint("target_kind IN ('plugin', 'outside')", name="target_kind_valid"),
        CheckConstraint(
            f"cardinality(scopes) > 0 AND scopes <@ ARRAY[{sql_in(ConsentScope)}]::varchar[]", name="scopes_valid"
        ),
        CheckConstraint("valid_until IS NULL OR valid_until > valid_from", name="validity"),
        CheckConstraint("(revoked_at IS NULL) = (revoked_by IS NULL)", name="revoked_together"),
        CheckConstraint("(target_kind = 'plugin') = (target_organization_id IS NOT NULL)", name="target_organization"),
        # What a referral's composite foreign key names (fk_referrals_consent_target).
        UniqueConstraint("id", "organization_id", "target_organization_id"),
        Index("ix_consents_resident", "resident_id", "id"),
    )

    id: Mapped[int] = pk()
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    target_kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(100))
    # The receiving organisation a plugin target is agreed for (required for plugin targets): a consent for
    # "counseling" is a consent for that organisation's counseling, not every organisation's.
    target_organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    purpose: Mapped[str] = mapped_column(Text)
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = created_at()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[str | None] = mapped_column(String(100))
    revoke_reason: Mapped[str] = mapped_column(Text, server_default="")


class Referral(OrganizationOwned, Base):
    """A resident referred by the sending organisation (the owner of the row) to a plugin's service of a
    receiving organisation (`target_plugin`, `target_organization_id`) or to an outside organisation
    (`target_outside`). The recipient reads `summary` only, through its own policy (migration 0012).

    sent → accepted | declined; accepted → completed; sent | accepted → revoked (by the sender)."""

    __tablename__ = "referrals"
    __table_args__ = (
        enum_check("status", ReferralStatus),
        CheckConstraint(
            "(target_plugin IS NOT NULL AND target_organization_id IS NOT NULL AND target_outside IS NULL) OR "
            "(target_plugin IS NULL AND target_organization_id IS NULL AND target_outside IS NOT NULL)",
            name="one_target",
        ),
        CheckConstraint(
            "status IN ('sent', 'revoked') OR target_outside IS NULL",
            name="outside_only_sent_or_revoked",
        ),
        # The receiving organisation is the one the consent names (an outside referral: no check).
        ForeignKeyConstraint(
            ["consent_id", "organization_id", "target_organization_id"],
            ["consents.id", "consents.organization_id", "consents.target_organization_id"],
            name="fk_referrals_consent_target",
        ),
        Index("ix_referrals_received", "target_organization_id", "id"),
        Index("ix_referrals_sent", "organization_id", "id"),
        Index("ix_referrals_resident", "resident_id"),
        Index("ix_referrals_consent", "consent_id"),
    )

    id: Mapped[int] = pk()
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
    consent_id: Mapped[int] = mapped_column(ForeignKey("consents.id"))
    # Where the referral comes from: a plugin's record, named without a foreign key (any plugin may refer).
    source_plugin: Mapped[str] = mapped_column(String(40))
    source_kind: Mapped[str] = mapped_column(String(40), server_default="")
    source_id: Mapped[int | None] = mapped_column(BigInteger)
    target_plugin: Mapped[str | None] = mapped_column(String(40))
    target_organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    target_outside: Mapped[str | None] = mapped_column(String(100))
    # The only content the recipient reads, chosen by the referrer within what the consent allows.
    summary: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), server_default=text("'sent'"))
    sent_by: Mapped[str] = mapped_column(String(100))
    # The sending account (None: a script): it keeps seeing what it sent.
    sent_by_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    answered_by: Mapped[str | None] = mapped_column(String(100))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decline_reason: Mapped[str] = mapped_column(Text, server_default="")
    completed_by: Mapped[str | None] = mapped_column(String(100))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completion_note: Mapped[str] = mapped_column(Text, server_default="")
    revoked_by: Mapped[str | None] = mapped_column(String(100))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoke_reason: Mapped[str] = mapped_column(Text, server_default="")
