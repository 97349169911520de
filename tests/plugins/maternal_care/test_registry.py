"""The registry at the service layer: mothers, pregnancies (dating, one ongoing, outcomes), the five-colour
risk with its history held by the database, who sees what, the event on a raise, bad input refused with
codes and nothing written."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from core.database import create_sessionmaker
from core.services.common import constraint_name, sqlstate
from core.services.context import ServiceContext
from plugins.maternal_care import gestation
from plugins.maternal_care.models import Pregnancy, RiskChange
from plugins.maternal_care.registry import services
from plugins.maternal_care.registry.services import Grade
from tests.plugins.maternal_care.conftest import WEEKS_ALONG, MaternalWorld


async def _database_refusal(mc: MaternalWorld, work: Callable[[Any], Awaitable[Any]]) -> str:
    """The database's refusal of `work` (a write around the services, as staff), as text."""

    async def run() -> None:
        async with mc.as_("staff") as ctx:
            await work(ctx)
            await ctx.session.flush()

    with pytest.raises(DBAPIError) as err:
        await run()
    return f"{constraint_name(err.value)} {sqlstate(err.value)} {err.value}"


# -- mothers ------------------------------------------------------------------------------------------------------


async def test_a_mother_is_a_core_resident_with_consent_and_a_social_worker(mc: MaternalWorld) -> None:
    # given the world's mother (registered by her social worker, a new resident)
    async with mc.as_("sw") as ctx:
        mother = await services._mother(ctx, mc.ids["mother"])
        resident = await __import__("core").residents.get_resident(ctx, mother.resident_id)
    # then she is core's resident of A, her consent recorded, her social worker assigned
    assert (resident.name, resident.organization_id) == ("孕妇刘女士", mc.ids["org_a"])
    assert mother.consent_at is not None
    assert mother.consent_note == "电话同意"
    assert mother.social_worker_account_id == mc.ids["sw"]


async def test_an_existing_resident_is_registered_once(mc: MaternalWorld) -> None:
    # given a resident of A registered already
    before = await mc.counts()
    # when she is registered again
    code = await mc.refused(
        "staff",
        services.register_mother,
        consent=True,
        social_worker_account_id=mc.ids["sw"],
        resident_id=mc.ids["resident"],
    )
    # then a stable code, nothing written
    assert code == "MATERNAL_CARE_ALREADY_REGISTERED"
    assert await mc.counts() == before


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"consent": False}, "REQUIRED"),
        ({"social_worker_account_id": None}, "REQUIRED"),
        ({"name": ""}, "INVALID_INPUT"),
        ({"social_worker": "counselor"}, "INVALID_INPUT"),  # not a social worker
        ({"social_worker": "sw_b"}, "NOT_FOUND"),  # another organisation's account
        ({"consent_note": "字" * (services.MAX_TEXT + 1)}, "OUT_OF_RANGE"),  # refused, not cut
    ],
)
async def test_bad_registrations_are_refused_and_write_nothing(mc: MaternalWorld, change: dict, code: str) -> None:
    before = await mc.counts()
    kwargs = {"consent": True, "social_worker_account_id": mc.ids["sw"], "name": "新孕妇", "phone": "13700003001"}
    if "social_worker" in change:
        kwargs["social_worker_account_id"] = mc.ids[change.pop("social_worker")]
    kwargs.update(change)
    assert await mc.refused("staff", services.register_mother, **kwargs) == code
    assert await mc.counts() == before


async def test_only_maternal_care_callers_register(mc: MaternalWorld) -> None:
    for who in ("counselor", "volunteer", "head"):
        code = await mc.refused(
            who, services.register_mother, consent=True, social_worker_account_id=mc.ids["sw"], name="某"
        )
        assert code == "FORBIDDEN"


# -- pregnancies: dating -----------------------------------------------------------------------------------------


async def test_dating_from_edd_derives_the_lmp(mc: MaternalWorld) -> None:
    # given a new mother
    mother = await mc.new_mother()
    today = await mc.today()
    # when her pregnancy is dated by a due date 10 weeks ahead
    made = await mc.call("sw", services.register_pregnancy, mother, edd=today + timedelta(weeks=10))
    # then the LMP is 280 days before it: 30 weeks along today, third trimester
    assert made.lmp == today + timedelta(weeks=10) - timedelta(days=280)
    assert made.dating_basis == "edd"
    async with mc.as_("sw") as ctx:
        day, age = await services.gestational_age(ctx, made)
    assert (day, age) == (today, gestation.GestationalAge(30, 0))
    assert age is not None
    assert age.trimester == 3


