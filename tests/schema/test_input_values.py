"""Hostile input values get a typed code at the edge and change nothing (issue 12).

Each rule lives once -- in a scalar, the cursor decoder, the ID decoder, the database-error translation -- so each
test sends one hostile value through several unrelated fields, core's and plugins', queries and mutations,
variables and literals: the same answer everywhere is what shows the rule sits at the root. Every case has a
positive control (the same document with a harmless value is accepted), so a refusal for another reason cannot
pass for the one under test.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select, table, text
from sqlalchemy.exc import DBAPIError

from core.plugins import build_plugin_host
from core.services.common import domain_error_for
from tests.schema.helpers import gid
from yunshegong.testing import Harness

NUL = "a\u0000b"
SURROGATE = "a\ud800b"


@dataclass
class World:
    kit: Harness
    token: str  # an organisation administrator's, with supplies and counseling enabled
    org: int
    volunteer: str
    community: str

    async def post(self, query: str, variables: dict[str, Any] | None = None, *, signed_in: bool = True) -> Any:
        # json.dumps escapes a lone surrogate as "\ud800", as a browser's JSON.stringify would send it.
        body = json.dumps({"query": query, "variables": variables or {}})
        headers = {"content-type": "application/json"}
        if signed_in:
            headers["Authorization"] = f"Bearer {self.token}"
        response = await self.kit.http.post("/graphql", content=body, headers=headers)
        assert response.status_code < 500, response.text
        return response.json()

    async def rows(self) -> dict[str, int]:
        """Rows in every table (as a platform administrator, whom row-level security shows everything)."""
        async with self.kit.service() as ctx:
            # The tables this database has (the shared metadata also holds other tests' fixture plugins').
            names = (
                await ctx.session.scalars(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
                )
            ).all()
            return {
                name: int(await ctx.session.scalar(select(func.count()).select_from(table(name))) or 0)
                for name in names
            }


@pytest.fixture
async def world(kit: Harness) -> World:
    org = await kit.organization(plugins=["supplies", "counseling"])
    admin = await kit.sign_in("organization_admin", org)
    assert admin.token
    volunteer = gid("Volunteer", await kit.volunteer(org))
    community = gid("Community", await kit.community(org))
    return World(kit, admin.token, org, volunteer, community)


def codes(body: dict[str, Any]) -> list[str | None]:
    """The codes of the top-level errors, and of the payload errors of every mutation answered."""
    found = [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []]
    for value in (body.get("data") or {}).values():
        if isinstance(value, dict) and isinstance(value.get("errors"), list):
            found += [e["code"] for e in value["errors"]]
    return found


def coercion_codes(body: dict[str, Any]) -> list[str | None]:
    """The codes of errors raised before execution (no `path`): refusals of the request's values."""
    return [(e.get("extensions") or {}).get("code") for e in body.get("errors") or [] if not e.get("path")]


async def assert_refused(
    world: World, query: str, variables: dict[str, Any], code: str | tuple[str, ...], **kw: Any
) -> None:
    """`query` with `variables` is refused with `code` before anything runs, and no table changed."""
    before = await world.rows()
    body = await world.post(query, variables, **kw)
    assert body.get("data") is None, body
    assert len(coercion_codes(body)) == 1, body
    assert coercion_codes(body)[0] in ((code,) if isinstance(code, str) else code), body
    assert "INTERNAL_ERROR" not in codes(body)
    assert await world.rows() == before


async def assert_accepted(world: World, query: str, variables: dict[str, Any], **kw: Any) -> None:
    """The positive control: the request's values pass coercion (the resolver may still refuse them)."""
    body = await world.post(query, variables, **kw)
    assert coercion_codes(body) == [], body
    assert "INTERNAL_ERROR" not in codes(body), body


# -- strings: NUL and unpaired surrogates -----------------------------------------------------------------------

