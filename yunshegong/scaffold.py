"""`yunshegong new-plugin NAME`: a working third-party plugin package to start from.

The package follows every rule of docs/plugins.md (namespace, an organisation-owned table under row-level
security, a permission, one `input` per mutation, a Node type, a cursor connection) and ships a passing
test written with the test kit (`yunshegong.testing`). `tests/yunshegong/test_scaffold.py` installs a
generated package and runs that test.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from core.plugin_api import PLUGIN_NAME, camel_prefix, pascal_prefix


class ScaffoldError(ValueError):
    """The name or the target directory cannot be used."""


def new_plugin(name: str, parent: Path) -> Path:
    """Write the package `yunshegong-<name>` under `parent` and return its directory."""
    if not PLUGIN_NAME.match(name):
        raise ScaffoldError(f"{name!r} is not a plugin name: lower_snake_case, 2 to 40 characters, a letter first")
    root = parent / f"yunshegong-{name.replace('_', '-')}"
    if root.exists():
        raise ScaffoldError(f"{root} exists already")
    tokens = {
        "__NAME__": name,
        "__CAMEL__": camel_prefix(name),
        "__PASCAL__": pascal_prefix(name),
        "__PKG__": f"yunshegong_{name}",
        "__DIST__": f"yunshegong-{name.replace('_', '-')}",
        "__DATE__": datetime.now(UTC).date().isoformat(),
        "__UPPER__": name.upper(),
    }
    for relative, template in FILES.items():
        for token, value in tokens.items():
            relative = relative.replace(token, value)
            template = template.replace(token, value)
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.lstrip("\n"))
    return root


FILES: dict[str, str] = {
    "pyproject.toml": """
