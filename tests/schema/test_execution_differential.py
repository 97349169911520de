"""The compiled executor (schema.execution) answers exactly as graphql-core's: every document runs both ways on
the same app, database and caller, and the JSON (data and errors: message, path, locations, extensions, order)
and the audit rows written (sensitive reads) must be identical.

Documents: (a) hand-written ones (aliases, fragments, @skip/@include, the Node interface, masked fields) for
every role of the access world, also with errors injected into resolvers and plain fields (null propagation);
(b) the query documents of the test suite and the README; (c) documents hypothesis-graphql generates from the
SDL, with and without injected errors. The compiled side must run compiled (no fallback) for every query.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import graphql
import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis_graphql import queries
from sqlalchemy import text
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from core.database import create_engine, database_url_for
from core.services import auth, privacy
from schema import ids
from schema.execution import compiled_execution_context
from schema.types.help_request import HelpRequest
from tests.schema.access_world import ROLES, World, world_in_database
from tests.schema.fuzz_support import custom_scalars

ROOT = Path(__file__).resolve().parents[2]
DATABASE = "ysg_test_exec_diff"
REQUEST_ID = re.compile(r"\b[0-9a-f]{16}\b")


@pytest.fixture(scope="module")
async def world(server_url: str) -> AsyncIterator[World]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        async with world_in_database(server_url, DATABASE) as w:
            owner = create_engine(database_url_for(server_url, DATABASE), pool_size=1)
            w.owner = owner  # type: ignore[attr-defined]
            try:
                yield w
            finally:
                await owner.dispose()


def _schema(world: World) -> Any:
    app = world.http._transport.app  # type: ignore[attr-defined]
    route = next(r for r in app.routes if getattr(r, "path", None) == "/graphql")
    return route.endpoint.schema


class Differ:
    """Runs a document with graphql-core's executor, then with a compiled one (compiled at first use)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.schema = _schema(world)
        self.compiled = compiled_execution_context(compile_after=1)
        self.runs = 0
        self.last_audit_id = 0
        # The errors as the executor produced them, before SafeErrors masks the unexpected ones for the client.
        self.raw_errors: list[Any] = []
        process_errors = self.schema.process_errors

        def recording(errors: list[Any], execution_context: Any = None) -> None:
            self.raw_errors.extend(
                (e.message, e.path, e.locations, repr(e.original_error), e.extensions) for e in errors
            )
            process_errors(errors, execution_context)

        self.schema.process_errors = recording

    async def _audit(self) -> list[tuple[Any, ...]]:
        """The audit rows written since the last call."""
        async with self.world.owner.connect() as conn:  # type: ignore[attr-defined]
            rows = [
                tuple(r)
                for r in await conn.execute(
                    text(
                        "SELECT id, actor, account_id, organization_id, action, operation, record_type, record_id,"
                        " fields, detail FROM audit_log WHERE id > :last ORDER BY id"
                    ),
                    {"last": self.last_audit_id},
                )
            ]
        if rows:
            self.last_audit_id = rows[-1][0]
        return [r[1:] for r in rows]

    async def _run(self, executor: Any, role: str, query: str, variables: dict[str, Any] | None) -> tuple[Any, ...]:
        self.schema.execution_context_class = executor
        await self._audit()
        self.raw_errors = []
        body = await self.world.gql(role, query, variables)
        written = await self._audit()
        # The masked message of an unexpected error quotes the request's random id: the same both ways.
        normalised = json.loads(REQUEST_ID.sub("<request id>", json.dumps(body, ensure_ascii=False)))
        return normalised, written, self.raw_errors

    async def same(self, role: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        expected = await self._run(StrawberryGraphQLCoreExecutionContext, role, query, variables)
        stats = self.compiled.stats
        fallbacks, compiled = stats.fallbacks, stats.compiled
        got = await self._run(self.compiled, role, query, variables)
        self.schema.execution_context_class = StrawberryGraphQLCoreExecutionContext
        assert got[0] == expected[0], (role, query, variables)
        assert got[1] == expected[1], ("audit rows differ", role, query)
        assert got[2] == expected[2], ("errors differ before SafeErrors", role, query)
        assert stats.fallbacks == fallbacks, (dict(stats.reasons), query)
        self.runs += stats.compiled - compiled
        return expected[0]


@pytest.fixture(scope="module")
def differ(world: World) -> Differ:
    return Differ(world)


@contextmanager
def injected_errors(propagating: bool = False) -> Iterator[None]:
    """Errors on some records only, so that they meet siblings that succeed: in plain nullable fields (a value
    its scalar refuses), and with `propagating`, in resolvers (an exception, a null for a non-null field) and
    plain non-null fields (a null title, an unknown enum value), which null their parents up to the nearest
    nullable one. Propagating errors are only used where that parent is below the root (node, nodes): one
    that nulls the root leaves sibling loads running after the request, holding a pooled connection
    (reported in issue 13), with either executor."""
    with pytest.MonkeyPatch.context() as patch:
        corrupt: dict[str, list[tuple[str, Any]]] = {"r1": [("latitude", "north")], "r3": [("needed_by", "soon")]}
        if propagating:
            mask_phone, mask_text = privacy.mask_phone, privacy.mask_text

            def failing_mask_phone(phone: str) -> str:
                raise RuntimeError("injected")

            def null_mask_text(value: str) -> Any:
                return None if "5号楼" in value else mask_text(value)

            patch.setattr(privacy, "mask_phone", failing_mask_phone)
            patch.setattr(privacy, "mask_text", null_mask_text)
            corrupt["r2"] = [("title", None)]
            corrupt["r3"].append(("urgency", "NOT_AN_URGENCY"))
            del mask_phone
        init = HelpRequest.__init__

        def corrupting_init(self: Any, *args: Any, **kw: Any) -> None:
            init(self, *args, **kw)
            for attr, value in corrupt.get(getattr(self, "title", ""), ()):
                object.__setattr__(self, attr, value)

        patch.setattr(HelpRequest, "__init__", corrupting_init)
        yield


# -- (a) hand-written documents ------------------------------------------------------------------------------

PAGE = """{ helpRequests(first: 20) { edges { node {
  id title status urgency neededBy
  community { name }
  assignments { status volunteer { name } }
} } } }"""

MASKED = """query Masked {
  helpRequests(first: 20) { totalCount edges { cursor node {
    __typename id title requesterPhone requesterAddress healthDetails sensitiveDetailsVisible
    community { __typename id name headPhone }
  } } pageInfo { hasNextPage endCursor } }
}"""

FRAGMENTS = """
query Fragments($withCommunity: Boolean!, $skipTitle: Boolean = false) {
  first: helpRequests(first: 5) { ...Page }
  again: helpRequests(first: 3) { edges { node { heading: title, id ... on Node { nodeId: id } } } }
  __typename
}
fragment Page on HelpRequestConnection {
  edges { node { ...Request ... on HelpRequest { status } } }
}
fragment Request on HelpRequest {
  id
  title @skip(if: $skipTitle)
  title
  label: title @include(if: $withCommunity)
  community @include(if: $withCommunity) { name ...on Community { id name } }
  assignments { ... on Assignment { status } volunteer { name id } }
  requesterPhone @skip(if: $skipTitle)
}"""

NODES = """query Nodes($ids: [ID!]!, $one: ID!) {
  nodes(ids: $ids) {
    __typename id
    ... on HelpRequest { title requesterPhone healthDetails community { name } }
    ... on Community { name headPhone }
    ... on Volunteer { name }
    ... on Assignment { status request { title requesterAddress } }
  }
  node(id: $one) { id ... on HelpRequest { status urgency populationTags requiredSkills } }
}"""


def _node_ids(world: World) -> dict[str, Any]:
    w = world.ids
    all_ids = [ids.encode("HelpRequest", w[r]) for r in ("r1", "r2", "r3", "r4")] + [
        ids.encode("Community", w["c1"]),
        ids.encode("Community", w["c3"]),
        ids.encode("Assignment", w["a_r1"]),
    ]
    all_ids += [ids.encode("Volunteer", w["v_driver"]), ids.encode("HelpRequest", 987654), "not an id"[:0] + "eA=="]
    return {"ids": all_ids, "one": ids.encode("HelpRequest", w["r1"])}


async def test_hand_written_documents_answer_alike_for_every_role(world: World, differ: Differ) -> None:
    # given the hand-written documents and every role, with and without injected errors
    documents: list[tuple[str, dict[str, Any] | None]] = [
        (PAGE, None),
        (MASKED, None),
        (FRAGMENTS, {"withCommunity": True}),
        (FRAGMENTS, {"withCommunity": False, "skipTitle": True}),
        (NODES, _node_ids(world)),
        ("{ __typename a: __typename }", None),
    ]
    runs = differ.runs
    answered_errors = 0
    for inject in (False, True):
        with injected_errors() if inject else _nothing():
            for role in ROLES if not inject else ("platform_admin", "volunteer", "org_admin_b"):
                for query, variables in documents:
                    # when each runs both ways, then both answers and audit rows are the same
                    body = await differ.same(role, query, variables)
                    answered_errors += bool(body.get("errors"))
    with injected_errors(propagating=True):
        for role in ROLES:
            body = await differ.same(role, NODES, _node_ids(world))
            answered_errors += bool(body.get("errors"))
    # and every run was compiled, and the injected errors did reach answers
    assert differ.runs - runs == (len(ROLES) + 3) * len(documents) + len(ROLES)
    assert answered_errors > len(ROLES)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


async def test_injected_errors_propagate_nulls_alike(world: World, differ: Differ) -> None:
    # given errors in a non-null resolver field, a non-null plain field, an enum's and a scalar's serialisation
    with injected_errors(propagating=True):
        body = await differ.same("platform_admin", NODES, _node_ids(world))
    # then they produced errors with paths (compared equal above), and nulls propagated to the nodes
    assert "INTERNAL_ERROR" in {e["extensions"]["code"] for e in body["errors"]}
    assert all(e.get("path") for e in body["errors"])
    assert None in body["data"]["nodes"]


async def test_sensitive_reads_are_audited_alike(world: World, differ: Differ) -> None:
    # given a caller who sees unmasked details
    before = differ.runs
    body = await differ.same("platform_admin", MASKED)
    # then the reads were audited (the rows compared equal in `same`) and the values are raw
    assert any(e["node"]["requesterPhone"] == "13812345678" for e in body["data"]["helpRequests"]["edges"])
    assert differ.runs == before + 1


# -- (b) the test suite's and the README's query documents ---------------------------------------------------


def _suite_documents(schema: graphql.GraphQLSchema) -> list[str]:
    found: list[str] = []
    sources = sorted((ROOT / "tests" / "schema").glob("*.py")) + sorted((ROOT / "tests" / "plugins").rglob("*.py"))
    texts = []
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and "{" in node.value:
                texts.append(node.value)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    texts += re.findall(r"^```graphql\n(.*?)^```", readme, re.DOTALL | re.MULTILINE)
    for candidate in texts:
        try:
            document = graphql.parse(candidate)
        except graphql.GraphQLError:
            continue
        operations = [d for d in document.definitions if isinstance(d, graphql.OperationDefinitionNode)]
        if len(operations) != 1 or operations[0].operation is not graphql.OperationType.QUERY:
            continue
        if graphql.validate(schema, document):
            continue
        if candidate not in found:
            found.append(candidate)
    return found


def _variables(document: str, world: World) -> dict[str, Any]:
    """Values for required ID variables (a record of the type the name suggests), so the document runs."""
    operation = next(d for d in graphql.parse(document).definitions if isinstance(d, graphql.OperationDefinitionNode))
    values: dict[str, Any] = {}
    records = {
        "request": ("HelpRequest", "r1"),
        "community": ("Community", "c1"),
        "volunteer": ("Volunteer", "v_driver"),
        "assignment": ("Assignment", "a_r1"),
    }
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        printed = graphql.print_ast(definition.type)
        if printed in ("ID!", "ID"):
            type_name, key = next((v for k, v in records.items() if k in name.lower()), ("HelpRequest", "r1"))
            values[name] = ids.encode(type_name, world.ids[key])
        elif printed == "[ID!]!":
            values[name] = [ids.encode("HelpRequest", world.ids["r1"])]
    return values


async def test_the_suites_query_documents_answer_alike(world: World, differ: Differ) -> None:
    # given every valid query document of tests/schema, tests/plugins and the README
    documents = _suite_documents(differ.schema._schema)
    assert len(documents) >= 20
    before = differ.runs
    # when each runs both ways, as an administrator or as a volunteer, then the answers are the same
    for n, document in enumerate(documents):
        await differ.same("volunteer" if n % 2 else "platform_admin", document, _variables(document, world))
    # and most ran compiled (the others were refused before execution: variables, cost)
    assert differ.runs - before >= len(documents) // 2


# -- (c) generated documents ---------------------------------------------------------------------------------

GENERATED = 60


def _generated(sdl: str) -> list[str]:
    found: list[str] = []

    @settings(
        max_examples=GENERATED,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(queries(sdl, custom_scalars=custom_scalars()))
    def collect(document: str) -> None:
        try:
            document.encode()
        except UnicodeEncodeError:  # a lone surrogate: refused before GraphQL, nothing to compare
            return
        found.append(document)

    collect()
    return found


async def test_generated_documents_answer_alike(world: World, differ: Differ) -> None:
    # given documents generated from the SDL (many refused by validation or cost, the same way both ways)
    documents = _generated(str(differ.schema))
    before = differ.runs
    # when each runs both ways, half of them with injected errors
    for n, document in enumerate(documents):
        with injected_errors() if n % 2 else _nothing():
            await differ.same("platform_admin" if n % 3 else "org_admin_a", document)
    # then answers are the same, and a fair share of them ran compiled
    assert differ.runs - before >= len(documents) // 4


# -- the benchmark page --------------------------------------------------------------------------------------


async def test_the_benchmark_page_compiles_without_fallback(world: World) -> None:
    from bench.requests_page import QUERY

    # given a fresh compiled executor on the app's schema (compiled at its second use, as in service)
    schema = _schema(world)
    compiled = compiled_execution_context()
    schema.execution_context_class = compiled
    try:
        # when the page is asked for three times
        for _ in range(3):
            body = await world.gql("org_admin_a", QUERY)
            assert "errors" not in body, body
    finally:
        schema.execution_context_class = StrawberryGraphQLCoreExecutionContext
    # then it was compiled once, ran compiled twice, and never fell back
    assert (compiled.stats.first_uses, compiled.stats.compilations, compiled.stats.compiled) == (1, 1, 2)
    assert compiled.stats.fallbacks == 0
