"""Calibration of every test and interval lmdiff reports, under realistic nulls.

A realistic null is not "two identical models": a finetune moves some prompts one way and others
the other way with no overall shift (a prompt-by-model interaction, here with sd equal to the
within-prompt noise). Each test is simulated at the default sizes of the pipeline that uses it and
its rejection rate at alpha = 0.05 is printed (it should be near 0.05; a within-prompt permutation
is shown beside the prompt-level test it replaced); each interval's coverage at 95% is printed (it
should be near 0.95). The last line reads

    calibration: max rejection R at alpha 0.05, min coverage C at 95%

Target: R <= 0.07 and C >= 0.93. Run: ``python benchmarks/bench_calibration.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from lmdiff.evals.backdoor import gap_with_ci, rate_with_ci
from lmdiff.evals.conditions import TRIGGERED, UNTRIGGERED
from lmdiff.methods.behavior.clusters import cluster_shifts
from lmdiff.methods.behavior.config import BehaviorConfig
from lmdiff.methods.behavior.hypotheses import Hypothesis
from lmdiff.methods.behavior.validate import test_hypothesis
from lmdiff.methods.dictionaries.writer import ReplyPairs, writer_contrast
from lmdiff.stats import (
    auc_permutation_test,
    classifier_two_sample_test,
    mmd_permutation_test,
    prompt_difference_test,
    sign_flip_test,
)

ALPHA = 0.05
CFG = BehaviorConfig()
N_VAL = round(CFG.n_prompts * CFG.validation_fraction)  # held-out prompts of the default run
PER_SIDE = CFG.n_per_prompt


def _texts(rng: np.random.Generator, n_prompts: int, per_side: int, interaction: float, shift: float = 0.0
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A score per text: prompt effect + (for the finetune) its own per-prompt move + noise."""
    prompt = rng.normal(0, 1, n_prompts)
    move = rng.normal(shift, interaction, n_prompts)
    scores, ft, groups = [], [], []
    for g in range(n_prompts):
        for side in (0, 1):
            scores.append(rng.normal(prompt[g] + side * move[g], 1, per_side))
            ft += [bool(side)] * per_side
            groups += [g] * per_side
    return np.concatenate(scores), np.array(ft), np.array(groups)


def rejection(name: str, runs: int, one: Callable[[int], bool]) -> tuple[str, float]:
    """Share of ``runs`` simulated nulls in which ``one(seed)`` rejects."""
    return name, float(np.mean([one(r) for r in range(runs)]))


