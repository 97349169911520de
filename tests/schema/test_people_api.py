"""Residents, consents and referrals through /graphql, every caller a real account signed in through `login`
(the test kit): the round trip sent → accepted → completed, declining, revoking, a consent revoked mid-way,
refusals that write nothing, who can NOT see what, a referral to supplies, and the statement count of
`referralsReceived`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from core.models import Consent, Referral, Resident
from plugins.counseling.models import Client as CounselingClient
from schema import ids
from tests.conftest import Clock, StatementCounter
from yunshegong.testing import Client, Harness

PHONE, MASKED_PHONE = "13900001111", "139****1111"
ADDRESS, MASKED_ADDRESS = "碑林区粉巷1号", "碑林区****"
NOT_FOUND = [{"code": "NOT_FOUND"}]

CREATE_RESIDENT = """mutation($name: String!) {
  m: createResident(input: {name: $name, phone: "13900001111", address: "碑林区粉巷1号"}) {
    resident { id name phone address } errors { code field } } }"""
RECORD_CONSENT = """mutation($r: ID!, $scopes: [ConsentScope!]!, $target: String!, $org: ID) {
  m: recordConsent(input: {residentId: $r, scopes: $scopes, target: $target, targetOrganizationId: $org,
                           purpose: "心理支持"}) {
    consent { id scopes target inForce } errors { code field } } }"""
REVOKE_CONSENT = """mutation($id: ID!) {
  m: revokeConsent(input: {id: $id, reason: "居民撤回同意"}) {
    consent { inForce revokedBy } errors { code field } } }"""
SEND = """mutation($r: ID!, $c: ID!, $plugin: String, $org: ID, $outside: String) {
  m: sendReferral(input: {residentId: $r, consentId: $c, summary: "丧偶后情绪低落，需要心理支持",
                          targetPlugin: $plugin, targetOrganizationId: $org, targetOutside: $outside}) {
    referral { id status summary targetPlugin residentId } errors { code field } } }"""
ACCEPT = """mutation($id: ID!) {
  m: acceptReferral(input: {id: $id}) { referral { id status answeredBy } errors { code field } } }"""
DECLINE = """mutation($id: ID!, $reason: String!) {
  m: declineReferral(input: {id: $id, reason: $reason}) { referral { status declineReason } errors { code field } } }"""
COMPLETE = """mutation($id: ID!) {
  m: completeReferral(input: {id: $id, note: "八次咨询后结案"}) { referral { status completionNote }
    errors { code field } } }"""
REVOKE = """mutation($id: ID!) {
  m: revokeReferral(input: {id: $id, reason: "居民改变主意"}) { referral { status } errors { code field } } }"""
RESIDENT = "query($id: ID!) { resident(id: $id) { name phone address consents { target inForce } } }"
RECEIVED = "{ referralsReceived { totalCount nodes { id status summary residentId sentBy } } }"
SENT = "{ referralsSent { nodes { id status declineReason completionNote revokeReason residentId } } }"
NODE = "query($id: ID!) { node(id: $id) { ... on Referral { id summary } } }"


@dataclass
class People:
    """A social work organisation (`home`) whose social worker refers a resident to the counseling agency."""

    kit: Harness
    home: int
    agency: int
    worker: Client
    counselor: Client
    resident: str

    async def consent(
        self, scopes: tuple[str, ...] = ("SUMMARY",), target: str = "counseling", *, to: int | None = None
    ) -> str:
        """A consent to share `scopes` with `target` of the agency (or of organisation `to`)."""
        org = ids.encode("Organization", to if to is not None else self.agency)
        data = await self.worker(
            RECORD_CONSENT, {"r": self.resident, "scopes": list(scopes), "target": target, "org": org}
        )
        assert data["m"]["errors"] == []
        return str(data["m"]["consent"]["id"])

    async def send(self, consent: str, *, to: int | None = None, plugin: str = "counseling") -> dict[str, Any]:
        org = ids.encode("Organization", to if to is not None else self.agency)
        data = await self.worker(SEND, {"r": self.resident, "c": consent, "plugin": plugin, "org": org})
        return dict(data["m"])

    async def referral(self, scopes: tuple[str, ...] = ("SUMMARY",)) -> tuple[str, str]:
        """A sent referral to the agency's counseling and its consent: (referral id, consent id)."""
        consent = await self.consent(scopes)
        sent = await self.send(consent)
        assert sent["errors"] == []
        return str(sent["referral"]["id"]), consent

    async def rows(self) -> tuple[int, int, int, int]:
        """Referrals, consents, residents, counseling clients: of every organisation."""
        async with self.kit.service() as ctx:
            counts = [
                await ctx.session.scalar(select(func.count()).select_from(m))
                for m in (Referral, Consent, Resident, CounselingClient)
            ]
        return tuple(int(n or 0) for n in counts)  # type: ignore[return-value]


