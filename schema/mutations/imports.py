"""importRecords (a spreadsheet uploaded per the GraphQL multipart request spec) and importColumns."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import strawberry
from strawberry import Info

from core import imports
from core.errors import DomainError, UserErrorData
from core.services import access
from core.services.context import ServiceContext
from schema import ids
from schema.mutations.base import mutate, payload
from schema.types.imports import ImportColumn, ImportKind, ImportReport, Upload

ImportPayload = payload("ImportPayload", "report", ImportReport, "What an import did, or why it did nothing.")

# Where file-level errors of core.imports point (its paths name the file, the mapping, the organisation, the
# kind) inside this mutation's input.
_INPUT_FIELDS = {"file": "file", "mapping": "mapping", "organizationId": "organizationId", "kind": "kind"}


@strawberry.input(description="One column of the file and the field it fills (see importColumns).")
class ImportColumnInput:
    header: str = strawberry.field(description="The header as the file spells it.")
    field: str = strawberry.field(description='An import field of the kind, or "" to ignore the column.')


@strawberry.input
class ImportInput:
    kind: ImportKind
    file: Upload = strawberry.field(description="A CSV (UTF-8 or GBK/GB18030) or XLSX file.")  # type: ignore[valid-type]
    mapping: list[ImportColumnInput] | None = strawberry.field(
        default=None, description="Header -> field, over the defaults (each kind's aliases)."
    )
    dry_run: bool = strawberry.field(default=False, description="Check everything, write nothing.")
    organization_id: strawberry.ID | None = strawberry.field(
        default=None, description="The organisation imported into (default: your own)."
    )


class _Done:
    """An import's result; its str() is the audit entry's detail (counts only, no cell of the file)."""

    def __init__(self, report: imports.ImportReport) -> None:
        self.report = report

    def __str__(self) -> str:
        r = self.report
        return (
            f"{r.kind}{' (dry run)' if r.dry_run else ''}: {r.rows_read} read, {r.created} created, "
            f"{r.updated} updated, {r.unchanged} unchanged, {len(r.duplicates)} duplicates, "
            f"{len({i.row for i in r.rejected})} rejected rows"
        )


# -- at most settings.import_concurrency imports at once per process ----------------------------------------
# Reading an XLSX and checking tens of thousands of rows is CPU work in the service's process: more imports at
# once would only slow each other and every other request. A caller waits a little for a slot (imports of a few
# hundred rows take well under a second), with at most MAX_WAITING callers waiting; past the wait, or with that
# many already waiting, it is told UNAVAILABLE (retry) instead of joining a queue without bound. One semaphore
# per event loop (tests run a loop per test).
WAIT_SECONDS = 10.0
MAX_WAITING = 8


class _Slots:
    def __init__(self, concurrency: int) -> None:
        self.semaphore = asyncio.Semaphore(concurrency)
        self.waiting = 0


_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Slots] = weakref.WeakKeyDictionary()


# The files already imported by a request: an operation naming its one file in several imports (aliases run
# one after another, each parsing the file again) imports it once; the others are refused. By identity (the
# edge's object; weak, so it goes with its request).
_imported: weakref.WeakSet[Any] = weakref.WeakSet()


def _busy() -> DomainError:
    return DomainError("UNAVAILABLE", "Other imports are running; retry in a moment.")


@asynccontextmanager
async def import_slot(concurrency: int) -> AsyncIterator[None]:
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        slots = _slots[loop] = _Slots(concurrency)
    if slots.semaphore.locked() and slots.waiting >= MAX_WAITING:
        raise _busy()
    slots.waiting += 1
    try:
        async with asyncio.timeout(WAIT_SECONDS):
            await slots.semaphore.acquire()
    except TimeoutError:
        raise _busy() from None
    finally:
        slots.waiting -= 1
    try:
        yield
    finally:
        slots.semaphore.release()


def _in_input(exc: DomainError) -> DomainError:
    """The engine's file-level errors addressed inside this mutation's input (["input", "file"], …)."""
    errors = []
    for error in exc.errors:
        field = error.field
        if field and field[0] in _INPUT_FIELDS:
            field = ("input", _INPUT_FIELDS[field[0]], *field[1:])
        errors.append(UserErrorData(error.message, error.code, field, error.template, error.params))
    return DomainError.many(errors)


@strawberry.type
class ImportMutations:
    @strawberry.mutation(
        description="Import volunteers, communities or help requests from a CSV or XLSX file sent as a multipart "
        "request. Each row is checked as the matching mutation checks it; rows with problems are reported and "
        "skipped, the others written together (importing the same file again changes nothing)."
    )
    async def import_records(self, info: Info, input: ImportInput) -> ImportPayload:  # type: ignore[valid-type]
        """In this order, so that nothing waits or parses while holding a database connection: who may
        (no database, no file), a slot (waiting, if need be, with no transaction open), the file read and
        split in a worker thread (no transaction either), and only then the write, in its own transaction
        (context.write: committed, or rolled back with nothing written). The request's token check already
        ended its transaction before the body was read (yunshegong.app, uploads)."""
        context = info.context
        settings = context.settings
        kind = input.kind.value
        upload = input.file
        mapping = {column.header: column.field for column in input.mapping or ()} if input.mapping is not None else None
        try:
            if upload in _imported:
                raise DomainError("INVALID_INPUT", "A file is imported once per request.", ("file",))
            _imported.add(upload)
            organization_id = ids.decode_optional(input.organization_id, "Organization", ("input", "organizationId"))
            imports.check_import_permission(_caller(context), kind, organization_id)
            async with import_slot(settings.import_concurrency):
                parsed = await imports.parse_import(kind, upload.data, mapping=mapping, settings=settings)

                async def work(ctx: ServiceContext) -> Any:
                    try:
                        report = await imports.run_import(
                            ctx,
                            kind,
                            parsed,
                            filename=upload.filename,
                            dry_run=input.dry_run,
                            organization_id=organization_id,
                            settings=settings,
                        )
                    except DomainError as exc:
                        raise _in_input(exc) from exc
                    return _Done(report)

                return await mutate(info, ImportPayload, "report", _converted, work)
        except DomainError as exc:
            refusal = _in_input(exc)
        # Answered as every mutation answers a refusal (signed-in check first, a denial audited).
        return await mutate(info, ImportPayload, "report", _converted, partial(_refuse, refusal))


def _caller(context: Any) -> ServiceContext:
    """The caller, for checks that read nothing (a session never used: opening one connects nothing)."""
    return context.service_context(context.app.sessionmaker())


async def _refuse(refusal: DomainError, ctx: ServiceContext) -> Any:
    raise refusal


def _converted(done: _Done) -> ImportReport:
    return ImportReport.of(done.report)


@strawberry.type
class ImportQuery:
    @strawberry.field(description="The fields an import kind fills, with the headers recognised by default.")
    async def import_columns(self, info: Info, kind: ImportKind) -> list[ImportColumn]:
        columns = await info.context.read(_columns, kind.value)
        return [ImportColumn.of(column) for column in columns]


async def _columns(ctx: ServiceContext, kind: str) -> tuple[Any, ...]:
    # Signed-in callers only, like the rest of the API (nothing here is secret, but nothing is public either).
    access.require_signed_in(ctx)
    return imports.KINDS[kind].columns
