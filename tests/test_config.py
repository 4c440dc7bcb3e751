import pytest

from lmdiff.config import GenerationConfig, apply_overrides, load_config
from lmdiff.errors import ConfigError
from lmdiff.run_config import DiffRunConfig

BASE = {"base": {"model": "a"}, "finetuned": {"model": "b"}}


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("generation:\n  temperature: 0.5\n  max_new_tokens: 10\nmethods: [samples]\n")
    cfg = load_config(DiffRunConfig, path, ["generation.temperature=1.0", "compute.batch_size=2",
                                           "method.samples.n_prompts=3"], defaults=BASE)
    assert cfg.generation.temperature == 1.0 and cfg.generation.max_new_tokens == 10
    assert cfg.compute.batch_size == 2 and cfg.method == {"samples": {"n_prompts": 3}}
    assert cfg.base.model == "a"


def test_unknown_key_names_key_and_allowed():
    with pytest.raises(ConfigError) as info:
        load_config(DiffRunConfig, None, ["generation.temprature=1"], defaults=BASE)
    msg = info.value.message
    assert "generation.temprature" in msg and "temperature" in msg and "top_p" in msg


def test_bad_value_names_allowed_values():
    with pytest.raises(ConfigError) as info:
        load_config(DiffRunConfig, None, ["compute.load=sometimes"], defaults=BASE)
    assert "compute.load" in info.value.message and "one_at_a_time" in info.value.message
    with pytest.raises(ConfigError, match=r"generation\.top_p"):
        load_config(DiffRunConfig, None, ["generation.top_p=2"], defaults=BASE)


def test_override_parsing_and_errors():
    d = apply_overrides({}, ["a.b=1", "a.c=[1, 2]", "d=true", "e=hello world"])
    assert d == {"a": {"b": 1, "c": [1, 2]}, "d": True, "e": "hello world"}
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["nokey"])
    with pytest.raises(ConfigError, match="not a section"):
        apply_overrides({"a": 1}, ["a.b=2"])


def test_missing_required_and_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="missing required key 'finetuned'"):
        load_config(DiffRunConfig, None, [], defaults={"base": {"model": "a"}})
    bad = tmp_path / "bad.yaml"
    bad.write_text("generation: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(DiffRunConfig, bad, [], defaults=BASE)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(DiffRunConfig, tmp_path / "none.yaml")


def test_generation_defaults():
    g = GenerationConfig()
    assert g.temperature == 1.0 and g.n == 1
