"""Follow-ups through the real GraphQL endpoint, callers signed in for real: a registered pregnancy's items,
booking on the social worker's calendar (a double booking answered SLOT_TAKEN), outcomes (an abnormal one
without a covering consent refused, nothing written), the overdue list as of a date with its nested
pregnancy and mother at a constant statement count, nothing for another organisation, every read audited."""

from __future__ import annotations

import base64
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.models import Account, AvailabilityWindow
from yunshegong.testing import Harness

SHANGHAI = ZoneInfo("Asia/Shanghai")
REGISTER = """mutation($input: MaternalCareRegisterMotherInput!) {
  r: maternalCareRegisterMother(input: $input) { mother { id } errors { code field } } }"""
PREGNANCY = """mutation($input: MaternalCareRegisterPregnancyInput!) {
  r: maternalCareRegisterPregnancy(input: $input) { pregnancy { id } errors { code field } } }"""
ITEMS = """query($id: ID!) { r: maternalCareFollowUps(filter: {pregnancyId: $id}, first: 20) {
  totalCount nodes { id rule label windowStart windowEnd status } } }"""
BOOK = """mutation($input: MaternalCareBookFollowUpInput!) {
  r: maternalCareBookFollowUp(input: $input) { followUp { status bookedAt staff { name } } errors { code field } } }"""
RECORD = """mutation($input: MaternalCareRecordFollowUpInput!) {
  r: maternalCareRecordFollowUp(input: $input) { followUp { status outcome referralId } errors { code field } } }"""
OVERDUE = """query($asOf: Date) { r: maternalCareOverdueFollowUps(asOf: $asOf, first: 50) {
  totalCount nodes { rule label windowEnd pregnancy { lmp mother { name } } } } }"""
NODE = "query($id: ID!) { r: node(id: $id) { ... on MaternalCareFollowUp { rule status } } }"
MISS = """mutation($input: MaternalCareMissFollowUpInput!) {
  r: maternalCareMissFollowUp(input: $input) { followUp { status closedOn } errors { code field } } }"""
OUTCOME = """mutation($input: MaternalCareRecordOutcomeInput!) {
  r: maternalCareRecordOutcome(input: $input) { pregnancy { status } errors { code field } } }"""
DISCHARGE = """mutation($input: MaternalCareRecordDischargeInput!) {
  r: maternalCareRecordDischarge(input: $input) { pregnancy { dischargedOn } errors { code field } } }"""
REGRADE = """mutation($input: MaternalCareChangeRiskInput!) {
  r: maternalCareChangeRisk(input: $input) { errors { code field } } }"""


def _pk(gid: str) -> int:
    return int(base64.b64decode(gid).decode().split(":")[1])


def _today() -> Any:
    return datetime.now(SHANGHAI).date()


@pytest.fixture
async def people(kit: Harness) -> dict[str, Any]:
    org_a = await kit.organization(plugins=["maternal_care"])
    org_b = await kit.organization(plugins=["maternal_care"])
    p: dict[str, Any] = {}
    for key, role, org in (
        ("sw", "social_worker", org_a),
        ("sw2", "social_worker", org_a),
        ("counselor", "counselor", org_a),
        ("sw_b", "social_worker", org_b),
    ):
        p[key] = await kit.sign_in(role, org)
    # sw's calendar: hours 08:00-20:00 every day.
    async with kit.service() as ctx:
        account = await ctx.session.get(Account, _pk(p["sw"].account_id))
        assert account is not None
        assert account.volunteer_id is not None
        for weekday in range(7):
            ctx.session.add(
                AvailabilityWindow(
                    owner_id=account.volunteer_id,
                    weekday=weekday,
                    start_time=time(8),
                    end_time=time(20),
                    organization_id=org_a,
                )
            )
    return p