@pytest.mark.parametrize(
    ("dating", "code"),
    [
        ({"lmp": 1}, "OUT_OF_RANGE"),  # in the future
        ({"lmp": -(gestation.LONGEST_WEEKS * 7 + 1)}, "OUT_OF_RANGE"),  # 44+1 along
        ({"lmp": -(gestation.LONGEST_WEEKS * 7)}, "OUT_OF_RANGE"),  # 44+0: fits no lecture, not a pregnancy
        ({"edd": 281}, "OUT_OF_RANGE"),  # a due date beyond 40 weeks ahead: an LMP in the future
        ({"edd": -(4 * 7)}, "OUT_OF_RANGE"),  # due 4 weeks ago: 44+0 along
        ({}, "INVALID_INPUT"),  # neither
        ({"lmp": -10, "edd": 200}, "INVALID_INPUT"),  # both
    ],
)
async def test_absurd_dates_are_refused(mc: MaternalWorld, dating: dict, code: str) -> None:
    mother = await mc.new_mother()
    today = await mc.today()
    before = await mc.counts()
    given = {k: today + timedelta(days=v) for k, v in dating.items()}
    assert await mc.refused("sw", services.register_pregnancy, mother, **given) == code
    assert await mc.counts() == before


async def test_the_boundaries_of_the_range_are_accepted(mc: MaternalWorld) -> None:
    today = await mc.today()
    first = await mc.new_mother()
    assert (await mc.call("sw", services.register_pregnancy, first, lmp=today)).lmp == today
    # 43+6, the last day the lectures' audience rule still places in the third trimester
    second = await mc.new_mother()
    longest = today - timedelta(days=gestation.LONGEST_WEEKS * 7 - 1)
    assert (await mc.call("sw", services.register_pregnancy, second, lmp=longest)).lmp == longest


async def test_one_ongoing_pregnancy_per_mother(mc: MaternalWorld) -> None:
    before = await mc.counts()
    code = await mc.refused("sw", services.register_pregnancy, mc.ids["mother"], lmp=await mc.today())
    assert code == "MATERNAL_CARE_PREGNANCY_ONGOING"
    assert await mc.counts() == before


async def test_the_database_keeps_one_ongoing_pregnancy_per_mother(mc: MaternalWorld) -> None:
    # given the mother's ongoing pregnancy; when a second is inserted around the service
    p = await mc.pregnancy()

    async def second(ctx: Any) -> None:
        ctx.session.add(
            Pregnancy(
                mother_id=p.mother_id, lmp=p.lmp, edd=p.edd, dating_basis="lmp", organization_id=p.organization_id
            )
        )

    refusal = await _database_refusal(mc, second)
    # then the partial unique index refuses it, and the service maps it to the code
    assert "uq_maternal_care_pregnancies_one_ongoing" in refusal
    assert (
        services.CONSTRAINT_ERRORS["uq_maternal_care_pregnancies_one_ongoing"][0] == "MATERNAL_CARE_PREGNANCY_ONGOING"
    )


async def test_gestational_age_at_an_instant_depends_on_the_zone(mc: MaternalWorld) -> None:
    # given a pregnancy with LMP d; the instant d+97 16:30 UTC is already d+98 in Shanghai (14+0, trimester 2)
    p = await mc.pregnancy()
    at = datetime.combine(p.lmp + timedelta(days=97), datetime.min.time(), UTC) + timedelta(hours=16, minutes=30)
    async with mc.as_("sw") as ctx:
        shanghai = await services.gestational_age(ctx, p, at=at, time_zone="Asia/Shanghai")
        honolulu = await services.gestational_age(ctx, p, at=at, time_zone="Pacific/Honolulu")
        on_date = await services.gestational_age(ctx, p, on=p.lmp + timedelta(days=97))
        before_lmp = await services.gestational_age(ctx, p, on=p.lmp - timedelta(days=1))
    assert shanghai[1] == gestation.GestationalAge(14, 0)
    assert gestation.trimester_of(shanghai[1].weeks) == 2
    assert honolulu[1] == gestation.GestationalAge(13, 6)
    assert gestation.trimester_of(honolulu[1].weeks) == 1
    assert on_date[1] == gestation.GestationalAge(13, 6)
    assert before_lmp[1] is None


async def test_an_unknown_zone_or_both_a_date_and_an_instant_are_invalid(mc: MaternalWorld) -> None:
    p = await mc.pregnancy()
    at = datetime.now(UTC)
    assert await mc.refused("sw", services.gestational_age, p, at=at, time_zone="Mars/Olympus") == "INVALID_INPUT"
    assert await mc.refused("sw", services.gestational_age, p, at=at, on=await mc.today()) == "INVALID_INPUT"


async def test_correcting_the_dating_is_recorded_with_why(mc: MaternalWorld) -> None:
    # given a pregnancy dated 20 weeks; when an ultrasound moves it back a week
    p = await mc.pregnancy()
    corrected = await mc.call(
        "sw", services.correct_dating, p.id, lmp=p.lmp + timedelta(days=7), reason="早孕期B超校正"
    )
    # then LMP and EDD move together, and the correction is in the history
    assert (corrected.lmp, corrected.edd) == (p.lmp + timedelta(days=7), p.lmp + timedelta(days=287))
    async with mc.as_("sw") as ctx:
        [history] = await services.dating_corrections(ctx, [p.id])
    assert [(h.from_lmp, h.to_lmp, h.reason, h.actor) for h in history] == [
        (p.lmp, p.lmp + timedelta(days=7), "早孕期B超校正", "sw")
    ]


