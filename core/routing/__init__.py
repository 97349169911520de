"""Delivery-run routing (issue 18): the pure layer, no database, no GraphQL, no services.

- `problem`: the frozen input/output dataclasses (`Stop`, `Driver`, `Problem`, `Route`, `Solution`);
- `distance`: `DistanceProvider` and the great-circle provider;
- `feasibility`: reasons known before any solve (NO_CAPACITY, WINDOW_IMPOSSIBLE);
- `greedy`: the feasible parallel nearest-neighbour baseline;
- `ortools_solver`: the OR-Tools model (`solve`);
- `check`: the independent checker every plan can be run through;
- `pool`: the solve in a worker process (`solve_in_process`): the OR-Tools solve holds the GIL.

Times are whole seconds from the plan start, distances whole metres. The distance/time matrix is indexed by
`Problem.points()`: the drivers' starts first, then the stops, in the order given.
"""
