"""The permission matrix: every core root query field and every core mutation × every role, from one table.

Each row names what every role gets through a real sign-in (the world's tokens): the content it sees
(which records, raw or masked values), null (outside the role's scope), OK, or an error code. Another
organisation's record answers exactly like a missing one (null / NOT_FOUND); naming another organisation in
an input is FORBIDDEN. Every row has a positive control: some role of the owning organisation gets real
content through the same query, so that "sees nothing" proves something.

`test_every_core_root_field_has_a_row` fails when a core root query field or core mutation (read from the
built schema) has no row here. Plugin fields have their own matrices (tests/plugins/*/test_isolation.py).

Rows that write act on records they create first (through the services, as the world builder), named with
MARK; list rows leave MARK records out, so the rows pass in any order and leave the world's records as
they were.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import graphql
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from core.database import create_sessionmaker
from core.delivery import DeliveryConfig, Message, PermanentFailure, Worker, webhooks
from core.models import Delivery, HelpRequest, Notification
from core.plugins import build_plugin_host
from core.services import (
    assignments,
    auth,
    communities,
    consent,
    help_requests,
    outbox,
    referrals,
    scheduling,
    volunteers,
)
from core.services import plugins as plugin_service
from core.settings import Settings
from core.vocab import Availability, LiaisonRole, Role, VolunteerMode
from plugins.counseling import services as counseling
from schema import ids
from schema.build import build_schema
from tests.schema.access_world import (
    LOGIN,
    MARK,
    REFERRAL_SUMMARY,
    RESIDENT_ADDRESS,
    RESIDENT_PHONE,
    ROLES,
    World,
    send_referrals,
    world_in_database,
)

PHONE, MASKED_PHONE = "13812345678", "138****5678"
ADDRESS, MASKED_ADDRESS = "碑林区粉巷5号楼3单元", "碑林区****"
HEALTH = "肺结核，服药中"
RAW = (PHONE, ADDRESS, HEALTH)
HEAD_PHONE, MASKED_HEAD_PHONE = "029-88881234", "029-****1234"
NULL = None
OK = "OK"
U, F, N = "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND"
_unique = itertools.count(1)
SHANGHAI = ZoneInfo("Asia/Shanghai")  # the counselors' hours (`_vars_served` books inside them)

RESIDENT_A = ("居民a", RESIDENT_PHONE["a"], RESIDENT_ADDRESS["a"])
RESIDENT_A_MASKED = ("居民a", "137****2222", "碑林区****")
RESIDENT_B_MASKED = ("居民b", "137****4444", "雁塔区****")
SENT_A, SENT_B = REFERRAL_SUMMARY["a"], REFERRAL_SUMMARY["b"]

VOLUNTEERS_A = ["志愿者counselor", "志愿者driver", "志愿者other", "志愿者sw"]
PLUGINS = ["counseling", "supplies", "case_work", "maternal_care"]

# Delivery (docs/notifications.md): per organisation a message to a person, parked by the `Refusing` channel,
# and a webhook endpoint on a name that never resolves (nothing in this module sends to it: the app's worker
# is not started here, and `_parked`'s worker has the `Refusing` channel only).
DELIVERY_KIND = "access.check"
REFUSED = "网关拒收该号码"
RECIPIENT = {"a": ("收信人a", "13300001111"), "b": ("收信人b", "13300002222")}
PARKED_A = [("收信人a 133****1111", "PARKED", REFUSED)]
PARKED_B = [("收信人b 133****2222", "PARKED", REFUSED)]
ENDPOINT = {"a": "https://hooks.invalid/yunshegong/a", "b": "https://hooks.invalid/yunshegong/b"}


@pytest.fixture(scope="module")
async def world(server_url: str) -> AsyncIterator[World]:
    with pytest.MonkeyPatch.context() as patch:
        # Cheap argon2 parameters while this module runs (rows create and sign in dozens of accounts); the
        # hashes stay real argon2id hashes, verified by the same code.
        patch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        async with world_in_database(server_url, "ysg_test_access") as w:
            await _extend(w)
            yield w


async def _extend(w: World) -> None:
    """What the matrix needs beyond the shared world (tests/schema/test_isolation.py reads that one as is):
    r5 (c2, org A) and r6 (c3, org B) submitted three days ago, so overdue; r7 (c1) and r8 (c3) verified
    and unstaffed (for matching, planning and the queue); a training; an API token of org B; through the
    API, an audit trail of both organisations; and, both organisations now using counseling, a referral of
    each one's resident to the other's counseling (access_world.send_referrals)."""
    for key, community in (("r5", "c2"), ("r6", "c3"), ("r7", "c1"), ("r8", "c3")):
        w.ids[key] = await w.make_request(community, title=key)
    async with w.service() as ctx:
        await help_requests.verify(ctx, w.ids["r7"])
        await help_requests.verify(ctx, w.ids["r8"])
        await ctx.session.execute(
            update(HelpRequest)
            .where(HelpRequest.id.in_([w.ids["r5"], w.ids["r6"]]))
            .values(created_at=datetime.now(UTC) - timedelta(days=3))
        )
        training = await volunteers.create_training(ctx, code="first-aid", name="急救")
        w.ids["t1"] = training.id
        _, token = await auth.create_api_token(ctx, w.ids["org_b"], "b system")
        w.ids["token_b"] = token.id
    edit = 'mutation($id: ID!) { m: updateHelpRequest(input: {id: $id, description: "核实过"}) { errors { code } } }'
    verify = "mutation($id: ID!) { m: verifyHelpRequest(input: {id: $id}) { errors { code } } }"
    token = 'mutation($o: ID!) { m: createApiToken(input: {organizationId: $o, name: "x"}) { errors { code } } }'
    for role, query, variables, outcome in (
        ("org_admin_a", edit, {"id": gid(w, "HelpRequest", "r3")}, []),  # a write of org A
        ("org_admin_b", edit, {"id": gid(w, "HelpRequest", "r4")}, []),  # a write of org B
        ("counselor", verify, {"id": gid(w, "HelpRequest", "r1")}, [{"code": F}]),  # refused, org A
        ("org_admin_b", token, {"o": gid(w, "Organization", "org_a")}, [{"code": F}]),  # refused, org B
        ("anonymous", verify, {"id": gid(w, "HelpRequest", "r1")}, [{"code": U}]),  # refused, no organisation
    ):
        assert (await w.gql(role, query, variables))["data"]["m"]["errors"] == outcome
    # The counseling plugin's supervisor role, granted to A's counselor (A enabled counseling).
    async with w.service() as ctx:
        names = frozenset(PLUGINS)
        await plugin_service.set_enabled(
            ctx, organization_id=w.ids["org_a"], plugin="counseling", enabled=True, installed=names, known=names
        )
    grant = (
        'mutation($a: ID!) { m: grantPluginRole(input: {accountId: $a, role: "counseling.supervisor"}) '
        "{ errors { code } } }"
    )
    granted = await w.gql("org_admin_a", grant, {"a": gid(w, "Account", "account_counselor")})
    assert granted["data"]["m"]["errors"] == []
    # A's counselor account also counsels (hours every day): `_vars_served` books it a session with a fresh
    # resident, the one way the world's staff come to serve someone (residents are seen by relation).
    async with w.acting_for("a") as ctx:
        counselor = await counseling.register_counselor(ctx, w.ids["v_counselor"])
        for weekday in range(7):
            await scheduling.add_window(ctx, w.ids["v_counselor"], weekday, time(8), time(20))
        w.ids["counselor_a"] = counselor.id
    failed = await w.gql("anonymous", LOGIN, {"u": "org_admin_b", "p": "wrong password"})
    assert failed["data"]["login"]["errors"] == [{"code": U}]
    await send_referrals(w)
    # Delivery: each organisation's parked message (`delivery_a`, `delivery_b`) and webhook endpoint.
    for org in ("a", "b"):
        w.ids[f"delivery_{org}"] = await _parked(w, org, *RECIPIENT[org])
        await _endpoint(w, org)


class Refusing:
    """A delivery channel taking the matrix's messages only (kind DELIVERY_KIND) and refusing each for good:
    the worker parks them with the reason."""

    name = "access"

    def accepts(self, message: Message) -> bool:
        return message.kind == DELIVERY_KIND

    async def send(self, message: Message) -> None:
        raise PermanentFailure(REFUSED)


_routing = asyncio.Lock()


async def _parked(w: World, org: str, name: str, phone: str) -> int:
    """A message of organisation `org` ("a" or "b") to a person, routed by the delivery worker to `Refusing`,
    which parks it: the delivery's id. One worker round at a time (a round returns once what it claimed is
    recorded, so the message is parked when this returns). The organisation's other messages, which no
    channel of this worker takes, are marked delivered, as the worker does; this module reads none."""
    async with w.acting_for(org) as ctx:
        await outbox.notify(ctx, DELIVERY_KIND, outbox.Recipient.person(name, phone), {"check": True})
    worker = Worker(create_sessionmaker(w.engine), [Refusing()], config=DeliveryConfig())
    async with _routing:
        while (await worker.run_organization(w.ids[f"org_{org}"])).busy:
            pass
    async with w.acting_for(org) as ctx:
        found = select(Delivery.id, Delivery.status).join(Notification, Notification.id == Delivery.notification_id)
        delivery = (await ctx.session.execute(found.where(Notification.recipient_name == name))).one()
    assert delivery.status == "parked", delivery
    return delivery.id


async def _endpoint(w: World, org: str) -> None:
    """Organisation `org`'s webhook endpoint, as the world has it (ENDPOINT, enabled), set through the service."""
    async with w.acting_for(org) as ctx:
        await webhooks.configure(ctx, w.ids[f"org_{org}"], ENDPOINT[org], None, allow_private=False)


async def _referral_to_counseling(w: World, summary: str, *, accepted: bool = False) -> int:
    """B's world resident referred again to A's counseling, under the same consent (sent, or accepted by A)."""
    async with w.acting_for("b") as ctx:
        referral = await referrals.send_referral(
            ctx,
            resident_id=w.ids["resident_b"],
            consent_id=w.ids["consent_b"],
            summary=summary,
            target_plugin="counseling",
            target_organization_id=w.ids["org_a"],
        )
    if accepted:
        async with w.acting_for("a") as ctx:
            await referrals.accept_referral(ctx, referral.id)
    return referral.id


def _error_code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors")
    return errors[0].get("extensions", {}).get("code") if errors else None


def gid(w: World, type_name: str, key: str) -> str:
    return ids.encode(type_name, w.ids[key])


def per_role(**expect: Any) -> dict[str, Any]:
    assert set(expect) == set(ROLES), set(ROLES) ^ set(expect)
    return expect


