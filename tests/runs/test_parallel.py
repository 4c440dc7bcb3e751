"""Jobs in spawned worker processes with the cores split, results handed back as they finish."""

from __future__ import annotations

import os

import pytest

from lmdiff.runs.parallel import map_in_processes, threads_per_worker


def square_with_pid(x: int) -> tuple[int, int, str | None]:
    """A job: its result, the process it ran in and the thread setting it saw."""
    if x < 0:
        raise ValueError("negative job")
    return x * x, os.getpid(), os.environ.get("OMP_NUM_THREADS")


def test_one_worker_runs_jobs_here_in_order() -> None:
    seen: list[tuple[int, tuple[int, int, str | None]]] = []
    map_in_processes(square_with_pid, [3, 1, 2], 1, lambda j, r: seen.append((j, r)))
    assert [j for j, _ in seen] == [3, 1, 2] and [r[0] for _, r in seen] == [9, 1, 4]
    assert {r[1] for _, r in seen} == {os.getpid()}


def test_workers_run_jobs_in_other_processes_with_the_cores_split() -> None:
    seen: dict[int, tuple[int, int, str | None]] = {}
    map_in_processes(square_with_pid, [1, 2, 3, 4], 2, lambda j, r: seen.__setitem__(j, r))
    assert {j: r[0] for j, r in seen.items()} == {1: 1, 2: 4, 3: 9, 4: 16}
    assert os.getpid() not in {r[1] for r in seen.values()}
    assert {r[2] for r in seen.values()} == {str(threads_per_worker(2))}
    assert threads_per_worker(2) == max(1, len(os.sched_getaffinity(0)) // 2) and threads_per_worker(10_000) == 1


def test_a_failing_job_raises_in_the_caller() -> None:
    with pytest.raises(ValueError, match="negative job"):
        map_in_processes(square_with_pid, [1, -1], 2, lambda j, r: None)
