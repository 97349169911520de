"""Help requests through /graphql: intake, bad input, lifecycle, lists."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from core.vocab import RequestStatus, Urgency
from tests.factories import Factory, mobile
from tests.schema.helpers import gid, row_counts

SUBMIT = """
mutation Submit($input: SubmitHelpRequestInput!) {
  submitHelpRequest(input: $input) {
    helpRequest { id title status urgency beneficiaries neededBy requesterPhone community { name }
                  history { fromStatus toStatus actor } }
    errors { field message code }
  }
}"""


def submit_input(community_id: int, clock: Any, **overrides: Any) -> dict[str, Any]:
    data = {
        "communityId": gid("Community", community_id),
        "title": "30名结核病患者断药",
        "category": "MEDICINE",
        "urgency": "CRITICAL",
        "requesterName": "王主任",
        "requesterPhone": "029-88881234",
        "beneficiaries": 30,
        "neededBy": (clock.now + timedelta(hours=6)).isoformat(),
        "populationTags": ["CHRONIC_PATIENT"],
        "requiredSkills": ["Driving", "driving "],
    }
    data.update(overrides)
    return data


async def test_submit_creates_a_submitted_request_with_history(gql, make: Factory, clock) -> None:  # type: ignore[no-untyped-def]
    # given a community
    community = await make.community(name="粉巷社区")
    # when a need is submitted
    data = await gql(SUBMIT, {"input": submit_input(community.id, clock)})
    # then it is SUBMITTED, normalised, shown in Shanghai time, with a one-step history
    payload = data["submitHelpRequest"]
    assert payload["errors"] == []
    request = payload["helpRequest"]
    assert (request["status"], request["urgency"], request["beneficiaries"]) == ("SUBMITTED", "CRITICAL", 30)
    assert request["requesterPhone"] == "029-88881234"
    assert request["neededBy"].endswith("+08:00")
    assert request["community"]["name"] == "粉巷社区"
    assert request["history"] == [{"fromStatus": None, "toStatus": "SUBMITTED", "actor": "test admin"}]


BAD_INPUTS = [
    ({"requesterPhone": "12345"}, ["input", "requesterPhone"], "INVALID_PHONE"),
    ({"requesterPhone": "029-123"}, ["input", "requesterPhone"], "INVALID_PHONE"),
    ({"requesterName": "  "}, ["input", "requesterName"], "REQUIRED"),
    ({"title": ""}, ["input", "title"], "REQUIRED"),
    ({"beneficiaries": 0}, ["input", "beneficiaries"], "OUT_OF_RANGE"),
    ({"beneficiaries": -5}, ["input", "beneficiaries"], "OUT_OF_RANGE"),
    ({"volunteersNeeded": 0}, ["input", "volunteersNeeded"], "OUT_OF_RANGE"),
    ({"neededBy": "2020-01-01T00:00:00+08:00"}, ["input", "neededBy"], "IN_PAST"),
    ({"latitude": 95.0, "longitude": 108.9}, ["input", "latitude"], "OUT_OF_RANGE"),
    ({"communityId": "not-an-id"}, ["input", "communityId"], "INVALID_ID"),
    ({"communityId": gid("Volunteer", 1)}, ["input", "communityId"], "INVALID_ID"),
    ({"communityId": gid("Community", 999999)}, ["input", "communityId"], "NOT_FOUND"),
]


@pytest.mark.parametrize(("override", "field", "code"), BAD_INPUTS)
async def test_bad_input_is_a_typed_error_and_writes_nothing(  # type: ignore[no-untyped-def]
    gql, make: Factory, clock, override: dict[str, Any], field: list[str], code: str
) -> None:
    # given a community and the row counts before
    community = await make.community()
    before = await row_counts(make.ctx.session)
    # when a request with one bad value is submitted
    data = await gql(SUBMIT, {"input": submit_input(community.id, clock, **override)})
    # then the payload names the field and the code, and nothing was written
    payload = data["submitHelpRequest"]
    assert payload["helpRequest"] is None
    assert {"field": field, "code": code} in [{"field": e["field"], "code": e["code"]} for e in payload["errors"]]
    assert await row_counts(make.ctx.session) == before


async def test_all_problems_of_an_input_are_reported_at_once(gql, make: Factory, clock) -> None:  # type: ignore[no-untyped-def]
    community = await make.community()
    bad = submit_input(community.id, clock, title="", requesterPhone="1", beneficiaries=0)
    payload = (await gql(SUBMIT, {"input": bad}))["submitHelpRequest"]
    assert sorted(e["code"] for e in payload["errors"]) == ["INVALID_PHONE", "OUT_OF_RANGE", "REQUIRED"]


TRANSITION = """
mutation($id: ID!, $reason: String!) {
  verify: verifyHelpRequest(input: {id: $id, reason: $reason}) { helpRequest { status } errors { code field } }
}"""


async def test_illegal_transition_over_graphql_is_a_user_error(gql, make: Factory) -> None:  # type: ignore[no-untyped-def]
    # given a submitted request
    request = await make.request()
    before = await row_counts(make.ctx.session)
    # when it is fulfilled straight away (by a caller reading English)
    query = (
        "mutation($id: ID!) { fulfillHelpRequest(input: {id: $id}) "
        "{ helpRequest { status } errors { code field message } } }"
    )
    body = {"query": query, "variables": {"id": gid("HelpRequest", request.id)}}
    data = (await gql.http.post("/graphql", json=body, headers={"Accept-Language": "en"})).json()["data"]
    # then INVALID_TRANSITION, and nothing moved
    payload = data["fulfillHelpRequest"]
    assert payload["helpRequest"] is None
    assert payload["errors"][0]["code"] == "INVALID_TRANSITION"
    assert "(it can become: cancelled, rejected, verified)" in payload["errors"][0]["message"]
    assert await row_counts(make.ctx.session) == before


async def test_full_lifecycle_over_graphql(gql, make: Factory) -> None:  # type: ignore[no-untyped-def]
    # given a submitted request and a volunteer
    request = await make.request()
    volunteer = await make.volunteer()
    rid, vid = gid("HelpRequest", request.id), gid("Volunteer", volunteer.id)
    # when it is verified, offered, accepted, started, fulfilled and the hours reported
    await gql(TRANSITION, {"id": rid, "reason": "phoned the clinic"})
    offer = await gql(
        "mutation($r: ID!, $v: ID!) { offerAssignment(input: {requestId: $r, volunteerId: $v}) "
        "{ assignment { id status request { status } } errors { code } } }",
        {"r": rid, "v": vid},
    )
    assignment = offer["offerAssignment"]["assignment"]
    assert (assignment["status"], assignment["request"]["status"]) == ("OFFERED", "MATCHED")
    aid = assignment["id"]
    step = "mutation($id: ID!) {{ {name}(input: {{id: $id}}) {{ errors {{ code }} }} }}"
    for name, target in [("acceptAssignment", aid), ("startHelpRequest", rid), ("fulfillHelpRequest", rid)]:
        result = await gql(step.format(name=name), {"id": target})
        assert result[name]["errors"] == []
    done = await gql(
        'mutation($id: ID!) { completeAssignment(input: {id: $id, hours: "2.5"}) '
        "{ assignment { status hours volunteer { hoursServed activeAssignmentCount } } errors { code } } }",
        {"id": aid},
    )
    # then the history holds every step and the volunteer's hours are counted
    assert done["completeAssignment"]["assignment"] == {
        "status": "COMPLETED",
        "hours": "2.50",
        "volunteer": {"hoursServed": "2.50", "activeAssignmentCount": 0},
    }
    history = await gql(
        "query($id: ID!) { node(id: $id) { ... on HelpRequest { history { toStatus reason } } } }", {"id": rid}
    )
    assert [h["toStatus"] for h in history["node"]["history"]] == [
        "SUBMITTED",
        "VERIFIED",
        "MATCHED",
        "IN_PROGRESS",
        "FULFILLED",
    ]
    assert history["node"]["history"][1]["reason"] == "phoned the clinic"


async def test_offering_a_volunteer_at_capacity_or_unavailable(gql, make: Factory) -> None:  # type: ignore[no-untyped-def]
    # given a busy volunteer, a volunteer at capacity and two verified requests
    busy = await make.volunteer(availability="busy")
    full = await make.volunteer(max_concurrent_assignments=1)
    first = await make.request(status=RequestStatus.VERIFIED)
    second = await make.request(status=RequestStatus.VERIFIED)
    offer = (
        "mutation($r: ID!, $v: ID!) { offerAssignment(input: {requestId: $r, volunteerId: $v}) "
        "{ assignment { id } errors { code field } } }"
    )
    await gql(offer, {"r": gid("HelpRequest", first.id), "v": gid("Volunteer", full.id)})
    before = await row_counts(make.ctx.session)
    # when each is offered the second request
    results = [
        (await gql(offer, {"r": gid("HelpRequest", second.id), "v": gid("Volunteer", v.id)}))["offerAssignment"]
        for v in (busy, full)
    ]
    # then each gets its own code and nothing was written
    assert [r["errors"][0]["code"] for r in results] == ["VOLUNTEER_UNAVAILABLE", "VOLUNTEER_AT_CAPACITY"]
    assert all(r["assignment"] is None for r in results)
    assert await row_counts(make.ctx.session) == before


async def test_partial_update_changes_only_given_fields(gql, make: Factory) -> None:  # type: ignore[no-untyped-def]
    request = await make.request(urgency=Urgency.NORMAL, beneficiaries=4)
    data = await gql(
        "mutation($id: ID!) { updateHelpRequest(input: {id: $id, urgency: CRITICAL, neededBy: null}) "
        "{ helpRequest { urgency beneficiaries neededBy } errors { code } } }",
        {"id": gid("HelpRequest", request.id)},
    )
    assert data["updateHelpRequest"]["helpRequest"] == {"urgency": "CRITICAL", "beneficiaries": 4, "neededBy": None}
    refused = await gql(
        "mutation($id: ID!) { updateHelpRequest(input: {id: $id, title: null}) { errors { code field } } }",
        {"id": gid("HelpRequest", request.id)},
    )
    assert refused["updateHelpRequest"]["errors"] == [{"code": "REQUIRED", "field": ["input", "title"]}]


LIST = """
query($filter: HelpRequestFilter, $first: Int, $after: String, $order: HelpRequestOrder) {
  helpRequests(filter: $filter, first: $first, after: $after, orderBy: $order) {
    totalCount
    edges { cursor node { id title urgency status } }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}"""


async def test_list_sorts_by_urgency_then_deadline(gql, make: Factory, clock) -> None:  # type: ignore[no-untyped-def]
    # given requests of mixed urgency and deadlines
    community = await make.community()
    specs = [
        ("low", Urgency.LOW, 1),
        ("high-late", Urgency.HIGH, 30),
        ("critical", Urgency.CRITICAL, 20),
        ("high-soon", Urgency.HIGH, 2),
        ("high-none", Urgency.HIGH, None),
    ]
    for title, urgency, hours in specs:
        await make.request(
            community, title=title, urgency=urgency, needed_by=clock.now + timedelta(hours=hours) if hours else None
        )
    # when listed
    data = await gql(LIST, {"first": 10})
    # then critical first, then high by deadline (none last), then low
    titles = [e["node"]["title"] for e in data["helpRequests"]["edges"]]
    assert titles == ["critical", "high-soon", "high-late", "high-none", "low"]


async def test_pages_cover_the_list_exactly_once(gql, make: Factory, clock) -> None:  # type: ignore[no-untyped-def]
    # given 23 requests, several sharing urgency and deadline
    community = await make.community()
    deadline = clock.now + timedelta(hours=5)
    for i in range(23):
        await make.request(
            community,
            title=f"r{i}",
            urgency=[Urgency.HIGH, Urgency.NORMAL][i % 2],
            needed_by=deadline if i % 3 else None,
        )
    # when paged 5 at a time, in both orderings
    for order in ("URGENCY", "NEWEST"):
        seen: list[str] = []
        after = None
        while True:
            page = (await gql(LIST, {"first": 5, "after": after, "order": order}))["helpRequests"]
            seen += [e["node"]["id"] for e in page["edges"]]
            assert page["totalCount"] == 23
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        # then every request appears exactly once
        assert len(seen) == len(set(seen)) == 23


async def test_filters(gql, make: Factory, clock) -> None:  # type: ignore[no-untyped-def]
    # given requests in two districts with different attributes
    north, south = await make.district("未央区"), await make.district("长安区")
    a = await make.community(north)
    b = await make.community(south)
    await make.request(
        a,
        title="婴儿奶粉即将用完",
        category="daily_supplies",
        urgency=Urgency.CRITICAL,
        needed_by=clock.now + timedelta(hours=2),
        population_tags=["child"],
    )
    await make.request(
        a, title="老人送菜", category="food", urgency=Urgency.NORMAL, status=RequestStatus.VERIFIED, needed_by=None
    )
    await make.request(
        b,
        title="结核病患者断药",
        category="medicine",
        urgency=Urgency.HIGH,
        needed_by=clock.now + timedelta(days=3),
        description="需要抗结核药物",
    )

    async def titles(filter: dict[str, Any]) -> list[str]:
        edges = (await gql(LIST, {"filter": filter}))["helpRequests"]["edges"]
        return sorted(e["node"]["title"] for e in edges)

    # then each filter narrows as it says
    assert await titles({"statuses": ["VERIFIED"]}) == ["老人送菜"]
    assert await titles({"urgencies": ["CRITICAL", "HIGH"]}) == ["婴儿奶粉即将用完", "结核病患者断药"]
    assert await titles({"categories": ["MEDICINE"]}) == ["结核病患者断药"]
    assert await titles({"communityIds": [gid("Community", a.id)]}) == ["婴儿奶粉即将用完", "老人送菜"]
    assert await titles({"districtId": gid("District", south.id)}) == ["结核病患者断药"]
    assert await titles({"populationTag": "CHILD"}) == ["婴儿奶粉即将用完"]
    assert await titles({"neededBefore": (clock.now + timedelta(days=1)).isoformat()}) == ["婴儿奶粉即将用完"]
    assert await titles({"search": "抗结核"}) == ["结核病患者断药"]
    assert await titles({"search": "奶粉"}) == ["婴儿奶粉即将用完"]
    assert await titles({"search": "100%"}) == []


async def test_page_size_limit_and_bad_cursor_are_typed_errors(gql) -> None:  # type: ignore[no-untyped-def]
    too_big = await gql.raw(LIST, {"first": 201})
    assert too_big["errors"][0]["extensions"]["code"] == "PAGE_SIZE_EXCEEDED"
    bad_cursor = await gql.raw(LIST, {"after": "bm9wZQ=="})
    assert bad_cursor["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"


async def test_node_resolves_every_core_type(gql, make: Factory) -> None:  # type: ignore[no-untyped-def]
    request = await make.request(status=RequestStatus.MATCHED)
    community_id = request.community_id
    node_ids = {
        "HelpRequest": gid("HelpRequest", request.id),
        "Community": gid("Community", community_id),
        "Volunteer": gid("Volunteer", (await make.volunteer(phone=mobile())).id),
    }
    for type_name, node_id in node_ids.items():
        data = await gql("query($id: ID!) { node(id: $id) { __typename id } }", {"id": node_id})
        assert data["node"] == {"__typename": type_name, "id": node_id}
    missing = await gql("query($id: ID!) { node(id: $id) { id } }", {"id": gid("HelpRequest", 987654)})
    assert missing["node"] is None


async def test_times_are_shown_in_the_callers_zone(gql, make: Factory, clock) -> None:  # type: ignore[no-untyped-def]
    request = await make.request(needed_by=clock.now + timedelta(hours=5))
    query = {
        "query": "query($id: ID!) { node(id: $id) { ... on HelpRequest { neededBy } } }",
        "variables": {"id": gid("HelpRequest", request.id)},
    }
    default = (await gql.http.post("/graphql", json=query)).json()["data"]["node"]["neededBy"]
    utc = (await gql.http.post("/graphql", json=query, headers={"X-Timezone": "UTC"})).json()["data"]["node"][
        "neededBy"
    ]
    bad = await gql.http.post("/graphql", json=query, headers={"X-Timezone": "Mars/Olympus"})
    after = (await gql.http.post("/graphql", json=query)).json()["data"]["node"]["neededBy"]
    assert after == default  # one caller's zone does not stick to the next request
    assert default.endswith("+08:00")
    assert utc.endswith("+00:00")
    assert (bad.status_code, bad.json()["errors"][0]["extensions"]["code"]) == (400, "INVALID_INPUT")


@pytest.mark.parametrize("zone", ["Asia", "Europe", "x" * 300, "../../etc/passwd", "UTC\u0000"])
async def test_a_zone_name_that_is_no_zone_is_a_typed_refusal(gql, zone: str) -> None:  # type: ignore[no-untyped-def]
    # given a zone name that is a directory of the zone database, too long for a file name, or a path
    response = await gql.http.post("/graphql", json={"query": "{ __typename }"}, headers={"X-Timezone": zone})
    # then it is refused as input, never a 500
    assert (response.status_code, response.json()["errors"][0]["extensions"]["code"]) == (400, "INVALID_INPUT")
    # and the refusal does not echo a long header back whole
    assert len(response.json()["errors"][0]["message"]) < 120


@pytest.mark.parametrize("type_name", ["Nope", "Bucket", "SuppliesBatch"])
async def test_an_id_naming_no_node_type_is_invalid_not_an_internal_error(gql, type_name: str) -> None:  # type: ignore[no-untyped-def]
    # when node(id:) is given a global ID of an unknown type, or of a type that is not a Node
    body = await gql.raw("query($id: ID!) { node(id: $id) { id } }", {"id": gid(type_name, 1)})
    # then the client is told its ID is malformed
    assert body["errors"][0]["extensions"]["code"] == "INVALID_ID"


async def test_a_communitys_requests_filter_by_status(gql, make: Factory) -> None:  # type: ignore[no-untyped-def]
    # given a community with a verified and a submitted request (found by the schema fuzz test: the filter
    # crashed on the loaders' plain status values)
    community = await make.community(name="东关社区")
    verified = await make.request(community, status=RequestStatus.VERIFIED)
    await make.request(community, status=RequestStatus.SUBMITTED)
    await make.commit()
    # when the community's requests are listed by status
    query = """query($id: ID!, $s: [RequestStatus!]) { node(id: $id) { ... on Community {
      helpRequests(first: 10, statuses: $s) { totalCount nodes { id } } } } }"""
    only = await gql(query, {"id": gid("Community", community.id), "s": ["VERIFIED", "CANCELLED"]})
    every = await gql(query, {"id": gid("Community", community.id), "s": None})
    # then only the verified one matches, and without a filter both are there
    assert only["node"]["helpRequests"] == {"totalCount": 1, "nodes": [{"id": gid("HelpRequest", verified.id)}]}
    assert every["node"]["helpRequests"]["totalCount"] == 2
