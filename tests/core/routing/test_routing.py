"""The pure routing layer: problem validation, pre-solve reasons, greedy and OR-Tools plans, the checker."""

from __future__ import annotations

import dataclasses
import random

import pytest

from core.routing import greedy, ortools_solver, pool
from core.routing.check import check
from core.routing.distance import DistanceProvider, GreatCircle
from core.routing.problem import Driver, Problem, Route, Solution, Stop, UnservedReason

HOUR = 3600
PROVIDER = GreatCircle()
BASE = (30.55, 114.30)  # Wuhan


def _stop(id: str, dlat: float = 0.0, dlng: float = 0.0, **kw: object) -> Stop:
    return Stop(id, BASE[0] + dlat, BASE[1] + dlng, **kw)  # type: ignore[arg-type]


def _driver(id: str, capacity: int = 10, shift: tuple[int, int] = (0, 8 * HOUR)) -> Driver:
    return Driver(id, BASE[0], BASE[1], shift[0], shift[1], capacity)


def _random_problem(seed: int, n_stops: int = 30, n_drivers: int = 4) -> Problem:
    rng = random.Random(seed)
    stops = []
    for i in range(n_stops):
        kind = rng.random()
        start, end = (None, None)
        if kind < 0.3:
            start = rng.randrange(0, 4 * HOUR, 1800)
            end = start + 2 * HOUR
        elif kind < 0.6:
            end = rng.choice([3, 4, 5]) * HOUR
        stops.append(
            _stop(
                f"s{i}",
                rng.gauss(0, 0.03),
                rng.gauss(0, 0.03),
                window_start_s=start,
                window_end_s=end,
                load=rng.choice([1, 2, 3]),
                critical=rng.random() < 0.15,
            )
        )
    drivers = [_driver(f"d{v}", capacity=rng.choice([12, 16, 20])) for v in range(n_drivers)]
    return Problem(tuple(stops), tuple(drivers))


def _matrix(problem: Problem):
    return PROVIDER.matrix(problem.points())


