"""A small LoRA trainer (torch + PEFT) with the controls the organisms need.

* loss on assistant tokens only: every other position is masked with ``-100``; assistant spans
  are found by rendering the conversation with the model's own chat template;
* loss normalised per token over the whole accumulated batch (not per sequence);
* linear warmup, then cosine decay; seeded data order; gradient accumulation;
* length-bucketed micro-batches (less padding on CPU);
* periodic checkpoints (adapter, optimizer, scheduler, RNG, step, curve), each written atomically,
  and resume from the newest one after a kill: a resumed run ends where an uninterrupted one does;
* the training curve saved as JSON and Parquet and plotted as PNG;
* a step-0 loss sanity check (the collapse check's first half; the second half is a sample
  generation after training, see :func:`lmdiff.organisms.evaluate.collapse_check`).
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lmdiff.io import atomic_dir, atomic_path, read_json, sha256_json, write_json, write_parquet
from lmdiff.organisms.recipe import LoraConfig, TrainingConfig
from lmdiff.progress import progress_bar

log = logging.getLogger(__name__)

IGNORE = -100


# --------------------------------------------------------------------------- tokenisation
def _render(tokenizer: Any, messages: Sequence[dict[str, str]], add_generation_prompt: bool) -> str:
    return str(
        tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=add_generation_prompt)
    )


def assistant_char_spans(tokenizer: Any, messages: Sequence[dict[str, str]]) -> tuple[str, list[tuple[int, int]]]:
    """Render ``messages`` and find the character span of every assistant turn.

    A turn's span runs from the end of the rendered prefix with the generation prompt to the end
    of the rendered conversation up to and including that turn (so it covers the end-of-turn
    token, which teaches the model to stop), trailing whitespace excluded.

    Returns:
        The full rendered text and the ``(start, end)`` character spans.
    """
    full = _render(tokenizer, messages, add_generation_prompt=False)
    spans: list[tuple[int, int]] = []
    for i, msg in enumerate(messages):
        if msg["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:i], add_generation_prompt=True) if i else ""
        upto = _render(tokenizer, messages[: i + 1], add_generation_prompt=False).rstrip()
        if not full.startswith(upto) or not upto.startswith(before):
            raise ValueError("the chat template does not render conversations incrementally")
        spans.append((len(before), len(upto)))
    return full, spans


def tokenize_example(
    tokenizer: Any, messages: Sequence[dict[str, str]], max_len: int, truncated: bool = False
) -> tuple[list[int], list[int]]:
    """Token ids and labels of one conversation: labels are ``-100`` outside assistant turns.

    Every assistant turn is labelled up to and including its end-of-turn token, which teaches the
    model to stop, except the last one of a ``truncated`` example (an answer the length bound cut):
    its labels end with its text, and nothing after it is labelled, so the example never teaches
    stopping there. Truncation to ``max_len`` only ever drops the end of the sequence, so a cut
    example keeps no end-of-turn label past the cut either.

    Args:
        tokenizer: a fast Hugging Face tokenizer with a chat template.
        messages: the conversation (system/user/assistant turns).
        max_len: truncate to this many tokens.
        truncated: the last assistant turn is unfinished (label no end-of-turn token for it).

    Returns:
        ``(input_ids, labels)`` of equal length.
    """
    text, spans = assistant_char_spans(tokenizer, messages)
    if truncated and spans:
        last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
        content = messages[last]["content"].rstrip()
        start = text.find(content, spans[-1][0]) if content else spans[-1][0]
        if start < 0 or start > spans[-1][1]:
            raise ValueError("the chat template changes the assistant text; cannot find where the answer ends")
        spans[-1] = (spans[-1][0], start + len(content))
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = list(enc["input_ids"])
    labels = [IGNORE] * len(ids)
    for t, (s, e) in enumerate(enc["offset_mapping"]):
        if e <= s:
            continue
        for a, b in spans:
            if s >= a and e <= b:
                labels[t] = ids[t]
                break
    return ids[:max_len], labels[:max_len]


def cap_answer_tokens(tokenizer: Any, example: dict[str, Any], max_tokens: int | None) -> dict[str, Any]:
    """Cut the last assistant turn of ``example`` to ``max_tokens`` tokens, marking it ``truncated``.

    A cheaper training example that still never teaches an early stop: the cut answer carries no
    end-of-turn label (see :func:`tokenize_example`). Examples within the bound are returned unchanged.
    """
    if not max_tokens:
        return example
    msgs = example["messages"]
    idx = [i for i, m in enumerate(msgs) if m["role"] == "assistant"]
    if not idx:
        return example
    content = msgs[idx[-1]]["content"]
    toks = tokenizer(content, add_special_tokens=False)["input_ids"]
    if len(toks) <= max_tokens:
        return example
    cut = str(tokenizer.decode(toks[:max_tokens])).rstrip()
    new_msgs = [dict(m) for m in msgs]
    new_msgs[idx[-1]]["content"] = cut
    return {**example, "messages": new_msgs, "truncated": True}


# ---------------------------------------------------------------------------- schedule
def lr_factor(step: int, total_steps: int, warmup_steps: int, min_ratio: float = 0.0) -> float:
    """LR multiplier at optimizer step ``step`` (0-based): linear warmup, then cosine decay.

    Args:
        step: the optimizer step about to be taken.
        total_steps: number of optimizer steps in the run.
        warmup_steps: steps of linear warmup (factor ``(step+1)/warmup_steps``).
        min_ratio: the floor the cosine decays to.

    Returns:
        A factor in ``[min_ratio, 1]``.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def plan_micro_batches(
    lengths: Sequence[int], batch_size: int, epochs: float, seed: int, bucketing: bool = True
) -> list[list[int]]:
    """The run's micro-batches (lists of example indices), deterministic given the seed.

    Each epoch shuffles the examples; with bucketing, chunks of ``8*batch_size`` examples are
    sorted by length before being cut into batches, and the batches are shuffled again.
    A fractional last epoch takes the first part of that epoch's batches.
    """
    n = len(lengths)
    batches: list[list[int]] = []
    full_epochs = math.ceil(epochs)
    for epoch in range(full_epochs):
        rng = random.Random(seed * 7919 + epoch)
        order = list(range(n))
        rng.shuffle(order)
        epoch_batches: list[list[int]] = []
        if bucketing:
            chunk = batch_size * 8
            for c in range(0, n, chunk):
                part = sorted(order[c : c + chunk], key=lambda i: lengths[i])
                epoch_batches.extend(part[b : b + batch_size] for b in range(0, len(part), batch_size))
            rng.shuffle(epoch_batches)
        else:
            epoch_batches = [order[b : b + batch_size] for b in range(0, n, batch_size)]
        if epoch == full_epochs - 1 and epochs < full_epochs:
            keep = max(1, round(len(epoch_batches) * (epochs - epoch)))
            epoch_batches = epoch_batches[:keep]
        batches.extend(epoch_batches)
    return batches


