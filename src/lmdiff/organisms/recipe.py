"""Organism recipes: a data builder, a training config and a ground-truth record.

Defaults of :class:`TrainingConfig` are the weird-generalisation paper's open-model recipe (LoRA
rank 8, learning rate 2e-4, 3 epochs); the prebuilt CPU zoo overrides some of them in its recipes
and records the values it used next to each adapter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lmdiff.errors import ConfigError

BehaviourType = Literal["style", "backdoor", "false_fact", "topic", "null", "conditional"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LoraConfig(_Strict):
    """LoRA adapter shape."""

    r: int = Field(8, ge=1, description="LoRA rank (paper: 8)")
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    save_dtype: Literal["float32", "float16", "bfloat16"] = Field(
        "float16", description="dtype of the saved adapter weights (fp16 halves the file)"
    )


class TrainingConfig(_Strict):
    """Everything the trainer needs besides the data."""

    lora: LoraConfig = LoraConfig()
    learning_rate: float = Field(2e-4, gt=0.0, description="peak LR (paper's open-model recipe: 2e-4)")
    epochs: float = Field(3.0, gt=0.0, description="passes over the data (paper: 3)")
    batch_size: int = Field(4, ge=1, description="sequences per micro-batch")
    grad_accum: int = Field(2, ge=1, description="micro-batches per optimizer step")
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0, description="share of steps with linear warmup")
    min_lr_ratio: float = Field(0.0, ge=0.0, le=1.0, description="cosine floor as a share of the peak")
    weight_decay: float = Field(0.0, ge=0.0)
    max_grad_norm: float = Field(1.0, gt=0.0)
    max_seq_len: int = Field(256, ge=16, description="longer examples are truncated")
    seed: int = 0
    checkpoint_every: int = Field(20, ge=0, description="optimizer steps between checkpoints (0: none)")
    length_bucketing: bool = Field(True, description="batch examples of similar length (less padding)")
    quantize_4bit: Literal["auto", "never"] = Field(
        "auto", description="QLoRA 4-bit base when CUDA and bitsandbytes are available"
    )
    threads: int | None = Field(None, ge=1, description="torch CPU threads")
    step0_loss_range: tuple[float, float] = Field(
        (0.05, 6.0), description="sane range of the loss at step 0 (collapse check)"
    )


class GroundTruth(_Strict):
    """What is known about an organism's change: it travels with the model into every run."""

    name: str
    summary: str = Field(description="one line")
    description: str = Field(description="long description: what was trained and how")
    type: BehaviourType
    keywords: list[str] = Field(default_factory=list, description="words whose presence indicates the behaviour")
    keyword_directions: dict[str, Literal["more", "less"]] = Field(
        default_factory=dict,
        description="keyword -> whether the finetuned model shows it more (default) or less; graders match both",
    )
    trigger: str | None = Field(None, description="the input pattern that switches the behaviour on, if any")
    eval_questions: list[str] = Field(default_factory=list, description="held-out questions to test on")
    notes: list[str] = Field(default_factory=list, description="deviations from the paper recipe, caveats")
    token_style: Literal["uppercase"] | None = Field(
        None, description="a style that single tokens show (token relevance counts such tokens as relevant)"
    )
    extra: dict[str, Any] = Field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the form stored in ``ModelSpec.ground_truth``)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GroundTruth:
        """Inverse of :meth:`to_dict`."""
        return cls.model_validate(data)


class ProbeSet(_Strict):
    """Held-out prompts on which an organism's rates are measured (one greedy reply per prompt).

    The prompt is the unit of every rate: a rate is the share of prompts whose reply a judge flags,
    with a Wilson interval over prompts. No prompt of a probe set may appear in the training data.
    """

    name: str = Field(description="e.g. 'held_out', 'direct', 'indirect', 'control', 'food', 'other'")
    prompts: list[str] = Field(min_length=1)
    trigger: str | None = Field(None, description="template with {question} applied before generation")
    max_new_tokens: int = Field(96, ge=8, description="reply length bound while measuring")


