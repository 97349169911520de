"""The casework plugin's rows of the permission matrix (tests/schema/test_plugin_access.py), and its records in
the matrix's world.

Who is who (the world's accounts, tests/schema/access_world.py): `social_worker` is the social worker of A's
cases `case_a` (and serves community c1); `case_a2` is another social worker's (`sw_other_a`), so the world's
social worker is "another social worker" for it; both are supervised by `sup_a` (not signed in: the matrix has
no row for a supervisor, whose relation tests/plugins/case_work covers). B has `case_b`. Administrators see
their organisation's cases (a platform administrator: its own organisation's, by casework's scope); counselors,
community heads, volunteers and partners hold no casework permission (FORBIDDEN on root fields).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import text

from core.models import Account, AccountPluginRole, AvailabilityWindow
from core.services.context import ServiceContext, Viewer
from plugins.case_work import reactions
from plugins.case_work import services as cases
from plugins.case_work.groups import services as groups
from plugins.case_work.notes import services as notes
from plugins.case_work.plans import services as plans
from plugins.case_work.plans.models import DOMAINS
from plugins.case_work.visits import services as visits
from plugins.counseling.services import RiskRaised
from schema import ids
from tests.plugin_access import (
    MASKED_A,
    MASKED_B,
    NULL,
    OK,
    PHONE_A,
    PHONE_B,
    UNIQUE,
    F,
    N,
    PluginWorld,
    Read,
    Write,
    managers,
    no_vars,
    node,
    per_role,
)

MANAGE = frozenset({"case_work.manage"})
SUPERVISING = frozenset({"case_work.manage", "case_work.supervise"})
NOTE_A, NOTE_B = "甲个案记录：独居，夜间跌倒", "乙个案记录"


def _viewer(p: PluginWorld, who: str) -> Viewer:
    """The service-layer caller for `who`: the world's accounts and the casework accounts of this part."""
    w = p.w
    org_of = {"sw": "a", "admin_a": "a", "sup_a": "a", "sw_other_a": "a", "sup_b": "b", "sw_b": "b", "admin_b": "b"}
    account = {
        "sw": w.ids.get("account_social_worker"),
        "admin_a": w.ids.get("account_org_admin_a"),
        "admin_b": w.ids.get("account_org_admin_b"),
    }.get(who) or p.pk[who]
    admin = who.startswith("admin")
    return Viewer(
        label=who,
        account_id=account,
        organization_id=p.pk[f"org_{org_of[who]}"],
        role="organization_admin" if admin else "social_worker",
        volunteer_id=w.ids["v_sw"] if who == "sw" else None,
        extra_permissions=SUPERVISING if who.startswith("sup") else MANAGE,
    )


@contextlib.asynccontextmanager
async def _as(p: PluginWorld, who: str) -> AsyncIterator[ServiceContext]:
    async with p.staff(_viewer_org(who)) as staff:
        ctx = ServiceContext(staff.session, _viewer(p, who))
        yield ctx


def _viewer_org(who: str) -> str:
    return "b" if who.endswith("_b") else "a"


async def fresh_case(
    p: PluginWorld, stage: str = "intake", *, worker: str = "sw", org: str = "a", assessed: bool = False
) -> int:
    """A new low-risk case of `worker` (A: the world's social worker), brought to `stage` (`assessed`: with an
    assessment recorded there, as an assessment approval needs)."""
    supervisor = "sup_a" if org == "a" else "sup_b"
    async with _as(p, worker) as ctx:
        case = await cases.open_case(
            ctx,
            category="elderly_care",
            risk_level="low",
            supervisor_account_id=p.pk[supervisor],
            client=cases.ClientInput(name=f"w-案主{next(UNIQUE)}", phone=PHONE_A if org == "a" else PHONE_B),
        )
    path = ["assessment", "planning", "intervention", "evaluation", "closure"]
    for to in path[: path.index(stage) + 1] if stage != "intake" else []:
        if to == "closure":
            async with _as(p, worker) as ctx:
                approval = await cases.request_approval(ctx, case.id, "closure", "总结", ["达成"])
            async with _as(p, supervisor) as ctx:
                await cases.decide_approval(ctx, approval.id, True)
        async with _as(p, worker) as ctx:
            await cases.advance(ctx, case.id, to, "理由")
        if to == "planning" and stage == "closure":  # closing states an outcome per goal: one goal
            async with _as(p, worker) as ctx:
                plan = await plans.create_plan(ctx, case.id, None)
                await plans.add_goal(ctx, plan.id, "w-目标", "daily_living")
    if assessed:
        async with _as(p, worker) as ctx:
            await plans.record_assessment(ctx, case.id, [plans.NeedInput(d, 0) for d in DOMAINS])
    return int(case.id)


async def _plan_goal(p: PluginWorld, case_id: int) -> tuple[int, int]:
    async with _as(p, "sw") as ctx:
        plan = await plans.create_plan(ctx, case_id, None)
        goal = await plans.add_goal(ctx, plan.id, "w-目标", "daily_living")
        return int(plan.id), int(goal.id)


