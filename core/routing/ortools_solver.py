"""The OR-Tools routing model for delivery runs.

Nodes: the drivers' starts, the servable stops, and one dummy end every route finishes at for free (open
routes: a driver ends at their last stop). Arc cost = metres (`RegisterTransitMatrix`, no Python callback in
the search). A "time" dimension (travel seconds + service at the from-node; slack = waiting) carries the stop
windows and the shifts (the end's cumul is the last stop's finish); a "load" dimension carries the capacities.
Every stop is a disjunction with a penalty above anything serving it could cost (critical ×10), so when the
fleet cannot take everything the solver drops stops and says so (FLEET_EXHAUSTED) instead of failing.
Search: PARALLEL_CHEAPEST_INSERTION, then GUIDED_LOCAL_SEARCH until the time limit.

The solve holds the GIL for its whole duration: call it from `core.routing.pool`, not on the event loop.
Stops that no driver could serve alone (NO_CAPACITY, WINDOW_IMPOSSIBLE) never enter the model.
"""

from __future__ import annotations

import numpy as np

from core.routing.feasibility import presolve_reasons
from core.routing.problem import Problem, Route, Solution, UnservedReason, earliest_arrivals, route_distance


def solve(problem: Problem, matrix: tuple[np.ndarray, np.ndarray], time_limit_s: float) -> Solution:
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2  # ~0.15 s to import: only when solving

    if time_limit_s <= 0:
        raise ValueError(f"time_limit_s must be > 0, got {time_limit_s!r}")
    metres, seconds = matrix
    n_drivers = len(problem.drivers)
    unserved: dict[str, UnservedReason] = presolve_reasons(problem, seconds)
    candidates = [i for i, s in enumerate(problem.stops) if s.id not in unserved]
    if not candidates or not n_drivers:
        return Solution((), unserved, 0)

    # model nodes: 0..n_drivers-1 = starts, then candidates, then the dummy end
    full = list(range(n_drivers)) + [n_drivers + i for i in candidates]
    n = len(full) + 1
    end = n - 1
    dist = np.zeros((n, n), dtype=np.int64)
    dist[: n - 1, : n - 1] = metres[np.ix_(full, full)]
    travel = np.zeros((n, n), dtype=np.int64)
    travel[: n - 1, : n - 1] = seconds[np.ix_(full, full)]
    service = np.zeros(n, dtype=np.int64)
    service[n_drivers : n - 1] = [problem.stops[i].service_s for i in candidates]
    travel = travel + service[:, None]  # service at the from-node (so the end's cumul = last finish)
    travel[end, :] = 0
    horizon = problem.horizon_s

    manager = pywrapcp.RoutingIndexManager(n, n_drivers, list(range(n_drivers)), [end] * n_drivers)
    routing = pywrapcp.RoutingModel(manager)
    dist_cb = routing.RegisterTransitMatrix(dist.tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(dist_cb)
    time_cb = routing.RegisterTransitMatrix(travel.tolist())
    routing.AddDimension(time_cb, horizon, horizon, False, "time")
    time_dim = routing.GetDimensionOrDie("time")
    demand = [0] * n
    for k, i in enumerate(candidates):
        demand[n_drivers + k] = problem.stops[i].load
    load_cb = routing.RegisterUnaryTransitVector(demand)
    routing.AddDimensionWithVehicleCapacity(load_cb, 0, [d.capacity for d in problem.drivers], True, "load")

    # Dropping a stop must cost more than serving it could: a detour is at most twice the longest hop.
    penalty = max(1_000_000, 4 * int(dist.max()) + 1)
    for k, i in enumerate(candidates):
        stop = problem.stops[i]
        index = manager.NodeToIndex(n_drivers + k)
        time_dim.CumulVar(index).SetRange(stop.earliest_s, stop.latest_s(horizon))
        routing.AddDisjunction([index], penalty * (10 if stop.critical else 1))
    for v, driver in enumerate(problem.drivers):
        time_dim.CumulVar(routing.Start(v)).SetRange(driver.shift_start_s, driver.shift_end_s)
        time_dim.CumulVar(routing.End(v)).SetRange(driver.shift_start_s, driver.shift_end_s)

    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    params.time_limit.FromMilliseconds(max(1, int(time_limit_s * 1000)))
    assignment = routing.SolveWithParameters(params)

    orders: list[list[int]] = [[] for _ in problem.drivers]
    if assignment is not None:
        for v in range(n_drivers):
            index = routing.Start(v)
            while not routing.IsEnd(index):
                node = manager.IndexToNode(index)
                if n_drivers <= node < end:
                    orders[v].append(candidates[node - n_drivers])
                index = assignment.Value(routing.NextVar(index))
    served = {i for order in orders for i in order}
    for i in candidates:
        if i not in served:
            unserved[problem.stops[i].id] = UnservedReason.FLEET_EXHAUSTED
    # Arrivals are recomputed from the order (earliest service starts): the model's cumuls may sit anywhere
    # in their slack, the earliest schedule is the one a driver follows.
    routes = tuple(
        Route(
            driver.id,
            tuple(problem.stops[i].id for i in orders[v]),
            earliest_arrivals(problem, seconds, v, orders[v]),
        )
        for v, driver in enumerate(problem.drivers)
        if orders[v]
    )
    distance = sum(route_distance(problem, metres, v, orders[v]) for v in range(n_drivers))
    return Solution(routes, unserved, distance)