[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "__DIST__"
version = "0.1.0"
description = "A yunshegong plugin: __NAME__."
requires-python = ">=3.11"
dependencies = ["yunshegong"]

[project.entry-points."yunshegong.plugins"]
__NAME__ = "__PKG__.plugin"

[tool.setuptools]
packages = ["__PKG__", "__PKG__.migrations"]

[tool.setuptools.package-data]
__PKG__ = ["locale/*.po"]

[tool.pytest.ini_options]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "session"
asyncio_default_test_loop_scope = "session"
""",
    "README.md": """
# __DIST__

A yunshegong plugin. Install it next to yunshegong (`pip install -e .`), run `yunshegong migrate`, and
enable it per organisation (`setPluginEnabled(input: {organizationId, plugin: "__NAME__", enabled: true})`).

Test it with `pytest` (the test kit starts an embedded PostgreSQL, or uses `DATABASE_URL`).
""",
    "__PKG__/__init__.py": '''
"""The __NAME__ plugin for yunshegong."""
''',
    "__PKG__/plugin.py": """
\"\"\"Hook implementations: the only module yunshegong loads from this package. Every hook of the plugin API
is used once here (docs/plugins.md has the reference); delete what your plugin does not need.\"\"\"

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from strawberry.dataloader import DataLoader

import core
from __PKG__ import services


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(name="__NAME__", version="0.1.0", description="Notes on help requests.")


@core.hookimpl
def register_graphql() -> core.GraphQLContribution:
    from __PKG__.types import __PASCAL__HelpRequestFields, __PASCAL__Mutation, __PASCAL__Query

    return core.GraphQLContribution(
        query=__PASCAL__Query,
        mutation=__PASCAL__Mutation,
        # fields on core types: HelpRequest.__CAMEL__NoteCount (null where the plugin is not enabled)
        type_fields={"HelpRequest": __PASCAL__HelpRequestFields},
    )


@core.hookimpl
def register_migrations() -> Path:
    return Path(__file__).parent / "migrations"


@core.hookimpl
def register_permissions() -> list[core.Permission]:
    return [
        core.Permission("__NAME__.use", "Keep and read notes.", ("organization_admin", "social_worker")),
        # held through the reviewer role below (and by platform administrators by rank)
        core.Permission("__NAME__.pin", "Pin important notes.", ()),
    ]


@core.hookimpl
def register_roles() -> list[core.PluginRole]:
    return [core.PluginRole("__NAME__.reviewer", "Reviews and pins notes.", ("__NAME__.pin",))]


@core.hookimpl
def register_error_codes() -> dict[str, str]:
    return {"__UPPER___REQUEST_CLOSED": "Notes are not added to a closed help request."}


@core.hookimpl
def register_translations() -> dict[str, Path]:
    # `yunshegong messages __PKG__ --po __PKG__/locale/zh_CN.po` adds new messages for the translator.
    return {"zh_CN": Path(__file__).parent / "locale" / "zh_CN.po"}


@core.hookimpl
def register_event_types() -> list[type]:
    return [services.NoteAdded]


@core.hookimpl
def on_event(event: core.DomainEvent, ctx: core.ServiceContext) -> Any:
    # Runs in the transaction of the change, for organisations that enabled this plugin only.
    if isinstance(event, core.HelpRequestVerified):
        return services.add_system_note(ctx, event.request_id, "已核实 (verified)")
    return None


@core.hookimpl
async def register_stats(ctx: core.ServiceContext) -> list[core.StatFigure]:
    return [core.StatFigure(key="__NAME___notes", label="Notes kept", value=await services.count(ctx))]


@dataclass(frozen=True)
class __PASCAL__Settings:
    # YUNSHEGONG___UPPER___DIGEST_EVERY=3600 (seconds) overrides it
    digest_every: timedelta = timedelta(days=1)


@core.hookimpl
def register_settings() -> type:
    return __PASCAL__Settings


@core.hookimpl
def register_jobs() -> list[core.Job]:
    every = __PASCAL__Settings().digest_every
    return [core.Job("__NAME__.digest", every, services.queue_digest, "Tell note authors how many notes they kept.")]


@core.hookimpl
def extend_context(context: Any) -> dict[str, Any]:
    # Per-request state: a DataLoader, so HelpRequest.__CAMEL__NoteCount costs one query per page, not per row.
    async def counts(request_ids: list[int]) -> list[int]:
        found = await context.read(services.counts_by_request, request_ids)
        return [found.get(pk, 0) for pk in request_ids]

    return {"note_counts": DataLoader(load_fn=counts)}


@core.hookimpl
async def register_demo_data(ctx: core.ServiceContext) -> None:
    return None  # add a few demo records here (runs once, after core's demo data)


@core.hookimpl
def register_match_criteria() -> list[core.MatchCriterion]:
    async def no_opinion(ctx: Any, request: Any, volunteer_ids: list[int]) -> dict[int, float | None]:
        return {}  # a value in [0, 1] per volunteer id (None rules one out); missing ids count 0

    return [core.MatchCriterion("__NAME__.none", 0.0, no_opinion)]
""",
    "__PKG__/locale/zh_CN.po": """
# Chinese translations of __NAME__'s messages (gettext; `yunshegong messages` adds new ones).
msgid ""
msgstr ""
"Language: zh_CN\\n"
"Content-Type: text/plain; charset=utf-8\\n"

msgid "This request is closed."
msgstr "此求助已关闭，不能再添加记录。"
""",
    "__PKG__/models.py": """
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Identity, String, func
from sqlalchemy.orm import Mapped, mapped_column

import core


class __PASCAL__Note(core.OrganizationOwned, core.Base):
    __tablename__ = "__NAME___notes"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("help_requests.id"), index=True)
    author_account_id: Mapped[int | None] = mapped_column(BigInteger)
    text: Mapped[str] = mapped_column(String(2000))
    pinned: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
""",
    "__PKG__/services.py": """
\"\"\"Business rules (resolvers only translate).\"\"\"

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from sqlalchemy import func, select

import core
from __PKG__.models import __PASCAL__Note

BY_NEWEST = core.Ordering("newest", (__PASCAL__Note.id,), lambda n: (n.id,), descending=True)
CLOSED = ("fulfilled", "rejected", "cancelled")


