"""Stock rules. Every change is a ledger movement plus a balance change in the same transaction; on-hand
stock can never go negative (conditional decrement under row locks, and a CHECK in the database);
distributions pick first-expiry-first-out; retries with an idempotency key apply nothing twice.

Organisations: every supplies row belongs to one organisation and PostgreSQL row-level security shows a
caller only its own (platform administrators: all). Root rows (items, warehouses, donors, idempotency keys)
belong to the caller's organisation; the others inherit theirs from their parents. A row of another
organisation answers exactly like a missing one (NOT_FOUND): every id is loaded through `_get` before it is
used, so a zero row count never stands for "insufficient stock" when the row is merely invisible."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert

import core
from core.i18n import _
from core.models import AuditEntry
from core.services import audit, help_requests, validation
from plugins.supplies.models import (
    CATEGORIES,
    DONOR_KINDS,
    Balance,
    Batch,
    Distribution,
    Donor,
    IdempotencyKey,
    Item,
    MoneyAllocation,
    MoneyDonation,
    Movement,
    Warehouse,
)

MAX_QUANTITY = 10_000_000
# How a distribution's status reads inside a message (translated with it: plugins/supplies/locale).
STATUS_LABELS = {
    "planned": _("planned"),
    "dispatched": _("dispatched"),
    "delivered": _("delivered"),
    "cancelled": _("cancelled"),
}


async def _get(ctx: core.ServiceContext, model: type, pk: int, what: str, field: str = "id") -> Any:
    """The row, or NOT_FOUND -- also for a row of another organisation (row-level security hides it)."""
    return await core.get_row(ctx, model, pk, what=what, field=("input", field))


def _organization(ctx: core.ServiceContext) -> int:
    """The caller's organisation, which new root rows (and idempotency keys) belong to. Supplies are kept
    per organisation: a caller of none (a platform administrator without one) may not record any."""
    if ctx.viewer.organization_id is None:
        raise core.DomainError("FORBIDDEN", "Supplies are kept per organisation: act for one.")
    return ctx.viewer.organization_id


def _manage(ctx: core.ServiceContext) -> int:
    """supplies.manage, acting for an organisation; the caller's organisation."""
    core.require(ctx, "supplies.manage")
    return _organization(ctx)


def _same_organization(*rows: Any) -> None:
    """Rows linked by one change belong to one organisation (only a platform administrator sees rows of
    several; the database's triggers refuse the mix anyway, this answers it before anything is written)."""
    if len({row.organization_id for row in rows if row is not None}) > 1:
        raise core.DomainError("ORGANIZATION_MISMATCH", "These records belong to different organisations.")


# Unique keys (per organisation) a concurrent writer can hit after the service's own check passed.
_UNIQUE: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "uq_supplies_items_organization_id_name": (
        "ALREADY_EXISTS",
        "An item of that name exists already.",
        ("input", "name"),
    ),
    "uq_supplies_warehouses_organization_id_name": (
        "ALREADY_EXISTS",
        "A warehouse of that name exists already.",
        ("input", "name"),
    ),
    "uq_supplies_money_donations_organization_id_receipt_no": (
        "ALREADY_EXISTS",
        "This receipt number is recorded already.",
        ("input", "receiptNo"),
    ),
}


async def _flush(ctx: core.ServiceContext) -> None:
    """Flush, answering the database's refusals as user errors: a violated supplies unique key is
    ALREADY_EXISTS; core's (row-level security's 42501 is NOT_FOUND, a parent of another organisation is
    ORGANIZATION_MISMATCH) as core answers them."""
    await core.flush(ctx, _UNIQUE)


def _quantity(v: core.Validator, quantity: int, field: str = "quantity") -> None:
    v.check(
        0 < quantity <= MAX_QUANTITY,
        ("input", field),
        "OUT_OF_RANGE",
        "A quantity is a whole number from 1 to {limit}.",
        limit=MAX_QUANTITY,
    )


# -- catalogue ------------------------------------------------------------------------------------------------------


async def create_item(ctx: core.ServiceContext, name: str, category: str, unit: str, batched: bool = False) -> Item:
    """An item of the caller's organisation's catalogue (names are unique per organisation)."""
    organization_id = _manage(ctx)
    v = core.Validator()
    clean = validation.text(v, ("input", "name"), name, max_length=100, label=_("Name"))
    v.check(
        category in CATEGORIES,
        ("input", "category"),
        "INVALID_INPUT",
        "Category is one of {values}.",
        values=CATEGORIES,
    )
    clean_unit = validation.text(v, ("input", "unit"), unit, max_length=16, label=_("Unit"))
    v.raise_if_any()
    if (
        await ctx.session.scalar(select(Item.id).where(Item.organization_id == organization_id, Item.name == clean))
        is not None
    ):
        raise core.DomainError(*_UNIQUE["uq_supplies_items_organization_id_name"])
    item = Item(organization_id=organization_id, name=clean, category=category, unit=clean_unit, batched=batched)
    ctx.session.add(item)
    await _flush(ctx)
    return item


async def create_warehouse(ctx: core.ServiceContext, name: str, address: str = "") -> Warehouse:
    """A warehouse of the caller's organisation (names are unique per organisation)."""
    organization_id = _manage(ctx)
    v = core.Validator()
    clean = validation.text(v, ("input", "name"), name, max_length=100, label=_("Name"))
    v.raise_if_any()
    if (
        await ctx.session.scalar(
            select(Warehouse.id).where(Warehouse.organization_id == organization_id, Warehouse.name == clean)
        )
        is not None
    ):
        raise core.DomainError(*_UNIQUE["uq_supplies_warehouses_organization_id_name"])
    warehouse = Warehouse(organization_id=organization_id, name=clean, address=address.strip())
    ctx.session.add(warehouse)
    await _flush(ctx)
    return warehouse


# -- donors and money ----------------------------------------------------------------------------------------------

FEN_PER_YUAN = 100


def to_fen(amount: Decimal | str, field: str = "amount") -> int:
    """A yuan amount with at most two decimals, as integer fen; anything else is OUT_OF_RANGE."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise core.DomainError("INVALID_INPUT", "Not an amount.", ("input", field)) from None
    if value <= 0 or value != value.quantize(Decimal("0.01")) or value > Decimal("100000000000"):
        raise core.DomainError("OUT_OF_RANGE", "An amount is positive with at most two decimals.", ("input", field))
    return int(value * FEN_PER_YUAN)


async def create_donor(ctx: core.ServiceContext, name: str, kind: str, contact: str = "") -> Donor:
    """A donor of the caller's organisation (its contact is visible to that organisation's staff only)."""
    organization_id = _manage(ctx)
    v = core.Validator()
    clean = validation.text(v, ("input", "name"), name, max_length=100, label=_("Name"))
    v.check(kind in DONOR_KINDS, ("input", "kind"), "INVALID_INPUT", "Kind is organization or person.")
    v.raise_if_any()
    donor = Donor(organization_id=organization_id, name=clean, kind=kind, contact=contact.strip())
    ctx.session.add(donor)
    await _flush(ctx)
    return donor


async def receive_money(
    ctx: core.ServiceContext, donor_id: int, amount: Decimal | str, receipt_no: str, purpose: str = ""
) -> MoneyDonation:
    """Money from a donor; the donation belongs to the donor's organisation, whose receipt numbers are unique."""
    _manage(ctx)
    fen = to_fen(amount)
    v = core.Validator()
    receipt = validation.text(v, ("input", "receiptNo"), receipt_no, max_length=64, label=_("The receipt number"))
    v.raise_if_any()
    donor = await _get(ctx, Donor, donor_id, _("Donor"), "donorId")
    if (
        await ctx.session.scalar(
            select(MoneyDonation.id).where(
                MoneyDonation.organization_id == donor.organization_id, MoneyDonation.receipt_no == receipt
            )
        )
        is not None
    ):
        raise core.DomainError(*_UNIQUE["uq_supplies_money_donations_organization_id_receipt_no"])
    donation = MoneyDonation(
        donor_id=donor_id, amount_fen=fen, receipt_no=receipt, purpose=purpose.strip(), received_at=ctx.now()
    )
    ctx.session.add(donation)
    await _flush(ctx)
    return donation


