"""The agents' organisms: built on the base they are compared with; a run directory is reused only for its pair."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lmdiff.agents.dataset import Organism, ensure_run, organism
from lmdiff.errors import LmdiffError
from lmdiff.models.spec import ModelSpec
from tests.agents.conftest import GROUND_TRUTH


@pytest.fixture
def users(tmp_path: Path, tiny_dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A user organism ``tiny-ocean`` (the tiny adapter); returns the bases it was looked up for."""
    from lmdiff.organisms import zoo

    _, adapter = tiny_dirs
    org = tmp_path / "organisms" / "tiny-ocean"
    shutil.copytree(adapter, org)
    (org / "ground_truth.json").write_text(json.dumps(GROUND_TRUTH))
    asked: list[str] = []

    def where(base: str = zoo.DEFAULT_BASE) -> Path:
        asked.append(base)
        return tmp_path / "organisms"

    monkeypatch.setattr(zoo, "user_organisms_dir", where)
    return asked


def test_the_organism_is_the_build_on_the_given_base(users: list[str]) -> None:
    org = organism("organism:tiny-ocean", base="other-base")
    assert users == ["other-base"] and org.name == "tiny-ocean"
    assert org.base.model == "other-base" and org.finetuned.model == "other-base" and org.finetuned.adapter
    at = organism("tiny-ocean@third-base", base="other-base")  # NAME@BASE names the base itself
    assert at.base.model == at.finetuned.model == "third-base" and at.ground_truth == GROUND_TRUTH


def test_a_run_directory_is_reused_only_for_its_own_pair(tmp_path: Path, real_run: Path,
                                                         tiny_dirs: tuple[Path, Path]) -> None:
    base, adapter = tiny_dirs
    root = tmp_path / "runs"
    root.mkdir()
    (root / "tiny-ocean").symlink_to(real_run)
    same = Organism("tiny-ocean", ModelSpec(model=str(base)), ModelSpec(model=str(base), adapter=str(adapter)),
                    GROUND_TRUTH)
    assert ensure_run(same, "kl", root) == root / "tiny-ocean"
    other_base = Organism("tiny-ocean", ModelSpec(model="other-base"), same.finetuned, GROUND_TRUTH)
    with pytest.raises(LmdiffError, match="another base model"):
        ensure_run(other_base, "kl", root)
    untrained = Organism("tiny-ocean", same.base, ModelSpec(model=str(base)), GROUND_TRUTH)
    with pytest.raises(LmdiffError, match="another finetuned model"):
        ensure_run(untrained, "kl", root)