async def test_a_correction_needs_a_reason_and_a_change(mc: MaternalWorld) -> None:
    p = await mc.pregnancy()
    before = await mc.counts()
    assert (
        await mc.refused("sw", services.correct_dating, p.id, lmp=p.lmp - timedelta(days=3), reason=" ") == "REQUIRED"
    )
    assert await mc.refused("sw", services.correct_dating, p.id, edd=p.edd, reason="同") == "INVALID_INPUT"
    future = await mc.today() + timedelta(days=1)
    assert await mc.refused("sw", services.correct_dating, p.id, lmp=future, reason="错") == "OUT_OF_RANGE"
    assert await mc.counts() == before


# -- outcomes -----------------------------------------------------------------------------------------------------


async def test_a_delivery_closes_the_pregnancy_and_a_new_one_may_follow(mc: MaternalWorld) -> None:
    today = await mc.today()
    done = await mc.call(
        "sw",
        services.record_outcome,
        mc.ids["pregnancy"],
        outcome="delivered",
        on=today - timedelta(days=3),
        discharged_on=today,
        note="剖宫产",
    )
    assert (done.status, done.outcome_on, done.discharged_on) == ("delivered", today - timedelta(days=3), today)
    async with mc.as_("sw") as ctx:
        assert (await services.gestational_age(ctx, done))[1] is None  # after the outcome
    # (the next begins after the delivery: see test_a_new_pregnancy_cannot_begin_before_the_previous_one_ended)
    again = await mc.call("sw", services.register_pregnancy, mc.ids["mother"], lmp=today - timedelta(days=1))
    assert again.status == "ongoing"


@pytest.mark.parametrize(
    ("outcome", "on", "discharged", "code"),
    [
        ("delivered", 1, None, "OUT_OF_RANGE"),  # in the future
        ("delivered", -(WEEKS_ALONG * 7 + 1), None, "OUT_OF_RANGE"),  # before the LMP
        ("delivered", -3, -4, "OUT_OF_RANGE"),  # discharged before delivery
        ("delivered", -3, 1, "OUT_OF_RANGE"),  # discharged in the future
        ("loss", -3, -1, "INVALID_INPUT"),  # a discharge after a loss
        ("abortion", -3, None, "INVALID_INPUT"),
    ],
)
async def test_bad_outcomes_are_refused(
    mc: MaternalWorld, outcome: str, on: int, discharged: int | None, code: str
) -> None:
    today = await mc.today()
    before = await mc.counts()
    refused = await mc.refused(
        "sw",
        services.record_outcome,
        mc.ids["pregnancy"],
        outcome=outcome,
        on=today + timedelta(days=on),
        discharged_on=None if discharged is None else today + timedelta(days=discharged),
    )
    assert refused == code
    assert (await mc.pregnancy()).status == "ongoing"
    assert await mc.counts() == before


async def test_an_outcome_is_recorded_once(mc: MaternalWorld) -> None:
    today = await mc.today()
    await mc.call("sw", services.record_outcome, mc.ids["pregnancy"], outcome="loss", on=today)
    code = await mc.refused("sw", services.record_outcome, mc.ids["pregnancy"], outcome="delivered", on=today)
    assert code == "INVALID_TRANSITION"
    assert (
        await mc.refused("sw", services.correct_dating, mc.ids["pregnancy"], lmp=today, reason="x")
        == "INVALID_TRANSITION"
    )


# -- risk -----------------------------------------------------------------------------------------------------------


async def test_every_risk_change_is_numbered_history_with_who_when_why(mc: MaternalWorld) -> None:
    pid = mc.ids["pregnancy"]
    await mc.call("sw", services.change_risk, pid, Grade("yellow"), "年龄35岁以上")
    await mc.call("staff", services.change_risk, pid, Grade("red", responsible_account_id=mc.ids["staff"]), "子痫前期")
    await mc.call("staff", services.change_risk, pid, Grade("red", True, mc.ids["staff"]), "乙肝表面抗原阳性")
    p = await mc.pregnancy()
    assert (p.risk_colour, p.infectious, p.responsible_account_id, p.risk_seq) == ("red", True, mc.ids["staff"], 3)
    async with mc.as_("sw") as ctx:
        [history] = await services.risk_histories(ctx, [pid])
    assert [(h.seq, h.from_colour, h.to_colour, h.to_infectious, h.actor, h.reason) for h in history] == [
        (1, "green", "yellow", False, "sw", "年龄35岁以上"),
        (2, "yellow", "red", False, "staff", "子痫前期"),
        (3, "red", "red", True, "staff", "乙肝表面抗原阳性"),
    ]


