"""What the L1 linear models share: the alpha grid, the path solved along it, warnings."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.extmath import safe_sparse_dot

from ..solvers import solve

__all__ = [
    "DEFAULT_MAX_ITER",
    "alpha_grid",
    "linear_predict",
    "solve_path",
    "warn_not_converged",
    "warn_path_failures",
]

# Fewer epochs than this never certify a hard problem; more only delay the warning.
DEFAULT_MAX_ITER = 1000


def alpha_grid(alpha_max: float, alphas: Any, eps: float) -> np.ndarray:
    """``alphas`` itself, sorted decreasing, or a geometric grid of that many values.

    The grid goes from ``alpha_max`` down to ``eps * alpha_max`` (as scikit-learn's). When
    ``alpha_max`` is 0 (a target that no feature explains), every value is the smallest positive
    resolution of float64 and every coefficient is 0.
    """
    if isinstance(alphas, numbers.Integral):
        top = alpha_max if alpha_max > np.finfo(np.float64).resolution else None
        if top is None:
            return np.full(int(alphas), np.finfo(np.float64).resolution)
        if alphas == 1:
            return np.array([top])
        return np.geomspace(top, top * eps, num=int(alphas))
    return np.sort(np.asarray(alphas, dtype=np.float64))[::-1].copy()


def warn_not_converged(
    owner: str,
    alphas: list[float],
    gaps: list[float],
    tols: list[float],
    max_iter: int,
    stacklevel: int = 3,
) -> None:
    """One ``ConvergenceWarning`` naming how many fits stopped short and the worst gap reached."""
    if not alphas:
        return
    worst = int(np.argmax(np.asarray(gaps) / np.maximum(np.asarray(tols), 1e-300)))
    how_many = "" if len(alphas) == 1 else f" for {len(alphas)} values of alpha"
    warnings.warn(
        f"{owner} did not converge{how_many} in max_iter={max_iter} epochs: the duality gap "
        f"reached {gaps[worst]:.3e} (alpha={alphas[worst]:.4g}) for a tolerance of "
        f"{tols[worst]:.3e}. Increase max_iter, raise tol, or scale the features.",
        ConvergenceWarning,
        stacklevel=stacklevel,  # the caller of fit (or of the path function)
    )


def solve_path(
    problem: Any,
    alphas: np.ndarray,
    path_type: Callable[..., Any],
    *,
    weights: np.ndarray | None,
    positive: bool,
    tol: float,
    max_iter: int,
    coef_init: np.ndarray | None = None,
    intercept_dtype: Any = None,
    stop: Callable[[np.ndarray], bool] | None = None,
) -> tuple[Any, list[tuple[float, float, float]]]:
    """Solve ``problem`` along ``alphas`` (decreasing), each fit warm-started from the previous one.

    The working set of each fit starts from the support of the previous one, so the active set
    grows along the path. Returns ``path_type(alphas, coefs, intercepts, dual_gaps, n_iter)``
    (coefs of shape (n_features, n_alphas), in the problem's dtype; intercepts in
    ``intercept_dtype``, by default that dtype too) and the (alpha, gap, tolerance) of the fits
    that did not converge.

    ``stop(coef)``, when given, is called after each fit; when it returns True the path ends
    there and holds only the alphas solved so far. The fits are those of the whole path: a path
    stopped early is a prefix of the path that is not.
    """
    n_alphas = alphas.shape[0]
    coefs = np.zeros((problem.n_features, n_alphas), dtype=problem.dtype)
    intercepts = np.zeros(n_alphas, dtype=intercept_dtype or problem.dtype)
    gaps = np.zeros(n_alphas)
    n_iter = np.zeros(n_alphas, dtype=np.int64)
    failures = []
    state = problem.init_state(coef_init)
    for k, alpha in enumerate(alphas):
        result = solve(
            problem,
            float(alpha),
            state,
            weights=weights,
            positive=positive,
            tol=tol,
            max_iter=max_iter,
        )
        coefs[:, k] = result.coef
        intercepts[k] = result.intercept
        gaps[k] = result.gap
        n_iter[k] = result.n_iter
        if not result.converged:
            failures.append((float(alpha), result.gap, result.tol_abs))
        if stop is not None and stop(coefs[:, k]):
            kept = slice(0, k + 1)
            path = path_type(
                alphas[kept], coefs[:, kept], intercepts[kept], gaps[kept], n_iter[kept]
            )
            return path, failures
    return path_type(alphas, coefs, intercepts, gaps, n_iter), failures


def warn_path_failures(
    owner: str, failures: list[tuple[float, float, float]], max_iter: int
) -> None:
    """:func:`warn_not_converged` for the (alpha, gap, tolerance) of :func:`solve_path`."""
    if failures:
        alphas, gaps, tols = (list(column) for column in zip(*failures, strict=True))
        warn_not_converged(owner, alphas, gaps, tols, max_iter, stacklevel=4)


def linear_predict(X: Any, coef: np.ndarray, intercept: Any) -> np.ndarray:
    """``X @ coef.T + intercept`` for dense or sparse ``X``."""
    out = safe_sparse_dot(X, coef.T, dense_output=True)
    return np.asarray(out) + intercept