@pytest.fixture
async def people(kit: Harness) -> People:
    home = await kit.organization("社工站")
    agency = await kit.organization("心理援助中心", plugins=["counseling"])
    worker = await kit.sign_in("social_worker", home)
    counselor = await kit.sign_in("counselor", agency)
    made = await worker(CREATE_RESIDENT, {"name": "王阿姨"})
    assert made["m"]["errors"] == []
    return People(kit, home, agency, worker, counselor, made["m"]["resident"]["id"])


async def test_round_trip_sent_received_accepted_completed(people: People) -> None:
    p = people
    # given a consent to share the summary and contact details with counseling
    referral, _ = await p.referral(scopes=("SUMMARY", "CONTACT"))
    # when the agency's counselor lists what was referred to them
    [node] = (await p.counselor(RECEIVED))["referralsReceived"]["nodes"]
    # then they read the summary and who sent it, never the resident's id (nor the resident)
    assert (node["id"], node["status"], node["summary"], node["residentId"]) == (
        referral,
        "SENT",
        "丧偶后情绪低落，需要心理支持",
        None,
    )
    assert node["sentBy"].startswith("social_worker-")
    assert (await p.counselor(RESIDENT, {"id": p.resident}))["resident"] is None
    # when they accept it
    accepted = (await p.counselor(ACCEPT, {"id": referral}))["m"]
    assert accepted["errors"] == []
    assert accepted["referral"]["status"] == "ACCEPTED"
    # then counseling keeps its own client, with the contact details the consent covered
    clients = await p.counselor("{ counselingClients { nodes { name phone } } }")
    assert clients["counselingClients"]["nodes"] == [{"name": "王阿姨", "phone": PHONE}]
    # when they complete it, the sender sees it completed with the note
    done = (await p.counselor(COMPLETE, {"id": referral}))["m"]
    assert done == {"referral": {"status": "COMPLETED", "completionNote": "八次咨询后结案"}, "errors": []}
    [sent] = (await p.worker(SENT))["referralsSent"]["nodes"]
    assert (sent["id"], sent["status"], sent["completionNote"], sent["residentId"]) == (
        referral,
        "COMPLETED",
        "八次咨询后结案",
        p.resident,
    )
    # and a completed referral cannot be completed again
    assert (await p.counselor(COMPLETE, {"id": referral}))["m"]["errors"] == [
        {"code": "INVALID_TRANSITION", "field": ["input", "id"]}
    ]


