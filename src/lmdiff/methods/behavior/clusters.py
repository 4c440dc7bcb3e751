"""Clustering of prompts and replies, matching of the two models' clusters, per-cluster shifts."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from lmdiff.stats import prompt_difference_test, proportion_shift

log = logging.getLogger(__name__)

__all__ = ["Clustering", "cluster_embeddings", "cluster_shifts", "match_clusters"]


@dataclass
class Clustering:
    """The outcome of clustering one set of embeddings.

    Attributes:
        labels: cluster of each row (-1 = noise, HDBSCAN only).
        centroids: unit-norm centroid of each cluster, one row per cluster id 0..k-1.
        k: number of clusters.
        method: ``"kmeans"`` or ``"hdbscan"``.
        silhouette: silhouette of the chosen clustering (NaN if undefined).
        searched: k -> silhouette for the k-means search.
    """

    labels: NDArray[np.int64]
    centroids: NDArray[np.float64]
    k: int
    method: str
    silhouette: float
    searched: dict[int, float]


def _centroids(x: NDArray[np.float64], labels: NDArray[np.int64], k: int) -> NDArray[np.float64]:
    c = np.zeros((k, x.shape[1]))
    for j in range(k):
        if (labels == j).any():
            c[j] = x[labels == j].mean(0)
    n = np.linalg.norm(c, axis=1, keepdims=True)
    return np.asarray(c / np.maximum(n, 1e-12), dtype=np.float64)


def cluster_embeddings(
    x: NDArray[Any],
    *,
    method: str = "kmeans",
    k: int | None = None,
    k_range: Sequence[int] = (2, 3, 4, 5, 6, 8),
    min_cluster_size: int | None = None,
    seed: int = 0,
) -> Clustering:
    """Cluster unit-norm embeddings with k-means (k given or searched by silhouette) or HDBSCAN.

    HDBSCAN that finds fewer than two clusters falls back to the k-means search.

    Args:
        x: embeddings, one row per item.
        method: ``"kmeans"`` or ``"hdbscan"``.
        k: the number of k-means clusters; None searches ``k_range``.
        k_range: candidate k for the search (capped below the number of items).
        min_cluster_size: HDBSCAN's minimum cluster size (default ``max(5, n // 20)``).
        seed: k-means seed.

    Returns:
        A :class:`Clustering`.
    """
    from sklearn.cluster import HDBSCAN, KMeans
    from sklearn.metrics import silhouette_score

    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    if method == "hdbscan":
        mcs = min_cluster_size or max(5, n // 20)
        labels = HDBSCAN(min_cluster_size=min(mcs, max(2, n // 2))).fit_predict(x).astype(np.int64)
        kk = int(labels.max()) + 1
        if kk >= 2:
            mask = labels >= 0
            sil = float(silhouette_score(x[mask], labels[mask])) if len(set(labels[mask])) > 1 else float("nan")
            return Clustering(labels, _centroids(x, labels, kk), kk, "hdbscan", sil, {})
        log.info("HDBSCAN found %d clusters; falling back to k-means", kk)
    if n < 4:
        labels = np.zeros(n, dtype=np.int64)
        return Clustering(labels, _centroids(x, labels, 1), 1, "kmeans", float("nan"), {})
    cands = [k] if k is not None else [c for c in k_range if 2 <= c < n]
    cands = cands or [2]
    best: tuple[float, int, NDArray[np.int64]] | None = None
    searched: dict[int, float] = {}
    for c in cands:
        labels = KMeans(n_clusters=c, n_init=4, random_state=seed).fit_predict(x).astype(np.int64)
        sil = float(silhouette_score(x, labels)) if len(set(labels)) > 1 else -1.0
        searched[c] = sil
        if best is None or sil > best[0]:
            best = (sil, c, labels)
    assert best is not None
    sil, kk, labels = best
    return Clustering(labels, _centroids(x, labels, kk), kk, "kmeans", sil, searched)


def match_clusters(centroids_a: NDArray[Any], centroids_b: NDArray[Any]) -> pd.DataFrame:
    """Match the clusters of two models one-to-one by the Hungarian algorithm on cosine distance.

    Args:
        centroids_a: unit-norm centroids of model A's clusters (rows).
        centroids_b: unit-norm centroids of model B's clusters.

    Returns:
        A DataFrame with ``cluster_a``, ``cluster_b`` and ``distance`` (1 - cosine), one row per
        matched pair (``min(k_a, k_b)`` rows), sorted by distance.
    """
    from scipy.optimize import linear_sum_assignment

    a = np.asarray(centroids_a, dtype=np.float64)
    b = np.asarray(centroids_b, dtype=np.float64)
    cost = 1.0 - a @ b.T
    rows, cols = linear_sum_assignment(cost)
    df = pd.DataFrame({"cluster_a": rows, "cluster_b": cols, "distance": cost[rows, cols]})
    return df.sort_values("distance", ignore_index=True)


def cluster_shifts(
    labels: NDArray[Any],
    is_ft: NDArray[np.bool_],
    groups: Sequence[Any],
    k: int,
    *,
    n_perm: int = 999,
    n_boot: int = 500,
    seed: int = 0,
) -> pd.DataFrame:
    """Per-cluster shift of the share of replies from base to finetuned, with the prompt as unit.

    Args:
        labels: cluster of each reply.
        is_ft: True for replies of the finetuned model.
        groups: prompt id of each reply.
        k: the number of clusters.
        n_perm: sign-flip patterns of each test (prompts as the unit; exact up to 16 prompts).
        n_boot: cluster-bootstrap replicates of the intervals.
        seed: seed.

    Returns:
        One row per cluster: ``cluster``, ``share_base``, ``share_finetuned``, ``risk_difference``
        (+ CI), ``cohens_h``, ``pvalue``, ``n_base``, ``n_finetuned``, ``n_groups``.
    """
    g = pd.Series(list(groups))
    rows = []
    for c in range(k):
        df = pd.DataFrame({"g": g, "ft": is_ft, "in": np.asarray(labels) == c})
        agg = df.groupby(["g", "ft"])["in"].agg(["sum", "count"]).unstack("ft", fill_value=0)
        try:
            res = proportion_shift(
                agg[("sum", False)],
                agg[("count", False)],
                agg[("sum", True)],
                agg[("count", True)],
                n_perm=n_perm,
                n_boot=n_boot,
                seed=seed + c,
            )
        except (ValueError, KeyError) as err:
            log.info("cluster %d: no shift test (%s)", c, err)
            continue
        # the p-value's unit is the prompt: sign flips of per-prompt share differences, which stay valid
        # when the models differ per prompt (a within-prompt permutation does not; see stats.prompt_level)
        prompt_test = prompt_difference_test(
            df["in"].to_numpy(dtype=float), df["ft"].to_numpy(dtype=bool), df["g"].to_numpy(),
            alternative="two-sided", n_perm=n_perm, seed=seed + c,
        )
        rows.append(
            {
                "cluster": c,
                "share_base": res.p_a,
                "share_finetuned": res.p_b,
                "risk_difference": res.risk_difference,
                "rd_low": res.risk_difference_low,
                "rd_high": res.risk_difference_high,
                "cohens_h": res.cohens_h,
                "pvalue": prompt_test.pvalue,
                "n_base": res.n_a,
                "n_finetuned": res.n_b,
                "n_groups": res.n_groups,
            }
        )
    return pd.DataFrame(rows)
