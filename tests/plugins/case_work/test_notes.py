"""Casework progress notes at the service layer and against raw SQL (as the app role, under RLS, and as the
owner for what a dump shows): sealed at rest, revisions on edit, void with a reason, closed cases refused by
the service and by the database, bad input refused with codes and nothing written."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import create_sessionmaker
from core.errors import DomainError
from core.services import sealing
from core.services.common import constraint_name
from core.services.context import ServiceContext, Viewer
from plugins.case_work import services as case_services
from plugins.case_work.notes import services as notes
from plugins.case_work.notes.models import Note, NoteAccess, NoteRevision
from tests.plugins.case_work.conftest import CaseWorld

SECRET = "王奶奶说儿子上周打过她，不许告诉别人"
SECRET2 = "复访：伤痕已消退，老人仍害怕"


def _at(cw: CaseWorld, hours: float = -1) -> datetime:
    now: datetime = cw.clock()
    return now + timedelta(hours=hours)


async def _note(cw: CaseWorld, case_id: int, body: str = SECRET, who: str = "sw") -> int:
    note = await cw.call(who, notes.add_note, case_id, note_type="home_visit", occurred_at=_at(cw), text=body)
    return int(note.id)


async def _counts(cw: CaseWorld) -> tuple[int, int, int]:
    everyone = Viewer(label="count", role="platform_admin")
    async with create_sessionmaker(cw.engine)() as session, session.begin():
        ServiceContext(session=session, viewer=everyone)
        return tuple(  # type: ignore[return-value]
            [await session.scalar(select(func.count()).select_from(m)) or 0 for m in (Note, NoteRevision, NoteAccess)]
        )


async def _read(cw: CaseWorld, who: str, case_id: int) -> list[tuple[str, str | None, bool]]:
    async with cw.as_(who) as ctx:
        page, _ = await notes.list_notes(ctx, case_id)
        found = await notes.texts(ctx, page.items)
        return [(n.note_type, (found.get(n.id) or (None,))[0], n.voided_at is not None) for n in page.items]


async def test_the_note_text_is_not_stored_in_clear_nor_in_revisions(cw: CaseWorld, owner_engine: AsyncEngine) -> None:
    # given a note, edited once (so one revision holds the first text)
    case_id = await cw.open()
    note_id = await _note(cw, case_id)
    await cw.call("sw", notes.edit_note, note_id, text=SECRET2)
    # when the owner (what a dump shows) reads every column of both tables as text
    async with owner_engine.connect() as conn:
        rows = [
            str(r[0])
            for table in ("case_work_notes", "case_work_note_revisions")
            for r in (await conn.execute(text(f"SELECT t::text FROM {table} t"))).all()
        ]
        sealed = (await conn.execute(text("SELECT text_sealed FROM case_work_notes"))).scalar_one()
    # then neither text appears, in any encoding a dump would show, yet the service reads the current one back
    dump = "\n".join(rows)
    assert len(rows) == 2
    for secret in (SECRET, SECRET2):
        assert secret not in dump
        assert secret.encode().hex() not in dump
        assert secret[:4] not in dump
    assert bytes(sealed).startswith(b"YS\x01")
    assert await _read(cw, "sw", case_id) == [("home_visit", SECRET2, False)]
    # and plain text written by mistake is refused by the database itself
    async with cw.as_("sw") as ctx:
        with pytest.raises(DBAPIError) as err:
            await ctx.session.execute(
                text(
                    "INSERT INTO case_work_notes (case_id, note_type, occurred_at, text_sealed, author_account_id, "
                    "author) VALUES (:case, 'call', now(), convert_to(:t, 'UTF8'), :sw, 'sw')"
                ),
                {"t": SECRET, "case": case_id, "sw": cw.ids["sw"]},
            )
    assert constraint_name(err.value) == "ck_case_work_notes_text_sealed_sealed"


async def test_a_sealed_text_moved_to_another_note_does_not_open(cw: CaseWorld, owner_engine: AsyncEngine) -> None:
    # given two notes; when the owner copies the first's sealed text into the second (an intruder with write
    # access but no key)
    case_id = await cw.open()
    first = await _note(cw, case_id)
    second = await _note(cw, case_id, "普通记录")
    async with owner_engine.begin() as conn:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(
            text(
                "UPDATE case_work_notes SET text_sealed = (SELECT text_sealed FROM case_work_notes WHERE id = :a) "
                "WHERE id = :b"
            ),
            {"a": first, "b": second},
        )
    # then the moved value does not open (unreadable, not the secret), and the first still does
    assert await _texts_by_id(cw, case_id) == {first: SECRET, second: None}


async def _texts_by_id(cw: CaseWorld, case_id: int) -> dict[int, str | None]:
    async with cw.as_("sw") as ctx:
        page, _ = await notes.list_notes(ctx, case_id)
        return {k: v[0] for k, v in (await notes.texts(ctx, page.items)).items()}


async def test_edits_keep_revisions_and_a_voided_note_stays_listed_with_its_text_kept(cw: CaseWorld) -> None:
    # given a note
    case_id = await cw.open()
    note_id = await _note(cw, case_id)
    # when its author edits the text, then the type, then voids it with a reason
    await cw.call("sw", notes.edit_note, note_id, text=SECRET2)
    await cw.call("sw", notes.edit_note, note_id, note_type="call")
    unchanged = await cw.call("sw", notes.edit_note, note_id, note_type="call")
    voided = await cw.call("sw", notes.void_note, note_id, "记错了个案")
    # then every previous version is kept, in order, with its text
    assert unchanged.revision == 2
    async with cw.as_("sw") as ctx:
        before_void = await notes.revisions(ctx, [note_id])
    assert [(r.revision, r.note_type) for r, _, _ in before_void[0]] == [(0, "home_visit"), (1, "home_visit")]
    assert [t for _, t, _ in before_void[0]] == [None, None]  # voided: the texts are hidden too
    async with cw.as_("sw") as ctx:
        ring = await sealing.keyring(ctx)
        revs = list(await ctx.session.scalars(select(NoteRevision).order_by(NoteRevision.revision)))
        kept = [
            ring.open(r.text_sealed, table="case_work_note_revisions", column="text_sealed", row_id=r.id) for r in revs
        ]
        note = await ctx.session.get(Note, note_id)
        assert note is not None
        current = ring.open(note.text_sealed, table="case_work_notes", column="text_sealed", row_id=note.id)
    assert kept == [SECRET, SECRET2]
    assert current == SECRET2  # kept, though hidden
    # and the voided note is still listed, as voided, its text hidden, its reason shown
    assert (voided.void_reason, voided.voided_by_account_id) == ("记错了个案", cw.ids["sw"])
    assert await _read(cw, "sw", case_id) == [("call", None, True)]
    # and a voided note changes no more; voiding needs a reason
    assert await cw.refused("sw", notes.edit_note, note_id, text="再改") == "INVALID_TRANSITION"
    assert await cw.refused("sw", notes.void_note, note_id, "again") == "INVALID_TRANSITION"
    other = await _note(cw, case_id, "另一条")
    assert await cw.refused("sw", notes.void_note, other, "  ") == "REQUIRED"
    # and only the author changes a note (the supervisor who may read it may not edit it)
    await cw.call("sup", notes.open_notes, case_id, "督导复核")
    assert await cw.refused("sup", notes.edit_note, other, text="督导改写") == "FORBIDDEN"


async def test_the_database_keeps_revisions_and_notes_whoever_writes(cw: CaseWorld) -> None:
    # given a note with one revision and an access
    case_id = await cw.open()
    note_id = await _note(cw, case_id)
    await cw.call("sw", notes.edit_note, note_id, text=SECRET2)
    await cw.call("sup", notes.open_notes, case_id, "督导复核")
    # when the app role tries to rewrite or delete them with raw SQL, or edit a note without its revision
    statements = {
        "UPDATE case_work_note_revisions SET written_at = now()": "case_work_append_only",
        "DELETE FROM case_work_note_revisions": "case_work_append_only",
        "UPDATE case_work_note_accesses SET purpose = 'x'": "case_work_append_only",
        "DELETE FROM case_work_note_accesses": "case_work_append_only",
        "DELETE FROM case_work_notes": "case_work_append_only",
        "UPDATE case_work_notes SET note_type = 'call'": "case_work_note_revision_kept",
        "UPDATE case_work_notes SET revision = revision + 1, note_type = 'call'": "case_work_note_revision_kept",
        "UPDATE case_work_notes SET author = 'someone else'": "case_work_append_only",
    }
    for sql, constraint in statements.items():
        async with cw.as_("sw") as ctx:
            with pytest.raises(DBAPIError) as err:
                await ctx.session.execute(text(sql))
        assert constraint_name(err.value) == constraint, sql
    # then nothing changed
    assert await _counts(cw) == (1, 1, 1)
    assert await _read(cw, "sw", case_id) == [("home_visit", SECRET2, False)]


async def test_a_closed_case_takes_no_notes_from_the_service_nor_from_raw_sql(cw: CaseWorld) -> None:
    # given a note on a case, then the case closed
    case_id = await cw.open()
    note_id = await _note(cw, case_id)
    await cw.bring_to(case_id, "closure")
    before = await _counts(cw)
    # when its social worker writes, edits or voids a note
    add = await cw.refused("sw", notes.add_note, case_id, note_type="call", occurred_at=_at(cw), text="结案后回访")
    edit = await cw.refused("sw", notes.edit_note, note_id, text="改")
    void = await cw.refused("sw", notes.void_note, note_id, "作废")
    # then each is CASE_CLOSED
    assert (add, edit, void) == ("CASE_CLOSED", "CASE_CLOSED", "CASE_CLOSED")
    # and raw SQL as the app role is refused by the database too (insert, void, revision)
    async with cw.as_("sw") as ctx:
        ring = await sealing.keyring(ctx)
        sealed = ring.seal("x", table="case_work_notes", column="text_sealed", row_id=10**9)
    attempts = [
        (
            "INSERT INTO case_work_notes (id, case_id, note_type, occurred_at, text_sealed, author_account_id, author) "
            "VALUES (1000000000, :case, 'call', now(), :sealed, :sw, 'sw')",
            {"case": case_id, "sealed": sealed, "sw": cw.ids["sw"]},
        ),
        (
            "UPDATE case_work_notes SET voided_at = now(), voided_by_account_id = :sw, void_reason = 'x' "
            "WHERE id = :id",
            {"id": note_id, "sw": cw.ids["sw"]},
        ),
        (
            "INSERT INTO case_work_note_revisions (note_id, revision, note_type, occurred_at, text_sealed, "
            "written_by_account_id, written_at, replaced_by_account_id) "
            "VALUES (:id, 0, 'call', now(), :sealed, :sw, now(), :sw)",
            {"id": note_id, "sealed": sealed, "sw": cw.ids["sw"]},
        ),
    ]
    for sql, params in attempts:
        async with cw.as_("sw") as ctx:
            with pytest.raises(DBAPIError) as err:
                await ctx.session.execute(text(sql), params)
        assert constraint_name(err.value) == "case_work_case_closed", sql
    # and nothing was written
    assert await _counts(cw) == before
    # and once reopened, notes are taken again
    await cw.call("sup", case_services.reopen, case_id, "再次求助")
    await _note(cw, case_id, "重开后的记录")
    assert (await _counts(cw))[0] == before[0] + 1


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"text": "   "}, "text", "REQUIRED"),
        ({"text": "长" * (notes.MAX_TEXT + 1)}, "text", "OUT_OF_RANGE"),
        ({"note_type": "gossip"}, "noteType", "INVALID_INPUT"),
        ({"occurred_at": "future"}, "occurredAt", "OUT_OF_RANGE"),
        ({"occurred_at": "naive"}, "occurredAt", "INVALID_INPUT"),
    ],
)
async def test_bad_input_is_refused_with_codes_and_nothing_written(
    cw: CaseWorld, change: dict[str, Any], field: str, code: str
) -> None:
    # given a case with one note
    case_id = await cw.open()
    note_id = await _note(cw, case_id)
    before = await _counts(cw)
    args: dict[str, Any] = {"note_type": "meeting", "occurred_at": _at(cw), "text": "正常记录", **change}
    if change.get("occurred_at") == "future":
        args["occurred_at"] = _at(cw, hours=1)
    if change.get("occurred_at") == "naive":
        args["occurred_at"] = _at(cw).replace(tzinfo=None)
    # when a note is written or edited with it
    for fn, target in ((notes.add_note, case_id), (notes.edit_note, note_id)):
        with pytest.raises(DomainError) as err:
            await cw.call("sw", fn, target, **args)
        # then it is refused with that code on that field
        assert [(e.code, e.field) for e in err.value.errors] == [(code, ("input", field))], fn
    # and nothing was written
    assert await _counts(cw) == before
    # while a few minutes ahead (a device's clock) is accepted
    await cw.call("sw", notes.add_note, case_id, note_type="call", occurred_at=_at(cw, 0.05), text="刚刚通话")
    assert (await _counts(cw))[0] == before[0] + 1


async def test_an_empty_or_long_purpose_is_refused_and_the_worker_needs_none(cw: CaseWorld) -> None:
    case_id = await cw.open()
    before = await _counts(cw)
    assert await cw.refused("sup", notes.open_notes, case_id, "  ") == "REQUIRED"
    assert await cw.refused("sup", notes.open_notes, case_id, "因" * 501) == "OUT_OF_RANGE"
    assert await cw.refused("sw", notes.open_notes, case_id, "自己的个案") == "INVALID_INPUT"
    # the organisation's administrator opens them only with a purpose too (not by rank)
    assert await cw.refused("admin", notes.open_notes, case_id, "  ") == "REQUIRED"
    for who in ("sw2", "admin_b", "sw_b"):
        assert await cw.refused(who, notes.open_notes, case_id, "好奇") == "NOT_FOUND", who
    for who in ("volunteer", "head"):
        assert await cw.refused(who, notes.open_notes, case_id, "好奇") == "FORBIDDEN", who
    assert await _counts(cw) == before


async def test_an_access_expires(cw: CaseWorld) -> None:
    # given a supervisor who stated a purpose
    case_id = await cw.open()
    await _note(cw, case_id)
    await cw.call("sup", notes.open_notes, case_id, "督导复核")
    assert [t for _, t, _ in await _read(cw, "sup", case_id)] == [SECRET]
    # when the access's lifetime has passed
    cw.clock.now = cw.clock.now + notes.ACCESS_LIFETIME + timedelta(seconds=1)
    # then a purpose is needed again
    assert await cw.refused("sup", notes.list_notes, case_id) == "PURPOSE_REQUIRED"


async def test_reseal_moves_notes_and_their_append_only_revisions_to_a_new_key(cw: CaseWorld) -> None:
    # given a case with an edited note (a revision) and a voided one, then closed: every row is guarded
    case_id = await cw.open()
    edited = await cw.call("sw", notes.add_note, case_id, note_type="call", occurred_at=_at(cw, -2), text=SECRET)
    await cw.call("sw", notes.edit_note, edited.id, text=SECRET2)
    voided = await cw.call("sw", notes.add_note, case_id, note_type="call", occurred_at=_at(cw, -1), text="记错")
    await cw.call("sw", notes.void_note, voided.id, "记错了个案")
    await cw.call("sw", case_services.advance, case_id, "not_opened", "不符合开案条件")
    async with cw.as_("sw") as ctx:
        old = await sealing.keyring(ctx)
    assert "rot" not in old.ids
    ring = sealing.Keyring((("rot", b"R" * 32), *old.keys))
    # when every registered casework column is resealed under the new key
    reports = await sealing.reseal(cw.engine, notes.SEALED_COLUMNS, ring)
    # then every value moved, none was refused, and each still opens where it is, to its text
    assert [(r.column.table, r.resealed, r.unreadable, r.remaining) for r in reports] == [
        ("case_work_notes", 2, [], 0),
        ("case_work_note_revisions", 1, [], 0),
    ]
    async with cw.as_("sw") as ctx:
        rows = list(await ctx.session.scalars(select(Note).where(Note.case_id == case_id).order_by(Note.id)))
        revs = list(await ctx.session.scalars(select(NoteRevision).where(NoteRevision.note_id == edited.id)))
    assert [sealing.key_id_of(n.text_sealed) for n in rows] + [sealing.key_id_of(r.text_sealed) for r in revs] == [
        "rot"
    ] * 3
    assert [ring.open(n.text_sealed, table="case_work_notes", column="text_sealed", row_id=n.id) for n in rows] == [
        SECRET2,
        "记错",
    ]
    assert [
        ring.open(r.text_sealed, table="case_work_note_revisions", column="text_sealed", row_id=r.id) for r in revs
    ] == [SECRET]
    # and the notes are as they were otherwise (revision, void) -- a second run finds nothing to do
    assert [(n.revision, n.voided_at is not None) for n in rows] == [(1, False), (0, True)]
    again = await sealing.reseal(cw.engine, notes.SEALED_COLUMNS, ring)
    assert [r.resealed for r in again] == [0, 0]


async def test_the_reseal_pass_lets_through_a_change_of_key_and_nothing_else(cw: CaseWorld) -> None:
    # given a note with a revision, on an open case
    case_id = await cw.open()
    note = await cw.call("sw", notes.add_note, case_id, note_type="call", occurred_at=_at(cw, -2), text=SECRET)
    await cw.call("sw", notes.edit_note, note.id, text=SECRET2)
    async with cw.as_("sw") as ctx:
        old = await sealing.keyring(ctx)
        rev = await ctx.session.scalar(select(NoteRevision).where(NoteRevision.note_id == note.id))
        assert rev is not None
        rev_id = rev.id
    other = sealing.Keyring((("rot", b"R" * 32),))
    same_key = old.seal("伪造", table="case_work_note_revisions", column="text_sealed", row_id=rev_id)
    new_key = other.seal(SECRET, table="case_work_note_revisions", column="text_sealed", row_id=rev_id)
    note_new_key = other.seal("伪造", table="case_work_notes", column="text_sealed", row_id=note.id)
    declare = "SELECT set_config('app.resealing', :name, true)"
    attempts = [
        # the pass declared, but the key stays: another text under the same key is an edit, refused
        (
            "case_work_note_revisions.text_sealed",
            "UPDATE case_work_note_revisions SET text_sealed = :v WHERE id = :id",
            {"v": same_key, "id": rev_id},
            "case_work_append_only",
        ),
        # the pass declared, the key changes, but so does another column
        (
            "case_work_note_revisions.text_sealed",
            "UPDATE case_work_note_revisions SET text_sealed = :v, note_type = 'meeting' WHERE id = :id",
            {"v": new_key, "id": rev_id},
            "case_work_append_only",
        ),
        # the pass declared for another column than the one changed
        (
            "case_work_notes.text_sealed",
            "UPDATE case_work_note_revisions SET text_sealed = :v WHERE id = :id",
            {"v": new_key, "id": rev_id},
            "case_work_append_only",
        ),
        # no pass declared: a note's new key without a revision is an edit without its revision
        (
            "",
            "UPDATE case_work_notes SET text_sealed = :v WHERE id = :id",
            {"v": note_new_key, "id": note.id},
            "case_work_note_revision_kept",
        ),
        # the pass declared, a note's key changes with its revision number
        (
            "case_work_notes.text_sealed",
            "UPDATE case_work_notes SET text_sealed = :v, revision = 5 WHERE id = :id",
            {"v": note_new_key, "id": note.id},
            "case_work_note_revision_kept",
        ),
    ]

    async def run(name: str, sql: str, params: dict[str, Any]) -> None:
        async with cw.as_("sw") as ctx:
            await ctx.session.execute(text(declare), {"name": name})
            await ctx.session.execute(text(sql), params)

    for name, sql, params, constraint in attempts:
        with pytest.raises(DBAPIError) as err:
            await run(name, sql, params)
        assert constraint_name(err.value) == constraint, sql
    # while the key change alone passes
    await run(
        "case_work_note_revisions.text_sealed",
        "UPDATE case_work_note_revisions SET text_sealed = :v WHERE id = :id",
        {"v": new_key, "id": rev_id},
    )
