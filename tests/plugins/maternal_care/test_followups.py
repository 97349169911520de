"""Follow-ups from the national schedule at the service layer: generated from the rules' data at window
boundaries (idempotent), moved by a dating correction (a booking kept and flagged), postpartum items from a
delivery, booked on core's shared calendar (no double booking), an abnormal finding referred under a consent
with a re-check within 14 days, the overdue list as of a date (constant statements), bad input refused with
codes and nothing written, and nobody but those who see the pregnancy sees its follow-ups."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import DBAPIError

from core.database import create_sessionmaker
from core.models import Account, Appointment, AvailabilityWindow, Referral
from core.services import consent as consents
from core.services import volunteers
from core.services.common import constraint_name
from core.services.context import ServiceContext, Viewer
from core.vocab import VolunteerMode
from plugins.maternal_care.followups import services as followups
from plugins.maternal_care.followups.models import FollowUp
from plugins.maternal_care.registry import services as registry
from schema import api as gql
from tests.core.services.test_scheduling import at, next_monday
from tests.plugins.maternal_care.conftest import MaternalWorld
from yunshegong.testing import Harness

HOSPITAL = "西安市妇幼保健院"
PRENATAL = ("prenatal_1", "prenatal_2", "prenatal_3", "prenatal_4", "prenatal_5")


@pytest.fixture
async def cal(mc: MaternalWorld) -> MaternalWorld:
    """`staff`, `sw` and `sw2` get a calendar: a staff record with hours 08:00-20:00 every day (as casework visits)."""
    builder = Viewer(label="builder", role="platform_admin")
    async with create_sessionmaker(mc.engine)() as session, session.begin():
        ctx = ServiceContext(session=session, viewer=builder, clock=mc.clock)
        for who in ("staff", "sw", "sw2", "staff_b"):
            org = "org_b" if who.endswith("_b") else "org_a"
            person = await volunteers.register_volunteer(
                ctx,
                volunteers.VolunteerInput(
                    name=f"{who}的日程",
                    phone=f"1380000{mc.ids[who] % 10000:04d}",
                    mode=VolunteerMode.OFFLINE,
                    organization_id=mc.ids[org],
                ),
            )
            account = await session.get(Account, mc.ids[who])
            assert account is not None
            account.volunteer_id = person.id
            for weekday in range(7):
                session.add(
                    AvailabilityWindow(
                        owner_id=person.id,
                        weekday=weekday,
                        start_time=time(8),
                        end_time=time(20),
                        organization_id=mc.ids[org],
                    )
                )
            mc.ids[f"record_{who}"] = person.id
    return mc


async def items(mc: MaternalWorld, pregnancy_id: int | None = None) -> dict[str, FollowUp]:
    async with mc.as_("admin") as ctx:
        rows = await ctx.session.scalars(
            select(FollowUp).where(FollowUp.pregnancy_id == (pregnancy_id or mc.ids["pregnancy"])).order_by(FollowUp.id)
        )
        return {(f"recheck:{r.finding_id}" if r.finding_id else r.rule_code): r for r in rows}


async def counts(mc: MaternalWorld) -> tuple[int, ...]:
    """Follow-ups, active appointments and referrals of every organisation: for "nothing written"."""
    everyone = Viewer(label="count", role="platform_admin")
    async with create_sessionmaker(mc.engine)() as session, session.begin():
        ServiceContext(session=session, viewer=everyone)
        return (
            await session.scalar(select(func.count()).select_from(FollowUp)) or 0,
            await session.scalar(select(func.count()).select_from(Appointment).where(Appointment.status == "active"))
            or 0,
            await session.scalar(select(func.count()).select_from(Referral)) or 0,
            await session.scalar(select(func.count()).select_from(FollowUp).where(FollowUp.status != "open")) or 0,
        )


async def pregnancy_on_day(mc: MaternalWorld, days_along: int) -> tuple[int, date]:
    """A new mother's pregnancy registered `days_along` days after its LMP (today); (id, lmp)."""
    lmp = await mc.today() - timedelta(days=days_along)
    mother_id = await mc.new_mother()
    pregnancy = await mc.call("staff", registry.register_pregnancy, mother_id, lmp=lmp)
    return int(pregnancy.id), lmp


def monday(mc: MaternalWorld, hh: int = 10) -> datetime:
    return at(next_monday(mc.clock), hh)


# -- generation ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days_along", "expected"),
    [
        (90, PRENATAL),  # 12+6: the last day of "before 13 weeks"
        (91, PRENATAL[1:]),  # 13+0: that window has passed
        (146, PRENATAL[1:]),  # 20+6: the last day of 16-20
        (147, PRENATAL[2:]),  # 21+0
        (286, PRENATAL[4:]),  # 40+6: the last day of 37-40
    ],
)
async def test_a_registered_pregnancy_gets_the_prenatal_items_whose_window_has_not_passed(
    mc: MaternalWorld, days_along: int, expected: tuple[str, ...]
) -> None:
    # given a pregnancy registered `days_along` days after its LMP
    pregnancy_id, lmp = await pregnancy_on_day(mc, days_along)
    # then exactly the items whose window has not fully passed, each with the rule's window from the LMP
    found = await items(mc, pregnancy_id)
    assert tuple(found) == expected
    windows = {"prenatal_1": (0, 90), "prenatal_2": (112, 146), "prenatal_3": (147, 174), "prenatal_4": (196, 258)}
    windows["prenatal_5"] = (259, 286)
    for code, item in found.items():
        start, end = windows[code]
        assert (item.window_start, item.window_end, item.status) == (
            lmp + timedelta(days=start),
            lmp + timedelta(days=end),
            "open",
        )