def world_only(items: Any) -> list[Any]:
    """Sorted, without the records that rows create (named with MARK; a tuple by its first element)."""

    def name(item: Any) -> Any:
        return item[0] if isinstance(item, tuple) else item

    return sorted(i for i in items if not (isinstance(name(i), str) and name(i).startswith(MARK)))


# -- reads -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Read:
    name: str
    query: str
    variables: Callable[[World], dict[str, Any]]
    extract: Callable[[Any], Any]
    expect: dict[str, Any]
    # role → why its cell fails today: a known bug, marked xfail(strict) until the service is fixed.
    bugs: dict[str, str] = field(default_factory=dict)


def node_field(
    type_name: str, key: str, field: str
) -> tuple[str, Callable[[World], dict[str, Any]], Callable[[Any], Any]]:
    query = f"query($id: ID!) {{ node(id: $id) {{ ... on {type_name} {{ {field} }} }} }}"
    return query, lambda w: {"id": gid(w, type_name, key)}, lambda d: d["node"][field] if d["node"] else NULL


def no_vars(w: World) -> dict[str, Any]:
    return {}


def _titles(d: Any) -> list[str]:
    return world_only(n["title"] for n in d["helpRequests"]["nodes"])


def _names(d: Any) -> list[str]:
    return world_only(n["name"] for n in d["volunteers"]["nodes"])


def _candidates(d: Any) -> list[Any]:
    # A candidate the caller may not see would come back as volunteer null: listed as such, never dropped.
    return world_only(c["volunteer"]["name"] if c["volunteer"] else "(hidden)" for c in d["matchCandidates"])


def _of_a(name: str) -> str:
    # The world's volunteers of A, or fresh ones (rows make them in A only).
    return "A" if name in VOLUNTEERS_A or name.startswith(MARK) else name


def _situation_communities(d: dict[str, Any]) -> Any:
    return world_only(c["community"]["name"] for c in d["situation"]["openRequestsByCommunity"])


def _plan(d: Any) -> list[Any]:
    plan = d["planAssignments"]
    return [
        sorted((i["request"]["title"], _of_a(i["volunteer"]["name"])) for i in plan["items"]),
        sorted(u["request"]["title"] for u in plan["uncovered"]),
    ]


def _queue(d: Any) -> dict[str, list[str]]:
    q = d["queue"]
    return {
        "unverified": world_only(r["title"] for r in q["unverified"]),
        "unmatched": world_only(r["title"] for r in q["unmatched"]),
        "offers": world_only(a["request"]["title"] for a in q["pendingOffers"]),
    }


def _audit(d: Any) -> list[tuple[str, str]]:
    return sorted({(e["actor"], e["operation"]) for e in d["auditLog"]["nodes"]})


ACCOUNTS_A = {"platform_admin", "org_admin_a", "social_worker", "counselor", "community_head", "volunteer"}


def _org_of(actor: str) -> str:
    """The organisation of an audit entry's actor: a world account, a twin of one, or an API token."""
    base = actor.removeprefix("api:").split("-twin-")[0]
    if base in ("org_admin_b", "b system"):
        return "B"
    if base in ACCOUNTS_A or base == "hospital system" or base.startswith(MARK):
        return "A"
    return actor


def _actor_orgs(d: Any) -> list[str]:
    return sorted({_org_of(e["actor"]) for e in d["auditLog"]["nodes"]})


def _deliveries(d: Any) -> list[tuple[str, str, str]]:
    """(recipient, status, reason), without the deliveries rows make (recipients named with MARK)."""
    return world_only((n["recipient"], n["status"], n["lastError"]) for n in d["deliveries"]["nodes"])


def _endpoint_shown(d: Any) -> Any:
    e = d["webhookEndpoint"]
    return (e["url"], e["enabled"]) if e else NULL


def _resident(d: Any) -> Any:
    r = d["resident"]
    return (r["name"], r["phone"], r["address"]) if r else NULL


def _referrals(connection: Any) -> list[tuple[str, bool]]:
    """(summary, whether the resident's ID is shown), without the referrals rows send (summaries with MARK)."""
    return world_only((n["summary"], n["residentId"] is not None) for n in connection["nodes"])


SEES_R1 = {
    "platform_admin": PHONE,
    "org_admin_a": PHONE,
    "social_worker": PHONE,
    "counselor": PHONE,
    "community_head": PHONE,
    "partner_a": PHONE,
}
SIGNED_IN = [r for r in ROLES if r != "anonymous"]
COORDINATORS_ONLY = per_role(
    anonymous=U,
    platform_admin=OK,
    org_admin_a=OK,
    org_admin_b=OK,
    social_worker=F,
    counselor=F,
    community_head=F,
    volunteer=F,
    partner_a=F,
)


def signed_in(value: Any) -> dict[str, Any]:
    return per_role(**dict.fromkeys(SIGNED_IN, value), anonymous=U)


# The `exports` row: those who read requests and volunteers; coordinators also the queue and counseling.
READER_EXPORTS = ["assignments", "communities", "helpRequests", "overdue", "volunteers"]
COORDINATOR_EXPORTS = sorted(
    [*READER_EXPORTS, "counselingSessions", "queuePendingOffers", "queueUnmatched", "queueUnverified"]
)

