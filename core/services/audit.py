"""The audit trail: every write, every read of a sensitive field, every sign-in and every refused attempt.

Writes are recorded in the transaction of the change (so a rolled-back change leaves no entry claiming it
happened); refusals and failed sign-ins in a transaction of their own (they must be kept although the
attempt changed nothing). The table is append-only in the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Select, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core import tenancy
from core.models import AuditEntry
from core.services import access
from core.services.context import ServiceContext, Viewer
from core.services.pagination import Ordering, Page, paginate
from core.vocab import Role


@dataclass(frozen=True)
class AuditRecord:
    action: str
    operation: str
    record_type: str | None = None
    record_id: int | None = None
    fields: tuple[str, ...] = ()
    detail: str = ""


@dataclass
class PendingWrite:
    """The audit entry of the write a runner (schema.context.Context.write) is running: the runner adds it
    after the service returns, unless the service inserted it in its own statement (`write_values`, then
    `written`) -- one round trip fewer while the write holds its locks."""

    operation: str
    request_id: str = ""
    written: bool = False


def write_values(ctx: ServiceContext, record_type: str) -> dict[str, object] | None:
    """The columns of the running write's audit entry but `record_id` (the service's statement knows it), for
    a service that inserts the entry itself; None when no runner expects one (a script, a test). Call
    `written` once the statement did insert it."""
    pending = ctx.pending_write
    if pending is None:
        return None
    values = _values(ctx.viewer, AuditRecord("write", pending.operation, record_type), ctx.now(), pending.request_id)
    del values["record_id"]
    return values


def written(ctx: ServiceContext) -> None:
    """The service inserted the running write's audit entry (see `write_values`): the runner adds none."""
    if ctx.pending_write is not None:
        ctx.pending_write.written = True


def entry(viewer: Viewer, record: AuditRecord, at: datetime, request_id: str = "") -> AuditEntry:
    return AuditEntry(**_values(viewer, record, at, request_id))


def _values(viewer: Viewer, record: AuditRecord, at: datetime, request_id: str = "") -> dict[str, object]:
    return {
        "at": at,
        "actor": viewer.label,
        "account_id": viewer.account_id,
        "organization_id": viewer.organization_id,
        "action": record.action,
        "operation": record.operation,
        "record_type": record.record_type,
        "record_id": record.record_id,
        "fields": list(record.fields),
        "request_id": request_id,
        "detail": record.detail[:1000],
    }


async def append(ctx: ServiceContext, rec: AuditRecord, request_id: str = "") -> None:
    """Add an entry to the caller's transaction without reading it back: an entry about no organisation
    (a sign-in attempt) is one its anonymous writer may add but, under row-level security, not read."""
    await _insert(ctx.session, [_values(ctx.viewer, rec, ctx.now(), request_id)])


def record(ctx: ServiceContext, rec: AuditRecord, request_id: str = "") -> None:
    """Add an entry to the caller's transaction."""
    ctx.session.add(entry(ctx.viewer, rec, ctx.now(), request_id))


async def _insert(session: AsyncSession, rows: list[dict[str, object]]) -> None:
    # A multi-row VALUES on the table: no RETURNING (which a single-row insert would add for its key).
    await session.execute(insert(AuditEntry.__table__).values(rows))


async def record_separately(
    sessionmaker: async_sessionmaker[AsyncSession],
    viewer: Viewer,
    records: Sequence[AuditRecord],
    at: datetime,
    request_id: str = "",
) -> None:
    """Commit entries in their own transaction (refusals, failed sign-ins, sensitive reads)."""
    if not records:
        return
    async with sessionmaker() as session, session.begin():
        tenancy.bind(session, viewer)
        # Not read back (no RETURNING): the writer may be anonymous (see `append`).
        await _insert(session, [_values(viewer, r, at, request_id) for r in records])


@dataclass
class AuditFilter:
    record_type: str | None = None
    record_id: int | None = None
    actions: Sequence[str] = field(default_factory=tuple)
    account_id: int | None = None


NEWEST: Ordering[AuditEntry] = Ordering(
    name="audit_newest", columns=(AuditEntry.id,), key=lambda e: (e.id,), descending=True
)


def _filtered(ctx: ServiceContext, f: AuditFilter) -> Select[tuple[AuditEntry]]:
    stmt = select(AuditEntry)
    if access.role_of(ctx.viewer) not in (Role.PLATFORM_ADMIN, Role.SYSTEM):
        # Organisation administrators read their organisation's trail only.
        stmt = stmt.where(AuditEntry.organization_id == ctx.viewer.organization_id)
    if f.record_type:
        stmt = stmt.where(AuditEntry.record_type == f.record_type)
    if f.record_id is not None:
        stmt = stmt.where(AuditEntry.record_id == f.record_id)
    if f.actions:
        stmt = stmt.where(AuditEntry.action.in_(list(f.actions)))
    if f.account_id is not None:
        stmt = stmt.where(AuditEntry.account_id == f.account_id)
    return stmt


async def list_entries(ctx: ServiceContext, f: AuditFilter, *, first: int, after: str | None) -> Page[AuditEntry]:
    access.require(ctx, "audit.read")
    return await paginate(ctx, _filtered(ctx, f), NEWEST, first=first, after=after)