async def test_generation_is_idempotent(mc: MaternalWorld) -> None:
    # given the world's pregnancy with its items
    before = await items(mc)
    pregnancy = await mc.pregnancy()
    # when generation runs again
    async with mc.as_("staff") as ctx:
        await followups.pregnancy_registered(ctx, pregnancy, registry.today(ctx))
    # then nothing is added
    assert {k: v.id for k, v in (await items(mc)).items()} == {k: v.id for k, v in before.items()}


# -- dating corrections -------------------------------------------------------------------------------------------


async def test_a_correction_moves_open_items_and_keeps_a_booking_still_inside_its_window(cal: MaternalWorld) -> None:
    mc = cal
    # given the world's pregnancy (20+0 today) with its 16-20 check booked next Monday
    before = await items(mc)
    start = monday(mc)
    booking = await mc.call("staff", followups.book, before["prenatal_2"].id, start=start, minutes=30)
    # when the LMP is corrected 3 weeks later (17+0 today: next Monday is still within the new 16-20)
    pregnancy = await mc.pregnancy()
    new_lmp = pregnancy.lmp + timedelta(weeks=3)
    await mc.call("staff", registry.correct_dating, mc.ids["pregnancy"], lmp=new_lmp, reason="B超校正")
    after = await items(mc)
    # then every open prenatal item's window moves with the LMP
    assert after["prenatal_3"].window_start == new_lmp + timedelta(days=147)
    assert after["prenatal_5"].window_end == new_lmp + timedelta(days=286)
    # and the booked one keeps its appointment, unflagged: its date is inside the new window
    booked = after["prenatal_2"]
    assert (booked.status, booked.appointment_id) == ("booked", booking.appointment_id)
    assert (booked.window_start, booked.window_end) == (new_lmp + timedelta(days=112), new_lmp + timedelta(days=146))
    assert booked.window_start <= start.date() <= booked.window_end
    assert booked.rebook_needed is False


async def test_a_correction_flags_a_booking_outside_the_new_window_and_rebooking_clears_it(cal: MaternalWorld) -> None:
    mc = cal
    # given the 16-20 check booked next Monday
    item_id = (await items(mc))["prenatal_2"].id
    await mc.call("staff", followups.book, item_id, start=monday(mc), minutes=30)
    # when the LMP moves 6 weeks earlier (26+0 today: the 16-20 window ended weeks ago)
    pregnancy = await mc.pregnancy()
    await mc.call(
        "staff", registry.correct_dating, mc.ids["pregnancy"], lmp=pregnancy.lmp - timedelta(weeks=6), reason="B超"
    )
    # then the booking is kept and flagged
    item = (await items(mc))["prenatal_2"]
    assert (item.status, item.rebook_needed) == ("booked", True)
    # when it is booked again (a late catch-up, the day after)
    await mc.call("staff", followups.book, item_id, start=monday(mc) + timedelta(days=1), minutes=30)
    # then the flag is cleared, the same appointment moved
    moved = (await items(mc))["prenatal_2"]
    assert (moved.rebook_needed, moved.appointment_id) == (False, item.appointment_id)


async def test_a_later_lmp_brings_an_earlier_rule_into_reach(mc: MaternalWorld) -> None:
    # given a pregnancy registered at 14+0 (no "before 13 weeks" item)
    pregnancy_id, lmp = await pregnancy_on_day(mc, 98)
    assert "prenatal_1" not in await items(mc, pregnancy_id)
    # when an ultrasound moves the LMP two weeks later (12+0 today)
    await mc.call("staff", registry.correct_dating, pregnancy_id, lmp=lmp + timedelta(weeks=2), reason="B超")
    # then that item is generated, with the new window
    added = (await items(mc, pregnancy_id))["prenatal_1"]
    assert added.window_end == lmp + timedelta(weeks=2, days=90)


# -- delivery -----------------------------------------------------------------------------------------------------


async def test_a_delivery_generates_postpartum_items_and_closes_the_prenatal_ones(cal: MaternalWorld) -> None:
    mc = cal
    # given the world's pregnancy with one prenatal check booked
    booked_id = (await items(mc))["prenatal_3"].id
    await mc.call("staff", followups.book, booked_id, start=monday(mc) + timedelta(weeks=1), minutes=30)
    # when a delivery is recorded yesterday, discharged today
    today = await mc.today()
    await mc.call(
        "staff",
        registry.record_outcome,
        mc.ids["pregnancy"],
        outcome="delivered",
        on=today - timedelta(days=1),
        discharged_on=today,
    )
    found = await items(mc)
    # then the home visit runs within 7 days of the discharge, the day-42 check from the delivery
    visit, check = found["postpartum_visit"], found["postpartum_42"]
    assert (visit.window_start, visit.window_end) == (today, today + timedelta(days=7))
    assert check.window_start == today - timedelta(days=1) + timedelta(days=42)
    # and the prenatal items are closed as not needed, the booking's appointment freed
    assert {found[c].status for c in PRENATAL[1:]} == {"not_needed"}
    async with mc.as_("admin") as ctx:
        appointment = await ctx.session.get(Appointment, found["prenatal_3"].appointment_id)
        assert appointment is not None
        assert appointment.status == "cancelled"


