"""Settings of the amplification method."""

from __future__ import annotations

from pydantic import Field, field_validator

from lmdiff.methods.base import MethodConfig


class AmplificationConfig(MethodConfig):
    """Settings of the amplification method (unknown keys are errors)."""

    n_prompts: int = Field(12, ge=1, description="prompts drawn from the run's prompt set")
    n_per_prompt: int = Field(2, ge=1, description="samples per prompt and setting")
    max_new_tokens: int = Field(48, ge=1)
    temperature: float = Field(1.0, gt=0, description="amplification needs sampling: greedy is not allowed")
    top_p: float = Field(0.9, gt=0, le=1)
    alphas: list[float] = Field([0.0, 1.0, 2.0, 4.0], min_length=1, description=(
        "logit-difference strengths; 0 (ordinary sampling from the finetune) is always included"))
    lora_scales: list[float] = Field([2.0, 4.0], description=(
        "adapter scales for LoRA pairs (1 is the adapter as trained, the same samples as alpha 0)"))
    lora_layers: tuple[int, int] | None = Field(None, description="first and last block to scale (default: all)")
    lora_kinds: list[str] | None = Field(None, description="module kinds (attention, mlp) or names to scale")
    min_prompts: int = Field(2, ge=1, description="a growing word must occur in replies to this many prompts")
    top_words: int = Field(20, ge=1)
    weight_stats: bool = Field(True, description="per-block and per-module weight-delta statistics")
    top_singular: int = Field(8, ge=1, description="singular values kept per delta (top-k energy share)")
    chunk_size: int = Field(4, ge=1, description="prompts per resumable chunk")

    @field_validator("alphas")
    @classmethod
    def _with_zero(cls, v: list[float]) -> list[float]:
        if any(a < 0 for a in v):
            raise ValueError("alphas must be >= 0 (negative alpha moves toward the base model)")
        return sorted(set(v) | {0.0})

    @field_validator("lora_scales")
    @classmethod
    def _scales(cls, v: list[float]) -> list[float]:
        if any(s < 0 for s in v):
            raise ValueError("lora_scales must be >= 0")
        return sorted(set(v) - {1.0})
