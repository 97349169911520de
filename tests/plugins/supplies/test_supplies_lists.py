"""The supplies API's lists (filters, pages, totalCount), the cancellation of a planned distribution, a batch's
trace, node(id:) of every supplies type, money in and out, and nested pages that cost a fixed number of SQL
statements (through the real /graphql)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import create_sessionmaker
from core.models import Community, HelpRequest, Organization
from core.services.context import ServiceContext, Viewer
from core.vocab import RequestStatus
from plugins.supplies import services
from tests.factories import Factory
from tests.schema.helpers import gid

Api = Any  # tests/plugins/conftest.py `api`


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


def _data(body: dict[str, Any], field: str) -> Any:
    assert not body.get("errors"), body
    return body["data"][field]


async def _ok(api: Api, document: str, variables: dict[str, Any], field: str, who: dict[str, Any]) -> Any:
    payload = _data(await api(document, variables, **who), field)
    assert payload["errors"] == [], payload
    return payload


@dataclass
class Depot:
    """One organisation's supplies, by global ID."""

    org: int
    who: dict[str, Any]
    masks: str
    rice: str
    formula: str
    main: str
    annex: str
    company: str
    person: str
    communities: list[Community]
    request: HelpRequest


DISTRIBUTE = """mutation($i: SuppliesDistributeInput!) { suppliesDistribute(input: $i) {
  distribution { id status } errors { code field } } }"""
RECEIVE = """mutation($i: SuppliesReceiveInput!) { suppliesReceive(input: $i) {
  movement { id kind quantity batch { id code donor { name } item { name } } } errors { code field } } }"""
CANCEL = """mutation($id: ID!, $reason: String!) { suppliesCancelDistribution(input: {id: $id, reason: $reason}) {
  distribution { id status cancelledAt cancelReason quantity } errors { code field } } }"""
STEP = (
    """mutation($id: ID!) {{ {field}(input: {{id: $id}}) {{ distribution {{ status }} errors {{ code field }} }} }}"""
)


@pytest.fixture
async def depot(api: Api, make: Factory, supplies_org: Organization) -> Depot:
    """Items (masks, rice, batched formula), two warehouses, two donors, two communities and a request in progress,
    with masks and rice received from the company into the main warehouse."""
    org = supplies_org.id  # the harness's own organisation (its volunteers take the request in progress)
    communities = [await make.community(organization_id=org, name=n) for n in ("粉巷社区", "南院门社区")]
    request = await make.request(communities[0], status=RequestStatus.IN_PROGRESS)
    who = {"role": "organization_admin", "org": org}

    async def create(field: str, kind: str, values: dict[str, Any]) -> str:
        input_type = f"{field[0].upper()}{field[1:]}Input"
        document = f"mutation($i: {input_type}!) {{ {field}(input: $i) {{ {kind} {{ id }} errors {{ code }} }} }}"
        return str((await _ok(api, document, {"i": values}, field, who))[kind]["id"])

    masks = await create(
        "suppliesCreateItem", "item", {"name": "N95口罩", "category": "MEDICAL_PROTECTION", "unit": "只"}
    )
    rice = await create("suppliesCreateItem", "item", {"name": "大米", "category": "FOOD", "unit": "袋"})
    formula = await create(
        "suppliesCreateItem", "item", {"name": "奶粉", "category": "INFANT_SUPPLIES", "unit": "罐", "batched": True}
    )
    main = await create("suppliesCreateWarehouse", "warehouse", {"name": "碑林仓库", "address": "南院门"})
    annex = await create("suppliesCreateWarehouse", "warehouse", {"name": "雁塔仓库"})
    company = await create(
        "suppliesCreateDonor", "donor", {"name": "爱心企业", "kind": "ORGANIZATION", "contact": "13800009999"}
    )
    person = await create("suppliesCreateDonor", "donor", {"name": "张先生", "kind": "PERSON"})
    for item, quantity in ((masks, 100), (rice, 40)):
        line = {"warehouseId": main, "itemId": item, "quantity": quantity, "donorId": company}
        await _ok(api, RECEIVE, {"i": line}, "suppliesReceive", who)
    return Depot(org, who, masks, rice, formula, main, annex, company, person, communities, request)


async def _distribute(api: Api, d: Depot, item: str, quantity: int, **to: Any) -> str:
    values = {"warehouseId": d.main, "itemId": item, "quantity": quantity} | to
    return str((await _ok(api, DISTRIBUTE, {"i": values}, "suppliesDistribute", d.who))["distribution"]["id"])


