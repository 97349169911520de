"""How candidates are ranked and when requests are overdue. Everything here is configuration."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import timedelta

from core.vocab import RequestCategory, Urgency

# Categories whose help is delivered in person: online volunteers cannot do them.
PHYSICAL = frozenset(
    {
        RequestCategory.MEDICINE,
        RequestCategory.FOOD,
        RequestCategory.DAILY_SUPPLIES,
        RequestCategory.MEDICAL_CARE,
        RequestCategory.EPIDEMIC_PREVENTION_SUPPLIES,
    }
)


@dataclass(frozen=True)
class Targets:
    """Time allowed per stage; fulfilment is also bounded by the request's own needed-by time."""

    verify: timedelta
    match: timedelta
    fulfil: timedelta


@dataclass(frozen=True)
class MatchingPolicy:
    # Soft-score weights; each component is in [0, 1] and the score is their weighted sum.
    weights: dict[str, float] = field(
        default_factory=lambda: {
            "distance": 0.40,
            "skills": 0.20,
            "load": 0.15,
            "reliability": 0.15,
            "recency": 0.10,
        }
    )
    # Beyond this the distance component is 0.
    max_distance_km: float = 30.0
    # Nearest qualified volunteers considered per request before scoring (the KNN prefilter).
    prefilter: int = 40
    # Per request in batch planning: fewer, since the solver sees every request's list at once.
    plan_prefilter: int = 10
    # Skills that make a volunteer better suited to a category (beyond the request's required skills).
    preferred_skills: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {
            RequestCategory.MEDICINE: ("driving", "pharmacy", "nursing"),
            RequestCategory.MEDICAL_CARE: ("driving", "nursing", "first_aid"),
            RequestCategory.FOOD: ("driving", "logistics"),
            RequestCategory.DAILY_SUPPLIES: ("driving", "logistics", "childcare"),
            RequestCategory.EPIDEMIC_PREVENTION_SUPPLIES: ("logistics", "warehouse", "driving"),
            RequestCategory.PSYCHOLOGICAL: ("psychological_counseling",),
        }
    )
    offer_ttl: timedelta = timedelta(minutes=30)
    targets: dict[str, Targets] = field(
        default_factory=lambda: {
            Urgency.CRITICAL: Targets(timedelta(minutes=30), timedelta(hours=1), timedelta(hours=6)),
            Urgency.HIGH: Targets(timedelta(hours=2), timedelta(hours=4), timedelta(hours=24)),
            Urgency.NORMAL: Targets(timedelta(hours=8), timedelta(hours=24), timedelta(hours=72)),
            Urgency.LOW: Targets(timedelta(hours=24), timedelta(hours=72), timedelta(days=7)),
        }
    )

    @classmethod
    def from_env(cls) -> MatchingPolicy:
        """YUNSHEGONG_MATCH_WEIGHTS="distance=0.5,skills=0.2,…", YUNSHEGONG_OFFER_TTL_MINUTES=30."""
        policy = cls()
        raw = os.environ.get("YUNSHEGONG_MATCH_WEIGHTS")
        if raw:
            weights = dict(policy.weights)
            for part in raw.split(","):
                key, _, value = part.partition("=")
                if key.strip() not in weights:
                    raise ValueError(f"unknown matching weight {key!r}; known: {sorted(weights)}")
                weights[key.strip()] = float(value)
            policy = replace(policy, weights=weights)
        ttl = os.environ.get("YUNSHEGONG_OFFER_TTL_MINUTES")
        if ttl:
            policy = replace(policy, offer_ttl=timedelta(minutes=int(ttl)))
        raw_targets = os.environ.get("YUNSHEGONG_TARGETS")
        if raw_targets:
            policy = replace(policy, targets=parse_targets(raw_targets, policy.targets))
        return policy


def parse_targets(raw: str, defaults: dict[str, Targets]) -> dict[str, Targets]:
    """`critical=30/60/360,high=120/240/1440`: minutes to verify / match / fulfil, per urgency."""
    targets = dict(defaults)
    for part in raw.split(","):
        urgency, _, minutes = part.partition("=")
        if urgency.strip() not in {u.value for u in Urgency}:
            raise ValueError(f"unknown urgency {urgency!r} in YUNSHEGONG_TARGETS")
        verify, match, fulfil = (timedelta(minutes=int(m)) for m in minutes.split("/"))
        targets[Urgency(urgency.strip())] = Targets(verify, match, fulfil)
    return targets
