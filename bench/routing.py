"""Delivery-run routing: 200 stops × 20 drivers with windows and capacities, greedy vs OR-Tools.

A Wuhan-sized city (~35 × 30 km), 3 warehouses, stops clustered in 12 districts; 35 % two-hour windows, 30 %
deadlines, the rest any time; 1–6 parcels; 15 % critical; vehicles of 30/40/50 parcels, full-day or half-day
shifts; great-circle × 1.3 at 25 km/h, 5 min per stop (the issue 18 prototype's "loose" generator: every stop
is servable, so the distances compare like for like). "--tight" uses the bad afternoon instead (capacity about
demand, half-day shifts): compare stops served there, not distance.

For each seed: the greedy baseline, then OR-Tools at each time limit; every plan goes through the independent
checker (late = stops served after their window closed, violations = anything else). Prints the median over
the seeds and the goal lines: solve <= 5 s, distance <= 0.85x greedy (with at least as many stops served).

    .venv/bin/python -m bench.routing [--seeds 3] [--limits 1,5] [--tight]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from core.routing import greedy, ortools_solver
from core.routing.check import check
from core.routing.distance import GreatCircle
from core.routing.problem import Driver, Problem, Stop

MIN = 60
HORIZON_S = 10 * 3600  # 08:00 .. 18:00
LOOSE = ([30, 40, 50], [(0, HORIZON_S), (0, HORIZON_S), (0, 6 * 3600), (2 * 3600, HORIZON_S)])
TIGHT = ([16, 20, 24, 30, 40], [(0, HORIZON_S), (0, 5 * 3600), (4 * 3600, HORIZON_S), (3600, 8 * 3600)])


def make_problem(seed: int, *, tight: bool = False, n_stops: int = 200, n_drivers: int = 20) -> Problem:
    caps, shifts = TIGHT if tight else LOOSE
    rng = random.Random(seed)
    centres = [(30.45 + rng.random() * 0.3, 114.15 + rng.random() * 0.35) for _ in range(12)]
    depots = [(30.55 + rng.random() * 0.1, 114.25 + rng.random() * 0.15) for _ in range(3)]
    stops = []
    for i in range(n_stops):
        c = rng.choice(centres)
        lat, lng = c[0] + rng.gauss(0, 0.02), c[1] + rng.gauss(0, 0.02)
        kind = rng.random()
        if kind < 0.35:  # a two-hour window somewhere in the day
            start = rng.randrange(0, HORIZON_S - 2 * 3600, 30 * MIN)
            window = (start, start + 2 * 3600)
        elif kind < 0.65:  # a deadline (medicine before noon, before 15:00 ...)
            window = (None, rng.choice([4, 5, 6, 7]) * 3600)
        else:
            window = (None, None)
        load = rng.choice([1, 1, 2, 2, 3, 4, 6])
        critical = rng.random() < 0.15
        stops.append(Stop(f"s{i}", lat, lng, window[0], window[1], 5 * MIN, load, critical))
    drivers = []
    for v in range(n_drivers):
        shift = rng.choice(shifts)
        depot = depots[v % len(depots)]
        drivers.append(Driver(f"d{v}", depot[0], depot[1], shift[0], shift[1], rng.choice(caps)))
    return Problem(tuple(stops), tuple(drivers))


def measure(problem: Problem, matrix, solve) -> dict[str, float]:
    t0 = time.perf_counter()
    solution = solve()
    wall = time.perf_counter() - t0
    violations = check(problem, solution, matrix)
    critical = {s.id for s in problem.stops if s.critical}
    return {
        "wall_s": wall,
        "km": solution.distance_m / 1000,
        "served": solution.served,
        "unserved": len(solution.unserved),
        "unserved_critical": sum(1 for s in solution.unserved if s in critical),
        "late": sum(1 for v in violations if "late" in v),
        "violations": len(violations),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--limits", default="1,5")
    ap.add_argument("--tight", action="store_true")
    args = ap.parse_args()
    limits = [float(x) for x in args.limits.split(",")]
    provider = GreatCircle()
    print(f"routing: 200 stops x 20 drivers, {'tight' if args.tight else 'loose'} instances, seeds 0..{args.seeds - 1}")
    rows: dict[str, list[dict[str, float]]] = {}
    for seed in range(args.seeds):
        problem = make_problem(seed, tight=args.tight)
        t0 = time.perf_counter()
        matrix = provider.matrix(problem.points())
        matrix_s = time.perf_counter() - t0
        base = measure(problem, matrix, lambda p=problem, m=matrix: greedy.solve(p, m))
        base["ratio"] = 1.0
        rows.setdefault("greedy", []).append(base)
        print(
            f"  seed {seed}: matrix {matrix_s * 1000:.0f} ms; greedy {base['km']:.1f} km, served {base['served']:.0f}"
        )
        for limit in limits:
            row = measure(problem, matrix, lambda p=problem, m=matrix, lim=limit: ortools_solver.solve(p, m, lim))
            row["ratio"] = row["km"] / base["km"]
            rows.setdefault(f"ortools {limit:g} s", []).append(row)
            print(
                f"  seed {seed}: ortools {limit:g} s -> {row['wall_s']:.2f} s, {row['km']:.1f} km "
                f"({row['ratio']:.3f}x), served {row['served']:.0f}, violations {row['violations']:.0f}"
            )
    keys = ["wall_s", "km", "ratio", "served", "unserved", "unserved_critical", "late", "violations"]
    print(f"\nmedian of {args.seeds} seeds")
    print("plan".ljust(16) + "".join(k.rjust(18) for k in keys))
    medians: dict[str, dict[str, float]] = {}
    for name, rs in rows.items():
        medians[name] = {k: statistics.median(r[k] for r in rs) for k in keys}
        print(name.ljust(16) + "".join(f"{medians[name][k]:.3f}".rjust(18) for k in keys))
    print()
    for name, m in medians.items():
        if name == "greedy":
            continue
        extra = m["served"] - medians["greedy"]["served"]
        # The ratio compares like for like only when both plans serve the same stops: serving more stops in
        # fewer km still meets the goal; serving more in more km is not comparable; serving fewer is a miss.
        if extra < 0:
            verdict = f"not met: serves {extra:+.0f} stops vs greedy"
        elif m["ratio"] <= 0.85:
            verdict = "met" + (f", and serves {extra:+.0f} stops vs greedy" if extra else "")
        elif extra:
            verdict = f"not comparable: serves {extra:+.0f} stops vs greedy"
        else:
            verdict = "not met"
        print(
            f"{name}: solve {m['wall_s']:.2f} s (goal <= 5 s: {m['wall_s'] / 5:.2f}x the goal); distance "
            f"{m['ratio']:.3f}x greedy (goal <= 0.85x: {verdict}); late {m['late']:.0f}, "
            f"violations {m['violations']:.0f}"
        )


if __name__ == "__main__":
    main()
