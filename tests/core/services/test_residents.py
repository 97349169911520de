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
# Who serves whom in these tests: viewer label -> resident ids (the `serving_test` plugin's relation below).
SERVED: dict[str, list[int]] = {}


class ServingTest:
    """A plugin whose only contribution is a relation read from `SERVED` (core learns who serves whom from
    plugins alone: without one, nobody serves anybody)."""

    @core.hookimpl
    def register_plugin(self) -> core.PluginInfo:
        return core.PluginInfo(name="serving_test", version="0", description="test relation")

    @core.hookimpl
    def register_resident_relations(self) -> list[core.ResidentRelation]:
        def serves(viewer: Viewer, resident_id: Any) -> Any:
            served = SERVED.get(viewer.label)
            return resident_id.in_(served) if served else None

        return [core.ResidentRelation("serving_test", serves)]


def serve(ctx: ServiceContext, *resident_ids: int) -> None:
    """Let `ctx`'s viewer serve these residents by the test relation (as a plugin's case or session would)."""
    SERVED.setdefault(ctx.viewer.label, []).extend(resident_ids)


def serving_host() -> Any:
    SERVED.clear()
    return build_plugin_host(entry_points=False, extra=[ServingTest()])


@pytest.fixture
async def actor(engine: AsyncEngine, clock: Any) -> AsyncIterator[Actor]:
    """`actor(role, organization_id, *permissions)`: a context on a session of its own (so the database acts
    for that viewer: row-level security included), with the built-in plugins' host for events and targets."""
    host = serving_host()
    sessions: list[Any] = []

    def make(role: str, organization_id: int | None, *permissions: str, **kw: Any) -> ServiceContext:
        session = create_sessionmaker(engine)()
        sessions.append(session)
        viewer = Viewer(
            label=kw.pop("label", f"{role}@{organization_id}"),
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
    # and once a plugin's relation says they serve the resident, they address it
    SERVED[worker.viewer.label] = [resident.id]
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


async def test_update_changes_only_the_fields_given_by_those_who_serve(
    make: Factory, actor: Actor, home_org: int
) -> None:
    worker = actor("social_worker", home_org)
    resident = await residents.create_resident(worker, name="赵", community_id=None, phone="13900000002")
    await worker.session.commit()
    SERVED[worker.viewer.label] = [resident.id]
    updated = await residents.update_resident(worker, resident.id, address="雁塔区")
    assert (updated.name, updated.phone, updated.address) == ("赵", "13900000002", "雁塔区")
    with pytest.raises(DomainError) as err:
        await residents.update_resident(worker, resident.id, organization_id=99)
    assert err.value.code == "INVALID_INPUT"
    await worker.session.commit()  # the update holds the resident's row lock until then
    # the organisation's administrator sees the resident but serves them by no relation: FORBIDDEN
    with pytest.raises(DomainError) as err:
        await residents.update_resident(actor("organization_admin", home_org), resident.id, address="x")
    assert err.value.code == "FORBIDDEN"
    # another social worker of the organisation does not even see them
    with pytest.raises(DomainError) as err:
        await residents.update_resident(actor("social_worker", home_org, label="sw2"), resident.id, address="x")
    assert err.value.code == "NOT_FOUND"


async def test_only_those_serving_the_resident_read_contact_details(make: Factory, actor: Actor, home_org: int) -> None:
    resident = await residents.create_resident(make.ctx, name="钱", community_id=None, phone="13900000003")
    await make.commit()
    SERVED["social_worker@serving"] = [resident.id]
    SERVED["counselor@serving"] = [resident.id]
    for label, role, org, expected in (
        ("social_worker@serving", "social_worker", home_org, True),
        ("counselor@serving", "counselor", home_org, True),
        ("social_worker@serving", "social_worker", home_org + 1000, False),  # the relation, in another org's name
        ("sw-other", "social_worker", home_org, False),  # rank is no relation
        ("admin", "organization_admin", home_org, False),
        ("platform", "platform_admin", home_org, False),
    ):
        assert await residents.sees_contact(actor(role, org, label=label), resident) is expected, (label, org)
