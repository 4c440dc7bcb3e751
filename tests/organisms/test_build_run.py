"""`organism build` writes the run files every computing command writes (the run shell)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import lmdiff.organisms.build_run as BR
import lmdiff.organisms.zoo as Z
from lmdiff.errors import ConfigError
from lmdiff.io import read_json, write_json
from lmdiff.organisms.build_run import OrganismBuildConfig, run_organism_build


def _fake_build(calls: list[dict[str, Any]], fail: bool = False):
    def build(name, overrides=None, base=Z.DEFAULT_BASE, out_dir=None, distill=None, resume=True, progress=True):
        calls.append({"name": name, "overrides": overrides, "base": base, "out_dir": out_dir, "resume": resume})
        if fail:
            raise KeyboardInterrupt
        out = Path(out_dir)
        (out / "adapter_model.safetensors").write_bytes(b"weights")
        write_json(out / "adapter_config.json", {"base_model_name_or_path": base})
        write_json(out / "rates.json", {"primary": "caps_rate", "rates": {"caps_rate": 0.75},
                                        "base_rates": {"caps_rate": 0.0},
                                        "collapse_check": {"ok": True, "warnings": []}})
        return out

    return build


def test_build_writes_the_run_files(tmp_path, monkeypatch):
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(BR, "build_organism", _fake_build(calls))
    cfg = OrganismBuildConfig(organism="caps", overrides={"training.seed": 3}, resume=False)
    run = run_organism_build(cfg, tmp_path / "caps")
    assert calls == [{"name": "caps", "overrides": {"training.seed": 3}, "base": Z.DEFAULT_BASE,
                      "out_dir": run.path, "resume": False}]
    for name in ("config.yaml", "manifest.json", "logs/run.log", "results.json"):
        assert (run.path / name).exists(), name
    manifest = read_json(run.path / "manifest.json")
    assert manifest["command"] == "organism build" and manifest["status"] == "ok"
    assert manifest["seeds"] == {"training": 3}
    entry = read_json(run.path / "results.json")["methods"]["build"]
    assert entry["status"] == "ok" and entry["headline"]["rates"] == {"caps_rate": 0.75}
    assert entry["summary"] == "built caps on smollm2-135m-instruct: caps_rate 75% (base 0%)"
    assert entry["artifacts"] == ["adapter_model.safetensors", "adapter_config.json", "rates.json"]
    assert "organism: caps" in (run.path / "config.yaml").read_text()


def test_interrupted_build_is_recorded_and_out_on_a_file_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(BR, "build_organism", _fake_build([], fail=True))
    with pytest.raises(KeyboardInterrupt):
        run_organism_build(OrganismBuildConfig(organism="caps"), tmp_path / "caps")
    assert read_json(tmp_path / "caps" / "manifest.json")["status"] == "interrupted"
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(ConfigError, match="existing file"):
        run_organism_build(OrganismBuildConfig(organism="caps"), target)
