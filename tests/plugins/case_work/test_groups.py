"""Group work at the service layer: the stage graph (every pair of stages, by the services and by the database),
capacity under concurrent joins, sessions on the shared calendar (never over a counseling session or a visit of
the facilitator), attendance, who sees what, and an ended group that changes no more."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from core.models import Appointment
from core.plugins import build_plugin_host
from core.services import sealing
from core.services.common import constraint_name
from core.services.context import ServiceContext
from plugins.case_work import services as case_services
from plugins.case_work.groups import services as groups
from plugins.case_work.groups.models import (
    STAGES,
    Attendance,
    Group,
    GroupFacilitatorChange,
    GroupNote,
    GroupSession,
    GroupStageChange,
    Participant,
)
from plugins.case_work.models import Case
from plugins.case_work.notes import services as notes
from plugins.case_work.visits import services as visits
from tests.concurrency import Racer, rounds
from tests.core.services.test_scheduling import at
from tests.plugins.case_work.conftest import CaseWorld
from tests.plugins.case_work.test_visits import Calendar, cal  # noqa: F401  (the staff calendars fixture)

FORWARD = ("preparation", "formation", "transition", "maturity", "ending")
GROUP_TABLES = (Group, GroupStageChange, Participant, GroupSession, Attendance, GroupNote, GroupFacilitatorChange)


async def make_group(cw: CaseWorld, who: str = "sw", capacity: int = 8, **kw: Any) -> int:
    group = await cw.call(
        who,
        groups.create_group,
        name=kw.pop("name", "独居老人互助小组"),
        purpose="减少孤独感，建立互助网络",
        category="elderly_care",
        capacity=capacity,
        supervisor_account_id=kw.pop("supervisor", cw.ids["sup"]),
        **kw,
    )
    return int(group.id)


async def bring_to(cw: CaseWorld, group_id: int, stage: str) -> None:
    for to in FORWARD[1 : FORWARD.index(stage) + 1]:
        await cw.call("sw", groups.advance, group_id, to, summary="小组总结：目标达成" if to == "ending" else None)


async def make_clients(cw: CaseWorld, n: int, org: str = "a") -> list[int]:
    """Clients of casework (each opened a case the usual way): of organisation A (sw's) or B (sw_b's)."""
    who, supervisor = ("sw", cw.ids["sup"]) if org == "a" else ("sw_b", cw.ids["sup_b"])
    case_ids = [await cw.open(who, supervisor=supervisor) for _ in range(n)]
    async with cw.as_(who) as ctx:
        return [(await ctx.session.get_one(Case, pk)).client_id for pk in case_ids]


async def counts(cw: CaseWorld) -> tuple[int, ...]:
    """Rows of every group table, and active appointments, of every organisation: for "nothing written"."""
    async with cw.as_("padmin") as ctx:
        rows = [await ctx.session.scalar(select(func.count()).select_from(m)) or 0 for m in GROUP_TABLES]
        active = await ctx.session.scalar(
            select(func.count()).select_from(Appointment).where(Appointment.status == "active")
        )
        return (*rows, active or 0)


async def group(cw: CaseWorld, group_id: int) -> Group:
    async with cw.as_("admin") as ctx:
        found = await ctx.session.get(Group, group_id)
        assert found is not None
        return found


async def test_the_stage_graph_in_the_database_is_the_services_graph(cw: CaseWorld) -> None:
    async with cw.as_("admin") as ctx:
        rows = await ctx.session.execute(text("SELECT from_stage, to_stage, kind FROM case_work_group_stage_graph()"))
        in_database = {(a, b): k for a, b, k in rows}
    assert in_database == {pair: step.kind for pair, step in groups.TRANSITIONS.items()}


async def test_every_pair_of_stages_is_a_legal_step_or_refused_and_nothing_is_written(cw: CaseWorld) -> None:
    for origin, to in itertools.product(STAGES, STAGES):
        # given a group brought to `origin`
        group_id = await make_group(cw)
        await bring_to(cw, group_id, origin)
        before = await counts(cw)
        step = groups.TRANSITIONS.get((origin, to))
        kw: dict[str, Any] = {"reason": "人数不足，提前结束"}
        if to == "ending":
            kw["summary"] = "总结"
        if step is None:
            # then an illegal step is refused (an ended group: GROUP_ENDED) and nothing is written
            expected = "GROUP_ENDED" if origin == "ending" else "GROUP_ILLEGAL_TRANSITION"
            assert await cw.refused("sw", groups.advance, group_id, to, **kw) == expected, (origin, to)
            assert await counts(cw) == before, (origin, to)
            assert (await group(cw, group_id)).stage == origin
        else:
            # and a legal one moves the group and records who, when, from, to and why
            moved = await cw.call("sw", groups.advance, group_id, to, **kw)
            assert (moved.stage, moved.stage_seq) == (to, FORWARD.index(origin) + 1), (origin, to)
            async with cw.as_("admin") as ctx:
                last = await ctx.session.scalar(
                    select(GroupStageChange)
                    .where(GroupStageChange.group_id == group_id)
                    .order_by(GroupStageChange.seq.desc())
                    .limit(1)
                )
            assert last is not None
            assert (last.from_stage, last.to_stage, last.actor, last.actor_account_id, last.reason) == (
                origin,
                to,
                "sw",
                cw.ids["sw"],
                kw["reason"],
            )


async def test_an_early_end_says_why_and_every_end_has_a_summary(cw: CaseWorld) -> None:
    group_id = await make_group(cw)
    await bring_to(cw, group_id, "formation")
    before = await counts(cw)
    assert await cw.refused("sw", groups.advance, group_id, "ending", "", summary="总结") == "REQUIRED"
    assert await cw.refused("sw", groups.advance, group_id, "ending", "人数不足") == "GROUP_SUMMARY_REQUIRED"
    # an organisation administrator runs the group but does not write its confidential summary
    assert await cw.refused("admin", groups.advance, group_id, "ending", "人数不足", summary="总结") == "FORBIDDEN"
    assert await counts(cw) == before
    # while an administrator does move it along otherwise
    await cw.call("admin", groups.advance, group_id, "transition")


async def test_the_database_holds_the_stages_on_its_own(cw: CaseWorld) -> None:
    group_id = await make_group(cw)
    statements: list[tuple[str, str]] = [
        # a skipped stage, and a step without its history row
        (
            f"UPDATE case_work_groups SET stage = 'maturity', stage_seq = 1 WHERE id = {group_id}",
            "case_work_group_stage_transition",
        ),
        (
            f"UPDATE case_work_groups SET stage = 'formation', stage_seq = 1 WHERE id = {group_id}",
            "case_work_group_stage_recorded",
        ),
        # ending without a summary (with its history row written first)
        (
            "INSERT INTO case_work_group_stage_changes (group_id, seq, from_stage, to_stage, actor) "
            f"VALUES ({group_id}, 1, 'preparation', 'ending', 'x'); "
            f"UPDATE case_work_groups SET stage = 'ending', stage_seq = 1, ended_at = now() WHERE id = {group_id}",
            "ck_case_work_groups_summary_at_ending",
        ),
        # a history row that is not the next step
        (
            "INSERT INTO case_work_group_stage_changes (group_id, seq, from_stage, to_stage, actor) "
            f"VALUES ({group_id}, 2, 'formation', 'transition', 'x')",
            "case_work_group_stage_recorded",
        ),
        (f"DELETE FROM case_work_group_stage_changes WHERE group_id = {group_id}", "case_work_group_kept"),
    ]
    for sql, constraint in statements:
        with pytest.raises(DBAPIError) as err:  # noqa: PT012  (a transaction of one or two statements)
            async with cw.as_("sw") as ctx:
                for statement in sql.split("; "):
                    await ctx.session.execute(text(statement))
        assert constraint_name(err.value) == constraint, sql
    assert (await group(cw, group_id)).stage == "preparation"


async def test_an_ended_group_changes_no_more_by_the_services_or_the_database(cal: Calendar) -> None:  # noqa: F811
    cw = cal.cw
    # given a group with a participant, a session that took place, and one ahead
    group_id = await make_group(cw)
    clients = await make_clients(cw, 2)
    member = await cw.call("sw", groups.add_participant, group_id, clients[0])
    held = await cw.call("sw", groups.schedule_session, group_id, start=at(cal.monday, 9), minutes=60)
    ahead = await cw.call(
        "sw", groups.schedule_session, group_id, start=at(cal.monday + timedelta(days=7), 9), minutes=60
    )
    cw.clock.now = at(cal.monday, 10, 30)
    await bring_to(cw, group_id, "ending")
    # then the session ahead is cancelled with the ending, freeing the facilitator's time
    async with cw.as_("admin") as ctx:
        left = await ctx.session.get(GroupSession, ahead.id)
        assert left is not None
        assert (left.status, left.cancel_reason) == ("cancelled", "小组已结束")
    before = await counts(cw)
    # and every change is refused with GROUP_ENDED, nothing written
    refusals = [
        await cw.refused("sw", groups.add_participant, group_id, clients[1]),
        await cw.refused("sw", groups.remove_participant, member.id, "搬家"),
        await cw.refused("sw", groups.schedule_session, group_id, start=at(cal.monday, 15), minutes=60),
        await cw.refused("sw", groups.cancel_session, held.id, "取消"),
        await cw.refused("sw", groups.record_attendance, held.id, member.id, "present"),
        await cw.refused("sw", groups.add_note, held.id, "补记"),
        await cw.refused("sup", groups.change_facilitators, group_id, "病假", facilitator_account_id=cw.ids["sw2"]),
        await cw.refused("sw", groups.update_group, group_id, capacity=10),
        await cw.refused("sw", groups.update_group, group_id, purpose="新目的", goals="新目标"),
        await cw.refused("sw", groups.reschedule_session, ahead.id, start=at(cal.monday, 15), minutes=60),
    ]
    assert refusals == ["GROUP_ENDED"] * 10
    assert await counts(cw) == before
    # and the database refuses it on its own
    for sql in (
        f"UPDATE case_work_groups SET name = '改名' WHERE id = {group_id}",
        f"UPDATE case_work_group_participants SET left_at = now(), left_by_account_id = added_by_account_id, "
        f"leave_reason = 'x' WHERE id = {member.id}",
        f"INSERT INTO case_work_group_participants (group_id, client_id, added_by_account_id) "
        f"VALUES ({group_id}, {clients[1]}, {cw.ids['sw']})",
        f"UPDATE case_work_group_sessions SET status = 'cancelled', cancel_reason = 'x' WHERE id = {held.id}",
        f"UPDATE case_work_groups SET capacity = 20 WHERE id = {group_id}",
        "INSERT INTO case_work_group_facilitator_changes (group_id, seq, from_facilitator_account_id, "
        f"to_facilitator_account_id, actor_account_id, actor, reason) VALUES ({group_id}, 1, {cw.ids['sw']}, "
        f"{cw.ids['sw2']}, {cw.ids['sup']}, 'x', '病假')",
    ):
        with pytest.raises(DBAPIError) as err:
            async with cw.as_("sw") as ctx:
                await ctx.session.execute(text(sql))
        assert constraint_name(err.value) == "case_work_group_ended", sql


async def test_capacity_is_the_databases_under_concurrent_joins(cw: CaseWorld, db_url: URL) -> None:
    admin = cw.viewer("admin")

    async def round_(racer: Racer) -> None:
        # given a group of capacity 3 and 8 clients joining at once (no lock of the group in the services)
        group_id = await make_group(cw, capacity=3)
        clients = await make_clients(cw, 8)

        async def join(ctx: ServiceContext, i: int) -> str:
            await groups.add_participant(ctx, group_id, clients[i])
            return "joined"

        outcomes = await racer.race(join, viewer=admin)
        # then exactly three join, the others are GROUP_FULL, and the counter is the truth
        assert sorted(outcomes) == ["GROUP_FULL"] * 5 + ["joined"] * 3, outcomes
        async with cw.as_("admin") as ctx:
            active = await ctx.session.scalar(
                select(func.count()).select_from(Participant).where(Participant.group_id == group_id)
            )
        assert (active, (await group(cw, group_id)).participant_count) == (3, 3)

    async with Racer.open(db_url, workers=8, clock=cw.clock) as racer:
        for _ in range(rounds(3)):
            await round_(racer)


async def test_the_database_refuses_a_join_over_capacity_on_its_own(cw: CaseWorld) -> None:
    group_id = await make_group(cw, capacity=2)
    clients = await make_clients(cw, 3)
    for client_id in clients[:2]:
        await cw.call("sw", groups.add_participant, group_id, client_id)
    with pytest.raises(DBAPIError) as err:
        async with cw.as_("sw") as ctx:
            await ctx.session.execute(
                text(
                    "INSERT INTO case_work_group_participants (group_id, client_id, added_by_account_id) "
                    f"VALUES ({group_id}, {clients[2]}, {cw.ids['sw']})"
                )
            )
    assert constraint_name(err.value) == "ck_case_work_groups_within_capacity"


async def test_participants_join_once_leave_with_a_reason_and_free_their_place(cw: CaseWorld) -> None:
    group_id = await make_group(cw, capacity=2)
    clients = await make_clients(cw, 3)
    other_org = (await make_clients(cw, 1, "b"))[0]
    first = await cw.call("sw", groups.add_participant, group_id, clients[0])
    await cw.call("sw", groups.add_participant, group_id, clients[1])
    before = await counts(cw)
    assert await cw.refused("sw", groups.add_participant, group_id, clients[0]) == "ALREADY_EXISTS"
    assert await cw.refused("sw", groups.add_participant, group_id, clients[2]) == "GROUP_FULL"
    assert await cw.refused("admin", groups.add_participant, group_id, other_org) == "NOT_FOUND"
    assert await cw.refused("sw", groups.remove_participant, first.id, " ") == "REQUIRED"
    assert await counts(cw) == before
    # leaving keeps the reason and frees the place
    left = await cw.call("sw", groups.remove_participant, first.id, "搬去子女家")
    assert (left.leave_reason, left.left_by_account_id) == ("搬去子女家", cw.ids["sw"])
    assert await cw.refused("sw", groups.remove_participant, first.id, "再次") == "INVALID_TRANSITION"
    await cw.call("sw", groups.add_participant, group_id, clients[2])
    assert (await group(cw, group_id)).participant_count == 2


async def test_a_session_over_a_counseling_session_or_a_visit_of_the_facilitator_is_refused(
    cal: Calendar,  # noqa: F811
) -> None:
    cw = cal.cw
    # given a group facilitated by sw, a counseling session sw gives at 10:00 and a visit of sw at 14:00
    group_id = await make_group(cw)
    await cal.session(cal.counselor, at(cal.monday, 10))
    case_id = await cw.open()
    await cal.book(case_id, at(cal.monday, 14))
    before = await counts(cw)
    # when sessions of the group are scheduled over them, they are refused by the calendar, nothing written
    for start in (at(cal.monday, 10, 30), at(cal.monday, 14, 30)):
        code = await cw.refused("sw", groups.schedule_session, group_id, start=start, minutes=60)
        assert code == "SLOT_TAKEN", start
    assert await counts(cw) == before
    # and at a free time it is booked on sw's calendar; then a visit over it is refused in turn
    await cw.call("sw", groups.schedule_session, group_id, start=at(cal.monday, 16), minutes=90, topic="相识")
    assert await cw.refused("sw", visits.book_visit, case_id, mode="call", start=at(cal.monday, 17), minutes=30) == (
        "SLOT_TAKEN"
    )


async def test_attendance_per_session_and_participant(cal: Calendar) -> None:  # noqa: F811
    cw = cal.cw
    group_id = await make_group(cw)
    other_group = await make_group(cw, name="另一组")
    clients = await make_clients(cw, 3)
    members = [await cw.call("sw", groups.add_participant, group_id, c) for c in clients]
    stranger = await cw.call("sw", groups.add_participant, other_group, clients[0])
    session = await cw.call("sw", groups.schedule_session, group_id, start=at(cal.monday, 9), minutes=60)
    # before the session: refused
    assert await cw.refused("sw", groups.record_attendance, session.id, members[0].id, "present") == (
        "INVALID_TRANSITION"
    )
    cw.clock.now = at(cal.monday, 9, 30)
    for member, status in zip(members, ("present", "absent", "excused"), strict=True):
        await cw.call("sw", groups.record_attendance, session.id, member.id, status)
    # recorded again: the last word counts (one row)
    await cw.call("sw", groups.record_attendance, session.id, members[1].id, "excused")
    before = await counts(cw)
    assert await cw.refused("sw", groups.record_attendance, session.id, stranger.id, "present") == "NOT_FOUND"
    assert await cw.refused("sw", groups.record_attendance, session.id, members[0].id, "late") == "INVALID_INPUT"
    # someone who joined once the session had started has no attendance at it
    latecomer = await cw.call("sw", groups.add_participant, group_id, (await make_clients(cw, 1))[0])
    before = await counts(cw)
    assert await cw.refused("sw", groups.record_attendance, session.id, latecomer.id, "present") == "INVALID_INPUT"
    assert await counts(cw) == before
    listed = (await cw.call("sw", groups.attendance, [session.id]))[0]
    assert [(a.participant_id, a.status) for a in listed] == [
        (members[0].id, "present"),
        (members[1].id, "excused"),
        (members[2].id, "excused"),
    ]
    # the database refuses attendance naming a participant of another group
    with pytest.raises(DBAPIError) as err:
        async with cw.as_("sw") as ctx:
            await ctx.session.execute(
                text(
                    "INSERT INTO case_work_group_attendance (group_id, session_id, participant_id, status, "
                    f"recorded_by_account_id) VALUES ({group_id}, {session.id}, {stranger.id}, 'present', "
                    f"{cw.ids['sw']})"
                )
            )
    assert constraint_name(err.value) == "fk_case_work_group_attendance_participant_of_group"


async def test_who_sees_what(cal: Calendar) -> None:  # noqa: F811
    cw = cal.cw
    # given a group of sw (supervised by sup), a participant, a session with an outcome note, then ended
    group_id = await make_group(cw)
    client = (await make_clients(cw, 1))[0]
    await cw.call("sw", groups.add_participant, group_id, client)
    session = await cw.call("sw", groups.schedule_session, group_id, start=at(cal.monday, 9), minutes=60)
    cw.clock.now = at(cal.monday, 10, 30)
    await cw.call("sw", groups.add_note, session.id, "王阿姨第一次主动发言")
    await bring_to(cw, group_id, "ending")
    seen: dict[str, tuple[Any, ...]] = {}
    for who in ("sw", "sup", "padmin", "admin", "sw2", "admin_b", "sw_b"):
        async with cw.as_(who) as ctx:
            found = await groups.groups_by_id(ctx, [group_id])
            row = found.get(group_id)
            people = (await groups.participants(ctx, [group_id]))[0]
            texts = (await groups.notes(ctx, [session.id]))[0]
            summary = None if row is None else await groups.closing_summary(ctx, row)
            seen[who] = (
                row is not None,
                None if people is None else len(people),
                None if texts is None else [t for _, t in texts],
                summary,
            )
    assert seen == {
        "sw": (True, 1, ["王阿姨第一次主动发言"], "小组总结：目标达成"),
        "sup": (True, 1, ["王阿姨第一次主动发言"], "小组总结：目标达成"),
        "padmin": (True, 1, None, None),  # no confidential text by rank
        "admin": (True, 1, None, None),  # runs the group, not its confidential text
        "sw2": (True, None, None, None),  # another social worker: the group, not who or what
        "admin_b": (False, None, None, None),  # another organisation: nothing
        "sw_b": (False, None, None, None),
    }
    # callers without casework are FORBIDDEN
    for who in ("volunteer", "head", "counselor"):
        assert await cw.refused(who, groups.list_groups) == "FORBIDDEN", who
    # another organisation's group answers like a missing one; another social worker may not change it
    group2 = await make_group(cw)
    assert await cw.refused("admin_b", groups.add_participant, group2, client) == "NOT_FOUND"
    assert await cw.refused("sw2", groups.add_participant, group2, client) == "FORBIDDEN"
    assert await cw.refused("sw2", groups.advance, group2, "formation") == "FORBIDDEN"
    assert await cw.refused("volunteer", groups.advance, group2, "formation") == "FORBIDDEN"


async def test_outcome_notes_and_the_summary_are_not_stored_in_clear(cal: Calendar) -> None:  # noqa: F811
    cw = cal.cw
    group_id = await make_group(cw)
    session = await cw.call("sw", groups.schedule_session, group_id, start=at(cal.monday, 9), minutes=60)
    cw.clock.now = at(cal.monday, 10, 30)
    await cw.call("sw", groups.add_note, session.id, "抑郁情绪明显好转")
    await bring_to(cw, group_id, "ending")
    async with cw.as_("sw") as ctx:
        dump = await ctx.session.scalar(
            text(
                "SELECT string_agg(encode(text_sealed, 'escape'), '') FROM case_work_group_notes "
                f"WHERE group_id = {group_id}"
            )
        )
        summary = await ctx.session.scalar(
            text(f"SELECT encode(closing_summary_sealed, 'escape') FROM case_work_groups WHERE id = {group_id}")
        )
    assert dump
    assert "抑郁" not in dump
    assert "好转" not in dump
    assert summary
    assert "总结" not in summary


async def test_who_may_create_and_with_whom(cw: CaseWorld) -> None:
    before = await counts(cw)
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("sw", {"capacity": 1}, "OUT_OF_RANGE"),
        ("sw", {"category": "sports"}, "INVALID_INPUT"),
        ("sw", {"name": " "}, "REQUIRED"),
        ("sw", {"facilitator_account_id": cw.ids["sw2"]}, "FORBIDDEN"),  # only administrators name others
        ("admin", {"facilitator_account_id": cw.ids["volunteer"]}, "INVALID_INPUT"),  # not a social worker
        ("admin", {"facilitator_account_id": cw.ids["sw_b"]}, "NOT_FOUND"),  # another organisation
        ("sw", {"supervisor": cw.ids["sw2"]}, "INVALID_INPUT"),  # not a supervisor
        ("sw", {"co_facilitator_account_id": cw.ids["sw"]}, "INVALID_INPUT"),
        ("volunteer", {}, "FORBIDDEN"),
    ]
    for who, given, expected in cases:
        kw: dict[str, Any] = {
            "name": "小组",
            "purpose": "目的",
            "category": "elderly_care",
            "capacity": 8,
            "supervisor_account_id": cw.ids["sup"],
        }
        if "supervisor" in given:
            kw["supervisor_account_id"] = given.pop("supervisor")
        assert await cw.refused(who, groups.create_group, **(kw | given)) == expected, (who, given)
    assert await counts(cw) == before
    made = await cw.call(
        "admin",
        groups.create_group,
        name="产后妈妈支持小组",
        purpose="支持",
        category="maternal",
        capacity=10,
        supervisor_account_id=cw.ids["sup"],
        facilitator_account_id=cw.ids["sw2"],
        co_facilitator_account_id=cw.ids["sw"],
    )
    assert (made.facilitator_account_id, made.co_facilitator_account_id, made.stage) == (
        cw.ids["sw2"],
        cw.ids["sw"],
        "preparation",
    )


async def test_reseal_moves_every_registered_sealed_column_an_ended_groups_included(cal: Calendar) -> None:  # noqa: F811
    # given a row in every sealed column the loaded plugins register for `yunshegong reseal`: a case note
    # edited once (its revision), a running group's outcome note, and an ended group's note and closing summary
    cw = cal.cw
    case_id = await cw.open()
    note = await cw.call(
        "sw", notes.add_note, case_id, note_type="call", occurred_at=cw.clock.now - timedelta(hours=1), text="初访"
    )
    await cw.call("sw", notes.edit_note, note.id, text="初访（更正）")
    running, ended = await make_group(cw), await make_group(cw, name="第二组")
    for n, group_id in enumerate((running, ended)):
        session = await cw.call("sw", groups.schedule_session, group_id, start=at(cal.monday, 9 + 2 * n), minutes=60)
        cw.clock.now = at(cal.monday, 10 + 2 * n, 30)
        await cw.call("sw", groups.add_note, session.id, f"第{n + 1}组：情绪好转")
    await bring_to(cw, ended, "ending")
    # (the plugins' columns: core's own, the webhook secrets, are resealed by tests/core/delivery)
    columns = [
        c for c in sealing.sealed_columns(build_plugin_host(entry_points=False)) if c not in sealing.CORE_SEALED_COLUMNS
    ]
    assert {c.name for c in columns} >= {
        "case_work_groups.closing_summary_sealed",
        "case_work_group_notes.text_sealed",
    }
    present = await _sealed_counts(cw, columns)
    assert all(present.values()), present  # a column without rows would prove nothing
    async with cw.as_("sw") as ctx:
        old = await sealing.keyring(ctx)
    ring = sealing.Keyring((("rot", b"R" * 32), *old.keys))
    # when every registered column is resealed under a new key
    reports = await sealing.reseal(cw.engine, columns, ring)
    # then every value moved, none was refused by a guard or failed to open, and none is left behind
    assert {r.column.name: (r.resealed, r.unreadable, r.remaining) for r in reports} == {
        name: (n, [], 0) for name, n in present.items()
    }
    assert await sealing.count_sealed_under(cw.engine, columns, "rot") == sum(present.values())
    # and the ended group's summary still opens where it is, to its text, the group otherwise unchanged
    finished = await group(cw, ended)
    assert finished.closing_summary_sealed is not None
    assert sealing.key_id_of(finished.closing_summary_sealed) == "rot"
    assert (
        ring.open(
            finished.closing_summary_sealed, table=groups.GROUPS_TABLE, column=groups.SUMMARY_COLUMN, row_id=ended
        )
        == "小组总结：目标达成"
    )
    assert (finished.stage, finished.ended_at is not None) == ("ending", True)
    # and a second run finds nothing to do
    assert [r.resealed for r in await sealing.reseal(cw.engine, columns, ring)] == [0] * len(columns)


async def test_the_reseal_exemption_of_group_rows_passes_a_key_change_and_nothing_else(cal: Calendar) -> None:  # noqa: F811
    # given an ended group with an outcome note
    cw = cal.cw
    group_id = await make_group(cw)
    session = await cw.call("sw", groups.schedule_session, group_id, start=at(cal.monday, 9), minutes=60)
    cw.clock.now = at(cal.monday, 10, 30)
    note = await cw.call("sw", groups.add_note, session.id, "情绪好转")
    await bring_to(cw, group_id, "ending")
    other = sealing.Keyring((("rot", b"R" * 32),))
    summary = other.seal("伪造", table=groups.GROUPS_TABLE, column=groups.SUMMARY_COLUMN, row_id=group_id)
    text_ = other.seal("伪造", table=groups.NOTES_TABLE, column=groups.TEXT_COLUMN, row_id=note.id)
    async with cw.as_("sw") as ctx:
        same_key = (await sealing.keyring(ctx)).seal(
            "伪造", table=groups.NOTES_TABLE, column=groups.TEXT_COLUMN, row_id=note.id
        )
    groups_sql = "UPDATE case_work_groups SET closing_summary_sealed = :v{more} WHERE id = :id"
    notes_sql = "UPDATE case_work_group_notes SET text_sealed = :v{more} WHERE id = :id"
    g, n = {"v": summary, "id": group_id}, {"v": text_, "id": note.id}
    attempts = [
        # no reseal declared: an ended group and a note change no more
        ("", groups_sql.format(more=""), g, "case_work_group_ended"),
        ("", notes_sql.format(more=""), n, "case_work_group_ended"),
        # declared, but another column changes too
        ("case_work_groups.closing_summary_sealed", groups_sql.format(more=", name = 'x'"), g, "case_work_group_ended"),
        ("case_work_group_notes.text_sealed", notes_sql.format(more=", author = 'x'"), n, "case_work_group_ended"),
        # declared for the other column
        ("case_work_group_notes.text_sealed", groups_sql.format(more=""), g, "case_work_group_ended"),
        ("case_work_groups.closing_summary_sealed", notes_sql.format(more=""), n, "case_work_group_ended"),
        # declared, but the key stays: another text under the same key is an edit
        ("case_work_group_notes.text_sealed", notes_sql.format(more=""), {**n, "v": same_key}, "case_work_group_ended"),
    ]

    async def run(name: str, sql: str, params: dict[str, Any]) -> None:
        async with cw.as_("sw") as ctx:
            await ctx.session.execute(text("SELECT set_config('app.resealing', :name, true)"), {"name": name})
            await ctx.session.execute(text(sql), params)

    for name, sql, params, constraint in attempts:
        with pytest.raises(DBAPIError) as err:
            await run(name, sql, params)
        assert constraint_name(err.value) == constraint, (name, sql)
    # while the key change alone passes, for each column
    await run("case_work_groups.closing_summary_sealed", groups_sql.format(more=""), g)
    await run("case_work_group_notes.text_sealed", notes_sql.format(more=""), n)


async def _sealed_counts(cw: CaseWorld, columns: list[sealing.SealedColumn]) -> dict[str, int]:
    """Values present in each sealed column, every organisation's."""
    async with cw.as_("padmin") as ctx:
        return {
            c.name: int(await ctx.session.scalar(text(f"SELECT count({c.column}) FROM {c.table}")) or 0)
            for c in columns
        }