READS = [
    Read(
        "helpRequests: which requests",
        "{ helpRequests(first: 100) { nodes { title } } }",
        no_vars,
        _titles,
        per_role(
            anonymous=U,
            platform_admin=["r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8"],
            org_admin_a=["r1", "r2", "r3", "r5", "r7"],
            org_admin_b=["r4", "r6", "r8"],
            social_worker=["r1", "r2", "r7"],
            counselor=["r1", "r2", "r7"],
            community_head=["r1", "r2", "r7"],
            volunteer=["r1", "r2"],
            partner_a=["r1", "r2", "r3", "r5", "r7"],
        ),
    ),
    Read(
        "helpRequests: requester details in the list (masked for a volunteer only offered)",
        "{ helpRequests(first: 100) { nodes { title requesterPhone requesterAddress healthDetails } } }",
        no_vars,
        lambda d: sorted(
            (n["title"], n["requesterPhone"], n["requesterAddress"], n["healthDetails"])
            for n in d["helpRequests"]["nodes"]
            if n["title"] in ("r1", "r2", "r4")
        ),
        per_role(
            anonymous=U,
            platform_admin=[("r1", *RAW), ("r2", *RAW), ("r4", *RAW)],
            org_admin_a=[("r1", *RAW), ("r2", *RAW)],
            org_admin_b=[("r4", *RAW)],
            social_worker=[("r1", *RAW), ("r2", *RAW)],
            counselor=[("r1", *RAW), ("r2", *RAW)],
            community_head=[("r1", *RAW), ("r2", *RAW)],
            volunteer=[("r1", *RAW), ("r2", MASKED_PHONE, MASKED_ADDRESS, "")],
            partner_a=[("r1", *RAW), ("r2", *RAW)],
        ),
    ),
    Read(
        "node: r1 requesterPhone (volunteer holds an accepted assignment)",
        *node_field("HelpRequest", "r1", "requesterPhone"),
        per_role(anonymous=NULL, org_admin_b=NULL, volunteer=PHONE, **SEES_R1),
    ),
    Read(
        "node: r2 requesterPhone (volunteer only offered)",
        *node_field("HelpRequest", "r2", "requesterPhone"),
        per_role(anonymous=NULL, org_admin_b=NULL, volunteer=MASKED_PHONE, **SEES_R1),
    ),
    Read(
        "node: r1 requesterAddress",
        *node_field("HelpRequest", "r1", "requesterAddress"),
        per_role(anonymous=NULL, org_admin_b=NULL, volunteer=ADDRESS, **dict.fromkeys(SEES_R1, ADDRESS)),
    ),
    Read(
        "node: r2 requesterAddress",
        *node_field("HelpRequest", "r2", "requesterAddress"),
        per_role(anonymous=NULL, org_admin_b=NULL, volunteer=MASKED_ADDRESS, **dict.fromkeys(SEES_R1, ADDRESS)),
    ),
    Read(
        "node: r1 healthDetails",
        *node_field("HelpRequest", "r1", "healthDetails"),
        per_role(anonymous=NULL, org_admin_b=NULL, volunteer=HEALTH, **dict.fromkeys(SEES_R1, HEALTH)),
    ),
    Read(
        "node: r2 healthDetails",
        *node_field("HelpRequest", "r2", "healthDetails"),
        per_role(anonymous=NULL, org_admin_b=NULL, volunteer="", **dict.fromkeys(SEES_R1, HEALTH)),
    ),
    Read(
        "node: r4 (other organisation) title",
        *node_field("HelpRequest", "r4", "title"),
        per_role(
            anonymous=NULL,
            platform_admin="r4",
            org_admin_a=NULL,
            org_admin_b="r4",
            social_worker=NULL,
            counselor=NULL,
            community_head=NULL,
            volunteer=NULL,
            partner_a=NULL,
        ),
    ),
    Read(
        "node: community c1 headPhone",
        *node_field("Community", "c1", "headPhone"),
        per_role(
            anonymous=NULL,
            platform_admin=HEAD_PHONE,
            org_admin_a=HEAD_PHONE,
            org_admin_b=NULL,
            social_worker=HEAD_PHONE,
            counselor=HEAD_PHONE,
            community_head=HEAD_PHONE,
            volunteer=MASKED_HEAD_PHONE,
            partner_a=MASKED_HEAD_PHONE,
        ),
    ),
    Read(
        "node: volunteer (driver) phone",
        *node_field("Volunteer", "v_driver", "phone"),
        per_role(
            anonymous=NULL,
            platform_admin="13900000002",
            org_admin_a="13900000002",
            org_admin_b=NULL,
            social_worker="13900000002",
            counselor="13900000002",
            community_head="139****0002",
            volunteer="13900000002",
            partner_a="139****0002",
        ),
    ),
    Read(
        "nodes: r1, r4, c3, b_vol in one call",
        "query($ids: [ID!]!) { nodes(ids: $ids) { ... on HelpRequest { title } ... on Community { name } "
        "... on Volunteer { name } } }",
        lambda w: {
            "ids": [
                gid(w, "HelpRequest", "r1"),
                gid(w, "HelpRequest", "r4"),
                gid(w, "Community", "c3"),
                gid(w, "Volunteer", "v_b_vol"),
            ]
        },
        lambda d: [(n.get("title") or n.get("name")) if n else NULL for n in d["nodes"]],
        per_role(
            anonymous=[NULL, NULL, NULL, NULL],
            platform_admin=["r1", "r4", "社区c3", "志愿者b_vol"],
            org_admin_a=["r1", NULL, NULL, NULL],
            org_admin_b=[NULL, "r4", "社区c3", "志愿者b_vol"],
            social_worker=["r1", NULL, NULL, NULL],
            counselor=["r1", NULL, NULL, NULL],
            community_head=["r1", NULL, NULL, NULL],
            volunteer=["r1", NULL, NULL, NULL],
            partner_a=["r1", NULL, NULL, NULL],
        ),
    ),
    Read(
        "volunteers: which volunteers",
        "{ volunteers(first: 100) { nodes { name } } }",
        no_vars,
        _names,
        per_role(
            anonymous=U,
            platform_admin=["志愿者b_vol", *VOLUNTEERS_A],
            org_admin_a=VOLUNTEERS_A,
            org_admin_b=["志愿者b_vol"],
            social_worker=VOLUNTEERS_A,
            counselor=VOLUNTEERS_A,
            community_head=["志愿者driver"],
            volunteer=["志愿者driver"],
            partner_a=["志愿者driver"],
        ),
    ),
    Read(
        "volunteers: phones in the list",
        '{ volunteers(first: 100, filter: {search: "driver"}) { nodes { name phone } } }',
        no_vars,
        lambda d: [(n["name"], n["phone"]) for n in d["volunteers"]["nodes"]],
        per_role(
            anonymous=U,
            platform_admin=[("志愿者driver", "13900000002")],
            org_admin_a=[("志愿者driver", "13900000002")],
            org_admin_b=[],
            social_worker=[("志愿者driver", "13900000002")],
            counselor=[("志愿者driver", "13900000002")],
            community_head=[("志愿者driver", "139****0002")],
            volunteer=[("志愿者driver", "13900000002")],
            partner_a=[("志愿者driver", "139****0002")],
        ),
    ),
    Read(
        "communities: which communities, and head phones",
        "{ communities(first: 100) { nodes { name headPhone } } }",
        no_vars,
        lambda d: world_only((n["name"], n["headPhone"]) for n in d["communities"]["nodes"]),
        per_role(
            anonymous=U,
            platform_admin=[("社区c1", HEAD_PHONE), ("社区c2", HEAD_PHONE), ("社区c3", HEAD_PHONE)],
            org_admin_a=[("社区c1", HEAD_PHONE), ("社区c2", HEAD_PHONE)],
            org_admin_b=[("社区c3", HEAD_PHONE)],
            social_worker=[("社区c1", HEAD_PHONE)],
            counselor=[("社区c1", HEAD_PHONE)],
            community_head=[("社区c1", HEAD_PHONE)],
            volunteer=[("社区c1", MASKED_HEAD_PHONE)],
            partner_a=[("社区c1", MASKED_HEAD_PHONE), ("社区c2", MASKED_HEAD_PHONE)],
        ),
    ),
    Read(
        "importColumns (the import's fields, the same for everyone signed in)",
        "{ importColumns(kind: COMMUNITIES) { field } }",
        no_vars,
        lambda d: [c["field"] for c in d["importColumns"]][:2],
        signed_in(["name", "district"]),
    ),
    Read(
        "districts (reference data, shared)",
        "{ districts { name } }",
        no_vars,
        lambda d: world_only(x["name"] for x in d["districts"]),
        signed_in(["碑林区"]),
    ),
    Read(
        "organizations",
        "{ organizations { name } }",
        no_vars,
        lambda d: world_only(x["name"] for x in d["organizations"]),
        # The organisation registry is shared on purpose (README, Organisations and isolation).
        signed_in(["协会", "外区机构"]),
    ),
    Read(
        "trainings (reference data, shared)",
        "{ trainings { code name } }",
        no_vars,
        lambda d: world_only(x["code"] for x in d["trainings"]),
        signed_in(["first-aid"]),
    ),
    Read(
        "matchCandidates for r1 (org A): A's volunteers not yet on it, never B's",
        "query($id: ID!) { matchCandidates(requestId: $id, first: 100) { volunteer { name } } }",
        lambda w: {"id": gid(w, "HelpRequest", "r1")},
        _candidates,
        per_role(
            anonymous=U,
            platform_admin=["志愿者counselor", "志愿者other", "志愿者sw"],
            org_admin_a=["志愿者counselor", "志愿者other", "志愿者sw"],
            org_admin_b=N,
            social_worker=["志愿者counselor", "志愿者other", "志愿者sw"],
            counselor=F,
            community_head=F,
            volunteer=F,
            partner_a=F,
        ),
    ),
    Read(
        "matchCandidates for r8 (org B): B's volunteer only",
        "query($id: ID!) { matchCandidates(requestId: $id, first: 100) { volunteer { name } } }",
        lambda w: {"id": gid(w, "HelpRequest", "r8")},
        _candidates,
        per_role(
            anonymous=U,
            platform_admin=["志愿者b_vol"],
            org_admin_a=N,
            org_admin_b=["志愿者b_vol"],
            social_worker=N,
            counselor=F,
            community_head=F,
            volunteer=F,
            partner_a=F,
        ),
    ),
    Read(
        "planAssignments for r7 (org A, verified, unstaffed)",
        "query($ids: [ID!]!) { planAssignments(requestIds: $ids) { items { request { title } volunteer { name } } "
        "uncovered { request { title } } } }",
        lambda w: {"ids": [gid(w, "HelpRequest", "r7")]},
        _plan,
        per_role(
            anonymous=U,
            platform_admin=[[("r7", "A")], []],
            org_admin_a=[[("r7", "A")], []],
            org_admin_b=N,
            social_worker=[[("r7", "A")], []],
            counselor=F,
            community_head=F,
            volunteer=F,
            partner_a=F,
        ),
    ),
    Read(
        "overdue: r5 (A) and r6 (B) were submitted three days ago",
        "{ overdue(first: 100) { stage request { title } } }",
        no_vars,
        lambda d: world_only(o["request"]["title"] for o in d["overdue"]),
        per_role(
            anonymous=U,
            platform_admin=["r5", "r6"],
            org_admin_a=["r5"],
            org_admin_b=["r6"],
            social_worker=[],
            counselor=[],
            community_head=[],
            volunteer=[],
            partner_a=["r5"],
        ),
    ),
    Read(
        "queue: to verify, to match, offers awaiting an answer",
        "{ queue(first: 100) { unverified { title } unmatched { title } pendingOffers { request { title } } } }",
        no_vars,
        _queue,
        per_role(
            anonymous=U,
            platform_admin={"unverified": ["r3", "r4", "r5", "r6"], "unmatched": ["r7", "r8"], "offers": ["r2"]},
            org_admin_a={"unverified": ["r3", "r5"], "unmatched": ["r7"], "offers": ["r2"]},
            org_admin_b={"unverified": ["r4", "r6"], "unmatched": ["r8"], "offers": []},
            social_worker={"unverified": [], "unmatched": ["r7"], "offers": ["r2"]},
            counselor={"unverified": [], "unmatched": ["r7"], "offers": ["r2"]},
            community_head={"unverified": [], "unmatched": ["r7"], "offers": ["r2"]},
            volunteer={"unverified": [], "unmatched": [], "offers": ["r2"]},
            partner_a={"unverified": ["r3", "r5"], "unmatched": ["r7"], "offers": ["r2"]},
        ),
    ),
    Read(
        "situation: open requests by community of the caller's organisation (within their scope)",
        "{ situation { openRequestsByCommunity { community { name } } } }",
        no_vars,
        _situation_communities,
        per_role(
            anonymous=U,
            platform_admin=["社区c1", "社区c2"],
            org_admin_a=["社区c1", "社区c2"],
            org_admin_b=["社区c3"],
            social_worker=["社区c1"],
            counselor=F,
            community_head=["社区c1"],
            volunteer=F,
            partner_a=F,
        ),
    ),
    Read(
        "situation of org B (named): its administrator and platform administrators only",
        "query($o: ID) { situation(organizationId: $o) { openRequestsByCommunity { community { name } } } }",
        lambda w: {"o": gid(w, "Organization", "org_b")},
        _situation_communities,
        per_role(
            anonymous=U,
            platform_admin=["社区c3"],
            org_admin_a=F,
            org_admin_b=["社区c3"],
            social_worker=F,
            counselor=F,
            community_head=F,
            volunteer=F,
            partner_a=F,
        ),
    ),
    Read(
        "myAssignments: the driver's own",
        "{ myAssignments(first: 100) { nodes { status request { title } } } }",
        no_vars,
        lambda d: world_only((n["request"]["title"], n["status"]) for n in d["myAssignments"]["nodes"]),
        per_role(
            anonymous=U,
            platform_admin=F,
            org_admin_a=F,
            org_admin_b=F,
            social_worker=[],
            counselor=F,
            community_head=F,
            volunteer=[("r1", "ACCEPTED"), ("r2", "OFFERED")],
            partner_a=F,
        ),
    ),
    Read(
        "me",
        "{ me { role account { username } } }",
        no_vars,
        lambda d: (d["me"]["role"], d["me"]["account"]["username"] if d["me"]["account"] else NULL),
        per_role(
            anonymous=(NULL, NULL),
            platform_admin=("PLATFORM_ADMIN", "platform_admin"),
            org_admin_a=("ORGANIZATION_ADMIN", "org_admin_a"),
            org_admin_b=("ORGANIZATION_ADMIN", "org_admin_b"),
            social_worker=("SOCIAL_WORKER", "social_worker"),
            counselor=("COUNSELOR", "counselor"),
            community_head=("COMMUNITY_HEAD", "community_head"),
            volunteer=("VOLUNTEER", "volunteer"),
            partner_a=("PARTNER", NULL),
        ),
    ),
    Read(
        "apiTokens: the own organisation's only",
        "{ apiTokens { name } }",
        no_vars,
        lambda d: world_only(t["name"] for t in d["apiTokens"]),
        per_role(
            anonymous=U,
            platform_admin=["b system", "hospital system"],
            org_admin_a=["hospital system"],
            org_admin_b=["b system"],
            social_worker=F,
            counselor=F,
            community_head=F,
            volunteer=F,
            partner_a=F,
        ),
    ),
    # -- delivery (docs/notifications.md): administrators, for their organisation; platform administrators, for
    # the one they name (else their own, A)
    Read(
        "deliveries: the own organisation's, parked with the reason, the phone masked",
        '{ deliveries(channel: "access", first: 100) { nodes { recipient status lastError } } }',
        no_vars,
        _deliveries,
        per_role(
            anonymous=U,
            platform_admin=PARKED_A,
            org_admin_a=PARKED_A,
            org_admin_b=PARKED_B,
            social_worker=F,
            counselor=F,
            community_head=F,
            volunteer=F,
            partner_a=F,
        ),
    ),
    Read(
        "deliveries of B, named (platform administrators; A's administrator may not name B)",
        'query($o: ID!) { deliveries(organizationId: $o, channel: "access", first: 100) '
        "{ nodes { recipient status lastError } } }",
        lambda w: {"o": gid(w, "Organization", "org_b")},
        _deliveries,
        per_role(
            anonymous=U,
            platform_admin=PARKED_B,
            org_admin_a=F,
            org_admin_b=PARKED_B,
            social_worker=F,
            counselor=F,
            community_head=F,
            volunteer=F,
            partner_a=F,
        ),
    ),
    Read(
        "webhookEndpoint: the own organisation's",
        "{ webhookEndpoint { url enabled } }",
        no_vars,
        _endpoint_shown,
        per_role(
            anonymous=U,
            platform_admin=(ENDPOINT["a"], True),
            org_admin_a=(ENDPOINT["a"], True),
            org_admin_b=(ENDPOINT["b"], True),
            social_worker=F,
            counselor=F,
            community_head=F,
            volunteer=F,
            partner_a=F,
        ),
    ),
    Read(
        "webhookEndpoint of B, named (platform administrators; A's administrator may not name B)",
        "query($o: ID!) { webhookEndpoint(organizationId: $o) { url enabled } }",
        lambda w: {"o": gid(w, "Organization", "org_b")},
        _endpoint_shown,
        per_role(
            anonymous=U,
            platform_admin=(ENDPOINT["b"], True),
            org_admin_a=F,
            org_admin_b=(ENDPOINT["b"], True),
            social_worker=F,
            counselor=F,
            community_head=F,
            volunteer=F,
            partner_a=F,
        ),
    ),
    Read(
        "auditLog: writes on r3 (org A's administrator edited it)",
        'query($id: ID!) { auditLog(recordId: $id, actions: ["write"], first: 100) { nodes { actor operation } } }',
        lambda w: {"id": gid(w, "HelpRequest", "r3")},
        _audit,
        per_role(
            anonymous=U,
            platform_admin=[("org_admin_a", "updateHelpRequest")],
            org_admin_a=[("org_admin_a", "updateHelpRequest")],
            org_admin_b=[],
            social_worker=F,
            counselor=F,
            community_head=F,
            volunteer=F,
            partner_a=F,
        ),
    ),
    Read(
        "auditLog: writes on r4 (org B's administrator edited it)",
        'query($id: ID!) { auditLog(recordId: $id, actions: ["write"], first: 100) { nodes { actor operation } } }',
        lambda w: {"id": gid(w, "HelpRequest", "r4")},
        _audit,
        per_role(
            anonymous=U,
            platform_admin=[("org_admin_b", "updateHelpRequest")],
            org_admin_a=[],
            org_admin_b=[("org_admin_b", "updateHelpRequest")],
            social_worker=F,
            counselor=F,
            community_head=F,
            volunteer=F,
            partner_a=F,
        ),
    ),
    Read(
        "auditLog: refused attempts, the organisations of their actors",
        '{ auditLog(actions: ["denied"], first: 200) { nodes { actor } } }',
        no_vars,
        _actor_orgs,
        per_role(
            anonymous=U,
            platform_admin=["A", "B", "anonymous"],
            org_admin_a=["A"],
            org_admin_b=["B"],
            social_worker=F,
            counselor=F,
            community_head=F,
            volunteer=F,
            partner_a=F,
        ),
    ),
    Read(
        "auditLog: failed sign-ins (no organisation yet: platform administrators only)",
        '{ auditLog(actions: ["login_failed"], first: 200) { nodes { actor operation } } }',
        no_vars,
        _audit,
        per_role(
            anonymous=U,
            platform_admin=[("anonymous", "login")],
            org_admin_a=[],
            org_admin_b=[],
            social_worker=F,
            counselor=F,
            community_head=F,
            volunteer=F,
            partner_a=F,
        ),
    ),
    Read(
        "pluginRoles: the roles plugins declare",
        "{ pluginRoles { name permissions } }",
        no_vars,
        lambda d: [(r["name"], r["permissions"]) for r in d["pluginRoles"]],
        signed_in(
            [
                ("counseling.supervisor", ["counseling.read_notes"]),
                ("case_work.supervisor", ["case_work.manage", "case_work.supervise"]),
                (
                    "maternal_care.staff",
                    ["maternal_care.manage", "maternal_care.health", "maternal_care.lectures"],
                ),
            ]
        ),
    ),
    Read(
        "accountPluginRoles of A's counselor (administrators of its organisation)",
        "query($a: ID!) { accountPluginRoles(accountId: $a) }",
        lambda w: {"a": gid(w, "Account", "account_counselor")},
        lambda d: d["accountPluginRoles"],
        per_role(
            anonymous=U,
            platform_admin=["counseling.supervisor"],
            org_admin_a=["counseling.supervisor"],
            org_admin_b=[],
            social_worker=F,
            counselor=F,
            community_head=F,
            volunteer=F,
            partner_a=F,
        ),
    ),
    Read(
        "plugins: installed",
        "{ plugins { name } }",
        no_vars,
        lambda d: [p["name"] for p in d["plugins"]],
        signed_in(PLUGINS),
    ),
    Read(
        # What each caller may download (GET /export/{name}.csv|.xlsx runs the listed query as them: its refusals
        # and masking are the rows of that query here; tests/yunshegong/test_exports.py downloads).
        "exports: what the caller can download",
        "{ exports { name } }",
        no_vars,
        lambda d: sorted(e["name"] for e in d["exports"]),
        per_role(
            anonymous=U,
            platform_admin=COORDINATOR_EXPORTS,
            org_admin_a=COORDINATOR_EXPORTS,
            org_admin_b=COORDINATOR_EXPORTS,
            social_worker=COORDINATOR_EXPORTS,
            counselor=sorted([*READER_EXPORTS, "counselingSessions"]),
            community_head=READER_EXPORTS,
            volunteer=READER_EXPORTS,
            partner_a=READER_EXPORTS,
        ),
    ),
    Read(
        "stats are public (the same totals for everyone)",
        "{ stats { volunteersTotal communitiesTotal } }",
        no_vars,
        lambda d: d["stats"]["communitiesTotal"] >= 3 and d["stats"]["volunteersTotal"] >= 5,
        per_role(**dict.fromkeys(ROLES, True)),
    ),
    # -- residents, consents, referrals
    Read(
        # By relation, not by rank: the world's social worker and counselor serve nobody (no case, no session
        # with A's resident), so to them the resident does not exist; administrators read it masked.
        "resident: A's (administrators, masked; staff who do not serve the resident see nothing)",
        "query($id: ID!) { resident(id: $id) { name phone address } }",
        lambda w: {"id": gid(w, "Resident", "resident_a")},
        _resident,
        per_role(
            anonymous=NULL,
            platform_admin=RESIDENT_A_MASKED,
            org_admin_a=RESIDENT_A_MASKED,
            org_admin_b=NULL,
            social_worker=NULL,
            counselor=NULL,
            community_head=NULL,
            volunteer=NULL,
            partner_a=NULL,
        ),
    ),
    Read(
        "resident: B's (platform administrators read every organisation's residents, masked)",
        "query($id: ID!) { resident(id: $id) { name phone address } }",
        lambda w: {"id": gid(w, "Resident", "resident_b")},
        _resident,
        per_role(
            anonymous=NULL,
            platform_admin=RESIDENT_B_MASKED,
            org_admin_a=NULL,
            org_admin_b=RESIDENT_B_MASKED,
            social_worker=NULL,
            counselor=NULL,
            community_head=NULL,
            volunteer=NULL,
            partner_a=NULL,
        ),
    ),
    Read(
        "node: A's resident phone",
        *node_field("Resident", "resident_a", "phone"),
        per_role(
            anonymous=NULL,
            platform_admin=RESIDENT_A_MASKED[1],
            org_admin_a=RESIDENT_A_MASKED[1],
            org_admin_b=NULL,
            social_worker=NULL,
            counselor=NULL,
            community_head=NULL,
            volunteer=NULL,
            partner_a=NULL,
        ),
    ),
    Read(
        "resident → consents (A's resident: counseling, in force)",
        "query($id: ID!) { resident(id: $id) { consents { targetKind target inForce } } }",
        lambda w: {"id": gid(w, "Resident", "resident_a")},
        lambda d: (
            [(c["targetKind"], c["target"], c["inForce"]) for c in d["resident"]["consents"]] if d["resident"] else NULL
        ),
        per_role(
            anonymous=NULL,
            platform_admin=[("PLUGIN", "counseling", True)],
            org_admin_a=[("PLUGIN", "counseling", True)],
            org_admin_b=NULL,
            social_worker=NULL,
            counselor=NULL,
            community_head=NULL,
            volunteer=NULL,
            partner_a=NULL,
        ),
    ),
    Read(
        # The sending account, those serving the resident, administrators: the world's referrals were sent by
        # scripts, for residents the world's social worker and counselor do not serve.
        "referralsSent: the own organisation's, with the resident's ID (administrators; not every staff member)",
        "{ referralsSent(first: 100) { nodes { summary residentId } } }",
        no_vars,
        lambda d: _referrals(d["referralsSent"]),
        per_role(
            anonymous=U,
            platform_admin=[(SENT_A, True)],
            org_admin_a=[(SENT_A, True)],
            org_admin_b=[(SENT_B, True)],
            social_worker=[],
            counselor=[],
            community_head=[],
            volunteer=[],
            partner_a=[],
        ),
    ),
    Read(
        "referralsReceived: the other organisation's, for counseling's staff, without the resident's ID",
        "{ referralsReceived(first: 100) { nodes { summary residentId } } }",
        no_vars,
        lambda d: _referrals(d["referralsReceived"]),
        per_role(
            anonymous=U,
            platform_admin=[(SENT_B, False)],
            org_admin_a=[(SENT_B, False)],
            org_admin_b=[(SENT_A, False)],
            social_worker=[(SENT_B, False)],
            counselor=[(SENT_B, False)],
            community_head=[],
            volunteer=[],
            partner_a=[],
        ),
    ),
    Read(
        "node: B's referral to A's counseling (the sender's and the recipient's staff)",
        *node_field("Referral", "referral_b", "summary"),
        per_role(
            anonymous=NULL,
            platform_admin=SENT_B,
            org_admin_a=SENT_B,
            org_admin_b=SENT_B,
            social_worker=SENT_B,
            counselor=SENT_B,
            community_head=NULL,
            volunteer=NULL,
            partner_a=NULL,
        ),
    ),
    Read(
        "node: A's referral to B's counseling (the sender's administrators, the recipient's counseling staff)",
        *node_field("Referral", "referral_a", "summary"),
        per_role(
            anonymous=NULL,
            platform_admin=SENT_A,
            org_admin_a=SENT_A,
            org_admin_b=SENT_A,
            social_worker=NULL,
            counselor=NULL,
            community_head=NULL,
            volunteer=NULL,
            partner_a=NULL,
        ),
    ),
    Read(
        "nested: community c1 → helpRequests",
        "query($id: ID!) { node(id: $id) { ... on Community { helpRequests(first: 100) { nodes { title } } } } }",
        lambda w: {"id": gid(w, "Community", "c1")},
        lambda d: world_only(n["title"] for n in d["node"]["helpRequests"]["nodes"]) if d["node"] else NULL,
        per_role(
            anonymous=NULL,
            platform_admin=["r1", "r2", "r7"],
            org_admin_a=["r1", "r2", "r7"],
            org_admin_b=NULL,
            social_worker=["r1", "r2", "r7"],
            counselor=["r1", "r2", "r7"],
            community_head=["r1", "r2", "r7"],
            volunteer=["r1", "r2"],
            partner_a=["r1", "r2", "r7"],
        ),
    ),
    Read(
        "nested: volunteer (driver) → assignments",
        "query($id: ID!) { node(id: $id) { ... on Volunteer { assignments(first: 100) "
        "{ nodes { request { title } } } } } }",
        lambda w: {"id": gid(w, "Volunteer", "v_driver")},
        lambda d: world_only(n["request"]["title"] for n in d["node"]["assignments"]["nodes"]) if d["node"] else NULL,
        per_role(
            anonymous=NULL,
            platform_admin=["r1", "r2"],
            org_admin_a=["r1", "r2"],
            org_admin_b=NULL,
            social_worker=["r1", "r2"],
            counselor=["r1", "r2"],
            community_head=["r1", "r2"],
            volunteer=["r1", "r2"],
            partner_a=["r1", "r2"],
        ),
    ),
]


