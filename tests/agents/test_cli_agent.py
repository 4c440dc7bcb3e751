"""``lmdiff agent organism:NAME --method M``: the scripted mock agent writes an Inspect log and a graded result."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from inspect_ai.log import read_eval_log
from typer.testing import CliRunner

from lmdiff.cli.main import app
from tests.agents.conftest import GROUND_TRUTH


def test_agent_command_with_the_mock_model(tmp_path: Path, tiny_dirs: tuple[Path, Path], real_run: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from lmdiff.organisms import zoo

    base, adapter = tiny_dirs
    users = tmp_path / "organisms"
    org = users / "tiny-ocean"
    shutil.copytree(adapter, org)
    (org / "ground_truth.json").write_text(json.dumps(GROUND_TRUTH))
    monkeypatch.setattr(zoo, "user_organisms_dir", lambda base=zoo.DEFAULT_BASE: users)
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "tiny-ocean").symlink_to(real_run)  # a finished run with kl: reused, not recomputed
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["agent", "organism:tiny-ocean", "--method", "kl", "--agent-model",
                                      "mockllm/model", "--repeats", "2", "--runs", str(runs), "--out", str(out),
                                      "--model-interactions", "1", "--base", str(base)])
    assert result.exit_code == 0, result.output
    graded = json.loads((out / "agent.json").read_text())
    assert graded["family"] == "kl" and len(graded["episodes"]) == 2 and graded["run_dir"] == str(runs / "tiny-ocean")
    assert [a["k"] for a in graded["acc"]] == [1, 5, 10] and graded["acc"][0]["n_episodes"] == 2
    assert graded["discrimination"]["status"] == "skipped"  # offline: the reason is recorded
    log = read_eval_log(graded["log"])
    assert log.status == "success" and len(log.samples) == 2
    tools = {m.function for s in log.samples for m in s.messages if m.role == "tool"}
    assert {"kl_top_tokens", "kl_texts", "ask_model", "submit"} <= tools
    assert "Agent evaluation (kl)" in (out / "report.html").read_text()
    assert "acc@1" in result.output


def test_unknown_family_and_missing_llm_fail_in_one_sentence() -> None:
    from lmdiff.errors import ConfigError

    r = CliRunner().invoke(app, ["agent", "organism:ocean-topic", "--method", "nope"])
    assert isinstance(r.exception, ConfigError) and "Unknown agent method" in r.exception.message
    r = CliRunner().invoke(app, ["agent", "organism:ocean-topic"])
    assert isinstance(r.exception, ConfigError) and "needs an LLM" in r.exception.message


def test_the_agent_model_is_built_by_the_llm_layer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lmdiff.cli.agent import build_agent_model
    from lmdiff.errors import ConfigError
    from lmdiff.llm.config import LlmConfig

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-key")
    llm = LlmConfig(model="openai/gpt-4.1-mini", base_url="http://127.0.0.1:9/v1", timeout=7.0,
                    cache_dir=tmp_path / "cache")
    model = build_agent_model(llm)
    # LlmClient's model: its attempt timeout, the configured endpoint, offline token estimates
    assert model.config.attempt_timeout == 7 and model.explicit_base_url == "http://127.0.0.1:9/v1"
    assert getattr(model.api, "_lmdiff_offline_counts", False)
    other = build_agent_model(llm, "openai/gpt-4.1")  # --agent-model: the configured endpoint is not its own
    assert other.name == "gpt-4.1" and other.explicit_base_url is None and other.config.attempt_timeout == 7
    with pytest.raises(ConfigError, match="agent model 'gpt' is invalid"):
        build_agent_model(llm, "gpt")


def test_the_black_box_agent_says_why_discrimination_is_skipped(tmp_path: Path) -> None:
    from lmdiff.agents.dataset import Organism
    from lmdiff.models.spec import ModelSpec

    org = Organism("tiny-ocean", ModelSpec(model="base"), ModelSpec(model="ft"), GROUND_TRUTH)
    out = tmp_path / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("lmdiff.agents.dataset.organism", lambda name, base: org)
        result = CliRunner().invoke(app, ["agent", "organism:tiny-ocean", "--method", "blackbox", "--agent-model",
                                          "mockllm/model", "--repeats", "1", "--out", str(out),
                                          "--model-interactions", "0"])
    assert result.exit_code == 0, result.output
    disc = json.loads((out / "agent.json").read_text())["discrimination"]
    assert disc["status"] == "skipped" and "black-box agent reads no run directory" in disc["reason"]
    assert "interactive discrimination: skipped (the black-box agent" in result.output
