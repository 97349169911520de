"""Schema mutations: drop each constraint, trigger or policy that guards an invariant and expect a test to fail.

Mutation tools (mutmut) mutate Python, never the SQL the migrations install, so this does the same for the
schema: for each object below it runs the relevant tests against a freshly migrated database from which that
one object has been removed. A run in which some test fails *kills* the mutation; a run that passes means
nothing in the suite notices the object is gone (it *survived*: a missing test).

    .venv/bin/python -m tests.schema_mutations            # every mutation
    .venv/bin/python -m tests.schema_mutations NAME ...   # only these (see --list)

How: this module is also a pytest plugin (`-p tests.schema_mutations`). When YSG_SCHEMA_MUTATION holds SQL,
its session fixture runs that SQL as the migrating owner right after the suite's `test_db` fixture migrated
the run's database, before any test. One embedded PostgreSQL serves every run (DATABASE_URL); each run
migrates its own database, as the suite always does.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ENV = "YSG_SCHEMA_MUTATION"
BAD_MUTATION = 7  # pytest's exit code when the mutation's SQL itself failed (the object does not exist)


@pytest.fixture(scope="session", autouse=True)
async def _schema_mutation(test_db: Any) -> None:
    sql = os.environ.get(ENV)
    if sql:
        from sqlalchemy import text

        from core.database import create_engine

        engine = create_engine(test_db, pool_size=1)
        try:
            async with engine.begin() as conn:
                for statement in sql.split(";"):
                    if statement.strip():
                        await conn.execute(text(statement))
        except Exception as exc:
            pytest.exit(f"schema mutation failed to apply: {exc}", returncode=BAD_MUTATION)
        finally:
            await engine.dispose()


@dataclass(frozen=True)
class Mutation:
    name: str
    sql: str
    tests: tuple[str, ...]
    guards: str


def _permissive(table: str) -> str:
    """Organisation isolation off for one table: its tenant policy replaced by one letting every row through."""
    return (
        f"DROP POLICY tenant_isolation ON {table}; "
        f"CREATE POLICY tenant_isolation ON {table} USING (true) WITH CHECK (true)"
    )


def _trigger(name: str, table: str) -> str:
    return f"DROP TRIGGER {name} ON {table}"


def _constraint(table: str, name: str) -> str:
    return f"ALTER TABLE {table} DROP CONSTRAINT {name}"


HR = "tests/core/services/test_help_requests.py"
AS = "tests/core/services/test_assignments.py"
SCHED = "tests/core/services/test_scheduling.py"
SUPPLIES = "tests/plugins/supplies"
APPEND_ONLY = "tests/core/test_append_only.py"
GUARDS = "tests/core/test_schema_guards.py"
TENANCY = ("tests/core/test_tenancy.py", "tests/schema/test_isolation.py")
REFERRALS = ("tests/core/services/test_referrals.py", "tests/schema/test_people_api.py")
CONSENTS = "tests/core/services/test_consent.py"
PEOPLE_CATALOG = "tests/core/test_people_catalog.py"
PEOPLE_API = "tests/schema/test_people_api.py"
RESIDENTS = "tests/core/services/test_residents.py"
CW = "tests/plugins/case_work"
CW_WORKFLOW = f"{CW}/test_workflow.py"
CW_NOTES = f"{CW}/test_notes.py"
CW_PLANS = f"{CW}/test_plans.py"
CW_VISITS = f"{CW}/test_visits.py"
CW_GROUPS = f"{CW}/test_groups.py"
CW_TRANSFERS = f"{CW}/test_transfers.py"
CW_REACTIONS = f"{CW}/test_reactions.py"
CW_RESIDENTS = f"{CW}/test_residents.py"
CW_GUARDS = f"{CW}/test_guards.py"  # the guards no service test reaches (a service refuses first)
CW_RISK = f"{CW}/test_risk_recorded.py"
CW_HOLDS = f"{CW}/test_approval_holds.py"
MC_LECTURES = "tests/plugins/maternal_care/test_lectures.py"
MC_REG = "tests/plugins/maternal_care/test_registry.py"
MC_FU = "tests/plugins/maternal_care/test_followups.py"
MC_NEEDS = "tests/plugins/maternal_care/test_needs_api.py"

MUTATIONS = [
    Mutation(
        "ck_volunteers_capacity",
        "ALTER TABLE volunteers DROP CONSTRAINT ck_volunteers_capacity",
        (AS,),
        "a volunteer never holds more active assignments than their maximum",
    ),
    Mutation(
        "assignments_track_active",
        "DROP TRIGGER assignments_track_active ON assignments",
        (AS, HR),
        "the active-assignment counter the capacity CHECK reads",
    ),
    Mutation(
        "uq_assignments_active_pair",
        "DROP INDEX uq_assignments_active_pair",
        (AS, GUARDS),
        "one active assignment per (request, volunteer)",
    ),
    Mutation(
        "assignments_no_delete",
        "DROP TRIGGER assignments_no_delete ON assignments",
        (AS, APPEND_ONLY),
        "assignments are records: never deleted",
    ),
    Mutation(
        "ex_appointments_no_overlap",
        "ALTER TABLE appointments DROP CONSTRAINT ex_appointments_no_overlap",
        (SCHED,),
        "no two active appointments of one calendar overlap",
    ),
    Mutation(
        "ck_supplies_balances_not_negative",
        "ALTER TABLE supplies_balances DROP CONSTRAINT ck_supplies_balances_not_negative",
        (SUPPLIES,),
        "stock on hand never goes below zero",
    ),
    Mutation(
        "uq_supplies_movements_reverses",
        "DROP INDEX uq_supplies_movements_reverses",
        (SUPPLIES,),
        "a movement is reversed at most once",
    ),
    Mutation(
        "help_request_status_changes_append_only",
        "DROP TRIGGER help_request_status_changes_append_only ON help_request_status_changes",
        (HR, APPEND_ONLY),
        "request history is never rewritten",
    ),
    Mutation(
        "help_request_status_changes_no_truncate",
        "DROP TRIGGER help_request_status_changes_no_truncate ON help_request_status_changes",
        (HR, APPEND_ONLY),
        "request history is never truncated",
    ),
    Mutation(
        "audit_log_append_only",
        "DROP TRIGGER audit_log_append_only ON audit_log",
        ("tests/schema/test_auth.py", APPEND_ONLY),
        "the audit trail is never rewritten",
    ),
    Mutation(
        "audit_log_no_truncate",
        "DROP TRIGGER audit_log_no_truncate ON audit_log",
        ("tests/schema/test_auth.py", APPEND_ONLY),
        "the audit trail is never truncated",
    ),
    Mutation(
        "supplies_movements_append_only",
        "DROP TRIGGER supplies_movements_append_only ON supplies_movements",
        (SUPPLIES, APPEND_ONLY),
        "the stock ledger is never rewritten",
    ),
    Mutation(
        "supplies_movements_no_truncate",
        "DROP TRIGGER supplies_movements_no_truncate ON supplies_movements",
        (APPEND_ONLY,),
        "the stock ledger is never truncated",
    ),
    Mutation(
        "tenant_isolation(help_requests)",
        _permissive("help_requests"),
        TENANCY,
        "an organisation never sees another's help requests",
    ),
    Mutation(
        "tenant_isolation(volunteers)",
        _permissive("volunteers"),
        TENANCY,
        "an organisation never sees another's volunteers",
    ),
    Mutation(
        "tenant_isolation(supplies_items)",
        _permissive("supplies_items"),
        ("tests/plugins/supplies/test_isolation.py",),
        "an organisation never sees another's supplies",
    ),
    Mutation(
        "tenant_isolation(counseling_clients)",
        _permissive("counseling_clients"),
        ("tests/plugins/counseling/test_isolation.py",),
        "an organisation never sees another's counseling clients",
    ),
    Mutation(
        "referral_received",
        "DROP POLICY referral_received ON referrals; CREATE POLICY referral_received ON referrals FOR SELECT "
        "USING (target_organization_id = (SELECT app_org()))",
        REFERRALS,
        "the recipient sees a referral only while it is not revoked and its consent is in force",
    ),
    Mutation(
        "referrals_recipient_guard",
        "DROP TRIGGER referrals_recipient_guard ON referrals",
        REFERRALS,
        "the recipient of a referral only answers or completes it",
    ),
    Mutation(
        "consents_never_deleted",
        "DROP TRIGGER consents_never_deleted ON consents",
        (CONSENTS,),
        "consents are revoked, never deleted",
    ),
    Mutation(
        "consents_revoke_only",
        "DROP TRIGGER consents_revoke_only ON consents",
        (CONSENTS, PEOPLE_CATALOG),
        "a consent is never rewritten: only its revocation is recorded, once",
    ),
    Mutation(
        "referrals_never_deleted",
        "DROP TRIGGER referrals_never_deleted ON referrals",
        (*REFERRALS, PEOPLE_CATALOG),
        "referrals are revoked, never deleted",
    ),
    Mutation(
        "fk_referrals_consent_target",
        "ALTER TABLE referrals DROP CONSTRAINT fk_referrals_consent_target",
        (*REFERRALS, PEOPLE_CATALOG),
        "a referral goes to the organisation its consent names",
    ),
    Mutation(
        "audit_read",
        "DROP POLICY audit_read ON audit_log; CREATE POLICY audit_read ON audit_log FOR SELECT USING (true)",
        (*TENANCY, "tests/schema/test_auth.py", GUARDS),
        "an organisation reads only its own audit trail",
    ),
    # -- people (core 0012): what the people catalog's in-transaction probes and the service tests hold ----------
    Mutation(
        "referral_answer",
        "DROP POLICY referral_answer ON referrals",
        (*REFERRALS, PEOPLE_CATALOG),
        "the recipient answers (updates) a live referral it received, and nothing else of another organisation",
    ),
    Mutation(
        "tenant_0_resident_id(consents)",
        _trigger("tenant_0_resident_id", "consents"),
        (CONSENTS, PEOPLE_CATALOG),
        "a consent names a resident of its own organisation",
    ),
    Mutation(
        "tenant_0_resident_id(referrals)",
        _trigger("tenant_0_resident_id", "referrals"),
        (*REFERRALS, PEOPLE_CATALOG),
        "a referral names a resident of its own organisation",
    ),
    Mutation(
        "tenant_1_consent_id(referrals)",
        _trigger("tenant_1_consent_id", "referrals"),
        (*REFERRALS, PEOPLE_CATALOG),
        "a referral names a consent of its own organisation",
    ),
    Mutation(
        "tenant_0_community_id(residents)",
        _trigger("tenant_0_community_id", "residents"),
        (RESIDENTS, PEOPLE_CATALOG),
        "a resident lives in a community of its organisation",
    ),
    Mutation(
        "ck_consents_target_organization",
        _constraint("consents", "ck_consents_target_organization"),
        (CONSENTS, CW_GUARDS),
        "a consent to a service names the organisation that receives (and only then)",
    ),
    Mutation(
        "ck_referrals_one_target",
        _constraint("referrals", "ck_referrals_one_target"),
        (*REFERRALS, CW_GUARDS),
        "a referral goes to one place: a service of an organisation or an outside body",
    ),
    Mutation(
        "tenant_isolation(residents)",
        _permissive("residents"),
        (RESIDENTS, PEOPLE_API),
        "an organisation never sees another's residents",
    ),
    Mutation(
        "tenant_isolation(consents)",
        _permissive("consents"),
        (CONSENTS, PEOPLE_API, CW_GUARDS),
        "an organisation never sees another's consents (a recipient not even the one it was referred under)",
    ),
    Mutation(
        "tenant_isolation(referrals)",
        _permissive("referrals"),
        (*REFERRALS, PEOPLE_CATALOG),
        "an organisation sees its own referrals, and those it received only through referral_received",
    ),
    # -- casework: the stage graph and its history (w001) ----------------------------------------------------------
    Mutation(
        "case_work_guard",
        _trigger("case_work_guard", "case_work_cases"),
        (CW_WORKFLOW,),
        "a case's stage moves along the graph, one step after its history row, with the approval it needs;"
        " a closed case does not change",
    ),
    Mutation(
        "case_work_guard_insert(case_work_cases)",
        _trigger("case_work_guard_insert", "case_work_cases"),
        (CW_WORKFLOW, CW_GUARDS),
        "a case opens at intake, history row 0",
    ),
    Mutation(
        "case_work_guard_insert(case_work_approvals)",
        _trigger("case_work_guard_insert", "case_work_approvals"),
        (CW_WORKFLOW,),
        "an approval request starts pending, decided by nobody",
    ),
    Mutation(
        "case_work_guard_insert(case_work_stage_changes)",
        _trigger("case_work_guard_insert", "case_work_stage_changes"),
        (CW_WORKFLOW,),
        "a history row is its case's next step, from the stage it is in",
    ),
    Mutation(
        "uq_case_work_stage_changes_case_id_seq",
        _constraint("case_work_stage_changes", "uq_case_work_stage_changes_case_id_seq"),
        (CW_WORKFLOW, CW_GUARDS),
        "one history row per step of a case (one opening)",
    ),
    Mutation(
        "ck_case_work_stage_changes_step_of_the_graph",
        _constraint("case_work_stage_changes", "ck_case_work_stage_changes_step_of_the_graph"),
        (CW_WORKFLOW,),
        "a history row records a step of the graph",
    ),
    Mutation(
        "ck_case_work_cases_supervisor_not_worker",
        _constraint("case_work_cases", "ck_case_work_cases_supervisor_not_worker"),
        (CW_WORKFLOW, CW_GUARDS),
        "nobody supervises their own case",
    ),
    *(
        Mutation(
            f"case_work_append_only({table})",
            _trigger("case_work_append_only", table),
            tests,
            f"{what} never rewritten nor deleted",
        )
        for table, tests, what in (
            ("case_work_stage_changes", (CW_WORKFLOW,), "a case's stage history is"),
            ("case_work_approvals", (CW_WORKFLOW,), "a decided approval is"),
            ("case_work_risk_changes", (CW_WORKFLOW, CW_RISK), "a case's risk history is"),
            ("case_work_note_revisions", (CW_NOTES,), "a note's previous versions are"),
            ("case_work_note_accesses", (CW_NOTES, CW_GUARDS), "the trail of who opened a case's notes and why is"),
            ("case_work_assessments", (CW_PLANS,), "an assessment is"),
            ("case_work_assessment_needs", (CW_PLANS, CW_GUARDS), "an assessment's scored needs are"),
            ("case_work_goal_progress", (CW_PLANS, CW_GUARDS), "a goal's progress record is"),
        )
    ),
    # -- approvals (w001) -----------------------------------------------------------------------------------------
    Mutation(
        "ck_case_work_approvals_not_self_decided",
        _constraint("case_work_approvals", "ck_case_work_approvals_not_self_decided"),
        (CW_WORKFLOW,),
        "nobody decides their own approval request",
    ),
    Mutation(
        "ck_case_work_approvals_decided_by_someone",
        _constraint("case_work_approvals", "ck_case_work_approvals_decided_by_someone"),
        (CW_WORKFLOW,),
        "an approval or refusal names who decided",
    ),
    Mutation(
        "uq_case_work_approvals_pending",
        "DROP INDEX uq_case_work_approvals_pending",
        (CW_WORKFLOW, CW_GUARDS),
        "one pending request of a kind per case",
    ),
    # -- notes (w002, w006) ---------------------------------------------------------------------------------------
    Mutation(
        "case_work_note_case_open(case_work_notes)",
        _trigger("case_work_note_case_open", "case_work_notes"),
        (CW_NOTES,),
        "no note is written or edited while its case is closed",
    ),
    Mutation(
        "case_work_note_case_open(case_work_note_revisions)",
        _trigger("case_work_note_case_open", "case_work_note_revisions"),
        (CW_NOTES,),
        "no note revision is written while its case is closed",
    ),
    Mutation(
        "case_work_note_guard",
        _trigger("case_work_note_guard", "case_work_notes"),
        (CW_NOTES,),
        "a note is never deleted; an edit keeps the previous version; a voided note changes no more",
    ),
    Mutation(
        "ck_case_work_notes_text_sealed_sealed",
        _constraint("case_work_notes", "ck_case_work_notes_text_sealed_sealed"),
        (CW_NOTES,),
        "a note's text is stored sealed, never in clear",
    ),
    Mutation(
        "ck_case_work_note_revisions_text_sealed_sealed",
        _constraint("case_work_note_revisions", "ck_case_work_note_revisions_text_sealed_sealed"),
        (CW_NOTES, CW_GUARDS),
        "a note's previous versions are stored sealed, never in clear",
    ),
    Mutation(
        "uq_case_work_note_revisions_note_id_revision",
        _constraint("case_work_note_revisions", "uq_case_work_note_revisions_note_id_revision"),
        (CW_NOTES, CW_GUARDS),
        "one kept version per revision of a note",
    ),
    # -- plans (w003) ---------------------------------------------------------------------------------------------
    *(
        Mutation(
            f"case_work_plan_guard({table})",
            _trigger("case_work_plan_guard", table),
            (CW_PLANS, CW_GUARDS),
            f"{what}: never of a closed case, only in {stages}, never deleted",
        )
        for table, what, stages in (
            ("case_work_assessments", "assessments", "assessment"),
            ("case_work_assessment_needs", "an assessment's needs", "assessment"),
            ("case_work_plans", "a plan", "planning to evaluation"),
            ("case_work_goals", "goals", "planning to evaluation"),
            ("case_work_actions", "actions", "planning to evaluation"),
            ("case_work_goal_progress", "progress", "planning to evaluation"),
            ("case_work_reviews", "reviews", "planning to evaluation"),
        )
    ),
    *(
        Mutation(
            f"case_work_within_planned_end({table})",
            _trigger("case_work_within_planned_end", table),
            (CW_PLANS,),
            f"no goal or action is due after the plan's planned end ({what})",
        )
        for table, what in (
            ("case_work_goals", "a goal's target"),
            ("case_work_actions", "an action's due date"),
            ("case_work_plans", "an end moved before them"),
        )
    ),
    Mutation(
        "uq_case_work_plans_organization_id_case_id",
        _constraint("case_work_plans", "uq_case_work_plans_organization_id_case_id"),
        (CW_PLANS, CW_GUARDS),
        "one plan per case",
    ),
    Mutation(
        "uq_case_work_reviews_open",
        "DROP INDEX uq_case_work_reviews_open",
        (CW_PLANS, CW_GUARDS),
        "one open review per plan (the job raises it once, however often it runs)",
    ),
    # -- visits (w004) --------------------------------------------------------------------------------------------
    Mutation(
        "case_work_visit_guard",
        _trigger("case_work_visit_guard", "case_work_visits"),
        (CW_VISITS,),
        "no visit is booked, moved or given an outcome on a closed case",
    ),
    # -- groups (w005) --------------------------------------------------------------------------------------------
    Mutation(
        "ck_case_work_groups_within_capacity",
        _constraint("case_work_groups", "ck_case_work_groups_within_capacity"),
        (CW_GROUPS,),
        "a group never holds more participants than its capacity",
    ),
    Mutation(
        "case_work_group_count",
        _trigger("case_work_group_count", "case_work_group_participants"),
        (CW_GROUPS,),
        "the participant counter the capacity CHECK reads",
    ),
    Mutation(
        "case_work_group_guard",
        _trigger("case_work_group_guard", "case_work_groups"),
        (CW_GROUPS,),
        "a group starts in preparation, moves along its stage graph after its history row, and changes no more"
        " once ended",
    ),
    *(
        Mutation(
            f"case_work_group_child_guard({table})",
            _trigger("case_work_group_child_guard", table),
            (CW_GROUPS, CW_GUARDS),
            f"{what}",
        )
        for table, what in (
            ("case_work_group_stage_changes", "a group's history is its next step, never rewritten nor deleted"),
            ("case_work_group_participants", "nobody joins an ended group; a participant only leaves, once"),
            ("case_work_group_sessions", "no session of an ended group; a session is only cancelled, once"),
            ("case_work_group_attendance", "no attendance recorded for an ended group; none deleted"),
            ("case_work_group_notes", "outcome notes are never rewritten nor deleted, none for an ended group"),
        )
    ),
    Mutation(
        "uq_case_work_group_participants_active",
        "DROP INDEX uq_case_work_group_participants_active",
        (CW_GROUPS, CW_GUARDS),
        "a client is in a group once at a time",
    ),
    Mutation(
        "uq_case_work_group_attendance_session_id_participant_id",
        _constraint("case_work_group_attendance", "uq_case_work_group_attendance_session_id_participant_id"),
        (CW_GROUPS, CW_GUARDS),
        "one attendance record per session and participant",
    ),
    Mutation(
        "ck_case_work_groups_summary_at_ending",
        _constraint("case_work_groups", "ck_case_work_groups_summary_at_ending"),
        (CW_GROUPS,),
        "a group ends with its closing summary",
    ),
    Mutation(
        "ck_case_work_group_notes_text_sealed_sealed",
        _constraint("case_work_group_notes", "ck_case_work_group_notes_text_sealed_sealed"),
        (CW_GROUPS, CW_GUARDS),
        "a group's outcome notes are stored sealed, never in clear",
    ),
    # -- transfers (w006) -----------------------------------------------------------------------------------------
    Mutation(
        "uq_case_work_transfers_pending",
        "DROP INDEX uq_case_work_transfers_pending",
        (CW_TRANSFERS, CW_GUARDS),
        "one pending transfer per case",
    ),
    Mutation(
        "case_work_transfer_guard",
        _trigger("case_work_transfer_guard", "case_work_transfers"),
        (CW_TRANSFERS,),
        "a transfer starts pending and changes once, in its answer's columns only; never deleted",
    ),
    Mutation(
        "ck_case_work_transfers_not_self_transfer",
        _constraint("case_work_transfers", "ck_case_work_transfers_not_self_transfer"),
        (CW_TRANSFERS,),
        "nobody receives a transfer they proposed",
    ),
    Mutation(
        "ck_case_work_transfers_decided_by_receiver",
        _constraint("case_work_transfers", "ck_case_work_transfers_decided_by_receiver"),
        (CW_TRANSFERS, CW_GUARDS),
        "the answer to a transfer is the receiver's",
    ),
    # -- clients, intakes, tags (w006, w007) ----------------------------------------------------------------------
    Mutation(
        "uq_case_work_clients_resident_id",
        _constraint("case_work_clients", "uq_case_work_clients_resident_id"),
        (CW_RESIDENTS, CW_GUARDS),
        "one casework client per resident",
    ),
    Mutation(
        "uq_case_work_intakes_organization_id_source_kind_source_id",
        _constraint("case_work_intakes", "uq_case_work_intakes_organization_id_source_kind_source_id"),
        (CW_REACTIONS, CW_GUARDS),
        "a source is taken in once, however often its event is delivered",
    ),
    Mutation(
        "ck_case_work_intakes_case_unless_queued",
        _constraint("case_work_intakes", "ck_case_work_intakes_case_unless_queued"),
        (CW_REACTIONS, CW_GUARDS),
        "an intake waits in the queue exactly when it has no case",
    ),
    Mutation(
        "uq_case_work_request_tags_organization_id_help_request_id",
        _constraint("case_work_request_tags", "uq_case_work_request_tags_organization_id_help_request_id"),
        (CW_REACTIONS, CW_GUARDS),
        "a help request is tagged for casework once",
    ),
    # -- casework: organisation isolation ---------------------------------------------------------------------------
    *(
        Mutation(
            f"tenant_isolation({table})",
            _permissive(table),
            (CW_GUARDS,),
            f"an organisation never sees another's {what}",
        )
        for table, what in (
            ("case_work_cases", "cases"),
            ("case_work_clients", "casework clients"),
            ("case_work_notes", "case notes"),
            ("case_work_groups", "groups"),
            ("case_work_transfers", "transfers"),
            ("case_work_intakes", "intakes"),
        )
    ),
    # -- casework: the risk history (w009) ---------------------------------------------------------------------
    Mutation(
        "case_work_risk_guard(case_work_cases)",
        _trigger("case_work_risk_guard", "case_work_cases"),
        (CW_RISK,),
        "a case's risk level changes only with risk_seq + 1 and the history row of that number, from its level to"
        " the new one; risk_seq changes only with the level; a case opens with none",
    ),
    Mutation(
        "case_work_risk_guard(case_work_risk_changes)",
        _trigger("case_work_risk_guard", "case_work_risk_changes"),
        (CW_RISK,),
        "a risk history row is the next change of its open case, from the level the case has",
    ),
    Mutation(
        "case_work_risk_consumed",
        _trigger("case_work_risk_consumed", "case_work_risk_changes"),
        (CW_RISK,),
        "every risk history row is taken up by its case before commit (none left behind to block the next change)",
    ),
    Mutation(
        "uq_case_work_risk_changes_case_id_seq",
        _constraint("case_work_risk_changes", "uq_case_work_risk_changes_case_id_seq"),
        (CW_RISK,),
        "one risk history row per change of a case",
    ),
    # -- casework: approvals hold the plan (w011) -------------------------------------------------------------
    Mutation(
        "case_work_assessment_required",
        _trigger("case_work_assessment_required", "case_work_approvals"),
        (CW_HOLDS,),
        "an assessment approval needs an assessment of the stage visit",
    ),
    *(
        Mutation(
            f"case_work_plan_under_closure({table})",
            _trigger("case_work_plan_under_closure", table),
            (CW_HOLDS,),
            "the plan's content is frozen under a closure request",
        )
        for table in ("case_work_plans", "case_work_goals", "case_work_actions")
    ),
    Mutation(
        "case_work_outcome_per_goal",
        _trigger("case_work_outcome_per_goal", "case_work_cases"),
        (CW_HOLDS,),
        "closing checks one approved outcome per goal",
    ),
    # -- maternal care: lectures (m002) ------------------------------------------------------------------------
    Mutation(
        "ck_maternal_care_lectures_within_capacity",
        _constraint("maternal_care_lectures", "ck_maternal_care_lectures_within_capacity"),
        (MC_LECTURES,),
        "a lecture never seats more than its capacity (concurrent registrations go to the waitlist)",
    ),
    Mutation(
        "maternal_care_lecture_count",
        _trigger("maternal_care_lecture_count", "maternal_care_lecture_registrations"),
        (MC_LECTURES,),
        "the seat counter the capacity CHECK reads follows the registrations",
    ),
    Mutation(
        "uq_maternal_care_lecture_registrations_live",
        "DROP INDEX uq_maternal_care_lecture_registrations_live",
        (MC_LECTURES,),
        "one live registration per mother and lecture",
    ),
    Mutation(
        "maternal_care_registration_guard",
        _trigger("maternal_care_registration_guard", "maternal_care_lecture_registrations"),
        (MC_LECTURES,),
        "a registration only moves forward (waitlisted -> registered, or cancelled) and is never deleted",
    ),
    Mutation(
        "ck_maternal_care_lecture_registrations_time_zone_shape",
        _constraint("maternal_care_lecture_registrations", "ck_maternal_care_lecture_registrations_time_zone_shape"),
        (MC_LECTURES,),
        "a registration's time zone has a zone name's shape",
    ),
    # -- maternal care: the registry (m001) ---------------------------------------------------------------------
    Mutation(
        "ex_maternal_care_pregnancies_no_overlap",
        _constraint("maternal_care_pregnancies", "ex_maternal_care_pregnancies_no_overlap"),
        (MC_REG,),
        "a mother's pregnancies follow one another (m007)",
    ),
    *(
        Mutation(
            f"maternal_care_risk_guard({table})",
            _trigger("maternal_care_risk_guard", table),
            (MC_REG,),
            "a pregnancy's grade, purple flag and responsible change only with the next numbered history row",
        )
        for table in ("maternal_care_pregnancies", "maternal_care_risk_changes")
    ),
    Mutation(
        "maternal_care_risk_consumed",
        _trigger("maternal_care_risk_consumed", "maternal_care_risk_changes"),
        (MC_REG,),
        "every risk history row is taken up by its pregnancy before commit",
    ),
    *(
        Mutation(
            f"maternal_care_append_only({table})",
            _trigger("maternal_care_append_only", table),
            (MC_REG,),
            "risk history and dating corrections stay as written",
        )
        for table in ("maternal_care_risk_changes", "maternal_care_dating_corrections")
    ),
    Mutation(
        "ck_maternal_care_risk_changes_high_risk_has_responsible",
        _constraint("maternal_care_risk_changes", "ck_maternal_care_risk_changes_high_risk_has_responsible"),
        (MC_REG,),
        "orange, red and purple name a responsible staff member",
    ),
    Mutation(
        "uq_maternal_care_pregnancies_one_ongoing",
        "DROP INDEX uq_maternal_care_pregnancies_one_ongoing",
        (MC_REG,),
        "one ongoing pregnancy per mother",
    ),
    Mutation(
        "uq_maternal_care_mothers_resident_id",
        _constraint("maternal_care_mothers", "uq_maternal_care_mothers_resident_id"),
        (MC_REG,),
        "a resident is registered once",
    ),
    Mutation(
        "ck_maternal_care_pregnancies_outcome_after_lmp",
        _constraint("maternal_care_pregnancies", "ck_maternal_care_pregnancies_outcome_after_lmp"),
        (MC_REG,),
        "an outcome is not dated before the pregnancy began",
    ),
    Mutation(
        "ck_maternal_care_pregnancies_discharge_after",
        _constraint("maternal_care_pregnancies", "ck_maternal_care_pregnancies_discharge_after"),
        (MC_REG,),
        "a discharge follows a delivery",
    ),
    # -- maternal care: follow-ups (m003) -----------------------------------------------------------------------
    Mutation(
        "ck_maternal_care_followups_abnormal_referred",
        _constraint("maternal_care_followups", "ck_maternal_care_followups_abnormal_referred"),
        (MC_FU,),
        "an abnormal finding is referred on",
    ),
    Mutation(
        "ck_maternal_care_followups_rule_known",
        _constraint("maternal_care_followups", "ck_maternal_care_followups_rule_known"),
        (MC_FU,),
        "a follow-up follows a rule of the national schedule",
    ),
    Mutation(
        "uq_maternal_care_followups_rule",
        "DROP INDEX uq_maternal_care_followups_rule",
        (MC_FU,),
        "one follow-up per pregnancy and rule (generation is idempotent)",
    ),
    Mutation(
        "maternal_care_followup_guard",
        _trigger("maternal_care_followup_guard", "maternal_care_followups"),
        (MC_FU,),
        "a closed follow-up does not change; none is deleted",
    ),
    # -- maternal care: urgent needs (m004) ---------------------------------------------------------------------
    Mutation(
        "tenant_isolation(maternal_care_urgent_needs)",
        _permissive("maternal_care_urgent_needs"),
        (MC_NEEDS,),
        "an organisation never sees another's urgent needs",
    ),
    Mutation(
        "maternal_care_append_only(maternal_care_urgent_needs)",
        _trigger("maternal_care_append_only", "maternal_care_urgent_needs"),
        (MC_NEEDS,),
        "an urgent need's link to its help request stays as written",
    ),
    *(
        Mutation(
            name,
            _constraint("maternal_care_urgent_needs", name),
            (MC_NEEDS,),
            "an urgent need is well formed and linked once",
        )
        for name in (
            "ck_maternal_care_urgent_needs_quantity_valid",
            "ck_maternal_care_urgent_needs_beneficiary_valid",
            "uq_maternal_care_urgent_needs_organization_id_help_request_id",
        )
    ),
]


def _pytest(mutation: Mutation, server_url: str) -> tuple[str, float, str]:
    env = dict(os.environ, DATABASE_URL=server_url, **{ENV: mutation.sql})
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-x",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.schema_mutations",
            *mutation.tests,
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.monotonic() - started
    verdict = {0: "SURVIVED", 1: "killed", BAD_MUTATION: "INVALID (object not found)"}.get(
        done.returncode, f"error (pytest exit {done.returncode})"
    )
    if done.returncode not in (0, 1):
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
    failed = [line.split(" - ")[0] for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    return verdict, elapsed, failed[0] if failed else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="mutations to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    args = parser.parse_args(argv)
    if args.list:
        for m in MUTATIONS:
            print(f"{m.name:45} {m.guards}")  # noqa: T201
        return 0
    chosen = [m for m in MUTATIONS if not args.names or m.name in args.names]
    unknown = set(args.names) - {m.name for m in MUTATIONS}
    if unknown:
        parser.error(f"unknown mutations: {', '.join(sorted(unknown))}")

    from core.database import EmbeddedPostgres

    results = []
    external = os.environ.get("DATABASE_URL")
    with tempfile.TemporaryDirectory(prefix="ysg-schema-mutations-") as tmp:
        server = None if external else EmbeddedPostgres.start(Path(tmp) / "pgdata", delete_on_stop=True)
        try:
            if server is not None:
                server.server.psql(
                    "ALTER SYSTEM SET fsync = off; ALTER SYSTEM SET synchronous_commit = off;"
                    "ALTER SYSTEM SET full_page_writes = off; SELECT pg_reload_conf();"
                )
            url = external or server.url()  # type: ignore[union-attr]
            # The control: with nothing dropped every selected test passes (else "killed" would mean nothing).
            files = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
            verdict, elapsed, first = _pytest(Mutation("(control: nothing dropped)", "SELECT 1", files, ""), url)
            print(f"{verdict:10} (control: nothing dropped) {elapsed:5.1f}s {first}", flush=True)  # noqa: T201
            if verdict != "SURVIVED":
                print("the selected tests fail without any mutation: fix them first")  # noqa: T201
                return 2
            for m in chosen:
                verdict, elapsed, first = _pytest(m, url)
                results.append((m, verdict))
                print(f"{verdict:10} {m.name:45} {elapsed:5.1f}s  {first or ' '.join(m.tests)}", flush=True)  # noqa: T201
        finally:
            if server is not None:
                server.stop()
    survived = [m for m, v in results if v != "killed"]
    print(  # noqa: T201
        f"\n{len(results) - len(survived)}/{len(results)} schema mutations killed"
        + "".join(f"\n  not killed: {m.name} ({m.guards})" for m in survived)
    )
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
