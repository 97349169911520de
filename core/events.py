"""Domain events: small frozen dataclasses published inside the transaction that caused them.

Plugins react through the `on_event` hook. Every event has a stable dotted `name`; a plugin that
publishes its own events registers their classes (`register_event_types`) so that other plugins can react
by name (`event.name == "counseling.risk_raised"`) and read `event.data()` without importing the
publisher: plugins never import each other.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class DomainEvent:
    """Base of every event. `organization_id` is the organisation of the record that changed: the host
    delivers the event only to plugins that organisation has enabled (keyword-only, and required, so no
    publisher can forget it)."""

    name: ClassVar[str] = "event"
    organization_id: int = field(kw_only=True)

    def data(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class HelpRequestSubmitted(DomainEvent):
    name: ClassVar[str] = "help_request.submitted"
    request_id: int
    community_id: int
    category: str
    urgency: str


@dataclass(frozen=True)
class HelpRequestStatusChanged(DomainEvent):
    """Every lifecycle step, including those with an event of their own below."""

    name: ClassVar[str] = "help_request.status_changed"
    request_id: int
    from_status: str
    to_status: str
    reason: str


@dataclass(frozen=True)
class HelpRequestVerified(DomainEvent):
    name: ClassVar[str] = "help_request.verified"
    request_id: int
    community_id: int
    category: str


@dataclass(frozen=True)
class HelpRequestFulfilled(DomainEvent):
    name: ClassVar[str] = "help_request.fulfilled"
    request_id: int
    community_id: int
    category: str
    beneficiaries: int


@dataclass(frozen=True)
class HelpRequestClosed(DomainEvent):
    """Rejected or cancelled."""

    name: ClassVar[str] = "help_request.closed"
    request_id: int
    status: str
    reason: str


@dataclass(frozen=True)
class HelpRequestEscalated(DomainEvent):
    """A request missed its target time for a stage (verification, matching, fulfilment). Fired once
    per request and stage; notification channels and plugins react."""

    name: ClassVar[str] = "help_request.escalated"
    request_id: int
    stage: str
    urgency: str
    due_at: str


@dataclass(frozen=True)
class AssignmentChanged(DomainEvent):
    """An assignment was offered, accepted, declined, completed or withdrawn (see `status`)."""

    name: ClassVar[str] = "assignment.changed"
    assignment_id: int
    request_id: int
    volunteer_id: int
    status: str


@dataclass(frozen=True)
class VolunteerRegistered(DomainEvent):
    name: ClassVar[str] = "volunteer.registered"
    volunteer_id: int
    mode: str


@dataclass(frozen=True)
class ReferralSent(DomainEvent):
    """A resident was referred to a plugin's service. Ids only (the summary is read through the referral,
    under its consent). `organization_id` is the receiving organisation: the event is delivered to it."""

    name: ClassVar[str] = "referral.sent"
    referral_id: int
    target_plugin: str
    sending_organization_id: int


@dataclass(frozen=True)
class ReferralAccepted(DomainEvent):
    """The recipient accepted a referral. `organization_id` is the sending organisation (told the answer)."""

    name: ClassVar[str] = "referral.accepted"
    referral_id: int
    target_plugin: str
    receiving_organization_id: int


@dataclass(frozen=True)
class ReferralDeclined(DomainEvent):
    """The recipient declined a referral. `organization_id` is the sending organisation."""

    name: ClassVar[str] = "referral.declined"
    referral_id: int
    target_plugin: str
    receiving_organization_id: int


@dataclass(frozen=True)
class ReferralCompleted(DomainEvent):
    """The recipient completed the work a referral asked for. `organization_id` is the sending organisation."""

    name: ClassVar[str] = "referral.completed"
    referral_id: int
    target_plugin: str
    receiving_organization_id: int


@dataclass(frozen=True)
class ReferralRevoked(DomainEvent):
    """The sender withdrew a referral (or the consent under it ended). `organization_id` is the receiving
    organisation, which loses sight of the referral at once."""

    name: ClassVar[str] = "referral.revoked"
    referral_id: int
    target_plugin: str
    sending_organization_id: int


CORE_EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    HelpRequestSubmitted,
    HelpRequestStatusChanged,
    HelpRequestVerified,
    HelpRequestFulfilled,
    HelpRequestClosed,
    HelpRequestEscalated,
    AssignmentChanged,
    VolunteerRegistered,
    ReferralSent,
    ReferralAccepted,
    ReferralDeclined,
    ReferralCompleted,
    ReferralRevoked,
)