async def test_declining_needs_a_reason_and_the_sender_reads_it(people: People) -> None:
    p = people
    referral, _ = await p.referral()
    # a blank reason is refused and changes nothing
    blank = (await p.counselor(DECLINE, {"id": referral, "reason": " "}))["m"]
    assert blank == {"referral": None, "errors": [{"code": "REQUIRED", "field": ["input", "reason"]}]}
    assert (await p.counselor(RECEIVED))["referralsReceived"]["nodes"][0]["status"] == "SENT"
    # with a reason it is declined, and the sender reads why
    declined = (await p.counselor(DECLINE, {"id": referral, "reason": "本机构暂无空档"}))["m"]
    assert declined == {"referral": {"status": "DECLINED", "declineReason": "本机构暂无空档"}, "errors": []}
    [sent] = (await p.worker(SENT))["referralsSent"]["nodes"]
    assert (sent["status"], sent["declineReason"]) == ("DECLINED", "本机构暂无空档")
    # and a declined referral cannot be accepted afterwards, nor revoked by the sender
    assert (await p.counselor(ACCEPT, {"id": referral}))["m"]["errors"][0]["code"] == "INVALID_TRANSITION"
    assert (await p.worker(REVOKE, {"id": referral}))["m"]["errors"][0]["code"] == "INVALID_TRANSITION"
    # no client was made
    assert (await p.rows())[3] == 0


async def test_consent_vocabulary_and_the_status_filter_are_enums_and_in_force_reads_the_request_clock(
    people: People, clock: Clock
) -> None:
    p = people
    # given two referrals to counseling, one declined
    declined, _ = await p.referral()
    kept, _ = await p.referral()
    assert (await p.counselor(DECLINE, {"id": declined, "reason": "本机构暂无空档"}))["m"]["errors"] == []
    # when each side filters its list by status, it gets only those
    listed = """query($s: [ReferralStatus!]) { sent: referralsSent(filter: {statuses: $s}) { nodes { id status } }
      received: referralsReceived(filter: {statuses: $s}) { nodes { id status } } }"""
    for statuses, expected in ((["DECLINED"], [(declined, "DECLINED")]), (["SENT", "ACCEPTED"], [(kept, "SENT")])):
        sent = (await p.worker(listed, {"s": statuses}))["sent"]["nodes"]
        received = (await p.counselor(listed, {"s": statuses}))["received"]["nodes"]
        assert [(n["id"], n["status"]) for n in sent] == expected, statuses
        assert [(n["id"], n["status"]) for n in received] == expected, statuses
    # and a value outside the vocabulary (a service's lowercase value included) is refused by the schema
    for wrong in ("sent", "LOST"):
        body = await p.worker.raw(listed, {"s": [wrong]})
        assert body.get("data") is None, wrong
        assert body["errors"], wrong
    # (the clock moves last: row-level security reads the database's clock, so referrals would vanish)
    # given a consent to tell an outside body the summary and contact details, for an hour
    until = (clock.now + timedelta(hours=1)).isoformat()
    recorded = (
        await p.worker(
            """mutation($r: ID!, $until: DateTime) { m: recordConsent(input: {residentId: $r,
              scopes: [SUMMARY, CONTACT], target: "区医院", targetKind: OUTSIDE, purpose: "转介",
              validUntil: $until}) { consent { scopes targetKind inForce } errors { code field } } }""",
            {"r": p.resident, "until": until},
        )
    )["m"]
    # then it reads back in the enums' names
    assert recorded == {
        "consent": {"scopes": ["SUMMARY", "CONTACT"], "targetKind": "OUTSIDE", "inForce": True},
        "errors": [],
    }
    # when the request's clock passes its end, it is no longer in force (the wall clock has not)
    clock.now += timedelta(hours=2)  # within the sign-in tokens' lifetime
    consents = (
        await p.worker("query($id: ID!) { resident(id: $id) { consents { targetKind inForce } } }", {"id": p.resident})
    )["resident"]["consents"]
    # (newest first: the referrals' consents have no end)
    assert consents == [{"targetKind": "OUTSIDE", "inForce": False}] + [{"targetKind": "PLUGIN", "inForce": True}] * 2


