"""yunshegong core: the domain. Plugins import its part of the plugin API from here (`import core`), and the
GraphQL part from `schema.api` (`from schema import api as gql`). Core never imports the GraphQL layer.

The names below are the domain half of the plugin API. They load lazily (importing `core` stays cheap and
free of import cycles); the TYPE_CHECKING block names the same objects for editors and type checkers, and
tests/core/test_plugin_api.py checks that both lists agree.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.database import Base
    from core.delivery.channel import Channel, Contact, Message, PermanentFailure, TemporaryFailure
    from core.errors import DomainError, NotFound, Validator
    from core.events import (
        AssignmentChanged,
        DomainEvent,
        HelpRequestClosed,
        HelpRequestEscalated,
        HelpRequestFulfilled,
        HelpRequestStatusChanged,
        HelpRequestSubmitted,
        HelpRequestVerified,
        ReferralAccepted,
        ReferralCompleted,
        ReferralDeclined,
        ReferralRevoked,
        ReferralSent,
        VolunteerRegistered,
    )
    from core.hookspecs import hookimpl
    from core.jobs import Job
    from core.migrate import CORE_ROOT_REVISION
    from core.models import Assignment, Community, District, HelpRequest, Organization, Volunteer
    from core.models._columns import created_at as created_at_column
    from core.models._columns import pk as pk_column
    from core.plugin_api import (
        ExportColumn,
        ExportDefinition,
        GraphQLContribution,
        MatchCriterion,
        Permission,
        PluginInfo,
        StatFigure,
    )
    from core.plugin_settings import settings_of as plugin_settings
    from core.services import consent, referrals, residents
    from core.services.access import can, community_scope, request_scope, require, volunteer_scope
    from core.services.common import constraint_name, domain_error_for, flush
    from core.services.common import get as get_row
    from core.services.context import ServiceContext, Viewer
    from core.services.help_requests import HelpRequestInput
    from core.services.help_requests import submit as submit_help_request
    from core.services.outbox import Recipient, notify
    from core.services.pagination import Ordering, Page, paginate
    from core.services.plugin_roles import PluginRole
    from core.services.plugins import is_enabled
    from core.services.privacy import mask_phone
    from core.services.referrals import ReferralTarget, SharedResident
    from core.services.residents import ResidentRelation
    from core.services.scheduling import book as book_appointment
    from core.services.scheduling import book_earliest as book_earliest_appointment
    from core.services.scheduling import cancel as cancel_appointment
    from core.services.scheduling import free_slots
    from core.services.scheduling import reschedule as reschedule_appointment
    from core.services.search import check_range
    from core.tenancy import Inherit, OrganizationOwned, SharedByAllOrganizations, organization_column, own_table

_EXPORTS: dict[str, str] = {
    # hooks
    "hookimpl": "core.hookspecs",
    "PluginInfo": "core.plugin_api",
    "GraphQLContribution": "core.plugin_api",
    "Permission": "core.plugin_api",
    "StatFigure": "core.plugin_api",
    "ExportColumn": "core.plugin_api",  # exports (register_exports)
    "ExportDefinition": "core.plugin_api",
    "MatchCriterion": "core.plugin_api",
    # data
    "Base": "core.database",
    # Column helpers, so plugin tables follow core's conventions (bigint identity keys, timestamptz now()).
    "pk_column": "core.models._columns",
    "created_at_column": "core.models._columns",
    "Organization": "core.models",
    "District": "core.models",
    "Community": "core.models",
    "Volunteer": "core.models",
    "HelpRequest": "core.models",
    "Assignment": "core.models",
    "ServiceContext": "core.services.context",
    "Viewer": "core.services.context",
    # loading: the row with a primary key (optionally locked or scoped), or NotFound addressed to a field
    "get_row": "core.services.common",
    # organisations: plugin tables are organisation-owned (models: OrganizationOwned; migrations: own_table)
    "OrganizationOwned": "core.tenancy",
    "SharedByAllOrganizations": "core.tenancy",
    "is_enabled": "core.services.plugins",
    "own_table": "core.tenancy",
    "organization_column": "core.tenancy",
    "Inherit": "core.tenancy",
    # access: plugins check their own permissions and mask their own sensitive fields
    "require": "core.services.access",
    "can": "core.services.access",
    "mask_phone": "core.services.privacy",
    # errors
    "DomainError": "core.errors",
    # database refusals (constraints, row-level security) as the user errors they stand for
    "flush": "core.services.common",
    "domain_error_for": "core.services.common",
    "constraint_name": "core.services.common",
    "NotFound": "core.errors",
    "Validator": "core.errors",
    # events
    "DomainEvent": "core.events",
    "HelpRequestSubmitted": "core.events",
    "HelpRequestStatusChanged": "core.events",
    "HelpRequestVerified": "core.events",
    "HelpRequestFulfilled": "core.events",
    "HelpRequestClosed": "core.events",
    "AssignmentChanged": "core.events",
    "VolunteerRegistered": "core.events",
    "ReferralSent": "core.events",
    "ReferralAccepted": "core.events",
    "ReferralDeclined": "core.events",
    "ReferralCompleted": "core.events",
    "ReferralRevoked": "core.events",
    # migrations
    "CORE_ROOT_REVISION": "core.migrate",
    # pagination: a service returns core.paginate(...) pages; schema.api.connection turns them into connections
    "paginate": "core.services.pagination",
    "Ordering": "core.services.pagination",
    "Page": "core.services.pagination",
    "HelpRequestEscalated": "core.events",
    # scheduled jobs and the one outbox
    "Job": "core.jobs",
    "PluginRole": "core.services.plugin_roles",
    "plugin_settings": "core.plugin_settings",
    "notify": "core.services.outbox",
    "Recipient": "core.services.outbox",
    # public core services: what a plugin may do with core's records, with core's rules, history and events
    "submit_help_request": "core.services.help_requests",
    "HelpRequestInput": "core.services.help_requests",
    "request_scope": "core.services.access",
    "community_scope": "core.services.access",
    "volunteer_scope": "core.services.access",
    "book_appointment": "core.services.scheduling",
    "book_earliest_appointment": "core.services.scheduling",
    "reschedule_appointment": "core.services.scheduling",
    "cancel_appointment": "core.services.scheduling",
    "free_slots": "core.services.scheduling",
    # every search over a span of time is bounded (RANGE_TOO_LARGE) and ordered (OUT_OF_RANGE)
    "check_range": "core.services.search",
    # the people served, their consents and referrals: whole modules (`core.residents.create_resident(...)`)
    "residents": "core.services.residents",
    "consent": "core.services.consent",
    "referrals": "core.services.referrals",
    "ReferralTarget": "core.services.referrals",
    "SharedResident": "core.services.referrals",
    "ResidentRelation": "core.services.residents",
    # notification delivery: channels plugins register (hook register_channels), what they receive and raise
    "Channel": "core.plugin_api",
    "Contact": "core.plugin_api",
    "Message": "core.plugin_api",
    "TemporaryFailure": "core.plugin_api",
    "PermanentFailure": "core.plugin_api",
}
# Names that are modules themselves, not attributes of one.
_MODULES = frozenset({"residents", "consent", "referrals"})
_RENAMED = {
    "get_row": "get",
    "plugin_settings": "settings_of",
    "submit_help_request": "submit",
    "book_appointment": "book",
    "book_earliest_appointment": "book_earliest",
    "reschedule_appointment": "reschedule",
    "cancel_appointment": "cancel",
    "pk_column": "pk",
    "created_at_column": "created_at",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    if name in _MODULES:
        return importlib.import_module(module)
    return getattr(importlib.import_module(module), _RENAMED.get(name, name))
