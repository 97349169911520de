"""A casework client is casework's extension of a core resident (decisions.md, "One identity"): opening a case
for a new person makes a resident through core's service; opening one for a resident attaches (one client
per resident); the client keeps no copy of the person's name, phone or address."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

import core
from core.models import Resident
from plugins.case_work import services
from plugins.case_work.models import Client
from tests.plugins.case_work.conftest import CaseWorld


async def _resident_of_case(cw: CaseWorld, case_id: int) -> Resident:
    async with cw.as_("admin") as ctx:
        client = await ctx.session.get(Client, (await cw.case(case_id)).client_id)
        assert client is not None
        resident = await ctx.session.get(Resident, client.resident_id)
        assert resident is not None
        return resident


async def test_a_new_client_is_a_new_resident_and_the_client_keeps_no_copy(cw: CaseWorld) -> None:
    # given a case opened for a new person, in a community of the organisation
    person = services.ClientInput(
        name="独居老人", phone="13700001111", address="碑林区粉巷5号", community_id=cw.ids["community_a"]
    )
    case_id = await cw.open(client=person)
    # then core holds the resident, with everything said about them, in the organisation
    resident = await _resident_of_case(cw, case_id)
    assert (resident.name, resident.phone, resident.address, resident.community_id, resident.organization_id) == (
        "独居老人",
        "13700001111",
        "碑林区粉巷5号",
        cw.ids["community_a"],
        cw.ids["org_a"],
    )
    # and the client table has no column for them any more
    async with cw.as_("admin") as ctx:
        columns = set(
            (
                await ctx.session.execute(
                    text("SELECT column_name FROM information_schema.columns WHERE table_name = 'case_work_clients'")
                )
            ).scalars()
        )
    assert columns == {"id", "resident_id", "organization_id", "created_at"}


async def test_a_case_for_a_resident_attaches_to_their_one_client(cw: CaseWorld) -> None:
    # given a resident recorded by core (by the organisation's administrator)
    async with cw.as_("admin") as ctx:
        resident = await core.residents.create_resident(
            ctx, name="解封后的李家", community_id=cw.ids["community_a"], phone="13700003333"
        )
    # when two cases are opened for them
    first = await cw.open(client=None, resident_id=resident.id)
    second = await cw.open(client=None, resident_id=resident.id, category="poverty")
    # then both are cases of the same, single client
    assert (await cw.case(first)).client_id == (await cw.case(second)).client_id
    async with cw.as_("admin") as ctx:
        assert await ctx.session.scalar(select(func.count()).where(Client.resident_id == resident.id)) == 1
    # and the database holds one client per resident whoever writes
    with pytest.raises(DBAPIError):
        async with cw.as_("admin") as ctx:
            await ctx.session.execute(
                text("INSERT INTO case_work_clients (resident_id) VALUES (:r)"), {"r": resident.id}
            )


@pytest.mark.parametrize(("who", "code"), [("sw_b", "NOT_FOUND"), ("admin_b", "NOT_FOUND")])
async def test_a_resident_of_another_organisation_is_not_found(cw: CaseWorld, who: str, code: str) -> None:
    async with cw.as_("admin") as ctx:
        resident = await core.residents.create_resident(ctx, name="王奶奶", community_id=None)
    before = await cw.counts()
    kwargs = {"supervisor_account_id": cw.ids["sup_b"]}
    if who == "admin_b":
        kwargs["social_worker_account_id"] = cw.ids["sw_b"]
    assert (
        await cw.refused(
            who,
            services.open_case,
            category="other",
            risk_level="low",
            resident_id=resident.id,
            **kwargs,
        )
        == code
    )
    assert await cw.counts() == before


async def test_a_client_is_named_one_way_only(cw: CaseWorld) -> None:
    async with cw.as_("admin") as ctx:
        resident = await core.residents.create_resident(ctx, name="王奶奶", community_id=None)
    before = await cw.counts()
    assert (
        await cw.refused(
            "sw",
            services.open_case,
            category="other",
            risk_level="low",
            supervisor_account_id=cw.ids["sup"],
            resident_id=resident.id,
            client=services.ClientInput(name="又一个"),
        )
        == "INVALID_INPUT"
    )
    assert await cw.counts() == before


async def test_the_client_reads_its_resident_only_for_those_who_see_the_client(cw: CaseWorld) -> None:
    # given a case of sw
    case_id = await cw.open()
    client_id = (await cw.case(case_id)).client_id
    # then the case's people read the resident behind the client; another worker, another organisation do not
    for who in ("sw", "sup", "admin"):
        async with cw.as_(who) as ctx:
            [found] = await services.client_residents(ctx, [client_id])
            assert found is not None, who
            assert found.name == "独居老人"
    for who in ("sw2", "admin_b", "sw_b"):
        async with cw.as_(who) as ctx:
            assert await services.client_residents(ctx, [client_id]) == [None], who
    # and the contact is raw only for the people serving the client (administrators: masked in GraphQL)
    for who, raw in (("sw", True), ("sup", True), ("admin", False), ("sw2", False)):
        async with cw.as_(who) as ctx:
            client = await ctx.session.get(Client, client_id) if who != "sw2" else None
            assert (client is not None and await services.sees_contact(ctx, client)) is raw, who
