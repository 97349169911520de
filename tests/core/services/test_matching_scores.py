"""Candidate scores against numbers worked out by hand from the documented rule, written as literals.

The spec, from README.md "Matching volunteers" and core/services/matching_policy.py, with the parts that
are documented nowhere else stated here (they are what these tests hold the code to):

- `score` = Σ weight × value over the components distance, skills, load, reliability, recency; default
  weights distance=0.4, skills=0.2, load=0.15, reliability=0.15, recency=0.1 (README), overridable with
  `MatchingPolicy(weights=…)` or `YUNSHEGONG_MATCH_WEIGHTS`. Each value is in [0, 1] and is reported
  rounded to 4 decimals; the score is the sum of the rounded values times their weights, to 6 decimals.
- distance: 1 − km / max_distance_km (30 km, matching_policy.py), 0 beyond 30 km ("Beyond this the
  distance component is 0"); a volunteer without a location gets 0.5. The distance is the great-circle
  distance of PostgreSQL's earthdistance on a sphere of radius earth() = 6378168 m, so a pure latitude
  difference of Δ degrees at fixed longitude is 6378.168 km × Δ × π/180 = 111.3195 km × Δ.
- skills: the share of the wanted skills the volunteer holds; wanted = the category's preferred skills
  (matching_policy.py) ∪ the request's required skills; 1.0 when nothing is wanted. (Holding every
  required skill is a hard filter, so partial overlap comes from the preferred skills.)
- load: 1 − active assignments (offered or accepted) / the volunteer's maximum.
- reliability: README "(completed + 1) / (accepted + 2)", where accepted counts every assignment the
  volunteer accepted (those still accepted and those completed): a newcomer starts at 0.5 (neither helped
  nor hurt), and one success is evidence, not certainty (1 of 1 → 2/3).
- recency: the time since the volunteer's last assignment (the last offer made to them, whatever became
  of it) in weeks, capped at 1: min(1, days / 7); 1.0 with no assignment ever. Spreading work favours
  those who have waited longest.
- order: score, highest first (active volunteers before reserves, ties by distance then id).

Unless a case says otherwise a volunteer here is a newcomer (reliability 0.5) never offered anything
(recency 1.0, load 0 / 3 → 1.0) and the request is category `other` without required skills (nothing
wanted → skills 1.0), so with default weights:
    score = 0.4 × distance + 0.2 × 1.0 + 0.15 × 1.0 + 0.15 × 0.5 + 0.1 × 1.0 = 0.4 × distance + 0.525
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from core.services import assignments, help_requests, matching
from core.services.matching_policy import MatchingPolicy
from core.vocab import RequestCategory, RequestStatus
from tests.conftest import Clock
from tests.factories import Factory
from tests.schema.helpers import gid

DEFAULT = MatchingPolicy()
DEFAULT_WEIGHTS = {"distance": 0.4, "skills": 0.2, "load": 0.15, "reliability": 0.15, "recency": 0.1}
# Values are reported to 4 decimals: allow one unit in the last place (and no more: 0.001 km ≈ 0.00003).
TOL = 1e-4
HERE = (34.2558, 108.9387)  # 粉巷, 碑林区


def north(degrees: float) -> dict[str, float]:
    """A point `degrees` of latitude north of HERE, at the same longitude (a meridian arc)."""
    return {"latitude": HERE[0] + degrees, "longitude": HERE[1]}


def values(candidate: matching.Candidate) -> dict[str, float]:
    return {p.component: p.value for p in candidate.parts}


def weights(candidate: matching.Candidate) -> dict[str, float]:
    return {p.component: p.weight for p in candidate.parts}


async def ranked(make: Factory, request_id: int, policy: MatchingPolicy = DEFAULT) -> list[matching.Candidate]:
    # No expunge or refresh here: a decline or completion changes volunteers.active_assignments by trigger
    # in this same session, and ranking must read the current load (selected with the search, matching.Hit).
    return await matching.candidates(make.ctx, request_id, 10, policy)


async def busy_with(make: Factory, volunteer_id: int, count: int) -> None:
    """`count` offers (still pending) to other requests: `count` active assignments."""
    for _ in range(count):
        other = await make.request(status=RequestStatus.VERIFIED, category=RequestCategory.OTHER)
        await assignments.offer(make.ctx, other.id, volunteer_id)
    await make.commit()


async def offered_and_declined_at(make: Factory, clock: Clock, volunteer_id: int, when: datetime) -> None:
    """An offer made at `when` and declined: an assignment in the history, none active, none accepted."""
    saved, clock.now = clock.now, when
    other = await make.request(status=RequestStatus.VERIFIED, category=RequestCategory.OTHER)
    offer = await assignments.offer(make.ctx, other.id, volunteer_id)
    await assignments.decline(make.ctx, offer.id, "not this time")
    await make.commit()
    clock.now = saved


async def test_distance_falls_linearly_to_zero_at_30_km(make: Factory) -> None:
    # given a request at HERE and four otherwise identical newcomers: 0.009°, 0.09° and 0.3° north, and
    # one without a location
    community = await make.community(latitude=HERE[0], longitude=HERE[1])
    request = await make.request(community, status=RequestStatus.VERIFIED, category=RequestCategory.OTHER)
    near = await make.volunteer(**north(0.009))
    mid = await make.volunteer(**north(0.09))
    far = await make.volunteer(**north(0.3))
    nowhere = await make.volunteer()
    # when candidates are ranked
    found = await ranked(make, request.id)
    by_id = {c.volunteer_id: c for c in found}
    # then, with 111.3195 km per degree of latitude:
    #   near:    0.009° → 1.00188 km → 1 − 1.00188 / 30 = 0.96660 → 0.9666; score 0.4 × 0.9666 + 0.525 = 0.91164
    #   mid:     0.09°  → 10.0188 km → 1 − 10.0188 / 30 = 0.66604 → 0.6660; score 0.4 × 0.6660 + 0.525 = 0.7914
    #   far:     0.3°   → 33.396 km  → beyond 30 km → 0;                   score 0.4 × 0      + 0.525 = 0.525
    #   nowhere: no location → 0.5;                                        score 0.4 × 0.5    + 0.525 = 0.725
    assert [c.volunteer_id for c in found] == [near.id, mid.id, nowhere.id, far.id]
    assert by_id[near.id].distance_km == pytest.approx(1.00188, abs=1e-3)
    assert by_id[mid.id].distance_km == pytest.approx(10.0188, abs=1e-3)
    assert by_id[far.id].distance_km == pytest.approx(33.396, abs=1e-3)
    assert by_id[nowhere.id].distance_km is None
    expected = {near.id: (0.9666, 0.91164), mid.id: (0.6660, 0.7914), far.id: (0.0, 0.525), nowhere.id: (0.5, 0.725)}
    for vid, (distance, score) in expected.items():
        candidate = by_id[vid]
        assert values(candidate) == pytest.approx(
            {"distance": distance, "skills": 1.0, "load": 1.0, "reliability": 0.5, "recency": 1.0}, abs=TOL
        )
        assert weights(candidate) == DEFAULT_WEIGHTS
        assert candidate.score == pytest.approx(score, abs=TOL)


async def test_skill_overlap_counts_the_categorys_preferred_skills_too(make: Factory) -> None:
    # given a medicine request needing first aid; medicine prefers driving, pharmacy and nursing, so four
    # skills are wanted: {first_aid, driving, pharmacy, nursing}; everyone stands at the request (distance 1.0)
    community = await make.community(latitude=HERE[0], longitude=HERE[1])
    request = await make.request(
        community, status=RequestStatus.VERIFIED, category=RequestCategory.MEDICINE, required_skills=["first_aid"]
    )
    at = north(0.0)
    one = await make.volunteer(skills=["first_aid"], **at)
    two = await make.volunteer(skills=["first_aid", "driving", "cooking"], **at)  # cooking is not wanted
    three = await make.volunteer(skills=["first_aid", "pharmacy", "nursing"], **at)
    all_four = await make.volunteer(skills=["first_aid", "driving", "pharmacy", "nursing"], **at)
    lacking = await make.volunteer(skills=["driving", "pharmacy", "nursing"], **at)  # no first aid: filtered out
    # when candidates are ranked
    found = await ranked(make, request.id)
    by_id = {c.volunteer_id: c for c in found}
    # then skills = held ∩ wanted / 4, and score = 0.4 × 1.0 + 0.2 × skills + 0.15 × 1.0 + 0.15 × 0.5 + 0.1 × 1.0
    #                                            = 0.725 + 0.2 × skills
    #   one:      1/4 = 0.25 → 0.725 + 0.05 = 0.775
    #   two:      2/4 = 0.5  → 0.725 + 0.10 = 0.825
    #   three:    3/4 = 0.75 → 0.725 + 0.15 = 0.875
    #   all_four: 4/4 = 1.0  → 0.725 + 0.20 = 0.925
    assert [c.volunteer_id for c in found] == [all_four.id, three.id, two.id, one.id]
    assert lacking.id not in by_id
    for vid, skills, score in [
        (one.id, 0.25, 0.775),
        (two.id, 0.5, 0.825),
        (three.id, 0.75, 0.875),
        (all_four.id, 1.0, 0.925),
    ]:
        assert values(by_id[vid]) == pytest.approx(
            {"distance": 1.0, "skills": skills, "load": 1.0, "reliability": 0.5, "recency": 1.0}, abs=TOL
        )
        assert by_id[vid].score == pytest.approx(score, abs=TOL)


async def test_load_is_the_share_of_capacity_still_free(make: Factory, clock: Clock) -> None:
    # given three volunteers at the request: 1 of 4 assignments active, 1 of 2, 2 of 3
    community = await make.community(latitude=HERE[0], longitude=HERE[1])
    request = await make.request(community, status=RequestStatus.VERIFIED, category=RequestCategory.OTHER)
    quarter = await make.volunteer(max_concurrent_assignments=4, **north(0.0))
    half = await make.volunteer(max_concurrent_assignments=2, **north(0.0))
    mostly = await make.volunteer(max_concurrent_assignments=3, **north(0.0))
    await busy_with(make, quarter.id, 1)
    await busy_with(make, half.id, 1)
    await busy_with(make, mostly.id, 2)
    # a week later (so the offers no longer weigh on recency: 7 days / 7 = 1.0; pending offers are not
    # accepted ones, so reliability stays 0.5)
    clock.now += timedelta(days=7)
    # when candidates are ranked
    found = await ranked(make, request.id)
    by_id = {c.volunteer_id: c for c in found}
    # then load = 1 − active / maximum, and score = 0.4 + 0.2 + 0.15 × load + 0.075 + 0.1 = 0.775 + 0.15 × load
    #   quarter: 1 − 1/4 = 0.75   → 0.775 + 0.1125   = 0.8875
    #   half:    1 − 1/2 = 0.5    → 0.775 + 0.075    = 0.85
    #   mostly:  1 − 2/3 = 0.3333 → 0.775 + 0.049995 = 0.824995
    assert [c.volunteer_id for c in found] == [quarter.id, half.id, mostly.id]
    for vid, load, score in [(quarter.id, 0.75, 0.8875), (half.id, 0.5, 0.85), (mostly.id, 0.3333, 0.824995)]:
        assert values(by_id[vid]) == pytest.approx(
            {"distance": 1.0, "skills": 1.0, "load": load, "reliability": 0.5, "recency": 1.0}, abs=TOL
        )
        assert by_id[vid].score == pytest.approx(score, abs=TOL)


async def test_recency_is_weeks_since_the_last_offer_capped_at_one(make: Factory, clock: Clock) -> None:
    # given volunteers at the request whose last offer (declined, so none is active or accepted) was
    # 1 day, 2 days (after another 10 days ago), 3.5 days and 10 days ago, and one never offered anything
    now = clock.now
    community = await make.community(latitude=HERE[0], longitude=HERE[1])
    day = await make.volunteer(**north(0.0))
    two_days = await make.volunteer(**north(0.0))
    half_week = await make.volunteer(**north(0.0))
    long_ago = await make.volunteer(**north(0.0))
    never = await make.volunteer(**north(0.0))
    await offered_and_declined_at(make, clock, long_ago.id, now - timedelta(days=10))
    await offered_and_declined_at(make, clock, two_days.id, now - timedelta(days=10))
    await offered_and_declined_at(make, clock, half_week.id, now - timedelta(days=3, hours=12))
    await offered_and_declined_at(make, clock, two_days.id, now - timedelta(days=2))
    await offered_and_declined_at(make, clock, day.id, now - timedelta(days=1))
    request = await make.request(community, status=RequestStatus.VERIFIED, category=RequestCategory.OTHER)
    # when candidates are ranked
    found = await ranked(make, request.id)
    by_id = {c.volunteer_id: c for c in found}
    # then recency = min(1, days / 7), and score = 0.4 + 0.2 + 0.15 + 0.075 + 0.1 × recency = 0.825 + 0.1 × recency
    #   day:       1 / 7 = 0.1429              → 0.825 + 0.01429 = 0.83929
    #   two_days:  2 / 7 = 0.2857 (the last)   → 0.825 + 0.02857 = 0.85357
    #   half_week: 3.5 / 7 = 0.5               → 0.825 + 0.05    = 0.875
    #   long_ago:  10 / 7 → capped at 1.0      → 0.825 + 0.1     = 0.925
    #   never:     no assignment → 1.0         → 0.925 (tied with long_ago; the lower id first)
    assert [c.volunteer_id for c in found] == [long_ago.id, never.id, half_week.id, two_days.id, day.id]
    for vid, recency, score in [
        (day.id, 0.1429, 0.83929),
        (two_days.id, 0.2857, 0.85357),
        (half_week.id, 0.5, 0.875),
        (long_ago.id, 1.0, 0.925),
        (never.id, 1.0, 0.925),
    ]:
        assert values(by_id[vid]) == pytest.approx(
            {"distance": 1.0, "skills": 1.0, "load": 1.0, "reliability": 0.5, "recency": recency}, abs=TOL
        )
        assert by_id[vid].score == pytest.approx(score, abs=TOL)


async def _completed(make: Factory, volunteer_id: int) -> None:
    """An assignment the volunteer accepted and completed."""
    other = await make.request(status=RequestStatus.VERIFIED, category=RequestCategory.OTHER)
    offer = await assignments.offer(make.ctx, other.id, volunteer_id)
    await assignments.accept(make.ctx, offer.id)
    await help_requests.start(make.ctx, other.id)
    await assignments.complete(make.ctx, offer.id, Decimal("2"))
    await make.commit()


async def test_a_volunteer_who_completed_what_they_accepted_ranks_above_a_newcomer(make: Factory, clock: Clock) -> None:
    # given two volunteers at the request, one who completed the one assignment they accepted a week ago
    # and a newcomer (the order holds however a completed record is valued, as long as it beats 0.5)
    community = await make.community(latitude=HERE[0], longitude=HERE[1])
    request = await make.request(community, status=RequestStatus.VERIFIED, category=RequestCategory.OTHER)
    newcomer = await make.volunteer(**north(0.0))
    proven = await make.volunteer(**north(0.0))
    await _completed(make, proven.id)
    clock.now += timedelta(days=7)
    # when candidates are ranked
    found = await ranked(make, request.id)
    # then the proven one is first, and the newcomer scores 0.4 + 0.2 + 0.15 + 0.15 × 0.5 + 0.1 = 0.925
    assert [c.volunteer_id for c in found] == [proven.id, newcomer.id]
    assert values(found[1])["reliability"] == pytest.approx(0.5, abs=TOL)
    assert found[1].score == pytest.approx(0.925, abs=TOL)
    assert values(found[0])["reliability"] > 0.5


async def test_reliability_is_smoothed_completed_over_accepted(make: Factory, clock: Clock) -> None:
    # given a volunteer at the request who completed the one assignment they accepted, a week ago
    community = await make.community(latitude=HERE[0], longitude=HERE[1])
    request = await make.request(community, status=RequestStatus.VERIFIED, category=RequestCategory.OTHER)
    proven = await make.volunteer(**north(0.0))
    await _completed(make, proven.id)
    clock.now += timedelta(days=7)
    # when candidates are ranked
    (candidate,) = await ranked(make, request.id)
    # then reliability = (completed + 1) / (accepted + 2) = 2 / 3 = 0.6667 (README: a newcomer starts at
    # 0.5, one success is evidence, not certainty); load 0 / 3 → 1.0; recency 7 / 7 = 1.0; and
    # score = 0.4 × 1.0 + 0.2 × 1.0 + 0.15 × 1.0 + 0.15 × 0.6667 + 0.1 × 1.0 = 0.95
    assert values(candidate) == pytest.approx(
        {"distance": 1.0, "skills": 1.0, "load": 1.0, "reliability": 0.6667, "recency": 1.0}, abs=TOL
    )
    assert candidate.score == pytest.approx(0.95, abs=TOL)


async def _near_but_busy_scene(make: Factory, clock: Clock) -> tuple[int, int, int, int]:
    """A request at HERE; `near` 0.009° north with 1 of 2 assignments active, `farther` 0.027° north and
    idle, `nowhere` idle without a location; a week after the offers (recency 1.0 for all)."""
    community = await make.community(latitude=HERE[0], longitude=HERE[1])
    request = await make.request(community, status=RequestStatus.VERIFIED, category=RequestCategory.OTHER)
    near = await make.volunteer(max_concurrent_assignments=2, **north(0.009))
    farther = await make.volunteer(max_concurrent_assignments=2, **north(0.027))
    nowhere = await make.volunteer(max_concurrent_assignments=2)
    await busy_with(make, near.id, 1)
    clock.now += timedelta(days=7)
    return request.id, near.id, farther.id, nowhere.id


async def test_the_nearer_volunteer_loses_on_load_with_the_default_weights(make: Factory, clock: Clock) -> None:
    # given the near-but-busy scene
    request_id, near, farther, nowhere = await _near_but_busy_scene(make, clock)
    # when ranked with the default weights
    found = await ranked(make, request_id)
    by_id = {c.volunteer_id: c for c in found}
    # then (0.009° → 1.00188 km → 0.9666; 0.027° → 3.00564 km → 1 − 3.00564 / 30 = 0.8998):
    #   farther: 0.4 × 0.8998 + 0.2 + 0.15 × 1.0        + 0.075 + 0.1 = 0.35992 + 0.525 = 0.88492
    #   near:    0.4 × 0.9666 + 0.2 + 0.15 × (1 − 1/2) + 0.075 + 0.1 = 0.38664 + 0.45  = 0.83664
    #   nowhere: 0.4 × 0.5    + 0.2 + 0.15 × 1.0        + 0.075 + 0.1 = 0.2     + 0.525 = 0.725
    # distance gains the near one 0.4 × (0.9666 − 0.8998) = 0.02672, half its capacity costs 0.15 × 0.5 = 0.075
    assert [c.volunteer_id for c in found] == [farther, near, nowhere]
    for vid, distance, load, score in [
        (farther, 0.8998, 1.0, 0.88492),
        (near, 0.9666, 0.5, 0.83664),
        (nowhere, 0.5, 1.0, 0.725),
    ]:
        assert values(by_id[vid]) == pytest.approx(
            {"distance": distance, "skills": 1.0, "load": load, "reliability": 0.5, "recency": 1.0}, abs=TOL
        )
        assert weights(by_id[vid]) == DEFAULT_WEIGHTS
        assert by_id[vid].score == pytest.approx(score, abs=TOL)


async def test_distance_heavy_weights_put_the_nearer_one_first(
    make: Factory, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the same scene, and weights configured as the README documents
    monkeypatch.setenv("YUNSHEGONG_MATCH_WEIGHTS", "distance=0.8,skills=0.05,load=0.05,reliability=0.05,recency=0.05")
    policy = MatchingPolicy.from_env()
    request_id, near, farther, nowhere = await _near_but_busy_scene(make, clock)
    # when ranked with those weights
    found = await ranked(make, request_id, policy)
    by_id = {c.volunteer_id: c for c in found}
    # then the component values are unchanged, only the weights differ:
    #   near:    0.8 × 0.9666 + 0.05 × 1.0 + 0.05 × 0.5 + 0.05 × 0.5 + 0.05 × 1.0 = 0.77328 + 0.15 = 0.92328
    #   farther: 0.8 × 0.8998 + 0.05 × 1.0 + 0.05 × 1.0 + 0.05 × 0.5 + 0.05 × 1.0 = 0.71984 + 0.175 = 0.89484
    #   nowhere: 0.8 × 0.5    + 0.05 × 1.0 + 0.05 × 1.0 + 0.05 × 0.5 + 0.05 × 1.0 = 0.4     + 0.175 = 0.575
    assert [c.volunteer_id for c in found] == [near, farther, nowhere]
    for vid, distance, load, score in [
        (near, 0.9666, 0.5, 0.92328),
        (farther, 0.8998, 1.0, 0.89484),
        (nowhere, 0.5, 1.0, 0.575),
    ]:
        assert values(by_id[vid]) == pytest.approx(
            {"distance": distance, "skills": 1.0, "load": load, "reliability": 0.5, "recency": 1.0}, abs=TOL
        )
        assert weights(by_id[vid]) == {
            "distance": 0.8,
            "skills": 0.05,
            "load": 0.05,
            "reliability": 0.05,
            "recency": 0.05,
        }
        assert by_id[vid].score == pytest.approx(score, abs=TOL)


async def test_match_candidates_over_graphql_report_the_same_numbers(  # type: ignore[no-untyped-def]
    gql, app_state, make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the default weights whatever the environment says, a request at HERE and a newcomer 0.009° north
    monkeypatch.setattr(app_state, "policy", MatchingPolicy())
    community = await make.community(latitude=HERE[0], longitude=HERE[1])
    request = await make.request(community, status=RequestStatus.VERIFIED, category=RequestCategory.OTHER)
    volunteer = await make.volunteer(**north(0.009))
    # when matchCandidates is queried
    data = await gql(
        "query($id: ID!) { matchCandidates(requestId: $id, first: 5) { score distanceKm "
        "volunteer { id } breakdown { component value weight contribution } } }",
        {"id": gid("HelpRequest", request.id)},
    )
    # then 1.00188 km → distance 1 − 1.00188 / 30 = 0.9666, contribution 0.4 × 0.9666 = 0.38664; skills 1.0 × 0.2;
    # load 1.0 × 0.15; reliability 0.5 × 0.15 = 0.075; recency 1.0 × 0.1; score 0.38664 + 0.525 = 0.91164
    (candidate,) = data["matchCandidates"]
    assert candidate["volunteer"]["id"] == gid("Volunteer", volunteer.id)
    assert candidate["distanceKm"] == pytest.approx(1.00188, abs=1e-3)
    assert candidate["score"] == pytest.approx(0.91164, abs=TOL)
    assert [(p["component"], p["weight"]) for p in candidate["breakdown"]] == list(DEFAULT_WEIGHTS.items())
    assert {p["component"]: p["value"] for p in candidate["breakdown"]} == pytest.approx(
        {"distance": 0.9666, "skills": 1.0, "load": 1.0, "reliability": 0.5, "recency": 1.0}, abs=TOL
    )
    assert {p["component"]: p["contribution"] for p in candidate["breakdown"]} == pytest.approx(
        {"distance": 0.38664, "skills": 0.2, "load": 0.15, "reliability": 0.075, "recency": 0.1}, abs=TOL
    )
