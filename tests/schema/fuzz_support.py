"""The machinery of the schema-wide property test (tests/schema/test_fuzz.py).

- Hostile strategies for every scalar (hypothesis-graphql `custom_scalars`, built-ins included): what
  PostgreSQL cannot store (NUL, lone surrogates), what Decimal accepts but money must not (NaN, exponents),
  the edges of the calendar, empty and forged IDs — mixed with plausible values, so that a fair share of
  the documents gets past validation into the resolvers.
- A rewrite of each generated document: an ID drawn as REAL becomes the ID of an existing record of the
  type the argument names (`requestId` → a HelpRequest), and, when asked, every literal becomes a variable
  (scalars parsed from JSON variables take another path than literals in the document).
- `FuzzWorld`: its own database with the demo data set and every plugin, the app in-process behind httpx,
  callers signed in through the real `login` (a fresh account when a mutation revoked a token), all on one
  event loop in a thread of its own, so that hypothesis drives plain synchronous tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import os
import re
import threading
import traceback
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import graphql
import httpx
from hypothesis import strategies as st
from hypothesis_graphql import nodes

from core import migrate
from core.database import app_url, create_engine, create_sessionmaker, database_url_for, drop_database, ensure_database
from core.demo import load_demo
from core.models import Organization
from core.plugins import PluginHost
from core.services import auth, plugin_roles
from core.services import plugins as plugin_service
from core.services.context import ServiceContext, Viewer
from core.settings import Settings
from core.vocab import Role
from schema import ids
from yunshegong.app import create_app

T = TypeVar("T")
PASSWORD = "fuzz password 2021"
LOGIN = "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { token errors { code } } }"
# Drawn for an ID, then replaced by the ID of an existing record of the type the argument names.
REAL_ID = "\x01real-id\x01"
BUILDER = Viewer(label="fuzz builder", role="platform_admin")
# A document that keeps the service busy longer than this is a finding of its own (a stalled service).
ANSWER_WITHIN = float(os.environ.get("YUNSHEGONG_FUZZ_TIMEOUT", "20"))
# Who sends the documents: a platform administrator, and a member of an organisation with every plugin.
CALLERS = ("platform_admin", "member")

# -- hostile scalars ------------------------------------------------------------------------------------------

_NOW = datetime.now(UTC).replace(microsecond=0)


def _near(days: int) -> str:
    return (_NOW + timedelta(days=days)).isoformat()


HOSTILE_TEXT = [
    "",
    " ",
    "a\x00b",
    "\x00",
    "\ud800",  # a lone surrogate: valid in JSON ("\ud800"), not encodable as UTF-8
    "x\udfffy",
    "x" * 100_000,
    "'; DROP TABLE accounts; --",
    "%_\\",
    "\u202e\u200b",
    "😀𝕏",
    # hand-made cursors: what a cursor holds (base64 of a JSON [ordering, values]) with the wrong things inside
    "W10=",  # []
    "WyJ1cmdlbmN5Iiwge30gXQ==",  # ["urgency", {} ]
    "WyJuZXdlc3QiLCBbOTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5XV0=",  # ["newest", [999999999999999999999999]]
    "eyJhIjogMX0=",  # {"a": 1}
    "ADMIN",  # the same name in other letters and spacing
    " 送药 ",
]
PLAUSIBLE_TEXT = [
    "送药",
    "粉巷社区",
    "driving",
    "13812345678",
    "029-88881234",
    "admin",
    "a long enough password",
    "first-aid",
    "counseling",
    "supplies",
    "supplies.staff",
    "counseling.supervisor",
]
STRING = st.one_of(st.sampled_from(PLAUSIBLE_TEXT), st.text(max_size=12), st.sampled_from(HOSTILE_TEXT))

INT = st.one_of(st.integers(min_value=0, max_value=30), st.sampled_from([0, -1, 1, 2**31 - 1, -(2**31)]))
FLOAT = st.one_of(
    st.sampled_from([34.26, 108.94, 0.0, -0.0, 1e308, -1e308, 5e-324]),
    st.floats(allow_nan=False, allow_infinity=False),
)
MONEY = st.one_of(
    st.sampled_from(["1200.50", "0.01", "100", "3"]).map(nodes.String),
    st.sampled_from(
        ["NaN", "sNaN", "Infinity", "-Infinity", "1e3", "-0", "-1", "0.001", "1,000", "", " 1 ", "9" * 400]
    ).map(nodes.String),
    st.sampled_from(["99999999999999999999999.99", "1e999999999"]).map(nodes.String),
    st.sampled_from([12, 0, -5, 2**31 - 1]).map(nodes.Int),
    st.sampled_from([12.5, 1e308]).map(nodes.Float),
)
DECIMAL = st.one_of(
    st.sampled_from(["3.5", "1", "0.25"]).map(nodes.String),
    st.sampled_from(["NaN", "sNaN", "Infinity", "-Infinity", "1e999999999", "-0", "-1", "1e-999999999", "abc"]).map(
        nodes.String
    ),
    st.sampled_from([2, 0, -1]).map(nodes.Int),
    st.sampled_from([2.5, 1e308]).map(nodes.Float),
)
DATETIME = st.one_of(
    st.sampled_from([_near(1), _near(3), _near(-1), _near(0), "2021-12-23T10:00:00+08:00"]).map(nodes.String),
    st.sampled_from(
        [
            "0001-01-01T00:00:00+00:00",
            "9999-12-31T23:59:59+00:00",
            "9999-12-31T23:59:59-12:00",
            "0001-01-01T00:00:00+14:00",
            "2025-01-01T00:00:00",  # no offset
            "soon",
            "",
            "2021-02-30T00:00:00+08:00",
            "2021-12-23T10:00:00+25:00",
        ]
    ).map(nodes.String),
    st.sampled_from([0, 2**31 - 1]).map(nodes.Int),
)
DATE = st.one_of(
    st.sampled_from([_NOW.date().isoformat(), (_NOW + timedelta(days=7)).date().isoformat(), "2021-12-23"]).map(
        nodes.String
    ),
    st.sampled_from(["0001-01-01", "9999-12-31", "2021-02-30", "tomorrow", "", "20211223"]).map(nodes.String),
)
TIME = st.one_of(
    st.sampled_from(["09:00:00", "17:30", "00:00"]).map(nodes.String),
    st.sampled_from(["24:00", "25:61", "23:59:59.999999", "noon", "", "09:00+08:00"]).map(nodes.String),
)


def _b64(raw: bytes) -> str:
    import base64

    return base64.b64encode(raw).decode()


FORGED_IDS = [
    "",
    " ",
    "not base64!",
    _b64(b"HelpRequest:0"),
    _b64(b"HelpRequest:-1"),
    _b64(b"HelpRequest:1.5"),
    _b64(b"HelpRequest:99999999999999999999999"),
    _b64(b"HelpRequest:"),
    _b64(b":1"),
    _b64(b"NoSuchType:1"),
    _b64(b"HelpRequest:1\x00"),
    _b64(b"\xff\xfe:1"),
    _b64(b"Volunteer:2147483648"),
    _b64(b"Account:9223372036854775808"),
]
ID = st.one_of(
    st.just(REAL_ID),
    st.sampled_from(FORGED_IDS),
    st.binary(max_size=12).map(_b64),
)


def custom_scalars() -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
    """Strategies for every scalar of the schema, the built-in ones included."""
    return {
        "String": STRING.map(nodes.String),
        "ID": ID.map(nodes.String),
        "Int": INT.map(nodes.Int),
        "Float": FLOAT.map(nodes.Float),
        "Money": MONEY,
        "Decimal": DECIMAL,
        "DateTime": DATETIME,
        "Date": DATE,
        "Time": TIME,
        # Upload refuses every literal (a file only arrives as a multipart part): a string reaches its refusal.
        "Upload": STRING.map(nodes.String),
    }


# -- the rewrite: real IDs, literals as variables -------------------------------------------------------------


class _Rewrite(graphql.Visitor):
    """Replaces REAL_ID by the ID of an existing record whose type the argument's name says, and (when
    `hoist`) every literal scalar or enum value by a variable of the location's type."""

    def __init__(
        self, type_info: graphql.TypeInfo, root_field: str, real_ids: dict[str, list[str]], draw: Any, hoist: bool
    ) -> None:
        super().__init__()
        self.type_info, self.root_field, self.real_ids, self.draw, self.hoist = (
            type_info,
            root_field,
            real_ids,
            draw,
            hoist,
        )
        self.names: list[str] = []
        self.definitions: list[graphql.VariableDefinitionNode] = []
        self.variables: dict[str, Any] = {}

    def enter_argument(self, node: graphql.ArgumentNode, *_: Any) -> None:
        self.names.append(node.name.value)

    def leave_argument(self, *_: Any) -> None:
        self.names.pop()

    def enter_object_field(self, node: graphql.ObjectFieldNode, *_: Any) -> None:
        self.names.append(node.name.value)

    def leave_object_field(self, *_: Any) -> None:
        self.names.pop()

    def _candidates(self) -> list[str]:
        name = (self.names[-1] if self.names else "").lower()
        stem = re.sub(r"ids?$", "", name)
        types = sorted(self.real_ids)
        named = [t for t in types if stem and t.lower().endswith(stem)]
        if not named:
            # `id` of an input: the type the mutation names (verifyHelpRequest → HelpRequest), longest first.
            root = self.root_field.lower()
            named = sorted((t for t in types if t.lower() in root), key=len, reverse=True)[:1]
        return [i for t in (named or types) for i in self.real_ids[t]]

    def _leaf(self, node: graphql.ValueNode) -> graphql.ValueNode | None:
        if isinstance(node, graphql.StringValueNode) and node.value == REAL_ID:
            candidates = self._candidates()
            real = self.draw(st.sampled_from(candidates)) if candidates else ""
            node = graphql.StringValueNode(value=real)
        if not self.hoist:
            return node
        location = self.type_info.get_input_type()
        if location is None:
            return node
        name = f"v{len(self.definitions)}"
        self.definitions.append(
            graphql.VariableDefinitionNode(
                variable=graphql.VariableNode(name=graphql.NameNode(value=name)),
                type=graphql.parse_type(str(location)),
            )
        )
        self.variables[name] = graphql.value_from_ast_untyped(node)
        return graphql.VariableNode(name=graphql.NameNode(value=name))

    def enter_string_value(self, node: graphql.StringValueNode, *_: Any) -> Any:
        return self._leaf(node)

    def enter_int_value(self, node: graphql.IntValueNode, *_: Any) -> Any:
        return self._leaf(node)

    def enter_float_value(self, node: graphql.FloatValueNode, *_: Any) -> Any:
        return self._leaf(node)

    def enter_boolean_value(self, node: graphql.BooleanValueNode, *_: Any) -> Any:
        return self._leaf(node)

    def enter_enum_value(self, node: graphql.EnumValueNode, *_: Any) -> Any:
        return self._leaf(node)


