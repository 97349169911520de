"""Transfers of a case between social workers, at the service layer: proposing, accepting (the previous worker
loses the case, its notes and its client's contact at once), declining, withdrawing, who may do what, the
database's own rules, and an acceptance racing a step of the same case."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import delete, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from core.models import Appointment, AvailabilityWindow
from core.services.common import constraint_name
from core.services.context import ServiceContext
from plugins.case_work import services
from plugins.case_work.notes import services as notes
from plugins.case_work.visits import services as visits
from plugins.case_work.visits.models import Visit
from tests.concurrency import Racer, rounds
from tests.core.services.test_scheduling import at
from tests.plugins.case_work.conftest import CaseWorld
from tests.plugins.case_work.test_visits import Calendar, cal  # noqa: F401  (the staff calendars fixture)


async def _note(cw: CaseWorld, case_id: int) -> int:
    note = await cw.call(
        "sw",
        notes.add_note,
        case_id,
        note_type="call",
        occurred_at=cw.clock.now - timedelta(hours=1),
        text="电话回访：老人情绪低落",
    )
    return int(note.id)


async def test_an_accepted_transfer_moves_the_case_and_the_previous_worker_loses_it_at_once(cw: CaseWorld) -> None:
    # given a case of sw with a note, and a transfer to sw2 proposed by sw
    case_id = await cw.open()
    note_id = await _note(cw, case_id)
    transfer = await cw.call("sw", services.propose_transfer, case_id, cw.ids["sw2"], "调岗到其他街道")
    # then, before answering, sw2 sees the offer but nothing of the case
    async with cw.as_("sw2") as ctx:
        offered = await services.list_transfers(ctx, services.TransferFilter(awaiting_my_answer=True))
        assert [t.id for t in offered.items] == [transfer.id]
        assert await services.rows_by_id(ctx, services.Case, [case_id]) == {}
    assert await cw.refused("sw2", notes.list_notes, case_id) == "NOT_FOUND"
    # when sw2 accepts
    accepted = await cw.call("sw2", services.answer_transfer, transfer.id, True)
    # then the case is sw2's, the transfer says who, when and why
    assert (accepted.status, accepted.decided_by_account_id) == ("accepted", cw.ids["sw2"])
    assert (await cw.case(case_id)).social_worker_account_id == cw.ids["sw2"]
    async with cw.as_("sup") as ctx:
        [history] = await services.case_transfers(ctx, [case_id])
    assert [
        (t.from_account_id, t.to_account_id, t.proposed_by, t.reason, t.status, t.decided_at is not None)
        for t in history
    ] == [(cw.ids["sw"], cw.ids["sw2"], "sw", "调岗到其他街道", "accepted", True)]
    # and the previous worker answers as for a missing case by every route: the case, its notes, a note
    assert await cw.refused("sw", services.advance, case_id, "assessment") == "NOT_FOUND"
    assert await cw.refused("sw", notes.list_notes, case_id) == "NOT_FOUND"
    assert await cw.refused("sw", notes.add_note, case_id, note_type="call", occurred_at=cw.clock.now, text="x") == (
        "NOT_FOUND"
    )
    async with cw.as_("sw") as ctx:
        assert await services.rows_by_id(ctx, services.Case, [case_id]) == {}
        assert await notes.notes_by_id(ctx, [note_id]) == {}
        assert (await services.list_cases(ctx)).items == []
        client_id = (await cw.case(case_id)).client_id
        assert client_id not in await services.served_client_ids(ctx)
    # while the new worker reads the case and its notes
    async with cw.as_("sw2") as ctx:
        assert set(await notes.notes_by_id(ctx, [note_id])) == {note_id}
    assert (await cw.call("sw2", services.advance, case_id, "assessment")).stage == "assessment"


@pytest.mark.parametrize("proposer", ["sw", "sup", "admin"])
async def test_the_worker_the_supervisor_and_an_administrator_propose(cw: CaseWorld, proposer: str) -> None:
    case_id = await cw.open()
    transfer = await cw.call(proposer, services.propose_transfer, case_id, cw.ids["sw2"], "工作量调整")
    assert (transfer.status, transfer.proposed_by_account_id) == ("pending", cw.ids[proposer])


@pytest.mark.parametrize(
    ("who", "to", "code"),
    [
        ("sw2", "sw2", "NOT_FOUND"),  # not their case: as for a missing one
        ("admin_b", "sw_b", "NOT_FOUND"),  # another organisation
        ("sw_b", "sw_b", "NOT_FOUND"),
        ("volunteer", "sw2", "FORBIDDEN"),  # no casework at all
        ("counselor", "sw2", "FORBIDDEN"),
        ("sw", "sw_b", "NOT_FOUND"),  # a receiver of another organisation is not even visible
        ("sw", "admin", "INVALID_INPUT"),  # not a social worker
        ("sw", "sup", "INVALID_INPUT"),  # the case's supervisor
        ("sw", "sw", "SELF_TRANSFER"),  # nobody receives a transfer they proposed
    ],
)
async def test_who_may_not_propose_and_to_whom_not(cw: CaseWorld, who: str, to: str, code: str) -> None:
    case_id = await cw.open()
    before = await cw.counts()
    assert await cw.refused(who, services.propose_transfer, case_id, cw.ids[to], "理由") == code
    assert await cw.counts() == before


async def test_a_transfer_says_why_and_one_is_pending_at_a_time(cw: CaseWorld) -> None:
    case_id = await cw.open()
    before = await cw.counts()
    assert await cw.refused("sw", services.propose_transfer, case_id, cw.ids["sw2"], "  ") == "REQUIRED"
    assert await cw.counts() == before
    await cw.call("sw", services.propose_transfer, case_id, cw.ids["sw2"], "调岗")
    assert await cw.refused("admin", services.propose_transfer, case_id, cw.ids["sw2"], "再提") == "ALREADY_EXISTS"
    # and the database holds one pending transfer per case whoever writes
    with pytest.raises(DBAPIError) as err:
        async with cw.as_("sw") as ctx:
            await ctx.session.execute(
                text(
                    "INSERT INTO case_work_transfers (case_id, from_account_id, to_account_id, reason, "
                    "proposed_by_account_id, proposed_by) VALUES (:c, :f, :t, 'x', :f, 'x')"
                ),
                {"c": case_id, "f": cw.ids["sw"], "t": cw.ids["sw2"]},
            )
    assert constraint_name(err.value) == "uq_case_work_transfers_pending"


async def test_only_the_receiver_answers_and_a_decline_says_why(cw: CaseWorld) -> None:
    # given a transfer proposed by the supervisor to sw2
    case_id = await cw.open()
    transfer = await cw.call("sup", services.propose_transfer, case_id, cw.ids["sw2"], "sw 休产假")
    before = await cw.counts()
    # when the proposer, the current worker, an administrator or another organisation answer: refused
    assert await cw.refused("sup", services.answer_transfer, transfer.id, True) == "SELF_TRANSFER"
    assert await cw.refused("sw", services.answer_transfer, transfer.id, True) == "FORBIDDEN"
    assert await cw.refused("admin", services.answer_transfer, transfer.id, True) == "FORBIDDEN"
    assert await cw.refused("sw_b", services.answer_transfer, transfer.id, True) == "NOT_FOUND"
    # and the receiver declines only with a reason
    assert await cw.refused("sw2", services.answer_transfer, transfer.id, False, " ") == "REQUIRED"
    assert await cw.counts() == before
    declined = await cw.call("sw2", services.answer_transfer, transfer.id, False, "个案量已满")
    # then nothing moved, and the decline is kept with its reason; it is answered once
    assert (declined.status, declined.decision_reason) == ("declined", "个案量已满")
    assert (await cw.case(case_id)).social_worker_account_id == cw.ids["sw"]
    assert await cw.refused("sw2", services.answer_transfer, transfer.id, True) == "INVALID_TRANSITION"
    # and a new transfer may be proposed
    again = await cw.call("sw", services.propose_transfer, case_id, cw.ids["sw2"], "再商量")
    await cw.call("sw", services.withdraw_transfer, again.id)
    assert await cw.refused("sw2", services.answer_transfer, again.id, True) == "INVALID_TRANSITION"


async def test_the_database_keeps_transfers_as_answered_and_never_self_received(cw: CaseWorld) -> None:
    case_id = await cw.open()
    transfer = await cw.call("sw", services.propose_transfer, case_id, cw.ids["sw2"], "调岗")
    await cw.call("sw2", services.answer_transfer, transfer.id, False, "不接")
    statements = [
        ("UPDATE case_work_transfers SET status = 'accepted' WHERE id = :id", "case_work_transfer_decided"),
        ("UPDATE case_work_transfers SET reason = 'x' WHERE id = :id", "case_work_transfer_decided"),
        ("DELETE FROM case_work_transfers WHERE id = :id", "case_work_transfer_decided"),
        (
            "INSERT INTO case_work_transfers (case_id, from_account_id, to_account_id, reason, "
            "proposed_by_account_id, proposed_by) SELECT case_id, from_account_id, to_account_id, 'x', "
            "to_account_id, 'x' FROM case_work_transfers WHERE id = :id",
            "ck_case_work_transfers_not_self_transfer",
        ),
    ]
    for sql, name in statements:
        with pytest.raises(DBAPIError) as err:
            async with cw.as_("sw") as ctx:
                await ctx.session.execute(text(sql), {"id": transfer.id})
        assert constraint_name(err.value) == name, sql


async def test_closing_a_case_withdraws_its_pending_transfer(cw: CaseWorld) -> None:
    case_id = await cw.open()
    transfer = await cw.call("sw", services.propose_transfer, case_id, cw.ids["sw2"], "调岗")
    await cw.call("sw", services.advance, case_id, "not_opened", "不符合开案条件")
    assert await cw.refused("sw2", services.answer_transfer, transfer.id, True) == "INVALID_TRANSITION"
    assert (await cw.case(case_id)).social_worker_account_id == cw.ids["sw"]


async def test_an_acceptance_beside_a_step_of_the_previous_worker_is_one_order_or_the_other(
    cw: CaseWorld, db_url: URL
) -> None:
    # Both lock the case first: the step either happens before the hand-over (and the case moves on with its
    # new worker), or after it (and the previous worker finds the case no longer theirs). Never both, never
    # a deadlock.
    async def round_(racer: Racer) -> None:
        case_id = await cw.open()
        transfer = await cw.call("sw", services.propose_transfer, case_id, cw.ids["sw2"], "调岗")

        async def work(ctx: ServiceContext, i: int) -> str:
            if i == 0:
                receiver = dataclasses.replace(ctx, viewer=cw.viewer("sw2"))
                return (await services.answer_transfer(receiver, transfer.id, True)).status
            worker = dataclasses.replace(ctx, viewer=cw.viewer("sw"))
            return (await services.advance(worker, case_id, "assessment")).stage

        outcomes = await racer.race(work, viewer=cw.viewer("sw"))
        assert outcomes in (["accepted", "assessment"], ["accepted", "NOT_FOUND"]), outcomes
        case = await cw.case(case_id)
        assert case.social_worker_account_id == cw.ids["sw2"]
        steps = await cw.history(case_id)
        assert case.stage == ("assessment" if outcomes[1] == "assessment" else "intake")
        assert len(steps) == case.stage_seq + 1

    async with Racer.open(db_url, workers=2, clock=cw.clock) as racer:
        for _ in range(rounds(5)):
            await round_(racer)


async def _where(calendar: Calendar, visit_id: int) -> tuple[int, int, int | None, int | None, str]:
    """(worker, owner of the worker's appointment, second staff member, its appointment, status) of a visit."""
    async with calendar.cw.as_("admin") as ctx:
        visit = await ctx.session.get_one(Visit, visit_id)
        appointment = await ctx.session.get_one(Appointment, visit.appointment_id)
        return (
            visit.worker_account_id,
            appointment.owner_id,
            visit.second_account_id,
            visit.second_appointment_id,
            appointment.status,
        )


async def test_an_acceptance_moves_the_visits_still_to_come_to_the_new_workers_calendar(cal: Calendar) -> None:  # noqa: F811
    # given a case of sw with a visit that has started and one still to come, and a transfer to sw2
    cw, sw, sw2 = cal.cw, cal.records["sw"], cal.records["sw2"]
    case_id = await cw.open()
    started = await cal.book(case_id, at(cal.monday, 9))
    ahead = await cal.book(case_id, at(cal.monday, 14))
    cw.clock.now = at(cal.monday, 9, 30)
    transfer = await cw.call("sw", services.propose_transfer, case_id, cw.ids["sw2"], "调岗")
    before = await cal.counts()
    # when sw2 accepts
    await cw.call("sw2", services.answer_transfer, transfer.id, True)
    # then the visit still to come is sw2's, on sw2's calendar at the same time; sw's appointment is cancelled
    assert await _where(cal, ahead.id) == (cw.ids["sw2"], sw2, None, None, "active")
    assert (await cal.slot(ahead.id))[:2] == (at(cal.monday, 14), at(cal.monday, 15))
    async with cw.as_("admin") as ctx:
        left = await ctx.session.get_one(Appointment, ahead.appointment_id)
        assert (left.owner_id, left.status) == (sw, "cancelled")
    assert await cal.counts() == before  # one appointment cancelled, one booked
    # and the visit that has started stays as it was: it says who went
    assert await _where(cal, started.id) == (cw.ids["sw"], sw, None, None, "active")
    # and sw's time is free again, sw2's is taken: another case's visit then is refused for sw2 only
    other_sw2 = await cw.open("admin", social_worker_account_id=cw.ids["sw2"])
    assert await cw.refused("sw2", visits.book_visit, other_sw2, mode="call", start=at(cal.monday, 14), minutes=30) == (
        "SLOT_TAKEN"
    )
    other_sw = await cw.open()
    await cal.book(other_sw, at(cal.monday, 14), mode="call", minutes=30)
    # and a move afterwards is the new owner's, on their calendar
    moved = await cw.call("sw2", visits.reschedule_visit, ahead.id, at(cal.monday, 17), 60)
    assert await _where(cal, moved.id) == (cw.ids["sw2"], sw2, None, None, "active")
    assert (await cal.slot(ahead.id))[:2] == (at(cal.monday, 17), at(cal.monday, 18))
    assert await cw.refused("sw", visits.reschedule_visit, ahead.id, at(cal.monday, 18), 60) == "NOT_FOUND"


async def test_a_visit_the_new_worker_came_along_to_becomes_theirs(cal: Calendar) -> None:  # noqa: F811
    # given a visit still to come of sw's case with sw2 as the second staff member
    cw = cal.cw
    case_id = await cw.open()
    visit = await cal.book(case_id, at(cal.monday, 10), second_account_id=cw.ids["sw2"])
    second = (await _where(cal, visit.id))[3]
    transfer = await cw.call("sw", services.propose_transfer, case_id, cw.ids["sw2"], "调岗")
    before = await cal.counts()
    # when sw2 accepts
    await cw.call("sw2", services.answer_transfer, transfer.id, True)
    # then sw2's own appointment is the visit's, sw's is cancelled, and nobody is booked twice
    assert await _where(cal, visit.id) == (cw.ids["sw2"], cal.records["sw2"], None, None, "active")
    async with cw.as_("admin") as ctx:
        assert (await ctx.session.get_one(Visit, visit.id)).appointment_id == second
    assert await cal.counts() == (before[0], before[1] - 1)


@pytest.mark.parametrize("clash", ["visit", "hours"])
async def test_a_visit_that_does_not_fit_the_new_workers_calendar_refuses_the_acceptance(
    cal: Calendar,  # noqa: F811
    clash: str,
) -> None:
    # given a visit of sw's case on Monday 10:00, and sw2 busy then (a visit of their own case) or off duty then
    cw = cal.cw
    case_id = await cw.open()
    visit = await cal.book(case_id, at(cal.monday, 10))
    blocker: Visit | None = None
    if clash == "visit":
        own = await cw.open("admin", social_worker_account_id=cw.ids["sw2"])
        blocker = await cal.book(own, at(cal.monday, 10, 30), who="sw2", mode="call", minutes=30)
    else:
        async with cw.as_("admin") as ctx:
            await ctx.session.execute(
                delete(AvailabilityWindow).where(
                    AvailabilityWindow.owner_id == cal.records["sw2"],
                    AvailabilityWindow.weekday == cal.monday.weekday(),
                )
            )
    transfer = await cw.call("sw", services.propose_transfer, case_id, cw.ids["sw2"], "调岗")
    before, where = await cal.counts(), await _where(cal, visit.id)
    # when sw2 accepts: refused with the calendar's code, and nothing changed
    code = "SLOT_TAKEN" if clash == "visit" else "OUTSIDE_AVAILABILITY"
    assert await cw.refused("sw2", services.answer_transfer, transfer.id, True) == code
    assert await cal.counts() == before
    assert await _where(cal, visit.id) == where
    assert (await cw.case(case_id)).social_worker_account_id == cw.ids["sw"]
    async with cw.as_("sw") as ctx:
        [pending] = (await services.list_transfers(ctx, services.TransferFilter(case_id=case_id))).items
        assert pending.status == "pending"
    # and once the visit is moved out of the way, the acceptance goes through
    if blocker is not None:
        await cw.call("sw2", visits.cancel_visit, blocker.id, "改期")
    else:
        await cw.call("sw", visits.cancel_visit, visit.id, "新社工周一不上班")
    assert (await cw.call("sw2", services.answer_transfer, transfer.id, True)).status == "accepted"
