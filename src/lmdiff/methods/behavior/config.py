"""Settings of the black-box behaviour pipeline (the ``behavior`` method's config)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lmdiff.methods.base import MethodConfig

__all__ = ["DEMO_SETTINGS", "BehaviorConfig"]


class BehaviorConfig(MethodConfig):
    """Settings of the behaviour pipeline; the defaults fit a CPU in a few minutes."""

    n_prompts: int = Field(48, ge=4, description="prompts drawn from the run's prompt set")
    n_per_prompt: int = Field(3, ge=1, description="samples per prompt and model")
    max_new_tokens: int = Field(64, ge=1)
    temperature: float = Field(0.8, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    finetuned_seed_offset: int = Field(
        7919, description="the finetuned side samples with seed + this, so a self-pair is two independent samples"
    )
    chunk_size: int = Field(8, ge=1, description="prompts per resumable generation chunk")
    embedder: str = Field("all-minilm-l6-v2", description="sentence-transformers model, or 'hashing' (model-free)")
    validation_fraction: float = Field(0.5, gt=0, lt=1, description="share of prompts held out for validation")
    clusterer: Literal["kmeans", "hdbscan"] = "kmeans"
    k: int | None = Field(None, ge=2, description="k-means k; None = searched by silhouette")
    screen_p: float = Field(0.1, gt=0, le=1, description="discovery screen for style and cluster hypotheses")
    ngram_z_min: float = Field(
        2.0,
        gt=0,
        description="|z| an n-gram needs to be named in a hypothesis (a discovery screen: the pooled-count prior "
        "shrinks z, and every named n-gram is tested on held-out prompts under the FDR anyway)",
    )
    wordings: list[int] = Field(default_factory=lambda: [3, 8], description="candidate wordings: top-k terms")
    length_max_truncated: float = Field(
        0.2,
        ge=0,
        le=1,
        description="no reply-length hypothesis when more than this share of either model's replies hit "
        "max_new_tokens (their word counts then measure tokens per word, not length)",
    )
    max_cluster_hypotheses: int = Field(2, ge=0, description="differing clusters that get their own n-gram hypotheses")
    global_n_perm: int = Field(199, ge=0, description="permutations of the global classifier and MMD tests")
    global_estimator: Literal["ridge", "logistic"] = Field(
        "ridge", description="classifier of the global test (ridge: all permutations in one product; fast)"
    )
    bow_n_perm: int = Field(0, ge=0, description="permutations of the bag-of-words baseline (0 = AUC only)")
    n_perm: int = Field(1999, ge=99, description="permutations of each hypothesis test")
    generative_prompts: int = Field(
        16,
        ge=0,
        description="held-out prompts per hypothesis in the generative test (needs an LLM; 0 = off); with 8 the "
        "smallest sign-flip p is 1/256, which cannot survive BH once more than 12 tests run",
    )
    fdr: Literal["bh", "by"] = Field("bh", description="the one FDR procedure applied to every hypothesis")
    alpha: float = Field(0.05, gt=0, lt=1)
    use_llm: bool = Field(True, description="use the LLM writer/annotator/grader when an LLM is configured")
    llm_annotate_all: bool = Field(False, description="LLM-annotate offline hypotheses too (else only LLM ones)")
    quantization_metrics: bool = Field(True, description="answer flip rate and token KL for quantization pairs")
    quantization_n_prompts: int = Field(16, ge=0, description="run prompts answered greedily by both precisions")
    quantization_math_prompts: int = Field(8, ge=0, description="shipped math prompts added (final number compared)")
    quantization_max_new_tokens: int = Field(128, ge=1, description="greedy answer length of the flip-rate check")


DEMO_SETTINGS: dict[str, object] = {
    "n_prompts": 24,
    "n_per_prompt": 2,
    "max_new_tokens": 48,
    "global_n_perm": 99,
    "n_perm": 999,
}
