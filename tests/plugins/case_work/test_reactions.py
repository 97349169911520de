"""Casework's reactions (plugins/case_work/reactions.py), through the real plugin host and the GraphQL endpoint:
a counseling risk flag opens a case for the social worker serving the resident's community (or joins the
resident's open case), exactly once however often the event comes; what nobody can take waits in the intake
queue that supervisors turn into cases; a help request tagged for casework opens a case when verified (at once
when verified already); refusals write nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

import core
import plugins.case_work.plugin as case_work_plugin
from core import migrate
from core.database import create_engine, database_url_for, drop_database, ensure_database
from core.models import Consent, Notification, Referral
from core.plugins import build_plugin_host
from core.services import communities, help_requests
from core.services.context import Viewer
from core.vocab import LiaisonRole
from plugins.case_work import core_fields, reactions
from plugins.case_work import services as casework
from plugins.case_work.models import Case, Client, RiskChange, StageChange
from plugins.case_work.reaction_models import Intake, RequestTag
from plugins.counseling import services as counseling
from plugins.counseling.services import RiskRaised
from plugins.maternal_care.models import Pregnancy
from plugins.maternal_care.registry import services as maternal
from plugins.maternal_care.registry.services import MaternalRiskRaised
from schema import api as gql
from yunshegong.testing import Client as GqlClient
from yunshegong.testing import Harness

GRANT = """mutation($a: ID!) { r: grantPluginRole(input: {accountId: $a, role: "case_work.supervisor"}) {
  errors { code } } }"""
INTAKES = """query($s: [CaseWorkIntakeStatus!]) { r: caseWorkIntakes(filter: {statuses: $s}) {
  nodes { id status queueReason sourceKind riskLevel residentName case { id } } } }"""
FROM_INTAKE = """mutation($input: CaseWorkOpenCaseFromIntakeInput!) { r: caseWorkOpenCaseFromIntake(input: $input) {
  intake { status case { id stage socialWorker { name } supervisor { name } } } errors { code field } } }"""
TAG = """mutation($input: CaseWorkTagHelpRequestInput!) { r: caseWorkTagHelpRequest(input: $input) {
  tag { category riskLevel case { id stage sourceKind client { name } socialWorker { name } } }
  errors { code field } } }"""
COUNSELING = frozenset({"counseling.manage"})
CASEWORK = frozenset({"case_work.manage"})
SUPERVISING = frozenset({"case_work.manage", "case_work.supervise"})


@pytest.fixture(autouse=True)
def wired(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Until plugins/case_work/plugin.py wires the reactions (the lead's part), the tests wire them the same
    way: the hook on the plugin's module, the GraphQL parts merged into its register_graphql."""
    if getattr(case_work_plugin, "on_event", None) is reactions.on_event:
        yield
        return
    from strawberry.tools import merge_types

    original = case_work_plugin.register_graphql
    base = original()
    query, mutation, types, type_fields = core_fields.graphql_parts()

    @core.hookimpl
    def register_graphql() -> core.GraphQLContribution:
        return core.GraphQLContribution(
            query=merge_types("CaseWorkQuery", (base.query, query)),  # type: ignore[arg-type]
            mutation=merge_types("CaseWorkMutation", (base.mutation, mutation)),  # type: ignore[arg-type]
            types=(*base.types, *types),
            type_fields={**base.type_fields, **type_fields},
        )

    monkeypatch.setattr(case_work_plugin, "register_graphql", register_graphql)
    monkeypatch.setattr(case_work_plugin, "on_event", reactions.on_event, raising=False)
    yield


def pk(global_id: str, type_name: str = "Account") -> int:
    return gql.decode_id(global_id, type_name, ("id",))


@dataclass
class World:
    kit: Harness
    p: dict[str, GqlClient] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)

    def viewer(self, who: str, role: str, permissions: frozenset[str], org: str = "a", **scope: int) -> Viewer:
        return Viewer(
            label=who,
            account_id=pk(self.p[who].account_id or "") if who in self.p else None,
            organization_id=self.ids[f"org_{org}"],
            role=role,
            extra_permissions=permissions,
            **scope,
        )

    def counselor(self, org: str = "a") -> Viewer:
        return self.viewer(f"counselor_{org}", "counselor", COUNSELING, org)

    async def client(
        self, community: str, name: str = "来访者", phone: str = "13600001111", org: str = "a", casework: bool = True
    ) -> Any:
        """A counseling client (a core resident of `community`), who consented to casework learning of her
        (`casework`: a consent to case_work covering summary and health)."""
        async with self.kit.service(self.counselor(org)) as ctx:
            client = await counseling.register_client(
                ctx, name=name, phone=phone, consent=True, community_id=self.ids[community]
            )
        if casework:
            await self.consent(client.resident_id, org=org)
        return client

    async def consent(
        self,
        resident_id: int,
        target: str = "case_work",
        scopes: tuple[str, ...] = ("summary", "health"),
        org: str = "a",
    ) -> int:
        """The resident's consent to `target` of her organisation. Written as a row: casework is no referral
        target (yet), so core's record_consent does not take it as a target."""
        async with self.kit.service() as ctx:
            consent = Consent(
                organization_id=self.ids[f"org_{org}"],
                resident_id=resident_id,
                scopes=list(scopes),
                target_kind="plugin",
                target=target,
                target_organization_id=self.ids[f"org_{org}"],
                purpose="转介跟进",
                valid_from=ctx.now() - timedelta(minutes=1),
                recorded_by="test",
            )
            ctx.session.add(consent)
            await ctx.session.flush()
            return int(consent.id)

    async def flag(self, client_id: int, severity: str = "high", org: str = "a") -> int:
        """A counselor raises a risk flag (the event goes through the plugin host, as in the service)."""
        async with self.kit.service(self.counselor(org)) as ctx:
            flag = await counseling.flag_risk(ctx, client_id, severity, "情绪低落")
            assert flag is not None
            return int(flag.id)

    async def rows(self, model: type, **where: Any) -> list[Any]:
        async with self.kit.service() as ctx:
            stmt = select(model).order_by(model.id)  # type: ignore[attr-defined]
            for key, value in where.items():
                stmt = stmt.where(getattr(model, key) == value)
            return list((await ctx.session.scalars(stmt)).all())

    async def count(self, model: type) -> int:
        async with self.kit.service() as ctx:
            return int(await ctx.session.scalar(select(func.count()).select_from(model)) or 0)

    async def counts(self) -> tuple[int, ...]:
        return tuple([await self.count(m) for m in (Intake, RequestTag, Case, Client, StageChange)])