def _cases(rows: list[Any]) -> list[Any]:
    """One case per row with every role whose cell is right today (the roles run concurrently), and one
    xfail(strict) case per cell that a known bug gets wrong."""
    cases = []
    for row in rows:
        cases.append(pytest.param(row, tuple(r for r in ROLES if r not in row.bugs), id=row.name))
        cases += [
            pytest.param(
                row, (role,), id=f"{row.name}-{role}", marks=pytest.mark.xfail(strict=True, reason=f"bug: {why}")
            )
            for role, why in row.bugs.items()
        ]
    return cases


async def _read(world: World, row: Read, role: str) -> Any:
    body = await world.gql(role, row.query, row.variables(world))
    code = _error_code(body)
    return code if code else row.extract(body["data"])


@pytest.mark.parametrize(("row", "roles"), _cases(READS))
async def test_read_matrix(world: World, row: Read, roles: tuple[str, ...]) -> None:
    observed = dict(zip(roles, await asyncio.gather(*(_read(world, row, role) for role in roles)), strict=True))
    assert observed == {role: row.expect[role] for role in roles}


async def test_stats_are_the_same_for_every_role(world: World) -> None:
    query = "{ stats { volunteersTotal requestsTotal communitiesTotal requestsByStatus { status count } } }"
    answers = [await world.gql(role, query) for role in ROLES]
    assert all(a == answers[0] for a in answers), answers
    assert answers[0]["data"]["stats"]["communitiesTotal"] >= 3