# (name, document with one `$v`, its GraphQL type, a harmless value, signed in)
TEXT_FIELDS = [
    ("login username", 'mutation($v: String!) { login(input: {username: $v, password: "x"}) { token } }', "String!"),
    (
        "warehouse name",
        "mutation($v: String!) { suppliesCreateWarehouse(input: {name: $v}) { errors { code } } }",
        "String!",
    ),
    (
        "volunteer skill (in a list)",
        'mutation($v: String!) { registerVolunteer(input: {name: "张三", phone: "13800000000", mode: OFFLINE, '
        'skills: ["driving", $v]}) { errors { code } } }',
        "String!",
    ),
    (
        "programme prompt",
        'mutation($v: String!) { counselingCreateProgramme(input: {name: "睡眠", prompts: [$v]}) { errors { code } } }',
        "String!",
    ),
    ("search filter (query)", "query($v: String!) { helpRequests(filter: {search: $v}) { totalCount } }", "String!"),
    ("node id", "query($v: ID!) { node(id: $v) { id } }", "ID!"),
    (
        "id in an input",
        'mutation($v: ID!) { updateVolunteer(input: {id: $v, name: "李四"}) { errors { code } } }',
        "ID!",
    ),
]
TEXT_CASES = [
    pytest.param(doc, value, id=f"{name}-{label}")
    for name, doc, _ in TEXT_FIELDS
    for label, value in (("nul", NUL), ("surrogate", SURROGATE))
]


@pytest.mark.parametrize(("doc", "value"), TEXT_CASES)
async def test_text_postgresql_cannot_store_is_refused_as_a_variable(world: World, doc: str, value: str) -> None:
    # given a document taking one text value; when the value holds NUL or an unpaired surrogate
    # then it is INVALID_INPUT before anything runs, and nothing is written
    signed_in = "login" not in doc
    # (the HTTP layer may refuse a body carrying a lone surrogate before GraphQL sees it: INVALID_REQUEST)
    expected = "INVALID_INPUT" if value == NUL else ("INVALID_INPUT", "INVALID_REQUEST")
    await assert_refused(world, doc, {"v": value}, expected, signed_in=signed_in)
    await assert_accepted(world, doc, {"v": "a b\tc\n"}, signed_in=signed_in)


@pytest.mark.parametrize("name", [f[0] for f in TEXT_FIELDS if "login" not in f[1]])
async def test_unpaired_surrogates_are_refused_by_the_scalar_itself(world: World, name: str) -> None:
    # given the schema itself, without the HTTP body parser (subscriptions and any other transport use it so)
    from schema.build import build_schema

    doc = next(d for n, d, _ in TEXT_FIELDS if n == name)
    schema = build_schema(host=build_plugin_host(entry_points=False))
    # when a variable holds a lone surrogate, then coercion refuses it with INVALID_INPUT; nothing executes
    result = await schema.execute(doc, variable_values={"v": SURROGATE})
    assert result.data is None
    assert [e.extensions for e in result.errors or []] == [{"code": "INVALID_INPUT"}]


@pytest.mark.parametrize(("name", "doc", "type_"), TEXT_FIELDS, ids=[f[0] for f in TEXT_FIELDS])
async def test_text_postgresql_cannot_store_is_refused_as_a_literal(
    world: World, name: str, doc: str, type_: str
) -> None:
    # given the same documents with the value written inline (a lone surrogate escape is a syntax error there)
    literal = doc.replace(f"($v: {type_})", "").replace("$v", '"a\\u0000b"')
    harmless = doc.replace(f"($v: {type_})", "").replace("$v", '"ab"')
    signed_in = "login" not in doc
    await assert_refused(world, literal, {}, "INVALID_INPUT", signed_in=signed_in)
    await assert_accepted(world, harmless, {}, signed_in=signed_in)


# -- numbers ---------------------------------------------------------------------------------------------------

COMPLETE = "mutation($v: Decimal!) { completeAssignment(input: {id: $id, hours: $v}) { errors { code } } }"
DONATION = (
    'mutation($v: Money!) { suppliesReceiveDonation(input: {donorId: $id, amount: $v, receiptNo: "R1"}) '
    "{ errors { code } } }"
)
ALLOCATE = (
    'mutation($v: Money!) { suppliesAllocate(input: {donationId: $id, amount: $v, purpose: "p"}) { errors { code } } }'
)

NUMBER_CASES = [
    # (document, refused value, code, harmless value)
    *[
        (COMPLETE, v, "INVALID_INPUT", "2.5")
        for v in ("NaN", "sNaN", "Infinity", "-Infinity", "1e999999999", "1e3", " ", True, "１", "١٢")
    ],
    (COMPLETE, "12345678901234567890", "OUT_OF_RANGE", 3),
    (COMPLETE, "0.1234567", "OUT_OF_RANGE", 2.5),
    *[
        (DONATION, v, "INVALID_INPUT", "1200.50")
        for v in ("NaN", "Infinity", "1e3", "1e999999999", 12.5, "1.234", "１２", "١٢")
    ],
    (DONATION, "12345678901234.00", "INVALID_INPUT", 1200),
    *[(ALLOCATE, v, "INVALID_INPUT", "10.00") for v in ("sNaN", "-Infinity", "1E3")],
]


