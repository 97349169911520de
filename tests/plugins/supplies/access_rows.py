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
)


async def build(p: PluginWorld) -> None:
    """Each organisation: two warehouses, an item, a donor with a contact, goods received from it, a planned
    distribution to one of its communities, a money donation and an allocation from it."""
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
                note=f"{tag}首批",
            )
            donation = await supplies.receive_money(ctx, donor.id, "5000", f"{tag}-001")
            allocation = await supplies.allocate(ctx, donation.id, "1200", f"{tag}采购")
            p.pk |= {
                f"warehouse_{org}": warehouse.id,
                f"warehouse2_{org}": other.id,
                f"item_{org}": item.id,
                f"donor_{org}": donor.id,
                f"batch_{org}": receipt.batch_id,
                f"receipt_{org}": receipt.id,
                f"distribution_{org}": sent.id,
                f"donation_{org}": donation.id,
                f"allocation_{org}": allocation.id,
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


def _nodes(d: Any) -> list[Any]:
    return [e["node"] for e in d["edges"]]


def _built(d: Any, key: str = "name") -> list[Any]:
    """The world's own records of a connection (the write rows add `w-…` ones as they run)."""
    return sorted(x[key] for x in _nodes(d) if not str(x[key]).startswith("w-"))


def _listed(field: str, fields: str, key: str = "name", args: str = "") -> tuple[str, Any, Any]:
    return f"{{ r: {field}{args} {{ totalCount edges {{ node {{ {fields} }} }} }} }}", no_vars, lambda d: _built(d, key)


READS = [
    # -- supplies: lists
    Read(
        "suppliesStock: whose stock",
        "{ r: suppliesStock { item { name } warehouse { name } batch { code } onHand } }",
        no_vars,
        lambda d: sorted((x["item"]["name"], x["warehouse"]["name"], x["onHand"]) for x in d),
        managers(
            [("甲口罩", "甲仓库", 98)], [("乙口罩", "乙仓库", 5)], [("乙口罩", "乙仓库", 5), ("甲口罩", "甲仓库", 98)]
        ),
    ),
    Read(
        "suppliesWarehouses: names",
        *_listed("suppliesWarehouses", "name address"),
        managers(["甲二仓库", "甲仓库"], ["乙二仓库", "乙仓库"], ["乙二仓库", "乙仓库", "甲二仓库", "甲仓库"]),
    ),
    Read(
        "suppliesItems: names",
        *_listed("suppliesItems", "name category unit batched"),
        managers(["甲口罩"], ["乙口罩"], ["乙口罩", "甲口罩"]),
    ),
    Read(
        "suppliesDonors: names and contacts",
        "{ r: suppliesDonors { edges { node { name contact kind } } } }",
        no_vars,
        lambda d: sorted((x["name"], x["contact"], x["kind"]) for x in _nodes(d) if not x["name"].startswith("w-")),
        managers(
            [("甲企业", CONTACT_A, "ORGANIZATION")],
            [("乙企业", CONTACT_B, "ORGANIZATION")],
            [("乙企业", CONTACT_B, "ORGANIZATION"), ("甲企业", CONTACT_A, "ORGANIZATION")],
        ),
    ),
    Read(
        "suppliesDonations: receipts, amounts and donors",
        "{ r: suppliesDonations { edges { node { receiptNo amount unallocated donor { name } } } } }",
        no_vars,
        lambda d: sorted(
            (x["receiptNo"], x["amount"], x["donor"]["name"]) for x in _nodes(d) if not x["receiptNo"].startswith("w-")
        ),
        managers(
            [("甲-001", "5000.00", "甲企业")],
            [("乙-001", "5000.00", "乙企业")],
            [("乙-001", "5000.00", "乙企业"), ("甲-001", "5000.00", "甲企业")],
        ),
    ),
    Read(
        "suppliesAllocations: purposes and amounts",
        "{ r: suppliesAllocations { edges { node { purpose amount donation { receiptNo } } } } }",
        no_vars,
        lambda d: sorted(
            (x["purpose"], x["amount"], x["donation"]["receiptNo"])
            for x in _nodes(d)
            if not x["purpose"].startswith("w-")
        ),
        managers(
            [("甲采购", "1200.00", "甲-001")],
            [("乙采购", "1200.00", "乙-001")],
            [("乙采购", "1200.00", "乙-001"), ("甲采购", "1200.00", "甲-001")],
        ),
    ),
    Read(
        "suppliesDistributions: the world's first distributions, with item, warehouse and community",
        "{ r: suppliesDistributions { edges { node { note status quantity item { name } warehouse { name }"
        " community { name } } } } }",
        no_vars,
        lambda d: sorted(
            (x["note"], x["status"], x["quantity"], x["item"]["name"], x["warehouse"]["name"], x["community"]["name"])
            for x in _nodes(d)
            if x["note"]
        ),
        managers(
            [("甲首批", "PLANNED", 2, "甲口罩", "甲仓库", "社区c1")],
            [("乙首批", "PLANNED", 2, "乙口罩", "乙仓库", "社区c3")],
            [
                ("乙首批", "PLANNED", 2, "乙口罩", "乙仓库", "社区c3"),
                ("甲首批", "PLANNED", 2, "甲口罩", "甲仓库", "社区c1"),
            ],
        ),
    ),
    Read(
        "suppliesMovements: receipts of the world (writes receive 1 at a time)",
        "{ r: suppliesMovements(filter: {kinds: [RECEIPT]}) { edges { node { quantity warehouse { name } } } } }",
        no_vars,
        lambda d: sorted((x["warehouse"]["name"], x["quantity"]) for x in _nodes(d) if x["quantity"] > 1),
        managers([("甲仓库", 100)], [("乙仓库", 7)], [("乙仓库", 7), ("甲仓库", 100)]),
    ),
    Read(
        "suppliesTrace of A's batch: donor, item and the first movements",
        "query($b: ID!) { r: suppliesTrace(batchId: $b) { code donor { name } item { name }"
        " movements(first: 2) { edges { node { kind quantity } } } } }",
        lambda p: {"b": p.gid("SuppliesBatch", "batch_a")},
        lambda d: (d["donor"]["name"], d["item"]["name"], [(x["kind"], x["quantity"]) for x in _nodes(d["movements"])]),
        managers(
            ("甲企业", "甲口罩", [("RECEIPT", 100), ("DISTRIBUTION", -2)]),
            N,
            ("甲企业", "甲口罩", [("RECEIPT", 100), ("DISTRIBUTION", -2)]),
        ),
    ),
    # -- supplies: reports
    Read(
        "suppliesReport: totals of the caller's organisation",
        "{ r: suppliesReport { category received distributed } }",
        no_vars,
        lambda d: sorted((x["category"], x["received"]) for x in d if x["received"]),
        managers([("MEDICAL_PROTECTION", 100)], [("MEDICAL_PROTECTION", 7)], [("MEDICAL_PROTECTION", 107)]),
    ),
    Read(
        "suppliesReportBy(WAREHOUSE)",
        "{ r: suppliesReportBy(by: WAREHOUSE) { key received } }",
        no_vars,
        lambda d: sorted((x["key"], x["received"]) for x in d if x["received"]),
        managers([("甲仓库", 100)], [("乙仓库", 7)], [("乙仓库", 7), ("甲仓库", 100)]),
    ),
    Read(
        "suppliesReportByCsv(WAREHOUSE): which warehouses",
        "{ r: suppliesReportByCsv(by: WAREHOUSE) }",
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
        "{ r: suppliesReceivedByDonor { donor { name } items money } }",
        no_vars,
        lambda d: sorted(
            (x["donor"]["name"], x["items"], x["money"]) for x in d if not x["donor"]["name"].startswith("w-")
        ),
        managers(
            [("甲企业", 100, "5000.00")],
            [("乙企业", 7, "5000.00")],
            [("乙企业", 7, "5000.00"), ("甲企业", 100, "5000.00")],
        ),
    ),
    # -- supplies: node(id:) of every type
    Read(
        "node: A's warehouse",
        *node("SuppliesWarehouse", "warehouse_a", "name", lambda d: d["name"]),
        managers("甲仓库", NULL, "甲仓库", others=NULL, anonymous=NULL),
    ),
    Read(
        "node: A's item",
        *node("SuppliesItem", "item_a", "name category", lambda d: (d["name"], d["category"])),
        managers(("甲口罩", "MEDICAL_PROTECTION"), NULL, ("甲口罩", "MEDICAL_PROTECTION"), others=NULL, anonymous=NULL),
    ),
    Read(
        "node: A's donor contact",
        *node("SuppliesDonor", "donor_a", "contact", lambda d: d["contact"]),
        managers(CONTACT_A, NULL, CONTACT_A, others=NULL, anonymous=NULL),
    ),
    Read(
        "node: A's batch, its item and donor",
        *node(
            "SuppliesBatch",
            "batch_a",
            "code onHand item { name } donor { name contact }",
            lambda d: (d["item"]["name"], d["donor"]["name"], d["donor"]["contact"]),
        ),
        managers(("甲口罩", "甲企业", CONTACT_A), NULL, ("甲口罩", "甲企业", CONTACT_A), others=NULL, anonymous=NULL),
    ),
    Read(
        "node: A's receipt movement",
        *node("SuppliesMovement", "receipt_a", "kind quantity", lambda d: (d["kind"], d["quantity"])),
        managers(("RECEIPT", 100), NULL, ("RECEIPT", 100), others=NULL, anonymous=NULL),
    ),
    Read(
        "node: A's distribution",
        *node(
            "SuppliesDistribution",
            "distribution_a",
            "status quantity item { name }",
            lambda d: (d["status"], d["quantity"], d["item"]["name"]),
        ),
        managers(("PLANNED", 2, "甲口罩"), NULL, ("PLANNED", 2, "甲口罩"), others=NULL, anonymous=NULL),
    ),
    Read(
        "node: A's money donation",
        *node("SuppliesMoneyDonation", "donation_a", "amount receiptNo", lambda d: (d["amount"], d["receiptNo"])),
        managers(("5000.00", "甲-001"), NULL, ("5000.00", "甲-001"), others=NULL, anonymous=NULL),
    ),
    Read(
        "node: A's allocation",
        *node("SuppliesMoneyAllocation", "allocation_a", "amount purpose", lambda d: (d["amount"], d["purpose"])),
        managers(("1200.00", "甲采购"), NULL, ("1200.00", "甲采购"), others=NULL, anonymous=NULL),
    ),
]


def _mutation(field: str, input_type: str, fields: str = "") -> str:
    return f"mutation($i: {input_type}!) {{ r: {field}(input: $i) {{ {fields} errors {{ code }} }} }}"


def _on_distribution(field: str, extra: str = "") -> str:
    return f"mutation($id: ID!) {{ r: {field}(input: {{id: $id{extra}}}) {{ errors {{ code }} }} }}"


WRITES = [
    # -- supplies
    Write(
        "suppliesCreateWarehouse",
        _mutation("suppliesCreateWarehouse", "SuppliesCreateWarehouseInput"),
        fixed(lambda p: {"i": {"name": fresh_name("仓库")}}),
        CREATE_SUPPLIES,
    ),
    Write(
        "suppliesCreateItem",
        _mutation("suppliesCreateItem", "SuppliesCreateItemInput"),
        fixed(lambda p: {"i": {"name": fresh_name("米"), "category": "FOOD", "unit": "袋"}}),
        CREATE_SUPPLIES,
    ),
    Write(
        "suppliesCreateDonor",
        _mutation("suppliesCreateDonor", "SuppliesCreateDonorInput"),
        fixed(lambda p: {"i": {"name": fresh_name("捐赠人"), "kind": "PERSON"}}),
        CREATE_SUPPLIES,
    ),
    Write(
        "suppliesReceive into A's warehouse from A's donor",
        _mutation("suppliesReceive", "SuppliesReceiveInput"),
        fixed(
            lambda p: {
                "i": {
                    "warehouseId": p.gid("SuppliesWarehouse", "warehouse_a"),
                    "itemId": p.gid("SuppliesItem", "item_a"),
                    "donorId": p.gid("SuppliesDonor", "donor_a"),
                    "quantity": 1,
                }
            }
        ),
        ON_A_SUPPLIES,
    ),
    Write(
        "suppliesDistribute from A's warehouse",
        _mutation("suppliesDistribute", "SuppliesDistributeInput"),
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
        _on_distribution("suppliesDispatch"),
        _planned,
        ON_A_SUPPLIES,
    ),
    Write(
        "suppliesCancelDistribution of A's planned distribution",
        _on_distribution("suppliesCancelDistribution", ', reason: "改期"'),
        _planned,
        ON_A_SUPPLIES,
    ),
    Write(
        "suppliesConfirmDelivery of A's dispatched distribution",
        _on_distribution("suppliesConfirmDelivery"),
        _dispatched,
        managers(OK, N, OK, community_head=OK),  # the head of the receiving community (c1) confirms too
    ),
    Write(
        "suppliesConfirmDelivery to another community (c2) than the head's",
        _on_distribution("suppliesConfirmDelivery"),
        _dispatched_elsewhere,
        ON_A_SUPPLIES,
    ),
    Write(
        "suppliesReceiveDonation from A's donor",
        _mutation("suppliesReceiveDonation", "SuppliesReceiveDonationInput"),
        fixed(
            lambda p: {
                "i": {"donorId": p.gid("SuppliesDonor", "donor_a"), "amount": "10", "receiptNo": fresh_name("收据")}
            }
        ),
        ON_A_SUPPLIES,
    ),
    Write(
        "suppliesAllocate from A's donation",
        _mutation("suppliesAllocate", "SuppliesAllocateInput"),
        fixed(
            lambda p: {
                "i": {"donationId": p.gid("SuppliesMoneyDonation", "donation_a"), "amount": "1", "purpose": "w-口罩"}
            }
        ),
        ON_A_SUPPLIES,
    ),
    Write(
        "suppliesTransfer between A's warehouses",
        _mutation("suppliesTransfer", "SuppliesTransferInput"),
        fixed(
            lambda p: {
                "i": {
                    "batchId": p.gid("SuppliesBatch", "batch_a"),
                    "fromWarehouseId": p.gid("SuppliesWarehouse", "warehouse_a"),
                    "toWarehouseId": p.gid("SuppliesWarehouse", "warehouse2_a"),
                    "quantity": 1,
                }
            }
        ),
        ON_A_SUPPLIES,
    ),
    Write(
        "suppliesAdjust A's stock",
        _mutation("suppliesAdjust", "SuppliesAdjustInput"),
        fixed(
            lambda p: {
                "i": {
                    "batchId": p.gid("SuppliesBatch", "batch_a"),
                    "warehouseId": p.gid("SuppliesWarehouse", "warehouse_a"),
                    "delta": 1,
                    "reason": "盘点",
                }
            }
        ),
        ON_A_SUPPLIES,
    ),
    Write(
        "suppliesReverse A's adjustment",
        'mutation($m: ID!) { r: suppliesReverse(input: {movementId: $m, reason: "更正"}) { errors { code } } }',
        _adjustment,
        ON_A_SUPPLIES,
    ),
]
