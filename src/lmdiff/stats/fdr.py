"""False discovery rate control over all the p-values a run reports.

One run declares one procedure and applies it once, to every p-value it reports (mixing, say,
an online procedure with a post-hoc one, as the predecessor did, leaves neither guarantee).

* ``"bh"`` (default): Benjamini & Hochberg (1995). Controls the FDR at ``alpha`` for independent
  or positively dependent (PRDS) p-values, the usual case for tests that share data.
* ``"by"``: Benjamini & Yekutieli (2001). Controls the FDR under any dependence, at the cost of
  dividing ``alpha`` by ``sum(1/i, i=1..m)`` (about 4.5 for m = 50).

NaN p-values (a test that could not run) are excluded explicitly: they get no q-value, are never
rejected, do not count in ``m``, and are reported in ``n_missing`` and ``missing_indices``.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lmdiff.stats._common import StatsResult, check_probability

FdrMethod = Literal["bh", "by"]

__all__ = ["FdrResult", "adjust", "qvalues"]


@dataclasses.dataclass(frozen=True, eq=False)
class FdrResult(StatsResult):
    """The outcome of one FDR procedure applied to a vector of p-values (compare fields, not objects).

    Attributes:
        method: ``"bh"`` or ``"by"``.
        alpha: the FDR level.
        m: the number of tests that entered the procedure (non-NaN p-values).
        n_missing: the number of NaN p-values, excluded from the procedure.
        pvalues: the p-values as given (NaN kept), in input order.
        qvalues: adjusted p-values in input order; NaN where the p-value was NaN.
        rejected: True where ``qvalue <= alpha``; False where the p-value was NaN.
        missing_indices: input positions of the NaN p-values.
    """

    method: str
    alpha: float
    m: int
    n_missing: int
    pvalues: NDArray[np.float64]
    qvalues: NDArray[np.float64]
    rejected: NDArray[np.bool_]
    missing_indices: NDArray[np.int64]

    @property
    def n_rejected(self) -> int:
        """The number of rejected hypotheses (discoveries)."""
        return int(self.rejected.sum())


def qvalues(pvalues: ArrayLike, method: FdrMethod = "bh") -> NDArray[np.float64]:
    """Return BH or BY adjusted p-values (q-values) for p-values without NaN.

    The q-value of the i-th smallest p-value is ``min_{j >= i} min(1, c(m) * m * p_(j) / j)`` with
    ``c(m) = 1`` for BH and ``c(m) = sum_{i<=m} 1/i`` for BY; rejecting ``q <= alpha`` is the step-up
    procedure at level ``alpha``.

    Args:
        pvalues: one-dimensional p-values in [0, 1], no NaN.
        method: ``"bh"`` or ``"by"``.

    Returns:
        The q-values, in input order.

    Raises:
        ValueError: on NaN, values outside [0, 1] or an unknown method.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"pvalues must be one-dimensional, got shape {p.shape}")
    if np.isnan(p).any():
        raise ValueError("pvalues contain NaN; use adjust(), which excludes and reports them")
    if ((p < 0) | (p > 1)).any():
        raise ValueError("pvalues must lie in [0, 1]")
    if method not in ("bh", "by"):
        raise ValueError(f"method must be 'bh' or 'by', got {method!r}")
    m = p.size
    if m == 0:
        return p.copy()
    factor = 1.0 if method == "bh" else float(np.sum(1.0 / np.arange(1, m + 1)))
    order = np.argsort(p, kind="stable")
    ranked = p[order] * (m * factor / np.arange(1, m + 1))
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(ranked, 1.0)
    return q


def adjust(pvalues: ArrayLike, method: FdrMethod = "bh", alpha: float = 0.05) -> FdrResult:
    """Apply one declared FDR procedure to a vector of p-values.

    Args:
        pvalues: one p-value per hypothesis; NaN marks a test that could not run.
        method: ``"bh"`` (Benjamini-Hochberg, default) or ``"by"`` (Benjamini-Yekutieli).
        alpha: the FDR level, strictly between 0 and 1.

    Returns:
        An :class:`FdrResult` with q-values and the rejection mask in input order.

    Raises:
        ValueError: on p-values outside [0, 1], a bad ``alpha`` or an unknown method.

    Example:
        >>> r = adjust([0.001, 0.02, float("nan"), 0.5])
        >>> r.m, r.n_missing, r.rejected.tolist()
        (3, 1, [True, True, False, False])
    """
    check_probability(alpha, "alpha")
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"pvalues must be one-dimensional, got shape {p.shape}")
    missing = np.isnan(p)
    q = np.full(p.shape, np.nan)
    q[~missing] = qvalues(p[~missing], method)
    rejected = np.zeros(p.shape, dtype=bool)
    rejected[~missing] = q[~missing] <= alpha
    return FdrResult(
        method=method,
        alpha=float(alpha),
        m=int((~missing).sum()),
        n_missing=int(missing.sum()),
        pvalues=p.copy(),
        qvalues=q,
        rejected=rejected,
        missing_indices=np.flatnonzero(missing).astype(np.int64),
    )
