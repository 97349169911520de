"""Supplies through /graphql: idempotent retries, typed stock errors, and delivery moving a request on."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from core.models import Organization
from core.services import organizations
from core.services.context import ServiceContext
from core.vocab import OrganizationKind, RequestStatus
from plugins.supplies import services
from tests.factories import Factory
from tests.plugins.supplies.conftest import NewCommunity
from tests.schema.helpers import gid

DISTRIBUTE = """mutation($input: SuppliesDistributeInput!) { suppliesDistribute(input: $input) {
  distribution { id status } errors { code field } } }"""


async def test_supplies_over_graphql(  # type: ignore[no-untyped-def]
    api, make: Factory, supplies_org: Organization, staff_ctx: ServiceContext, new_community: NewCommunity
) -> None:
    # given an organisation with supplies enabled, 10 masks in its warehouse and a request in progress in
    # one of its communities
    org = supplies_org
    item = await services.create_item(staff_ctx, "N95口罩", "medical_protection", "只")
    warehouse = await services.create_warehouse(staff_ctx, "碑林仓库")
    await services.receive(staff_ctx, warehouse_id=warehouse.id, item_id=item.id, quantity=10)
    await staff_ctx.session.commit()
    request = await make.request(await new_community(), status=RequestStatus.IN_PROGRESS)
    staff = {"role": "organization_admin", "org": org.id}
    coordinator = {"role": "platform_admin", "org": org.id}
    base = {"warehouseId": gid("SuppliesWarehouse", warehouse.id), "itemId": gid("SuppliesItem", item.id)}
    # when a distribution is sent twice with one key, and one asks for more than is left
    first = await api(
        DISTRIBUTE, {"input": base | {"quantity": 6, "recipient": "隔离点", "idempotencyKey": "k1"}}, **staff
    )
    retry = await api(
        DISTRIBUTE, {"input": base | {"quantity": 6, "recipient": "隔离点", "idempotencyKey": "k1"}}, **staff
    )
    greedy = await api(DISTRIBUTE, {"input": base | {"quantity": 5, "recipient": "别处"}}, **staff)
    # then the retry returns the first distribution, stock moved once, and the overdraw is a typed error
    assert first["data"]["suppliesDistribute"]["distribution"] == retry["data"]["suppliesDistribute"]["distribution"]
    assert greedy["data"]["suppliesDistribute"] == {
        "distribution": None,
        "errors": [{"code": "INSUFFICIENT_STOCK", "field": ["input", "quantity"]}],
    }
    assert await make.ctx.session.scalar(text("SELECT sum(on_hand) FROM supplies_balances")) == 4
    # and goods delivered to a request in progress fulfil it through core's service
    for_request = await api(
        DISTRIBUTE, {"input": base | {"quantity": 4, "requestId": gid("HelpRequest", request.id)}}, **coordinator
    )
    distribution_id = for_request["data"]["suppliesDistribute"]["distribution"]["id"]
    for step in ("suppliesDispatch", "suppliesConfirmDelivery"):
        done = await api(
            f"mutation($id: ID!) {{ {step}(input: {{id: $id}}) {{ distribution {{ status }} errors {{ code }} }} }}",
            {"id": distribution_id},
            **coordinator,
        )
        assert done["data"][step]["errors"] == []
    status = await make.ctx.session.scalar(text("SELECT status FROM help_requests WHERE id = :id"), {"id": request.id})
    assert status == "fulfilled"
    report = await api("{ suppliesReportCsv }", **staff)
    assert report["data"]["suppliesReportCsv"].splitlines() == [
        "category,received,distributed,adjusted,on_hand,balanced",
        "medical_protection,10,10,0,0,true",
    ]


async def test_supplies_are_gated_per_organisation(api, make: Factory) -> None:  # type: ignore[no-untyped-def]
    other = await organizations.create_organization(make.ctx, name="别的机构", kind=OrganizationKind.AGENCY)
    await make.commit()
    body: Any = await api("{ suppliesReport { category } }", role="organization_admin", org=other.id)
    assert body["errors"][0]["extensions"]["code"] == "PLUGIN_DISABLED"


async def test_money_and_donor_contacts_over_graphql(api, make: Factory) -> None:  # type: ignore[no-untyped-def]
    org = await make.organization_using("supplies", "财务组")
    await make.community()
    await make.commit()
    staff = {"role": "organization_admin", "org": org.id}
    donor = await api(
        'mutation { suppliesCreateDonor(input: {name: "陕西慈善基金会", kind: ORGANIZATION, contact: "029-1"}) '
        "{ donor { id kind } errors { code } } }",
        **staff,
    )
    assert donor["data"]["suppliesCreateDonor"]["donor"]["kind"] == "ORGANIZATION"
    donor_id = donor["data"]["suppliesCreateDonor"]["donor"]["id"]
    money = (
        "mutation($i: SuppliesReceiveDonationInput!) { suppliesReceiveDonation(input: $i) "
        "{ donation { amount unallocated } errors { code field } } }"
    )
    ok = await api(money, {"i": {"donorId": donor_id, "amount": "30000.5", "receiptNo": "R-1"}}, **staff)
    negative = await api(money, {"i": {"donorId": donor_id, "amount": "-3", "receiptNo": "R-2"}}, **staff)
    # Money in and out is a string with two decimals
    assert ok["data"]["suppliesReceiveDonation"] == {
        "donation": {"amount": "30000.50", "unallocated": "30000.50"},
        "errors": [],
    }
    assert negative["data"]["suppliesReceiveDonation"]["errors"] == [
        {"code": "OUT_OF_RANGE", "field": ["input", "amount"]}
    ]
    # a third decimal (or a float) is not Money at all: the request is refused before any service runs
    bad = await api(money, {"i": {"donorId": donor_id, "amount": "1.005", "receiptNo": "R-3"}}, **staff)
    floating = await api(money, {"i": {"donorId": donor_id, "amount": 1.5, "receiptNo": "R-4"}}, **staff)
    assert bad.get("data") is None
    assert floating.get("data") is None
    assert bad["errors"][0]["extensions"]["code"] == floating["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert await make.ctx.session.scalar(text("SELECT count(*) FROM supplies_money_donations")) == 1
    # donor contacts: supplies staff yes, a community head of the same organisation no
    donors = "{ suppliesDonors { nodes { contact } } }"
    assert (await api(donors, **staff))["data"]["suppliesDonors"]["nodes"] == [{"contact": "029-1"}]
    head = await api(donors, role="community_head", org=org.id)
    assert head["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_money_retries_with_a_key_apply_once(api, make: Factory) -> None:  # type: ignore[no-untyped-def]
    org = await make.organization_using("supplies", "财务")
    await make.commit()
    staff = {"role": "organization_admin", "org": org.id}
    donor = await api('mutation { suppliesCreateDonor(input: {name: "个人", kind: PERSON}) { donor { id } } }', **staff)
    query = (
        'mutation($d: ID!) { suppliesReceiveDonation(input: {donorId: $d, amount: "200", receiptNo: "R-9", '
        'idempotencyKey: "pay-9"}) { donation { id amount } errors { code } } }'
    )
    variables = {"d": donor["data"]["suppliesCreateDonor"]["donor"]["id"]}
    one = await api(query, variables, **staff)
    two = await api(query, variables, **staff)
    assert one["data"]["suppliesReceiveDonation"] == two["data"]["suppliesReceiveDonation"]
    assert one["data"]["suppliesReceiveDonation"]["donation"]["amount"] == "200.00"
    assert await make.ctx.session.scalar(text("SELECT count(*) FROM supplies_money_donations")) == 1
