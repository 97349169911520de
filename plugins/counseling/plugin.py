"""Hook implementations of the counseling plugin (registered like any third-party plugin)."""

from __future__ import annotations

from pathlib import Path

import core
from plugins.counseling.reactions import on_event  # noqa: F401  (pluggy finds the reactions' hook here)
from plugins.counseling.services import RiskRaised


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(
        name="counseling",
        version="0.1.0",
        description="Counseling sessions on the shared calendar, 14-day mental-health journals, risk follow-up.",
    )


@core.hookimpl
def register_graphql() -> core.GraphQLContribution:
    from plugins.counseling.types import CounselingMutation, CounselingQuery

    return core.GraphQLContribution(query=CounselingQuery, mutation=CounselingMutation)


@core.hookimpl
def register_migrations() -> Path:
    return Path(__file__).parent / "migrations"


@core.hookimpl
def register_permissions() -> list[core.Permission]:
    return [
        core.Permission(
            "counseling.manage",
            "Register counselors and clients, book sessions, keep journals.",
            ("counselor", "social_worker", "organization_admin", "platform_admin"),
        ),
        # Supervisors: within their own organisation only (plugins.counseling.services.supervises). Platform
        # administrators do not supervise by rank: reading another organisation's confidential notes needs an
        # explicit, audited access with a stated purpose.
        core.Permission(
            "counseling.read_notes",
            "Supervise counseling in your organisation: read its sessions' notes, follow up its open risk flags.",
            ("organization_admin",),
            by_rank=False,
        ),
    ]


@core.hookimpl
def register_event_types() -> list[type]:
    return [RiskRaised]


@core.hookimpl
def register_referral_targets() -> list[core.ReferralTarget]:
    # Other services (casework, maternal care, another organisation) refer residents to counseling; the
    # people who keep counseling's records answer them, and an accepted referral becomes a client.
    from plugins.counseling.services import client_for_referral

    async def on_accepted(ctx: core.ServiceContext, referral: object, shared: core.SharedResident) -> None:
        await client_for_referral(ctx, referral, shared)

    return [
        core.ReferralTarget(
            "counseling",
            "Counseling sessions and journals for the referred resident.",
            "counseling.manage",
            on_accepted=on_accepted,
        )
    ]


@core.hookimpl
def register_resident_relations() -> list[core.ResidentRelation]:
    # A client's counselor serves the resident behind the client: sees their contact, keeps their record.
    from plugins.counseling.services import residents_served

    return [core.ResidentRelation("counseling", residents_served)]


@core.hookimpl
async def register_demo_data(ctx: core.ServiceContext) -> None:
    from plugins.counseling.demo import load

    await load(ctx)


@core.hookimpl
def register_error_codes() -> dict[str, str]:
    return {"NO_COUNSELOR": "No counselor offers this specialty, language and mode."}


@core.hookimpl
def register_roles() -> list[core.PluginRole]:
    # A senior counselor (not an administrator) designated to supervise: the organisation's administrator
    # grants it (grantPluginRole); it carries the relation-only permission to read the organisation's notes.
    return [
        core.PluginRole(
            "counseling.supervisor",
            "Supervises the organisation's counseling: reads its sessions' notes, follows up its risk flags.",
            ("counseling.read_notes",),
        )
    ]


@core.hookimpl
def register_translations() -> dict[str, Path]:
    # The plugin's own messages in Chinese (core's are in core/locale): `yunshegong messages plugins/counseling
    # --po plugins/counseling/locale/zh_CN.po` adds new ones for the translator.
    return {"zh_CN": Path(__file__).parent / "locale" / "zh_CN.po"}


@core.hookimpl
def register_exports() -> list[core.ExportDefinition]:
    from plugins.counseling.exports import EXPORTS

    return EXPORTS
