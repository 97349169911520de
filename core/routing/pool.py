"""The solve in a worker process.

Why: the OR-Tools search holds the GIL for its whole time limit (measured: a 1 ms ticker thread got ~10 ticks/s
instead of ~1000 during a solve), so running it in a thread would freeze the event loop for seconds. It runs in
a `ProcessPoolExecutor(max_workers=1)` instead; the event loop only awaits a future (measured: max lag 12 ms).

- The executor is created lazily on first use, with the forkserver start method (spawn where there is none):
  never a plain fork of a process that holds an event loop, threads and database connections. The first call
  pays the worker start and the OR-Tools import (~0.5 s); later calls only the solve.
- The distance matrix is computed in the worker too (`provider` must be picklable; `GreatCircle` is).
- A semaphore admits as many solves as there are workers; a call arriving while they are all busy fails at
  once with `RoutingBusy` (the API answers BUSY) instead of queueing behind a multi-second solve.
- `shutdown()` stops the worker (app lifespan end, tests); the next call starts a fresh one.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from core.routing.distance import DistanceProvider
from core.routing.problem import Problem, Solution

MAX_WORKERS = 1

_executor: ProcessPoolExecutor | None = None
_semaphore: asyncio.Semaphore | None = None


class RoutingBusy(RuntimeError):
    """Every routing worker is solving already; try again in a few seconds."""


def _solve_job(problem: Problem, time_limit_s: float, provider: DistanceProvider) -> Solution:
    from core.routing import ortools_solver

    matrix = provider.matrix(problem.points())
    return ortools_solver.solve(problem, matrix, time_limit_s)


def _get_executor() -> ProcessPoolExecutor:
    global _executor
    if _executor is None:
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        _executor = ProcessPoolExecutor(max_workers=MAX_WORKERS, mp_context=context)
    return _executor


def _get_semaphore() -> asyncio.Semaphore:
    global _semaphore
    if _semaphore is None:
        _semaphore = asyncio.Semaphore(MAX_WORKERS)
    return _semaphore


async def solve_in_process(problem: Problem, *, time_limit_s: float, provider: DistanceProvider) -> Solution:
    """`ortools_solver.solve(problem, provider.matrix(problem.points()), time_limit_s)` in the worker process.

    Raises `RoutingBusy` at once when every worker is taken."""
    semaphore = _get_semaphore()
    if semaphore.locked():
        raise RoutingBusy("every routing worker is busy")
    async with semaphore:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_get_executor(), _solve_job, problem, time_limit_s, provider)


def shutdown() -> None:
    """Stop the worker process (waits for a running solve); the next call starts a new one."""
    global _executor, _semaphore
    executor, _executor, _semaphore = _executor, None, None
    if executor is not None:
        executor.shutdown(wait=True)
