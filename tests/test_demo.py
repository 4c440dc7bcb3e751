from lmdiff.config import validate
from lmdiff.demo import _demo_settings, demo_finetuned
from lmdiff.methods.registry import get_method
from lmdiff.run_config import DiffRunConfig


def test_demo_uses_the_shipped_caps_organism():
    assert demo_finetuned() == "organism:caps"


def test_demo_settings_are_valid_for_every_method():
    settings = _demo_settings()
    assert {"samples", "kl", "adl", "diff_mining", "behavior"} <= set(settings)
    cfg = validate(DiffRunConfig, {"base": {"model": "a"}, "finetuned": {"model": "b"},
                                   "methods": list(settings), "method": settings})
    for name in cfg.methods:
        get_method(name).Config(**cfg.method[name])
