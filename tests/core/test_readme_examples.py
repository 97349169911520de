"""The README's GraphQL examples work, in order, on a fresh demo data set, on any date.

An example is a ```graphql block whose first line says who sends it (`# as socialworker`, one of the demo
accounts, or `# as anyone`), optionally followed by a ```json block of its variables. A variable written
`"<from Submit: submitHelpRequest.helpRequest.id>"` takes its value from the answer to an earlier example
(by operation name, then a dotted path); `"<now + 3 days>"` is a time that many days ahead. Each must answer
without errors (top-level or in its payload) and with something in it.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import graphql
import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncEngine

from core.demo import DEMO_PASSWORDS, load_demo
from core.plugins import build_plugin_host
from core.services import auth
from core.settings import Settings
from yunshegong.app import create_app

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```\s*$", re.DOTALL | re.MULTILINE)
AS = re.compile(r"^# as (\w+)")
FROM = re.compile(r"^<from (\w+): ([\w.]+)>$")
NOW_PLUS = re.compile(r"^<now \+ (\d+) days?>$")
ANYONE = "anyone"


@dataclass
class Example:
    caller: str
    operation: str
    query: str
    variables: dict[str, Any] = field(default_factory=dict)


def readme_examples(text: str) -> list[Example]:
    """The marked GraphQL examples of a Markdown text, in order (unmarked graphql blocks are not examples)."""
    found: list[Example] = []
    blocks = list(BLOCK.finditer(text))
    for i, block in enumerate(blocks):
        language, body = block.group(1), block.group(2)
        marker = AS.match(body)
        if language != "graphql" or marker is None:
            continue
        variables: dict[str, Any] = {}
        following = blocks[i + 1] if i + 1 < len(blocks) else None
        if following is not None and following.group(1) == "json" and not text[block.end() : following.start()].strip():
            variables = json.loads(following.group(2))
        operations = [
            d for d in graphql.parse(body).definitions if isinstance(d, graphql.OperationDefinitionNode) and d.name
        ]
        assert len(operations) == 1, f"each example is one named operation:\n{body}"
        found.append(Example(marker.group(1), operations[0].name.value, body, variables))
    return found


def _resolve(value: Any, answers: dict[str, Any], now: datetime) -> Any:
    if isinstance(value, dict):
        return {k: _resolve(v, answers, now) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, answers, now) for v in value]
    if not isinstance(value, str):
        return value
    if match := NOW_PLUS.match(value):
        return (now + timedelta(days=int(match.group(1)))).isoformat()
    if match := FROM.match(value):
        operation, path = match.groups()
        assert operation in answers, f"{value}: no earlier example is named {operation}"
        found: Any = answers[operation]
        for step in path.split("."):
            found = found[int(step)] if isinstance(found, list) else found[step]
        assert found is not None, f"{value} is null in the answer to {operation}"
        return found
    assert not value.startswith("<"), f"unknown placeholder {value}"
    return value


def _empty(value: Any) -> bool:
    """Nothing in it: null, an empty list, a connection without edges."""
    if value is None or value == []:
        return True
    return isinstance(value, dict) and "edges" in value and not value["edges"]


@pytest.fixture
async def demo_api(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    host = build_plugin_host(entry_points=False)
    with pytest.MonkeyPatch.context() as patch:
        # Cheap argon2 for the demo accounts' hashes and their sign-in (still argon2id, the same code).
        patch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        # The data set `make run` serves: every built-in plugin, loaded today (its times are relative to now).
        assert await load_demo(engine, host=host)
        app = create_app(Settings(jobs_interval=0), engine=engine, host=host)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
            yield http


def test_the_readme_marks_its_examples() -> None:
    examples = readme_examples(README.read_text(encoding="utf-8"))
    names = [e.operation for e in examples]
    # the sign-in, the work list, intake, verification, matching and the figures are all there
    assert {"SignIn", "WorkList", "FindCommunity", "Submit", "Verify", "Candidates", "Offer", "Stats"} <= set(names)
    assert len(names) == len(set(names)), "operation names are how later examples refer to answers"
    assert all(e.caller == ANYONE or e.caller in DEMO_PASSWORDS for e in examples), [e.caller for e in examples]


def test_a_placeholder_takes_its_value_from_an_earlier_answer() -> None:
    answers = {"Submit": {"submitHelpRequest": {"helpRequest": {"id": "SGVscFJlcXVlc3Q6NjE="}}}}
    now = datetime(2030, 1, 1, tzinfo=UTC)
    variables = {"id": "<from Submit: submitHelpRequest.helpRequest.id>", "at": "<now + 3 days>", "n": 1}
    assert _resolve(variables, answers, now) == {
        "id": "SGVscFJlcXVlc3Q6NjE=",
        "at": "2030-01-04T00:00:00+00:00",
        "n": 1,
    }
    with pytest.raises(AssertionError):
        _resolve({"id": "<from Later: x.id>"}, answers, now)


async def test_every_readme_example_works_on_the_demo_data(demo_api: httpx.AsyncClient) -> None:
    # given a fresh demo data set and the README's examples
    examples = readme_examples(README.read_text(encoding="utf-8"))
    tokens: dict[str, str] = {}
    answers: dict[str, Any] = {}
    now = datetime.now(UTC).astimezone()
    for example in examples:
        # when each is sent, in order, by the caller it names
        headers = {}
        if example.caller != ANYONE:
            if example.caller not in tokens:
                login = await demo_api.post(
                    "/graphql",
                    json={
                        "query": "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) "
                        "{ token } }",
                        "variables": {"u": example.caller, "p": DEMO_PASSWORDS[example.caller]},
                    },
                )
                tokens[example.caller] = login.json()["data"]["login"]["token"]
            headers["Authorization"] = f"Bearer {tokens[example.caller]}"
        variables = _resolve(example.variables, answers, now)
        response = await demo_api.post(
            "/graphql", json={"query": example.query, "variables": variables}, headers=headers
        )
        body = response.json()
        # then it answers without errors, and with something in it
        assert response.status_code == 200, (example.operation, body)
        assert not body.get("errors"), (example.operation, body["errors"])
        for root, value in body["data"].items():
            assert not _empty(value), (example.operation, root, value)
            if isinstance(value, dict) and "errors" in value:
                assert value["errors"] == [], (example.operation, value["errors"])
        answers[example.operation] = body["data"]
    # and the offer went to the best candidate of the request just submitted and verified
    assert answers["Verify"]["verifyHelpRequest"]["helpRequest"]["status"] == "VERIFIED"
    assert answers["Offer"]["offerAssignment"]["assignment"]["status"] == "OFFERED"
    assert answers["SignIn"]["login"]["token"]