async def unallocated_fen(ctx: core.ServiceContext, donation_id: int) -> int:
    allocated = await ctx.session.scalar(
        select(func.coalesce(func.sum(MoneyAllocation.amount_fen), 0)).where(MoneyAllocation.donation_id == donation_id)
    )
    amount = await ctx.session.scalar(select(MoneyDonation.amount_fen).where(MoneyDonation.id == donation_id))
    return int(amount or 0) - int(allocated or 0)


async def allocate(ctx: core.ServiceContext, donation_id: int, amount: Decimal | str, purpose: str) -> MoneyAllocation:
    """Assign part of a donation; never more than is left (the donation's row lock serialises allocators)."""
    _manage(ctx)
    fen = to_fen(amount)
    v = core.Validator()
    clean = validation.text(v, ("input", "purpose"), purpose, max_length=500, label=_("A purpose"))
    v.raise_if_any()
    await core.get_row(ctx, MoneyDonation, donation_id, what=_("Donation"), field=("input", "donationId"), lock=True)
    if fen > await unallocated_fen(ctx, donation_id):
        raise core.DomainError("INSUFFICIENT_FUNDS", "More than is left of this donation.", ("input", "amount"))
    allocation = MoneyAllocation(donation_id=donation_id, amount_fen=fen, purpose=clean)
    ctx.session.add(allocation)
    await _flush(ctx)
    return allocation


# -- balances ----------------------------------------------------------------------------------------------------
# Callers load the batch and the warehouse (`_get`) before touching a balance: the balance belongs to their
# organisation, so a balance the caller can see exists or is truly absent -- never merely hidden.


async def _put(ctx: core.ServiceContext, batch_id: int, warehouse_id: int, quantity: int) -> None:
    # The primary key (batch, warehouse) is the conflict target; the row takes the warehouse's organisation.
    stmt = insert(Balance).values(batch_id=batch_id, warehouse_id=warehouse_id, on_hand=quantity)
    await ctx.session.execute(
        stmt.on_conflict_do_update(
            index_elements=[Balance.batch_id, Balance.warehouse_id], set_={"on_hand": Balance.on_hand + quantity}
        )
    )


async def _take(ctx: core.ServiceContext, batch_id: int, warehouse_id: int, quantity: int) -> bool:
    """Decrement only if enough is there (the row lock of the UPDATE serialises concurrent takers).
    False means "not enough" only because the caller loaded the batch and the warehouse first."""
    taken = await ctx.session.scalar(
        update(Balance)
        .where(Balance.batch_id == batch_id, Balance.warehouse_id == warehouse_id, Balance.on_hand >= quantity)
        .values(on_hand=Balance.on_hand - quantity)
        .returning(Balance.on_hand)
    )
    return taken is not None


def _move(ctx: core.ServiceContext, kind: str, batch_id: int, warehouse_id: int, quantity: int, **kw: Any) -> Movement:
    movement = Movement(
        kind=kind,
        batch_id=batch_id,
        warehouse_id=warehouse_id,
        quantity=quantity,
        actor=ctx.viewer.label,
        at=ctx.now(),
        **kw,
    )
    ctx.session.add(movement)
    return movement


# -- stock in, across, corrections ---------------------------------------------------------------------------------


async def receive(
    ctx: core.ServiceContext,
    *,
    warehouse_id: int,
    item_id: int,
    quantity: int,
    donor_id: int | None = None,
    batch_code: str = "",
    expires_on: date | None = None,
) -> Movement:
    _manage(ctx)
    v = core.Validator()
    _quantity(v, quantity)
    v.raise_if_any()
    item = await _get(ctx, Item, item_id, _("Item"), "itemId")
    warehouse = await _get(ctx, Warehouse, warehouse_id, _("Warehouse"), "warehouseId")
    donor = None if donor_id is None else await _get(ctx, Donor, donor_id, _("Donor"), "donorId")
    _same_organization(item, warehouse, donor)
    if item.batched and expires_on is None:
        raise core.DomainError(
            "REQUIRED", "This item is tracked by batch: give its expiry date.", ("input", "expiresOn")
        )
    # The batch key (item, code, donor) lies within the item's organisation: a conflicting batch is visible.
    batch_id = await ctx.session.scalar(
        insert(Batch)
        .values(item_id=item_id, code=batch_code.strip(), expires_on=expires_on, donor_id=donor_id)
        .on_conflict_do_update(index_elements=[Batch.item_id, Batch.code, Batch.donor_id], set_={"code": Batch.code})
        .returning(Batch.id)
    )
    await _put(ctx, batch_id, warehouse_id, quantity)
    movement = _move(ctx, "receipt", batch_id, warehouse_id, quantity)
    await _flush(ctx)
    return movement


async def transfer(
    ctx: core.ServiceContext, *, batch_id: int, from_warehouse: int, to_warehouse: int, quantity: int
) -> Movement:
    _manage(ctx)
    v = core.Validator()
    _quantity(v, quantity)
    v.check(
        from_warehouse != to_warehouse,
        ("input", "toWarehouseId"),
        "SAME_WAREHOUSE",
        "A transfer goes to another warehouse.",
    )
    v.raise_if_any()
    batch = await _get(ctx, Batch, batch_id, _("Batch"), "batchId")
    source = await _get(ctx, Warehouse, from_warehouse, _("Warehouse"), "fromWarehouseId")
    target = await _get(ctx, Warehouse, to_warehouse, _("Warehouse"), "toWarehouseId")
    _same_organization(batch, source, target)
    if not await _take(ctx, batch_id, from_warehouse, quantity):
        raise core.DomainError(
            "INSUFFICIENT_STOCK", "Not that much of this batch is in that warehouse.", ("input", "quantity")
        )
    await _put(ctx, batch_id, to_warehouse, quantity)
    _move(ctx, "transfer_out", batch_id, from_warehouse, -quantity)
    movement = _move(ctx, "transfer_in", batch_id, to_warehouse, quantity)
    await _flush(ctx)
    return movement


async def adjust(ctx: core.ServiceContext, *, batch_id: int, warehouse_id: int, delta: int, reason: str) -> Movement:
    """A counted difference (damage, loss, found stock). Needs a reason; cannot drive stock negative."""
    _manage(ctx)
    v = core.Validator()
    v.check(delta != 0 and abs(delta) <= MAX_QUANTITY, ("input", "delta"), "OUT_OF_RANGE", "An adjustment is not zero.")
    clean = validation.text(v, ("input", "reason"), reason, max_length=500, label=_("A reason"))
    v.raise_if_any()
    batch = await _get(ctx, Batch, batch_id, _("Batch"), "batchId")
    warehouse = await _get(ctx, Warehouse, warehouse_id, _("Warehouse"), "warehouseId")
    _same_organization(batch, warehouse)
    if delta > 0:
        await _put(ctx, batch_id, warehouse_id, delta)
    elif not await _take(ctx, batch_id, warehouse_id, -delta):
        raise core.DomainError("INSUFFICIENT_STOCK", "The adjustment would make stock negative.", ("input", "delta"))
    movement = _move(ctx, "adjustment", batch_id, warehouse_id, delta, reason=clean)
    await _flush(ctx)
    return movement


