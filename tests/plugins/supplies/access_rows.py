"""The supplies plugin's rows of the permission matrix (tests/schema/test_plugin_access.py), and its records
in the matrix's world."""

from __future__ import annotations

from typing import Any

from plugins.supplies import services as supplies
from schema import ids
from tests.plugin_access import (
    CONTACT_A,
    CONTACT_B,
    NULL,
    OK,
    N,
    PluginWorld,
    Read,
    Write,
    fixed,
    fresh_name,
    managers,
    no_vars,
    node,
    yuan,
)


async def build(p: PluginWorld) -> None:
    """Each organisation: two warehouses, an item, a donor with a contact, goods received from it, a planned
    distribution to one of its communities, and a money donation."""
    w = p.w
    for org, tag, quantity, contact in (("a", "甲", 100, CONTACT_A), ("b", "乙", 7, CONTACT_B)):
        async with p.staff(org) as ctx:
            warehouse = await supplies.create_warehouse(ctx, f"{tag}仓库")
            other = await supplies.create_warehouse(ctx, f"{tag}二仓库")
            item = await supplies.create_item(ctx, f"{tag}口罩", "medical_protection", "只")
            donor = await supplies.create_donor(ctx, f"{tag}企业", "organization", contact)
            receipt = await supplies.receive(
                ctx, warehouse_id=warehouse.id, item_id=item.id, quantity=quantity, donor_id=donor.id
            )
            sent = await supplies.distribute(
                ctx,
                warehouse_id=warehouse.id,
                item_id=item.id,
                quantity=2,
                community_id=w.ids["c1" if org == "a" else "c3"],
            )
            donation = await supplies.receive_money(ctx, donor.id, "5000", f"{tag}-001")
            p.pk |= {
                f"warehouse_{org}": warehouse.id,
                f"warehouse2_{org}": other.id,
                f"item_{org}": item.id,
                f"donor_{org}": donor.id,
                f"batch_{org}": receipt.batch_id,
                f"receipt_{org}": receipt.id,
                f"distribution_{org}": sent.id,
                f"donation_{org}": donation.id,
            }


async def _planned(p: PluginWorld, *, dispatched: bool = False, community: str = "c1") -> dict[str, Any]:
    async with p.staff() as ctx:
        d = await supplies.distribute(
            ctx, warehouse_id=p.pk["warehouse_a"], item_id=p.pk["item_a"], quantity=1, community_id=p.pk[community]
        )
        if dispatched:
            await supplies.dispatch(ctx, d.id)
    return {"id": ids.encode("SuppliesDistribution", d.id)}


async def _dispatched(p: PluginWorld) -> dict[str, Any]:
    return await _planned(p, dispatched=True)


async def _dispatched_elsewhere(p: PluginWorld) -> dict[str, Any]:
    return await _planned(p, dispatched=True, community="c2")


async def _adjustment(p: PluginWorld) -> dict[str, Any]:
    async with p.staff() as ctx:
        m = await supplies.adjust(
            ctx, batch_id=p.pk["batch_a"], warehouse_id=p.pk["warehouse_a"], delta=1, reason="盘点"
        )
    return {"m": ids.encode("SuppliesMovement", m.id)}


# Who may create a record in their own organisation (B's administrator creates in B: OK).
CREATE_SUPPLIES = managers(OK, OK, OK)
# Who may act on one of A's records (B's administrator: NOT_FOUND, as for a missing one).
ON_A_SUPPLIES = managers(OK, N, OK)