async def test_those_who_run_a_group_see_its_participants_names_others_nothing(cw: CaseWorld) -> None:
    # given a client of sw's case in two groups: one sw2 co-facilitates, one sw2 has nothing to do with
    client = (await make_clients(cw, 1))[0]
    shared = await make_group(cw, co_facilitator_account_id=cw.ids["sw2"])
    other = await make_group(cw, name="第二组")
    joined = [await cw.call("sw", groups.add_participant, g, client) for g in (shared, other)]
    seen: dict[str, tuple[Any, ...]] = {}
    for who in ("sw", "sw2", "sup", "admin", "admin_b", "sw_b"):
        async with cw.as_(who) as ctx:
            people = await groups.participants(ctx, [shared, other])
            names = await groups.participant_names(ctx, [p.id for p in joined])
            contact = (await case_services.client_residents(ctx, [client]))[0]
            seen[who] = (
                [None if found is None else len(found) for found in people],
                names,
                None if contact is None else contact.phone,
            )
    assert seen == {
        "sw": ([1, 1], ["独居老人", "独居老人"], "13700001111"),
        # the co-facilitator does not serve the client's case: the name in their group, not its contact
        "sw2": ([1, None], ["独居老人", None], None),
        "sup": ([1, 1], ["独居老人", "独居老人"], "13700001111"),
        "admin": ([1, 1], ["独居老人", "独居老人"], "13700001111"),
        "admin_b": ([None, None], [None, None], None),
        "sw_b": ([None, None], [None, None], None),
    }


