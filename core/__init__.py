"""yunshegong core. Plugins import what they need from here (and only from here).

The names below are the plugin API; they load lazily so that importing `core` stays cheap and free of
import cycles.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    # hooks
    "hookimpl": "core.hookspecs",
    "PluginInfo": "core.plugin_api",
    "GraphQLContribution": "core.plugin_api",
    "Permission": "core.plugin_api",
    "StatFigure": "core.plugin_api",
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
    # migrations
    "CORE_ROOT_REVISION": "core.migrate",
    # GraphQL helpers for plugin schemas
    "error_type": "schema.errors",
    "payload": "schema.mutations.base",
    "mutate": "schema.mutations.base",
    "Connection": "schema.types.common",
    "resolve_node_rows": "schema.types.nodes",
    "encode_id": "schema.ids",
    "decode_id": "schema.ids",
}
_RENAMED = {
    "encode_id": "encode",
    "decode_id": "decode",
    "get_row": "get",
    "pk_column": "pk",
    "created_at_column": "created_at",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    return getattr(importlib.import_module(module), _RENAMED.get(name, name))
