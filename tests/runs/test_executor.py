"""Executors (lmdiff.runs.executor): Ray writes the same parts, stores and tables as in process; resumes per shard."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lmdiff.config import ComputeConfig, GenerationConfig
from lmdiff.corpora import Corpus
from lmdiff.errors import ConfigError
from lmdiff.methods.kl import kl_chunk
from lmdiff.models.recipe import pair_recipe, side_recipe
from lmdiff.runs import chunks as chunks_mod
from lmdiff.runs.chunks import map_chunks
from lmdiff.runs.executor import LocalExecutor, RayExecutor, Worker, executor_for, make_executor

SRC = Path(__file__).resolve().parents[2] / "src"
TEXTS = tuple(f"Text number {i}: the weather today is {'sunny and warm' * (i % 3 + 1)}." for i in range(9))
PROMPTS = [f"Tell me about thing {i}" for i in range(5)]


# ---------------------------------------------------------------- without Ray


def test_local_executor_maps_in_order():
    out = list(LocalExecutor().map(lambda s, a: s + a, [1, 2, 3], Worker(10)))
    assert out == [(0, 11), (1, 12), (2, 13)]


def test_config_selects_the_executor():
    assert isinstance(executor_for(ComputeConfig()), LocalExecutor)
    assert ComputeConfig(executor="ray", ray_workers=2).ray_workers == 2
    with pytest.raises(ValueError):
        ComputeConfig(executor="dask")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="Unknown executor"):
        make_executor("dask")


def test_missing_ray_is_one_clear_sentence(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(ConfigError) as err:
        make_executor("ray")
    assert str(err.value) == "compute.executor=ray needs Ray, which is not installed: pip install 'lmdiff[ray]'."


def test_the_local_executor_never_imports_ray(tiny_model_dir, tmp_path):
    code = f"""
import sys
from lmdiff.models.pair import ModelPair
from lmdiff.models.spec import ModelSpec
from lmdiff.models.recipe import pair_recipe
from lmdiff.methods.kl import kl_chunk
from lmdiff.runs.chunks import map_chunks
from lmdiff.runs.executor import Worker, executor_for
from lmdiff.config import ComputeConfig
from lmdiff.sampling import sample_in_chunks
import lmdiff.activations.store, lmdiff.diff, functools
spec = ModelSpec(model={str(tiny_model_dir)!r}, dtype="float32")
pair = ModelPair(spec, spec)
seqs = [pair.base.encode("hello there")]
map_chunks(seqs, functools.partial(kl_chunk, batch_size=2, reverse=False), {str(tmp_path / "p")!r}, 1,
           Worker(pair, pair_recipe(pair)), executor_for(ComputeConfig()))
