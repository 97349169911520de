"""Tables of casework's progress notes (migration w002_case_notes).

The text of a note and of each of its revisions is sealed (core.services.sealing): bound to its table,
column and row, so a dump shows bytes and a sealed text copied into another row does not open. The
database keeps the rules whoever writes (triggers of w002): nothing is deleted, an edit keeps the previous
version as a revision first, a voided note changes no more, nothing is written on a closed case, revisions
and accesses are append-only.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core import Base, OrganizationOwned, created_at_column, pk_column
from core.services import sealing

NOTE_TYPES = ("home_visit", "call", "meeting", "other")
# Who opened a case's notes with a stated purpose (the case's social worker needs none).
ACCESS_RELATIONS = ("supervisor", "platform_admin", "organization_admin")

NOTES_TABLE = "case_work_notes"
REVISIONS_TABLE = "case_work_note_revisions"
TEXT_COLUMN = "text_sealed"


class Note(OrganizationOwned, Base):
    """A progress note on a case: when it happened, what kind of contact, the text (sealed), who wrote it."""

    __tablename__ = NOTES_TABLE
    __table_args__ = (
        CheckConstraint(f"note_type IN {NOTE_TYPES!r}", name="note_type_valid"),
        sealing.sealed_check(TEXT_COLUMN),
        CheckConstraint("revision >= 0", name="revision_not_negative"),
        CheckConstraint(
            "(voided_at IS NULL) = (void_reason IS NULL) AND (voided_at IS NULL) = (voided_by_account_id IS NULL)",
            name="void_complete",
        ),
        CheckConstraint("void_reason IS NULL OR length(btrim(void_reason)) > 0", name="void_reason_given"),
        Index("ix_case_work_notes_case", "case_id", "occurred_at", "id"),
    )

    id: Mapped[int] = pk_column()
    case_id: Mapped[int] = mapped_column(ForeignKey("case_work_cases.id"))
    note_type: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    text_sealed: Mapped[bytes] = sealing.sealed_column(nullable=False)
    # How many times the note was edited: revision n of the note's revisions is the version edit n+1 replaced.
    revision: Mapped[int] = mapped_column(Integer, server_default="0")
    author_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    author: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = created_at_column()
    edited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    edited_by_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    voided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    voided_by_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    void_reason: Mapped[str | None] = mapped_column(Text)


class NoteRevision(OrganizationOwned, Base):
    """A previous version of a note (append-only), its text sealed for this row."""

    __tablename__ = REVISIONS_TABLE
    __table_args__ = (
        UniqueConstraint("note_id", "revision"),
        CheckConstraint(f"note_type IN {NOTE_TYPES!r}", name="note_type_valid"),
        sealing.sealed_check(TEXT_COLUMN),
    )

    id: Mapped[int] = pk_column()
    note_id: Mapped[int] = mapped_column(ForeignKey("case_work_notes.id"))
    revision: Mapped[int] = mapped_column(Integer)
    note_type: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    text_sealed: Mapped[bytes] = sealing.sealed_column(nullable=False)
    written_by_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    written_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    replaced_by_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    replaced_at: Mapped[datetime] = created_at_column()


class NoteAccess(OrganizationOwned, Base):
    """Someone who may read a case but is not its social worker opened its notes, and said why (append-only).
    It lets them read the case's notes until `expires_at`; the case's people list these."""

    __tablename__ = "case_work_note_accesses"
    __table_args__ = (
        CheckConstraint(f"relation IN {ACCESS_RELATIONS!r}", name="relation_valid"),
        CheckConstraint("length(btrim(purpose)) > 0", name="purpose_given"),
        CheckConstraint("expires_at > at", name="expires_after"),
        Index("ix_case_work_note_accesses_case", "case_id", "account_id", "expires_at"),
    )

    id: Mapped[int] = pk_column()
    case_id: Mapped[int] = mapped_column(ForeignKey("case_work_cases.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    actor: Mapped[str] = mapped_column(String(100))
    relation: Mapped[str] = mapped_column(String(24))
    purpose: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
