"""The domain's closed vocabularies. Stored as text with CHECK constraints, exposed as GraphQL enums."""

from __future__ import annotations

from enum import StrEnum

from core.i18n import Text, _


class Role(StrEnum):
    """Who an account is. `system` (scripts, the demo loader) and `partner` (API tokens) never sign in."""

    PLATFORM_ADMIN = "platform_admin"
    ORGANIZATION_ADMIN = "organization_admin"
    SOCIAL_WORKER = "social_worker"
    COUNSELOR = "counselor"
    COMMUNITY_HEAD = "community_head"
    VOLUNTEER = "volunteer"
    PARTNER = "partner"
    SYSTEM = "system"


class OrganizationKind(StrEnum):
    ASSOCIATION = "association"
    AGENCY = "agency"
    HOSPITAL = "hospital"
    FOUNDATION = "foundation"
    COMPANY = "company"
    GOVERNMENT = "government"
    OTHER = "other"


class DistrictKind(StrEnum):
    DISTRICT = "district"
    COUNTY = "county"
    DEVELOPMENT_ZONE = "development_zone"


class LiaisonRole(StrEnum):
    SOCIAL_WORKER = "social_worker"
    VOLUNTEER = "volunteer"


# How many of each role a community's liaison team may have (the seed: one social worker, two volunteers).
LIAISON_TEAM_LIMITS: dict[LiaisonRole, int] = {LiaisonRole.SOCIAL_WORKER: 1, LiaisonRole.VOLUNTEER: 2}


class VolunteerMode(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    RESERVE = "reserve"


class Team(StrEnum):
    RECRUITMENT = "recruitment"
    TRAINING = "training"
    EXTERNAL_LIAISON = "external_liaison"
    COMMUNITY_LIAISON = "community_liaison"
    SUPPLIES_MANAGEMENT = "supplies_management"
    DELIVERY = "delivery"
    OPINION_MONITORING = "opinion_monitoring"
    PSYCHOLOGICAL_SUPPORT = "psychological_support"
    PUBLICITY = "publicity"


class Availability(StrEnum):
    AVAILABLE = "available"
    BUSY = "busy"
    OFF = "off"


class CredentialKind(StrEnum):
    VEHICLE_PASS = "vehicle_pass"
    WORK_PERMIT = "work_permit"
    DRIVING_LICENCE = "driving_licence"
    MEDICAL_LICENCE = "medical_licence"
    NURSING_LICENCE = "nursing_licence"
    SOCIAL_WORKER_LICENCE = "social_worker_licence"
    COUNSELOR_CERTIFICATE = "counselor_certificate"
    OTHER = "other"


class RequestCategory(StrEnum):
    MEDICINE = "medicine"
    FOOD = "food"
    DAILY_SUPPLIES = "daily_supplies"
    MEDICAL_CARE = "medical_care"
    PSYCHOLOGICAL = "psychological"
    EPIDEMIC_PREVENTION_SUPPLIES = "epidemic_prevention_supplies"
    OTHER = "other"


class PopulationTag(StrEnum):
    ELDERLY = "elderly"
    PREGNANT = "pregnant"
    CHILD = "child"
    DISABLED = "disabled"
    CHRONIC_PATIENT = "chronic_patient"
    STRANDED_NON_RESIDENT = "stranded_non_resident"
    FRONT_LINE_WORKER = "front_line_worker"


class Urgency(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


# Sort rank: lower is more urgent. Mirrored by the generated column help_requests.urgency_rank.
URGENCY_RANK: dict[Urgency, int] = {Urgency.CRITICAL: 0, Urgency.HIGH: 1, Urgency.NORMAL: 2, Urgency.LOW: 3}


class EscalationStage(StrEnum):
    """The target a request can miss: verified in time, matched in time, fulfilled in time."""

    VERIFICATION = "verification"
    MATCHING = "matching"
    FULFILMENT = "fulfilment"


class RequestStatus(StrEnum):
    SUBMITTED = "submitted"
    VERIFIED = "verified"
    MATCHED = "matched"
    IN_PROGRESS = "in_progress"
    FULFILLED = "fulfilled"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


OPEN_REQUEST_STATUSES = frozenset(
    {RequestStatus.SUBMITTED, RequestStatus.VERIFIED, RequestStatus.MATCHED, RequestStatus.IN_PROGRESS}
)


class AssignmentStatus(StrEnum):
    OFFERED = "offered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    COMPLETED = "completed"
    WITHDRAWN = "withdrawn"
    # An offer nobody answered in time; the request went back to the queue.
    EXPIRED = "expired"


# Active assignments occupy one of the volunteer's concurrent slots.
ACTIVE_ASSIGNMENT_STATUSES = frozenset({AssignmentStatus.OFFERED, AssignmentStatus.ACCEPTED})


def sql_in(values: type[StrEnum] | frozenset[StrEnum] | list[StrEnum]) -> str:
    """`'a', 'b'` for CHECK constraints built from an enum, so model and vocabulary cannot drift.

    Sets are sorted: their iteration order changes between runs, the generated SQL must not."""
    items = sorted(values) if isinstance(values, frozenset) else list(values)
    return ", ".join(f"'{v.value}'" for v in items)


# How a value reads inside a message ("A {status} request cannot …"): a word translated with the sentence
# (core/locale), not the stored value. Values shared by several vocabularies (`cancelled`, `volunteer`) read
# the same in each.
LABELS: dict[str, Text] = {
    # request statuses
    "submitted": _("submitted"),
    "verified": _("verified"),
    "matched": _("matched"),
    "in_progress": _("in progress"),
    "fulfilled": _("fulfilled"),
    "rejected": _("rejected"),
    "cancelled": _("cancelled"),
    # assignment statuses
    "offered": _("offered"),
    "accepted": _("accepted"),
    "declined": _("declined"),
    "completed": _("completed"),
    "withdrawn": _("withdrawn"),
    "expired": _("expired"),
    # availability
    "available": _("available"),
    "busy": _("busy"),
    "off": _("off"),
    # volunteer modes
    "online": _("online"),
    "offline": _("offline"),
    "reserve": _("in reserve"),
    # liaison roles
    "social_worker": _("social worker"),
    "volunteer": _("volunteer"),
    # credential kinds
    "vehicle_pass": _("vehicle pass"),
    "work_permit": _("work permit"),
    "driving_licence": _("driving licence"),
    "medical_licence": _("medical licence"),
    "nursing_licence": _("nursing licence"),
    "social_worker_licence": _("social worker licence"),
    "counselor_certificate": _("counselor certificate"),
    "other": _("other credential"),
}


def label(value: str) -> Text:
    """`value` (a vocabulary member or its stored text) as a translatable word for a message parameter;
    a value without a label reads as itself, underscores as spaces."""
    return LABELS.get(str(value)) or Text(str(value).replace("_", " "))