async def reverse(ctx: core.ServiceContext, movement_id: int, reason: str) -> Movement:
    """Undo a wrong entry with its opposite (the ledger itself is never edited)."""
    _manage(ctx)
    v = core.Validator()
    clean = validation.text(v, ("input", "reason"), reason, max_length=500, label=_("A reason"))
    v.raise_if_any()
    # The movement's batch and warehouse are of its organisation: visible whenever the movement is.
    original = await core.get_row(
        ctx, Movement, movement_id, what=_("Movement"), field=("input", "movementId"), lock=True
    )
    if original.kind == "reversal":
        raise core.DomainError("INVALID_TRANSITION", "A reversal cannot itself be reversed.", ("input", "movementId"))
    if original.kind in ("transfer_out", "transfer_in", "distribution"):
        raise core.DomainError(
            "INVALID_TRANSITION",
            "A transfer or distribution is undone by a new transfer or delivery correction, not reversed.",
            ("input", "movementId"),
        )
    if await ctx.session.scalar(select(Movement.id).where(Movement.reverses_id == movement_id)) is not None:
        raise core.DomainError("ALREADY_EXISTS", "This movement is reversed already.", ("input", "movementId"))
    if original.quantity > 0:
        if not await _take(ctx, original.batch_id, original.warehouse_id, original.quantity):
            raise core.DomainError(
                "INSUFFICIENT_STOCK", "Its goods have left the warehouse since.", ("input", "movementId")
            )
    else:
        await _put(ctx, original.batch_id, original.warehouse_id, -original.quantity)
    movement = _move(
        ctx,
        "reversal",
        original.batch_id,
        original.warehouse_id,
        -original.quantity,
        reverses_id=original.id,
        reason=clean,
    )
    await _flush(ctx)
    return movement


# -- distributions --------------------------------------------------------------------------------------------------


# One distribution is one statement: the referenced rows checked (visible, of one organisation), the key
# claimed, this item's balances in the warehouse locked earliest expiry first, the picks decremented -- each
# only if that much is still there -- and the distribution and its ledger rows written, all conditional, so
# a refusal writes nothing and concurrent distributions cannot take the same units. The statement holds the
# balances' row locks from its own execution to the commit only: under contention that time is what bounds
# throughput (bench/supplies.py).
#
# The two guards, named so that tests/planted_races.py can take them out and show the race test catches it:
LOCK_BALANCES = "FOR UPDATE OF b"
# With the locks this always holds; it is what keeps stock from going negative whatever else is wrong
# (and the CHECK `ck_supplies_balances_not_negative` behind it).
TAKE_ONLY_WHAT_IS_THERE = "AND b.on_hand >= p.take"

_DISTRIBUTE_SQL = """
WITH refs AS (
    SELECT
        (SELECT organization_id FROM supplies_items WHERE id = :item) AS item_org,
        (SELECT organization_id FROM supplies_warehouses WHERE id = :warehouse) AS warehouse_org,
        (SELECT organization_id FROM communities WHERE id = CAST(:community AS bigint)) AS community_org,
        (SELECT organization_id FROM help_requests WHERE id = CAST(:request AS bigint)) AS request_org
),
valid AS (
    SELECT FROM refs
    WHERE warehouse_org = item_org
      AND (CAST(:community AS bigint) IS NULL OR community_org = item_org)
      AND (CAST(:request AS bigint) IS NULL OR request_org = item_org)
),{claim}
locked AS (
    SELECT b.batch_id, b.on_hand, bt.expires_on
    FROM supplies_balances b JOIN supplies_batches bt ON bt.id = b.batch_id
    WHERE bt.item_id = :item AND b.warehouse_id = :warehouse AND b.on_hand > 0
      AND EXISTS (SELECT FROM valid){claimed}
    ORDER BY bt.expires_on ASC NULLS LAST, bt.id
    {lock}
),
available AS (SELECT CAST(coalesce(sum(on_hand), 0) AS bigint) AS total FROM locked),
picks AS (
    SELECT batch_id, rank, CAST(least(on_hand, :quantity - (running - on_hand)) AS integer) AS take
    FROM (
        SELECT batch_id, on_hand,
               row_number() OVER fefo AS rank, sum(on_hand) OVER fefo AS running
        FROM locked
        WINDOW fefo AS (ORDER BY expires_on ASC NULLS LAST, batch_id)
    ) ranked
    WHERE running - on_hand < :quantity AND (SELECT total FROM available) >= :quantity
),
taken AS (
    UPDATE supplies_balances b SET on_hand = b.on_hand - p.take
    FROM picks p
    WHERE b.batch_id = p.batch_id AND b.warehouse_id = :warehouse {guard}
    RETURNING b.batch_id, p.take
),
distribution AS (
    INSERT INTO supplies_distributions ({id_column}warehouse_id, community_id, request_id, recipient, note)
    SELECT {id_value}CAST(:warehouse AS bigint), CAST(:community AS bigint), CAST(:request AS bigint),
           CAST(:recipient AS varchar), CAST(:note AS text)
    WHERE (SELECT CAST(coalesce(sum(take), 0) AS integer) FROM taken) = :quantity
    RETURNING *
),
ledger AS (
    INSERT INTO supplies_movements (kind, batch_id, warehouse_id, quantity, distribution_id, actor, at)
    SELECT 'distribution', t.batch_id, d.warehouse_id, -t.take, d.id, CAST(:actor AS varchar),
           CAST(:at AS timestamptz)
    FROM distribution d, taken t JOIN picks p ON p.batch_id = t.batch_id
    ORDER BY p.rank
){audit}
SELECT r.item_org, r.warehouse_org, r.community_org, r.request_org, {was_claimed} AS claimed,
       (SELECT total FROM available) AS available, (SELECT CAST(coalesce(sum(take), 0) AS integer) FROM taken) AS taken,
       d.id, d.organization_id, d.warehouse_id, d.community_id, d.request_id, d.recipient, d.status,
       d.delivered_quantity, d.confirmed_by, d.confirmed_at, d.dispatched_at, d.cancelled_at, d.cancel_reason,
       d.note, d.created_at
FROM refs r LEFT JOIN distribution d ON true
"""
# With an idempotency key: the distribution's id is drawn first, so that the key's claim can record it in
# the same statement; a key someone else holds (a retry, or a concurrent one that committed) claims nothing
# and so moves nothing. A concurrent holder makes the claim wait for its outcome (the key's primary key).
_CLAIM_SQL = """
new_id AS (SELECT nextval(pg_get_serial_sequence('supplies_distributions', 'id')) AS id),
claim AS (
    INSERT INTO supplies_idempotency_keys (organization_id, key, operation, fingerprint, result)
    SELECT CAST(:organization AS bigint), CAST(:key AS varchar), 'distribute', CAST(:fingerprint AS varchar),
           jsonb_build_object('id', id)
    FROM new_id
    ON CONFLICT (organization_id, key) DO NOTHING
    RETURNING key
),"""
_DISTRIBUTION_COLUMNS = (
    "id",
    "organization_id",
    "warehouse_id",
    "community_id",
    "request_id",
    "recipient",
    "status",
    "delivered_quantity",
    "confirmed_by",
    "confirmed_at",
    "dispatched_at",
    "cancelled_at",
    "cancel_reason",
    "note",
    "created_at",
)
# The write's audit entry, when the runner of the write lets the service insert it (core.services.audit
# `write_values`): one round trip fewer between the decrement and the commit, i.e. while the locks are held.
_AUDIT_SQL = """,
audited AS (
    INSERT INTO audit_log ({columns}, record_id)
    SELECT {values}, d.id FROM distribution d
)"""
_statements: dict[tuple[bool, tuple[str, ...], str, str], Any] = {}


