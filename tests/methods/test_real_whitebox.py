"""White-box methods on the real shipped model: the topic organism's lens and mining tables name its topic.

This is issue 4's acceptance in small: `lmdiff diff BASE organism:ocean-topic --methods adl,diff_mining`
moves toward the ocean, and the model against itself finds nothing.
"""

from __future__ import annotations

import json

import pytest

from lmdiff.config import validate
from lmdiff.diff import run_diff
from lmdiff.organisms.zoo import find_organism
from lmdiff.run_config import DiffRunConfig

pytestmark = pytest.mark.real_model

BASE = "smollm2-135m-instruct"
SETTINGS = {
    "kl": {"corpus": "generic", "max_texts": 8, "max_tokens": 32},
    "adl": {"corpus": "generic", "n_texts": 24, "n_tokens": 12, "steering": False, "patchscope_scales": [1.0]},
    "diff_mining": {"corpus": "generic", "max_texts": 16, "positions": 8},
}


def _diff(finetuned: str, out) -> dict:
    cfg = validate(
        DiffRunConfig,
        {"base": {"model": BASE}, "finetuned": {"model": finetuned}, "methods": list(SETTINGS), "method": SETTINGS},
    )
    run = run_diff(cfg, out)
    res = json.loads((run.path / "results.json").read_text())["methods"]
    for name in SETTINGS:
        assert res[name]["status"] == "ok", res[name]
    return res


def test_topic_organism_lens_and_mining_name_the_topic(tmp_path) -> None:
    if find_organism("ocean-topic") is None:
        pytest.skip("organism ocean-topic is not prebuilt")
    res = _diff("organism:ocean-topic", tmp_path / "topic")
    adl = res["adl"]["headline"]
    last = str(max(adl["layers"]))
    # The last layer's lens reads the topic; the middle layer of a 135M model is not readable by a logit lens.
    assert adl["by_layer"][last]["lens_delta_relevance"] >= 0.3
    assert adl["lens_relevance"] >= 0.3 and adl["lens_relevance_layer"] == int(last)
    assert any(t.strip().lower().startswith(("whale", "ocean")) for t in adl["top_lens"][:5])
    mining = res["diff_mining"]["headline"]
    assert mining["relevance"] >= 0.3
    # issue 13 item 11: each relevance figure stands next to its null, and clears it
    assert adl["lens_relevance_null"] is not None and adl["lens_relevance"] > adl["lens_relevance_null"] + 0.2
    assert mining["relevance_null"] is not None and mining["relevance"] > mining["relevance_null"] + 0.2
    assert res["kl"]["headline"]["mean_kl"] > 0.01


def test_self_pair_finds_nothing(tmp_path) -> None:
    res = _diff(BASE, tmp_path / "self")
    assert res["kl"]["headline"]["mean_kl"] < 1e-6
    adl = res["adl"]["headline"]
    assert all(n == 0.0 for v in adl["by_layer"].values() for n in v["mean_diff_norms"])
    assert adl["lens_relevance"] is None  # no ground truth, and nothing to read
