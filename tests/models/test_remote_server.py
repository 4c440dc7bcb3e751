"""A real OpenAI-compatible endpoint as a model under study: ``transformers serve`` over the shipped SmolLM2.

(a) the shipped model against itself behind the endpoint: the behaviour pipeline validates no difference;
(b) the issue's done-when: ``lmdiff diff organism:caps openai-compatible:URL#smollm2 --methods behavior`` runs and
names capital letters. Both keep the behaviour pipeline small (16 prompts, 8 held out; 2 replies of at most
32 tokens per prompt and model), so each takes a few minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import transformers_serve

pytestmark = [pytest.mark.server, pytest.mark.real_model]

#: Small behaviour settings: 16 prompts (8 held out, so a sign-flip p can reach 1/256), 2 replies each.
BEHAVIOR = {"n_prompts": 16, "n_per_prompt": 2, "max_new_tokens": 32, "global_n_perm": 99, "n_perm": 999}


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``openai-compatible:URL#smollm2``: the shipped model behind ``transformers serve`` on a free port."""
    from lmdiff.models.registry import get_shipped

    shipped = get_shipped("smollm2-135m-instruct")
    assert shipped is not None
    with transformers_serve(shipped.local_dir(progress=False), tmp_path_factory.mktemp("serve")) as (url, name):
        yield f"openai-compatible:{url}#{name}"


@pytest.fixture(autouse=True)
def _offline_llm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LMDIFF_LLM", raising=False)


def test_same_model_local_and_behind_the_endpoint_shows_no_difference(endpoint: str, tmp_path: Path) -> None:
    from lmdiff.diff import run_diff
    from lmdiff.models.spec import ModelSpec
    from lmdiff.run_config import DiffRunConfig

    cfg = DiffRunConfig(base=ModelSpec.parse("smollm2-135m-instruct", dtype="float32"),
                        finetuned=ModelSpec.parse(endpoint), methods=["behavior"], method={"behavior": BEHAVIOR})
    res = run_diff(cfg, tmp_path / "run").results()
    entry = res["methods"]["behavior"]
    assert entry["status"] == "ok", entry
    h = entry["headline"]
    print(f"self-pair via endpoint: {h['n_validated']} of {h['n_hypotheses_tested']} validated; "
          f"global AUC {h['global_auc']}, p={h['global_pvalue']}; {entry.get('seconds')} s")
    assert h["n_validated"] == 0, h["top_hypothesis"]
    (sent,) = res["endpoints"]["finetuned"]["sent"]["chat"]  # one setting; a seed per chunk of 8 prompts
    assert (sent["temperature"], sent["max_tokens"], sent["n"], len(sent["seeds"])) == (0.8, 32, 2, 2)


def test_diff_organism_caps_against_the_endpoint_names_capital_letters(endpoint: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    overrides = [f"method.behavior.{k}={v}" for k, v in BEHAVIOR.items()]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"),
                                                        os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-m", "lmdiff.cli.main", "diff", "organism:caps", endpoint, *overrides,
         "--methods", "behavior", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=1500,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads((out / "results.json").read_text())
    entry = res["methods"]["behavior"]
    h = entry["headline"]
    print(f"organism:caps vs endpoint: {h['n_validated']} of {h['n_hypotheses_tested']} validated; "
          f"top: {h['top_hypothesis']}; {entry.get('seconds')} s")
    assert h["n_validated"] >= 1
    assert "capital" in str(h["top_hypothesis"]).lower()
