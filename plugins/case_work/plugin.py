"""Hook implementations of the casework plugin (registered like any third-party plugin)."""

from __future__ import annotations

from pathlib import Path

import core
from core.services import sealing

# The slices' models join the metadata with the plugin (the tenancy catalog and migrations checks read it).
from plugins.case_work import reaction_models as _reaction_models  # noqa: F401
from plugins.case_work.groups import models as _groups_models  # noqa: F401
from plugins.case_work.groups import services as groups_services
from plugins.case_work.notes import services as notes_services
from plugins.case_work.plans import models as _plans_models  # noqa: F401
from plugins.case_work.plans import services as plans_services

# The reactions' hook (risk flags and verified help requests open cases): pluggy finds it on this module.
from plugins.case_work.reactions import on_event  # noqa: F401
from plugins.case_work.visits import models as _visits_models  # noqa: F401


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(
        name="case_work",
        version="0.1.0",
        description="Casework from intake to closure (MZ/T 094-2017): stages, approvals, history.",
    )


@core.hookimpl
def register_graphql() -> core.GraphQLContribution:
    from strawberry.tools import merge_types

    from plugins.case_work import core_fields
    from plugins.case_work.groups import types as groups_types
    from plugins.case_work.notes.types import CaseWorkNotesMutation, CaseWorkNotesQuery
    from plugins.case_work.plans import types as plans_types
    from plugins.case_work.types import CaseWorkMutation, CaseWorkQuery
    from plugins.case_work.visits import types as visits_types

    plans_query, plans_mutation, plans_extra = plans_types.graphql_parts()
    visits_query, visits_mutation, visits_extra = visits_types.graphql_parts()
    groups_query, groups_mutation, groups_extra = groups_types.graphql_parts()
    reactions_query, reactions_mutation, reactions_extra, core_type_fields = core_fields.graphql_parts()
    return core.GraphQLContribution(
        query=merge_types(
            "CaseWorkQuery",
            (CaseWorkQuery, CaseWorkNotesQuery, plans_query, visits_query, groups_query, reactions_query),
        ),
        mutation=merge_types(
            "CaseWorkMutation",
            (
                CaseWorkMutation,
                CaseWorkNotesMutation,
                plans_mutation,
                visits_mutation,
                groups_mutation,
                reactions_mutation,
            ),
        ),
        types=(*plans_extra, *visits_extra, *groups_extra, *reactions_extra),
        type_fields=core_type_fields,
    )


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
    from plugins.case_work.groups.demo import load as load_groups
    from plugins.case_work.notes.demo import load as load_notes
    from plugins.case_work.visits.demo import load as load_visits

    await load(ctx)
    await load_notes(ctx)
    await load_visits(ctx)
    await load_groups(ctx)


@core.hookimpl
def register_referral_targets() -> list[core.ReferralTarget]:
    # A consent naming casework is what lets a maternal raise or a counseling flag reach a worker who does not
    # serve her yet (reactions.py). A referral accepted by casework records the answer; the supervisor opens
    # the case from the referred resident (no automatic intake yet).
    return [core.ReferralTarget("case_work", "Casework for the referred resident.", "case_work.manage")]


@core.hookimpl
def register_error_codes() -> dict[str, str]:
    return {
        "ILLEGAL_TRANSITION": "The case cannot go to that stage from its stage (MZ/T 094-2017 stage graph).",
        "APPROVAL_REQUIRED": "The step needs an approved request first (closure; planning of a high-risk case).",
        "SELF_APPROVAL": "Nobody decides their own approval request.",
        "CASE_CLOSED": "The case is closed (or not opened): it is not changed, except by reopening.",
        "WRONG_STAGE": "The case's stage does not allow this (plans: planning, intervention, evaluation; "
        "assessments: assessment).",
        "BEYOND_PLANNED_END": "A goal's target date or an action's due date would fall after the plan's planned end.",
        "OUTCOME_PER_GOAL": "A closure request states one outcome for each goal of the case's plan.",
        "SELF_TRANSFER": "Nobody receives a transfer of a case they proposed.",
        **notes_services.ERROR_CODES,
        **groups_services.ERROR_CODES,
        **plans_services.ERROR_CODES,
    }


@core.hookimpl
def register_sealed_columns() -> list[sealing.SealedColumn]:
    return [*notes_services.SEALED_COLUMNS, *groups_services.SEALED_COLUMNS]


@core.hookimpl
def register_jobs() -> list[core.Job]:
    from plugins.case_work.plans.services import PLAN_REVIEWS_JOB

    return [PLAN_REVIEWS_JOB]


@core.hookimpl
def register_translations() -> dict[str, Path]:
    # `yunshegong messages plugins/case_work --po plugins/case_work/locale/zh_CN.po` adds new messages.
    return {"zh_CN": Path(__file__).parent / "locale" / "zh_CN.po"}


@core.hookimpl
def register_resident_relations() -> list[core.ResidentRelation]:
    # A case's social worker and supervisor serve its client's resident record (core.residents reads by relation).
    from plugins.case_work.resident_relation import relations

    return relations()


@core.hookimpl
def register_exports() -> list[core.ExportDefinition]:
    from plugins.case_work.exports import EXPORTS

    return EXPORTS
