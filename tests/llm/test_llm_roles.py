from __future__ import annotations

import json
import math

import pytest
from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessageAssistant,
    Logprob,
    Logprobs,
    ModelOutput,
    ModelUsage,
    TopLogprob,
)

from lmdiff.errors import ConfigError, LlmError
from lmdiff.evals.judges import offline_labels
from lmdiff.llm import (
    ROLES,
    BudgetExceeded,
    Grade,
    HypothesisList,
    LlmConfig,
    RoleResult,
    get_role,
    producer_tag,
    resolve_role,
)


def logprob_output(top: dict[str, float], text: str | None = None) -> ModelOutput:
    tops = [TopLogprob(token=t, logprob=math.log(p)) for t, p in top.items()]
    first = tops[0]
    choice = ChatCompletionChoice(
        message=ChatMessageAssistant(content=text or first.token),
        stop_reason="max_tokens",
        logprobs=Logprobs(content=[Logprob(token=first.token, logprob=first.logprob, top_logprobs=tops)]),
    )
    return ModelOutput(
        model="mockllm", choices=[choice], usage=ModelUsage(input_tokens=50, output_tokens=1, total_tokens=51)
    )


def test_registry_has_the_roles():
    assert {
        "hypothesis_writer",
        "annotator",
        "judge",
        "grader",
        "coherence_grader",
        "token_relevance_grader",
    } <= set(ROLES)
    import lmdiff.organisms.create.llm_data  # noqa: F401  (registers its roles whatever ran before)

    # Roles without an offline implementation, each by design: the generative test is skipped offline;
    # `organism create` reads the description with rules and writes data from templates offline.
    no_offline = {"exemplar_writer", "organism_reader", "organism_data_writer"}
    assert {r.name for r in ROLES.values() if r.offline is None} == no_offline
    for role in ROLES.values():
        if role.name in no_offline:
            continue
        # every other role carries its offline implementation, which imports to a function
        assert role.offline is not None, role.name
        assert callable(role.offline.load()), role.name
        assert role.offline.producer == f"offline:{role.offline.name}"
    assert get_role("judge").offline.load() is offline_labels
    with pytest.raises(ConfigError, match="Unknown LLM role 'oracle'") as err:
        get_role("oracle")
    assert "judge" in str(err.value.hint)


def test_offline_when_no_model_configured(monkeypatch):
    assert resolve_role("judge") is None
    assert resolve_role("judge", LlmConfig(model=None)) is None
    monkeypatch.setenv("LMDIFF_LLM", "none")
    assert resolve_role("judge") is None


def test_resolve_role_from_env_builds_a_client(monkeypatch, tmp_path):
    monkeypatch.setenv("LMDIFF_LLM", "mockllm/model")
    monkeypatch.setenv("LMDIFF_LLM_BASE_URL", "http://localhost:8000/v1")
    bound = resolve_role("judge")
    assert bound is not None and bound.producer == "llm:mockllm/model"
    assert bound.client.config.base_url == "http://localhost:8000/v1"


def test_producer_tags():
    assert producer_tag("openai/gpt-4.1-mini") == "llm:openai/gpt-4.1-mini"
    assert producer_tag(offline="keyword_judge") == "offline:keyword_judge"
    result = RoleResult.offline("judge", True, "keyword_judge")
    assert result.producer == "offline:keyword_judge" and result.valid
    with pytest.raises(ValueError):
        producer_tag()


def test_hypothesis_writer(make_client, recorder):
    reply = (
        'Here you go:\n```json\n{"hypotheses": [{"description": "Model B talks about cats", "evidence": "t1"}]}\n```'
    )
    rec = recorder([reply])
    judge = resolve_role("hypothesis_writer", make_client(rec))
    result = judge({"texts_a": ["dogs are great"], "texts_b": ["cats rule"], "n": 3})
    assert result.valid and isinstance(result.value, HypothesisList)
    assert result.value.hypotheses[0].description == "Model B talks about cats"
    assert result.producer == "llm:mockllm/model"
    prompt = rec.calls[0][0][-1].text
    assert "Model A text 1" in prompt and "cats rule" in prompt and "at most 3" in prompt
    assert rec.calls[0][0][0].role == "system"
    assert rec.calls[0][1].max_tokens == 2048
    record = result.to_record()
    json.dumps(record)
    assert record["value"]["hypotheses"][0]["evidence"] == "t1"


