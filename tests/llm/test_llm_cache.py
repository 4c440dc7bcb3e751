from __future__ import annotations

import json
from pathlib import Path

from inspect_ai.model import get_model

from lmdiff.llm import GenerationParams, LlmClient, LlmConfig, LlmRequest


def test_identical_call_is_served_from_cache_and_costs_nothing(make_client, recorder, tmp_path):
    rec = recorder(["first", "second"])
    client = make_client(rec, prices={"mockllm/model": {"input": 1.0, "output": 2.0}})
    a = client.generate("hello", system="be brief")
    b = client.generate("hello", system="be brief")
    assert (a.text, a.cached) == ("first", False)
    assert (b.text, b.cached) == ("first", True)
    assert a.cost_usd > 0 and b.cost_usd == 0.0
    assert len(rec.calls) == 1
    usage = client.usage_summary()
    assert usage["calls"] == 1 and usage["cache_hits"] == 1
    assert usage["total_tokens"] == 15 and usage["saved_by_cache_tokens"] == 15
    assert usage["cost_usd"] == a.cost_usd


def test_every_generation_parameter_is_part_of_the_key(make_client, recorder):
    rec = recorder(["r"])
    client = make_client(rec)
    client.generate("hello")
    variants = [
        {"temperature": 0.7},
        {"max_tokens": 7},
        {"top_p": 0.5},
        {"stop": ("\n",)},
        {"seed": 3},
        {"logprobs": True, "top_logprobs": 5},
        {"sample": 1},
    ]
    for overrides in variants:
        assert not client.generate("hello", **overrides).cached, overrides
    assert not client.generate("hello", system="a system prompt").cached
    assert not client.generate([{"role": "user", "content": "hello"}, {"role": "user", "content": "x"}]).cached
    assert len(rec.calls) == 1 + len(variants) + 2
    # the same request as the first, spelled as messages, is a hit
    assert client.generate([{"role": "user", "content": "hello"}]).cached
    # and a different temperature reaches the model with that temperature
    assert any(cfg.temperature == 0.7 for _, cfg in rec.calls)


def test_rerun_with_a_new_client_costs_nothing_even_with_zero_budget(make_client, recorder, tmp_path):
    cache = tmp_path / "shared"
    make_client(recorder(["a", "b"]), cache_dir=cache).generate_many(["p1", "p2"])
    rec = recorder(["should not be called"])
    rerun = make_client(rec, cache_dir=cache, budget_tokens=0)
    replies = rerun.generate_many(["p1", "p2"])
    assert [r.text for r in replies] == ["a", "b"] and all(r.cached for r in replies)
    assert rec.calls == []
    assert rerun.usage_summary()["total_tokens"] == 0


def test_cache_files_are_json_with_request_and_reply(make_client, tmp_path):
    client = make_client(["ok"], cache_dir=tmp_path / "c")
    reply = client.generate("hi", max_tokens=9)
    path = client.cache.path(reply.key)
    entry = json.loads(path.read_text())
    assert entry["key"] == reply.key
    assert entry["request"]["params"]["max_tokens"] == 9
    assert entry["request"]["messages"] == [{"role": "user", "content": "hi"}]
    assert entry["reply"]["text"] == "ok"
    assert not list(Path(tmp_path / "c").rglob("*.tmp"))


def test_corrupt_entry_is_a_miss_and_is_rewritten(make_client, recorder, tmp_path):
    rec = recorder(["x"])
    client = make_client(rec)
    reply = client.generate("hi")
    client.cache.path(reply.key).write_text("{not json")
    again = client.generate("hi")
    assert not again.cached and len(rec.calls) == 2
    assert client.generate("hi").cached


def test_cache_can_be_disabled(make_client, recorder, tmp_path):
    rec = recorder(["x"])
    client = make_client(rec, cache=False, cache_dir=tmp_path / "none")
    client.generate("hi")
    client.generate("hi")
    assert len(rec.calls) == 2
    assert not (tmp_path / "none").exists()


def test_default_cache_dir_is_under_lmdiff_home(tmp_path):
    config = LlmConfig(model="mockllm/model")
    assert config.resolved_cache_dir() == tmp_path / "lmdiff_home" / "llm"


def test_batch_requests_with_their_own_params(make_client, recorder):
    rec = recorder(["r"])
    client = make_client(rec)
    replies = client.generate_many(
        [
            LlmRequest(prompt="a", params=GenerationParams(temperature=1.0)),
            LlmRequest(prompt="a", system="sys"),
            "a",
        ]
    )
    assert len(replies) == 3 and not any(r.cached for r in replies)
    temps = sorted(cfg.temperature for _, cfg in rec.calls)
    assert temps == [0.0, 0.0, 1.0]


def test_injected_model_and_config_model_share_the_key(tmp_path, output):
    cfg = LlmConfig(model="mockllm/model", cache_dir=tmp_path)
    first = LlmClient(cfg, model=get_model("mockllm/model", custom_outputs=[output("one")]))
    first.generate("q")
    second = LlmClient(cfg)  # builds mockllm/model itself
    assert second.generate("q").text == "one"


def test_rewritten_local_weights_miss_the_cache(tmp_path, output):
    weights = tmp_path / "model"
    weights.mkdir()
    (weights / "model.safetensors").write_bytes(b"v1")

    def client(replies):
        model = get_model("mockllm/model", custom_outputs=[output(r) for r in replies])
        return LlmClient(LlmConfig(model=f"local/{weights}", cache_dir=tmp_path / "c"), model=model)

    assert client(["old"]).generate("q").text == "old"
    assert client(["unused"]).generate("q").cached
    (weights / "model.safetensors").write_bytes(b"v2 retrained")
    again = client(["new"]).generate("q")
    assert again.text == "new" and not again.cached