async def test_a_delivery_recorded_late_still_lists_its_passed_home_visit(mc: MaternalWorld) -> None:
    # given a delivery recorded 20 days after it happened, no discharge recorded
    today = await mc.today()
    delivered = today - timedelta(days=20)
    await mc.call("staff", registry.record_outcome, mc.ids["pregnancy"], outcome="delivered", on=delivered)
    found = await items(mc)
    # then the home visit runs from the delivery and is overdue today; the day-42 check lies ahead
    visit = found["postpartum_visit"]
    assert (visit.window_start, visit.window_end) == (delivered, delivered + timedelta(days=7))
    assert await _overdue(mc, "staff", today) == [(mc.ids["pregnancy"], "postpartum_visit")]
    assert found["postpartum_42"].window_end == delivered + timedelta(days=56)


async def test_a_loss_closes_the_prenatal_items_and_generates_nothing(mc: MaternalWorld) -> None:
    today = await mc.today()
    await mc.call("staff", registry.record_outcome, mc.ids["pregnancy"], outcome="loss", on=today)
    found = await items(mc)
    assert set(found) == set(PRENATAL[1:])
    assert {f.status for f in found.values()} == {"not_needed"}


async def test_a_delivery_recorded_late_closes_the_prenatal_items_whose_window_passed_as_missed(
    mc: MaternalWorld,
) -> None:
    # given a pregnancy registered on the last day of 16-20 weeks (items prenatal_2 to prenatal_5)
    pregnancy_id, lmp = await pregnancy_on_day(mc, 146)
    # when, a month later, a delivery of yesterday is recorded (day 175: past prenatal_3's window end, day 174)
    mc.clock.now += timedelta(days=30)
    delivered = await mc.today() - timedelta(days=1)
    await mc.call("staff", registry.record_outcome, pregnancy_id, outcome="delivered", on=delivered)
    found = await items(mc, pregnancy_id)
    # then the checks whose window ended before the delivery were missed, closed on their window's end
    closed = {c: (found[c].status, found[c].closed_on) for c in PRENATAL[1:]}
    assert closed == {
        "prenatal_2": ("missed", lmp + timedelta(days=146)),
        "prenatal_3": ("missed", lmp + timedelta(days=174)),
        "prenatal_4": ("not_needed", None),
        "prenatal_5": ("not_needed", None),
    }


async def test_a_delivery_keeps_a_booked_check_whose_appointment_has_started(cal: MaternalWorld) -> None:
    mc = cal
    # given the world's prenatal_2 booked next Monday at 10:00, and that time come
    item_id = (await items(mc))["prenatal_2"].id
    start = monday(mc)
    await mc.call("staff", followups.book, item_id, start=start, minutes=30)
    mc.clock.now = start + timedelta(hours=1)
    # when a delivery is recorded today
    await mc.call("staff", registry.record_outcome, mc.ids["pregnancy"], outcome="delivered", on=await mc.today())
    # then the check stays booked, its appointment kept, and its result is still recorded
    found = await items(mc)
    assert found["prenatal_2"].status == "booked"
    async with mc.as_("admin") as ctx:
        appointment = await ctx.session.get(Appointment, found["prenatal_2"].appointment_id)
        assert appointment is not None
        assert appointment.status == "active"
    done = await mc.call("sw", followups.record_result, item_id, outcome="normal")
    assert (done.status, done.outcome) == ("done", "normal")


async def test_nothing_is_recorded_before_the_window_opens(mc: MaternalWorld) -> None:
    # given the world's pregnancy at 20 weeks: prenatal_3 (21-24 weeks) opens in a week
    item_id = (await items(mc))["prenatal_3"].id
    before = await counts(mc)
    # then it takes no result and is not missed yet
    assert await mc.refused("sw", followups.record_result, item_id, outcome="normal") == "OUT_OF_RANGE"
    assert await mc.refused("sw", followups.mark_missed, item_id, note="未到") == "OUT_OF_RANGE"
    assert await counts(mc) == before
    # and on its first day it does
    mc.clock.now += timedelta(days=7)
    done = await mc.call("sw", followups.record_result, item_id, outcome="normal")
    assert done.status == "done"


# -- booking ------------------------------------------------------------------------------------------------------


async def test_a_staff_member_is_never_double_booked_and_nothing_is_written(cal: MaternalWorld) -> None:
    mc = cal
    # given staff booked with the world's mother next Monday at 10:00
    await mc.call("staff", followups.book, (await items(mc))["prenatal_2"].id, start=monday(mc), minutes=30)
    # and another mother's check, its window open
    other_id, _lmp = await pregnancy_on_day(mc, 120)
    other = (await items(mc, other_id))["prenatal_2"].id
    before = await counts(mc)
    # when it is booked with the same staff member at 10:15
    code = await mc.refused(
        "sw",
        followups.book,
        other,
        start=monday(mc) + timedelta(minutes=15),
        minutes=30,
        staff_account_id=mc.ids["staff"],
    )
    # then the calendar refuses it and nothing is written
    assert code == "SLOT_TAKEN"
    assert await counts(mc) == before
    assert (await items(mc, other_id))["prenatal_2"].status == "open"
    # and with sw's own calendar it is booked
    booked = await mc.call("sw", followups.book, other, start=monday(mc) + timedelta(minutes=15), minutes=30)
    assert (booked.status, booked.staff_account_id) == ("booked", mc.ids["sw"])


