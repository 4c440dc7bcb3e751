"""The agent loop through Inspect with its mock model: scripted tool calls, budgets, grading, the log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from inspect_ai.log import read_eval_log
from inspect_ai.model import ChatMessageUser, ModelOutput, ModelUsage, get_model

from lmdiff.agents.budget import AgentBudget
from lmdiff.agents.dataset import Organism, sample_for
from lmdiff.agents.mock import scripted_agent
from lmdiff.agents.task import acc_table, agent_task, episodes, run_agent_eval, summarise
from lmdiff.models.spec import ModelSpec
from tests.agents.conftest import GROUND_TRUTH

TOKENS_PER_CALL = 120


def call(tool: str, args: dict[str, Any]) -> ModelOutput:
    out = ModelOutput.for_tool_call("mockllm", tool, args)
    out.usage = ModelUsage(input_tokens=100, output_tokens=20, total_tokens=TOKENS_PER_CALL)
    return out


class FakeModels:
    """A ModelAccess that records what it was asked; the finetuned side talks about the ocean."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def ask(self, side: str, prompt: str, max_new_tokens: int, seed: int) -> str:
        self.asked.append((side, prompt))
        return "Whales swim in the ocean." if side == "finetuned" else "Here is a plain answer."


def organism(name: str = "tiny-ocean", gt: dict[str, Any] | None = None) -> Organism:
    return Organism(name, ModelSpec(model="base"), ModelSpec(model="ft"), gt or GROUND_TRUTH)


def run(tmp_path: Path, family: str, outputs: Any, budget: AgentBudget, run_dir: Path | None = None,
        repeats: int = 1, models: FakeModels | None = None, orgs: list[Organism] | None = None) -> Any:
    samples = [sample_for(o, run_dir) for o in (orgs or [organism()])]
    task = agent_task(samples, family, budget, repeats=repeats, access=(lambda meta: models) if models else None)
    return run_agent_eval(task, get_model("mockllm/model", custom_outputs=outputs), tmp_path / "logs")


def test_scripted_adl_episode_is_graded_and_logged(tmp_path: Path, real_run: Path) -> None:
    script = [call("adl_overview", {}), call("adl_lens", {"layer": 1, "position": 1}),
              call("board_add", {"hypothesis": "The finetuned model talks about whales", "confidence": 0.7}),
              call("submit", {"guesses": ["The finetuned model writes shorter replies",
                                          "The finetuned model brings up the ocean and whales"]})]
    log = run(tmp_path, "adl", script, AgentBudget(llm_calls=6), run_dir=real_run)
    saved = read_eval_log(log.location)  # the .eval file on disk, as `inspect view` reads it
    assert Path(log.location).exists() and saved.status == "success"
    sample = saved.samples[0]
    tool_msgs = [m for m in sample.messages if m.role == "tool"]
    assert [m.function for m in tool_msgs] == ["adl_overview", "adl_lens", "board_add", "submit"]
    assert all(m.error is None for m in tool_msgs) and "layer 1 lens" in tool_msgs[0].text
    ep = sample.metadata["episode"]
    assert ep["llm_calls"] == 4 and ep["tokens"] == 4 * TOKENS_PER_CALL and ep["stop_reason"] == "submitted"
    assert sample.metadata["board"]["entries"][0]["text"] == "The finetuned model talks about whales"
    score = sample.scores["ground_truth_grader"]
    assert score.metadata["matches"] == [0, 2] and score.value["hit@1"] == 0.0 and score.value["hit@5"] == 1.0
    assert score.metadata["producer"].startswith("offline:")
    eps = episodes(saved)
    assert eps.loc[0, "hit@5"] == 1.0 and eps.loc[0, "tool_calls"] == 4


def test_llm_call_budget_binds_and_the_last_turn_asks_for_submit(tmp_path: Path) -> None:
    never_submits = [call("board_view", {}) for _ in range(10)]
    log = run(tmp_path, "blackbox", never_submits, AgentBudget(llm_calls=3))
    sample = read_eval_log(log.location).samples[0]
    ep = sample.metadata["episode"]
    assert ep["llm_calls"] == 3 and "LLM-call budget" in ep["stop_reason"]
    users = [m.text for m in sample.messages if isinstance(m, ChatMessageUser)]
    assert users[-1].startswith("This is your last turn")
    assert sample.metadata["guesses"] == [] and sample.scores["ground_truth_grader"].value["hit@10"] == 0.0


