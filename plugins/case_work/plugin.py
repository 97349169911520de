"""Hook implementations of the casework plugin (registered like any third-party plugin)."""

from __future__ import annotations

from pathlib import Path

import core


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(
        name="case_work",
        version="0.1.0",
        description="Casework from intake to closure (MZ/T 094-2017): stages, approvals, history.",
    )


@core.hookimpl
def register_graphql() -> core.GraphQLContribution:
    from plugins.case_work.types import CaseWorkMutation, CaseWorkQuery

    return core.GraphQLContribution(query=CaseWorkQuery, mutation=CaseWorkMutation)


@core.hookimpl
def register_migrations() -> Path:
    return Path(__file__).parent / "migrations"


@core.hookimpl
def register_permissions() -> list[core.Permission]:
    return [
        core.Permission(
            "case_work.manage",
            "Work cases: open them, move them through their stages, ask for approvals (your own cases; "
            "administrators: every case of the organisation).",
            ("social_worker", "organization_admin", "platform_admin"),
        ),
        # Relation-only: held through the plugin role below, never by rank. What it lets its holder do is
        # bounded by relation too: supervise the cases that name them as supervisor.
        core.Permission(
            "case_work.supervise",
            "Supervise the cases that name you as supervisor: see them, decide their approvals, reopen them.",
            (),
            by_rank=False,
        ),
    ]


@core.hookimpl
def register_roles() -> list[core.PluginRole]:
    # A senior social worker (not necessarily an administrator) designated to supervise: the organisation's
    # administrator grants it (grantPluginRole). Only holders can be named a case's supervisor.
    return [
        core.PluginRole(
            "case_work.supervisor",
            "Supervises casework: is named supervisor of cases, decides their approvals, reopens closed ones.",
            ("case_work.manage", "case_work.supervise"),
        )
    ]


@core.hookimpl
async def register_demo_data(ctx: core.ServiceContext) -> None:
    from plugins.case_work.demo import load

    await load(ctx)


@core.hookimpl
def register_error_codes() -> dict[str, str]:
    return {
        "ILLEGAL_TRANSITION": "The case cannot go to that stage from its stage (MZ/T 094-2017 stage graph).",
        "APPROVAL_REQUIRED": "The step needs an approved request first (closure; planning of a high-risk case).",
        "SELF_APPROVAL": "Nobody decides their own approval request.",
        "CASE_CLOSED": "The case is closed (or not opened): it is not changed, except by reopening.",
    }


@core.hookimpl
def register_translations() -> dict[str, Path]:
    # `yunshegong messages plugins/case_work --po plugins/case_work/locale/zh_CN.po` adds new messages.
    return {"zh_CN": Path(__file__).parent / "locale" / "zh_CN.po"}
