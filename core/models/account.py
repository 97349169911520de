from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, CITEXT
from sqlalchemy.orm import Mapped, mapped_column

from core.database import Base
from core.models._columns import created_at, enum_check, pk
from core.tenancy import OrganizationOwned
from core.vocab import Role


class Account(Base):
    __tenancy__ = "organization"
    """A person who signs in. One role, scoped by organisation, community or volunteer record."""

    __tablename__ = "accounts"
    __table_args__ = (
        enum_check("role", [r for r in Role if r not in (Role.SYSTEM, Role.PARTNER)]),
        CheckConstraint("role <> 'community_head' OR community_id IS NOT NULL", name="head_has_community"),
        CheckConstraint("role <> 'volunteer' OR volunteer_id IS NOT NULL", name="volunteer_has_record"),
    )

    id: Mapped[int] = pk()
    username: Mapped[str] = mapped_column(CITEXT, unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(32))
    # None only for platform administrators who belong to no organisation.
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id"))
    # The account's own volunteer record: a volunteer's, or a social worker's (their liaison seats).
    volunteer_id: Mapped[int | None] = mapped_column(ForeignKey("volunteers.id"), unique=True)
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    # Bumped by a password change: bearer tokens carry it, so older tokens stop working.
    token_version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = created_at()


class AccountPluginRole(OrganizationOwned, Base):
    """A plugin role (hook `register_roles`, e.g. `case_work.supervisor`) granted to an account; it belongs to
    the account's organisation."""

    __tablename__ = "account_plugin_roles"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(80), primary_key=True)
    granted_by: Mapped[str] = mapped_column(String(100))
    granted_at: Mapped[datetime] = created_at()


class ApiToken(OrganizationOwned, Base):
    """A partner system's credential: shown once, stored as a SHA-256 hash, revocable, one organisation."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = pk()
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = created_at()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginAttempt(Base):
    """Every sign-in attempt, for throttling (counted in SQL over a time window)."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_username_at", "username", "at"),
        Index("ix_login_attempts_address_at", "address", "at"),
    )

    id: Mapped[int] = pk()
    username: Mapped[str] = mapped_column(CITEXT)
    address: Mapped[str] = mapped_column(String(64))
    success: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """Who did or saw what, when, on which record, for which organisation. Append-only (a trigger refuses
    UPDATE, DELETE and TRUNCATE); there is no API to change it."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at", "id"),
        Index("ix_audit_log_record", "record_type", "record_id"),
        Index("ix_audit_log_organization", "organization_id", "id"),
    )

    id: Mapped[int] = pk()
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(100))
    account_id: Mapped[int | None] = mapped_column(BigInteger)
    organization_id: Mapped[int | None] = mapped_column(BigInteger)
    # write | read | denied | login | login_failed | override
    action: Mapped[str] = mapped_column(String(16))
    operation: Mapped[str] = mapped_column(String(100))
    record_type: Mapped[str | None] = mapped_column(String(64))
    record_id: Mapped[int | None] = mapped_column(BigInteger)
    fields: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default=text("'{}'"))
    request_id: Mapped[str] = mapped_column(String(32), server_default="")
    detail: Mapped[str] = mapped_column(Text, server_default="")
