"""activation_stats: per-token metrics against a hand computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lmdiff.methods.activation_stats import token_metrics


def test_token_metrics_by_hand():
    base = np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 0.0]], dtype=np.float32)
    ft = np.array([[3.0, 4.0], [0.0, 2.0], [1.0, 1.0]], dtype=np.float32)
    m = token_metrics(base, ft)
    np.testing.assert_allclose(m["norm_diff"], [0.0, math.sqrt(5.0), math.sqrt(2.0)])
    np.testing.assert_allclose(m["norm_base"], [5.0, 1.0, 0.0])
    np.testing.assert_allclose(m["norm_ft"], [5.0, 2.0, math.sqrt(2.0)])
    np.testing.assert_allclose(m["cosine"], [1.0, 0.0, 0.0])  # a zero vector has cosine 0, not NaN
    assert all(v.dtype == np.float64 for v in m.values())


def test_token_metrics_keep_float64_precision():
    base = np.full((1, 4), 1000.0, dtype=np.float32)
    ft = base + np.float32(0.001)  # stored as 1000.0009765625: the float32 step there
    m = token_metrics(base, ft)
    assert m["norm_diff"][0] == 2 * 0.0009765625  # exact in float64 (sqrt(4) * step)
    assert m["cosine"][0] == pytest.approx(1.0, abs=1e-12)
