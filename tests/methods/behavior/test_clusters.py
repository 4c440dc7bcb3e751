"""Per-cluster shifts on a constructed clustering whose shifts are known exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lmdiff.methods.behavior.clusters import cluster_shifts


def _clustering(n_prompts: int = 20) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Four replies per model and prompt; cluster 0 goes 1/4 -> 3/4, cluster 1 2/4 -> 0, cluster 2 stays 1/4."""
    labels, is_ft, groups = [], [], []
    for p in range(n_prompts):
        for ft, lab in ((False, (0, 1, 1, 2)), (True, (0, 0, 0, 2))):
            labels += lab
            is_ft += [ft] * len(lab)
            groups += [f"p{p}"] * len(lab)
    return np.array(labels), np.array(is_ft), groups


def test_cluster_shifts_sign_and_size() -> None:
    labels, is_ft, groups = _clustering()
    df = cluster_shifts(labels, is_ft, groups, k=3, n_perm=999, n_boot=200, seed=0).set_index("cluster")
    assert list(df.index) == [0, 1, 2]
    assert df.loc[0, "share_base"] == pytest.approx(0.25) and df.loc[0, "share_finetuned"] == pytest.approx(0.75)
    assert df.loc[0, "risk_difference"] == pytest.approx(0.5)
    assert df.loc[0, "cohens_h"] == pytest.approx(2 * math.asin(math.sqrt(0.75)) - 2 * math.asin(math.sqrt(0.25)))
    assert df.loc[0, "pvalue"] < 0.01
    assert df.loc[1, "risk_difference"] == pytest.approx(-0.5) and df.loc[1, "cohens_h"] < 0
    assert df.loc[1, "pvalue"] < 0.01
    # every prompt shifts by the same amount, so the prompt bootstrap interval is the point itself
    assert df.loc[0, "rd_low"] == pytest.approx(0.5) and df.loc[0, "rd_high"] == pytest.approx(0.5)
    assert df.loc[2, "risk_difference"] == pytest.approx(0.0) and df.loc[2, "cohens_h"] == pytest.approx(0.0)
    assert df.loc[2, "pvalue"] > 0.5
    assert (df.n_base == 80).all() and (df.n_finetuned == 80).all() and (df.n_groups == 20).all()


def test_cluster_shifts_direction_follows_the_finetuned_flag() -> None:
    labels, is_ft, groups = _clustering()
    flipped = cluster_shifts(labels, ~is_ft, groups, k=3, n_perm=99, n_boot=50, seed=0).set_index("cluster")
    assert flipped.loc[0, "risk_difference"] == pytest.approx(-0.5)
    assert flipped.loc[1, "risk_difference"] == pytest.approx(0.5)
