from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import norm
from statsmodels.stats.multitest import multipletests

from lmdiff.stats import FdrResult, adjust, qvalues


@pytest.mark.parametrize(("method", "sm_method"), [("bh", "fdr_bh"), ("by", "fdr_by")])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_statsmodels(method, sm_method, seed):
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(size=40), rng.uniform(0, 0.01, size=10), [0.0, 1.0, 0.03, 0.03]])
    rng.shuffle(p)
    for alpha in (0.05, 0.1):
        expected_reject, expected_q, _, _ = multipletests(p, alpha=alpha, method=sm_method)
        result = adjust(p, method=method, alpha=alpha)
        np.testing.assert_allclose(result.qvalues, expected_q, rtol=1e-12, atol=1e-15)
        np.testing.assert_array_equal(result.rejected, expected_reject)
        assert result.m == p.size
        assert result.method == method
        assert result.alpha == alpha


def test_hand_computed_bh():
    # sorted p: 0.01, 0.02, 0.03, 0.5 (m=4) -> 0.04, 0.04, 0.04, 0.5
    result = adjust([0.03, 0.5, 0.01, 0.02], alpha=0.04)
    np.testing.assert_allclose(result.qvalues, [0.04, 0.5, 0.04, 0.04])
    assert result.rejected.tolist() == [True, False, True, True]
    assert result.n_rejected == 3


def test_by_is_more_conservative_than_bh():
    p = np.linspace(0.001, 0.2, 30)
    bh, by = adjust(p, "bh"), adjust(p, "by")
    factor = np.sum(1.0 / np.arange(1, 31))
    assert np.all(by.qvalues >= bh.qvalues)
    np.testing.assert_allclose(by.qvalues, np.minimum(bh.qvalues * factor, 1.0))
    assert by.n_rejected < bh.n_rejected


def test_nan_pvalues_are_excluded_and_reported():
    p = [0.001, np.nan, 0.04, np.nan, 0.9]
    result = adjust(p)
    assert result.m == 3
    assert result.n_missing == 2
    assert result.missing_indices.tolist() == [1, 3]
    assert np.isnan(result.qvalues[[1, 3]]).all()
    assert not result.rejected[[1, 3]].any()
    # The non-missing q-values are exactly those of the procedure run on the 3 real tests.
    np.testing.assert_allclose(result.qvalues[[0, 2, 4]], qvalues([0.001, 0.04, 0.9]))
    np.testing.assert_array_equal(result.pvalues, np.asarray(p))


def test_empty_and_all_missing():
    empty = adjust([])
    assert empty.m == 0 and empty.n_rejected == 0
    missing = adjust([np.nan, np.nan])
    assert missing.m == 0 and missing.n_missing == 2 and missing.n_rejected == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pvalues": [0.5, 1.2]}, "lie in"),
        ({"pvalues": [-0.1]}, "lie in"),
        ({"pvalues": [0.1], "alpha": 0.0}, "alpha"),
        ({"pvalues": [0.1], "alpha": 1.0}, "alpha"),
        ({"pvalues": [0.1], "method": "holm"}, "method"),
        ({"pvalues": [[0.1, 0.2]]}, "one-dimensional"),
    ],
)
def test_invalid_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        adjust(**kwargs)


def test_qvalues_refuses_nan():
    with pytest.raises(ValueError, match="NaN"):
        qvalues([0.1, np.nan])


def test_bh_controls_fdr_and_has_power():
    rng = np.random.default_rng(7)
    m0, m1, alpha = 90, 10, 0.1
    fdp, power = [], []
    for _ in range(300):
        null_p = rng.uniform(size=m0)
        alt_p = 2 * norm.sf(np.abs(rng.normal(3.5, 1, size=m1)))
        result = adjust(np.concatenate([null_p, alt_p]), alpha=alpha)
        false = result.rejected[:m0].sum()
        fdp.append(false / max(result.n_rejected, 1))
        power.append(result.rejected[m0:].mean())
    # BH controls the FDR at m0/m * alpha = 0.09 for independent p-values.
    assert np.mean(fdp) <= 0.09 + 0.02
    assert np.mean(power) > 0.6


def test_to_dict_is_json_ready():
    result = adjust([0.01, np.nan, 0.2], method="by", alpha=0.1)
    assert isinstance(result, FdrResult)
    d = result.to_dict()
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text)["qvalues"][1] is None
    assert d["m"] == 2 and d["n_missing"] == 1 and d["method"] == "by"
    assert d["rejected"] == [True, False, False]
