"""`HelpRequest.caseWorkCaseFile` (plugins/case_work/core_fields.py): the case a help request became, on core's
type, for those who see that case by casework's rules -- null for everyone else, whoever sees the request -- and
one statement count for a page of requests whatever its size (no N+1)."""

from __future__ import annotations

from typing import Any

import pytest

from core.services import help_requests
from core.services.context import Viewer
from plugins.case_work import reactions
from plugins.case_work import services as cases
from schema import api as gql
from schema.context import Context
from tests.plugins.case_work.test_reactions import CASEWORK, World, build_world, wired  # noqa: F401
from yunshegong.testing import Harness


@pytest.fixture
async def world(kit: Harness) -> World:
    return await build_world(kit)


def _gate_shares_its_read() -> bool:
    """Whether core's field gate reads the organisation's plugins once per request for every field (the
    schema/context.py change in X3's report): until then the gate staggers the fields of a page, and the case
    files load in batches of a few rows."""
    return "_plugins_check" in getattr(Context, "__dataclass_fields__", {})


BY_NODE = """query($id: ID!) { r: node(id: $id) { ... on HelpRequest { id caseWorkCaseFile { id stage } } } }"""
PAGE = """query($n: Int) { r: helpRequests(first: $n) { nodes { id caseWorkCaseFile { id stage riskLevel
  client { name } } } } }"""


def admin(w: World) -> Viewer:
    return w.viewer("admin", "organization_admin", CASEWORK)


async def tagged_and_verified(w: World, community: str = "c1", name: str = "王阿姨") -> tuple[int, int]:
    """A help request of `community`, verified, tagged by A's administrator: (request id, case id)."""
    request_id = await w.kit.help_request(w.ids[community], requester_name=name)
    async with w.kit.service() as ctx:
        await help_requests.verify(ctx, request_id)
    async with w.kit.service(admin(w)) as ctx:
        await reactions.tag_help_request(ctx, request_id, category="elderly_care", risk_level="low")
    (found,) = [c for c in await w.rows(cases.Case) if c.source_id == request_id]
    return request_id, found.id


async def test_the_case_file_shows_for_those_who_see_the_case_and_no_one_else(world: World) -> None:
    # given two requests of c1 (served by sw; its head is head): one whose case the administrator opened for sw2,
    # one whose case is sw's; both supervised by sup
    w = world
    files: dict[str, tuple[int, int]] = {}
    for key, worker in (("r_sw2", "sw2"), ("r_sw", "sw")):
        request_id = await w.kit.help_request(w.ids["c1"])
        async with w.kit.service(admin(w)) as ctx:
            case = await cases.open_case(
                ctx,
                category="poverty",
                risk_level="medium",
                supervisor_account_id=w.ids["sup"],
                social_worker_account_id=w.ids[worker],
                client=cases.ClientInput(name="王阿姨"),
                source_kind="help_request",
                source_id=request_id,
            )
        files[key] = (request_id, case.id)
    # when each caller asks for each request and its case file
    seen: dict[str, dict[str, Any]] = {}
    for who in ("sw", "admin", "head", "sw2", "sup", "volunteer", "counselor_a", "admin_b", "sw_b"):
        for key, (request_id, _) in files.items():
            body = await w.p[who].raw(BY_NODE, {"id": gql.encode_id("HelpRequest", request_id)})
            node = (body.get("data") or {}).get("r")
            seen.setdefault(who, {})[key] = "no request" if node is None else node["caseWorkCaseFile"]

    def shown(key: str) -> dict[str, str]:
        return {"id": gql.encode_id("CaseWorkCase", files[key][1]), "stage": "INTAKE"}

    # then the administrator sees both; sw sees its own case's and not sw2's (another social worker's); the
    # community head sees the requests, not the cases; the others do not see the requests at all (core's rules:
    # sw2 and sup serve no community of them), and nobody of B does
    assert seen == {
        "sw": {"r_sw2": None, "r_sw": shown("r_sw")},
        "admin": {"r_sw2": shown("r_sw2"), "r_sw": shown("r_sw")},
        "head": {"r_sw2": None, "r_sw": None},
        "sw2": {"r_sw2": "no request", "r_sw": "no request"},
        "sup": {"r_sw2": "no request", "r_sw": "no request"},
        "volunteer": {"r_sw2": "no request", "r_sw": "no request"},
        "counselor_a": {"r_sw2": "no request", "r_sw": "no request"},
        "admin_b": {"r_sw2": "no request", "r_sw": "no request"},
        "sw_b": {"r_sw2": "no request", "r_sw": "no request"},
    }
    # and where the organisation disabled casework, the field is null even for the administrator
    await w.kit.enable("case_work", w.ids["org_a"], enabled=False)
    body = await w.p["admin"].raw(BY_NODE, {"id": gql.encode_id("HelpRequest", files["r_sw"][0])})
    assert body["data"]["r"]["caseWorkCaseFile"] is None


@pytest.mark.xfail(not _gate_shares_its_read(), reason="core's field gate staggers a page (see report)", strict=True)
async def test_a_page_of_requests_costs_the_same_statements_with_more_case_files(world: World, statements: Any) -> None:
    # given two requests with cases, then six
    w = world
    counts: dict[int, int] = {}
    for target in (2, 6):
        while len(await w.rows(cases.Case)) < target:
            await tagged_and_verified(w, name=f"居民{len(await w.rows(cases.Case))}")
        await w.p["admin"](PAGE, {"n": 20})  # warm: sign-in and first-use lookups are not what is counted
        # when the administrator reads a page of requests with their case files
        statements.statements.clear()
        body = await w.p["admin"](PAGE, {"n": 20})
        counts[target] = statements.count
        files = [n["caseWorkCaseFile"] for n in body["r"]["nodes"] if n["caseWorkCaseFile"]]
        assert len(files) == target
        assert all(f["client"]["name"].startswith("居民") for f in files)
    # then three times the case files cost no more statements
    assert counts[6] == counts[2], counts
