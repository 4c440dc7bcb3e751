"""The ``behavior`` method: sample -> split -> global test -> embed/cluster/match -> describe -> validate.

The whole method lives in this package. The statistics layer (:func:`analyze`, :mod:`.pipeline`
and what it calls) works on texts and embeddings alone; :class:`BehaviorMethod` (:mod:`.method`)
samples both models, embeds, saves and renders the report section (:mod:`.report`).
"""

from lmdiff.methods.behavior.clusters import Clustering, cluster_embeddings, cluster_shifts, match_clusters
from lmdiff.methods.behavior.config import DEMO_SETTINGS, BehaviorConfig
from lmdiff.methods.behavior.hypotheses import Hypothesis, ngram_hypotheses, offline_score, style_hypotheses
from lmdiff.methods.behavior.method import BehaviorMethod
from lmdiff.methods.behavior.pipeline import BehaviorAnalysis, analyze
from lmdiff.methods.behavior.validate import acc_at_k, apply_fdr, grade_offline, split_prompts, test_hypothesis

__all__ = [
    "DEMO_SETTINGS",
    "BehaviorAnalysis",
    "BehaviorConfig",
    "BehaviorMethod",
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