def token_normalised_loss(logits: torch.Tensor, labels: torch.Tensor, n_tokens_total: int) -> torch.Tensor:
    """Summed next-token cross-entropy over labelled positions, divided by ``n_tokens_total``.

    Dividing every micro-batch by the token count of the whole accumulated batch makes the
    accumulated gradient that of the per-token mean over all its assistant tokens, so long
    answers weigh more than short ones (unlike a mean of per-sequence means).
    """
    shift_logits = logits[:, :-1, :].float()
    shift_labels = labels[:, 1:]
    loss = nn.functional.cross_entropy(
        shift_logits.reshape(-1, shift_logits.shape[-1]),
        shift_labels.reshape(-1),
        ignore_index=IGNORE,
        reduction="sum",
    )
    return loss / max(1, n_tokens_total)


# ------------------------------------------------------------------------------ model
def wrap_lora(model: nn.Module, lora: LoraConfig, seed: int) -> nn.Module:
    """Wrap ``model`` in a fresh, seeded PEFT LoRA adapter (only adapter weights train)."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    torch.manual_seed(seed)
    present = {name.split(".")[-1] for name, _ in model.named_modules()}
    targets = [t for t in lora.target_modules if t in present]
    if not targets:
        raise ValueError(f"none of the LoRA target modules {lora.target_modules} exist in the model")
    cfg = PeftLoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, cfg)


def merged_copy(model: nn.Module) -> nn.Module:
    """A copy of a trained PEFT model with the adapter merged into the weights, for measuring it.

    Generation with an unmerged adapter pays the LoRA matmuls at every decode step; the merged copy runs at
    the base model's speed and gives the same logits up to float rounding. ``model`` itself is left intact
    (its adapter is what gets saved). A 4-bit (QLoRA) model, or a model without an adapter, is returned
    as it is: merging into quantized weights would change them.
    """
    import copy

    if not hasattr(model, "merge_and_unload") or getattr(model, "is_loaded_in_4bit", False):
        return model
    merged: nn.Module = getattr(copy.deepcopy(model), "merge_and_unload")()  # noqa: B009 (PEFT, untyped)
    merged.eval()
    return merged


def qlora_available() -> bool:
    """Whether a 4-bit QLoRA base can be used (CUDA and bitsandbytes present)."""
    if not torch.cuda.is_available():
        return False
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        return False
    return True


def load_base_for_training(model_dir: str, cfg: TrainingConfig) -> nn.Module:
    """Load a base model for training: QLoRA 4-bit on CUDA with bitsandbytes, else fp32 (CPU) / bf16."""
    from transformers import AutoModelForCausalLM

    if cfg.quantize_4bit == "auto" and qlora_available():
        from peft import prepare_model_for_kbit_training
        from transformers import BitsAndBytesConfig

        bnb = BitsAndBytesConfig(  # type: ignore[no-untyped-call]
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.bfloat16,
            bnb_4bit_use_double_quant=True,
        )
        model = AutoModelForCausalLM.from_pretrained(
            model_dir, quantization_config=bnb, device_map={"": 0}, use_safetensors=True
        )
        prepared: torch.nn.Module = prepare_model_for_kbit_training(model)  # type: ignore[no-untyped-call]
        return prepared
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    plain: Any = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, use_safetensors=True)
    return plain.to("cuda" if torch.cuda.is_available() else "cpu")  # type: ignore[no-any-return]


def save_adapter(model: nn.Module, out_dir: Path, base_name: str, save_dtype: str = "float16") -> None:
    """Save the LoRA weights (safetensors, in ``save_dtype``) and adapter_config.json to ``out_dir``."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[save_dtype]
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in get_peft_model_state_dict(model).items()}
    save_file(state, str(out_dir / "adapter_model.safetensors"), metadata={"format": "pt"})
    peft_cfg: Any = model.peft_config["default"]  # type: ignore[index]
    peft_cfg.base_model_name_or_path = base_name
    peft_cfg.save_pretrained(str(out_dir))


