"""An independent checker: re-simulate a Solution against its Problem and list what is wrong.

Shares no code with the solvers on purpose (it reads the matrix and the dataclasses only), so a bug in the
model or in the arrival computation shows up here. Used by the tests and the bench; an empty list = valid.
"""

from __future__ import annotations

import numpy as np

from core.routing.problem import Problem, Solution


def check(problem: Problem, solution: Solution, matrix: tuple[np.ndarray, np.ndarray]) -> list[str]:
    metres, seconds = matrix
    n_drivers = len(problem.drivers)
    driver_at = {d.id: v for v, d in enumerate(problem.drivers)}
    stop_at = {s.id: i for i, s in enumerate(problem.stops)}
    horizon = max((d.shift_end_s for d in problem.drivers), default=0)
    violations: list[str] = []
    seen_stops: set[str] = set()
    seen_drivers: set[str] = set()
    total = 0
    for route in solution.routes:
        if route.driver_id not in driver_at:
            violations.append(f"route for unknown driver {route.driver_id!r}")
            continue
        if route.driver_id in seen_drivers:
            violations.append(f"driver {route.driver_id!r} has two routes")
        seen_drivers.add(route.driver_id)
        v = driver_at[route.driver_id]
        driver = problem.drivers[v]
        if len(route.stop_ids) != len(route.arrivals_s):
            violations.append(f"driver {route.driver_id!r}: stops and arrivals differ in number")
            continue
        node, ready, load = v, driver.shift_start_s, 0
        for stop_id, arrival in zip(route.stop_ids, route.arrivals_s, strict=True):
            if stop_id not in stop_at:
                violations.append(f"driver {route.driver_id!r}: unknown stop {stop_id!r}")
                continue
            if stop_id in seen_stops:
                violations.append(f"stop {stop_id!r} served twice")
            seen_stops.add(stop_id)
            i = stop_at[stop_id]
            stop = problem.stops[i]
            target = n_drivers + i
            total += int(metres[node, target])
            reachable = ready + int(seconds[node, target])
            if arrival < reachable:
                violations.append(
                    f"stop {stop_id!r}: arrival {arrival} s before the driver can be there ({reachable} s)"
                )
            start = stop.window_start_s if stop.window_start_s is not None else 0
            end = stop.window_end_s if stop.window_end_s is not None else horizon
            if arrival < start:
                violations.append(f"stop {stop_id!r}: served at {arrival} s, before its window opens ({start} s)")
            if arrival > end:
                violations.append(f"stop {stop_id!r}: late, served at {arrival} s, window closed at {end} s")
            ready = max(arrival, reachable) + stop.service_s
            load += stop.load
            node = target
        if load > driver.capacity:
            violations.append(f"driver {route.driver_id!r}: load {load} over capacity {driver.capacity}")
        if ready > driver.shift_end_s:
            violations.append(
                f"driver {route.driver_id!r}: finishes at {ready} s, after the shift ({driver.shift_end_s} s)"
            )
    for stop_id in solution.unserved:
        if stop_id not in stop_at:
            violations.append(f"unknown stop {stop_id!r} listed as unserved")
        elif stop_id in seen_stops:
            violations.append(f"stop {stop_id!r} both served and listed as unserved")
    missing = [s.id for s in problem.stops if s.id not in seen_stops and s.id not in solution.unserved]
    if missing:
        violations.append(f"stops neither served nor listed as unserved: {missing}")
    if total != solution.distance_m:
        violations.append(f"distance {solution.distance_m} m reported, {total} m driven")
    return violations