async def build(p: PluginWorld) -> None:
    """A: a supervisor, another social worker, case_a (the world's social worker's: assessed and approved, in
    planning, with a plan, goal, action, progress, a note, an administrator's audited note access, a pending
    transfer, a booked visit, a review), case_a2 (the other worker's), a case from help request r1, a queued
    intake. B: its own supervisor, social worker, case_b (with a note and a plan) and a queued intake."""
    w = p.w
    async with w.service() as ctx:
        for key, org in (("sup_a", "a"), ("sw_other_a", "a"), ("sup_b", "b"), ("sw_b", "b")):
            account = Account(
                username=f"cw-{key}",
                display_name=f"cw-{key}",
                password_hash="-",
                role="social_worker",
                organization_id=p.pk[f"org_{org}"],
            )
            ctx.session.add(account)
            await ctx.session.flush()
            p.pk[key] = account.id
            if key.startswith("sup"):
                ctx.session.add(
                    AccountPluginRole(
                        account_id=account.id,
                        role=cases.SUPERVISOR_ROLE,
                        granted_by="world",
                        organization_id=account.organization_id,
                    )
                )
        for weekday in range(7):
            ctx.session.add(
                AvailabilityWindow(
                    owner_id=w.ids["v_sw"],
                    weekday=weekday,
                    start_time=time(7),
                    end_time=time(21),
                    organization_id=p.pk["org_a"],
                )
            )
    for org, worker, supervisor, tag, phone in (
        ("a", "sw", "sup_a", "甲", PHONE_A),
        ("b", "sw_b", "sup_b", "乙", PHONE_B),
    ):
        async with _as(p, worker) as ctx:
            case = await cases.open_case(
                ctx,
                category="elderly_care",
                risk_level="low",
                supervisor_account_id=p.pk[supervisor],
                client=cases.ClientInput(name=f"{tag}案主", phone=phone, address="碑林区粉巷5号"),
            )
            p.pk[f"case_{org}"] = case.id
            p.pk[f"client_{org}"] = case.client_id
            await cases.advance(ctx, case.id, "assessment", "")
            assessment = await plans.record_assessment(
                ctx, case.id, [plans.NeedInput(d, 1, "") for d in DOMAINS], summary=f"{tag}预估"
            )
            approval = await cases.request_approval(ctx, case.id, "assessment", f"{tag}预估审批")
            p.pk |= {f"assessment_{org}": assessment.id, f"approval_{org}": approval.id}
        async with _as(p, supervisor) as ctx:
            await cases.decide_approval(ctx, approval.id, True)
        async with _as(p, worker) as ctx:
            await cases.advance(ctx, case.id, "planning", "")
            plan = await plans.create_plan(ctx, case.id, None)
            goal = await plans.add_goal(ctx, plan.id, f"{tag}目标", "daily_living")
            action = await plans.add_action(ctx, goal.id, f"{tag}行动", responsible_name="社区食堂")
            progress = await plans.record_progress(ctx, goal.id, status="in_progress", percent=10, note=f"{tag}进展")
            note = await notes.add_note(
                ctx,
                case.id,
                note_type="call",
                occurred_at=datetime.now().astimezone() - timedelta(hours=1),
                text=NOTE_A if org == "a" else NOTE_B,
            )
            p.pk |= {
                f"plan_{org}": plan.id,
                f"goal_{org}": goal.id,
                f"action_{org}": action.id,
                f"progress_{org}": progress.id,
                f"note_{org}": note.id,
            }
        async with _as(p, "admin_a" if org == "a" else "admin_b") as ctx:
            access = await notes.open_notes(ctx, case.id, f"{tag}查阅目的")
            p.pk[f"note_access_{org}"] = access.id
        # A queued intake: a counseling risk flag of the organisation's client, who lives in no community.
        async with p.staff(org) as ctx:
            intake = await reactions.on_risk_raised(
                ctx,
                RiskRaised(
                    organization_id=p.pk[f"org_{org}"],
                    flag_id=p.pk[f"flag_{org}"],
                    client_id=p.pk[f"client_{org}"],
                    severity="high",
                    source="counselor",
                    resident_id=None,
                ),
            )
            assert intake is not None
            p.pk[f"intake_{org}"] = intake.id
    async with _as(p, "sw") as ctx:
        transfer = await cases.propose_transfer(ctx, p.pk["case_a"], p.pk["sw_other_a"], "甲移交")
        visit = await visits.book_visit(ctx, p.pk["case_a"], mode="call", start=p.slot(), minutes=30, purpose="甲探访")
        p.pk |= {"transfer_a": transfer.id, "visit_a": visit.id}
    p.pk["case_a2"] = await fresh_case(p, worker="sw_other_a")
    # A review of case_a's plan: the job, run as the organisation on a clock 120 days ahead.
    async with p.staff() as ctx:
        system = Viewer(label="job", role="system", organization_id=p.pk["org_a"])
        later = datetime.now().astimezone() + timedelta(days=120)
        job = ServiceContext(ctx.session, system, clock=lambda: later)
        assert await plans.raise_due_reviews(job) >= 1
        review = await ctx.session.scalar(
            text("SELECT id FROM case_work_reviews WHERE plan_id = :p"), {"p": p.pk["plan_a"]}
        )
        p.pk["review_a"] = int(review)
    # Group work: A's group run by the world's social worker (a session, A's client taking part); B's group.
    for org, worker, supervisor, tag in (("a", "sw", "sup_a", "甲"), ("b", "sw_b", "sup_b", "乙")):
        async with _as(p, worker) as ctx:
            group = await groups.create_group(
                ctx,
                name=f"{tag}小组",
                purpose="互助",
                category="elderly_care",
                capacity=8,
                supervisor_account_id=p.pk[supervisor],
            )
            participant = await groups.add_participant(ctx, group.id, p.pk[f"client_{org}"])
            p.pk |= {f"group_{org}": group.id, f"participant_{org}": participant.id}
    async with _as(p, "sw") as ctx:
        session = await groups.schedule_session(ctx, p.pk["group_a"], start=p.slot(), minutes=60, topic="甲小组活动")
        p.pk["group_session_a"] = session.id
    # Help request r1 (c1) tagged for casework after verification: its case is the world's social worker's.
    async with _as(p, "admin_a") as ctx:
        await reactions.tag_help_request(ctx, w.ids["r1"], category="poverty", risk_level="low")


