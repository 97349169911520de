"""A casework client is casework's extension of a core resident (decisions.md, "One identity"): opening a case
for a new person makes a resident through core's service; opening one for a resident attaches (one client
per resident); the client keeps no copy of the person's name, phone or address."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

import core
from core import migrate
from core.database import create_engine, database_url_for, drop_database, ensure_database
from core.models import Resident
from core.plugins import build_plugin_host
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
    # when the administrator (who sees the resident; a social worker who serves them not yet does not) opens two
    # cases for them, for the social worker
    sw = cw.ids["sw"]
    first = await cw.open("admin", client=None, resident_id=resident.id, social_worker_account_id=sw)
    second = await cw.open(
        "admin", client=None, resident_id=resident.id, category="poverty", social_worker_account_id=sw
    )
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


async def test_w006_attaches_clients_to_known_residents_and_its_downgrade_takes_back_what_it_made(
    server_url: str,
) -> None:
    # given a database at w005 and c002 with casework clients -- one the same person (organisation, name,
    # phone) as a counseling client, one without a phone, one of another organisation -- and that counseling client
    name = "ysg_case_work_w006_backfill"
    await drop_database(server_url, name)
    await ensure_database(server_url, name)
    engine = create_engine(database_url_for(server_url, name), pool_size=1)
    dirs = build_plugin_host(entry_points=False).migration_dirs()

    async def rows(sql: str) -> list[tuple[Any, ...]]:
        async with engine.begin() as conn:
            await conn.execute(text("SELECT set_config('app.role', 'platform_admin', true)"))
            return [tuple(r) for r in (await conn.execute(text(sql))).all()]

    try:
        await migrate.upgrade(engine, dirs, target="w005")
        await migrate.upgrade(engine, dirs, target="c002")
        async with engine.begin() as conn:
            await conn.execute(text("SELECT set_config('app.role', 'platform_admin', true)"))
            for sql in (
                "INSERT INTO organizations (id, name, kind) VALUES (1, 'A', 'agency'), (2, 'B', 'agency')",
                "INSERT INTO districts (id, name, kind) VALUES (1, '碑林区', 'district')",
                "INSERT INTO communities (id, district_id, name, street, head_name, organization_id) "
                "VALUES (1, 1, '粉巷', '', '', 1), (2, 1, '南院门', '', '', 2)",
                "INSERT INTO case_work_clients (id, name, phone, address, community_id, organization_id) VALUES "
                "(1, '张奶奶', '13900000001', '粉巷1号', 1, 1), (2, '李', '', '', NULL, 1), "
                "(3, '张奶奶', '13900000001', '南院门2号', 2, 2)",
                "INSERT INTO counseling_clients (name, phone, community_id, organization_id, consent_at) "
                "VALUES ('张奶奶', '13900000001', NULL, 1, now())",
            ):
                await conn.execute(text(sql))
        # when everything is migrated (counseling's c003 makes its client a resident; casework's w006 follows)
        await migrate.upgrade(engine, dirs)
        # then the client of A is that resident's client (no duplicate), the address and community it knew kept
        # on the resident; the others got residents of their own, in their own organisations
        known = (await rows("SELECT resident_id FROM counseling_clients"))[0][0]
        clients = await rows(
            "SELECT c.id, r.id, r.organization_id, r.name, r.phone, r.address, r.community_id "
            "FROM case_work_clients c JOIN residents r ON r.id = c.resident_id ORDER BY c.id"
        )
        assert clients[0] == (1, known, 1, "张奶奶", "13900000001", "粉巷1号", 1)
        assert [c[2:] for c in clients[1:]] == [(1, "李", "", "", None), (2, "张奶奶", "13900000001", "南院门2号", 2)]
        assert (await rows("SELECT count(*) FROM residents"))[0][0] == 3
        made = sorted(c[1] for c in clients[1:])
        # when a resident w006 made is referred to by something else since (a consent), and w006 is undone
        await rows(
            f"INSERT INTO consents (resident_id, scopes, target_kind, target, purpose, valid_from, recorded_by, "
            f"organization_id) VALUES ({made[1]}, ARRAY['contact']::varchar[], 'outside', '街道办', '转介', now(), "
            f"'test', 2) RETURNING id"
        )
        await migrate.downgrade(engine, "w005", dirs)
        # then the clients hold their facts again; the residents it made go but the consented one, and
        # counseling's stays
        assert await rows("SELECT id, name, phone, address, community_id, organization_id FROM case_work_clients") == [
            (1, "张奶奶", "13900000001", "粉巷1号", 1, 1),
            (2, "李", "", "", None, 1),
            (3, "张奶奶", "13900000001", "南院门2号", 2, 2),
        ]
        assert [r[0] for r in await rows("SELECT id FROM residents ORDER BY id")] == sorted([known, made[1]])
        assert await rows("SELECT key FROM app_meta WHERE key LIKE 'case_work:%'") == []
        # and up again: the consented resident is matched, nothing duplicated
        await migrate.upgrade(engine, dirs)
        assert (await rows("SELECT count(*) FROM residents"))[0][0] == 3
    finally:
        await engine.dispose()
        await drop_database(server_url, name)
