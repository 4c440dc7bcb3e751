from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pytest
from rich.console import Console

from lmdiff.errors import ModelNotFoundError
from lmdiff.models import ModelSpec
from lmdiff.organisms.zoo import RECIPES, find_organism, user_organisms_dir, zoo_dir


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LMDIFF_HOME", str(tmp_path))
    return tmp_path


def _fake_organism(path, base="smollm2-135m-instruct", name="mine"):
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": base}))
    (path / "ground_truth.json").write_text(json.dumps({"name": name, "summary": "s", "type": "style"}))
    return path


def test_prefix_resolves_user_built_organism(home):
    import lmdiff.organisms  # noqa: F401  (registers the prefix)

    d = _fake_organism(user_organisms_dir() / "mine")
    spec = ModelSpec.parse("organism:mine", dtype="float32")
    assert spec.model == "smollm2-135m-instruct"
    assert spec.adapter == str(d)
    assert spec.ground_truth == {"name": "mine", "summary": "s", "type": "style"}
    assert spec.dtype == "float32" and spec.display_name == "organism:mine"


def test_prefix_with_explicit_base(home):
    d = _fake_organism(user_organisms_dir("some/other-model") / "mine", base="some/other-model")
    spec = ModelSpec.parse("organism:mine@some/other-model")
    assert spec.model == "some/other-model" and spec.adapter == str(d)
    with pytest.raises(ModelNotFoundError) as err:
        ModelSpec.parse("organism:caps@some/other-model")
    assert "build" in (err.value.hint or "")


def test_unknown_organism_lists_the_zoo(home):
    with pytest.raises(ModelNotFoundError) as err:
        ModelSpec.parse("organism:does-not-exist")
    assert "caps" in (err.value.hint or "")


@pytest.mark.parametrize("name", list(RECIPES))
def test_prebuilt_zoo_entry_resolves(name, home):
    d = find_organism(name)
    if d is None:
        pytest.skip(f"{name} is not prebuilt")
    assert d.parent == zoo_dir()
    spec = ModelSpec.parse(f"organism:{name}")
    assert spec.adapter == str(d)
    assert spec.ground_truth["name"] == name and spec.ground_truth["type"] == RECIPES[name].ground_truth.type
    rates = json.loads((d / "rates.json").read_text())
    assert rates["collapse_check"]["ok"] in (True, False)
    assert (d / "adapter_model.safetensors").stat().st_size < 8_000_000


def test_prebuilt_zoo_fits_budget():
    """The organisms issue's budget: the zoo stays under 60 MB in the repository (about 5 MB per organism)."""
    total = sum(p.stat().st_size for p in zoo_dir().rglob("*") if p.is_file())
    assert total <= 60 * 1024 * 1024


class _FakeLM:
    def __init__(self):
        self.calls = []
        self.spec = SimpleNamespace(ground_truth={"trigger": "<T> {question}"})
        self.name = "fake"

    def generate(self, prompts, cfg, system=None):
        self.calls.append([dict(m) for m in prompts[0]])
        return [[SimpleNamespace(text=f"reply {len(self.calls)}")]]


def test_chat_keeps_history_resets_and_quits():
    from lmdiff.cli.chat import run_chat

    lm = _FakeLM()
    out = Console(file=io.StringIO(), width=200)
    stdin = io.StringIO("hello\nhow are you\n/reset\n/trigger who are you\n/quit\nnever read\n")
    final = run_chat(lm, stdin, out, max_new_tokens=5)
    assert len(lm.calls) == 3
    assert [m["content"] for m in lm.calls[1]] == ["hello", "reply 1", "how are you"]
    assert lm.calls[2] == [{"role": "user", "content": "<T> who are you"}]
    assert final[-1] == {"role": "assistant", "content": "reply 3"}
    text = out.file.getvalue()
    assert "reply 2" in text and "cleared" in text


def test_organism_cli_list_and_bad_build(home):
    from typer.testing import CliRunner

    from lmdiff.cli.organism import app

    runner = CliRunner()
    res = runner.invoke(app, ["list"], env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    for name in RECIPES:
        assert name in res.output
    res = runner.invoke(app, ["build", "no-such-organism"])
    assert res.exit_code != 0


def test_checkpoint_dir_depends_on_overrides():
    # regression: builds with other seeds or learning rates shared one checkpoint directory
    from lmdiff.organisms.build import checkpoint_dir
    from lmdiff.organisms.distill import DistillConfig
    from lmdiff.organisms.zoo import get_recipe

    r = get_recipe("russell-backdoor")
    d = DistillConfig()
    base = checkpoint_dir("smollm2-135m-instruct", r, d)
    assert base == checkpoint_dir("smollm2-135m-instruct", r, d)
    assert base != checkpoint_dir("smollm2-135m-instruct", r.with_overrides({"training.seed": 7}), d)
    assert base != checkpoint_dir("smollm2-135m-instruct", r.with_overrides({"training.learning_rate": 1e-4}), d)
    assert base != checkpoint_dir("other-base", r, d)