def rewrite(
    schema: graphql.GraphQLSchema,
    document: graphql.DocumentNode,
    root_field: str,
    real_ids: dict[str, list[str]],
    draw: Any,
    *,
    hoist: bool,
) -> tuple[str, dict[str, Any]]:
    """The document as text and its variables (see `_Rewrite`)."""
    type_info = graphql.TypeInfo(schema)
    visitor = _Rewrite(type_info, root_field, real_ids, draw, hoist)
    edited = graphql.visit(document, graphql.TypeInfoVisitor(type_info, visitor))
    if visitor.definitions:
        # AST nodes are frozen dataclasses: a new operation carrying the variable definitions.
        operation = dataclasses.replace(edited.definitions[0], variable_definitions=tuple(visitor.definitions))
        edited = dataclasses.replace(edited, definitions=(operation, *edited.definitions[1:]))
    return graphql.print_ast(edited), visitor.variables


# -- what a response says -------------------------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    status: int
    body: Any = None
    text: str = ""
    exception: str | None = None
    # What the service logged with a traceback while answering (where an INTERNAL_ERROR came from).
    logged: list[str] = dataclasses.field(default_factory=list)

    @property
    def errors(self) -> list[Any]:
        return list(self.body.get("errors") or []) if isinstance(self.body, dict) else []

    def codes(self) -> list[Any]:
        return [(e.get("extensions") or {}).get("code") if isinstance(e, dict) else None for e in self.errors]

    def problems(self) -> list[str]:
        """Everything the property forbids: a 5xx (or an exception out of the app), a body that is not a
        GraphQL response, INTERNAL_ERROR anywhere, an error without `extensions.code`."""
        found = []
        if self.exception is not None:
            found.append(f"unhandled exception out of the app (a 500 in production): {self.exception}")
        if self.status >= 500:
            found.append(f"HTTP {self.status}")
        if self.exception is None and not isinstance(self.body, dict):
            found.append(f"not a JSON object: {self.text[:300]!r}")
        for error in self.errors:
            code = (error.get("extensions") or {}).get("code") if isinstance(error, dict) else None
            if code is None:
                found.append(f"an error without extensions.code: {_short(error)}")
            elif code == "INTERNAL_ERROR":
                found.append("INTERNAL_ERROR")
        if isinstance(self.body, dict) and "INTERNAL_ERROR" in _codes_in(self.body.get("data")):
            found.append("INTERNAL_ERROR in a payload's errors")
        # A fault the service logged with a traceback, even where the answer looked typed: a refusal of hostile
        # input is an answer (INFO, one line), never a fault.
        found.extend(f"the service logged a fault: {line}" for line in self.logged)
        return found

    def reached_resolver(self) -> bool:
        """The root field ran: it answered something, or an error arose during execution (it has a path)."""
        if not isinstance(self.body, dict):
            return False
        data = self.body.get("data")
        if isinstance(data, dict) and any(value is not None for value in data.values()):
            return True
        return any(isinstance(e, dict) and e.get("path") for e in self.errors)