# -- writes -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    name: str
    # A mutation aliased `m` whose payload selects `errors { code }`.
    query: str
    # Creates the row's own targets (so the world stays as it was) and returns the variables.
    prepare: Callable[[World], Awaitable[dict[str, Any]]]
    expect: dict[str, str]
    # Who signs in for the role: the world's own token unless the row would spoil it.
    sign_in: Callable[[World, str], Awaitable[str | None]] | None = None
    # More content to check when the answer is OK: (world, token used, payload).
    check: Callable[[World, str | None, dict[str, Any]], Awaitable[None]] | None = None
    bugs: dict[str, str] = field(default_factory=dict)


def _n() -> int:
    return next(_unique)


async def _request(
    w: World, community: str = "c1", upto: str = "submitted", volunteer: str | None = None
) -> tuple[int, int | None]:
    """A fresh request of `community`, brought to `upto` (submitted, verified, offered, accepted,
    in_progress) with `volunteer` (else a fresh one) offered; returns (request id, assignment id)."""
    rid = await w.make_request(community, title=f"{MARK}{_n()}")
    steps = ["submitted", "verified", "offered", "accepted", "in_progress"]
    reached = steps.index(upto)
    offer_id = None
    if reached >= 2:
        vid = w.ids[volunteer] if volunteer else await _volunteer(w, Availability.AVAILABLE)
    async with w.service() as ctx:
        if reached >= 1:
            await help_requests.verify(ctx, rid)
        if reached >= 2:
            offer_id = (await assignments.offer(ctx, rid, vid)).id
        if reached >= 3:
            await assignments.accept(ctx, offer_id)
        if reached >= 4:
            await help_requests.start(ctx, rid)
    return rid, offer_id


async def _community(w: World, liaison: str | None = None) -> int:
    async with w.service() as ctx:
        c = await communities.create_community(
            ctx,
            communities.CommunityInput(
                name=f"{MARK}社区{_n()}", district_id=w.ids["district"], organization_id=w.ids["org_a"]
            ),
        )
        if liaison:
            await communities.add_liaison(ctx, c.id, w.ids[liaison], LiaisonRole.VOLUNTEER)
    return c.id


async def _volunteer(w: World, availability: Availability = Availability.OFF) -> int:
    """A fresh volunteer of organisation A (off duty unless said: then never a match candidate). A fresh
    one, not a world volunteer, so that no row changes whom a community head or partner sees working."""
    async with w.service() as ctx:
        v = await volunteers.register_volunteer(
            ctx,
            volunteers.VolunteerInput(
                name=f"{MARK}志愿者{_n()}",
                phone=f"1360000{_n():04d}",
                mode=VolunteerMode.OFFLINE,
                organization_id=w.ids["org_a"],
                availability=availability,
            ),
        )
    return v.id


def _rid(pk: int) -> str:
    return ids.encode("HelpRequest", pk)


def _step(mutation: str, extra: str = "") -> str:
    return f"mutation($id: ID!) {{ m: {mutation}(input: {{id: $id{extra}}}) {{ errors {{ code }} }} }}"


async def _twin(w: World, role: str) -> str | None:
    return await w.twin(role)


async def _password_changed(w: World, old: str | None, payload: dict[str, Any]) -> None:
    # A new token comes back and works; the one the account signed in with stops working.
    assert payload["token"]
    me = "{ me { account { username } } }"
    fresh = await w.gql_as(payload["token"], me)
    assert "-twin-" in fresh["data"]["me"]["account"]["username"], fresh
    stale = await w.gql_as(old, me)
    assert _error_code(stale) == U, stale


async def _token_shown(w: World, used: str | None, payload: dict[str, Any]) -> None:
    # The plain token is shown once, and it signs in as a partner of organisation A.
    assert payload["token"]
    body = await w.gql_as(payload["token"], "{ me { role } helpRequests(first: 100) { nodes { title } } }")
    assert body["data"]["me"]["role"] == "PARTNER"
    assert world_only(n["title"] for n in body["data"]["helpRequests"]["nodes"]) == ["r1", "r2", "r3", "r5", "r7"]


async def _vars_verify(w: World) -> dict[str, Any]:
    rid, _ = await _request(w, "c2")
    return {"id": _rid(rid)}


async def _vars_submitted_c1(w: World) -> dict[str, Any]:
    rid, _ = await _request(w, "c1")
    return {"id": _rid(rid)}


async def _vars_matched(w: World) -> dict[str, Any]:
    rid, _ = await _request(w, "c1", "accepted")
    return {"id": _rid(rid)}


async def _vars_in_progress(w: World) -> dict[str, Any]:
    rid, _ = await _request(w, "c1", "in_progress")
    return {"id": _rid(rid)}


async def _vars_merge(w: World) -> dict[str, Any]:
    keep, _ = await _request(w, "c1")
    duplicate, _ = await _request(w, "c1")
    return {"k": _rid(keep), "d": _rid(duplicate)}


async def _vars_submit(w: World) -> dict[str, Any]:
    return {"c": gid(w, "Community", "c1"), "t": f"{MARK}{_n()}"}


async def _vars_offer(w: World) -> dict[str, Any]:
    rid, _ = await _request(w, "c1", "verified")
    return {"r": _rid(rid), "v": ids.encode("Volunteer", await _volunteer(w, Availability.AVAILABLE))}


async def _vars_missing_request(w: World) -> dict[str, Any]:
    return {"r": ids.encode("HelpRequest", 10**9), "v": gid(w, "Volunteer", "v_other")}


async def _vars_offer_b_volunteer(w: World) -> dict[str, Any]:
    rid, _ = await _request(w, "c1", "verified")
    return {"r": _rid(rid), "v": gid(w, "Volunteer", "v_b_vol")}


async def _vars_driver_offer(w: World) -> dict[str, Any]:
    _, offer = await _request(w, "c1", "offered", volunteer="v_driver")
    return {"id": ids.encode("Assignment", offer)}


async def _vars_other_offer(w: World) -> dict[str, Any]:
    _, offer = await _request(w, "c1", "offered")
    return {"id": ids.encode("Assignment", offer)}


async def _vars_driver_working(w: World) -> dict[str, Any]:
    _, offer = await _request(w, "c1", "in_progress", volunteer="v_driver")
    return {"id": ids.encode("Assignment", offer)}


async def _vars_org_a(w: World) -> dict[str, Any]:
    return {"o": gid(w, "Organization", "org_a"), "u": f"user{_n()}", "name": f"{MARK}{_n()}"}


async def _vars_account_of_a(w: World) -> dict[str, Any]:
    """A fresh administrator account of A (whose organisation enabled counseling)."""
    username = f"{MARK}admin{_n()}"
    async with w.service() as ctx:
        account = await auth.create_account(
            ctx,
            auth.AccountInput(
                username=username,
                display_name=username,
                password="correct horse battery",
                role=Role.ORGANIZATION_ADMIN,
                organization_id=w.ids["org_a"],
            ),
        )
    return {"a": ids.encode("Account", account.id)}


async def _vars_register(w: World) -> dict[str, Any]:
    return {"o": gid(w, "Organization", "org_a"), "p": f"1370000{_n():04d}", "name": f"{MARK}新人{_n()}"}


async def _vars_driver(w: World) -> dict[str, Any]:
    day = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(days=_n())
    return {"v": gid(w, "Volunteer", "v_driver"), "s": day.isoformat(), "e": (day + timedelta(hours=8)).isoformat()}


async def _vars_fresh_volunteer(w: World) -> dict[str, Any]:
    return {"v": ids.encode("Volunteer", await _volunteer(w)), "t": gid(w, "Training", "t1"), "name": f"{MARK}{_n()}"}


async def _vars_token(w: World) -> dict[str, Any]:
    async with w.service() as ctx:
        _, token = await auth.create_api_token(ctx, w.ids["org_a"], f"{MARK}{_n()}")
    return {"id": ids.encode("ApiToken", token.id)}