def _with_id(doc: str) -> str:
    # The records named need not exist: a value refused during coercion never reaches a lookup.
    return doc.replace("$id", '"' + gid("Assignment", 1) + '"')


@pytest.mark.parametrize(("doc", "value", "code", "harmless"), NUMBER_CASES)
async def test_numbers_that_are_not_plain_finite_decimals_are_refused(
    world: World, doc: str, value: Any, code: str, harmless: Any
) -> None:
    await assert_refused(world, _with_id(doc), {"v": value}, code)
    await assert_accepted(world, _with_id(doc), {"v": harmless})


@pytest.mark.parametrize(
    ("literal", "harmless"),
    [
        ("completeAssignment(input: {id: $id, hours: 1e3})", "completeAssignment(input: {id: $id, hours: 2.5})"),
        ('completeAssignment(input: {id: $id, hours: "NaN"})', 'completeAssignment(input: {id: $id, hours: "2.5"})'),
        (
            'suppliesReceiveDonation(input: {donorId: $id, amount: 1e3, receiptNo: "R"})',
            'suppliesReceiveDonation(input: {donorId: $id, amount: "1000", receiptNo: "R"})',
        ),
        (
            'registerVolunteer(input: {name: "张", phone: "13800000000", mode: OFFLINE, latitude: 1e999999999})',
            'registerVolunteer(input: {name: "张", phone: "13800000000", mode: OFFLINE, latitude: 1.5})',
        ),
        (
            "suppliesReceive(input: {warehouseId: $id, itemId: $id, quantity: 2147483648})",
            "suppliesReceive(input: {warehouseId: $id, itemId: $id, quantity: 2147483647})",
        ),
    ],
)
async def test_number_literals_are_read_as_written(world: World, literal: str, harmless: str) -> None:
    # given a number written inline: 1e3 is an exponent, 1e999999999 is infinity to Python, 2^31 is past Int
    await assert_refused(world, _with_id(f"mutation {{ x: {literal} {{ errors {{ code }} }} }}"), {}, "INVALID_INPUT")
    await assert_accepted(world, _with_id(f"mutation {{ x: {harmless} {{ errors {{ code }} }} }}"), {})


# -- dates and times -------------------------------------------------------------------------------------------

DATETIME_FIELDS = [
    'mutation($v: DateTime!) { submitHelpRequest(input: {communityId: $community, title: "送药", category: MEDICINE, '
    'urgency: HIGH, requesterName: "王阿姨", requesterPhone: "13812345678", neededBy: $v}) { errors { code } } }',
    "mutation($v: DateTime!) { addAvailabilityException(input: {volunteerId: $volunteer, start: $v, "
    'end: "2100-01-01T00:00:00+08:00"}) { errors { code } } }',
    "mutation($v: DateTime!) { recordVolunteerTraining(input: {volunteerId: $volunteer, trainingId: $training, "
    "completedAt: $v}) { errors { code } } }",
    "query($v: DateTime!) { helpRequests(filter: {neededBefore: $v}) { totalCount } }",
    "query($v: DateTime!) { suppliesReport(since: $v) { onHand } }",
    "query($v: DateTime!) { counselingSessions(filter: {from: $v}) { totalCount } }",
]
DATETIME_VALUES = [
    ("0001-01-01T00:00:00+08:00", "OUT_OF_RANGE"),  # before the epoch of anything, and overflows in UTC
    ("9999-12-31T23:59:59-08:00", "OUT_OF_RANGE"),
    ("1899-12-31T23:59:59+00:00", "OUT_OF_RANGE"),
    ("2030-01-01T00:00:00", "INVALID_INPUT"),  # no offset: no instant
    ("soon", "INVALID_INPUT"),
    ("2030-02-30T00:00:00+08:00", "INVALID_INPUT"),
    (1893456000, "INVALID_INPUT"),
]


def _refs(world: World, doc: str) -> str:
    return (
        doc.replace("$community", f'"{world.community}"')
        .replace("$volunteer", f'"{world.volunteer}"')
        .replace("$training", '"' + gid("Training", 1) + '"')
    )