def _sql_type(column: str) -> str:
    return str(AuditEntry.__table__.c[column].type.compile(dialect=postgresql.dialect()))


def _audit_entry(ctx: core.ServiceContext) -> dict[str, object]:
    """The running write's audit entry, to insert in the distribution's statement, or {} when the write's
    runner adds it itself: when nobody expects one (a script), or when core cannot hand it over yet
    (`audit.write_values` and `audit.written`, proposed in issue 13 step 4)."""
    write_values = getattr(audit, "write_values", None)
    values = write_values(ctx, "Distribution") if write_values is not None else None
    return values or {}


def _distribute_statement(keyed: bool, audited: tuple[str, ...]) -> Any:
    """The statement (built once per shape and guard setting: planted races replace the guards).
    `audited`: the audit entry's columns, if the statement inserts it."""
    shape = (keyed, audited, LOCK_BALANCES, TAKE_ONLY_WHAT_IS_THERE)
    if shape not in _statements:
        audit_sql = _AUDIT_SQL.format(
            columns=", ".join(audited), values=", ".join(f"CAST(:audit_{c} AS {_sql_type(c)})" for c in audited)
        )
        _statements[shape] = text(
            _DISTRIBUTE_SQL.format(
                audit=audit_sql if audited else "",
                claim=_CLAIM_SQL if keyed else "",
                claimed="\n      AND EXISTS (SELECT FROM claim)" if keyed else "",
                lock=LOCK_BALANCES,
                guard=TAKE_ONLY_WHAT_IS_THERE,
                id_column="id, " if keyed else "",
                id_value="(SELECT id FROM new_id), " if keyed else "",
                was_claimed="EXISTS (SELECT FROM claim)" if keyed else "true",
            )
        )
    return _statements[shape]


def fingerprint(operation: str, arguments: dict[str, Any]) -> str:
    """What a key remembers of the call it was first used with."""
    return hashlib.sha256(json.dumps([operation, arguments], sort_keys=True, default=str).encode()).hexdigest()


def _idempotency_key(ctx: core.ServiceContext, key: str | None) -> str | None:
    """The key, if any (empty means none), checked before anything runs."""
    if not key:
        return None
    v = core.Validator()
    v.check(len(key) <= 100, ("input", "idempotencyKey"), "OUT_OF_RANGE", "At most 100 characters.")
    v.raise_if_any()
    return key


async def _replay(ctx: core.ServiceContext, organization_id: int, key: str, fingerprint_: str) -> Any:
    """The key's first result (a retry), or IDEMPOTENCY_MISMATCH for other arguments under that key."""
    first = await ctx.session.get(IdempotencyKey, (organization_id, key), populate_existing=True)
    if first is None or first.fingerprint != fingerprint_:
        raise core.DomainError(
            "IDEMPOTENCY_MISMATCH", "This key was used with other arguments.", ("input", "idempotencyKey")
        )
    return first


async def distribute(
    ctx: core.ServiceContext,
    *,
    warehouse_id: int,
    item_id: int,
    quantity: int,
    community_id: int | None = None,
    request_id: int | None = None,
    recipient: str = "",
    note: str = "",
    idempotency_key: str | None = None,
) -> Distribution:
    """Take `quantity` of an item out of a warehouse, earliest expiry first, for one recipient. The item,
    the warehouse and the community or help request must all be the caller's to see (else NOT_FOUND) and
    of one organisation. With `idempotency_key`, a retry with the same arguments returns the first
    distribution and moves nothing (as `idempotent` does; the fingerprint is the same, so keys are
    interchangeable between the two)."""
    organization_id = _manage(ctx)
    key = _idempotency_key(ctx, idempotency_key)
    v = core.Validator()
    _quantity(v, quantity)
    targets = (community_id is not None) + (request_id is not None) + bool(recipient.strip())
    v.check(
        targets == 1,
        ("input", "communityId"),
        "INVALID_INPUT",
        "A distribution goes to exactly one of: a community, a help request, a person.",
    )
    v.raise_if_any()
    params: dict[str, Any] = {
        "item": item_id,
        "warehouse": warehouse_id,
        "community": community_id,
        "request": request_id,
        "quantity": quantity,
        "recipient": recipient.strip(),
        "note": note.strip(),
        "actor": ctx.viewer.label,
        "at": ctx.now(),
    }
    if key is not None:
        arguments = {
            "warehouse_id": warehouse_id,
            "item_id": item_id,
            "quantity": quantity,
            "community_id": community_id,
            "request_id": request_id,
            "recipient": recipient,
            "note": note,
        }
        params |= {"organization": organization_id, "key": key, "fingerprint": fingerprint("distribute", arguments)}
    entry = _audit_entry(ctx)
    params |= {f"audit_{column}": value for column, value in entry.items()}
    row = (await ctx.session.execute(_distribute_statement(key is not None, tuple(entry)), params)).one()
    if key is not None and not row.claimed:
        first = await _replay(ctx, organization_id, key, params["fingerprint"])
        return await _get(ctx, Distribution, int(first.result["id"]), _("Distribution"))
    # Refusals in the order the checks read: what is missing, then what does not belong together, then stock.
    if row.item_org is None:
        raise core.NotFound(_("Item"), ("input", "itemId"))
    if row.warehouse_org is None:
        raise core.NotFound(_("Warehouse"), ("input", "warehouseId"))
    if community_id is not None and row.community_org is None:
        raise core.NotFound(_("Community"), ("input", "communityId"))
    if request_id is not None and row.request_org is None:
        raise core.NotFound(_("Help request"), ("input", "requestId"))
    if len({row.item_org, row.warehouse_org, row.community_org or row.item_org, row.request_org or row.item_org}) > 1:
        raise core.DomainError("ORGANIZATION_MISMATCH", "These records belong to different organisations.")
    if row.available < quantity:
        raise core.DomainError("INSUFFICIENT_STOCK", "Not enough of this item in the warehouse.", ("input", "quantity"))
    if row.taken != quantity or row.id is None:  # cannot happen under the locks; the conditional decrement agrees
        raise core.DomainError("INSUFFICIENT_STOCK", "Stock changed meanwhile.", ("input", "quantity"))
    if entry:
        audit.written(ctx)  # type: ignore[attr-defined]
    return Distribution(**{column: getattr(row, column) for column in _DISTRIBUTION_COLUMNS})