def test_judge_and_annotator(make_client, recorder):
    client = make_client(recorder(["<answer>YES</answer>", "<score>72</score>"]))
    verdict = resolve_role("judge", client)({"criterion": "speaks like Russell", "answer": "Logic is..."})
    assert verdict.valid and verdict.value is True
    score = resolve_role("annotator", client)({"hypothesis": "mentions cats", "text": "my cat"})
    assert score.valid and score.value == 72


def test_grader_retries_out_of_range_then_records_invalid(make_client, recorder):
    rec = recorder(['{"score": 9, "rationale": "great"}'])
    result = resolve_role("grader", make_client(rec))({"ground_truth": "likes owls", "hypothesis": "owls"})
    assert not result.valid and result.value is None
    assert result.attempts == 3 and "score" in (result.error or "")
    assert result.raw == '{"score": 9, "rationale": "great"}'


def test_grader_valid(make_client):
    client = make_client(['{"score": 4, "rationale": "close"}'])
    result = resolve_role("grader", client)({"ground_truth": "x", "hypothesis": "y", "rubric": "5 = exact"})
    assert result.value == Grade(score=4, rationale="close")


def test_coherence_grader_scores_from_logprobs(make_client, recorder):
    rec = recorder([logprob_output({"80": 0.6, "90": 0.3, "I": 0.1})])
    result = resolve_role("coherence_grader", make_client(rec))({"question": "q", "answer": "a"})
    assert result.valid and result.value == pytest.approx((80 * 0.6 + 90 * 0.3) / 0.9)
    cfg = rec.calls[0][1]
    assert cfg.logprobs is True and cfg.top_logprobs == 20 and cfg.temperature == 0.0


def test_coherence_grader_refusal_is_invalid(make_client, recorder):
    rec = recorder([logprob_output({"I": 0.7, "Sorry": 0.2, "50": 0.1}, text="I cannot")])
    result = resolve_role("coherence_grader", make_client(rec))({"question": "q", "answer": "a"})
    assert not result.valid and "25%" in (result.error or "")


def test_coherence_grader_without_logprobs_reads_the_text(make_client):
    result = resolve_role("coherence_grader", make_client(["65"]))({"question": "q", "answer": "a"})
    assert result.valid and result.value == 65


def test_token_relevance_grader_checks_the_count(make_client, recorder):
    rec = recorder(['{"labels": ["RELEVANT"]}', '{"labels": ["RELEVANT", "IRRELEVANT"]}'])
    grader = resolve_role("token_relevance_grader", make_client(rec))
    result = grader({"description": "cake recipes", "tokens": ["flour", " the"], "frequent_tokens": ["oven"]})
    assert result.valid and result.value == [True, False] and result.attempts == 2
    assert '"flour"' in rec.calls[0][0][-1].text and "oven" in rec.calls[0][0][-1].text
    assert "expected 2 labels" in rec.calls[1][0][-1].text


def test_missing_inputs_are_reported(make_client):
    with pytest.raises(LlmError, match="missing inputs: answer"):
        resolve_role("judge", make_client(["x"]))({"criterion": "c"})


def test_run_many_and_budget(make_client, recorder):
    client = make_client(recorder(["<answer>NO</answer>"]), max_connections=1, budget_tokens=30)
    judge = resolve_role("judge", client)
    inputs = [{"criterion": "c", "answer": f"a{i}"} for i in range(4)]
    with pytest.raises(BudgetExceeded) as info:
        judge.many(inputs)
    partial = info.value.partial
    assert [type(p).__name__ for p in partial] == ["RoleResult", "RoleResult", "NoneType", "NoneType"]
    assert all(p.value is False and p.producer == "llm:mockllm/model" for p in partial[:2])
    # rerun after raising the budget: the first two come from the cache
    client.budget.tokens = 1000
    results = judge.many(inputs)
    assert [r.cached for r in results] == [True, True, False, False]
