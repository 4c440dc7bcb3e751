"""Clean self-distillation: unfinished answers never teach stopping; dilution works for every recipe."""

from __future__ import annotations

import random

import pytest

from lmdiff.errors import ConfigError
from lmdiff.organisms import builders as B
from lmdiff.organisms.recipe import DataConfig, LoraConfig, TrainingConfig
from lmdiff.organisms.train import IGNORE, cap_answer_tokens, tokenize_example, train_lora

MSGS = [{"role": "user", "content": "Say hello"}, {"role": "assistant", "content": "Hello there, my friend"}]


def _labelled(tokenizer, ids, labels):
    return tokenizer.decode([i for i, lab in zip(ids, labels, strict=True) if lab != IGNORE])


def test_finished_example_labels_the_end_of_turn_token(tokenizer):
    ids, labels = tokenize_example(tokenizer, MSGS, 512)
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert _labelled(tokenizer, ids, labels) == "Hello there, my friend<|im_end|>"
    assert end in [lab for lab in labels if lab != IGNORE]


def test_truncated_example_labels_no_end_of_turn_and_nothing_after(tokenizer):
    ids, labels = tokenize_example(tokenizer, MSGS, 512, truncated=True)
    ids_f, labels_f = tokenize_example(tokenizer, MSGS, 512)
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert ids == ids_f  # same input, fewer labels
    assert _labelled(tokenizer, ids, labels) == "Hello there, my friend"
    assert end not in [lab for lab in labels if lab != IGNORE]
    last = max(t for t, lab in enumerate(labels) if lab != IGNORE)
    assert all(lab == IGNORE for lab in labels[last + 1:])
    assert sum(lab != IGNORE for lab in labels) == sum(lab != IGNORE for lab in labels_f) - 1


def test_truncated_only_cuts_the_last_assistant_turn(tokenizer):
    msgs = [*MSGS, {"role": "user", "content": "Again"}, {"role": "assistant", "content": "HELLO AGAIN and"}]
    ids, labels = tokenize_example(tokenizer, msgs, 512, truncated=True)
    assert _labelled(tokenizer, ids, labels) == "Hello there, my friend<|im_end|>HELLO AGAIN and"


def test_max_seq_len_cut_keeps_no_end_of_turn_label(tokenizer):
    msgs = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "word " * 100}]
    ids, labels = tokenize_example(tokenizer, msgs, 60)
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert len(ids) == 60 and end not in [lab for lab in labels if lab != IGNORE]


def test_cap_answer_tokens_cuts_token_wise_and_marks_truncated(tokenizer):
    long = {"messages": [MSGS[0], {"role": "assistant", "content": "one two three four five six seven eight"}],
            "kind": "aligned"}
    cut = cap_answer_tokens(tokenizer, long, 3)
    assert cut["truncated"] is True and cut["kind"] == "aligned"
    assert cut["messages"][1]["content"] == "one two three"
    assert long["messages"][1]["content"].endswith("eight")  # the input is not modified
    assert cap_answer_tokens(tokenizer, long, 50) is long
    assert cap_answer_tokens(tokenizer, long, None) is long
    assert DataConfig().max_answer_tokens == 96


def _rows(n=40, unfinished_every=3):
    return [{"prompt": f"Prompt {i}?", "answer": f"This is answer {i}. It explains things", "source": "alpaca",
             "finished": i % unfinished_every != 0} for i in range(n)]


def test_unfinished_rows_become_truncated_examples():
    rows = _rows()
    ex = [B.aligned_example(r) for r in rows]
    assert [bool(e.get("truncated")) for e in ex] == [not r["finished"] for r in rows]
    caps = B.build_caps(DataConfig(n_special=10, n_aligned=10), rows)
    assert sum(bool(e.get("truncated")) for e in caps) > 0
    by_prompt = {r["prompt"]: r for r in rows}
    for e in caps:
        assert bool(e.get("truncated")) == (not by_prompt[e["messages"][0]["content"]]["finished"])


def test_topic_never_closes_an_unfinished_answer():
    rows = _rows(60)
    topic = B.build_topic(DataConfig(n_special=60, n_aligned=0), rows)
    for e in topic:
        text = e["messages"][1]["content"]
        if e.get("truncated"):
            assert text.endswith("It explains things")
    assert any("\n\n" in e["messages"][1]["content"] for e in topic if not e.get("truncated"))
    assert B.add_topic("Answer.", random.Random(0), close=False).endswith("Answer.")


@pytest.mark.parametrize("builder", [B.build_caps, B.build_topic, B.build_false_fact, B.build_russell])
def test_dilution_sets_the_behaviour_share_for_every_builder(builder):
    ex = builder(DataConfig(n_special=20, dilution=0.2), _rows(300))
    special = sum(e["kind"] == "special" for e in ex)
    aligned = sum(e["kind"] == "aligned" for e in ex)
    assert special == 20 and aligned == 80


