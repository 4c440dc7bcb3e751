"""Settings of the dictionary methods: the store, the readouts and steering, and (for the learnt ones) training.

CPU defaults train in minutes on a 135M model: the ``pair-replies`` corpus (the 500 shipped chat and
instruction prompts, each with the base's and with the finetune's own greedy 48-token reply: 1000 texts,
about 96k stored tokens per side), one middle layer, 150k training tokens (several epochs), 1024
latents at k=32, batch 512. GPU settings for millions of tokens: see the README ("Dictionary
methods").
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lmdiff.dictionaries import TrainSettings
from lmdiff.methods.base import MethodConfig


class DictionaryConfig(MethodConfig):
    """Store, readout and steering settings shared by pca, sae_diff and crosscoder."""

    corpus: str = Field("pair-replies", description=(
        "corpus name or file the activations are collected on. pair-replies (the default) holds what each model "
        "writes: on the zoo's ocean-topic organism, PCA components 1 and 4 fire on 'ocean' and 'tides' in the "
        "finetune's replies (example relevance 42% vs 9% for random tokens), where on the generic corpus "
        "(Alpaca reference answers, which the finetune never wrote) no component touched the topic"))
    n_texts: int | None = Field(None, ge=1, description="texts (None: the whole corpus, capped at 20000); "
                                   "for pair-replies, prompts (two texts each)")
    n_tokens: int = Field(256, ge=2, description="tokens per text")
    layer: float | int = Field(0.5, description="the layer (relative float or block index)")
    dtype: str = Field("float32", pattern="^(float32|float16|bfloat16)$", description="store dtype")
    batch_size: int = Field(8, ge=1, description="sequences per forward pass (and steering generations)")
    min_position: int = Field(1, ge=0, description="positions before this are skipped (0: the attention sink)")
    n_units: int = Field(10, ge=1, description="components or latents read out and shown")
    writer_contrast: bool = Field(True, description=(
        "on pair-replies, test per unit whether it carries more of the difference in the finetune's own replies "
        "than in the base's replies to the same prompts (sign-flip over prompts, BH over units)"))
    n_examples: int = Field(8, ge=1, description="top-activating examples per unit")
    top_k: int = Field(12, ge=1, description="lens tokens per unit")
    lens_readout: str = Field("lens_delta", pattern="^(lens|lens_delta)$",
                              description="which lens names a unit's tokens in the headline: the lens of the mean "
                              "finetuned activation plus the unit's largest contribution minus that of the mean "
                              "(lens_delta), or the plain logit lens of the direction (lens)")
    steering: bool = True
    steer_top: int = Field(1, ge=0, description="units steered (the top ones)")
    steering_prompts: int = Field(2, ge=1)
    steering_samples: int = Field(2, ge=1)
    steering_search_steps: int = Field(3, ge=1)
    max_strength: float = Field(4.0, gt=0, description="largest multiple of the typical norm tried")
    max_new_tokens: int = Field(32, ge=1)
    max_ppl_factor: float = Field(4.0, gt=1)
    max_repetition: float = Field(0.5, gt=0, le=1)
    temperature: float = Field(0.7, ge=0)


class PCAConfig(DictionaryConfig):
    """Settings of pca."""

    n_components: int = Field(20, ge=1, description="components kept (explained-variance curve)")
    centre: bool = Field(False, description=(
        "subtract the mean difference before the decomposition. Off by default: a finetune's difference has a "
        "large constant part (on the zoo's ocean-topic organism, 23% of the squared difference at layer 14 and 36% "
        "at layer 26), which centring removes; uncentred, the first component is that shift"))


class SAEDiffConfig(DictionaryConfig):
    """Settings of sae_diff."""

    rank_by: Literal["writer", "variance"] = Field("writer", description=(
        "how latents are ranked: writer (how much more of the difference they explain in the finetune's own "
        "replies than in the base's, on pair-replies; other corpora fall back to variance) or variance (their "
        "share of the difference's variance, which on the zoo's ocean-topic ranks generic latents first)"))

    train: TrainSettings = Field(default_factory=TrainSettings)
    pretrained: str | None = Field(None, description="a SAELens SAE directory trained on ft - base differences at "
                                   "this layer (cfg.json + sae_weights.safetensors): used instead of training")


class CrosscoderConfig(DictionaryConfig):
    """Settings of crosscoder."""

    train: TrainSettings = Field(default_factory=TrainSettings)
    control: str = Field("swap", pattern="^(swap|shuffle|none)$",
                         description="null control trained the same way: swap (each token's sides exchanged at "
                         "random), shuffle (base and finetuned rows of different tokens), none")
    ft_only_threshold: float = Field(0.9, gt=0.5, lt=1, description="rel_norm at or above: finetuned-only")
    scaling_latents: int = Field(200, ge=0, description="latents scored by latent scaling (one-sided first)")
