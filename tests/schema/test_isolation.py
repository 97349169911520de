"""The isolation breaches found against `serve --demo` (issue: organisations cannot see or touch each other's
data), replayed through real sign-in: organisation A is the association, B a partner agency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from schema import ids
from tests.schema.access_world import PASSWORD, World, world_in_database

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
async def world(server_url: str) -> AsyncIterator[World]:
    async with world_in_database(server_url, "ysg_test_isolation") as w:
        yield w


def gid(w: World, type_name: str, key: str) -> str:
    return ids.encode(type_name, w.ids[key])


ACCOUNT = (
    """mutation($in: CreateAccountInput!) { m: createAccount(input: $in) { account { id } errors { code field } } }"""
)
LOGIN = "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { token errors { code } } }"


async def _errors(w: World, role: str, query: str, variables: dict[str, Any]) -> list[str]:
    body = await w.gql(role, query, variables)
    assert not body.get("errors"), body
    return [e["code"] for e in body["data"]["m"]["errors"]]


@pytest.mark.parametrize(
    ("role", "bound_to"),
    [("COMMUNITY_HEAD", ("communityId", "Community", "c1")), ("VOLUNTEER", ("volunteerId", "Volunteer", "v_other"))],
)
async def test_an_account_cannot_be_bound_to_another_organisations_record(
    world: World, role: str, bound_to: tuple[str, str, str]
) -> None:
    field, type_name, key = bound_to
    for admin, org, expected in (("org_admin_b", "org_b", ["NOT_FOUND"]), ("org_admin_a", "org_a", [])):
        # when an organisation administrator creates an account bound to organisation A's record
        username = f"{admin}-{role}".lower()
        account = {
            "username": username,
            "displayName": "新账号",
            "password": PASSWORD,
            "role": role,
            "organizationId": gid(world, "Organization", org),
            field: gid(world, type_name, key),
        }
        # then B's administrator is told the record does not exist (and no account exists), A's succeeds
        assert await _errors(world, admin, ACCOUNT, {"in": account}) == expected
        login = await world.gql("anonymous", LOGIN, {"u": username, "p": PASSWORD})
        assert (login["data"]["login"]["token"] is None) == bool(expected)


async def test_a_platform_administrator_cannot_bind_an_account_across_organisations(world: World) -> None:
    account = {
        "username": "crossed",
        "displayName": "x",
        "password": PASSWORD,
        "role": "COMMUNITY_HEAD",
        "organizationId": gid(world, "Organization", "org_b"),
        "communityId": gid(world, "Community", "c1"),
    }
    assert await _errors(world, "platform_admin", ACCOUNT, {"in": account}) == ["ORGANIZATION_MISMATCH"]


async def test_a_volunteer_serves_their_own_organisations_requests(world: World) -> None:
    # when a platform administrator offers A's driver for B's request
    offer = (
        "mutation($r: ID!, $v: ID!) { m: offerAssignment(input: {requestId: $r, volunteerId: $v}) { errors { code } } }"
    )
    variables = {"r": gid(world, "HelpRequest", "r4"), "v": gid(world, "Volunteer", "v_driver")}
    verify = "mutation($r: ID!) { m: verifyHelpRequest(input: {id: $r}) { errors { code } } }"
    assert await _errors(world, "org_admin_b", verify, {"r": variables["r"]}) == []
    # then it is refused, and B's coordinators keep a clean list (it used to fail as a whole)
    assert await _errors(world, "platform_admin", offer, variables) == ["ORGANIZATION_MISMATCH"]
    page = await world.gql("org_admin_b", "{ helpRequests { nodes { title assignments { volunteer { id } } } } }")
    assert page == {"data": {"helpRequests": {"nodes": [{"title": "r4", "assignments": []}]}}}


async def test_another_organisation_sees_none_of_ours_through_lists_and_node(world: World) -> None:
    lists = "{ helpRequests { nodes { title } } communities { nodes { name } } volunteers { nodes { name } } }"
    node = "query($id: ID!) { node(id: $id) { id } }"
    # given A's administrator sees A's records (the positive control) ...
    a = (await world.gql("org_admin_a", lists))["data"]
    assert {n["title"] for n in a["helpRequests"]["nodes"]} == {"r1", "r2", "r3"}
    # ... B's sees only B's
    b = (await world.gql("org_admin_b", lists))["data"]
    assert b == {
        "helpRequests": {"nodes": [{"title": "r4"}]},
        "communities": {"nodes": [{"name": "社区c3"}]},
        "volunteers": {"nodes": [{"name": "志愿者b_vol"}]},
    }
    for type_name, key in (("HelpRequest", "r1"), ("Community", "c1"), ("Volunteer", "v_driver")):
        seen_by_a = await world.gql("org_admin_a", node, {"id": gid(world, type_name, key)})
        seen_by_b = await world.gql("org_admin_b", node, {"id": gid(world, type_name, key)})
        assert seen_by_a["data"]["node"] is not None
        assert seen_by_b == {"data": {"node": None}}


@pytest.mark.parametrize(
    ("mutation", "variables"),
    [
        (
            'mutation($o: ID!, $d: ID!) { m: createCommunity(input: {name: "冒名社区", districtId: $d, '
            "organizationId: $o}) { errors { code } } }",
            {"o": ("Organization", "org_a"), "d": ("District", "district")},
        ),
        (
            'mutation($o: ID!) { m: registerVolunteer(input: {name: "冒名", phone: "13911112222", mode: OFFLINE, '
            "organizationId: $o}) { errors { code } } }",
            {"o": ("Organization", "org_a")},
        ),
        (
            'mutation($o: ID!) { m: createApiToken(input: {organizationId: $o, name: "x"}) { errors { code } } }',
            {"o": ("Organization", "org_a")},
        ),
        (
            'mutation($o: ID!) { m: setPluginEnabled(input: {organizationId: $o, plugin: "supplies", '
            "enabled: false}) { errors { code } } }",
            {"o": ("Organization", "org_a")},
        ),
    ],
)
async def test_a_forged_organisation_in_an_input_is_refused(
    world: World, mutation: str, variables: dict[str, tuple[str, str]]
) -> None:
    values = {k: gid(world, t, key) for k, (t, key) in variables.items()}
    assert await _errors(world, "org_admin_b", mutation, values) == ["FORBIDDEN"]


async def test_a_record_never_moves_to_another_organisation(world: World) -> None:
    move = (
        "mutation($id: ID!, $o: ID!) { m: updateCommunity(input: {id: $id, organizationId: $o}) { errors { code } } }"
    )
    variables = {"id": gid(world, "Community", "c1"), "o": gid(world, "Organization", "org_b")}
    assert await _errors(world, "platform_admin", move, variables) == ["INVALID_INPUT"]


async def test_keys_are_per_organisation_and_the_audit_trail_too(world: World) -> None:
    # given A's driver's phone number: B registers its own volunteer with the same number (no oracle)
    register = (
        'mutation($p: String!) { m: registerVolunteer(input: {name: "乙的志愿者", phone: $p, mode: OFFLINE}) '
        "{ errors { code } } }"
    )
    assert await _errors(world, "org_admin_b", register, {"p": "13900000002"}) == []
    assert await _errors(world, "org_admin_b", register, {"p": "13900000002"}) == ["ALREADY_EXISTS"]
    # and B's administrator reads B's audit trail only (A's administrator has entries there too)
    trail = "{ auditLog(first: 100) { nodes { actor } } }"
    actors_b = {n["actor"] for n in (await world.gql("org_admin_b", trail))["data"]["auditLog"]["nodes"]}
    actors_a = {n["actor"] for n in (await world.gql("org_admin_a", trail))["data"]["auditLog"]["nodes"]}
    assert actors_b == {"org_admin_b"}
    assert "org_admin_a" in actors_a
    assert "org_admin_b" not in actors_a