def test_token_budget_caps_each_reply_and_the_spend(tmp_path: Path) -> None:
    caps: list[int | None] = []  # max_tokens of each call

    def greedy(messages: list[Any], tools: Any, tool_choice: Any, config: Any) -> ModelOutput:
        """Writes as long a reply as it may (500 tokens unbounded); counts the prompt without the tool schemas."""
        prompt = sum(len(m.text) for m in messages) // 4
        out = ModelOutput.for_tool_call("mockllm", "board_view", {})
        reply = 500 if config.max_tokens is None else min(500, config.max_tokens)
        caps.append(config.max_tokens)
        out.usage = ModelUsage(input_tokens=prompt, output_tokens=reply, total_tokens=prompt + reply)
        return out

    budget = AgentBudget(llm_calls=10, tokens=1500)
    log = run(tmp_path, "blackbox", greedy, budget)
    ep = read_eval_log(log.location).samples[0].metadata["episode"]
    assert ep["tokens"] <= budget.tokens and "token budget spent" in ep["stop_reason"] and ep["llm_calls"] >= 2
    assert len(caps) == ep["llm_calls"] and all(m is not None and 0 < m < budget.tokens for m in caps)
    assert caps == sorted(caps, reverse=True)
    # the last call's reply used all the room it was given: the budget, not the model, stopped the episode
    assert budget.tokens - ep["tokens"] < 600


def test_a_reply_without_usage_still_spends_the_budget() -> None:
    from lmdiff.agents.solver import prompt_tokens, spent_tokens

    messages = [ChatMessageUser(content="x" * 400)]
    assert prompt_tokens(messages) == 100 and prompt_tokens(messages, schema_chars=40) == 110
    bare = ModelOutput.from_content(model="m", content="y" * 80)
    assert bare.usage is None and spent_tokens(bare, 100) == 120
    reported = call("board_view", {})
    assert spent_tokens(reported, 100) == TOKENS_PER_CALL


def test_model_interaction_budget_refuses_past_the_limit(tmp_path: Path) -> None:
    models = FakeModels()
    script = [call("ask_model", {"model": "finetuned", "prompt": f"question {i}"}) for i in range(3)]
    script.append(call("submit", {"guesses": ["The finetuned model talks about the ocean"]}))
    log = run(tmp_path, "blackbox", script, AgentBudget(model_interactions=2), models=models)
    sample = read_eval_log(log.location).samples[0]
    assert models.asked == [("finetuned", "question 0"), ("finetuned", "question 1")]
    replies = [m.text for m in sample.messages if m.role == "tool"]
    assert "Whales" in replies[0] and "budget spent" in replies[2]
    assert sample.metadata["episode"]["model_interactions"] == 2
    assert sample.scores["ground_truth_grader"].value["hit@1"] == 1.0


def test_repeats_and_organisms_give_acc_at_k_with_intervals(tmp_path: Path) -> None:
    caps = {"type": "style", "keywords": ["uppercase"], "description": "writes in capital letters"}

    def policy(messages: list[Any], tools: Any, tool_choice: Any, config: Any) -> ModelOutput:
        return call("submit", {"guesses": ["The finetuned model talks about the ocean"]})

    log = run(tmp_path, "blackbox", policy, AgentBudget(), repeats=3,
              orgs=[organism(), organism("caps", caps)])
    eps = episodes(read_eval_log(log.location))
    assert len(eps) == 6 and sorted(eps["repeat"].unique()) == [1, 2, 3]
    acc = {a["k"]: a for a in acc_table(eps)}
    assert acc[1]["acc"] == pytest.approx(0.5) and acc[1]["n_organisms"] == 2 and "organisms" in acc[1]["interval"]
    assert acc[1]["low"] <= 0.5 <= acc[1]["high"]
    res = summarise(log, "blackbox", tmp_path / "out")
    assert (tmp_path / "out" / "agent.json").exists()
    assert "Agent evaluation (blackbox)" in (tmp_path / "out" / "report.html").read_text()
    assert len(res.episodes) == 6


