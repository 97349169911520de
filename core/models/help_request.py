from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from core.database import Base
from core.models._columns import created_at, enum_check, latlng_checks, pk, updated_at
from core.tenancy import OrganizationOwned
from core.vocab import CredentialKind, PopulationTag, RequestCategory, RequestStatus, Urgency, sql_in

URGENCY_RANK_SQL = "CASE urgency WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'normal' THEN 2 ELSE 3 END"


class HelpRequest(OrganizationOwned, Base):
    """A need posted by a community or resident, verified, matched to volunteers and fulfilled."""

    __tablename__ = "help_requests"
    __table_args__ = (
        enum_check("category", RequestCategory),
        enum_check("urgency", Urgency),
        enum_check("status", RequestStatus),
        CheckConstraint(f"population_tags <@ ARRAY[{sql_in(PopulationTag)}]::varchar[]", name="population_tags_valid"),
        CheckConstraint("beneficiaries >= 1", name="beneficiaries_positive"),
        CheckConstraint("volunteers_needed BETWEEN 1 AND 100", name="volunteers_needed_range"),
        CheckConstraint("char_length(title) > 0", name="title_not_empty"),
        CheckConstraint(
            f"required_credentials <@ ARRAY[{sql_in(CredentialKind)}]::varchar[]", name="required_credentials_valid"
        ),
        Index("ix_help_requests_requester_phone", "requester_phone"),
        # A spreadsheet import's key of the row a request came from (core.imports.requests): the same row
        # imported again is recognised, whatever became of the request since.
        Index(
            "uq_help_requests_import_key",
            "organization_id",
            "import_key",
            unique=True,
            postgresql_where=text("import_key IS NOT NULL"),
        ),
        *latlng_checks(),
        # The coordinator's work list: open requests by urgency, then deadline.
        Index("ix_help_requests_queue", "urgency_rank", "needed_by_sort", "id"),
        Index("ix_help_requests_status", "status"),
        Index("ix_help_requests_created", "created_at", "id"),
        Index(
            "ix_help_requests_search_text_trgm",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ),
    )

    id: Mapped[int] = pk()
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(40))
    population_tags: Mapped[list[str]] = mapped_column(ARRAY(String(32)), server_default=text("'{}'"))
    beneficiaries: Mapped[int] = mapped_column(Integer, default=1)
    volunteers_needed: Mapped[int] = mapped_column(Integer, server_default="1")
    urgency: Mapped[str] = mapped_column(String(16))
    urgency_rank: Mapped[int] = mapped_column(SmallInteger, Computed(URGENCY_RANK_SQL, persisted=True))
    needed_by: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Requests without a deadline sort after those with one.
    needed_by_sort: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), Computed("COALESCE(needed_by, 'infinity'::timestamptz)", persisted=True)
    )
    # What text search looks in; a stored column so a plain trigram index covers it.
    search_text: Mapped[str] = mapped_column(Text, Computed("title || ' ' || description", persisted=True))
    required_skills: Mapped[list[str]] = mapped_column(ARRAY(String(50)), server_default=text("'{}'"))
    # Credentials a volunteer must hold, valid at the needed-by time (e.g. a vehicle pass in a lockdown).
    required_credentials: Mapped[list[str]] = mapped_column(ARRAY(String(32)), server_default=text("'{}'"))
    # Set at intake when the request is probably the same as an open one; verification can merge them.
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("help_requests.id"))
    # Set by the spreadsheet import only (migration 0015): a hash of the organisation and the row (with the
    # form's submission id when the file has one); NULL for requests submitted one by one.
    import_key: Mapped[str | None] = mapped_column(String(64))
    requester_name: Mapped[str] = mapped_column(String(50))
    requester_phone: Mapped[str] = mapped_column(String(20))
    requester_address: Mapped[str] = mapped_column(String(300), default="")
    # Sensitive: diagnoses, medication, pregnancy details. Visibility rules come with accounts.
    health_details: Mapped[str] = mapped_column(Text, default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), server_default="submitted")
    status_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=text("now()"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class HelpRequestStatusChange(OrganizationOwned, Base):
    """One step of a request's lifecycle. Append-only: a trigger refuses UPDATE and DELETE."""

    __tablename__ = "help_request_status_changes"
    __table_args__ = (Index("ix_help_request_status_changes_request", "request_id", "id"),)

    id: Mapped[int] = pk()
    request_id: Mapped[int] = mapped_column(ForeignKey("help_requests.id"))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
