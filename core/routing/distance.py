"""Distance and travel-time matrices between points.

`DistanceProvider` is the seam: the solver, the greedy baseline and the checker only see the two integer
matrices it returns. `GreatCircle` is the provider for v1 (no road data on the machine): haversine distance
times a detour factor, at a constant speed. A road-network provider (OSRM, Valhalla, a local graph) can plug in
later by implementing the same `matrix` method; nothing else changes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)

Point = tuple[float, float]  # (latitude, longitude) in degrees


@runtime_checkable
class DistanceProvider(Protocol):
    def matrix(self, points: Sequence[Point]) -> tuple[np.ndarray, np.ndarray]:
        """(metres, seconds): two square int64 arrays, [i, j] = from points[i] to points[j], zero diagonal."""
        ...


@dataclass(frozen=True, slots=True)
class GreatCircle:
    """Haversine distance × `detour` (streets are not straight lines), travelled at `speed_kmh`.

    Seconds are rounded up, so a chain of hops never comes out shorter than the real distance allows."""

    detour: float = 1.3
    speed_kmh: float = 25.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.detour) and self.detour >= 1.0):
            raise ValueError(f"detour must be a finite number >= 1, got {self.detour!r}")
        if not (math.isfinite(self.speed_kmh) and self.speed_kmh > 0):
            raise ValueError(f"speed_kmh must be a finite number > 0, got {self.speed_kmh!r}")

    def matrix(self, points: Sequence[Point]) -> tuple[np.ndarray, np.ndarray]:
        if not points:
            empty = np.zeros((0, 0), dtype=np.int64)
            return empty, empty.copy()
        coords = np.radians(np.asarray(points, dtype=np.float64))
        lat, lng = coords[:, 0], coords[:, 1]
        dlat = lat[:, None] - lat[None, :]
        dlng = lng[:, None] - lng[None, :]
        a = np.sin(dlat / 2) ** 2 + np.cos(lat[:, None]) * np.cos(lat[None, :]) * np.sin(dlng / 2) ** 2
        straight = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
        metres = np.rint(straight * self.detour).astype(np.int64)
        seconds = np.ceil(metres / (self.speed_kmh / 3.6)).astype(np.int64)
        return metres, seconds
