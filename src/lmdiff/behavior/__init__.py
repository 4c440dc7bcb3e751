"""Black-box behaviour pipeline: sample -> split -> global test -> embed/cluster/match -> describe -> validate.

The statistics layer (:func:`analyze`) works on texts and embeddings alone; the ``behavior``
method (:mod:`lmdiff.methods.behavior`) samples both models and renders the report section.
"""

from lmdiff.behavior.clusters import Clustering, cluster_embeddings, cluster_shifts, match_clusters
from lmdiff.behavior.config import DEMO_SETTINGS, BehaviorConfig
from lmdiff.behavior.hypotheses import Hypothesis, ngram_hypotheses, offline_score, style_hypotheses
from lmdiff.behavior.pipeline import BehaviorAnalysis, analyze
from lmdiff.behavior.validate import acc_at_k, apply_fdr, grade_offline, split_prompts, test_hypothesis

__all__ = [
    "DEMO_SETTINGS",
    "BehaviorAnalysis",
    "BehaviorConfig",
    "Clustering",
    "Hypothesis",
    "acc_at_k",
    "analyze",
    "apply_fdr",
    "cluster_embeddings",
    "cluster_shifts",
    "grade_offline",
    "match_clusters",
    "ngram_hypotheses",
    "offline_score",
    "split_prompts",
    "style_hypotheses",
    "test_hypothesis",
]