async def dispatch(ctx: core.ServiceContext, distribution_id: int) -> Distribution:
    _manage(ctx)
    distribution = await _locked(ctx, distribution_id)
    if distribution.status != "planned":
        raise core.DomainError(
            "INVALID_TRANSITION",
            "The distribution is {status} and cannot be dispatched.",
            ("input", "id"),
            status=STATUS_LABELS.get(distribution.status, distribution.status),
        )
    distribution.status, distribution.dispatched_at = "dispatched", ctx.now()
    await _flush(ctx)
    return distribution


async def confirm_delivery(
    ctx: core.ServiceContext, distribution_id: int, note: str = "", delivered: int | None = None
) -> Distribution:
    """The recipient side confirms (a community head for their community, or supplies staff). `delivered`
    below what was sent records a partial delivery: the rest goes back into the warehouse."""
    distribution = await _locked(ctx, distribution_id)
    head_of_it = (
        ctx.viewer.role == "community_head"
        and distribution.community_id is not None
        and distribution.community_id == ctx.viewer.community_id
    )
    if not head_of_it:
        _manage(ctx)
    if distribution.status != "dispatched":
        raise core.DomainError(
            "INVALID_TRANSITION",
            "The distribution is {status} and cannot be delivered.",
            ("input", "id"),
            status=STATUS_LABELS.get(distribution.status, distribution.status),
        )
    picks = list(
        (
            await ctx.session.scalars(
                select(Movement)
                .where(Movement.distribution_id == distribution.id, Movement.kind == "distribution")
                .order_by(Movement.id.desc())
            )
        ).all()
    )
    sent = -sum(m.quantity for m in picks)
    received = sent if delivered is None else delivered
    if not 0 <= received <= sent:
        raise core.DomainError("OUT_OF_RANGE", "Between 0 and the {sent} sent.", ("input", "delivered"), sent=sent)
    shortfall = sent - received
    for pick in picks:  # latest-expiring batch first back into stock
        if shortfall == 0:
            break
        back = min(shortfall, -pick.quantity)
        await _put(ctx, pick.batch_id, pick.warehouse_id, back)
        _move(
            ctx,
            "return",
            pick.batch_id,
            pick.warehouse_id,
            back,
            distribution_id=distribution.id,
            reason="not delivered",
        )
        shortfall -= back
    distribution.status, distribution.confirmed_by, distribution.confirmed_at = "delivered", ctx.viewer.label, ctx.now()
    distribution.delivered_quantity = received
    distribution.note = (distribution.note + " " + note.strip()).strip()
    await _flush(ctx)
    if distribution.request_id is not None:
        await _fulfil_if_complete(ctx, distribution.request_id, distribution.id)
    return distribution


async def cancel_distribution(ctx: core.ServiceContext, distribution_id: int, reason: str) -> Distribution:
    """Call off a planned distribution: what planning reserved goes back to the batches and the warehouse it
    came from, as 'return' movements (the ledger keeps the reservation and its undoing; nothing is deleted).
    Dispatched or delivered goods cannot be cancelled (INVALID_TRANSITION): a delivery confirmation with a
    smaller `delivered` quantity brings back what did not arrive."""
    _manage(ctx)
    v = core.Validator()
    clean = validation.text(v, ("input", "reason"), reason, max_length=500, label=_("A reason"))
    v.raise_if_any()
    distribution = await _locked(ctx, distribution_id)
    if distribution.status != "planned":
        raise core.DomainError(
            "INVALID_TRANSITION",
            "The distribution is {status} and cannot be cancelled.",
            ("input", "id"),
            status=STATUS_LABELS.get(distribution.status, distribution.status),
        )
    picks = (
        await ctx.session.scalars(
            select(Movement)
            .where(Movement.distribution_id == distribution.id, Movement.kind == "distribution")
            .order_by(Movement.id)
        )
    ).all()
    for pick in picks:
        await _put(ctx, pick.batch_id, pick.warehouse_id, -pick.quantity)
        _move(
            ctx,
            "return",
            pick.batch_id,
            pick.warehouse_id,
            -pick.quantity,
            distribution_id=distribution.id,
            reason=f"cancelled: {clean}",
        )
    distribution.status, distribution.cancelled_at, distribution.cancel_reason = "cancelled", ctx.now(), clean
    await _flush(ctx)
    return distribution


async def _fulfil_if_complete(ctx: core.ServiceContext, request_id: int, distribution_id: int) -> None:
    """Goods delivered and nothing else on its way: the core request moves forward through core's service.
    (Only for callers who may coordinate requests; a community head's confirmation leaves that to them.)"""
    if not core.can(ctx.viewer, "requests.coordinate"):
        return
    pending = await ctx.session.scalar(
        select(func.count()).where(
            Distribution.request_id == request_id, Distribution.status.notin_(("delivered", "cancelled"))
        )
    )
    request = await ctx.session.get(core.HelpRequest, request_id)
    if pending == 0 and request is not None and request.status == "in_progress":
        await help_requests.fulfil(ctx, request.id, f"supplies delivered (distribution {distribution_id})")


async def _locked(ctx: core.ServiceContext, distribution_id: int) -> Distribution:
    """The distribution, row-locked; NOT_FOUND also for one of another organisation."""
    return await core.get_row(
        ctx, Distribution, distribution_id, what=_("Distribution"), field=("input", "id"), lock=True
    )


# -- idempotency ------------------------------------------------------------------------------------------------------


async def idempotent(
    ctx: core.ServiceContext,
    key: str | None,
    operation: str,
    arguments: dict[str, Any],
    run: Callable[[], Awaitable[Any]],
    load: Callable[[int], Awaitable[Any]],
) -> Any:
    """Run once per key. A retry with the same key and arguments returns the first result; with other
    arguments it is IDEMPOTENCY_MISMATCH. Concurrent retries wait on the key's unique index. Keys are per
    organisation (the caller's): another organisation's use of the same key neither blocks nor reveals."""
    if not key:
        return await run()
    organization_id = _manage(ctx)
    v = core.Validator()
    v.check(len(key) <= 100, ("input", "idempotencyKey"), "OUT_OF_RANGE", "At most 100 characters.")
    v.raise_if_any()
    fingerprint = hashlib.sha256(json.dumps([operation, arguments], sort_keys=True, default=str).encode()).hexdigest()
    claimed = await ctx.session.scalar(
        insert(IdempotencyKey)
        .values(organization_id=organization_id, key=key, operation=operation, fingerprint=fingerprint)
        .on_conflict_do_nothing(index_elements=[IdempotencyKey.organization_id, IdempotencyKey.key])
        .returning(IdempotencyKey.key)
    )
    if claimed is None:
        first = await ctx.session.get(IdempotencyKey, (organization_id, key), populate_existing=True)
        if first is None or first.fingerprint != fingerprint:
            raise core.DomainError(
                "IDEMPOTENCY_MISMATCH", "This key was used with other arguments.", ("input", "idempotencyKey")
            )
        return await load(int(first.result["id"]))
    result = await run()
    await ctx.session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.organization_id == organization_id, IdempotencyKey.key == key)
        .values(result={"id": result.id})
    )
    return result


# -- reports ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CategoryFigures:
    category: str
    received: int
    distributed: int
    adjusted: int
    transferred_net: int
    on_hand: int
    # Stock at the start of the period (0 for an all-time report).
    opening: int = 0

    @property
    def balanced(self) -> bool:
        """Conservation: what was there and came in, net of corrections, is on hand or went out."""
        return self.opening + self.received + self.adjusted + self.transferred_net == self.on_hand + self.distributed


