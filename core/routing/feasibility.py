"""Reasons a stop cannot be served, known before any solve (each stop on its own, against each driver)."""

from __future__ import annotations

import numpy as np

from core.routing.problem import Problem, UnservedReason


def presolve_reasons(problem: Problem, seconds: np.ndarray) -> dict[str, UnservedReason]:
    """NO_CAPACITY: the load exceeds every vehicle. WINDOW_IMPOSSIBLE: no driver, going straight from their
    start at their shift start, reaches the stop by its window's end and finishes it within their shift."""
    reasons: dict[str, UnservedReason] = {}
    n_drivers = len(problem.drivers)
    horizon = problem.horizon_s
    max_capacity = max((d.capacity for d in problem.drivers), default=0)
    for i, stop in enumerate(problem.stops):
        if stop.load > max_capacity:
            reasons[stop.id] = UnservedReason.NO_CAPACITY
            continue
        reachable = False
        for v, driver in enumerate(problem.drivers):
            arrive = max(driver.shift_start_s + int(seconds[v, n_drivers + i]), stop.earliest_s)
            if arrive <= stop.latest_s(horizon) and arrive + stop.service_s <= driver.shift_end_s:
                reachable = True
                break
        if not reachable:
            reasons[stop.id] = UnservedReason.WINDOW_IMPOSSIBLE
    return reasons
