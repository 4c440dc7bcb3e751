from __future__ import annotations

import dataclasses
import json

import numpy as np

import lmdiff.stats as st


def test_public_api_is_exported():
    for name in st.__all__:
        assert hasattr(st, name), name
    assert sorted(st.__all__) == st.__all__
    # Every public function has a docstring with an Args or Returns section (Google style).
    for name in st.__all__:
        obj = getattr(st, name)
        assert obj.__doc__, name
        if callable(obj) and not isinstance(obj, type):
            assert "Returns:" in obj.__doc__ or "Args:" in obj.__doc__, name


def test_every_result_reports_n_and_serialises_to_strict_json():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(12), 4)
    labels = np.tile([0, 1, 0, 1], 12)
    values = rng.normal(size=48) + labels
    x = rng.normal(size=(48, 3)) + labels[:, None]
    texts = [("yes indeed " if lab else "no ") + f"topic{g}" for lab, g in zip(labels, groups, strict=True)]
    results = [
        st.adjust([0.01, np.nan]),
        st.cluster_bootstrap_ci(values, groups, n_boot=50),
        st.hierarchical_bootstrap_ci(values, groups // 4, groups, n_boot=50),
        st.grouped_permutation_pvalue(values, labels, groups, n_perm=50),
        st.auc_permutation_test(values, labels, groups, n_perm=50),
        st.accuracy_with_ties([1, 0.5, 0, np.nan]),
        st.classifier_two_sample_test(x, labels, groups, n_perm=10),
        st.mmd_permutation_test(x, labels=labels, groups=groups, n_perm=10),
        st.bag_of_words_baseline(texts, labels, groups, min_df=1),
        st.log_odds_ratio(3, 10, 5, 10),
        st.proportion_shift([1, 2, 3], [4, 4, 4], [2, 3, 4], [4, 4, 4], n_perm=50, n_boot=50),
    ]
    for result in results:
        assert dataclasses.is_dataclass(result)
        d = result.to_dict()
        json.dumps(d, allow_nan=False)
        keys = set(d)
        assert keys & {"n", "n_obs", "m", "n1", "n_a"}, type(result).__name__
        if "seed" in keys:
            assert d["seed"] in (0, None)
