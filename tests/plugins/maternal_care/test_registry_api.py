"""The registry through the real GraphQL endpoint, callers signed in for real: registering a mother and her
pregnancy, dating and gestational age, risk with its history and the high-risk list, outcomes, bad input
refused with codes and nothing written, health details for those who serve her only, every read audited."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from yunshegong.testing import Harness

REGISTER = """mutation($input: MaternalCareRegisterMotherInput!) {
  r: maternalCareRegisterMother(input: $input) { mother { id name residentId socialWorker { name } }
    errors { code field } } }"""
PREGNANCY = """mutation($input: MaternalCareRegisterPregnancyInput!) {
  r: maternalCareRegisterPregnancy(input: $input) { pregnancy { id lmp edd datingBasis riskColour status }
    errors { code field } } }"""
RISK = """mutation($input: MaternalCareChangeRiskInput!) {
  r: maternalCareChangeRisk(input: $input) { pregnancy { riskColour infectious responsible { name } }
    errors { code field } } }"""
CORRECT = """mutation($input: MaternalCareCorrectDatingInput!) {
  r: maternalCareCorrectDating(input: $input) { pregnancy { lmp edd datingCorrections { reason } }
    errors { code field } } }"""
OUTCOME = """mutation($input: MaternalCareRecordOutcomeInput!) {
  r: maternalCareRecordOutcome(input: $input) { pregnancy { status outcomeOn dischargedOn } errors { code field } } }"""
AGE = """query($id: ID!, $on: Date, $at: DateTime, $tz: String) { r: node(id: $id) { ... on MaternalCarePregnancy {
  gestationalAge(on: $on, at: $at, timeZone: $tz) { on weeks days trimester } } } }"""
NODE = """query($id: ID!) { r: node(id: $id) { ... on MaternalCarePregnancy {
  riskColour lmp riskHistory { seq fromColour toColour reason actor } } } }"""
MOTHERS = "{ r: maternalCareMothers(first: 50) { totalCount nodes { name currentPregnancy { riskColour } } } }"
HIGH = "{ r: maternalCareHighRisk(first: 50) { nodes { riskColour mother { name } } } }"
RESIDENT = "query($id: ID!) { r: resident(id: $id) { name phone } }"
GRANT = """mutation($a: ID!) { r: grantPluginRole(input: {accountId: $a, role: "maternal_care.staff"}) {
  errors { code } } }"""
PHONE = "13700002001"


def _pk(gid: str) -> int:
    return int(base64.b64decode(gid).decode().split(":")[1])


def _today() -> Any:
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


@pytest.fixture
async def people(kit: Harness) -> dict[str, Any]:
    org_a = await kit.organization(plugins=["maternal_care"])
    org_b = await kit.organization(plugins=["maternal_care"])
    p: dict[str, Any] = {"org_a": org_a, "org_b": org_b, "community": await kit.community(org_a)}
    for key, role, org in (
        ("sw", "social_worker", org_a),
        ("sw2", "social_worker", org_a),
        ("staff", "social_worker", org_a),
        ("admin", "organization_admin", org_a),
        ("counselor", "counselor", org_a),
        ("admin_b", "organization_admin", org_b),
        ("sw_b", "social_worker", org_b),
    ):
        p[key] = await kit.sign_in(role, org)
    granted = await p["admin"](GRANT, {"a": p["staff"].account_id})
    assert granted["r"]["errors"] == []
    return p


async def _register(p: dict[str, Any], who: str = "sw", **extra: Any) -> dict[str, Any]:
    body = await p[who](
        REGISTER,
        {
            "input": {
                "consent": True,
                "socialWorkerId": p["sw"].account_id,
                "resident": {"name": "孕妇刘女士", "phone": PHONE, "address": "雁塔区小寨东路12号"},
                "consentNote": "电话同意",
            }
            | extra
        },
    )
    return body["r"]  # type: ignore[no-any-return]


async def _pregnant(p: dict[str, Any], weeks: int = 20) -> tuple[str, str]:
    mother = (await _register(p))["mother"]
    made = await p["sw"](
        PREGNANCY, {"input": {"motherId": mother["id"], "lmp": (_today() - timedelta(weeks=weeks)).isoformat()}}
    )
    assert made["r"]["errors"] == []
    return mother["id"], made["r"]["pregnancy"]["id"]


async def _counts(owner_engine: AsyncEngine) -> list[int]:
    """Rows of residents and of every registry table, of every organisation (the owner ignores RLS)."""
    tables = (
        "residents",
        "maternal_care_mothers",
        "maternal_care_pregnancies",
        "maternal_care_risk_changes",
        "maternal_care_dating_corrections",
    )
    async with owner_engine.connect() as conn:
        return [(await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one() for t in tables]


async def test_register_a_mother_and_date_her_pregnancy_by_the_due_date(people: dict[str, Any]) -> None:
    p = people
    # when her social worker registers her (a new resident) and her pregnancy by its due date
    registered = await _register(p)
    assert registered["errors"] == []
    assert registered["mother"]["name"] == "孕妇刘女士"
    edd = _today() + timedelta(weeks=10)
    made = await p["sw"](PREGNANCY, {"input": {"motherId": registered["mother"]["id"], "edd": edd.isoformat()}})
    # then the LMP is derived, the pregnancy ongoing and green
    pregnancy = made["r"]["pregnancy"]
    assert (pregnancy["lmp"], pregnancy["edd"]) == ((edd - timedelta(days=280)).isoformat(), edd.isoformat())
    assert (pregnancy["datingBasis"], pregnancy["status"], pregnancy["riskColour"]) == ("EDD", "ONGOING", "GREEN")
    # and her phone is hers who serve her (core's Resident, by the registry's relation)
    resident = registered["mother"]["residentId"]
    assert (await p["sw"](RESIDENT, {"id": resident}))["r"]["phone"] == PHONE
    assert (await p["admin"](RESIDENT, {"id": resident}))["r"]["phone"] == "137****2001"
    assert (await p["sw2"](RESIDENT, {"id": resident}))["r"] is None


async def test_gestational_age_on_a_date_and_at_an_instant_in_a_zone(people: dict[str, Any]) -> None:
    p = people
    _, pid = await _pregnant(p)
    lmp = datetime.fromisoformat((await p["sw"](NODE, {"id": pid}))["r"]["lmp"]).date()
    # 13+6 on the date; the instant 16:30 UTC that day is already 14+0 in Shanghai, still 13+6 in Honolulu
    day = lmp + timedelta(days=97)
    at = datetime(day.year, day.month, day.day, 16, 30, tzinfo=ZoneInfo("UTC")).isoformat()
    on = (await p["sw"](AGE, {"id": pid, "on": day.isoformat()}))["r"]["gestationalAge"]
    shanghai = (await p["sw"](AGE, {"id": pid, "at": at, "tz": "Asia/Shanghai"}))["r"]["gestationalAge"]
    honolulu = (await p["sw"](AGE, {"id": pid, "at": at, "tz": "Pacific/Honolulu"}))["r"]["gestationalAge"]
    today = (await p["sw"](AGE, {"id": pid}))["r"]["gestationalAge"]
    assert (on["weeks"], on["days"], on["trimester"]) == (13, 6, 1)
    assert (shanghai["on"], shanghai["weeks"], shanghai["days"], shanghai["trimester"]) == (
        (day + timedelta(days=1)).isoformat(),
        14,
        0,
        2,
    )
    assert (honolulu["weeks"], honolulu["days"]) == (13, 6)
    assert (today["weeks"], today["days"]) == (20, 0)
    # an unknown zone is INVALID_INPUT, a very long or oddly shaped name too (not an internal error)
    for bad in ("Mars/Olympus", "Asia/" + "x" * 300, "x" * 5000, "../../etc/passwd", "Asia//Shanghai", " "):
        body = await p["sw"].raw(AGE, {"id": pid, "at": at, "tz": bad})
        assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT", bad
    mother = (await _register(p, resident={"name": "另一位", "phone": "13700002002"}))["mother"]["id"]
    long_zone = {"motherId": mother, "lmp": _today().isoformat(), "timeZone": "Asia/" + "x" * 300}
    answer = await p["sw"](PREGNANCY, {"input": long_zone})
    assert [e["code"] for e in answer["r"]["errors"]] == ["INVALID_INPUT"]


async def test_risk_changes_are_history_and_high_risk_is_listed(people: dict[str, Any]) -> None:
    p = people
    _, pid = await _pregnant(p)
    # when the social worker grades her red without naming who answers for it
    refused = await p["sw"](RISK, {"input": {"id": pid, "grade": {"colour": "RED"}, "reason": "子痫前期"}})
    assert refused["r"]["errors"] == [{"code": "REQUIRED", "field": ["input", "responsibleId"]}]
    # then with the staff member responsible, and purple beside it
    graded = await p["sw"](
        RISK,
        {
            "input": {
                "id": pid,
                "grade": {"colour": "RED", "infectious": True, "responsibleId": p["staff"].account_id},
                "reason": "子痫前期；乙肝",
            }
        },
    )
    assert graded["r"]["errors"] == []
    assert graded["r"]["pregnancy"]["riskColour"] == "RED"
    assert graded["r"]["pregnancy"]["infectious"] is True
    history = (await p["staff"](NODE, {"id": pid}))["r"]["riskHistory"]
    assert [(h["seq"], h["fromColour"], h["toColour"], h["reason"]) for h in history] == [
        (1, "GREEN", "RED", "子痫前期；乙肝")
    ]
    # and the high-risk list shows her to staff and her social worker, not to another social worker
    assert (await p["staff"](HIGH))["r"]["nodes"] == [{"riskColour": "RED", "mother": {"name": "孕妇刘女士"}}]
    assert len((await p["sw"](HIGH))["r"]["nodes"]) == 1
    assert (await p["sw2"](HIGH))["r"]["nodes"] == []
    assert (await p["admin_b"](HIGH))["r"]["nodes"] == []
    # a counselor (who may be named responsible) finds none: none names them
    assert (await p["counselor"](HIGH))["r"]["nodes"] == []


async def test_dating_corrections_and_outcomes(people: dict[str, Any]) -> None:
    p = people
    _, pid = await _pregnant(p)
    today = _today()
    corrected = await p["sw"](
        CORRECT, {"input": {"id": pid, "lmp": (today - timedelta(weeks=19)).isoformat(), "reason": "B超校正"}}
    )
    assert corrected["r"]["errors"] == []
    assert corrected["r"]["pregnancy"]["datingCorrections"] == [{"reason": "B超校正"}]
    done = await p["sw"](
        OUTCOME,
        {"input": {"id": pid, "outcome": "DELIVERED", "on": today.isoformat(), "dischargedOn": today.isoformat()}},
    )
    assert done["r"]["pregnancy"] == {
        "status": "DELIVERED",
        "outcomeOn": today.isoformat(),
        "dischargedOn": today.isoformat(),
    }


async def test_bad_input_is_refused_with_codes_and_nothing_written(
    people: dict[str, Any], owner_engine: AsyncEngine
) -> None:
    p = people
    mother, pid = await _pregnant(p)
    today = _today()
    before = await _counts(owner_engine)
    cases = [
        (REGISTER, {"input": {"consent": False, "socialWorkerId": p["sw"].account_id, "resident": {"name": "某"}}}),
        (REGISTER, {"input": {"consent": True, "socialWorkerId": p["sw_b"].account_id, "resident": {"name": "某"}}}),
        (PREGNANCY, {"input": {"motherId": mother, "lmp": today.isoformat()}}),
        (PREGNANCY, {"input": {"motherId": mother, "edd": (today + timedelta(days=400)).isoformat()}}),
        (CORRECT, {"input": {"id": pid, "edd": "1990-01-01", "reason": "笔误"}}),
        (OUTCOME, {"input": {"id": pid, "outcome": "DELIVERED", "on": (today + timedelta(days=1)).isoformat()}}),
        (OUTCOME, {"input": {"id": pid, "outcome": "LOSS", "on": "2000-01-01"}}),
    ]
    codes = [(await p["sw"](query, variables))["r"]["errors"][0]["code"] for query, variables in cases]
    assert codes == [
        "REQUIRED",
        "NOT_FOUND",
        "MATERNAL_CARE_PREGNANCY_ONGOING",
        "OUT_OF_RANGE",
        "OUT_OF_RANGE",
        "OUT_OF_RANGE",
        "OUT_OF_RANGE",
    ]
    # registering the same resident twice
    resident = (await p["admin"](MOTHERS))["r"]["nodes"]
    assert len(resident) == 1
    again = await p["staff"](
        REGISTER,
        {
            "input": {
                "consent": True,
                "socialWorkerId": p["sw"].account_id,
                "residentId": (await _resident_of(p, mother)),
            }
        },
    )
    assert again["r"]["errors"][0]["code"] == "MATERNAL_CARE_ALREADY_REGISTERED"
    assert await _counts(owner_engine) == before


async def _resident_of(p: dict[str, Any], mother: str) -> str:
    query = "query($id: ID!) { r: node(id: $id) { ... on MaternalCareMother { residentId } } }"
    return (await p["staff"](query, {"id": mother}))["r"]["residentId"]  # type: ignore[no-any-return]


async def test_health_details_are_for_those_who_serve_her(people: dict[str, Any]) -> None:
    p = people
    mother, pid = await _pregnant(p)
    for who, sees in (
        ("sw", True),
        ("staff", True),
        ("admin", True),
        ("sw2", False),
        ("counselor", False),
        ("admin_b", False),
        ("sw_b", False),
    ):
        found = (await p[who](NODE, {"id": pid}))["r"]
        assert (found is not None) is sees, who
        if sees:
            assert found["riskColour"] == "GREEN"
    # writes: another social worker and another organisation find nothing to change
    change = {"input": {"id": pid, "grade": {"colour": "YELLOW"}, "reason": "高龄"}}
    assert (await p["sw2"](RISK, change))["r"]["errors"][0]["code"] == "NOT_FOUND"
    assert (await p["admin_b"](RISK, change))["r"]["errors"][0]["code"] == "NOT_FOUND"
    assert (await p["counselor"](RISK, change))["r"]["errors"][0]["code"] == "FORBIDDEN"
    # lists: another social worker's list does not name her
    assert (await p["sw2"](MOTHERS))["r"]["totalCount"] == 0
    assert (await p["sw"](MOTHERS))["r"]["nodes"] == [
        {"name": "孕妇刘女士", "currentPregnancy": {"riskColour": "GREEN"}}
    ]
    del mother


async def test_every_read_of_health_details_is_audited(people: dict[str, Any], owner_engine: AsyncEngine) -> None:
    p = people
    _, pid = await _pregnant(p)
    await p["staff"](NODE, {"id": pid})
    async with owner_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT account_id, record_id, fields FROM audit_log "
                    "WHERE record_type = 'MaternalCarePregnancy' AND action = 'read'"
                )
            )
        ).all()
    staff = _pk(p["staff"].account_id)
    fields = {f for r in rows if (r.account_id, r.record_id) == (staff, _pk(pid)) for f in r.fields}
    assert {"riskColour", "lmp", "riskHistory"} <= fields


async def test_membership_alone_is_audited(people: dict[str, Any], owner_engine: AsyncEngine) -> None:
    # given a pregnancy graded red
    p = people
    mother, pid = await _pregnant(p)
    graded = await p["sw"](
        RISK, {"input": {"id": pid, "grade": {"colour": "RED", "responsibleId": p["staff"].account_id}, "reason": "x"}}
    )
    assert graded["r"]["errors"] == []
    # when staff ask only for ids: the high-risk list, her pregnancies, her current pregnancy
    assert (await p["staff"]("{ r: maternalCareHighRisk { nodes { id } } }"))["r"]["nodes"] == [{"id": pid}]
    by_mother = """query($id: ID!) { r: node(id: $id) { ... on MaternalCareMother {
      currentPregnancy { id } pregnancies { id } } } }"""
    assert (await p["admin"](by_mother, {"id": mother}))["r"] == {
        "currentPregnancy": {"id": pid},
        "pregnancies": [{"id": pid}],
    }
    # then each reveal is in the audit trail, against the pregnancy (and the mother asked about)
    async with owner_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT account_id, record_type, record_id, fields FROM audit_log "
                    "WHERE action = 'read' AND record_type IN ('MaternalCarePregnancy', 'MaternalCareMother')"
                )
            )
        ).all()
    noted: dict[tuple[int, str, int], set[str]] = {}
    for r in rows:
        noted.setdefault((r.account_id, r.record_type, r.record_id), set()).update(r.fields)
    staff, admin = _pk(p["staff"].account_id), _pk(p["admin"].account_id)
    assert "highRisk" in noted.get((staff, "MaternalCarePregnancy", _pk(pid)), set())
    assert {"currentPregnancy", "pregnancies"} <= noted.get((admin, "MaternalCarePregnancy", _pk(pid)), set())
    assert {"currentPregnancy", "pregnancies"} <= noted.get((admin, "MaternalCareMother", _pk(mother)), set())


async def test_a_counselor_named_responsible_follows_that_pregnancy_through_the_api(people: dict[str, Any]) -> None:
    # given a pregnancy graded red by her social worker, the counselor named responsible
    p = people
    mother, pid = await _pregnant(p)
    grade = {"colour": "RED", "responsibleId": p["counselor"].account_id}
    assert (await p["sw"](RISK, {"input": {"id": pid, "grade": grade, "reason": "产后抑郁高风险"}}))["r"][
        "errors"
    ] == []
    # then the counselor sees it by node and in the high-risk list, with the mother's name
    assert (await p["counselor"](NODE, {"id": pid}))["r"]["riskColour"] == "RED"
    assert (await p["counselor"](HIGH))["r"]["nodes"] == [{"riskColour": "RED", "mother": {"name": "孕妇刘女士"}}]
    # and no list of mothers, and not another organisation's nor another social worker's view
    assert (await p["counselor"].raw(MOTHERS))["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await p["sw2"](NODE, {"id": pid}))["r"] is None
    assert (await p["admin_b"](NODE, {"id": pid}))["r"] is None
    del mother
