"""Statistics every lmdiff pipeline uses, built so that a reviewer would accept them.

The rules they enforce (see DESIGN.md, "Statistics a reviewer would accept"):

* texts from one prompt are not independent: every test and interval takes a grouping and
  resamples or permutes whole prompts (or labels within prompts), never single texts;
* every result reports the real n (after explicit, counted exclusions) and the number of groups;
* ties count as half and stay in the denominator;
* permutation p-values are ``(b + 1) / (m + 1)`` (two-sided: twice the smaller one-sided
  p-value), never 0;
* one declared FDR procedure (:func:`adjust`) is applied once to everything a run reports;
* a global two-sample test (:func:`classifier_two_sample_test`, :func:`mmd_permutation_test`) and
  a bag-of-words baseline (:func:`bag_of_words_baseline`) sit beside every hypothesis;
* every random step takes a seed; results are dataclasses with ``to_dict()`` for JSON.

Label convention: True/1 = model B (e.g. the finetune), False/0 = model A (e.g. the base); signed
effects are B minus A unless a function documents otherwise.
"""

from lmdiff.stats._common import wilson_interval
from lmdiff.stats.discrimination import AccuracyResult, AucResult, accuracy_with_ties, auc, auc_permutation_test
from lmdiff.stats.effect_sizes import (
    EffectSize,
    ProportionShiftResult,
    cohens_d,
    cohens_h,
    log_odds_ratio,
    proportion_shift,
    risk_difference,
)
from lmdiff.stats.fdr import FdrResult, adjust, qvalues
from lmdiff.stats.ngrams import contrastive_ngrams, log_odds_dirichlet, tokenize
from lmdiff.stats.prompt_level import (
    MeanInterval,
    PromptAucResult,
    PromptDifferenceResult,
    SignFlipResult,
    per_prompt_differences,
    prompt_auc_test,
    prompt_difference_test,
    sign_flip_pvalues,
    sign_flip_test,
    unit_mean_interval,
)
from lmdiff.stats.resampling import (
    BootstrapResult,
    PermutationResult,
    cluster_bootstrap_ci,
    grouped_permutation_pvalue,
    hierarchical_bootstrap_ci,
)
from lmdiff.stats.two_sample import (
    BagOfWordsResult,
    ClassifierTestResult,
    MmdResult,
    bag_of_words_baseline,
    classifier_two_sample_test,
    mmd_permutation_test,
)

__all__ = [
    "AccuracyResult",
    "AucResult",
    "BagOfWordsResult",
    "BootstrapResult",
    "ClassifierTestResult",
    "EffectSize",
    "FdrResult",
    "MeanInterval",
    "MmdResult",
    "PermutationResult",
    "PromptAucResult",
    "PromptDifferenceResult",
    "ProportionShiftResult",
    "SignFlipResult",
    "accuracy_with_ties",
    "adjust",
    "auc",
    "auc_permutation_test",
    "bag_of_words_baseline",
    "classifier_two_sample_test",
    "cluster_bootstrap_ci",
    "cohens_d",
    "cohens_h",
    "contrastive_ngrams",
    "grouped_permutation_pvalue",
    "hierarchical_bootstrap_ci",
    "log_odds_dirichlet",
    "log_odds_ratio",
    "mmd_permutation_test",
    "per_prompt_differences",
    "prompt_auc_test",
    "prompt_difference_test",
    "proportion_shift",
    "qvalues",
    "risk_difference",
    "sign_flip_pvalues",
    "sign_flip_test",
    "tokenize",
    "unit_mean_interval",
    "wilson_interval",
]
