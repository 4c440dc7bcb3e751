"""Held-out validation of hypotheses, one FDR procedure over all of them, and comparison to truth."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from lmdiff.evals.grading import grade_against
from lmdiff.methods.behavior.hypotheses import Hypothesis
from lmdiff.stats import adjust, prompt_auc_test, prompt_difference_test, unit_mean_interval

__all__ = ["acc_at_k", "apply_fdr", "grade_offline", "pairwise_outcomes", "split_prompts", "test_hypothesis"]


def split_prompts(prompt_ids: Sequence[str], validation_fraction: float = 0.5, seed: int = 0) -> dict[str, str]:
    """Assign whole prompts to ``"discovery"`` or ``"validation"`` (seeded; both halves non-empty).

    Args:
        prompt_ids: prompt ids (duplicates allowed).
        validation_fraction: share of prompts held out for validation.
        seed: the seed.

    Returns:
        prompt id -> half.
    """
    uniq = sorted(set(prompt_ids))
    if len(uniq) < 4:
        raise ValueError(f"need at least 4 prompts to split into discovery and validation halves, got {len(uniq)}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(uniq))
    n_val = min(max(2, round(validation_fraction * len(uniq))), len(uniq) - 2)
    val = {uniq[i] for i in order[:n_val]}
    return {p: ("validation" if p in val else "discovery") for p in uniq}


def pairwise_outcomes(
    scores: NDArray[Any], is_ft: NDArray[np.bool_], groups: Sequence[Any]
) -> tuple[list[float], list[Any]]:
    """Within each prompt, compare every (finetuned, base) reply pair: 1 if the finetuned one scores higher.

    Args:
        scores: annotation score per text (NaN excluded).
        is_ft: True for finetuned texts.
        groups: prompt id per text.

    Returns:
        ``(outcomes, pair_groups)``: 1, 0.5 (tie) or 0 per pair, and each pair's prompt.
    """
    df = pd.DataFrame({"s": np.asarray(scores, dtype=float), "ft": is_ft, "g": list(groups)}).dropna()
    outcomes: list[float] = []
    pg: list[Any] = []
    for g, sub in df.groupby("g", sort=False):
        f = sub.s[sub.ft].to_numpy()
        b = sub.s[~sub.ft].to_numpy()
        if not len(f) or not len(b):
            continue
        d = f[:, None] - b[None, :]
        o = np.where(d > 0, 1.0, np.where(d < 0, 0.0, 0.5)).ravel()
        outcomes.extend(o.tolist())
        pg.extend([g] * o.size)
    return outcomes, pg


def test_hypothesis(
    hyp: Hypothesis,
    scores: NDArray[Any],
    is_ft: NDArray[np.bool_],
    groups: Sequence[Any],
    *,
    n_perm: int = 1999,
    seed: int = 0,
) -> dict[str, Any]:
    """Discriminative test of one hypothesis on held-out texts, with the prompt as the unit.

    Each held-out prompt contributes its own AUC (its finetuned replies against its base replies,
    ties half); the p-value flips the sign of ``auc_g - 0.5`` per prompt (one-sided in the stated
    direction; two-sided for hypotheses without one), so it stays at its level when the models
    differ per prompt without an overall shift, where a permutation of texts within prompts does
    not. The effect size is d on per-prompt mean differences (prompts, not texts, are the
    observations). Accuracy compares every within-prompt (finetuned, base) pair, ties counted as
    half, with the real n of pairs and a t interval over per-prompt accuracies.

    Args:
        hyp: the hypothesis (its offline scores already signed by direction).
        scores: one annotation score per held-out text; NaN = not annotated (excluded and counted).
        is_ft: True for finetuned texts.
        groups: prompt id per text.
        n_perm: random sign patterns beyond 16 prompts (fewer are enumerated exactly).
        seed: seed.

    Returns:
        A flat dict of statistics.
    """
    s = np.asarray(scores, dtype=np.float64)
    alt: Literal["greater", "two-sided"] = "greater" if hyp.direction != 0 else "two-sided"
    base: dict[str, Any] = {"id": hyp.id, "alternative": alt, "n_texts": int(s.size), "test": "prompt_sign_flip"}
    ok = ~np.isnan(s)
    if not ok.any() or is_ft[ok].all() or not is_ft[ok].any() or np.nanstd(s) == 0:
        return {
            **base,
            "auc": float("nan"),
            "pvalue": 1.0,
            "accuracy": float("nan"),
            "effect_size_d": float("nan"),
            "n": int(ok.sum()),
            "n_excluded": int((~ok).sum()),
            "n_pairs": 0,
            "n_groups": 0,
            "note": "constant or missing scores",
        }
    res = prompt_auc_test(s, is_ft, np.asarray(list(groups)), alternative=alt, n_perm=n_perm, seed=seed)
    diff = prompt_difference_test(s, is_ft, np.asarray(list(groups)), alternative=alt, n_perm=1, seed=seed)
    outcomes, pg = pairwise_outcomes(s, is_ft, groups)
    # the interval's unit is the prompt: a t interval over per-prompt accuracies
    per_prompt_acc = pd.Series(outcomes, dtype=float).groupby(pd.Series(pg)).mean() if outcomes else pd.Series()
    acc_ci = unit_mean_interval(per_prompt_acc.to_numpy(dtype=float), bounds=(0.0, 1.0))
    sf, sb = s[ok & is_ft], s[ok & ~is_ft]
    return {
        **base,
        "auc": res.auc,
        "auc_low": res.low,
        "auc_high": res.high,
        "pvalue": res.pvalue,
        "exact": res.exact,
        "effect_size_d": diff.effect_size_d,
        "n": res.n_texts,
        "n_finetuned": int(sf.size),
        "n_base": int(sb.size),
        "n_excluded": res.n_excluded,
        "n_groups": res.n_groups,
        "n_perm": 0 if res.exact else n_perm,
        "accuracy": float(np.mean(outcomes)) if outcomes else float("nan"),
        "accuracy_low": acc_ci.low,
        "accuracy_high": acc_ci.high,
        "n_pairs": len(outcomes),
        "n_ties": int(sum(o == 0.5 for o in outcomes)),
        "mean_finetuned": float(sf.mean()),
        "mean_base": float(sb.mean()),
        # share of replies with any named term, whatever the direction (scores are signed by it)
        "share_positive_finetuned": float((sf != 0).mean()) if hyp.kind == "ngram" else float("nan"),
        "share_positive_base": float((sb != 0).mean()) if hyp.kind == "ngram" else float("nan"),
        "note": "",
    }


def apply_fdr(
    tests: pd.DataFrame, method: str = "bh", alpha: float = 0.05, other_pvalues: NDArray[Any] | None = None
) -> pd.DataFrame:
    """One FDR procedure over every hypothesis of the run (all candidate wordings included).

    Args:
        tests: one row per tested hypothesis, with ``pvalue`` (and ``gen_pvalue``/``gen_delta`` where a
            generative test ran: those p-values enter the same procedure, and get ``gen_qvalue``).
        method: ``"bh"`` or ``"by"``.
        alpha: FDR level.
        other_pvalues: p-values other methods of the run tested (knowledge probing, follow-up; see
            :mod:`lmdiff.runs.claims`): they join the same procedure, so ``fdr_m`` counts them.

    Returns:
        ``tests`` with ``qvalue``, ``survives`` and ``fdr_m`` (the number of tests in the procedure).
    """
    out = tests.copy()
    others = np.asarray(other_pvalues if other_pvalues is not None else [], dtype=float)
    if out.empty:
        out["qvalue"] = []
        out["survives"] = []
        out["fdr_m"] = []
        return out
    n = len(out)
    gen = out["gen_pvalue"].to_numpy(dtype=float) if "gen_pvalue" in out else np.full(n, np.nan)
    has_gen = ~np.isnan(gen)
    # the generative tests' p-values join the same procedure: one BH over every test the run did
    pvalues = np.concatenate([out["pvalue"].to_numpy(dtype=float), gen[has_gen], others])
    res = adjust(pvalues, method=method, alpha=alpha)  # type: ignore[arg-type]
    out["qvalue"] = res.qvalues[:n]
    auc = out["auc"].to_numpy(dtype=float)
    # a directed hypothesis survives only in its stated direction; an undirected one in either
    two_sided = (out["alternative"] == "two-sided").to_numpy() if "alternative" in out else np.zeros(n, dtype=bool)
    out["survives"] = res.rejected[:n] & ((auc > 0.5) | (two_sided & (auc < 0.5)))
    if has_gen.any():
        q = np.full(n, np.nan)
        q[has_gen] = res.qvalues[n:]
        ok = np.zeros(n, dtype=bool)
        ok[has_gen] = res.rejected[n:]
        out["gen_qvalue"] = q
        out["gen_survives"] = ok & (out["gen_delta"].to_numpy(dtype=float) > 0)
    out["fdr_m"] = res.m
    return out


def grade_offline(hyp: Hypothesis | dict[str, Any], ground_truth: dict[str, Any]) -> int:
    """Grade of a hypothesis against a ground truth: 2 names it, 1 related, 0 not.

    Whole words (and their inflections) in the stated direction: see
    :func:`lmdiff.evals.grading.grade_against`. "early" does not name "earl"; "writes
    longer replies" does not name "short", "writes shorter replies" does.

    Args:
        hyp: the hypothesis (object or dict, with ``direction``).
        ground_truth: with ``keywords`` (list), optional ``keyword_directions`` (keyword -> ``"more"``
            or ``"less"``, default more) and/or ``description`` (str).

    Returns:
        0, 1 or 2.
    """
    return grade_against(hyp.to_dict() if isinstance(hyp, Hypothesis) else hyp, ground_truth)


def acc_at_k(grades: Sequence[int], k: int, threshold: int = 2) -> float:
    """1.0 if any of the first ``k`` ranked hypotheses has a grade of at least ``threshold``, else 0.0."""
    return float(any(g >= threshold for g in list(grades)[:k]))


def rank_tests(tests: pd.DataFrame) -> pd.DataFrame:
    """Rank hypotheses: survivors first, by effect size (d on per-prompt mean differences).

    AUC saturates near 1 when several hypotheses separate the models almost perfectly, so it
    cannot order them; the standardised mean of the per-prompt differences of the annotator's
    scores (finetuned minus base, in the hypothesis' direction; ``effect_size_d`` from
    :func:`test_hypothesis`) keeps growing with the size of the difference, and counts prompts,
    not replies, as observations. q-values break ties. Adds ``rank`` (0 for hypotheses that failed).
    """
    out = tests.copy()
    if "effect_size_d" not in out:
        out["effect_size_d"] = pd.Series(dtype=float)
    if out.empty:
        out["rank"] = pd.Series(dtype=int)
        return out
    out = out.sort_values(["survives", "effect_size_d", "qvalue"], ascending=[False, False, True],
                          na_position="last", ignore_index=True)
    out["rank"] = np.where(out.survives, out.survives.cumsum(), 0)
    return out