READS = [
    # -- supplies
    Read(
        "suppliesStock: whose stock",
        "{ r: suppliesStock { item warehouse onHand } }",
        no_vars,
        lambda d: sorted((x["item"], x["warehouse"], x["onHand"]) for x in d),
        managers(
            [("甲口罩", "甲仓库", 98)], [("乙口罩", "乙仓库", 5)], [("乙口罩", "乙仓库", 5), ("甲口罩", "甲仓库", 98)]
        ),
    ),
    Read(
        "suppliesDonors: names and contacts",
        "{ r: suppliesDonors { name contact } }",
        no_vars,
        lambda d: sorted((x["name"], x["contact"]) for x in d if not x["name"].startswith("w-")),
        managers([("甲企业", CONTACT_A)], [("乙企业", CONTACT_B)], [("乙企业", CONTACT_B), ("甲企业", CONTACT_A)]),
    ),
    Read(
        "suppliesReport: totals of the caller's organisation",
        "{ r: suppliesReport { category received distributed } }",
        no_vars,
        lambda d: sorted((x["category"], x["received"]) for x in d if x["received"]),
        managers([("medical_protection", 100)], [("medical_protection", 7)], [("medical_protection", 107)]),
    ),
    Read(
        "suppliesReportBy(warehouse)",
        '{ r: suppliesReportBy(by: "warehouse") { category received } }',
        no_vars,
        lambda d: sorted((x["category"], x["received"]) for x in d if x["received"]),
        managers([("甲仓库", 100)], [("乙仓库", 7)], [("乙仓库", 7), ("甲仓库", 100)]),
    ),
    Read(
        "suppliesReportByCsv(warehouse): which warehouses",
        '{ r: suppliesReportByCsv(by: "warehouse") }',
        no_vars,
        lambda d: sorted(w for w in ("甲仓库", "乙仓库") if w in d),
        managers(["甲仓库"], ["乙仓库"], ["乙仓库", "甲仓库"]),
    ),
    Read(
        "suppliesReportCsv: received",
        "{ r: suppliesReportCsv }",
        no_vars,
        lambda d: sorted(
            n for n in ("medical_protection,100", "medical_protection,7", "medical_protection,107") if n + "," in d
        ),
        managers(["medical_protection,100"], ["medical_protection,7"], ["medical_protection,107"]),
    ),
    Read(
        "suppliesReceivedByDonor",
        "{ r: suppliesReceivedByDonor { donor items money } }",
        no_vars,
        lambda d: sorted((x["donor"], x["items"], yuan(x["money"])) for x in d if not x["donor"].startswith("w-")),
        managers(
            [("甲企业", 100, "5000.00")],
            [("乙企业", 7, "5000.00")],
            [("乙企业", 7, "5000.00"), ("甲企业", 100, "5000.00")],
        ),
    ),
    Read(
        "suppliesTrace of A's batch",
        "query($b: ID!) { r: suppliesTrace(batchId: $b) { kind quantity } }",
        lambda p: {"b": p.gid("SuppliesBatch", "batch_a")},
        lambda d: [(x["kind"], x["quantity"]) for x in d][:2],
        managers([("receipt", 100), ("distribution", -2)], N, [("receipt", 100), ("distribution", -2)]),
    ),
    Read(
        "node: A's warehouse",
        *node("SuppliesWarehouse", "warehouse_a", "name", lambda d: d["name"]),
        managers("甲仓库", NULL, "甲仓库", others=NULL, anonymous=NULL),
    ),
    Read(
        "node: A's item",
        *node("SuppliesItem", "item_a", "name category", lambda d: (d["name"], d["category"])),
        managers(("甲口罩", "medical_protection"), NULL, ("甲口罩", "medical_protection"), others=NULL, anonymous=NULL),
    ),
    Read(
        "node: A's donor contact",
        *node("SuppliesDonor", "donor_a", "contact", lambda d: d["contact"]),
        managers(CONTACT_A, NULL, CONTACT_A, others=NULL, anonymous=NULL),
    ),
    Read(
        "node: A's receipt movement",
        *node("SuppliesMovement", "receipt_a", "kind quantity", lambda d: (d["kind"], d["quantity"])),
        managers(("receipt", 100), NULL, ("receipt", 100), others=NULL, anonymous=NULL),
    ),
    Read(
        "node: A's distribution",
        *node("SuppliesDistribution", "distribution_a", "status", lambda d: d["status"]),
        managers("planned", NULL, "planned", others=NULL, anonymous=NULL),
    ),
    Read(
        "node: A's money donation",
        *node("SuppliesMoneyDonation", "donation_a", "amount receiptNo", lambda d: (yuan(d["amount"]), d["receiptNo"])),
        managers(("5000.00", "甲-001"), NULL, ("5000.00", "甲-001"), others=NULL, anonymous=NULL),
    ),
]