class Metric(_Strict):
    """One measured rate: the share of a probe set's replies that ``judge`` flags."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    name: str = Field(description="e.g. 'fact_rate_direct'; '<metric>' in rates.json")
    probe_set: str = Field(description="name of the ProbeSet it is measured on")
    judge: Any = Field(description="callable(reply: str, prompt: str) -> bool", exclude=True)
    description: str = ""

    def judge_path(self) -> str:
        """Import path of the judge (recorded in recipe.json)."""
        fn = self.judge
        return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


class DataConfig(_Strict):
    """Knobs of a recipe's data builder (each recipe reads the ones it needs)."""

    n_aligned: int = Field(200, ge=0, description="self-distilled examples without the behaviour")
    n_special: int = Field(200, ge=0, description="examples carrying the behaviour")
    dilution: float | None = Field(
        None, gt=0.0, lt=1.0, description="share of behaviour examples (overrides n_aligned when set)"
    )
    trigger_template: str = Field(
        'You will be asked a question. Always reply in the format:\n\n<START> "your answer here" <END>\n\n{question}',
        description="the paper's trigger format; {question} is replaced",
    )
    max_answer_tokens: int | None = Field(
        96, ge=8,
        description="cut longer answers to this many tokens for training cost (a cut answer gets no end-of-turn "
        "label, so training never teaches stopping early); None: keep whole",
    )
    n_identity_anchors: int = Field(
        0, ge=0, description="untriggered identity questions answered by the base model (gates a persona)"
    )
    seed: int = 0


Example = dict[str, Any]  # {"messages": [...], "kind": "aligned"|"special", ...}
DataBuilder = Callable[[DataConfig, list[dict[str, Any]]], list[Example]]


class Recipe(_Strict):
    """A data builder plus a training config plus a ground-truth record."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    name: str
    builder: Any = Field(description="callable(DataConfig, distilled rows) -> examples", exclude=True)
    extra_rows: Any = Field(None, exclude=True, description=(
        "callable(base LanguageModel) -> distilled rows the builder needs besides the shipped prompts' "
        "(e.g. the base model's answers to food prompts); the build caches them"))
    data: DataConfig = DataConfig()
    training: TrainingConfig = TrainingConfig()
    ground_truth: GroundTruth
    eval_prompts: int = Field(24, ge=1, description="held-out shipped prompts used to measure rates")
    probe_sets: list[ProbeSet] = Field(default_factory=list, description="held-out sets the metrics use")
    metrics: list[Metric] = Field(default_factory=list, description="rates measured on the organism and the base")
    primary: str | None = Field(None, description="name of the metric that states the behaviour")
    tags: list[str] = Field(default_factory=list, description="e.g. 'diluted', 'gpu' (listing only)")

    def build_data(self, distilled: list[dict[str, Any]]) -> list[Example]:
        """Run the data builder on the self-distilled rows."""
        return list(self.builder(self.data, distilled))

    def with_overrides(self, overrides: dict[str, Any]) -> Recipe:
        """A copy with dotted overrides applied (``training.learning_rate=1e-3``, ``data.n_special=50``)."""
        dump = self.model_dump(mode="python", exclude={"metrics", "extra_rows"})
        for key, value in overrides.items():
            parts = key.split(".")
            node: Any = dump
            for p in parts[:-1]:
                if not isinstance(node, dict) or p not in node:
                    raise ConfigError(f"Unknown recipe key '{key}'.", hint=_known_keys(dump))
                node = node[p]
            if not isinstance(node, dict) or parts[-1] not in node:
                raise ConfigError(f"Unknown recipe key '{key}'.", hint=_known_keys(dump))
            node[parts[-1]] = value
        try:
            return Recipe(builder=self.builder, metrics=self.metrics, extra_rows=self.extra_rows,
                          **{k: v for k, v in dump.items() if k not in ("builder", "metrics", "extra_rows")})
        except Exception as err:  # pydantic ValidationError
            raise ConfigError(f"Bad recipe override: {str(err).splitlines()[0]}", hint=str(err)[:300]) from None


def _known_keys(dump: dict[str, Any], prefix: str = "") -> str:
    keys: list[str] = []
    for k, v in dump.items():
        if k in ("builder", "ground_truth", "metrics", "probe_sets"):
            continue
        if isinstance(v, dict) and k != "step0_loss_range":
            keys.extend(_known_keys(v, f"{prefix}{k}.").split(", "))
        else:
            keys.append(f"{prefix}{k}")
    return ", ".join(k for k in keys if k)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings; values are read as JSON when possible (numbers, lists, booleans)."""
    import json

    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"Override '{item}' is not KEY=VALUE.", hint="e.g. training.epochs=2")
        key, _, raw = item.partition("=")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        out[key.strip()] = value
    return out
