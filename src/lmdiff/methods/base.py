"""The contract every diff method fulfils.

A method is a class with a name, a pydantic ``Config``, a ``run`` that computes a
:class:`MethodResult` from a :class:`MethodContext`, and a ``render`` that writes its section
of the report from that (saved) result. Results are saved in the run, so a rerun with the
same inputs re-renders without recomputing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from lmdiff.data.prompts import PromptSet
    from lmdiff.models.pair import ModelPair
    from lmdiff.report.builder import Section
    from lmdiff.run_config import DiffRunConfig
    from lmdiff.runs.executor import Executor
    from lmdiff.runs.run import Run, Step


class MethodConfig(BaseModel):
    """Base for method configs (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


ConfigT = TypeVar("ConfigT", bound=MethodConfig)


@dataclass
class MethodContext(Generic[ConfigT]):
    """What a method gets: the pair, the run, its own (validated, typed) config and the run's config."""

    pair: ModelPair
    run: Run
    config: ConfigT
    run_config: DiffRunConfig
    prompts: PromptSet
    method_name: str

    def step(self, name: str, key: Any, *, whole_config: bool = True) -> Step:
        """A resumable step namespaced by the method (``artifacts/<method>-<name>/``).

        Its key holds the pair, ``key`` and, unless ``whole_config`` is False, the method's whole
        config. A step whose result depends on only a few settings passes those in ``key`` with
        ``whole_config=False``, so that changing an unrelated setting reuses it.
        """
        config = self.config.model_dump(mode="json") if whole_config else None
        key_all = {"method_config": config, "pair": self.pair.cache_key(), "key": key}
        return self.run.step(f"{self.method_name}-{name}", key_all)

    @property
    def executor(self) -> Executor:
        """Where sharded work (sampling, activations, KL) runs: ``compute.executor`` of the run."""
        from lmdiff.runs.executor import executor_for

        return executor_for(self.run_config.compute)

    @property
    def corpus_cache_dir(self) -> Path:
        """Where generated corpus texts (model replies, sampled texts) are kept: one folder for the whole run.

        Every method of a run reads the same pair, so a corpus one method generated (``pair-replies``,
        ``chat+replies``) is reused by the next instead of generated again; file names carry the prompts'
        hash, the reply length and the seed.
        """
        return self.run.path / "cache" / "corpora"

    @property
    def artifact_dir(self) -> Path:
        """The method's own artifact directory."""
        d = self.run.path / "artifacts" / self.method_name
        d.mkdir(parents=True, exist_ok=True)
        return d


@dataclass
class MethodResult:
    """A method's outcome: headline figures for results.json plus data for its report section."""

    headline: dict[str, Any]
    summary: str
    data: dict[str, Any] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)
    corpus: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MethodResult:
        """Inverse of :meth:`to_dict`."""
        return cls(**d)


class DiffMethod(ABC, Generic[ConfigT]):
    """Base class of diff methods, generic in the method's config (``class KLMethod(DiffMethod[KLConfig])``)."""

    name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str] = ""
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    needs_shared_tokenizer: ClassVar[bool] = False
    white_box: ClassVar[bool] = False
    needs_both_resident: ClassVar[bool] = False
    #: The method needs log-probabilities of given text under both models (a remote endpoint may not give them).
    needs_scores: ClassVar[bool] = False
    #: The method tests hypotheses and records them as claims (:mod:`lmdiff.runs.claims`): a run in which it
    #: proposed none still counts as one of its runs, with no guess (``lmdiff benchmark``).
    tests_hypotheses: ClassVar[bool] = False
    #: When the method runs within a diff: 0 for methods that read only the models (the default);
    #: 1 for methods that follow up on what stage-0 methods found (their results are in the run);
    #: 2 for methods that fold the claims others recorded into their own FDR procedure
    #: (:mod:`lmdiff.runs.claims`), so that they see every other claim.
    stage: ClassVar[int] = 0
    #: Settings that fit ``lmdiff demo`` on a 2-core CPU (None: the method is not part of the demo).
    demo_settings: ClassVar[dict[str, Any] | None] = None
    #: Settings under the user's when the method runs in ``lmdiff diff``'s default set (no ``--methods``),
    #: sized so that the whole set fits ten minutes on a 2-core CPU for a 135M pair.
    default_set_settings: ClassVar[dict[str, Any]] = {}
    #: Headline keys that are per-token differences in nats, with their kind ("kl" or "logprob"): the report
    #: flags them when within 10x of the run's numerical noise floor (lmdiff.models.numerics).
    noise_comparable: ClassVar[dict[str, str]] = {}

    @abstractmethod
    def run(self, ctx: MethodContext[ConfigT]) -> MethodResult:
        """Compute the method's result (use ``ctx.step`` for resumable parts)."""

    @abstractmethod
    def render(self, result: MethodResult, section: Section, run: Run) -> None:
        """Write the method's report section from its saved result."""
