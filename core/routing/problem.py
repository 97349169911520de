"""The routing problem and its answer: frozen dataclasses, validated on construction.

Times are whole seconds from the plan start; a stop's window is [window_start_s, window_end_s] for the
start of service (None = open on that side); waiting before a window opens is allowed. Loads and capacities are
parcels. The matrix a solver receives is indexed by `Problem.points()` (driver starts, then stops).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from core.routing.distance import Point


class UnservedReason(StrEnum):
    NO_CAPACITY = "NO_CAPACITY"  # the stop's load exceeds every vehicle's capacity
    WINDOW_IMPOSSIBLE = "WINDOW_IMPOSSIBLE"  # no driver can reach it within its window and their shift
    FLEET_EXHAUSTED = "FLEET_EXHAUSTED"  # servable alone, but the plan had no room left for it


def _check_latlng(what: str, latitude: float, longitude: float) -> None:
    if not (math.isfinite(latitude) and -90.0 <= latitude <= 90.0):
        raise ValueError(f"{what}: latitude must be within [-90, 90], got {latitude!r}")
    if not (math.isfinite(longitude) and -180.0 <= longitude <= 180.0):
        raise ValueError(f"{what}: longitude must be within [-180, 180], got {longitude!r}")


def _check_id(what: str, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what}: id must be a non-empty string, got {value!r}")


@dataclass(frozen=True, slots=True)
class Stop:
    id: str
    latitude: float
    longitude: float
    window_start_s: int | None = None
    window_end_s: int | None = None
    service_s: int = 300
    load: int = 1
    critical: bool = False

    def __post_init__(self) -> None:
        what = f"stop {self.id!r}"
        _check_id(what, self.id)
        _check_latlng(what, self.latitude, self.longitude)
        if self.window_start_s is not None and self.window_start_s < 0:
            raise ValueError(f"{what}: window_start_s must be >= 0, got {self.window_start_s}")
        if self.window_end_s is not None and self.window_end_s < 0:
            raise ValueError(f"{what}: window_end_s must be >= 0, got {self.window_end_s}")
        if (
            self.window_start_s is not None
            and self.window_end_s is not None
            and self.window_start_s > self.window_end_s
        ):
            raise ValueError(f"{what}: window starts ({self.window_start_s}) after it ends ({self.window_end_s})")
        if self.service_s < 0:
            raise ValueError(f"{what}: service_s must be >= 0, got {self.service_s}")
        if self.load < 0:
            raise ValueError(f"{what}: load must be >= 0, got {self.load}")

    @property
    def earliest_s(self) -> int:
        return self.window_start_s if self.window_start_s is not None else 0

    def latest_s(self, horizon_s: int) -> int:
        return self.window_end_s if self.window_end_s is not None else horizon_s


@dataclass(frozen=True, slots=True)
class Driver:
    id: str
    start_latitude: float
    start_longitude: float
    shift_start_s: int
    shift_end_s: int
    capacity: int

    def __post_init__(self) -> None:
        what = f"driver {self.id!r}"
        _check_id(what, self.id)
        _check_latlng(what, self.start_latitude, self.start_longitude)
        if self.shift_start_s < 0:
            raise ValueError(f"{what}: shift_start_s must be >= 0, got {self.shift_start_s}")
        if self.shift_start_s > self.shift_end_s:
            raise ValueError(f"{what}: shift starts ({self.shift_start_s}) after it ends ({self.shift_end_s})")
        if self.capacity <= 0:
            raise ValueError(f"{what}: capacity must be > 0, got {self.capacity}")


@dataclass(frozen=True, slots=True)
class Problem:
    stops: tuple[Stop, ...]
    drivers: tuple[Driver, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "stops", tuple(self.stops))
        object.__setattr__(self, "drivers", tuple(self.drivers))
        for kind, items in (("stop", self.stops), ("driver", self.drivers)):
            seen: set[str] = set()
            for item in items:
                if item.id in seen:
                    raise ValueError(f"{kind} id {item.id!r} appears twice")
                seen.add(item.id)

    @property
    def horizon_s(self) -> int:
        """The end of the last shift: an open window closes here."""
        return max((d.shift_end_s for d in self.drivers), default=0)

    def points(self) -> list[Point]:
        """Matrix order: drivers' starts (index = driver position), then stops (index = len(drivers) + i)."""
        return [(d.start_latitude, d.start_longitude) for d in self.drivers] + [
            (s.latitude, s.longitude) for s in self.stops
        ]


@dataclass(frozen=True, slots=True)
class Route:
    driver_id: str
    stop_ids: tuple[str, ...]
    arrivals_s: tuple[int, ...]  # start of service at each stop (after any wait for its window)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stop_ids", tuple(self.stop_ids))
        object.__setattr__(self, "arrivals_s", tuple(self.arrivals_s))
        if len(self.stop_ids) != len(self.arrivals_s):
            raise ValueError(
                f"route of {self.driver_id!r}: {len(self.stop_ids)} stops but {len(self.arrivals_s)} arrivals"
            )


@dataclass(frozen=True, slots=True)
class Solution:
    routes: tuple[Route, ...]
    unserved: Mapping[str, UnservedReason] = field(default_factory=dict)
    distance_m: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "routes", tuple(self.routes))
        object.__setattr__(self, "unserved", MappingProxyType(dict(self.unserved)))

    def __reduce__(self) -> tuple[object, ...]:  # MappingProxyType does not pickle; the pool needs to
        return (Solution, (self.routes, dict(self.unserved), self.distance_m))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Solution):
            return NotImplemented
        return (self.routes, dict(self.unserved), self.distance_m) == (
            other.routes,
            dict(other.unserved),
            other.distance_m,
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def served(self) -> int:
        return sum(len(r.stop_ids) for r in self.routes)


def earliest_arrivals(problem: Problem, seconds: object, driver_index: int, stop_indices: list[int]) -> tuple[int, ...]:
    """Start of service at each stop when the driver leaves at their shift start and never idles except to
    wait for a window. Indices are positions in `problem.drivers` / `problem.stops`."""
    n_drivers = len(problem.drivers)
    driver = problem.drivers[driver_index]
    node, clock, out = driver_index, driver.shift_start_s, []
    for i in stop_indices:
        stop = problem.stops[i]
        clock = max(clock + int(seconds[node, n_drivers + i]), stop.earliest_s)  # type: ignore[index]
        out.append(clock)
        clock += stop.service_s
        node = n_drivers + i
    return tuple(out)


def route_distance(problem: Problem, metres: object, driver_index: int, stop_indices: list[int]) -> int:
    n_drivers = len(problem.drivers)
    node, total = driver_index, 0
    for i in stop_indices:
        total += int(metres[node, n_drivers + i])  # type: ignore[index]
        node = n_drivers + i
    return total