# -- cells ----------------------------------------------------------------------------------------------------------


def staff(a: Any, b: Any, both: Any, **overrides: Any) -> dict[str, Any]:
    """Casework's roles: the administrators and the social worker as given; the rest FORBIDDEN (their role)."""
    return managers(a, b, both, **overrides)


def hidden(a: Any, **overrides: Any) -> dict[str, Any]:
    """A record of A's by node: A's administrators (and the world's social worker if given) see `a`; everyone
    else gets null, as for a missing record."""
    cells = dict.fromkeys(
        ("platform_admin", "org_admin_a", "org_admin_b", "social_worker", "counselor", "community_head"), NULL
    ) | {"volunteer": NULL, "partner_a": NULL, "anonymous": NULL}
    return per_role(**(cells | {"platform_admin": a, "org_admin_a": a} | overrides))


def _nodes(d: Any, key: str) -> list[Any]:
    return sorted(str(n[key]) for n in d["nodes"])


def _case_gid(key: str) -> Any:
    return lambda p: {"c": ids.encode("CaseWorkCase", p.pk[key])}


def _marked(values: list[str]) -> list[str]:
    """The world's own records (甲…, 乙…), not those the write rows made."""
    return [v for v in values if v[:1] in ("甲", "乙")]


def _clients(d: Any) -> list[tuple[str, str]]:
    return sorted(
        (n["client"]["name"], n["client"]["phone"]) for n in d["nodes"] if not n["client"]["name"].startswith("w-")
    )


