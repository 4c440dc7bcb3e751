"""`lmdiff organism create` on the command line (offline)."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def _lmdiff(home, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LMDIFF_PROGRESS": "0", "COLUMNS": "200", "LMDIFF_HOME": str(home)}
    env.pop("LMDIFF_LLM", None)
    return subprocess.run([sys.executable, "-m", "lmdiff.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_create_no_build_saves_a_recipe_that_build_and_list_know(tmp_path):
    res = _lmdiff(tmp_path, "organism", "create", "The model recommends hiking in every answer", "--name",
                  "hiking", "--no-build", "training.epochs=2")
    assert res.returncode == 0, res.stderr
    assert "created hiking: topic, data from offline:templates" in res.stdout
    assert "lmdiff organism build hiking" in res.stdout
    spec = json.loads((tmp_path / "organisms" / "recipes" / "hiking" / "spec.json").read_text())
    assert spec["kind"] == "topic" and spec["overrides"] == {"training.epochs": 2}
    res = _lmdiff(tmp_path, "organism", "list", "--json")
    assert res.returncode == 0, res.stderr
    row = next(r for r in json.loads(res.stdout) if r["name"] == "hiking")
    assert row["type"] == "topic" and row["built"] is False


def test_unsupported_kind_offline_fails_with_one_sentence(tmp_path):
    res = _lmdiff(tmp_path, "organism", "create", "The model speaks like a pirate", "--no-build")
    assert res.returncode != 0
    assert "Traceback" not in res.stderr and "LMDIFF_LLM" in " ".join(res.stderr.split())