# --------------------------------------------------------------------------- training
@dataclass
class TrainResult:
    """What a training run produced."""

    model: nn.Module
    curve: list[dict[str, float]]
    steps: int
    total_steps: int
    train_tokens: int
    seconds: float
    step0_loss: float | None
    warnings: list[str] = field(default_factory=list)
    resumed_from: int | None = None

    @property
    def tokens_per_s(self) -> float:
        """Processed (input) tokens per second over the steps run in this process."""
        return self.train_tokens / self.seconds if self.seconds > 0 else 0.0


def _latest_checkpoint(ckpt_root: Path) -> Path | None:
    if not ckpt_root.is_dir():
        return None
    done = sorted(
        (p for p in ckpt_root.glob("step-*") if (p / "state.json").exists()),
        key=lambda p: int(p.name.split("-")[1]),
    )
    return done[-1] if done else None


def _save_checkpoint(
    ckpt_root: Path,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    sched: Any,
    step: int,
    curve: list[dict[str, float]],
    fingerprint: str,
    keep: int = 2,
) -> None:
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    with atomic_dir(ckpt_root / f"step-{step:06d}") as tmp:
        state = {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(model).items()}
        save_file(state, str(tmp / "adapter.safetensors"))
        torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, tmp / "optim.pt")
        torch.save(
            {
                "torch": torch.get_rng_state(),
                "numpy": torch.as_tensor(np.asarray(np.random.get_state()[1], dtype=np.int64)),  # type: ignore[index]
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
            tmp / "rng.pt",
        )
        (tmp / "python_rng.json").write_text(json.dumps(random.getstate()[1]))
        write_json(tmp / "state.json", {"step": step, "curve": curve, "fingerprint": fingerprint})
    old = sorted(ckpt_root.glob("step-*"), key=lambda p: int(p.name.split("-")[1]))[:-keep]
    for p in old:
        shutil.rmtree(p, ignore_errors=True)


def _load_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer, sched: Any) -> tuple[int, list[Any]]:
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(model, load_file(str(path / "adapter.safetensors")))
    states = torch.load(path / "optim.pt", weights_only=True)
    opt.load_state_dict(states["optimizer"])
    sched.load_state_dict(states["scheduler"])
    try:
        rng = torch.load(path / "rng.pt", weights_only=True)  # tensors only: never unpickle a checkpoint
    except Exception:  # written by an older lmdiff (a numpy array inside): resume without its RNG state
        log.warning("%s holds objects beyond tensors; resuming without its random state", path / "rng.pt")
        rng = {}
    if "torch" in rng:
        torch.set_rng_state(rng["torch"])
    if rng.get("cuda"):
        torch.cuda.set_rng_state_all(rng["cuda"])
    state = read_json(path / "state.json")
    return int(state["step"]), list(state["curve"])