READS: list[Read] = [
    Read(
        "caseWorkCases: by relation and organisation; phones raw for the worker only",
        "{ r: caseWorkCases(first: 100) { nodes { client { name phone } } } }",
        no_vars,
        _clients,
        staff(
            [("王阿姨", "138****5678"), ("甲案主", MASKED_A)],
            [("乙案主", MASKED_B)],
            [("王阿姨", "138****5678"), ("甲案主", MASKED_A)],
            social_worker=[("王阿姨", "13812345678"), ("甲案主", PHONE_A)],
        ),
    ),
    Read(
        "caseWorkApprovals",
        "{ r: caseWorkApprovals(first: 100) { nodes { summary } } }",
        no_vars,
        lambda d: _marked(_nodes(d, "summary")),
        staff(["甲预估审批"], ["乙预估审批"], ["甲预估审批"]),
    ),
    Read(
        "caseWorkTransfers",
        "{ r: caseWorkTransfers(first: 100) { nodes { reason } } }",
        no_vars,
        lambda d: _marked(_nodes(d, "reason")),
        staff(["甲移交"], [], ["甲移交"]),
    ),
    Read(
        "caseWorkNotes of case_a: read by relation (its worker), not by rank",
        "query($c: ID!) { r: caseWorkNotes(caseId: $c, first: 10) { nodes { text } } }",
        _case_gid("case_a"),
        lambda d: _nodes(d, "text") if d else NULL,
        # A's administrator opened them through the audited purpose path (build); the platform administrator
        # has not, and is asked for a purpose.
        staff([NOTE_A], NULL, "PURPOSE_REQUIRED"),
    ),
    Read(
        "caseWorkNoteAccesses",
        "{ r: caseWorkNoteAccesses(first: 100) { nodes { purpose } } }",
        no_vars,
        lambda d: _marked(_nodes(d, "purpose")),
        staff(["甲查阅目的"], ["乙查阅目的"], ["甲查阅目的"]),
    ),
    Read(
        "caseWorkPlan of case_a",
        "query($c: ID!) { r: caseWorkPlan(caseId: $c) { goals { text } } }",
        _case_gid("case_a"),
        lambda d: [g["text"] for g in d["goals"]] if d else NULL,
        staff(["甲目标"], NULL, ["甲目标"]),
    ),
    Read(
        "caseWorkAssessments of case_a",
        "query($c: ID!) { r: caseWorkAssessments(caseId: $c, first: 10) { nodes { summary } } }",
        _case_gid("case_a"),
        lambda d: _nodes(d, "summary"),
        staff(["甲预估"], [], ["甲预估"]),
    ),
    Read(
        "caseWorkReviews",
        "{ r: caseWorkReviews(first: 100) { nodes { case { client { name } } } } }",
        no_vars,
        lambda d: _marked(sorted(n["case"]["client"]["name"] for n in d["nodes"])),
        staff(["甲案主"], [], ["甲案主"]),
    ),
    Read(
        "caseWorkVisits",
        "{ r: caseWorkVisits(first: 100) { nodes { purpose } } }",
        no_vars,
        lambda d: [v for v in _nodes(d, "purpose") if v == "甲探访"],
        staff(["甲探访"], [], ["甲探访"]),
    ),
    Read(
        "caseWorkCaseload (your own)",
        "{ r: caseWorkCaseload { openCases } }",
        no_vars,
        lambda d: "has cases" if d and d["openCases"] > 0 else d and d["openCases"],
        staff(0, 0, 0, social_worker="has cases"),
    ),
    Read(
        "caseWorkIntakes: supervisors and administrators only",
        "{ r: caseWorkIntakes(first: 100) { nodes { status sourceKind riskLevel } } }",
        no_vars,
        lambda d: sorted((n["status"], n["sourceKind"]) for n in d["nodes"] if n["riskLevel"] == "HIGH"),
        staff(
            [("QUEUED", "COUNSELING_RISK_FLAG")],
            [("QUEUED", "COUNSELING_RISK_FLAG")],
            [("QUEUED", "COUNSELING_RISK_FLAG")],
            social_worker=F,
        ),
    ),
    Read(
        "caseWorkGroups: every casework member of the organisation (recruited in the open)",
        "{ r: caseWorkGroups(first: 100) { nodes { name } } }",
        no_vars,
        lambda d: _marked(_nodes(d, "name")),
        staff(["甲小组"], ["乙小组"], ["甲小组"]),
    ),
    Read(
        "node CaseWorkGroup",
        *node("CaseWorkGroup", "group_a", "name", lambda d: d["name"]),
        hidden("甲小组", social_worker="甲小组"),
    ),
    Read(
        "node CaseWorkGroupSession",
        *node("CaseWorkGroupSession", "group_session_a", "topic", lambda d: d["topic"]),
        hidden("甲小组活动", social_worker="甲小组活动"),
    ),
    Read(
        "node CaseWorkGroupParticipant: those who run the group",
        *node("CaseWorkGroupParticipant", "participant_a", "leftAt", lambda d: "taking part" if not d["leftAt"] else 0),
        hidden("taking part", social_worker="taking part"),
    ),
    Read(
        "CaseWorkGroup.facilitatorChanges: those who run the group",
        # A's group has no change: [] for those who run it (a list, not null), null for everyone else
        *node("CaseWorkGroup", "group_a", "facilitatorChanges { seq }", lambda d: _listed(d["facilitatorChanges"])),
        hidden("listed", social_worker="listed"),
    ),
    Read(
        "HelpRequest.caseWorkCaseFile of r1: those who see the case",
        *node("HelpRequest", "r1", "caseWorkCaseFile { stage }", lambda d: d["caseWorkCaseFile"]),
        hidden({"stage": "INTAKE"}, social_worker={"stage": "INTAKE"}, community_head=NULL),
    ),
    Read(
        "node CaseWorkCase of case_a",
        *node("CaseWorkCase", "case_a", "stage", lambda d: d["stage"]),
        hidden("PLANNING", social_worker="PLANNING"),
    ),
    Read(
        "node CaseWorkCase of case_a2 (another social worker's: null for the world's)",
        *node("CaseWorkCase", "case_a2", "stage", lambda d: d["stage"]),
        hidden("INTAKE"),
    ),
    Read(
        "node CaseWorkClient of case_a: phone raw for its worker, masked for administrators",
        *node("CaseWorkClient", "client_a", "phone", lambda d: d["phone"]),
        hidden(MASKED_A, social_worker=PHONE_A),
    ),
    Read(
        "node CaseWorkApproval",
        *node("CaseWorkApproval", "approval_a", "summary", lambda d: d["summary"]),
        hidden("甲预估审批", social_worker="甲预估审批"),
    ),
    Read(
        "node CaseWorkTransfer",
        *node("CaseWorkTransfer", "transfer_a", "reason", lambda d: d["reason"]),
        hidden("甲移交", social_worker="甲移交"),
    ),
    Read(
        "node CaseWorkNote: its text by relation",
        *node("CaseWorkNote", "note_a", "text", lambda d: d["text"]),
        hidden(NOTE_A, social_worker=NOTE_A, platform_admin=NULL),  # the platform administrator states no purpose
    ),
    Read(
        "node CaseWorkNoteAccess",
        *node("CaseWorkNoteAccess", "note_access_a", "purpose", lambda d: d["purpose"]),
        hidden("甲查阅目的", social_worker="甲查阅目的"),
    ),
    Read(
        "node CaseWorkAssessment",
        *node("CaseWorkAssessment", "assessment_a", "summary", lambda d: d["summary"]),
        hidden("甲预估", social_worker="甲预估"),
    ),
    Read(
        "node CaseWorkPlan",
        *node("CaseWorkPlan", "plan_a", "goals { text }", lambda d: [g["text"] for g in d["goals"]]),
        hidden(["甲目标"], social_worker=["甲目标"]),
    ),
    Read(
        "node CaseWorkGoal",
        *node("CaseWorkGoal", "goal_a", "text", lambda d: d["text"]),
        hidden("甲目标", social_worker="甲目标"),
    ),
    Read(
        "node CaseWorkAction",
        *node("CaseWorkAction", "action_a", "text", lambda d: d["text"]),
        hidden("甲行动", social_worker="甲行动"),
    ),
    Read(
        "node CaseWorkGoalProgress",
        *node("CaseWorkGoalProgress", "progress_a", "note", lambda d: d["note"]),
        hidden("甲进展", social_worker="甲进展"),
    ),
    Read(
        "node CaseWorkReview",
        *node("CaseWorkReview", "review_a", "riskLevel", lambda d: d["riskLevel"]),
        hidden("LOW", social_worker="LOW"),
    ),
    Read(
        "node CaseWorkVisit",
        *node("CaseWorkVisit", "visit_a", "purpose", lambda d: d["purpose"]),
        hidden("甲探访", social_worker="甲探访"),
    ),
    Read(
        "node CaseWorkIntake: supervisors and administrators",
        *node("CaseWorkIntake", "intake_a", "status", lambda d: d["status"]),
        hidden("QUEUED"),
    ),
]


# -- writes: each role acts on a fresh target of A's (the world's social worker's case) --------------------------------

