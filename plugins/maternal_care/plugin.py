"""Hook implementations of the maternal-care plugin (registered like any third-party plugin).

The plugin is built from slices, each a package with its services, types and demo: `registry` (mothers,
pregnancies, risk) and `lectures`. Each slice offers `graphql_parts()` (query, mutation, extra types) and
`ERROR_CODES`; the hooks below merge them.
"""

from __future__ import annotations

from pathlib import Path

import core
from plugins.maternal_care import models as _models  # noqa: F401  (the registry's tables join the metadata)
from plugins.maternal_care.followups import models as _followups_models  # noqa: F401
from plugins.maternal_care.followups import services as followups_services
from plugins.maternal_care.lectures import models as _lectures_models  # noqa: F401
from plugins.maternal_care.lectures import services as lectures_services
from plugins.maternal_care.needs import models as _needs_models  # noqa: F401
from plugins.maternal_care.needs import services as needs_services
from plugins.maternal_care.registry import services as registry_services

PLUGIN = "maternal_care"


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(
        name=PLUGIN,
        version="0.1.0",
        description="Expectant mothers and their pregnancies (五色 risk grading), lectures with waitlists.",
    )


@core.hookimpl
def register_graphql() -> core.GraphQLContribution:
    from strawberry.tools import merge_types

    from plugins.maternal_care.followups import types as followups_types
    from plugins.maternal_care.lectures import types as lectures_types
    from plugins.maternal_care.needs import types as needs_types
    from plugins.maternal_care.registry import types as registry_types

    parts = [
        registry_types.graphql_parts(),
        lectures_types.graphql_parts(),
        needs_types.graphql_parts(),
        followups_types.graphql_parts(),
    ]
    return core.GraphQLContribution(
        query=merge_types("MaternalCareQuery", tuple(q for q, _, _ in parts if q is not None)),
        mutation=merge_types("MaternalCareMutation", tuple(m for _, m, _ in parts)),
        types=tuple(t for _, _, extra in parts for t in extra),
    )


@core.hookimpl
def register_migrations() -> Path:
    return Path(__file__).parent / "migrations"


@core.hookimpl
def register_permissions() -> list[core.Permission]:
    return registry_services.PERMISSIONS


@core.hookimpl
def register_roles() -> list[core.PluginRole]:
    # Maternal-care staff (a midwife, a nurse, the programme's coordinator): the organisation's administrator
    # grants it (grantPluginRole). They read every mother's health details in the organisation and run lectures.
    return [
        core.PluginRole(
            registry_services.STAFF_ROLE,
            "Maternal-care staff: keeps the organisation's mothers' records and health details, runs lectures.",
            (registry_services.MANAGE, registry_services.HEALTH, registry_services.LECTURES),
        )
    ]


@core.hookimpl
def register_error_codes() -> dict[str, str]:
    return {
        **registry_services.ERROR_CODES,
        **lectures_services.ERROR_CODES,
        **needs_services.ERROR_CODES,
        **followups_services.ERROR_CODES,
    }


@core.hookimpl
def register_event_types() -> list[type]:
    return [registry_services.MaternalRiskRaised]


@core.hookimpl
def register_translations() -> dict[str, Path]:
    # `yunshegong messages plugins/maternal_care --po plugins/maternal_care/locale/zh_CN.po` adds new messages.
    return {"zh_CN": Path(__file__).parent / "locale" / "zh_CN.po"}


@core.hookimpl
async def register_demo_data(ctx: core.ServiceContext) -> None:
    from plugins.maternal_care.followups.demo import load as load_followups
    from plugins.maternal_care.lectures.demo import load as load_lectures
    from plugins.maternal_care.needs.demo import load as load_needs
    from plugins.maternal_care.registry.demo import load as load_registry

    await load_registry(ctx)
    await load_followups(ctx)  # after the registry's: its pregnancies generated the items
    await load_lectures(ctx)
    await load_needs(ctx)


@core.hookimpl
def register_resident_relations() -> list[core.ResidentRelation]:
    # The mother's assigned social worker and the organisation's maternal-care staff serve her resident record.
    return [core.ResidentRelation(PLUGIN, registry_services.residents_served)]


@core.hookimpl
def register_referral_targets() -> list[core.ReferralTarget]:
    # Casework, counseling or another organisation refer expectant mothers here; an accepted referral
    # registers the mother (consent: the referral's).
    async def on_accepted(ctx: core.ServiceContext, referral: object, shared: core.SharedResident) -> None:
        await registry_services.mother_for_referral(ctx, referral, shared)

    return [
        core.ReferralTarget(
            PLUGIN,
            "Maternal care for the referred expectant mother: registry, risk follow-up, lectures.",
            registry_services.MANAGE,
            on_accepted=on_accepted,
        )
    ]


@core.hookimpl
def register_jobs() -> list[core.Job]:
    return [lectures_services.REMINDERS_JOB]


@core.hookimpl
def register_exports() -> list[core.ExportDefinition]:
    from plugins.maternal_care.exports import EXPORTS

    return EXPORTS
