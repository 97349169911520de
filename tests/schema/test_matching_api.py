"""Matching through /graphql: candidates with their breakdown, plan → commit, overdue and queue."""

from __future__ import annotations

from datetime import timedelta

from core.vocab import RequestCategory, RequestStatus, Urgency, VolunteerMode
from tests.factories import Factory
from tests.schema.helpers import gid, row_counts

HERE = (34.2558, 108.9387)


async def test_match_candidates_explain_themselves(gql, make: Factory) -> None:  # type: ignore[no-untyped-def]
    community = await make.community(latitude=HERE[0], longitude=HERE[1])
    request = await make.request(community, status=RequestStatus.VERIFIED, required_skills=["driving"])
    driver = await make.volunteer(skills=["driving"], latitude=HERE[0] + 0.01, longitude=HERE[1])
    data = await gql(
        "query($id: ID!) { matchCandidates(requestId: $id, first: 5) { score distanceKm isReserve "
        "volunteer { id } breakdown { component value weight contribution } } }",
        {"id": gid("HelpRequest", request.id)},
    )
    (candidate,) = data["matchCandidates"]
    assert candidate["volunteer"]["id"] == gid("Volunteer", driver.id)
    assert abs(candidate["distanceKm"] - 1.11) < 0.01  # 0.01° of latitude
    assert candidate["score"] == round(sum(p["contribution"] for p in candidate["breakdown"]), 6)


async def test_plan_then_commit(gql, make: Factory) -> None:  # type: ignore[no-untyped-def]
    # given two verified requests and two volunteers
    community = await make.community(latitude=HERE[0], longitude=HERE[1])
    requests = [await make.request(community, status=RequestStatus.VERIFIED) for _ in range(2)]
    for _ in range(2):
        await make.volunteer(latitude=HERE[0], longitude=HERE[1], max_concurrent_assignments=1)
    # when a plan is made and committed
    plan = (
        await gql(
            "query($ids: [ID!]!) { planAssignments(requestIds: $ids) { totalCost items { requestId volunteerId score } "
            "uncovered { reason } } }",
            {"ids": [gid("HelpRequest", r.id) for r in requests]},
        )
    )["planAssignments"]
    assert len(plan["items"]) == 2
    assert plan["uncovered"] == []
    items = [{"requestId": i["requestId"], "volunteerId": i["volunteerId"]} for i in plan["items"]]
    committed = await gql(
        "mutation($items: [PlanItemInput!]!) { commitPlan(input: {items: $items}) "
        "{ assignments { status request { status } } errors { code } } }",
        {"items": items},
    )
    # then both requests have an offer and are matched
    assert committed["commitPlan"]["errors"] == []
    assert [(a["status"], a["request"]["status"]) for a in committed["commitPlan"]["assignments"]] == [
        ("OFFERED", "MATCHED"),
        ("OFFERED", "MATCHED"),
    ]
    # and committing the same plan again is stale, writing nothing
    before = await row_counts(make.ctx.session)
    again = await gql(
        "mutation($items: [PlanItemInput!]!) { commitPlan(input: {items: $items}) { errors { code field } } }",
        {"items": items},
    )
    assert again["commitPlan"]["errors"][0]["code"] == "STALE_PLAN"
    assert await row_counts(make.ctx.session) == before


async def test_planning_bad_input(gql, make: Factory) -> None:  # type: ignore[no-untyped-def]
    submitted = await make.request()
    body = await gql.raw(
        "query($ids: [ID!]!) { planAssignments(requestIds: $ids) { totalCost } }",
        {"ids": [gid("HelpRequest", submitted.id)]},
    )
    assert body["errors"][0]["extensions"]["code"] == "NOT_MATCHABLE"
    bad = await gql.raw('query { planAssignments(requestIds: ["x"]) { totalCost } }')
    assert bad["errors"][0]["extensions"]["code"] == "INVALID_ID"


async def test_overdue_and_queue(gql, make: Factory, clock) -> None:  # type: ignore[no-untyped-def]
    late = await make.request(urgency=Urgency.CRITICAL, needed_by=None)
    matched = await make.request(status=RequestStatus.MATCHED)
    clock.now += timedelta(hours=1)
    data = await gql(
        "{ overdue { stage dueAt request { id } } queue { unverified { id } unmatched { id } "
        "pendingOffers { request { id } expiresAt } } }"
    )
    assert data["overdue"][0]["request"]["id"] == gid("HelpRequest", late.id)
    assert data["overdue"][0]["stage"] == "VERIFICATION"
    assert data["queue"]["unverified"] == [{"id": gid("HelpRequest", late.id)}]
    assert data["queue"]["pendingOffers"][0]["request"]["id"] == gid("HelpRequest", matched.id)
    assert data["queue"]["pendingOffers"][0]["expiresAt"].endswith("+08:00")