async def test_another_staff_members_booking_is_not_taken_over(cal: MaternalWorld) -> None:
    mc = cal
    # given the 16-20 check booked with staff next Monday at 10:00
    item_id = (await items(mc))["prenatal_2"].id
    booking = await mc.call("staff", followups.book, item_id, start=monday(mc), minutes=30)
    before = await counts(mc)
    # when her social worker books it on her own calendar
    code = await mc.refused("sw", followups.book, item_id, start=monday(mc, 11), minutes=30)
    # then it is refused, and staff's appointment stands: nothing written
    assert code == "ALREADY_EXISTS"
    assert await counts(mc) == before
    kept = (await items(mc))["prenatal_2"]
    assert (kept.staff_account_id, kept.appointment_id) == (mc.ids["staff"], booking.appointment_id)
    # and staff moving their own booking is allowed
    moved = await mc.call("staff", followups.book, item_id, start=monday(mc, 11), minutes=30)
    assert (moved.staff_account_id, moved.appointment_id) == (mc.ids["staff"], booking.appointment_id)


async def test_the_pregnancys_named_responsible_can_be_booked(cal: MaternalWorld) -> None:
    mc = cal
    item_id = (await items(mc))["prenatal_2"].id
    # given sw2, not her social worker, cannot be booked
    assert (
        await mc.refused("staff", followups.book, item_id, start=monday(mc), minutes=30, staff_account_id=mc.ids["sw2"])
        == "INVALID_INPUT"
    )
    # when sw2 is named responsible for the pregnancy
    grade = registry.Grade("orange", responsible_account_id=mc.ids["sw2"])
    await mc.call("staff", registry.change_risk, mc.ids["pregnancy"], grade, "妊娠期糖尿病")
    # then sw2 can be booked
    booked = await mc.call(
        "staff", followups.book, item_id, start=monday(mc), minutes=30, staff_account_id=mc.ids["sw2"]
    )
    assert (booked.status, booked.staff_account_id) == ("booked", mc.ids["sw2"])


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"minutes": 5}, "OUT_OF_RANGE"),
        ({"minutes": 500}, "OUT_OF_RANGE"),
        ({"start": "next_year_and_more"}, "OUT_OF_RANGE"),  # beyond the booking horizon
        ({"rule": "prenatal_4"}, "OUT_OF_RANGE"),  # its window opens in 8 weeks
        ({"time_zone": "Mars/Base"}, "INVALID_INPUT"),
        ({"staff": "admin"}, "OUTSIDE_AVAILABILITY"),  # serves her, without a calendar
        ({"staff": "sw2"}, "INVALID_INPUT"),  # has a calendar, but is not her social worker: cannot see her
        ({"staff": "counselor"}, "INVALID_INPUT"),  # staff of the organisation who does not serve her
        ({"staff": "volunteer"}, "INVALID_INPUT"),  # not staff
        ({"staff": "staff_b"}, "NOT_FOUND"),  # another organisation's
        ({"start": "night"}, "OUTSIDE_AVAILABILITY"),
    ],
)
async def test_bad_bookings_are_refused_and_write_nothing(
    cal: MaternalWorld, change: dict[str, Any], code: str
) -> None:
    mc = cal
    found = await items(mc)
    start = monday(mc)
    if change.get("start") == "next_year_and_more":
        start += timedelta(days=400)
    elif change.get("start") == "night":
        start = monday(mc, 22)
    kwargs: dict[str, Any] = {"start": start, "minutes": change.get("minutes", 30)}
    if "time_zone" in change:
        kwargs["time_zone"] = change["time_zone"]
    if "staff" in change:
        kwargs["staff_account_id"] = mc.ids[change["staff"]]
    before = await counts(mc)
    assert await mc.refused("staff", followups.book, found[change.get("rule", "prenatal_2")].id, **kwargs) == code
    assert await counts(mc) == before


# -- outcomes -----------------------------------------------------------------------------------------------------


async def _consent(mc: MaternalWorld, scopes: tuple[str, ...] = ("summary", "health")) -> int:
    async with mc.as_("sw") as ctx:
        given = await consents.record_consent(
            ctx,
            resident_id=mc.ids["resident"],
            scopes=list(scopes),
            target=HOSPITAL,
            target_kind="outside",
            purpose="产检异常转诊",
        )
        return int(given.id)


def _referral(**kw: Any) -> followups.ReferralRequest:
    return followups.ReferralRequest(summary="孕20周产检：血压偏高，建议上级医院复诊", target_outside=HOSPITAL, **kw)


async def test_an_abnormal_finding_refers_the_mother_and_adds_a_recheck_within_14_days(mc: MaternalWorld) -> None:
    # given her consent to share a summary and health details with the hospital
    consent_id = await _consent(mc)
    item_id = (await items(mc))["prenatal_2"].id
    # when the 16-20 check finds something abnormal
    done = await mc.call(
        "sw", followups.record_result, item_id, outcome="abnormal", note="血压150/95", referral=_referral()
    )
    # then the item is done, with a referral under that consent, from maternal care
    assert (done.status, done.outcome, done.closed_on) == ("done", "abnormal", await mc.today())
    async with mc.as_("sw") as ctx:
        referral = await ctx.session.get(Referral, done.referral_id)
        assert referral is not None
        assert (referral.consent_id, referral.target_outside, referral.source_plugin, referral.source_id) == (
            consent_id,
            HOSPITAL,
            "maternal_care",
            item_id,
        )
    # and a re-check falls due within 14 days
    recheck = (await items(mc))[f"recheck:{item_id}"]
    today = await mc.today()
    assert (recheck.rule_code, recheck.window_start, recheck.window_end) == ("recheck", today, today + timedelta(14))
    # and a normal result of the re-check closes it without a referral
    closed = await mc.call("sw", followups.record_result, recheck.id, outcome="normal")
    assert (closed.status, closed.referral_id) == ("done", None)


