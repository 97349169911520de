"""Residents: the one core record of a person served; who may create and read them, and what they see."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

import core
from core.database import create_sessionmaker
from core.errors import DomainError
from core.models import Resident
from core.plugins import build_plugin_host
from core.services import residents
from core.services.context import ServiceContext, Viewer
from tests.factories import Factory

Actor = Callable[..., ServiceContext]


@pytest.fixture
async def actor(engine: AsyncEngine, clock: Any) -> AsyncIterator[Actor]:
    """`actor(role, organization_id, *permissions)`: a context on a session of its own (so the database acts
    for that viewer: row-level security included), with the built-in plugins' host for events and targets."""
    host = build_plugin_host(entry_points=False)
    sessions: list[Any] = []

    def make(role: str, organization_id: int | None, *permissions: str, **kw: Any) -> ServiceContext:
        session = create_sessionmaker(engine)()
        sessions.append(session)
        viewer = Viewer(
            label=f"{role}@{organization_id}",
            role=role,
            organization_id=organization_id,
            extra_permissions=frozenset(permissions),
            **kw,
        )
        return ServiceContext(session=session, viewer=viewer, clock=clock, events=host)

    yield make
    for session in sessions:
        await session.close()


async def test_a_social_worker_records_a_resident_of_their_organisation(
    make: Factory, actor: Actor, home_org: int
) -> None:
    # given a community of the organisation and a social worker of it
    community = await make.community()
    worker = actor("social_worker", home_org)
    # when they record a resident with a phone number in a loose spelling
    resident = await residents.create_resident(
        worker, name=" 王阿姨 ", community_id=community.id, phone="139 0000 1234", address="碑林区粉巷 1 号"
    )
    # then the resident belongs to the organisation, with the canonical phone number
    assert (resident.organization_id, resident.name, resident.phone) == (home_org, "王阿姨", "13900001234")
    assert (await residents.get_resident(worker, resident.id)).id == resident.id
    # and plugins reach the same module through the plugin API
    assert core.residents is residents


async def test_invalid_input_is_refused_field_by_field(make: Factory, actor: Actor, home_org: int) -> None:
    worker = actor("social_worker", home_org)
    with pytest.raises(DomainError) as err:
        await residents.create_resident(worker, name="  ", community_id=None, phone="12345")
    assert {(e.code, e.field) for e in err.value.errors} == {
        ("REQUIRED", ("input", "name")),
        ("INVALID_PHONE", ("input", "phone")),
    }


async def test_a_community_of_another_organisation_cannot_be_named(make: Factory, actor: Actor, home_org: int) -> None:
    # given a community of another organisation
    other = await make.organization_using("counseling")
    theirs = await make.in_org(other.id).community()
    # when a social worker of the home organisation names it
    with pytest.raises(DomainError) as err:
        await residents.create_resident(actor("social_worker", home_org), name="李", community_id=theirs.id)
    # then it answers as a missing community
    assert (err.value.code, err.value.errors[0].field) == ("NOT_FOUND", ("input", "communityId"))


@pytest.mark.parametrize("role", ["volunteer", "community_head", "partner"])
async def test_people_who_do_not_keep_records_neither_create_nor_see_residents(
    make: Factory, actor: Actor, home_org: int, role: str
) -> None:
    # given a resident of the organisation
    resident = await residents.create_resident(make.ctx, name="张", community_id=None, phone="13900000001")
    await make.commit()
    them = actor(role, home_org)
    # then someone of the organisation who does not serve residents cannot read them: it is as if missing
    with pytest.raises(DomainError) as err:
        await residents.get_resident(them, resident.id)
    assert err.value.code == "NOT_FOUND"
    # nor create one
    with pytest.raises(DomainError) as err:
        await residents.create_resident(them, name="x", community_id=None)
    assert err.value.code == "FORBIDDEN"


async def test_another_organisation_sees_no_resident_even_its_administrator(
    make: Factory, actor: Actor, home_org: int
) -> None:
    # given a resident of the home organisation, and the administrator of another organisation
    resident = await residents.create_resident(make.ctx, name="张", community_id=None)
    await make.commit()
    other = await make.organization_using("counseling")
    for role in ("organization_admin", "social_worker"):
        # when they look it up, through the service and in the database directly
        with pytest.raises(DomainError) as err:
            await residents.get_resident(actor(role, other.id), resident.id)
        # then it is not found
        assert err.value.code == "NOT_FOUND"
        # and the database itself shows them no resident at all
        assert (await actor(role, other.id).session.scalars(select(Resident))).all() == []
    # and the positive control: the home organisation's administrator finds it
    assert (await residents.get_resident(actor("organization_admin", home_org), resident.id)).id == resident.id


async def test_update_changes_only_the_fields_given(make: Factory, actor: Actor, home_org: int) -> None:
    worker = actor("social_worker", home_org)
    resident = await residents.create_resident(worker, name="赵", community_id=None, phone="13900000002")
    updated = await residents.update_resident(worker, resident.id, address="雁塔区")
    assert (updated.name, updated.phone, updated.address) == ("赵", "13900000002", "雁塔区")
    with pytest.raises(DomainError) as err:
        await residents.update_resident(worker, resident.id, organization_id=99)
    assert err.value.code == "INVALID_INPUT"


async def test_only_serving_staff_of_the_organisation_read_contact_details(
    make: Factory, actor: Actor, home_org: int
) -> None:
    resident = await residents.create_resident(make.ctx, name="钱", community_id=None, phone="13900000003")
    assert residents.sees_contact(Viewer(role="social_worker", organization_id=home_org), resident)
    assert residents.sees_contact(Viewer(role="counselor", organization_id=home_org), resident)
    assert not residents.sees_contact(Viewer(role="organization_admin", organization_id=home_org), resident)
    assert not residents.sees_contact(Viewer(role="platform_admin", organization_id=home_org), resident)
    assert not residents.sees_contact(Viewer(role="social_worker", organization_id=home_org + 1), resident)