@pytest.fixture
async def world(kit: Harness) -> World:
    return await build_world(kit)


async def build_world(kit: Harness) -> World:
    """Organisation A (casework and counseling): community c1 served by sw (its liaison seat), c2 served by
    nobody; sup holds the supervisor role; sw2 is another social worker. Organisation B: its own admin and
    social worker, no supervisor."""
    w = World(kit)
    for org in ("a", "b"):
        w.ids[f"org_{org}"] = await kit.organization(plugins=["case_work", "counseling"])
    for key, org in (("c1", "a"), ("c2", "a"), ("c3", "b")):
        w.ids[key] = await kit.community(w.ids[f"org_{org}"])
    people = (
        ("sw", "social_worker", "a"),
        ("sw2", "social_worker", "a"),
        ("sup", "social_worker", "a"),
        ("admin", "organization_admin", "a"),
        ("volunteer", "volunteer", "a"),
        ("head", "community_head", "a"),
        ("counselor_a", "counselor", "a"),
        ("admin_b", "organization_admin", "b"),
        ("sw_b", "social_worker", "b"),
        ("counselor_b", "counselor", "b"),
    )
    for key, role, org in people:
        scope: dict[str, int] = {"community_id": w.ids["c1"]} if role == "community_head" else {}
        if role in ("social_worker", "counselor", "volunteer"):
            scope["volunteer_id"] = w.ids[f"v_{key}"] = await kit.volunteer(w.ids[f"org_{org}"])
        w.p[key] = await kit.sign_in(role, w.ids[f"org_{org}"], **scope)
        w.ids[key] = pk(w.p[key].account_id or "")
    async with kit.service() as ctx:
        await communities.add_liaison(ctx, w.ids["c1"], w.ids["v_sw"], LiaisonRole.SOCIAL_WORKER)
        await communities.add_liaison(ctx, w.ids["c3"], w.ids["v_sw_b"], LiaisonRole.SOCIAL_WORKER)
    granted = await w.p["admin"](GRANT, {"a": w.p["sup"].account_id})
    assert granted["r"]["errors"] == []
    return w


# -- counseling risk flags ---------------------------------------------------------------------------------------


async def test_a_risk_flag_opens_a_case_for_the_worker_serving_the_community_once(world: World) -> None:
    # given a counseling client living in c1, which sw serves
    w = world
    client = await w.client("c1")
    # when a counselor raises a high risk flag
    flag_id = await w.flag(client.id)
    # then a case is open at intake for that resident: sw's, supervised by sup, high risk, from the flag
    cases = await w.rows(Case)
    assert [(c.social_worker_account_id, c.supervisor_account_id, c.risk_level, c.stage) for c in cases] == [
        (w.ids["sw"], w.ids["sup"], "high", "intake")
    ]
    assert (cases[0].source_kind, cases[0].source_id, cases[0].category) == (
        "counseling_risk_flag",
        flag_id,
        "mental_health",
    )
    clients = await w.rows(Client, id=cases[0].client_id)
    assert clients[0].resident_id == client.resident_id
    # and its opening is recorded as the system's, not the counselor's
    history = await w.rows(StageChange, case_id=cases[0].id)
    assert [(h.seq, h.to_stage, h.actor_account_id, h.actor) for h in history] == [
        (0, "intake", None, reactions.ACTORS["counseling_risk_flag"])
    ]
    # and the intake says so, and sw is told (once)
    intakes = await w.rows(Intake)
    assert [(i.source_kind, i.source_id, i.status, i.case_id) for i in intakes] == [
        ("counseling_risk_flag", flag_id, "opened", cases[0].id)
    ]
    told = await w.rows(Notification, account_id=w.ids["sw"])
    assert [n.kind for n in told] == ["case_work.intake_opened"]

    # when the same event is delivered again (a retry)
    event = RiskRaised(
        organization_id=w.ids["org_a"],
        flag_id=flag_id,
        client_id=client.id,
        severity="high",
        source="counselor",
        resident_id=client.resident_id,
    )
    async with w.kit.service(w.counselor()) as ctx:
        await ctx.publish(event)
    # then nothing more is opened, queued or told
    assert (await w.count(Case), await w.count(Intake), len(await w.rows(Notification, account_id=w.ids["sw"]))) == (
        1,
        1,
        1,
    )


async def test_a_flag_on_a_resident_with_an_open_case_joins_it_and_raises_its_risk(world: World) -> None:
    # given a medium-risk flag that opened a case for a resident of c1
    w = world
    client = await w.client("c1")
    await w.flag(client.id, "medium")
    (case,) = await w.rows(Case)
    # when the counselor raises a high flag of another source for the same client
    async with w.kit.service(w.counselor()) as ctx:
        second = await counseling.raise_flag(ctx, client.id, "high", "mood_trend", "连续低落")
    assert second is not None
    # then no second case: the flag is attached to the open one, whose risk is raised (with its history)
    assert await w.count(Case) == 1
    intakes = await w.rows(Intake, source_id=second.id)
    assert [(i.status, i.case_id) for i in intakes] == [("attached", case.id)]
    assert [c.risk_level for c in await w.rows(Case)] == ["high"]
    changes = await w.rows(RiskChange, case_id=case.id)
    assert [(r.from_level, r.to_level, r.actor_account_id) for r in changes] == [("medium", "high", None)]


