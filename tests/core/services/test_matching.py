"""Candidates for one request: hand-made cases whose right answer is known."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta

import pytest

from core.errors import DomainError
from core.models import CategoryTraining
from core.services import assignments, matching, organizations, planning, volunteers
from core.services.matching_policy import HARD_FILTERS, MatchingPolicy
from core.vocab import Availability, CredentialKind, OrganizationKind, RequestCategory, RequestStatus, VolunteerMode
from tests.conftest import StatementCounter
from tests.factories import Factory

POLICY = MatchingPolicy()
# 粉巷 in 碑林区; a point ~1 km and one ~8 km away.
HERE = (34.2558, 108.9387)
NEAR = (34.2648, 108.9387)
FAR = (34.3278, 108.9387)


async def _ranked(make: Factory, request_id: int, first: int = 10) -> list[matching.Candidate]:
    return await matching.candidates(make.ctx, request_id, first, POLICY)


async def test_the_nearer_qualified_volunteer_wins(make: Factory) -> None:
    # given two equally qualified drivers, one near and one far
    community = await make.community(latitude=HERE[0], longitude=HERE[1])
    request = await make.request(community, status=RequestStatus.VERIFIED, required_skills=["driving"])
    far = await make.volunteer(skills=["driving"], latitude=FAR[0], longitude=FAR[1])
    near = await make.volunteer(skills=["driving"], latitude=NEAR[0], longitude=NEAR[1])
    unskilled = await make.volunteer(skills=["cooking"], latitude=HERE[0], longitude=HERE[1])
    # when candidates are ranked
    ranked = await _ranked(make, request.id)
    # then the near one is first, the far one second, the one without the skill absent; each explained
    assert [c.volunteer_id for c in ranked] == [near.id, far.id]
    assert unskilled.id not in [c.volunteer_id for c in ranked]
    assert ranked[0].distance_km == pytest.approx(1.0, abs=0.1)
    assert {p.component for p in ranked[0].parts} == {"distance", "skills", "load", "reliability", "recency"}
    assert ranked[0].score == pytest.approx(sum(p.value * p.weight for p in ranked[0].parts))


async def test_an_expired_vehicle_pass_excludes(make: Factory, clock) -> None:  # type: ignore[no-untyped-def]
    # given a request needing a vehicle pass at its needed-by time, and two drivers
    community = await make.community(latitude=HERE[0], longitude=HERE[1])
    request = await make.request(
        community,
        status=RequestStatus.VERIFIED,
        required_credentials=["vehicle_pass"],
        needed_by=clock.now + timedelta(hours=6),
    )
    valid = await make.volunteer(latitude=FAR[0], longitude=FAR[1])
    lapsing = await make.volunteer(latitude=NEAR[0], longitude=NEAR[1])
    await volunteers.add_credential(
        make.ctx, valid.id, kind=CredentialKind.VEHICLE_PASS, expires_at=clock.now + timedelta(days=10)
    )
    # the nearer one's pass lapses before the request is needed
    await volunteers.add_credential(
        make.ctx, lapsing.id, kind=CredentialKind.VEHICLE_PASS, expires_at=clock.now + timedelta(hours=2)
    )
    await make.commit()
    # then only the valid pass holder is a candidate
    assert [c.volunteer_id for c in await _ranked(make, request.id)] == [valid.id]


async def test_a_training_the_category_requires_excludes(make: Factory, clock) -> None:  # type: ignore[no-untyped-def]
    training = await volunteers.create_training(make.ctx, code="delivery-safety", name="配送安全")
    make.ctx.session.add(CategoryTraining(category="medicine", training_id=training.id))
    trained, untrained = await make.volunteer(), await make.volunteer()
    await volunteers.record_training(make.ctx, trained.id, training.id, clock.now - timedelta(days=1))
    request = await make.request(status=RequestStatus.VERIFIED, category=RequestCategory.MEDICINE)
    ids = [c.volunteer_id for c in await _ranked(make, request.id)]
    assert trained.id in ids
    assert untrained.id not in ids


async def test_physical_help_needs_someone_offline_and_capacity(make: Factory) -> None:
    request = await make.request(status=RequestStatus.VERIFIED, category=RequestCategory.FOOD)
    online = await make.volunteer(mode=VolunteerMode.ONLINE)
    busy = await make.volunteer(availability="busy")
    full = await make.volunteer(max_concurrent_assignments=1)
    other = await make.request(status=RequestStatus.VERIFIED)
    await assignments.offer(make.ctx, other.id, full.id)
    ok = await make.volunteer()
    await make.commit()
    ids = [c.volunteer_id for c in await _ranked(make, request.id)]
    assert ok.id in ids
    assert not {online.id, busy.id, full.id} & set(ids)


async def test_reserve_volunteers_only_when_active_ones_do_not_suffice(make: Factory) -> None:
    request = await make.request(status=RequestStatus.VERIFIED)
    active = await make.volunteer()
    reserve = await make.volunteer(mode=VolunteerMode.RESERVE)
    # one active volunteer suffices for one candidate
    assert [(c.volunteer_id, c.is_reserve) for c in await _ranked(make, request.id, first=1)] == [(active.id, False)]
    # asking for two brings the reserve in, flagged and after the active one
    assert [(c.volunteer_id, c.is_reserve) for c in await _ranked(make, request.id, first=2)] == [
        (active.id, False),
        (reserve.id, True),
    ]


async def test_a_volunteer_who_declined_is_not_proposed_again(make: Factory) -> None:
    request = await make.request(status=RequestStatus.VERIFIED)
    volunteer = await make.volunteer()
    offer = await assignments.offer(make.ctx, request.id, volunteer.id)
    await assignments.decline(make.ctx, offer.id, "no car")
    await make.commit()
    assert volunteer.id not in [c.volunteer_id for c in await _ranked(make, request.id)]


@pytest.mark.parametrize("status", [RequestStatus.SUBMITTED, RequestStatus.FULFILLED, RequestStatus.CANCELLED])
async def test_unverified_or_closed_requests_are_not_matched(make: Factory, status: RequestStatus) -> None:
    request = await make.request(status=status)
    with pytest.raises(DomainError) as err:
        await _ranked(make, request.id)
    assert err.value.code == "NOT_MATCHABLE"


async def test_fairness_prefers_the_less_loaded_of_two_equals(make: Factory) -> None:
    request = await make.request(status=RequestStatus.VERIFIED)
    loaded = await make.volunteer(max_concurrent_assignments=3)
    idle = await make.volunteer(max_concurrent_assignments=3)
    for _ in range(2):
        await assignments.offer(make.ctx, (await make.request(status=RequestStatus.VERIFIED)).id, loaded.id)
    await make.commit()
    ranked = await _ranked(make, request.id)
    assert [c.volunteer_id for c in ranked][:2] == [idle.id, loaded.id]


# -- matching and the offer agree ----------------------------------------------------------------------------------

SKILLS = ("driving", "nursing", "logistics", "cooking")
CATEGORIES = (RequestCategory.MEDICINE, RequestCategory.FOOD, RequestCategory.PSYCHOLOGICAL, RequestCategory.OTHER)
# A pass as it may stand at the request's time: none, valid, lapsing before, valid only after, open-ended.
PASSES = ("none", "valid", "lapses_before", "starts_after", "no_expiry")
FILTER_CODES = {f.code for f in HARD_FILTERS}


async def _generated_world(make: Factory, rng: random.Random) -> tuple[int, list[int]]:
    """A request with random requirements and 24 volunteers with random attributes (some from another
    organisation, some already at capacity); answers the request's id and the volunteers' ids."""
    now = make.ctx.now()
    training = await volunteers.create_training(make.ctx, code=f"t{rng.randrange(10**6)}", name="培训")
    category = rng.choice(CATEGORIES)
    if rng.random() < 0.6:
        make.ctx.session.add(CategoryTraining(category=category.value, training_id=training.id))
    needed_by = rng.choice([None, now + timedelta(hours=rng.randrange(1, 48))])
    at = needed_by or now
    community = await make.community(latitude=HERE[0], longitude=HERE[1])
    request = await make.request(
        community,
        status=RequestStatus.VERIFIED,
        category=category,
        volunteers_needed=50,
        needed_by=needed_by,
        required_skills=rng.sample(SKILLS, rng.randrange(0, 2)),
        required_credentials=rng.choice([[], ["vehicle_pass"]]),
    )
    # Somewhere for volunteers to be busy: no requirements, room for all.
    filler = await make.request(status=RequestStatus.VERIFIED, category=RequestCategory.OTHER, volunteers_needed=100)
    elsewhere = await organizations.create_organization(
        make.ctx, name=f"别的机构{rng.randrange(10**6)}", kind=OrganizationKind.AGENCY
    )
    people = []
    for i in range(24):
        organization_id = elsewhere.id if i % 8 == 7 else None
        located = rng.random() < 0.8
        volunteer = await make.volunteer(
            organization_id=organization_id,
            mode=rng.choice(list(VolunteerMode)),
            availability=rng.choices(list(Availability), weights=(8, 1, 1))[0],
            skills=rng.sample(SKILLS, rng.randrange(0, 5)),
            max_concurrent_assignments=rng.choice((1, 2)),
            latitude=HERE[0] + rng.uniform(-0.1, 0.1) if located else None,
            longitude=HERE[1] + rng.uniform(-0.1, 0.1) if located else None,
        )
        kind = rng.choice(PASSES)
        if kind != "none":
            valid_from, expires_at = {
                "valid": (at - timedelta(days=3), at + timedelta(days=3)),
                "lapses_before": (at - timedelta(days=3), at - timedelta(minutes=30)),
                "starts_after": (at + timedelta(hours=1), at + timedelta(days=3)),
                "no_expiry": (None, None),
            }[kind]
            await volunteers.add_credential(
                make.ctx, volunteer.id, kind=CredentialKind.VEHICLE_PASS, valid_from=valid_from, expires_at=expires_at
            )
        if rng.random() < 0.5:
            await volunteers.record_training(make.ctx, volunteer.id, training.id, now - timedelta(days=1))
        # Some available ones of the request's organisation already hold all they can.
        can_fill = volunteer.availability == Availability.AVAILABLE and organization_id is None
        if can_fill and volunteer.max_concurrent_assignments == 1 and rng.random() < 0.3:
            await assignments.offer(make.ctx, filler.id, volunteer.id)
        people.append(volunteer.id)
    # Two fixed points so that neither side of the comparison is ever empty.
    people.append((await make.volunteer(availability=Availability.OFF)).id)
    perfect = await make.volunteer(mode=VolunteerMode.OFFLINE, skills=list(SKILLS), latitude=HERE[0], longitude=HERE[1])
    await volunteers.add_credential(make.ctx, perfect.id, kind=CredentialKind.VEHICLE_PASS)
    await volunteers.record_training(make.ctx, perfect.id, training.id, now - timedelta(days=1))
    people.append(perfect.id)
    await make.commit()
    return request.id, people


async def _offer_succeeds(make: Factory, request_id: int, volunteer_id: int) -> str | None:
    """Try the offer in a savepoint and undo it: None if it would stand, else its code."""
    session = make.ctx.session
    savepoint = await session.begin_nested()
    try:
        await assignments.offer(make.ctx, request_id, volunteer_id)
        return None
    except DomainError as exc:
        return exc.code
    finally:
        if savepoint.is_active:
            await savepoint.rollback()


@pytest.mark.parametrize("seed", range(6))
async def test_an_offer_succeeds_exactly_for_the_volunteers_matching_proposes(make: Factory, seed: int) -> None:
    # given a random request and random volunteers (seeded: a failure names its seed)
    request_id, people = await _generated_world(make, random.Random(seed))
    # when matching lists every candidate, and planning every pair, and each volunteer is offered in turn
    proposed = {c.volunteer_id for c in await matching.candidates(make.ctx, request_id, 200, POLICY)}
    pairs = {
        i.volunteer_id
        for i in (await planning.gather(make.ctx, [request_id], replace(POLICY, plan_prefilter=200))).pairs
    }
    outcomes = {vid: await _offer_succeeds(make, request_id, vid) for vid in people}
    # then the offer stands for exactly the proposed volunteers, and is refused for the others by a filter's code
    accepted = {vid for vid, code in outcomes.items() if code is None}
    assert accepted == proposed
    assert {code for code in outcomes.values() if code is not None} <= FILTER_CODES
    # and batch planning proposes exactly them too
    assert pairs == accepted
    assert proposed
    assert len(accepted) < len(people)


async def test_one_search_is_two_statements_with_the_history_in_the_second(
    make: Factory, statements: StatementCounter
) -> None:
    # given a request and more qualified volunteers nearby than the search looks at, one with a history
    community = await make.community(latitude=HERE[0], longitude=HERE[1])
    request = await make.request(community, status=RequestStatus.VERIFIED)
    other = await make.request(community, status=RequestStatus.VERIFIED)
    near = [await make.volunteer(latitude=HERE[0] + 0.001 * i, longitude=HERE[1]) for i in range(4)]
    await assignments.offer(make.ctx, other.id, near[0].id)
    await make.commit()
    await make.ctx.session.connection()  # the transaction (and its row-level security settings) begun
    # when the top three are asked for, searching among the nearest three
    before = statements.count
    ranked = await matching.candidates(make.ctx, request.id, 3, replace(POLICY, prefilter=3))
    # then the request's facts and one search (the nearest with their histories) are all it takes
    assert statements.count - before == 2
    # and the history is in the scores: the one just offered something is not recent, the newcomers are
    recency = {c.volunteer_id: {p.component: p.value for p in c.parts}["recency"] for c in ranked}
    assert recency == {near[0].id: 0.0, near[1].id: 1.0, near[2].id: 1.0}