@pytest.mark.parametrize(
    ("grade", "code"),
    [
        (Grade("orange"), "REQUIRED"),
        (Grade("red"), "REQUIRED"),
        (Grade("green", infectious=True), "REQUIRED"),  # purple
        (Grade("blue"), "INVALID_INPUT"),
        (Grade("green"), "INVALID_INPUT"),  # unchanged
    ],
)
async def test_high_risk_needs_a_responsible_staff_member(mc: MaternalWorld, grade: Grade, code: str) -> None:
    before = await mc.counts()
    assert await mc.refused("sw", services.change_risk, mc.ids["pregnancy"], grade, "评估") == code
    assert await mc.counts() == before


async def test_the_responsible_is_staff_of_the_organisation_and_a_reason_is_given(mc: MaternalWorld) -> None:
    pid = mc.ids["pregnancy"]
    assert (
        await mc.refused("sw", services.change_risk, pid, Grade("red", responsible_account_id=mc.ids["sw_b"]), "x")
        == "NOT_FOUND"
    )
    assert (
        await mc.refused("sw", services.change_risk, pid, Grade("red", responsible_account_id=mc.ids["volunteer"]), "x")
        == "INVALID_INPUT"
    )
    assert await mc.refused("sw", services.change_risk, pid, Grade("yellow"), "") == "REQUIRED"


def _row(p: Pregnancy, seq: int, from_colour: str, to_colour: str) -> RiskChange:
    return RiskChange(
        pregnancy_id=p.id,
        seq=seq,
        from_colour=from_colour,
        from_infectious=False,
        to_colour=to_colour,
        to_infectious=False,
        actor="x",
        organization_id=p.organization_id,
    )


async def test_the_database_refuses_a_grade_without_its_history_row(mc: MaternalWorld) -> None:
    p = await mc.pregnancy()

    # when the colour is changed around the service (no history row)
    async def bare(ctx: Any) -> None:
        await ctx.session.execute(
            text("UPDATE maternal_care_pregnancies SET risk_colour = 'yellow', risk_seq = 1 WHERE id = :id"),
            {"id": p.id},
        )

    assert "maternal_care_risk_recorded" in await _database_refusal(mc, bare)

    # and a high grade without a responsible (the CHECK), even with its row
    async def unnamed(ctx: Any) -> None:
        ctx.session.add(_row(p, 1, "green", "red"))

    assert "high_risk_has_responsible" in await _database_refusal(mc, unnamed)


async def test_risk_history_is_append_only_and_always_taken_up(mc: MaternalWorld) -> None:
    await mc.call("sw", services.change_risk, mc.ids["pregnancy"], Grade("yellow"), "高龄")
    p = await mc.pregnancy()

    async def rewrite(ctx: Any) -> None:
        await ctx.session.execute(text("UPDATE maternal_care_risk_changes SET reason = 'rewritten'"))

    async def delete(ctx: Any) -> None:
        await ctx.session.execute(text("DELETE FROM maternal_care_risk_changes"))

    # a row written and left behind (the pregnancy not changed) is refused at commit
    async def left_behind(ctx: Any) -> None:
        ctx.session.add(_row(p, 2, "yellow", "green"))

    assert "maternal_care_append_only" in await _database_refusal(mc, rewrite)
    assert "maternal_care_append_only" in await _database_refusal(mc, delete)
    assert "maternal_care_risk_recorded" in await _database_refusal(mc, left_behind)


