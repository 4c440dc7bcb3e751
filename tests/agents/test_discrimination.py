"""Interactive discrimination: skipped offline with the reason; with an LLM, a binomial test in the run's family."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from inspect_ai.model import ModelOutput, ModelUsage, get_model

from lmdiff.agents.discrimination import METHOD, DiscriminationConfig, effect_d, run_discrimination
from lmdiff.io import write_json
from lmdiff.llm.client import LlmClient
from lmdiff.llm.config import LlmConfig
from lmdiff.runs.claims import D_CAP, finalise_claims, load_claims, record_claims
from tests.agents.test_agent_loop import FakeModels


def run_dir(tmp_path: Path) -> Path:
    d = tmp_path / "run"
    d.mkdir()
    write_json(d / "results.json", {"methods": {"behavior": {"status": "ok"}},
                                    "methods_run": {"methods": ["behavior"]}})
    record_claims(d, "behavior", [
        {"claim_id": "h0", "statement": "The finetuned model talks about the ocean", "direction": "finetuned more",
         "pvalue": 0.001, "effect_size_d": 1.2, "n": 12, "unit": "prompt"},
        {"claim_id": "h1", "statement": "The finetuned model writes longer replies", "direction": "finetuned more",
         "pvalue": 0.6, "effect_size_d": 0.1, "n": 12, "unit": "prompt"}])
    finalise_claims(d, methods=["behavior"])
    return d


def reply(text: str) -> ModelOutput:
    out = ModelOutput.from_content(model="mockllm", content=text)
    out.usage = ModelUsage(input_tokens=10, output_tokens=5, total_tokens=15)
    return out


def test_offline_it_is_skipped_with_the_reason(tmp_path: Path) -> None:
    d = run_dir(tmp_path)
    entry = run_discrimination(d, FakeModels(), None)
    assert entry["status"] == "skipped" and "LMDIFF_LLM" in entry["reason"]
    assert json.loads((d / "results.json").read_text())[METHOD] == entry
    assert set(load_claims(d)["method"]) == {"behavior"}


def test_guesses_are_tested_and_join_the_fdr_family(tmp_path: Path) -> None:
    d = run_dir(tmp_path)

    def llm(messages: list[Any], tools: Any, tool_choice: Any, config: Any) -> ModelOutput:
        text = messages[-1].text
        if "Which model wrote this answer" in text:  # a guesser that reads the hidden answer
            answer = text.split("<answer>")[1].split("</answer>")[0]
            return reply(json.dumps({"guess": "finetuned" if "ocean" in answer else "base"}))
        return reply(json.dumps({"prompt": "Tell me about your weekend."}))

    client = LlmClient(LlmConfig(model="mockllm/model", cache=False, cache_dir=tmp_path / "cache"),
                       model=get_model("mockllm/model", custom_outputs=llm))
    models = FakeModels()
    entry = run_discrimination(d, models, client, DiscriminationConfig(rounds=8))
    assert entry["status"] == "ok" and len(entry["tests"]) == 1  # only the validated hypothesis
    t = entry["tests"][0]
    assert t["n"] == 8 and t["correct"] == 8 and t["pvalue"] == pytest.approx(0.5 ** 8)
    assert t["survives"] and t["qvalue"] is not None
    assert len(models.asked) == 16  # both models answer each probe
    claims = load_claims(d)
    mine = claims[claims["method"] == METHOD]
    assert len(mine) == 1 and mine["unit"].iloc[0] == "prompt" and mine["n"].iloc[0] == 8
    assert int(claims["fdr_m"].iloc[0]) == 3  # two behaviour claims and this one: one family
    saved = json.loads((d / "results.json").read_text())["claims"]
    assert saved["by_method"][METHOD] == 1
    # the test of a finding is that finding: it keeps the source claim's family and is counted once
    source = claims[(claims["method"] == "behavior") & claims["survives"].astype(bool)]
    assert mine["family"].iloc[0] == source["family"].iloc[0] and saved["n_validated"] == 1


class FlakyModels(FakeModels):
    """Both models fail to answer the first probe (a generation error), then answer."""

    def ask(self, side: str, prompt: str, max_new_tokens: int, seed: int) -> str:
        if not self.asked:
            self.asked.append(("failed", prompt))
            raise RuntimeError("CUDA out of memory")
        return super().ask(side, prompt, max_new_tokens, seed)


def test_a_round_the_models_cannot_answer_is_excluded_not_fatal(tmp_path: Path) -> None:
    d = run_dir(tmp_path)

    def llm(messages: list[Any], tools: Any, tool_choice: Any, config: Any) -> ModelOutput:
        if "Which model wrote this answer" in messages[-1].text:
            return reply(json.dumps({"guess": "finetuned"}))
        return reply(json.dumps({"prompt": "Tell me about your weekend."}))

    client = LlmClient(LlmConfig(model="mockllm/model", cache=False, cache_dir=tmp_path / "cache"),
                       model=get_model("mockllm/model", custom_outputs=llm))
    entry = run_discrimination(d, FlakyModels(), client, DiscriminationConfig(rounds=4))
    t = entry["tests"][0]
    assert entry["status"] == "ok" and t["n"] == 3
    assert t["excluded"] == ["round 0: the models did not answer (RuntimeError: CUDA out of memory)"]


def test_effect_size_is_capped_when_every_guess_is_right() -> None:
    assert effect_d([True] * 5) == D_CAP and effect_d([True, False]) == 0.0