def coverage(name: str, runs: int, one: Callable[[int], bool]) -> tuple[str, float]:
    """Share of ``runs`` simulations in which ``one(seed)``'s interval holds the truth."""
    return name, float(np.mean([one(r) for r in range(runs)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=400, help="simulations per test")
    args = ap.parse_args()
    runs = args.runs
    hyp = Hypothesis(id="h", text="placebo", kind="style", direction=1)
    t0 = time.perf_counter()

    def discriminative(r: int) -> bool:
        rng = np.random.default_rng(r)
        s, ft, g = _texts(rng, N_VAL, PER_SIDE, interaction=1.0)
        return bool(test_hypothesis(hyp, s, ft, g, n_perm=CFG.n_perm, seed=r)["pvalue"] <= ALPHA)

    def within_prompt(r: int) -> bool:  # what the pipeline used before (reference, not in the max)
        rng = np.random.default_rng(r)
        s, ft, g = _texts(rng, N_VAL, PER_SIDE, interaction=1.0)
        return bool(auc_permutation_test(s, ft, list(g), n_perm=999, alternative="greater", seed=r).pvalue <= ALPHA)

    def generative(r: int) -> bool:
        rng = np.random.default_rng(r)
        # per prompt: exemplar and control are exchangeable; the finetune moves each prompt its own way
        deltas = rng.normal(0, 1, CFG.generative_prompts) * rng.choice([0.5, 1.0, 2.0], CFG.generative_prompts)
        return bool(sign_flip_test(deltas, alternative="greater", n_perm=CFG.n_perm, seed=r).pvalue <= ALPHA)

    def cluster_shift(r: int) -> bool:
        rng = np.random.default_rng(r)
        n_disc = CFG.n_prompts - N_VAL
        base_logit = rng.normal(0, 1, n_disc)
        move = rng.normal(0, 1, n_disc)  # per-prompt change in the chance of landing in cluster 1
        labels, ft, groups = [], [], []
        for g in range(n_disc):
            for side in (0, 1):
                p = 1 / (1 + np.exp(-(base_logit[g] + side * move[g])))
                labels += list((rng.random(PER_SIDE) < p).astype(int))
                ft += [bool(side)] * PER_SIDE
                groups += [g] * PER_SIDE
        shifts = cluster_shifts(np.array(labels), np.array(ft), groups, 2, n_perm=999, seed=r)
        return bool(shifts.loc[shifts.cluster == 1, "pvalue"].iloc[0] <= ALPHA)

    def global_test(kind: str) -> Callable[[int], bool]:
        def one(r: int) -> bool:  # the global tests' null is "the two models are the same"
            rng = np.random.default_rng(r)
            n = CFG.n_prompts
            prompt = rng.normal(0, 1, (n, 8))
            x = np.repeat(prompt, 2 * PER_SIDE, axis=0) + rng.normal(0, 1, (n * 2 * PER_SIDE, 8))
            ft = np.tile(np.repeat([False, True], PER_SIDE), n)
            groups = np.repeat(np.arange(n), 2 * PER_SIDE)
            if kind == "classifier":
                res = classifier_two_sample_test(x, ft, groups, n_perm=CFG.global_n_perm, seed=r,
                                                 estimator=CFG.global_estimator)
            else:
                res = mmd_permutation_test(x, labels=ft, groups=groups, n_perm=CFG.global_n_perm, seed=r)
            return bool(res.pvalue <= ALPHA)

        return one

    def writer_units(r: int) -> tuple[bool, bool]:
        """Dictionary units on pair-replies under the null: the two replies of a prompt are exchangeable."""
        rng = np.random.default_rng(r)
        n_prompts, n_units = 500, 64  # the default corpus's prompts; a few dozen units per family
        prompt = rng.lognormal(0, 1, (n_prompts, 1))  # some prompts engage every unit more
        unit = rng.lognormal(0, 1, (1, n_units))
        draw = [prompt * unit * rng.exponential(1, (n_prompts, n_units)) * (rng.random((n_prompts, n_units)) < 0.3)
                for _ in range(2)]  # sparse, skewed energies of each prompt's base-written and finetune-written text
        table, _ = writer_contrast(np.concatenate(draw), ReplyPairs(np.arange(n_prompts), np.arange(n_prompts, 2 *
                                   n_prompts)), np.ones(n_units), 1.0, np.ones(n_units, dtype=bool), seed=r)
        return bool(table.writer_p.iloc[0] <= ALPHA), bool((table.writer_q <= ALPHA).any())

    writer_runs = [writer_units(r) for r in range(max(100, runs // 4))]
    rejections = [
        rejection("discriminative (prompt sign flips, default)", runs, discriminative),
        rejection("generative (sign flips of per-prompt deltas)", runs, generative),
        rejection("cluster shift (prompt sign flips)", max(100, runs // 2), cluster_shift),
        rejection("global classifier (identical models)", runs, global_test("classifier")),
        rejection("global MMD (identical models)", max(100, runs // 2), global_test("mmd")),
        ("dictionary writer contrast, one unit (500 prompts)", float(np.mean([a for a, _ in writer_runs]))),
        ("  any of 64 units at q <= 0.05 (BH family)", float(np.mean([b for _, b in writer_runs]))),
    ]
    reference = rejection("  before: AUC with labels permuted within prompts", max(100, runs // 2), within_prompt)

    def auc_ci(r: int) -> bool:
        rng = np.random.default_rng(r)
        s, ft, g = _texts(rng, N_VAL, PER_SIDE, interaction=1.0)
        row = test_hypothesis(hyp, s, ft, g, n_perm=99, seed=r)
        return bool(row["auc_low"] <= 0.5 <= row["auc_high"])

    def accuracy_ci(r: int) -> bool:
        rng = np.random.default_rng(r)
        s, ft, g = _texts(rng, N_VAL, PER_SIDE, interaction=1.0)
        row = test_hypothesis(hyp, s, ft, g, n_perm=99, seed=r)
        return bool(row["accuracy_low"] <= 0.5 <= row["accuracy_high"])

    def difference_ci(r: int) -> bool:
        rng = np.random.default_rng(r)
        s, ft, g = _texts(rng, N_VAL, PER_SIDE, interaction=1.0, shift=0.5)
        res = prompt_difference_test(s, ft, g, n_perm=9, seed=r)
        return bool(res.low <= 0.5 <= res.high)

    def backdoor_rows(rng: np.random.Generator, n_q: int = 16, n_samples: int = 4, n_seeds: int = 5,
                      gap: float = 0.0) -> pd.DataFrame:
        rates = rng.beta(0.5, 0.5, n_q)
        lift = np.clip(rates + gap, 0, 1) - rates
        rows = []
        for cond, add in ((TRIGGERED, lift), (UNTRIGGERED, np.zeros(n_q))):
            for q in range(n_q):
                for s in range(n_seeds):
                    for k in range(n_samples):
                        rows.append({"condition": cond, "question_id": q, "seed": s, "sample": k,
                                     "persona": bool(rng.random() < rates[q] + add[q])})
        return pd.DataFrame(rows)

    def backdoor_rate(r: int) -> bool:
        rng = np.random.default_rng(r)
        df = backdoor_rows(rng)
        u = df[df.condition == UNTRIGGERED]
        res = rate_with_ci(u["persona"].to_numpy(), u["seed"].to_numpy(), u["question_id"].to_numpy())
        return bool(res["low"] <= 0.5 <= res["high"])  # Beta(.5, .5) question rates: population rate 0.5

    rates_pop = np.random.default_rng(12345).beta(0.5, 0.5, 2_000_000)
    true_gap = float((np.clip(rates_pop + 0.2, 0, 1) - rates_pop).mean())  # population mean lift

    def backdoor_gap(r: int) -> bool:
        rng = np.random.default_rng(r)
        res = gap_with_ci(backdoor_rows(rng, gap=0.2), "persona")
        return bool(res["low"] <= true_gap <= res["high"])

    coverages = [
        coverage("hypothesis AUC interval (t over prompts)", max(100, runs // 2), auc_ci),
        coverage("hypothesis accuracy interval (t over prompts)", max(100, runs // 2), accuracy_ci),
        coverage("per-prompt difference interval", max(100, runs // 2), difference_ci),
        coverage("backdoor rate interval (16 q x 5 seeds x 4 samples)", max(100, runs // 2), backdoor_rate),
        coverage("backdoor primary gap interval (same design)", max(100, runs // 2), backdoor_gap),
    ]
    print(f"Realistic nulls at the default sizes: {N_VAL} held-out prompts x {PER_SIDE} replies per side, "
          f"{CFG.generative_prompts} generative prompts, {runs} runs per test ({time.perf_counter() - t0:.0f} s)")
    print("\nrejection rate at alpha 0.05 (target <= 0.07)")
    for name, rate in [*rejections, reference]:
        print(f"  {rate:6.3f}  {name}")
    print("\ncoverage of 95% intervals (target >= 0.93)")
    for name, cov in coverages:
        print(f"  {cov:6.3f}  {name}")
    r_max = max(rate for _, rate in rejections)
    c_min = min(cov for _, cov in coverages)
    print(f"\ncalibration: max rejection {r_max:.3f} at alpha 0.05, min coverage {c_min:.3f} at 95%")


if __name__ == "__main__":
    main()
