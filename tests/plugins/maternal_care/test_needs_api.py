"""Urgent needs through the real GraphQL endpoint, callers signed in for real: a mother's urgent need becomes a
core help request (core's service: history, events, core's visibility), linked to her and shown with her to
those who read her health details; bad input and callers without the right refused with codes, nothing written."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.services import communities
from core.services.context import ServiceContext, Viewer
from core.vocab import LiaisonRole, RequestCategory, Urgency
from plugins.maternal_care.needs import services
from plugins.maternal_care.needs.models import UrgentNeed
from plugins.maternal_care.needs.types import MaternalCareNeedCategory, MaternalCareNeedUrgency
from yunshegong.testing import Harness

REGISTER = """mutation($input: MaternalCareRegisterMotherInput!) {
  r: maternalCareRegisterMother(input: $input) { mother { id residentId } errors { code field } } }"""
RAISE = """mutation($input: MaternalCareRaiseUrgentNeedInput!) {
  r: maternalCareRaiseUrgentNeed(input: $input) {
    need { beneficiary what quantity note raisedBy helpRequestId
           helpRequest { id title description category urgency status requesterName populationTags
                         history { fromStatus toStatus actor } } }
    errors { code field } } }"""
REQUEST = """query($id: ID!) { r: node(id: $id) { ... on HelpRequest { title description populationTags
  requesterName } } }"""
NEEDS = """query($id: ID!) { r: node(id: $id) { ... on MaternalCareMother {
  urgentNeeds { what quantity beneficiary helpRequest { id } } } } }"""
GRANT = """mutation($a: ID!) { r: grantPluginRole(input: {accountId: $a, role: "maternal_care.staff"}) {
  errors { code } } }"""
PHONE = "13700003001"
FORMULA = {
    "category": "FOOD",
    "urgency": "CRITICAL",
    "what": "婴儿配方奶粉（1段）",
    "quantity": 6,
    "beneficiary": "INFANT",
}


def _pk(gid: str) -> int:
    return int(base64.b64decode(gid).decode().split(":")[1])


@pytest.fixture
async def people(kit: Harness) -> dict[str, Any]:
    """A: community c1 served by sw, c2 by staff (maternal-care staff) as liaisons (core: one social worker per
    community); sw2 a social worker serving nobody; the usual others. B: its own administrator and social
    worker. The mother (`mother`) lives in c1, assigned to sw."""
    org_a = await kit.organization(plugins=["maternal_care"])
    org_b = await kit.organization(plugins=["maternal_care"])
    p: dict[str, Any] = {"org_a": org_a, "org_b": org_b}
    p["c1"], p["c2"], p["c_b"] = await kit.community(org_a), await kit.community(org_a), await kit.community(org_b)
    for key, role, org in (
        ("sw", "social_worker", org_a),
        ("sw2", "social_worker", org_a),
        ("staff", "social_worker", org_a),
        ("counselor", "counselor", org_a),
        ("volunteer", "volunteer", org_a),
        ("sw_b", "social_worker", org_b),
    ):
        p[f"v_{key}"] = await kit.volunteer(org)
        p[key] = await kit.sign_in(role, org, volunteer_id=p[f"v_{key}"])
    p["admin"] = await kit.sign_in("organization_admin", org_a)
    p["head"] = await kit.sign_in("community_head", org_a, community_id=p["c1"])
    p["admin_b"] = await kit.sign_in("organization_admin", org_b)
    async with kit.service() as ctx:
        await communities.add_liaison(ctx, p["c1"], p["v_sw"], LiaisonRole.SOCIAL_WORKER)
        await communities.add_liaison(ctx, p["c2"], p["v_staff"], LiaisonRole.SOCIAL_WORKER)
        await communities.add_liaison(ctx, p["c_b"], p["v_sw_b"], LiaisonRole.SOCIAL_WORKER)
    assert (await p["admin"](GRANT, {"a": p["staff"].account_id}))["r"]["errors"] == []
    p["mother"] = await _register(p)
    return p


async def _register(p: dict[str, Any], community: str = "c1", phone: str = PHONE, name: str = "孕妇赵女士") -> str:
    resident = {"name": name, "phone": phone, "address": "雁塔区小寨东路12号"}
    body = await p["sw"](
        REGISTER,
        {
            "input": {
                "consent": True,
                "socialWorkerId": p["sw"].account_id,
                "resident": resident,
                "communityId": core_id("Community", p[community]) if community else None,
            }
        },
    )
    assert body["r"]["errors"] == [], body
    return str(body["r"]["mother"]["id"])


def core_id(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


async def _raise(p: dict[str, Any], who: str = "sw", mother: str | None = None, **changes: Any) -> dict[str, Any]:
    body = await p[who](RAISE, {"input": {"motherId": mother or p["mother"], **FORMULA, **changes}})
    return body["r"]  # type: ignore[no-any-return]


async def _counts(engine: AsyncEngine) -> tuple[int, ...]:
    async with engine.connect() as conn:
        return tuple(
            [
                (await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one()
                for t in ("help_requests", "help_request_status_changes", "maternal_care_urgent_needs")
            ]
        )


async def test_an_urgent_need_becomes_a_help_request_for_her_community(
    people: dict[str, Any], owner_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = people
    published: list[str] = []
    original = ServiceContext.publish

    async def spy(self: ServiceContext, event: Any) -> None:
        published.append(event.name)
        await original(self, event)

    monkeypatch.setattr(ServiceContext, "publish", spy)
    # when her social worker raises her infant's need of formula
    raised = await _raise(p, note="隔离病房，明早前送达")
    # then a help request is submitted through core: her community, her as the requester, core's history
    assert raised["errors"] == []
    need = raised["need"]
    assert (need["beneficiary"], need["what"], need["quantity"], need["note"]) == (
        "INFANT",
        "婴儿配方奶粉（1段）",
        6,
        "隔离病房，明早前送达",
    )
    request = need["helpRequest"]
    assert request["id"] == need["helpRequestId"]
    assert (request["title"], request["category"], request["urgency"], request["status"]) == (
        "婴儿配方奶粉（1段）",
        "FOOD",
        "CRITICAL",
        "SUBMITTED",
    )
    assert request["requesterName"] == "孕妇赵女士"
    assert [(h["fromStatus"], h["toStatus"]) for h in request["history"]] == [(None, "SUBMITTED")]
    # and core's event was published
    assert "help_request.submitted" in published
    async with owner_engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT community_id, requester_phone, population_tags, health_details FROM help_requests")
            )
        ).one()
    # and the request says what is needed, not why: no pregnancy tag, no health details
    assert (row.community_id, row.requester_phone, list(row.population_tags), row.health_details) == (
        p["c1"],
        PHONE,
        [],
        "",
    )
    # and maternal-care staff raise one for a mother of c2 (they serve every mother; core: they serve c2)
    other = await _register(p, "c2", phone="13700003009", name="孕妇周女士")
    staff_raised = await _raise(p, "staff", mother=other, what="叶酸片", category="MEDICINE", beneficiary="MOTHER")
    assert staff_raised["errors"] == []
    assert (await _counts(owner_engine))[2] == 2


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"what": "  "}, "REQUIRED", ["input", "what"]),
        ({"what": "奶" * 201}, "OUT_OF_RANGE", ["input", "what"]),
        ({"quantity": 0}, "OUT_OF_RANGE", ["input", "quantity"]),
        ({"quantity": 10_001}, "OUT_OF_RANGE", ["input", "quantity"]),
        ({"note": "x" * 2001}, "OUT_OF_RANGE", ["input", "note"]),
        ({"neededBy": "2020-01-01T08:00:00+08:00"}, "IN_PAST", ["input", "neededBy"]),
        ({"motherId": core_id("MaternalCareMother", 999_999)}, "NOT_FOUND", ["input", "motherId"]),
    ],
)
async def test_bad_input_is_refused_with_nothing_written(
    people: dict[str, Any], owner_engine: AsyncEngine, changes: dict[str, Any], code: str, field: list[str]
) -> None:
    p = people
    before = await _counts(owner_engine)
    raised = await _raise(p, **changes)
    assert [(e["code"], e["field"]) for e in raised["errors"]] == [(code, field)]
    assert raised["need"] is None
    assert await _counts(owner_engine) == before


async def test_who_may_raise_a_need(people: dict[str, Any], owner_engine: AsyncEngine) -> None:
    p = people
    before = await _counts(owner_engine)
    # another social worker, another organisation: the mother answers as missing
    for who in ("sw2", "sw_b", "admin_b"):
        assert [e["code"] for e in (await _raise(p, who))["errors"]] == ["NOT_FOUND"], who
    # callers holding no maternal-care permission
    for who in ("counselor", "volunteer", "head"):
        assert [e["code"] for e in (await _raise(p, who))["errors"]] == ["FORBIDDEN"], who
    # the administrator reads her contact masked: she does not copy it into a request
    assert [e["code"] for e in (await _raise(p, "admin"))["errors"]] == ["FORBIDDEN"]
    assert await _counts(owner_engine) == before
    # positive control: her social worker
    assert (await _raise(p))["errors"] == []


async def test_core_decides_where_one_may_post(people: dict[str, Any], owner_engine: AsyncEngine) -> None:
    # given a mother of sw's living in c2, a community sw does not serve
    p = people
    elsewhere = await _register(p, "c2", phone="13700003002", name="孕妇钱女士")
    # and mothers with no community, or no phone on her record
    nowhere = await _register(p, "", phone="13700003003", name="孕妇孙女士")
    silent = await _register(p, "c1", phone="", name="孕妇李女士")
    before = await _counts(owner_engine)
    # then core refuses sw the community (addressed to the mother), and the others are refused with their codes
    assert [(e["code"], e["field"]) for e in (await _raise(p, mother=elsewhere))["errors"]] == [
        ("FORBIDDEN", ["input", "motherId"])
    ]
    assert [e["code"] for e in (await _raise(p, mother=nowhere))["errors"]] == ["MATERNAL_CARE_NO_COMMUNITY"]
    assert [e["code"] for e in (await _raise(p, mother=silent))["errors"]] == ["MATERNAL_CARE_NO_CONTACT"]
    assert await _counts(owner_engine) == before


async def test_the_request_follows_cores_rules_and_tells_nothing_of_her_health(people: dict[str, Any]) -> None:
    p = people
    # given a need with a private note (her ward) and a note the social worker chose to publish
    raised = await _raise(p, note="产后抑郁复诊，隔离病房", publicNote="明早前送达")
    assert raised["errors"] == [], raised
    request_id = raised["need"]["helpRequestId"]
    assert raised["need"]["note"] == "产后抑郁复诊，隔离病房"
    # the head of c1 sees the request (core: their community's), as a need, without her pregnancy
    seen = (await p["head"](REQUEST, {"id": request_id}))["r"]
    assert (seen["title"], seen["populationTags"]) == ("婴儿配方奶粉（1段）", [])
    # and reads what, how much, for whom and the published note -- never the private note
    assert seen["description"] == "婴儿配方奶粉（1段） × 6（婴儿）\n明早前送达"
    assert "抑郁" not in seen["description"]
    assert "病房" not in seen["description"]
    # a volunteer not assigned to it, a social worker serving elsewhere, another organisation: not at all
    for who in ("volunteer", "sw2", "admin_b", "sw_b"):
        assert (await p[who](REQUEST, {"id": request_id}))["r"] is None, who


async def test_urgent_needs_are_for_those_who_read_her_health_details(people: dict[str, Any], kit: Harness) -> None:
    # given a need raised for the mother
    p = people
    await _raise(p)
    mother_pk = _pk(p["mother"])
    accounts = {who: _pk(p[who].account_id) for who in ("sw", "sw2", "staff", "admin", "counselor", "sw_b", "admin_b")}
    manage = frozenset({"maternal_care.manage"})
    viewers = {
        "sw": Viewer(
            label="sw",
            account_id=accounts["sw"],
            organization_id=p["org_a"],
            role="social_worker",
            extra_permissions=manage,
        ),
        "staff": Viewer(
            label="staff",
            account_id=accounts["staff"],
            organization_id=p["org_a"],
            role="social_worker",
            extra_permissions=manage | {"maternal_care.health"},
        ),
        "admin": Viewer(
            label="admin",
            account_id=accounts["admin"],
            organization_id=p["org_a"],
            role="organization_admin",
            extra_permissions=manage,
        ),
        "sw2": Viewer(
            label="sw2",
            account_id=accounts["sw2"],
            organization_id=p["org_a"],
            role="social_worker",
            extra_permissions=manage,
        ),
        "counselor": Viewer(label="c", account_id=accounts["counselor"], organization_id=p["org_a"], role="counselor"),
        "sw_b": Viewer(
            label="sw_b",
            account_id=accounts["sw_b"],
            organization_id=p["org_b"],
            role="social_worker",
            extra_permissions=manage,
        ),
        "admin_b": Viewer(
            label="admin_b",
            account_id=accounts["admin_b"],
            organization_id=p["org_b"],
            role="organization_admin",
            extra_permissions=manage,
        ),
    }
    seen: dict[str, int] = {}
    for who, viewer in viewers.items():
        async with kit.service(viewer) as ctx:
            (needs,) = await services.needs_of(ctx, [mother_pk])
            seen[who] = len(needs)
    # then her social worker, maternal-care staff and administrators see it; nobody else does
    assert seen == {"sw": 1, "staff": 1, "admin": 1, "sw2": 0, "counselor": 0, "sw_b": 0, "admin_b": 0}


async def test_a_mothers_urgent_needs_through_graphql(people: dict[str, Any]) -> None:
    p = people
    raised = await _raise(p)
    request_id = raised["need"]["helpRequestId"]
    # her social worker sees the need and the request (core: sw serves c1)
    node = (await p["sw"](NEEDS, {"id": p["mother"]}))["r"]
    assert node["urgentNeeds"] == [
        {"what": "婴儿配方奶粉（1段）", "quantity": 6, "beneficiary": "INFANT", "helpRequest": {"id": request_id}}
    ]
    # maternal-care staff see the need; the request is core's to show, and core does not (staff serve c2 only)
    node = (await p["staff"](NEEDS, {"id": p["mother"]}))["r"]
    assert [(n["what"], n["helpRequest"]) for n in node["urgentNeeds"]] == [("婴儿配方奶粉（1段）", None)]
    # the administrator sees the need and the request (core: every request of the organisation)
    node = (await p["admin"](NEEDS, {"id": p["mother"]}))["r"]
    assert [n["helpRequest"] for n in node["urgentNeeds"]] == [{"id": request_id}]
    for who in ("sw2", "counselor", "volunteer", "head", "sw_b", "admin_b"):
        assert (await p[who](NEEDS, {"id": p["mother"]}))["r"] is None, who


async def test_the_link_is_append_only_and_another_organisation_sees_no_row(
    people: dict[str, Any], kit: Harness
) -> None:
    p = people
    await _raise(p)
    # another organisation's transaction reads no link at all (row-level security), its own organisation does
    for org, expected in ((p["org_b"], 0), (p["org_a"], 1)):
        async with kit.service(Viewer(label="x", role="organization_admin", organization_id=org)) as ctx:
            assert await ctx.session.scalar(select(func.count()).select_from(UrgentNeed)) == expected
    # and the link is never rewritten
    with pytest.raises(DBAPIError):
        await _update_links(kit, Viewer(label="x", role="organization_admin", organization_id=p["org_a"]))


async def _update_links(kit: Harness, viewer: Viewer) -> None:
    async with kit.service(viewer) as ctx:
        await ctx.session.execute(text("UPDATE maternal_care_urgent_needs SET quantity = 1"))


def test_categories_and_urgencies_are_cores() -> None:
    assert {c.value for c in MaternalCareNeedCategory} == {c.value for c in RequestCategory} == set(services.CATEGORIES)
    assert {u.value for u in MaternalCareNeedUrgency} == {u.value for u in Urgency} == set(services.URGENCIES)


async def test_the_database_holds_the_link(people: dict[str, Any], kit: Harness) -> None:
    """What no service writes, the database refuses anyway (each a schema mutation's target)."""
    p = people
    raised = await _raise(p)
    request_pk = _pk(raised["need"]["helpRequestId"])
    mother_pk = _pk(p["mother"])
    other_request = await kit.help_request(p["c1"])
    b_request = await kit.help_request(p["c_b"])
    admin_a = Viewer(label="x", role="organization_admin", organization_id=p["org_a"])
    good = {"mother_id": mother_pk, "beneficiary": "mother", "what": "奶粉", "quantity": 1, "raised_by": "x"}
    for bad in (
        {"help_request_id": request_pk},  # a request is linked once
        {"help_request_id": other_request, "quantity": 0},
        {"help_request_id": other_request, "quantity": 10_001},
        {"help_request_id": other_request, "beneficiary": "father"},
        {"help_request_id": b_request},  # another organisation's request
    ):
        with pytest.raises(DBAPIError):
            await _insert(kit, admin_a, good | bad)
    # positive control: a well-formed link is accepted
    await _insert(kit, admin_a, good | {"help_request_id": other_request})


async def _insert(kit: Harness, viewer: Viewer, values: dict[str, Any]) -> None:
    async with kit.service(viewer) as ctx:
        ctx.session.add(UrgentNeed(**values))
        await ctx.session.flush()
