"""Shared helpers of :mod:`lmdiff.stats`: seeds, input checks, group codes and JSON-ready results.

Nothing here is public API; the public modules import these helpers so that every result
records its seed, its real n and its number of groups in the same way.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtri

SeedLike = int | np.random.Generator | None
"""A seed: an int (reproducible), a ``numpy.random.Generator`` (used as is) or None (fresh entropy)."""


def make_rng(seed: SeedLike) -> np.random.Generator:
    """Return a numpy Generator for ``seed`` (a Generator is passed through unchanged)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def seed_record(seed: SeedLike) -> int | None:
    """Return what a result records about its seed: the int, or None for a Generator or no seed."""
    return int(seed) if isinstance(seed, int | np.integer) else None


def _to_jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, tuples and NaN/inf into plain JSON values (NaN and inf become None)."""
    if isinstance(value, np.ndarray):
        return [_to_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_jsonable(v) for v in value]
    return value


@dataclasses.dataclass(frozen=True)
class StatsResult:
    """Base class of every result dataclass: adds :meth:`to_dict` for JSON artifacts."""

    def to_dict(self) -> dict[str, Any]:
        """Return the result as a JSON-ready dict.

        numpy values become Python values, arrays become lists, and NaN or infinite floats become
        ``None`` (JSON has no NaN). Fields declared with ``metadata={"json": False}`` are left out.

        Returns:
            A dict with one key per field.
        """
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.metadata.get("json", True):
                out[f.name] = _to_jsonable(getattr(self, f.name))
        return out


def as_float_vector(values: ArrayLike, name: str) -> NDArray[np.float64]:
    """Return ``values`` as a 1-D float64 array or raise ValueError naming ``name``."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def as_binary_labels(labels: ArrayLike, name: str = "labels") -> NDArray[np.bool_]:
    """Return binary labels as a boolean array (True = the second model / positive class).

    Accepts booleans, or numbers in {0, 1}. Other label values (strings, three classes) are refused:
    the caller must say which of its two labels is the positive one.

    Raises:
        ValueError: if the labels are not one-dimensional or not binary.
    """
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype == np.bool_:
        return arr
    if arr.size and not (np.issubdtype(arr.dtype, np.number)):
        raise ValueError(f"{name} must be booleans or 0/1 numbers, got dtype {arr.dtype}")
    bad = ~np.isin(arr, (0, 1))
    if bad.any():
        raise ValueError(f"{name} must contain only 0 and 1; found {np.unique(arr[bad])[:5].tolist()}")
    return arr.astype(bool)


def encode_groups(groups: ArrayLike | None, n: int, name: str = "groups") -> tuple[NDArray[np.int64], int]:
    """Map arbitrary group labels to integer codes ``0..G-1``.

    Args:
        groups: one label per item (any hashable values numpy can sort), or None, meaning every
            item is its own group (items are independent).
        n: the number of items.
        name: the argument name used in error messages.

    Returns:
        ``(codes, n_groups)``.

    Raises:
        ValueError: if ``groups`` does not have length ``n``.
    """
    if groups is None:
        return np.arange(n, dtype=np.int64), n
    arr = np.asarray(groups)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must be one-dimensional with {n} entries, got shape {arr.shape}")
    if arr.dtype == object:
        # Mixed or unsortable objects: fall back to first-appearance order.
        mapping: dict[Any, int] = {}
        codes = np.fromiter((mapping.setdefault(g, len(mapping)) for g in arr.tolist()), np.int64, n)
        return codes, len(mapping)
    _, codes = np.unique(arr, return_inverse=True)
    codes = codes.astype(np.int64).reshape(-1)
    return codes, int(codes.max()) + 1 if n else 0


def check_alternative(alternative: str) -> None:
    """Raise ValueError unless ``alternative`` is 'two-sided', 'greater' or 'less'."""
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative must be 'two-sided', 'greater' or 'less', got {alternative!r}")


def check_probability(value: float, name: str) -> None:
    """Raise ValueError unless ``0 < value < 1``."""
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value}")


def check_positive_int(value: int, name: str, minimum: int = 1) -> None:
    """Raise ValueError unless ``value`` is an int >= ``minimum``."""
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def monte_carlo_pvalue(null: NDArray[np.float64], observed: float, alternative: str) -> float:
    """Return the Monte Carlo permutation p-value of ``observed`` against ``null``; never 0.

    One-sided: ``(b + 1) / (m + 1)``, where ``b`` counts the ``m`` permuted statistics at least as
    extreme as the observed one. Counting the observed labelling as one of the permutations keeps
    the test exact in level (Phipson & Smyth 2010). Two-sided: twice the smaller one-sided p-value,
    capped at 1 (as ``scipy.stats.permutation_test`` does); unlike comparing absolute values, this
    stays valid when the permutation distribution is not centred at 0.

    Statistics computed by different arithmetic paths can differ in the last bits; a permuted
    statistic equal to the observed one must count as "at least as extreme", so comparisons allow
    a relative slack of ``100 * eps``.
    """
    m = int(null.size)
    gamma = abs(observed) * 100 * np.finfo(np.float64).eps + 1e-300
    p_greater = (int(np.count_nonzero(null >= observed - gamma)) + 1) / (m + 1)
    p_less = (int(np.count_nonzero(null <= observed + gamma)) + 1) / (m + 1)
    if alternative == "greater":
        return p_greater
    if alternative == "less":
        return p_less
    return min(1.0, 2.0 * min(p_greater, p_less))


def percentile_interval(replicates: NDArray[np.float64], ci: float) -> tuple[float, float]:
    """Return the equal-tailed percentile interval of bootstrap ``replicates`` at level ``ci``."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return math.nan, math.nan
    tail = (1.0 - ci) / 2.0
    low, high = np.quantile(finite, [tail, 1.0 - tail])
    return float(low), float(high)


def batches(total: int, size: int) -> Sequence[int]:
    """Return batch sizes that add up to ``total``, each at most ``size``."""
    full, rest = divmod(total, size)
    return [size] * full + ([rest] if rest else [])


def normal_quantile(ci: float) -> float:
    """Return the two-sided standard normal quantile for confidence level ``ci`` (1.96 for 0.95)."""
    return float(ndtri(0.5 + ci / 2.0))


def wilson_interval(p_hat: float, n: float, ci: float) -> tuple[float, float]:
    """Return the Wilson score interval for a proportion ``p_hat`` observed on ``n`` trials.

    Args:
        p_hat: the observed share.
        n: the number of trials (the unit: prompts or questions).
        ci: the confidence level, e.g. 0.95.

    Returns:
        ``(low, high)``, clipped to [0, 1]; NaNs when ``n`` is 0.
    """
    if n <= 0:
        return math.nan, math.nan
    z = normal_quantile(ci)
    denom = 1.0 + z * z / n
    center = (p_hat + z * z / (2 * n)) / denom
    half = z * math.sqrt(max(p_hat * (1 - p_hat), 0.0) / n + z * z / (4 * n * n)) / denom
    return max(0.0, center - half), min(1.0, center + half)