async def test_merge_over_graphql(gql, make: Factory) -> None:  # type: ignore[no-untyped-def]
    keep = await make.request(requester_phone="13912345678")
    duplicate = await make.request(requester_phone="13912345678")
    flagged = await gql(
        "query($id: ID!) { node(id: $id) { ... on HelpRequest { duplicateOf { id } } } }",
        {"id": gid("HelpRequest", duplicate.id)},
    )
    assert flagged["node"]["duplicateOf"] == {"id": gid("HelpRequest", keep.id)}
    merged = await gql(
        "mutation($k: ID!, $d: ID!) { mergeHelpRequests(input: {keepId: $k, duplicateId: $d}) "
        "{ helpRequest { id } errors { code } } }",
        {"k": gid("HelpRequest", keep.id), "d": gid("HelpRequest", duplicate.id)},
    )
    assert merged["mergeHelpRequests"]["errors"] == []


OFFER = (
    "mutation($input: OfferAssignmentInput!) { offerAssignment(input: $input) "
    "{ assignment { id status } errors { code field } } }"
)


async def test_offer_refuses_an_unqualified_volunteer_unless_a_coordinator_overrides(gql, make: Factory) -> None:  # type: ignore[no-untyped-def]
    # given a physical request needing a driver, and an online volunteer who cannot drive
    request = await make.request(
        status=RequestStatus.VERIFIED, category=RequestCategory.FOOD, required_skills=["driving"]
    )
    volunteer = await make.volunteer(mode=VolunteerMode.ONLINE, skills=["cooking"])
    pair = {"requestId": gid("HelpRequest", request.id), "volunteerId": gid("Volunteer", volunteer.id)}
    # when they are offered plainly
    before = await row_counts(make.ctx.session)
    refused = (await gql(OFFER, {"input": pair}))["offerAssignment"]
    # then the offer is refused on the volunteer (one error per failed filter), and nothing is written
    assert refused["assignment"] is None
    assert refused["errors"] == [{"code": "VOLUNTEER_NOT_QUALIFIED", "field": ["input", "volunteerId"]}] * 2
    assert await row_counts(make.ctx.session) == before
    # when the override carries no reason, it is refused too
    blank = (await gql(OFFER, {"input": {**pair, "override": {"reason": " "}}}))["offerAssignment"]
    assert blank["errors"] == [{"code": "REQUIRED", "field": ["input", "override", "reason"]}]
    # when a coordinator overrides with a reason
    done = (await gql(OFFER, {"input": {**pair, "override": {"reason": "drives the family van"}}}))["offerAssignment"]
    # then the offer stands, and the audit trail shows who waived what, and why
    assert done["errors"] == []
    assert done["assignment"]["status"] == "OFFERED"
    trail = await gql(
        '{ auditLog(actions: ["override"]) { edges { node { actor operation recordId fields detail } } } }'
    )
    (entry,) = [e["node"] for e in trail["auditLog"]["edges"]]
    assert (entry["actor"], entry["operation"], sorted(entry["fields"])) == (
        "test admin",
        "offerAssignment",
        ["mode", "skills"],
    )
    assert entry["recordId"] == done["assignment"]["id"]
    assert "drives the family van" in entry["detail"]


async def test_offer_on_a_fully_staffed_request_is_refused(gql, make: Factory) -> None:  # type: ignore[no-untyped-def]
    # given a request needing one that is already matched
    request = await make.request(status=RequestStatus.MATCHED)
    volunteer = await make.volunteer()
    pair = {"requestId": gid("HelpRequest", request.id), "volunteerId": gid("Volunteer", volunteer.id)}
    # when a second volunteer is offered, even with an override
    for extra in ({}, {"override": {"reason": "more hands"}}):
        result = (await gql(OFFER, {"input": {**pair, **extra}}))["offerAssignment"]
        # then REQUEST_FULLY_STAFFED on the request
        assert result["errors"] == [{"code": "REQUEST_FULLY_STAFFED", "field": ["input", "requestId"]}]
