"""Independent jobs (organism builds, whole diff runs) side by side in worker processes, the cores split.

On a small CPU, several one-thread processes beat one process with every thread: torch's OpenMP pool
spends much of a shared core in barriers (a sampling job measured 28 s with one thread against 164 s
with two, under load). Workers are spawned, not forked (forked OpenMP pools hang), so a job function
must be importable at module level.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

J = TypeVar("J")
R = TypeVar("R")


def threads_per_worker(workers: int) -> int:
    """The cores this process may use, split evenly between ``workers`` (at least one each)."""
    return max(1, len(os.sched_getaffinity(0)) // max(1, workers))


def _with_threads(fn: Callable[[J], R], threads: int, job: J) -> R:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # read by every later model load in this worker
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)
    return fn(job)


def map_in_processes(fn: Callable[[J], R], jobs: Sequence[J], workers: int,
                     on_done: Callable[[J, R], Any]) -> None:
    """Call ``fn(job)`` for every job and ``on_done(job, result)`` in this process as each one finishes.

    Args:
        fn: a module-level function (workers import it by name).
        jobs: picklable job descriptions.
        workers: 1 runs the jobs here, one after another; more spawns that many processes, each with
            :func:`threads_per_worker` torch threads.
        on_done: called in this process, in the order jobs finish (record progress there).

    Raises:
        Whatever a job raised (the other jobs already running are let finish first).
    """
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            on_done(job, fn(job))
        return
    threads = threads_per_worker(workers)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx) as pool:
        futures = {pool.submit(_with_threads, fn, threads, job): job for job in jobs}
        for fut in as_completed(futures):
            on_done(futures[fut], fut.result())