async def _step(api: Api, d: Depot, field: str, distribution: str, who: dict[str, Any] | None = None) -> Any:
    return _data(await api(STEP.format(field=field), {"id": distribution}, **(who or d.who)), field)


# -- receiving from a donor ------------------------------------------------------------------------------------------


async def test_receive_takes_a_donor_and_makes_a_batch_of_theirs(api: Api, depot: Depot) -> None:
    d = depot
    line = {"warehouseId": d.annex, "itemId": d.formula, "quantity": 12, "donorId": d.person, "batchCode": "F-1"}
    missing = _data(await api(RECEIVE, {"i": line}, **d.who), "suppliesReceive")
    assert missing["errors"] == [{"code": "REQUIRED", "field": ["input", "expiresOn"]}]
    line["expiresOn"] = "2031-01-31"
    movement = (await _ok(api, RECEIVE, {"i": line}, "suppliesReceive", d.who))["movement"]
    assert movement["kind"] == "RECEIPT"
    assert movement["batch"] | {"id": None} == {
        "id": None,
        "code": "F-1",
        "donor": {"name": "张先生"},
        "item": {"name": "奶粉"},
    }
    wrong = line | {"donorId": d.masks}
    refused = _data(await api(RECEIVE, {"i": wrong}, **d.who), "suppliesReceive")
    assert refused["errors"] == [{"code": "INVALID_ID", "field": ["input", "donorId"]}]


# -- lists ----------------------------------------------------------------------------------------------------------


def _names(connection: dict[str, Any], key: str = "name") -> list[Any]:
    return [n[key] for n in connection["nodes"]]


async def test_catalogue_lists_filter_page_and_count(api: Api, depot: Depot) -> None:
    d = depot
    items = """query($f: SuppliesItemFilter, $first: Int, $after: String) {
      suppliesItems(filter: $f, first: $first, after: $after) {
        totalCount nodes { name category batched } pageInfo { hasNextPage endCursor } } }"""

    async def page(f: dict[str, Any] | None = None, first: int | None = None, after: str | None = None) -> Any:
        return _data(await api(items, {"f": f, "first": first, "after": after}, **d.who), "suppliesItems")

    every = await page()
    assert (every["totalCount"], _names(every)) == (3, ["N95口罩", "大米", "奶粉"])
    assert _names(await page({"categories": ["FOOD", "INFANT_SUPPLIES"]})) == ["大米", "奶粉"]
    assert _names(await page({"batched": True})) == ["奶粉"]
    assert _names(await page({"search": "口罩"})) == ["N95口罩"]
    # pages of two: the cursor continues where the first page ended; totalCount counts the whole filtered list
    first = await page(first=2)
    assert (_names(first), first["pageInfo"]["hasNextPage"], first["totalCount"]) == (["N95口罩", "大米"], True, 3)
    rest = await page(first=2, after=first["pageInfo"]["endCursor"])
    assert (_names(rest), rest["pageInfo"]["hasNextPage"]) == (["奶粉"], False)
    warehouses = (
        "query($f: SuppliesWarehouseFilter) { suppliesWarehouses(filter: $f) { totalCount nodes { name address } } }"
    )
    assert _data(await api(warehouses, {"f": {"search": "南院"}}, **d.who), "suppliesWarehouses") == {
        "totalCount": 1,
        "nodes": [{"name": "碑林仓库", "address": "南院门"}],
    }
    donors = "query($f: SuppliesDonorFilter) { suppliesDonors(filter: $f) { totalCount nodes { name kind } } }"
    assert _data(await api(donors, {"f": {"kind": "PERSON"}}, **d.who), "suppliesDonors") == {
        "totalCount": 1,
        "nodes": [{"name": "张先生", "kind": "PERSON"}],
    }
    # a page larger than the deployment allows is refused, as for core's lists
    too_many = await api(items, {"first": 100_000}, **d.who)
    assert too_many["errors"][0]["extensions"]["code"] == "PAGE_SIZE_EXCEEDED"


DISTRIBUTIONS = """query($f: SuppliesDistributionFilter, $first: Int, $after: String) {
  suppliesDistributions(filter: $f, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    nodes { id status quantity deliveredQuantity recipient createdAt dispatchedAt confirmedAt cancelledAt
      item { name } warehouse { name } community { name } request { id title } } } }"""