@dataclass(frozen=True)
class NoteAdded(core.DomainEvent):
    name: ClassVar[str] = "__NAME__.note_added"
    note_id: int
    request_id: int | None


async def add_note(ctx: core.ServiceContext, text: str, request_id: int | None = None) -> __PASCAL__Note:
    core.require(ctx, "__NAME__.use")
    v = core.Validator()
    v.check(bool(text.strip()), ("input", "text"), "REQUIRED", "Write something.")
    v.check(len(text) <= 2000, ("input", "text"), "OUT_OF_RANGE", "At most 2000 characters.")
    v.raise_if_any()
    if request_id is not None:
        # Core's access scope: the requests this caller may see (a social worker: the communities they serve).
        # Another organisation's request is not there at all (row-level security). Either way: NOT_FOUND.
        request = await core.get_row(
            ctx,
            core.HelpRequest,
            request_id,
            what="Help request",
            field=("input", "requestId"),
            scope=core.request_scope(ctx.viewer),
        )
        if request.status in CLOSED:
            raise core.DomainError("__UPPER___REQUEST_CLOSED", "This request is closed.", ("input", "requestId"))
    # The row takes its request's organisation, or the caller's (the table's default), under row-level security.
    note = __PASCAL__Note(text=text.strip(), request_id=request_id, author_account_id=ctx.viewer.account_id)
    ctx.session.add(note)
    await core.flush(ctx)
    await ctx.publish(NoteAdded(organization_id=note.organization_id, note_id=note.id, request_id=request_id))
    return note


async def add_system_note(ctx: core.ServiceContext, request_id: int, text: str) -> None:
    \"\"\"A note the plugin writes itself (from an event), in the same transaction as the change.\"\"\"
    ctx.session.add(__PASCAL__Note(text=text, request_id=request_id))
    await core.flush(ctx)


async def pin(ctx: core.ServiceContext, note_id: int) -> __PASCAL__Note:
    core.require(ctx, "__NAME__.pin")
    note = await core.get_row(ctx, __PASCAL__Note, note_id, what="Note", field=("input", "id"), lock=True)
    note.pinned = True
    await core.flush(ctx)
    return note


async def notes(
    ctx: core.ServiceContext, *, first: int, after: str | None, request_id: int | None = None
) -> core.Page[__PASCAL__Note]:
    \"\"\"The caller's organisation's notes, newest first (other organisations' rows are not there at all).\"\"\"
    core.require(ctx, "__NAME__.use")
    stmt = select(__PASCAL__Note)
    if request_id is not None:
        stmt = stmt.where(__PASCAL__Note.request_id == request_id)
    return await core.paginate(ctx, stmt, BY_NEWEST, first=first, after=after)


async def by_ids(ctx: core.ServiceContext, pks: Sequence[int]) -> dict[int, __PASCAL__Note]:
    core.require(ctx, "__NAME__.use")
    rows = await ctx.session.scalars(select(__PASCAL__Note).where(__PASCAL__Note.id.in_(list(pks))))
    return {row.id: row for row in rows}


async def counts_by_request(ctx: core.ServiceContext, request_ids: Sequence[int]) -> dict[int, int]:
    rows = await ctx.session.execute(
        select(__PASCAL__Note.request_id, func.count())
        .where(__PASCAL__Note.request_id.in_(list(request_ids)))
        .group_by(__PASCAL__Note.request_id)
    )
    return {request_id: int(n) for request_id, n in rows}


async def count(ctx: core.ServiceContext) -> int:
    return int(await ctx.session.scalar(select(func.count()).select_from(__PASCAL__Note)) or 0)


async def queue_digest(ctx: core.ServiceContext) -> None:
    \"\"\"The scheduled job: one message per author per day in the outbox (a re-run queues nothing more).\"\"\"
    day = ctx.now().date().isoformat()
    rows = await ctx.session.execute(
        select(__PASCAL__Note.author_account_id, func.count())
        .where(__PASCAL__Note.author_account_id.is_not(None))
        .group_by(__PASCAL__Note.author_account_id)
    )
    for account_id, n in rows.all():
        await core.notify(
            ctx,
            "__NAME__.digest",
            core.Recipient.account(account_id),
            {"notes": int(n), "day": day},
            source="__NAME__",
            dedupe_key=f"digest:{account_id}:{day}",
        )