@pytest.mark.parametrize("value", [v for v, _ in DATETIME_VALUES], ids=[str(v) for v, _ in DATETIME_VALUES])
@pytest.mark.parametrize("doc", DATETIME_FIELDS, ids=lambda d: d.split("{")[1].split("(")[0].strip())
async def test_date_times_far_off_or_without_offset_are_refused(world: World, doc: str, value: Any) -> None:
    code = dict(DATETIME_VALUES)[value]
    await assert_refused(world, _refs(world, doc), {"v": value}, code)
    await assert_accepted(world, _refs(world, doc), {"v": "2099-12-01T18:00:00+08:00"})


DATE_FIELDS = [
    "mutation($v: Date!) { counselingEnrol(input: {clientId: $id, programmeId: $id, startsOn: $v}) "
    "{ errors { code } } }",
    "mutation($v: Date) { suppliesReceive(input: {warehouseId: $id, itemId: $id, quantity: 1, expiresOn: $v}) "
    "{ errors { code } } }",
]


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("0001-01-01", "OUT_OF_RANGE"),
        ("9999-12-31", "OUT_OF_RANGE"),
        ("2030-02-30", "INVALID_INPUT"),
        (20300101, "INVALID_INPUT"),
    ],
)
@pytest.mark.parametrize("doc", DATE_FIELDS, ids=["counselingEnrol", "suppliesReceive"])
async def test_dates_far_off_are_refused(world: World, doc: str, value: Any, code: str) -> None:
    await assert_refused(world, _with_id(doc), {"v": value}, code)
    await assert_accepted(world, _with_id(doc), {"v": "2030-02-28"})


async def test_times_carry_no_offset(world: World) -> None:
    doc = _refs(
        world,
        "mutation($v: Time!) { addAvailabilityWindow(input: {volunteerId: $volunteer, weekday: 1, start: $v, "
        'end: "17:00"}) { errors { code } } }',
    )
    # an offset on one end and not on the other made the two incomparable
    await assert_refused(world, doc, {"v": "09:00+08:00"}, "INVALID_INPUT")
    await assert_refused(world, doc, {"v": "25:00"}, "INVALID_INPUT")
    await assert_accepted(world, doc, {"v": "09:00"})


# -- cursors ---------------------------------------------------------------------------------------------------


def cursor(payload: Any) -> str:
    # json, not orjson: orjson refuses integers past 64 bits, which is what some of these carry
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


# (connection, its ordering's name, a well-formed position in it)
CONNECTIONS = [
    ("helpRequests", "urgency", [2, "2030-01-01T00:00:00+00:00", 1]),
    ("helpRequests(orderBy: NEWEST)", "newest", ["2030-01-01T00:00:00+00:00", 1]),
    ("communities", "community_name", ["粉巷", 1]),
    ("suppliesWarehouses", "name", ["仓库", 1]),
    ("counselingEnrolments", "counseling_enrolments_newest", ["2030-01-01", 1]),
    ("auditLog", "audit_newest", [1]),
]
HOSTILE_CURSORS = {
    "garbage": lambda name, good: "!!!not base64",
    "a dict": lambda name, good: cursor({"a": 1}),
    "a number": lambda name, good: cursor(10**30),
    "another ordering": lambda name, good: cursor(["something_else", good]),
    "too few values": lambda name, good: cursor([name, good[:-1]]),
    "a huge id": lambda name, good: cursor([name, [*good[:-1], 10**30]]),
    "a negative huge id": lambda name, good: cursor([name, [*good[:-1], -(2**63) - 1]]),
    "a dict value": lambda name, good: cursor([name, [{"a": 1}, *good[1:]]]),
    "a list value": lambda name, good: cursor([name, [[1, 2], *good[1:]]]),
    "a null value": lambda name, good: cursor([name, [None, *good[1:]]]),
    "a boolean id": lambda name, good: cursor([name, [*good[:-1], True]]),
    "a text id": lambda name, good: cursor([name, [*good[:-1], "1"]]),
    "a NUL in text": lambda name, good: cursor([name, ["a\u0000", *good[1:]]]),
    "a time that is no time": lambda name, good: _timed(name, good, "soon"),
    "a time overflowing UTC": lambda name, good: _timed(name, good, "0001-01-01T00:00:00+08:00"),
    "very long": lambda name, good: cursor([name, ["x" * 5000, *good[1:]]]),
}


def _timed(name: str, good: list[Any], instead: str) -> str | None:
    """The cursor with its time (or date) replaced by `instead`; None for an ordering without one."""
    if not any(isinstance(v, str) and v[:4].isdigit() for v in good):
        return None
    return cursor([name, [instead if isinstance(v, str) and v[:4].isdigit() else v for v in good]])


