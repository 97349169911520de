"""Organisations cannot see or touch each other's supplies (row-level security, through the real /graphql).

Organisation A (supplies enabled) keeps warehouses, items, batches, donors with contacts, money, allocations
and distributions; organisation B (supplies enabled too) keeps a little of its own. B's staff see only B's
through every supplies root field, get null from node(id:) for every supplies node type, and get NOT_FOUND --
exactly what a missing id gets -- from every supplies mutation given one of A's ids, and A's rows stay as
they were. Positive control everywhere: A's own staff see and do the same thing through the same document.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry import relay
from strawberry.utils.str_converters import to_camel_case

from core.database import create_sessionmaker
from core.errors import DomainError
from core.services import common
from core.services.context import ServiceContext, Viewer
from core.vocab import RequestStatus
from plugins.supplies import services
from plugins.supplies.types import SuppliesMutation, SuppliesQuery
from tests.factories import Factory
from tests.schema.helpers import gid

Api = Any  # tests/plugins/conftest.py `api`: (document, variables, role=..., org=...) -> response JSON

# The roles of B that hold supplies.manage by default: each must see none of A's supplies.
B_ROLES = ("organization_admin", "social_worker")
TABLES = (
    "supplies_items",
    "supplies_warehouses",
    "supplies_donors",
    "supplies_batches",
    "supplies_balances",
    "supplies_movements",
    "supplies_distributions",
    "supplies_money_donations",
    "supplies_money_allocations",
    "supplies_idempotency_keys",
)
MISSING_PK = 987_654_321

CREATE_WAREHOUSE = """mutation($name: String!) { suppliesCreateWarehouse(input: {name: $name}) {
  warehouse { id name } errors { code field } } }"""
CREATE_ITEM = """mutation($name: String!, $category: SuppliesItemCategory!, $unit: String!, $batched: Boolean!) {
  suppliesCreateItem(input: {name: $name, category: $category, unit: $unit, batched: $batched}) {
  item { id name } errors { code field } } }"""
CREATE_DONOR = """mutation($name: String!, $contact: String!) {
  suppliesCreateDonor(input: {name: $name, kind: ORGANIZATION, contact: $contact}) {
  donor { id } errors { code field } } }"""
RECEIVE = """mutation($input: SuppliesReceiveInput!) { suppliesReceive(input: $input) {
  movement { id batch { id } quantity } errors { code field } } }"""
DISTRIBUTE = """mutation($input: SuppliesDistributeInput!) { suppliesDistribute(input: $input) {
  distribution { id status } errors { code field } } }"""
DISPATCH = """mutation($id: ID!) { suppliesDispatch(input: {id: $id}) {
  distribution { id status } errors { code field } } }"""
CONFIRM = """mutation($id: ID!) { suppliesConfirmDelivery(input: {id: $id, delivered: 25}) {
  distribution { id status } errors { code field } } }"""
CANCEL = """mutation($id: ID!) { suppliesCancelDistribution(input: {id: $id, reason: "改期"}) {
  distribution { id status } errors { code field } } }"""
RECEIVE_MONEY = """mutation($donor: ID!, $amount: Money!, $receipt: String!, $key: String) {
  suppliesReceiveDonation(input: {donorId: $donor, amount: $amount, receiptNo: $receipt, idempotencyKey: $key}) {
  donation { id amount unallocated } errors { code field } } }"""
ALLOCATE = """mutation($donation: ID!, $amount: Money!) {
  suppliesAllocate(input: {donationId: $donation, amount: $amount, purpose: "采购口罩"}) {
  allocation { id donation { id unallocated } } errors { code field } } }"""
TRANSFER = """mutation($batch: ID!, $from: ID!, $to: ID!, $quantity: Int!, $key: String) {
  suppliesTransfer(input: {batchId: $batch, fromWarehouseId: $from, toWarehouseId: $to, quantity: $quantity,
  idempotencyKey: $key}) { movement { id } errors { code field } } }"""
ADJUST = """mutation($batch: ID!, $warehouse: ID!, $delta: Int!) {
  suppliesAdjust(input: {batchId: $batch, warehouseId: $warehouse, delta: $delta, reason: "盘点"}) {
  movement { id } errors { code field } } }"""
REVERSE = """mutation($movement: ID!) { suppliesReverse(input: {movementId: $movement, reason: "更正"}) {
  movement { id } errors { code field } } }"""


@dataclass
class Org:
    """One organisation's supplies, by global ID."""

    id: int
    warehouse: str = ""
    other_warehouse: str = ""
    item: str = ""
    batched_item: str = ""
    donor: str = ""
    batch: str = ""
    receipt: str = ""
    adjustment: str = ""
    donation: str = ""
    allocation: str = ""
    to_community: str = ""  # dispatched
    to_request: str = ""  # planned
    to_person: str = ""  # planned, for the cancel attempt
    community: str = ""
    request: str = ""

    def who(self, role: str = "organization_admin") -> dict[str, Any]:
        return {"role": role, "org": self.id}


