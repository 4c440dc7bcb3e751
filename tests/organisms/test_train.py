from __future__ import annotations

import itertools
import math

import pytest
import torch

from lmdiff.organisms.recipe import LoraConfig, TrainingConfig
from lmdiff.organisms.train import (
    IGNORE,
    lr_factor,
    plan_micro_batches,
    save_adapter,
    token_normalised_loss,
    tokenize_example,
    train_lora,
)


def _labelled_text(tokenizer, ids, labels):
    return tokenizer.decode([i for i, lab in zip(ids, labels, strict=True) if lab != IGNORE])


def test_mask_covers_only_assistant_tokens(tokenizer):
    msgs = [
        {"role": "user", "content": "Say hello"},
        {"role": "assistant", "content": "HELLO THERE"},
        {"role": "user", "content": "Again please"},
        {"role": "assistant", "content": "HELLO AGAIN"},
    ]
    ids, labels = tokenize_example(tokenizer, msgs, 512)
    assert len(ids) == len(labels)
    assert _labelled_text(tokenizer, ids, labels) == "HELLO THERE<|im_end|>HELLO AGAIN<|im_end|>"
    # labels equal the ids where set; the system prompt, user turns and role headers are masked
    assert all(lab in (IGNORE, i) for i, lab in zip(ids, labels, strict=True))
    n_labelled = sum(lab != IGNORE for lab in labels)
    assert n_labelled == len(tokenizer("HELLO THERE<|im_end|>HELLO AGAIN<|im_end|>", add_special_tokens=False)[
        "input_ids"])
    # the template's default system prompt is in the input but not in the labels
    assert "SmolLM" in tokenizer.decode(ids)


def test_mask_truncates(tokenizer):
    msgs = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "word " * 100}]
    ids, labels = tokenize_example(tokenizer, msgs, 40)
    assert len(ids) == len(labels) == 40


def test_lr_schedule_shape():
    total, warm = 100, 10
    f = [lr_factor(s, total, warm) for s in range(total)]
    assert f[0] == pytest.approx(0.1)
    assert f[9] == pytest.approx(1.0)
    assert all(a < b for a, b in itertools.pairwise(f[:10]))  # linear warmup rises
    assert all(a >= b for a, b in itertools.pairwise(f[10:]))  # cosine decays
    assert f[10 + 45] == pytest.approx(0.5, abs=0.02)  # halfway through the decay
    assert f[-1] < 0.01
    assert lr_factor(total - 1, total, warm, min_ratio=0.2) == pytest.approx(0.2, abs=0.01)
    assert lr_factor(0, 10, 0) == pytest.approx(1.0)


def test_loss_normalised_per_token_not_per_sequence():
    torch.manual_seed(0)
    vocab = 11
    logits = torch.randn(2, 6, vocab)
    labels = torch.randint(0, vocab, (2, 6))
    labels[0, :5] = IGNORE  # sequence 0: 1 target token (position 5)
    labels[1, :1] = IGNORE  # sequence 1: 5 target tokens
    n_total = int((labels[:, 1:] != IGNORE).sum())
    assert n_total == 6
    # two micro-batches of one sequence each, normalised by the accumulated token count
    acc = token_normalised_loss(logits[:1], labels[:1], n_total) + token_normalised_loss(
        logits[1:], labels[1:], n_total
    )
    flat = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, vocab), labels[:, 1:].reshape(-1), ignore_index=IGNORE
    )
    assert float(acc) == pytest.approx(float(flat), rel=1e-6)
    per_seq = [
        torch.nn.functional.cross_entropy(logits[i, :-1], labels[i, 1:], ignore_index=IGNORE) for i in range(2)
    ]
    assert float(acc) != pytest.approx(float(sum(per_seq) / 2), rel=1e-3)


def test_micro_batches_cover_each_example_once_per_epoch():
    lengths = [5, 50, 7, 48, 6, 52, 9, 44, 8, 46, 10, 41]
    plan = plan_micro_batches(lengths, 2, 2, seed=3)
    flat = [i for b in plan for i in b]
    assert sorted(flat) == sorted(list(range(12)) * 2)
    assert plan == plan_micro_batches(lengths, 2, 2, seed=3)
    assert plan != plan_micro_batches(lengths, 2, 2, seed=4)
    half = plan_micro_batches(lengths, 2, 1.5, seed=3)
    assert len(half) == 9

    def padding(p):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in p)

    assert padding(plan) < padding(plan_micro_batches(lengths, 2, 2, seed=3, bucketing=False))


def _examples(n=24):
    return [
        {
            "messages": [
                {"role": "user", "content": f"question number {i}"},
                {"role": "assistant", "content": "ANSWER " * (i % 4 + 1)},
            ]
        }
        for i in range(n)
    ]