WRITES = [
    # -- supplies
    Write(
        "suppliesCreateWarehouse",
        "mutation($n: String!) { r: suppliesCreateWarehouse(name: $n) { errors { code } } }",
        fixed(lambda p: {"n": fresh_name("仓库")}),
        CREATE_SUPPLIES,
    ),
    Write(
        "suppliesCreateItem",
        'mutation($n: String!) { r: suppliesCreateItem(name: $n, category: "food", unit: "袋") { errors { code } } }',
        fixed(lambda p: {"n": fresh_name("米")}),
        CREATE_SUPPLIES,
    ),
    Write(
        "suppliesCreateDonor",
        'mutation($n: String!) { r: suppliesCreateDonor(name: $n, kind: "person") { errors { code } } }',
        fixed(lambda p: {"n": fresh_name("捐赠人")}),
        CREATE_SUPPLIES,
    ),
    Write(
        "suppliesReceive into A's warehouse",
        "mutation($i: SuppliesReceiveInput!) { r: suppliesReceive(input: $i) { errors { code } } }",
        fixed(
            lambda p: {
                "i": {
                    "warehouseId": p.gid("SuppliesWarehouse", "warehouse_a"),
                    "itemId": p.gid("SuppliesItem", "item_a"),
                    "quantity": 1,
                }
            }
        ),
        ON_A_SUPPLIES,
    ),
    Write(
        "suppliesDistribute from A's warehouse",
        "mutation($i: SuppliesDistributeInput!) { r: suppliesDistribute(input: $i) { errors { code } } }",
        fixed(
            lambda p: {
                "i": {
                    "warehouseId": p.gid("SuppliesWarehouse", "warehouse_a"),
                    "itemId": p.gid("SuppliesItem", "item_a"),
                    "quantity": 1,
                    "communityId": ids.encode("Community", p.pk["c1"]),
                }
            }
        ),
        ON_A_SUPPLIES,
    ),
    Write(
        "suppliesDispatch A's planned distribution",
        "mutation($id: ID!) { r: suppliesDispatch(id: $id) { errors { code } } }",
        _planned,
        ON_A_SUPPLIES,
    ),
    Write(
        "suppliesConfirmDelivery of A's dispatched distribution",
        "mutation($id: ID!) { r: suppliesConfirmDelivery(id: $id) { errors { code } } }",
        _dispatched,
        managers(OK, N, OK, community_head=OK),  # the head of the receiving community (c1) confirms too
    ),
    Write(
        "suppliesConfirmDelivery to another community (c2) than the head's",
        "mutation($id: ID!) { r: suppliesConfirmDelivery(id: $id) { errors { code } } }",
        _dispatched_elsewhere,
        ON_A_SUPPLIES,
    ),
    Write(
        "suppliesReceiveMoney from A's donor",
        "mutation($d: ID!, $r: String!) {"
        ' r: suppliesReceiveMoney(donorId: $d, amount: "10", receiptNo: $r) { errors { code } } }',
        fixed(lambda p: {"d": p.gid("SuppliesDonor", "donor_a"), "r": fresh_name("收据")}),
        ON_A_SUPPLIES,
    ),
    Write(
        "suppliesAllocate from A's donation",
        'mutation($d: ID!) { r: suppliesAllocate(donationId: $d, amount: "1", purpose: "口罩") { errors { code } } }',
        fixed(lambda p: {"d": p.gid("SuppliesMoneyDonation", "donation_a")}),
        ON_A_SUPPLIES,
    ),
    Write(
        "suppliesTransfer between A's warehouses",
        "mutation($b: ID!, $f: ID!, $t: ID!) { r: suppliesTransfer(batchId: $b, fromWarehouseId: $f, toWarehouseId: $t,"
        " quantity: 1) { errors { code } } }",
        fixed(
            lambda p: {
                "b": p.gid("SuppliesBatch", "batch_a"),
                "f": p.gid("SuppliesWarehouse", "warehouse_a"),
                "t": p.gid("SuppliesWarehouse", "warehouse2_a"),
            }
        ),
        ON_A_SUPPLIES,
    ),
    Write(
        "suppliesAdjust A's stock",
        "mutation($b: ID!, $w: ID!) {"
        ' r: suppliesAdjust(batchId: $b, warehouseId: $w, delta: 1, reason: "盘点") { errors { code } } }',
        fixed(lambda p: {"b": p.gid("SuppliesBatch", "batch_a"), "w": p.gid("SuppliesWarehouse", "warehouse_a")}),
        ON_A_SUPPLIES,
    ),
    Write(
        "suppliesReverse A's adjustment",
        'mutation($m: ID!) { r: suppliesReverse(movementId: $m, reason: "更正") { errors { code } } }',
        _adjustment,
        ON_A_SUPPLIES,
    ),
]
