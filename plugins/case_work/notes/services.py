"""Progress notes on a case: confidential, sealed at rest, revised rather than overwritten, never deleted.

**Who reads a case's notes** (`reader`), by every route (the case's notes, `node(id:)`, the case's nested
field, a note's revisions; notes are not searchable at all: their text is sealed): the case's social
worker, by relation; and, only through an explicit, audited access with a stated purpose (decisions.md:
"not by rank"), its supervisor (holding `case_work.supervisor`) and the platform and organisation
administrators of the case's organisation. `open_notes` keeps the purpose in `case_work_note_accesses` and
in the audit trail and lets that person read that case's notes for `ACCESS_LIFETIME`; until then the
notes answer PURPOSE_REQUIRED to them (lists), null (the case's nested field) or nothing (`node(id:)`,
revisions, texts). The case's people (its social worker, supervisor and administrators) list those
accesses. Not other social workers, nobody of another organisation (row-level security, and `case_scope`
too): they get what a missing case gives -- NOT_FOUND, null, nothing -- never FORBIDDEN, which would
confirm that the case has notes. A social worker who handed the case over (an accepted transfer) is
nobody to it from that moment.

**Writing**: the case's social worker and its supervisor write notes; a note is edited or voided by its
author while they still are the case's social worker or supervisor. An edit keeps the previous version as
a revision (its text sealed for the revision's row) before the note changes -- the database refuses an
edit without it. A voided note stays listed, its text hidden (kept, sealed), and changes no more. Nothing
is written on a closed case (CASE_CLOSED; a trigger refuses it too).

The text never leaves the service but to a reader: not in errors, events, logs or the audit trail.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

import core
from core.i18n import _
from core.services import audit, sealing
from plugins.case_work import services as cases
from plugins.case_work.models import Case
from plugins.case_work.notes.models import (
    NOTE_TYPES,
    NOTES_TABLE,
    REVISIONS_TABLE,
    TEXT_COLUMN,
    Note,
    NoteAccess,
    NoteRevision,
)

log = logging.getLogger(__name__)

MAX_TEXT = 20_000
MAX_PURPOSE = 500
MAX_REASON = 2_000
# A note records what happened: a little ahead of the server's clock is a device's clock, not the future.
FUTURE_TOLERANCE = timedelta(minutes=5)
# How long a stated purpose opens a case's notes to the person who stated it.
ACCESS_LIFETIME = timedelta(hours=1)

WORKER, SUPERVISOR, PLATFORM_ADMIN, ORG_ADMIN = "worker", "supervisor", "platform_admin", "organization_admin"

CONSTRAINT_ERRORS: dict[str, tuple[str, str, tuple[str, ...] | None]] = {
    **cases.CONSTRAINT_ERRORS,
    "case_work_note_voided": ("INVALID_TRANSITION", "The note is voided: it changes no more.", ("input", "id")),
    "case_work_note_revision_kept": ("INVALID_TRANSITION", "An edit keeps the previous version first.", None),
    "case_work_append_only": ("INVALID_TRANSITION", "Notes are kept as written.", None),
}

# Wiring (plugins/case_work/plugin.py): the plugin's new error code, and its sealed columns for `reseal`.
ERROR_CODES = {
    "PURPOSE_REQUIRED": "Opening the notes of a case not assigned to you needs a stated purpose first.",
}
SEALED_COLUMNS = (
    sealing.SealedColumn(NOTES_TABLE, TEXT_COLUMN),
    sealing.SealedColumn(REVISIONS_TABLE, TEXT_COLUMN),
)

NOTES_NEWEST: core.Ordering[Note] = core.Ordering(
    "case_work_notes_newest", (Note.occurred_at, Note.id), lambda n: (n.occurred_at, n.id), descending=True
)
ACCESSES_NEWEST: core.Ordering[NoteAccess] = core.Ordering(
    "case_work_note_accesses_newest", (NoteAccess.id,), lambda a: (a.id,), descending=True
)


@dataclass(frozen=True)
class Reader:
    """Why the caller may read a case's notes now: `relation`, and for a non-worker the access (stated
    purpose) in force."""

    relation: str
    access_id: int | None = None


@dataclass(frozen=True)
class AccessFilter:
    case_id: int | None = None


# -- who reads ----------------------------------------------------------------------------------------------


def relation_to(viewer: core.Viewer, case: Case) -> str | None:
    """The caller's relation to a case's notes, purpose aside: WORKER, SUPERVISOR, PLATFORM_ADMIN, ORG_ADMIN or
    None. Only WORKER reads without a stated purpose (`reader`)."""
    if viewer.organization_id is None or viewer.organization_id != case.organization_id:
        return None
    if not core.can(viewer, cases.MANAGE):
        return None
    if viewer.account_id is not None and viewer.account_id == case.social_worker_account_id:
        return WORKER
    if cases.supervises(viewer, case):
        return SUPERVISOR
    if viewer.role == "platform_admin":
        return PLATFORM_ADMIN
    if viewer.role == "organization_admin":
        return ORG_ADMIN
    return None


async def _live_access(ctx: core.ServiceContext, case_id: int) -> int | None:
    """The caller's access to a case's notes in force now (the latest), memoised for the request."""
    key = f"case_work.note_access:{case_id}"
    if key not in ctx.memo:
        ctx.memo[key] = await ctx.session.scalar(
            select(NoteAccess.id)
            .where(
                NoteAccess.case_id == case_id,
                NoteAccess.account_id == ctx.viewer.account_id,
                NoteAccess.expires_at > ctx.now(),
            )
            .order_by(NoteAccess.id.desc())
            .limit(1)
        )
    found: int | None = ctx.memo[key]
    return found


async def reader(ctx: core.ServiceContext, case: Case) -> Reader | None:
    """Whether (and why) the caller reads this case's notes now: None for everyone else, and for a
    supervisor or administrator who has not stated a purpose."""
    relation = relation_to(ctx.viewer, case)
    if relation is None:
        return None
    if relation == WORKER:
        return Reader(WORKER)
    access = await _live_access(ctx, case.id)
    return None if access is None else Reader(relation, access)


async def _visible_case(ctx: core.ServiceContext, case_id: int, field: tuple[str, ...], *, lock: bool = False) -> Case:
    """A case the caller may see at all (cases.case_scope), else NOT_FOUND on `field` (the path of the
    argument that named it: `("input", "caseId")` in a mutation, `("caseId",)` for a query's argument)."""
    core.require(ctx, cases.MANAGE)
    case: Case = await core.get_row(
        ctx, Case, case_id, what=_("Case"), field=field, lock=lock, scope=cases.case_scope(ctx)
    )
    return case


async def _readable_case(ctx: core.ServiceContext, case_id: int, field: tuple[str, ...]) -> tuple[Case, Reader]:
    """A case whose notes the caller reads now. Without a relation: NOT_FOUND (as for a missing case);
    a supervisor or administrator without a stated purpose: PURPOSE_REQUIRED."""
    case = await _visible_case(ctx, case_id, field)
    relation = relation_to(ctx.viewer, case)
    if relation is None:
        raise core.NotFound(_("Case"), field)
    found = await reader(ctx, case)
    if found is None:
        raise core.DomainError(
            "PURPOSE_REQUIRED",
            "State the purpose of opening this case's notes first (caseWorkOpenCaseNotes).",
            field,
        )
    return case, found


# -- validation ---------------------------------------------------------------------------------------------


def _text(v: core.Validator, text: str, field: str = "text") -> str:
    clean = text.strip()
    if v.check(bool(clean), ("input", field), "REQUIRED", "Write the note."):
        v.check(len(clean) <= MAX_TEXT, ("input", field), "OUT_OF_RANGE", "At most {limit} characters.", limit=MAX_TEXT)
    return clean


def _note_type(v: core.Validator, note_type: str) -> None:
    v.check(note_type in NOTE_TYPES, ("input", "noteType"), "INVALID_INPUT", "Unknown note type.")


def _occurred_at(ctx: core.ServiceContext, v: core.Validator, occurred_at: datetime) -> None:
    if not v.check(
        occurred_at.tzinfo is not None, ("input", "occurredAt"), "INVALID_INPUT", "Give the time with its offset."
    ):
        return
    v.check(
        occurred_at <= ctx.now() + FUTURE_TOLERANCE,
        ("input", "occurredAt"),
        "OUT_OF_RANGE",
        "A note records what happened: not a time in the future.",
    )


def _account(ctx: core.ServiceContext) -> int:
    if ctx.viewer.account_id is None:
        raise core.DomainError("FORBIDDEN", "You may not do this.")
    return ctx.viewer.account_id


def _not_closed(case: Case, field: tuple[str, ...]) -> None:
    """CASE_CLOSED on `field`: the input's field that named the case or the note."""
    if case.stage in cases.CLOSED:
        raise core.DomainError("CASE_CLOSED", "The case is closed: it cannot be changed.", field)


# -- writing ------------------------------------------------------------------------------------------------


async def add_note(ctx: core.ServiceContext, case_id: int, *, note_type: str, occurred_at: datetime, text: str) -> Note:
    """A new note on a case, by its social worker or supervisor."""
    case = await _visible_case(ctx, case_id, ("input", "caseId"), lock=True)
    if relation_to(ctx.viewer, case) not in (WORKER, SUPERVISOR):
        raise core.NotFound(_("Case"), ("input", "caseId"))
    author = _account(ctx)
    v = core.Validator()
    _note_type(v, note_type)
    _occurred_at(ctx, v, occurred_at)
    clean = _text(v, text)
    v.raise_if_any()
    _not_closed(case, ("input", "caseId"))
    # The id first: the sealed text is bound to its row (docs/plugins.md, "Sealed columns").
    note_id = await sealing.next_id(ctx, NOTES_TABLE)
    note = Note(
        id=note_id,
        case_id=case.id,
        note_type=note_type,
        occurred_at=occurred_at,
        text_sealed=await sealing.seal(ctx, clean, table=NOTES_TABLE, column=TEXT_COLUMN, row_id=note_id),
        revision=0,
        author_account_id=author,
        author=ctx.viewer.label[:100],
        created_at=ctx.now(),
    )
    ctx.session.add(note)
    await core.flush(ctx, CONSTRAINT_ERRORS)
    return note


async def _own_note(ctx: core.ServiceContext, note_id: int) -> tuple[Note, Case]:
    """A note the caller wrote, on a case they still work or supervise, locked for the change; NOT_FOUND
    for notes the caller cannot read, FORBIDDEN for a note of another author they may read."""
    core.require(ctx, cases.MANAGE)
    note = await ctx.session.scalar(
        select(Note)
        .where(Note.id == note_id, Note.case_id.in_(select(Case.id).where(cases.case_scope(ctx))))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if note is None:
        raise core.NotFound(_("Note"), ("input", "id"))
    case = await _visible_case(ctx, note.case_id, ("input", "id"), lock=True)
    relation = relation_to(ctx.viewer, case)
    if relation not in (WORKER, SUPERVISOR) or (relation == SUPERVISOR and await reader(ctx, case) is None):
        raise core.NotFound(_("Note"), ("input", "id"))
    if note.author_account_id != ctx.viewer.account_id:
        raise core.DomainError("FORBIDDEN", "A note is changed by its author only.", ("input", "id"))
    return note, case


async def edit_note(
    ctx: core.ServiceContext,
    note_id: int,
    *,
    text: str | None = None,
    note_type: str | None = None,
    occurred_at: datetime | None = None,
) -> Note:
    """Change a note: its previous version is kept as a revision, sealed for the revision's row."""
    note, case = await _own_note(ctx, note_id)
    editor = _account(ctx)
    v = core.Validator()
    if note_type is not None:
        _note_type(v, note_type)
    if occurred_at is not None:
        _occurred_at(ctx, v, occurred_at)
    clean = None if text is None else _text(v, text)
    v.raise_if_any()
    _not_closed(case, ("input", "id"))
    if note.voided_at is not None:
        raise core.DomainError("INVALID_TRANSITION", "The note is voided: it changes no more.", ("input", "id"))
    ring = await sealing.keyring(ctx)
    previous = ring.open(note.text_sealed, table=NOTES_TABLE, column=TEXT_COLUMN, row_id=note.id)
    new_text = previous if clean is None else clean
    new_type = note_type or note.note_type
    new_occurred = occurred_at or note.occurred_at
    if (new_text, new_type, new_occurred) == (previous, note.note_type, note.occurred_at):
        return note  # nothing changes: no revision
    revision_id = await sealing.next_id(ctx, REVISIONS_TABLE)
    ctx.session.add(
        NoteRevision(
            id=revision_id,
            note_id=note.id,
            revision=note.revision,
            note_type=note.note_type,
            occurred_at=note.occurred_at,
            text_sealed=ring.seal(previous, table=REVISIONS_TABLE, column=TEXT_COLUMN, row_id=revision_id),
            written_by_account_id=note.edited_by_account_id or note.author_account_id,
            written_at=note.edited_at or note.created_at,
            replaced_by_account_id=editor,
            replaced_at=ctx.now(),
        )
    )
    # The revision first: the database checks that it exists when the note changes.
    await core.flush(ctx, CONSTRAINT_ERRORS)
    note.text_sealed = ring.seal(new_text, table=NOTES_TABLE, column=TEXT_COLUMN, row_id=note.id)
    note.note_type = new_type
    note.occurred_at = new_occurred
    note.revision = note.revision + 1
    note.edited_at = ctx.now()
    note.edited_by_account_id = editor
    await core.flush(ctx, CONSTRAINT_ERRORS)
    return note


async def void_note(ctx: core.ServiceContext, note_id: int, reason: str) -> Note:
    """Void a note with a reason: it stays listed as voided, its text hidden but kept."""
    note, case = await _own_note(ctx, note_id)
    actor = _account(ctx)
    v = core.Validator()
    clean = reason.strip()
    if v.check(bool(clean), ("input", "reason"), "REQUIRED", "Say why the note is voided."):
        v.check(
            len(clean) <= MAX_REASON,
            ("input", "reason"),
            "OUT_OF_RANGE",
            "At most {limit} characters.",
            limit=MAX_REASON,
        )
    v.raise_if_any()
    _not_closed(case, ("input", "id"))
    if note.voided_at is not None:
        raise core.DomainError("INVALID_TRANSITION", "The note is voided already.", ("input", "id"))
    note.voided_at = ctx.now()
    note.voided_by_account_id = actor
    note.void_reason = clean
    await core.flush(ctx, CONSTRAINT_ERRORS)
    return note


async def open_notes(ctx: core.ServiceContext, case_id: int, purpose: str) -> NoteAccess:
    """A supervisor or an administrator (platform or organisation) states why they open a case's notes: kept
    (append-only) and in the audit trail; it opens that case's notes to them for ACCESS_LIFETIME."""
    case = await _visible_case(ctx, case_id, ("input", "caseId"))
    relation = relation_to(ctx.viewer, case)
    if relation is None:
        raise core.NotFound(_("Case"), ("input", "caseId"))
    if relation == WORKER:
        raise core.DomainError(
            "INVALID_INPUT",
            "You are the case's social worker: you read its notes without a purpose.",
            ("input", "caseId"),
        )
    account = _account(ctx)
    v = core.Validator()
    clean = purpose.strip()
    if v.check(bool(clean), ("input", "purpose"), "REQUIRED", "State the purpose of opening the notes."):
        v.check(
            len(clean) <= MAX_PURPOSE,
            ("input", "purpose"),
            "OUT_OF_RANGE",
            "At most {limit} characters.",
            limit=MAX_PURPOSE,
        )
    v.raise_if_any()
    now = ctx.now()
    access = NoteAccess(
        case_id=case.id,
        account_id=account,
        actor=ctx.viewer.label[:100],
        relation=relation,
        purpose=clean,
        at=now,
        expires_at=now + ACCESS_LIFETIME,
    )
    ctx.session.add(access)
    await core.flush(ctx, CONSTRAINT_ERRORS)
    # The audit trail keeps the purpose with the opening (the reads that follow name this access).
    operation = ctx.pending_write.operation if ctx.pending_write is not None else "caseWorkOpenCaseNotes"
    audit.record(
        ctx,
        audit.AuditRecord(
            action="read",
            operation=operation,
            record_type="CaseWorkCase",
            record_id=case.id,
            fields=("notes", f"access:{access.id}"),
            detail=f"purpose: {clean}",
        ),
    )
    ctx.memo.pop(f"case_work.note_access:{case.id}", None)
    return access


# -- reading ------------------------------------------------------------------------------------------------


async def list_notes(
    ctx: core.ServiceContext, case_id: int, *, first: int = 50, after: str | None = None
) -> tuple[core.Page[Note], Reader]:
    """A case's notes, voided ones included, newest first (by when they happened). Refusals name the query's
    argument, `caseId`."""
    case, found = await _readable_case(ctx, case_id, ("caseId",))
    stmt = select(Note).where(Note.case_id == case.id)
    return await core.paginate(ctx, stmt, NOTES_NEWEST, first=first, after=after), found


async def case_notes(
    ctx: core.ServiceContext, case: Case, *, first: int = 50, after: str | None = None
) -> tuple[core.Page[Note], Reader] | None:
    """The nested field on a case: None (not an error) for everyone who does not read its notes now."""
    if relation_to(ctx.viewer, case) is None or await reader(ctx, case) is None:
        return None
    return await list_notes(ctx, case.id, first=first, after=after)


async def readers_of(ctx: core.ServiceContext, case_ids: Sequence[int]) -> dict[int, Reader]:
    """Of these cases, those whose notes the caller reads now, and why."""
    if not case_ids or not core.can(ctx.viewer, cases.MANAGE):
        return {}
    rows = await ctx.session.scalars(select(Case).where(Case.id.in_(sorted(set(case_ids))), cases.case_scope(ctx)))
    found: dict[int, Reader] = {}
    for case in rows:
        r = await reader(ctx, case)
        if r is not None:
            found[case.id] = r
    return found


async def notes_by_id(ctx: core.ServiceContext, pks: Sequence[int]) -> dict[int, Note]:
    """node(id:): the notes the caller reads now; the others are simply absent (as if missing)."""
    if not pks or not core.can(ctx.viewer, cases.MANAGE):
        return {}
    rows = list(await ctx.session.scalars(select(Note).where(Note.id.in_(list(pks)))))
    allowed = await readers_of(ctx, [n.case_id for n in rows])
    return {n.id: n for n in rows if n.case_id in allowed}


async def texts(ctx: core.ServiceContext, notes: Sequence[Note]) -> dict[int, tuple[str | None, Reader]]:
    """The text of each note the caller reads now, with why they may (for the audit). Voided notes and notes
    the caller does not read are absent; a value that does not open is None (logged, the rest served). One
    keyring for the page, no round trip per value."""
    allowed = await readers_of(ctx, [n.case_id for n in notes])
    ring = await sealing.keyring(ctx)
    found: dict[int, tuple[str | None, Reader]] = {}
    for note in notes:
        why = allowed.get(note.case_id)
        if why is None or note.voided_at is not None:
            continue
        try:
            found[note.id] = (
                ring.open(note.text_sealed, table=NOTES_TABLE, column=TEXT_COLUMN, row_id=note.id),
                why,
            )
        except sealing.SealedValueError as exc:
            log.warning("case_work note %s does not open: %s", note.id, exc.reason)
            found[note.id] = (None, why)
    return found


async def revisions(
    ctx: core.ServiceContext, note_ids: Sequence[int]
) -> list[list[tuple[NoteRevision, str | None, Reader]]]:
    """Each note's previous versions, oldest first, with their text (one query for a page of notes); only
    for notes the caller reads now. A voided note's revisions keep their text hidden too."""
    rows = list(await ctx.session.scalars(select(Note).where(Note.id.in_(list(note_ids)))))
    allowed = await readers_of(ctx, [n.case_id for n in rows])
    readable = {n.id: n for n in rows if n.case_id in allowed}
    by_note: dict[int, list[tuple[NoteRevision, str | None, Reader]]] = {pk: [] for pk in note_ids}
    if readable:
        ring = await sealing.keyring(ctx)
        found = await ctx.session.scalars(
            select(NoteRevision)
            .where(NoteRevision.note_id.in_(list(readable)))
            .order_by(NoteRevision.note_id, NoteRevision.revision)
        )
        for rev in found:
            text: str | None = None
            if readable[rev.note_id].voided_at is None:
                try:
                    text = ring.open(rev.text_sealed, table=REVISIONS_TABLE, column=TEXT_COLUMN, row_id=rev.id)
                except sealing.SealedValueError as exc:
                    log.warning("case_work note revision %s does not open: %s", rev.id, exc.reason)
            by_note[rev.note_id].append((rev, text, allowed[readable[rev.note_id].case_id]))
    return [by_note[pk] for pk in note_ids]


def access_scope(ctx: core.ServiceContext) -> object:
    """Accesses: those to the notes of the cases the caller sees (its social worker, its supervisor, the
    administrators of its organisation) -- who opened them, and why."""
    return NoteAccess.case_id.in_(select(Case.id).where(cases.case_scope(ctx)))


async def list_accesses(
    ctx: core.ServiceContext, f: AccessFilter = AccessFilter(), *, first: int = 50, after: str | None = None
) -> core.Page[NoteAccess]:
    """Who opened the notes of the cases the caller sees, with the purpose they stated, newest first."""
    core.require(ctx, cases.MANAGE)
    stmt = select(NoteAccess).where(access_scope(ctx))  # type: ignore[arg-type]
    if f.case_id is not None:
        stmt = stmt.where(NoteAccess.case_id == f.case_id)
    return await core.paginate(ctx, stmt, ACCESSES_NEWEST, first=first, after=after)


async def accesses_by_id(ctx: core.ServiceContext, pks: Sequence[int]) -> dict[int, NoteAccess]:
    if not pks or not core.can(ctx.viewer, cases.MANAGE):
        return {}
    rows = await ctx.session.scalars(select(NoteAccess).where(NoteAccess.id.in_(list(pks)), access_scope(ctx)))  # type: ignore[arg-type]
    return {a.id: a for a in rows}
