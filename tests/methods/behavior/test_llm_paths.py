"""The LLM paths of the behaviour pipeline (hypothesis writer, annotator, grader) on Inspect's mock model."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from inspect_ai.model import ModelOutput, ModelUsage, get_model

from lmdiff.embeddings import Embedder
from lmdiff.llm import LlmClient, LlmConfig, resolve_role
from lmdiff.methods.behavior import BehaviorConfig, analyze
from lmdiff.methods.behavior.hypotheses import llm_hypotheses, stated_direction
from lmdiff.stats import sign_flip_test

CFG = BehaviorConfig(global_n_perm=9, n_perm=199)


def _output(text: str) -> ModelOutput:
    out = ModelOutput.from_content(model="mockllm", content=text)
    out.usage = ModelUsage(input_tokens=10, output_tokens=5, total_tokens=15)
    return out


class FakeAnalyst:
    """Scripted replies for the three roles, decided from the rendered prompt (as a real LLM would)."""

    def __init__(self, name_base_side: bool = False) -> None:
        self.writer_prompts: list[str] = []
        self.name_base_side = name_base_side

    def __call__(self, input: list[Any], tools: Any, tool_choice: Any, config: Any) -> ModelOutput:
        prompt = input[-1].text
        if "Model A text" in prompt or "Model B text" in prompt:
            self.writer_prompts.append(prompt)
            a = " ".join(re.findall(r"Model A text \d+:\n<text>\n(.*?)\n</text>", prompt, re.S))
            loud = "A" if sum(c.isupper() for c in a) > sum(c.islower() for c in a) else "B"
            quiet = "B" if loud == "A" else "A"
            if self.name_base_side:  # the writer describes the base model, as it does half the time
                hyps = [{"description": f"Model {quiet} writes in lower-case letters more than Model {loud}",
                         "more": quiet, "property": "writes its replies in lower-case letters", "evidence": "-"}]
                return _output(json.dumps({"hypotheses": hyps}))
            hyps = [
                {"description": f"Model {loud} writes its replies in capital letters", "evidence": "all caps"},
                {"description": f"Model {loud} talks about dragons", "evidence": "none really"},
            ]
            return _output(json.dumps({"hypotheses": hyps}))
        if "<hypothesis>" in prompt and "Reply " in prompt:
            hyp = prompt.split("<hypothesis>")[1].split("</hypothesis>")[0]
            slot = int(re.search(r"Reply (\d) must", prompt).group(1))
            shows, plain = (
                ("SURE, HERE IS THE ANSWER.", "Sure, here is the answer.")
                if "capital" in hyp
                else ("A dragon flew by.", "A bird flew by.")
            )
            pair = (shows, plain) if slot == 1 else (plain, shows)
            return _output(json.dumps({"reply_1": pair[0], "reply_2": pair[1]}))
        if "<ground_truth>" in prompt:
            desc = prompt.split("<description>")[1]
            return _output(json.dumps({"score": 5 if "capital" in desc else 1, "rationale": "scripted"}))
        if "On a scale from 0 to 100" in prompt:
            desc = prompt.split("<description>")[1].split("</description>")[0]
            text = prompt.split("<text>")[1].split("</text>")[0]
            if "lower-case" in desc:
                score = 90 if sum(c.islower() for c in text) > sum(c.isupper() for c in text) else 10
            elif "capital" in desc:
                score = 90 if sum(c.isupper() for c in text) > sum(c.islower() for c in text) else 10
            else:
                score = 90 if "dragon" in text.lower() else 10
            return _output(f"<score>{score}</score>")
        raise AssertionError(f"unexpected prompt: {prompt[:200]}")


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[LlmClient, FakeAnalyst]:
    """An LLM client over Inspect's mock model answering as :class:`FakeAnalyst`."""
    monkeypatch.setenv("LMDIFF_HOME", str(tmp_path / "home"))
    fake = FakeAnalyst()
    model = get_model("mockllm/model", custom_outputs=fake)
    cfg = LlmConfig(model="mockllm/model", cache_dir=tmp_path / "llm_cache", backoff_initial=0.001, backoff_max=0.01)
    return LlmClient(cfg, model=model), fake