assert "ray" not in sys.modules, "ray was imported"
print("ok")
"""
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")


# ------------------------------------------------------------------ with Ray


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    """A local Ray instance with 2 CPUs (the caller's ray.init is used as it is by the executor)."""
    ray = pytest.importorskip("ray")
    import logging

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # the workers import this checkout's lmdiff (not another one an editable install may point at)
    path = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path, "LMDIFF_PROGRESS": "0", "HF_HUB_OFFLINE": "1",
                                       "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}})
    yield ray
    for ex in list(_ray_executors()):
        ex.shutdown()
    ray.shutdown()


def _ray_executors() -> list[RayExecutor]:
    from lmdiff.runs import executor as mod

    return list(mod._RAY_EXECUTORS.values())


class SpyRay(RayExecutor):
    """A Ray executor that records the shards it is asked to compute."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[Any] = []

    def map(self, fn, shards, worker):  # type: ignore[no-untyped-def]
        self.asked.extend(shards)
        return super().map(fn, shards, worker)


def _kl(pair: Any, seqs: list[list[int]], out: Path, executor: Any) -> pd.DataFrame:
    return map_chunks(seqs, functools.partial(kl_chunk, batch_size=2, reverse=True), out, 2,
                      Worker(pair, pair_recipe(pair)), executor)


@pytest.fixture(scope="module")
def seqs(tiny_pair: Any) -> list[list[int]]:
    return Corpus("t", TEXTS).encode(tiny_pair.base, max_tokens=32)


def test_ray_plans_one_actor_per_cpu(ray_local):
    n, options = RayExecutor().plan()
    assert (n, options) == (2, {"num_cpus": 1})
    assert RayExecutor(workers=1).plan() == (1, {"num_cpus": 2})
    assert RayExecutor(worker_cpus=2).plan() == (1, {"num_cpus": 2})


def test_kl_on_ray_equals_in_process(ray_local, tiny_pair, seqs, tmp_path):
    local = _kl(tiny_pair, seqs, tmp_path / "local", LocalExecutor())
    remote = _kl(tiny_pair, seqs, tmp_path / "ray", make_executor("ray"))
    assert len(local) > 50 and local["kl"].max() > 0
    pd.testing.assert_frame_equal(remote, local, check_exact=True)  # per-token KL identical, bit for bit
    names = sorted(p.name for p in (tmp_path / "local").glob("part-*.parquet"))
    assert names == sorted(p.name for p in (tmp_path / "ray").glob("part-*.parquet")) and len(names) == 5
    for n in names:
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "ray" / n), pd.read_parquet(tmp_path / "local" / n),
                                      check_exact=True)


@pytest.mark.parametrize("temperature", [0.0, 0.9])
def test_samples_on_ray_equal_in_process(ray_local, tiny_pair, tmp_path, temperature):
    from lmdiff.sampling import sample_in_chunks

    gen = GenerationConfig(temperature=temperature, top_p=0.95, max_new_tokens=6, n=1 if temperature == 0 else 2,
                           seed=11, batch_size=2)
    lm = tiny_pair.finetuned  # the LoRA side: an actor rebuilds base + adapter
    local = sample_in_chunks(lm, PROMPTS, gen, tmp_path / "local")
    remote = sample_in_chunks(lm, PROMPTS, gen, tmp_path / "ray", executor=make_executor("ray"),
                              build=side_recipe(tiny_pair, "finetuned"))
    pd.testing.assert_frame_equal(remote, local, check_exact=True)
    assert local["text"].str.len().sum() > 0


def test_activation_store_on_ray_equals_in_process(ray_local, tiny_pair, seqs, tmp_path):
    from lmdiff.activations import collect_activations

    local = collect_activations(tiny_pair, seqs, [0, 1], tmp_path / "local", shard_tokens=60, progress=False)
    remote = collect_activations(tiny_pair, seqs, [0, 1], tmp_path / "ray", shard_tokens=60, progress=False,
                                 executor=make_executor("ray"))
    assert remote.n_shards == local.n_shards > 2 and remote.meta == local.meta
    files = sorted(str(p.relative_to(tmp_path / "local")) for p in (tmp_path / "local").rglob("*") if p.is_file())
    assert files == sorted(str(p.relative_to(tmp_path / "ray")) for p in (tmp_path / "ray").rglob("*") if p.is_file())
    for f in files:
        if f.endswith(".npy"):
            np.testing.assert_array_equal(np.load(tmp_path / "ray" / f), np.load(tmp_path / "local" / f))
        elif f.endswith(".npz"):
            a, b = np.load(tmp_path / "ray" / f), np.load(tmp_path / "local" / f)
            assert sorted(a.files) == sorted(b.files)
            for k in a.files:
                np.testing.assert_array_equal(a[k], b[k])


def test_ray_resumes_only_the_missing_shards(ray_local, tiny_pair, seqs, tmp_path, monkeypatch):
    ref = _kl(tiny_pair, seqs, tmp_path / "ref", LocalExecutor())
    out = tmp_path / "ray"
    real_write = chunks_mod.write_parquet
    written: list[str] = []

    def killed_after_two(path: Path, df: pd.DataFrame) -> None:
        if len(written) == 2:
            raise KeyboardInterrupt("killed")  # the driver dies while the actors still work
        written.append(Path(path).name)
        real_write(path, df)

    monkeypatch.setattr(chunks_mod, "write_parquet", killed_after_two)
    with pytest.raises(KeyboardInterrupt):
        _kl(tiny_pair, seqs, out, make_executor("ray"))
    monkeypatch.undo()
    done = sorted(p.name for p in out.glob("part-*.parquet"))
    assert done == sorted(written) and len(done) == 2
    kept = {n: (out / n).stat().st_mtime_ns for n in done}
    spy = SpyRay()
    resumed = _kl(tiny_pair, seqs, out, spy)
    missing = sorted({0, 2, 4, 6, 8} - {int(n[5:10]) * 2 for n in done})
    assert [offset for _, offset in spy.asked] == missing  # only the unfinished shards are computed again
    assert {n: (out / n).stat().st_mtime_ns for n in done} == kept
    pd.testing.assert_frame_equal(resumed, ref, check_exact=True)
    spy.shutdown()


def test_a_failing_shard_raises_its_own_error(ray_local, tiny_pair, seqs, tmp_path):
    bad = [*seqs[:4], [10**7, 1, 2]]  # a token id outside the vocabulary fails in the actor
    with pytest.raises(IndexError):
        _kl(tiny_pair, bad, tmp_path / "bad", make_executor("ray"))
    kept = {p.name for p in (tmp_path / "bad").glob("part-*.parquet")}
    assert kept and kept <= {"part-00000.parquet", "part-00001.parquet"}  # good shards that finished are kept


# ---------------------------------------------------------- the real model


KL_SETTINGS = ["method.kl.corpus=generic", "method.kl.max_texts=6", "method.kl.max_tokens=32",
               "method.kl.chunk_size=2", "method.kl.batch_size=2"]


def _diff(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1", "LMDIFF_PROGRESS": "0", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "lmdiff.cli.main", "diff", "smollm2-135m-instruct", "organism:caps",
                           *extra, "--methods", "kl", *KL_SETTINGS, "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=900)


@pytest.mark.real_model
def test_real_diff_kl_on_ray_equals_in_process(tmp_path):
    """The done-when: `lmdiff diff smollm2-135m-instruct organism:caps compute.executor=ray --methods kl`."""
    pytest.importorskip("ray")
    from lmdiff.io import read_json
    from lmdiff.organisms.zoo import find_organism

    if find_organism("caps") is None:
        pytest.skip("organism caps is not prebuilt")
    local = _diff(tmp_path / "local")
    assert local.returncode == 0, local.stderr[-3000:]
    remote = _diff(tmp_path / "ray", "compute.executor=ray", "compute.ray_workers=2")
    assert remote.returncode == 0, remote.stderr[-3000:]
    tokens = "artifacts/kl/kl_tokens.parquet"
    a, b = pd.read_parquet(tmp_path / "local" / tokens), pd.read_parquet(tmp_path / "ray" / tokens)
    assert len(a) > 100 and a["kl"].mean() > 0
    pd.testing.assert_frame_equal(b, a, check_exact=True)
    ha = read_json(tmp_path / "local" / "results.json")["methods"]["kl"]["headline"]
    hb = read_json(tmp_path / "ray" / "results.json")["methods"]["kl"]["headline"]
    assert ha == hb