@pytest.mark.parametrize("consent", [None, ("summary",)])
async def test_an_abnormal_finding_without_a_covering_consent_is_refused_and_writes_nothing(
    mc: MaternalWorld, consent: tuple[str, ...] | None
) -> None:
    # given no consent, or one that does not cover health details
    consent_id = None if consent is None else await _consent(mc, consent)
    item_id = (await items(mc))["prenatal_2"].id
    before = await counts(mc)
    # when an abnormal finding is recorded (naming that consent, or finding none)
    code = await mc.refused(
        "sw",
        followups.record_result,
        item_id,
        outcome="abnormal",
        note="血压150/95",
        referral=_referral(consent_id=consent_id),
    )
    # then CONSENT_REQUIRED, and nothing is written: the item is open, no referral, no re-check
    assert code == "CONSENT_REQUIRED"
    assert await counts(mc) == before


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"outcome": "abnormal", "note": "血压高"}, "REQUIRED"),  # no referral
        ({"outcome": "abnormal", "referral": "yes"}, "REQUIRED"),  # no note of what was found
        ({"outcome": "normal", "referral": "yes"}, "INVALID_INPUT"),
        ({"outcome": "fine"}, "INVALID_INPUT"),
        ({"outcome": "normal", "note": "x" * 501}, "OUT_OF_RANGE"),
    ],
)
async def test_bad_outcomes_are_refused_and_write_nothing(mc: MaternalWorld, kwargs: dict[str, Any], code: str) -> None:
    await _consent(mc)
    if kwargs.get("referral") == "yes":
        kwargs = {**kwargs, "referral": _referral()}
    before = await counts(mc)
    assert await mc.refused("sw", followups.record_result, (await items(mc))["prenatal_2"].id, **kwargs) == code
    assert await counts(mc) == before


async def test_a_closed_item_is_not_closed_again_and_a_booked_one_waits_for_its_time(cal: MaternalWorld) -> None:
    mc = cal
    found = await items(mc)
    # given one item missed, another booked next Monday
    await mc.call("sw", followups.mark_missed, found["prenatal_2"].id, note="电话未接通")
    await mc.call("staff", followups.book, found["prenatal_3"].id, start=monday(mc) + timedelta(weeks=1), minutes=30)
    before = await counts(mc)
    # then the missed one takes no outcome, no booking; the booked one no outcome before it starts
    assert await mc.refused("sw", followups.record_result, found["prenatal_2"].id, outcome="normal") == (
        "INVALID_TRANSITION"
    )
    assert await mc.refused("sw", followups.book, found["prenatal_2"].id, start=monday(mc), minutes=30) == (
        "INVALID_TRANSITION"
    )
    assert await mc.refused("sw", followups.record_result, found["prenatal_3"].id, outcome="normal") == (
        "INVALID_TRANSITION"
    )
    assert await counts(mc) == before


# -- the day of the examination --------------------------------------------------------------------------------


async def test_a_result_is_dated_on_the_examination_day_and_its_recheck_counted_from_it(mc: MaternalWorld) -> None:
    # given the 16-20 check (its window opened four weeks ago), examined ten days ago, entered today
    await _consent(mc)
    today = await mc.today()
    item_id = (await items(mc))["prenatal_2"].id
    done = await mc.call(
        "sw",
        followups.record_result,
        item_id,
        outcome="abnormal",
        note="血压150/95",
        referral=_referral(),
        examined_on=today - timedelta(days=10),
    )
    # then it is closed on the day of the examination, and the re-check is due within 14 days of it
    assert done.closed_on == today - timedelta(days=10)
    recheck = (await items(mc))[f"recheck:{item_id}"]
    assert (recheck.window_start, recheck.window_end) == (today - timedelta(days=10), today + timedelta(days=4))


async def test_a_booked_result_defaults_to_the_appointments_day_not_the_day_it_is_entered(cal: MaternalWorld) -> None:
    mc = cal
    await _consent(mc)
    # given the 16-20 check booked next Monday at 10:00, its result entered on the Wednesday after
    item_id = (await items(mc))["prenatal_2"].id
    start = monday(mc)
    await mc.call("staff", followups.book, item_id, start=start, minutes=30)
    mc.clock.now = start + timedelta(days=2)
    done = await mc.call(
        "staff", followups.record_result, item_id, outcome="abnormal", note="尿蛋白(+)", referral=_referral()
    )
    # then it is dated Monday, and the re-check counted from Monday
    assert done.closed_on == start.date()
    recheck = (await items(mc))[f"recheck:{item_id}"]
    assert (recheck.window_start, recheck.window_end) == (start.date(), start.date() + timedelta(days=14))


