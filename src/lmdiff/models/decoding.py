"""The decode loop behind :meth:`LanguageModel.generate`.

transformers' ``generate`` keeps every row of a batch in the forward pass until the longest
row ends, so a batch whose replies end at 20, 40 and 128 tokens pays 128 steps for all of them.
On a CPU the decode step of a small model costs about as much per row as a matrix product of
that many rows (the step is compute-bound from a batch of about 16 on a 2-core machine), so the
rows that have ended are pure waste. :func:`decode_batch` drops them from the batch, its KV cache and
its attention mask as soon as they emit an end-of-turn token.

Scores go through the same steps as transformers' sampling, in the same order: repetition penalty,
the caller's logits processor, temperature, top-k, top-p; greedy decoding takes the argmax. A caller's
logits processor may keep per-row state (the amplified sampler steps a second model in lockstep),
so with one the batch keeps all its rows and ended rows are fed padding, as transformers does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch

if TYPE_CHECKING:
    from lmdiff.config import GenerationConfig

__all__ = ["Decoded", "decode_batch", "score_steps"]

ScoreStep = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Stepper(Protocol):
    """What the loop needs of a model: :meth:`lmdiff.models.lm.LanguageModel.forward_step`."""

    def forward_step(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, cache: Any = None, *, fp32_logits: bool = True
    ) -> tuple[torch.Tensor, Any]:
        """Logits at the last position [B, V] and the updated KV cache."""


@dataclass(frozen=True)
class Decoded:
    """One row's new tokens (end-of-turn token excluded) and whether the model ended on its own."""

    tokens: list[int]
    finished: bool


def score_steps(cfg: GenerationConfig, processor: ScoreStep | None = None) -> list[ScoreStep]:
    """The edits a step's scores go through, in transformers' order; top-k 0 and top-p 1 are off."""
    from transformers.generation.logits_process import (
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    steps: list[ScoreStep] = []
    if cfg.repetition_penalty != 1.0:
        steps.append(RepetitionPenaltyLogitsProcessor(penalty=cfg.repetition_penalty))
    if processor is not None:
        steps.append(processor)
    if cfg.temperature > 0:
        if cfg.temperature != 1.0:
            steps.append(TemperatureLogitsWarper(cfg.temperature))
        if cfg.top_k > 0:
            steps.append(TopKLogitsWarper(top_k=cfg.top_k))
        if cfg.top_p < 1.0:
            steps.append(TopPLogitsWarper(top_p=cfg.top_p))
    return steps


def decode_batch(
    lm: Stepper,
    ids: torch.Tensor,
    mask: torch.Tensor,
    cfg: GenerationConfig,
    eos_ids: Sequence[int],
    *,
    pad_id: int,
    processor: ScoreStep | None = None,
    fp32_logits: bool = False,
) -> list[Decoded]:
    """Decode ``cfg.n`` continuations of each left-padded prompt row.

    Args:
        lm: the model (its :meth:`~LanguageModel.forward_step` runs every step).
        ids: left-padded prompt ids [B, T] on the model's device.
        mask: their attention mask [B, T].
        cfg: sampling settings (``temperature`` 0 is greedy); the caller seeds torch's generator.
        eos_ids: tokens that end a reply.
        pad_id: what ended rows are fed while a logits processor keeps them in the batch.
        processor: edits each step's scores ``(sequences [R, T'], scores [R, V]) -> scores``.
        fp32_logits: compute the output head in float32.

    Returns:
        ``B * cfg.n`` rows, the ``cfg.n`` samples of prompt row ``b`` at ``b * n ... b * n + n - 1``.
    """
    if cfg.n > 1:
        ids, mask = ids.repeat_interleave(cfg.n, dim=0), mask.repeat_interleave(cfg.n, dim=0)
    rows = ids.shape[0]
    steps = score_steps(cfg, processor)
    keep_all = processor is not None
    eos = torch.tensor(sorted(set(eos_ids)), device=ids.device)
    tokens: list[list[int]] = [[] for _ in range(rows)]
    finished = [False] * rows
    alive = torch.arange(rows, device=ids.device)  # which output row each batch row is
    seqs = ids
    logits, cache = lm.forward_step(ids, mask, None, fp32_logits=fp32_logits)
    for step in range(cfg.max_new_tokens):
        scores = logits
        for edit in steps:
            scores = edit(seqs, scores)
        if cfg.temperature > 0:
            nxt = torch.multinomial(torch.softmax(scores.float(), dim=-1), num_samples=1).squeeze(1)
        else:
            nxt = scores.argmax(dim=-1)
        ended = torch.isin(nxt, eos)
        if keep_all:  # rows that ended at an earlier step are fed padding, as transformers does
            before = torch.tensor([finished[i] for i in alive.tolist()], device=ids.device)
            nxt = torch.where(before, torch.full_like(nxt, pad_id), nxt)
        for out_row, tok, end in zip(alive.tolist(), nxt.tolist(), ended.tolist(), strict=True):
            if finished[out_row]:
                continue
            if end:
                finished[out_row] = True
            else:
                tokens[out_row].append(tok)
        if step == cfg.max_new_tokens - 1 or all(finished):
            break
        if not keep_all and bool(ended.any()):
            live = ~ended
            alive, nxt, seqs, mask = alive[live], nxt[live], seqs[live], mask[live]
            cache = _select_rows(cache, live.nonzero().squeeze(1))
        seqs = torch.cat([seqs, nxt[:, None]], dim=1)
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
        logits, cache = lm.forward_step(nxt[:, None], mask, cache, fp32_logits=fp32_logits)
    return [Decoded(t, f) for t, f in zip(tokens, finished, strict=True)]


def _select_rows(cache: Any, index: torch.Tensor) -> Any:
    """Keep only the rows ``index`` of a KV cache (transformers' ``Cache`` or the legacy tuple form)."""
    if hasattr(cache, "batch_select_indices"):
        cache.batch_select_indices(index)
        return cache
    return tuple(tuple(t[index] for t in layer) for layer in cache)
