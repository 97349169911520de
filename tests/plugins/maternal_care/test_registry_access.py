"""The registry's rows of the permission matrix, run on a world of their own (the lead wires the same rows into
tests/schema/test_plugin_access.py): every role signed in for real, both organisations, content checked."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from argon2 import PasswordHasher

from core.services import auth
from tests.plugin_access import OK, PluginWorld, Read, Write, build_world, outcome
from tests.plugins.maternal_care import access_rows
from tests.schema.access_world import ROLES, world_in_database


@pytest.fixture(scope="module")
async def world(server_url: str) -> AsyncIterator[PluginWorld]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        async with world_in_database(server_url, "ysg_test_maternal_care_access") as w:
            yield await build_world(w, [access_rows.build])


@pytest.mark.parametrize("row", access_rows.READS, ids=[r.name for r in access_rows.READS])
async def test_read_matrix(world: PluginWorld, row: Read) -> None:
    got = {}
    for role in ROLES:
        code, data = outcome(await world.w.gql(role, row.query, row.variables(world)))
        got[role] = code if code else row.extract(data)
    assert {r: got[r] for r in ROLES if got[r] != row.expect[r]} == {
        r: row.expect[r] for r in ROLES if got[r] != row.expect[r]
    }


@pytest.mark.parametrize("row", access_rows.WRITES, ids=[r.name for r in access_rows.WRITES])
async def test_write_matrix(world: PluginWorld, row: Write) -> None:
    got = {}
    for role in ROLES:
        code, data = outcome(await world.w.gql(role, row.mutation, await row.prepare(world)))
        got[role] = code or (data["errors"][0]["code"] if data["errors"] else OK)
    assert {r: got[r] for r in ROLES if got[r] != row.expect[r]} == {
        r: row.expect[r] for r in ROLES if got[r] != row.expect[r]
    }