async def test_a_raise_to_orange_red_or_purple_emits_an_event(
    mc: MaternalWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    heard: list[object] = []

    async def publish(self: object, event: object, ctx: object) -> None:
        heard.append(event)

    monkeypatch.setattr(type(mc.host), "publish", publish)
    pid = mc.ids["pregnancy"]
    staff = mc.ids["staff"]
    await mc.call("sw", services.change_risk, pid, Grade("yellow"), "高龄")  # not high: nothing
    await mc.call("sw", services.change_risk, pid, Grade("orange", responsible_account_id=staff), "妊娠期糖尿病")
    await mc.call("sw", services.change_risk, pid, Grade("orange", True, staff), "梅毒阳性")  # purple added
    await mc.call("sw", services.change_risk, pid, Grade("orange", True, mc.ids["sw"]), "交接")  # no raise
    events = [e for e in heard if isinstance(e, services.MaternalRiskRaised)]
    assert [(e.colour, e.infectious, e.resident_id, e.organization_id) for e in events] == [
        ("orange", False, mc.ids["resident"], mc.ids["org_a"]),
        ("orange", True, mc.ids["resident"], mc.ids["org_a"]),
    ]
    assert events[0].name == "maternal_care.risk_raised"


async def test_the_high_risk_list_is_the_ongoing_orange_red_and_purple_most_severe_first(mc: MaternalWorld) -> None:
    staff = mc.ids["staff"]
    purple = await mc.new_pregnancy(await mc.new_mother(worker="sw2"))
    await mc.call("staff", services.change_risk, purple, Grade("yellow", True, staff), "结核")
    orange = await mc.new_pregnancy(await mc.new_mother(worker="sw2"))
    await mc.call("staff", services.change_risk, orange, Grade("orange", responsible_account_id=staff), "前置胎盘")
    red = mc.ids["pregnancy"]
    await mc.call("staff", services.change_risk, red, Grade("red", responsible_account_id=staff), "重度子痫前期")
    delivered = await mc.new_pregnancy(await mc.new_mother(worker="sw2"))
    await mc.call("staff", services.change_risk, delivered, Grade("red", responsible_account_id=staff), "x")
    await mc.call("staff", services.record_outcome, delivered, outcome="delivered", on=await mc.today())
    await mc.new_pregnancy(await mc.new_mother(worker="sw2"))  # green
    await mc.new_pregnancy(await mc.new_mother(worker="sw_b", who="sw_b"), who="sw_b")  # B's
    # then staff see A's ongoing high-risk pregnancies, red, orange, purple
    async with mc.as_("staff") as ctx:
        page = await services.high_risk(ctx)
    assert [p.id for p in page.items] == [red, orange, purple]
    # her social worker sees only his mother's; another organisation's staff see none of A's
    async with mc.as_("sw") as ctx:
        assert [p.id for p in (await services.high_risk(ctx)).items] == [red]
    async with mc.as_("staff_b") as ctx:
        assert (await services.high_risk(ctx)).items == []


# -- privacy -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "sees"),
    [
        ("sw", True),
        ("staff", True),
        ("admin", True),
        ("padmin", True),
        ("sw2", False),
        ("counselor", False),
        ("volunteer", False),
        ("head", False),
        ("admin_b", False),
        ("sw_b", False),
        ("staff_b", False),
    ],
)
async def test_who_addresses_a_mother_and_her_health(mc: MaternalWorld, who: str, sees: bool) -> None:
    # given a pregnancy with a risk history (one change)
    await mc.call("sw", services.change_risk, mc.ids["pregnancy"], Grade("yellow"), "高龄")
    async with mc.as_(who) as ctx:
        mothers = await services.rows_by_id(ctx, services.Mother, [mc.ids["mother"]])
        pregnancies = await services.pregnancies_of(ctx, [mc.ids["mother"]])
        history = await services.risk_histories(ctx, [mc.ids["pregnancy"]])
    assert bool(mothers) is sees
    assert bool(pregnancies[0]) is sees
    assert [h.to_colour for h in history[0]] == (["yellow"] if sees else [])
    code = await mc.refused(who, services.change_risk, mc.ids["pregnancy"], Grade("yellow"), "x") if not sees else None
    assert code in (None, "NOT_FOUND", "FORBIDDEN")


async def test_a_counselor_named_responsible_sees_that_pregnancy_and_nothing_else(mc: MaternalWorld) -> None:
    # given the mother's earlier pregnancy (a loss) and her current one graded red, a counselor responsible;
    # and another mother's red pregnancy, staff responsible
    today = await mc.today()
    earlier = mc.ids["pregnancy"]
    await mc.call("sw", services.record_outcome, earlier, outcome="loss", on=today - timedelta(days=60))
    current = await mc.new_pregnancy(mc.ids["mother"], weeks=8, who="sw")
    counselor = mc.ids["counselor"]
    await mc.call("sw", services.change_risk, current, Grade("red", responsible_account_id=counselor), "子痫前期")
    other_mother = await mc.new_mother()
    other = await mc.new_pregnancy(other_mother)
    await mc.call("staff", services.change_risk, other, Grade("red", responsible_account_id=mc.ids["staff"]), "x")
    async with mc.as_("counselor") as ctx:
        ctx.events = mc.host
        # then the counselor sees that pregnancy (by id, its history, the high-risk list) and her record
        assert list(await services.rows_by_id(ctx, services.Pregnancy, [current, earlier, other])) == [current]
        assert [p.id for p in (await services.high_risk(ctx)).items] == [current]
        assert [[h.to_colour for h in hs] for hs in await services.risk_histories(ctx, [current, other])] == [
            ["red"],
            [],
        ]
        assert list(await services.rows_by_id(ctx, services.Mother, [mc.ids["mother"], other_mother])) == [
            mc.ids["mother"]
        ]
        assert [p.id for p in (await services.pregnancies_of(ctx, [mc.ids["mother"]]))[0]] == [current]
        assert await __import__("core").residents.served_among(ctx, [mc.ids["resident"]]) == {mc.ids["resident"]}
    # and nothing else: no list of mothers, no other pregnancy of hers, no change of the grade
    assert await mc.refused("counselor", services.list_mothers) == "FORBIDDEN"
    assert await mc.refused("counselor", services.change_risk, current, Grade("yellow"), "好转") == "FORBIDDEN"
    # another organisation's counselor-equivalent, and another social worker, see none of it
    for who in ("sw2", "staff_b", "volunteer"):
        async with mc.as_(who) as ctx:
            assert await services.rows_by_id(ctx, services.Pregnancy, [current]) == {}, who
    # once someone else is responsible, the counselor sees it no more
    await mc.call("sw", services.change_risk, current, Grade("red", responsible_account_id=mc.ids["sw"]), "交接")
    async with mc.as_("counselor") as ctx:
        assert await services.rows_by_id(ctx, services.Pregnancy, [current]) == {}
        assert (await services.high_risk(ctx)).items == []


