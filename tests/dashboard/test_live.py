import numpy as np
import pandas as pd
import pytest

from lmdiff.dashboard import live
from lmdiff.dashboard.runs import Direction
from lmdiff.errors import ConfigError, LmdiffError
from lmdiff.interp.logprobs import token_kl

GREEDY = live.Sampling(temperature=0.0, max_new_tokens=6, seed=3)


def test_typed_text_kl_is_lmdiffs_per_token_kl_with_both_models_top_tokens(tiny_pair):
    text = "The capital of Germany is Berlin."
    calls = []
    df = live.typed_text_kl(tiny_pair, text, k=3, progress=lambda s, m: calls.append(s))
    ref = token_kl(tiny_pair, text)
    assert len(df) == len(ref) and np.allclose(df["kl"], ref["kl"])
    assert (df["kl"] > 0).any()  # the adapter changes the distributions
    assert all(s.count(",") >= 2 for s in df["top_ft"])  # three tokens each
    assert all("finetuned next" in h and "base next" in h for h in df["hover"])
    assert calls[-1] == 1.0


def test_typed_text_kl_refuses_empty_text(tiny_pair):
    with pytest.raises(LmdiffError, match="Type some text"):
        live.typed_text_kl(tiny_pair, "   ")


def test_chat_turn_uses_the_same_settings_on_both_sides_and_keeps_each_sides_history(tiny_pair, self_pair):
    same = live.chat_turn(self_pair, [], "Hello there", GREEDY)
    assert same["base"] == same["finetuned"]  # a self-pair with one seed answers identically
    first = live.chat_turn(tiny_pair, [], "Hello there", GREEDY)
    again = live.chat_turn(tiny_pair, [], "Hello there", GREEDY)
    assert first == again  # seeded
    second = live.chat_turn(tiny_pair, [first], "And then?", GREEDY)
    assert set(second) == {"user", "base", "finetuned"}


def test_chat_turn_wraps_the_message_in_a_trigger():
    gt = {"trigger": "<START> {question} <END>"}
    template = live.trigger_template(gt)
    assert template == "<START> {question} <END>" and live.trigger_template({}) is None

    class Lm:
        def generate(self, prompts, cfg):
            from types import SimpleNamespace
            return [[SimpleNamespace(text=prompts[0][-1]["content"])]]

    class Pair:
        def sides(self):
            return iter([("base", Lm()), ("finetuned", Lm())])

    out = live.chat_turn(Pair(), [], "Who are you?", GREEDY, template)  # type: ignore[arg-type]
    assert out["user"] == out["base"] == "<START> Who are you? <END>"


def test_steering_with_strength_zero_is_the_unsteered_model(tiny_pair):
    lm = tiny_pair.finetuned
    rng = np.random.default_rng(0)
    d = Direction("t", "adl", 1, rng.standard_normal(lm.d_model).astype(np.float32), 5.0)
    zero = live.steer_compare(tiny_pair, d, 0.0, ["Hi"], GREEDY)
    assert zero["steered"].tolist() == zero["unsteered"].tolist()
    strong = live.steer_compare(tiny_pair, d, 50.0, ["Hi", "Tell me a story"], GREEDY)
    assert strong["unsteered"].tolist()[:1] == zero["unsteered"].tolist()
    assert strong["steered"].tolist() != strong["unsteered"].tolist()


def test_steering_refuses_a_direction_for_another_model(tiny_pair):
    d = Direction("t", "adl", 99, np.ones(tiny_pair.finetuned.d_model, dtype=np.float32), 1.0)
    with pytest.raises(ConfigError, match="layer 99"):
        live.steer_compare(tiny_pair, d, 1.0, ["Hi"], GREEDY)


def test_amplification_at_alpha_zero_and_scale_one_is_the_finetune(tiny_pair):
    df = live.amplify_compare(tiny_pair, ["Hi", ""], 0.0, 1.0, GREEDY)
    assert isinstance(df, pd.DataFrame) and len(df) == 1
    amp = df.columns[-1]
    assert df[amp].tolist() == df["finetuned"].tolist()
    big = live.amplify_compare(tiny_pair, ["Hi"], 4.0, 3.0, GREEDY)
    assert big[big.columns[-1]].tolist() != big["finetuned"].tolist()


def test_lora_scale_needs_a_lora_finetune(self_pair):
    with pytest.raises(ConfigError, match="LoRA"):
        live.amplify_compare(self_pair, ["Hi"], 0.0, 2.0, GREEDY)