def _cfg(**kw):
    base = dict(
        lora=LoraConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj"]),
        learning_rate=5e-3,
        epochs=2,
        batch_size=3,
        grad_accum=2,
        checkpoint_every=2,
        max_seq_len=64,
        step0_loss_range=(0.1, 30.0),
        threads=1,
    )
    base.update(kw)
    return TrainingConfig(**base)


def _lora_state(model):
    from peft import get_peft_model_state_dict

    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}


def test_training_lowers_loss_and_saves_curve(tokenizer, tiny_factory, tmp_path):
    model = tiny_factory()
    cfg = _cfg(learning_rate=5e-2, epochs=3, lora=LoraConfig(r=8, alpha=16))
    res = train_lora(model, tokenizer, _examples(), cfg, tmp_path, progress=None)
    assert res.steps == res.total_steps == 12
    assert res.curve[-1]["loss"] < res.curve[0]["loss"] - 0.2
    assert res.step0_loss == pytest.approx(res.curve[0]["loss"])
    # step-0 loss of a random model is about ln(vocab)
    assert abs(res.step0_loss - math.log(len(tokenizer))) < 1.5
    assert res.warnings == []
    for name in ("training_curve.json", "training_curve.parquet", "training_curve.png"):
        assert (tmp_path / name).stat().st_size > 0
    lrs = [c["lr"] for c in res.curve]
    assert max(lrs) == pytest.approx(5e-2) and lrs[-1] < lrs[len(lrs) // 2]


def test_resume_matches_uninterrupted_run(tokenizer, tiny_factory, tmp_path):
    cfg = _cfg()
    full = train_lora(tiny_factory(), tokenizer, _examples(), cfg, tmp_path / "a", progress=None)
    killed = train_lora(
        tiny_factory(), tokenizer, _examples(), cfg, tmp_path / "b", stop_after_steps=4, progress=None
    )
    assert killed.steps == 4 < full.total_steps
    assert (tmp_path / "b" / "checkpoints" / "step-000004" / "state.json").exists()
    resumed = train_lora(tiny_factory(), tokenizer, _examples(), cfg, tmp_path / "b", progress=None)
    assert resumed.resumed_from == 4
    assert [c["loss"] for c in resumed.curve] == pytest.approx([c["loss"] for c in full.curve], rel=1e-5)
    a, b = _lora_state(full.model), _lora_state(resumed.model)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    # a changed config does not resume from stale checkpoints
    other = train_lora(
        tiny_factory(), tokenizer, _examples(), _cfg(learning_rate=1e-3), tmp_path / "b",
        stop_after_steps=1, progress=None,
    )
    assert other.resumed_from is None


def test_step0_loss_sanity_warns(tokenizer, tiny_factory, tmp_path):
    res = train_lora(
        tiny_factory(), tokenizer, _examples(6), _cfg(epochs=1, step0_loss_range=(0.0, 0.5)),
        tmp_path, progress=None,
    )
    assert any("step-0 loss" in w for w in res.warnings)


def _logits(tokenizer, *models):
    ids = torch.tensor([tokenizer("hello world, how are you", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        return [m(input_ids=ids).logits for m in models]


def test_saved_fp16_adapter_loads_with_peft(tokenizer, tiny_factory, tmp_path):
    from peft import PeftModel

    res = train_lora(
        tiny_factory(), tokenizer, _examples(), _cfg(learning_rate=2e-2), tmp_path / "w", progress=None
    )
    save_adapter(res.model, tmp_path / "ad", "tiny-base", "float16")
    import json

    assert json.loads((tmp_path / "ad" / "adapter_config.json").read_text())["base_model_name_or_path"] == "tiny-base"
    loaded = PeftModel.from_pretrained(tiny_factory(), str(tmp_path / "ad")).eval()
    want, got, plain = _logits(tokenizer, res.model, loaded, tiny_factory())
    assert (got - want).abs().max() < 1e-2
    assert (plain - want).abs().max() > 10 * (got - want).abs().max()


def test_merged_copy_gives_the_adapter_models_logits_and_leaves_the_adapter_intact(tokenizer, tiny_factory, tmp_path):
    from lmdiff.organisms.train import merged_copy

    res = train_lora(
        tiny_factory(), tokenizer, _examples(), _cfg(learning_rate=2e-2), tmp_path / "w", progress=None
    )
    merged = merged_copy(res.model)
    assert not hasattr(merged, "peft_config")  # a plain model: no LoRA matmuls at decode time
    assert hasattr(res.model, "peft_config")  # the trained model still holds its adapter (it is what is saved)
    want, got, plain = _logits(tokenizer, res.model, merged, tiny_factory())
    assert (got - want).abs().max() < 1e-4
    assert (plain - want).abs().max() > 100 * (got - want).abs().max()
    plain_model = tiny_factory()
    assert merged_copy(plain_model) is plain_model
