"""The batch candidate search (`matching.nearest_many`, `candidates_many`, and so `planning`) proposes exactly
what the per-request search does: the same volunteers, distances, scores and order, on generated worlds."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta

import pytest

from core.errors import DomainError
from core.models import CategoryTraining
from core.services import assignments, matching, organizations, planning, volunteers
from core.services.context import ServiceContext, Viewer
from core.services.matching_policy import MatchingPolicy
from core.vocab import Availability, CredentialKind, OrganizationKind, RequestCategory, RequestStatus, VolunteerMode
from tests.conftest import StatementCounter
from tests.factories import Factory

POLICY = MatchingPolicy()
HERE = (34.2558, 108.9387)
SKILLS = ("driving", "nursing", "logistics", "cooking")
CATEGORIES = (
    RequestCategory.MEDICINE,
    RequestCategory.FOOD,
    RequestCategory.PSYCHOLOGICAL,
    RequestCategory.OTHER,
    RequestCategory.MEDICAL_CARE,
)
PASSES = ("none", "valid", "lapses_before", "starts_after", "no_expiry")


def _near(rng: random.Random, spread: float = 0.08) -> tuple[float, float]:
    return HERE[0] + rng.uniform(-spread, spread), HERE[1] + rng.uniform(-spread, spread)


async def _world(make: Factory, rng: random.Random) -> list[int]:
    """Nine requests with different categories, skills, passes, deadlines and places (one without a place),
    and ~70 volunteers: every mode and availability, some of another organisation, some without a place,
    clusters at one point (ties at the cut), passes valid or not at each request's time, a training one
    category requires, some at capacity, some who declined, hold or were offered a request. The requests' ids."""
    now = make.ctx.now()
    training = await volunteers.create_training(make.ctx, code=f"t{rng.randrange(10**6)}", name="培训")
    make.ctx.session.add(CategoryTraining(category=RequestCategory.MEDICAL_CARE.value, training_id=training.id))
    elsewhere = await organizations.create_organization(
        make.ctx, name=f"别的机构{rng.randrange(10**6)}", kind=OrganizationKind.AGENCY
    )
    filler = await make.request(status=RequestStatus.VERIFIED, category=RequestCategory.OTHER, volunteers_needed=100)
    requests = []
    for i in range(9):
        place = _near(rng, 0.05) if i != 8 else (None, None)
        community = await make.community(latitude=place[0], longitude=place[1])
        requests.append(
            await make.request(
                community,
                status=RequestStatus.VERIFIED,
                category=CATEGORIES[i % len(CATEGORIES)],
                volunteers_needed=rng.choice((1, 2, 3)),
                needed_by=rng.choice([None, now + timedelta(hours=rng.randrange(1, 48))]),
                required_skills=rng.sample(SKILLS, rng.choice((0, 0, 1, 2))),
                required_credentials=rng.choice([[], [], ["vehicle_pass"]]),
            )
        )
    clusters = [_near(rng) for _ in range(3)]
    people = []
    for i in range(70):
        located = rng.random() < 0.85
        place = (rng.choice(clusters) if rng.random() < 0.3 else _near(rng)) if located else (None, None)
        person = await make.volunteer(
            organization_id=elsewhere.id if i % 10 == 9 else None,
            mode=rng.choices(list(VolunteerMode), weights=(5, 2, 3))[0],
            availability=rng.choices(list(Availability), weights=(10, 1, 1))[0],
            skills=rng.sample(SKILLS, rng.randrange(0, 4)),
            max_concurrent_assignments=rng.choice((1, 2, 3)),
            latitude=place[0],
            longitude=place[1],
        )
        kind = rng.choice(PASSES)
        if kind != "none":
            at = now + timedelta(hours=24)
            valid_from, expires_at = {
                "valid": (now - timedelta(days=3), now + timedelta(days=5)),
                "lapses_before": (now - timedelta(days=3), at),
                "starts_after": (at, now + timedelta(days=5)),
                "no_expiry": (None, None),
            }[kind]
            await volunteers.add_credential(
                make.ctx, person.id, kind=CredentialKind.VEHICLE_PASS, valid_from=valid_from, expires_at=expires_at
            )
        if rng.random() < 0.5:
            await volunteers.record_training(make.ctx, person.id, training.id, now - timedelta(days=1))
        people.append(person)
    await make.commit()
    # Assignments: some on the filler (load, recency, some at capacity), some on the requests themselves.
    for person in people:
        if person.availability != Availability.AVAILABLE or person.organization_id == elsewhere.id:
            continue
        roll = rng.random()
        if roll < 0.25:
            await assignments.offer(make.ctx, filler.id, person.id, override_reason="test")
        elif roll < 0.45:
            target = rng.choice(requests)
            try:
                offer = await assignments.offer(make.ctx, target.id, person.id, override_reason="test")
            except DomainError:
                continue  # the request is fully staffed already
            if rng.random() < 0.5:
                await assignments.decline(make.ctx, offer.id, "not today")
            elif rng.random() < 0.5:
                await assignments.accept(make.ctx, offer.id)
        await make.commit()
    return [r.id for r in requests]