async def _vars_community(w: World) -> dict[str, Any]:
    return {
        "c": ids.encode("Community", await _community(w)),
        "v": gid(w, "Volunteer", "v_other"),
        "d": gid(w, "District", "district"),
        "o": gid(w, "Organization", "org_a"),
        "name": f"{MARK}社区{_n()}",
    }


@dataclass(frozen=True)
class UploadFile:
    """A file a Write row sends as the part its variable names (GraphQL multipart request spec)."""

    name: str
    data: bytes


async def _vars_import_communities(w: World) -> dict[str, Any]:
    csv = f"社区名称,所在区县\n{MARK}导入社区{_n()},碑林区\n"
    return {"o": gid(w, "Organization", "org_a"), "f": UploadFile("c.csv", csv.encode())}


async def _vars_import_requests(w: World) -> dict[str, Any]:
    n = _n()
    csv = f"社区,需求标题,需求类别,紧急程度,求助人,联系电话\n社区c1,{MARK}导入{n},药品,一般,王,1370000{n:04d}\n"
    return {"o": gid(w, "Organization", "org_a"), "f": UploadFile("r.csv", csv.encode())}


async def _imported_one(w: World, token: str | None, payload: dict[str, Any]) -> None:
    # The row was accepted (created, or skipped as a probable duplicate of another role's row): not a row that
    # every caller sees rejected, which would make "OK" prove nothing.
    report = payload["report"]
    assert report["rejectedTotal"] == 0
    assert report["created"] + report.get("duplicatesTotal", 0) == 1