async def test_the_sender_revokes_and_the_recipient_loses_it_at_once(people: People) -> None:
    p = people
    referral, _ = await p.referral()
    assert (await p.counselor(NODE, {"id": referral}))["node"] == {
        "id": referral,
        "summary": "丧偶后情绪低落，需要心理支持",
    }
    # the recipient cannot revoke it (not theirs to withdraw)
    assert (await p.counselor(REVOKE, {"id": referral}))["m"]["errors"] == [
        {"code": "NOT_FOUND", "field": ["input", "id"]}
    ]
    # when the sender revokes it
    revoked = (await p.worker(REVOKE, {"id": referral}))["m"]
    assert revoked == {"referral": {"status": "REVOKED"}, "errors": []}
    # then the recipient's next requests see nothing and cannot act on it
    assert (await p.counselor(RECEIVED))["referralsReceived"] == {"totalCount": 0, "nodes": []}
    assert (await p.counselor(NODE, {"id": referral}))["node"] is None
    assert (await p.counselor(ACCEPT, {"id": referral}))["m"]["errors"] == [
        {"code": "NOT_FOUND", "field": ["input", "id"]}
    ]
    # while the sender keeps the record, with the reason
    [sent] = (await p.worker(SENT))["referralsSent"]["nodes"]
    assert (sent["status"], sent["revokeReason"]) == ("REVOKED", "居民改变主意")


async def test_revoking_the_consent_hides_an_accepted_referral_from_the_recipient_at_once(people: People) -> None:
    p = people
    referral, consent = await p.referral()
    assert (await p.counselor(ACCEPT, {"id": referral}))["m"]["errors"] == []
    assert [n["id"] for n in (await p.counselor(RECEIVED))["referralsReceived"]["nodes"]] == [referral]
    # when the resident withdraws the consent
    revoked = (await p.worker(REVOKE_CONSENT, {"id": consent}))["m"]
    assert (revoked["errors"], revoked["consent"]["inForce"]) == ([], False)
    # then the same query, next request, returns nothing; nor does `node`; completing it is NOT_FOUND
    assert (await p.counselor(RECEIVED))["referralsReceived"] == {"totalCount": 0, "nodes": []}
    assert (await p.counselor(NODE, {"id": referral}))["node"] is None
    assert (await p.counselor(COMPLETE, {"id": referral}))["m"]["errors"] == [
        {"code": "NOT_FOUND", "field": ["input", "id"]}
    ]
    # the sender sees the referral revoked with it (same transaction), and the consent as revoked on the resident
    [sent] = (await p.worker(SENT))["referralsSent"]["nodes"]
    assert (sent["status"], sent["revokeReason"]) == ("REVOKED", "consent revoked")
    consents = (await p.worker(RESIDENT, {"id": p.resident}))["resident"]["consents"]
    assert consents == [{"target": "counseling", "inForce": False}]
    # and revoking it twice is refused
    assert (await p.worker(REVOKE_CONSENT, {"id": consent}))["m"]["errors"][0]["code"] == "INVALID_TRANSITION"


async def test_refused_referrals_answer_typed_codes_and_write_nothing(people: People) -> None:
    p = people
    good = await p.consent()
    other_service = await p.consent(target="supplies")
    contact_only = await p.consent(scopes=("CONTACT",))
    revoked = await p.consent()
    assert (await p.worker(REVOKE_CONSENT, {"id": revoked}))["m"]["errors"] == []
    supplies_only = await p.kit.organization("物资站", plugins=["supplies"])
    before = await p.rows()
    for consent, to, plugin, expected in (
        # no consent covers it: another service's, one without the summary, a revoked one
        (other_service, p.agency, "counseling", ("CONSENT_REQUIRED", ["input", "consentId"])),
        (contact_only, p.agency, "counseling", ("CONSENT_REQUIRED", ["input", "consentId"])),
        (revoked, p.agency, "counseling", ("CONSENT_REQUIRED", ["input", "consentId"])),
        # the receiving organisation has not enabled counseling (or does not exist: the same answer)
        (good, supplies_only, "counseling", ("REFERRAL_TARGET_DISABLED", ["input", "targetOrganizationId"])),
        (good, 987654321, "counseling", ("REFERRAL_TARGET_DISABLED", ["input", "targetOrganizationId"])),
        # no plugin offers such a target
        (good, p.agency, "astrology", ("REFERRAL_TARGET_UNKNOWN", ["input", "targetPlugin"])),
    ):
        sent = await p.send(consent, to=to, plugin=plugin)
        assert sent["referral"] is None
        assert [(e["code"], e["field"]) for e in sent["errors"]] == [expected], (plugin, to)
    assert await p.rows() == before
    # a consent of another resident does not cover this one
    second = (await p.worker(CREATE_RESIDENT, {"name": "李大爷"}))["m"]["resident"]["id"]
    theirs = await p.worker(
        RECORD_CONSENT,
        {"r": second, "scopes": ["SUMMARY"], "target": "counseling", "org": ids.encode("Organization", p.agency)},
    )
    before = await p.rows()
    sent = await p.send(theirs["m"]["consent"]["id"])
    assert [e["code"] for e in sent["errors"]] == ["CONSENT_REQUIRED"]
    assert await p.rows() == before
    # with the right consent the same call goes through (the refusals were about what they named)
    assert (await p.send(good))["errors"] == []


