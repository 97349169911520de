"""Batch planning: optimal where greedy is not, capacity, uncovered requests, stale and concurrent commits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import URL

from core.errors import DomainError
from core.models import Assignment, CategoryTraining, HelpRequest, Volunteer, VolunteerCredential
from core.services import assignments, planning, volunteers
from core.services.context import ServiceContext
from core.services.matching_policy import MatchingPolicy
from core.vocab import CredentialKind, RequestCategory, RequestStatus, VolunteerMode
from tests.concurrency import Racer, rounds
from tests.factories import Factory

# Distance only, so the right answer is plain geometry.
POLICY = MatchingPolicy(weights={"distance": 1.0})
A = (34.2500, 108.9400)
B = (34.2500, 109.0400)  # ~9.2 km east of A


def _east(km: float, of: tuple[float, float]) -> tuple[float, float]:
    return of[0], of[1] + km / 92.0  # ~92 km per degree of longitude here


async def _request_at(make: Factory, point: tuple[float, float], **kw):  # type: ignore[no-untyped-def]
    community = await make.community(latitude=point[0], longitude=point[1])
    return await make.request(community, status=RequestStatus.VERIFIED, **kw)


async def test_plan_is_optimal_where_greedy_is_not(make: Factory) -> None:
    # given X between A and B (1 km from A, ~8 km from B) and Y 3 km west of A (far from B)
    a = await _request_at(make, A)
    b = await _request_at(make, B)
    xlat, xlng = _east(1.0, A)
    x = await make.volunteer(latitude=xlat, longitude=xlng, max_concurrent_assignments=1)
    ylat, ylng = _east(-3.0, A)
    y = await make.volunteer(latitude=ylat, longitude=ylng, max_concurrent_assignments=1)
    # when both requests are planned at once
    plan = await planning.plan(make.ctx, [a.id, b.id], POLICY)
    # then A gets Y and B gets X (greedy, taking A first, would give A X and B the far Y)
    assert {(i.request_id, i.volunteer_id) for i in plan.items} == {(a.id, y.id), (b.id, x.id)}
    assert plan.uncovered == []
    greedy_cost = (1 - (1 - 1.0 / 30)) + (1 - max(0.0, 1 - 12.2 / 30))
    assert plan.total_cost < greedy_cost


async def test_capacity_lets_one_volunteer_cover_two_requests(make: Factory) -> None:
    a, b = await _request_at(make, A), await _request_at(make, A)
    v = await make.volunteer(latitude=A[0], longitude=A[1], max_concurrent_assignments=2)
    plan = await planning.plan(make.ctx, [a.id, b.id], POLICY)
    assert sorted((i.request_id, i.volunteer_id) for i in plan.items) == [(a.id, v.id), (b.id, v.id)]


async def test_requests_it_cannot_cover_are_reported_with_a_reason(make: Factory) -> None:
    a = await _request_at(make, A)
    b = await _request_at(make, A, required_skills=["sign_language"])
    c = await _request_at(make, A)
    only = await make.volunteer(latitude=A[0], longitude=A[1], max_concurrent_assignments=1)
    plan = await planning.plan(make.ctx, [a.id, b.id, c.id], POLICY)
    assert len(plan.items) == 1
    assert plan.items[0].volunteer_id == only.id
    reasons = {u.request_id: u.reason for u in plan.uncovered}
    assert reasons[b.id] == "no qualified volunteer is free"
    assert reasons[(c.id if plan.items[0].request_id == a.id else a.id)] == (
        "its qualified volunteers are needed more elsewhere in this plan"
    )


async def test_a_request_needing_several_volunteers_gets_several(make: Factory) -> None:
    a = await _request_at(make, A, volunteers_needed=3)
    people = [await make.volunteer(latitude=A[0], longitude=A[1]) for _ in range(4)]
    plan = await planning.plan(make.ctx, [a.id], POLICY)
    chosen = [i.volunteer_id for i in plan.items]
    assert len(chosen) == len(set(chosen)) == 3
    assert set(chosen) <= {p.id for p in people}


async def test_planning_unknown_or_closed_requests_is_refused(make: Factory) -> None:
    closed = await make.request(status=RequestStatus.FULFILLED)
    with pytest.raises(DomainError) as err:
        await planning.plan(make.ctx, [closed.id, 999_999], POLICY)
    assert [(e.code, e.field) for e in err.value.errors] == [
        ("NOT_MATCHABLE", ("requestIds", "0")),
        ("NOT_FOUND", ("requestIds", "1")),
    ]


async def test_committing_a_stale_plan_fails_and_writes_nothing(make: Factory) -> None:
    # given a plan, and then the volunteer takes another assignment
    a = await _request_at(make, A)
    a_id = a.id
    v = await make.volunteer(latitude=A[0], longitude=A[1], max_concurrent_assignments=1)
    plan = await planning.plan(make.ctx, [a.id], POLICY)
    other = await _request_at(make, A)
    await assignments.offer(make.ctx, other.id, v.id)
    await make.commit()
    # when the plan is committed
    with pytest.raises(DomainError) as err:
        await planning.commit_plan(make.ctx, [(i.request_id, i.volunteer_id) for i in plan.items])
    await make.ctx.session.rollback()
    # then STALE_PLAN, and no assignment was added
    assert err.value.code == "STALE_PLAN"
    assert len(await assignments.list_for_request(make.ctx, a_id)) == 0


async def test_capacity_holds_under_two_concurrent_commits(make: Factory, db_url: URL, clock) -> None:  # type: ignore[no-untyped-def]
    async def round_(racer: Racer) -> None:
        # given one volunteer with room for one, and two plans each giving them a different request
        a, b = await _request_at(make, A), await _request_at(make, A)
        v = await make.volunteer(latitude=A[0], longitude=A[1], max_concurrent_assignments=1)
        plans = [a.id, b.id]

        async def commit(ctx: ServiceContext, i: int) -> str:
            await planning.commit_plan(ctx, [(plans[i], v.id)])
            return "ok"

        # when both are committed at once, in real concurrent transactions
        outcomes = await racer.race(commit, viewer=make.ctx.viewer)
        # then exactly one holds
        assert sorted(outcomes) == ["STALE_PLAN", "ok"]
        active = await make.ctx.session.scalar(select(Volunteer.active_assignments).where(Volunteer.id == v.id))
        assert active == 1

    async with Racer.open(db_url, workers=2, clock=clock) as racer:
        for _ in range(rounds(6)):
            await round_(racer)


async def test_each_request_is_filtered_on_its_own(make: Factory) -> None:
    # given a volunteer who declined request A but not B, and a required credential only B lacks
    a, b = await _request_at(make, A), await _request_at(make, A)
    v = await make.volunteer(latitude=A[0], longitude=A[1])
    offer = await assignments.offer(make.ctx, a.id, v.id)
    await assignments.decline(make.ctx, offer.id, "not today")
    await make.commit()
    # when both are planned together
    plan = await planning.plan(make.ctx, [a.id, b.id], POLICY)
    # then the decline rules the volunteer out for A only
    assert [(i.request_id, i.volunteer_id) for i in plan.items] == [(b.id, v.id)]
    assert [u.request_id for u in plan.uncovered] == [a.id]


# -- commitPlan checks every pair again with the offer's filters -----------------------------------------------------

Change = Callable[[Factory, HelpRequest, Volunteer], Awaitable[None]]


async def _pass_revoked(make: Factory, request: HelpRequest, volunteer: Volunteer) -> None:
    await make.ctx.session.execute(delete(VolunteerCredential).where(VolunteerCredential.volunteer_id == volunteer.id))


async def _pass_now_expires_before_needed(make: Factory, request: HelpRequest, volunteer: Volunteer) -> None:
    lapses = (request.needed_by or make.ctx.now()) - timedelta(hours=1)
    await make.ctx.session.execute(
        update(VolunteerCredential).where(VolunteerCredential.volunteer_id == volunteer.id).values(expires_at=lapses)
    )


async def _skill_removed(make: Factory, request: HelpRequest, volunteer: Volunteer) -> None:
    await volunteers.update_volunteer(make.ctx, volunteer.id, {"skills": ["cooking"]})


async def _training_now_required(make: Factory, request: HelpRequest, volunteer: Volunteer) -> None:
    training = await volunteers.create_training(make.ctx, code="cold-chain", name="冷链")
    make.ctx.session.add(CategoryTraining(category=request.category, training_id=training.id))


async def _now_online(make: Factory, request: HelpRequest, volunteer: Volunteer) -> None:
    await volunteers.update_volunteer(make.ctx, volunteer.id, {"mode": VolunteerMode.ONLINE})


async def _filled_meanwhile(make: Factory, request: HelpRequest, volunteer: Volunteer) -> None:
    other = await make.volunteer(skills=["driving"])
    await assignments.offer(make.ctx, request.id, other.id, override_reason="knows the family")


STALE_CASES: dict[str, Change] = {
    "credential revoked": _pass_revoked,
    "credential now expires before needed": _pass_now_expires_before_needed,
    "skill removed": _skill_removed,
    "training now required": _training_now_required,
    "volunteer now online only": _now_online,
    "request filled meanwhile": _filled_meanwhile,
}


@pytest.mark.parametrize("case", list(STALE_CASES))
async def test_a_pair_that_no_longer_qualifies_makes_the_plan_stale(make: Factory, case: str) -> None:
    # given two physical requests needing a driver with a vehicle pass, planned for two qualified drivers
    now = make.ctx.now()
    wanted = {"required_skills": ["driving"], "required_credentials": ["vehicle_pass"]}
    a = await _request_at(
        make, A, needed_by=now + timedelta(hours=6), category=RequestCategory.DAILY_SUPPLIES, **wanted
    )
    b = await _request_at(make, A, needed_by=now + timedelta(hours=6), category=RequestCategory.FOOD, **wanted)
    drivers = [
        await make.volunteer(skills=["driving"], latitude=A[0], longitude=A[1], max_concurrent_assignments=1)
        for _ in range(2)
    ]
    for driver in drivers:
        await volunteers.add_credential(
            make.ctx, driver.id, kind=CredentialKind.VEHICLE_PASS, expires_at=now + timedelta(days=30)
        )
    await make.commit()
    plan = await planning.plan(make.ctx, [a.id, b.id], POLICY)
    items = [(i.request_id, i.volunteer_id) for i in plan.items]
    assert len(items) == 2
    # when, before the commit, the pair of request B changes as the case says
    (stale_volunteer,) = [v for v in drivers if (b.id, v.id) in items]
    stale_item = str(items.index((b.id, stale_volunteer.id)))
    await STALE_CASES[case](make, b, stale_volunteer)
    await make.commit()
    before = await make.ctx.session.scalar(select(func.count()).select_from(Assignment))
    with pytest.raises(DomainError) as err:
        await planning.commit_plan(make.ctx, items)
    await make.ctx.session.rollback()
    # then STALE_PLAN on that item, and nothing of the plan was written (A's pair neither: all or nothing)
    assert (err.value.code, err.value.errors[0].field) == ("STALE_PLAN", ("input", "items", stale_item))
    assert await make.ctx.session.scalar(select(func.count()).select_from(Assignment)) == before


async def test_a_plan_cannot_overfill_a_request(make: Factory) -> None:
    # given a request needing two, and a hand-made plan giving it three
    request = await _request_at(make, A, volunteers_needed=2)
    people = [await make.volunteer(latitude=A[0], longitude=A[1]) for _ in range(3)]
    # when it is committed
    with pytest.raises(DomainError) as err:
        await planning.commit_plan(make.ctx, [(request.id, p.id) for p in people])
    # then STALE_PLAN: the third pair no longer fits
    assert (err.value.code, err.value.errors[0].field) == ("STALE_PLAN", ("input", "items", "2"))