def _codes_in(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "code":
                yield item
            else:
                yield from _codes_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _codes_in(item)


def short_value(value: Any, limit: int = 120) -> Any:
    """The value with every long string abbreviated."""
    return json.loads(_short(value, limit))


def _short(value: Any, limit: int = 120) -> str:
    """JSON with every long string abbreviated (a 100 kB string must not bury the report)."""

    def cut(item: Any) -> Any:
        if isinstance(item, str) and len(item) > limit:
            return f"{item[:20]}…<{len(item)} characters: {item[0]!r} × {len(item)}?>"
        if isinstance(item, dict):
            return {k: cut(v) for k, v in item.items()}
        if isinstance(item, list):
            return [cut(v) for v in item]
        return item

    return json.dumps(cut(value), ensure_ascii=True)


def short_document(query: str, limit: int = 120) -> str:
    long_string = re.compile(r'"([^"\\]|\\.){' + str(limit) + r',}"')
    return long_string.sub(lambda m: f'"<{len(m.group(0)) - 2} characters>"', query)


# -- the world ------------------------------------------------------------------------------------------------


class _Tracebacks(logging.Handler):
    """Collects the innermost frame and exception of every traceback the service logs (survey reports)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.exc_info or record.exc_info[1] is None:
            return
        exc = record.exc_info[1]
        frames = traceback.extract_tb(exc.__traceback__)
        ours = [f for f in frames if "/site-packages/" not in f.filename] or frames
        where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno} {ours[-1].name}" if ours else "?"
        self.seen.append(f"{type(exc).__name__} at {where}: {str(exc)[:200]}")


class _Loop:
    """An event loop in a thread of its own: hypothesis runs synchronous tests, the app and asyncpg want one
    loop for their whole life."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-loop", daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 300) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclasses.dataclass
