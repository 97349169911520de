"""The permission matrix: every role × every sensitive field and guarded mutation, from one table.

Adding a sensitive field or a guarded mutation means adding a row here. Each row names what every role
gets: the raw value, a masked value, null (outside the role's scope), OK, or an error code.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from schema import ids
from tests.schema.access_world import ROLES, World, world_in_database

PHONE, MASKED_PHONE = "13812345678", "138****5678"
ADDRESS, MASKED_ADDRESS = "碑林区粉巷5号楼3单元", "碑林区****"
HEALTH = "肺结核，服药中"
HEAD_PHONE, MASKED_HEAD_PHONE = "029-88881234", "029-****1234"
NULL = None
OK = "OK"
_unique = itertools.count(1)


@pytest.fixture(scope="module")
async def world(server_url: str) -> AsyncIterator[World]:
    async with world_in_database(server_url, "ysg_test_access") as w:
        yield w


def _error_code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors")
    return errors[0].get("extensions", {}).get("code") if errors else None


# -- reads -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Read:
    name: str
    query: str
    variables: Callable[[World], dict[str, Any]]
    extract: Callable[[Any], Any]
    expect: dict[str, Any]


def node_field(
    type_name: str, key: str, field: str
) -> tuple[str, Callable[[World], dict[str, Any]], Callable[[Any], Any]]:
    query = f"query($id: ID!) {{ node(id: $id) {{ ... on {type_name} {{ {field} }} }} }}"
    return query, lambda w: {"id": ids.encode(type_name, w.ids[key])}, lambda d: d["node"][field] if d["node"] else NULL


def per_role(**expect: Any) -> dict[str, Any]:
    assert set(expect) == set(ROLES), set(ROLES) ^ set(expect)
    return expect


def _titles(d: Any) -> list[str]:
    return sorted(n["title"] for n in d["helpRequests"]["nodes"])


def _names(d: Any) -> list[str]:
    return sorted(n["name"] for n in d["volunteers"]["nodes"])


SEES_R1 = {
    "platform_admin": PHONE,
    "org_admin_a": PHONE,
    "social_worker": PHONE,
    "counselor": PHONE,
    "community_head": PHONE,
    "partner_a": PHONE,
}

READS = [
    Read(
        "requests visible",
        "{ helpRequests(first: 50) { nodes { title } } }",
        lambda w: {},
        _titles,
        per_role(
            anonymous="UNAUTHENTICATED",
            platform_admin=["r1", "r2", "r3", "r4"],
            org_admin_a=["r1", "r2", "r3"],
            org_admin_b=["r4"],
            social_worker=["r1", "r2"],
            counselor=["r1", "r2"],
            community_head=["r1", "r2"],
            volunteer=["r1", "r2"],
            partner_a=["r1", "r2", "r3"],
        ),
    ),
    Read(
        "r1 requesterPhone (volunteer holds an accepted assignment)",
        *node_field("HelpRequest", "r1", "requesterPhone"),
        per_role(anonymous=NULL, org_admin_b=NULL, volunteer=PHONE, **SEES_R1),
    ),
    Read(
        "r2 requesterPhone (volunteer only offered)",
        *node_field("HelpRequest", "r2", "requesterPhone"),
        per_role(anonymous=NULL, org_admin_b=NULL, volunteer=MASKED_PHONE, **SEES_R1),
    ),
    Read(
        "r1 requesterAddress",
        *node_field("HelpRequest", "r1", "requesterAddress"),
        per_role(anonymous=NULL, org_admin_b=NULL, volunteer=ADDRESS, **dict.fromkeys(SEES_R1, ADDRESS)),
    ),
    Read(
        "r2 requesterAddress",
        *node_field("HelpRequest", "r2", "requesterAddress"),
        per_role(anonymous=NULL, org_admin_b=NULL, volunteer=MASKED_ADDRESS, **dict.fromkeys(SEES_R1, ADDRESS)),
    ),
    Read(
        "r1 healthDetails",
        *node_field("HelpRequest", "r1", "healthDetails"),
        per_role(anonymous=NULL, org_admin_b=NULL, volunteer=HEALTH, **dict.fromkeys(SEES_R1, HEALTH)),
    ),
    Read(
        "r2 healthDetails",
        *node_field("HelpRequest", "r2", "healthDetails"),
        per_role(anonymous=NULL, org_admin_b=NULL, volunteer="", **dict.fromkeys(SEES_R1, HEALTH)),
    ),
    Read(
        "r4 (other organisation) title",
        *node_field("HelpRequest", "r4", "title"),
        per_role(
            anonymous=NULL,
            platform_admin="r4",
            org_admin_a=NULL,
            org_admin_b="r4",
            social_worker=NULL,
            counselor=NULL,
            community_head=NULL,
            volunteer=NULL,
            partner_a=NULL,
        ),
    ),
    Read(
        "community c1 headPhone",
        *node_field("Community", "c1", "headPhone"),
        per_role(
            anonymous=NULL,
            platform_admin=HEAD_PHONE,
            org_admin_a=HEAD_PHONE,
            org_admin_b=NULL,
            social_worker=HEAD_PHONE,
            counselor=HEAD_PHONE,
            community_head=HEAD_PHONE,
            volunteer=MASKED_HEAD_PHONE,
            partner_a=MASKED_HEAD_PHONE,
        ),
    ),
    Read(
        "volunteer (driver) phone",
        *node_field("Volunteer", "v_driver", "phone"),
        per_role(
            anonymous=NULL,
            platform_admin="13900000002",
            org_admin_a="13900000002",
            org_admin_b=NULL,
            social_worker="13900000002",
            counselor="13900000002",
            community_head="139****0002",
            volunteer="13900000002",
            partner_a="139****0002",
        ),
    ),
    Read(
        "volunteers visible",
        "{ volunteers(first: 50) { nodes { name } } }",
        lambda w: {},
        _names,
        per_role(
            anonymous="UNAUTHENTICATED",
            platform_admin=["志愿者b_vol", "志愿者counselor", "志愿者driver", "志愿者other", "志愿者sw"],
            org_admin_a=["志愿者counselor", "志愿者driver", "志愿者other", "志愿者sw"],
            org_admin_b=["志愿者b_vol"],
            social_worker=["志愿者counselor", "志愿者driver", "志愿者other", "志愿者sw"],
            counselor=["志愿者counselor", "志愿者driver", "志愿者other", "志愿者sw"],
            community_head=["志愿者driver"],
            volunteer=["志愿者driver"],
            partner_a=["志愿者driver"],
        ),
    ),
    Read(
        "installed plugins",
        "{ plugins { name } }",
        lambda w: {},
        lambda d: d["plugins"],
        per_role(
            **{key: [{"name": "counseling"}, {"name": "supplies"}] for key in ROLES} | {"anonymous": "UNAUTHENTICATED"}
        ),
    ),
    Read(
        "match candidates for r1",
        "query($id: ID!) { matchCandidates(requestId: $id) { score } }",
        lambda w: {"id": ids.encode("HelpRequest", w.ids["r1"])},
        lambda d: OK,
        per_role(
            anonymous="UNAUTHENTICATED",
            platform_admin=OK,
            org_admin_a=OK,
            org_admin_b="NOT_FOUND",
            social_worker=OK,
            counselor="FORBIDDEN",
            community_head="FORBIDDEN",
            volunteer="FORBIDDEN",
            partner_a="FORBIDDEN",
        ),
    ),
    Read(
        "my assignments",
        "{ myAssignments { totalCount } }",
        lambda w: {},
        lambda d: d["myAssignments"]["totalCount"],
        per_role(
            anonymous="UNAUTHENTICATED",
            platform_admin="FORBIDDEN",
            org_admin_a="FORBIDDEN",
            org_admin_b="FORBIDDEN",
            social_worker=0,
            counselor="FORBIDDEN",
            community_head="FORBIDDEN",
            volunteer=2,
            partner_a="FORBIDDEN",
        ),
    ),
    Read(
        "stats are public",
        "{ stats { volunteersTotal requestsTotal } }",
        lambda w: {},
        lambda d: d["stats"]["volunteersTotal"],
        per_role(**dict.fromkeys(ROLES, 5)),
    ),
    Read(
        "audit log",
        "{ auditLog(first: 1) { totalCount } }",
        lambda w: {},
        lambda d: OK,
        per_role(
            anonymous="UNAUTHENTICATED",
            platform_admin=OK,
            org_admin_a=OK,
            org_admin_b=OK,
            social_worker="FORBIDDEN",
            counselor="FORBIDDEN",
            community_head="FORBIDDEN",
            volunteer="FORBIDDEN",
            partner_a="FORBIDDEN",
        ),
    ),
    Read(
        "nested: community → helpRequests",
        "query($id: ID!) { node(id: $id) { ... on Community { helpRequests { totalCount nodes { title } } } } }",
        lambda w: {"id": ids.encode("Community", w.ids["c1"])},
        lambda d: sorted(n["title"] for n in d["node"]["helpRequests"]["nodes"]) if d["node"] else NULL,
        per_role(
            anonymous=NULL,
            platform_admin=["r1", "r2"],
            org_admin_a=["r1", "r2"],
            org_admin_b=NULL,
            social_worker=["r1", "r2"],
            counselor=["r1", "r2"],
            community_head=["r1", "r2"],
            volunteer=["r1", "r2"],
            partner_a=["r1", "r2"],
        ),
    ),
    Read(
        "nested: volunteer → assignments",
        "query($id: ID!) { node(id: $id) { ... on Volunteer { assignments { totalCount } } } }",
        lambda w: {"id": ids.encode("Volunteer", w.ids["v_driver"])},
        lambda d: d["node"]["assignments"]["totalCount"] if d["node"] else NULL,
        per_role(
            anonymous=NULL,
            platform_admin=2,
            org_admin_a=2,
            org_admin_b=NULL,
            social_worker=2,
            counselor=2,
            community_head=2,
            volunteer=2,
            partner_a=2,
        ),
    ),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("row", READS, ids=[r.name for r in READS])
async def test_read_matrix(world: World, row: Read, role: str) -> None:
    body = await world.gql(role, row.query, row.variables(world))
    code = _error_code(body)
    observed = code if code else row.extract(body["data"])
    assert observed == row.expect[role]


# -- writes -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    name: str
    # Creates the row's own target (so the world stays as it was) and returns (query, variables).
    prepare: Callable[[World], Awaitable[tuple[str, dict[str, Any]]]]
    expect: dict[str, str]


async def _verify(w: World) -> tuple[str, dict[str, Any]]:
    rid = await w.make_request("c2")
    return (
        "mutation($id: ID!) { m: verifyHelpRequest(input: {id: $id}) { errors { code } } }",
        {"id": ids.encode("HelpRequest", rid)},
    )


async def _submit(w: World) -> tuple[str, dict[str, Any]]:
    return (
        'mutation($c: ID!) { m: submitHelpRequest(input: {communityId: $c, title: "x", category: FOOD, '
        'urgency: LOW, requesterName: "a", requesterPhone: "13800000000"}) { errors { code } } }',
        {"c": ids.encode("Community", w.ids["c1"])},
    )


async def _cancel(w: World) -> tuple[str, dict[str, Any]]:
    rid = await w.make_request("c1")
    return (
        'mutation($id: ID!) { m: cancelHelpRequest(input: {id: $id, reason: "done"}) { errors { code } } }',
        {"id": ids.encode("HelpRequest", rid)},
    )


async def _accept(w: World) -> tuple[str, dict[str, Any]]:
    from core.database import create_sessionmaker
    from core.services import assignments, help_requests

    rid = await w.make_request("c1")
    async with create_sessionmaker(w.engine)() as session, session.begin():
        await help_requests.verify(w.ctx(session), rid)
        offer = await assignments.offer(w.ctx(session), rid, w.ids["v_driver"])
    return (
        "mutation($id: ID!) { m: acceptAssignment(input: {id: $id}) { errors { code } } }",
        {"id": ids.encode("Assignment", offer.id)},
    )


async def _register(w: World) -> tuple[str, dict[str, Any]]:
    return (
        'mutation($o: ID!, $p: String!) { m: registerVolunteer(input: {name: "新人", phone: $p, mode: ONLINE, '
        "organizationId: $o}) { errors { code } } }",
        {"o": ids.encode("Organization", w.ids["org_a"]), "p": f"1370000{next(_unique):04d}"},
    )


async def _availability(w: World) -> tuple[str, dict[str, Any]]:
    return (
        "mutation($id: ID!) { m: updateVolunteer(input: {id: $id, availability: AVAILABLE}) { errors { code } } }",
        {"id": ids.encode("Volunteer", w.ids["v_driver"])},
    )


async def _plugin(w: World) -> tuple[str, dict[str, Any]]:
    return (
        'mutation($o: ID!) { m: setPluginEnabled(input: {organizationId: $o, plugin: "nope", enabled: true}) '
        "{ errors { code } } }",
        {"o": ids.encode("Organization", w.ids["org_a"])},
    )


async def _api_token(w: World) -> tuple[str, dict[str, Any]]:
    return (
        'mutation($o: ID!) { m: createApiToken(input: {organizationId: $o, name: "system"}) { errors { code } } }',
        {"o": ids.encode("Organization", w.ids["org_a"])},
    )


async def _account(w: World) -> tuple[str, dict[str, Any]]:
    return (
        'mutation($o: ID!, $u: String!) { m: createAccount(input: {username: $u, displayName: "社工", '
        'password: "long enough password", role: SOCIAL_WORKER, organizationId: $o}) { errors { code } } }',
        {"o": ids.encode("Organization", w.ids["org_a"]), "u": f"user{next(_unique)}"},
    )


async def _hours(w: World) -> tuple[str, dict[str, Any]]:
    return (
        'mutation($v: ID!) { m: addAvailabilityWindow(input: {volunteerId: $v, weekday: 0, start: "09:00", '
        'end: "12:00"}) { errors { code } } }',
        {"v": ids.encode("Volunteer", w.ids["v_driver"])},
    )


U, F, N = "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND"
WRITES = [
    Write(
        "set the driver's working hours",
        _hours,
        per_role(
            anonymous=U,
            platform_admin=OK,
            org_admin_a=OK,
            # another organisation's record answers exactly like a missing one
            org_admin_b=N,
            social_worker=F,
            counselor=F,
            community_head=F,
            volunteer=OK,
            partner_a=F,
        ),
    ),
    Write(
        "verify a request of c2",
        _verify,
        per_role(
            anonymous=U,
            platform_admin=OK,
            org_admin_a=OK,
            org_admin_b=N,
            social_worker=N,
            counselor=F,
            community_head=F,
            volunteer=F,
            partner_a=F,
        ),
    ),
    Write(
        "submit a request for c1",
        _submit,
        per_role(
            anonymous=U,
            platform_admin=OK,
            org_admin_a=OK,
            org_admin_b=N,
            social_worker=OK,
            counselor=F,
            community_head=OK,
            volunteer=F,
            partner_a=OK,
        ),
    ),
    Write(
        "cancel a request of c1",
        _cancel,
        per_role(
            anonymous=U,
            platform_admin=OK,
            org_admin_a=OK,
            org_admin_b=N,
            social_worker=OK,
            counselor=F,
            community_head=OK,
            volunteer=F,
            partner_a=F,
        ),
    ),
    Write(
        "accept the driver's offer",
        _accept,
        per_role(
            anonymous=U,
            platform_admin=OK,
            org_admin_a=OK,
            org_admin_b=N,
            social_worker=OK,
            counselor=F,
            community_head=F,
            volunteer=OK,
            partner_a=F,
        ),
    ),
    Write(
        "register a volunteer in org A",
        _register,
        per_role(
            anonymous=U,
            platform_admin=OK,
            org_admin_a=OK,
            org_admin_b=F,
            social_worker=F,
            counselor=F,
            community_head=F,
            volunteer=F,
            partner_a=F,
        ),
    ),
    Write(
        "set the driver's availability",
        _availability,
        per_role(
            anonymous=U,
            platform_admin=OK,
            org_admin_a=OK,
            org_admin_b=N,
            social_worker=F,
            counselor=F,
            community_head=F,
            volunteer=OK,
            partner_a=F,
        ),
    ),
    Write(
        "enable a plugin for org A",
        _plugin,
        per_role(
            anonymous=U,
            platform_admin="UNKNOWN_PLUGIN",
            org_admin_a="UNKNOWN_PLUGIN",
            org_admin_b=F,
            social_worker=F,
            counselor=F,
            community_head=F,
            volunteer=F,
            partner_a=F,
        ),
    ),
    Write(
        "create an API token for org A",
        _api_token,
        per_role(
            anonymous=U,
            platform_admin=OK,
            org_admin_a=OK,
            org_admin_b=F,
            social_worker=F,
            counselor=F,
            community_head=F,
            volunteer=F,
            partner_a=F,
        ),
    ),
    Write(
        "create an account in org A",
        _account,
        per_role(
            anonymous=U,
            platform_admin=OK,
            org_admin_a=OK,
            org_admin_b=F,
            social_worker=F,
            counselor=F,
            community_head=F,
            volunteer=F,
            partner_a=F,
        ),
    ),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("row", WRITES, ids=[w.name for w in WRITES])
async def test_write_matrix(world: World, row: Write, role: str) -> None:
    query, variables = await row.prepare(world)
    body = await world.gql(role, query, variables)
    code = _error_code(body)
    errors = body["data"]["m"]["errors"] if not code else []
    observed = code or (errors[0]["code"] if errors else OK)
    assert observed == row.expect[role]
