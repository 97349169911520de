"""GraphQL of the supplies plugin. Root fields start with `supplies`, types with `Supplies`.

One API style, as core's: every mutation takes one `input` and answers a payload with `errors`; statuses,
categories and kinds are enums (UPPER_CASE in GraphQL, the services keep their lower-case strings); money is
`Money`; every type with an id is a Relay node; references are objects, loaded in batches; lists that can grow
are cursor connections. Resolvers only translate: the rules live in plugins/supplies/services.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import strawberry
from strawberry import Info, relay

import core
from plugins.supplies import loaders, services
from plugins.supplies.models import (
    Batch,
    Distribution,
    Donor,
    Item,
    MoneyAllocation,
    MoneyDonation,
    Movement,
    Warehouse,
)
from schema import api as gql

# -- enums (GraphQL UPPER_CASE names, the database's lower-case strings as values) --------------------------------


@strawberry.enum(description="What kind of goods an item is.")
class SuppliesItemCategory(Enum):
    MEDICAL_PROTECTION = "medical_protection"
    FOOD = "food"
    DAILY_NECESSITIES = "daily_necessities"
    MEDICINE = "medicine"
    INFANT_SUPPLIES = "infant_supplies"
    EQUIPMENT = "equipment"


@strawberry.enum(description="Who gave: an organisation or a person.")
class SuppliesDonorKind(Enum):
    ORGANIZATION = "organization"
    PERSON = "person"


@strawberry.enum(description="What a ledger movement records (into a warehouse positive, out of it negative).")
class SuppliesMovementKind(Enum):
    RECEIPT = "receipt"
    TRANSFER_OUT = "transfer_out"
    TRANSFER_IN = "transfer_in"
    DISTRIBUTION = "distribution"
    RETURN = "return"
    ADJUSTMENT = "adjustment"
    REVERSAL = "reversal"


@strawberry.enum(
    description="Where a distribution is: PLANNED (stock reserved) → DISPATCHED → DELIVERED, or PLANNED → CANCELLED."
)
class SuppliesDistributionStatus(Enum):
    PLANNED = "planned"
    DISPATCHED = "dispatched"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


@strawberry.enum(description="What suppliesReportBy groups by.")
class SuppliesReportDimension(Enum):
    CATEGORY = "category"
    WAREHOUSE = "warehouse"
    COMMUNITY = "community"
    DONOR = "donor"


def _values(members: Iterable[Enum] | None) -> tuple[str, ...]:
    return tuple(m.value for m in members or ())


def _id(raw: str | None, type_name: str, *field: str) -> int | None:
    return gql.decode_optional_id(raw, type_name, field)


def _pk(raw: str, type_name: str, *field: str) -> int:
    return gql.decode_id(raw, type_name, field)


def _money(fen: int) -> Decimal:
    return Decimal(fen) / services.FEN_PER_YUAN


async def _resolve_nodes(
    info: Info, node_ids: Iterable[str], model: type, convert: Callable[[Any], Any], required: bool
) -> list[Any]:
    """node(id:) for a supplies type: rows the caller may see (row-level security: their organisation's),
    None for the others -- exactly as for ids that do not exist. Needs supplies.manage, as the lists do."""
    return await gql.resolve_node_rows(
        info, node_ids, lambda ctx, pks: services.rows_by_id(ctx, model, pks), convert, required
    )


# -- catalogue --------------------------------------------------------------------------------------------------------


@strawberry.type(description="An item of the organisation's catalogue.")
class SuppliesItem(relay.Node):
    id: relay.NodeID[int]
    name: str
    category: SuppliesItemCategory
    unit: str
    batched: bool = strawberry.field(description="Tracked by batch with an expiry date (first expiry first out).")

    @classmethod
    def of(cls, i: Any) -> SuppliesItem:
        return cls(
            id=i.id, name=i.name, category=SuppliesItemCategory(i.category), unit=i.unit, batched=bool(i.batched)
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Item, cls.of, required)


@strawberry.type(description="A warehouse of the organisation.")
class SuppliesWarehouse(relay.Node):
    id: relay.NodeID[int]
    name: str
    address: str

    @classmethod
    def of(cls, w: Any) -> SuppliesWarehouse:
        return cls(id=w.id, name=w.name, address=w.address)

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Warehouse, cls.of, required)


@strawberry.type(description="A donor. Contact details are for supplies staff (supplies.manage) only.")
class SuppliesDonor(relay.Node):
    id: relay.NodeID[int]
    name: str
    kind: SuppliesDonorKind
    contact_value: strawberry.Private[str]

    @classmethod
    def of(cls, d: Any) -> SuppliesDonor:
        return cls(id=d.id, name=d.name, kind=SuppliesDonorKind(d.kind), contact_value=d.contact)

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Donor, cls.of, required)

    @strawberry.field(description="Sensitive: raw for supplies staff, masked for anyone else.")
    def contact(self, info: Info) -> str:
        if core.can(info.context.viewer, "supplies.manage"):
            return self.contact_value
        return core.mask_phone(self.contact_value) or ""


# -- the ledger ---------------------------------------------------------------------------------------------------


@strawberry.type(description="A lot of one item from one donor (a donation line's goods), with its expiry.")
class SuppliesBatch(relay.Node):
    id: relay.NodeID[int]
    code: str = strawberry.field(description="The lot code ('' for unbatched items).")
    expires_on: date | None
    item_id: strawberry.Private[int]
    donor_id: strawberry.Private[int | None]

    @classmethod
    def of(cls, b: Any) -> SuppliesBatch:
        return cls(id=b.id, code=b.code, expires_on=b.expires_on, item_id=b.item_id, donor_id=b.donor_id)

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Batch, cls.of, required)

    @strawberry.field
    async def item(self, info: Info) -> SuppliesItem:
        return await gql.load_required(info, Item, self.item_id, SuppliesItem.of)

    @strawberry.field(description="Who gave it (null: goods without a recorded donor).")
    async def donor(self, info: Info) -> SuppliesDonor | None:
        return await gql.load(info, Donor, self.donor_id, SuppliesDonor.of)

    @strawberry.field(description="On hand now, in every warehouse.")
    async def on_hand(self, info: Info) -> int:
        return await loaders.batch_on_hand(info, self.id)

    @strawberry.field(description="The trace: every movement of this batch in ledger order, receipt to delivery.")
    async def movements(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> gql.Connection[SuppliesMovement]:
        return await loaders.nested_connection(
            info,
            "movements_by_batch",
            Movement,
            Movement.batch_id,
            services.LEDGER_ORDER,
            self.id,
            first,
            after,
            SuppliesMovement.of,
        )


@strawberry.type(description="One entry of the append-only stock ledger (corrections are reversals, never edits).")
class SuppliesMovement(relay.Node):
    id: relay.NodeID[int]
    kind: SuppliesMovementKind
    quantity: int = strawberry.field(description="Signed: into the warehouse positive, out of it negative.")
    at: datetime
    reason: str
    actor: str = strawberry.field(description="Who recorded it.")
    batch_id: strawberry.Private[int]
    warehouse_id: strawberry.Private[int]
    distribution_id: strawberry.Private[int | None]
    reverses_id: strawberry.Private[int | None]

    @classmethod
    def of(cls, m: Any) -> SuppliesMovement:
        return cls(
            id=m.id,
            kind=SuppliesMovementKind(m.kind),
            quantity=m.quantity,
            at=m.at,
            reason=m.reason,
            actor=m.actor,
            batch_id=m.batch_id,
            warehouse_id=m.warehouse_id,
            distribution_id=m.distribution_id,
            reverses_id=m.reverses_id,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Movement, cls.of, required)

    @strawberry.field
    async def batch(self, info: Info) -> SuppliesBatch:
        return await gql.load_required(info, Batch, self.batch_id, SuppliesBatch.of)

    @strawberry.field
    async def warehouse(self, info: Info) -> SuppliesWarehouse:
        return await gql.load_required(info, Warehouse, self.warehouse_id, SuppliesWarehouse.of)

    @strawberry.field(description="The distribution it belongs to (distribution and return movements).")
    async def distribution(self, info: Info) -> SuppliesDistribution | None:
        return await gql.load(info, Distribution, self.distribution_id, SuppliesDistribution.of)

    @strawberry.field(description="The movement a reversal undoes.")
    async def reverses(self, info: Info) -> SuppliesMovement | None:
        return await gql.load(info, Movement, self.reverses_id, SuppliesMovement.of)


# -- distributions -----------------------------------------------------------------------------------------------


@strawberry.type(description="Goods out of a warehouse to one recipient: a community, a help request or a person.")
class SuppliesDistribution(relay.Node):
    id: relay.NodeID[int]
    status: SuppliesDistributionStatus
    recipient: str = strawberry.field(description="A person's name, when it goes to neither a community nor a request.")
    note: str
    delivered_quantity: int | None = strawberry.field(
        description="Confirmed as arrived (set at delivery; less than `quantity` came back into stock)."
    )
    created_at: datetime = strawberry.field(description="When it was planned (and the stock reserved).")
    dispatched_at: datetime | None
    confirmed_at: datetime | None = strawberry.field(description="When delivery was confirmed.")
    confirmed_by: str
    cancelled_at: datetime | None
    cancel_reason: str
    warehouse_id: strawberry.Private[int]
    community_id: strawberry.Private[int | None]
    request_id: strawberry.Private[int | None]

    @classmethod
    def of(cls, d: Any) -> SuppliesDistribution:
        return cls(
            id=d.id,
            status=SuppliesDistributionStatus(d.status),
            recipient=d.recipient,
            note=d.note,
            delivered_quantity=d.delivered_quantity,
            created_at=d.created_at,
            dispatched_at=d.dispatched_at,
            confirmed_at=d.confirmed_at,
            confirmed_by=d.confirmed_by,
            cancelled_at=d.cancelled_at,
            cancel_reason=d.cancel_reason,
            warehouse_id=d.warehouse_id,
            community_id=d.community_id,
            request_id=d.request_id,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Distribution, cls.of, required)

    @strawberry.field(description="What goes out.")
    async def item(self, info: Info) -> SuppliesItem:
        item_id, _ = await loaders.distribution_line(info, self.id)
        return await gql.load_required(info, Item, item_id or 0, SuppliesItem.of)

    @strawberry.field(description="How much was planned (taken from stock, earliest expiry first).")
    async def quantity(self, info: Info) -> int:
        _, quantity = await loaders.distribution_line(info, self.id)
        return quantity

    @strawberry.field
    async def warehouse(self, info: Info) -> SuppliesWarehouse:
        return await gql.load_required(info, Warehouse, self.warehouse_id, SuppliesWarehouse.of)

    @strawberry.field(description="The receiving community (null: it goes to a request or a person).")
    async def community(self, info: Info) -> gql.Community | None:
        if self.community_id is None:
            return None
        found = await info.context.loaders.community.load(self.community_id)
        return None if found is None else gql.Community.from_model(found)

    @strawberry.field(description="The help request it serves (null: none, or outside what you may see).")
    async def request(self, info: Info) -> gql.HelpRequest | None:
        if self.request_id is None:
            return None
        found = await info.context.loaders.help_request.load(self.request_id)
        return None if found is None else gql.HelpRequest.from_model(found)

    @strawberry.field(description="Its ledger movements: what planning took, and what came back. Supplies staff.")
    async def movements(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> gql.Connection[SuppliesMovement]:
        return await loaders.nested_connection(
            info,
            "movements_by_distribution",
            Movement,
            Movement.distribution_id,
            services.LEDGER_ORDER,
            self.id,
            first,
            after,
            SuppliesMovement.of,
        )


# -- money ----------------------------------------------------------------------------------------------------------


@strawberry.type(description="Money received from a donor.")
class SuppliesMoneyDonation(relay.Node):
    id: relay.NodeID[int]
    amount: gql.Money
    receipt_no: str
    purpose: str
    received_at: datetime
    donor_id: strawberry.Private[int]

    @classmethod
    def of(cls, m: Any) -> SuppliesMoneyDonation:
        return cls(
            id=m.id,
            amount=gql.Money(_money(m.amount_fen)),
            receipt_no=m.receipt_no,
            purpose=m.purpose,
            received_at=m.received_at,
            donor_id=m.donor_id,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, MoneyDonation, cls.of, required)

    @strawberry.field
    async def donor(self, info: Info) -> SuppliesDonor:
        return await gql.load_required(info, Donor, self.donor_id, SuppliesDonor.of)

    @strawberry.field(description="What is left to allocate (derived from the allocations, never stored).")
    async def unallocated(self, info: Info) -> gql.Money:
        return gql.Money(self.amount - _money(await loaders.allocated_fen(info, self.id)))

    @strawberry.field(description="What was assigned from it, oldest first.")
    async def allocations(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> gql.Connection[SuppliesMoneyAllocation]:
        return await loaders.nested_connection(
            info,
            "allocations_by_donation",
            MoneyAllocation,
            MoneyAllocation.donation_id,
            services.ALLOCATION_ORDER,
            self.id,
            first,
            after,
            SuppliesMoneyAllocation.of,
        )


@strawberry.type(description="Part of a money donation assigned to a purchase or programme.")
class SuppliesMoneyAllocation(relay.Node):
    id: relay.NodeID[int]
    amount: gql.Money
    purpose: str
    created_at: datetime
    donation_id: strawberry.Private[int]

    @classmethod
    def of(cls, a: Any) -> SuppliesMoneyAllocation:
        return cls(
            id=a.id,
            amount=gql.Money(_money(a.amount_fen)),
            purpose=a.purpose,
            created_at=a.created_at,
            donation_id=a.donation_id,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, MoneyAllocation, cls.of, required)

    @strawberry.field
    async def donation(self, info: Info) -> SuppliesMoneyDonation:
        return await gql.load_required(info, MoneyDonation, self.donation_id, SuppliesMoneyDonation.of)


# -- reports --------------------------------------------------------------------------------------------------------


@strawberry.type(
    description="Per category; `balanced` checks opening + received + adjusted + transferred = on hand + distributed."
)
class SuppliesReportRow:
    category: SuppliesItemCategory
    opening: int = strawberry.field(description="Stock at the start of the period (0 for an all-time report).")
    received: int
    distributed: int = strawberry.field(description="Net of returns (and of cancelled distributions).")
    adjusted: int = strawberry.field(description="Adjustments and reversals.")
    transferred_net: int = strawberry.field(description="Transfers in minus out (0 within one organisation).")
    on_hand: int = strawberry.field(description="At the end of the period.")
    balanced: bool


@strawberry.type(description="One group of suppliesReportBy.")
class SuppliesReportByRow:
    key: str = strawberry.field(
        description="The category (its SuppliesItemCategory name), warehouse, community or donor name; '—' for none."
    )
    received: int
    distributed: int = strawberry.field(description="Net of returns.")
    on_hand: int = strawberry.field(description="0 by community (stock lies in warehouses, not communities).")


@strawberry.type(description="What one donor gave.")
class SuppliesDonorTotal:
    items: int = strawberry.field(description="Goods received (units).")
    money: gql.Money
    donor_id: strawberry.Private[int]

    @strawberry.field
    async def donor(self, info: Info) -> SuppliesDonor:
        return await gql.load_required(info, Donor, self.donor_id, SuppliesDonor.of)


@strawberry.type(description="On hand of one batch in one warehouse.")
class SuppliesStockLine:
    expires_on: date | None
    on_hand: int
    item_id: strawberry.Private[int]
    warehouse_id: strawberry.Private[int]
    batch_id: strawberry.Private[int]

    @strawberry.field
    async def item(self, info: Info) -> SuppliesItem:
        return await gql.load_required(info, Item, self.item_id, SuppliesItem.of)

    @strawberry.field
    async def warehouse(self, info: Info) -> SuppliesWarehouse:
        return await gql.load_required(info, Warehouse, self.warehouse_id, SuppliesWarehouse.of)

    @strawberry.field
    async def batch(self, info: Info) -> SuppliesBatch:
        return await gql.load_required(info, Batch, self.batch_id, SuppliesBatch.of)


# -- payloads -------------------------------------------------------------------------------------------------------

SuppliesItemPayload = gql.payload("SuppliesItemPayload", "item", SuppliesItem)
SuppliesWarehousePayload = gql.payload("SuppliesWarehousePayload", "warehouse", SuppliesWarehouse)
SuppliesDonorPayload = gql.payload("SuppliesDonorPayload", "donor", SuppliesDonor)
SuppliesMovementPayload = gql.payload("SuppliesMovementPayload", "movement", SuppliesMovement)
SuppliesDistributionPayload = gql.payload("SuppliesDistributionPayload", "distribution", SuppliesDistribution)
SuppliesMoneyDonationPayload = gql.payload("SuppliesMoneyDonationPayload", "donation", SuppliesMoneyDonation)
SuppliesAllocationPayload = gql.payload("SuppliesAllocationPayload", "allocation", SuppliesMoneyAllocation)

IDEMPOTENCY = "A retry with the same key (per organisation) and the same input applies nothing twice."

# -- inputs ---------------------------------------------------------------------------------------------------------


@strawberry.input
class SuppliesCreateItemInput:
    name: str
    category: SuppliesItemCategory
    unit: str
    batched: bool = strawberry.field(default=False, description="Tracked by batch: receipts need an expiry date.")


@strawberry.input
class SuppliesCreateWarehouseInput:
    name: str
    address: str = ""


@strawberry.input
class SuppliesCreateDonorInput:
    name: str
    kind: SuppliesDonorKind
    contact: str = ""


@strawberry.input(description="Goods into a warehouse (a donation line).")
class SuppliesReceiveInput:
    warehouse_id: strawberry.ID
    item_id: strawberry.ID
    quantity: int
    donor_id: strawberry.ID | None = strawberry.field(default=None, description="Who gave the goods.")
    batch_code: str = ""
    expires_on: date | None = strawberry.field(default=None, description="Required for batched items.")
    idempotency_key: str | None = strawberry.field(default=None, description=IDEMPOTENCY)


@strawberry.input
class SuppliesTransferInput:
    batch_id: strawberry.ID
    from_warehouse_id: strawberry.ID
    to_warehouse_id: strawberry.ID
    quantity: int
    idempotency_key: str | None = strawberry.field(default=None, description=IDEMPOTENCY)


@strawberry.input
class SuppliesAdjustInput:
    batch_id: strawberry.ID
    warehouse_id: strawberry.ID
    delta: int = strawberry.field(description="Found stock positive, damage or loss negative.")
    reason: str
    idempotency_key: str | None = strawberry.field(default=None, description=IDEMPOTENCY)


@strawberry.input
class SuppliesReverseInput:
    movement_id: strawberry.ID
    reason: str
    idempotency_key: str | None = strawberry.field(default=None, description=IDEMPOTENCY)


@strawberry.input(description="Exactly one recipient: communityId, requestId or recipient (a person's name).")
class SuppliesDistributeInput:
    warehouse_id: strawberry.ID
    item_id: strawberry.ID
    quantity: int
    community_id: strawberry.ID | None = None
    request_id: strawberry.ID | None = None
    recipient: str = ""
    note: str = ""
    idempotency_key: str | None = strawberry.field(default=None, description=IDEMPOTENCY)


@strawberry.input
class SuppliesDispatchInput:
    id: strawberry.ID


@strawberry.input
class SuppliesConfirmDeliveryInput:
    id: strawberry.ID
    delivered: int | None = strawberry.field(
        default=None, description="How much arrived (default: all that was sent); the rest goes back into stock."
    )
    note: str = ""


@strawberry.input
class SuppliesCancelDistributionInput:
    id: strawberry.ID
    reason: str


@strawberry.input
class SuppliesReceiveDonationInput:
    donor_id: strawberry.ID
    amount: gql.Money
    receipt_no: str
    purpose: str = ""
    idempotency_key: str | None = strawberry.field(default=None, description=IDEMPOTENCY)


@strawberry.input
class SuppliesAllocateInput:
    donation_id: strawberry.ID
    amount: gql.Money
    purpose: str
    idempotency_key: str | None = strawberry.field(default=None, description=IDEMPOTENCY)


# -- filters ----------------------------------------------------------------------------------------------------------


@strawberry.input(description="All given conditions must hold.")
class SuppliesItemFilter:
    categories: list[SuppliesItemCategory] | None = None
    batched: bool | None = None
    search: str | None = strawberry.field(default=None, description="Substring of the name.")

    def to_service(self) -> services.ItemFilter:
        return services.ItemFilter(categories=_values(self.categories), batched=self.batched, search=self.search)


@strawberry.input
class SuppliesWarehouseFilter:
    search: str | None = strawberry.field(default=None, description="Substring of the name or address.")

    def to_service(self) -> services.WarehouseFilter:
        return services.WarehouseFilter(search=self.search)


@strawberry.input
class SuppliesDonorFilter:
    kind: SuppliesDonorKind | None = None
    search: str | None = strawberry.field(default=None, description="Substring of the name.")

    def to_service(self) -> services.DonorFilter:
        return services.DonorFilter(kind=None if self.kind is None else self.kind.value, search=self.search)


@strawberry.input(description="All given conditions must hold; received in [since, until).")
class SuppliesDonationFilter:
    donor_id: strawberry.ID | None = None
    since: datetime | None = None
    until: datetime | None = None
    search: str | None = strawberry.field(default=None, description="Substring of the receipt number or purpose.")

    def to_service(self) -> services.DonationFilter:
        return services.DonationFilter(
            donor_id=_id(self.donor_id, "SuppliesDonor", "filter", "donorId"),
            since=self.since,
            until=self.until,
            search=self.search,
        )


@strawberry.input
class SuppliesAllocationFilter:
    donation_id: strawberry.ID | None = strawberry.field(default=None, description="One donation's (default: all).")

    def to_service(self) -> services.AllocationFilter:
        return services.AllocationFilter(
            donation_id=_id(self.donation_id, "SuppliesMoneyDonation", "filter", "donationId")
        )


@strawberry.input(description="All given conditions must hold; planned in [since, until).")
class SuppliesDistributionFilter:
    statuses: list[SuppliesDistributionStatus] | None = None
    warehouse_id: strawberry.ID | None = None
    item_id: strawberry.ID | None = None
    community_id: strawberry.ID | None = None
    request_id: strawberry.ID | None = None
    since: datetime | None = None
    until: datetime | None = None

    def to_service(self) -> services.DistributionFilter:
        return services.DistributionFilter(
            statuses=_values(self.statuses),
            warehouse_id=_id(self.warehouse_id, "SuppliesWarehouse", "filter", "warehouseId"),
            item_id=_id(self.item_id, "SuppliesItem", "filter", "itemId"),
            community_id=_id(self.community_id, "Community", "filter", "communityId"),
            request_id=_id(self.request_id, "HelpRequest", "filter", "requestId"),
            since=self.since,
            until=self.until,
        )


@strawberry.input(description="All given conditions must hold; recorded in [since, until).")
class SuppliesMovementFilter:
    kinds: list[SuppliesMovementKind] | None = None
    batch_id: strawberry.ID | None = None
    warehouse_id: strawberry.ID | None = None
    item_id: strawberry.ID | None = None
    distribution_id: strawberry.ID | None = None
    since: datetime | None = None
    until: datetime | None = None

    def to_service(self) -> services.MovementFilter:
        return services.MovementFilter(
            kinds=_values(self.kinds),
            batch_id=_id(self.batch_id, "SuppliesBatch", "filter", "batchId"),
            warehouse_id=_id(self.warehouse_id, "SuppliesWarehouse", "filter", "warehouseId"),
            item_id=_id(self.item_id, "SuppliesItem", "filter", "itemId"),
            distribution_id=_id(self.distribution_id, "SuppliesDistribution", "filter", "distributionId"),
            since=self.since,
            until=self.until,
        )


def _report_row(r: services.CategoryFigures) -> SuppliesReportRow:
    return SuppliesReportRow(
        category=SuppliesItemCategory(r.category),
        opening=r.opening,
        received=r.received,
        distributed=r.distributed,
        adjusted=r.adjusted,
        transferred_net=r.transferred_net,
        on_hand=r.on_hand,
        balanced=r.balanced,
    )


def _report_key(by: SuppliesReportDimension, key: str) -> str:
    return SuppliesItemCategory(key).name if by is SuppliesReportDimension.CATEGORY else key


STAFF_ONLY = " Supplies staff (supplies.manage)."


@strawberry.type
class SuppliesQuery:
    # -- lists (cursor connections) --

    @strawberry.field(description="The item catalogue, by name." + STAFF_ONLY)
    async def supplies_items(
        self, info: Info, filter: SuppliesItemFilter | None = None, first: int | None = None, after: str | None = None
    ) -> gql.Connection[SuppliesItem]:
        f = (filter or SuppliesItemFilter()).to_service()
        page = await info.context.read(services.list_items, f, first=gql.first_of(info, first), after=after)
        return gql.connection(info, page, SuppliesItem.of)

    @strawberry.field(description="Warehouses, by name." + STAFF_ONLY)
    async def supplies_warehouses(
        self,
        info: Info,
        filter: SuppliesWarehouseFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> gql.Connection[SuppliesWarehouse]:
        f = (filter or SuppliesWarehouseFilter()).to_service()
        page = await info.context.read(services.list_warehouses, f, first=gql.first_of(info, first), after=after)
        return gql.connection(info, page, SuppliesWarehouse.of)

    @strawberry.field(description="Donors, by name (with their contacts)." + STAFF_ONLY)
    async def supplies_donors(
        self, info: Info, filter: SuppliesDonorFilter | None = None, first: int | None = None, after: str | None = None
    ) -> gql.Connection[SuppliesDonor]:
        f = (filter or SuppliesDonorFilter()).to_service()
        page = await info.context.read(services.list_donors, f, first=gql.first_of(info, first), after=after)
        return gql.connection(info, page, SuppliesDonor.of)

    @strawberry.field(description="Money donations, newest first." + STAFF_ONLY)
    async def supplies_donations(
        self,
        info: Info,
        filter: SuppliesDonationFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> gql.Connection[SuppliesMoneyDonation]:
        f = (filter or SuppliesDonationFilter()).to_service()
        page = await info.context.read(services.list_donations, f, first=gql.first_of(info, first), after=after)
        return gql.connection(info, page, SuppliesMoneyDonation.of)

    @strawberry.field(description="Money allocations, oldest first: of one donation or of all." + STAFF_ONLY)
    async def supplies_allocations(
        self,
        info: Info,
        filter: SuppliesAllocationFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> gql.Connection[SuppliesMoneyAllocation]:
        f = (filter or SuppliesAllocationFilter()).to_service()
        page = await info.context.read(services.list_allocations, f, first=gql.first_of(info, first), after=after)
        return gql.connection(info, page, SuppliesMoneyAllocation.of)

    @strawberry.field(description="Distributions, newest first." + STAFF_ONLY)
    async def supplies_distributions(
        self,
        info: Info,
        filter: SuppliesDistributionFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> gql.Connection[SuppliesDistribution]:
        f = (filter or SuppliesDistributionFilter()).to_service()
        page = await info.context.read(services.list_distributions, f, first=gql.first_of(info, first), after=after)
        return gql.connection(info, page, SuppliesDistribution.of)

    @strawberry.field(description="The stock ledger, in the order it was written." + STAFF_ONLY)
    async def supplies_movements(
        self,
        info: Info,
        filter: SuppliesMovementFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> gql.Connection[SuppliesMovement]:
        f = (filter or SuppliesMovementFilter()).to_service()
        page = await info.context.read(services.list_movements, f, first=gql.first_of(info, first), after=after)
        return gql.connection(info, page, SuppliesMovement.of)

    @strawberry.field(description="One batch with its trace (donor → receipt → … → delivery)." + STAFF_ONLY)
    async def supplies_trace(self, info: Info, batch_id: strawberry.ID) -> SuppliesBatch:
        pk = _pk(batch_id, "SuppliesBatch", "batchId")
        return SuppliesBatch.of(await info.context.read(services.batch, pk))

    # -- stock and reports (plain lists, bounded by the catalogue) --

    @strawberry.field(
        description="On hand (above zero) per item, warehouse and batch, earliest expiry first; optionally near "
        "expiry, below a level, in one warehouse or of one item. A plain list: one line per batch in stock in a "
        "warehouse, bounded by the catalogue and what is on the shelves." + STAFF_ONLY
    )
    async def supplies_stock(
        self,
        info: Info,
        near_expiry_days: int | None = None,
        below: int | None = None,
        warehouse_id: strawberry.ID | None = None,
        item_id: strawberry.ID | None = None,
    ) -> list[SuppliesStockLine]:
        lines = await info.context.read(
            services.stock_lines,
            near_expiry_days=near_expiry_days,
            below=below,
            warehouse_id=_id(warehouse_id, "SuppliesWarehouse", "warehouseId"),
            item_id=_id(item_id, "SuppliesItem", "itemId"),
        )
        return [
            SuppliesStockLine(
                expires_on=x.expires_on,
                on_hand=x.on_hand,
                item_id=x.item_id,
                warehouse_id=x.warehouse_id,
                batch_id=x.batch_id,
            )
            for x in lines
        ]

    @strawberry.field(
        description="Per category (at most one row each) over [since, until): opening, received, distributed, "
        "adjusted, on hand, and whether they balance." + STAFF_ONLY
    )
    async def supplies_report(
        self, info: Info, since: datetime | None = None, until: datetime | None = None
    ) -> list[SuppliesReportRow]:
        return [_report_row(r) for r in await info.context.read(services.report, since, until)]

    @strawberry.field(description="suppliesReport as CSV (categories as stored: lower_case)." + STAFF_ONLY)
    async def supplies_report_csv(
        self, info: Info, since: datetime | None = None, until: datetime | None = None
    ) -> str:
        return services.report_csv(await info.context.read(services.report, since, until))

    @strawberry.field(
        description="Received, distributed and on hand by category, warehouse, community or donor: one row per "
        "group, bounded by the catalogue." + STAFF_ONLY
    )
    async def supplies_report_by(self, info: Info, by: SuppliesReportDimension) -> list[SuppliesReportByRow]:
        rows = await info.context.read(services.report_by, by.value)
        return [
            SuppliesReportByRow(key=_report_key(by, k), received=r, distributed=d, on_hand=h) for k, r, d, h in rows
        ]

    @strawberry.field(description="suppliesReportBy as CSV (header: the dimension, lower_case)." + STAFF_ONLY)
    async def supplies_report_by_csv(self, info: Info, by: SuppliesReportDimension) -> str:
        rows = await info.context.read(services.report_by, by.value)
        return services.rows_csv(f"{by.value},received,distributed,on_hand", rows)

    @strawberry.field(
        description="Per donor who gave anything: goods (units) and money received. One row per donor." + STAFF_ONLY
    )
    async def supplies_received_by_donor(self, info: Info) -> list[SuppliesDonorTotal]:
        totals = await info.context.read(services.received_by_donor)
        return [
            SuppliesDonorTotal(items=t.items, money=gql.Money(_money(t.money_fen)), donor_id=t.donor_id) for t in totals
        ]


@strawberry.type
class SuppliesMutation:
    @strawberry.mutation(description="An item of the catalogue (names are unique per organisation).")
    async def supplies_create_item(self, info: Info, input: SuppliesCreateItemInput) -> SuppliesItemPayload:
        return await gql.mutate(
            info,
            SuppliesItemPayload,
            "item",
            SuppliesItem.of,
            lambda ctx: services.create_item(ctx, input.name, input.category.value, input.unit, input.batched),
        )

    @strawberry.mutation(description="A warehouse (names are unique per organisation).")
    async def supplies_create_warehouse(
        self, info: Info, input: SuppliesCreateWarehouseInput
    ) -> SuppliesWarehousePayload:
        return await gql.mutate(
            info,
            SuppliesWarehousePayload,
            "warehouse",
            SuppliesWarehouse.of,
            lambda ctx: services.create_warehouse(ctx, input.name, input.address),
        )

    @strawberry.mutation(description="A donor (the contact is for supplies staff only).")
    async def supplies_create_donor(self, info: Info, input: SuppliesCreateDonorInput) -> SuppliesDonorPayload:
        return await gql.mutate(
            info,
            SuppliesDonorPayload,
            "donor",
            SuppliesDonor.of,
            lambda ctx: services.create_donor(ctx, input.name, input.kind.value, input.contact),
        )

    @strawberry.mutation(description="Goods into a warehouse (a donation line): a RECEIPT movement.")
    async def supplies_receive(self, info: Info, input: SuppliesReceiveInput) -> SuppliesMovementPayload:
        async def work(ctx: core.ServiceContext) -> Any:
            args = {
                "warehouse_id": _pk(input.warehouse_id, "SuppliesWarehouse", "input", "warehouseId"),
                "item_id": _pk(input.item_id, "SuppliesItem", "input", "itemId"),
                "quantity": input.quantity,
                "donor_id": _id(input.donor_id, "SuppliesDonor", "input", "donorId"),
                "batch_code": input.batch_code,
                "expires_on": input.expires_on,
            }
            return await services.idempotent(
                ctx,
                input.idempotency_key,
                "receive",
                args,
                lambda: services.receive(ctx, **args),
                lambda pk: ctx.session.get(Movement, pk),
            )

        return await gql.mutate(info, SuppliesMovementPayload, "movement", SuppliesMovement.of, work)

    @strawberry.mutation(description="A batch from one warehouse to another: the TRANSFER_IN movement is returned.")
    async def supplies_transfer(self, info: Info, input: SuppliesTransferInput) -> SuppliesMovementPayload:
        async def work(ctx: core.ServiceContext) -> Any:
            args = {
                "batch_id": _pk(input.batch_id, "SuppliesBatch", "input", "batchId"),
                "from_warehouse": _pk(input.from_warehouse_id, "SuppliesWarehouse", "input", "fromWarehouseId"),
                "to_warehouse": _pk(input.to_warehouse_id, "SuppliesWarehouse", "input", "toWarehouseId"),
                "quantity": input.quantity,
            }
            return await services.idempotent(
                ctx,
                input.idempotency_key,
                "transfer",
                args,
                lambda: services.transfer(ctx, **args),
                lambda pk: ctx.session.get(Movement, pk),
            )

        return await gql.mutate(info, SuppliesMovementPayload, "movement", SuppliesMovement.of, work)

    @strawberry.mutation(description="A counted difference, with a reason; cannot make stock negative.")
    async def supplies_adjust(self, info: Info, input: SuppliesAdjustInput) -> SuppliesMovementPayload:
        async def work(ctx: core.ServiceContext) -> Any:
            args = {
                "batch_id": _pk(input.batch_id, "SuppliesBatch", "input", "batchId"),
                "warehouse_id": _pk(input.warehouse_id, "SuppliesWarehouse", "input", "warehouseId"),
                "delta": input.delta,
                "reason": input.reason,
            }
            return await services.idempotent(
                ctx,
                input.idempotency_key,
                "adjust",
                args,
                lambda: services.adjust(ctx, **args),
                lambda pk: ctx.session.get(Movement, pk),
            )

        return await gql.mutate(info, SuppliesMovementPayload, "movement", SuppliesMovement.of, work)

    @strawberry.mutation(description="Undo a wrong receipt or adjustment with its opposite (a REVERSAL movement).")
    async def supplies_reverse(self, info: Info, input: SuppliesReverseInput) -> SuppliesMovementPayload:
        async def work(ctx: core.ServiceContext) -> Any:
            pk = _pk(input.movement_id, "SuppliesMovement", "input", "movementId")
            return await services.idempotent(
                ctx,
                input.idempotency_key,
                "reverse",
                {"movement": pk, "reason": input.reason},
                lambda: services.reverse(ctx, pk, input.reason),
                lambda result_pk: ctx.session.get(Movement, result_pk),
            )

        return await gql.mutate(info, SuppliesMovementPayload, "movement", SuppliesMovement.of, work)

    @strawberry.mutation(
        description="Plan goods out, earliest expiry first, to a community, a help request or a person: the stock is "
        "reserved at once (PLANNED)."
    )
    async def supplies_distribute(self, info: Info, input: SuppliesDistributeInput) -> SuppliesDistributionPayload:
        async def work(ctx: core.ServiceContext) -> Any:
            args = {
                "warehouse_id": _pk(input.warehouse_id, "SuppliesWarehouse", "input", "warehouseId"),
                "item_id": _pk(input.item_id, "SuppliesItem", "input", "itemId"),
                "quantity": input.quantity,
                "community_id": _id(input.community_id, "Community", "input", "communityId"),
                "request_id": _id(input.request_id, "HelpRequest", "input", "requestId"),
                "recipient": input.recipient,
                "note": input.note,
            }
            # The key is claimed inside the distribution's one statement (services.distribute).
            return await services.distribute(ctx, **args, idempotency_key=input.idempotency_key)

        return await gql.mutate(info, SuppliesDistributionPayload, "distribution", SuppliesDistribution.of, work)

    @strawberry.mutation(description="A planned distribution leaves the warehouse (DISPATCHED).")
    async def supplies_dispatch(self, info: Info, input: SuppliesDispatchInput) -> SuppliesDistributionPayload:
        return await gql.mutate(
            info,
            SuppliesDistributionPayload,
            "distribution",
            SuppliesDistribution.of,
            lambda ctx: services.dispatch(ctx, _pk(input.id, "SuppliesDistribution", "input", "id")),
        )

    @strawberry.mutation(
        description="The recipient side confirms delivery (supplies staff, or the head of the receiving community); "
        "less than was sent brings the rest back into stock."
    )
    async def supplies_confirm_delivery(
        self, info: Info, input: SuppliesConfirmDeliveryInput
    ) -> SuppliesDistributionPayload:
        return await gql.mutate(
            info,
            SuppliesDistributionPayload,
            "distribution",
            SuppliesDistribution.of,
            lambda ctx: services.confirm_delivery(
                ctx, _pk(input.id, "SuppliesDistribution", "input", "id"), input.note, input.delivered
            ),
        )

    @strawberry.mutation(
        description="Call off a PLANNED distribution: what it reserved goes back to stock as RETURN movements (the "
        "ledger keeps both). Dispatched or delivered ones cannot be cancelled (INVALID_TRANSITION)."
    )
    async def supplies_cancel_distribution(
        self, info: Info, input: SuppliesCancelDistributionInput
    ) -> SuppliesDistributionPayload:
        return await gql.mutate(
            info,
            SuppliesDistributionPayload,
            "distribution",
            SuppliesDistribution.of,
            lambda ctx: services.cancel_distribution(
                ctx, _pk(input.id, "SuppliesDistribution", "input", "id"), input.reason
            ),
        )

    @strawberry.mutation(description="Money received from a donor (receipt numbers are unique per organisation).")
    async def supplies_receive_donation(
        self, info: Info, input: SuppliesReceiveDonationInput
    ) -> SuppliesMoneyDonationPayload:
        async def work(ctx: core.ServiceContext) -> Any:
            donor = _pk(input.donor_id, "SuppliesDonor", "input", "donorId")
            args = {"donor": donor, "amount": input.amount, "receipt": input.receipt_no, "purpose": input.purpose}
            return await services.idempotent(
                ctx,
                input.idempotency_key,
                "receive_money",
                args,
                lambda: services.receive_money(ctx, donor, input.amount, input.receipt_no, input.purpose),
                lambda pk: ctx.session.get(MoneyDonation, pk),
            )

        return await gql.mutate(info, SuppliesMoneyDonationPayload, "donation", SuppliesMoneyDonation.of, work)

    @strawberry.mutation(description="Assign part of a money donation; never more than is left (INSUFFICIENT_FUNDS).")
    async def supplies_allocate(self, info: Info, input: SuppliesAllocateInput) -> SuppliesAllocationPayload:
        async def work(ctx: core.ServiceContext) -> Any:
            pk = _pk(input.donation_id, "SuppliesMoneyDonation", "input", "donationId")
            return await services.idempotent(
                ctx,
                input.idempotency_key,
                "allocate",
                {"donation": pk, "amount": input.amount, "purpose": input.purpose},
                lambda: services.allocate(ctx, pk, input.amount, input.purpose),
                lambda allocation_pk: ctx.session.get(MoneyAllocation, allocation_pk),
            )

        return await gql.mutate(info, SuppliesAllocationPayload, "allocation", SuppliesMoneyAllocation.of, work)
