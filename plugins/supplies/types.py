"""GraphQL of the supplies plugin. Root fields start with `supplies`, types with `Supplies`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import strawberry
from strawberry import Info, relay

import core
from plugins.supplies import services
from plugins.supplies.models import Distribution, Donor, Item, MoneyAllocation, MoneyDonation, Movement, Warehouse
from schema import api as gql


async def _resolve_nodes(
    info: Info, node_ids: Iterable[str], model: type, convert: Callable[[Any], Any], required: bool
) -> list[Any]:
    """node(id:) for a supplies type: rows the caller may see (row-level security: their organisation's),
    None for the others -- exactly as for ids that do not exist. Needs supplies.manage, as the lists do."""
    return await gql.resolve_node_rows(
        info, node_ids, lambda ctx, pks: services.rows_by_id(ctx, model, pks), convert, required
    )


@strawberry.type
class SuppliesItem(relay.Node):
    id: relay.NodeID[int]
    name: str
    category: str
    unit: str
    batched: bool

    @classmethod
    def of(cls, i: Item) -> SuppliesItem:
        return cls(id=i.id, name=i.name, category=i.category, unit=i.unit, batched=i.batched)

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Item, cls.of, required)


@strawberry.type
class SuppliesWarehouse(relay.Node):
    id: relay.NodeID[int]
    name: str

    @classmethod
    def of(cls, w: Warehouse) -> SuppliesWarehouse:
        return cls(id=w.id, name=w.name)

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Warehouse, cls.of, required)


@strawberry.type
class SuppliesMovement(relay.Node):
    id: relay.NodeID[int]
    kind: str
    quantity: int
    batch_id: strawberry.ID
    at: datetime

    @classmethod
    def of(cls, m: Movement) -> SuppliesMovement:
        return cls(
            id=m.id,
            kind=m.kind,
            quantity=m.quantity,
            batch_id=strawberry.ID(gql.encode_id("SuppliesBatch", m.batch_id)),
            at=m.at,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Movement, cls.of, required)


@strawberry.type
class SuppliesDistribution(relay.Node):
    id: relay.NodeID[int]
    status: str
    recipient: str
    confirmed_by: str
    confirmed_at: datetime | None

    @classmethod
    def of(cls, d: Distribution) -> SuppliesDistribution:
        return cls(
            id=d.id,
            status=d.status,
            recipient=d.recipient,
            confirmed_by=d.confirmed_by,
            confirmed_at=d.confirmed_at,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Distribution, cls.of, required)


@strawberry.type(description="Per category; `balanced` checks received + adjusted = on hand + distributed.")
class SuppliesReportRow:
    category: str
    received: int
    distributed: int
    adjusted: int
    on_hand: int
    balanced: bool
    opening: int = strawberry.field(default=0, description="Stock at the start of the period.")


@strawberry.type(description="A donor. Contact details are for supplies staff only (this list needs supplies.manage).")
class SuppliesDonor(relay.Node):
    id: relay.NodeID[int]
    name: str
    kind: str
    contact: str

    @classmethod
    def of(cls, d: Donor) -> SuppliesDonor:
        return cls(id=d.id, name=d.name, kind=d.kind, contact=d.contact)

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, Donor, cls.of, required)


@strawberry.type
class SuppliesMoneyDonation(relay.Node):
    id: relay.NodeID[int]
    amount: Decimal = strawberry.field(description="Yuan, two decimals (stored as fen).")
    receipt_no: str
    purpose: str

    @strawberry.field(description="What is left to allocate (derived from the allocations, never stored).")
    async def unallocated(self, info: Info) -> Decimal:
        return Decimal(await info.context.read(services.unallocated_fen, self.id)) / 100

    @classmethod
    def of(cls, m: MoneyDonation) -> SuppliesMoneyDonation:
        return cls(id=m.id, amount=Decimal(m.amount_fen) / 100, receipt_no=m.receipt_no, purpose=m.purpose)

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve_nodes(info, node_ids, MoneyDonation, cls.of, required)


@strawberry.type
class SuppliesDonorTotal:
    donor: str
    items: int
    money: Decimal


@strawberry.type
class SuppliesStockLine:
    item: str
    warehouse: str
    batch: str
    expires_on: date | None
    on_hand: int


SuppliesDonorPayload = gql.payload("SuppliesDonorPayload", "donor", SuppliesDonor)
SuppliesMoneyPayload = gql.payload("SuppliesMoneyPayload", "donation", SuppliesMoneyDonation)
SuppliesItemPayload = gql.payload("SuppliesItemPayload", "item", SuppliesItem)
SuppliesWarehousePayload = gql.payload("SuppliesWarehousePayload", "warehouse", SuppliesWarehouse)
SuppliesMovementPayload = gql.payload("SuppliesMovementPayload", "movement", SuppliesMovement)
SuppliesDistributionPayload = gql.payload("SuppliesDistributionPayload", "distribution", SuppliesDistribution)


def _id(raw: str | None, type_name: str, field: str) -> int | None:
    return None if raw is None else gql.decode_id(raw, type_name, ("input", field))


@strawberry.input
class SuppliesDistributeInput:
    warehouse_id: strawberry.ID
    item_id: strawberry.ID
    quantity: int
    community_id: strawberry.ID | None = None
    request_id: strawberry.ID | None = None
    recipient: str = ""
    note: str = ""
    idempotency_key: str | None = strawberry.field(
        default=None, description="A retry with the same key applies nothing twice."
    )


@strawberry.input
class SuppliesReceiveInput:
    warehouse_id: strawberry.ID
    item_id: strawberry.ID
    quantity: int
    batch_code: str = ""
    expires_on: date | None = None
    idempotency_key: str | None = None


@strawberry.type
class SuppliesQuery:
    @strawberry.field(description="Received, distributed, adjusted and on hand per category.")
    async def supplies_report(
        self, info: Info, since: datetime | None = None, until: datetime | None = None
    ) -> list[SuppliesReportRow]:
        rows = await info.context.read(services.report, since, until)
        return [
            SuppliesReportRow(
                category=r.category,
                opening=r.opening,
                received=r.received,
                distributed=r.distributed,
                adjusted=r.adjusted,
                on_hand=r.on_hand,
                balanced=r.balanced,
            )
            for r in rows
        ]

    @strawberry.field(description="On hand per item, warehouse and batch (optionally near expiry or low).")
    async def supplies_stock(
        self, info: Info, near_expiry_days: int | None = None, below: int | None = None
    ) -> list[SuppliesStockLine]:
        lines = await info.context.read(services.stock_lines, near_expiry_days=near_expiry_days, below=below)
        return [
            SuppliesStockLine(
                item=x.item, warehouse=x.warehouse, batch=x.batch, expires_on=x.expires_on, on_hand=x.on_hand
            )
            for x in lines
        ]

    @strawberry.field(description="Every movement of one batch: where a donation line's goods went.")
    async def supplies_trace(self, info: Info, batch_id: strawberry.ID) -> list[SuppliesMovement]:
        pk = gql.decode_id(batch_id, "SuppliesBatch", ("batchId",))
        return [SuppliesMovement.of(m) for m in await info.context.read(services.trace, pk)]

    @strawberry.field(description="Per donor: items received and money received (yuan).")
    async def supplies_received_by_donor(self, info: Info) -> list[SuppliesDonorTotal]:
        rows = await info.context.read(services.received_by_donor)
        return [SuppliesDonorTotal(donor=name, items=items, money=Decimal(fen) / 100) for name, items, fen in rows]

    @strawberry.field
    async def supplies_donors(self, info: Info) -> list[SuppliesDonor]:
        return [SuppliesDonor.of(d) for d in await info.context.read(services.list_donors)]

    @strawberry.field(description="Received, distributed and on hand by category, warehouse, community or donor.")
    async def supplies_report_by(self, info: Info, by: str) -> list[SuppliesReportRow]:
        rows = await info.context.read(services.report_by, by)
        return [
            SuppliesReportRow(category=k, received=r, distributed=d, adjusted=0, on_hand=h, balanced=True)
            for k, r, d, h in rows
        ]

    @strawberry.field(description="supplies_report_by as CSV.")
    async def supplies_report_by_csv(self, info: Info, by: str) -> str:
        rows = await info.context.read(services.report_by, by)
        return services.rows_csv(f"{by},received,distributed,on_hand", rows)

    @strawberry.field(description="The same report as CSV.")
    async def supplies_report_csv(self, info: Info) -> str:
        return services.report_csv(await info.context.read(services.report))


@strawberry.type
class SuppliesMutation:
    @strawberry.mutation
    async def supplies_create_item(
        self, info: Info, name: str, category: str, unit: str, batched: bool = False
    ) -> SuppliesItemPayload:
        return await gql.mutate(
            info,
            SuppliesItemPayload,
            "item",
            SuppliesItem.of,
            lambda ctx: services.create_item(ctx, name, category, unit, batched),
        )

    @strawberry.mutation
    async def supplies_create_warehouse(self, info: Info, name: str, address: str = "") -> SuppliesWarehousePayload:
        return await gql.mutate(
            info,
            SuppliesWarehousePayload,
            "warehouse",
            SuppliesWarehouse.of,
            lambda ctx: services.create_warehouse(ctx, name, address),
        )

    @strawberry.mutation(description="Goods into a warehouse (a donation line).")
    async def supplies_receive(self, info: Info, input: SuppliesReceiveInput) -> SuppliesMovementPayload:
        async def work(ctx: core.ServiceContext) -> Any:
            args = {
                "warehouse_id": _id(input.warehouse_id, "SuppliesWarehouse", "warehouseId"),
                "item_id": _id(input.item_id, "SuppliesItem", "itemId"),
                "quantity": input.quantity,
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

    @strawberry.mutation(description="Goods out, earliest expiry first, to a community, a help request or a person.")
    async def supplies_distribute(self, info: Info, input: SuppliesDistributeInput) -> SuppliesDistributionPayload:
        async def work(ctx: core.ServiceContext) -> Any:
            args = {
                "warehouse_id": _id(input.warehouse_id, "SuppliesWarehouse", "warehouseId"),
                "item_id": _id(input.item_id, "SuppliesItem", "itemId"),
                "quantity": input.quantity,
                "community_id": _id(input.community_id, "Community", "communityId"),
                "request_id": _id(input.request_id, "HelpRequest", "requestId"),
                "recipient": input.recipient,
                "note": input.note,
            }
            return await services.idempotent(
                ctx,
                input.idempotency_key,
                "distribute",
                args,
                lambda: services.distribute(ctx, **args),
                lambda pk: ctx.session.get(Distribution, pk),
            )

        return await gql.mutate(info, SuppliesDistributionPayload, "distribution", SuppliesDistribution.of, work)

    @strawberry.mutation
    async def supplies_dispatch(self, info: Info, id: strawberry.ID) -> SuppliesDistributionPayload:
        return await gql.mutate(
            info,
            SuppliesDistributionPayload,
            "distribution",
            SuppliesDistribution.of,
            lambda ctx: services.dispatch(ctx, _id(id, "SuppliesDistribution", "id")),
        )

    @strawberry.mutation(description="The recipient side confirms delivery (community heads for their community).")
    async def supplies_confirm_delivery(
        self, info: Info, id: strawberry.ID, note: str = "", delivered: int | None = None
    ) -> SuppliesDistributionPayload:
        return await gql.mutate(
            info,
            SuppliesDistributionPayload,
            "distribution",
            SuppliesDistribution.of,
            lambda ctx: services.confirm_delivery(ctx, _id(id, "SuppliesDistribution", "id"), note, delivered),
        )

    @strawberry.mutation
    async def supplies_create_donor(self, info: Info, name: str, kind: str, contact: str = "") -> SuppliesDonorPayload:
        return await gql.mutate(
            info,
            SuppliesDonorPayload,
            "donor",
            SuppliesDonor.of,
            lambda ctx: services.create_donor(ctx, name, kind, contact),
        )

    @strawberry.mutation(description="Money received; amounts in yuan with at most two decimals.")
    async def supplies_receive_money(
        self,
        info: Info,
        donor_id: strawberry.ID,
        amount: str,
        receipt_no: str,
        purpose: str = "",
        idempotency_key: str | None = None,
    ) -> SuppliesMoneyPayload:
        async def work(ctx: core.ServiceContext) -> Any:
            donor = _id(donor_id, "SuppliesDonor", "donorId")
            args = {"donor": donor, "amount": amount, "receipt": receipt_no, "purpose": purpose}
            return await services.idempotent(
                ctx,
                idempotency_key,
                "receive_money",
                args,
                lambda: services.receive_money(ctx, donor, amount, receipt_no, purpose),
                lambda pk: ctx.session.get(MoneyDonation, pk),
            )

        return await gql.mutate(info, SuppliesMoneyPayload, "donation", SuppliesMoneyDonation.of, work)

    @strawberry.mutation(description="Assign part of a money donation; never more than is left.")
    async def supplies_allocate(
        self, info: Info, donation_id: strawberry.ID, amount: str, purpose: str, idempotency_key: str | None = None
    ) -> SuppliesMoneyPayload:
        async def work(ctx: core.ServiceContext) -> Any:
            pk = _id(donation_id, "SuppliesMoneyDonation", "donationId")
            await services.idempotent(
                ctx,
                idempotency_key,
                "allocate",
                {"donation": pk, "amount": amount, "purpose": purpose},
                lambda: services.allocate(ctx, pk, amount, purpose),
                lambda allocation_pk: ctx.session.get(MoneyAllocation, allocation_pk),
            )
            return await ctx.session.get(MoneyDonation, pk)

        return await gql.mutate(info, SuppliesMoneyPayload, "donation", SuppliesMoneyDonation.of, work)

    @strawberry.mutation
    async def supplies_transfer(
        self,
        info: Info,
        batch_id: strawberry.ID,
        from_warehouse_id: strawberry.ID,
        to_warehouse_id: strawberry.ID,
        quantity: int,
        idempotency_key: str | None = None,
    ) -> SuppliesMovementPayload:
        async def work(ctx: core.ServiceContext) -> Any:
            args = {
                "batch_id": _id(batch_id, "SuppliesBatch", "batchId"),
                "from_warehouse": _id(from_warehouse_id, "SuppliesWarehouse", "fromWarehouseId"),
                "to_warehouse": _id(to_warehouse_id, "SuppliesWarehouse", "toWarehouseId"),
                "quantity": quantity,
            }
            return await services.idempotent(
                ctx,
                idempotency_key,
                "transfer",
                args,
                lambda: services.transfer(ctx, **args),
                lambda pk: ctx.session.get(Movement, pk),
            )

        return await gql.mutate(info, SuppliesMovementPayload, "movement", SuppliesMovement.of, work)

    @strawberry.mutation(description="A counted difference, with a reason; cannot make stock negative.")
    async def supplies_adjust(
        self,
        info: Info,
        batch_id: strawberry.ID,
        warehouse_id: strawberry.ID,
        delta: int,
        reason: str,
        idempotency_key: str | None = None,
    ) -> SuppliesMovementPayload:
        async def work(ctx: core.ServiceContext) -> Any:
            args = {
                "batch_id": _id(batch_id, "SuppliesBatch", "batchId"),
                "warehouse_id": _id(warehouse_id, "SuppliesWarehouse", "warehouseId"),
                "delta": delta,
                "reason": reason,
            }
            return await services.idempotent(
                ctx,
                idempotency_key,
                "adjust",
                args,
                lambda: services.adjust(ctx, **args),
                lambda pk: ctx.session.get(Movement, pk),
            )

        return await gql.mutate(info, SuppliesMovementPayload, "movement", SuppliesMovement.of, work)

    @strawberry.mutation(description="Undo a wrong receipt or adjustment with its opposite.")
    async def supplies_reverse(
        self, info: Info, movement_id: strawberry.ID, reason: str, idempotency_key: str | None = None
    ) -> SuppliesMovementPayload:
        async def work(ctx: core.ServiceContext) -> Any:
            pk = _id(movement_id, "SuppliesMovement", "movementId")
            return await services.idempotent(
                ctx,
                idempotency_key,
                "reverse",
                {"movement": pk, "reason": reason},
                lambda: services.reverse(ctx, pk, reason),
                lambda result_pk: ctx.session.get(Movement, result_pk),
            )

        return await gql.mutate(info, SuppliesMovementPayload, "movement", SuppliesMovement.of, work)