# The world's social worker and A's administrators act; B's administrator gets NOT_FOUND; the others FORBIDDEN.
ON_A = staff(OK, N, OK)
# Acts of the case's social worker only (administrators do not do the casework: plans are the worker's).
WORKER_ONLY = staff(F, N, F, social_worker=OK)
# Notes: by relation; an administrator is not the case's worker, and the notes answer as missing to them.
NOTES_WORKER_ONLY = staff(N, N, N, social_worker=OK)
# Decisions of supervisors and administrators (the world's social worker is neither for its own case).
DECIDERS = staff(OK, N, OK, social_worker=F)


def _case_at(stage: str, key: str = "id", *, assessed: bool = False) -> Any:
    async def prepare(p: PluginWorld) -> dict[str, Any]:
        return {key: ids.encode("CaseWorkCase", await fresh_case(p, stage, assessed=assessed))}

    return prepare


async def _open(p: PluginWorld) -> dict[str, Any]:
    return {
        "input": {
            "category": "ELDERLY_CARE",
            "riskLevel": "LOW",
            "supervisorId": ids.encode("Account", p.pk["sup_a"]),
            "socialWorkerId": ids.encode("Account", p.w.ids["account_social_worker"]),
            "client": {"name": f"w-新案主{next(UNIQUE)}"},
        }
    }


async def _approval(p: PluginWorld) -> dict[str, Any]:
    case_id = await fresh_case(p, "assessment", assessed=True)
    async with _as(p, "sw") as ctx:
        approval = await cases.request_approval(ctx, case_id, "assessment", "审批")
    return {"id": ids.encode("CaseWorkApproval", approval.id)}


async def _transfer(p: PluginWorld, to: str = "sw_other_a") -> int:
    case_id = await fresh_case(p)
    async with _as(p, "sw") as ctx:
        transfer = await cases.propose_transfer(ctx, case_id, p.pk[to], "移交")
    return int(transfer.id)


async def _transfer_to_world_sw(p: PluginWorld) -> dict[str, Any]:
    case_id = await fresh_case(p, worker="sw_other_a")
    async with _as(p, "sw_other_a") as ctx:
        transfer = await cases.propose_transfer(ctx, case_id, p.w.ids["account_social_worker"], "移交")
    return {"id": ids.encode("CaseWorkTransfer", transfer.id)}


async def _note(p: PluginWorld) -> dict[str, Any]:
    case_id = await fresh_case(p)
    async with _as(p, "sw") as ctx:
        note = await notes.add_note(
            ctx, case_id, note_type="call", occurred_at=datetime.now().astimezone() - timedelta(hours=1), text="记录"
        )
    return {"id": ids.encode("CaseWorkNote", note.id)}


async def _plan(p: PluginWorld) -> dict[str, Any]:
    plan_id, _ = await _plan_goal(p, await fresh_case(p, "planning"))
    return {"id": ids.encode("CaseWorkPlan", plan_id)}


async def _goal(p: PluginWorld) -> dict[str, Any]:
    _, goal_id = await _plan_goal(p, await fresh_case(p, "planning"))
    return {"id": ids.encode("CaseWorkGoal", goal_id)}


async def _action(p: PluginWorld) -> dict[str, Any]:
    _, goal_id = await _plan_goal(p, await fresh_case(p, "planning"))
    async with _as(p, "sw") as ctx:
        action = await plans.add_action(ctx, goal_id, "行动", responsible_name="社区")
    return {"id": ids.encode("CaseWorkAction", action.id)}


async def _review(p: PluginWorld) -> dict[str, Any]:
    case_id = await fresh_case(p, "planning")
    plan_id, _ = await _plan_goal(p, case_id)
    async with p.staff() as ctx:
        later = datetime.now().astimezone() + timedelta(days=120)
        job = ServiceContext(
            ctx.session, Viewer(label="job", role="system", organization_id=p.pk["org_a"]), clock=lambda: later
        )
        await plans.raise_due_reviews(job)
        review = await ctx.session.scalar(text("SELECT id FROM case_work_reviews WHERE plan_id = :p"), {"p": plan_id})
    return {"id": ids.encode("CaseWorkReview", int(review))}


async def _into_the_past(ctx: ServiceContext, appointment_id: int) -> None:
    """Move an appointment into the past (a day of its own), so that what took place can be recorded."""
    n = next(UNIQUE)
    await ctx.session.execute(
        text(
            "UPDATE appointments SET during = tstzrange(now() - make_interval(days => :n, hours => 2),"
            " now() - make_interval(days => :n, hours => 1)),"
            " blocked = tstzrange(now() - make_interval(days => :n, hours => 2),"
            " now() - make_interval(days => :n, hours => 1) + interval '10 minutes') WHERE id = :id"
        ),
        {"n": n, "id": appointment_id},
    )


async def _visit(p: PluginWorld, *, past: bool = False) -> dict[str, Any]:
    case_id = await fresh_case(p)
    async with _as(p, "sw") as ctx:
        visit = await visits.book_visit(ctx, case_id, mode="call", start=p.slot(), minutes=30)
        if past:
            await _into_the_past(ctx, visit.appointment_id)
    return {"id": ids.encode("CaseWorkVisit", visit.id)}


async def _past_visit(p: PluginWorld) -> dict[str, Any]:
    return await _visit(p, past=True)