async def test_a_delivered_or_lost_pregnancy_is_not_regraded(mc: MaternalWorld) -> None:
    today = await mc.today()
    await mc.call("sw", services.record_outcome, mc.ids["pregnancy"], outcome="delivered", on=today)
    before = await mc.counts()
    staff = mc.ids["staff"]
    for grade in (Grade("yellow"), Grade("red", responsible_account_id=staff)):
        code = await mc.refused("sw", services.change_risk, mc.ids["pregnancy"], grade, "产后评估")
        assert code == "INVALID_TRANSITION"
    assert await mc.counts() == before
    lost = await mc.new_pregnancy(await mc.new_mother())
    await mc.call("staff", services.record_outcome, lost, outcome="loss", on=today)
    assert await mc.refused("staff", services.change_risk, lost, Grade("yellow"), "x") == "INVALID_TRANSITION"


async def test_the_resident_is_served_by_her_social_worker_and_staff(mc: MaternalWorld) -> None:
    import core

    for who, served in (("sw", True), ("staff", True), ("sw2", False), ("admin", False), ("staff_b", False)):
        async with mc.as_(who) as ctx:
            ctx.events = mc.host
            found = await core.residents.served_among(ctx, [mc.ids["resident"]])
        assert bool(found) is served, who


async def test_reassigning_moves_the_view(mc: MaternalWorld) -> None:
    assert await mc.refused("sw", services.assign_social_worker, mc.ids["mother"], mc.ids["sw2"]) == "FORBIDDEN"
    await mc.call("staff", services.assign_social_worker, mc.ids["mother"], mc.ids["sw2"])
    async with mc.as_("sw") as ctx:
        assert await services.rows_by_id(ctx, services.Mother, [mc.ids["mother"]]) == {}
    async with mc.as_("sw2") as ctx:
        assert list(await services.rows_by_id(ctx, services.Mother, [mc.ids["mother"]])) == [mc.ids["mother"]]


# -- referrals -----------------------------------------------------------------------------------------------------


async def test_an_accepted_referral_registers_the_mother_in_the_receiving_organisation(mc: MaternalWorld) -> None:
    import core
    from core.database import create_sessionmaker
    from core.services import plugins as plugin_service
    from core.services.context import ServiceContext, Viewer

    # given B has enabled maternal care, and A's mother consents to be referred there (summary and contact)
    names = frozenset(mc.host.plugins)
    async with create_sessionmaker(mc.engine)() as session, session.begin():
        builder = ServiceContext(session=session, viewer=Viewer(label="builder", role="platform_admin"))
        await plugin_service.set_enabled(
            builder, organization_id=mc.ids["org_b"], plugin="maternal_care", enabled=True, installed=names, known=names
        )
    async with mc.as_("sw") as ctx:
        given = await core.consent.record_consent(
            ctx,
            resident_id=mc.ids["resident"],
            scopes=["summary", "contact"],
            target="maternal_care",
            target_organization_id=mc.ids["org_b"],
            purpose="搬到乙区，转介孕产期保健",
        )
        referral = await core.referrals.send_referral(
            ctx,
            resident_id=mc.ids["resident"],
            consent_id=given.id,
            summary="孕20周，搬迁至乙区",
            target_plugin="maternal_care",
            target_organization_id=mc.ids["org_b"],
        )
    before = await mc.counts()
    # when B's social worker accepts it
    await mc.call("sw_b", core.referrals.accept_referral, referral.id)
    # then B has a mother of its own (a new resident of B, with the contact the consent shared), assigned to them
    async with mc.as_("sw_b") as ctx:
        page = await services.list_mothers(ctx)
        [mother] = page.items
        resident = await core.residents.get_resident(ctx, mother.resident_id)
    assert (mother.organization_id, mother.social_worker_account_id) == (mc.ids["org_b"], mc.ids["sw_b"])
    assert (resident.organization_id, resident.name, resident.phone) == (mc.ids["org_b"], "孕妇刘女士", "13700002001")
    assert mother.consent_note == f"referral {referral.id}"
    assert await mc.counts() == (before[0] + 1, before[1] + 1, *before[2:])


# -- the database's own guards (writes around the services) ------------------------------------------------------


async def _refused_at_flush(mc: MaternalWorld, work: Callable[[Any], Awaitable[Any]]) -> str:
    """The refusal of `work` when it is flushed (not at commit: the transaction is rolled back after)."""

    async def run() -> None:
        async with create_sessionmaker(mc.engine)() as session, session.begin():
            ctx = ServiceContext(session=session, viewer=mc.viewer("staff"))
            await work(ctx)
            await ctx.session.flush()
            raise AssertionError("flushed without a refusal")

    with pytest.raises(DBAPIError) as err:
        await run()
    return f"{constraint_name(err.value)} {sqlstate(err.value)} {err.value}"