def _in_order(since: datetime | None, until: datetime | None, field: tuple[str, ...]) -> None:
    """A period that ends before it starts is a mistake to point out, not an empty answer. (A long one is fine:
    these are paged lists and one grouped sum, not walks over each day.)"""
    if since is not None and until is not None and until < since:
        raise core.DomainError("OUT_OF_RANGE", "The period ends before it starts.", field)


async def report(
    ctx: core.ServiceContext, since: datetime | None = None, until: datetime | None = None
) -> list[CategoryFigures]:
    """Per category over [since, until) (default: all time). On hand is stock at the end of the period."""
    core.require(ctx, "supplies.manage")
    _in_order(since, until, ("until",))
    flows = (
        select(Item.category, Movement.kind, func.sum(Movement.quantity))
        .join(Batch, Batch.id == Movement.batch_id)
        .join(Item, Item.id == Batch.item_id)
        .group_by(Item.category, Movement.kind)
    )
    if since is not None:
        flows = flows.where(Movement.at >= since)
    if until is not None:
        flows = flows.where(Movement.at < until)
    by_kind = (await ctx.session.execute(flows)).all()
    if since is not None or until is not None:
        # Stock at the end of the period: everything moved before its end.
        held = (
            select(Item.category, func.sum(Movement.quantity))
            .join(Batch, Batch.id == Movement.batch_id)
            .join(Item, Item.id == Batch.item_id)
        )
        if until is not None:
            held = held.where(Movement.at < until)
        on_hand_at = dict((await ctx.session.execute(held.group_by(Item.category))).all())
        opening = (
            dict(
                (
                    await ctx.session.execute(
                        select(Item.category, func.sum(Movement.quantity))
                        .join(Batch, Batch.id == Movement.batch_id)
                        .join(Item, Item.id == Batch.item_id)
                        .where(Movement.at < since)
                        .group_by(Item.category)
                    )
                ).all()
            )
            if since is not None
            else {}
        )
        return _figures(by_kind, on_hand_at, opening)
    return _figures(
        by_kind,
        dict(
            (
                await ctx.session.execute(
                    select(Item.category, func.sum(Balance.on_hand))
                    .join(Batch, Batch.id == Balance.batch_id)
                    .join(Item, Item.id == Batch.item_id)
                    .group_by(Item.category)
                )
            ).all()
        ),
        {},
    )


# The movements `report` counts as distributed: stock taken out for distributions, less what cancelled ones
# gave back.
DISTRIBUTED_KINDS = ("distribution", "return")


async def distributed_since(ctx: core.ServiceContext, since: datetime) -> int:
    """Items distributed from `since` on, by the caller's organisation: `report`'s `distributed` over that
    period, in one sum (the situation board asks for it on every refresh)."""
    core.require(ctx, "supplies.manage")
    total = await ctx.session.scalar(
        select(func.coalesce(func.sum(Movement.quantity), 0)).where(
            Movement.organization_id == _organization(ctx),
            Movement.kind.in_(DISTRIBUTED_KINDS),
            Movement.at >= since,
        )
    )
    return -int(total or 0)


def _figures(by_kind: Any, on_hand: dict[str, Any], opening: dict[str, Any]) -> list[CategoryFigures]:
    """Figures per category; with an opening stock, conservation holds for any window."""
    sums: dict[str, dict[str, int]] = {}
    for category, kind, total in by_kind:
        sums.setdefault(category, {})[kind] = int(total)
    out = []
    for category in sorted(set(sums) | set(on_hand)):
        k = sums.get(category, {})
        out.append(
            CategoryFigures(
                category=category,
                received=k.get("receipt", 0),
                opening=int(opening.get(category, 0) or 0),
                distributed=-(k.get("distribution", 0) + k.get("return", 0)),
                adjusted=k.get("adjustment", 0) + k.get("reversal", 0),
                transferred_net=k.get("transfer_in", 0) + k.get("transfer_out", 0),
                on_hand=int(on_hand.get(category, 0) or 0),
            )
        )
    return out


def report_csv(rows: list[CategoryFigures]) -> str:
    lines = ["category,received,distributed,adjusted,on_hand,balanced"]
    lines += [
        f"{r.category},{r.received},{r.distributed},{r.adjusted},{r.on_hand},{str(r.balanced).lower()}" for r in rows
    ]
    return "\n".join(lines) + "\n"


async def ledger_agrees(ctx: core.ServiceContext) -> bool:
    """Every balance equals the sum of its ledger movements (an audit query, also used by tests)."""
    mismatches = await ctx.session.scalar(
        text(
            "SELECT count(*) FROM supplies_balances b FULL JOIN (SELECT batch_id, warehouse_id, sum(quantity) AS q "
            "FROM supplies_movements GROUP BY 1, 2) m USING (batch_id, warehouse_id) "
            "WHERE coalesce(b.on_hand, 0) <> coalesce(m.q, 0)"
        )
    )
    return mismatches == 0


@dataclass(frozen=True)
class StockLine:
    item: str
    warehouse: str
    batch: str
    expires_on: date | None
    on_hand: int
    item_id: int = 0
    warehouse_id: int = 0
    batch_id: int = 0


# "Expiring within N days": ten years covers every shelf life; beyond, date arithmetic would overflow.
MAX_NEAR_EXPIRY_DAYS = 3650


async def stock_lines(
    ctx: core.ServiceContext,
    *,
    near_expiry_days: int | None = None,
    below: int | None = None,
    warehouse_id: int | None = None,
    item_id: int | None = None,
) -> list[StockLine]:
    """On hand (more than zero) per item, warehouse and batch; optionally only what expires within N days, runs
    below a level, or lies in one warehouse or is of one item."""
    core.require(ctx, "supplies.manage")
    if near_expiry_days is not None and not 0 <= near_expiry_days <= MAX_NEAR_EXPIRY_DAYS:
        raise core.DomainError(
            "OUT_OF_RANGE", "Between 0 and {limit} days.", ("nearExpiryDays",), limit=MAX_NEAR_EXPIRY_DAYS
        )
    stmt = (
        select(
            Item.name,
            Warehouse.name,
            Batch.code,
            Batch.expires_on,
            Balance.on_hand,
            Item.id,
            Warehouse.id,
            Batch.id,
        )
        .join(Batch, Batch.id == Balance.batch_id)
        .join(Item, Item.id == Batch.item_id)
        .join(Warehouse, Warehouse.id == Balance.warehouse_id)
        .where(Balance.on_hand > 0)
        .order_by(Batch.expires_on.asc().nulls_last(), Item.name, Warehouse.name)
    )
    if near_expiry_days is not None:
        stmt = stmt.where(Batch.expires_on <= ctx.now().date() + timedelta(days=near_expiry_days))
    if below is not None:
        stmt = stmt.where(Balance.on_hand < below)
    if warehouse_id is not None:
        stmt = stmt.where(Balance.warehouse_id == warehouse_id)
    if item_id is not None:
        stmt = stmt.where(Batch.item_id == item_id)
    return [StockLine(*row) for row in (await ctx.session.execute(stmt)).all()]


@dataclass(frozen=True)
class DonorTotal:
    donor_id: int
    donor: str
    items: int
    money_fen: int