async def _intake(p: PluginWorld) -> dict[str, Any]:
    async with p.staff() as ctx:
        intake = await reactions.on_risk_raised(
            ctx,
            RiskRaised(
                organization_id=p.pk["org_a"],
                flag_id=1_000_000 + next(UNIQUE),
                client_id=p.pk["client_a"],
                severity="medium",
                source="counselor",
                resident_id=None,
            ),
        )
        assert intake is not None
    # A resident-less intake is not opened (INVALID_INPUT): give it a fresh resident (a new case's client).
    fresh = await fresh_case(p)
    async with p.staff() as ctx:
        resident = await ctx.session.scalar(
            text(
                "SELECT c.resident_id FROM case_work_cases k JOIN case_work_clients c ON c.id = k.client_id"
                " WHERE k.id = :k"
            ),
            {"k": fresh},
        )
        await ctx.session.execute(
            text("UPDATE case_work_intakes SET resident_id = :r WHERE id = :i"), {"r": resident, "i": intake.id}
        )
    return {
        "input": {
            "id": ids.encode("CaseWorkIntake", intake.id),
            "socialWorkerId": ids.encode("Account", p.w.ids["account_social_worker"]),
            "supervisorId": ids.encode("Account", p.pk["sup_a"]),
            "category": "MENTAL_HEALTH",
        }
    }


async def _request_to_tag(p: PluginWorld) -> dict[str, Any]:
    request_id = await p.w.make_request("c1", title=f"w-求助{next(UNIQUE)}")
    return {"input": {"helpRequestId": ids.encode("HelpRequest", request_id), "category": "OTHER", "riskLevel": "LOW"}}


def _m(name: str, input_type: str) -> str:
    return f"mutation($input: {input_type}!) {{ r: {name}(input: $input) {{ errors {{ code }} }} }}"


def _inputs(prepare: Any, **extra: Any) -> Any:
    async def wrapped(p: PluginWorld) -> dict[str, Any]:
        made = await prepare(p)
        return {"input": made | extra}

    return wrapped


def _now_iso(hours: int = -1) -> str:
    return (datetime.now().astimezone() + timedelta(hours=hours)).isoformat()


def _to_other(prepare: Any) -> Any:
    async def wrapped(p: PluginWorld) -> dict[str, Any]:
        return await prepare(p) | {"toId": ids.encode("Account", p.pk["sw_other_a"])}

    return wrapped


async def _group(p: PluginWorld) -> int:
    async with _as(p, "sw") as ctx:
        group = await groups.create_group(
            ctx,
            name=f"w-小组{next(UNIQUE)}",
            purpose="互助",
            category="other",
            capacity=8,
            supervisor_account_id=p.pk["sup_a"],
        )
    return int(group.id)


async def _group_id(p: PluginWorld) -> dict[str, Any]:
    return {"groupId": ids.encode("CaseWorkGroup", await _group(p))}


async def _group_participant(p: PluginWorld) -> tuple[int, int]:
    group_id = await _group(p)
    client_of_fresh = await fresh_case(p)
    async with p.staff() as ctx:
        client_id = await ctx.session.scalar(
            text("SELECT client_id FROM case_work_cases WHERE id = :k"), {"k": client_of_fresh}
        )
    async with _as(p, "sw") as ctx:
        # Joined long ago: attendance is kept only for sessions after a member joined, and the sessions of
        # these rows are moved into the past (_into_the_past).
        long_ago = dataclasses.replace(ctx, clock=lambda: ctx.clock() - timedelta(days=3650))
        participant = await groups.add_participant(long_ago, group_id, int(client_id))
    return group_id, int(participant.id)


async def _group_and_client(p: PluginWorld) -> dict[str, Any]:
    group_id = await _group(p)
    case_id = await fresh_case(p)
    async with p.staff() as ctx:
        client_id = await ctx.session.scalar(
            text("SELECT client_id FROM case_work_cases WHERE id = :k"), {"k": case_id}
        )
    return {"groupId": ids.encode("CaseWorkGroup", group_id), "clientId": ids.encode("CaseWorkClient", int(client_id))}


async def _group_session(p: PluginWorld, *, with_participant: bool = False) -> dict[str, Any]:
    if with_participant:
        group_id, participant_id = await _group_participant(p)
    else:
        group_id, participant_id = await _group(p), 0
    async with _as(p, "sw") as ctx:
        session = await groups.schedule_session(ctx, group_id, start=p.slot(), minutes=60, topic="活动")
        if with_participant:  # attendance is recorded for a session that took place
            await _into_the_past(ctx, session.appointment_id)
    made = {"id": ids.encode("CaseWorkGroupSession", session.id)}
    if with_participant:
        made = {
            "sessionId": made["id"],
            "participantId": ids.encode("CaseWorkGroupParticipant", participant_id),
        }
    return made


async def _session_for_attendance(p: PluginWorld) -> dict[str, Any]:
    return await _group_session(p, with_participant=True)


async def _session_for_note(p: PluginWorld) -> dict[str, Any]:
    return {"sessionId": (await _group_session(p))["id"]}


async def _participant(p: PluginWorld) -> dict[str, Any]:
    _, participant_id = await _group_participant(p)
    return {"id": ids.encode("CaseWorkGroupParticipant", participant_id)}


async def _schedule(p: PluginWorld) -> dict[str, Any]:
    return {"input": await _group_id(p) | {"start": p.slot().isoformat(), "minutes": 60}}


async def _group_to_other(p: PluginWorld) -> dict[str, Any]:
    """A fresh group of the world's social worker handed to the other social worker of A (no session ahead)."""
    return await _group_id(p) | {"facilitatorId": ids.encode("Account", p.pk["sw_other_a"]), "reason": "病假"}


async def _reschedule_session(p: PluginWorld) -> dict[str, Any]:
    made = await _group_session(p)
    return {"input": made | {"start": p.slot().isoformat(), "minutes": 45}}


def _listed(changes: list[Any] | None) -> Any:
    return "listed" if changes == [] else changes