async def test_a_history_row_must_be_the_next_change_when_written(mc: MaternalWorld) -> None:
    p = await mc.pregnancy()

    async def ahead(ctx: Any) -> None:
        ctx.session.add(_row(p, 2, "green", "yellow"))  # number 2 while the pregnancy has had no change

    async def wrong_from(ctx: Any) -> None:
        ctx.session.add(_row(p, 1, "yellow", "green"))  # from a grade the pregnancy does not have

    assert "maternal_care_risk_recorded" in await _refused_at_flush(mc, ahead)
    assert "maternal_care_risk_recorded" in await _refused_at_flush(mc, wrong_from)


async def test_dating_corrections_are_append_only(mc: MaternalWorld) -> None:
    p = await mc.pregnancy()
    await mc.call("sw", services.correct_dating, p.id, lmp=p.lmp + timedelta(days=2), reason="B超")

    async def rewrite(ctx: Any) -> None:
        await ctx.session.execute(text("UPDATE maternal_care_dating_corrections SET reason = 'rewritten'"))

    async def delete(ctx: Any) -> None:
        await ctx.session.execute(text("DELETE FROM maternal_care_dating_corrections"))

    assert "maternal_care_append_only" in await _database_refusal(mc, rewrite)
    assert "maternal_care_append_only" in await _database_refusal(mc, delete)


@pytest.mark.parametrize(
    ("assignments", "constraint"),
    [
        ("status = 'delivered', outcome_on = lmp - 1", "ck_maternal_care_pregnancies_outcome_after_lmp"),
        (
            "status = 'loss', outcome_on = lmp + 10, discharged_on = lmp + 11",
            "ck_maternal_care_pregnancies_discharge_after",
        ),
        (
            "status = 'delivered', outcome_on = lmp + 10, discharged_on = lmp + 9",
            "ck_maternal_care_pregnancies_discharge_after",
        ),
        ("status = 'delivered'", "ck_maternal_care_pregnancies_outcome_dated"),
        ("edd = edd + 1", "ck_maternal_care_pregnancies_edd_from_lmp"),
    ],
)
async def test_the_database_checks_dates_and_outcomes(mc: MaternalWorld, assignments: str, constraint: str) -> None:
    async def write(ctx: Any) -> None:
        await ctx.session.execute(
            text(f"UPDATE maternal_care_pregnancies SET {assignments} WHERE id = :id"), {"id": mc.ids["pregnancy"]}
        )

    assert (await _database_refusal(mc, write)).startswith(constraint)


async def test_the_database_registers_a_resident_once_and_keeps_the_social_worker_in_her_organisation(
    mc: MaternalWorld,
) -> None:
    async def twice(ctx: Any) -> None:
        ctx.session.add(
            services.Mother(
                resident_id=mc.ids["resident"], consent_at=datetime.now(UTC), organization_id=mc.ids["org_a"]
            )
        )

    async def foreign_worker(ctx: Any) -> None:
        await ctx.session.execute(
            text("UPDATE maternal_care_mothers SET social_worker_account_id = :sw WHERE id = :id"),
            {"sw": mc.ids["sw_b"], "id": mc.ids["mother"]},
        )

    assert (await _database_refusal(mc, twice)).startswith("uq_maternal_care_mothers_resident_id")
    assert services.CONSTRAINT_ERRORS["uq_maternal_care_mothers_resident_id"][0] == "MATERNAL_CARE_ALREADY_REGISTERED"
    b_mother = await mc.new_mother(who="sw_b", worker="sw_b")
    async with mc.as_("sw_b") as ctx:
        b_resident = (await services._mother(ctx, b_mother)).resident_id

    async def foreign_resident(ctx: Any) -> None:
        ctx.session.add(
            services.Mother(resident_id=b_resident, consent_at=datetime.now(UTC), organization_id=mc.ids["org_a"])
        )

    # another organisation's account or resident is not even visible to A: insufficient privilege (42501)
    assert (await _database_refusal(mc, foreign_worker)).startswith("None 42501 ")
    assert (await _database_refusal(mc, foreign_resident)).startswith("None 42501 ")


