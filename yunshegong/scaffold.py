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
    "__PKG__/plugin.py": '''
"""Hook implementations: the only module yunshegong loads from this package (see docs/plugins.md)."""

from __future__ import annotations

from pathlib import Path

import core


@core.hookimpl
def register_plugin() -> core.PluginInfo:
    return core.PluginInfo(name="__NAME__", version="0.1.0", description="Notes kept by an organisation.")


@core.hookimpl
def register_graphql() -> core.GraphQLContribution:
    from __PKG__.types import __PASCAL__Mutation, __PASCAL__Query

    return core.GraphQLContribution(query=__PASCAL__Query, mutation=__PASCAL__Mutation)


@core.hookimpl
def register_migrations() -> Path:
    return Path(__file__).parent / "migrations"


@core.hookimpl
def register_permissions() -> list[core.Permission]:
    return [core.Permission("__NAME__.use", "Keep and read notes.", ("organization_admin", "social_worker"))]
''',
    "__PKG__/models.py": """
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Identity, String, func
from sqlalchemy.orm import Mapped, mapped_column

import core


class __PASCAL__Note(core.OrganizationOwned, core.Base):
    __tablename__ = "__NAME___notes"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    text: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
""",
    "__PKG__/services.py": '''
"""Business rules (resolvers only translate)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

import core
from __PKG__.models import __PASCAL__Note

BY_NEWEST = core.Ordering("newest", (__PASCAL__Note.id,), lambda n: (n.id,), descending=True)


async def add_note(ctx: core.ServiceContext, text: str) -> __PASCAL__Note:
    core.require(ctx, "__NAME__.use")
    v = core.Validator()
    v.check(bool(text.strip()), ("input", "text"), "REQUIRED", "Write something.")
    v.check(len(text) <= 2000, ("input", "text"), "OUT_OF_RANGE", "At most 2000 characters.")
    v.raise_if_any()
    # The row takes the caller's organisation (the table's default), under row-level security.
    note = __PASCAL__Note(text=text.strip())
    ctx.session.add(note)
    await core.flush(ctx)
    return note


async def notes(ctx: core.ServiceContext, *, first: int, after: str | None) -> core.Page[__PASCAL__Note]:
    """The caller's organisation's notes, newest first (other organisations' rows are not there at all)."""
    core.require(ctx, "__NAME__.use")
    return await core.paginate(ctx, select(__PASCAL__Note), BY_NEWEST, first=first, after=after)


async def by_ids(ctx: core.ServiceContext, pks: Sequence[int]) -> dict[int, __PASCAL__Note]:
    core.require(ctx, "__NAME__.use")
    rows = await ctx.session.scalars(select(__PASCAL__Note).where(__PASCAL__Note.id.in_(list(pks))))
    return {row.id: row for row in rows}
''',
    "__PKG__/types.py": '''
"""GraphQL types: one `input` per mutation, Node types, cursor connections (docs/plugins.md)."""

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


@strawberry.type(description="A note kept by an organisation.")
class __PASCAL__Note(relay.Node):
    id: relay.NodeID[int]
    text: str
    created_at: datetime

    @classmethod
    def of(cls, row: NoteRow) -> __PASCAL__Note:
        return cls(id=row.id, text=row.text, created_at=row.created_at)

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await gql.resolve_node_rows(info, node_ids, services.by_ids, cls.of, required)


__PASCAL__NotePayload = gql.payload("__PASCAL__NotePayload", "note", __PASCAL__Note)


@strawberry.input
class __PASCAL__AddNoteInput:
    text: str


@strawberry.type
class __PASCAL__Query:
    @strawberry.field(description="Your organisation's notes, newest first.")
    async def __NAME___notes(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> gql.Connection[__PASCAL__Note]:
        page = await info.context.read(services.notes, first=gql.first_of(info, first), after=after)
        return gql.connection(info, page, __PASCAL__Note.of)


@strawberry.type
class __PASCAL__Mutation:
    @strawberry.mutation
    async def __NAME___add_note(self, info: Info, input: __PASCAL__AddNoteInput) -> __PASCAL__NotePayload:
        async def work(ctx: core.ServiceContext) -> NoteRow:
            return await services.add_note(ctx, input.text)

        return await gql.mutate(info, __PASCAL__NotePayload, "note", __PASCAL__Note.of, work)
''',
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
        sa.Column("text", sa.String(length=2000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk___NAME___notes"),
    )
    # Row-level security: each organisation sees and writes its own notes; a new row takes the caller's.
    core.own_table(op, "__NAME___notes", default_to_caller=True)


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
    "tests/test___NAME__.py": '''
"""Given/when/then against the real GraphQL endpoint, through real sign-in (yunshegong.testing)."""

ADD = "mutation($t: String!) { __CAMEL__AddNote(input: {text: $t}) { note { id text } errors { code field } } }"
LIST = "{ __CAMEL__Notes(first: 10) { totalCount nodes { text } } }"


async def test_a_note_is_kept_for_its_own_organisation(ysg):
    # given two organisations using the plugin, a social worker in each
    ours = await ysg.organization("东区社工站", plugins=["__NAME__"])
    theirs = await ysg.organization("西区社工站", plugins=["__NAME__"])
    worker = await ysg.sign_in("social_worker", ours)
    outsider = await ysg.sign_in("social_worker", theirs)
    # when ours keeps a note
    added = await worker(ADD, {"t": "入户走访：王阿姨一切安好"})
    # then ours lists it, theirs sees nothing of it, and node(id:) answers it only to ours
    assert added["__CAMEL__AddNote"]["errors"] == []
    assert await worker(LIST) == {"__CAMEL__Notes": {"totalCount": 1, "nodes": [{"text": "入户走访：王阿姨一切安好"}]}}
    assert await outsider(LIST) == {"__CAMEL__Notes": {"totalCount": 0, "nodes": []}}
    node = "query($id: ID!) { node(id: $id) { ... on __PASCAL__Note { text } } }"
    note_id = added["__CAMEL__AddNote"]["note"]["id"]
    assert (await worker(node, {"id": note_id}))["node"] == {"text": "入户走访：王阿姨一切安好"}
    assert (await outsider(node, {"id": note_id}))["node"] is None


async def test_bad_input_and_callers_without_the_permission(ysg):
    org = await ysg.organization(plugins=["__NAME__"])
    worker = await ysg.sign_in("social_worker", org)
    volunteer = await ysg.sign_in("volunteer", org)
    # an empty note is a typed error on its field, and nothing is written
    empty = await worker(ADD, {"t": "  "})
    assert empty["__CAMEL__AddNote"]["errors"] == [{"code": "REQUIRED", "field": ["input", "text"]}]
    assert (await worker(LIST))["__CAMEL__Notes"]["totalCount"] == 0
    # a volunteer lacks the permission; an anonymous caller is asked to sign in first
    refused = await volunteer.raw(LIST)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    anonymous = await ysg.anonymous.raw(LIST)
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
''',
}
