"""The agents' dataset: organisms with a ground truth, each with the run directory its agent reads.

An organism is the zoo's (``organism:NAME``) or any finetune given with a ground truth. Its run
directory is a plain ``lmdiff diff`` run of the family's methods on (base, organism); a finished one
is reused, so the agent evaluation never recomputes what a diff already wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inspect_ai.dataset import MemoryDataset, Sample

from lmdiff.agents.prompts import TASK
from lmdiff.agents.tools import FAMILIES
from lmdiff.errors import LmdiffError
from lmdiff.io import read_json
from lmdiff.models.spec import ModelSpec
from lmdiff.run_config import DiffRunConfig


@dataclass(frozen=True)
class Organism:
    """A finetune to audit: its name, both models, and the ground truth the grader reads."""

    name: str
    base: ModelSpec
    finetuned: ModelSpec
    ground_truth: dict[str, Any]


def organism(name: str, base: str = "smollm2-135m-instruct") -> Organism:
    """The organism ``name`` (``organism:`` prefix optional) built on ``base``, with its ground truth.

    ``organism:NAME@BASE`` names the base itself; otherwise ``base`` picks the build (``organism:NAME@base``),
    so the finetuned side is the organism trained on the base it is compared with.

    Raises:
        LmdiffError: The organism has no ground truth (nothing to grade against).
    """
    short, _, at = name.removeprefix("organism:").partition("@")
    base = at or base
    ft = ModelSpec.parse(f"organism:{short}@{base}")
    gt = dict(ft.ground_truth or {})
    if not gt.get("keywords") and not gt.get("description"):
        raise LmdiffError(f"Organism '{short}' has no ground truth to grade an agent against.",
                          hint="give it a ground_truth.json with a description and keywords")
    return Organism(short, ModelSpec.parse(base), ft, gt)


def _weights(fingerprint: dict[str, Any]) -> tuple[Any, ...]:
    """What identifies one side's weights in a pair's fingerprint: the model, revision, quantization, adapter."""
    adapter = fingerprint.get("adapter_sha256") or (
        str(Path(fingerprint["adapter"]).expanduser().resolve()) if fingerprint.get("adapter") else None)
    return (fingerprint.get("model"), fingerprint.get("revision"), fingerprint.get("quantization", "none"), adapter)


def _check_pair(run_dir: Path, org: Organism) -> None:
    """Raise unless the run in ``run_dir`` (if any) compared ``org``'s base and finetuned models."""
    path = run_dir / "results.json"
    if not path.exists():
        return
    pair = read_json(path).get("pair") or {}
    for side, spec in (("base", org.base), ("finetuned", org.finetuned)):
        ran = pair.get(side)
        if ran is None or _weights(ran) != _weights(spec.fingerprint()):
            raise LmdiffError(f"The run directory {run_dir} holds a run of another {side} model "
                              f"({(ran or {}).get('model', 'unknown')}), not {org.name}'s {spec.display_name}.",
                              hint="give another --runs directory, or remove that run")


def _has_outputs(run_dir: Path, methods: Sequence[str]) -> bool:
    path = run_dir / "results.json"
    if not path.exists():
        return False
    entries = read_json(path).get("methods", {})
    return all((entries.get(m) or {}).get("status") == "ok" for m in methods)


def ensure_run(org: Organism, family: str, root: Path, overrides: dict[str, Any] | None = None) -> Path | None:
    """The run directory ``family``'s agent reads for ``org``: reused when it has the methods, else run.

    A run directory there of another pair (base or finetuned weights differ) is never reused or resumed.

    Args:
        org: The organism.
        family: A key of :data:`FAMILIES`.
        root: Where run directories live (``root/<organism>``).
        overrides: Extra :class:`DiffRunConfig` fields (e.g. ``method`` settings).

    Returns:
        The run directory, or None for a family that reads none (the black box).

    Raises:
        LmdiffError: The run directory holds a run of another pair.
    """
    methods = FAMILIES[family].diff_methods
    if not methods:
        return None
    run_dir = root / org.name
    _check_pair(run_dir, org)
    if _has_outputs(run_dir, methods):
        return run_dir
    if run_dir.exists():  # a run of other methods: keep it, run this family's methods beside it
        run_dir = root / f"{org.name}-{family}"
        _check_pair(run_dir, org)
        if _has_outputs(run_dir, methods):
            return run_dir
    from lmdiff.config import validate
    from lmdiff.diff import run_diff

    cfg = validate(DiffRunConfig, {"base": org.base.model_dump(mode="json", exclude_none=True),
                                   "finetuned": org.finetuned.model_dump(mode="json", exclude_none=True),
                                   "methods": list(methods), **(overrides or {})})
    run_diff(cfg, run_dir, command="agent")
    return run_dir


def sample_for(org: Organism, run_dir: Path | None) -> Sample:
    """The Inspect sample of one organism (the agent is never told its name, which could give the answer away)."""
    return Sample(
        id=org.name,
        input=TASK,
        target=str(org.ground_truth.get("description") or org.ground_truth.get("summary") or ""),
        metadata={"organism": org.name, "ground_truth": org.ground_truth,
                  "run_dir": str(run_dir) if run_dir is not None else None,
                  "base": org.base.model_dump(mode="json", exclude_none=True),
                  "finetuned": org.finetuned.model_dump(mode="json", exclude_none=True)},
    )


def agent_dataset(samples: Sequence[Sample], name: str = "lmdiff-organisms") -> MemoryDataset:
    """The samples as an Inspect dataset."""
    return MemoryDataset(list(samples), name=name)