# -- changes of a running group ---------------------------------------------------------------------------------


async def _slot(cw: CaseWorld, session_id: int) -> tuple[int, Any, Any, str]:
    """(owner, start, end, status) of a session's appointment on the calendar."""
    async with cw.as_("admin") as ctx:
        session = await ctx.session.get_one(GroupSession, session_id)
        a = await ctx.session.get_one(Appointment, session.appointment_id)
        return a.owner_id, a.during.lower, a.during.upper, a.status


async def _changes(cw: CaseWorld, group_id: int) -> list[tuple[Any, ...]]:
    async with cw.as_("admin") as ctx:
        rows = await ctx.session.scalars(
            select(GroupFacilitatorChange)
            .where(GroupFacilitatorChange.group_id == group_id)
            .order_by(GroupFacilitatorChange.seq)
        )
        return [
            (
                c.seq,
                c.from_facilitator_account_id,
                c.to_facilitator_account_id,
                c.from_co_facilitator_account_id,
                c.to_co_facilitator_account_id,
                c.actor_account_id,
                c.reason,
            )
            for c in rows
        ]


async def test_who_changes_a_running_group(cal: Calendar) -> None:  # noqa: F811
    cw = cal.cw
    slots = itertools.count()

    async def fresh() -> tuple[int, int]:
        """A group of sw (supervised by sup) with a session ahead, at a time of its own."""
        n = next(slots)
        group_id = await make_group(cw)
        day = cal.monday + timedelta(days=n // 10)
        # 45 minutes and the calendar's 10 minutes' buffer: the next hour is free
        session = await cw.call("sw", groups.schedule_session, group_id, start=at(day, 8 + n % 10), minutes=45)
        return group_id, int(session.id)

    def facilitators(group_id: int, _: int) -> tuple[Any, ...]:
        return (groups.change_facilitators, group_id, "原带领者病假"), {"facilitator_account_id": cw.ids["sw2"]}

    def update(group_id: int, _: int) -> tuple[Any, ...]:
        return (groups.update_group, group_id), {"capacity": 12, "purpose": "新的目的", "goals": "新的目标"}

    def reschedule(_: int, session_id: int) -> tuple[Any, ...]:
        later = at(cal.monday + timedelta(days=30 + next(slots)), 9)  # a day of its own
        return (groups.reschedule_session, session_id), {"start": later, "minutes": 60}

    ok = "ok"
    expected = {
        # the group's supervisor or an administrator hands it on; its facilitator does not
        facilitators: {"sw": "FORBIDDEN", "sup": ok, "admin": ok, "padmin": ok},
        # those who run it change the rest
        update: {"sw": ok, "sup": ok, "admin": ok, "padmin": ok},
        reschedule: {"sw": ok, "sup": ok, "admin": ok, "padmin": ok},
    }
    # and for every operation: another social worker sees the group but may not change it; another
    # organisation's members do not see it; callers without casework are FORBIDDEN
    others = {"sw2": "FORBIDDEN", "admin_b": "NOT_FOUND", "sw_b": "NOT_FOUND", "volunteer": "FORBIDDEN"}
    for operation, by_whom in expected.items():
        for who, outcome in (by_whom | others).items():
            group_id, session_id = await fresh()
            (fn, *args), kw = operation(group_id, session_id)
            if outcome == ok:
                await cw.call(who, fn, *args, **kw)
                continue
            before = await counts(cw)
            assert await cw.refused(who, fn, *args, **kw) == outcome, (operation.__name__, who)
            assert await counts(cw) == before, (operation.__name__, who)
            found = await group(cw, group_id)
            assert (found.facilitator_account_id, found.capacity, found.purpose) == (
                cw.ids["sw"],
                8,
                "减少孤独感，建立互助网络",
            )
            assert (await _slot(cw, session_id))[0] == cal.records["sw"]


async def test_a_new_facilitator_takes_the_sessions_ahead_and_the_change_is_recorded(cal: Calendar) -> None:  # noqa: F811
    cw = cal.cw
    # given a group of sw: a session that took place, one ahead, one ahead that was cancelled
    group_id = await make_group(cw)
    held = await cw.call("sw", groups.schedule_session, group_id, start=at(cal.monday, 9), minutes=60)
    ahead = await cw.call("sw", groups.schedule_session, group_id, start=at(cal.monday, 14), minutes=90)
    dropped = await cw.call("sw", groups.schedule_session, group_id, start=at(cal.monday, 17), minutes=60)
    await cw.call("sw", groups.cancel_session, dropped.id, "场地不可用")
    cw.clock.now = at(cal.monday, 10, 30)
    # bad input and ineligible people are refused, nothing written
    before = await counts(cw)
    refusals: list[tuple[dict[str, Any], str]] = [
        ({"reason": " ", "facilitator_account_id": cw.ids["sw2"]}, "REQUIRED"),
        ({"facilitator_account_id": cw.ids["volunteer"]}, "INVALID_INPUT"),  # not a social worker
        ({"facilitator_account_id": cw.ids["sw_b"]}, "NOT_FOUND"),  # another organisation
        ({"facilitator_account_id": cw.ids["sup"]}, "INVALID_INPUT"),  # the group's supervisor
        ({"facilitator_account_id": cw.ids["sw"]}, "INVALID_INPUT"),  # nobody new
        ({"facilitator_account_id": cw.ids["sw2"], "co_facilitator_account_id": cw.ids["sw2"]}, "INVALID_INPUT"),
        ({"co_facilitator_account_id": cw.ids["head"]}, "INVALID_INPUT"),
        ({"co_facilitator_account_id": cw.ids["admin_b"]}, "NOT_FOUND"),
    ]
    for given, expected in refusals:
        kw = {"reason": "病假"} | given
        reason = kw.pop("reason")
        assert await cw.refused("sup", groups.change_facilitators, group_id, reason, **kw) == expected, given
    assert await counts(cw) == before
    # when its supervisor hands it to sw2, with sw as co-facilitator
    changed = await cw.call(
        "sup",
        groups.change_facilitators,
        group_id,
        "原带领者长期病假",
        facilitator_account_id=cw.ids["sw2"],
        co_facilitator_account_id=cw.ids["sw"],
    )
    assert (changed.facilitator_account_id, changed.co_facilitator_account_id) == (cw.ids["sw2"], cw.ids["sw"])
    # then the change is recorded: from whom, to whom, who, why
    assert await _changes(cw, group_id) == [
        (1, cw.ids["sw"], cw.ids["sw2"], None, cw.ids["sw"], cw.ids["sup"], "原带领者长期病假")
    ]
    # and the session ahead is on sw2's calendar at the same time, sw's appointment cancelled
    assert await _slot(cw, ahead.id) == (cal.records["sw2"], at(cal.monday, 14), at(cal.monday, 15, 30), "active")
    async with cw.as_("admin") as ctx:
        moved = await ctx.session.get_one(GroupSession, ahead.id)
        assert (moved.facilitator_account_id, moved.status) == (cw.ids["sw2"], "scheduled")
        left = await ctx.session.get_one(Appointment, ahead.appointment_id)
        assert (left.owner_id, left.status) == (cal.records["sw"], "cancelled")
    # while the session that took place says who led it, and the cancelled one stays as it was
    assert (await _slot(cw, held.id))[0] == cal.records["sw"]
    assert (await _slot(cw, dropped.id))[::3] == (cal.records["sw"], "cancelled")
    # and sw's time is free again (a visit at 14:00 is booked), sw2's is not
    case_id = await cw.open()
    await cal.book(case_id, at(cal.monday, 14))
    case2 = await cw.open("sw2")
    code = await cw.refused("sw2", visits.book_visit, case2, mode="call", start=at(cal.monday, 14, 30), minutes=30)
    assert code == "SLOT_TAKEN"
    # and an administrator changes it again: the co-facilitator left out stays, then is removed
    await cw.call("admin", groups.change_facilitators, group_id, "调整分工", co_facilitator_account_id=None)
    assert [c[0:5] for c in await _changes(cw, group_id)] == [
        (1, cw.ids["sw"], cw.ids["sw2"], None, cw.ids["sw"]),
        (2, cw.ids["sw2"], cw.ids["sw2"], cw.ids["sw"], None),
    ]
    assert (await group(cw, group_id)).facilitator_seq == 2


async def test_a_facilitator_change_that_clashes_with_the_new_facilitators_calendar_is_refused(
    cal: Calendar,  # noqa: F811
) -> None:
    cw = cal.cw
    # given a group of sw2 with two sessions ahead, and sw giving a counseling session over the second
    group_id = await make_group(cw, facilitator_account_id=cw.ids["sw2"], who="admin")
    first = await cw.call("admin", groups.schedule_session, group_id, start=at(cal.monday, 9), minutes=60)
    second = await cw.call("admin", groups.schedule_session, group_id, start=at(cal.monday, 11), minutes=60)
    await cal.session(cal.counselor, at(cal.monday, 11, 30))
    before = await counts(cw)
    # when the supervisor hands the group to sw
    code = await cw.refused("sup", groups.change_facilitators, group_id, "病假", facilitator_account_id=cw.ids["sw"])
    # then the calendar's refusal refuses the whole change: nothing written, every session where it was
    assert code == "SLOT_TAKEN"
    assert await counts(cw) == before
    assert await _changes(cw, group_id) == []
    assert (await group(cw, group_id)).facilitator_account_id == cw.ids["sw2"]
    assert [(await _slot(cw, s.id))[0] for s in (first, second)] == [cal.records["sw2"]] * 2
    # and the same with a casework visit of the new facilitator over a session (sw2's group to sw)
    other = await make_group(cw, name="第二组")  # sw's
    late = await cw.call("sw", groups.schedule_session, other, start=at(cal.monday, 16), minutes=60)
    case_id = await cw.open("sw2")
    await cal.book(case_id, at(cal.monday, 16, 30), who="sw2")
    before = await counts(cw)
    assert (
        await cw.refused("admin", groups.change_facilitators, other, "调岗", facilitator_account_id=cw.ids["sw2"])
        == "SLOT_TAKEN"
    )
    assert await counts(cw) == before
    assert (await _slot(cw, late.id))[0] == cal.records["sw"]
    # and once the session is moved out of the way, the change goes through
    await cw.call("sw", groups.reschedule_session, late.id, start=at(cal.monday, 18), minutes=60)
    await cw.call("admin", groups.change_facilitators, other, "调岗", facilitator_account_id=cw.ids["sw2"])
    assert (await _slot(cw, late.id))[:2] == (cal.records["sw2"], at(cal.monday, 18))


async def test_the_previous_facilitator_loses_the_group_and_its_notes(cal: Calendar) -> None:  # noqa: F811
    cw = cal.cw
    # given a group of sw with a participant and a session with an outcome note by sw
    group_id = await make_group(cw)
    client = (await make_clients(cw, 1))[0]
    await cw.call("sw", groups.add_participant, group_id, client)
    session = await cw.call("sw", groups.schedule_session, group_id, start=at(cal.monday, 9), minutes=60)
    cw.clock.now = at(cal.monday, 10, 30)
    await cw.call("sw", groups.add_note, session.id, "王阿姨第一次主动发言")
    # when the supervisor hands it to sw2
    await cw.call("sup", groups.change_facilitators, group_id, "调岗", facilitator_account_id=cw.ids["sw2"])
    seen: dict[str, tuple[Any, ...]] = {}
    for who in ("sw", "sw2", "sup", "admin", "admin_b"):
        async with cw.as_(who) as ctx:
            found = (await groups.groups_by_id(ctx, [group_id])).get(group_id)
            people = (await groups.participants(ctx, [group_id]))[0]
            texts = (await groups.notes(ctx, [session.id]))[0]
            changes = (await groups.facilitator_changes(ctx, [group_id]))[0]
            seen[who] = (
                found is not None,
                None if people is None else len(people),
                None if texts is None else [t for _, t in texts],
                None if changes is None else [c.reason for c in changes],
            )
    # then sw sees the group as any social worker does: not who takes part, not its notes, not its changes
    assert seen == {
        "sw": (True, None, None, None),
        "sw2": (True, 1, ["王阿姨第一次主动发言"], ["调岗"]),
        "sup": (True, 1, ["王阿姨第一次主动发言"], ["调岗"]),
        "admin": (True, 1, None, ["调岗"]),  # runs the group, not its confidential text
        "admin_b": (False, None, None, None),
    }
    # and sw writes no note and changes nothing of it any more; sw2 does
    before = await counts(cw)
    assert await cw.refused("sw", groups.add_note, session.id, "补记") == "FORBIDDEN"
    assert await cw.refused("sw", groups.update_group, group_id, capacity=10) == "FORBIDDEN"
    assert await counts(cw) == before
    await cw.call("sw2", groups.add_note, session.id, "接手后的记录")


async def test_capacity_purpose_and_goals_of_a_running_group(cw: CaseWorld) -> None:
    # given a group of capacity 3 with 3 participants
    group_id = await make_group(cw, capacity=3)
    for client in await make_clients(cw, 3):
        await cw.call("sw", groups.add_participant, group_id, client)
    before = await counts(cw)
    # then a capacity below them (the database's CHECK), or outside 2..100, or an empty purpose is refused
    for kw, expected in (
        ({"capacity": 2}, "GROUP_CAPACITY_BELOW_PARTICIPANTS"),
        ({"capacity": 1}, "OUT_OF_RANGE"),
        ({"capacity": 101}, "OUT_OF_RANGE"),
        ({"purpose": " "}, "REQUIRED"),
        ({"goals": "长" * 5001}, "OUT_OF_RANGE"),
        ({"capacity": 2, "purpose": "新目的"}, "GROUP_CAPACITY_BELOW_PARTICIPANTS"),  # none of it written
    ):
        assert await cw.refused("sw", groups.update_group, group_id, **kw) == expected, kw
    assert await counts(cw) == before
    found = await group(cw, group_id)
    assert (found.capacity, found.purpose, found.goals) == (3, "减少孤独感，建立互助网络", "")
    # and the capacity as it is, or more, with new purpose and goals, is kept (trimmed)
    await cw.call("sw", groups.update_group, group_id, capacity=3)
    await cw.call("sup", groups.update_group, group_id, capacity=6, purpose=" 新目的 ", goals="每周一次")
    found = await group(cw, group_id)
    assert (found.capacity, found.participant_count, found.purpose, found.goals) == (6, 3, "新目的", "每周一次")
    # and a fourth client joins now
    await cw.call("sw", groups.add_participant, group_id, (await make_clients(cw, 1))[0])


async def test_a_session_moves_on_the_calendar_like_a_visit(cal: Calendar) -> None:  # noqa: F811
    cw = cal.cw
    # given a group of sw with a session at 9:00, and sw giving a counseling session at 11:00
    group_id = await make_group(cw)
    session = await cw.call("sw", groups.schedule_session, group_id, start=at(cal.monday, 9), minutes=60)
    await cal.session(cal.counselor, at(cal.monday, 11))
    before = await counts(cw)
    # then a move over the counseling session, outside sw's hours, into the past or too long is refused
    for kw, expected in (
        ({"start": at(cal.monday, 11, 30), "minutes": 60}, "SLOT_TAKEN"),
        ({"start": at(cal.monday, 20), "minutes": 60}, "OUTSIDE_AVAILABILITY"),
        ({"start": cw.clock.now - timedelta(hours=1), "minutes": 60}, "IN_PAST"),
        ({"start": at(cal.monday, 13), "minutes": 10}, "OUT_OF_RANGE"),
        # past the booking horizon (a typo such as 2199): beyond any search that starts today
        ({"start": at(cal.monday, 9) + timedelta(days=400), "minutes": 60}, "OUT_OF_RANGE"),
    ):
        assert await cw.refused("sw", groups.reschedule_session, session.id, **kw) == expected, kw
    far = at(cal.monday, 9) + timedelta(days=400)
    assert await cw.refused("sw", groups.schedule_session, group_id, start=far, minutes=60) == "OUT_OF_RANGE"
    assert await counts(cw) == before
    assert await _slot(cw, session.id) == (cal.records["sw"], at(cal.monday, 9), at(cal.monday, 10), "active")
    # and a move to a free time moves it and frees 9:00 (a visit is booked there)
    moved = await cw.call("sw", groups.reschedule_session, session.id, start=at(cal.monday, 13), minutes=120)
    assert moved.starts_at == at(cal.monday, 13)
    assert await _slot(cw, session.id) == (cal.records["sw"], at(cal.monday, 13), at(cal.monday, 15), "active")
    await cal.book(await cw.open(), at(cal.monday, 9))
    # and a session that has started, or was cancelled, is not moved
    cw.clock.now = at(cal.monday, 13, 30)
    assert await cw.refused("sw", groups.reschedule_session, session.id, start=at(cal.monday, 17), minutes=60) == (
        "INVALID_TRANSITION"
    )
    other = await cw.call("sw", groups.schedule_session, group_id, start=at(cal.monday, 16), minutes=60)
    await cw.call("sw", groups.cancel_session, other.id, "下雨")
    assert await cw.refused("sw", groups.reschedule_session, other.id, start=at(cal.monday, 18), minutes=60) == (
        "INVALID_TRANSITION"
    )


async def test_the_database_holds_facilitator_changes_on_its_own(cal: Calendar) -> None:  # noqa: F811
    cw = cal.cw
    group_id = await make_group(cw)
    session = await cw.call("sw", groups.schedule_session, group_id, start=at(cal.monday, 9), minutes=60)
    sw, sw2, sup = cw.ids["sw"], cw.ids["sw2"], cw.ids["sup"]
    change = (
        "INSERT INTO case_work_group_facilitator_changes (group_id, seq, from_facilitator_account_id, "
        "to_facilitator_account_id, actor_account_id, actor, reason) VALUES ({g}, {seq}, {a}, {b}, {sup}, 'x', '{r}')"
    )
    move = f"UPDATE case_work_groups SET facilitator_account_id = {sw2}, facilitator_seq = 1 WHERE id = {group_id}"
    statements: list[tuple[str, str]] = [
        # a facilitator changed without its record, or with a record that names someone else
        (
            f"UPDATE case_work_groups SET facilitator_account_id = {sw2} WHERE id = {group_id}",
            "case_work_group_facilitators_recorded",
        ),
        (
            change.format(g=group_id, seq=1, a=sw, b=sup, sup=sup, r="病假") + f"; {move}",
            "case_work_group_facilitators_recorded",
        ),
        # a record that is not the next one, or from someone who is not the facilitator
        (change.format(g=group_id, seq=2, a=sw, b=sw2, sup=sup, r="病假"), "case_work_group_facilitators_recorded"),
        (change.format(g=group_id, seq=1, a=sw2, b=sup, sup=sup, r="病假"), "case_work_group_facilitators_recorded"),
        (
            change.format(g=group_id, seq=1, a=sw, b=sw2, sup=sup, r=" "),
            "ck_case_work_group_facilitator_changes_reason_given",
        ),
        # a session handed to someone other than the group's facilitator, or changed otherwise
        (
            f"UPDATE case_work_group_sessions SET facilitator_account_id = {sw2} WHERE id = {session.id}",
            "case_work_group_kept",
        ),
        (f"UPDATE case_work_group_sessions SET topic = '改' WHERE id = {session.id}", "case_work_group_kept"),
    ]
    for sql, constraint in statements:
        with pytest.raises(DBAPIError) as err:  # noqa: PT012  (a transaction of one or two statements)
            async with cw.as_("sw") as ctx:
                for statement in sql.split("; "):
                    await ctx.session.execute(text(statement))
        assert constraint_name(err.value) == constraint, sql
    # while the record and the change together pass, and the record is kept as written
    async with cw.as_("sw") as ctx:
        await ctx.session.execute(text(change.format(g=group_id, seq=1, a=sw, b=sw2, sup=sup, r="病假")))
        await ctx.session.execute(text(move))
    for sql in (
        f"UPDATE case_work_group_facilitator_changes SET reason = '改' WHERE group_id = {group_id}",
        f"DELETE FROM case_work_group_facilitator_changes WHERE group_id = {group_id}",
    ):
        with pytest.raises(DBAPIError) as err:
            async with cw.as_("sw") as ctx:
                await ctx.session.execute(text(sql))
        assert constraint_name(err.value) == "case_work_group_kept", sql