""",
    "__PKG__/types.py": """
\"\"\"GraphQL types: one `input` per mutation, Node types, cursor connections (docs/plugins.md).\"\"\"

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import strawberry
from strawberry import Info, relay

import core
from __PKG__ import services
from __PKG__.models import __PASCAL__Note as NoteRow
from schema import api as gql


@strawberry.type(description="A note kept by an organisation, optionally about a help request.")
class __PASCAL__Note(relay.Node):
    id: relay.NodeID[int]
    text: str
    pinned: bool
    created_at: datetime
    request_pk: strawberry.Private[int | None]

    @classmethod
    def of(cls, row: NoteRow) -> __PASCAL__Note:
        return cls(id=row.id, text=row.text, pinned=row.pinned, created_at=row.created_at, request_pk=row.request_id)

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await gql.resolve_node_rows(info, node_ids, services.by_ids, cls.of, required)

    @strawberry.field(description="The help request the note is about (batched: one query per page).")
    async def request(self, info: Info) -> gql.HelpRequest | None:
        return await gql.load(info, core.HelpRequest, self.request_pk, gql.HelpRequest.from_model)


__PASCAL__NotePayload = gql.payload("__PASCAL__NotePayload", "note", __PASCAL__Note)


@strawberry.input
class __PASCAL__AddNoteInput:
    text: str
    request_id: strawberry.ID | None = None


@strawberry.input
class __PASCAL__PinNoteInput:
    id: strawberry.ID


@strawberry.input
class __PASCAL__NoteFilter:
    request_id: strawberry.ID | None = None


@strawberry.type
class __PASCAL__Query:
    @strawberry.field(description="Your organisation's notes, newest first.")
    async def __NAME___notes(
        self, info: Info, filter: __PASCAL__NoteFilter | None = None, first: int | None = None, after: str | None = None
    ) -> gql.Connection[__PASCAL__Note]:
        raw = filter.request_id if filter else None
        request_id = gql.decode_id(raw, "HelpRequest", ("filter", "requestId")) if raw else None
        page = await info.context.read(services.notes, first=gql.first_of(info, first), after=after, request_id=request_id)
        return gql.connection(info, page, __PASCAL__Note.of)


@strawberry.type
class __PASCAL__Mutation:
    @strawberry.mutation(description="Keep a note, optionally about a help request of your organisation.")
    async def __NAME___add_note(self, info: Info, input: __PASCAL__AddNoteInput) -> __PASCAL__NotePayload:
        async def work(ctx: core.ServiceContext) -> NoteRow:
            request_id = gql.decode_id(input.request_id, "HelpRequest", ("input", "requestId")) if input.request_id else None
            return await services.add_note(ctx, input.text, request_id)

        return await gql.mutate(info, __PASCAL__NotePayload, "note", __PASCAL__Note.of, work)

    @strawberry.mutation(description="Pin a note (reviewers).")
    async def __NAME___pin_note(self, info: Info, input: __PASCAL__PinNoteInput) -> __PASCAL__NotePayload:
        async def work(ctx: core.ServiceContext) -> NoteRow:
            return await services.pin(ctx, gql.decode_id(input.id, "__PASCAL__Note", ("input", "id")))

        return await gql.mutate(info, __PASCAL__NotePayload, "note", __PASCAL__Note.of, work)


@strawberry.type
class __PASCAL__HelpRequestFields:
    @strawberry.field(description="How many notes the __NAME__ plugin keeps on this request.")
    async def __NAME___note_count(self, info: Info) -> int | None:
        # `self` is core's HelpRequest; the DataLoader comes from this plugin's extend_context hook.
        loader = info.context.plugin_state["__NAME__"]["note_counts"]
        return await loader.load(int(self.id))  # type: ignore[attr-defined]