def _seen(candidate: matching.Candidate) -> tuple:  # type: ignore[type-arg]
    return (
        candidate.volunteer_id,
        candidate.distance_km,
        candidate.is_reserve,
        candidate.score,
        [(p.component, p.value, p.weight) for p in candidate.parts],
    )


def _coordinator(make: Factory) -> ServiceContext:
    """The same session, as an organisation's administrator (the volunteer scope is then a condition too)."""
    viewer = Viewer(label="coordinator", role="organization_admin", organization_id=make.ctx.viewer.organization_id)
    return replace(make.ctx, viewer=viewer)


@pytest.mark.parametrize("seed", range(4))
async def test_the_batch_search_proposes_what_the_per_request_search_does(make: Factory, seed: int) -> None:
    # given a generated world (seeded: a failure names its seed)
    ids = await _world(make, random.Random(seed))
    for ctx in (make.ctx, _coordinator(make)):
        for limit in (1, 2, 3, 5, 12, 80):
            for reserve in (False, True):
                # when every request's nearest proposable volunteers are searched one by one and as a batch
                facts = [await matching.request_facts(ctx, rid) for rid in ids]
                one_by_one = {
                    f.id: await matching._nearest(ctx, f, reserve=reserve, limit=limit + f.id % 3) for f in facts
                }
                pool = await matching.load_pool(ctx, {f.organization_id for f in facts}, reserve=reserve)
                limits = {f.id: limit + f.id % 3 for f in facts}
                batch = await matching.nearest_many(ctx, facts, limits=limits, pool=pool, now=ctx.now())
                # then each request gets the same volunteers, with the same distance and features, in the same order
                assert batch == one_by_one, (limit, reserve)
        # and the ranked candidates, scores and reasons included, are the same
        for first in (1, 4, 10, 30):
            policy = replace(POLICY, prefilter=max(first, 6))
            expected = {rid: [_seen(c) for c in await matching.candidates(ctx, rid, first, policy)] for rid in ids}
            found = await matching.candidates_many(ctx, ids, first, policy)
            assert {rid: [_seen(c) for c in found[rid]] for rid in ids} == expected, first
            assert any(expected.values())


async def test_a_plan_offers_its_requests_what_the_per_request_search_proposes(make: Factory) -> None:
    # given a generated world
    ids = await _world(make, random.Random(11))
    policy = replace(POLICY, plan_prefilter=4)
    # when the batch is planned
    problem = await planning.gather(make.ctx, ids, policy)
    # then each request's candidate pairs are the per-request search's, active ones first, then the reserve
    # where the active ones cannot fill the request
    for rid in problem.wanted:
        facts = await matching.request_facts(make.ctx, rid)
        active = await matching._nearest(make.ctx, facts, reserve=False, limit=4)
        expected = [(h.volunteer_id, h.distance_km, False) for h in active]
        if len(active) < problem.slots[rid]:
            reserve = await matching._nearest(make.ctx, facts, reserve=True, limit=4)
            expected += [(h.volunteer_id, h.distance_km, True) for h in reserve]
        pairs = [(p.volunteer_id, p.distance_km, p.is_reserve) for p in problem.pairs if p.request_id == rid]
        assert pairs == expected, rid


async def test_a_tie_at_the_cut_is_settled_by_id_both_ways(make: Factory) -> None:
    # given five qualified volunteers at one point and two nearer ones
    community = await make.community(latitude=HERE[0], longitude=HERE[1])
    request = await make.request(community, status=RequestStatus.VERIFIED)
    spot = (HERE[0] + 0.01, HERE[1])
    tied = [await make.volunteer(latitude=spot[0], longitude=spot[1]) for _ in range(5)]
    nearer = [await make.volunteer(latitude=HERE[0] + 0.001 * i, longitude=HERE[1]) for i in (1, 2)]
    await make.commit()
    facts = await matching.request_facts(make.ctx, request.id)
    pool = await matching.load_pool(make.ctx, [facts.organization_id], reserve=False)
    # when the first four are asked for, one by one and as a batch
    single = await matching._nearest(make.ctx, facts, reserve=False, limit=4)
    batch = await matching.nearest_many(make.ctx, [facts], limits={request.id: 4}, pool=pool, now=make.ctx.now())
    # then both give the two nearer ones and the two lowest ids of the tied five
    expected = [v.id for v in nearer] + sorted(v.id for v in tied)[:2]
    assert [h.volunteer_id for h in single] == expected
    assert [h.volunteer_id for h in batch[request.id]] == expected


async def test_planning_takes_the_same_statements_for_three_requests_as_for_twelve(
    make: Factory, statements: StatementCounter
) -> None:
    # given twelve requests and volunteers for all
    community = await make.community(latitude=HERE[0], longitude=HERE[1])
    ids = [(await make.request(community, status=RequestStatus.VERIFIED)).id for _ in range(12)]
    for i in range(15):
        await make.volunteer(latitude=HERE[0] + 0.001 * i, longitude=HERE[1])
    await make.commit()
    counts = []
    for batch in (ids[:3], ids):
        # when a plan is made (each in a transaction of its own)
        await make.ctx.session.rollback()
        before = statements.count
        plan = await planning.plan(make.ctx, batch, POLICY)
        counts.append(statements.count - before)
        assert len(plan.items) == len(batch)
    # then the number of statements does not grow with the batch (no search per request)
    assert counts[0] == counts[1]