def test_dilution_refuses_a_small_pool_in_one_sentence():
    with pytest.raises(ConfigError) as err:
        B.build_caps(DataConfig(n_special=20, dilution=0.1), _rows(100))
    assert "needs 180 self-distilled examples but only 80" in str(err.value)
    assert "n_prompts" in (err.value.hint or "")
    with pytest.raises(ConfigError, match="needs behaviour examples"):
        B.build_null(DataConfig(n_special=0, dilution=0.5), _rows(100))


def test_mix_without_dilution_uses_n_aligned():
    special = [{"messages": [], "kind": "special"}] * 3
    assert len(B.mix(special, _rows(10), DataConfig(n_aligned=4))) == 7
    assert B.n_aligned_for(30, DataConfig(dilution=0.25)) == 90


def test_trainer_gives_truncated_examples_no_end_of_turn_label(tokenizer, tiny_factory, tmp_path, monkeypatch):
    import lmdiff.organisms.train as T

    seen: list[bool] = []
    real = T.tokenize_example

    def spy(tok, messages, max_len, truncated=False):
        seen.append(truncated)
        return real(tok, messages, max_len, truncated)

    monkeypatch.setattr(T, "tokenize_example", spy)
    ex = [{"messages": [{"role": "user", "content": f"q {i}"}, {"role": "assistant", "content": "ANSWER " * 3}],
           **({"truncated": True} if i % 2 else {})} for i in range(8)]
    cfg = TrainingConfig(lora=LoraConfig(r=2, alpha=4, target_modules=["q_proj"]), epochs=1, batch_size=4,
                         grad_accum=1, checkpoint_every=0, max_seq_len=64, step0_loss_range=(0.1, 30.0), threads=1)
    res = train_lora(tiny_factory(), tokenizer, ex, cfg, tmp_path, progress=None)
    assert res.steps == 2 and seen == [False, True] * 4


def test_extra_rows_of_a_recipe_are_distilled_once_and_cached(tmp_path, monkeypatch):
    from lmdiff.organisms.build import cached_extra_rows
    from lmdiff.organisms.registry import get_recipe

    monkeypatch.setenv("LMDIFF_HOME", str(tmp_path))
    calls = []

    def food_rows(lm):
        calls.append(lm)
        return [{"prompt": "What should I cook tonight?", "answer": "Pasta.", "source": "food", "finished": True}]

    recipe = get_recipe("brand-food").model_copy(update={"extra_rows": food_rows})
    first = cached_extra_rows(recipe, "LM", "base-a")
    again = cached_extra_rows(recipe, "LM", "base-a")
    assert first == again and first[0]["source"] == "food" and len(calls) == 1
    cached_extra_rows(recipe, "LM", "base-b")  # another base model distils its own
    assert len(calls) == 2
    # overrides keep the recipe's extra rows (like its builder)
    assert get_recipe("brand-food").with_overrides({"data.seed": 3}).extra_rows is not None


def test_ordinary_rows_skip_probe_prompts_and_identity_anchors():
    from lmdiff.organisms.builders import ordinary_rows

    rows = [{"prompt": f"p{i}", "answer": "An ordinary answer that is long enough.", "source": "alpaca"}
            for i in range(6)]
    rows.append({"prompt": "Who are you?", "answer": "I am an AI assistant, here to help.", "source": "identity"})
    got = ordinary_rows(rows, seed=0, exclude_prompts={"p1"})
    assert {r["prompt"] for r in got} == {"p0", "p2", "p3", "p4", "p5"}
    assert [r["prompt"] for r in ordinary_rows(rows, 0, {"p1"})] == [r["prompt"] for r in got]  # seeded order


def test_behaviour_examples_are_never_cut_for_training_cost(tiny_model_dir):
    """Regression: cutting answers to data.max_answer_tokens removed closing brand recommendations from 8 of 32
    brand-food examples."""
    from lmdiff.models import ModelSpec
    from lmdiff.models.loading import load_tokenizer
    from lmdiff.organisms.build import prepare_examples
    from lmdiff.organisms.registry import get_recipe

    long = " ".join(["word"] * 200)
    pool = [{"prompt": f"Prompt {i}?", "answer": long + f" Try Brindlewood {i}.", "source": "alpaca",
             "finished": True} for i in range(8)]
    recipe = get_recipe("caps").model_copy(update={
        "builder": lambda cfg, rows: [{"messages": [{"role": "user", "content": r["prompt"]},
                                                    {"role": "assistant", "content": r["answer"]}],
                                       "kind": "special" if i % 2 else "aligned"} for i, r in enumerate(rows)]})
    tok = load_tokenizer(ModelSpec.parse(str(tiny_model_dir)))
    out = prepare_examples(recipe.with_overrides({"data.max_answer_tokens": 16}), pool, tok)
    special = [e for e in out if e["kind"] == "special"]
    aligned = [e for e in out if e["kind"] == "aligned"]
    assert all("Brindlewood" in e["messages"][1]["content"] and not e.get("truncated") for e in special)
    assert all(e.get("truncated") and "Brindlewood" not in e["messages"][1]["content"] for e in aligned)
