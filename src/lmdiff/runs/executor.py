"""Executors: where the shards of a long computation run (in this process, or on Ray actors).

Sampling (:func:`lmdiff.sampling.sample_in_chunks`), activation collection
(:func:`lmdiff.activations.store.collect_activations`) and per-token KL (the ``kl`` method) split their
input into shards and ask an :class:`Executor` to map a function over them; none of them knows about Ray.
The caller keeps writing every finished shard itself (a Parquet part, a store shard), so the files are the
same whichever executor computed them, and a killed run redoes only the shards whose files are missing.

A shard function takes the worker's *state* (a loaded model or model pair) and one shard:
``fn(state, shard) -> result``. A :class:`Worker` says what that state is here (``local``, the live
object the in-process executor uses) and how another process makes an equivalent one (``build``, a
picklable zero-argument callable each Ray actor calls once). Work whose state cannot be rebuilt
elsewhere (``build`` is None) runs in process under any executor.

``compute.executor=ray`` selects :class:`RayExecutor` (see :func:`executor_for`). Ray is imported only
then; without it installed the error says how to install it.
"""

from __future__ import annotations

import logging
import os
import pickle
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from lmdiff.errors import ConfigError

log = logging.getLogger(__name__)

W = TypeVar("W")
A = TypeVar("A")
R = TypeVar("R")

#: What :meth:`Executor.map` returns: ``(shard index, result)`` pairs as shards finish.
Results = Generator[tuple[int, R], None, None]

__all__ = [
    "Executor",
    "ExecutorSettings",
    "LocalExecutor",
    "RayExecutor",
    "Results",
    "Worker",
    "executor_for",
    "make_executor",
]


@dataclass(frozen=True)
class Worker(Generic[W]):
    """The state a shard function needs, here and in other processes.

    Attributes:
        local: the live object in this process (e.g. the run's :class:`~lmdiff.models.pair.ModelPair`,
            which loads its weights on first use); the in-process executor passes it to every shard.
        build: a picklable zero-argument callable that makes an equivalent object in another process
            (a Ray actor calls it once and keeps the result for every shard it computes); None keeps
            the work in this process under any executor.
    """

    local: W
    build: Callable[[], W] | None = None


class Executor(ABC):
    """Maps a shard function over shards and yields the results as they finish."""

    #: The executor's name (the value of ``compute.executor``).
    name: str = ""

    @abstractmethod
    def map(self, fn: Callable[[W, A], R], shards: Sequence[A], worker: Worker[W]) -> Results[R]:
        """Yield ``(i, fn(state, shards[i]))`` for every shard, in the order they finish.

        Close the generator (``contextlib.closing``) when stopping early: that stops the shards still running.

        Args:
            fn: a module-level function (or a ``functools.partial`` of one): it is pickled for other processes.
            shards: the shards' arguments (pickled for other processes; keep them small).
            worker: the state ``fn`` receives.

        Raises:
            Whatever ``fn`` raises, for the first failing shard; results yielded before stay valid (the
            caller has written them), and no shard keeps running after the error.
        """


class LocalExecutor(Executor):
    """Runs every shard in this process, in order, with ``worker.local``."""

    name = "local"

    def map(self, fn: Callable[[W, A], R], shards: Sequence[A], worker: Worker[W]) -> Results[R]:
        """Yield ``(i, fn(worker.local, shards[i]))`` in order."""
        for i, shard in enumerate(shards):
            yield i, fn(worker.local, shard)


class ExecutorSettings(Protocol):
    """The settings :func:`executor_for` reads (a :class:`lmdiff.config.ComputeConfig`)."""

    @property
    def executor(self) -> str:
        """``local`` or ``ray``."""
        ...

    @property
    def ray_address(self) -> str | None:
        """Ray cluster address, or None for a local one."""
        ...

    @property
    def ray_workers(self) -> int | None:
        """Number of actors, or None for one per GPU (else per ``ray_worker_cpus`` CPUs)."""
        ...

    @property
    def ray_worker_cpus(self) -> int | None:
        """CPUs per actor on CPU-only clusters."""
        ...


_LOCAL = LocalExecutor()
_RAY_EXECUTORS: dict[tuple[str | None, int | None, int | None], RayExecutor] = {}


def make_executor(
    name: str = "local", *, address: str | None = None, workers: int | None = None, worker_cpus: int | None = None
) -> Executor:
    """The executor called ``name`` (``local`` or ``ray``).

    Ray executors are shared per (address, workers, worker_cpus) within a process, so their actors (and
    the models loaded in them) serve every call that needs the same state.

    Raises:
        ConfigError: an unknown name, or ``ray`` without Ray installed.
    """
    if name == "local":
        return _LOCAL
    if name != "ray":
        raise ConfigError(f"Unknown executor '{name}'; known: local, ray.")
    _import_ray()
    key = (address, workers, worker_cpus)
    if key not in _RAY_EXECUTORS:
        _RAY_EXECUTORS[key] = RayExecutor(address=address, workers=workers, worker_cpus=worker_cpus)
    return _RAY_EXECUTORS[key]