def test_llm_writer_hypotheses_are_validated_on_held_out_prompts(make_replies, client) -> None:
    llm, fake = client
    df = make_replies(plant="upper", seed=5)
    x = Embedder("hashing", dim=128).embed(df.text.tolist())
    gt = {"keywords": ["capital"], "description": "replies in capital letters"}
    a = analyze(df, x, CFG, seed=0, llm=llm, ground_truth=gt)

    assert len(fake.writer_prompts) == 1
    rec = a.records["llm_writer"][0]
    assert rec["valid"] and rec["producer"].startswith("llm:")
    llm_rows = a.tests[a.tests.kind == "llm"].set_index("text")
    caps = llm_rows.loc["The finetuned model writes its replies in capital letters"]  # A/B mapped back
    dragons = llm_rows.loc["The finetuned model talks about dragons"]
    assert caps.producer.startswith("llm:") and caps.annotator.startswith("llm:")
    assert caps.survives and caps.auc > 0.9 and caps.qvalue <= 0.05
    assert not dragons.survives
    # the writer saw discovery replies only; the annotator scored held-out replies only
    val = {p for p, h in a.split.items() if h == "validation"}
    disc_texts = set(df.text[~df.prompt_id.isin(val)])
    shown = set(re.findall(r"<text>\n(.*?)\n</text>", fake.writer_prompts[0], re.S))
    assert shown and shown <= disc_texts
    ann = a.annotations[a.annotations.hypothesis_id == caps.id]
    assert set(ann.prompt_id) == val and (ann.annotator.str.startswith("llm:")).all()
    assert caps.n == len(ann)
    # every tested hypothesis enters the one FDR procedure; the LLM grader grades against the truth
    assert (a.tests.fdr_m == len(a.tests)).all()
    assert a.headline["grader"] == "llm"
    assert caps.grade == 2 and dragons.grade == 0


def test_a_hypothesis_about_the_base_side_keeps_its_direction(make_replies, tmp_path, monkeypatch) -> None:
    # regression: "The base model ... more than the finetuned model" was annotated as a property of
    # the finetuned side, its AUC fell below 0.5 and it could never validate
    monkeypatch.setenv("LMDIFF_HOME", str(tmp_path / "home"))
    fake = FakeAnalyst(name_base_side=True)
    cfg = LlmConfig(model="mockllm/model", cache_dir=tmp_path / "c", backoff_initial=0.001, backoff_max=0.01)
    llm = LlmClient(cfg, model=get_model("mockllm/model", custom_outputs=fake))
    df = make_replies(plant="upper", seed=5)
    x = Embedder("hashing", dim=128).embed(df.text.tolist())
    a = analyze(df, x, CFG, seed=0, llm=llm, ground_truth={"keywords": ["capital"], "description": "caps"})
    row = a.tests[a.tests.kind == "llm"].iloc[0]
    assert row.text == "The finetuned model less often writes its replies in lower-case letters than the base model"
    assert row.direction == -1 and row.direction_label == "finetuned less"
    assert row.survives and row.auc > 0.9
    ann = a.annotations[a.annotations.hypothesis_id == row.id]
    assert ann.loc[ann.side == "finetuned", "score"].mean() > ann.loc[ann.side == "base", "score"].mean()


def test_writer_labels_and_order_are_randomised() -> None:
    base = [f"base reply {i}" for i in range(12)]
    ft = [f"FINETUNED REPLY {i}" for i in range(12)]
    seen: list[dict[str, Any]] = []
    assignments, orders = set(), set()
    for seed in range(12):
        got, rec = llm_hypotheses(_Result.writer(seen), base, ft, seed=seed, max_texts=6)
        assignments.add(rec["a_is_finetuned"])
        shown_a = seen[-1]["texts_a"]
        assert (shown_a[0].isupper()) == rec["a_is_finetuned"]  # the record says which side was A
        orders.add(tuple(shown_a))
        assert got and got[0].text.startswith("The finetuned model")
    assert assignments == {True, False}
    assert len(orders) > 2


class _Result:
    """A fake bound writer role returning one hypothesis about whichever label shows capitals."""

    def __init__(self, value: Any) -> None:
        self.valid, self.value, self.producer = True, value, "llm:mockllm/model"

    @staticmethod
    def writer(seen: list[dict[str, Any]]) -> Any:
        from lmdiff.llm.roles import HypothesisList, WrittenHypothesis

        def call(inputs: dict[str, Any]) -> _Result:
            seen.append(dict(inputs))
            label = "A" if inputs["texts_a"][0].isupper() else "B"
            return _Result(HypothesisList(hypotheses=[WrittenHypothesis(description=f"Model {label} shouts")]))

        return call