async def received_by_donor(ctx: core.ServiceContext) -> list[DonorTotal]:
    """Per donor who gave anything (by name, then id): items received and money received in fen."""
    core.require(ctx, "supplies.manage")
    goods = dict(
        (
            await ctx.session.execute(
                select(Donor.id, func.sum(Movement.quantity))
                .join(Batch, Batch.donor_id == Donor.id)
                .join(Movement, Movement.batch_id == Batch.id)
                .where(Movement.kind == "receipt")
                .group_by(Donor.id)
            )
        ).all()
    )
    money = dict(
        (
            await ctx.session.execute(
                select(Donor.id, func.sum(MoneyDonation.amount_fen))
                .join(MoneyDonation, MoneyDonation.donor_id == Donor.id)
                .group_by(Donor.id)
            )
        ).all()
    )
    given = set(goods) | set(money)
    names = dict((await ctx.session.execute(select(Donor.id, Donor.name).where(Donor.id.in_(given)))).all())
    return [
        DonorTotal(pk, names[pk], int(goods.get(pk, 0) or 0), int(money.get(pk, 0) or 0))
        for pk in sorted(given, key=lambda pk: (names[pk], pk))
    ]


async def trace(ctx: core.ServiceContext, batch_id: int) -> list[Movement]:
    """Where one donation line's goods went: every movement of its batch, in order (exact per batch,
    since distributions pick by batch, first expiry first)."""
    core.require(ctx, "supplies.manage")
    await _get(ctx, Batch, batch_id, _("Batch"), "batchId")
    rows = await ctx.session.scalars(select(Movement).where(Movement.batch_id == batch_id).order_by(Movement.id))
    return list(rows.all())


async def rows_by_id(ctx: core.ServiceContext, model: type, ids: list[int]) -> dict[int, Any]:
    """Rows of a supplies table by id (node lookups), for supplies staff. Row-level security leaves out
    another organisation's rows, so they are absent exactly like ids that do not exist."""
    core.require(ctx, "supplies.manage")
    if not ids:
        return {}
    rows = await ctx.session.scalars(select(model).where(model.id.in_(ids)))  # type: ignore[attr-defined]
    return {row.id: row for row in rows.all()}


REPORT_DIMENSIONS = ("category", "warehouse", "community", "donor")


async def report_by(ctx: core.ServiceContext, dimension: str) -> list[tuple[str, int, int, int]]:
    """(key, received, distributed net of returns, on hand) grouped by category, warehouse, community
    (distributed only) or donor (of the goods)."""
    core.require(ctx, "supplies.manage")
    if dimension not in REPORT_DIMENSIONS:
        raise core.DomainError("INVALID_INPUT", "Report by one of {values}.", ("by",), values=REPORT_DIMENSIONS)
    keys = {
        "category": Item.category,
        "warehouse": Warehouse.name,
        "community": func.coalesce(core.Community.name, "—"),
        "donor": func.coalesce(Donor.name, "—"),
    }
    key = keys[dimension].label("key")
    stmt = (
        select(
            key,
            func.coalesce(func.sum(Movement.quantity).filter(Movement.kind == "receipt"), 0),
            -func.coalesce(func.sum(Movement.quantity).filter(Movement.kind.in_(["distribution", "return"])), 0),
        )
        .select_from(Movement)
        .join(Batch, Batch.id == Movement.batch_id)
        .join(Item, Item.id == Batch.item_id)
        .join(Warehouse, Warehouse.id == Movement.warehouse_id)
        .outerjoin(Donor, Donor.id == Batch.donor_id)
        .outerjoin(Distribution, Distribution.id == Movement.distribution_id)
        .outerjoin(core.Community, core.Community.id == Distribution.community_id)
        .group_by(key)
        .order_by(key)
    )
    flows = (await ctx.session.execute(stmt)).all()
    held: dict[str, int] = {}
    if dimension != "community":
        hold_key = {"category": Item.category, "warehouse": Warehouse.name, "donor": func.coalesce(Donor.name, "—")}[
            dimension
        ].label("key")
        held = {
            k: int(v)
            for k, v in (
                await ctx.session.execute(
                    select(hold_key, func.sum(Balance.on_hand))
                    .select_from(Balance)
                    .join(Batch, Batch.id == Balance.batch_id)
                    .join(Item, Item.id == Batch.item_id)
                    .join(Warehouse, Warehouse.id == Balance.warehouse_id)
                    .outerjoin(Donor, Donor.id == Batch.donor_id)
                    .group_by(hold_key)
                )
            ).all()
        }
    return [(str(k), int(r), int(d), held.get(str(k), 0)) for k, r, d in flows]


def rows_csv(header: str, rows: list[tuple[object, ...]]) -> str:
    def cell(value: object) -> str:
        text_value = str(value)
        return '"' + text_value.replace('"', '""') + '"' if any(c in text_value for c in ',"\n') else text_value

    return "\n".join([header, *(",".join(cell(v) for v in row) for row in rows)]) + "\n"


# -- lists (cursor pages) ---------------------------------------------------------------------------------------------
# Every list that can grow is a `core.paginate` page for supplies staff; row-level security keeps it to the
# caller's organisation (platform administrators: every organisation's).

BY_NAME_ITEM: core.Ordering[Item] = core.Ordering("name", (Item.name, Item.id), lambda r: (r.name, r.id))
BY_NAME_WAREHOUSE: core.Ordering[Warehouse] = core.Ordering(
    "name", (Warehouse.name, Warehouse.id), lambda r: (r.name, r.id)
)
BY_NAME_DONOR: core.Ordering[Donor] = core.Ordering("name", (Donor.name, Donor.id), lambda r: (r.name, r.id))
NEWEST_DONATION: core.Ordering[MoneyDonation] = core.Ordering(
    "newest", (MoneyDonation.received_at, MoneyDonation.id), lambda r: (r.received_at, r.id), descending=True
)
ALLOCATION_ORDER: core.Ordering[MoneyAllocation] = core.Ordering("id", (MoneyAllocation.id,), lambda r: (r.id,))
NEWEST_DISTRIBUTION: core.Ordering[Distribution] = core.Ordering(
    "newest", (Distribution.created_at, Distribution.id), lambda r: (r.created_at, r.id), descending=True
)
# The ledger in the order it was written.
LEDGER_ORDER: core.Ordering[Movement] = core.Ordering("ledger", (Movement.id,), lambda r: (r.id,))


def _search(column: Any, search: str | None) -> Any:
    """Case-insensitive substring (LIKE wildcards taken literally)."""
    escaped = (search or "").strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")


@dataclass(frozen=True)
class ItemFilter:
    categories: tuple[str, ...] = ()
    batched: bool | None = None
    search: str | None = None


async def list_items(
    ctx: core.ServiceContext, f: ItemFilter, *, first: int, after: str | None = None
) -> core.Page[Item]:
    core.require(ctx, "supplies.manage")
    stmt = select(Item)
    if f.categories:
        stmt = stmt.where(Item.category.in_(f.categories))
    if f.batched is not None:
        stmt = stmt.where(Item.batched.is_(f.batched))
    if f.search:
        stmt = stmt.where(_search(Item.name, f.search))
    return await core.paginate(ctx, stmt, BY_NAME_ITEM, first=first, after=after)


@dataclass(frozen=True)
class WarehouseFilter:
    search: str | None = None


async def list_warehouses(
    ctx: core.ServiceContext, f: WarehouseFilter, *, first: int, after: str | None = None
) -> core.Page[Warehouse]:
    core.require(ctx, "supplies.manage")
    stmt = select(Warehouse)
    if f.search:
        stmt = stmt.where(_search(Warehouse.name, f.search) | _search(Warehouse.address, f.search))
    return await core.paginate(ctx, stmt, BY_NAME_WAREHOUSE, first=first, after=after)


