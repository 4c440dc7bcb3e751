"""Run directories: resolved config, manifest, resumable steps, artifacts, results and logs."""

from lmdiff.runs.chunks import map_chunks, process_in_chunks
from lmdiff.runs.executor import Executor, LocalExecutor, RayExecutor, Worker, executor_for, make_executor
from lmdiff.runs.run import RESULTS_SCHEMA_VERSION, Run, Step

__all__ = [
    "RESULTS_SCHEMA_VERSION",
    "Executor",
    "LocalExecutor",
    "RayExecutor",
    "Run",
    "Step",
    "Worker",
    "executor_for",
    "make_executor",
    "map_chunks",
    "process_in_chunks",
]