def _data(body: dict[str, Any], field: str) -> Any:
    assert not body.get("errors"), body
    return body["data"][field]


async def _ok(api: Api, document: str, variables: dict[str, Any], field: str, who: dict[str, Any]) -> Any:
    payload = _data(await api(document, variables, **who), field)
    assert payload["errors"] == [], payload
    return payload


@asynccontextmanager
async def _staff(engine: AsyncEngine, org_id: int) -> AsyncIterator[ServiceContext]:
    """The service layer as an organisation's supplies staff, committed at the end."""
    viewer = Viewer(
        label="物资员",
        role="organization_admin",
        organization_id=org_id,
        extra_permissions=frozenset({"supplies.manage"}),
    )
    async with create_sessionmaker(engine)() as session, session.begin():
        yield ServiceContext(session, viewer)


def _with_missing_ids(variables: Any, ids: list[str]) -> Any:
    """The same variables with each of `ids` replaced by an id of the same type that exists nowhere (a
    different one for each, so that e.g. two warehouses stay two)."""
    if isinstance(variables, dict):
        return {k: _with_missing_ids(v, ids) for k, v in variables.items()}
    if isinstance(variables, str) and variables in ids:
        return gid(relay.GlobalID.from_id(variables).type_name, MISSING_PK + ids.index(variables))
    return variables


async def _snapshot(engine: AsyncEngine, org_id: int) -> dict[str, list[Any]]:
    """Every supplies row of the organisation, as a platform administrator (who sees every organisation)."""
    viewer = Viewer(label="auditor", role="platform_admin", organization_id=org_id)
    async with create_sessionmaker(engine)() as session, session.begin():
        ServiceContext(session, viewer)
        return {
            table: [
                tuple(row)
                for row in (
                    await session.execute(
                        text(f"SELECT * FROM {table} WHERE organization_id = :org ORDER BY 1, 2"), {"org": org_id}
                    )
                ).all()
            ]
            for table in TABLES
        }


@pytest.fixture
async def orgs(api: Api, make: Factory, engine: AsyncEngine, clock: Any) -> tuple[Org, Org]:
    """A with every kind of supplies record; B with a warehouse, an item, a donor and 7 bags of rice."""
    a = Org((await make.organization_using("supplies", "甲机构")).id)
    b = Org((await make.organization_using("supplies", "乙机构")).id)
    community = await make.community(organization_id=a.id, name="甲社区")
    request = await make.request(community, status=RequestStatus.SUBMITTED)
    a.community, a.request = gid("Community", community.id), gid("HelpRequest", request.id)

    def created(payload: dict[str, Any], key: str) -> str:
        return str(payload[key]["id"])

    for org, names in ((a, ("甲仓库", "甲二仓库")), (b, ("乙仓库", "乙二仓库"))):
        org.warehouse, org.other_warehouse = [
            created(await _ok(api, CREATE_WAREHOUSE, {"name": n}, "suppliesCreateWarehouse", org.who()), "warehouse")
            for n in names
        ]
    a.item = created(
        await _ok(
            api,
            CREATE_ITEM,
            {"name": "甲口罩", "category": "MEDICAL_PROTECTION", "unit": "只", "batched": False},
            "suppliesCreateItem",
            a.who(),
        ),
        "item",
    )
    a.batched_item = created(
        await _ok(
            api,
            CREATE_ITEM,
            {"name": "甲奶粉", "category": "INFANT_SUPPLIES", "unit": "罐", "batched": True},
            "suppliesCreateItem",
            a.who(),
        ),
        "item",
    )
    b.item = created(
        await _ok(
            api,
            CREATE_ITEM,
            {"name": "乙大米", "category": "FOOD", "unit": "袋", "batched": False},
            "suppliesCreateItem",
            b.who(),
        ),
        "item",
    )
    a.donor = created(
        await _ok(api, CREATE_DONOR, {"name": "甲企业", "contact": "13800009999"}, "suppliesCreateDonor", a.who()),
        "donor",
    )
    b.donor = created(
        await _ok(api, CREATE_DONOR, {"name": "乙捐赠人", "contact": "029-22222222"}, "suppliesCreateDonor", b.who()),
        "donor",
    )

    # goods from a donor
    for org, quantity in ((a, 100), (b, 7)):
        line = {"warehouseId": org.warehouse, "itemId": org.item, "quantity": quantity, "donorId": org.donor}
        movement = (await _ok(api, RECEIVE, {"input": line}, "suppliesReceive", org.who()))["movement"]
        org.receipt, org.batch = movement["id"], movement["batch"]["id"]
    formula = {
        "warehouseId": a.warehouse,
        "itemId": a.batched_item,
        "quantity": 24,
        "batchCode": "F-2112",
        "expiresOn": (clock.now + timedelta(days=45)).date().isoformat(),
    }
    await _ok(api, RECEIVE, {"input": formula}, "suppliesReceive", a.who())
    move = {"batch": a.batch, "from": a.warehouse, "to": a.other_warehouse, "quantity": 10}
    await _ok(api, TRANSFER, move, "suppliesTransfer", a.who())
    found = {"batch": a.batch, "warehouse": a.warehouse, "delta": 5}
    a.adjustment = (await _ok(api, ADJUST, found, "suppliesAdjust", a.who()))["movement"]["id"]
    masks = {"warehouseId": a.warehouse, "itemId": a.item}
    sent = await _ok(
        api, DISTRIBUTE, {"input": masks | {"quantity": 30, "communityId": a.community}}, "suppliesDistribute", a.who()
    )
    a.to_community = sent["distribution"]["id"]
    await _ok(api, DISPATCH, {"id": a.to_community}, "suppliesDispatch", a.who())
    planned = {"warehouseId": a.warehouse, "itemId": a.batched_item, "quantity": 4, "requestId": a.request}
    a.to_request = (await _ok(api, DISTRIBUTE, {"input": planned}, "suppliesDistribute", a.who()))["distribution"]["id"]
    person = {"warehouseId": a.warehouse, "itemId": a.item, "quantity": 1, "recipient": "居民"}
    a.to_person = (await _ok(api, DISTRIBUTE, {"input": person}, "suppliesDistribute", a.who()))["distribution"]["id"]
    money = {"donor": a.donor, "amount": "5000", "receipt": "甲-001"}
    a.donation = (await _ok(api, RECEIVE_MONEY, money, "suppliesReceiveDonation", a.who()))["donation"]["id"]
    allocated = await _ok(api, ALLOCATE, {"donation": a.donation, "amount": "1200"}, "suppliesAllocate", a.who())
    a.allocation = allocated["allocation"]["id"]
    return a, b


