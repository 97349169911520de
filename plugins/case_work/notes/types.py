"""GraphQL of casework's progress notes: root fields `caseWorkNotes`, `caseWorkNoteAccesses` and four
mutations, the `CaseWorkNote` / `CaseWorkNoteAccess` nodes, and `case_notes`, the resolver of the
`CaseWork Case.notes` field (plugins/case_work/types.py adds it to the case type).

Rules live in services.py. Every text revealed is noted for the audit trail (`note_sensitive_read`), with
the access (stated purpose) it was read under when the reader is not the case's social worker.
This module imports plugins.case_work.types lazily only, so that the case type can import the resolver.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import Info, relay
from strawberry.dataloader import DataLoader

import core
from core.models import Account
from plugins.case_work.models import Case
from plugins.case_work.notes import services
from plugins.case_work.notes.models import Note, NoteAccess, NoteRevision
from schema import api as gql

if TYPE_CHECKING:
    from plugins.case_work.types import CaseWorkCase, CaseWorkPerson

CaseRef = Annotated["CaseWorkCase", strawberry.lazy("plugins.case_work.types")]
PersonRef = Annotated["CaseWorkPerson", strawberry.lazy("plugins.case_work.types")]


@strawberry.enum(description="What kind of contact a progress note records.")
class CaseWorkNoteType(Enum):
    HOME_VISIT = "home_visit"
    CALL = "call"
    MEETING = "meeting"
    OTHER = "other"


@strawberry.enum(description="Why someone other than the case's social worker could open its notes.")
class CaseWorkNoteAccessRelation(Enum):
    SUPERVISOR = "supervisor"
    PLATFORM_ADMIN = "platform_admin"
    ORGANIZATION_ADMIN = "organization_admin"


def _audit(info: Info, record_type: str, pk: int, why: services.Reader) -> None:
    info.context.note_sensitive_read(record_type, pk, "text")
    if why.access_id is not None:
        # The stated purpose is kept with the access (case_work_note_accesses, and the audit entry of its
        # opening): the read names it.
        info.context.note_sensitive_read(record_type, pk, f"access:{why.access_id}")


async def _person(info: Info, pk: int | None) -> CaseWorkPerson | None:
    from plugins.case_work.types import CaseWorkPerson

    return await gql.load(info, Account, pk, CaseWorkPerson.of)


def _text_loader(info: Info) -> DataLoader[Note, tuple[str | None, services.Reader] | None]:
    # One keyring and one access check for the page of notes.
    async def load(notes: list[Note]) -> list[tuple[str | None, services.Reader] | None]:
        found = await info.context.read(services.texts, notes)
        return [found.get(n.id) for n in notes]

    return info.context.loaders.get(  # type: ignore[no-any-return]
        "case_work:note_text", lambda _: DataLoader(load_fn=load, cache_key_fn=lambda n: n.id)
    )


def _revisions_loader(info: Info) -> DataLoader[int, list[tuple[NoteRevision, str | None, services.Reader]]]:
    async def load(note_ids: list[int]) -> list[list[tuple[NoteRevision, str | None, services.Reader]]]:
        return await info.context.read(services.revisions, note_ids)

    return info.context.loaders.get("case_work:note_revisions", lambda _: DataLoader(load_fn=load))  # type: ignore[no-any-return]


@strawberry.type(description="A previous version of a progress note (kept when the note was edited).")
class CaseWorkNoteRevision:
    revision: int = strawberry.field(description="0: the note as first written; each edit adds one.")
    note_type: CaseWorkNoteType
    occurred_at: datetime
    written_at: datetime
    replaced_at: datetime
    text: str | None = strawberry.field(description="Confidential; null when the note is voided.")
    row: strawberry.Private[NoteRevision]

    @strawberry.field(description="Who wrote this version.")
    async def written_by(self, info: Info) -> PersonRef | None:
        return await _person(info, self.row.written_by_account_id)


@strawberry.type(
    description="A progress note on a case. Confidential: only the case's social worker, and its supervisor "
    "and administrators (platform, organisation) after stating a purpose (caseWorkOpenCaseNotes), read it; "
    "every read is audited."
)
class CaseWorkNote(relay.Node):
    id: relay.NodeID[int]
    note_type: CaseWorkNoteType
    occurred_at: datetime = strawberry.field(description="When what the note records happened.")
    created_at: datetime
    edited_at: datetime | None
    revision: int = strawberry.field(description="How many times the note was edited.")
    voided: bool
    voided_at: datetime | None
    void_reason: str | None
    author_name: str = strawberry.field(description="Who wrote the note, as recorded then.")
    row: strawberry.Private[Note]

    @classmethod
    def of(cls, n: Note) -> CaseWorkNote:
        return cls(
            id=n.id,
            note_type=CaseWorkNoteType(n.note_type),
            occurred_at=n.occurred_at,
            created_at=n.created_at,
            edited_at=n.edited_at,
            revision=n.revision,
            voided=n.voided_at is not None,
            voided_at=n.voided_at,
            void_reason=n.void_reason,
            author_name=n.author,
            row=n,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await gql.resolve_node_rows(info, node_ids, services.notes_by_id, cls.of, required)

    @strawberry.field(description="Confidential (audited). Null when voided (the text is kept) or unreadable.")
    async def text(self, info: Info) -> str | None:
        found = await _text_loader(info).load(self.row)
        if found is None:
            return None
        text, why = found
        if text is not None:
            _audit(info, "CaseWorkNote", self.row.id, why)
        return text

    @strawberry.field(description="The previous versions, oldest first (texts audited like the note's).")
    async def revisions(self, info: Info) -> list[CaseWorkNoteRevision]:
        out = []
        for rev, text, why in await _revisions_loader(info).load(self.row.id):
            if text is not None:
                _audit(info, "CaseWorkNoteRevision", rev.id, why)
            out.append(
                CaseWorkNoteRevision(
                    revision=rev.revision,
                    note_type=CaseWorkNoteType(rev.note_type),
                    occurred_at=rev.occurred_at,
                    written_at=rev.written_at,
                    replaced_at=rev.replaced_at,
                    text=text,
                    row=rev,
                )
            )
        return out

    @strawberry.field
    async def author(self, info: Info) -> PersonRef | None:
        return await _person(info, self.row.author_account_id)

    @strawberry.field
    async def voided_by(self, info: Info) -> PersonRef | None:
        return await _person(info, self.row.voided_by_account_id)

    @strawberry.field
    async def case(self, info: Info) -> CaseRef:
        from plugins.case_work.types import CaseWorkCase

        return await gql.load_required(info, Case, self.row.case_id, CaseWorkCase.of)  # type: ignore[no-any-return]


@strawberry.type(description="Someone opened a case's notes without being its social worker, and said why.")
class CaseWorkNoteAccess(relay.Node):
    id: relay.NodeID[int]
    relation: CaseWorkNoteAccessRelation
    purpose: str
    at: datetime
    expires_at: datetime = strawberry.field(description="The notes stay open to them until then.")
    actor_name: str
    row: strawberry.Private[NoteAccess]

    @classmethod
    def of(cls, a: NoteAccess) -> CaseWorkNoteAccess:
        return cls(
            id=a.id,
            relation=CaseWorkNoteAccessRelation(a.relation),
            purpose=a.purpose,
            at=a.at,
            expires_at=a.expires_at,
            actor_name=a.actor,
            row=a,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await gql.resolve_node_rows(info, node_ids, services.accesses_by_id, cls.of, required)

    @strawberry.field
    async def account(self, info: Info) -> PersonRef | None:
        return await _person(info, self.row.account_id)

    @strawberry.field
    async def case(self, info: Info) -> CaseRef:
        from plugins.case_work.types import CaseWorkCase

        return await gql.load_required(info, Case, self.row.case_id, CaseWorkCase.of)  # type: ignore[no-any-return]


# -- the case's nested field ----------------------------------------------------------------------------------


async def case_notes(
    root: Any, info: Info, first: int | None = None, after: str | None = None
) -> gql.Connection[CaseWorkNote] | None:
    """`CaseWorkCase.notes`: null for everyone who does not read the case's notes now (including a
    supervisor or administrator who has not stated a purpose)."""
    found = await info.context.read(services.case_notes, root.row, first=gql.first_of(info, first), after=after)
    return None if found is None else gql.connection(info, found[0], CaseWorkNote.of)


NOTES_FIELD_DESCRIPTION = (
    "The case's progress notes, newest first, voided ones included (text hidden). Null unless you are its "
    "social worker, or its supervisor or an administrator who stated a purpose (caseWorkOpenCaseNotes)."
)


def notes_field() -> Any:
    """The field to put on CaseWorkCase: `notes = notes_field()`."""
    return strawberry.field(resolver=case_notes, description=NOTES_FIELD_DESCRIPTION)


# -- inputs and payloads --------------------------------------------------------------------------------------


@strawberry.input
class CaseWorkAddNoteInput:
    case_id: strawberry.ID
    note_type: CaseWorkNoteType
    occurred_at: datetime = strawberry.field(description="When it happened (not in the future).")
    text: str


@strawberry.input(description="Only what changes; the previous version is kept as a revision.")
class CaseWorkEditNoteInput:
    id: strawberry.ID
    text: str | None = None
    note_type: CaseWorkNoteType | None = None
    occurred_at: datetime | None = None


@strawberry.input
class CaseWorkVoidNoteInput:
    id: strawberry.ID
    reason: str


@strawberry.input
class CaseWorkOpenCaseNotesInput:
    case_id: strawberry.ID
    purpose: str = strawberry.field(description="Why you open the notes (kept, and shown to the case's people).")


@strawberry.input
class CaseWorkNoteAccessFilter:
    case_id: strawberry.ID | None = None

    def to_service(self) -> services.AccessFilter:
        return services.AccessFilter(case_id=gql.decode_optional_id(self.case_id, "CaseWorkCase", ("filter", "caseId")))


CaseWorkNotePayload = gql.payload("CaseWorkNotePayload", "note", CaseWorkNote)
CaseWorkNoteAccessPayload = gql.payload("CaseWorkNoteAccessPayload", "access", CaseWorkNoteAccess)


def _id(raw: str, type_name: str, field: str) -> int:
    return gql.decode_id(raw, type_name, ("input", field))


# -- root fields ----------------------------------------------------------------------------------------------


@strawberry.type
class CaseWorkNotesQuery:
    @strawberry.field(
        description="A case's progress notes, newest first (voided ones included, text hidden). Null for a case "
        "whose notes you do not read; PURPOSE_REQUIRED for its supervisor or an administrator who "
        "has not stated a purpose (caseWorkOpenCaseNotes)."
    )
    async def case_work_notes(
        self, info: Info, case_id: strawberry.ID, first: int | None = None, after: str | None = None
    ) -> gql.Connection[CaseWorkNote] | None:
        pk = gql.decode_id(case_id, "CaseWorkCase", ("caseId",))
        try:
            page, _ = await info.context.read(services.list_notes, pk, first=gql.first_of(info, first), after=after)
        except core.DomainError as refused:
            if refused.code == "NOT_FOUND":
                return None  # as for a missing case
            raise
        return gql.connection(info, page, CaseWorkNote.of)

    @strawberry.field(
        description="Who opened the notes of the cases you see without being their social worker, and why; "
        "newest first."
    )
    async def case_work_note_accesses(
        self,
        info: Info,
        filter: CaseWorkNoteAccessFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> gql.Connection[CaseWorkNoteAccess]:
        f = (filter or CaseWorkNoteAccessFilter()).to_service()
        page = await info.context.read(services.list_accesses, f, first=gql.first_of(info, first), after=after)
        return gql.connection(info, page, CaseWorkNoteAccess.of)


@strawberry.type
class CaseWorkNotesMutation:
    @strawberry.mutation(description="Write a progress note on a case (its social worker or supervisor).")
    async def case_work_add_note(self, info: Info, input: CaseWorkAddNoteInput) -> CaseWorkNotePayload:
        return await gql.mutate(
            info,
            CaseWorkNotePayload,
            "note",
            CaseWorkNote.of,
            lambda ctx: services.add_note(
                ctx,
                _id(input.case_id, "CaseWorkCase", "caseId"),
                note_type=input.note_type.value,
                occurred_at=input.occurred_at,
                text=input.text,
            ),
        )

    @strawberry.mutation(description="Edit your note; the previous version is kept as a revision.")
    async def case_work_edit_note(self, info: Info, input: CaseWorkEditNoteInput) -> CaseWorkNotePayload:
        return await gql.mutate(
            info,
            CaseWorkNotePayload,
            "note",
            CaseWorkNote.of,
            lambda ctx: services.edit_note(
                ctx,
                _id(input.id, "CaseWorkNote", "id"),
                text=input.text,
                note_type=None if input.note_type is None else input.note_type.value,
                occurred_at=input.occurred_at,
            ),
        )

    @strawberry.mutation(description="Void your note with a reason: it stays listed as voided, its text kept.")
    async def case_work_void_note(self, info: Info, input: CaseWorkVoidNoteInput) -> CaseWorkNotePayload:
        return await gql.mutate(
            info,
            CaseWorkNotePayload,
            "note",
            CaseWorkNote.of,
            lambda ctx: services.void_note(ctx, _id(input.id, "CaseWorkNote", "id"), input.reason),
        )

    @strawberry.mutation(
        description="State why you open a case's notes (its supervisor, a platform administrator): they are open "
        "to you for an hour; the purpose is kept and shown to the case's people."
    )
    async def case_work_open_case_notes(
        self, info: Info, input: CaseWorkOpenCaseNotesInput
    ) -> CaseWorkNoteAccessPayload:
        return await gql.mutate(
            info,
            CaseWorkNoteAccessPayload,
            "access",
            CaseWorkNoteAccess.of,
            lambda ctx: services.open_notes(ctx, _id(input.case_id, "CaseWorkCase", "caseId"), input.purpose),
        )