async def test_a_raise_names_where_it_refers_her_casework_by_default(
    mc: MaternalWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    heard: list[object] = []

    async def publish(self: object, event: object, ctx: object) -> None:
        heard.append(event)

    monkeypatch.setattr(type(mc.host), "publish", publish)
    pid, staff = mc.ids["pregnancy"], mc.ids["staff"]
    # when a raise names no service, then one names counseling (twice) and casework
    await mc.call("sw", services.change_risk, pid, Grade("orange", responsible_account_id=staff), "妊娠期糖尿病")
    await mc.call(
        "sw",
        services.change_risk,
        pid,
        Grade("red", responsible_account_id=staff),
        "重度子痫前期",
        refer_to=["counseling", "case_work", "counseling"],
    )
    # then the events carry casework, then counseling and casework (each once, as given)
    events = [e for e in heard if isinstance(e, services.MaternalRiskRaised)]
    assert [e.refer_to for e in events] == [("case_work",), ("counseling", "case_work")]
    assert events[1].data()["refer_to"] == ("counseling", "case_work")


@pytest.mark.parametrize(("refer_to", "code"), [([], "REQUIRED"), (["supplies"], "INVALID_INPUT")])
async def test_a_raise_refers_her_to_a_known_service_at_least(
    mc: MaternalWorld, refer_to: list[str], code: str
) -> None:
    # given the registry as it is
    before = await mc.counts()
    # when a raise names no service, or one that takes no maternal referral
    refused = await mc.refused(
        "sw",
        services.change_risk,
        mc.ids["pregnancy"],
        Grade("red", responsible_account_id=mc.ids["staff"]),
        "重度子痫前期",
        refer_to=refer_to,
    )
    # then it is refused on referTo, nothing written
    assert refused == code
    assert await mc.counts() == before


# -- pregnancies follow one another; free text is refused when too long, never cut ---------------------------------


async def _ended(mc: MaternalWorld, outcome: str, days_ago: int) -> Any:
    today = await mc.today()
    return await mc.call(
        "sw", services.record_outcome, mc.ids["pregnancy"], outcome=outcome, on=today - timedelta(days=days_ago)
    )


@pytest.mark.parametrize("outcome", ["delivered", "loss"])
async def test_a_new_pregnancy_cannot_begin_before_the_previous_one_ended(mc: MaternalWorld, outcome: str) -> None:
    # given a pregnancy that ended 10 days ago
    ended = await _ended(mc, outcome, 10)
    before = await mc.counts()
    # when a new one is registered with an LMP on or before that day
    for lmp in (ended.outcome_on - timedelta(days=20), ended.outcome_on):
        code = await mc.refused("sw", services.register_pregnancy, mc.ids["mother"], lmp=lmp)
        # then it is refused and nothing is written
        assert code == "OUT_OF_RANGE"
    assert await mc.counts() == before
    # and the day after is accepted
    after = await mc.call("sw", services.register_pregnancy, mc.ids["mother"], lmp=ended.outcome_on + timedelta(days=1))
    assert after.status == "ongoing"


async def test_a_correction_cannot_move_a_pregnancy_into_the_previous_one(mc: MaternalWorld) -> None:
    ended = await _ended(mc, "loss", 30)
    later = await mc.call("sw", services.register_pregnancy, mc.ids["mother"], lmp=ended.outcome_on + timedelta(days=5))
    code = await mc.refused(
        "sw", services.correct_dating, later.id, lmp=ended.outcome_on - timedelta(days=1), reason="超声"
    )
    assert code == "OUT_OF_RANGE"
    async with mc.as_("sw") as ctx:
        assert (await ctx.session.get(Pregnancy, later.id)).lmp == ended.outcome_on + timedelta(days=5)


async def test_the_database_keeps_a_mothers_pregnancies_apart(mc: MaternalWorld) -> None:
    # given a pregnancy that ended; when an overlapping one is inserted around the service
    ended = await _ended(mc, "delivered", 10)

    async def overlapping(ctx: Any) -> None:
        lmp = ended.outcome_on - timedelta(days=5)
        ctx.session.add(
            Pregnancy(
                mother_id=ended.mother_id,
                lmp=lmp,
                edd=gestation.edd_from_lmp(lmp),
                dating_basis="lmp",
                organization_id=ended.organization_id,
            )
        )

    # then the exclusion constraint refuses it, and the service maps it to the code
    assert (await _database_refusal(mc, overlapping)).startswith("ex_maternal_care_pregnancies_no_overlap")
    assert services.CONSTRAINT_ERRORS["ex_maternal_care_pregnancies_no_overlap"][0] == "OUT_OF_RANGE"


async def test_over_long_text_is_refused_not_cut(mc: MaternalWorld) -> None:
    long = "字" * (services.MAX_TEXT + 1)
    before = await mc.counts()
    today = await mc.today()
    refusals = [
        await mc.refused(
            "sw", services.correct_dating, mc.ids["pregnancy"], lmp=today - timedelta(weeks=10), reason=long
        ),
        await mc.refused("sw", services.record_outcome, mc.ids["pregnancy"], outcome="loss", on=today, note=long),
        await mc.refused("sw", services.change_risk, mc.ids["pregnancy"], Grade("yellow"), long),
    ]
    assert refusals == ["OUT_OF_RANGE"] * 3
    assert await mc.counts() == before
    async with mc.as_("sw") as ctx:
        assert (await ctx.session.get(Pregnancy, mc.ids["pregnancy"])).status == "ongoing"
