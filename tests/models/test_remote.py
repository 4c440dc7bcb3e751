"""Remote endpoints as models under study, against a tiny in-process OpenAI-compatible server (no client mocks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lmdiff.config import GenerationConfig
from lmdiff.errors import ConfigError, EndpointError, IncompatiblePairError, ModelNotFoundError
from lmdiff.models.pair import ModelPair
from lmdiff.models.remote import DEFAULT_KEY_ENV, endpoint_of, open_remote
from lmdiff.models.spec import ModelSpec
from tests.helpers import FakeOpenAIServer, free_port

FAKE_KEY = "sk-fake-0123456789abcdef-NEVER-WRITTEN"


def remote(url: str, model: str = "fake", **kw: Any) -> ModelSpec:
    return ModelSpec.parse(f"openai-compatible:{url}#{model}", **kw)


# ------------------------------------------------------------------------------------------------ specs


def test_openai_compatible_spec_is_canonical_and_remote() -> None:
    spec = ModelSpec.parse("openai-compatible:http://127.0.0.1:8000/v1/#smollm2")
    assert spec.model == "openai-compatible:http://127.0.0.1:8000/v1#smollm2"
    assert spec.is_remote and spec.source_kind == "remote"
    assert spec.display_name == "smollm2@127.0.0.1:8000"
    assert ModelSpec.parse(spec).model == spec.model  # resolving again changes nothing
    ep = endpoint_of(spec)
    assert (ep.kind, ep.url, ep.model, ep.key_env) == ("openai-compatible", "http://127.0.0.1:8000/v1", "smollm2",
                                                       DEFAULT_KEY_ENV)


def test_inspect_spec() -> None:
    spec = ModelSpec.parse("inspect:openai/gpt-4o-mini")
    assert spec.is_remote and spec.display_name == "openai/gpt-4o-mini"
    ep = endpoint_of(spec)
    assert (ep.kind, ep.model, ep.url, ep.key_env) == ("inspect", "openai/gpt-4o-mini", None, None)
    assert not ModelSpec.parse("smollm2-135m-instruct").is_remote


@pytest.mark.parametrize(("model", "kw", "says"), [
    ("openai-compatible:http://127.0.0.1:8000/v1", {}, "names no model"),
    ("openai-compatible:ftp://host/v1#m", {}, "not an http\\(s\\) URL"),
    ("openai-compatible:http://user:pw@host/v1#m", {}, "user info or a query"),
    ("openai-compatible:http://host/v1?key=abc#m", {}, "user info or a query"),
    ("openai-compatible:http://host/v1#m", {"api_key_env": "sk-abc-123"}, "not the name of an environment variable"),
    ("openai-compatible:http://host/v1#m", {"adapter": "/some/adapter"}, "cannot take a LoRA adapter"),
    ("inspect:gpt-4o", {}, "not an Inspect AI model string"),
])
def test_bad_remote_specs_say_what_to_do(model: str, kw: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError, match=says) as err:
        ModelSpec.parse(model, **kw)
    assert err.value.hint


# ------------------------------------------------------------------------------------------------ generation


def test_chat_generation_sends_and_records_the_sampling_settings() -> None:
    with FakeOpenAIServer(("fake", "caps"), caps=("caps",)) as srv:
        model = open_remote(remote(srv.url, "caps"))
        gen = GenerationConfig(temperature=0.7, top_p=0.9, max_new_tokens=6, n=2, seed=5, top_k=40)
        out = model.generate(["What is love?", "Tell me a joke"], gen, system="Be brief.")
        chats = [r for r in srv.requests if r["path"] == "/v1/chat/completions"][1:]  # after the check request
    assert [[(g.prompt_index, g.sample_index) for g in per] for per in out] == [[(0, 0), (0, 1)], [(1, 0), (1, 1)]]
    assert all(g.text.isupper() and g.n_tokens == 6 and g.finished for per in out for g in per)
    assert len(chats) == 4  # n=2: one request per sample, each with its own seed
    assert sorted(r["seed"] for r in chats) == [5 * 1_000_003 + k for k in range(4)]
    assert {(r["temperature"], r["top_p"], r["max_tokens"]) for r in chats} == {(0.7, 0.9, 6)}
    assert all(r["messages"][0] == {"role": "system", "content": "Be brief."} for r in chats)
    assert all("top_k" not in r for r in chats)
    rec = model.record()
    assert rec["sent"]["chat"][0] | {"seed_rule": None} == {"temperature": 0.7, "top_p": 0.9, "max_tokens": 6, "n": 2,
                                                           "seeds": [5], "seed_rule": None}
    assert rec["sent"]["not_sent"] == {"top_k": 40}
    assert rec["chat_usage"]["calls"] == 4 and rec["chat_usage"]["output_tokens"] == 24


def test_greedy_plain_completion_uses_the_completions_endpoint() -> None:
    with FakeOpenAIServer() as srv:
        model = open_remote(remote(srv.url))
        out = model.generate(["The capital of France is"], GenerationConfig(temperature=0.0, max_new_tokens=4),
                             chat=False)
        sent = [r for r in srv.requests if r["path"] == "/v1/completions"][-1]
    assert out[0][0].text == "Here is a short"
    assert sent["prompt"] == "The capital of France is" and sent["temperature"] == 0.0 and "top_p" not in sent


def test_without_a_completions_endpoint_plain_text_fails_clearly() -> None:
    with FakeOpenAIServer(completions=False) as srv:
        model = open_remote(remote(srv.url))
        with pytest.raises(EndpointError, match="cannot complete plain text"):
            model.generate(["x"], GenerationConfig(temperature=0.0), chat=False)


def test_inspect_provider_generates() -> None:
    model = open_remote(ModelSpec.parse("inspect:mockllm/model"))
    out = model.generate(["hi"], GenerationConfig(temperature=0.0, max_new_tokens=8))
    assert out[0][0].text and model.record()["kind"] == "inspect"
    assert "Inspect AI provider" in str(model.score_unavailable())


# ------------------------------------------------------------------------------------------------ errors


def test_unreachable_url() -> None:
    model = open_remote(remote(f"http://127.0.0.1:{free_port()}/v1"))
    with pytest.raises(EndpointError, match="Cannot reach the endpoint") as err:
        model.generate(["hi"])
    assert "start the server" in str(err.value.hint)


def test_key_refused_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DEFAULT_KEY_ENV, raising=False)
    with FakeOpenAIServer(key=FAKE_KEY) as srv:
        with pytest.raises(EndpointError, match=f"refused the request \\(401\\).*{DEFAULT_KEY_ENV} is not set") as err:
            open_remote(remote(srv.url)).generate(["hi"])
        assert "api_key_env" in str(err.value.hint)
        monkeypatch.setenv("MY_ENDPOINT_KEY", FAKE_KEY)
        out = open_remote(remote(srv.url, api_key_env="MY_ENDPOINT_KEY")).generate(["hi"])
        assert out[0][0].text and srv.requests[-1]["auth"] == f"Bearer {FAKE_KEY}"


def test_wrong_model_name_lists_the_served_ones() -> None:
    with FakeOpenAIServer(("smollm2",)) as srv, pytest.raises(ModelNotFoundError,
                                                              match="does not serve a model called 'gpt-9'") as err:
        open_remote(remote(srv.url, "gpt-9")).generate(["hi"])
    assert "smollm2" in str(err.value.hint)


def test_no_chat_template() -> None:
    with FakeOpenAIServer(chat_template=False) as srv, pytest.raises(EndpointError, match="no chat template") as err:
        open_remote(remote(srv.url)).generate(["hi"])
    assert "--chat-template" in str(err.value.hint)


# ------------------------------------------------------------------------------------------------ scoring


def test_scores_come_from_echoed_prompt_logprobs(tiny_model_dir: Path) -> None:
    with FakeOpenAIServer() as srv:
        model = open_remote(remote(srv.url, tokenizer=str(tiny_model_dir)))
        assert model.score_unavailable() is None
        ctx = model.chat_text("Hi there")
        assert ctx.endswith("assistant\n")  # the local tokenizer's (SmolLM2) chat template
        (lp,) = model.score([ctx], ["hello WORLD"])
    # the fake server: whitespace-separated tokens "hello" (-5/10) and "WORLD" (capitals, -1); the context's
    # tokens are not counted
    assert lp.tolist() == pytest.approx([-0.5, -1.0])


def test_no_scores_without_echo_or_local_template(tiny_model_dir: Path) -> None:
    with FakeOpenAIServer(echo=False) as srv:
        model = open_remote(remote(srv.url, tokenizer=str(tiny_model_dir)))
        assert "no log-probabilities of the prompt" in str(model.score_unavailable())
        with pytest.raises(EndpointError, match="cannot score"):
            model.score(["a"], ["b"])
    with FakeOpenAIServer() as srv:
        assert "no local chat template" in str(open_remote(remote(srv.url)).score_unavailable())


# ------------------------------------------------------------------------------------------------ pairs and runs


def test_pair_with_a_remote_side_is_text_only(tiny_model_dir: Path) -> None:
    from lmdiff.diff import DEFAULT_BLACK_BOX, default_methods

    pair = ModelPair(ModelSpec(model=str(tiny_model_dir), dtype="float32"),
                     "openai-compatible:http://127.0.0.1:9/v1#m")
    assert pair.remote_sides == ["finetuned"]
    assert "finetuned model is a remote endpoint" in str(pair.white_box_unavailable())
    assert not pair.tokenizer_check().shared
    with pytest.raises(IncompatiblePairError, match="remote endpoint"):
        pair.side("finetuned")
    assert pair.text_side("finetuned") is pair.text_side("finetuned")
    assert pair.describe()["remote"] == ["finetuned"] and pair.describe()["dtypes"]["finetuned"] == "remote"
    methods, why = default_methods(pair)
    assert methods == list(DEFAULT_BLACK_BOX) and "black-box methods only" in why


def test_diff_of_two_endpoints_runs_black_box_methods_and_writes_no_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lmdiff.diff import run_diff
    from lmdiff.run_config import DiffRunConfig

    monkeypatch.setenv(DEFAULT_KEY_ENV, FAKE_KEY)
    monkeypatch.delenv("LMDIFF_LLM", raising=False)
    with FakeOpenAIServer(("plain", "caps"), caps=("caps",), key=FAKE_KEY, echo=False) as srv:
        cfg = DiffRunConfig(
            base=ModelSpec.parse(f"openai-compatible:{srv.url}#plain"),
            finetuned=ModelSpec.parse(f"openai-compatible:{srv.url}#caps"),
            methods=["kl", "samples", "behavior"],
            method={"behavior": {"n_prompts": 16, "n_per_prompt": 2, "max_new_tokens": 12, "embedder": "hashing",
                                 "global_n_perm": 19, "n_perm": 199}},
        )
        run = run_diff(cfg, tmp_path / "run")
        auths = {r["auth"] for r in srv.requests}
    res = run.results()
    methods = res["methods"]
    assert methods["kl"]["status"] == "skipped" and "both models are a remote endpoint" in methods["kl"]["summary"]
    assert methods["samples"]["status"] == "skipped" and "cannot score" in methods["samples"]["summary"]
    assert methods["behavior"]["status"] == "ok", methods["behavior"]
    assert "numerics" not in res  # no per-token noise floor: nothing reads logits
    ends = res["endpoints"]
    assert ends["base"]["model"] == "plain" and ends["finetuned"]["model"] == "caps"
    assert ends["finetuned"]["sent"]["chat"][0]["max_tokens"] == 12 and ends["finetuned"]["chat_usage"]["calls"] >= 32
    assert ends["base"]["api_key_env"] == DEFAULT_KEY_ENV
    h = methods["behavior"]["headline"]
    assert h["n_validated"] >= 1 and "capital" in str(h["top_hypothesis"]).lower()
    # the key went to the server, and nowhere into the run directory
    assert auths == {f"Bearer {FAKE_KEY}"}
    for f in Path(run.path).rglob("*"):
        if f.is_file():
            assert FAKE_KEY.encode() not in f.read_bytes(), f
    assert "Remote endpoint" in (Path(run.path) / "report.html").read_text()
    assert json.loads((Path(run.path) / "results.json").read_text())["methods_run"]["methods"] == [
        "kl", "samples", "behavior"]
