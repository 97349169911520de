"""Casework through the real GraphQL endpoint, callers signed in for real: the privacy matrix (who sees a case,
its client's phone and address, its history), the workflow and approvals, and bad input refused with codes."""

from __future__ import annotations

from typing import Any

import pytest

from plugins.case_work.plans.models import DOMAINS
from yunshegong.testing import Client, Harness

OPEN = """mutation($input: CaseWorkOpenCaseInput!) {
  r: caseWorkOpenCase(input: $input) { case { id stage riskLevel } errors { code field } } }"""
ADVANCE = """mutation($id: ID!, $to: CaseWorkStage!, $reason: String!) {
  r: caseWorkAdvanceCaseStage(input: {id: $id, to: $to, reason: $reason}) { case { stage } errors { code } } }"""
REQUEST = """mutation($id: ID!, $kind: CaseWorkApprovalKind!, $outcomes: [String!]!) {
  r: caseWorkRequestApproval(input: {caseId: $id, kind: $kind, summary: "总结", outcomes: $outcomes}) {
    approval { id status } errors { code } } }"""
REQUEST_AT = """mutation($id: ID!, $kind: CaseWorkApprovalKind!, $outcomes: [String!]!) {
  r: caseWorkRequestApproval(input: {caseId: $id, kind: $kind, summary: "总结", outcomes: $outcomes}) {
    approval { id } errors { code field } } }"""
ASSESS = """mutation($input: CaseWorkRecordAssessmentInput!) { r: caseWorkRecordAssessment(input: $input) {
  errors { code } } }"""
DECIDE = """mutation($id: ID!, $approve: Boolean!) {
  r: caseWorkDecideApproval(input: {id: $id, approve: $approve, note: "意见"}) {
    approval { status } errors { code } } }"""
REOPEN = """mutation($id: ID!) {
  r: caseWorkReopenCase(input: {id: $id, reason: "再次求助"}) { case { stage } errors { code } } }"""
NODE = """query($id: ID!) { r: node(id: $id) { ... on CaseWorkCase {
  stage category client { name phone address } socialWorker { name } supervisor { name }
  history { seq fromStage toStage reason } } } }"""
LIST = "{ r: caseWorkCases(first: 50) { totalCount nodes { client { name phone } } } }"
CLIENT_NODE = "query($id: ID!) { r: node(id: $id) { ... on CaseWorkClient { name phone address } } }"
GRANT = """mutation($a: ID!) { r: grantPluginRole(input: {accountId: $a, role: "case_work.supervisor"}) {
  errors { code } } }"""

PHONE, MASKED = "13700001111", "137****1111"
ADDRESS, MASKED_ADDRESS = "碑林区粉巷5号楼3单元", "碑林区****"


def _code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors")
    return errors[0].get("extensions", {}).get("code") if errors else None


@pytest.fixture
async def people(kit: Harness) -> dict[str, Any]:
    org_a = await kit.organization(plugins=["case_work"])
    org_b = await kit.organization(plugins=["case_work"])
    community = await kit.community(org_a)
    p: dict[str, Any] = {"org_a": org_a, "org_b": org_b}
    for key, role, org, scope in (
        ("sw", "social_worker", org_a, {}),
        ("sw2", "social_worker", org_a, {}),
        ("sup", "social_worker", org_a, {}),
        ("admin", "organization_admin", org_a, {}),
        ("padmin", "platform_admin", org_a, {}),
        ("counselor", "counselor", org_a, {}),
        ("volunteer", "volunteer", org_a, {}),
        ("head", "community_head", org_a, {"community_id": community}),
        ("admin_b", "organization_admin", org_b, {}),
        ("sw_b", "social_worker", org_b, {}),
    ):
        p[key] = await kit.sign_in(role, org, **scope)
    granted = await p["admin"](GRANT, {"a": p["sup"].account_id})
    assert granted["r"]["errors"] == []
    return p


async def _open(p: dict[str, Any], who: str = "sw", risk: str = "HIGH") -> str:
    body = await p[who](
        OPEN,
        {
            "input": {
                "category": "ELDERLY_CARE",
                "riskLevel": risk,
                "supervisorId": p["sup"].account_id,
                "client": {"name": "独居老人王奶奶", "phone": PHONE, "address": ADDRESS},
                "reason": "社区排查发现",
            }
        },
    )
    assert body["r"]["errors"] == [], body
    assert body["r"]["case"]["stage"] == "INTAKE"
    return str(body["r"]["case"]["id"])