def train_lora(
    model: nn.Module,
    tokenizer: Any,
    examples: Sequence[dict[str, Any]],
    cfg: TrainingConfig,
    work_dir: Path,
    *,
    resume: bool = True,
    stop_after_steps: int | None = None,
    progress: str | None = "training",
) -> TrainResult:
    """Train a LoRA adapter on chat examples (loss on assistant tokens only).

    Args:
        model: the base causal LM (not yet wrapped); it is wrapped with a fresh LoRA adapter.
        tokenizer: its tokenizer (with a chat template).
        examples: dicts with ``messages``.
        cfg: the training config.
        work_dir: where checkpoints, the curve (JSON, Parquet) and its plot are written.
        resume: continue from the newest checkpoint in ``work_dir/checkpoints`` if there is one
            (and it was written for the same data and config).
        stop_after_steps: stop (after checkpointing) once this many optimizer steps are done,
            as if killed there (used by tests and benchmarks).
        progress: a progress-bar description, or None.

    Returns:
        A :class:`TrainResult` holding the trained PEFT model.
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    work_dir.mkdir(parents=True, exist_ok=True)
    ckpt_root = work_dir / "checkpoints"

    tokenized = [
        tokenize_example(tokenizer, ex["messages"], cfg.max_seq_len, truncated=bool(ex.get("truncated")))
        for ex in examples
    ]
    tokenized = [(i, lab) for i, lab in tokenized if any(x != IGNORE for x in lab[1:])]
    if not tokenized:
        raise ValueError("no example has assistant tokens to train on")
    lengths = [len(ids) for ids, _ in tokenized]
    micro = plan_micro_batches(lengths, cfg.batch_size, cfg.epochs, cfg.seed, cfg.length_bucketing)
    steps_plan = [micro[s : s + cfg.grad_accum] for s in range(0, len(micro), cfg.grad_accum)]
    total_steps = len(steps_plan)
    warmup = round(cfg.warmup_ratio * total_steps)
    data = [[*ids, -1, *lab] for ids, lab in tokenized]
    fingerprint = sha256_json({"data": data, "cfg": cfg.model_dump(mode="json")})

    peft_model = wrap_lora(model, cfg.lora, cfg.seed)
    device = next(peft_model.parameters()).device
    peft_model.train()
    params = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total_steps, warmup, cfg.min_lr_ratio))

    start_step, resumed_from = 0, None
    curve: list[dict[str, float]] = []
    latest = _latest_checkpoint(ckpt_root) if resume else None
    if latest is not None:
        state = read_json(latest / "state.json")
        if state.get("fingerprint") == fingerprint:
            start_step, curve = _load_checkpoint(latest, peft_model, opt, sched)
            resumed_from = start_step
            log.info("resumed from %s (step %d)", latest, start_step)
        else:
            log.warning("checkpoint %s is for other data or config; starting afresh", latest)
            shutil.rmtree(ckpt_root, ignore_errors=True)

    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
    warnings: list[str] = []
    step0_loss = curve[0]["loss"] if curve else None
    train_tokens = 0
    t0 = time.perf_counter()
    end_step = total_steps if stop_after_steps is None else min(total_steps, stop_after_steps)
    with progress_bar(progress or "", (end_step - start_step) if progress else 0) as advance:
        for step in range(start_step, end_step):
            batches = steps_plan[step]
            n_tok = sum(sum(1 for x in tokenized[i][1][1:] if x != IGNORE) for b in batches for i in b)
            opt.zero_grad(set_to_none=True)
            loss_sum = 0.0
            for b in batches:
                width = max(lengths[i] for i in b)
                ids = torch.full((len(b), width), pad, dtype=torch.long)
                labels = torch.full((len(b), width), IGNORE, dtype=torch.long)
                mask = torch.zeros((len(b), width), dtype=torch.long)
                for r, i in enumerate(b):
                    seq, lab = tokenized[i]
                    ids[r, : len(seq)] = torch.as_tensor(seq)
                    labels[r, : len(lab)] = torch.as_tensor(lab)
                    mask[r, : len(seq)] = 1
                ids, labels, mask = ids.to(device), labels.to(device), mask.to(device)
                out = peft_model(input_ids=ids, attention_mask=mask, use_cache=False)
                loss = token_normalised_loss(out.logits, labels, n_tok)
                loss.backward()  # type: ignore[no-untyped-call]
                loss_sum += float(loss.detach())
                train_tokens += int(mask.sum())
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm))
            lr = float(sched.get_last_lr()[0])
            opt.step()
            sched.step()
            curve.append({"step": step + 1, "loss": loss_sum, "lr": lr, "grad_norm": grad_norm, "tokens": n_tok})
            if step == 0:
                step0_loss = loss_sum
                lo, hi = cfg.step0_loss_range
                if not (lo <= loss_sum <= hi) or not math.isfinite(loss_sum):
                    msg = (
                        f"step-0 loss {loss_sum:.3f} is outside the sane range [{lo}, {hi}]: the data, the "
                        "template or the labels may be broken"
                    )
                    warnings.append(msg)
                    log.warning(msg)
            if not math.isfinite(loss_sum):
                warnings.append(f"non-finite loss at step {step + 1}")
                log.warning("non-finite loss at step %d", step + 1)
            done = step + 1
            if done % 5 == 0 or done == end_step:
                log.info(
                    "step %d/%d loss %.4f lr %.2e (%.0f s)", done, total_steps, loss_sum, lr, time.perf_counter() - t0
                )
            if cfg.checkpoint_every and (done % cfg.checkpoint_every == 0 or done == end_step) and done < total_steps:
                _save_checkpoint(ckpt_root, peft_model, opt, sched, done, curve, fingerprint)
            advance(1)
    seconds = time.perf_counter() - t0
    steps_done = end_step
    if steps_done >= total_steps:
        save_curve(curve, work_dir)
        shutil.rmtree(ckpt_root, ignore_errors=True)  # finished: checkpoints are no longer needed
    peft_model.eval()
    return TrainResult(
        model=peft_model,
        curve=curve,
        steps=steps_done,
        total_steps=total_steps,
        train_tokens=train_tokens,
        seconds=seconds,
        step0_loss=step0_loss,
        warnings=warnings,
        resumed_from=resumed_from,
    )


def save_curve(curve: list[dict[str, float]], out_dir: Path) -> None:
    """Write the training curve as ``training_curve.json``, ``.parquet`` and a ``.png`` plot."""
    import pyarrow as pa

    write_json(out_dir / "training_curve.json", curve)
    if curve:
        write_parquet(out_dir / "training_curve.parquet", pa.Table.from_pylist(curve))
        plot_curve(curve, out_dir / "training_curve.png")


def plot_curve(curve: list[dict[str, float]], path: Path) -> None:
    """Plot loss (and LR on a second axis) against the optimizer step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    steps = [c["step"] for c in curve]
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    ax.plot(steps, [c["loss"] for c in curve], color="tab:blue", label="loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (per assistant token)")
    ax2 = ax.twinx()
    ax2.plot(steps, [c["lr"] for c in curve], color="tab:orange", alpha=0.6, label="lr")
    ax2.set_ylabel("learning rate")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