# -- queries ------------------------------------------------------------------------------------------------------

# Every root field of SuppliesQuery: (document, A's marker that must show for A and never for B, B's answer).
REPORT_ROW = "{ category received distributed adjusted onHand balanced }"
B_REPORT = [{"category": "FOOD", "received": 7, "distributed": 0, "adjusted": 0, "onHand": 7, "balanced": True}]


def _by(key: str, received: int, on_hand: int) -> dict[str, Any]:
    return {"key": key, "received": received, "distributed": 0, "onHand": on_hand}


def _page(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {"totalCount": len(nodes), "nodes": list(nodes)}


B_WAREHOUSES = _page({"name": "乙二仓库"}, {"name": "乙仓库"})
QUERIES: dict[str, list[tuple[str, str, Any]]] = {
    "suppliesReport": [(f"{{ suppliesReport {REPORT_ROW} }}", "MEDICAL_PROTECTION", B_REPORT)],
    "suppliesStock": [
        (
            "{ suppliesStock { item { name } warehouse { name } batch { code } onHand } }",
            "甲口罩",
            [{"item": {"name": "乙大米"}, "warehouse": {"name": "乙仓库"}, "batch": {"code": ""}, "onHand": 7}],
        ),
        ("{ suppliesStock(nearExpiryDays: 60) { item { name } } }", "甲奶粉", []),
        (
            "{ suppliesStock(below: 30) { item { name } onHand } }",
            "甲奶粉",
            [{"item": {"name": "乙大米"}, "onHand": 7}],
        ),
    ],
    "suppliesReceivedByDonor": [
        (
            "{ suppliesReceivedByDonor { donor { name } items money } }",
            "甲企业",
            [{"donor": {"name": "乙捐赠人"}, "items": 7, "money": "0.00"}],
        )
    ],
    "suppliesDonors": [
        (
            "{ suppliesDonors { totalCount nodes { name kind contact } } }",
            "13800009999",
            _page({"name": "乙捐赠人", "kind": "ORGANIZATION", "contact": "029-22222222"}),
        )
    ],
    "suppliesWarehouses": [("{ suppliesWarehouses { totalCount nodes { name } } }", "甲仓库", B_WAREHOUSES)],
    "suppliesItems": [
        (
            "{ suppliesItems { totalCount nodes { name category } } }",
            "甲奶粉",
            _page({"name": "乙大米", "category": "FOOD"}),
        )
    ],
    "suppliesDonations": [("{ suppliesDonations { totalCount nodes { receiptNo amount } } }", "甲-001", _page())],
    "suppliesAllocations": [("{ suppliesAllocations { totalCount nodes { purpose amount } } }", "采购口罩", _page())],
    "suppliesDistributions": [
        (
            "{ suppliesDistributions { totalCount nodes { status quantity item { name } warehouse { name }"
            " community { name } request { id } recipient } } }",
            "甲奶粉",
            _page(),
        )
    ],
    "suppliesMovements": [
        (
            "{ suppliesMovements { totalCount nodes { kind quantity warehouse { name } batch { item { name } } } } }",
            "甲仓库",
            _page(
                {
                    "kind": "RECEIPT",
                    "quantity": 7,
                    "warehouse": {"name": "乙仓库"},
                    "batch": {"item": {"name": "乙大米"}},
                }
            ),
        )
    ],
    "suppliesReportBy": [
        ("{ suppliesReportBy(by: CATEGORY) { key received distributed onHand } }", "MEDICAL", [_by("FOOD", 7, 7)]),
        ("{ suppliesReportBy(by: WAREHOUSE) { key received distributed onHand } }", "甲仓库", [_by("乙仓库", 7, 7)]),
        ("{ suppliesReportBy(by: COMMUNITY) { key received distributed onHand } }", "甲社区", [_by("—", 7, 0)]),
        ("{ suppliesReportBy(by: DONOR) { key received distributed onHand } }", "甲企业", [_by("乙捐赠人", 7, 7)]),
    ],
    "suppliesReportByCsv": [
        ("{ suppliesReportByCsv(by: CATEGORY) }", "medical", "category,received,distributed,on_hand\nfood,7,0,7\n"),
        (
            "{ suppliesReportByCsv(by: WAREHOUSE) }",
            "甲仓库",
            "warehouse,received,distributed,on_hand\n乙仓库,7,0,7\n",
        ),
        ("{ suppliesReportByCsv(by: COMMUNITY) }", "甲社区", "community,received,distributed,on_hand\n—,7,0,0\n"),
        ("{ suppliesReportByCsv(by: DONOR) }", "甲企业", "donor,received,distributed,on_hand\n乙捐赠人,7,0,7\n"),
    ],
    "suppliesReportCsv": [
        (
            "{ suppliesReportCsv }",
            "medical_protection",
            "category,received,distributed,adjusted,on_hand,balanced\nfood,7,0,0,7,true\n",
        )
    ],
}
STOCK = "{ suppliesStock { item { name } warehouse { name } onHand } }"
# Root fields taking an id of A's (answered separately below).
BY_ID_QUERIES = {"suppliesTrace"}
TRACE = """query($batch: ID!) { suppliesTrace(batchId: $batch) { id donor { name }
  movements { totalCount nodes { id kind quantity } } } }"""


def test_every_supplies_root_field_is_in_the_matrix() -> None:
    fields = {to_camel_case(f.python_name) for f in SuppliesQuery.__strawberry_definition__.fields}  # type: ignore[attr-defined]
    assert fields == set(QUERIES) | BY_ID_QUERIES


@pytest.mark.parametrize("role", B_ROLES)
async def test_b_sees_none_of_as_supplies_through_any_root_field(api: Api, orgs: tuple[Org, Org], role: str) -> None:
    a, b = orgs
    for field, cases in QUERIES.items():
        for document, a_marker, b_answer in cases:
            # given A's supplies, when A's staff ask, then they see them (positive control) ...
            mine = _data(await api(document, **a.who(role)), field)
            assert a_marker in json.dumps(mine, ensure_ascii=False), (document, mine)
            # ... and when B's staff ask the same, they see exactly B's own, nothing of A's
            theirs = _data(await api(document, **b.who(role)), field)
            assert theirs == b_answer, (document, theirs)
            assert a_marker not in json.dumps(theirs, ensure_ascii=False)


@pytest.mark.parametrize("role", B_ROLES)
async def test_tracing_as_batch_answers_b_like_a_missing_batch(api: Api, orgs: tuple[Org, Org], role: str) -> None:
    a, b = orgs
    mine = _data(await api(TRACE, {"batch": a.batch}, **a.who(role)), "suppliesTrace")
    assert mine["donor"] == {"name": "甲企业"}
    assert [m["kind"] for m in mine["movements"]["nodes"]] == [
        "RECEIPT",
        "TRANSFER_OUT",
        "TRANSFER_IN",
        "ADJUSTMENT",
        "DISTRIBUTION",
        "DISTRIBUTION",
    ]
    theirs_own = _data(await api(TRACE, {"batch": b.batch}, **b.who(role)), "suppliesTrace")
    assert [m["kind"] for m in theirs_own["movements"]["nodes"]] == ["RECEIPT"]
    theirs = await api(TRACE, {"batch": a.batch}, **b.who(role))
    missing = await api(TRACE, {"batch": gid("SuppliesBatch", MISSING_PK)}, **b.who(role))
    assert theirs["data"] is None
    assert theirs["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert [e["extensions"] for e in theirs["errors"]] == [e["extensions"] for e in missing["errors"]]


# -- node(id:) -----------------------------------------------------------------------------------------------------

NODE = "query($id: ID!) { node(id: $id) { id } }"
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"


def _node_ids(a: Org) -> dict[str, str]:
    """One of A's records of every supplies node type."""
    return {
        "SuppliesItem": a.item,
        "SuppliesWarehouse": a.warehouse,
        "SuppliesDonor": a.donor,
        "SuppliesMovement": a.receipt,
        "SuppliesDistribution": a.to_community,
        "SuppliesMoneyDonation": a.donation,
        "SuppliesMoneyAllocation": a.allocation,
        "SuppliesBatch": a.batch,
    }


def test_every_supplies_node_type_is_in_the_matrix() -> None:
    from plugins.supplies import types

    node_types = {
        name
        for name, value in vars(types).items()
        if isinstance(value, type) and issubclass(value, relay.Node) and name.startswith("Supplies")
    }
    assert node_types == set(_node_ids(Org(0)))


@pytest.mark.parametrize("role", B_ROLES)
async def test_b_gets_null_for_every_node_of_a(api: Api, orgs: tuple[Org, Org], role: str) -> None:
    a, b = orgs
    ids = _node_ids(a)
    for type_name, global_id in ids.items():
        assert relay.GlobalID.from_id(global_id).type_name == type_name
        # A sees its own record (positive control) ...
        assert await api(NODE, {"id": global_id}, **a.who(role)) == {"data": {"node": {"id": global_id}}}
        # ... B gets what an id that exists nowhere gets: null, no error
        theirs = await api(NODE, {"id": global_id}, **b.who(role))
        missing = await api(NODE, {"id": gid(type_name, MISSING_PK)}, **b.who(role))
        assert theirs == missing == {"data": {"node": None}}
    many = list(ids.values())
    assert _data(await api(NODES, {"ids": many}, **a.who(role)), "nodes") == [{"id": i} for i in many]
    assert _data(await api(NODES, {"ids": many}, **b.who(role)), "nodes") == [None] * len(many)


# -- mutations -----------------------------------------------------------------------------------------------------


@dataclass
class Attempt:
    """B's attempt with A's ids, and the same operation by A (positive control, run after every attempt)."""

    name: str
    document: str
    field: str
    theirs: dict[str, Any]
    mine: dict[str, Any]


def _attempts(a: Org, b: Org) -> list[Attempt]:
    dist = {"quantity": 1, "recipient": "居民"}
    return [
        Attempt(
            "receive into A's warehouse",
            RECEIVE,
            "suppliesReceive",
            {"input": {"warehouseId": a.warehouse, "itemId": b.item, "quantity": 5}},
            {"input": {"warehouseId": a.warehouse, "itemId": a.item, "quantity": 5}},
        ),
        Attempt(
            "receive A's item",
            RECEIVE,
            "suppliesReceive",
            {"input": {"warehouseId": b.warehouse, "itemId": a.item, "quantity": 5, "idempotencyKey": "r-1"}},
            {"input": {"warehouseId": a.warehouse, "itemId": a.item, "quantity": 5, "idempotencyKey": "r-1"}},
        ),
        Attempt(
            "distribute from A's warehouse",
            DISTRIBUTE,
            "suppliesDistribute",
            {"input": {"warehouseId": a.warehouse, "itemId": a.item} | dist},
            {"input": {"warehouseId": a.warehouse, "itemId": a.item} | dist},
        ),
        Attempt(
            "distribute A's item from B's warehouse",
            DISTRIBUTE,
            "suppliesDistribute",
            {"input": {"warehouseId": b.warehouse, "itemId": a.item, "idempotencyKey": "d-1"} | dist},
            {"input": {"warehouseId": a.warehouse, "itemId": a.item, "idempotencyKey": "d-1"} | dist},
        ),
        Attempt(
            "distribute to A's community",
            DISTRIBUTE,
            "suppliesDistribute",
            {"input": {"warehouseId": b.warehouse, "itemId": b.item, "quantity": 1, "communityId": a.community}},
            {"input": {"warehouseId": a.warehouse, "itemId": a.item, "quantity": 1, "communityId": a.community}},
        ),
        Attempt(
            "distribute to A's help request",
            DISTRIBUTE,
            "suppliesDistribute",
            {"input": {"warehouseId": b.warehouse, "itemId": b.item, "quantity": 1, "requestId": a.request}},
            {"input": {"warehouseId": a.warehouse, "itemId": a.item, "quantity": 1, "requestId": a.request}},
        ),
        Attempt("dispatch A's distribution", DISPATCH, "suppliesDispatch", {"id": a.to_request}, {"id": a.to_request}),
        Attempt(
            "cancel A's distribution", CANCEL, "suppliesCancelDistribution", {"id": a.to_person}, {"id": a.to_person}
        ),
        Attempt(
            "confirm A's delivery",
            CONFIRM,
            "suppliesConfirmDelivery",
            {"id": a.to_community},
            {"id": a.to_community},
        ),
        Attempt(
            "money from A's donor",
            RECEIVE_MONEY,
            "suppliesReceiveDonation",
            {"donor": a.donor, "amount": "10", "receipt": "乙-001", "key": "m-1"},
            {"donor": a.donor, "amount": "10", "receipt": "甲-002", "key": "m-1"},
        ),
        Attempt(
            "receive goods from A's donor",
            RECEIVE,
            "suppliesReceive",
            {"input": {"warehouseId": b.warehouse, "itemId": b.item, "quantity": 1, "donorId": a.donor}},
            {"input": {"warehouseId": a.warehouse, "itemId": a.item, "quantity": 1, "donorId": a.donor}},
        ),
        Attempt(
            "allocate A's money",
            ALLOCATE,
            "suppliesAllocate",
            {"donation": a.donation, "amount": "100"},
            {"donation": a.donation, "amount": "100"},
        ),
        Attempt(
            "transfer A's batch between A's warehouses",
            TRANSFER,
            "suppliesTransfer",
            {"batch": a.batch, "from": a.warehouse, "to": a.other_warehouse, "quantity": 1},
            {"batch": a.batch, "from": a.warehouse, "to": a.other_warehouse, "quantity": 1},
        ),
        Attempt(
            # B's own batch, but taken from A's warehouse: NOT_FOUND, not INSUFFICIENT_STOCK
            "transfer out of A's warehouse",
            TRANSFER,
            "suppliesTransfer",
            {"batch": b.batch, "from": a.warehouse, "to": b.warehouse, "quantity": 1},
            {"batch": a.batch, "from": a.warehouse, "to": a.other_warehouse, "quantity": 1},
        ),
        Attempt(
            "transfer into A's warehouse",
            TRANSFER,
            "suppliesTransfer",
            {"batch": b.batch, "from": b.warehouse, "to": a.other_warehouse, "quantity": 1, "key": "t-1"},
            {"batch": a.batch, "from": a.warehouse, "to": a.other_warehouse, "quantity": 1, "key": "t-1"},
        ),
        Attempt(
            "adjust A's stock down",
            ADJUST,
            "suppliesAdjust",
            {"batch": a.batch, "warehouse": a.warehouse, "delta": -5},
            {"batch": a.batch, "warehouse": a.warehouse, "delta": -5},
        ),
        Attempt(
            "adjust A's stock up",
            ADJUST,
            "suppliesAdjust",
            {"batch": a.batch, "warehouse": a.warehouse, "delta": 5},
            {"batch": a.batch, "warehouse": a.warehouse, "delta": 5},
        ),
        Attempt(
            "adjust A's batch in B's warehouse",
            ADJUST,
            "suppliesAdjust",
            {"batch": a.batch, "warehouse": b.warehouse, "delta": -1},
            {"batch": a.batch, "warehouse": a.warehouse, "delta": -1},
        ),
        Attempt(
            "reverse A's adjustment",
            REVERSE,
            "suppliesReverse",
            {"movement": a.adjustment},
            {"movement": a.adjustment},
        ),
    ]


# Mutations that take no id (they create in the caller's own organisation: covered by the name tests below).
CREATING = {"suppliesCreateItem", "suppliesCreateWarehouse", "suppliesCreateDonor"}


def test_every_supplies_mutation_is_in_the_matrix() -> None:
    fields = {to_camel_case(f.python_name) for f in SuppliesMutation.__strawberry_definition__.fields}  # type: ignore[attr-defined]
    attempted = {attempt.field for attempt in _attempts(Org(1), Org(2))}
    assert fields == attempted | CREATING


@pytest.mark.parametrize("role", B_ROLES)
async def test_b_gets_not_found_from_every_mutation_with_as_ids_and_nothing_changes(
    api: Api, orgs: tuple[Org, Org], engine: AsyncEngine, role: str
) -> None:
    a, b = orgs
    before = await _snapshot(engine, a.id)
    assert all(before[t] for t in TABLES if t != "supplies_idempotency_keys")  # A has a row of every kind
    a_ids = [v for v in vars(a).values() if isinstance(v, str) and v]
    attempts = _attempts(a, b)
    for attempt in attempts:
        # when B's staff try it with A's ids, then it answers NOT_FOUND, exactly as for ids that do not exist
        theirs = _data(await api(attempt.document, attempt.theirs, **b.who(role)), attempt.field)
        missing = _data(
            await api(attempt.document, _with_missing_ids(attempt.theirs, a_ids), **b.who(role)), attempt.field
        )
        assert [e["code"] for e in theirs["errors"]] == ["NOT_FOUND"], (attempt.name, theirs)
        assert theirs == missing, attempt.name
        assert [v for v in theirs.values() if v != theirs["errors"]] == [None], attempt.name
    # and none of A's supplies rows changed: balances, ledger, distributions, money, allocations
    assert await _snapshot(engine, a.id) == before
    # positive control: A's own staff do each of these with the same document
    for attempt in attempts:
        mine = _data(await api(attempt.document, attempt.mine, **a.who(role)), attempt.field)
        assert mine["errors"] == [], (attempt.name, mine)
    async with _staff(engine, a.id) as staff:
        assert await services.ledger_agrees(staff)


# -- per-organisation keys and names -------------------------------------------------------------------------------


async def test_one_idempotency_key_in_two_organisations_moves_each_ones_stock_once(
    api: Api, orgs: tuple[Org, Org], engine: AsyncEngine
) -> None:
    a, b = orgs
    stock = STOCK
    before = {o.id: _data(await api(stock, **o.who()), "suppliesStock") for o in (a, b)}
    answers = {}
    # given the same key sent by A and by B, twice each, for a transfer of their own stock
    for _ in range(2):
        for org in (a, b):
            move = {
                "batch": org.batch,
                "from": org.warehouse,
                "to": org.other_warehouse,
                "quantity": 3,
                "key": "同一键",
            }
            answers.setdefault(org.id, []).append(await _ok(api, TRANSFER, move, "suppliesTransfer", org.who()))
    # then both succeeded, each retry answered its own first result, and each moved its own stock once
    assert answers[a.id][0] == answers[a.id][1] != answers[b.id][0] == answers[b.id][1]

    def on_hand(lines: list[dict[str, Any]], warehouse: str) -> int:
        return sum(line["onHand"] for line in lines if line["warehouse"]["name"] == warehouse)

    for org, home, away in ((a, "甲仓库", "甲二仓库"), (b, "乙仓库", "乙二仓库")):
        after = _data(await api(stock, **org.who()), "suppliesStock")
        assert on_hand(after, home) == on_hand(before[org.id], home) - 3
        assert on_hand(after, away) == on_hand(before[org.id], away) + 3
    # and the key with other arguments is still a mismatch within one organisation
    other = {"batch": b.batch, "from": b.warehouse, "to": b.other_warehouse, "quantity": 4, "key": "同一键"}
    refused = _data(await api(TRANSFER, other, **b.who()), "suppliesTransfer")
    assert [e["code"] for e in refused["errors"]] == ["IDEMPOTENCY_MISMATCH"]
    async with _staff(engine, a.id) as staff:
        assert await services.ledger_agrees(staff)


async def test_names_and_receipt_numbers_are_unique_per_organisation(api: Api, orgs: tuple[Org, Org]) -> None:
    a, b = orgs
    # given A's warehouse 甲仓库, item 甲口罩 and receipt 甲-001: B may use the same names ...
    warehouse = _data(await api(CREATE_WAREHOUSE, {"name": "甲仓库"}, **b.who()), "suppliesCreateWarehouse")
    item = _data(
        await api(CREATE_ITEM, {"name": "甲口罩", "category": "FOOD", "unit": "箱", "batched": False}, **b.who()),
        "suppliesCreateItem",
    )
    money = {"donor": b.donor, "amount": "1", "receipt": "甲-001"}
    receipt = _data(await api(RECEIVE_MONEY, money, **b.who()), "suppliesReceiveDonation")
    assert (warehouse["errors"], item["errors"], receipt["errors"]) == ([], [], [])
    assert (warehouse["warehouse"]["name"], item["item"]["name"]) == ("甲仓库", "甲口罩")
    # ... which are B's (A's lists do not change), while within A they stay unique
    stock = _data(await api(STOCK, **a.who()), "suppliesStock")
    assert {line["warehouse"]["name"] for line in stock} == {"甲仓库", "甲二仓库"}
    again = _data(await api(CREATE_WAREHOUSE, {"name": "甲仓库"}, **a.who()), "suppliesCreateWarehouse")
    assert again == {"warehouse": None, "errors": [{"code": "ALREADY_EXISTS", "field": ["input", "name"]}]}
    again = _data(
        await api(CREATE_ITEM, {"name": "甲口罩", "category": "FOOD", "unit": "箱", "batched": False}, **a.who()),
        "suppliesCreateItem",
    )
    assert again == {"item": None, "errors": [{"code": "ALREADY_EXISTS", "field": ["input", "name"]}]}
    twice = _data(
        await api(RECEIVE_MONEY, {"donor": a.donor, "amount": "1", "receipt": "甲-001"}, **a.who()),
        "suppliesReceiveDonation",
    )
    assert twice["errors"] == [{"code": "ALREADY_EXISTS", "field": ["input", "receiptNo"]}]


# -- platform administrators ---------------------------------------------------------------------------------------


async def test_a_platform_administrator_sees_both_organisations_stock(api: Api, orgs: tuple[Org, Org]) -> None:
    a, b = orgs
    stock = STOCK
    platform = _data(await api(stock, role="platform_admin", org=a.id), "suppliesStock")
    lines = {(line["item"]["name"], line["warehouse"]["name"]) for line in platform}
    assert {("甲口罩", "甲仓库"), ("甲口罩", "甲二仓库"), ("甲奶粉", "甲仓库"), ("乙大米", "乙仓库")} <= lines
    donors = _data(
        await api("{ suppliesDonors { nodes { contact } } }", role="platform_admin", org=b.id), "suppliesDonors"
    )
    assert {d["contact"] for d in donors["nodes"]} == {"13800009999", "029-22222222"}


async def test_a_platform_administrator_cannot_mix_two_organisations_supplies(
    api: Api, orgs: tuple[Org, Org], engine: AsyncEngine
) -> None:
    a, b = orgs
    before = {org.id: await _snapshot(engine, org.id) for org in (a, b)}
    platform = {"role": "platform_admin", "org": a.id}
    # A's item out of B's warehouse, A's batch into B's warehouse: refused as a mismatch (not as missing stock)
    mixed = {"warehouseId": b.warehouse, "itemId": a.item, "quantity": 1, "recipient": "居民"}
    out = _data(await api(DISTRIBUTE, {"input": mixed}, **platform), "suppliesDistribute")
    move = {"batch": a.batch, "from": a.warehouse, "to": b.warehouse, "quantity": 1}
    across = _data(await api(TRANSFER, move, **platform), "suppliesTransfer")
    to_a = {"warehouseId": b.warehouse, "itemId": b.item, "quantity": 1, "communityId": a.community}
    community = _data(await api(DISTRIBUTE, {"input": to_a}, **platform), "suppliesDistribute")
    for payload in (out, across, community):
        assert [e["code"] for e in payload["errors"]] == ["ORGANIZATION_MISMATCH"], payload
    assert {org.id: await _snapshot(engine, org.id) for org in (a, b)} == before
    # positive control: within one organisation (B's) the same administrator may
    within = {"warehouseId": b.warehouse, "itemId": b.item, "quantity": 1, "recipient": "居民"}
    assert _data(await api(DISTRIBUTE, {"input": within}, **platform), "suppliesDistribute")["errors"] == []


async def test_without_an_organisation_nobody_records_supplies(engine: AsyncEngine) -> None:
    # a platform administrator of no organisation (plugin fields answer PLUGIN_DISABLED before this)
    viewer = Viewer(label="平台", role="platform_admin")
    async with create_sessionmaker(engine)() as session:
        ctx = ServiceContext(session, viewer)
        for attempt in (
            services.create_item(ctx, "口罩", "medical_protection", "只"),
            services.create_warehouse(ctx, "仓库"),
            services.create_donor(ctx, "某人", "person"),
            services.idempotent(ctx, "k", "noop", {}, _never, _never),
        ):
            with pytest.raises(DomainError) as err:
                await attempt
            assert err.value.code == "FORBIDDEN"
            await session.rollback()


async def _never(*args: Any) -> Any:
    raise AssertionError("must not run")


# -- defence in depth ----------------------------------------------------------------------------------------------


@asynccontextmanager
async def _sql_as(engine: AsyncEngine, org_id: int) -> AsyncIterator[Any]:
    """A session of the app role acting for an organisation's administrator, rolled back at the end."""
    async with create_sessionmaker(engine)() as session:
        ServiceContext(session, Viewer(label="职员", role="organization_admin", organization_id=org_id))
        try:
            yield session
        finally:
            await session.rollback()


async def test_b_s_database_session_neither_sees_nor_changes_as_rows(
    orgs: tuple[Org, Org], engine: AsyncEngine
) -> None:
    """Plain SQL through the app role under B's settings, every service-layer check bypassed."""
    a, b = orgs
    before = await _snapshot(engine, a.id)
    of_a = "WHERE organization_id = :a"
    # A's session sees A's rows (positive control); B's, naming A's rows outright, sees none of them
    for org, expected in ((a, {t: len(rows) for t, rows in before.items()}), (b, dict.fromkeys(TABLES, 0))):
        async with _sql_as(engine, org.id) as session:
            seen = {t: await session.scalar(text(f"SELECT count(*) FROM {t} {of_a}"), {"a": a.id}) for t in TABLES}
            assert seen == expected
    async with _sql_as(engine, a.id) as session:
        changed = await session.execute(text(f"UPDATE supplies_balances SET on_hand = 0 {of_a}"), {"a": a.id})
        assert changed.rowcount == len(before["supplies_balances"]) > 0  # type: ignore[attr-defined]
    async with _sql_as(engine, b.id) as session:
        for table in TABLES:
            if table != "supplies_movements":  # append-only for everyone (a trigger refuses UPDATE and DELETE)
                changed = await session.execute(
                    text(f"UPDATE {table} SET organization_id = organization_id {of_a}"), {"a": a.id}
                )
                assert changed.rowcount == 0, table  # type: ignore[attr-defined]
            removed = await session.execute(text(f"DELETE FROM {table} {of_a}"), {"a": a.id})
            assert removed.rowcount == 0, table  # type: ignore[attr-defined]
        await session.commit()
    assert await _snapshot(engine, a.id) == before
    # and a row naming A's batch is refused (insufficient_privilege, 42501), not written
    pk = {k: int(relay.GlobalID.from_id(v).node_id) for k, v in (("batch", a.batch), ("warehouse", b.warehouse))}
    async with _sql_as(engine, b.id) as session:
        with pytest.raises(DBAPIError) as err:
            await session.execute(
                text("INSERT INTO supplies_balances (batch_id, warehouse_id, on_hand) VALUES (:batch, :warehouse, 1)"),
                pk,
            )
        assert common.sqlstate(err.value) == "42501"
    assert await _snapshot(engine, a.id) == before