async def test_who_can_not_see_residents_consents_and_referrals(people: People) -> None:
    p, kit = people, people.kit
    referral, consent = await p.referral()
    third = await kit.organization("别的机构", plugins=["counseling"])
    callers = {
        "home volunteer": await kit.sign_in("volunteer", p.home),
        "home community head": await kit.sign_in("community_head", p.home, community_id=await kit.community(p.home)),
        "agency volunteer": await kit.sign_in("volunteer", p.agency),
        "agency community head": await kit.sign_in(
            "community_head", p.agency, community_id=await kit.community(p.agency)
        ),
        "other organisation's admin": await kit.sign_in("organization_admin", third),
        "other organisation's counselor": await kit.sign_in("counselor", third),
    }
    writes = (
        (ACCEPT, {"id": referral}),
        (DECLINE, {"id": referral, "reason": "x"}),
        (COMPLETE, {"id": referral}),
        (REVOKE, {"id": referral}),
        (REVOKE_CONSENT, {"id": consent}),
        (
            RECORD_CONSENT,
            {
                "r": p.resident,
                "scopes": ["SUMMARY"],
                "target": "counseling",
                "org": ids.encode("Organization", p.agency),
            },
        ),
        (SEND, {"r": p.resident, "c": consent, "plugin": "counseling", "org": ids.encode("Organization", p.agency)}),
    )
    before = await p.rows()
    for name, caller in callers.items():
        # the resident is null, both lists are empty, the referral's node is null
        assert (await caller(RESIDENT, {"id": p.resident}))["resident"] is None, name
        assert (await caller(SENT))["referralsSent"]["nodes"] == [], name
        assert (await caller(RECEIVED))["referralsReceived"] == {"totalCount": 0, "nodes": []}, name
        assert (await caller(NODE, {"id": referral}))["node"] is None, name
        # and every write naming them answers NOT_FOUND, exactly as for records that do not exist
        for query, variables in writes:
            errors = (await caller(query, variables))["m"]["errors"]
            assert [e["code"] for e in errors] == ["NOT_FOUND"], (name, query)
    assert await p.rows() == before
    # positive controls: the sender and the recipient still see it, untouched
    assert (await p.counselor(RECEIVED))["referralsReceived"]["nodes"][0]["status"] == "SENT"
    assert (await p.worker(RESIDENT, {"id": p.resident}))["resident"]["consents"] == [
        {"target": "counseling", "inForce": True}
    ]