async def _pregnant(p: dict[str, Any], name: str = "孕妇刘女士", weeks: int = 20) -> str:
    mother = await p["sw"](
        REGISTER,
        {"input": {"consent": True, "socialWorkerId": p["sw"].account_id, "resident": {"name": name}}},
    )
    assert mother["r"]["errors"] == []
    made = await p["sw"](
        PREGNANCY,
        {
            "input": {
                "motherId": mother["r"]["mother"]["id"],
                "lmp": (_today() - timedelta(weeks=weeks)).isoformat(),
            }
        },
    )
    assert made["r"]["errors"] == []
    return made["r"]["pregnancy"]["id"]  # type: ignore[no-any-return]


async def _items(p: dict[str, Any], pregnancy_id: str) -> dict[str, dict[str, Any]]:
    body = await p["sw"](ITEMS, {"id": pregnancy_id})
    return {n["rule"]: n for n in body["r"]["nodes"]}


def _monday_at_ten() -> datetime:
    today = _today()
    monday = today + timedelta(days=(7 - today.weekday()) % 7 or 7)
    return datetime.combine(monday, time(10), SHANGHAI)


async def test_items_are_booked_on_the_calendar_once(people: dict[str, Any]) -> None:
    p = people
    # given a pregnancy 20 weeks along: the four prenatal checks still ahead or open
    found = await _items(p, await _pregnant(p))
    assert list(found) == ["prenatal_2", "prenatal_3", "prenatal_4", "prenatal_5"]
    assert found["prenatal_2"]["label"] == "第2次产前检查（孕16～20周）"
    # when the 16-20 check is booked next Monday at 10:00 on the social worker's calendar
    start = _monday_at_ten()
    booked = await p["sw"](BOOK, {"input": {"id": found["prenatal_2"]["id"], "start": start.isoformat()}})
    # then it is booked, at that instant, with her
    assert booked["r"]["errors"] == []
    assert booked["r"]["followUp"]["status"] == "BOOKED"
    assert datetime.fromisoformat(booked["r"]["followUp"]["bookedAt"]) == start
    # and another mother's check at 10:15 with the same social worker is SLOT_TAKEN
    other = await _items(p, await _pregnant(p, "孕妇陈女士", weeks=18))
    clash = await p["sw"](
        BOOK, {"input": {"id": other["prenatal_2"]["id"], "start": (start + timedelta(minutes=15)).isoformat()}}
    )
    assert [e["code"] for e in clash["r"]["errors"]] == ["SLOT_TAKEN"]
    assert clash["r"]["followUp"] is None


async def test_an_abnormal_finding_without_consent_is_refused_and_writes_nothing(
    people: dict[str, Any], owner_engine: AsyncEngine
) -> None:
    p = people
    found = await _items(p, await _pregnant(p))

    async def counts() -> list[int]:
        async with owner_engine.connect() as conn:
            return [
                (await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one()
                for t in ("maternal_care_followups", "referrals")
            ]

    before = await counts()
    refused = await p["sw"](
        RECORD,
        {
            "input": {
                "id": found["prenatal_2"]["id"],
                "outcome": "ABNORMAL",
                "note": "血压150/95",
                "referral": {"summary": "血压偏高", "targetOutside": "西安市妇幼保健院"},
            }
        },
    )
    assert [e["code"] for e in refused["r"]["errors"]] == ["CONSENT_REQUIRED"]
    assert await counts() == before
    # and a normal result is recorded
    done = await p["sw"](RECORD, {"input": {"id": found["prenatal_2"]["id"], "outcome": "NORMAL"}})
    assert done["r"]["followUp"] == {"status": "DONE", "outcome": "NORMAL", "referralId": None}


async def test_the_overdue_list_as_of_a_date_for_those_who_serve_the_mother_only(
    people: dict[str, Any], kit: Harness, owner_engine: AsyncEngine
) -> None:
    p = people
    pid = await _pregnant(p)
    end = (await _items(p, pid))["prenatal_2"]["windowEnd"]
    day_after = (datetime.fromisoformat(end) + timedelta(days=1)).date().isoformat()
    # then on the window's last day nothing is overdue; the day after, the item, with its mother
    assert (await p["sw"](OVERDUE, {"asOf": end}))["r"]["totalCount"] == 0
    listed = (await p["sw"](OVERDUE, {"asOf": day_after}))["r"]
    assert [(n["rule"], n["pregnancy"]["mother"]["name"]) for n in listed["nodes"]] == [("prenatal_2", "孕妇刘女士")]
    # and another social worker of the organisation, and one of another organisation, see nothing
    item_id = (await _items(p, pid))["prenatal_2"]["id"]
    for other in ("sw2", "sw_b"):
        assert (await p[other](OVERDUE, {"asOf": day_after}))["r"]["totalCount"] == 0
        assert (await p[other](NODE, {"id": item_id}))["r"] is None
    # and the reads are audited
    async with owner_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT account_id, fields FROM audit_log "
                    "WHERE record_type = 'MaternalCareFollowUp' AND action = 'read'"
                )
            )
        ).all()
    sw = _pk(p["sw"].account_id)
    assert {"rule", "windowEnd"} <= {f for r in rows if r.account_id == sw for f in r.fields}
    assert not [r for r in rows if r.account_id in (_pk(p["sw2"].account_id), _pk(p["sw_b"].account_id))]


