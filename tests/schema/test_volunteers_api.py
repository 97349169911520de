"""Volunteers and communities through /graphql."""

from __future__ import annotations

from datetime import timedelta

from tests.factories import Factory, mobile
from tests.schema.helpers import gid, row_counts

REGISTER = """
mutation($input: RegisterVolunteerInput!) {
  registerVolunteer(input: $input) {
    volunteer { id name phone mode teams skills availability maxConcurrentAssignments district { name } }
    errors { field code message }
  }
}"""


async def test_register_volunteer(gql, make: Factory) -> None:  # type: ignore[no-untyped-def]
    district = await make.district("雁塔区")
    data = await gql(
        REGISTER,
        {
            "input": {
                "name": "李娜",
                "phone": "+86 139-0000-1234",
                "mode": "OFFLINE",
                "districtId": gid("District", district.id),
                "teams": ["DELIVERY"],
                "skills": ["Driving", "first_aid"],
                "maxConcurrentAssignments": 2,
                "latitude": 34.22,
                "longitude": 108.95,
            }
        },
    )
    volunteer = data["registerVolunteer"]["volunteer"]
    assert volunteer["phone"] == "13900001234"
    assert volunteer["skills"] == ["driving", "first_aid"]
    assert (volunteer["mode"], volunteer["teams"], volunteer["district"]) == (
        "OFFLINE",
        ["DELIVERY"],
        {"name": "雁塔区"},
    )


async def test_register_refuses_bad_and_duplicate_input(gql, make: Factory) -> None:  # type: ignore[no-untyped-def]
    existing = await make.volunteer(phone="13911112222")
    assert existing.id
    before = await row_counts(make.ctx.session)
    cases = [
        ({"name": "", "phone": "13911113333", "mode": "ONLINE"}, "REQUIRED", ["input", "name"]),
        ({"name": "张伟", "phone": "110", "mode": "ONLINE"}, "INVALID_PHONE", ["input", "phone"]),
        ({"name": "张伟", "phone": "139 1111 2222", "mode": "ONLINE"}, "ALREADY_EXISTS", ["input", "phone"]),
        (
            {"name": "张伟", "phone": "13911113333", "mode": "ONLINE", "maxConcurrentAssignments": 0},
            "OUT_OF_RANGE",
            ["input", "maxConcurrentAssignments"],
        ),
        (
            {"name": "张伟", "phone": "13911113333", "mode": "ONLINE", "districtId": gid("District", 4242)},
            "NOT_FOUND",
            ["input", "districtId"],
        ),
    ]
    for data, code, field in cases:
        errors = (await gql(REGISTER, {"input": data}))["registerVolunteer"]["errors"]
        assert {"code": code, "field": field} in [{"code": e["code"], "field": e["field"]} for e in errors], data
    assert await row_counts(make.ctx.session) == before


async def test_credentials_and_trainings(gql, make: Factory, clock) -> None:  # type: ignore[no-untyped-def]
    volunteer = await make.volunteer()
    vid = gid("Volunteer", volunteer.id)
    training = (
        await gql(
            'mutation { createTraining(input: {code: "ppe-basics", name: "防护培训"}) '
            "{ training { id } errors { code } } }"
        )
    )["createTraining"]["training"]
    await gql(
        "mutation($v: ID!, $t: ID!, $at: DateTime!) { recordVolunteerTraining(input: "
        "{volunteerId: $v, trainingId: $t, completedAt: $at}) { errors { code } } }",
        {"v": vid, "t": training["id"], "at": (clock.now - timedelta(days=1)).isoformat()},
    )
    add = (
        "mutation($v: ID!, $from: DateTime, $to: DateTime) { addVolunteerCredential(input: "
        '{volunteerId: $v, kind: VEHICLE_PASS, number: "XA-1", validFrom: $from, expiresAt: $to}) '
        "{ volunteer { credentials { kind isValid } trainings { training { code } } } errors { code field } } }"
    )
    expired = await gql(
        add,
        {
            "v": vid,
            "from": (clock.now - timedelta(days=30)).isoformat(),
            "to": (clock.now - timedelta(days=1)).isoformat(),
        },
    )
    assert expired["addVolunteerCredential"]["volunteer"] == {
        "credentials": [{"kind": "VEHICLE_PASS", "isValid": False}],
        "trainings": [{"training": {"code": "ppe-basics"}}],
    }
    backwards = await gql(
        add, {"v": vid, "from": clock.now.isoformat(), "to": (clock.now - timedelta(days=1)).isoformat()}
    )
    assert backwards["addVolunteerCredential"]["errors"] == [{"code": "OUT_OF_RANGE", "field": ["input", "expiresAt"]}]


async def test_volunteer_filters(gql, make: Factory) -> None:  # type: ignore[no-untyped-def]
    district = await make.district()
    await make.volunteer(name="王司机", mode="offline", skills=["driving"], district_id=district.id, teams=["delivery"])
    await make.volunteer(name="李心理", mode="online", skills=["psychological_counseling"], availability="off")
    await make.volunteer(name="赵后备", mode="reserve")
    query = "query($f: VolunteerFilter) { volunteers(filter: $f) { totalCount nodes { name } } }"

    async def names(f: dict) -> list[str]:  # type: ignore[type-arg]
        return sorted(n["name"] for n in (await gql(query, {"f": f}))["volunteers"]["nodes"])

    assert await names({"mode": "RESERVE"}) == ["赵后备"]
    assert await names({"skills": ["DRIVING"]}) == ["王司机"]
    assert await names({"availability": "OFF"}) == ["李心理"]
    assert await names({"districtId": gid("District", district.id)}) == ["王司机"]
    assert await names({"team": "DELIVERY"}) == ["王司机"]
    assert await names({"search": "心理"}) == ["李心理"]


async def test_community_create_update_and_team(gql, make: Factory) -> None:  # type: ignore[no-untyped-def]
    district = await make.district("碑林区")
    created = await gql(
        'mutation($d: ID!) { createCommunity(input: {name: "粉巷社区", districtId: $d, headName: "王主任", '
        'headPhone: "029-8888 1234", latitude: 34.25, longitude: 108.94}) '
        "{ community { id name headPhone district { name } } errors { code field } } }",
        {"d": gid("District", district.id)},
    )
    community = created["createCommunity"]["community"]
    assert (community["headPhone"], community["district"]) == ("029-88881234", {"name": "碑林区"})
    bad = await gql(
        'mutation($id: ID!) { updateCommunity(input: {id: $id, headPhone: "12"}) { errors { code field } } }',
        {"id": community["id"]},
    )
    assert bad["updateCommunity"]["errors"] == [{"code": "INVALID_PHONE", "field": ["input", "headPhone"]}]
    people = [await make.volunteer(phone=mobile()) for _ in range(2)]
    seat = (
        "mutation($c: ID!, $v: ID!, $r: LiaisonRole!) { addCommunityLiaison(input: {communityId: $c, "
        "volunteerId: $v, role: $r}) { community { liaisons { role volunteer { name } } } errors { code } } }"
    )
    first = await gql(seat, {"c": community["id"], "v": gid("Volunteer", people[0].id), "r": "SOCIAL_WORKER"})
    assert [s["role"] for s in first["addCommunityLiaison"]["community"]["liaisons"]] == ["SOCIAL_WORKER"]
    second = await gql(seat, {"c": community["id"], "v": gid("Volunteer", people[1].id), "r": "SOCIAL_WORKER"})
    assert second["addCommunityLiaison"]["errors"] == [{"code": "LIAISON_TEAM_FULL"}]
