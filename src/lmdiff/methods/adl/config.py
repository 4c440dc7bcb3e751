"""Settings of the adl method: the shared direction/store settings plus readout and steering settings."""

from __future__ import annotations

from pydantic import Field

from lmdiff.interp.directions import DirectionConfig
from lmdiff.methods.base import MethodConfig


class ADLConfig(DirectionConfig, MethodConfig):
    """Settings of the adl method (defaults for a GPU; the demo uses smaller ones).

    The store settings (``corpus``, ``n_texts``, ``k``, ``n_tokens``, ``layers``, ``dtype``,
    ``batch_size``) come from :class:`~lmdiff.interp.directions.DirectionConfig`, shared with causal.
    """

    steering_layer: float | int = Field(0.5, description="layer whose difference steers (must be in layers)")
    top_k: int = Field(20, ge=1, description="top tokens per readout")
    patchscope_scales: list[float] = Field(default_factory=lambda: [0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0])
    patchscope_top: int = Field(100, ge=1, description="each prompt's top list for the stability filter")
    null_directions: int = Field(4, ge=0, description="random directions of the mean difference's norm read out "
                                                      "the same way for each relevance figure's null (0: none)")
    steering: bool = True
    steering_positions: list[int] = Field(
        default_factory=lambda: [1],
        description="positions whose difference steers (position 0 is the attention sink: its difference is "
        "dominated by the sink's massive activations)",
    )
    steering_side: str = Field("finetuned", pattern="^(finetuned|base)$")
    steering_prompts: int = Field(3, ge=1)
    steering_samples: int = Field(2, ge=1)
    steering_search_steps: int = Field(4, ge=1)
    max_strength: float = Field(4.0, gt=0, description="largest multiple of the typical norm tried")
    max_new_tokens: int = Field(48, ge=1)
    max_ppl_factor: float = Field(4.0, gt=1, description="coherent: base perplexity <= factor x unsteered")
    max_repetition: float = Field(0.5, gt=0, le=1, description="coherent: repeated 3-gram share <= this")
    temperature: float = Field(0.7, ge=0)
