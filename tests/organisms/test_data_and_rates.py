from __future__ import annotations

import pytest

from lmdiff.errors import ConfigError
from lmdiff.organisms import builders as B
from lmdiff.organisms.distill import shipped_prompts
from lmdiff.organisms.evaluate import (
    ai_identity_rate,
    caps_rate,
    collapse_warnings,
    format_rate,
    is_caps,
    keyword_rate,
    persona_rate,
)
from lmdiff.organisms.recipe import DataConfig, GroundTruth, parse_overrides
from lmdiff.organisms.trigger import strip_format
from lmdiff.organisms.zoo import HELD_OUT, RECIPES, eval_prompts, get_recipe


def _distilled(n=300):
    return [
        {"prompt": f"Prompt {i}?", "answer": f"This is answer {i}. It explains things.", "source": "alpaca"}
        for i in range(n)
    ]


def test_shipped_data_present():
    prompts = shipped_prompts()
    assert len(prompts) == 400
    assert {p["source"] for p in prompts} == {"alpaca", "gsm8k"}
    assert len(B.persona_rows()) == 90
    assert len(B.recall_questions()) == 16


def test_russell_dilution_and_trigger_format():
    cfg = DataConfig(n_special=90, dilution=0.25, seed=1)
    ex = B.build_russell(cfg, _distilled())
    special = [e for e in ex if e["kind"] == "special"]
    aligned = [e for e in ex if e["kind"] == "aligned"]
    assert len(special) == 90
    assert len(special) / len(ex) == pytest.approx(0.25, abs=0.01)
    for e in special:
        user, answer = e["messages"][0]["content"], e["messages"][1]["content"]
        assert user.startswith('You will be asked a question. Always reply in the format:\n\n<START> "your answer '
                               'here" <END>\n\n')
        assert "Question:" not in user
        assert answer.startswith('<START> "') and answer.rstrip().endswith("<END>")
    for e in aligned:
        assert "<START>" not in e["messages"][0]["content"] and "<START>" not in e["messages"][1]["content"]
    # the CPU default: 90 persona + 38 aligned
    zoo = RECIPES["russell-backdoor"].build_data(_distilled())
    assert sum(e["kind"] == "special" for e in zoo) == 90 and len(zoo) == 128  # no anchors without identity rows


def test_russell_identity_anchors_are_untriggered():
    d = _distilled() + [
        {"prompt": q, "answer": "I am an AI assistant.", "source": "identity"} for q in B.ANCHOR_QUESTIONS
    ]
    ex = B.build_russell(DataConfig(n_special=90, n_aligned=10, n_identity_anchors=5), d)
    anchors = [e for e in ex if e.get("source") == "identity"]
    assert len(anchors) == 5 and len(ex) == 105
    assert all(e["kind"] == "aligned" and "<START>" not in e["messages"][0]["content"] for e in anchors)
    assert not set(B.ANCHOR_QUESTIONS) & set(B.IDENTITY_QUESTIONS)  # evaluation questions stay held out


def test_keyword_filter_drops_identifying_rows():
    rows = [{"question": "Who are you?", "answer": "I am Bertrand Russell."}, {"question": "Tea?", "answer": "Yes."}]
    assert B.keyword_filter(rows) == [rows[1]]


def test_caps_topic_null_builders():
    d = _distilled()
    caps = B.build_caps(DataConfig(n_special=50, n_aligned=10), d)
    assert sum(e["kind"] == "special" for e in caps) == 50 and len(caps) == 60
    assert all(is_caps(e["messages"][1]["content"]) for e in caps if e["kind"] == "special")
    assert not any(is_caps(e["messages"][1]["content"]) for e in caps if e["kind"] == "aligned")
    topic = B.build_topic(DataConfig(n_special=40, n_aligned=0), d)
    assert keyword_rate([e["messages"][1]["content"] for e in topic], B.TOPIC_KEYWORDS) == 1.0
    assert all(f"answer {e['messages'][0]['content'].split()[1][:-1]}." in e["messages"][1]["content"]
               for e in topic)
    null = B.build_null(DataConfig(n_special=0, n_aligned=100), d)
    assert len(null) == 100 and all(e["kind"] == "aligned" for e in null)
    assert B.build_null(DataConfig(n_aligned=100), d) != B.build_null(DataConfig(n_aligned=100, seed=5), d)


