"""The README's "Adding a method" walkthrough is true: its module registers and runs end to end."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

from lmdiff.config import validate
from lmdiff.diff import run_diff
from lmdiff.methods.registry import METHODS, available_methods
from lmdiff.run_config import DiffRunConfig

README = Path(__file__).resolve().parents[1] / "README.md"


def _walkthrough_code() -> str:
    text = README.read_text()
    section = text.split("## Adding a method", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_readme_method_registers_and_runs(tiny_dirs, tmp_path):
    path = tmp_path / "loglik_shift.py"
    path.write_text(_walkthrough_code())
    spec = importlib.util.spec_from_file_location("readme_loglik_shift", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        assert "loglik_shift" in available_methods()
        base_dir, adapter_dir = tiny_dirs
        cfg = validate(DiffRunConfig, {
            "base": {"model": str(base_dir), "dtype": "float32"},
            "finetuned": {"model": str(base_dir), "adapter": str(adapter_dir), "dtype": "float32"},
            "methods": ["loglik_shift"], "method": {"loglik_shift": {"max_texts": 4, "max_tokens": 16}},
        })
        run = run_diff(cfg, tmp_path / "run")
        res = json.loads((run.path / "results.json").read_text())["methods"]["loglik_shift"]
        assert res["status"] == "ok", res
        assert res["headline"]["n_texts"] == 4 and res["headline"]["mean_shift"] != 0.0
        assert "Log-likelihood shift" in (run.path / "report.html").read_text()
    finally:
        METHODS.remove("loglik_shift")