async def test_contact_details_are_masked_for_roles_that_do_not_serve_the_resident(people: People) -> None:
    p, kit = people, people.kit
    masked = {"name": "王阿姨", "phone": MASKED_PHONE, "address": MASKED_ADDRESS}
    # the social worker who recorded the resident serves them by no relation yet: the record, masked
    resident = (await p.worker(RESIDENT, {"id": p.resident}))["resident"]
    assert {k: resident[k] for k in ("name", "phone", "address")} == masked
    # the organisation's administrator: masked; another social worker or counselor of it: no resident at all
    resident = (await (await kit.sign_in("organization_admin", p.home))(RESIDENT, {"id": p.resident}))["resident"]
    assert {k: resident[k] for k in ("name", "phone", "address")} == masked
    for role in ("social_worker", "counselor"):
        caller = await kit.sign_in(role, p.home)
        assert (await caller(RESIDENT, {"id": p.resident}))["resident"] is None, role
    admin = await kit.sign_in("platform_admin")
    resident = (await admin(RESIDENT, {"id": p.resident}))["resident"]
    assert {k: resident[k] for k in ("name", "phone", "address")} == masked
    # the mutation's own answer is masked the same way for an administrator who records a resident
    made = await (await kit.sign_in("organization_admin", p.home))(CREATE_RESIDENT, {"name": "张奶奶"})
    assert (made["m"]["resident"]["phone"], made["m"]["resident"]["address"]) == (MASKED_PHONE, MASKED_ADDRESS)


async def test_a_referral_to_supplies_is_answered_by_supplies_staff_and_keeps_no_supplies_record(
    kit: Harness, people: People
) -> None:
    p = people
    depot = await kit.organization("物资站", plugins=["supplies"])
    consent = await p.consent(target="supplies", to=depot)
    sent = await p.send(consent, to=depot, plugin="supplies")
    assert sent["errors"] == []
    referral = sent["referral"]["id"]
    # supplies' staff (supplies.manage) of the depot answer it; its counselors and volunteers do not see it
    staff = await kit.sign_in("social_worker", depot)
    for outsider in (await kit.sign_in("volunteer", depot), await kit.sign_in("counselor", depot), p.counselor):
        assert (await outsider(RECEIVED))["referralsReceived"]["nodes"] == []
    assert [n["id"] for n in (await staff(RECEIVED))["referralsReceived"]["nodes"]] == [referral]
    async with kit.service() as ctx:
        supplies_rows = await _supplies_rows(ctx)
    accepted = (await staff(ACCEPT, {"id": referral}))["m"]
    assert (accepted["errors"], accepted["referral"]["status"]) == ([], "ACCEPTED")
    # nothing beyond core's referral is written: no resident of the depot, no supplies rows
    async with kit.service() as ctx:
        assert await _supplies_rows(ctx) == supplies_rows
        depot_residents = await ctx.session.scalar(
            select(func.count()).select_from(Resident).where(Resident.organization_id == depot)
        )
    assert depot_residents == 0
    done = (await staff(COMPLETE, {"id": referral}))["m"]
    assert done["referral"]["status"] == "COMPLETED"
    # a referral to supplies at an organisation without it is refused
    assert [e["code"] for e in (await p.send(consent, to=p.agency, plugin="supplies"))["errors"]] == [
        "REFERRAL_TARGET_DISABLED"
    ]


async def _supplies_rows(ctx: Any) -> int:
    from plugins.supplies.models import Distribution, Movement

    total = 0
    for model in (Distribution, Movement):
        total += int(await ctx.session.scalar(select(func.count()).select_from(model)) or 0)
    return total


async def test_referrals_received_costs_the_same_statements_for_one_or_many(
    people: People, statements: StatementCounter
) -> None:
    p = people
    query = (
        "{ referralsReceived { totalCount nodes { id status summary residentId sentBy sendingOrganizationId "
        "targetOrganizationId answeredAt } } }"
    )
    await p.referral()
    await p.counselor(RECEIVED)  # sign-in and first-request warm-up out of the count
    before = statements.count
    assert len((await p.counselor(query))["referralsReceived"]["nodes"]) == 1
    one = statements.count - before
    for _ in range(6):
        await p.referral()
    before = statements.count
    assert len((await p.counselor(query))["referralsReceived"]["nodes"]) == 7
    assert statements.count - before == one