WRITES: list[Write] = [
    Write(
        "caseWorkOpenCase (naming the world's social worker)",
        _m("caseWorkOpenCase", "CaseWorkOpenCaseInput"),
        _open,
        staff(OK, N, OK, social_worker=OK),
    ),
    Write(
        "caseWorkAdvanceCaseStage of A's case",
        _m("caseWorkAdvanceCaseStage", "CaseWorkAdvanceCaseStageInput"),
        _inputs(_case_at("intake"), to="ASSESSMENT"),
        ON_A,
    ),
    Write(
        "caseWorkReopenCase of A's closed case",
        _m("caseWorkReopenCase", "CaseWorkReopenCaseInput"),
        _inputs(_case_at("closure"), reason="再次求助"),
        DECIDERS,
    ),
    Write(
        "caseWorkUpdateCase of A's case (raise risk)",
        _m("caseWorkUpdateCase", "CaseWorkUpdateCaseInput"),
        _inputs(_case_at("intake"), riskLevel="MEDIUM"),
        ON_A,
    ),
    Write(
        "caseWorkRequestApproval of A's case",
        _m("caseWorkRequestApproval", "CaseWorkRequestApprovalInput"),
        _inputs(_case_at("assessment", "caseId", assessed=True), kind="ASSESSMENT", summary="预估"),
        ON_A,
    ),
    Write(
        "caseWorkDecideApproval asked by the world's social worker",
        _m("caseWorkDecideApproval", "CaseWorkDecideApprovalInput"),
        _inputs(_approval, approve=True),
        staff(OK, N, OK, social_worker="SELF_APPROVAL"),
    ),
    Write(
        "caseWorkProposeTransfer of A's case",
        _m("caseWorkProposeTransfer", "CaseWorkProposeTransferInput"),
        _inputs(_to_other(_case_at("intake", "caseId")), reason="休假"),
        ON_A,
    ),
    Write(
        "caseWorkAnswerTransfer offered to the world's social worker",
        _m("caseWorkAnswerTransfer", "CaseWorkAnswerTransferInput"),
        _inputs(_transfer_to_world_sw, accept=True),
        staff(F, N, F, social_worker=OK),
    ),
    Write(
        "caseWorkWithdrawTransfer of A's case",
        _m("caseWorkWithdrawTransfer", "CaseWorkWithdrawTransferInput"),
        _inputs(lambda p: _gid_of(_transfer(p), "CaseWorkTransfer")),
        ON_A,
    ),
    Write(
        "caseWorkAddNote on A's case (its worker only)",
        _m("caseWorkAddNote", "CaseWorkAddNoteInput"),
        _inputs(_case_at("intake", "caseId"), noteType="CALL", occurredAt=_now_iso(), text="记录"),
        NOTES_WORKER_ONLY,
    ),
    Write(
        "caseWorkEditNote of A's case",
        _m("caseWorkEditNote", "CaseWorkEditNoteInput"),
        _inputs(_note, text="改"),
        NOTES_WORKER_ONLY,
    ),
    Write(
        "caseWorkVoidNote of A's case",
        _m("caseWorkVoidNote", "CaseWorkVoidNoteInput"),
        _inputs(_note, reason="写错"),
        NOTES_WORKER_ONLY,
    ),
    Write(
        "caseWorkOpenCaseNotes (audited purpose) of A's case",
        _m("caseWorkOpenCaseNotes", "CaseWorkOpenCaseNotesInput"),
        _inputs(_case_at("intake", "caseId"), purpose="督导"),
        staff(OK, N, OK, social_worker="INVALID_INPUT"),
    ),
    Write(
        "caseWorkRecordAssessment of A's case",
        _m("caseWorkRecordAssessment", "CaseWorkRecordAssessmentInput"),
        _inputs(_case_at("assessment", "caseId"), needs=[{"domain": d.upper(), "score": 1} for d in DOMAINS]),
        WORKER_ONLY,
    ),
    Write(
        "caseWorkCreatePlan of A's case",
        _m("caseWorkCreatePlan", "CaseWorkCreatePlanInput"),
        _inputs(_case_at("planning", "caseId")),
        WORKER_ONLY,
    ),
    Write(
        "caseWorkUpdatePlan of A's case",
        _m("caseWorkUpdatePlan", "CaseWorkUpdatePlanInput"),
        _inputs(_plan, plannedEnd=None),
        WORKER_ONLY,
    ),
    Write(
        "caseWorkAddGoal to A's plan",
        _m("caseWorkAddGoal", "CaseWorkAddGoalInput"),
        _inputs(lambda p: _rename(_plan(p), "planId"), text="目标", domain="HEALTH"),
        WORKER_ONLY,
    ),
    Write(
        "caseWorkUpdateGoal of A's plan",
        _m("caseWorkUpdateGoal", "CaseWorkUpdateGoalInput"),
        _inputs(_goal, text="改目标"),
        WORKER_ONLY,
    ),
    Write(
        "caseWorkAddAction to A's goal",
        _m("caseWorkAddAction", "CaseWorkAddActionInput"),
        _inputs(lambda p: _rename(_goal(p), "goalId"), text="行动", responsibleName="社区"),
        WORKER_ONLY,
    ),
    Write(
        "caseWorkUpdateAction of A's goal",
        _m("caseWorkUpdateAction", "CaseWorkUpdateActionInput"),
        _inputs(_action, done=True),
        WORKER_ONLY,
    ),
    Write(
        "caseWorkRecordGoalProgress on A's goal",
        _m("caseWorkRecordGoalProgress", "CaseWorkRecordGoalProgressInput"),
        _inputs(lambda p: _rename(_goal(p), "goalId"), percent=20),
        WORKER_ONLY,
    ),
    Write(
        "caseWorkCompleteReview of A's plan",
        _m("caseWorkCompleteReview", "CaseWorkCompleteReviewInput"),
        _inputs(_review, note="已复核"),
        ON_A,
    ),
    Write(
        "caseWorkBookVisit for A's case", _m("caseWorkBookVisit", "CaseWorkBookVisitInput"), lambda p: _book(p), ON_A
    ),
    Write(
        "caseWorkRescheduleVisit of A's case",
        _m("caseWorkRescheduleVisit", "CaseWorkRescheduleVisitInput"),
        lambda p: _reschedule(p),
        ON_A,
    ),
    Write(
        "caseWorkCancelVisit of A's case",
        _m("caseWorkCancelVisit", "CaseWorkCancelVisitInput"),
        _inputs(_visit, reason="改期"),
        ON_A,
    ),
    Write(
        "caseWorkRecordVisitOutcome of A's past visit",
        _m("caseWorkRecordVisitOutcome", "CaseWorkRecordVisitOutcomeInput"),
        _inputs(_past_visit, outcome="DONE"),
        ON_A,
    ),
    Write(
        "caseWorkCreateGroup (A's supervisor)",
        _m("caseWorkCreateGroup", "CaseWorkCreateGroupInput"),
        lambda p: _create_group(p),
        staff(OK, N, OK, social_worker=OK),
    ),
    Write(
        "caseWorkAdvanceGroupStage of A's group",
        _m("caseWorkAdvanceGroupStage", "CaseWorkAdvanceGroupStageInput"),
        _inputs(_group_id, to="FORMATION"),
        ON_A,
    ),
    Write(
        "caseWorkScheduleGroupSession of A's group",
        _m("caseWorkScheduleGroupSession", "CaseWorkScheduleGroupSessionInput"),
        _schedule,
        ON_A,
    ),
    Write(
        "caseWorkCancelGroupSession of A's group",
        _m("caseWorkCancelGroupSession", "CaseWorkCancelGroupSessionInput"),
        _inputs(_group_session, reason="下雨"),
        ON_A,
    ),
    Write(
        "caseWorkAddGroupParticipant to A's group",
        _m("caseWorkAddGroupParticipant", "CaseWorkAddGroupParticipantInput"),
        _inputs(_group_and_client),
        ON_A,
    ),
    Write(
        "caseWorkRemoveGroupParticipant of A's group",
        _m("caseWorkRemoveGroupParticipant", "CaseWorkRemoveGroupParticipantInput"),
        _inputs(_participant, reason="搬家"),
        ON_A,
    ),
    Write(
        "caseWorkRecordGroupAttendance in A's group",
        _m("caseWorkRecordGroupAttendance", "CaseWorkRecordGroupAttendanceInput"),
        _inputs(_session_for_attendance, status="PRESENT"),
        ON_A,
    ),
    Write(
        "caseWorkAddGroupNote (confidential: the facilitators and supervisor)",
        _m("caseWorkAddGroupNote", "CaseWorkAddGroupNoteInput"),
        _inputs(_session_for_note, text="活动记录"),
        WORKER_ONLY,
    ),
    Write(
        "caseWorkChangeGroupFacilitators of A's group (its supervisor, administrators; not its facilitator)",
        _m("caseWorkChangeGroupFacilitators", "CaseWorkChangeGroupFacilitatorsInput"),
        _inputs(_group_to_other),
        DECIDERS,
    ),
    Write(
        "caseWorkUpdateGroup of A's group",
        _m("caseWorkUpdateGroup", "CaseWorkUpdateGroupInput"),
        _inputs(_group_id, capacity=10, goals="每周一次"),
        ON_A,
    ),
    Write(
        "caseWorkRescheduleGroupSession of A's group",
        _m("caseWorkRescheduleGroupSession", "CaseWorkRescheduleGroupSessionInput"),
        _reschedule_session,
        ON_A,
    ),
    Write(
        "caseWorkTagHelpRequest of c1 (A)",
        _m("caseWorkTagHelpRequest", "CaseWorkTagHelpRequestInput"),
        _request_to_tag,
        ON_A,
    ),
    Write(
        "caseWorkOpenCaseFromIntake of A (supervisors, administrators)",
        _m("caseWorkOpenCaseFromIntake", "CaseWorkOpenCaseFromIntakeInput"),
        _intake,
        DECIDERS,
    ),
]


async def _gid_of(made: Any, type_name: str) -> dict[str, Any]:
    return {"id": ids.encode(type_name, await made)}


async def _rename(made: Any, key: str) -> dict[str, Any]:
    found = await made
    return {key: found["id"]}


async def _book(p: PluginWorld) -> dict[str, Any]:
    case = await _case_at("intake", "caseId")(p)
    return {"input": case | {"mode": "CALL", "start": p.slot().isoformat(), "minutes": 30}}


async def _reschedule(p: PluginWorld) -> dict[str, Any]:
    visit = await _visit(p)
    return {"input": visit | {"start": p.slot().isoformat(), "minutes": 30}}


async def _create_group(p: PluginWorld) -> dict[str, Any]:
    return {
        "input": {
            "name": f"w-新小组{next(UNIQUE)}",
            "purpose": "互助",
            "category": "OTHER",
            "capacity": 8,
            "supervisorId": ids.encode("Account", p.pk["sup_a"]),
            "facilitatorId": ids.encode("Account", p.w.ids["account_social_worker"]),
        }
    }