async def test_who_sees_a_case_its_client_and_its_history(people: dict[str, Any]) -> None:
    # given a high-risk case of A's social worker, supervised by A's supervisor
    p = people
    case_id = await _open(p)
    assert (await p["sw"](ADVANCE, {"id": case_id, "to": "ASSESSMENT", "reason": ""}))["r"]["errors"] == []
    # when each caller asks for it by node, and lists cases
    got: dict[str, Any] = {}
    for who in ("sw", "sup", "admin", "padmin", "sw2", "counselor", "volunteer", "head", "admin_b", "sw_b"):
        node = await p[who].raw(NODE, {"id": case_id})
        listed = await p[who].raw(LIST)
        case = node["data"]["r"] if node.get("data") else None
        got[who] = (
            _code(node),
            None if case is None else (case["client"]["phone"], case["client"]["address"], len(case["history"])),
            _code(listed) or [n["client"]["phone"] for n in listed["data"]["r"]["nodes"]],
        )
    # then the case's worker and supervisor see it with the client's contact; the organisation's and the
    # platform's administrators of A see it masked; everyone else sees nothing (another social worker, another
    # organisation: as if it did not exist; callers without casework: FORBIDDEN on the list)
    assert got == {
        "sw": (None, (PHONE, ADDRESS, 2), [PHONE]),
        "sup": (None, (PHONE, ADDRESS, 2), [PHONE]),
        "admin": (None, (MASKED, MASKED_ADDRESS, 2), [MASKED]),
        "padmin": (None, (MASKED, MASKED_ADDRESS, 2), [MASKED]),
        "sw2": (None, None, []),
        "counselor": (None, None, "FORBIDDEN"),
        "volunteer": (None, None, "FORBIDDEN"),
        "head": (None, None, "FORBIDDEN"),
        "admin_b": (None, None, []),
        "sw_b": (None, None, []),
    }
    # and the history says who took each step
    body = await p["sw"](NODE, {"id": case_id})
    assert [(h["seq"], h["fromStage"], h["toStage"], h["reason"]) for h in body["r"]["history"]] == [
        (0, None, "INTAKE", "社区排查发现"),
        (1, "INTAKE", "ASSESSMENT", ""),
    ]


async def test_the_client_node_and_mutations_answer_others_as_for_a_missing_case(people: dict[str, Any]) -> None:
    p = people
    case_id = await _open(p)
    listed = await p["admin"]("{ r: caseWorkCases(first: 5) { nodes { client { id } } } }")
    client_id = listed["r"]["nodes"][0]["client"]["id"]
    assert (await p["sw"](CLIENT_NODE, {"id": client_id}))["r"] == {
        "name": "独居老人王奶奶",
        "phone": PHONE,
        "address": ADDRESS,
    }
    for who in ("sw2", "admin_b", "volunteer"):
        assert (await p[who](CLIENT_NODE, {"id": client_id}))["r"] is None, who
    for who, code in (
        ("sw2", "NOT_FOUND"),
        ("admin_b", "NOT_FOUND"),
        ("sw_b", "NOT_FOUND"),
        ("volunteer", "FORBIDDEN"),
    ):
        body = await p[who].raw(ADVANCE, {"id": case_id, "to": "ASSESSMENT", "reason": ""})
        assert (_code(body) or body["data"]["r"]["errors"][0]["code"]) == code, who
    # nothing moved
    assert (await p["sw"](NODE, {"id": case_id}))["r"]["stage"] == "INTAKE"