""",
    "__PKG__/migrations/__init__.py": "",
    "__PKG__/migrations/__NAME___001_notes.py": '''
"""__NAME__: notes

Revision ID: __NAME___001
Revises:
Create Date: __DATE__
"""

import sqlalchemy as sa
from alembic import op

import core

revision = "__NAME___001"
down_revision = None
branch_labels = ("__NAME__",)
# 0006: core's organisation isolation (the tenancy helpers and the service's database role).
depends_on = "0006"


def upgrade() -> None:
    op.create_table(
        "__NAME___notes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        core.organization_column(),
        sa.Column("request_id", sa.BigInteger(), sa.ForeignKey("help_requests.id"), nullable=True),
        sa.Column("author_account_id", sa.BigInteger(), nullable=True),
        sa.Column("text", sa.String(length=2000), nullable=False),
        sa.Column("pinned", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk___NAME___notes"),
    )
    op.create_index("ix___NAME___notes_request_id", "__NAME___notes", ["request_id"])
    # Row-level security: each organisation sees and writes its own notes. A note about a request belongs to
    # the request's organisation (and cannot name another's); one without takes the caller's.
    core.own_table(
        op, "__NAME___notes", inherit=[core.Inherit("help_requests", "request_id")], default_to_caller=True
    )


def downgrade() -> None:
    op.drop_table("__NAME___notes")
''',
    "tests/conftest.py": """
import pytest

pytest_plugins = ["yunshegong.testing"]


@pytest.fixture(scope="session")
def ysg_plugins():
    import __PKG__.plugin

    return [__PKG__.plugin]
""",
    "tests/test___NAME__.py": """
\"\"\"Given/when/then against the real GraphQL endpoint, through real sign-in (yunshegong.testing): every hook
the plugin implements is exercised once.\"\"\"

from schema import ids

ADD = \"\"\"mutation($t: String!, $r: ID) { __CAMEL__AddNote(input: {text: $t, requestId: $r}) {
  note { id text } errors { code field } } }\"\"\"
PIN = "mutation($id: ID!) { __CAMEL__PinNote(input: {id: $id}) { note { pinned } errors { code } } }"
LIST = "{ __CAMEL__Notes(first: 10) { totalCount nodes { text request { title } } } }"
COUNT = "query($id: ID!) { node(id: $id) { ... on HelpRequest { __CAMEL__NoteCount } } }"
GRANT = "mutation($a: ID!) { grantPluginRole(input: {accountId: $a, role: \\"__NAME__.reviewer\\"}) { errors { code } } }"
VERIFY = "mutation($id: ID!) { verifyHelpRequest(input: {id: $id}) { errors { code } } }"
CANCEL = "mutation($id: ID!) { cancelHelpRequest(input: {id: $id, reason: \\"重复\\"}) { errors { code } } }"
STATS = "{ stats { pluginFigures { plugin key value } } }"
MATCH = "query($id: ID!) { matchCandidates(requestId: $id) { volunteer { name } breakdown { component } } }"