class FuzzWorld:
    """The demo data set with every plugin, in a database of its own, served in-process; two callers: a
    platform administrator and an organisation administrator of the association (which enabled every
    plugin) holding every plugin role."""

    server_url: str
    database: str
    host: PluginHost
    settings: Settings
    loop: _Loop = dataclasses.field(default_factory=_Loop)
    tokens: dict[str, str] = dataclasses.field(default_factory=dict)
    real_ids: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    sign_ins: int = 0
    _serial: Iterator[int] = dataclasses.field(default_factory=lambda: itertools.count(1))
    _http: httpx.AsyncClient | None = None
    _engine: Any = None
    _organization: int = 0

    def start(self) -> FuzzWorld:
        self.loop.run(self._start())
        return self

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.loop.run(self._stop())
        self.loop.close()

    async def _start(self) -> None:
        await drop_database(self.server_url, self.database)
        await ensure_database(self.server_url, self.database)
        url = database_url_for(self.server_url, self.database)
        owner = create_engine(url, pool_size=1)
        await migrate.upgrade(owner, self.host.migration_dirs())
        await owner.dispose()
        self._engine = create_engine(app_url(url), pool_size=5)
        await load_demo(self._engine, host=self.host)
        async with self._service() as ctx:
            from sqlalchemy import select

            self._organization = int(
                await ctx.session.scalar(select(Organization.id).where(Organization.name == "西安市社会工作协会"))
            )
        app = create_app(self.settings, engine=self._engine, host=self.host)
        self._http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fuzz")
        for caller in CALLERS:
            await self._sign_in(caller)
        await self._collect_ids()

    async def _stop(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        if self._engine is not None:
            await self._engine.dispose()
        await drop_database(self.server_url, self.database)

    @contextlib.asynccontextmanager
    async def _service(self) -> Any:
        async with create_sessionmaker(self._engine)() as session, session.begin():
            ctx = ServiceContext(session=session, viewer=BUILDER)
            ctx.events = self.host
            yield ctx

    async def _sign_in(self, caller: str) -> None:
        """A fresh account for `caller`, signed in through the real `login` mutation (fresh, because the
        mutation that revoked the last token may also have changed its password)."""
        username = f"fuzz-{caller.replace('_', '-')}-{next(self._serial)}"
        role = Role.PLATFORM_ADMIN if caller == "platform_admin" else Role.ORGANIZATION_ADMIN
        async with self._service() as ctx:
            account = await auth.create_account(
                ctx, auth.AccountInput(username, username, PASSWORD, role, self._organization)
            )
            if role != Role.PLATFORM_ADMIN:
                for name in sorted(plugin_roles.plugin_roles(self.host)):
                    await plugin_roles.grant(ctx, account.id, name)
        outcome = await self._post(LOGIN, {"u": username, "p": PASSWORD}, None)
        token = outcome.body["data"]["login"]["token"]
        assert token, outcome.body
        self.tokens[caller] = token
        self.sign_ins += 1

    async def restore(self) -> None:
        """Every plugin enabled for the association again (a fuzzed setPluginEnabled may have switched one
        off) and the member's plugin roles granted again."""
        names = frozenset(self.host.plugins)
        async with self._service() as ctx:
            for name in sorted(names):
                await plugin_service.set_enabled(
                    ctx, organization_id=self._organization, plugin=name, enabled=True, installed=names, known=names
                )
        await self._sign_in("member")

    async def _collect_ids(self) -> None:
        """Global IDs of existing records by type, read through the API as the platform administrator: every
        root connection without required arguments, and the assignments under the requests."""
        schema = graphql.build_schema(self.sdl())
        found: dict[str, set[str]] = {}
        assert schema.query_type is not None
        for name, root in schema.query_type.fields.items():
            connection = graphql.get_named_type(root.type)
            required = [a for a in root.args.values() if graphql.is_required_argument(a)]
            if required or not isinstance(connection, graphql.GraphQLObjectType) or "edges" not in connection.fields:
                continue
            extra = " assignments { id }" if name == "helpRequests" else ""
            query = f"{{ r: {name}(first: 50) {{ edges {{ node {{ id{extra} }} }} }} }}"
            body = (await self._post(query, {}, self.tokens["platform_admin"])).body
            for raw in re.findall(r'"id": "([^"]+)"', json.dumps(body)):
                with contextlib.suppress(Exception):
                    type_name, _ = ids.decode_any(raw, ("id",))
                    found.setdefault(type_name, set()).add(raw)
        self.real_ids = {t: sorted(v)[:25] for t, v in sorted(found.items())}

    def sdl(self) -> str:
        from schema.build import build_schema

        return str(build_schema(self.settings, self.host))

    async def _post(self, query: str, variables: dict[str, Any], token: str | None) -> Outcome:
        assert self._http is not None
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        # Serialised here with ASCII escapes: a lone surrogate travels as "\ud800", as any JSON client sends it
        # (httpx's own encoder would refuse to encode it as UTF-8).
        content = json.dumps({"query": query, "variables": variables}, ensure_ascii=True)
        try:
            async with asyncio.timeout(ANSWER_WITHIN):
                response = await self._http.post("/graphql", content=content, headers=headers)
        except TimeoutError:
            return Outcome(status=0, exception=f"no answer within {ANSWER_WITHIN:g} s (the service stalls)")
        except Exception as exc:  # an exception out of the ASGI app: a 500 from uvicorn in production
            return Outcome(status=500, exception=f"{type(exc).__name__}: {str(exc)[:300]}")
        try:
            body = response.json()
        except ValueError:
            body = None
        return Outcome(status=response.status_code, body=body, text=response.text)

    async def _send(self, caller: str, query: str, variables: dict[str, Any]) -> Outcome:
        outcome = await self._post(query, variables, self.tokens[caller])
        if outcome.status == 401 and "UNAUTHENTICATED" in outcome.codes():
            # A mutation revoked the caller's token (changePassword, a deactivation): sign in afresh.
            await self._sign_in(caller)
            outcome = await self._post(query, variables, self.tokens[caller])
        if "setPluginEnabled" in query or "revokePluginRole" in query:
            await self.restore()
        return outcome

    def send(self, caller: str, query: str, variables: dict[str, Any]) -> Outcome:
        handler = _Tracebacks()
        logging.getLogger().addHandler(handler)
        try:
            outcome = self.loop.run(self._send(caller, query, variables))
        finally:
            logging.getLogger().removeHandler(handler)
        outcome.logged = handler.seen
        return outcome