async def test_the_overdue_list_costs_the_same_statements_for_few_and_many(
    people: dict[str, Any], kit: Harness
) -> None:
    p = people
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    as_of = (_today() + timedelta(days=300)).isoformat()
    counted: dict[int, int] = {}
    made = 0
    for target in (1, 4):
        while made < target:
            await _pregnant(p, f"孕妇{made}")
            made += 1
        event.listen(kit.engine.sync_engine, "before_cursor_execute", count)
        try:
            seen.clear()
            listed = (await p["sw"](OVERDUE, {"asOf": as_of}))["r"]
        finally:
            event.remove(kit.engine.sync_engine, "before_cursor_execute", count)
        assert listed["totalCount"] == 4 * target
        counted[target] = len(seen)
    # then four times the mothers cost no more statements (nested pregnancy and mother batched)
    assert counted[1] == counted[4], counted


async def test_a_result_and_a_miss_are_dated_on_the_day_given_not_in_the_future(
    people: dict[str, Any], owner_engine: AsyncEngine
) -> None:
    p = people
    item_id = (await _items(p, await _pregnant(p)))["prenatal_2"]["id"]

    async def count() -> int:
        async with owner_engine.connect() as conn:
            return (  # type: ignore[no-any-return]
                await conn.execute(text("SELECT count(*) FROM maternal_care_followups WHERE status <> 'open'"))
            ).scalar_one()

    # given the 16-20 check, its window open: a miss dated tomorrow is OUT_OF_RANGE on missedOn, nothing written
    before = await count()
    tomorrow = (_today() + timedelta(days=1)).isoformat()
    refused = await p["sw"](MISS, {"input": {"id": item_id, "note": "未到", "missedOn": tomorrow}})
    assert [(e["code"], e["field"]) for e in refused["r"]["errors"]] == [("OUT_OF_RANGE", ["input", "missedOn"])]
    assert await count() == before
    # when its result is entered for an examination three days ago
    three_days_ago = (_today() - timedelta(days=3)).isoformat()
    done = await p["sw"](RECORD, {"input": {"id": item_id, "outcome": "NORMAL", "examinedOn": three_days_ago}})
    assert done["r"]["errors"] == []
    # then it is closed on that day
    closed = await p["sw"](
        "query($id: ID!) { r: node(id: $id) { ... on MaternalCareFollowUp { closedOn } } }", {"id": item_id}
    )
    assert closed["r"]["closedOn"] == three_days_ago