async def test_a_flag_nobody_can_take_waits_in_the_queue_until_a_supervisor_opens_it(world: World) -> None:
    # given a client in c2, which no social worker serves
    w = world
    client = await w.client("c2", name="无人服务")
    # when a flag is raised
    flag_id = await w.flag(client.id, "medium")
    # then no case: the flag waits in the intake queue, saying why
    assert await w.count(Case) == 0
    queued = {"QUEUED"}
    seen = await w.p["sup"](INTAKES, {"s": list(queued)})
    (item,) = seen["r"]["nodes"]
    assert (item["status"], item["queueReason"], item["sourceKind"], item["riskLevel"], item["residentName"]) == (
        "QUEUED",
        "NO_SOCIAL_WORKER",
        "COUNSELING_RISK_FLAG",
        "MEDIUM",
        "无人服务",
    )
    # and the administrator sees it; nobody else does (another organisation: an empty queue)
    assert [n["id"] for n in (await w.p["admin"](INTAKES))["r"]["nodes"]] == [item["id"]]
    assert (await w.p["admin_b"](INTAKES))["r"]["nodes"] == []
    for who in ("sw", "sw2", "volunteer", "head", "counselor_a"):
        body = await w.p[who].raw(INTAKES)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", who
    # when sw (no supervisor) or B's administrator tries to open it: refused, nothing written
    before = await w.counts()
    request = {"input": {"id": item["id"], "socialWorkerId": w.p["sw2"].account_id, "category": "MENTAL_HEALTH"}}
    sw_try = await w.p["sw"].raw(FROM_INTAKE, request)
    assert sw_try["data"]["r"]["errors"][0]["code"] == "FORBIDDEN"
    b_try = await w.p["admin_b"](FROM_INTAKE, request | {"input": request["input"] | {"supervisorId": None}})
    assert b_try["r"]["errors"][0]["code"] == "NOT_FOUND"
    # and a supervisor naming a worker who is not a social worker: refused on that field, nothing written
    wrong = await w.p["sup"](FROM_INTAKE, {"input": request["input"] | {"socialWorkerId": w.p["admin"].account_id}})
    assert wrong["r"]["errors"] == [{"code": "INVALID_INPUT", "field": ["input", "socialWorkerId"]}]
    assert await w.counts() == before
    # when the supervisor opens it for sw2 (supervising it themselves)
    opened = await w.p["sup"](FROM_INTAKE, request)
    # then the case is sw2's, supervised by sup, and the intake is handled (once)
    assert opened["r"]["errors"] == []
    assert opened["r"]["intake"]["status"] == "OPENED"
    case = opened["r"]["intake"]["case"]
    assert case["stage"] == "INTAKE"
    (row,) = await w.rows(Case)
    assert (row.social_worker_account_id, row.supervisor_account_id, row.source_id) == (
        w.ids["sw2"],
        w.ids["sup"],
        flag_id,
    )
    (intake,) = await w.rows(Intake)
    assert (intake.status, intake.handled_by_account_id) == ("opened", w.ids["sup"])
    again = await w.p["sup"](FROM_INTAKE, request)
    assert again["r"]["errors"][0]["code"] == "INVALID_TRANSITION"
    assert await w.count(Case) == 1


async def test_without_a_supervisor_the_flag_is_queued(world: World) -> None:
    # given organisation B: c3 served by sw_b, but nobody holds the supervisor role
    w = world
    client = await w.client("c3", org="b")
    # when a flag is raised there
    await w.flag(client.id, org="b")
    # then it waits, for want of a supervisor
    (intake,) = await w.rows(Intake)
    assert (intake.status, intake.queue_reason, intake.organization_id) == ("queued", "no_supervisor", w.ids["org_b"])
    assert await w.count(Case) == 0


async def test_an_organisation_without_casework_hears_nothing(world: World) -> None:
    # given organisation A disabled casework
    w = world
    await w.kit.enable("case_work", w.ids["org_a"], enabled=False)
    client = await w.client("c1")
    # when a flag is raised; then the flag is counseling's only
    await w.flag(client.id)
    assert (await w.count(Intake), await w.count(Case)) == (0, 0)


# -- help requests tagged for casework ---------------------------------------------------------------------------


async def test_a_tagged_request_opens_a_case_when_verified_once(world: World) -> None:
    # given a submitted help request in c1, tagged for casework by sw (who serves c1, so sees it)
    w = world
    request_id = await w.kit.help_request(w.ids["c1"], requester_name="独居李奶奶", requester_phone="13800002222")
    tag = await w.p["sw"](
        TAG,
        {
            "input": {
                "helpRequestId": gql.encode_id("HelpRequest", request_id),
                "category": "ELDERLY_CARE",
                "riskLevel": "MEDIUM",
                "reason": "独居，需持续跟进",
            }
        },
    )
    assert tag["r"]["errors"] == []
    # then nothing opens before verification
    assert tag["r"]["tag"]["case"] is None
    assert await w.count(Case) == 0
    # when it is verified (by a platform coordinator of no organisation: not the tagger, no casework of A)
    async with w.kit.service() as ctx:
        await help_requests.verify(ctx, request_id)
    # then a case is open for the requester, as a new resident of c1, assigned to the tagging worker
    (case,) = await w.rows(Case)
    assert (case.source_kind, case.source_id, case.category, case.risk_level, case.social_worker_account_id) == (
        "help_request",
        request_id,
        "elderly_care",
        "medium",
        w.ids["sw"],
    )
    async with w.kit.service() as ctx:
        client = await ctx.session.get(Client, case.client_id)
        assert client is not None
        resident = await core.residents.get_resident(ctx, client.resident_id)
    assert (resident.name, resident.phone, resident.community_id) == ("独居李奶奶", "13800002222", w.ids["c1"])
    # and tagging it again is refused, nothing written
    before = await w.counts()
    again = await w.p["admin"](
        TAG,
        {"input": {"helpRequestId": gql.encode_id("HelpRequest", request_id), "category": "OTHER", "riskLevel": "LOW"}},
    )
    assert again["r"]["errors"] == [{"code": "ALREADY_EXISTS", "field": ["input", "helpRequestId"]}]
    assert await w.counts() == before


async def test_tagging_a_verified_request_opens_its_case_at_once(world: World) -> None:
    # given a help request in c1, verified already
    w = world
    request_id = await w.kit.help_request(w.ids["c1"])
    async with w.kit.service() as ctx:
        await help_requests.verify(ctx, request_id)
    # when the administrator tags it (not a social worker: the worker serving c1 takes it)
    body = await w.p["admin"](
        TAG,
        {
            "input": {
                "helpRequestId": gql.encode_id("HelpRequest", request_id),
                "category": "POVERTY",
                "riskLevel": "LOW",
            }
        },
    )
    # then the case is open at once, sw's, and the tag shows it
    assert body["r"]["errors"] == []
    shown = body["r"]["tag"]["case"]
    assert (shown["stage"], shown["sourceKind"], shown["client"]["name"]) == ("INTAKE", "HELP_REQUEST", "王阿姨")
    (case,) = await w.rows(Case)
    assert (case.social_worker_account_id, case.supervisor_account_id) == (w.ids["sw"], w.ids["sup"])


