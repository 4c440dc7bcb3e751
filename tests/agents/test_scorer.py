"""Grading an agent's guesses with an LLM grader: a guess without a valid grader reply is ungraded, not a miss."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
from inspect_ai.model import ModelOutput, ModelUsage, get_model

from lmdiff.agents.scorer import grade_guesses
from lmdiff.agents.task import acc_table
from lmdiff.llm.client import LlmClient
from lmdiff.llm.config import LlmConfig
from tests.agents.conftest import GROUND_TRUTH


def test_a_guess_the_grader_cannot_grade_is_ungraded_and_counted(tmp_path: Path) -> None:
    def grader(messages: list[Any], tools: Any, tool_choice: Any, config: Any) -> ModelOutput:
        unreadable = any("GUESS-B" in m.text for m in messages)
        out = ModelOutput.from_content(model="mockllm", content="I cannot say." if unreadable else '{"score": 5}')
        out.usage = ModelUsage(input_tokens=10, output_tokens=5, total_tokens=15)
        return out

    client = LlmClient(LlmConfig(model="mockllm/model", cache=False, cache_dir=tmp_path / "cache"),
                       model=get_model("mockllm/model", custom_outputs=grader))
    graded = grade_guesses(["The finetuned model writes in capitals (GUESS-B)",
                            "The finetuned model talks about the ocean (GUESS-A)"], GROUND_TRUTH, client, repeats=2)
    assert graded["matches"] == [None, 2] and graded["scores"] == [None, 5.0]
    assert graded["ungraded"] == 1 and graded["invalid_replies"] == 2 and graded["repeat_scores"] == [[], [5, 5]]
    assert math.isnan(graded["hit@1"]) and graded["hit@5"] == 1.0 and graded["best_score"] == 5.0


def test_acc_at_k_leaves_an_undetermined_episode_out_and_counts_it() -> None:
    eps = pd.DataFrame([{"organism": "a", "repeat": r, "hit@1": h, "hit@5": 1.0, "hit@10": 1.0, "error": None}
                        for r, h in ((1, 1.0), (2, math.nan), (3, 0.0))])
    acc = {a["k"]: a for a in acc_table(eps)}
    assert acc[1]["acc"] == 0.5 and acc[1]["n_episodes"] == 2 and acc[1]["n_ungraded"] == 1
    assert acc[5]["acc"] == 1.0 and acc[5]["n_episodes"] == 3 and acc[5]["n_ungraded"] == 0
