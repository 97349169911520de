"""The permission matrix of the built-in plugins: every supplies, counseling and casework root field, every
plugin node type and every plugin mutation × every role, through a real sign-in (the world's tokens, as
tests/schema/test_access.py does for core).

Both organisations of the world enabled both plugins and keep records of their own (A: 甲…, B: 乙…). Each row
states what every role gets: the content it sees (which records, raw or masked values, notes or null), null
(outside its scope), OK, or an error code. Another organisation's record answers like a missing one
(null / NOT_FOUND). Every row has a positive control (some role gets real content through the same
document), and `test_every_plugin_field_has_a_row` fails when a plugin root field, mutation or node type has
no row here.

Rules stated by the rows (README "Plugins", docs/plugins.md):
- supplies.manage: platform and organisation administrators, social workers; counseling.manage: those and
  counselors; counseling.read_notes (supervise): organisation administrators of the session's organisation.
- A client's phone is raw for the counselors and social workers of the client's organisation, masked for
  everyone else (administrators included); a session's notes are read by its own counselor and its
  organisation's supervisors only (a platform administrator reads none).
- Anonymous callers get UNAUTHENTICATED before anything else (not PLUGIN_DISABLED).

Rows that write act on a fresh target made for each role (`prepare`), so the rows run in any order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from argon2 import PasswordHasher
from strawberry.utils.str_converters import to_camel_case

from core.plugins import build_plugin_host
from core.services import auth
from core.settings import Settings
from plugins.counseling.types import CounselingMutation, CounselingQuery
from plugins.supplies.types import SuppliesMutation, SuppliesQuery
from schema.build import build_schema
from tests.plugin_access import NULL, OK, ROLES, F, N, PluginWorld, Read, U, Write, build_world, outcome
from tests.plugins.case_work import access_rows as case_work_rows
from tests.plugins.counseling import access_rows as counseling_rows
from tests.plugins.maternal_care import access_rows as maternal_care_rows
from tests.plugins.maternal_care import access_rows_followups as maternal_care_followups_rows
from tests.plugins.maternal_care import access_rows_lectures as maternal_care_lecture_rows
from tests.plugins.maternal_care import access_rows_needs as maternal_care_needs_rows
from tests.plugins.supplies import access_rows as supplies_rows
from tests.schema.access_world import world_in_database

READS: list[Read] = [
    *supplies_rows.READS,
    *counseling_rows.READS,
    *case_work_rows.READS,
    *maternal_care_rows.READS,
    *maternal_care_lecture_rows.READS,
    *maternal_care_followups_rows.READS,
    *maternal_care_needs_rows.READS,
]
WRITES: list[Write] = [
    *supplies_rows.WRITES,
    *counseling_rows.WRITES,
    *case_work_rows.WRITES,
    *maternal_care_rows.WRITES,
    *maternal_care_lecture_rows.WRITES,
    *maternal_care_followups_rows.WRITES,
    *maternal_care_needs_rows.WRITES,
]


@pytest.fixture(scope="module")
async def world(server_url: str) -> AsyncIterator[PluginWorld]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        async with world_in_database(server_url, "ysg_test_plugin_access") as w:
            builders = [
                supplies_rows.build,
                counseling_rows.build,
                case_work_rows.build,
                maternal_care_rows.build,
                maternal_care_lecture_rows.build,
                maternal_care_followups_rows.build,
                maternal_care_needs_rows.build,
            ]
            yield await build_world(w, builders)


@pytest.mark.parametrize("row", READS, ids=[r.name for r in READS])
async def test_read_matrix(world: PluginWorld, row: Read) -> None:
    # given each role, signed in for real; when it sends the row's document; then it gets the row's cell
    got = {}
    for role in ROLES:
        code, data = outcome(await world.w.gql(role, row.query, row.variables(world)))
        got[role] = code if code else row.extract(data)
    assert {r: got[r] for r in ROLES if got[r] != row.expect[r]} == {
        r: row.expect[r] for r in ROLES if got[r] != row.expect[r]
    }


@pytest.mark.parametrize("row", WRITES, ids=[r.name for r in WRITES])
async def test_write_matrix(world: PluginWorld, row: Write) -> None:
    # given a fresh target for each role; when the role sends the mutation; then it gets the row's cell
    got = {}
    for role in ROLES:
        code, data = outcome(await world.w.gql(role, row.mutation, await row.prepare(world)))
        got[role] = code or (data["errors"][0]["code"] if data["errors"] else OK)
    assert {r: got[r] for r in ROLES if got[r] != row.expect[r]} == {
        r: row.expect[r] for r in ROLES if got[r] != row.expect[r]
    }


# -- completeness --------------------------------------------------------------------------------------------------


def _fields(cls: type) -> set[str]:
    return {f.graphql_name or to_camel_case(f.python_name) for f in cls.__strawberry_definition__.fields}  # type: ignore[attr-defined]


def _row_field(document: str) -> str:
    return document.split("{ r: ", 1)[1].split("(", 1)[0].split(" ", 1)[0].split("}", 1)[0].strip()


# The built-in plugins' names start with these (root fields lower camel case, types upper).
FIELD_PREFIXES = ("supplies", "counseling", "caseWork", "maternalCare")
TYPE_PREFIXES = ("Supplies", "Counseling", "CaseWork", "MaternalCare")


def test_every_plugin_field_has_a_row() -> None:
    # given the plugins' root fields and node types, as the schema built with every plugin has them (casework
    # merges several slices' types); then each has a row of the matrix
    reads = {_row_field(r.query) for r in READS}
    writes = {_row_field(w.mutation) for w in WRITES}
    schema = build_schema(Settings(), build_plugin_host(entry_points=False))._schema
    queries = {name for name in schema.query_type.fields if name.startswith(FIELD_PREFIXES)}
    mutations = {name for name in schema.mutation_type.fields if name.startswith(FIELD_PREFIXES)}
    assert _fields(SuppliesQuery) | _fields(CounselingQuery) <= queries  # the classes are in the schema
    assert _fields(SuppliesMutation) | _fields(CounselingMutation) <= mutations
    assert queries <= reads, queries - reads
    assert mutations == writes, mutations ^ writes
    node_types = {r.query.split("... on ", 1)[1].split(" ", 1)[0] for r in READS if "... on " in r.query}
    plugin_nodes = {
        name
        for name, t in schema.type_map.items()
        if name.startswith(TYPE_PREFIXES) and any(i.name == "Node" for i in getattr(t, "interfaces", []))
    }
    # SuppliesBatch has no node type of its own yet (it is traced by id): listed so that adding one adds a row
    assert plugin_nodes - node_types <= {"SuppliesBatch"}, plugin_nodes - node_types


def test_every_row_has_a_positive_control() -> None:
    for row in READS:
        assert any(v not in (NULL, U, F, N, [], "") for v in row.expect.values()), row.name
    for w in WRITES:
        assert OK in w.expect.values(), w.name