async def test_the_workflow_and_approvals_through_the_api(people: dict[str, Any]) -> None:
    p = people
    case_id = await _open(p)

    async def advance(who: str, to: str, reason: str = "") -> Any:
        return (await p[who](ADVANCE, {"id": case_id, "to": to, "reason": reason}))["r"]

    assert (await advance("sw", "CLOSURE"))["errors"] == [{"code": "ILLEGAL_TRANSITION"}]
    assert (await advance("sw", "ASSESSMENT"))["case"]["stage"] == "ASSESSMENT"
    # a high-risk assessment needs approval; the worker cannot decide it, nor the supervisor their own
    assert (await advance("sw", "PLANNING"))["errors"] == [{"code": "APPROVAL_REQUIRED"}]
    # an approval approves a recorded assessment: none yet, none asked for
    early = (await p["sw"](REQUEST_AT, {"id": case_id, "kind": "ASSESSMENT", "outcomes": []}))["r"]
    assert (early["approval"], early["errors"]) == (None, [{"code": "ASSESSMENT_REQUIRED", "field": ["input", "kind"]}])
    needs = [{"domain": d.upper(), "score": 1} for d in DOMAINS]
    assessed = await p["sw"](ASSESS, {"input": {"caseId": case_id, "needs": needs}})
    assert assessed["r"]["errors"] == []
    request = (await p["sw"](REQUEST, {"id": case_id, "kind": "ASSESSMENT", "outcomes": []}))["r"]["approval"]
    assert (await p["sw"](DECIDE, {"id": request["id"], "approve": True}))["r"]["errors"] == [{"code": "SELF_APPROVAL"}]
    assert (await p["sup"](DECIDE, {"id": request["id"], "approve": True}))["r"]["approval"]["status"] == "APPROVED"
    for to in ("PLANNING", "INTERVENTION", "EVALUATION"):
        assert (await advance("sw", to))["case"]["stage"] == to
    assert (await advance("sw", "CLOSURE"))["errors"] == [{"code": "APPROVAL_REQUIRED"}]
    closure = (await p["sup"](REQUEST, {"id": case_id, "kind": "CLOSURE", "outcomes": ["独居风险缓解"]}))["r"]
    assert (await p["sup"](DECIDE, {"id": closure["approval"]["id"], "approve": True}))["r"]["errors"] == [
        {"code": "SELF_APPROVAL"}
    ]
    assert (await p["admin"](DECIDE, {"id": closure["approval"]["id"], "approve": True}))["r"]["errors"] == []
    assert (await advance("sw", "CLOSURE"))["case"]["stage"] == "CLOSURE"
    # closed: edits refused; the worker cannot reopen, the supervisor can
    update = "mutation($id: ID!) { r: caseWorkUpdateCase(input: {id: $id, riskLevel: LOW}) { errors { code } } }"
    assert (await p["sw"](update, {"id": case_id}))["r"]["errors"] == [{"code": "CASE_CLOSED"}]
    assert (await p["sw"](REOPEN, {"id": case_id}))["r"]["errors"] == [{"code": "FORBIDDEN"}]
    assert (await p["sup"](REOPEN, {"id": case_id}))["r"]["case"]["stage"] == "ASSESSMENT"
    # the supervisor's queue is empty again
    queue = "{ r: caseWorkApprovals(filter: {awaitingMyDecision: true}) { totalCount } }"
    assert (await p["sup"](queue))["r"]["totalCount"] == 0


async def test_bad_input_is_refused_with_codes_and_nothing_is_written(people: dict[str, Any]) -> None:
    p = people
    base = {"category": "OTHER", "riskLevel": "LOW", "supervisorId": p["sup"].account_id}
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("no client", {}, "INVALID_INPUT"),
        ("a bad phone", {"client": {"name": "李", "phone": "12"}}, "INVALID_PHONE"),
        ("an empty name", {"client": {"name": "  "}}, "REQUIRED"),
        (
            "a supervisor without the role",
            {"supervisorId": p["sw2"].account_id, "client": {"name": "李"}},
            "INVALID_INPUT",
        ),
        (
            "another organisation's supervisor",
            {"supervisorId": p["admin_b"].account_id, "client": {"name": "李"}},
            "NOT_FOUND",
        ),
        ("someone else's case", {"socialWorkerId": p["sw2"].account_id, "client": {"name": "李"}}, "FORBIDDEN"),
        (
            "a worker who is not a social worker",
            {"socialWorkerId": p["admin"].account_id, "client": {"name": "李"}},
            "INVALID_INPUT",
        ),
    ]
    before = (await p["admin"]("{ r: caseWorkCases { totalCount } }"))["r"]["totalCount"]
    got = {}
    for name, extra, _ in cases:
        who = "admin" if name == "a worker who is not a social worker" else "sw"
        body = await p[who].raw(OPEN, {"input": base | extra})
        got[name] = _code(body) or (body["data"]["r"]["errors"] or [{"code": "OK"}])[0]["code"]
    assert got == {name: code for name, _, code in cases}
    assert (await p["admin"]("{ r: caseWorkCases { totalCount } }"))["r"]["totalCount"] == before


