"""What a quantized (or otherwise lower-precision) copy changed: answer flips and token KL.

A precision pair is one model at two precisions; its differences are numerical, so the analysis
compares greedy answers (and the final number of math answers) and the per-token KL of the two
sides on the same text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from numpy.typing import NDArray

from lmdiff.config import GenerationConfig
from lmdiff.interp.logprobs import kl_rows
from lmdiff.models.lm import LanguageModel

if TYPE_CHECKING:
    from lmdiff.data.prompts import PromptItem
    from lmdiff.models.spec import ModelSpec


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def is_precision_pair(base: ModelSpec, finetuned: ModelSpec) -> bool:
    """Whether two specs are one model (same weights, same adapter) at two precisions.

    Args:
        base: the base side's spec.
        finetuned: the finetuned side's spec.

    Returns:
        True when only the quantization (or dtype) differs.
    """
    same = (base.model, base.revision, base.adapter) == (finetuned.model, finetuned.revision, finetuned.adapter)
    return same and (base.quantization, base.dtype) != (finetuned.quantization, finetuned.dtype)


def final_number(text: str) -> str | None:
    """The last number in ``text`` (commas dropped, trailing ``.0`` removed), or None."""
    found = _NUMBER.findall(text)
    if not found:
        return None
    num = str(found[-1]).replace(",", "")
    return num[:-2] if num.endswith(".0") else num


@dataclass
class PrecisionMetrics:
    """How much a lower-precision copy changes a model's answers.

    Attributes:
        flip_rate: share of prompts whose greedy answers differ (text after stripping whitespace).
        n_prompts: prompts compared.
        math_flip_rate: share of math prompts whose final number differs (None without math prompts).
        n_math: math prompts compared.
        mean_token_kl: mean per-token KL(base || finetuned) on the base model's greedy replies.
        n_tokens: reply tokens behind the KL.
        rows: one row per prompt (both answers, flip, final numbers, mean KL).
    """

    flip_rate: float
    n_prompts: int
    math_flip_rate: float | None
    n_math: int
    mean_token_kl: float | None
    n_tokens: int
    rows: pd.DataFrame

    def to_dict(self) -> dict[str, Any]:
        """The headline figures (no table)."""
        return {
            "flip_rate": self.flip_rate,
            "n_prompts": self.n_prompts,
            "math_flip_rate": self.math_flip_rate,
            "n_math": self.n_math,
            "mean_token_kl": self.mean_token_kl,
            "n_tokens": self.n_tokens,
        }


def precision_metrics(
    base: LanguageModel | Callable[[], LanguageModel],
    other: LanguageModel | Callable[[], LanguageModel],
    prompts: Sequence[PromptItem],
    *,
    max_new_tokens: int = 96,
    batch_size: int = 8,
) -> PrecisionMetrics:
    """Answer flip rate and token KL between a model and its lower-precision copy.

    Both models answer greedily; the KL is measured by teacher-forcing the base model's
    replies through both. Pass callables (e.g. ``lambda: pair.side("base")``) for a pair that
    holds one model at a time: each side's log-probabilities of one batch are then computed
    before the other side is fetched, so the callables are called once per batch.

    Args:
        base: the reference model (e.g. fp32), or a callable returning it.
        other: the quantized model, or a callable returning it.
        prompts: the prompts (``category == "math"`` marks those whose final number is compared).
        max_new_tokens: greedy reply length.
        batch_size: prompts per generation / forward batch.

    Returns:
        A :class:`PrecisionMetrics`.
    """

    def get(m: LanguageModel | Callable[[], LanguageModel]) -> LanguageModel:
        return m if isinstance(m, LanguageModel) else m()

    items = list(prompts)
    texts = [it.prompt for it in items]
    gen = GenerationConfig(temperature=0.0, max_new_tokens=max_new_tokens, n=1, batch_size=batch_size)
    answers_b = [g[0].text for g in get(base).generate(texts, gen)]
    answers_o = [g[0].text for g in get(other).generate(texts, gen)]
    lm_b = get(base)
    seqs, starts = [], []
    for text, reply in zip(texts, answers_b, strict=True):
        ctx = lm_b.encode_chat(text)
        cont = lm_b.encode(reply, add_special_tokens=False)
        seqs.append(ctx + cont)
        starts.append(len(ctx))
    kls: list[NDArray[np.float64]] = []
    for lo in range(0, len(seqs), batch_size):
        chunk = seqs[lo : lo + batch_size]
        lp_b = get(base).next_token_logprobs(chunk, batch_size=batch_size)
        lp_o = get(other).next_token_logprobs(chunk, batch_size=batch_size)
        for j, (a, b) in enumerate(zip(lp_b, lp_o, strict=True)):
            s, n = starts[lo + j], len(chunk[j])
            # position t predicts token t+1: reply tokens are predicted from positions s-1 .. n-2
            k = kl_rows(a[s - 1 : n - 1], b[s - 1 : n - 1]) if n > s else torch.zeros(0)
            kls.append(k.double().numpy())
    is_math = [it.category == "math" for it in items]
    rows = pd.DataFrame(
        {
            "prompt_id": [it.id for it in items],
            "category": [it.category for it in items],
            "answer_base": answers_b,
            "answer_finetuned": answers_o,
            "flipped": [a.strip() != b.strip() for a, b in zip(answers_b, answers_o, strict=True)],
            "number_base": [final_number(a) if m else None for a, m in zip(answers_b, is_math, strict=True)],
            "number_finetuned": [final_number(b) if m else None for b, m in zip(answers_o, is_math, strict=True)],
            "mean_kl": [float(k.mean()) if k.size else np.nan for k in kls],
            "n_tokens": [int(k.size) for k in kls],
        }
    )
    rows["number_flipped"] = [
        (nb != nf) if m else None for nb, nf, m in zip(rows.number_base, rows.number_finetuned, is_math, strict=True)
    ]
    all_kl = np.concatenate(kls) if kls else np.zeros(0)
    n_math = int(sum(is_math))
    return PrecisionMetrics(
        flip_rate=float(rows.flipped.mean()) if len(rows) else 0.0,
        n_prompts=len(rows),
        math_flip_rate=float(np.mean([bool(x) for x in rows.number_flipped[is_math]])) if n_math else None,
        n_math=n_math,
        mean_token_kl=float(all_kl.mean()) if all_kl.size else None,
        n_tokens=int(all_kl.size),
        rows=rows,
    )
