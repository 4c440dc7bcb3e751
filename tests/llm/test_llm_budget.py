from __future__ import annotations

import pytest

from lmdiff.errors import LlmError
from lmdiff.llm import BudgetExceeded, LlmClient, LlmConfig


def test_token_budget_stops_cleanly_with_partial_results(make_client, recorder):
    rec = recorder(["r"])  # 15 tokens per call
    client = make_client(rec, max_connections=1, budget_tokens=40)
    with pytest.raises(BudgetExceeded) as info:
        client.generate_many([f"p{i}" for i in range(6)])
    partial = info.value.partial
    assert partial is not None and len(partial) == 6
    done = [r for r in partial if r is not None]
    assert len(done) == 3 and all(r.valid and r.text == "r" for r in done)  # 15, 30, 45 >= 40
    assert partial[3:] == [None, None, None]
    assert len(rec.calls) == 3
    assert info.value.kind == "tokens" and info.value.spent == 45
    # further calls raise at once, cached ones are still served
    with pytest.raises(BudgetExceeded):
        client.generate("new prompt")
    assert client.generate("p0").cached
    usage = client.usage_summary()
    assert usage["budget"]["exhausted"] is True
    assert usage["budget_refused"] >= 4
    assert usage["calls"] == 3


def test_dollar_budget_with_price_override(make_client, recorder):
    rec = recorder(["r"])
    # 10 in * $1/M + 5 out * $2/M = $0.00002 per call
    client = make_client(rec, budget_usd=0.00005, prices={"mockllm": {"input": 1.0, "output": 2.0}})
    client.generate("a")
    client.generate("b")
    client.generate("c")  # 0.00006 >= 0.00005 after this one
    with pytest.raises(BudgetExceeded) as info:
        client.generate("d")
    assert info.value.kind == "usd"
    assert client.usage_summary()["cost_usd"] == pytest.approx(0.00006)
    assert "budget" in str(info.value) and info.value.hint


def test_budget_exceeded_is_an_llm_error():
    assert issubclass(BudgetExceeded, LlmError)


def test_dollar_budget_needs_a_known_price(tmp_path):
    with pytest.raises(LlmError, match="price"):
        LlmClient(LlmConfig(model="openai-api/acme/mystery-model", budget_usd=1.0, cache_dir=tmp_path))


def test_structured_batch_budget_keeps_partial(make_client, recorder):
    client = make_client(recorder(['{"a": 1}']), max_connections=1, budget_tokens=20)
    with pytest.raises(BudgetExceeded) as info:
        client.structured_many(["x", "y", "z"], lambda t: t)
    partial = info.value.partial
    assert [p is not None for p in partial] == [True, True, False]
    assert all(p.valid for p in partial if p is not None)


def test_usage_written_to_the_run(make_client, tmp_path):
    client = make_client(["hi"])
    client.generate("x")
    path = client.write_usage(tmp_path / "run" / "llm_usage.json")
    import json

    data = json.loads(path.read_text())
    assert data["calls"] == 1 and data["producer"] == "llm:mockllm/model"