# -- problem validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Stop("a", 91.0, 0.0), "latitude"),
        (lambda: Stop("a", 0.0, -180.5), "longitude"),
        (lambda: Stop("a", float("nan"), 0.0), "latitude"),
        (lambda: Stop("a", 0.0, 0.0, window_start_s=600, window_end_s=300), "window starts"),
        (lambda: Stop("a", 0.0, 0.0, window_start_s=-1), "window_start_s"),
        (lambda: Stop("a", 0.0, 0.0, load=-1), "load"),
        (lambda: Stop("a", 0.0, 0.0, service_s=-5), "service_s"),
        (lambda: Stop("", 0.0, 0.0), "id"),
        (lambda: Driver("d", 0.0, 0.0, 0, 3600, 0), "capacity"),
        (lambda: Driver("d", 0.0, 200.0, 0, 3600, 5), "longitude"),
        (lambda: Driver("d", 0.0, 0.0, 3600, 0, 5), "shift starts"),
        (lambda: Problem((Stop("a", 0, 0), Stop("a", 1, 1)), ()), "twice"),
        (lambda: Route("d", ("a", "b"), (1,)), "arrivals"),
    ],
)
def test_problem_validation_raises_value_error(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_great_circle_matrix():
    metres, seconds = GreatCircle(detour=1.0, speed_kmh=36.0).matrix([(0.0, 0.0), (0.0, 1.0), (1.0, 0.0)])
    assert isinstance(GreatCircle(), DistanceProvider)
    assert metres.dtype.kind == "i"
    assert seconds.dtype.kind == "i"
    assert metres[0, 1] == metres[1, 0] == pytest.approx(111_195, abs=2)  # one degree on the equator
    assert (metres.diagonal() == 0).all()
    assert seconds[0, 1] == pytest.approx(11_120, abs=2)  # 10 m/s
    with pytest.raises(ValueError, match="speed_kmh"):
        GreatCircle(speed_kmh=0)


# -- pre-solve reasons, capacity, windows --------------------------------------------------------------------


@pytest.mark.parametrize("solver", ["greedy", "ortools"])
def test_unservable_stops_get_their_reason(solver):
    problem = Problem(
        (
            _stop("ok", 0.01, 0.01),
            _stop("heavy", 0.01, 0.0, load=11),  # every vehicle carries 10
            _stop("far", 2.0, 2.0, window_end_s=HOUR),  # ~290 km away, must be there within the hour
            _stop("after", 0.0, 0.01, window_start_s=9 * HOUR),  # opens after every shift has ended
        ),
        (_driver("d0"), _driver("d1")),
    )
    matrix = _matrix(problem)
    solution = _solve(solver, problem, matrix)
    assert dict(solution.unserved) == {
        "heavy": UnservedReason.NO_CAPACITY,
        "far": UnservedReason.WINDOW_IMPOSSIBLE,
        "after": UnservedReason.WINDOW_IMPOSSIBLE,
    }
    assert [r.stop_ids for r in solution.routes] == [("ok",)]
    assert check(problem, solution, matrix) == []


@pytest.mark.parametrize("solver", ["greedy", "ortools"])
def test_capacity_is_respected_and_the_rest_is_fleet_exhausted(solver):
    stops = tuple(_stop(f"s{i}", 0.002 * i, 0.0, load=3) for i in range(5))  # 15 parcels
    problem = Problem(stops, (_driver("d0", capacity=7), _driver("d1", capacity=4)))
    matrix = _matrix(problem)
    solution = _solve(solver, problem, matrix)
    loads = {r.driver_id: 3 * len(r.stop_ids) for r in solution.routes}
    assert loads.get("d0", 0) <= 7
    assert loads.get("d1", 0) <= 4
    assert solution.served == 3
    assert set(solution.unserved.values()) == {UnservedReason.FLEET_EXHAUSTED}
    assert check(problem, solution, matrix) == []


@pytest.mark.parametrize("solver", ["greedy", "ortools"])
def test_windows_are_respected_with_waiting(solver):
    problem = Problem(
        (
            _stop("late", 0.02, 0.0, window_start_s=2 * HOUR, window_end_s=3 * HOUR),
            _stop("early", 0.01, 0.0, window_end_s=HOUR),
        ),
        (_driver("d0"),),
    )
    matrix = _matrix(problem)
    solution = _solve(solver, problem, matrix)
    (route,) = solution.routes
    assert route.stop_ids == ("early", "late")
    assert route.arrivals_s[0] <= HOUR
    assert 2 * HOUR <= route.arrivals_s[1] <= 3 * HOUR
    assert check(problem, solution, matrix) == []


def test_the_solver_avoids_the_nearest_neighbour_window_trap():
    # "late" is nearer: greedy goes there first, waits two hours, and misses "early"; the solver serves both
    problem = Problem(
        (
            _stop("late", 0.01, 0.0, window_start_s=2 * HOUR, window_end_s=3 * HOUR),
            _stop("early", 0.02, 0.0, window_end_s=HOUR),
        ),
        (_driver("d0"),),
    )
    matrix = _matrix(problem)
    base = greedy.solve(problem, matrix)
    plan = ortools_solver.solve(problem, matrix, 0.2)
    assert dict(base.unserved) == {"early": UnservedReason.FLEET_EXHAUSTED}
    assert [r.stop_ids for r in plan.routes] == [("early", "late")]
    assert check(problem, base, matrix) == []
    assert check(problem, plan, matrix) == []


def test_a_critical_stop_is_kept_before_an_ordinary_one():
    # room for one of the two only: the critical one must be served
    problem = Problem(
        (_stop("plain", 0.001, 0.0, load=5), _stop("critical", 0.03, 0.0, load=5, critical=True)),
        (_driver("d0", capacity=5),),
    )
    solution = ortools_solver.solve(problem, _matrix(problem), 0.2)
    assert [r.stop_ids for r in solution.routes] == [("critical",)]
    assert dict(solution.unserved) == {"plain": UnservedReason.FLEET_EXHAUSTED}


# -- the checker can fail ------------------------------------------------------------------------------------


def test_the_checker_catches_planted_violations():
    problem = _random_problem(1)
    matrix = _matrix(problem)
    good = greedy.solve(problem, matrix)
    assert check(problem, good, matrix) == []
    route = good.routes[0]

    late = dataclasses.replace(route, arrivals_s=(route.arrivals_s[0] + 10 * HOUR, *route.arrivals_s[1:]))
    twice = dataclasses.replace(
        good.routes[1],
        stop_ids=(*good.routes[1].stop_ids, route.stop_ids[0]),
        arrivals_s=(*good.routes[1].arrivals_s, 7 * HOUR),
    )
    too_early = dataclasses.replace(route, arrivals_s=(0, *route.arrivals_s[1:]))
    overloaded = Problem(
        problem.stops,
        tuple(dataclasses.replace(d, capacity=1) if d.id == route.driver_id else d for d in problem.drivers),
    )
    dropped = Solution(good.routes[1:], good.unserved, good.distance_m)

    def with_route(replacement: Route, index: int = 0) -> Solution:
        routes = list(good.routes)
        routes[index] = replacement
        return Solution(tuple(routes), good.unserved, good.distance_m)

    assert any("late" in v or "shift" in v for v in check(problem, with_route(late), matrix))
    assert any("served twice" in v for v in check(problem, with_route(twice, 1), matrix))
    assert any("before the driver can be there" in v for v in check(problem, with_route(too_early), matrix))
    assert any("over capacity" in v for v in check(overloaded, good, matrix))
    assert any("neither served nor" in v for v in check(problem, dropped, matrix))
    assert any("distance" in v for v in check(problem, Solution(good.routes, good.unserved, 1), matrix))


# -- the solver against the baseline -------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_the_solver_plan_is_valid_and_no_longer_than_greedy(seed):
    problem = _random_problem(seed)
    matrix = _matrix(problem)
    base = greedy.solve(problem, matrix)
    plan = ortools_solver.solve(problem, matrix, 0.5)
    assert check(problem, base, matrix) == []
    assert check(problem, plan, matrix) == []
    assert plan.served >= base.served
    if plan.served == base.served:
        assert plan.distance_m <= base.distance_m


def test_no_drivers_leaves_everything_unserved():
    problem = Problem((_stop("a"),), ())
    solution = ortools_solver.solve(problem, _matrix(problem), 0.2)
    assert solution.routes == ()
    assert dict(solution.unserved) == {"a": UnservedReason.NO_CAPACITY}


# -- the process wrapper ---------------------------------------------------------------------------------------


async def test_the_process_wrapper_returns_the_in_process_answer():
    # a tiny instance: the first solution is optimal well within the limit, so both runs agree
    problem = Problem(
        (_stop("a", 0.01, 0.0), _stop("b", 0.02, 0.0, window_end_s=HOUR), _stop("c", 0.0, 0.01, load=2)),
        (_driver("d0", capacity=3), _driver("d1", capacity=3)),
    )
    expected = ortools_solver.solve(problem, _matrix(problem), 0.2)
    try:
        got = await pool.solve_in_process(problem, time_limit_s=0.2, provider=PROVIDER)
    finally:
        pool.shutdown()
    assert got == expected
    assert check(problem, got, _matrix(problem)) == []


def _solve(solver: str, problem: Problem, matrix) -> Solution:
    if solver == "greedy":
        return greedy.solve(problem, matrix)
    return ortools_solver.solve(problem, matrix, 0.2)
