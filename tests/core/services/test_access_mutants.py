"""Who may do and see what, at service level (fast enough for `make mutation`): the permission checks on
viewers alone, and every scope evaluated in the real database over one small world of two organisations.

The GraphQL-level permission matrix (tests/schema/test_access.py) states the same rules through real
sign-in; this file states them where they are decided, in core/services/access.py."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from core.errors import DomainError
from core.models import Assignment, Community, HelpRequest, Volunteer
from core.services import access, assignments, communities, organizations
from core.services.context import ServiceContext, Viewer
from core.vocab import LiaisonRole, OrganizationKind, RequestStatus, Role
from tests.factories import Factory


def _ctx(viewer: Viewer) -> ServiceContext:
    """A context for the checks that read nothing but the viewer (no database needed)."""
    return ServiceContext(session=SimpleNamespace(info={}), viewer=viewer)  # type: ignore[arg-type]


def _code(call: Any) -> str | None:
    try:
        call()
    except DomainError as err:
        return err.code
    return None


ANONYMOUS = Viewer()


def viewer(role: Role, **kw: Any) -> Viewer:
    return Viewer(label=role.value, role=role.value, **kw)


# --- permissions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "permission", "allowed"),
    [
        (ANONYMOUS, "requests.read", False),
        (viewer(Role.SYSTEM), "anything.at.all", True),
        (viewer(Role.PLATFORM_ADMIN), "reference.manage", True),
        (viewer(Role.ORGANIZATION_ADMIN), "reference.manage", False),
        (viewer(Role.VOLUNTEER), "assignments.respond", True),
        (viewer(Role.VOLUNTEER), "volunteers.manage", False),
        (viewer(Role.VOLUNTEER, extra_permissions=frozenset({"supplies.manage"})), "supplies.manage", True),
        (viewer(Role.COUNSELOR, extra_permissions=frozenset({"counseling.read"})), "requests.create", False),
    ],
    ids=[
        "anonymous",
        "system: everything",
        "platform admin: listed",
        "org admin: unlisted",
        "volunteer: listed",
        "volunteer: unlisted",
        "plugin permission granted",
        "plugin permission does not grant others",
    ],
)
def test_can_is_the_roles_list_plus_plugin_grants(who: Viewer, permission: str, allowed: bool) -> None:
    assert access.can(who, permission) is allowed
    # require says the same, with the code for why not
    expected = None if allowed else ("UNAUTHENTICATED" if who.role is None else "FORBIDDEN")
    assert _code(lambda: access.require(_ctx(who), permission)) == expected


def test_role_of_reads_the_role_or_none() -> None:
    assert access.role_of(ANONYMOUS) is None
    assert access.role_of(viewer(Role.COMMUNITY_HEAD)) == Role.COMMUNITY_HEAD


def test_signed_in_means_having_a_role() -> None:
    assert _code(lambda: access.require_signed_in(_ctx(ANONYMOUS))) == "UNAUTHENTICATED"
    assert _code(lambda: access.require_signed_in(_ctx(viewer(Role.PARTNER)))) is None


def test_an_unauthenticated_refusal_names_no_field() -> None:
    for call in (
        lambda: access.require_signed_in(_ctx(ANONYMOUS)),
        lambda: access.require(_ctx(ANONYMOUS), "requests.read"),
        lambda: access.require(_ctx(viewer(Role.VOLUNTEER)), "volunteers.manage"),
    ):
        with pytest.raises(DomainError) as err:
            call()
        assert err.value.errors[0].field is None


@pytest.mark.parametrize(
    ("who", "permission", "organization", "expected"),
    [
        (viewer(Role.ORGANIZATION_ADMIN, organization_id=1), "volunteers.manage", 1, None),
        (viewer(Role.ORGANIZATION_ADMIN, organization_id=1), "volunteers.manage", 2, "FORBIDDEN"),
        (viewer(Role.ORGANIZATION_ADMIN, organization_id=1), "volunteers.manage", None, "FORBIDDEN"),
        (viewer(Role.ORGANIZATION_ADMIN, organization_id=1), "reference.manage", 1, "FORBIDDEN"),
        (viewer(Role.PLATFORM_ADMIN, organization_id=1), "volunteers.manage", 2, None),
        (viewer(Role.SOCIAL_WORKER, organization_id=1), "requests.coordinate", 2, None),
        (viewer(Role.SOCIAL_WORKER, organization_id=1), "volunteers.manage", 1, "FORBIDDEN"),
        (ANONYMOUS, "volunteers.manage", 1, "UNAUTHENTICATED"),
    ],
    ids=[
        "org admin, own organisation",
        "org admin, another organisation",
        "org admin, no organisation",
        "org admin, permission lacking",
        "platform admin, any organisation",
        "social worker with the permission: not limited to an organisation here",
        "social worker without the permission",
        "anonymous",
    ],
)
def test_managing_needs_the_permission_and_for_organisation_admins_their_own_organisation(
    who: Viewer, permission: str, organization: int | None, expected: str | None
) -> None:
    assert _code(lambda: access.require_manage(_ctx(who), permission, organization, "records")) == expected


def test_another_organisations_records_are_refused_on_organization_id() -> None:
    who = viewer(Role.ORGANIZATION_ADMIN, organization_id=1)
    with pytest.raises(DomainError) as err:
        access.require_manage(_ctx(who), "volunteers.manage", 2, "volunteers")
    assert (err.value.code, err.value.errors[0].field) == ("FORBIDDEN", ("input", "organizationId"))


def test_a_new_record_belongs_to_the_organisation_named_else_the_callers() -> None:
    field = ("input", "organizationId")
    mine = _ctx(viewer(Role.ORGANIZATION_ADMIN, organization_id=7))
    assert access.owning_organization(mine, 9, field) == 9
    assert access.owning_organization(mine, None, field) == 7
    assert access.owning_organization(_ctx(viewer(Role.PLATFORM_ADMIN)), 9, field) == 9
    with pytest.raises(DomainError) as err:
        access.owning_organization(_ctx(viewer(Role.PLATFORM_ADMIN)), None, ("input", "x"))
    assert (err.value.code, err.value.errors[0].field) == ("REQUIRED", ("input", "x"))


@pytest.mark.parametrize(
    ("changes", "refused"),
    [
        ({"organization_id": 3}, False),
        ({"organization_id": 4}, True),
        ({"organization_id": None}, True),
        ({"name": "x"}, False),
        ({}, False),
        (SimpleNamespace(organization_id=4), False),
    ],
    ids=["same organisation", "another organisation", "no organisation", "other fields", "nothing", "not a dict"],
)
def test_a_record_never_moves_to_another_organisation(changes: object, refused: bool) -> None:
    field = ("input", "organizationId")
    if refused:
        with pytest.raises(DomainError) as err:
            access.refuse_move(3, changes, field)
        assert (err.value.code, err.value.errors[0].field) == ("INVALID_INPUT", field)
    else:
        access.refuse_move(3, changes, field)


# --- scopes, in the database ----------------------------------------------------------------------------


@dataclass
class World:
    """Organisation A (the tests' home) and B. In A: communities c1 (social worker `sw` on its team) and c2
    (counselor `cn` on its team), requests r1 in c1 and r2 in c2; volunteer `vol` offered r1, `v2` offered r2.
    In B: community b1, request rb in it, volunteer `vb` offered rb."""

    a: int
    b: int
    c1: int
    c2: int
    b1: int
    r1: int
    r2: int
    rb: int
    sw: int
    cn: int
    vol: int
    v2: int
    vb: int
    a_vol: int
    a_v2: int
    a_vb: int

    def names(self, ids: set[int], kind: str) -> set[str]:
        fields = {
            "community": ("c1", "c2", "b1"),
            "request": ("r1", "r2", "rb"),
            "volunteer": ("sw", "cn", "vol", "v2", "vb"),
            "assignment": ("a_vol", "a_v2", "a_vb"),
        }[kind]
        by_id = {getattr(self, f): f for f in fields}
        return {by_id.get(i, f"other {kind} {i}") for i in ids}


@pytest.fixture
async def world(make: Factory, home_org: int) -> World:
    # Organisation A first: a factory `in_org` rebinds the shared session to the other organisation.
    c1, c2 = await make.community(), await make.community()
    r1 = await make.request(community=c1, status=RequestStatus.VERIFIED)
    r2 = await make.request(community=c2, status=RequestStatus.VERIFIED)
    sw, cn, vol, v2 = [await make.volunteer() for _ in range(4)]
    await communities.add_liaison(make.ctx, c1.id, sw.id, LiaisonRole.SOCIAL_WORKER)
    await communities.add_liaison(make.ctx, c2.id, cn.id, LiaisonRole.VOLUNTEER)
    a_vol = await assignments.offer(make.ctx, r1.id, vol.id)
    a_v2 = await assignments.offer(make.ctx, r2.id, v2.id)
    await make.commit()
    other = await organizations.create_organization(make.ctx, name="另一个机构", kind=OrganizationKind.AGENCY)
    await make.commit()
    there = make.in_org(other.id)
    b1 = await there.community()
    rb = await there.request(community=b1, status=RequestStatus.VERIFIED)
    vb = await there.volunteer()
    a_vb = await assignments.offer(there.ctx, rb.id, vb.id)
    await there.commit()
    return World(
        a=home_org,
        b=other.id,
        c1=c1.id,
        c2=c2.id,
        b1=b1.id,
        r1=r1.id,
        r2=r2.id,
        rb=rb.id,
        sw=sw.id,
        cn=cn.id,
        vol=vol.id,
        v2=v2.id,
        vb=vb.id,
        a_vol=a_vol.id,
        a_v2=a_v2.id,
        a_vb=a_vb.id,
    )


def _viewers(w: World) -> dict[str, Viewer]:
    return {
        "anonymous": ANONYMOUS,
        "system": viewer(Role.SYSTEM),
        "platform_admin": viewer(Role.PLATFORM_ADMIN, organization_id=w.a),
        "organization_admin": viewer(Role.ORGANIZATION_ADMIN, organization_id=w.a),
        "partner": viewer(Role.PARTNER, organization_id=w.a),
        "social_worker": viewer(Role.SOCIAL_WORKER, organization_id=w.a, volunteer_id=w.sw),
        "counselor": viewer(Role.COUNSELOR, organization_id=w.a, volunteer_id=w.cn),
        "community_head": viewer(Role.COMMUNITY_HEAD, organization_id=w.a, community_id=w.c2),
        "volunteer": viewer(Role.VOLUNTEER, organization_id=w.a, volunteer_id=w.vol),
    }


# What each viewer sees (README "Access"), by the world's names. The session reading them is a platform
# administrator's, which row-level security lets see both organisations: only the scope decides here.
EVERYONE = {"sw", "cn", "vol", "v2", "vb"}
SEES: dict[str, dict[str, set[str]]] = {
    "anonymous": {"request": set(), "community": set(), "volunteer": set(), "assignment": set()},
    "system": {
        "request": {"r1", "r2", "rb"},
        "community": {"c1", "c2", "b1"},
        "volunteer": EVERYONE,
        "assignment": {"a_vol", "a_v2", "a_vb"},
    },
    "platform_admin": {
        "request": {"r1", "r2", "rb"},
        "community": {"c1", "c2", "b1"},
        "volunteer": EVERYONE,
        "assignment": {"a_vol", "a_v2", "a_vb"},
    },
    "organization_admin": {
        "request": {"r1", "r2"},
        "community": {"c1", "c2"},
        "volunteer": {"sw", "cn", "vol", "v2"},
        "assignment": {"a_vol", "a_v2"},
    },
    "partner": {
        "request": {"r1", "r2"},
        "community": {"c1", "c2"},
        "volunteer": {"vol", "v2"},  # the people working on their requests
        "assignment": {"a_vol", "a_v2"},
    },
    "social_worker": {
        "request": {"r1"},
        "community": {"c1"},
        "volunteer": {"sw", "cn", "vol", "v2"},
        "assignment": {"a_vol"},
    },
    "counselor": {
        "request": {"r2"},
        "community": {"c2"},
        "volunteer": {"sw", "cn", "vol", "v2"},
        "assignment": {"a_v2"},
    },
    "community_head": {"request": {"r2"}, "community": {"c2"}, "volunteer": {"v2"}, "assignment": {"a_v2"}},
    "volunteer": {"request": {"r1"}, "community": {"c1"}, "volunteer": {"vol"}, "assignment": {"a_vol"}},
}

SCOPES = {
    "request": (HelpRequest, access.request_scope),
    "community": (Community, access.community_scope),
    "volunteer": (Volunteer, access.volunteer_scope),
    "assignment": (Assignment, access.assignment_scope),
}


@pytest.mark.parametrize("who", list(SEES))
async def test_each_role_sees_exactly_its_scope(make: Factory, world: World, who: str) -> None:
    # given the world and a viewer in one role
    seen_as = _viewers(world)[who]
    for kind, (model, scope) in SCOPES.items():
        # when the rows of each kind are read under the role's scope
        ids = set((await make.ctx.session.scalars(select(model.id).where(scope(seen_as)))).all())
        # then exactly the rows the rules give that role
        assert (kind, world.names(ids, kind)) == (kind, SEES[who][kind])


async def test_a_row_outside_the_scope_is_not_found_on_id(make: Factory, world: World) -> None:
    ctx, head = make.ctx, _viewers(world)["community_head"]
    # in scope: nothing raised
    await access.require_in_scope(ctx, HelpRequest, world.r2, access.request_scope(head))
    await access.require_in_scope(ctx, Community, world.c2, access.community_scope(head))
    # out of scope (although another row is in scope), and not there at all: NOT_FOUND on the input's id
    for model, row_id, scope in (
        (HelpRequest, world.r1, access.request_scope(head)),
        (HelpRequest, 987654, access.request_scope(head)),
        (Community, world.b1, access.community_scope(head)),
    ):
        with pytest.raises(DomainError) as err:
            await access.require_in_scope(ctx, model, row_id, scope)
        assert (err.value.code, err.value.errors[0].field) == ("NOT_FOUND", ("input", "id"))