async def _send(w: World, token: str | None, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """`world.gql_as`, or a multipart request when a variable is an UploadFile."""
    files = {name: value for name, value in variables.items() if isinstance(value, UploadFile)}
    if not files:
        return await w.gql_as(token, query, variables)
    operations = {"query": query, "variables": {k: (None if k in files else v) for k, v in variables.items()}}
    parts = {str(i): (f.name, f.data, "text/csv") for i, f in enumerate(files.values())}
    file_map = {str(i): [f"variables.{name}"] for i, name in enumerate(files)}
    # Without a token the edge answers 401 UNAUTHENTICATED, the body unread (yunshegong.http, uploads).
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for _attempt in range(100):
        response = await w.http.post(
            "/graphql",
            headers=headers,
            data={"operations": json.dumps(operations), "map": json.dumps(file_map)},
            files=parts,
        )
        if response.status_code != 429:
            break
        # Every role uploads at once, past the process's uploads at once (settings.import_upload_concurrency):
        # retried as a client honouring Retry-After would, only sooner.
        await asyncio.sleep(0.05)
    # 403: a role that may import nothing is refused at the edge, its body unread (yunshegong.app, uploads).
    assert response.status_code in (200, 400, 401, 403), response.text
    return response.json()


async def _vars_seated(w: World) -> dict[str, Any]:
    return {"c": ids.encode("Community", await _community(w, liaison="v_other")), "v": gid(w, "Volunteer", "v_other")}


async def _vars_password(w: World) -> dict[str, Any]:
    return {"c": "correct horse battery", "n": "another long passphrase"}


async def _vars_reference(w: World) -> dict[str, Any]:
    return {"name": f"{MARK}{_n()}", "code": f"{MARK}code-{_n()}"}


RECORDER = "social_worker"  # who records the rows' residents (`_person`), and sends their referrals


async def _person(w: World) -> tuple[int, int]:
    """A fresh resident of A (with contact details), recorded through the API by the world's social worker
    (`RECORDER`: sees the record, masked, without serving the resident), and its consent to tell B's
    counseling the summary: (resident id, consent id)."""
    created = await w.gql(
        RECORDER,
        'mutation($name: String!) { m: createResident(input: {name: $name, phone: "13700005555", '
        'address: "碑林区粉巷3号"}) { resident { id } errors { code } } }',
        {"name": f"{MARK}居民{_n()}"},
    )
    assert created["data"]["m"]["errors"] == [], created
    resident = ids.decode(created["data"]["m"]["resident"]["id"], "Resident", ("id",))
    async with w.acting_for("a") as ctx:
        agreed = await consent.record_consent(
            ctx,
            resident_id=resident,
            scopes=["summary"],
            target="counseling",
            target_organization_id=w.ids["org_b"],
            purpose="心理支持",
        )
    return resident, agreed.id


async def _vars_resident(w: World) -> dict[str, Any]:
    resident, agreed = await _person(w)
    return {
        "r": ids.encode("Resident", resident),
        "c": ids.encode("Consent", agreed),
        "id": ids.encode("Resident", resident),
        "s": f"{MARK}{_n()}",
        "o": gid(w, "Organization", "org_b"),
    }


async def _vars_new_resident(w: World) -> dict[str, Any]:
    return {"c": gid(w, "Community", "c1"), "name": f"{MARK}居民{_n()}"}


async def _vars_consent(w: World) -> dict[str, Any]:
    _, agreed = await _person(w)
    return {"id": ids.encode("Consent", agreed)}


async def _vars_served(w: World) -> dict[str, Any]:
    """A fresh resident of A (recorded by `RECORDER`) whom A's counselor serves: a counseling client with a
    session booked with the world's counselor (hook `register_resident_relations`)."""
    variables = await _vars_resident(w)
    n = _n()
    start = datetime.combine(datetime.now(UTC).date() + timedelta(days=2 + n // 10), time(8 + n % 10), SHANGHAI)
    async with w.acting_for("a") as ctx:
        client = await counseling.register_client(
            ctx,
            name=f"{MARK}来访者{n}",
            phone="13700005555",
            consent=True,
            resident_id=ids.decode(variables["id"], "Resident", ("id",)),
        )
        await counseling.book_session(
            ctx,
            client_id=client.id,
            counselor_id=w.ids["counselor_a"],
            start=start,
            minutes=50,
            mode="online",
            meeting_link="https://meet.example/a",
        )
    return variables


async def _vars_sent_by_a(w: World) -> dict[str, Any]:
    """A referral of a fresh resident of A to B's counseling, sent through the API by `RECORDER` (the
    sending account: sees it without serving the resident)."""
    variables = await _vars_resident(w)
    sent = await w.gql(
        RECORDER,
        "mutation($r: ID!, $c: ID!, $s: String!, $o: ID!) { m: sendReferral(input: {residentId: $r, "
        'consentId: $c, summary: $s, targetPlugin: "counseling", targetOrganizationId: $o}) '
        "{ referral { id } errors { code } } }",
        {k: variables[k] for k in ("r", "c", "s", "o")},
    )
    assert sent["data"]["m"]["errors"] == [], sent
    return {"id": sent["data"]["m"]["referral"]["id"]}


async def _vars_to_counseling(w: World) -> dict[str, Any]:
    return {"id": ids.encode("Referral", await _referral_to_counseling(w, f"{MARK}{_n()}"))}


async def _vars_accepted_by_counseling(w: World) -> dict[str, Any]:
    return {"id": ids.encode("Referral", await _referral_to_counseling(w, f"{MARK}{_n()}", accepted=True))}


async def _contact_masked(w: World, token: str | None, payload: dict[str, Any]) -> None:
    # The mutation's own answer masks the new resident's phone and address as a read would: nobody serves
    # a resident just recorded (no case, no session yet), so its recorder too reads them masked.
    role = next(r for r, t in w.tokens.items() if t == token)
    shown = (payload["resident"]["phone"], payload["resident"]["address"])
    assert shown == ("137****6666", "碑林区****"), (role, shown)


async def _vars_parked(w: World) -> dict[str, Any]:
    """A fresh parked delivery of A (its recipient named with MARK)."""
    return {"id": ids.encode("Delivery", await _parked(w, "a", f"{MARK}收信人{_n()}", "13300009999"))}


async def _requeued(w: World, token: str | None, payload: dict[str, Any]) -> None:
    assert payload["delivery"] == {"status": "QUEUED", "attempts": 0}, payload


async def _webhook_configured(w: World, token: str | None, payload: dict[str, Any]) -> None:
    # A's endpoint, enabled, and the generated secret shown this once: reading the endpoint never shows it.
    shown = payload["webhookEndpoint"]
    assert (shown["url"], shown["enabled"], shown["organizationId"]) == (
        ENDPOINT["a"],
        True,
        gid(w, "Organization", "org_a"),
    ), payload
    assert payload["generatedSecret"]
    read = await w.gql_as(token, "{ webhookEndpoint { url enabled configuredBy createdAt updatedAt } }")
    assert read["data"]["webhookEndpoint"]["url"] == ENDPOINT["a"], read
    assert payload["generatedSecret"] not in str(read)


async def _put_back(w: World, token: str | None, payload: dict[str, Any]) -> None:
    # Whether this call or a concurrent one (the other role allowed) removed it; then A's endpoint is put back
    # as the world has it. Every removal is followed by its role's putting back: the row leaves it in place.
    assert isinstance(payload["removed"], bool), payload
    await _endpoint(w, "a")


async def _test_queued(w: World, token: str | None, payload: dict[str, Any]) -> None:
    assert payload["delivery"] == {"channel": "webhook", "status": "QUEUED", "kind": "webhook_test"}, payload


def expect(default: str = F, **given: str) -> dict[str, str]:
    """Everyone signed in gets `default` unless named; anonymous callers are told to sign in."""
    return per_role(**dict.fromkeys(SIGNED_IN, default) | {"anonymous": U} | given)


# The usual shape: administrators of A (and the platform) may; B's administrator is told A's record does not
# exist; the roles without the permission are refused.
ADMINS_OF_A = expect(platform_admin=OK, org_admin_a=OK, org_admin_b=N)
# Coordinators: administrators and the social worker serving c1.
COORDINATORS_OF_C1 = expect(platform_admin=OK, org_admin_a=OK, org_admin_b=N, social_worker=OK)
# A resident of A the rows make (`_person`): its recorder (the social worker) and A's administrators see it;
# everyone else, A's counselor included (serves nobody), is told it does not exist.
SEES_THE_RESIDENT = expect(N, platform_admin=OK, org_admin_a=OK, social_worker=OK, anonymous=U)

WRITES = [
    # -- accounts and tokens
    Write(
        "changePassword (a twin of each account signs in, so the world's tokens stay valid)",
        "mutation($c: String!, $n: String!) { m: changePassword(input: {currentPassword: $c, newPassword: $n}) "
        "{ token errors { code } } }",
        _vars_password,
        expect(OK, partner_a=U),
        sign_in=_twin,
        check=_password_changed,
    ),
    Write(
        "createAccount in org A",
        'mutation($o: ID!, $u: String!) { m: createAccount(input: {username: $u, displayName: "社工", '
        'password: "long enough password", role: SOCIAL_WORKER, organizationId: $o}) { errors { code } } }',
        _vars_org_a,
        expect(platform_admin=OK, org_admin_a=OK, org_admin_b=F),
    ),
    Write(
        "createApiToken for org A",
        "mutation($o: ID!, $name: String!) { m: createApiToken(input: {organizationId: $o, name: $name}) "
        "{ token errors { code } } }",
        _vars_org_a,
        expect(platform_admin=OK, org_admin_a=OK, org_admin_b=F),
        check=_token_shown,
    ),
    Write(
        "revokeApiToken of org A",
        _step("revokeApiToken"),
        _vars_token,
        ADMINS_OF_A,
    ),
    # -- imports (a multipart request: the Upload variable is sent as a file part, see `_send`)
    Write(
        "importRecords of communities into org A",
        "mutation($o: ID, $f: Upload!) { m: importRecords(input: {kind: COMMUNITIES, file: $f, organizationId: $o}) "
        "{ report { created rejectedTotal } errors { code } } }",
        _vars_import_communities,
        expect(platform_admin=OK, org_admin_a=OK, org_admin_b=F),
        check=_imported_one,
    ),
    Write(
        "importRecords of help requests for c1 (org A)",
        "mutation($o: ID, $f: Upload!) { m: importRecords(input: {kind: REQUESTS, file: $f, organizationId: $o}) "
        "{ report { created duplicatesTotal rejectedTotal } errors { code } } }",
        _vars_import_requests,
        expect(platform_admin=OK, org_admin_a=OK, org_admin_b=F, social_worker=OK, community_head=OK, partner_a=OK),
        check=_imported_one,
    ),
    # -- communities
    Write(
        "createCommunity in org A",
        "mutation($o: ID!, $d: ID!, $name: String!) { m: createCommunity(input: {name: $name, districtId: $d, "
        "organizationId: $o}) { errors { code } } }",
        _vars_community,
        expect(platform_admin=OK, org_admin_a=OK, org_admin_b=F),
    ),
    Write(
        "updateCommunity of org A",
        'mutation($c: ID!) { m: updateCommunity(input: {id: $c, headName: "新主任"}) { errors { code } } }',
        _vars_community,
        ADMINS_OF_A,
    ),
    Write(
        "addCommunityLiaison (org A)",
        "mutation($c: ID!, $v: ID!) { m: addCommunityLiaison(input: {communityId: $c, volunteerId: $v}) "
        "{ errors { code } } }",
        _vars_community,
        ADMINS_OF_A,
    ),
    Write(
        "removeCommunityLiaison (org A)",
        "mutation($c: ID!, $v: ID!) { m: removeCommunityLiaison(input: {communityId: $c, volunteerId: $v}) "
        "{ errors { code } } }",
        _vars_seated,
        ADMINS_OF_A,
    ),
    # -- volunteers
    Write(
        "registerVolunteer in org A",
        "mutation($o: ID!, $p: String!, $name: String!) { m: registerVolunteer(input: {name: $name, phone: $p, "
        "mode: ONLINE, organizationId: $o, availability: OFF}) { errors { code } } }",
        _vars_register,
        expect(platform_admin=OK, org_admin_a=OK, org_admin_b=F),
    ),
    Write(
        "updateVolunteer: the driver's availability (self-service)",
        "mutation($v: ID!) { m: updateVolunteer(input: {id: $v, availability: AVAILABLE}) { errors { code } } }",
        _vars_driver,
        expect(platform_admin=OK, org_admin_a=OK, org_admin_b=N, volunteer=OK),
    ),
    Write(
        "updateVolunteer: rename a volunteer of org A",
        "mutation($v: ID!, $name: String!) { m: updateVolunteer(input: {id: $v, name: $name}) { errors { code } } }",
        _vars_fresh_volunteer,
        ADMINS_OF_A,
    ),
    Write(
        "addVolunteerCredential (org A)",
        "mutation($v: ID!) { m: addVolunteerCredential(input: {volunteerId: $v, kind: WORK_PERMIT}) "
        "{ errors { code } } }",
        _vars_fresh_volunteer,
        ADMINS_OF_A,
    ),
    Write(
        "recordVolunteerTraining (org A)",
        "mutation($v: ID!, $t: ID!) { m: recordVolunteerTraining(input: {volunteerId: $v, trainingId: $t, "
        'completedAt: "2026-01-05T10:00:00+08:00"}) { errors { code } } }',
        _vars_fresh_volunteer,
        ADMINS_OF_A,
    ),
    Write(
        "addAvailabilityWindow: the driver's hours",
        'mutation($v: ID!) { m: addAvailabilityWindow(input: {volunteerId: $v, weekday: 0, start: "09:00", '
        'end: "12:00"}) { errors { code } } }',
        _vars_driver,
        expect(platform_admin=OK, org_admin_a=OK, org_admin_b=N, volunteer=OK),
    ),
    Write(
        "addAvailabilityException: the driver's leave",
        "mutation($v: ID!, $s: DateTime!, $e: DateTime!) { m: addAvailabilityException(input: {volunteerId: $v, "
        'start: $s, end: $e, reason: "leave"}) { errors { code } } }',
        _vars_driver,
        expect(platform_admin=OK, org_admin_a=OK, org_admin_b=N, volunteer=OK),
    ),
    # -- help requests
    Write(
        "submitHelpRequest for c1",
        "mutation($c: ID!, $t: String!) { m: submitHelpRequest(input: {communityId: $c, title: $t, category: FOOD, "
        'urgency: LOW, requesterName: "a", requesterPhone: "13800000000"}) { errors { code } } }',
        _vars_submit,
        expect(platform_admin=OK, org_admin_a=OK, org_admin_b=N, social_worker=OK, community_head=OK, partner_a=OK),
    ),
    Write(
        "updateHelpRequest of c1",
        'mutation($id: ID!) { m: updateHelpRequest(input: {id: $id, description: "更新"}) { errors { code } } }',
        _vars_submitted_c1,
        expect(platform_admin=OK, org_admin_a=OK, org_admin_b=N, social_worker=OK, community_head=OK, partner_a=OK),
    ),
    Write(
        "verifyHelpRequest of c2 (not served by the social worker)",
        _step("verifyHelpRequest"),
        _vars_verify,
        expect(platform_admin=OK, org_admin_a=OK, org_admin_b=N, social_worker=N),
    ),
    Write(
        "rejectHelpRequest of c1",
        _step("rejectHelpRequest", ', reason: "not real"'),
        _vars_submitted_c1,
        COORDINATORS_OF_C1,
    ),
    Write(
        "cancelHelpRequest of c1",
        _step("cancelHelpRequest", ', reason: "done"'),
        _vars_submitted_c1,
        expect(platform_admin=OK, org_admin_a=OK, org_admin_b=N, social_worker=OK, community_head=OK),
    ),
    Write(
        "startHelpRequest of c1",
        _step("startHelpRequest"),
        _vars_matched,
        COORDINATORS_OF_C1,
    ),
    Write(
        "mergeHelpRequests of c1",
        "mutation($k: ID!, $d: ID!) { m: mergeHelpRequests(input: {keepId: $k, duplicateId: $d}) { errors { code } } }",
        _vars_merge,
        COORDINATORS_OF_C1,
    ),
    Write(
        "fulfillHelpRequest of c1",
        _step("fulfillHelpRequest"),
        _vars_in_progress,
        COORDINATORS_OF_C1,
    ),
    # -- assignments
    Write(
        "commitPlan: a request of c1 with a volunteer of A",
        "mutation($r: ID!, $v: ID!) { m: commitPlan(input: {items: [{requestId: $r, volunteerId: $v}]}) "
        "{ errors { code } } }",
        _vars_offer,
        # commitPlan answers STALE_PLAN for any item that no longer fits, a hidden record included: the same
        # answer as for a request that does not exist (the next row).
        COORDINATORS_OF_C1 | {"org_admin_b": "STALE_PLAN"},
    ),
    Write(
        "commitPlan: a request that does not exist",
        "mutation($r: ID!, $v: ID!) { m: commitPlan(input: {items: [{requestId: $r, volunteerId: $v}]}) "
        "{ errors { code } } }",
        _vars_missing_request,
        expect(
            platform_admin="STALE_PLAN", org_admin_a="STALE_PLAN", org_admin_b="STALE_PLAN", social_worker="STALE_PLAN"
        ),
    ),
    Write(
        "commitPlan: B's volunteer for a request of A",
        "mutation($r: ID!, $v: ID!) { m: commitPlan(input: {items: [{requestId: $r, volunteerId: $v}]}) "
        "{ errors { code } } }",
        _vars_offer_b_volunteer,
        expect(
            platform_admin="STALE_PLAN", org_admin_a="STALE_PLAN", org_admin_b="STALE_PLAN", social_worker="STALE_PLAN"
        ),
    ),
    Write(
        "offerAssignment: a request of c1, a volunteer of A",
        "mutation($r: ID!, $v: ID!) { m: offerAssignment(input: {requestId: $r, volunteerId: $v}) "
        "{ errors { code } } }",
        _vars_offer,
        COORDINATORS_OF_C1,
    ),
    Write(
        "offerAssignment: B's volunteer for a request of A",
        "mutation($r: ID!, $v: ID!) { m: offerAssignment(input: {requestId: $r, volunteerId: $v}) "
        "{ errors { code } } }",
        _vars_offer_b_volunteer,
        expect(platform_admin="ORGANIZATION_MISMATCH", org_admin_a=N, org_admin_b=N, social_worker=N),
    ),
    Write(
        "acceptAssignment: the driver's offer",
        _step("acceptAssignment"),
        _vars_driver_offer,
        expect(platform_admin=OK, org_admin_a=OK, org_admin_b=N, social_worker=OK, volunteer=OK),
    ),
    Write(
        "declineAssignment: the driver's offer",
        _step("declineAssignment"),
        _vars_driver_offer,
        expect(platform_admin=OK, org_admin_a=OK, org_admin_b=N, social_worker=OK, volunteer=OK),
    ),
    Write(
        "declineAssignment: someone else's offer",
        _step("declineAssignment"),
        _vars_other_offer,
        expect(platform_admin=OK, org_admin_a=OK, org_admin_b=N, social_worker=OK, volunteer=N),
    ),
    Write(
        "withdrawAssignment (coordinators only)",
        _step("withdrawAssignment", ', reason: "plans changed"'),
        _vars_driver_offer,
        COORDINATORS_OF_C1,
    ),
    Write(
        "completeAssignment: the driver's work",
        _step("completeAssignment", ', hours: "1.5"'),
        _vars_driver_working,
        expect(platform_admin=OK, org_admin_a=OK, org_admin_b=N, social_worker=OK, volunteer=OK),
    ),
    # -- residents, consents, referrals
    Write(
        "createResident in c1 (org A)",
        "mutation($c: ID!, $name: String!) { m: createResident(input: {name: $name, communityId: $c, "
        'phone: "13700006666", address: "碑林区粉巷6号"}) { resident { phone address } errors { code } } }',
        _vars_new_resident,
        expect(platform_admin=OK, org_admin_a=OK, org_admin_b=N, social_worker=OK, counselor=OK),
        check=_contact_masked,
    ),
    Write(
        "createResident in the caller's own organisation (no community)",
        "mutation($name: String!) { m: createResident(input: {name: $name}) { errors { code } } }",
        _vars_new_resident,
        expect(platform_admin=OK, org_admin_a=OK, org_admin_b=OK, social_worker=OK, counselor=OK),
    ),
    Write(
        # Only those who serve the resident change the record (here A's counselor, by a counseling session);
        # administrators and the recorder see it and are refused; everyone else is told it does not exist.
        "updateResident of org A (recorded by the social worker, served by the counselor)",
        'mutation($id: ID!) { m: updateResident(input: {id: $id, address: "碑林区粉巷7号"}) { errors { code } } }',
        _vars_served,
        expect(N, platform_admin=F, org_admin_a=F, social_worker=F, counselor=OK, anonymous=U),
    ),
    Write(
        # Consents and referrals: those who see the resident (administrators, the recorder); another staff
        # member of the organisation (the counselor) is told the resident does not exist.
        "recordConsent for a resident of org A (for B's counseling)",
        "mutation($r: ID!, $o: ID!) { m: recordConsent(input: {residentId: $r, scopes: [SUMMARY], "
        'target: "counseling", targetOrganizationId: $o, purpose: "心理支持"}) { errors { code } } }',
        _vars_resident,
        SEES_THE_RESIDENT,
    ),
    Write(
        "revokeConsent of org A",
        _step("revokeConsent", ', reason: "居民撤回"'),
        _vars_consent,
        SEES_THE_RESIDENT,
    ),
    Write(
        "recordConsent to tell an outside organisation",
        "mutation($r: ID!) { m: recordConsent(input: {residentId: $r, scopes: [SUMMARY], "
        'target: "区医院", targetKind: OUTSIDE, purpose: "转介"}) { errors { code } } }',
        _vars_resident,
        SEES_THE_RESIDENT,
    ),
    Write(
        "sendReferral: A's resident to B's counseling",
        "mutation($r: ID!, $c: ID!, $s: String!, $o: ID!) { m: sendReferral(input: {residentId: $r, consentId: $c, "
        'summary: $s, targetPlugin: "counseling", targetOrganizationId: $o}) { errors { code } } }',
        _vars_resident,
        SEES_THE_RESIDENT,
    ),
    Write(
        "acceptReferral: B's referral to A's counseling (its staff)",
        _step("acceptReferral"),
        _vars_to_counseling,
        expect(N, platform_admin=OK, org_admin_a=OK, social_worker=OK, counselor=OK, anonymous=U),
    ),
    Write(
        "declineReferral: B's referral to A's counseling",
        _step("declineReferral", ', reason: "暂无空档"'),
        _vars_to_counseling,
        expect(N, platform_admin=OK, org_admin_a=OK, social_worker=OK, counselor=OK, anonymous=U),
    ),
    Write(
        "completeReferral: B's referral A's counseling accepted",
        _step("completeReferral", ', note: "结案"'),
        _vars_accepted_by_counseling,
        expect(N, platform_admin=OK, org_admin_a=OK, social_worker=OK, counselor=OK, anonymous=U),
    ),
    Write(
        "revokeReferral: one A sent to B's counseling (the sending account, the sender's administrators)",
        _step("revokeReferral", ', reason: "居民改变主意"'),
        _vars_sent_by_a,
        SEES_THE_RESIDENT,
    ),
    Write(
        "revokeReferral: one B sent to A's counseling (not the recipient's to withdraw)",
        _step("revokeReferral"),
        _vars_to_counseling,
        expect(N, org_admin_b=OK, anonymous=U),
    ),
    # -- delivery: administrators of A (and the platform); A's administrators only for A
    Write(
        "retryDelivery: a parked delivery of org A (queued again, its attempts counted afresh)",
        "mutation($id: ID!) { m: retryDelivery(input: {id: $id}) { delivery { status attempts } errors { code } } }",
        _vars_parked,
        ADMINS_OF_A,
        check=_requeued,
    ),
    Write(
        "configureWebhook for org A (the world's URL again: A's endpoint stays as it was)",
        f'mutation($o: ID!) {{ m: configureWebhook(input: {{url: "{ENDPOINT["a"]}", organizationId: $o}}) '
        "{ webhookEndpoint { url enabled organizationId } generatedSecret errors { code } } }",
        _vars_org_a,
        expect(platform_admin=OK, org_admin_a=OK, org_admin_b=F),
        check=_webhook_configured,
    ),
    Write(
        "removeWebhook of org A (put back after each removal)",
        "mutation($o: ID!) { m: removeWebhook(input: {organizationId: $o}) { removed errors { code } } }",
        _vars_org_a,
        expect(platform_admin=OK, org_admin_a=OK, org_admin_b=F),
        check=_put_back,
    ),
    Write(
        "sendTestWebhook to org A's endpoint (queued only: nothing in this module sends)",
        "mutation($o: ID!) { m: sendTestWebhook(input: {organizationId: $o}) { delivery { channel status kind } "
        "errors { code } } }",
        _vars_org_a,
        expect(platform_admin=OK, org_admin_a=OK, org_admin_b=F),
        check=_test_queued,
    ),
    # -- reference data and plugins
    Write(
        "createOrganization (platform administrators)",
        "mutation($name: String!) { m: createOrganization(input: {name: $name, kind: AGENCY}) { errors { code } } }",
        _vars_reference,
        expect(platform_admin=OK),
    ),
    Write(
        "createDistrict (platform administrators)",
        "mutation($name: String!) { m: createDistrict(input: {name: $name, kind: COUNTY}) { errors { code } } }",
        _vars_reference,
        expect(platform_admin=OK),
    ),
    Write(
        "createTraining",
        "mutation($name: String!, $code: String!) { m: createTraining(input: {code: $code, name: $name}) "
        "{ errors { code } } }",
        _vars_reference,
        expect(platform_admin=OK, org_admin_a=OK, org_admin_b=OK),
    ),
    Write(
        "grantPluginRole to a fresh account of A",
        'mutation($a: ID!) { m: grantPluginRole(input: {accountId: $a, role: "counseling.supervisor"}) '
        "{ errors { code } } }",
        _vars_account_of_a,
        ADMINS_OF_A,
    ),
    Write(
        "revokePluginRole of a fresh account of A",
        'mutation($a: ID!) { m: revokePluginRole(input: {accountId: $a, role: "counseling.supervisor"}) '
        "{ errors { code } } }",
        _vars_account_of_a,
        ADMINS_OF_A,
    ),
    Write(
        "setPluginEnabled for org A (an unknown plugin: checked after the permission)",
        'mutation($o: ID!) { m: setPluginEnabled(input: {organizationId: $o, plugin: "nope", enabled: true}) '
        "{ errors { code } } }",
        _vars_org_a,
        expect(platform_admin="UNKNOWN_PLUGIN", org_admin_a="UNKNOWN_PLUGIN", org_admin_b=F),
    ),
]


async def _write(world: World, row: Write, role: str) -> str:
    token = await row.sign_in(world, role) if row.sign_in else world.tokens.get(role)
    variables = await row.prepare(world)
    body = await _send(world, token, row.query, variables)
    code = _error_code(body)
    errors = body["data"]["m"]["errors"] if not code else []
    observed = code or (errors[0]["code"] if errors else OK)
    if observed == OK and row.check:
        await row.check(world, token, body["data"]["m"])
    return observed


@pytest.mark.parametrize(("row", "roles"), _cases(WRITES))
async def test_write_matrix(world: World, row: Write, roles: tuple[str, ...]) -> None:
    observed = dict(zip(roles, await asyncio.gather(*(_write(world, row, role) for role in roles)), strict=True))
    assert observed == {role: row.expect[role] for role in roles}


# -- completeness ---------------------------------------------------------------------------------------------------

# Core root fields the matrix cannot exercise, and why.
EXEMPT = {
    # Signing in is how every row's caller gets its token (access_world.build_world signs each account in for
    # real); it takes no token, so there is nothing per role to check. tests/schema/test_auth* cover it.
    "Mutation.login",
    # Served over websockets only: tests/schema/subscriptions/test_fields.py and tests/e2e/test_two_processes.py
    # check who receives what.
    "Subscription.helpRequestChanged",
    "Subscription.myOffers",
    "Subscription.coordinatorQueue",
}
PLUGIN_PREFIXES = ("supplies", "counseling", "caseWork", "maternalCare")


def _core_root_fields() -> set[str]:
    schema = build_schema(Settings(), build_plugin_host(entry_points=False))._schema
    found = set()
    for type_name in ("Query", "Mutation", "Subscription"):
        root = schema.get_type(type_name)
        if root is None:
            continue
        found |= {f"{type_name}.{name}" for name in root.fields if not name.startswith(PLUGIN_PREFIXES)}
    return found


def _root_fields_of(query: str) -> set[str]:
    document = graphql.parse(query)
    names = set()
    for definition in document.definitions:
        assert isinstance(definition, graphql.OperationDefinitionNode)
        root = definition.operation.value.capitalize()
        names |= {
            f"{root}.{s.name.value}" for s in definition.selection_set.selections if isinstance(s, graphql.FieldNode)
        }
    return names


def test_every_core_root_field_has_a_row() -> None:
    covered = set().union(*(_root_fields_of(r.query) for r in [*READS, *WRITES]))
    core = _core_root_fields()
    assert core - covered - EXEMPT == set(), "core root fields without a row in the permission matrix"
    assert core >= EXEMPT, "an exemption names a field that no longer exists"
    assert not EXEMPT & covered, "an exempted field has a row: drop the exemption"


def _positive(value: Any) -> bool:
    return value not in (NULL, [], (NULL, NULL)) and not (isinstance(value, str) and value.isupper() and value != OK)


def test_every_field_has_a_positive_control() -> None:
    # Through every root field some role gets content (a read) or succeeds (a write), otherwise "sees
    # nothing" proves nothing. A row that only shows a refusal (e.g. another organisation's volunteer) relies
    # on a sibling row of the same field for its control.
    positive: set[str] = set()
    for read in READS:
        if any(_positive(v) for r, v in read.expect.items() if r != "platform_admin"):
            positive |= _root_fields_of(read.query)
    for write in WRITES:
        if any(v in (OK, "UNKNOWN_PLUGIN") for v in write.expect.values()):
            positive |= _root_fields_of(write.query)
    covered = set().union(*(_root_fields_of(r.query) for r in [*READS, *WRITES]))
    assert covered - positive == set()