async def test_who_may_tag_a_request(world: World) -> None:
    # given requests of A (one rejected) and of B
    w = world
    mine = gql.encode_id("HelpRequest", await w.kit.help_request(w.ids["c1"]))
    theirs = gql.encode_id("HelpRequest", await w.kit.help_request(w.ids["c3"]))
    rejected_id = await w.kit.help_request(w.ids["c1"])
    async with w.kit.service() as ctx:
        await help_requests.reject(ctx, rejected_id, "重复")
    rejected = gql.encode_id("HelpRequest", rejected_id)
    before = await w.counts()

    async def code(who: str, request: str) -> str | None:
        body = await w.p[who].raw(TAG, {"input": {"helpRequestId": request, "category": "OTHER", "riskLevel": "LOW"}})
        if body.get("errors"):
            return str(body["errors"][0]["extensions"]["code"])
        errors = body["data"]["r"]["errors"]
        return errors[0]["code"] if errors else None

    # when callers without casework, another organisation, or a closed request are tried: refused
    assert await code("volunteer", mine) == "FORBIDDEN"
    assert await code("head", mine) == "FORBIDDEN"
    assert await code("counselor_a", mine) == "FORBIDDEN"
    assert await code("sw_b", mine) == "NOT_FOUND"
    assert await code("sw2", mine) == "NOT_FOUND"  # serves no community of the request: does not see it
    assert await code("sw", theirs) == "NOT_FOUND"
    assert await code("sw", rejected) == "INVALID_TRANSITION"
    # then nothing was written
    assert await w.counts() == before
    # and a social worker of A may (positive control)
    assert await code("sw", mine) is None