async def test_notes_through_every_hook(ysg):
    # given two organisations using the plugin, a request in ours, a social worker and an administrator
    ours = await ysg.organization("东区社工站", plugins=["__NAME__"])
    theirs = await ysg.organization("西区社工站", plugins=["__NAME__"])
    request = ids.encode("HelpRequest", await ysg.help_request(await ysg.community(ours), title="送药"))
    worker = await ysg.sign_in("social_worker", ours)
    admin = await ysg.sign_in("organization_admin", ours)
    outsider = await ysg.sign_in("social_worker", theirs)

    # a note about the request (graphql, migrations, permissions, event types)
    added = await admin(ADD, {"t": "入户走访：王阿姨一切安好", "r": request})
    assert added["__CAMEL__AddNote"]["errors"] == []
    note = added["__CAMEL__AddNote"]["note"]["id"]
    listed = await admin(LIST)
    assert listed["__CAMEL__Notes"] == {
        "totalCount": 1,
        "nodes": [{"text": "入户走访：王阿姨一切安好", "request": {"title": "送药"}}],
    }
    # core's verification is heard (on_event): a note of its own, counted on the request (type_fields,
    # extend_context's DataLoader)
    assert (await admin(VERIFY, {"id": request}))["verifyHelpRequest"]["errors"] == []
    assert (await admin(COUNT, {"id": request}))["node"] == {"__CAMEL__NoteCount": 2}
    # core's access scope holds for the plugin too: a social worker who does not serve the request's
    # community cannot note it (NOT_FOUND, as for a missing request), but keeps notes of their own
    unserved = await worker(ADD, {"t": "x", "r": request})
    assert unserved["__CAMEL__AddNote"]["errors"] == [{"code": "NOT_FOUND", "field": ["input", "requestId"]}]
    # matching hears the plugin's criterion (register_match_criteria): it explains every candidate's score
    await ysg.volunteer(ours, name="李师傅")
    candidates = (await admin(MATCH, {"id": request}))["matchCandidates"]
    assert "李师傅" in [c["volunteer"]["name"] for c in candidates]
    assert all("__NAME__.none" in [part["component"] for part in c["breakdown"]] for c in candidates)
    # pinning needs the reviewer role (register_roles), granted by the organisation's administrator
    assert (await worker(PIN, {"id": note}))["__CAMEL__PinNote"]["errors"] == [{"code": "FORBIDDEN"}]
    assert (await admin(GRANT, {"a": worker.account_id}))["grantPluginRole"]["errors"] == []
    assert (await worker(PIN, {"id": note}))["__CAMEL__PinNote"] == {"note": {"pinned": True}, "errors": []}
    # a closed request takes no more notes (register_error_codes)
    assert (await admin(CANCEL, {"id": request}))["cancelHelpRequest"]["errors"] == []
    closed = await admin(ADD, {"t": "再记一笔", "r": request})
    assert closed["__CAMEL__AddNote"]["errors"] == [{"code": "__UPPER___REQUEST_CLOSED", "field": ["input", "requestId"]}]
    # ... said in the caller's language (register_translations): Chinese unless Accept-Language asks for English
    said = await admin(ADD.replace("errors { code field }", "errors { message }"), {"t": "再记一笔", "r": request})
    assert said["__CAMEL__AddNote"]["errors"] == [{"message": "此求助已关闭，不能再添加记录。"}]
    # the stats figure (register_stats)
    figures = (await admin(STATS))["stats"]["pluginFigures"]
    assert {"plugin": "__NAME__", "key": "__NAME___notes", "value": "2"} in figures
    # the daily digest (register_jobs, register_settings): one message to the author, once a day
    await ysg.run_jobs()
    await ysg.run_jobs()
    digests = [m for m in await ysg.outbox(ours) if m.kind == "__NAME__.digest"]
    assert [m.payload["notes"] for m in digests] == [1]

    # and the other organisation sees none of it; an anonymous caller is asked to sign in first
    assert (await outsider(LIST))["__CAMEL__Notes"]["totalCount"] == 0
    assert (await outsider(COUNT, {"id": request}))["node"] is None
    refused = await outsider(ADD, {"t": "x", "r": request})
    assert refused["__CAMEL__AddNote"]["errors"] == [{"code": "NOT_FOUND", "field": ["input", "requestId"]}]
    anonymous = await ysg.anonymous.raw(LIST)
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_bad_input_and_callers_without_the_permission(ysg):
    org = await ysg.organization(plugins=["__NAME__"])
    worker = await ysg.sign_in("social_worker", org)
    volunteer = await ysg.sign_in("volunteer", org)
    # an empty note is a typed error on its field, and nothing is written
    empty = await worker(ADD, {"t": "  "})
    assert empty["__CAMEL__AddNote"]["errors"] == [{"code": "REQUIRED", "field": ["input", "text"]}]
    assert (await worker(LIST))["__CAMEL__Notes"]["totalCount"] == 0
    # a volunteer lacks the permission
    assert (await volunteer.raw(LIST))["errors"][0]["extensions"]["code"] == "FORBIDDEN"
""",
}