@pytest.mark.parametrize("hostile", list(HOSTILE_CURSORS))
@pytest.mark.parametrize(("field", "name", "good"), CONNECTIONS, ids=[c[0] for c in CONNECTIONS])
async def test_hand_made_cursors_are_invalid_cursor(
    world: World, field: str, name: str, good: list[Any], hostile: str
) -> None:
    # given a connection and a cursor made by hand
    made = HOSTILE_CURSORS[hostile](name, good)
    if made is None:
        pytest.skip("this ordering has no time to break")
    paged = (
        f"{field}(first: 5, after: $after)" if "(" not in field else field.replace(")", ", first: 5, after: $after)")
    )
    doc = f"query($after: String!) {{ {paged} {{ totalCount }} }}"
    # when it pages on from there
    body = await world.post(doc, {"after": made})
    # then the answer is INVALID_CURSOR (or, for one PostgreSQL cannot even carry, INVALID_INPUT), never internal
    if body.get("data") is not None or codes(body) != ["INVALID_INPUT"]:
        assert codes(body) == ["INVALID_CURSOR"], body
    # and a well-formed cursor of the same ordering pages on
    ok = await world.post(doc, {"after": cursor([name, good])})
    assert not ok.get("errors"), ok


# -- global IDs ------------------------------------------------------------------------------------------------


def b64(raw: str) -> str:
    return base64.b64encode(raw.encode()).decode()


MALFORMED_IDS = [
    "",
    "!!!",
    "Vm9sdW50ZWVy",  # "Volunteer", no key
    b64("Volunteer:"),
    b64(":5"),
    b64("Volunteer:-1"),
    b64("Volunteer:0"),
    b64("Volunteer:99999999999999999999"),
    b64("Volunteer:9223372036854775808"),
    b64("Volunteer:1e3"),
    b64("Volunteer: 5"),
    b64("Volunteer:٥"),  # an Arabic-Indic five, which Python's int() reads
    b64("NoSuchType:5"),
    "x" * 10_000,
]


@pytest.mark.parametrize("raw", MALFORMED_IDS, ids=range(len(MALFORMED_IDS)))
async def test_malformed_global_ids_are_invalid_id(world: World, raw: str) -> None:
    # node(id:) answers it at the top level
    body = await world.post("query($id: ID!) { node(id: $id) { id } }", {"id": raw})
    assert codes(body) == ["INVALID_ID"], body
    # an input's ID is a payload error on the field, and nothing is written
    before = await world.rows()
    body = await world.post(
        'mutation($id: ID!) { updateVolunteer(input: {id: $id, name: "李四"}) { errors { code field } } }', {"id": raw}
    )
    assert body["data"]["updateVolunteer"]["errors"] == [{"code": "INVALID_ID", "field": ["input", "id"]}], body
    # and an ID for a filter of a query is a top-level INVALID_ID (one of a type nobody has matches nothing)
    body = await world.post("query($id: ID!) { auditLog(recordId: $id) { totalCount } }", {"id": raw})
    assert codes(body) == ([] if raw == b64("NoSuchType:5") else ["INVALID_ID"]), body
    assert await world.rows() == before


async def test_a_well_formed_id_of_a_missing_record_is_null_not_invalid(world: World) -> None:
    body = await world.post("query($id: ID!) { node(id: $id) { id } }", {"id": gid("Volunteer", 2**63 - 1)})
    assert body == {"data": {"node": None}}


# -- the database's refusals -----------------------------------------------------------------------------------

# Statements each breaking one kind of constraint or data rule, with no service check in front, and the answer
# the generic translation gives (code, field). `:org` and `:vol` are an existing organisation and volunteer.
VIOLATIONS = {
    "unique": (
        "INSERT INTO supplies_warehouses (organization_id, name, address) VALUES (:org, '同名', '')",
        ("ALREADY_EXISTS", ("input", "name")),
    ),
    "foreign key": (
        "UPDATE volunteers SET district_id = 999999999 WHERE id = :vol",
        ("NOT_FOUND", ("input", "districtId")),
    ),
    "check": (
        "UPDATE volunteers SET latitude = 91, longitude = 0 WHERE id = :vol",
        ("OUT_OF_RANGE", ("input", "latitude")),
    ),
    "check on a vocabulary": (
        "UPDATE volunteers SET mode = 'teleport' WHERE id = :vol",
        ("INVALID_INPUT", ("input", "mode")),
    ),
    "too long": ("UPDATE volunteers SET name = repeat('x', 10000) WHERE id = :vol", ("OUT_OF_RANGE", None)),
    "numeric overflow": ("SELECT CAST(1e20 AS numeric(6, 2))", ("OUT_OF_RANGE", None)),
    "date overflow": ("SELECT CAST('0000-01-01' AS date)", ("OUT_OF_RANGE", None)),
    "NUL byte": ("SELECT CAST(:nul AS text)", ("INVALID_INPUT", None)),
    "int64 overflow": ("SELECT CAST(:huge AS bigint)", ("OUT_OF_RANGE", None)),
    "empty range": (
        "SELECT tstzrange(now(), now() - interval '1 day')",
        ("INVALID_INPUT", None),
    ),
}


