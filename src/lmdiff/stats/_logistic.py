"""L2-regularised logistic regression fitted for many label vectors at once.

A permutation test of a cross-validated classifier refits the same design matrix with hundreds of
relabellings. scikit-learn fits them one by one (tens of milliseconds each, even for small data).
Here every relabelling is a column of ``Y`` and all columns are fitted together with Böhning's
(1992) bound-optimisation iteration: the logistic Hessian is bounded by ``X'X / 4``, so

``w <- w - (X'X / 4 + Lambda)^-1 grad(w)``

decreases the objective monotonically; the matrix is factorised once per design and shared by all
columns, and Nesterov momentum with adaptive restart roughly halves the number of iterations. The
objective is scikit-learn's ``LogisticRegression(C=C)`` (penalty ``||w||^2 / (2C)`` on the
coefficients, intercept unpenalised), so the solution matches it up to the convergence tolerance.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import cho_factor, cho_solve
from scipy.special import expit


def fit_logistic_many(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    C: float = 1.0,
    *,
    tol: float = 1e-6,
    max_iter: int = 2000,
) -> NDArray[np.float64]:
    """Fit one L2 logistic regression per column of ``y`` on the shared design ``x``.

    Args:
        x: design matrix, ``(n, d)``; no intercept column (one is added).
        y: 0/1 labels, ``(n, k)``: one column per fit.
        C: inverse regularisation strength, as in scikit-learn.
        tol: stop when the largest coefficient update is below ``tol * (1 + max |w|)``.
        max_iter: the maximum number of iterations.

    Returns:
        Coefficients ``(d + 1, k)``; the last row is the intercept.
    """
    n, d = x.shape
    xt = np.hstack([x, np.ones((n, 1))])
    penalty = np.full(d + 1, 1.0 / C)
    penalty[-1] = 0.0
    bound = xt.T @ xt / 4.0
    bound[np.diag_indices_from(bound)] += penalty + 1e-10
    factor = cho_factor(bound)
    k = y.shape[1]
    w = np.zeros((d + 1, k))  # current iterate
    ext = np.zeros((d + 1, k))  # extrapolated point (Nesterov momentum)
    t = np.ones(k)
    active = np.arange(k)
    for _ in range(max_iter):
        ya = ext[:, active]
        grad = xt.T @ (expit(xt @ ya) - y[:, active]) + penalty[:, None] * ya
        step = cho_solve(factor, grad)
        new = ya - step
        old = w[:, active]
        # Accelerated bound optimisation with adaptive restart (O'Donoghue & Candes 2015): drop
        # the momentum of a column whenever it points uphill.
        restart = np.einsum("ij,ij->j", grad, new - old) > 0
        t_next = (1.0 + np.sqrt(1.0 + 4.0 * t[active] ** 2)) / 2.0
        momentum = np.where(restart, 0.0, (t[active] - 1.0) / t_next)
        t[active] = np.where(restart, 1.0, t_next)
        w[:, active] = new
        ext[:, active] = new + momentum * (new - old)
        moved = np.abs(step).max(axis=0) > tol * (1.0 + np.abs(new).max(axis=0))
        active = active[moved]
        if active.size == 0:
            break
    return w


def logistic_scores(x: NDArray[np.float64], w: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return decision scores ``x @ coef + intercept`` for coefficients from :func:`fit_logistic_many`."""
    scores: NDArray[np.float64] = x @ w[:-1] + w[-1]
    return scores
