"""Core SQLAlchemy models. Importing this package registers every core table on `Base.metadata`."""

from core.models.account import Account, AccountPluginRole, ApiToken, AuditEntry, LoginAttempt
from core.models.assignment import Assignment
from core.models.community import Community, CommunityLiaison
from core.models.delivery import Delivery, WebhookEndpoint
from core.models.help_request import HelpRequest, HelpRequestStatusChange
from core.models.matching import CategoryTraining, Escalation, JobRun, Notification
from core.models.meta import AppMeta
from core.models.organization import District, Organization
from core.models.people import Consent, Referral, Resident
from core.models.plugin import PluginEnablement
from core.models.scheduling import Appointment, AvailabilityException, AvailabilityWindow
from core.models.volunteer import Training, Volunteer, VolunteerCredential, VolunteerTraining

__all__ = [
    "Account",
    "AccountPluginRole",
    "ApiToken",
    "AppMeta",
    "Appointment",
    "Assignment",
    "AuditEntry",
    "AvailabilityException",
    "AvailabilityWindow",
    "CategoryTraining",
    "Community",
    "CommunityLiaison",
    "Consent",
    "Delivery",
    "District",
    "Escalation",
    "HelpRequest",
    "HelpRequestStatusChange",
    "JobRun",
    "LoginAttempt",
    "Notification",
    "Organization",
    "PluginEnablement",
    "Referral",
    "Resident",
    "Training",
    "Volunteer",
    "VolunteerCredential",
    "VolunteerTraining",
    "WebhookEndpoint",
]