@pytest.mark.parametrize("kind", list(VIOLATIONS))
async def test_database_refusals_translate_to_typed_errors(world: World, kind: str) -> None:
    # given a warehouse named 同名 and a volunteer
    sql, (code, field) = VIOLATIONS[kind]
    async with world.kit.service() as ctx:
        await ctx.session.execute(
            text("INSERT INTO supplies_warehouses (organization_id, name, address) VALUES (:org, '同名', '')"),
            {"org": world.org},
        )
    vol = int(base64.b64decode(world.volunteer).decode().split(":")[1])
    params = {"org": world.org, "vol": vol, "nul": NUL, "huge": 2**70}
    # when a statement breaks the rule
    with pytest.raises(DBAPIError) as raised:
        async with world.kit.service() as ctx:
            await ctx.session.execute(text(sql), {k: v for k, v in params.items() if f":{k}" in sql})
    # then the translation every write goes through answers it with a code (and a field where it can tell)
    error = domain_error_for(raised.value)
    assert error is not None, raised.value
    assert (error.code, error.errors[0].field) == (code, field)


@pytest.mark.parametrize(
    "sql",
    [
        "SELEC 1",  # a syntax error
        "SELECT 1 / 0",  # division by zero (class 22, but no value a client sends causes it)
        "SELECT CAST('abc' AS integer)",  # a bad cast in SQL the service wrote
        "UPDATE volunteers SET name = NULL WHERE id = :vol",  # a NOT NULL a service forgot to fill
    ],
    ids=["syntax", "division by zero", "bad cast", "not null"],
)
async def test_an_unexpected_database_failure_stays_unexpected(world: World, sql: str) -> None:
    # given a statement failing through the service's own fault, not the caller's input
    vol = int(base64.b64decode(world.volunteer).decode().split(":")[1])
    with pytest.raises(DBAPIError) as raised:
        async with world.kit.service() as ctx:
            await ctx.session.execute(text(sql), {"vol": vol} if ":vol" in sql else {})
    # then no user error hides it: it stays an internal error, logged with its traceback
    assert domain_error_for(raised.value) is None


async def test_a_violation_reaching_the_mutation_wrapper_is_typed_and_rolled_back(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a warehouse, and supplies' own name check and constraint map out of the way (as under a race, where
    # the check passes for both writers), so that only the database stands between a second one and the table
    from plugins.supplies import services as supplies

    doc = 'mutation { suppliesCreateWarehouse(input: {name: "总仓"}) { warehouse { id } errors { code field } } }'
    assert (await world.post(doc))["data"]["suppliesCreateWarehouse"]["errors"] == []
    monkeypatch.setattr(supplies, "_UNIQUE", {})
    monkeypatch.setattr(supplies, "create_warehouse", _without_name_check(supplies.create_warehouse))
    before = await world.rows()
    # when a second one of that name is created
    body = await world.post(doc)
    # then it is ALREADY_EXISTS on the name, and nothing was written (no audit entry either)
    assert body["data"]["suppliesCreateWarehouse"] == {
        "warehouse": None,
        "errors": [{"code": "ALREADY_EXISTS", "field": ["input", "name"]}],
    }
    assert await world.rows() == before


def _without_name_check(create: Any) -> Any:
    """create_warehouse with its look-up of the name answering "no such warehouse"."""

    async def create_warehouse(ctx: Any, name: str, address: str = "") -> Any:
        original = ctx.session.scalar

        async def scalar(statement: Any, *args: Any, **kwargs: Any) -> Any:
            if "supplies_warehouses" in str(statement):
                return None
            return await original(statement, *args, **kwargs)

        ctx.session.scalar = scalar
        try:
            return await create(ctx, name, address)
        finally:
            del ctx.session.scalar

    return create_warehouse