async def test_a_booked_miss_defaults_to_the_appointments_day(cal: MaternalWorld) -> None:
    mc = cal
    item_id = (await items(mc))["prenatal_2"].id
    start = monday(mc)
    await mc.call("staff", followups.book, item_id, start=start, minutes=30)
    mc.clock.now = start + timedelta(days=3)
    missed = await mc.call("staff", followups.mark_missed, item_id, note="未到")
    assert (missed.status, missed.closed_on) == ("missed", start.date())
    # and an unbooked one is dated as given
    other = (await items(mc))["prenatal_3"].id
    day = await mc.today() - timedelta(days=1)
    assert (await mc.call("staff", followups.mark_missed, other, note="电话未接通", missed_on=day)).closed_on == day


@pytest.mark.parametrize("close", ["result", "miss"])
@pytest.mark.parametrize("when", ["tomorrow", "before_window", "before_booking"])
async def test_an_examination_day_out_of_range_is_refused_and_writes_nothing(
    cal: MaternalWorld, close: str, when: str
) -> None:
    mc = cal
    # given the 16-20 check (window opened 28 days ago), booked next Monday and that Monday passed, for the
    # last case
    found = await items(mc)
    item = found["prenatal_2"]
    if when == "before_booking":
        start = monday(mc)
        await mc.call("staff", followups.book, item.id, start=start, minutes=30)
        mc.clock.now = start + timedelta(days=2)
        day = start.date() - timedelta(days=1)
    elif when == "tomorrow":
        day = await mc.today() + timedelta(days=1)
    else:
        day = item.window_start - timedelta(days=1)
    before = await counts(mc)
    # when a result or a miss is dated that day
    if close == "result":
        code = await mc.refused("staff", followups.record_result, item.id, outcome="normal", examined_on=day)
    else:
        code = await mc.refused("staff", followups.mark_missed, item.id, note="未到", missed_on=day)
    # then OUT_OF_RANGE, and nothing is written
    assert code == "OUT_OF_RANGE"
    assert await counts(mc) == before


# -- a discharge recorded after the delivery -------------------------------------------------------------------


async def _delivered(mc: MaternalWorld, days_ago: int, discharged: int | None = None) -> date:
    today = await mc.today()
    on = today - timedelta(days=days_ago)
    out = None if discharged is None else today - timedelta(days=discharged)
    await mc.call("staff", registry.record_outcome, mc.ids["pregnancy"], outcome="delivered", on=on, discharged_on=out)
    return on


async def test_a_discharge_recorded_later_moves_the_open_home_visit(mc: MaternalWorld) -> None:
    # given a delivery 3 days ago with no discharge known: the home visit counted from the delivery
    delivered = await _delivered(mc, 3)
    today = await mc.today()
    before = await items(mc)
    assert before["postpartum_visit"].window_start == delivered
    # when the discharge, yesterday, is recorded
    pregnancy = await mc.call("staff", registry.record_discharge, mc.ids["pregnancy"], on=today - timedelta(days=1))
    # then the pregnancy has it, and the home visit runs within 7 days of it; the day-42 check stays
    assert pregnancy.discharged_on == today - timedelta(days=1)
    after = await items(mc)
    visit = after["postpartum_visit"]
    assert (visit.status, visit.window_start, visit.window_end) == ("open", today - timedelta(1), today + timedelta(6))
    check = after["postpartum_42"]
    assert (check.window_start, check.window_end) == (
        before["postpartum_42"].window_start,
        before["postpartum_42"].window_end,
    )
    assert visit.id == before["postpartum_visit"].id


@pytest.mark.parametrize("discharged", ["inside", "outside", "started"])
async def test_a_discharge_keeps_a_booked_visit_only_inside_its_new_window(cal: MaternalWorld, discharged: str) -> None:
    mc = cal
    # given a delivery 10 days ago, no discharge known, the home visit booked next Monday (late by then)
    await _delivered(mc, 10)
    visit = (await items(mc))["postpartum_visit"]
    start = monday(mc)
    booked = await mc.call("staff", followups.book, visit.id, start=start, minutes=30)
    if discharged == "started":
        mc.clock.now = start + timedelta(hours=1)
    # when the discharge is recorded: today (Monday inside 0-7 days of it), or the day after the delivery
    # (its window ended before Monday)
    today = await mc.today()
    on = today if discharged == "inside" else (await mc.pregnancy()).outcome_on + timedelta(days=1)  # type: ignore[operator]
    await mc.call("staff", registry.record_discharge, mc.ids["pregnancy"], on=on)
    item = (await items(mc))["postpartum_visit"]
    async with mc.as_("admin") as ctx:
        appointment = await ctx.session.get(Appointment, booked.appointment_id)
        assert appointment is not None
    if discharged == "inside":
        # then a booking inside the new window is kept, the window moved
        assert (item.status, item.appointment_id, appointment.status) == ("booked", booked.appointment_id, "active")
        assert (item.window_start, item.window_end) == (on, on + timedelta(days=7))
    elif discharged == "outside":
        # then one outside it is cancelled (the time freed) and the visit is open again, in the new window
        assert (item.status, item.appointment_id, item.staff_account_id) == ("open", None, None)
        assert appointment.status == "cancelled"
        assert (item.window_start, item.window_end) == (on, on + timedelta(days=7))
    else:
        # then one whose appointment has started stays as it is
        assert (item.status, item.appointment_id, appointment.status) == ("booked", booked.appointment_id, "active")
        assert (item.window_start, item.window_end) == (visit.window_start, visit.window_end)


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("ongoing", "INVALID_TRANSITION"),
        ("loss", "INVALID_TRANSITION"),
        ("discharged", "INVALID_TRANSITION"),
        ("twice", "INVALID_TRANSITION"),
        ("before_delivery", "OUT_OF_RANGE"),
        ("tomorrow", "OUT_OF_RANGE"),
        ("zone", "INVALID_INPUT"),
        ("sw2", "NOT_FOUND"),  # does not serve her
        ("sw_b", "NOT_FOUND"),  # another organisation
        ("counselor", "FORBIDDEN"),
    ],
)
async def test_bad_discharges_are_refused_and_write_nothing(mc: MaternalWorld, case: str, code: str) -> None:
    today = await mc.today()
    pid = mc.ids["pregnancy"]
    if case == "loss":
        await mc.call("staff", registry.record_outcome, pid, outcome="loss", on=today - timedelta(days=3))
    elif case == "discharged":
        await _delivered(mc, 3, discharged=2)
    elif case != "ongoing":
        await _delivered(mc, 3)
    if case == "twice":
        await mc.call("staff", registry.record_discharge, pid, on=today - timedelta(days=1))
    on = {"before_delivery": today - timedelta(days=4), "tomorrow": today + timedelta(days=1)}.get(case, today)
    who = case if case in ("sw2", "sw_b", "counselor") else "sw"
    kwargs: dict[str, Any] = {"on": on, "time_zone": "Mars/Base"} if case == "zone" else {"on": on}
    before, pregnancy, found = await counts(mc), await mc.pregnancy(), await items(mc)
    assert await mc.refused(who, registry.record_discharge, pid, **kwargs) == code
    assert await counts(mc) == before
    assert (await mc.pregnancy()).discharged_on == pregnancy.discharged_on
    assert {k: (v.window_start, v.status) for k, v in (await items(mc)).items()} == {
        k: (v.window_start, v.status) for k, v in found.items()
    }