@pytest.mark.parametrize("family", ["adl", "kl", "behavior", "probing", "dictionaries"])
def test_scripted_mock_agent_calls_every_tool_and_submits(tmp_path: Path, real_run: Path, family: str) -> None:
    models = FakeModels()
    log = run(tmp_path, family, scripted_agent(), AgentBudget(llm_calls=12), run_dir=real_run, models=models)
    sample = read_eval_log(log.location).samples[0]
    tools = [m for m in sample.messages if m.role == "tool"]
    assert all(m.error is None for m in tools), [m.error for m in tools]
    assert tools[-1].function == "submit" and sample.metadata["episode"]["stop_reason"] == "submitted"
    assert {"ask_model", "board_add"} <= {m.function for m in tools} and len(models.asked) == 1


class CrashingModels(FakeModels):
    """A ModelAccess whose generation crashes (as a local model running out of memory would)."""

    def ask(self, side: str, prompt: str, max_new_tokens: int, seed: int) -> str:
        super().ask(side, prompt, max_new_tokens, seed)
        raise RuntimeError("CUDA out of memory")


def test_a_crashing_tool_is_a_tool_message_not_a_failed_sample(tmp_path: Path) -> None:
    models = CrashingModels()
    script = [call("ask_model", {"model": "finetuned", "prompt": "hi"}),
              call("submit", {"guesses": ["The finetuned model talks about the ocean"]})]
    log = run(tmp_path, "blackbox", script, AgentBudget(), models=models)
    sample = read_eval_log(log.location).samples[0]
    assert sample.error is None
    tool_msgs = [m for m in sample.messages if m.role == "tool"]
    assert [m.function for m in tool_msgs] == ["ask_model", "submit"] and len(models.asked) == 1
    assert tool_msgs[0].error is not None and tool_msgs[0].error.message == "RuntimeError: CUDA out of memory"
    assert sample.scores["ground_truth_grader"].value["hit@1"] == 1.0


def test_an_errored_episode_is_left_out_of_acc_at_k_and_counted(tmp_path: Path) -> None:
    calls = {"n": 0}

    def policy(messages: list[Any], tools: Any, tool_choice: Any, config: Any) -> ModelOutput:
        calls["n"] += 1
        if calls["n"] == 1:  # the first episode's provider call fails for good
            raise RuntimeError("provider unavailable")
        return call("submit", {"guesses": ["The finetuned model talks about the ocean"]})

    log = run(tmp_path, "blackbox", policy, AgentBudget(), repeats=2)
    eps = episodes(read_eval_log(log.location))
    assert len(eps) == 2 and eps["error"].notna().sum() == 1
    failed = eps[eps["error"].notna()].iloc[0]
    assert "provider unavailable" in failed["error"] and np.isnan(failed["hit@1"])
    acc = {a["k"]: a for a in acc_table(eps)}
    assert acc[1]["acc"] == 1.0 and acc[1]["n_episodes"] == 1 and acc[1]["n_errored"] == 1
    res = summarise(log, "blackbox", tmp_path / "out")
    assert res.acc[0]["n_errored"] == 1 and "1 of 2 episodes errored" in (tmp_path / "out" / "report.html").read_text()


@pytest.mark.parametrize("url", ["http://user:sk-secret@127.0.0.1:9/v1", "http://127.0.0.1:9/v1?api_key=sk-secret",
                                 "http://127.0.0.1:9/v1#sk-secret"])
def test_a_base_url_with_credentials_is_refused_before_anything_is_logged(tmp_path: Path, url: str) -> None:
    from lmdiff.agents.task import check_base_url
    from lmdiff.errors import LmdiffError

    task = agent_task([sample_for(organism(), None)], "blackbox", AgentBudget())
    with pytest.raises(LmdiffError, match="carries credentials") as err:
        run_agent_eval(task, get_model("mockllm/model", base_url=url), tmp_path / "logs")
    assert "sk-secret" not in err.value.message and not (tmp_path / "logs").exists()
    with pytest.raises(LmdiffError, match="carries credentials"):
        run_agent_eval(task, "mockllm/model", tmp_path / "logs", model_base_url=url)
    check_base_url("http://127.0.0.1:9/v1")  # no credentials: accepted
    check_base_url("http://[::1]:8000/v1/")
