"""The schema-wide property test: hostile values into every root query field and every mutation.

For each root field (one test case each, so a failure names it), hypothesis-graphql generates documents
selecting that field, with hostile values for every scalar (tests/schema/fuzz_support.py: NUL bytes, lone
surrogates, 100 kB strings, "NaN" and "1e3" as money, years 1 and 9999, times without an offset, empty and
forged IDs mixed with the IDs of existing records), half of them with the values as variables. They are sent
over HTTP to the real app, on the demo data set with every plugin enabled, by a platform administrator or by
an organisation member holding every plugin role (signed in through `login`; afresh when a token was
revoked). The property:

- no HTTP 5xx (and no exception out of the app);
- no `INTERNAL_ERROR`, neither at the top level nor in a payload;
- every top-level error carries `extensions.code`.
- nothing logged as a fault (a traceback at ERROR) while answering.

A property that only validation errors ever met would prove nothing: each field must see some of its
documents reach its resolver (the field answered, or failed with a path, i.e. during execution); the counts
are printed at the end of the module and recorded as test properties.

Deterministic (derandomize) with YUNSHEGONG_FUZZ_EXAMPLES examples per field (default 20); set it to 200 or
more to search deeper locally: `YUNSHEGONG_FUZZ_EXAMPLES=200 pytest tests/schema/test_fuzz.py`.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import graphql
import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from hypothesis_graphql import mutations, queries

from core.plugins import build_plugin_host
from core.services import auth
from core.settings import Settings
from schema.build import build_schema
from tests.schema.fuzz_support import CALLERS, FuzzWorld, custom_scalars, rewrite, short_document, short_value

EXAMPLES = int(os.environ.get("YUNSHEGONG_FUZZ_EXAMPLES", "20"))
# YUNSHEGONG_FUZZ_SURVEY=file.jsonl: record every failing document there and keep going (one test still fails
# per field), to see every kind of failure at once rather than hypothesis's first, shrunk.
SURVEY = os.environ.get("YUNSHEGONG_FUZZ_SURVEY")
FUZZ = settings(
    max_examples=EXAMPLES,
    phases=[Phase.explicit, Phase.reuse, Phase.generate] if SURVEY else list(Phase),
    derandomize=True,  # the same documents on every run: CI is deterministic
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)
# Expected refusals of sign-in must not slow the run: no progressive delay, no lock-out.
APP_SETTINGS = Settings(login_max_failures=10**6, login_max_delay_seconds=0.0, jobs_interval=0)
HOST = build_plugin_host(entry_points=False)
SCHEMA = build_schema(APP_SETTINGS, HOST)._schema
SDL = graphql.print_schema(SCHEMA)
TYPED = graphql.build_schema(SDL)
assert SCHEMA.query_type is not None
assert SCHEMA.mutation_type is not None
QUERY_FIELDS = sorted(SCHEMA.query_type.fields)
MUTATION_FIELDS = sorted(SCHEMA.mutation_type.fields)
# How many of a field's examples must reach its resolver. A floor, not a target: every field gets past
# validation in far more of its examples than this with the strategies as they are.
MIN_REACHED = max(1, EXAMPLES // 10)
# Fields whose input needs an Upload: a file only ever arrives as a part of a multipart request, so a JSON
# document (what the fuzzer sends) never gets past validation. They are still fuzzed for "no 500, no stack";
# the multipart path is tested in tests/schema/test_imports_api.py.
NEEDS_A_FILE = frozenset({"importRecords"})

_reached: Counter[str] = Counter()
_sent: Counter[str] = Counter()


@pytest.fixture(scope="module")
def world(server_url: str, request: pytest.FixtureRequest) -> Iterator[FuzzWorld]:
    with pytest.MonkeyPatch.context() as patch:
        # Cheap argon2 parameters: the demo data set and every re-sign-in hash passwords (still argon2id).
        patch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        fuzz = FuzzWorld(server_url, f"ysg_test_fuzz_{os.getpid()}", HOST, APP_SETTINGS).start()
        try:
            yield fuzz
        finally:
            fuzz.stop()
            _summary(request, fuzz)


def _summary(request: pytest.FixtureRequest, fuzz: FuzzWorld) -> None:
    sent, reached = sum(_sent.values()), sum(_reached.values())
    if not sent:
        return
    lines = [
        f"schema fuzz: {sent} documents over {len(_sent)} root fields, {reached} reached a resolver "
        f"({100 * reached / sent:.0f} %), {fuzz.sign_ins} sign-ins",
    ]
    lowest = sorted(_sent, key=lambda f: _reached[f] / _sent[f])[:5]
    lines.append("least reached: " + ", ".join(f"{f} {_reached[f]}/{_sent[f]}" for f in lowest))
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    # Past output capture: the counts are worth seeing on a passing run too.
    with capture.global_and_fixture_disabled():
        for line in lines:
            reporter.write_line(line)


_strategies: dict[str, st.SearchStrategy[Any]] = {}


def _documents(kind: str, field: str) -> st.SearchStrategy[Any]:
    if field not in _strategies:
        make = queries if kind == "query" else mutations
        _strategies[field] = make(SDL, fields=[field], custom_scalars=custom_scalars(), print_ast=lambda doc: doc)
    return _strategies[field]


def _record(
    kind: str, field: str, caller: str, query: str, variables: dict[str, Any], outcome: Any, problems: list[str]
) -> None:
    assert SURVEY is not None
    entry = {
        "kind": kind,
        "field": field,
        "caller": caller,
        "problems": problems,
        "status": outcome.status,
        "codes": outcome.codes(),
        "logged": outcome.logged,
        "query": short_document(query),
        "variables": short_value(variables),
    }
    with open(SURVEY, "a", encoding="utf-8") as out:
        out.write(json.dumps(entry, ensure_ascii=True) + "\n")


def _fuzz(world: FuzzWorld, kind: str, field: str, record_property: Any) -> None:
    documents = _documents(kind, field)

    @FUZZ
    @given(data=st.data())
    def property_holds(data: st.DataObject) -> None:
        document = data.draw(documents, label="document")
        caller = data.draw(st.sampled_from(CALLERS), label="caller")
        as_variables = data.draw(st.booleans(), label="values as variables")
        query, variables = rewrite(TYPED, document, field, world.real_ids, data.draw, hoist=as_variables)
        note(f"caller: {caller}\nquery: {short_document(query)}\nvariables: {variables!r:.2000}")
        outcome = world.send(caller, query, variables)
        _sent[field] += 1
        _reached[field] += outcome.reached_resolver()
        problems = outcome.problems()
        if problems and SURVEY:
            _record(kind, field, caller, query, variables, outcome, problems)
            failed.append(problems)
            return
        assert not problems, (
            f"{kind} {field} as {caller}: {problems}; HTTP {outcome.status}, codes {outcome.codes()}\n"
            f"query: {short_document(query)}\nvariables: {variables!r:.2000}"
        )

    failed: list[list[str]] = []
    before_sent, before_reached = _sent[field], _reached[field]
    property_holds()
    assert not failed, f"{len(failed)} documents for {field} failed (recorded in {SURVEY})"
    sent, reached = _sent[field] - before_sent, _reached[field] - before_reached
    record_property("documents", sent)
    record_property("reached_resolver", reached)
    floor = 0 if field in NEEDS_A_FILE else MIN_REACHED
    assert reached >= floor, f"only {reached} of {sent} documents for {field} got past validation"


@pytest.mark.parametrize("field", QUERY_FIELDS)
def test_no_query_field_fails_on_hostile_input(world: FuzzWorld, field: str, record_property: Any) -> None:
    _fuzz(world, "query", field, record_property)


@pytest.mark.parametrize("field", MUTATION_FIELDS)
def test_no_mutation_fails_on_hostile_input(world: FuzzWorld, field: str, record_property: Any) -> None:
    _fuzz(world, "mutation", field, record_property)