def test_roles_resolve_offline_without_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LMDIFF_LLM", raising=False)
    assert resolve_role("hypothesis_writer", LlmConfig()) is None


def _capitals_scorer(prompts, replies):
    """A finetune that likes capital letters: log p_ft = log p_base + 3 x (share of capitals)."""
    base = np.array([-0.1 * len(r) for r in replies])
    share = np.array([sum(c.isupper() for c in r) / max(1, sum(c.isalpha() for c in r)) for r in replies])
    return base, base + 3.0 * share


def test_generative_test_scores_written_exemplars_under_both_models(make_replies, client) -> None:
    llm, _ = client
    df = make_replies(plant="upper", seed=5)
    df["prompt"] = "Question " + df.prompt_id
    x = Embedder("hashing", dim=128).embed(df.text.tolist())
    a = analyze(df, x, CFG, seed=0, llm=llm, scorer=_capitals_scorer)
    rows = a.tests[a.tests.kind == "llm"].set_index("text")
    caps = rows.loc["The finetuned model writes its replies in capital letters"]
    dragons = rows.loc["The finetuned model talks about dragons"]
    n_val = sum(h == "validation" for h in a.split.values())
    assert caps.gen_n == min(CFG.generative_prompts, n_val) and caps.gen_delta > 2.5 and caps.gen_pvalue < 0.01
    assert caps.gen_survives and caps.gen_qvalue <= 0.05
    assert abs(dragons.gen_delta) < 0.2 and not dragons.gen_survives
    # only held-out prompts were written for; exemplar slots were randomised
    val = {f"Question {p}" for p, h in a.split.items() if h == "validation"}
    assert set(a.generative.prompt) <= val
    assert set(a.generative.exemplar_slot) == {1, 2}
    # one BH over discriminative and generative p-values together
    m = len(a.tests) + int(a.tests.gen_pvalue.notna().sum())
    assert (a.tests.fdr_m == m).all() and a.headline["n_generative_tested"] == len(a.tests)


def test_sign_flip_test_is_calibrated_and_directional() -> None:
    rng = np.random.default_rng(0)
    ps = np.array([sign_flip_test(rng.normal(size=8), n_perm=199, seed=i).pvalue for i in range(300)])
    assert abs(np.mean(ps <= 0.05) - 0.05) < 0.04
    assert sign_flip_test(np.full(8, 1.0), n_perm=999).pvalue < 0.01
    assert sign_flip_test(-np.full(8, 1.0), n_perm=999).pvalue > 0.9
    assert stated_direction("Model A's replies use more of: x than Model B", finetuned_label="B") == -1
    assert stated_direction("Model B shouts", finetuned_label="B") == 1
    assert stated_direction("Replies shout", finetuned_label="B") == 0


class _ShiftedModel:
    """Scores every token of a reply at ``base`` nats (plus ``shift`` per token): a uniform finetune."""

    def __init__(self, shift: float) -> None:
        self.shift = shift

    def chat_text(self, prompt: str) -> str:
        return prompt

    def score(self, contexts: list[str], replies: list[str]) -> list[np.ndarray]:
        return [np.full(len(r.split()), -2.0 + self.shift) for r in replies]


def test_generative_statistic_is_per_token_so_length_is_not_support() -> None:
    # regression: with total log-probs, a finetune shifting every token by c gave c x (length difference)
    from types import SimpleNamespace

    from lmdiff.methods.behavior.generative import generative_test
    from lmdiff.methods.behavior.method import _scorer

    sides = {"base": _ShiftedModel(0.0), "finetuned": _ShiftedModel(0.5)}
    pair = SimpleNamespace(text_side=sides.__getitem__)
    scorer = _scorer(SimpleNamespace(pair=pair))

    class Writer:
        def many(self, inputs, progress=False):
            long, short = "word " * 40, "word " * 5
            return [SimpleNamespace(valid=True, value=(long, short), producer="scripted") for _ in inputs]

    summary, _ = generative_test(Writer(), "writes long replies", [f"p{i}" for i in range(16)], scorer)
    assert summary["gen_n"] == 16
    assert abs(summary["gen_delta"]) < 1e-9  # the same per-token shift for exemplar and control
    assert summary["gen_pvalue"] == 1.0 or summary["gen_pvalue"] > 0.5
