"""The run's claims: one FDR procedure over every method's tests, explicit directions, one ranking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmdiff.io import read_json, write_json
from lmdiff.methods.behavior.validate import apply_fdr
from lmdiff.runs.claims import finalise_claims, load_claims, other_pvalues, record_claims
from lmdiff.stats.fdr import adjust


def _claims(method: str, ps: list[float], ds: list[float], direction: str = "finetuned more") -> list[dict]:
    return [{"claim_id": f"c{i}", "statement": f"{method} claim {i}", "direction": direction, "pvalue": p,
             "effect_size_d": d, "n": 12, "unit": "prompt"} for i, (p, d) in enumerate(zip(ps, ds, strict=True))]


def test_one_procedure_over_every_method(tmp_path):
    write_json(tmp_path / "results.json", {"methods": {}})
    record_claims(tmp_path, "probing", _claims("probing", [0.001, 0.04, 0.5], [3.0, 0.5, 0.1]))
    record_claims(tmp_path, "followup", _claims("followup", [0.002, 0.9], [1.0, -0.2]))
    out = finalise_claims(tmp_path, "bh", 0.05)
    assert len(out) == 5 and set(out["fdr_m"]) == {5}
    # q-values are BH over all five p-values, not per method
    expected = adjust(np.array([0.001, 0.04, 0.5, 0.002, 0.9]), method="bh").qvalues
    got = out.set_index("claim_id").loc[["probing:c0", "probing:c1", "probing:c2", "followup:c0", "followup:c1"],
                                        "qvalue"].to_numpy()
    np.testing.assert_allclose(got, expected)
    surv = out[out.survives]
    assert set(surv.claim_id) == {"probing:c0", "followup:c0"}  # 0.04 -> q 0.067 fails with m = 5
    assert surv.iloc[0].claim_id == "probing:c0" and int(surv.iloc[0]["rank"]) == 1  # larger d ranks first
    summary = read_json(tmp_path / "results.json")["claims"]
    assert summary["m"] == 5 and summary["n_validated"] == 2 and summary["by_method"] == {"followup": 2, "probing": 3}
    assert summary["top"][0]["statement"] == "probing claim 0"
    assert load_claims(tmp_path) is not None


def test_a_claim_survives_only_in_its_stated_direction(tmp_path):
    record_claims(tmp_path, "m", _claims("m", [1e-6, 1e-6], [2.0, -2.0]))
    out = finalise_claims(tmp_path)
    assert out.set_index("claim_id").survives.to_dict() == {"m:c0": True, "m:c1": False}
    record_claims(tmp_path, "m", _claims("m", [1e-6], [-2.0], direction="either"))
    assert bool(finalise_claims(tmp_path).survives.iloc[0])


def test_behaviour_folds_other_claims_into_the_same_procedure(tmp_path):
    record_claims(tmp_path, "probing", _claims("probing", [0.001, 0.3], [2.0, 0.1]))
    tests = pd.DataFrame({"id": ["h0", "h1"], "pvalue": [0.01, 0.02], "auc": [0.8, 0.7]})
    folded = apply_fdr(tests, "bh", 0.05, other_pvalues(tmp_path, "behavior"))
    assert set(folded.fdr_m) == {4}
    record_claims(tmp_path, "behavior", [{"claim_id": "h0", "statement": "a", "direction": "finetuned more",
                                         "pvalue": 0.01, "effect_size_d": 1.0},
                                        {"claim_id": "h1", "statement": "b", "direction": "finetuned more",
                                         "pvalue": 0.02, "effect_size_d": 1.0}])
    final = finalise_claims(tmp_path).set_index("claim_id")
    np.testing.assert_allclose(final.loc[["behavior:h0", "behavior:h1"], "qvalue"], folded.qvalue)


def test_claims_without_required_columns_are_refused(tmp_path):
    with pytest.raises(ValueError, match="pvalue"):
        record_claims(tmp_path, "m", [{"statement": "x", "direction": "finetuned more"}])


def test_no_claims_finalise_to_an_empty_family(tmp_path):
    write_json(tmp_path / "results.json", {})
    out = finalise_claims(tmp_path)
    assert out.empty and read_json(tmp_path / "results.json")["claims"]["m"] == 0


def test_claims_of_methods_a_rerun_no_longer_runs_are_left_out(tmp_path):
    record_claims(tmp_path, "probing", _claims("probing", [0.001], [2.0]))
    record_claims(tmp_path, "followup", _claims("followup", [0.01], [1.0]))
    out = finalise_claims(tmp_path, methods=["followup", "behavior"])
    assert list(out.method) == ["followup"] and set(out.fdr_m) == {1}
    assert list(other_pvalues(tmp_path, "behavior", ["followup", "behavior"])) == [0.01]