@dataclass(frozen=True)
class DonorFilter:
    kind: str | None = None
    search: str | None = None


async def list_donors(
    ctx: core.ServiceContext, f: DonorFilter | None = None, *, first: int = 50, after: str | None = None
) -> core.Page[Donor]:
    core.require(ctx, "supplies.manage")
    f = f or DonorFilter()
    stmt = select(Donor)
    if f.kind is not None:
        stmt = stmt.where(Donor.kind == f.kind)
    if f.search:
        stmt = stmt.where(_search(Donor.name, f.search))
    return await core.paginate(ctx, stmt, BY_NAME_DONOR, first=first, after=after)


@dataclass(frozen=True)
class DonationFilter:
    donor_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    search: str | None = None


async def list_donations(
    ctx: core.ServiceContext, f: DonationFilter, *, first: int, after: str | None = None
) -> core.Page[MoneyDonation]:
    """Money donations, newest first; `since`/`until` bound when they were received ([since, until))."""
    core.require(ctx, "supplies.manage")
    _in_order(f.since, f.until, ("filter", "until"))
    stmt = select(MoneyDonation)
    if f.donor_id is not None:
        stmt = stmt.where(MoneyDonation.donor_id == f.donor_id)
    if f.since is not None:
        stmt = stmt.where(MoneyDonation.received_at >= f.since)
    if f.until is not None:
        stmt = stmt.where(MoneyDonation.received_at < f.until)
    if f.search:
        stmt = stmt.where(_search(MoneyDonation.receipt_no, f.search) | _search(MoneyDonation.purpose, f.search))
    return await core.paginate(ctx, stmt, NEWEST_DONATION, first=first, after=after)


@dataclass(frozen=True)
class AllocationFilter:
    donation_id: int | None = None


async def list_allocations(
    ctx: core.ServiceContext, f: AllocationFilter, *, first: int, after: str | None = None
) -> core.Page[MoneyAllocation]:
    """Allocations, oldest first: of one donation (NOT_FOUND if the caller cannot see it) or of all."""
    core.require(ctx, "supplies.manage")
    stmt = select(MoneyAllocation)
    if f.donation_id is not None:
        await core.get_row(ctx, MoneyDonation, f.donation_id, what=_("Donation"), field=("filter", "donationId"))
        stmt = stmt.where(MoneyAllocation.donation_id == f.donation_id)
    return await core.paginate(ctx, stmt, ALLOCATION_ORDER, first=first, after=after)


@dataclass(frozen=True)
class DistributionFilter:
    statuses: tuple[str, ...] = ()
    warehouse_id: int | None = None
    item_id: int | None = None
    community_id: int | None = None
    request_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


def _of_item(item_id: int) -> Any:
    """Distributions whose goods are of this item (the item is that of the batches planning picked)."""
    return Distribution.id.in_(
        select(Movement.distribution_id)
        .join(Batch, Batch.id == Movement.batch_id)
        .where(Movement.kind == "distribution", Batch.item_id == item_id)
    )


async def list_distributions(
    ctx: core.ServiceContext, f: DistributionFilter, *, first: int, after: str | None = None
) -> core.Page[Distribution]:
    """Distributions, newest first; `since`/`until` bound when they were planned ([since, until))."""
    core.require(ctx, "supplies.manage")
    _in_order(f.since, f.until, ("filter", "until"))
    stmt = select(Distribution)
    if f.statuses:
        stmt = stmt.where(Distribution.status.in_(f.statuses))
    if f.warehouse_id is not None:
        stmt = stmt.where(Distribution.warehouse_id == f.warehouse_id)
    if f.item_id is not None:
        stmt = stmt.where(_of_item(f.item_id))
    if f.community_id is not None:
        stmt = stmt.where(Distribution.community_id == f.community_id)
    if f.request_id is not None:
        stmt = stmt.where(Distribution.request_id == f.request_id)
    if f.since is not None:
        stmt = stmt.where(Distribution.created_at >= f.since)
    if f.until is not None:
        stmt = stmt.where(Distribution.created_at < f.until)
    return await core.paginate(ctx, stmt, NEWEST_DISTRIBUTION, first=first, after=after)


@dataclass(frozen=True)
class MovementFilter:
    kinds: tuple[str, ...] = ()
    batch_id: int | None = None
    warehouse_id: int | None = None
    item_id: int | None = None
    distribution_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


def movements_statement(f: MovementFilter) -> Any:
    """The ledger's movements under a filter (no order: the ledger order is LEDGER_ORDER)."""
    stmt = select(Movement)
    if f.kinds:
        stmt = stmt.where(Movement.kind.in_(f.kinds))
    if f.batch_id is not None:
        stmt = stmt.where(Movement.batch_id == f.batch_id)
    if f.warehouse_id is not None:
        stmt = stmt.where(Movement.warehouse_id == f.warehouse_id)
    if f.item_id is not None:
        stmt = stmt.where(Movement.batch_id.in_(select(Batch.id).where(Batch.item_id == f.item_id)))
    if f.distribution_id is not None:
        stmt = stmt.where(Movement.distribution_id == f.distribution_id)
    if f.since is not None:
        stmt = stmt.where(Movement.at >= f.since)
    if f.until is not None:
        stmt = stmt.where(Movement.at < f.until)
    return stmt


async def list_movements(
    ctx: core.ServiceContext, f: MovementFilter, *, first: int, after: str | None = None
) -> core.Page[Movement]:
    """The stock ledger, in the order it was written; `since`/`until` bound when ([since, until))."""
    core.require(ctx, "supplies.manage")
    _in_order(f.since, f.until, ("filter", "until"))
    return await core.paginate(ctx, movements_statement(f), LEDGER_ORDER, first=first, after=after)


async def batch(ctx: core.ServiceContext, batch_id: int) -> Batch:
    """One batch (a donation line's goods), for supplies staff; NOT_FOUND also for another organisation's."""
    core.require(ctx, "supplies.manage")
    return await _get(ctx, Batch, batch_id, _("Batch"), "batchId")


# -- batched reads for nested fields (one statement per page of parents, never one per parent) ----------------------


def distribution_lines_statement(distribution_ids: list[int]) -> Any:
    """(distribution, item, quantity planned) for each distribution: what planning took out of stock."""
    return (
        select(Movement.distribution_id, Batch.item_id, -func.sum(Movement.quantity))
        .join(Batch, Batch.id == Movement.batch_id)
        .where(Movement.distribution_id.in_(distribution_ids), Movement.kind == "distribution")
        .group_by(Movement.distribution_id, Batch.item_id)
    )


def allocated_statement(donation_ids: list[int]) -> Any:
    """(donation, fen allocated) for each donation with allocations."""
    return (
        select(MoneyAllocation.donation_id, func.sum(MoneyAllocation.amount_fen))
        .where(MoneyAllocation.donation_id.in_(donation_ids))
        .group_by(MoneyAllocation.donation_id)
    )


def batch_on_hand_statement(batch_ids: list[int]) -> Any:
    """(batch, on hand in every warehouse) for each batch with a balance."""
    return (
        select(Balance.batch_id, func.sum(Balance.on_hand))
        .where(Balance.batch_id.in_(batch_ids))
        .group_by(Balance.batch_id)
    )