async def test_distributions_show_what_went_where_and_filter(api: Api, depot: Depot) -> None:
    d = depot
    fen, nan = gid("Community", d.communities[0].id), gid("Community", d.communities[1].id)
    to_fen = await _distribute(api, d, d.masks, 30, communityId=fen)
    to_nan = await _distribute(api, d, d.rice, 10, communityId=nan)
    to_request = await _distribute(api, d, d.masks, 5, requestId=gid("HelpRequest", d.request.id))
    to_person = await _distribute(api, d, d.rice, 2, recipient="王阿姨")
    for step in ("suppliesDispatch", "suppliesConfirmDelivery"):
        assert (await _step(api, d, step, to_fen))["errors"] == []
    assert (await _step(api, d, "suppliesDispatch", to_nan))["errors"] == []

    async def listed(f: dict[str, Any] | None = None, **kw: Any) -> Any:
        return _data(await api(DISTRIBUTIONS, {"f": f} | kw, **d.who), "suppliesDistributions")

    every = await listed()
    assert every["totalCount"] == 4
    by_id = {n["id"]: n for n in every["nodes"]}
    assert [n["id"] for n in every["nodes"]] == [to_person, to_request, to_nan, to_fen]  # newest first
    delivered = by_id[to_fen]
    assert {k: delivered[k] for k in ("status", "quantity", "deliveredQuantity", "item", "warehouse", "community")} == {
        "status": "DELIVERED",
        "quantity": 30,
        "deliveredQuantity": 30,
        "item": {"name": "N95口罩"},
        "warehouse": {"name": "碑林仓库"},
        "community": {"name": "粉巷社区"},
    }
    assert all(delivered[k] for k in ("dispatchedAt", "confirmedAt", "createdAt"))
    assert by_id[to_request]["request"] == {"id": gid("HelpRequest", d.request.id), "title": d.request.title}
    assert by_id[to_request]["community"] is None
    assert (by_id[to_person]["recipient"], by_id[to_person]["status"], by_id[to_person]["dispatchedAt"]) == (
        "王阿姨",
        "PLANNED",
        None,
    )
    # filters: status, warehouse, item, community, request, the planning time
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"statuses": ["PLANNED"]}, [to_person, to_request]),
        ({"statuses": ["DISPATCHED", "DELIVERED"]}, [to_nan, to_fen]),
        ({"itemId": d.rice}, [to_person, to_nan]),
        ({"communityId": nan}, [to_nan]),
        ({"requestId": gid("HelpRequest", d.request.id)}, [to_request]),
        ({"warehouseId": d.annex}, []),
        ({"warehouseId": d.main, "itemId": d.masks, "statuses": ["PLANNED"]}, [to_request]),
        ({"since": (datetime.now(UTC) - timedelta(days=1)).isoformat()}, [to_person, to_request, to_nan, to_fen]),
        ({"until": "2000-01-01T00:00:00+00:00"}, []),
    ]
    for f, expected in cases:
        got = await listed(f)
        assert ([n["id"] for n in got["nodes"]], got["totalCount"]) == (expected, len(expected)), f
    # pagination with a filter keeps the filter on the next page
    first = await listed({"statuses": ["PLANNED", "DISPATCHED", "DELIVERED"]}, first=3)
    assert (len(first["nodes"]), first["pageInfo"]["hasNextPage"], first["totalCount"]) == (3, True, 4)
    rest = await listed(
        {"statuses": ["PLANNED", "DISPATCHED", "DELIVERED"]}, first=3, after=first["pageInfo"]["endCursor"]
    )
    assert [n["id"] for n in rest["nodes"]] == [to_fen]
    # a cursor of another list is refused
    items = _data(await api("{ suppliesItems(first: 1) { pageInfo { endCursor } } }", **d.who), "suppliesItems")
    foreign = await api(DISTRIBUTIONS, {"after": items["pageInfo"]["endCursor"]}, **d.who)
    assert foreign["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"


async def test_movements_list_the_ledger_with_filters(api: Api, depot: Depot) -> None:
    d = depot
    sent = await _distribute(api, d, d.masks, 30, communityId=gid("Community", d.communities[0].id))
    ledger = """query($f: SuppliesMovementFilter, $first: Int) { suppliesMovements(filter: $f, first: $first) {
      totalCount nodes { kind quantity warehouse { name } batch { item { name } } distribution { id } } } }"""

    async def listed(f: dict[str, Any] | None = None, first: int | None = None) -> Any:
        return _data(await api(ledger, {"f": f, "first": first}, **d.who), "suppliesMovements")

    every = await listed()
    assert [(n["kind"], n["quantity"]) for n in every["nodes"]] == [
        ("RECEIPT", 100),
        ("RECEIPT", 40),
        ("DISTRIBUTION", -30),
    ]
    assert every["nodes"][2]["distribution"] == {"id": sent}
    assert (await listed({"kinds": ["RECEIPT"]}, first=1))["totalCount"] == 2
    assert [n["quantity"] for n in (await listed({"itemId": d.rice}))["nodes"]] == [40]
    assert [n["kind"] for n in (await listed({"distributionId": sent}))["nodes"]] == ["DISTRIBUTION"]
    assert (await listed({"warehouseId": d.annex}))["totalCount"] == 0


# -- cancelling ---------------------------------------------------------------------------------------------------


async def test_cancelling_a_planned_distribution_returns_its_stock_in_the_ledger(
    api: Api, depot: Depot, engine: AsyncEngine, make: Factory
) -> None:
    d = depot
    stock = "query($i: ID!) { suppliesStock(itemId: $i) { onHand } }"

    async def masks_on_hand() -> int:
        return sum(line["onHand"] for line in _data(await api(stock, {"i": d.masks}, **d.who), "suppliesStock"))

    planned = await _distribute(api, d, d.masks, 30, communityId=gid("Community", d.communities[0].id))
    assert await masks_on_hand() == 70
    # a community head may not cancel; an empty reason is refused
    head = {"role": "community_head", "org": d.org}
    refused = _data(await api(CANCEL, {"id": planned, "reason": "改期"}, **head), "suppliesCancelDistribution")
    assert refused["errors"] == [{"code": "FORBIDDEN", "field": None}]
    blank = _data(await api(CANCEL, {"id": planned, "reason": " "}, **d.who), "suppliesCancelDistribution")
    assert [e["field"] for e in blank["errors"]] == [["input", "reason"]]
    # when staff cancel it
    done = await _ok(api, CANCEL, {"id": planned, "reason": "社区改期"}, "suppliesCancelDistribution", d.who)
    assert done["distribution"] | {"cancelledAt": None} == {
        "id": planned,
        "status": "CANCELLED",
        "cancelledAt": None,
        "cancelReason": "社区改期",
        "quantity": 30,
    }
    assert done["distribution"]["cancelledAt"]
    # then the reservation came back, as a ledger movement (nothing deleted), and the report still balances
    assert await masks_on_hand() == 100
    ledger = """query($id: ID!) { node(id: $id) { ... on SuppliesDistribution {
      movements { totalCount nodes { kind quantity reason } } } } }"""
    movements = _data(await api(ledger, {"id": planned}, **d.who), "node")["movements"]
    assert movements["nodes"] == [
        {"kind": "DISTRIBUTION", "quantity": -30, "reason": ""},
        {"kind": "RETURN", "quantity": 30, "reason": "cancelled: 社区改期"},
    ]
    report = _data(await api("{ suppliesReport { category distributed onHand balanced } }", **d.who), "suppliesReport")
    assert {"category": "MEDICAL_PROTECTION", "distributed": 0, "onHand": 100, "balanced": True} in report
    async with _staff(engine, d.org) as ctx:
        assert await services.ledger_agrees(ctx)
    # and it cannot be cancelled twice, dispatched or delivered
    again = _data(await api(CANCEL, {"id": planned, "reason": "再次"}, **d.who), "suppliesCancelDistribution")
    assert again["errors"] == [{"code": "INVALID_TRANSITION", "field": ["input", "id"]}]
    dispatch = await _step(api, d, "suppliesDispatch", planned)
    assert dispatch["errors"] == [{"code": "INVALID_TRANSITION", "field": ["input", "id"]}]


@pytest.mark.parametrize("steps", [("suppliesDispatch",), ("suppliesDispatch", "suppliesConfirmDelivery")])
async def test_dispatched_or_delivered_distributions_cannot_be_cancelled(
    api: Api, depot: Depot, steps: tuple[str, ...]
) -> None:
    d = depot
    sent = await _distribute(api, d, d.masks, 10, recipient="居民")
    for step in steps:
        assert (await _step(api, d, step, sent))["errors"] == []
    refused = _data(await api(CANCEL, {"id": sent, "reason": "改期"}, **d.who), "suppliesCancelDistribution")
    assert refused == {"distribution": None, "errors": [{"code": "INVALID_TRANSITION", "field": ["input", "id"]}]}


async def test_a_cancelled_distribution_does_not_hold_back_a_request(api: Api, depot: Depot, make: Factory) -> None:
    d = depot
    request = gid("HelpRequest", d.request.id)
    called_off = await _distribute(api, d, d.masks, 5, requestId=request)
    delivered = await _distribute(api, d, d.rice, 5, requestId=request)
    await _ok(api, CANCEL, {"id": called_off, "reason": "重复"}, "suppliesCancelDistribution", d.who)
    coordinator = {"role": "platform_admin", "org": d.org}
    for step in ("suppliesDispatch", "suppliesConfirmDelivery"):
        assert (await _step(api, d, step, delivered, coordinator))["errors"] == []
    status = "query($id: ID!) { node(id: $id) { ... on HelpRequest { status } } }"
    assert _data(await api(status, {"id": request}, **coordinator), "node") == {"status": "FULFILLED"}


# -- the trace of a batch -------------------------------------------------------------------------------------------


async def test_a_batch_traces_donor_to_delivery(api: Api, depot: Depot) -> None:
    d = depot
    batch = _data(
        await api("query($i: ID!) { suppliesStock(itemId: $i) { batch { id } } }", {"i": d.masks}, **d.who),
        "suppliesStock",
    )[0]["batch"]["id"]
    move = (
        """mutation($i: SuppliesTransferInput!) { suppliesTransfer(input: $i) { movement { kind } errors { code } } }"""
    )
    transfer = {"batchId": batch, "fromWarehouseId": d.main, "toWarehouseId": d.annex, "quantity": 20}
    await _ok(api, move, {"i": transfer}, "suppliesTransfer", d.who)
    sent = await _distribute(api, d, d.masks, 50, communityId=gid("Community", d.communities[0].id))
    await _step(api, d, "suppliesDispatch", sent)
    confirm = """mutation($id: ID!) { suppliesConfirmDelivery(input: {id: $id, delivered: 45, note: "破损"}) {
      distribution { status deliveredQuantity } errors { code } } }"""
    head = {"role": "community_head", "org": d.org}
    assert (await api(confirm, {"id": sent}, **head))["data"]["suppliesConfirmDelivery"]["errors"] == [
        {"code": "FORBIDDEN"}
    ]  # not the head of that community (the test's head has none)
    confirmed = await _ok(api, confirm, {"id": sent}, "suppliesConfirmDelivery", d.who)
    assert confirmed["distribution"] == {"status": "DELIVERED", "deliveredQuantity": 45}
    trace = """query($b: ID!, $first: Int, $after: String) { suppliesTrace(batchId: $b) {
      id code expiresOn onHand item { name } donor { name kind }
      movements(first: $first, after: $after) { totalCount pageInfo { hasNextPage endCursor }
        nodes { kind quantity warehouse { name } distribution { status community { name } } } } } }"""
    whole = _data(await api(trace, {"b": batch}, **d.who), "suppliesTrace")
    assert (whole["id"], whole["item"], whole["donor"], whole["onHand"]) == (
        batch,
        {"name": "N95口罩"},
        {"name": "爱心企业", "kind": "ORGANIZATION"},
        55,
    )
    steps = [(m["kind"], m["quantity"], m["warehouse"]["name"]) for m in whole["movements"]["nodes"]]
    assert steps == [
        ("RECEIPT", 100, "碑林仓库"),
        ("TRANSFER_OUT", -20, "碑林仓库"),
        ("TRANSFER_IN", 20, "雁塔仓库"),
        ("DISTRIBUTION", -50, "碑林仓库"),
        ("RETURN", 5, "碑林仓库"),
    ]
    assert whole["movements"]["nodes"][3]["distribution"] == {"status": "DELIVERED", "community": {"name": "粉巷社区"}}
    # the trace pages like any connection
    first = _data(await api(trace, {"b": batch, "first": 2}, **d.who), "suppliesTrace")["movements"]
    rest = _data(
        await api(trace, {"b": batch, "first": 10, "after": first["pageInfo"]["endCursor"]}, **d.who), "suppliesTrace"
    )["movements"]
    assert (first["totalCount"], len(first["nodes"]), first["pageInfo"]["hasNextPage"]) == (5, 2, True)
    assert [m["kind"] for m in first["nodes"] + rest["nodes"]] == [s[0] for s in steps]


# -- money --------------------------------------------------------------------------------------------------------

DONATE = """mutation($i: SuppliesReceiveDonationInput!) { suppliesReceiveDonation(input: $i) {
  donation { id amount unallocated receivedAt donor { name } } errors { code field } } }"""
ALLOCATE = """mutation($i: SuppliesAllocateInput!) { suppliesAllocate(input: $i) {
  allocation { id amount purpose donation { unallocated } } errors { code field } } }"""


async def test_money_in_and_out_and_allocation_lists(api: Api, depot: Depot) -> None:
    d = depot
    grant = (
        await _ok(
            api,
            DONATE,
            {"i": {"donorId": d.company, "amount": "5000000", "receiptNo": "R-1"}},
            "suppliesReceiveDonation",
            d.who,
        )
    )["donation"]
    small = (
        await _ok(
            api,
            DONATE,
            {"i": {"donorId": d.person, "amount": "300.5", "receiptNo": "R-2", "purpose": "生活物资"}},
            "suppliesReceiveDonation",
            d.who,
        )
    )["donation"]
    assert (grant["amount"], grant["unallocated"], small["amount"], small["donor"]) == (
        "5000000.00",
        "5000000.00",
        "300.50",
        {"name": "张先生"},
    )
    allocations = []
    for amount, purpose in (("1200000", "防护服"), ("0.01", "手续费"), ("99.99", "口罩")):
        done = await _ok(
            api,
            ALLOCATE,
            {"i": {"donationId": grant["id"], "amount": amount, "purpose": purpose}},
            "suppliesAllocate",
            d.who,
        )
        allocations.append(done["allocation"])
    assert [a["amount"] for a in allocations] == ["1200000.00", "0.01", "99.99"]
    assert allocations[-1]["donation"] == {"unallocated": "3799900.00"}
    too_much = await api(ALLOCATE, {"i": {"donationId": small["id"], "amount": "300.51", "purpose": "超额"}}, **d.who)
    assert _data(too_much, "suppliesAllocate")["errors"] == [
        {"code": "INSUFFICIENT_FUNDS", "field": ["input", "amount"]}
    ]
    # lists: allocations of one donation or of all; donations by donor; totals per donor
    per_donation = """query($f: SuppliesAllocationFilter, $first: Int) {
      suppliesAllocations(filter: $f, first: $first) { totalCount nodes { amount purpose } } }"""
    of_grant = _data(
        await api(per_donation, {"f": {"donationId": grant["id"]}, "first": 2}, **d.who), "suppliesAllocations"
    )
    assert (of_grant["totalCount"], _names(of_grant, "purpose")) == (3, ["防护服", "手续费"])
    of_small = _data(await api(per_donation, {"f": {"donationId": small["id"]}}, **d.who), "suppliesAllocations")
    assert of_small == {"totalCount": 0, "nodes": []}
    assert _data(await api(per_donation, {}, **d.who), "suppliesAllocations")["totalCount"] == 3
    nested = """query($f: SuppliesDonationFilter) { suppliesDonations(filter: $f) { totalCount nodes { receiptNo
      unallocated allocations(first: 1) { totalCount nodes { amount } } } } }"""
    donations = _data(await api(nested, {}, **d.who), "suppliesDonations")
    assert donations["nodes"] == [
        {"receiptNo": "R-2", "unallocated": "300.50", "allocations": {"totalCount": 0, "nodes": []}},
        {
            "receiptNo": "R-1",
            "unallocated": "3799900.00",
            "allocations": {"totalCount": 3, "nodes": [{"amount": "1200000.00"}]},
        },
    ]
    by_donor = _data(await api(nested, {"f": {"donorId": d.person}}, **d.who), "suppliesDonations")
    assert [n["receiptNo"] for n in by_donor["nodes"]] == ["R-2"]
    searched = _data(await api(nested, {"f": {"search": "生活"}}, **d.who), "suppliesDonations")
    assert [n["receiptNo"] for n in searched["nodes"]] == ["R-2"]
    totals = _data(
        await api("{ suppliesReceivedByDonor { donor { name } items money } }", **d.who), "suppliesReceivedByDonor"
    )
    assert totals == [
        {"donor": {"name": "张先生"}, "items": 0, "money": "300.50"},
        {"donor": {"name": "爱心企业"}, "items": 140, "money": "5000000.00"},
    ]


# -- node(id:) of every type ----------------------------------------------------------------------------------------

NODE = "query($id: ID!) { node(id: $id) { id __typename } }"


async def test_every_supplies_node_type_is_fetchable(api: Api, depot: Depot) -> None:
    d = depot
    sent = await _distribute(api, d, d.masks, 1, recipient="居民")
    donation = (
        await _ok(
            api,
            DONATE,
            {"i": {"donorId": d.company, "amount": "10", "receiptNo": "R-9"}},
            "suppliesReceiveDonation",
            d.who,
        )
    )["donation"]["id"]
    allocation = (
        await _ok(
            api, ALLOCATE, {"i": {"donationId": donation, "amount": "1", "purpose": "x"}}, "suppliesAllocate", d.who
        )
    )["allocation"]["id"]
    ledger = _data(
        await api("{ suppliesMovements(first: 1) { nodes { id batch { id } } } }", **d.who), "suppliesMovements"
    )
    movement, batch = ledger["nodes"][0]["id"], ledger["nodes"][0]["batch"]["id"]
    ids = {
        "SuppliesItem": d.masks,
        "SuppliesWarehouse": d.main,
        "SuppliesDonor": d.company,
        "SuppliesBatch": batch,
        "SuppliesMovement": movement,
        "SuppliesDistribution": sent,
        "SuppliesMoneyDonation": donation,
        "SuppliesMoneyAllocation": allocation,
    }
    from plugins.supplies import types

    node_types = {
        n
        for n, v in vars(types).items()
        if isinstance(v, type) and n.startswith("Supplies") and hasattr(v, "resolve_nodes")
    }
    assert node_types == set(ids)
    for type_name, global_id in ids.items():
        assert _data(await api(NODE, {"id": global_id}, **d.who), "node") == {"id": global_id, "__typename": type_name}
    # one nodes(ids:) batch of every type; a volunteer of the organisation gets nulls
    many = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
    assert _data(await api(many, {"ids": list(ids.values())}, **d.who), "nodes") == [{"id": i} for i in ids.values()]
    head = {"role": "community_head", "org": d.org}
    assert _data(await api(many, {"ids": list(ids.values())}, **head), "nodes") == [None] * len(ids)


async def test_a_community_head_neither_lists_distributions_nor_confirms_another_communitys(
    api: Api, make: Factory, depot: Depot
) -> None:
    d = depot
    head = {"role": "community_head", "org": d.org}
    sent = await _distribute(api, d, d.masks, 3, communityId=gid("Community", d.communities[0].id))
    await _step(api, d, "suppliesDispatch", sent)
    confirm = """mutation($id: ID!) { suppliesConfirmDelivery(input: {id: $id}) { distribution { status quantity
      item { name } } errors { code } } }"""
    # the test harness's head heads no community: refused, as before
    assert _data(await api(confirm, {"id": sent}, **head), "suppliesConfirmDelivery")["errors"] == [
        {"code": "FORBIDDEN"}
    ]
    listed = await api("{ suppliesDistributions { nodes { id } } }", **head)
    assert listed["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # (the head of the receiving community confirms: tests/plugins/supplies/access_rows.py)


# -- statement counts ---------------------------------------------------------------------------------------------

PAGE = """query($first: Int!) { suppliesDistributions(first: $first) { totalCount edges { node {
  status quantity deliveredQuantity item { name category } warehouse { name address }
  community { name } request { title }
  movements(first: 5) { totalCount nodes { kind batch { code donor { name } item { name } } } } } } } }"""


async def _seed(engine: AsyncEngine, make: Factory, org: int, tag: str, distributions: int, parents: int) -> None:
    """`distributions` distributions over `parents` distinct items, warehouses, communities and requests."""
    communities = [await make.community(organization_id=org, name=f"{tag}社区{i}") for i in range(parents)]
    requests = [await make.request(c, status=RequestStatus.VERIFIED) for c in communities]
    await make.commit()
    async with _staff(engine, org) as ctx:
        donor = await services.create_donor(ctx, f"{tag}企业", "organization")
        items = [await services.create_item(ctx, f"{tag}物品{i}", "food", "袋") for i in range(parents)]
        warehouses = [await services.create_warehouse(ctx, f"{tag}仓库{i}") for i in range(parents)]
        for i in range(parents):
            await services.receive(
                ctx, warehouse_id=warehouses[i].id, item_id=items[i].id, quantity=1000, donor_id=donor.id
            )
        for n in range(distributions):
            i = (n // 2) % parents
            to: dict[str, Any] = {"community_id": communities[i].id} if n % 2 else {"request_id": requests[i].id}
            await services.distribute(ctx, warehouse_id=warehouses[i].id, item_id=items[i].id, quantity=1, **to)


async def test_the_distributions_page_is_not_n_plus_one(
    api: Api, make: Factory, engine: AsyncEngine, statements: Any
) -> None:
    org = (await make.organization_using("supplies", "计数组")).id
    who = {"role": "organization_admin", "org": org}
    counts: dict[str, int] = {}

    async def measure(key: str, first: int) -> list[Any]:
        statements.statements.clear()
        body = await api(PAGE, {"first": first}, **who)
        counts[key] = statements.count
        edges = _data(body, "suppliesDistributions")["edges"]
        assert all(e["node"]["item"]["name"] and e["node"]["warehouse"]["name"] for e in edges)
        return edges

    # given 24 distributions over 2 distinct items, warehouses, communities and requests
    await _seed(engine, make, org, "少", 24, parents=2)
    few = await measure("few parents", 24)
    # and then 24 more over 12 of each (the page shows only these)
    await _seed(engine, make, org, "多", 24, parents=12)
    many = await measure("many parents", 24)
    await measure("half the page", 12)
    # then six times the parents, or half the page, cost the same statements
    assert len(few) == len(many) == 24
    assert len({e["node"]["community"]["name"] for e in many if e["node"]["community"]}) == 12
    assert len({e["node"]["request"]["title"] for e in many if e["node"]["request"]}) >= 1
    assert counts["few parents"] == counts["many parents"] == counts["half the page"], counts
    assert counts["many parents"] <= 16, counts


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (
            "query($f: SuppliesDistributionFilter) { suppliesDistributions(filter: $f) { totalCount } }",
            "suppliesDistributions",
        ),
        (
            "query($f: SuppliesMovementFilter) { suppliesMovements(filter: $f) { totalCount } }",
            "suppliesMovements",
        ),
        (
            "query($f: SuppliesDonationFilter) { suppliesDonations(filter: $f) { totalCount } }",
            "suppliesDonations",
        ),
    ],
)
async def test_a_period_that_ends_before_it_starts_is_pointed_out(
    api: Api, depot: Depot, query: str, field: str
) -> None:
    # given a filter whose `until` lies before its `since`, and the same period the right way round
    reversed_period = {"since": "2026-03-01T00:00:00+08:00", "until": "2026-02-01T00:00:00+08:00"}
    ordered = {"since": reversed_period["until"], "until": reversed_period["since"]}
    # when each is listed
    refused = await api(query, {"f": reversed_period}, **depot.who)
    control = await api(query, {"f": ordered}, **depot.who)
    # then the reversed one is OUT_OF_RANGE on `until`, not an empty list; the ordered one answers
    assert [(e["extensions"]["code"], e["extensions"]["field"]) for e in refused["errors"]] == [
        ("OUT_OF_RANGE", ["filter", "until"])
    ]
    assert not control.get("errors")
    assert isinstance(control["data"][field]["totalCount"], int)


@pytest.mark.parametrize(
    ("days", "code"), [(-2147483648, "OUT_OF_RANGE"), (-1, "OUT_OF_RANGE"), (2147483647, "OUT_OF_RANGE")]
)
async def test_near_expiry_days_out_of_range_is_refused(api: Api, depot: Depot, days: int, code: str) -> None:
    # given a stock query for what expires within `days` (the fuzz test found huge values overflowing dates)
    query = "query($n: Int) { suppliesStock(nearExpiryDays: $n) { onHand } }"
    # when asked with an absurd count, and with a sensible one
    refused = await api(query, {"n": days}, **depot.who)
    fine = await api(query, {"n": 30}, **depot.who)
    # then the absurd one is a typed error on the argument, the sensible one answers
    assert [(e["extensions"]["code"], e["extensions"]["field"]) for e in refused["errors"]] == [
        (code, ["nearExpiryDays"])
    ]
    assert not fine.get("errors")