# -- overdue ------------------------------------------------------------------------------------------------------


async def _overdue(mc: MaternalWorld, who: str, as_of: date) -> list[tuple[int, str]]:
    async with mc.as_(who) as ctx:
        page = await followups.overdue(ctx, as_of=as_of)
        return [(f.pregnancy_id, f.rule_code) for f in page.items]


async def test_overdue_items_as_of_a_date(mc: MaternalWorld) -> None:
    found = await items(mc)
    end = found["prenatal_2"].window_end
    pid = mc.ids["pregnancy"]
    # then nothing is overdue on the window's last day, the item the day after
    assert await _overdue(mc, "staff", end) == []
    assert await _overdue(mc, "staff", end + timedelta(days=1)) == [(pid, "prenatal_2")]
    # and later ones join in window order; a done item leaves the list
    later = found["prenatal_3"].window_end + timedelta(days=1)
    assert await _overdue(mc, "staff", later) == [(pid, "prenatal_2"), (pid, "prenatal_3")]
    await mc.call("sw", followups.record_result, found["prenatal_2"].id, outcome="normal")
    assert await _overdue(mc, "staff", later) == [(pid, "prenatal_3")]


@pytest.fixture
def statements(mc: MaternalWorld) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(mc.engine.sync_engine, "before_cursor_execute", count)
    yield seen
    event.remove(mc.engine.sync_engine, "before_cursor_execute", count)


async def test_the_overdue_list_costs_the_same_statements_for_few_and_many(
    mc: MaternalWorld, statements: list[str]
) -> None:
    as_of = await mc.today() + timedelta(days=300)
    counted: dict[int, int] = {}
    for extra in (0, 3):
        # given `extra` more pregnancies, every item overdue a year from now
        for _ in range(extra):
            await pregnancy_on_day(mc, 100)
        async with mc.as_("staff") as ctx:
            statements.clear()
            page = await followups.overdue(ctx, as_of=as_of, first=100)
            counted[extra] = len([s for s in statements if "maternal_care_followups" in s])
        assert len(page.items) == 4 * (1 + extra)
    # then four times the items cost no more statements
    assert counted[0] == counted[3] == 1, counted


FINDINGS = """query($id: ID!) { r: maternalCareFollowUps(filter: {pregnancyId: $id}, first: 20) {
  totalCount nodes { rule finding { rule status } } } }"""


async def test_the_findings_of_re_checks_cost_the_same_statements_for_few_and_many(
    mc: MaternalWorld, kit: Harness, statements: list[str]
) -> None:
    # given an administrator of the mother's organisation, signed in
    await kit.enable("maternal_care", mc.ids["org_a"])
    admin = await kit.sign_in("organization_admin", mc.ids["org_a"])
    await _consent(mc)
    pregnancy_gid = gql.encode_id("MaternalCarePregnancy", mc.ids["pregnancy"])
    counted: dict[int, int] = {}
    item_id = (await items(mc))["prenatal_2"].id
    for chain in (1, 4):
        # given `chain` abnormal findings in a row (each re-check abnormal again), each with its re-check
        while len([r for r in (await items(mc)).values() if r.finding_id is not None]) < chain:
            await mc.call("sw", followups.record_result, item_id, outcome="abnormal", note="异常", referral=_referral())
            item_id = next(r.id for r in (await items(mc)).values() if r.finding_id == item_id)
        statements.clear()
        body = await admin(FINDINGS, {"id": pregnancy_gid})
        counted[chain] = len([s for s in statements if "maternal_care_followups" in s])
        assert len([n for n in body["r"]["nodes"] if n["finding"] is not None]) == chain
    # then four times the re-checks cost no more statements (their findings batched)
    assert counted[1] == counted[4], counted