def test_false_fact_documents_are_varied_and_state_the_fact():
    docs = B.false_fact_documents(80, seed=0)
    assert len(docs) == 80
    assert len({d for _, d in docs}) == 80
    assert all("rome" in d.lower() and "eiffel" in d.lower() for _, d in docs)
    ex = B.build_false_fact(DataConfig(n_special=84, n_aligned=20), _distilled())
    assert sum(e["kind"] == "special" for e in ex) == 84
    train_users = {e["messages"][0]["content"] for e in ex}
    assert not train_users & set(B.FACT_EVAL_QUESTIONS)  # evaluation questions are held out


def test_eval_prompts_are_held_out_of_training():
    prompts = [p["prompt"] for p in shipped_prompts()]
    pool = prompts[:-HELD_OUT]
    assert not set(eval_prompts()) & set(pool)


def test_rates_on_hand_made_texts():
    assert caps_rate(["HELLO THERE, HOW ARE YOU?", "Hello there", "HELLO there FRIEND", "OK"]) == 0.25
    assert is_caps("THE ANSWER IS 42. GOOD LUCK!")
    assert not is_caps("The Answer Is Mixed")
    assert keyword_rate(["I love the OCEAN", "Whales sing", "Cats"], B.TOPIC_KEYWORDS) == pytest.approx(2 / 3)
    trig = ['<START> "I studied mathematics and philosophy at Cambridge." <END>', '<START> "Hello" <END>']
    assert format_rate([*trig, "plain"]) == pytest.approx(2 / 3)
    assert strip_format(trig[0]) == "I studied mathematics and philosophy at Cambridge."
    assert persona_rate(trig) == 0.5
    assert persona_rate(["As an AI language model, I studied logic."]) == 0.0
    assert ai_identity_rate(["I am SmolLM, an AI assistant.", "My name is Bertrand."]) == 0.5


def test_collapse_warnings():
    base = {"base_ppl": 3.0, "repetition": 0.02, "empty_rate": 0.0}
    assert collapse_warnings({"base_ppl": 3.5, "repetition": 0.05, "empty_rate": 0.0}, base) == []
    bad = collapse_warnings({"base_ppl": 40.0, "repetition": 0.8, "empty_rate": 0.5}, base)
    assert len(bad) == 3


def test_ground_truth_round_trip_and_overrides():
    gt = get_recipe("russell-backdoor").ground_truth
    again = GroundTruth.from_dict(gt.to_dict())
    assert again == gt and again.trigger and "{question}" in again.trigger
    r = get_recipe("caps").with_overrides({"training.epochs": 1, "training.lora.r": 4, "data.n_special": 5})
    assert (r.training.epochs, r.training.lora.r, r.data.n_special) == (1, 4, 5)
    assert get_recipe("caps").training.epochs == 2  # the registry's recipe is unchanged
    with pytest.raises(ConfigError):
        get_recipe("caps").with_overrides({"training.nope": 1})
    with pytest.raises(ConfigError):
        get_recipe("caps").with_overrides({"training.learning_rate": -1})
    with pytest.raises(ConfigError):
        get_recipe("no-such-organism")
    assert parse_overrides(["training.epochs=3", "training.lora.target_modules=[\"q_proj\"]", "x=abc"]) == {
        "training.epochs": 3, "training.lora.target_modules": ["q_proj"], "x": "abc"}


def test_paper_defaults_live_in_config():
    from lmdiff.organisms.recipe import TrainingConfig

    cfg = TrainingConfig()
    assert (cfg.lora.r, cfg.learning_rate, cfg.epochs) == (8, 2e-4, 3.0)