async def test_a_flag_casework_refuses_to_take_still_stands_and_waits_as_refused(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a counseling client in c1 (which sw serves), and casework refusing to open any case
    w = world
    client = await w.client("c1")

    async def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise core.DomainError("INVALID_INPUT", "refused for the test")

    monkeypatch.setattr(reactions.services, "open_case", refuse)
    # when a counselor raises a risk flag
    flag_id = await w.flag(client.id)
    # then the flag stands (the counselor's change is not undone by casework's answer) ...
    assert flag_id > 0
    # ... no case opened, and the intake waits for a supervisor, saying casework refused
    assert await w.count(Case) == 0
    intakes = await w.rows(Intake)
    assert [(i.source_id, i.status, i.queue_reason, i.case_id) for i in intakes] == [
        (flag_id, "queued", "refused", None)
    ]


# -- maternal-care high-risk flags (maternal_care.risk_raised) ----------------------------------------------------
# The tests use maternal care's registry to raise real grades (tests may import both plugins; casework may not).

MATERNAL = frozenset({"maternal_care.manage"})


async def _open_case(w: World, resident_id: int, *, worker: str = "sw", risk_level: str = "medium") -> int:
    """An open poverty case of `resident_id`, held by `worker`, opened by the administrator."""
    async with w.kit.service(w.viewer("admin", "organization_admin", CASEWORK)) as ctx:
        case = await casework.open_case(
            ctx,
            category="poverty",
            risk_level=risk_level,
            supervisor_account_id=w.ids["sup"],
            social_worker_account_id=w.ids[worker],
            resident_id=resident_id,
        )
        return case.id


async def _mother(
    w: World, community: str = "c1", worker: str = "sw", name: str = "孕妇王女士", casework: bool = True
) -> tuple[int, int]:
    """A mother of A living in `community`, assigned to `worker`, with an ongoing green pregnancy, who consented
    to casework learning of her health (`casework`): (mother id, pregnancy id)."""
    async with w.kit.service(w.viewer(worker, "social_worker", MATERNAL)) as ctx:
        mother = await maternal.register_mother(
            ctx,
            consent=True,
            social_worker_account_id=w.ids[worker],
            name=name,
            phone="13700009001",
            community_id=w.ids[community],
        )
        pregnancy = await maternal.register_pregnancy(ctx, mother.id, lmp=maternal.today(ctx) - timedelta(weeks=20))
        w.ids[f"resident_of_{mother.id}"] = mother.resident_id
    if casework:
        await w.consent(mother.resident_id)
    return int(mother.id), int(pregnancy.id)


async def _grade(
    w: World,
    pregnancy_id: int,
    colour: str,
    infectious: bool = False,
    who: str = "sw",
    refer_to: tuple[str, ...] | None = None,
) -> None:
    async with w.kit.service(w.viewer(who, "social_worker", MATERNAL)) as ctx:
        await maternal.change_risk(
            ctx,
            pregnancy_id,
            maternal.Grade(colour, infectious, w.ids[who]),
            "产检：妊娠期高血压",
            refer_to=refer_to,
        )


@pytest.fixture
async def mworld(kit: Harness) -> World:
    w = await build_world(kit)
    await kit.enable("maternal_care", w.ids["org_a"])
    return w


async def test_a_red_grade_refers_the_mother_to_casework_once(mworld: World) -> None:
    # given a mother living in c1 (which sw serves), green
    w = mworld
    mother_id, pregnancy_id = await _mother(w)
    # when her pregnancy is graded red
    await _grade(w, pregnancy_id, "red")
    # then a maternal case is open at intake for her resident: sw's, supervised by sup, high risk, from the pregnancy
    cases = await w.rows(Case)
    assert [
        (c.category, c.risk_level, c.stage, c.social_worker_account_id, c.supervisor_account_id) for c in cases
    ] == [("maternal", "high", "intake", w.ids["sw"], w.ids["sup"])]
    assert (cases[0].source_kind, cases[0].source_id) == ("maternal_risk", pregnancy_id)
    (client,) = await w.rows(Client, id=cases[0].client_id)
    assert client.resident_id == w.ids[f"resident_of_{mother_id}"]
    history = await w.rows(StageChange, case_id=cases[0].id)
    assert [(h.to_stage, h.actor_account_id, h.actor) for h in history] == [
        ("intake", None, reactions.ACTORS["maternal_risk"])
    ]
    assert [(i.source_kind, i.source_id, i.status, i.case_id) for i in await w.rows(Intake)] == [
        ("maternal_risk", pregnancy_id, "opened", cases[0].id)
    ]
    assert [n.kind for n in await w.rows(Notification, account_id=w.ids["sw"])] == ["case_work.intake_opened"]
    # when the same event is delivered again (a retry)
    event = MaternalRiskRaised(
        organization_id=w.ids["org_a"],
        mother_id=mother_id,
        pregnancy_id=pregnancy_id,
        resident_id=w.ids[f"resident_of_{mother_id}"],
        colour="red",
        infectious=False,
    )
    before = await w.counts()
    async with w.kit.service(w.viewer("sw", "social_worker", MATERNAL)) as ctx:
        await ctx.publish(event)
    # then nothing more is opened, queued, changed or told
    assert await w.counts() == before
    assert await w.rows(RiskChange, case_id=cases[0].id) == []
    assert len(await w.rows(Notification, account_id=w.ids["sw"])) == 1


async def test_orange_then_red_is_one_case_whose_risk_follows_the_grade(mworld: World) -> None:
    # given a mother graded orange: a medium maternal case
    w = mworld
    _, pregnancy_id = await _mother(w)
    await _grade(w, pregnancy_id, "orange")
    (case,) = await w.rows(Case)
    assert (case.category, case.risk_level) == ("maternal", "medium")
    # when the same pregnancy is graded red
    await _grade(w, pregnancy_id, "red")
    # then still one case and one intake; the case's risk is raised, with casework's history (the system's)
    assert (await w.count(Case), await w.count(Intake)) == (1, 1)
    (case,) = await w.rows(Case)
    assert case.risk_level == "high"
    changes = await w.rows(RiskChange, case_id=case.id)
    assert [(r.from_level, r.to_level, r.actor_account_id) for r in changes] == [("medium", "high", None)]
    (intake,) = await w.rows(Intake)
    assert intake.risk_level == "high"


async def test_purple_alone_refers_at_medium_and_a_grade_below_orange_refers_nothing(mworld: World) -> None:
    # given a mother
    w = mworld
    mother_id, pregnancy_id = await _mother(w)
    # when an event reports a yellow grade (not high: the registry announces none, casework ignores one)
    async with w.kit.service(w.viewer("sw", "social_worker", MATERNAL)) as ctx:
        await ctx.publish(
            MaternalRiskRaised(
                organization_id=w.ids["org_a"],
                mother_id=mother_id,
                pregnancy_id=pregnancy_id,
                resident_id=w.ids[f"resident_of_{mother_id}"],
                colour="yellow",
                infectious=False,
            )
        )
    # then nothing
    assert (await w.count(Intake), await w.count(Case)) == (0, 0)
    # when the pregnancy is flagged purple (an infectious disease) while green
    await _grade(w, pregnancy_id, "green", infectious=True)
    # then a medium maternal case
    assert [(c.category, c.risk_level) for c in await w.rows(Case)] == [("maternal", "medium")]


async def test_the_mothers_assigned_social_worker_takes_the_case_when_the_event_names_her(mworld: World) -> None:
    # given a mother in c1 (sw serves it) assigned to sw2
    w = mworld
    mother_id, pregnancy_id = await _mother(w, worker="sw2")
    resident_id = w.ids[f"resident_of_{mother_id}"]

    def event(pregnancy: int, worker: int | None) -> MaternalRiskRaised:
        return MaternalRiskRaised(
            organization_id=w.ids["org_a"],
            mother_id=mother_id,
            pregnancy_id=pregnancy,
            resident_id=resident_id,
            colour="red",
            infectious=False,
            social_worker_account_id=worker,
        )

    # when the raise names sw2 as her social worker
    async with w.kit.service(w.viewer("sw2", "social_worker", MATERNAL)) as ctx:
        await ctx.publish(event(pregnancy_id, w.ids["sw2"]))
    # then the case is sw2's, not the community's worker's
    assert [c.social_worker_account_id for c in await w.rows(Case)] == [w.ids["sw2"]]


async def test_a_named_worker_who_cannot_take_it_queues_the_referral_and_tells_nobody(mworld: World) -> None:
    # given a mother in c1 (sw serves it) and events naming someone who is no social worker of A (B's, A's admin)
    w = mworld
    mother_id, _ = await _mother(w)
    told = await w.rows(Notification)
    for n, worker in enumerate((w.ids["sw_b"], w.ids["admin"]), start=1):
        async with w.kit.service(w.viewer("sw", "social_worker", MATERNAL)) as ctx:
            await ctx.publish(
                MaternalRiskRaised(
                    organization_id=w.ids["org_a"],
                    mother_id=mother_id,
                    pregnancy_id=10_000 + n,  # two raises of two pregnancies: two intakes
                    resident_id=w.ids[f"resident_of_{mother_id}"],
                    colour="red",
                    infectious=False,
                    social_worker_account_id=worker,
                )
            )
    # then no case (not the community's worker's either: she is not his to learn of): both wait for a supervisor
    assert await w.count(Case) == 0
    assert [(i.status, i.queue_reason) for i in await w.rows(Intake)] == [("queued", "no_social_worker")] * 2
    assert len(await w.rows(Notification)) == len(told)


async def _unassigned_raise(w: World, mother_id: int, pregnancy_id: int) -> None:
    """The registry's event for a mother with no social worker of her own (one a referral registered, accepted by
    staff), graded red."""
    async with w.kit.service(w.viewer("sw", "social_worker", MATERNAL)) as ctx:
        await ctx.publish(
            MaternalRiskRaised(
                organization_id=w.ids["org_a"],
                mother_id=mother_id,
                pregnancy_id=pregnancy_id,
                resident_id=w.ids[f"resident_of_{mother_id}"],
                colour="red",
                infectious=False,
            )
        )


async def test_a_mother_without_her_own_social_worker_is_not_referred_to_the_communitys(mworld: World) -> None:
    # given a mother living in c1, which sw serves, with no social worker of her own, graded red
    w = mworld
    mother_id, pregnancy_id = await _mother(w)
    told = await w.rows(Notification, account_id=w.ids["sw"])
    await _unassigned_raise(w, mother_id, pregnancy_id)
    # then no case for sw, who is told nothing: her referral waits for a supervisor
    assert await w.count(Case) == 0
    assert [(i.status, i.queue_reason) for i in await w.rows(Intake)] == [("queued", "no_social_worker")]
    assert len(await w.rows(Notification, account_id=w.ids["sw"])) == len(told)


async def test_a_mother_nobody_serves_waits_in_the_queue(mworld: World) -> None:
    # given a mother living in c2, which no social worker serves, with no social worker of her own, graded red
    w = mworld
    mother_id, pregnancy_id = await _mother(w, community="c2")
    await _unassigned_raise(w, mother_id, pregnancy_id)
    # then no case: her referral waits for a supervisor, saying why
    assert await w.count(Case) == 0
    assert [(i.source_kind, i.status, i.queue_reason, i.risk_level, i.resident_id) for i in await w.rows(Intake)] == [
        ("maternal_risk", "queued", "no_social_worker", "high", w.ids[f"resident_of_{mother_id}"])
    ]


async def test_a_red_grade_goes_to_the_mothers_own_social_worker(mworld: World) -> None:
    # given a mother of c1 (which sw serves) assigned to sw2
    w = mworld
    _, pregnancy_id = await _mother(w, worker="sw2")
    # when sw2 grades her red
    await _grade(w, pregnancy_id, "red", who="sw2")
    # then the case is sw2's
    assert [c.social_worker_account_id for c in await w.rows(Case)] == [w.ids["sw2"]]


async def test_a_raise_for_a_resident_with_an_open_case_joins_it(mworld: World) -> None:
    # given a mother of c1 whose resident has an open medium case already (opened by the administrator)
    w = mworld
    mother_id, pregnancy_id = await _mother(w)
    case_id = await _open_case(w, w.ids[f"resident_of_{mother_id}"])
    # when her pregnancy is graded red
    await _grade(w, pregnancy_id, "red")
    # then no second case: the referral joins the open one and raises its risk
    assert await w.count(Case) == 1
    assert [(i.status, i.case_id) for i in await w.rows(Intake)] == [("attached", case_id)]
    assert [c.risk_level for c in await w.rows(Case)] == ["high"]


async def test_a_raise_for_a_resident_whose_open_case_is_another_workers_does_not_join_it(mworld: World) -> None:
    # given a mother of c1 assigned to sw whose resident has an open medium case held by sw2
    w = mworld
    mother_id, pregnancy_id = await _mother(w)
    case_id = await _open_case(w, w.ids[f"resident_of_{mother_id}"], worker="sw2")
    told = await w.rows(Notification, account_id=w.ids["sw2"])
    # when her pregnancy is graded red
    await _grade(w, pregnancy_id, "red")
    # then sw2's case learns nothing (no join, no risk raised, no notice): the referral waits for a supervisor
    assert [(c.id, c.risk_level) for c in await w.rows(Case)] == [(case_id, "medium")]
    assert await w.rows(RiskChange, case_id=case_id) == []
    assert [(i.status, i.queue_reason, i.case_id) for i in await w.rows(Intake)] == [("queued", "refused", None)]
    assert len(await w.rows(Notification, account_id=w.ids["sw2"])) == len(told)


async def test_a_later_raise_after_the_case_closed_is_referred_again(mworld: World) -> None:
    # given a mother graded orange: a maternal case of sw, ended since as not opened
    w = mworld
    _, pregnancy_id = await _mother(w)
    await _grade(w, pregnancy_id, "orange")
    (first,) = await w.rows(Case)
    async with w.kit.service(w.viewer("sw", "social_worker", CASEWORK)) as ctx:
        await casework.advance(ctx, first.id, "not_opened", "家属拒绝")
    # when the same pregnancy is graded red
    await _grade(w, pregnancy_id, "red")
    # then a new high maternal case of sw from the pregnancy, the closed one left as it was, and sw told again
    cases = await w.rows(Case)
    assert [(c.id == first.id, c.stage, c.risk_level, c.social_worker_account_id) for c in cases] == [
        (True, "not_opened", "medium", w.ids["sw"]),
        (False, "intake", "high", w.ids["sw"]),
    ]
    assert (cases[1].source_kind, cases[1].source_id) == ("maternal_risk", pregnancy_id)
    assert [(i.status, i.case_id, i.risk_level) for i in await w.rows(Intake)] == [("opened", cases[1].id, "high")]
    kinds = [n.kind for n in await w.rows(Notification, account_id=w.ids["sw"])]
    assert kinds.count("case_work.intake_opened") == 2


async def test_a_raise_casework_refuses_stands_and_waits_as_refused(
    mworld: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a mother of c1, and casework refusing to open any case
    w = mworld
    _, pregnancy_id = await _mother(w)

    async def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise core.DomainError("INVALID_INPUT", "refused for the test")

    monkeypatch.setattr(reactions.services, "open_case", refuse)
    # when she is graded red
    await _grade(w, pregnancy_id, "red")
    # then the grade stands, and the referral waits, saying casework refused
    assert [p.risk_colour for p in await w.rows(Pregnancy, id=pregnancy_id)] == ["red"]
    assert [(i.status, i.queue_reason) for i in await w.rows(Intake)] == [("queued", "refused")]
    assert await w.count(Case) == 0


async def test_an_organisation_without_casework_hears_no_maternal_raise(mworld: World) -> None:
    # given A disabled casework
    w = mworld
    await w.kit.enable("case_work", w.ids["org_a"], enabled=False)
    _, pregnancy_id = await _mother(w)
    # when a pregnancy is graded red; then the grade is maternal care's only
    await _grade(w, pregnancy_id, "red")
    assert (await w.count(Intake), await w.count(Case)) == (0, 0)


def test_casework_knows_maternal_care_only_by_the_events_name() -> None:
    # Casework must not import maternal care (plugins never import each other).
    from pathlib import Path

    root = Path(reactions.__file__).parent
    offenders = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if "import plugins.maternal_care" in p.read_text() or "from plugins.maternal_care" in p.read_text()
    ]
    assert offenders == []


async def test_a_queued_maternal_referral_shows_in_the_queue_and_becomes_a_case(mworld: World) -> None:
    # given a mother of c2 (nobody serves it, nor has she a social worker of her own) graded red: her referral waits
    w = mworld
    mother_id, pregnancy_id = await _mother(w, community="c2")
    await _unassigned_raise(w, mother_id, pregnancy_id)
    # when the supervisor lists the queue
    (item,) = (await w.p["sup"](INTAKES, {"s": ["QUEUED"]}))["r"]["nodes"]
    # then it is there, from a maternal-care risk, high, waiting for a social worker
    assert (item["sourceKind"], item["riskLevel"], item["queueReason"]) == ("MATERNAL_RISK", "HIGH", "NO_SOCIAL_WORKER")
    # when the supervisor opens it as a maternal case for sw2
    opened = await w.p["sup"](
        FROM_INTAKE, {"input": {"id": item["id"], "socialWorkerId": w.p["sw2"].account_id, "category": "MATERNAL"}}
    )
    # then the case is sw2's, from the pregnancy
    assert opened["r"]["errors"] == []
    (case,) = await w.rows(Case)
    assert (case.social_worker_account_id, case.category, case.source_kind, case.source_id) == (
        w.ids["sw2"],
        "maternal",
        "maternal_risk",
        pregnancy_id,
    )


async def test_w012_downgrade_unlinks_the_maternal_cases_even_closed_and_drops_their_claims(server_url: str) -> None:
    # given a database at w012 with a maternal intake, an open maternal case and a closed one
    # (RLS is forced on the owner too, and the guard keeps closed cases as they are)
    name = "ysg_case_work_w012_downgrade"
    await drop_database(server_url, name)
    await ensure_database(server_url, name)
    engine = create_engine(database_url_for(server_url, name), pool_size=1)
    dirs = build_plugin_host(entry_points=False).migration_dirs()

    async def rows(statement: str) -> list[tuple[Any, ...]]:
        async with engine.begin() as conn:
            await conn.execute(text("SELECT set_config('app.role', 'platform_admin', true)"))
            return [tuple(r) for r in (await conn.execute(text(statement))).all()]

    try:
        await migrate.upgrade(engine, dirs, target="w012")
        async with engine.begin() as conn:
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            for statement in (
                "INSERT INTO organizations (id, name, kind) VALUES (1, 'A', 'agency')",
                "INSERT INTO accounts (id, username, display_name, password_hash, role, organization_id) "
                "VALUES (1, 'w', 'w', '-', 'social_worker', 1), (2, 's', 's', '-', 'social_worker', 1)",
                "INSERT INTO residents (id, name, organization_id) VALUES (1, '王女士', 1)",
                "INSERT INTO case_work_clients (id, resident_id, organization_id) VALUES (1, 1, 1)",
                "INSERT INTO case_work_cases (id, client_id, social_worker_account_id, supervisor_account_id, "
                "category, risk_level, stage, stage_seq, source_kind, source_id, organization_id) VALUES "
                "(1, 1, 1, 2, 'maternal', 'high', 'intake', 0, 'maternal_risk', 7, 1), "
                "(2, 1, 1, 2, 'maternal', 'medium', 'not_opened', 1, 'maternal_risk', 8, 1), "
                "(3, 1, 1, 2, 'other', 'low', 'intake', 0, NULL, NULL, 1)",
                "INSERT INTO case_work_intakes (id, source_kind, source_id, resident_id, risk_level, status, "
                "queue_reason, case_id, organization_id) VALUES "
                "(1, 'maternal_risk', 7, 1, 'high', 'opened', NULL, 1, 1), "
                "(2, 'maternal_risk', 9, 1, 'high', 'queued', 'no_social_worker', NULL, 1)",
            ):
                await conn.execute(text(statement))
        # when w012 is undone
        await migrate.downgrade(engine, "w011", dirs)
        # then the cases stay, unlinked from their pregnancies (the closed one too), and the claims are gone
        assert await rows("SELECT id, stage, source_kind, source_id FROM case_work_cases ORDER BY id") == [
            (1, "intake", None, None),
            (2, "not_opened", None, None),
            (3, "intake", None, None),
        ]
        assert await rows("SELECT count(*) FROM case_work_intakes") == [(0,)]
        # and the guard is on again
        assert await rows(
            "SELECT tgenabled::text FROM pg_trigger WHERE tgname = 'case_work_guard' "
            "AND tgrelid = 'case_work_cases'::regclass"
        ) == [("O",)]
        await migrate.upgrade(engine, dirs, target="w012")
    finally:
        await engine.dispose()
        await drop_database(server_url, name)


# -- where a raise is referred (refer_to), consent, transfers, the queue routed again -----------------------------


async def _referrals(w: World) -> list[tuple[Any, ...]]:
    return [
        (r.target_plugin, r.target_organization_id, r.source_plugin, r.source_kind, r.source_id, r.status)
        for r in await w.rows(Referral)
    ]


async def test_a_raise_naming_counseling_refers_her_to_counseling_under_her_consent_once(mworld: World) -> None:
    # given a mother of A (her own worker sw) who consented to counseling learning of her health
    w = mworld
    mother_id, pregnancy_id = await _mother(w, casework=False)
    resident_id = w.ids[f"resident_of_{mother_id}"]
    await w.consent(resident_id, target="counseling")
    # when sw grades her orange, referring her to counseling only
    await _grade(w, pregnancy_id, "orange", refer_to=("counseling",))
    # then counseling of A has a referral from the pregnancy (its intake), and casework heard nothing
    assert await _referrals(w) == [("counseling", w.ids["org_a"], "maternal_care", "pregnancy", pregnancy_id, "sent")]
    assert (await w.count(Intake), await w.count(Case)) == (0, 0)
    # and A's counselor receives it; B's counselor does not
    async with w.kit.service(w.counselor()) as ctx:
        received = await core.referrals.referrals_received(ctx)
        assert [r.resident_id for r in received.items] == [resident_id]
    async with w.kit.service(w.counselor("b")) as ctx:
        assert (await core.referrals.referrals_received(ctx)).items == []
    # when she is graded red later (and the event is delivered again)
    await _grade(w, pregnancy_id, "red", refer_to=("counseling",))
    # then no second referral while the first is live
    assert len(await _referrals(w)) == 1


async def test_a_raise_naming_both_refers_to_both(mworld: World) -> None:
    # given a mother of sw who consented to counseling
    w = mworld
    mother_id, pregnancy_id = await _mother(w, casework=False)
    await w.consent(w.ids[f"resident_of_{mother_id}"], target="counseling")
    # when she is graded red, referred to casework and counseling
    await _grade(w, pregnancy_id, "red", refer_to=("case_work", "counseling"))
    # then a case of her own worker, and a referral to counseling
    assert [(c.category, c.social_worker_account_id) for c in await w.rows(Case)] == [("maternal", w.ids["sw"])]
    assert [r[0] for r in await _referrals(w)] == ["counseling"]


async def test_a_named_service_switched_off_for_the_organisation_is_ignored(mworld: World) -> None:
    # given A switched counseling off; a mother who consented to counseling
    w = mworld
    await w.kit.enable("counseling", w.ids["org_a"], enabled=False)
    mother_id, pregnancy_id = await _mother(w)
    await w.consent(w.ids[f"resident_of_{mother_id}"], target="counseling")
    # when she is graded red, referred to casework and counseling
    await _grade(w, pregnancy_id, "red", refer_to=("case_work", "counseling"))
    # then the grade stands, casework takes her, counseling is not told
    assert [p.risk_colour for p in await w.rows(Pregnancy, id=pregnancy_id)] == ["red"]
    assert await w.count(Case) == 1
    assert await _referrals(w) == []


async def test_without_her_consent_counseling_learns_nothing_and_her_own_worker_is_told(mworld: World) -> None:
    # given a mother of sw with no consent to counseling (one to casework does not count)
    w = mworld
    mother_id, pregnancy_id = await _mother(w)
    # when she is graded red, referred to counseling
    await _grade(w, pregnancy_id, "red", refer_to=("counseling",))
    # then no referral; her own worker is told the referral waits for her consent (once)
    assert await _referrals(w) == []
    kinds = [n.kind for n in await w.rows(Notification)]
    assert kinds == ["counseling.referral_consent_required"]
    (told,) = await w.rows(Notification)
    assert told.account_id == w.ids["sw"]
    # when she consents, and a later raise names counseling again
    await w.consent(w.ids[f"resident_of_{mother_id}"], target="counseling")
    await _grade(w, pregnancy_id, "red", infectious=True, refer_to=("counseling",))
    # then the referral is sent
    assert [r[-1] for r in await _referrals(w)] == ["sent"]


async def test_her_own_worker_takes_the_case_without_a_consent_to_casework(mworld: World) -> None:
    # given a mother of sw who gave casework no consent: sw serves her already (her maternal record is his)
    w = mworld
    _, pregnancy_id = await _mother(w, casework=False)
    # when sw grades her red
    await _grade(w, pregnancy_id, "red")
    # then the case is sw's all the same
    assert [(c.category, c.social_worker_account_id) for c in await w.rows(Case)] == [("maternal", w.ids["sw"])]


async def test_without_her_consent_a_raise_nobody_of_hers_can_take_waits_as_consent_required(mworld: World) -> None:
    # given a mother with no social worker of her own and no consent to casework, graded red
    w = mworld
    mother_id, pregnancy_id = await _mother(w, casework=False)
    await _unassigned_raise(w, mother_id, pregnancy_id)
    # then no case: the referral waits, saying her consent is required
    (intake,) = await w.rows(Intake)
    assert (intake.status, intake.queue_reason, intake.case_id) == ("queued", "consent_required", None)
    assert await w.count(Case) == 0
    # when the supervisor opens it for sw2: refused, nothing written
    before = await w.counts()
    async with w.kit.service(w.viewer("sup", "social_worker", SUPERVISING)) as ctx:
        with pytest.raises(core.DomainError) as refused:
            await reactions.open_from_intake(ctx, intake.id, social_worker_account_id=w.ids["sw2"], category="maternal")
    assert refused.value.code == "CONSENT_REQUIRED"
    assert await w.counts() == before
    # when she consents to casework: the supervisor opens it
    await w.consent(w.ids[f"resident_of_{mother_id}"])
    async with w.kit.service(w.viewer("sup", "social_worker", SUPERVISING)) as ctx:
        await reactions.open_from_intake(ctx, intake.id, social_worker_account_id=w.ids["sw2"], category="maternal")
    assert [c.social_worker_account_id for c in await w.rows(Case)] == [w.ids["sw2"]]


async def test_without_her_consent_a_counseling_flag_opens_no_case_for_the_communitys_worker(world: World) -> None:
    # given a client of c1 (which sw serves) who gave casework no consent
    w = world
    client = await w.client("c1", casework=False)
    # when a flag is raised
    flag_id = await w.flag(client.id)
    # then sw learns nothing: the flag waits, consent required
    assert await w.count(Case) == 0
    assert [(i.source_id, i.queue_reason) for i in await w.rows(Intake)] == [(flag_id, "consent_required")]
    assert await w.rows(Notification, account_id=w.ids["sw"]) == []


async def test_without_her_consent_a_counseling_flag_joins_her_own_workers_open_case(world: World) -> None:
    # given a client with no consent to casework, whose resident has an open case of sw (he serves her)
    w = world
    client = await w.client("c1", casework=False)
    case_id = await _open_case(w, client.resident_id, risk_level="low")
    # when a flag is raised
    await w.flag(client.id)
    # then it joins his case
    assert [(i.status, i.case_id) for i in await w.rows(Intake)] == [("attached", case_id)]


async def test_a_later_raise_does_not_touch_a_case_transferred_to_another_worker(mworld: World) -> None:
    # given a mother of sw graded orange: sw's medium case, transferred since to sw2
    w = mworld
    _, pregnancy_id = await _mother(w)
    await _grade(w, pregnancy_id, "orange")
    (case,) = await w.rows(Case)
    async with w.kit.service(w.viewer("sw", "social_worker", CASEWORK)) as ctx:
        transfer = await casework.propose_transfer(ctx, case.id, w.ids["sw2"], "工作调整")
    async with w.kit.service(w.viewer("sw2", "social_worker", CASEWORK)) as ctx:
        await casework.answer_transfer(ctx, transfer.id, True)
    told = len(await w.rows(Notification, account_id=w.ids["sw2"]))
    # when her own worker sw grades her red
    await _grade(w, pregnancy_id, "red")
    # then sw2's case keeps its risk, with no history of a raise, and sw2 is told nothing of it
    assert [(c.id, c.risk_level, c.social_worker_account_id) for c in await w.rows(Case)] == [
        (case.id, "medium", w.ids["sw2"])
    ]
    assert await w.rows(RiskChange, case_id=case.id) == []
    assert len(await w.rows(Notification, account_id=w.ids["sw2"])) == told
    # and the referral waits for a supervisor, at the new level
    assert [(i.status, i.queue_reason, i.case_id, i.risk_level) for i in await w.rows(Intake)] == [
        ("queued", "refused", None, "high")
    ]


async def test_a_later_raise_naming_her_worker_routes_the_queued_intake(mworld: World) -> None:
    # given a mother with no social worker of her own, graded orange: her referral waits in the queue
    w = mworld
    mother_id, pregnancy_id = await _mother(w)
    await _unassigned_raise(w, mother_id, pregnancy_id)
    (queued,) = await w.rows(Intake)
    assert queued.status == "queued"
    # when a later raise (purple added) names sw as her social worker
    async with w.kit.service(w.viewer("sw", "social_worker", MATERNAL)) as ctx:
        await ctx.publish(
            MaternalRiskRaised(
                organization_id=w.ids["org_a"],
                mother_id=mother_id,
                pregnancy_id=pregnancy_id,
                resident_id=w.ids[f"resident_of_{mother_id}"],
                colour="red",
                infectious=True,
                social_worker_account_id=w.ids["sw"],
            )
        )
    # then the same intake became sw's case (no second intake)
    (case,) = await w.rows(Case)
    assert case.social_worker_account_id == w.ids["sw"]
    assert [(i.id, i.status, i.case_id) for i in await w.rows(Intake)] == [(queued.id, "opened", case.id)]