async def test_a_discharge_recorded_after_the_delivery_moves_the_home_visit(people: dict[str, Any]) -> None:
    p = people
    pid = await _pregnant(p, weeks=39)
    # given a delivery four days ago, no discharge known: the home visit counted from the delivery
    delivered = _today() - timedelta(days=4)
    made = await p["sw"](OUTCOME, {"input": {"id": pid, "outcome": "DELIVERED", "on": delivered.isoformat()}})
    assert made["r"]["errors"] == []
    assert (await _items(p, pid))["postpartum_visit"]["windowStart"] == delivered.isoformat()
    # when the discharge, two days ago, is recorded
    discharged = _today() - timedelta(days=2)
    done = await p["sw"](DISCHARGE, {"input": {"pregnancyId": pid, "on": discharged.isoformat()}})
    # then the pregnancy has it and the visit runs within 7 days of it
    assert done["r"] == {"pregnancy": {"dischargedOn": discharged.isoformat()}, "errors": []}
    visit = (await _items(p, pid))["postpartum_visit"]
    assert (visit["windowStart"], visit["windowEnd"]) == (
        discharged.isoformat(),
        (discharged + timedelta(days=7)).isoformat(),
    )
    # and it is recorded once; another organisation's caller finds no such pregnancy
    again = await p["sw"](DISCHARGE, {"input": {"pregnancyId": pid, "on": _today().isoformat()}})
    assert [e["code"] for e in again["r"]["errors"]] == ["INVALID_TRANSITION"]
    foreign = await p["sw_b"](DISCHARGE, {"input": {"pregnancyId": pid, "on": _today().isoformat()}})
    assert [(e["code"], e["field"]) for e in foreign["r"]["errors"]] == [("NOT_FOUND", ["input", "pregnancyId"])]


async def test_a_counselor_named_responsible_reads_the_pregnancys_follow_ups_audited(
    people: dict[str, Any], owner_engine: AsyncEngine
) -> None:
    p = people
    # given a pregnancy graded orange, the counselor named responsible, and another mother's pregnancy
    pid, other = await _pregnant(p), await _pregnant(p, "孕妇陈女士", weeks=18)
    graded = await p["sw"](
        REGRADE,
        {
            "input": {
                "id": pid,
                "grade": {"colour": "ORANGE", "responsibleId": p["counselor"].account_id},
                "reason": "双胎",
            }
        },
    )
    assert graded["r"]["errors"] == []
    item_id = (await _items(p, pid))["prenatal_2"]["id"]
    other_item = (await _items(p, other))["prenatal_2"]["id"]
    # when the counselor reads them: the list and the node
    listed = await p["counselor"](ITEMS, {"id": pid})
    assert [n["rule"] for n in listed["r"]["nodes"]] == ["prenatal_2", "prenatal_3", "prenatal_4", "prenatal_5"]
    assert (await p["counselor"](NODE, {"id": item_id}))["r"] == {"rule": "prenatal_2", "status": "OPEN"}
    # then nothing of the other pregnancy
    assert (await p["counselor"](NODE, {"id": other_item}))["r"] is None
    refused = await p["counselor"].raw(ITEMS, {"id": other})
    assert refused["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # and a social worker of the organisation who does not serve her, and one of another organisation, nothing
    for who in ("sw2", "sw_b"):
        assert (await p[who](NODE, {"id": item_id}))["r"] is None
        body = await p[who].raw(ITEMS, {"id": pid})
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # and the counselor's reads are audited, the pregnancy's list included
    async with owner_engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT record_type, fields FROM audit_log WHERE action = 'read' AND account_id = :a"),
                {"a": _pk(p["counselor"].account_id)},
            )
        ).all()
    assert {"rule", "status", "windowEnd"} <= {
        f for r in rows if r.record_type == "MaternalCareFollowUp" for f in r.fields
    }
    assert "followUps" in {f for r in rows if r.record_type == "MaternalCarePregnancy" for f in r.fields}