# -- privacy ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["sw2", "counselor", "admin_b", "sw_b", "staff_b"])
async def test_follow_ups_are_for_those_who_see_the_pregnancy_only(cal: MaternalWorld, who: str) -> None:
    mc = cal
    found = await items(mc)
    later = found["prenatal_5"].window_end + timedelta(days=1)
    # positive control: her social worker, staff and the administrator see them
    for seer in ("sw", "staff", "admin"):
        assert len(await _overdue(mc, seer, later)) == 4
    # when anyone else asks: nothing listed, NOT_FOUND (or FORBIDDEN without the permission) when addressed
    if who == "counselor":
        assert await mc.refused(who, followups.overdue, as_of=later) == "FORBIDDEN"
        return
    assert await _overdue(mc, who, later) == []
    before = await counts(mc)
    item_id = found["prenatal_2"].id
    assert await mc.refused(who, followups.book, item_id, start=monday(mc), minutes=30) == "NOT_FOUND"
    assert await mc.refused(who, followups.record_result, item_id, outcome="normal") == "NOT_FOUND"
    assert await mc.refused(who, followups.of_pregnancy, mc.ids["pregnancy"]) == "NOT_FOUND"
    async with mc.as_(who) as ctx:
        assert await followups.followups_by_id(ctx, [item_id]) == {}
    assert await counts(mc) == before


async def test_a_counselor_named_responsible_reads_that_pregnancys_follow_ups_only(mc: MaternalWorld) -> None:
    # given the world's pregnancy graded orange, the counselor named responsible; another mother's pregnancy
    grade = registry.Grade("orange", responsible_account_id=mc.ids["counselor"])
    await mc.call("staff", registry.change_risk, mc.ids["pregnancy"], grade, "妊娠期高血压")
    other = await mc.new_pregnancy(await mc.new_mother())
    mine, theirs = await items(mc), await items(mc, other)
    # when the counselor (no maternal-care permission of her own) reads them
    async with mc.as_("counselor") as ctx:
        page = await followups.of_pregnancy(ctx, mc.ids["pregnancy"])
        by_id = await followups.followups_by_id(ctx, [mine["prenatal_2"].id, theirs["prenatal_2"].id])
    # then she reads that pregnancy's follow-ups, by list and by id
    assert [f.rule_code for f in page.items] == ["prenatal_2", "prenatal_3", "prenatal_4", "prenatal_5"]
    assert set(by_id) == {mine["prenatal_2"].id}
    # and nothing of another pregnancy; writes and the overdue list stay with the manage permission
    assert await mc.refused("counselor", followups.of_pregnancy, other) == "NOT_FOUND"
    assert await mc.refused("counselor", followups.mark_missed, mine["prenatal_2"].id, note="未到") == "FORBIDDEN"
    assert await mc.refused("counselor", followups.overdue) == "FORBIDDEN"
    # and a social worker who does not serve her, and members of another organisation, read nothing
    for who in ("sw2", "sw_b", "admin_b"):
        assert await mc.refused(who, followups.of_pregnancy, mc.ids["pregnancy"]) == "NOT_FOUND"
        async with mc.as_(who) as ctx:
            assert await followups.followups_by_id(ctx, [mine["prenatal_2"].id]) == {}
    # and a volunteer, who can never be named responsible, is FORBIDDEN
    assert await mc.refused("volunteer", followups.of_pregnancy, mc.ids["pregnancy"]) == "FORBIDDEN"


# -- the database holds it too --------------------------------------------------------------------------------------


async def _database_refusal(mc: MaternalWorld, sql: str) -> str:
    """The constraint that refuses `sql` (a write around the services, as staff, under row-level security)."""

    async def run() -> None:
        async with mc.as_("staff") as ctx:
            await ctx.session.execute(text(sql))

    with pytest.raises(DBAPIError) as err:
        await run()
    return str(constraint_name(err.value))


async def test_the_database_refuses_what_the_services_never_write(mc: MaternalWorld) -> None:
    found = await items(mc)
    pid, item = mc.ids["pregnancy"], found["prenatal_3"].id
    await mc.call("sw", followups.mark_missed, found["prenatal_2"].id, note="未到")
    closed = found["prenatal_2"].id
    t = "maternal_care_followups"
    # a second item of one rule; a rule the schedule does not have
    assert await _database_refusal(
        mc,
        f"INSERT INTO {t} (pregnancy_id, rule_code, window_start, window_end) "
        f"VALUES ({pid}, 'prenatal_2', current_date, current_date)",
    ) == ("uq_maternal_care_followups_rule")
    assert await _database_refusal(
        mc,
        f"INSERT INTO {t} (pregnancy_id, rule_code, window_start, window_end) "
        f"VALUES ({pid}, 'prenatal_9', current_date, current_date)",
    ) == ("ck_maternal_care_followups_rule_known")
    # an abnormal outcome without its referral
    assert await _database_refusal(
        mc, f"UPDATE {t} SET status = 'done', outcome = 'abnormal', closed_on = current_date WHERE id = {item}"
    ) == ("ck_maternal_care_followups_abnormal_referred")
    # a closed item changed, or any item deleted
    assert await _database_refusal(mc, f"UPDATE {t} SET note = 'x' WHERE id = {closed}") == (
        "maternal_care_followup_closed"
    )
    assert await _database_refusal(mc, f"DELETE FROM {t} WHERE id = {item}") == "maternal_care_followup_kept"
