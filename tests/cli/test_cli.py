"""The command line, run as a user would run it (subprocesses)."""

import os
import signal
import subprocess
import sys
import time

import pandas as pd

from lmdiff.io import read_json

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "LMDIFF_PROGRESS": "0", "COLUMNS": "200"}


def lmdiff(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lmdiff.cli.main", *args], capture_output=True, text=True,
                          env=ENV, timeout=timeout)


def test_unknown_model_is_one_sentence_and_hint():
    res = lmdiff("generate", "no-such-model", "hi")
    assert res.returncode == 1
    assert "Traceback" not in res.stderr + res.stdout
    assert "Error: Unknown model 'no-such-model'" in " ".join(res.stderr.split())
    assert "Hint:" in res.stderr


def test_bad_inputs_are_clear(tiny_model_dir, tmp_path):
    res = lmdiff("generate", str(tiny_model_dir), "hi", "--dtype", "float64")
    assert res.returncode == 1 and "Traceback" not in res.stderr and "'dtype'" in res.stderr
    res = lmdiff("generate", str(tiny_model_dir), "hi", "--adapter", str(tmp_path / "nope"))
    assert res.returncode == 1 and "Traceback" not in res.stderr and "adapter_config.json" in res.stderr
    res = lmdiff("diff", str(tiny_model_dir), str(tiny_model_dir), "--methods", "nope")
    assert res.returncode == 1 and "Unknown method 'nope'" in res.stderr and "samples" in res.stderr
    res = lmdiff("diff", str(tiny_model_dir), str(tiny_model_dir), "generation.temprature=2")
    assert res.returncode == 1 and "generation.temprature" in res.stderr


def test_models_list_and_methods():
    res = lmdiff("models", "list")
    assert res.returncode == 0 and "smollm2-135m-instruct" in res.stdout and "all-minilm" in res.stdout
    res = lmdiff("methods")
    assert res.returncode == 0 and "samples" in res.stdout


def test_generate_side_by_side(tiny_model_dir, tiny_adapter_dir, tmp_path):
    out = tmp_path / "run"
    res = lmdiff("generate", str(tiny_model_dir), "Hello there", "Why?", "--vs", str(tiny_adapter_dir),
                 "-s", "generation.max_new_tokens=5", "--out", str(out))
    assert res.returncode == 0, res.stderr
    table = pd.read_parquet(out / "generations.parquet")
    assert len(table) == 4 and table["model"].nunique() == 2
    results = read_json(out / "results.json")
    assert results["methods"]["generate"]["status"] == "ok"
    assert (out / "report.html").exists() and (out / "config.yaml").exists() and (out / "manifest.json").exists()


def test_kill_midway_then_resume(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    prompts = [f"Prompt number {i}" for i in range(12)]
    args = ["generate", str(tiny_model_dir), *prompts, "-s", "generation.max_new_tokens=24",
            "-s", "generation.batch_size=1", "--out", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "lmdiff.cli.main", *args], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = out / "artifacts" / "generate-0" / "parts"
    deadline = time.time() + 240
    while time.time() < deadline and len(list(parts.glob("part-*.parquet"))) < 2:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = {p.name: p.stat().st_mtime_ns for p in parts.glob("part-*.parquet")}
    assert 2 <= len(done_before) < 12, "the run should have been killed midway"
    res = lmdiff(*args)
    assert res.returncode == 0, res.stderr
    after = {p.name: p.stat().st_mtime_ns for p in parts.glob("part-*.parquet")}
    assert len(after) == 12
    assert all(after[name] == mtime for name, mtime in done_before.items())  # finished parts reused
    table = pd.read_parquet(out / "generations.parquet")
    assert sorted(table["prompt_index"]) == list(range(12))
    assert read_json(out / "manifest.json")["invocations"] == 2