async def test_members_of_an_organisation_without_the_plugin_get_plugin_disabled(kit: Harness) -> None:
    org = await kit.organization()
    worker: Client = await kit.sign_in("social_worker", org)
    assert _code(await worker.raw(LIST)) == "PLUGIN_DISABLED"


PROPOSE = """mutation($case: ID!, $to: ID!) {
  r: caseWorkProposeTransfer(input: {caseId: $case, toId: $to, reason: "调岗"}) {
    transfer { id status case { id } } errors { code } } }"""
ANSWER = """mutation($id: ID!, $accept: Boolean!, $reason: String!) {
  r: caseWorkAnswerTransfer(input: {id: $id, accept: $accept, reason: $reason}) {
    transfer { status decisionReason toWorker { name } case { id } } errors { code } } }"""
OFFERS = """{ r: caseWorkTransfers(filter: {awaitingMyAnswer: true}) { nodes { id reason case { id } } } }"""
RISK = """mutation($id: ID!) { r: caseWorkUpdateCase(input: {id: $id, riskLevel: LOW, reason: "家属接回"}) {
  case { id } errors { code } } }"""
TRAIL = """query($id: ID!) { r: node(id: $id) { ... on CaseWorkCase {
  riskHistory { fromLevel toLevel reason actorName } transfers { status reason proposedBy { name } } } } }"""


async def test_a_transfer_through_the_api_hands_the_case_over_and_its_trail_is_read_with_the_case(
    people: dict[str, Any],
) -> None:
    # given a high-risk case of sw, its risk lowered by the supervisor with a reason
    p = people
    case_id = await _open(p)
    assert (await p["sup"](RISK, {"id": case_id}))["r"]["errors"] == []
    # when sw proposes a transfer to sw2
    proposed = await p["sw"](PROPOSE, {"case": case_id, "to": p["sw2"].account_id})
    assert proposed["r"]["errors"] == [], proposed
    transfer_id = proposed["r"]["transfer"]["id"]
    # then sw2 sees the offer, not the case; another organisation sees neither
    offers = (await p["sw2"](OFFERS))["r"]["nodes"]
    assert offers == [{"id": transfer_id, "reason": "调岗", "case": None}]
    assert (await p["sw2"](NODE, {"id": case_id}))["r"] is None
    assert (await p["sw_b"](OFFERS))["r"]["nodes"] == []
    assert (await p["sw_b"].raw(ANSWER, {"id": transfer_id, "accept": True, "reason": ""}))["data"]["r"]["errors"] == [
        {"code": "NOT_FOUND"}
    ]
    # when sw2 accepts
    accepted = await p["sw2"](ANSWER, {"id": transfer_id, "accept": True, "reason": ""})
    assert accepted["r"]["errors"] == [], accepted
    assert accepted["r"]["transfer"]["case"] == {"id": case_id}
    # then sw2 reads the case and its client's contact; sw reads nothing of it any more
    now = (await p["sw2"](NODE, {"id": case_id}))["r"]
    assert (now["socialWorker"]["name"] != "", now["client"]["phone"]) == (True, PHONE)
    assert (await p["sw"](NODE, {"id": case_id}))["r"] is None
    assert (await p["sw"](LIST))["r"]["totalCount"] == 0
    # and the case's trail says who changed the risk and who handed it over, and why
    trail = (await p["admin"](TRAIL, {"id": case_id}))["r"]
    assert [(r["fromLevel"], r["toLevel"], r["reason"]) for r in trail["riskHistory"]] == [("HIGH", "LOW", "家属接回")]
    assert [(t["status"], t["reason"]) for t in trail["transfers"]] == [("ACCEPTED", "调岗")]
    assert (await p["admin_b"](TRAIL, {"id": case_id}))["r"] is None