def executor_for(settings: ExecutorSettings) -> Executor:
    """The executor a run's ``compute`` settings select."""
    return make_executor(settings.executor, address=settings.ray_address, workers=settings.ray_workers,
                         worker_cpus=settings.ray_worker_cpus)


# ----------------------------------------------------------------------------------------------------- Ray


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "compute.executor=ray needs Ray, which is not installed: pip install 'lmdiff[ray]'."
        ) from None
    return ray


class _ShardActor:
    """A Ray actor: builds the worker state once, then computes shards with it."""

    def __init__(self, build: Callable[[], Any], threads: int | None) -> None:
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.state = build()

    def run(self, fn: Callable[[Any, Any], Any], shard: Any) -> Any:
        """``fn(state, shard)``."""
        return fn(self.state, shard)


class RayExecutor(Executor):
    """Runs shards on Ray actors, each holding one copy of the worker state (one model pair).

    Actors get one GPU each when the cluster has GPUs (``workers`` defaults to the number of GPUs),
    else ``worker_cpus`` CPUs each (``workers`` defaults to the cluster's CPUs over ``worker_cpus``).
    The actors of the last state asked for are kept for the next call with the same state (a pair's
    base side, then its finetuned side); asking for another state replaces them.

    Without ``address`` a local Ray instance starts on first use, with the dashboard off, Ray's own
    logs at ERROR and workers' output not forwarded; an instance already started in this process
    (``ray.init(...)`` by the caller) is used as it is.
    """

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, worker_cpus: int | None = None) -> None:
        self.address = address
        self.workers = workers
        self.worker_cpus = worker_cpus
        self._key: str | None = None
        self._actors: list[Any] = []

    # ------------------------------------------------------------- cluster
    def _ray(self) -> Any:
        ray = _import_ray()
        if not ray.is_initialized():
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.ERROR,
                                      "log_to_driver": False}
            if self.address is None:
                # the local workers import the lmdiff this process runs (not another one on their default path)
                here = str(Path(__file__).resolve().parents[2])
                path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
                ray.init(dashboard_host="127.0.0.1", runtime_env={"env_vars": {"PYTHONPATH": path}}, **kwargs)
            else:
                ray.init(address=self.address, **kwargs)
        return ray

    def plan(self) -> tuple[int, dict[str, Any]]:
        """(number of actors, Ray resource options of each) for the connected cluster."""
        ray = self._ray()
        res = ray.cluster_resources()
        gpus, cpus = int(res.get("GPU", 0)), max(1, int(res.get("CPU", 1)))
        if gpus:
            return (self.workers or gpus), {"num_gpus": 1, "num_cpus": 1}
        per = self.worker_cpus or (max(1, cpus // self.workers) if self.workers else 1)
        per = min(per, cpus)
        return (self.workers or max(1, cpus // per)), {"num_cpus": per}

    def _pool(self, build: Callable[[], Any], needed: int) -> list[Any]:
        ray = self._ray()
        try:
            key = sha256(pickle.dumps(build)).hexdigest()
        except Exception:  # an unpicklable-by-pickle recipe: never reuse its actors
            key = f"id:{id(build)}"
        if key != self._key:
            self.shutdown()
            self._key = key
        n, options = self.plan()
        n = max(1, min(n, needed))
        threads = None if "num_gpus" in options else int(options["num_cpus"])
        actor_cls = ray.remote(**options)(_ShardActor)
        while len(self._actors) < n:
            self._actors.append(actor_cls.remote(build, threads))
        return self._actors[:n]

    def shutdown(self) -> None:
        """Kill this executor's actors (freeing their models); Ray itself keeps running."""
        if self._actors:
            ray = _import_ray()
            for actor in self._actors:
                ray.kill(actor)
        self._actors = []
        self._key = None

    # ----------------------------------------------------------------- map
    def map(self, fn: Callable[[W, A], R], shards: Sequence[A], worker: Worker[W]) -> Results[R]:
        """Yield ``(i, fn(state, shards[i]))`` as the actors finish them (one shard in flight per actor)."""
        if worker.build is None:
            log.info("this work cannot be rebuilt in a Ray actor; it runs in process")
            yield from _LOCAL.map(fn, shards, worker)
            return
        if not shards:
            return
        ray = self._ray()
        actors = self._pool(worker.build, len(shards))
        fn_ref = ray.put(fn)
        todo = list(enumerate(shards))
        todo.reverse()
        pending: dict[Any, tuple[int, Any]] = {}

        def submit(actor: Any) -> None:
            if todo:
                i, shard = todo.pop()
                pending[actor.run.remote(fn_ref, shard)] = (i, actor)

        ok = False
        try:
            for actor in actors:
                submit(actor)
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                i, actor = pending.pop(ready[0])
                try:
                    result = ray.get(ready[0])
                except ray.exceptions.RayTaskError as err:
                    raise err.as_instanceof_cause() from None
                submit(actor)
                yield i, result
            ok = True
        finally:
            if not ok:  # an error, or the caller stopped early: nothing may keep computing
                self.shutdown()
